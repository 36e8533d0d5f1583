/**
 * Drill evidence on a tracking issue, against the local stand-in for GitHub's REST API (see
 * __tests__/data/github/README.md): the first drill opens the issue, later drills comment on it, a
 * failed drill reopens it, the staleness gate reads the records back across pages, and refusals
 * and rate limits end in messages that say what to do.
 */
import { readRunnerContext } from '../src/options/context.js'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { Log } from '../src/util/log.js'
import { startGitHubStandIn, type StandInUser, type StoredWorkflowRun } from './github-standin.js'

// As artifacts.test.ts: the stand-in's environment first, then the code under test.
const s = await startGitHubStandIn()
const saved = { ...process.env }
Object.assign(process.env, s.env)
const evidence = await import('../src/github/evidence.js')
const { UserError } = await import('../src/util/errors.js')
const { githubRequest } = await import('../src/github/api.js')
const github = await import('@actions/github')
type DrillRecord = import('../src/github/evidence.js').DrillRecord

afterAll(async () => {
  process.env = saved
  await s.close()
})

beforeEach(() => {
  s.issues.length = 0
  s.requests.length = 0
  s.issueSettings.disabled = false
  s.issueSettings.dropLabels = false
  s.repoSettings.defaultBranch = 'main'
  Object.assign(s.permissions, { actions: 'write', issues: 'write', metadata: 'read' })
  s.workflowRuns.length = 0
  s.addWorkflowRun({ id: s.runId, status: 'in_progress', event: 'workflow_dispatch' })
})

/** This file needs no database, so it keeps its own small log rather than load helpers.ts. */
function memoryLog(): Log & { lines: string[]; warnings: string[] } {
  const lines: string[] = []
  const warnings: string[] = []
  return {
    lines,
    warnings,
    info: (m) => void lines.push(m),
    warning: (m) => void warnings.push(m),
    group: (_name, fn) => fn(),
  }
}

// As the modes build them: from the run's environment (the stand-in's).
const settings = evidence.evidenceSettings(
  { token: s.token, title: 'OmniAI restore drills', author: 'github-actions[bot]' },
  readRunnerContext(s.env),
)
const TITLE = 'OmniAI restore drills'
const LABEL = 'omniai-drill'
const DAY = 86_400_000
const member: StandInUser = { login: 'alice', id: 5_001, type: 'User' }
const outsider: StandInUser = { login: 'mallory', id: 6_666, type: 'User' }
const dependabot: StandInUser = { login: 'dependabot[bot]', id: 49_699_333, type: 'Bot' }
/** The run URL a drill records, for a run of the stand-in's repository. */
const runUrl = (id: number) => `https://github.com/${s.owner}/${s.repo}/actions/runs/${id}`
/**
 * A finished drill run (success on the default branch unless told otherwise) that ran from ten
 * minutes before `at` to ten minutes after, and its URL.
 */
const pastRun = (over: Partial<StoredWorkflowRun> = {}, at = new Date()) =>
  runUrl(
    s.addWorkflowRun({
      createdAt: new Date(at.getTime() - 10 * 60_000),
      updatedAt: new Date(at.getTime() + 10 * 60_000),
      ...over,
    }).id,
  )

const CHECKS = ['checksum', 'integrity', 'schema', 'spot-check', 'audit-log']

function drill(over: Partial<DrillRecord> = {}): DrillRecord {
  const failed = over.failed ?? []
  return {
    date: new Date().toISOString(),
    ok: failed.length === 0,
    engine: 'sqlite',
    backup: {
      file: 'omniai-20261126T030000Z.db.zst.age',
      sha256: 'ab'.repeat(32),
      createdAt: '2026-11-26T03:00:00.000Z',
    },
    backupAgeSeconds: 2 * 3600 + 15 * 60,
    restoreSeconds: 1.37,
    databaseBytes: 5 * 1024 * 1024,
    backupCount: 14,
    checks: Object.fromEntries(CHECKS.map((c) => [c, !failed.includes(c)])),
    failed,
    decrypted: true,
    run: `https://github.com/${s.owner}/${s.repo}/actions/runs/${s.runId}`,
    ...over,
  }
}

const paths = () =>
  s.requests.map((r) => `${r.method} ${r.path.replace(/^\/repos\/[^/]+\/[^/]+/, '')}`)

describe('recording a drill on the tracking issue', () => {
  it('the first drill opens the tracking issue, labelled, and records the drill in a comment', async () => {
    const log = memoryLog()
    const r = await evidence.recordDrill(drill(), settings, log)
    expect(r).toMatchObject({ issueNumber: 1, created: true, reopened: false })
    expect(s.issues).toHaveLength(1)
    const issue = s.issues[0]!
    expect(issue).toMatchObject({
      title: TITLE,
      labels: [LABEL],
      state: 'open',
      pullRequest: false,
    })
    expect(issue.user).toEqual(s.actor)
    expect(issue.body).toMatch(/A failed drill reopens this issue/)
    expect(issue.body).toMatch(/max-drill-age/)
    expect(issue.comments).toHaveLength(1)
    const c = issue.comments[0]!
    expect(r.commentUrl).toBe(
      `https://github.com/${s.owner}/${s.repo}/issues/1#issuecomment-${c.id}`,
    )
    expect(c.body).toMatch(/^## ✅ Restore drill passed: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m)
    expect(paths()).toEqual([
      `GET /issues?labels=${LABEL}&state=all&sort=created&direction=asc&per_page=100`,
      'POST /issues',
      'POST /issues/1/comments',
    ])
    expect(log.warnings).toEqual([])
  })

  it('the second drill comments on the same issue', async () => {
    const first = await evidence.recordDrill(drill(), settings, memoryLog())
    const second = await evidence.recordDrill(drill(), settings, memoryLog())
    expect(second).toMatchObject({
      issueNumber: first.issueNumber,
      created: false,
      reopened: false,
    })
    expect(s.issues).toHaveLength(1)
    expect(s.issues[0]!.comments).toHaveLength(2)
    expect(second.commentUrl).not.toBe(first.commentUrl)
  })

  it('finds the oldest labelled issue with the title, on the second page, passing over pull requests and other titles', async () => {
    // Page 1 (100 a page, oldest first): a pull request with the same title and label, then
    // labelled issues with other titles. The tracking issue and a newer duplicate are on page 2.
    const t0 = Date.now() - 400 * DAY
    s.addIssue({ title: TITLE, labels: [LABEL], pullRequest: true, createdAt: new Date(t0) })
    for (let i = 1; i < 100; i++)
      s.addIssue({ title: `Drill notes ${i}`, labels: [LABEL], createdAt: new Date(t0 + i * DAY) })
    s.addIssue({ title: TITLE, labels: ['other'], createdAt: new Date(t0 + 100 * DAY) })
    const tracking = s.addIssue({
      title: TITLE,
      labels: [LABEL],
      state: 'closed',
      createdAt: new Date(t0 + 101 * DAY),
    })
    s.addIssue({ title: TITLE, labels: [LABEL], createdAt: new Date(t0 + 102 * DAY) })

    const r = await evidence.recordDrill(drill(), settings, memoryLog())
    expect(r).toMatchObject({ issueNumber: tracking.number, created: false, reopened: false })
    // A passing drill leaves the state to the team.
    expect(tracking.state).toBe('closed')
    expect(tracking.comments).toHaveLength(1)
    expect(paths().filter((p) => p.startsWith('GET'))).toHaveLength(2)
    expect(paths()).not.toContain(`PATCH /issues/${tracking.number}`)
  })

  it('a failed drill reopens the closed tracking issue, and its comment leads with the failed checks', async () => {
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL], state: 'closed' })
    const r = await evidence.recordDrill(
      drill({ failed: ['checksum', 'schema'], decrypted: false }),
      settings,
      memoryLog(),
    )
    expect(r).toMatchObject({ issueNumber: tracking.number, created: false, reopened: true })
    expect(tracking).toMatchObject({ state: 'open', stateReason: 'reopened', closedAt: null })
    expect(paths()).toContain(`PATCH /issues/${tracking.number}`)
    const body = tracking.comments.at(-1)!.body
    const lines = body.split('\n')
    expect(lines[0]).toMatch(/^## ❌ Restore drill FAILED: /)
    expect(lines[2]).toMatch(/^\*\*Failed checks: `checksum`, `schema`\.\*\* /)
    expect(body).toContain('| checksum | ❌ fail |')
    expect(body).toContain('| integrity | ✅ pass |')
    expect(body).toContain('| Recovery key | ❌ did not decrypt the backup |')
    expect(evidence.parseDrillComment(body)).toMatchObject({
      ok: false,
      failed: ['checksum', 'schema'],
    })
  })

  it('a failed first drill opens the issue (open, so the team sees it)', async () => {
    const r = await evidence.recordDrill(drill({ failed: ['integrity'] }), settings, memoryLog())
    expect(r).toMatchObject({ created: true, reopened: false })
    expect(s.issues[0]!.state).toBe('open')
    expect(s.issues[0]!.comments[0]!.body).toMatch(/Failed checks: `integrity`/)
  })

  it('the comment is readable without tools, and carries the same record for the action', async () => {
    const record = drill()
    const body = evidence.renderDrillComment(record)
    for (const row of [
      '| Engine | sqlite |',
      '| Backup | `omniai-20261126T030000Z.db.zst.age` |',
      `| SHA-256 | \`${'ab'.repeat(32)}\` |`,
      '| Taken at | 2026-11-26 03:00:00 UTC |',
      '| Backup age (RPO) |',
      '| Restore time (RTO) | 1.37 s |',
      '| Restored database | 5.00 MiB |',
      '| Backups available | 14 |',
      '| Recovery key | ✅ decrypted the backup |',
      `| Workflow run | [\`${record.run}\`](${record.run}) |`,
      '| audit-log | ✅ pass |',
    ])
      expect(body).toContain(row)
    expect(body).not.toMatch(/Failed checks/)
    expect(body.trimEnd().split('\n').at(-1)).toMatch(/^<!-- omniai-drill-record \{.*\} -->$/)
    expect(evidence.parseDrillComment(body)).toEqual(record)

    // A file name cannot end the HTML comment early or break the table.
    const odd = drill({ backup: { file: 'a-->b|c`d.db', sha256: 'x', createdAt: 'x' } })
    const oddBody = evidence.renderDrillComment(odd)
    const embedded = oddBody.trimEnd().split('\n').at(-1)!
    expect(embedded).toMatch(/^<!-- omniai-drill-record \{[^>]*\} -->$/)
    expect(oddBody).toContain('| Backup | ``a-->b\\|c`d.db`` |')
    expect(oddBody).toContain('| Taken at | `x` |')
    expect(evidence.parseDrillComment(oddBody)).toEqual(odd)

    const plain = evidence.renderDrillComment(drill({ decrypted: null, run: null, backup: null }))
    expect(plain).toContain('| Recovery key | not encrypted |')
    expect(plain).toContain('| Workflow run | not recorded |')
    expect(plain).toContain('| Backup | none found |')
  })

  it('the token appears in no issue, comment, log line or request path', async () => {
    const log = memoryLog()
    await evidence.recordDrill(drill(), settings, log)
    await evidence.recordDrill(drill({ failed: ['checksum'] }), settings, log)
    s.fail(/\/issues\/\d+\/comments$/, '403-permission', 1, { method: 'POST' })
    const err = await evidence.recordDrill(drill(), settings, log).catch((e: Error) => e)
    expect(err).toBeInstanceOf(UserError)
    const everything = [
      ...s.issues.flatMap((i) => [i.title, i.body ?? '', ...i.comments.map((c) => c.body)]),
      ...log.lines,
      ...log.warnings,
      (err as Error).message,
      ...s.requests.map((r) => r.path),
    ].join('\n')
    expect(everything).toContain('Restore drill') // the haystack is the real one
    expect(everything).not.toContain(s.token)
    expect(everything).not.toContain(s.token.slice(4, 20))
  })
})

describe('reading the record back (the staleness gate)', () => {
  it('finds the newest passing record across two pages of comments, skipping failed drills', async () => {
    const t0 = Date.now() - 200 * DAY
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL], createdAt: new Date(t0) })
    const at = (i: number) => new Date(t0 + i * DAY).toISOString()
    // 130 drills, oldest first: page 1 (100) is all passes; on page 2 the newest pass is #119,
    // followed by ten failed drills. Each comment is written a minute after its drill.
    const runs: string[] = []
    for (let i = 0; i < 130; i++) {
      const failed = i >= 120 ? ['integrity'] : []
      runs.push(
        pastRun({
          createdAt: new Date(t0 + i * DAY),
          conclusion: failed.length ? 'failure' : 'success',
        }),
      )
      s.addComment(tracking.number, {
        body: evidence.renderDrillComment(drill({ date: at(i), failed, run: runs[i]! })),
        createdAt: new Date(t0 + i * DAY + 60_000),
      })
    }
    const log = memoryLog()
    const last = await evidence.lastSuccessfulDrill(settings, log)
    expect(last).toEqual({ date: at(119), run: runs[119], issueNumber: tracking.number })
    const commentPages = paths().filter((p) => p.includes('/comments'))
    expect(commentPages).toEqual([
      `GET /issues/${tracking.number}/comments?per_page=100`,
      `GET /repositories/${s.repositoryId}/issues/${tracking.number}/comments?per_page=100&page=2`,
    ])
    // One run looked up (the newest pass's), and the repository itself once (its default branch).
    expect(paths().filter((p) => !p.includes('/issues'))).toEqual([
      `GET /actions/runs/${runs[119]!.split('/').at(-1)}`,
      'GET ',
    ])
    const history = await evidence.drillHistory(settings, log)
    expect(history).toMatchObject({
      issueNumber: tracking.number,
      records: 130,
      ignored: [],
      runProof: 'checked',
    })
  })

  it('ignores comments without a record, and records by anyone but the action: outsiders, members, collaborators, the owner', async () => {
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    const older = new Date(Date.now() - 30 * DAY).toISOString()
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ date: older, run: pastRun() })),
    })
    // A maintainer's note, a broken record, and forged passes by people of every standing, each
    // a genuine comment of the action copied word for word.
    s.addComment(tracking.number, {
      body: 'Closed after fixing the key rotation. The next drill should pass.',
      user: member,
      authorAssociation: 'MEMBER',
    })
    s.addComment(tracking.number, {
      body: '<!-- omniai-drill-record {"ok": true, "date": -->',
      user: member,
      authorAssociation: 'MEMBER',
    })
    const forged = evidence.renderDrillComment(
      drill({ date: new Date().toISOString(), run: pastRun() }),
    )
    for (const [user, authorAssociation] of [
      [outsider, 'NONE'],
      [member, 'MEMBER'],
      [member, 'COLLABORATOR'],
      [{ login: s.owner, id: 1_000, type: 'User' }, 'OWNER'],
    ] as const)
      s.addComment(tracking.number, { body: forged, user, authorAssociation })
    const log = memoryLog()
    const history = await evidence.drillHistory(settings, log)
    expect(history.last?.date).toBe(older)
    expect(history.records).toBe(1)
    expect(history.ignored).toHaveLength(4)
    expect(history.ignored[0]).toMatch(
      /#issuecomment-\d+: written by mallory \(User\), not by github-actions\[bot\]$/,
    )
    expect(log.lines).toContain(
      `drill evidence: 4 drill record(s) in issue #${tracking.number} do not count:`,
    )
  })

  it('no tracking issue, or one without a passing drill, is no record', async () => {
    expect(await evidence.drillHistory(settings, memoryLog())).toEqual({
      issueNumber: null,
      last: null,
      records: 0,
      ignored: [],
      runProof: null,
    })
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ failed: ['schema'] })),
    })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toEqual({
      issueNumber: tracking.number,
      last: null,
      records: 1,
      ignored: [],
      runProof: null,
    })
    expect(evidence.checkDrillAge(history.last, 30, new Date(), history.issueNumber)).toEqual({
      name: 'drill-age',
      ok: false,
      detail: `no successful drill on record in issue #${tracking.number}: run the drill workflow`,
    })
  })
})

describe('forged records do not count (each attempt beside the genuine record that does)', () => {
  /** The tracking issue with one genuine passing record of the action, 20 days old. */
  function withGenuine() {
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    const genuine = new Date(Date.now() - 20 * DAY)
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(
        drill({ date: genuine.toISOString(), run: pastRun({}, genuine) }),
      ),
      createdAt: new Date(genuine.getTime() + 60_000),
    })
    return { tracking, genuine: genuine.toISOString() }
  }
  const fresh = () => drill({ date: new Date(Date.now() - 60_000).toISOString(), run: pastRun() })

  it("a member's comment with a valid-looking record: not a record", async () => {
    const { tracking, genuine } = withGenuine()
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(fresh()),
      user: member,
      authorAssociation: 'MEMBER',
    })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toMatchObject({ records: 1, last: { date: genuine } })
    expect(history.ignored).toEqual([
      expect.stringMatching(/: written by alice \(User\), not by github-actions\[bot\]$/),
    ])
    // Positive control: the same comment by the action counts.
    s.addComment(tracking.number, { body: evidence.renderDrillComment(fresh()) })
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).not.toBe(genuine)
  })

  it("another bot's comment (dependabot[bot]), or a github-actions[bot] with another user id: not a record", async () => {
    const { tracking, genuine } = withGenuine()
    s.addComment(tracking.number, { body: evidence.renderDrillComment(fresh()), user: dependabot })
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(fresh()),
      user: { login: 'github-actions[bot]', id: 1234, type: 'Bot' },
    })
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(fresh()),
      user: { login: 'github-actions', id: 5_002, type: 'User' },
    })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toMatchObject({ records: 1, last: { date: genuine } })
    expect(history.ignored.map((l) => l.replace(/^\S+: /, ''))).toEqual([
      'written by dependabot[bot], not by github-actions[bot]',
      'written by a github-actions[bot] with user id 1234, not 41898282',
      'written by github-actions (User), not by github-actions[bot]',
    ])
    // Positive control: github-actions[bot] itself (id 41898282, the stand-in's token).
    const own = fresh()
    s.addComment(tracking.number, { body: evidence.renderDrillComment(own), user: s.actor })
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).toBe(own.date)
  })

  it('a file, table or check named like the record adds no record and does not break the real one', async () => {
    const forgedJson = JSON.stringify(
      drill({
        date: new Date().toISOString(),
        backup: null,
        run: null,
        checks: { checksum: true },
      }),
    )
    const marker = `<!-- omniai-drill-record ${forgedJson} -->`
    // A failed drill whose every free-text field is attacker-chosen: the backup file's name, a
    // table named in a check's detail, a check's name and a tool's output (with line breaks).
    const hostile = drill({
      backup: { file: marker, sha256: `x\n${marker}`, createdAt: marker },
      failed: [`schema: table "${marker}"`, `pytest: ${'`'.repeat(3)}|\n${marker}`],
      checks: { [marker]: false, schema: false, 'security-gate': false },
      run: `${marker} @here #1`,
      engine: 'postgres',
    })
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    await evidence.recordDrill(hostile, settings, memoryLog())
    const body = tracking.comments[0]!.body
    const lines = body.split('\n')
    // One record line, the last. Elsewhere the marker is only ever inside inline code, and every
    // table row keeps its two cells (three pipes once the escaped ones are set aside).
    expect(lines.filter((l) => l.startsWith('<!--'))).toEqual([lines.at(-1)])
    const outsideCode = (l: string) => l.replace(/(`+)(?!`)(.*?[^`])\1(?!`)/g, '')
    for (const l of lines.slice(0, -1)) expect(outsideCode(l)).not.toContain('<!--')
    for (const row of lines.filter((l) => l.startsWith('|')))
      expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(4)
    expect(body).toContain(`| Backup | \`${marker.replace(/\|/g, '\\|')}\` |`)
    expect(body).toContain(`| Workflow run | \`${marker} @here #1\` |`)
    // It reads back as the failed drill it is, the hostile text intact.
    expect(evidence.parseDrillComment(body)).toEqual(hostile)
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toMatchObject({ records: 1, last: null, ignored: [] })
    // A person cannot do better by posting the marker as a comment's last line.
    s.addComment(tracking.number, { body: marker, user: member, authorAssociation: 'OWNER' })
    expect((await evidence.drillHistory(settings, memoryLog())).last).toBeNull()
    // Positive control: the same drill, passing, counts.
    const good = drill({ date: new Date().toISOString(), backup: hostile.backup, run: pastRun() })
    await evidence.recordDrill(good, settings, memoryLog())
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).toBe(good.date)
  })

  it('a record quoted above a real one, or followed by text, is not read', () => {
    const genuine = evidence.renderDrillComment(drill())
    expect(evidence.parseDrillComment(`${genuine}\nThanks!`)).toBeNull()
    expect(evidence.parseDrillComment(`${genuine}\n\n`)).toEqual(
      drill({ date: expect.any(String) }),
    )
    // The schema is strict: a key too many, a pass with a failed check, a date that is not one.
    const json = (over: Record<string, unknown>) =>
      `<!-- omniai-drill-record ${JSON.stringify({ ...drill(), ...over })} -->`
    expect(evidence.parseDrillComment(json({}))).not.toBeNull()
    expect(evidence.parseDrillComment(json({ trusted: true }))).toBeNull()
    expect(evidence.parseDrillComment(json({ checks: { checksum: false } }))).toBeNull()
    expect(evidence.parseDrillComment(json({ date: 'yesterday' }))).toBeNull()
    expect(evidence.parseDrillComment(json({ date: '2999-01-01T00:00:00Z' }))).not.toBeNull()
  })

  it('a record dated after its comment was written: not a record', async () => {
    const { tracking, genuine } = withGenuine()
    const written = new Date(Date.now() - 10 * DAY)
    // Written ten days ago, claiming a drill today (and one from next year).
    for (const date of [new Date(), new Date(Date.now() + 365 * DAY)])
      s.addComment(tracking.number, {
        body: evidence.renderDrillComment(drill({ date: date.toISOString(), run: pastRun() })),
        createdAt: written,
      })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toMatchObject({ records: 1, last: { date: genuine } })
    expect(history.ignored[0]).toMatch(/: dated \S+, after its comment was written \(\S+\)$/)
    // Positive control: within the clock skew allowed (the runner's clock a little ahead).
    const ahead = new Date(written.getTime() + evidence.CLOCK_SKEW_MS - 1000).toISOString()
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ date: ahead, run: pastRun({}, written) })),
      createdAt: written,
    })
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).toBe(ahead)
  })

  it("an edited comment of the action's (any workflow writes as the same bot): not a record", async () => {
    const { tracking, genuine } = withGenuine()
    await evidence.recordDrill(drill({ failed: ['schema'] }), settings, memoryLog())
    const c = tracking.comments.at(-1)!
    // Someone's workflow turns the failed drill into a pass, a second later.
    await new Promise((r) => setTimeout(r, 1100))
    const res = await fetch(`${s.url}/repos/${s.owner}/${s.repo}/issues/comments/${c.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${s.token}` },
      body: JSON.stringify({ body: evidence.renderDrillComment(fresh()) }),
    })
    expect(res.status).toBe(200)
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toMatchObject({ records: 1, last: { date: genuine } })
    expect(history.ignored[0]).toMatch(/: its comment was edited \(updated \S+, written \S+\)$/)
  })

  it('with actions: read, a record counts only when its run succeeded on the default branch (or is this run)', async () => {
    const { tracking, genuine } = withGenuine()
    const forks = { id: 999_999, fullName: 'mallory/omniai-backups' }
    const attempts: [string, string][] = [
      [pastRun({ conclusion: 'failure' }), 'ended failure'],
      [pastRun({ conclusion: 'cancelled' }), 'ended cancelled'],
      [
        pastRun({ headBranch: 'try-drill' }),
        'ran branch "try-drill", not the default branch "main"',
      ],
      [pastRun({ headRepository: forks }), "ran another repository's code (a fork's pull request)"],
      [pastRun({ status: 'in_progress' }), 'is still in_progress, so its outcome is not known yet'],
      // A successful run that was over before the comment was written: the link is borrowed.
      [pastRun({}, new Date(Date.now() - 2 * DAY)), 'after its run'],
      // Re-run: the attempt that succeeded started after the comment; an earlier attempt wrote it.
      [
        pastRun({ runAttempt: 2, runStartedAt: new Date(Date.now() + 5 * 60_000) }),
        'latest attempt started',
      ],
      [runUrl(123), 'does not exist in omniai/omniai-backups'],
      [
        `https://github.com/mallory/omniai-backups/actions/runs/${s.runId}`,
        'is not a workflow run',
      ],
    ]
    for (const [run] of attempts)
      s.addComment(tracking.number, { body: evidence.renderDrillComment(drill({ run })) })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toMatchObject({ last: { date: genuine }, runProof: 'checked' })
    // Newest first: each attempt was looked up and refused, for its own reason.
    const reasons = history.ignored.map((l) => l.replace(/^\S+: /, ''))
    expect(reasons).toHaveLength(attempts.length)
    for (const [, why] of attempts)
      expect(
        reasons.some((r) => r.includes(why)),
        why,
      ).toBe(true)
    // Positive control: this very run, still in progress, counts; once it has failed it does
    // not, and the genuine record is the last again.
    const now = drill({ run: runUrl(s.runId) })
    s.addComment(tracking.number, { body: evidence.renderDrillComment(now) })
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).toBe(now.date)
    s.addWorkflowRun({ id: s.runId, status: 'completed', conclusion: 'failure' })
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).toBe(genuine)
  })

  it('a burst of records whose runs do not back them is looked through 25 deep, then the gate says so', async () => {
    const { tracking, genuine } = withGenuine()
    for (let i = 0; i < 24; i++)
      s.addComment(tracking.number, {
        body: evidence.renderDrillComment(drill({ run: pastRun({ conclusion: 'failure' }) })),
      })
    expect((await evidence.drillHistory(settings, memoryLog())).last?.date).toBe(genuine)
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ run: pastRun({ conclusion: 'failure' }) })),
    })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history.last).toBeNull()
    expect(history.ignored.at(-1)).toBe(
      '1 older passing records: not looked at after 25 whose runs did not back them',
    )
  })

  it('without actions: read, the run proof is skipped, and said so once', async () => {
    const { tracking } = withGenuine()
    const failedRun = drill({ run: pastRun({ conclusion: 'failure' }) })
    s.addComment(tracking.number, { body: evidence.renderDrillComment(failedRun) })
    s.permissions.actions = 'none'
    const log = memoryLog()
    const history = await evidence.drillHistory(settings, log)
    expect(history).toMatchObject({ last: { date: failedRun.date }, runProof: 'skipped' })
    const said = log.lines.filter((l) => l.includes('actions: read'))
    expect(said).toEqual([
      `max-drill-age: the token cannot read Actions in ${s.owner}/${s.repo} (403 Resource not accessible by integration), so the workflow runs behind the drill records were not checked. Give the job "permissions: actions: read" for that proof.`,
    ])
    expect(paths().filter((p) => p.includes('/actions/runs/'))).toHaveLength(1)
  })

  it("a GitHub App's token: its bot's records count once drill-evidence-author names it, github-actions[bot]'s then do not", async () => {
    const app: StandInUser = { login: 'omniai-backups[bot]', id: 150_000_001, type: 'Bot' }
    const appToken = s.addToken(app, { issues: 'write', actions: 'read' })
    const asApp = { ...settings, token: appToken }
    // Misconfigured: the drill fails at once, naming the author to set.
    const err = await evidence.recordDrill(drill(), asApp, memoryLog()).catch((e: Error) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as Error).message).toMatch(
      /^drill-evidence: this drill's record \(\S+\) would not count for max-drill-age: written by omniai-backups\[bot\], not by github-actions\[bot\]\. Fix: set drill-evidence-author: omniai-backups\[bot\] \(the identity this token writes as\)\.$/,
    )
    const right = { ...asApp, author: 'omniai-backups[bot]' }
    const first = s.issues[0]!.comments[0]!
    expect(first.user).toEqual(app)
    const passed = drill({ date: new Date().toISOString(), run: pastRun() })
    await evidence.recordDrill(passed, right, memoryLog())
    expect((await evidence.drillHistory(right, memoryLog())).last?.date).toBe(passed.date)
    // github-actions[bot]'s comment is not this app's.
    s.addComment(s.issues[0]!.number, { body: evidence.renderDrillComment(fresh()) })
    const history = await evidence.drillHistory(right, memoryLog())
    expect(history.last?.date).toBe(passed.date)
    expect(history.ignored.at(-1)).toMatch(
      /written by github-actions\[bot\], not by omniai-backups\[bot\]$/,
    )
  })

  it("a person's token (a PAT) records nothing that counts, and the drill says so", async () => {
    const pat = s.addToken(member, { issues: 'write' })
    const err = await evidence
      .recordDrill(drill(), { ...settings, token: pat }, memoryLog())
      .catch((e: Error) => e)
    expect((err as Error).message).toMatch(
      /written by alice \(User\), not by github-actions\[bot\]\. Fix: record drills with the job's GITHUB_TOKEN or a GitHub App's token: records written with a person's token do not count\.$/,
    )
  })

  it("a runner clock far ahead of GitHub's fails the drill's evidence, naming the clock", async () => {
    const ahead = drill({ date: new Date(Date.now() + 10 * 60_000).toISOString() })
    await expect(evidence.recordDrill(ahead, settings, memoryLog())).rejects.toThrow(
      /: dated \S+, after its comment was written \(\S+\)\. Fix: set the runner's clock \(NTP\): it is ahead of GitHub's by more than 5 minutes\.$/,
    )
  })
})

describe('the comment stays within what GitHub accepts', () => {
  it('a drill with a thousand long failures still fits in a comment (65,536 characters)', () => {
    const failed = Array.from({ length: 1000 }, (_, i) => `check-${i}: ${'detail '.repeat(400)}`)
    const body = evidence.renderDrillComment(drill({ failed }))
    expect(body.length).toBeLessThan(65_536)
    const parsed = evidence.parseDrillComment(body)
    expect(parsed?.failed).toHaveLength(41)
    expect(parsed?.failed.at(-1)).toBe('… and 960 more failed checks')
  })
})

describe('checkDrillAge', () => {
  const now = new Date('2026-11-26T12:00:00Z')

  it('passes within max-drill-age, with the date', () => {
    expect(evidence.checkDrillAge({ date: '2026-11-23T04:00:00Z' }, 100, now)).toEqual({
      name: 'drill-age',
      ok: true,
      detail: 'last successful drill 2026-11-23 (3 days ago), within max-drill-age 100 days',
    })
  })

  it('fails over max-drill-age, saying when the last one was', () => {
    expect(evidence.checkDrillAge({ date: '2026-08-01T12:00:00Z' }, 100, now)).toEqual({
      name: 'drill-age',
      ok: false,
      detail:
        'last successful drill 2026-08-01 (117 days ago), over max-drill-age 100 days: run the drill workflow',
    })
  })

  it('exactly max-drill-age days passes; a second more fails', () => {
    const edge = new Date(now.getTime() - 7 * DAY).toISOString()
    expect(evidence.checkDrillAge({ date: edge }, 7, now).ok).toBe(true)
    const over = new Date(now.getTime() - 7 * DAY - 1000).toISOString()
    expect(evidence.checkDrillAge({ date: over }, 7, now).ok).toBe(false)
  })

  it('fails when none is on record', () => {
    expect(evidence.checkDrillAge(null, 30, now, 12).detail).toBe(
      'no successful drill on record in issue #12: run the drill workflow',
    )
    expect(evidence.checkDrillAge(null, 30, now)).toEqual({
      name: 'drill-age',
      ok: false,
      detail:
        'no successful drill on record (no drill has been recorded yet): run the drill workflow',
    })
  })
})

describe('refusals and rate limits', () => {
  it('403 on creating the issue names issues: write and the way out', async () => {
    s.fail(/\/issues$/, '403-permission', 1, { method: 'POST' })
    const err = await evidence.recordDrill(drill(), settings, memoryLog()).catch((e: Error) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as Error).message).toBe(
      `drill-evidence: the token cannot write issues in ${s.owner}/${s.repo} (403 Resource not accessible by integration). Fix: give the job "permissions: issues: write", or set drill-evidence: none.`,
    )
    expect(s.issues).toEqual([])
  })

  it('403 on reopening also names issues: write', async () => {
    s.addIssue({ title: TITLE, labels: [LABEL], state: 'closed' })
    s.fail(/\/issues\/\d+$/, '403-permission', 1, { method: 'PATCH' })
    await expect(
      evidence.recordDrill(drill({ failed: ['checksum'] }), settings, memoryLog()),
    ).rejects.toThrow(/"permissions: issues: write"/)
  })

  it('403 on reading names issues: read and max-drill-age', async () => {
    s.fail(/\/issues\?labels=/, '403-permission', 1)
    await expect(evidence.lastSuccessfulDrill(settings, memoryLog())).rejects.toThrow(
      `max-drill-age: the token cannot read issues in ${s.owner}/${s.repo} (403 Resource not accessible by integration). Fix: give the job "permissions: issues: read", or remove max-drill-age.`,
    )
  })

  it('issues turned off in the repository: says so (410)', async () => {
    s.issueSettings.disabled = true
    await expect(evidence.recordDrill(drill(), settings, memoryLog())).rejects.toThrow(
      `drill-evidence: issues are disabled in ${s.owner}/${s.repo} (410 Issues are disabled for this repo). Fix: turn on Issues in the repository's settings, or set drill-evidence: none.`,
    )
  })

  it('a rate limit on commenting: waits as GitHub says, then records the drill once', async () => {
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    s.fail(/\/issues\/\d+\/comments$/, 'rate-limit', 1, {
      method: 'POST',
      status: 429,
      retryAfterSeconds: 1,
    })
    const log = memoryLog()
    const started = Date.now()
    const r = await evidence.recordDrill(drill(), settings, log)
    expect(Date.now() - started).toBeGreaterThanOrEqual(950)
    expect(log.warnings).toEqual(['GitHub API rate limit reached; retrying in 1 s'])
    expect(r.issueNumber).toBe(tracking.number)
    expect(tracking.comments).toHaveLength(1)
    expect(paths().filter((p) => p.startsWith('POST'))).toHaveLength(2)
  })

  it('a primary rate limit that resets in an hour is not waited for', async () => {
    s.fail(/\/issues\?labels=/, 'rate-limit', 1, { retryAfterSeconds: 3600 })
    const started = Date.now()
    await expect(evidence.recordDrill(drill(), settings, memoryLog())).rejects.toThrow(
      /^github-token: GitHub's API rate limit is exhausted for this token \(resets in 3600 s\)/,
    )
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('other errors (422 here) are not blamed on permissions: they carry the method, path and GitHub’s message', async () => {
    const err = await githubRequest(
      `${s.url}/repos/${s.owner}/${s.repo}/issues`,
      settings,
      memoryLog(),
      () => 'a refusal',
      { method: 'POST', body: { title: '' } },
    ).catch((e: Error) => e)
    expect(err).not.toBeInstanceOf(UserError)
    expect((err as Error).message).toBe(
      `GitHub API POST /repos/${s.owner}/${s.repo}/issues: 422 Validation Failed`,
    )
  })

  it('a label GitHub dropped is a warning: the next drill would not find the issue', async () => {
    s.issueSettings.dropLabels = true
    const log = memoryLog()
    const r = await evidence.recordDrill(drill(), settings, log)
    expect(s.issues[0]!.labels).toEqual([])
    expect(log.warnings).toEqual([
      `drill-evidence: GitHub did not put the label "${LABEL}" on issue #${r.issueNumber}, so the next drill will not find it. Fix: add the label to issue #${r.issueNumber} by hand.`,
    ])
  })
})

describe('the stand-in: tokens, permissions, runs and the repository, like GitHub', () => {
  const call = (path: string, token = s.token, init: RequestInit = {}) =>
    fetch(`${s.url}/repos/${s.owner}/${s.repo}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
    })
  const fixture = (n: string) =>
    JSON.parse(fs.readFileSync(new URL(`./data/github/${n}`, import.meta.url), 'utf8')) as Record<
      string,
      unknown
    >

  it('each route asks for its permission: 403 Resource not accessible by integration without it', async () => {
    const reader = s.addToken(member, { issues: 'read' })
    const none = s.addToken(member, {})
    s.addIssue({ title: TITLE, labels: [LABEL] })
    expect((await call('/issues', reader)).status).toBe(200)
    const refused = await call('/issues', none)
    expect(refused.status).toBe(403)
    expect(refused.headers.get('x-accepted-github-permissions')).toBe('issues=read')
    expect(await refused.json()).toEqual({
      message: 'Resource not accessible by integration',
      documentation_url: 'https://docs.github.com/rest/issues/issues#list-repository-issues',
      status: '403',
    })
    const post = await call('/issues/1/comments', reader, {
      method: 'POST',
      body: JSON.stringify({ body: 'x' }),
    })
    expect(post.status).toBe(403)
    expect((await call(`/actions/runs/${s.runId}`, reader)).status).toBe(403)
    expect((await call(`/actions/runs/${s.runId}`)).status).toBe(200)
    s.permissions.actions = 'none'
    expect((await call(`/actions/runs/${s.runId}`)).status).toBe(403)
    expect((await call('/actions/artifacts')).status).toBe(403)
    // Every token may read the repository itself.
    expect((await call('', none)).status).toBe(200)
    expect((await call('', 'ghs_unknown')).status).toBe(401)
  })

  it('a comment gets its author and times from the server, whatever the client sends; an edit moves updated_at', async () => {
    const issue = s.addIssue({ title: TITLE, labels: [LABEL] })
    const app: StandInUser = { login: 'omniai-backups[bot]', id: 150_000_001, type: 'Bot' }
    const res = await call(
      `/issues/${issue.number}/comments`,
      s.addToken(app, { issues: 'write' }),
      {
        method: 'POST',
        body: JSON.stringify({
          body: 'hello',
          created_at: '2001-01-01T00:00:00Z',
          updated_at: '2001-01-01T00:00:00Z',
          user: { login: 'github-actions[bot]', id: 41898282, type: 'Bot' },
        }),
      },
    )
    const c = (await res.json()) as Record<string, unknown> & { user: StandInUser }
    expect(Object.keys(c)).toEqual(Object.keys(fixture('rest-create-issue-comment.json')))
    expect(c.user).toMatchObject(app)
    expect(c.created_at).toBe(c.updated_at)
    expect(Date.now() - Date.parse(String(c.created_at))).toBeLessThan(5000)
    await new Promise((r) => setTimeout(r, 1100))
    const edited = await call(`/issues/comments/${String(c.id)}`, s.token, {
      method: 'PATCH',
      body: JSON.stringify({ body: 'edited' }),
    })
    const e = (await edited.json()) as Record<string, unknown>
    expect(e).toMatchObject({ body: 'edited', created_at: c.created_at })
    expect(Date.parse(String(e.updated_at))).toBeGreaterThan(Date.parse(String(c.created_at)))
  })

  it('a workflow run and the repository answer in the documented shapes, with this repository in them', async () => {
    s.repoSettings.defaultBranch = 'trunk'
    const id = s.addWorkflowRun({ conclusion: 'cancelled', runAttempt: 2 }).id
    const run = (await (await call(`/actions/runs/${id}`)).json()) as Record<string, unknown>
    expect(Object.keys(run)).toEqual(Object.keys(fixture('rest-get-workflow-run.json')))
    expect(run).toMatchObject({
      id,
      status: 'completed',
      conclusion: 'cancelled',
      head_branch: 'trunk',
      run_attempt: 2,
      html_url: `https://github.com/${s.owner}/${s.repo}/actions/runs/${id}`,
      previous_attempt_url: `${s.url}/repos/${s.owner}/${s.repo}/actions/runs/${id}/attempts/1`,
      repository: { id: s.repositoryId, full_name: `${s.owner}/${s.repo}` },
      head_repository: { id: s.repositoryId, full_name: `${s.owner}/${s.repo}` },
    })
    const own = (await (await call(`/actions/runs/${s.runId}`)).json()) as Record<string, unknown>
    expect(own).toMatchObject({ status: 'in_progress', conclusion: null })
    expect((await call('/actions/runs/1')).status).toBe(404)
    const repo = (await (await call('')).json()) as Record<string, unknown>
    expect(Object.keys(repo)).toEqual(Object.keys(fixture('rest-get-repository.json')))
    expect(repo).toMatchObject({
      id: s.repositoryId,
      full_name: `${s.owner}/${s.repo}`,
      default_branch: 'trunk',
      url: `${s.url}/repos/${s.owner}/${s.repo}`,
      owner: { login: s.owner },
    })
  })
})

describe('the stand-in’s issues routes, through Octokit', () => {
  it('answers like the documented examples, paginates with Link headers, and refuses bad input like GitHub', async () => {
    const octokit = github.getOctokit(s.token, { baseUrl: s.url })
    for (let i = 0; i < 5; i++) s.addIssue({ title: `t${i}`, labels: ['x'] })
    s.addIssue({ title: 'a pull request', labels: ['x'], pullRequest: true })
    s.addIssue({ title: 'closed', labels: ['X'], state: 'closed' })
    const all = await octokit.paginate(octokit.rest.issues.listForRepo, {
      owner: s.owner,
      repo: s.repo,
      labels: 'x',
      state: 'all',
      per_page: 2,
    })
    expect(all.map((i) => i.number)).toEqual([7, 6, 5, 4, 3, 2, 1]) // newest first by default
    expect(all.filter((i) => i.pull_request).map((i) => i.number)).toEqual([6])
    const open = await octokit.rest.issues.listForRepo({ owner: s.owner, repo: s.repo })
    expect(open.data.map((i) => i.number)).toEqual([6, 5, 4, 3, 2, 1])

    const fixture = (n: string) =>
      JSON.parse(fs.readFileSync(new URL(`./data/github/${n}`, import.meta.url), 'utf8')) as Record<
        string,
        unknown
      >
    const issueKeys = Object.keys(fixture('rest-get-issue.json')).filter(
      (k) => k !== 'pull_request',
    )
    const created = await octokit.rest.issues.create({ owner: s.owner, repo: s.repo, title: 'new' })
    expect(created.status).toBe(201)
    expect(created.headers.location).toBe(`${s.url}/repos/${s.owner}/${s.repo}/issues/8`)
    expect(Object.keys(created.data)).toEqual(issueKeys)
    expect(created.headers['x-accepted-github-permissions']).toBe('issues=write')

    const comment = await octokit.rest.issues.createComment({
      owner: s.owner,
      repo: s.repo,
      issue_number: 8,
      body: 'hello',
    })
    expect(Object.keys(comment.data)).toEqual(
      Object.keys(fixture('rest-create-issue-comment.json')),
    )
    expect(comment.data.user?.login).toBe('github-actions[bot]')
    const listed = await octokit.rest.issues.listComments({
      owner: s.owner,
      repo: s.repo,
      issue_number: 8,
    })
    expect(listed.data.map((c) => c.body)).toEqual(['hello'])

    const closed = await octokit.rest.issues.update({
      owner: s.owner,
      repo: s.repo,
      issue_number: 8,
      state: 'closed',
    })
    expect(closed.data).toMatchObject({ state: 'closed', state_reason: 'completed' })
    expect(closed.data.closed_by?.login).toBe('github-actions[bot]')

    await expect(
      octokit.rest.issues.create({ owner: s.owner, repo: s.repo, title: '' }),
    ).rejects.toMatchObject({ status: 422 })
    await expect(
      octokit.rest.issues.get({ owner: s.owner, repo: s.repo, issue_number: 999 }),
    ).rejects.toMatchObject({ status: 404 })
    const anon = await fetch(`${s.url}/repos/${s.owner}/${s.repo}/issues`)
    expect(anon.status).toBe(404)
  })
})

describe('GitHub Enterprise Server', () => {
  it('the API is GITHUB_API_URL with its /api/v3 path, and records link runs on GITHUB_SERVER_URL', async () => {
    // GHES serves the REST API under /api/v3 of its own host: a front here strips that prefix
    // and passes each request on to the stand-in, keeping what it was asked.
    const asked: string[] = []
    const front = http.createServer((req, res) => {
      asked.push(`${req.method} ${req.url}`)
      const upstream = http.request(
        `${s.url}${(req.url ?? '').replace(/^\/api\/v3/, '')}`,
        { method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        },
      )
      req.pipe(upstream)
    })
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
    try {
      const api = `http://127.0.0.1:${(front.address() as AddressInfo).port}/api/v3`
      const server = 'https://github.example.com'
      const ghes = evidence.evidenceSettings(
        { token: s.token, title: TITLE, author: 'github-actions[bot]' },
        readRunnerContext({ ...s.env, GITHUB_API_URL: `${api}/`, GITHUB_SERVER_URL: server }),
      )
      expect(ghes).toMatchObject({ apiUrl: api, serverUrl: server })
      const run = `${server}/${s.owner}/${s.repo}/actions/runs/${s.runId}`
      await evidence.recordDrill(drill({ run }), ghes, memoryLog())
      const history = await evidence.drillHistory(ghes, memoryLog())
      expect(history).toMatchObject({ last: { run }, runProof: 'checked', ignored: [] })
      expect(asked.length).toBeGreaterThanOrEqual(5)
      expect(asked.filter((a) => !a.includes(`/api/v3/repos/${s.owner}/${s.repo}`))).toEqual([])
      expect(s.requests).toHaveLength(asked.length)
    } finally {
      front.close()
    }
  })
})
