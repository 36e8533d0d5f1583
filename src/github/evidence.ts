/**
 * Drill evidence: each drill's record goes into a comment on a tracking issue that the action
 * opens on first use, so the record outlives the run (logs and artifacts expire) and anyone can
 * read it without tools, as an auditor asks ("show that restore drills run and pass"). A failed
 * drill reopens the issue, which notifies the people watching the repository, so a scheduled drill
 * cannot fail unnoticed. The staleness gate reads the records back.
 *
 * Each comment carries the record twice: as Markdown for people and, on its last line, as JSON in
 * an HTML comment (`<!-- omniai-drill-record {...} -->`) for the action, so reading it back never
 * scrapes prose.
 *
 * A passing record lets every pull request merge, so it must not be forgeable. A record counts only
 * when all of these hold:
 *
 * 1. It is the comment's last line, and the JSON fits a strict schema. Everything rendered above it
 *    (file names, check details that quote the database or a tool's output) is inline code with no
 *    line breaks, so it can neither add a record nor break the real one, nor render as HTML, links
 *    or @-mentions.
 * 2. The comment was written by the action's own identity, `drill-evidence-author`: the bot
 *    `github-actions[bot]` (user id 41898282 on github.com) for the job's GITHUB_TOKEN, or a GitHub
 *    App's `<slug>[bot]` for an app's token. No person counts, whatever their role, and no other
 *    bot. A token cannot be asked who it is (`GET /user` refuses installation tokens, `GET /app`
 *    needs the app's key), so the drill checks the author GitHub gives its own new comment and
 *    fails when it is not the configured one.
 * 3. The comment was never edited (`updated_at` equals `created_at`). The action never edits its
 *    comments, and any workflow of the repository writes as the same bot.
 * 4. The record's date is no later than the comment's `created_at` (GitHub's clock) plus
 *    CLOCK_SKEW_MS for the runner's clock.
 * 5. With `actions: read`: its workflow run is a run of this repository's code on the default
 *    branch that concluded `success`, or this very run, still in progress; and the comment was
 *    written while that run's latest attempt ran (so a record cannot borrow another run's success,
 *    and a re-run's outcome does not vouch for an earlier attempt). A run that is still going
 *    elsewhere proves nothing yet; one that failed or was cancelled does not count. Without the
 *    permission this proof is skipped, and the gate says so.
 */
import type { Check } from '../checks/checks.js'
import { formatSeconds } from '../checks/checks.js'
import type { RunnerContext } from '../options/context.js'
import { UserError } from '../util/errors.js'
import { githubRequest, type GitHubRepo, type Refusal } from './api.js'
import type { Log } from '../util/log.js'
import { bytes } from '../report/report.js'
import { code } from '../util/text.js'

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
  /** Null where the drill stopped before it listed the backups (older records: always a number). */
  backupCount: number | null
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
  /** The login the token writes comments as: only its comments hold records. */
  author?: string
  /** GITHUB_SERVER_URL, without a trailing slash: records link their run there. */
  serverUrl?: string
  /** GITHUB_RUN_ID: this run's own record counts while the run is still in progress. */
  runId?: number | null
}

export const DEFAULT_TITLE = 'OmniAI restore drills'
export const DEFAULT_LABEL = 'omniai-drill'
const MARKER = 'omniai-drill-record'
/** The record: the whole last line of the comment, and nothing else. */
const RECORD_LINE = new RegExp(`^<!-- ${MARKER} (\\{.*\\}) -->$`)
const PER_PAGE = 100
/** Past this many pages a list is cut rather than exhaust the rate limit (10,000 items). */
const MAX_PAGES = 100
const DAY_MS = 24 * 60 * 60 * 1000

/** GITHUB_TOKEN's identity: the GitHub Actions app's bot. */
export const DEFAULT_AUTHOR = 'github-actions[bot]'
/** github-actions[bot]'s user id on github.com (GitHub Enterprise Server numbers its own). */
export const GITHUB_ACTIONS_BOT_ID = 41898282
/** How far a record's date may be ahead of its comment's created_at: the runner's clock is not GitHub's. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000
/**
 * Passing records whose workflow run is looked up, newest first, before the gate gives up: enough
 * to see past a burst of records that do not hold up, few enough for the rate limit (1,000 an hour
 * for GITHUB_TOKEN).
 */
const MAX_RUN_LOOKUPS = 25
/** Free text in a record (a failed check's detail) is cut to this many characters... */
const MAX_TEXT = 500
/** ...and at most this many failed checks are listed, so a comment stays within GitHub's 65,536. */
const MAX_FAILED = 40

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
  user?: { login?: string; id?: number; type?: string } | null
  created_at?: string
  updated_at?: string
}

// ---------------------------------------------------------------------------------------------
// The comment
// ---------------------------------------------------------------------------------------------

/** A name shown as is when it is only letters, digits and hyphens; as inline code otherwise. */
const name = (s: string) => (/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(s) ? s : code(s))

/**
 * A table cell. A pipe ends a cell even inside inline code, so each one is escaped; GitHub shows
 * `\|` as `|`, in code too.
 */
const cell = (s: string) => s.replace(/\|/g, '\\|')

/** `2026-11-26 05:48:12 UTC`, or the text as inline code when it is not a date. */
function when(iso: string): string {
  const t = Date.parse(iso)
  return Number.isNaN(t)
    ? code(iso)
    : `${new Date(t)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, '')} UTC`
}

/** A link to the run when it is a plain https URL; its text is code, so nothing in it renders. */
function runLink(run: string | null): string {
  if (!run) return 'not recorded'
  return /^https:\/\/[A-Za-z0-9.-]+(?::\d+)?\/[A-Za-z0-9._~%/-]*$/.test(run)
    ? `[${code(run)}](${run})`
    : code(run)
}

/** The record as written: free text cut to size, so that the comment stays within GitHub's limit. */
function bounded(record: DrillRecord): DrillRecord {
  const cut = (s: string) => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s)
  const failed = record.failed.slice(0, MAX_FAILED).map(cut)
  if (record.failed.length > MAX_FAILED)
    failed.push(`… and ${record.failed.length - MAX_FAILED} more failed checks`)
  return {
    ...record,
    failed,
    checks: Object.fromEntries(Object.entries(record.checks).map(([k, ok]) => [cut(k), ok])),
    backup: record.backup && {
      file: cut(record.backup.file),
      sha256: cut(record.backup.sha256),
      createdAt: cut(record.backup.createdAt),
    },
  }
}

/**
 * The record's line. `<`, `>` and `&` are written as JSON escapes, so no value can end the HTML
 * comment early; JSON.parse reads them back unchanged.
 */
function embed(record: DrillRecord): string {
  const json = JSON.stringify(record).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
  return `<!-- ${MARKER} ${json} -->`
}

const RECORD_KEYS = [
  'date',
  'ok',
  'engine',
  'backup',
  'backupAgeSeconds',
  'restoreSeconds',
  'databaseBytes',
  'backupCount',
  'checks',
  'failed',
  'decrypted',
  'run',
] as const
/** The drill log's line carries this too, and records written before it was left out hold it. */
const OPTIONAL_KEYS = ['artifact']
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z$/

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= 2000
const isNumberOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v))

/** `v` when it is a drill record as the action writes one, exactly; null otherwise. */
function asDrillRecord(v: unknown): DrillRecord | null {
  if (!isObject(v)) return null
  const keys = Object.keys(v)
  if (
    !keys.every((k) => (RECORD_KEYS as readonly string[]).includes(k) || OPTIONAL_KEYS.includes(k))
  )
    return null
  if (!RECORD_KEYS.every((k) => k in v)) return null
  const { date, ok, engine, backup, backupCount, checks, failed, decrypted, run } = v
  const fine =
    typeof date === 'string' &&
    ISO_UTC.test(date) &&
    !Number.isNaN(Date.parse(date)) &&
    typeof ok === 'boolean' &&
    typeof engine === 'string' &&
    /^[a-z0-9-]{1,32}$/.test(engine) &&
    (backup === null ||
      (isObject(backup) &&
        Object.keys(backup).sort().join() === 'createdAt,file,sha256' &&
        isText(backup.file) &&
        isText(backup.sha256) &&
        isText(backup.createdAt))) &&
    isNumberOrNull(v.backupAgeSeconds) &&
    isNumberOrNull(v.restoreSeconds) &&
    isNumberOrNull(v.databaseBytes) &&
    (backupCount === null || (Number.isSafeInteger(backupCount) && (backupCount as number) >= 0)) &&
    isObject(checks) &&
    Object.entries(checks).every(([k, c]) => isText(k) && typeof c === 'boolean') &&
    Array.isArray(failed) &&
    failed.every(isText) &&
    (decrypted === null || typeof decrypted === 'boolean') &&
    (run === null || isText(run)) &&
    (v.artifact === undefined || v.artifact === null || isObject(v.artifact))
  if (!fine) return null
  // A pass with a failed check is not a record the action writes.
  if (ok && (failed.length > 0 || Object.values(checks).includes(false))) return null
  return v as unknown as DrillRecord
}

/**
 * The record on the comment's last line, or null (a person's comment, or not a record). Only the
 * last line is read: a record quoted anywhere above it is text, not a record.
 */
export function parseDrillComment(body: string): DrillRecord | null {
  const m = RECORD_LINE.exec(body.trimEnd().split(/\r?\n/).at(-1) ?? '')
  if (!m) return null
  try {
    return asDrillRecord(JSON.parse(m[1]!))
  } catch {
    return null
  }
}

/** The drill's comment: a heading that says pass or fail, the failed checks first, the facts. */
export function renderDrillComment(drill: DrillRecord): string {
  const record = bounded(drill)
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
  const facts: [string, string][] = [['Engine', name(record.engine)]]
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
  if (record.backupCount !== null) facts.push(['Backups available', String(record.backupCount)])
  facts.push([
    'Recovery key',
    record.decrypted === null
      ? 'not encrypted'
      : record.decrypted
        ? '✅ decrypted the backup'
        : '❌ did not decrypt the backup',
  ])
  facts.push(['Workflow run', runLink(record.run)])
  lines.push('| | |', '| --- | --- |', ...facts.map(([k, v]) => `| ${k} | ${cell(v)} |`), '')
  const checks = Object.entries(record.checks)
  if (checks.length) {
    lines.push('| Check | Result |', '| --- | --- |')
    for (const [check, ok] of checks)
      lines.push(`| ${cell(name(check))} | ${ok ? '✅ pass' : '❌ fail'} |`)
    lines.push('')
  }
  // Last, alone on its line: the only place a record is read from.
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
    `- The action finds this issue by its title and the \`${label}\` label: keep both. Each of its comments ends with the same facts as JSON in an HTML comment, which the action reads back.`,
    `- Only the action's own comments count, unedited: a record in a comment by anyone else (a person, whatever their role, or another bot), in an edited comment, or dated after its comment was written is ignored.`,
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

/**
 * GitHub refused the issues routes (403 or 404: the token may not; 410: Issues are turned off), as
 * opposed to any other failure. drill-evidence: auto turns only this into a warning.
 */
export class IssuesRefused extends UserError {}

/** Runs `fn` with `refusal`, and marks the UserError it throws for a refusal as IssuesRefused. */
async function marked<T>(refusal: Refusal, fn: (refusal: Refusal) => Promise<T>): Promise<T> {
  let refused = false
  try {
    return await fn((status, message) => {
      refused = true
      return refusal(status, message)
    })
  } catch (err) {
    if (refused && err instanceof UserError && !(err instanceof IssuesRefused))
      throw new IssuesRefused(err.message)
    throw err
  }
}

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

const same = (a: string | undefined, b: string) => (a ?? '').toLowerCase() === b.toLowerCase()

/**
 * Why a comment's record does not count (rules 2 to 4 of this module's comment), or null when it
 * does. GitHub sets a comment's author and times; the body is the only part its author chooses.
 */
function distrust(c: RestComment, record: DrillRecord, s: EvidenceSettings): string | null {
  const author = s.author ?? DEFAULT_AUTHOR
  const user = c.user
  if (!user?.login) return `its comment's author is a deleted account, not ${author}`
  if (user.type !== 'Bot' || !same(user.login, author))
    return `written by ${user.login}${user.type === 'Bot' ? '' : ` (${user.type ?? 'unknown type'})`}, not by ${author}`
  const onGitHubCom = (s.serverUrl ?? 'https://github.com') === 'https://github.com'
  if (same(author, DEFAULT_AUTHOR) && onGitHubCom && user.id !== GITHUB_ACTIONS_BOT_ID)
    return `written by a ${user.login} with user id ${user.id}, not ${GITHUB_ACTIONS_BOT_ID}`
  const created = Date.parse(c.created_at ?? '')
  if (Number.isNaN(created)) return 'its comment has no creation time'
  if (Date.parse(c.updated_at ?? '') !== created)
    return `its comment was edited (updated ${c.updated_at}, written ${c.created_at})`
  if (Date.parse(record.date) > created + CLOCK_SKEW_MS)
    return `dated ${record.date}, after its comment was written (${c.created_at})`
  return null
}

/**
 * Appends the drill's record to the tracking issue, opening the issue on first use. A failed
 * drill reopens a closed issue; a passing one leaves its state to the team. Fails when GitHub's
 * answer shows the record would not count (another author, a runner clock far ahead).
 */
export async function recordDrill(
  record: DrillRecord,
  settings: EvidenceSettings,
  log: Log,
): Promise<{ issueNumber: number; commentUrl: string; reopened: boolean; created: boolean }> {
  return marked(cannotWrite(settings), (refusal) => writeRecord(record, settings, log, refusal))
}

async function writeRecord(
  record: DrillRecord,
  settings: EvidenceSettings,
  log: Log,
  refusal: Refusal,
): Promise<{ issueNumber: number; commentUrl: string; reopened: boolean; created: boolean }> {
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
  const comment = res.body as RestComment
  log.info(`drill evidence: recorded in ${comment.html_url}`)
  const why = distrust(comment, bounded(record), settings)
  if (why) {
    const user = comment.user
    const fix =
      user?.type === 'Bot' && !same(user.login, settings.author ?? DEFAULT_AUTHOR)
        ? `set drill-evidence-author: ${user.login} (the identity this token writes as)`
        : user?.type !== 'Bot'
          ? `record drills with the job's GITHUB_TOKEN or a GitHub App's token: records written with a person's token do not count`
          : /^dated/.test(why)
            ? `set the runner's clock (NTP): it is ahead of GitHub's by more than ${CLOCK_SKEW_MS / 60_000} minutes`
            : "record drills with the job's GITHUB_TOKEN"
    throw new UserError(
      `drill-evidence: this drill's record (${comment.html_url}) would not count for max-drill-age: ${why}. Fix: ${fix}.`,
    )
  }
  return { issueNumber: issue.number, commentUrl: comment.html_url, reopened, created }
}

/** The last successful drill: when, its run, where it is recorded. */
export interface LastDrill {
  date: string
  run: string | null
  issueNumber: number
}

export interface DrillHistory {
  /** The tracking issue, or null when no drill has been recorded yet. */
  issueNumber: number | null
  /** The newest passing drill that counts. */
  last: LastDrill | null
  /** Records by the action's identity, unedited and dated within their comment (passed and failed). */
  records: number
  /** Records that do not count, each as `comment URL: why`. */
  ignored: string[]
  /**
   * Whether `last`'s workflow run was checked: 'skipped' when the token may not read Actions,
   * null when there was no passing record to check.
   */
  runProof: 'checked' | 'skipped' | null
}

/** What a workflow run says (`GET /repos/{owner}/{repo}/actions/runs/{run_id}`), the fields read here. */
interface RestRun {
  id?: number
  status?: string | null
  conclusion?: string | null
  head_branch?: string | null
  /** When its latest attempt started, and last changed (for a completed run: when it ended). */
  run_started_at?: string
  updated_at?: string
  repository?: { id?: number } | null
  head_repository?: { id?: number } | null
}

/** The run id in a record's run URL, when it is a run of this repository; null otherwise. */
function runIdOf(run: string | null, s: EvidenceSettings): number | null {
  if (!run) return null
  const base = `${s.serverUrl ?? 'https://github.com'}/${s.owner}/${s.repo}/actions/runs/`
  if (!same(run.slice(0, base.length), base)) return null
  const m = /^(\d{1,19})(?:\/attempts\/\d{1,5})?$/.exec(run.slice(base.length))
  return m ? Number(m[1]) : null
}

const SKIPPED = Symbol('skipped')

/**
 * Rule 5: why the record's workflow run does not back it, null when it does, or SKIPPED when the
 * token may not read Actions. `cache` keeps the default branch between records.
 */
async function disproveRun(
  record: DrillRecord,
  written: string,
  s: EvidenceSettings,
  log: Log,
  cache: { defaultBranch?: string },
): Promise<string | null | typeof SKIPPED> {
  const id = runIdOf(record.run, s)
  if (id === null)
    return `its run (${record.run ?? 'none recorded'}) is not a workflow run of ${s.owner}/${s.repo}`
  const refusal: Refusal = (status, message) =>
    `max-drill-age: cannot read ${s.owner}/${s.repo} (${status} ${message}).`
  const res = await githubRequest(`${repoPath(s)}/actions/runs/${id}`, s, log, refusal, {
    handle: [403, 404],
  })
  if (res.status === 403) {
    log.info(
      `max-drill-age: the token cannot read Actions in ${s.owner}/${s.repo} (403 ${(res.body as { message: string }).message}), so the workflow runs behind the drill records were not checked. Give the job "permissions: actions: read" for that proof.`,
    )
    return SKIPPED
  }
  if (res.status === 404) return `its run ${id} does not exist in ${s.owner}/${s.repo}`
  const run = res.body as RestRun
  if (cache.defaultBranch === undefined) {
    const repo = await githubRequest(repoPath(s), s, log, refusal)
    cache.defaultBranch = String((repo.body as { default_branch?: unknown }).default_branch ?? '')
  }
  if (run.head_repository?.id === undefined || run.head_repository.id !== run.repository?.id)
    return `its run ${id} ran another repository's code (a fork's pull request)`
  if (run.head_branch !== cache.defaultBranch)
    return `its run ${id} ran branch "${run.head_branch ?? ''}", not the default branch "${cache.defaultBranch}"`
  // The record names its run, but whoever writes a comment chooses that link: the comment must
  // have been written while the run's latest attempt ran (GitHub's clock on both sides). This
  // also drops the record of an attempt that was re-run.
  const at = Date.parse(written)
  const started = Date.parse(run.run_started_at ?? '')
  if (!(at >= started))
    return `its comment was written (${written}) before its run ${id}'s latest attempt started (${run.run_started_at})`
  if (run.status === 'completed' && !(at <= Date.parse(run.updated_at ?? '')))
    return `its comment was written (${written}) after its run ${id} ended (${run.updated_at})`
  if (run.status !== 'completed')
    return id === s.runId
      ? null
      : `its run ${id} is still ${run.status ?? 'running'}, so its outcome is not known yet`
  if (run.conclusion !== 'success')
    return `its run ${id} ended ${run.conclusion ?? 'without a conclusion'}`
  return null
}

/** The tracking issue's drill records that count, read back for the staleness gate. */
export async function drillHistory(settings: EvidenceSettings, log: Log): Promise<DrillHistory> {
  return marked(cannotRead(settings), (refusal) => readHistory(settings, log, refusal))
}

async function readHistory(
  settings: EvidenceSettings,
  log: Log,
  refusal: Refusal,
): Promise<DrillHistory> {
  const issue = await findTrackingIssue(settings, log, refusal)
  if (!issue) return { issueNumber: null, last: null, records: 0, ignored: [], runProof: null }
  const comments = await listAll<RestComment>(
    `${repoPath(settings)}/issues/${issue.number}/comments?per_page=${PER_PAGE}`,
    settings,
    log,
    refusal,
  )
  const ignored: string[] = []
  const passing: { record: DrillRecord; url: string; written: string }[] = []
  let records = 0
  for (const c of comments) {
    const record = parseDrillComment(c.body ?? '')
    if (!record) continue
    const why = distrust(c, record, settings)
    if (why) {
      ignored.push(`${c.html_url}: ${why}`)
      continue
    }
    records++
    if (record.ok) passing.push({ record, url: c.html_url, written: c.created_at! })
  }
  // Comments are listed oldest first: try the newest passing record first.
  passing.reverse()
  let last: DrillHistory['last'] = null
  let runProof: DrillHistory['runProof'] = null
  const cache = {}
  for (const [i, p] of passing.entries()) {
    if (i === MAX_RUN_LOOKUPS) {
      ignored.push(
        `${passing.length - i} older passing records: not looked at after ${MAX_RUN_LOOKUPS} whose runs did not back them`,
      )
      break
    }
    const why = await disproveRun(p.record, p.written, settings, log, cache)
    if (why === SKIPPED) {
      // No run can be read: the newest passing record counts on rules 1 to 4 alone.
      const newest = passing[0]!.record
      last = { date: newest.date, run: newest.run, issueNumber: issue.number }
      runProof = 'skipped'
      break
    }
    if (why) {
      ignored.push(`${p.url}: ${why}`)
      continue
    }
    last = { date: p.record.date, run: p.record.run, issueNumber: issue.number }
    runProof = 'checked'
    break
  }
  if (ignored.length) {
    log.info(
      `drill evidence: ${ignored.length} drill record(s) in issue #${issue.number} do not count:`,
    )
    for (const line of ignored.slice(0, 20)) log.info(`  ${line}`)
    if (ignored.length > 20) log.info(`  … and ${ignored.length - 20} more`)
  }
  return { issueNumber: issue.number, last, records, ignored, runProof }
}

/** The newest passing drill that counts, or null. */
export async function lastSuccessfulDrill(
  settings: EvidenceSettings,
  log: Log,
): Promise<LastDrill | null> {
  return (await drillHistory(settings, log)).last
}

/**
 * Where the evidence lives, from the run's environment (read once, by the caller's mode):
 * the repository, the API and server URLs, and this run's id.
 */
export function evidenceSettings(
  options: { token: string; title: string; author: string },
  runner: RunnerContext,
): EvidenceSettings {
  if (!options.token) {
    throw new UserError(
      'github-token: empty. Fix: leave github-token at its default (${{ github.token }}), or pass a token with issues: write (drill-evidence) or issues: read (max-drill-age).',
    )
  }
  if (!runner.repository) {
    throw new UserError(
      'drill-evidence: GITHUB_REPOSITORY is not set, so this is not a GitHub Actions run. Fix: set drill-evidence: none outside Actions (the drill log keeps the record).',
    )
  }
  return {
    token: options.token,
    ...runner.repository,
    apiUrl: runner.apiUrl,
    serverUrl: runner.serverUrl,
    runId: runner.runId,
    title: options.title,
    author: options.author,
  }
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
