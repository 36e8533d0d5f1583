/**
 * Drill evidence on a tracking issue, against the local stand-in for GitHub's REST API (see
 * __tests__/data/github/README.md): the first drill opens the issue, later drills comment on it, a
 * failed drill reopens it, the staleness gate reads the records back across pages, and refusals
 * and rate limits end in messages that say what to do.
 */
import fs from 'node:fs'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { Log } from '../src/log.js'
import { startGitHubStandIn, type StandInUser } from './github-standin.js'

// As artifacts.test.ts: the stand-in's environment first, then the code under test.
const s = await startGitHubStandIn()
const saved = { ...process.env }
Object.assign(process.env, s.env)
const evidence = await import('../src/evidence.js')
const { UserError } = await import('../src/errors.js')
const { githubRequest } = await import('../src/github-api.js')
const github = await import('@actions/github')
type DrillRecord = import('../src/evidence.js').DrillRecord

afterAll(async () => {
  process.env = saved
  await s.close()
})

beforeEach(() => {
  s.issues.length = 0
  s.requests.length = 0
  s.issueSettings.disabled = false
  s.issueSettings.dropLabels = false
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

const settings = { token: s.token, owner: s.owner, repo: s.repo, apiUrl: s.url }
const TITLE = 'OmniAI restore drills'
const LABEL = 'omniai-drill'
const DAY = 86_400_000
const member: StandInUser = { login: 'alice', id: 5_001, type: 'User' }
const outsider: StandInUser = { login: 'mallory', id: 6_666, type: 'User' }

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
      `| Workflow run | [${record.run}](${record.run}) |`,
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
    expect(oddBody).toContain("| Backup | `a-->b\\|c'd.db` |")
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
    // followed by ten failed drills.
    for (let i = 0; i < 130; i++) {
      const failed = i >= 120 ? ['integrity'] : []
      s.addComment(tracking.number, {
        body: evidence.renderDrillComment(drill({ date: at(i), failed, run: `run-${i}` })),
      })
    }
    const log = memoryLog()
    const last = await evidence.lastSuccessfulDrill(settings, log)
    expect(last).toEqual({ date: at(119), run: 'run-119', issueNumber: tracking.number })
    const commentPages = paths().filter((p) => p.includes('/comments'))
    expect(commentPages).toEqual([
      `GET /issues/${tracking.number}/comments?per_page=100`,
      `GET /repositories/${s.repositoryId}/issues/${tracking.number}/comments?per_page=100&page=2`,
    ])
    const history = await evidence.drillHistory(settings, log)
    expect(history).toMatchObject({ issueNumber: tracking.number, records: 130 })
  })

  it('ignores comments without a record, and records in comments by people without write access', async () => {
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    const older = new Date(Date.now() - 30 * DAY).toISOString()
    s.addComment(tracking.number, { body: evidence.renderDrillComment(drill({ date: older })) })
    // A maintainer's note, a broken record, and an outsider's forged pass (anyone can comment on
    // a public repository's issues).
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
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ date: new Date().toISOString() })),
      user: outsider,
      authorAssociation: 'NONE',
    })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history.last?.date).toBe(older)
    expect(history.records).toBe(1)

    // A collaborator may record a drill by hand; that counts.
    const manual = new Date(Date.now() - DAY).toISOString()
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ date: manual })),
      user: member,
      authorAssociation: 'COLLABORATOR',
    })
    expect((await evidence.lastSuccessfulDrill(settings, memoryLog()))?.date).toBe(manual)
  })

  it('no tracking issue, or one without a passing drill, is no record', async () => {
    expect(await evidence.drillHistory(settings, memoryLog())).toEqual({
      issueNumber: null,
      last: null,
      records: 0,
    })
    const tracking = s.addIssue({ title: TITLE, labels: [LABEL] })
    s.addComment(tracking.number, {
      body: evidence.renderDrillComment(drill({ failed: ['schema'] })),
    })
    const history = await evidence.drillHistory(settings, memoryLog())
    expect(history).toEqual({ issueNumber: tracking.number, last: null, records: 1 })
    expect(evidence.checkDrillAge(history.last, 30, new Date(), history.issueNumber)).toEqual({
      name: 'drill-age',
      ok: false,
      detail: `no successful drill on record in issue #${tracking.number}: run the drill workflow`,
    })
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
