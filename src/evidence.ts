/**
 * Drill evidence: each drill's record goes into a comment on a tracking issue that the action
 * opens on first use, so the record outlives the run (logs and artifacts expire) and anyone can
 * read it without tools, as an auditor asks ("show that restore drills run and pass"). A failed
 * drill reopens the issue, which notifies the people watching the repository, so a scheduled drill
 * cannot fail unnoticed. The staleness gate reads the records back.
 *
 * Each comment carries the record twice: as Markdown for people and as JSON in an HTML comment
 * (`<!-- omniai-drill-record {...} -->`) for the action, so reading it back never scrapes prose.
 */
import type { Check } from './checks.js'
import { formatSeconds } from './checks.js'
import { githubRequest, type GitHubRepo, type Refusal } from './github-api.js'
import type { Log } from './log.js'
import { bytes } from './report.js'

export interface DrillRecord {
  /** When the drill ran (ISO 8601). */
  date: string
  ok: boolean
  engine: string
  backup: { file: string; sha256: string; createdAt: string } | null
  /** RPO: the age of the backup restored. */
  backupAgeSeconds: number | null
  /** RTO: how long the restore took. */
  restoreSeconds: number | null
  /** Size of the restored database. */
  databaseBytes: number | null
  backupCount: number
  /** Check name to passed. */
  checks: Record<string, boolean>
  failed: string[]
  /** Whether the recovery key decrypted the backup; null when it was not encrypted. */
  decrypted: boolean | null
  /** The workflow run's URL. */
  run: string | null
}

export interface EvidenceSettings extends GitHubRepo {
  /** The tracking issue's title. Default 'OmniAI restore drills'. */
  title?: string
  /** The label that marks it. Default 'omniai-drill'. */
  label?: string
}

export const DEFAULT_TITLE = 'OmniAI restore drills'
export const DEFAULT_LABEL = 'omniai-drill'
const MARKER = 'omniai-drill-record'
const PER_PAGE = 100
/** Past this many pages a list is cut rather than exhaust the rate limit (10,000 items). */
const MAX_PAGES = 100
const DAY_MS = 24 * 60 * 60 * 1000

interface RestIssue {
  number: number
  title: string
  state: 'open' | 'closed'
  html_url: string
  labels?: (string | { name?: string })[]
  pull_request?: unknown
}

interface RestComment {
  body?: string | null
  html_url: string
  user?: { type?: string } | null
  author_association?: string
}

// ---------------------------------------------------------------------------------------------
// The comment
// ---------------------------------------------------------------------------------------------

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ')
/** Inline code; table cells are escaped once, where the row is written. */
const code = (s: string) => `\`${s.replace(/`/g, "'").replace(/[\r\n]+/g, ' ')}\``

/** `2026-11-26 05:48:12 UTC`, or the text as given when it is not a date. */
function when(iso: string): string {
  const t = Date.parse(iso)
  return Number.isNaN(t)
    ? iso
    : `${new Date(t)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, '')} UTC`
}

/**
 * The JSON for the HTML comment. `<` and `>` are written as JSON escapes so that no value (a
 * file name, say) can end the HTML comment early; JSON.parse reads them back unchanged.
 */
function embed(record: DrillRecord): string {
  const json = JSON.stringify(record).replace(/</g, '\\u003c').replace(/>/g, '\\u003e')
  return `<!-- ${MARKER} ${json} -->`
}

/** The record embedded in a comment's body, or null (a person's comment, or not a record). */
export function parseDrillComment(body: string): DrillRecord | null {
  const m = new RegExp(`<!-- ${MARKER} (\\{.*?\\}) -->`, 's').exec(body)
  if (!m) return null
  try {
    const r = JSON.parse(m[1]!) as Partial<DrillRecord>
    if (typeof r.ok !== 'boolean' || typeof r.date !== 'string' || Number.isNaN(Date.parse(r.date)))
      return null
    return r as DrillRecord
  } catch {
    return null
  }
}

/** The drill's comment: a heading that says pass or fail, the failed checks first, the facts. */
export function renderDrillComment(record: DrillRecord): string {
  const lines = [
    record.ok
      ? `## ✅ Restore drill passed: ${when(record.date)}`
      : `## ❌ Restore drill FAILED: ${when(record.date)}`,
    '',
  ]
  if (!record.ok) {
    const failed = record.failed.length ? record.failed.map(code).join(', ') : 'none recorded'
    lines.push(
      `**Failed checks: ${failed}.** Fix the cause and run the drill again; close this issue once a drill passes.`,
      '',
    )
  }
  const facts: [string, string][] = [['Engine', record.engine]]
  if (record.backup) {
    facts.push(['Backup', code(record.backup.file)])
    facts.push(['SHA-256', code(record.backup.sha256)])
    facts.push(['Taken at', when(record.backup.createdAt)])
  } else {
    facts.push(['Backup', 'none found'])
  }
  if (record.backupAgeSeconds !== null)
    facts.push(['Backup age (RPO)', formatSeconds(record.backupAgeSeconds)])
  if (record.restoreSeconds !== null)
    facts.push(['Restore time (RTO)', `${record.restoreSeconds.toFixed(2)} s`])
  if (record.databaseBytes !== null) facts.push(['Restored database', bytes(record.databaseBytes)])
  facts.push(['Backups available', String(record.backupCount)])
  facts.push([
    'Recovery key',
    record.decrypted === null
      ? 'not encrypted'
      : record.decrypted
        ? '✅ decrypted the backup'
        : '❌ did not decrypt the backup',
  ])
  facts.push(['Workflow run', record.run ? `[${record.run}](${record.run})` : 'not recorded'])
  lines.push('| | |', '| --- | --- |', ...facts.map(([k, v]) => `| ${k} | ${cell(v)} |`), '')
  const checks = Object.entries(record.checks)
  if (checks.length) {
    lines.push('| Check | Result |', '| --- | --- |')
    for (const [name, ok] of checks) lines.push(`| ${cell(name)} | ${ok ? '✅ pass' : '❌ fail'} |`)
    lines.push('')
  }
  lines.push(embed(record))
  return lines.join('\n')
}

function issueBody(label: string): string {
  return [
    'This issue is the record of the restore drills of this repository’s OmniAI database, kept by the OmniAI Backups action.',
    '',
    'Each drill adds a comment: when it ran, the backup it restored and that backup’s age, the size of the restored database, how many backups were available, each check and its result, how long the restore took, whether the recovery key decrypted the backup, and a link to the workflow run. Workflow logs and artifacts expire; these comments stay.',
    '',
    '- **A failed drill reopens this issue** with the failed checks. Close it once the cause is fixed and a drill has passed again.',
    '- With `max-drill-age`, a workflow fails when the last passing drill recorded here is older than that many days.',
    `- The action finds this issue by its title and the \`${label}\` label: keep both. Each of its comments ends with the same facts as JSON in an HTML comment, which the action reads back. Records in comments by anyone other than the action, the repository's owner, its organisation's members and its collaborators are ignored.`,
    '',
    'For audits (for example SOC 2, ISO/IEC 27001 control A.8.13 “Information backup”), this issue is the log of restore tests and their results.',
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------
// The tracking issue
// ---------------------------------------------------------------------------------------------

const repoPath = (s: GitHubRepo) => `${s.apiUrl}/repos/${s.owner}/${s.repo}`

/** Recording needs `issues: write`; any refusal says so. */
const cannotWrite =
  (s: GitHubRepo): Refusal =>
  (status, message) =>
    status === 410
      ? `drill-evidence: issues are disabled in ${s.owner}/${s.repo} (410 ${message}). Fix: turn on Issues in the repository's settings, or set drill-evidence: none.`
      : `drill-evidence: the token cannot write issues in ${s.owner}/${s.repo} (${status} ${message}). Fix: give the job "permissions: issues: write", or set drill-evidence: none.`

/** The staleness gate needs `issues: read`. */
const cannotRead =
  (s: GitHubRepo): Refusal =>
  (status, message) =>
    status === 410
      ? `max-drill-age: issues are disabled in ${s.owner}/${s.repo} (410 ${message}), so there is no drill record to read. Fix: turn on Issues in the repository's settings, or remove max-drill-age.`
      : `max-drill-age: the token cannot read issues in ${s.owner}/${s.repo} (${status} ${message}). Fix: give the job "permissions: issues: read", or remove max-drill-age.`

/** Every page of a list, following `Link: rel="next"`. */
async function listAll<T>(url: string, s: GitHubRepo, log: Log, refusal: Refusal): Promise<T[]> {
  const all: T[] = []
  let next: string | null = url
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const res: { body: unknown; next: string | null } = await githubRequest(next, s, log, refusal)
    const items = Array.isArray(res.body) ? (res.body as T[]) : []
    all.push(...items)
    next = items.length ? res.next : null
  }
  return all
}

const sameTitle = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase()

/**
 * The oldest issue (not pull request) with the label and title. Oldest, so that a duplicate made
 * by hand, or by two first drills at once, never splits the record.
 */
async function findTrackingIssue(
  s: EvidenceSettings,
  log: Log,
  refusal: Refusal,
): Promise<RestIssue | null> {
  const title = s.title ?? DEFAULT_TITLE
  const label = s.label ?? DEFAULT_LABEL
  let next: string | null =
    `${repoPath(s)}/issues?labels=${encodeURIComponent(label)}&state=all&sort=created&direction=asc&per_page=${PER_PAGE}`
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const res: { body: unknown; next: string | null } = await githubRequest(next, s, log, refusal)
    const items = Array.isArray(res.body) ? (res.body as RestIssue[]) : []
    // The issues endpoint lists pull requests too; they carry a pull_request key.
    const found = items.find((i) => !i.pull_request && sameTitle(i.title, title))
    if (found) return found
    next = items.length ? res.next : null
  }
  return null
}

/**
 * A record counts only from a bot's comment (GITHUB_TOKEN writes as github-actions[bot]; an app
 * must be installed on the repository to comment) or from the repository's owner, its
 * organisation's members and its collaborators. Anyone can comment on a public repository's
 * issues, and a forged "passed" record must not satisfy max-drill-age.
 */
function trusted(c: RestComment): boolean {
  return (
    c.user?.type === 'Bot' ||
    ['OWNER', 'MEMBER', 'COLLABORATOR'].includes(c.author_association ?? '')
  )
}

/**
 * Appends the drill's record to the tracking issue, opening the issue on first use. A failed
 * drill reopens a closed issue; a passing one leaves its state to the team.
 */
export async function recordDrill(
  record: DrillRecord,
  settings: EvidenceSettings,
  log: Log,
): Promise<{ issueNumber: number; commentUrl: string; reopened: boolean; created: boolean }> {
  const refusal = cannotWrite(settings)
  const title = settings.title ?? DEFAULT_TITLE
  const label = settings.label ?? DEFAULT_LABEL
  let issue = await findTrackingIssue(settings, log, refusal)
  let created = false
  let reopened = false
  if (!issue) {
    const res = await githubRequest(`${repoPath(settings)}/issues`, settings, log, refusal, {
      method: 'POST',
      body: { title, body: issueBody(label), labels: [label] },
    })
    issue = res.body as RestIssue
    created = true
    log.info(`drill evidence: opened tracking issue #${issue.number} (${issue.html_url})`)
    const labels = (issue.labels ?? []).map((l) => (typeof l === 'string' ? l : l.name))
    if (!labels.some((l) => l?.toLowerCase() === label.toLowerCase())) {
      // GitHub drops the labels of a new issue, silently, when the token may not set them; the
      // next drill would not find this issue and would open another.
      log.warning(
        `drill-evidence: GitHub did not put the label "${label}" on issue #${issue.number}, so the next drill will not find it. Fix: add the label to issue #${issue.number} by hand.`,
      )
    }
  } else if (!record.ok && issue.state === 'closed') {
    await githubRequest(`${repoPath(settings)}/issues/${issue.number}`, settings, log, refusal, {
      method: 'PATCH',
      body: { state: 'open' },
    })
    reopened = true
    log.info(`drill evidence: reopened tracking issue #${issue.number}: the drill failed`)
  }
  const res = await githubRequest(
    `${repoPath(settings)}/issues/${issue.number}/comments`,
    settings,
    log,
    refusal,
    { method: 'POST', body: { body: renderDrillComment(record) } },
  )
  const commentUrl = (res.body as RestComment).html_url
  log.info(`drill evidence: recorded in ${commentUrl}`)
  return { issueNumber: issue.number, commentUrl, reopened, created }
}

export interface DrillHistory {
  /** The tracking issue, or null when no drill has been recorded yet. */
  issueNumber: number | null
  /** The newest passing drill on record. */
  last: { date: string; run: string | null; issueNumber: number } | null
  /** Drill records read (passed and failed). */
  records: number
}

/** The tracking issue's drill records, read back for the staleness gate. */
export async function drillHistory(settings: EvidenceSettings, log: Log): Promise<DrillHistory> {
  const refusal = cannotRead(settings)
  const issue = await findTrackingIssue(settings, log, refusal)
  if (!issue) return { issueNumber: null, last: null, records: 0 }
  const comments = await listAll<RestComment>(
    `${repoPath(settings)}/issues/${issue.number}/comments?per_page=${PER_PAGE}`,
    settings,
    log,
    refusal,
  )
  let last: DrillHistory['last'] = null
  let records = 0
  // Oldest first, so the last passing record seen is the newest.
  for (const c of comments) {
    const r = trusted(c) ? parseDrillComment(c.body ?? '') : null
    if (!r) continue
    records++
    if (r.ok) last = { date: r.date, run: r.run ?? null, issueNumber: issue.number }
  }
  return { issueNumber: issue.number, last, records }
}

/** The newest passing drill on record, or null. */
export async function lastSuccessfulDrill(
  settings: EvidenceSettings,
  log: Log,
): Promise<{ date: string; run: string | null; issueNumber: number } | null> {
  return (await drillHistory(settings, log)).last
}

/**
 * The staleness gate: fails when no passing drill is on record, or the last one is more than
 * `maxDays` days before `now`. `issueNumber` says where the record was looked for.
 */
export function checkDrillAge(
  last: { date: string } | null,
  maxDays: number,
  now: Date,
  issueNumber: number | null = null,
): Check {
  const name = 'drill-age'
  if (!last) {
    const where =
      issueNumber === null ? ' (no drill has been recorded yet)' : ` in issue #${issueNumber}`
    return {
      name,
      ok: false,
      detail: `no successful drill on record${where}: run the drill workflow`,
    }
  }
  const t = Date.parse(last.date)
  if (Number.isNaN(t))
    return {
      name,
      ok: false,
      detail: `last successful drill has an unreadable date "${last.date}"`,
    }
  const day = new Date(t).toISOString().slice(0, 10)
  const ageMs = Math.max(0, now.getTime() - t)
  const days = Math.floor(ageMs / DAY_MS)
  const ago = `${days} ${days === 1 ? 'day' : 'days'} ago`
  return ageMs > maxDays * DAY_MS
    ? {
        name,
        ok: false,
        detail: `last successful drill ${day} (${ago}), over max-drill-age ${maxDays} days: run the drill workflow`,
      }
    : {
        name,
        ok: true,
        detail: `last successful drill ${day} (${ago}), within max-drill-age ${maxDays} days`,
      }
}
