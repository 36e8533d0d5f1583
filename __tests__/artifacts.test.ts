/**
 * Backups kept as GitHub artifacts, against a local stand-in for GitHub's services (see
 * __tests__/data/github/README.md): the nightly run uploads, a drill in another run finds the
 * newest unexpired artifact through the REST API, downloads it and restores it.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startGitHubStandIn, buildZip } from './github-standin.js'

// @actions/github reads GITHUB_API_URL when first imported: the environment comes first, then
// the code under test.
const standIn = await startGitHubStandIn()
const saved = { ...process.env }
Object.assign(process.env, standIn.env)
const { demoWorkspace, run, tempDir, failed } = await import('./helpers.js')
const { artifactTier } = await import('../src/store/artifacts.js')

afterAll(async () => {
  process.env = saved
  await standIn.close()
})

const token = { 'github-token': standIn.token }

describe('backups as artifacts', () => {
  let uploadedId = 0
  let backupName = ''

  it('backup uploads the backup and its manifest, kept for its tier', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 30, auditRows: 100 })
    const { report } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        'upload-artifact': 'true',
        'allow-unencrypted-artifact': 'true',
        ...token,
      },
      dir,
    )
    expect(report.error).toBeUndefined()
    const tier = artifactTier(new Date(report.startedAt), 14, 12)
    expect(report.artifact).toMatchObject({
      name: 'omniai-backup',
      tier: tier.tier,
      retentionDays: tier.retentionDays,
    })
    const stored = standIn.artifacts.find((a) => a.id === report.artifact!.id)!
    expect(stored.name).toBe('omniai-backup')
    const days = (stored.expiresAt.getTime() - stored.createdAt.getTime()) / 86_400_000
    expect(Math.round(days)).toBe(tier.retentionDays)
    uploadedId = stored.id
    expect(report.warnings.join()).toMatch(
      /^UNENCRYPTED backup uploaded as artifact "omniai-backup"/,
    )
    backupName = path.basename(report.backup!.path)
  })

  it('a drill in another run downloads the newest unexpired artifact and restores it', async () => {
    // A newer artifact that has expired must be passed over.
    standIn.addArtifact({
      name: 'omniai-backup',
      expired: true,
      files: { 'omniai-2099-01-01.db': Buffer.from('gone') },
      createdAt: new Date(Date.now() + 60_000),
    })
    const dir = await tempDir()
    const scratch = path.join(dir, 'scratch')
    const { report } = await run(
      'drill',
      { 'download-artifact': 'true', 'scratch-dir': scratch, 'drill-log': 'none', ...token },
      dir,
    )
    expect(report.error).toBeUndefined()
    expect(failed(report)).toEqual({})
    expect(report.artifact).toMatchObject({ name: 'omniai-backup', id: uploadedId })
    expect(path.basename(report.backup!.path)).toBe(backupName)
    // The download and the restored copy are both gone.
    expect(await fs.readdir(scratch)).toEqual([])
  })

  it('a newest artifact whose backup does not match its manifest fails the drill on the checksum', async () => {
    const dir = await tempDir()
    const { dir: wsDir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const { report: b } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': backups, retention: 'off' },
      wsDir,
    )
    const file = path.basename(b.backup!.path)
    const bytes = await fs.readFile(b.backup!.path)
    bytes[bytes.length - 10]! ^= 1
    standIn.addArtifact({
      name: 'omniai-backup',
      createdAt: new Date(Date.now() + 120_000),
      files: {
        [file]: bytes,
        [`${file}.manifest.json`]: await fs.readFile(`${b.backup!.path}.manifest.json`),
      },
    })
    const { report } = await run(
      'drill',
      {
        'download-artifact': 'true',
        'scratch-dir': path.join(dir, 's'),
        'drill-log': 'none',
        ...token,
      },
      dir,
    )
    expect(failed(report).checksum).toMatch(/the file was altered/)
    standIn.artifacts.splice(standIn.artifacts.length - 1, 1)
  })

  it('missing permission: names the permission to add', async () => {
    const dir = await tempDir()
    standIn.fail(/\/actions\/artifacts\?name=/, '403-permission', 1)
    const { report } = await run(
      'verify',
      { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
      dir,
    )
    expect(report.error).toMatch(
      /^github-token: cannot list the artifacts of .* \(403 Resource not accessible by integration\)\. Fix: give the job "permissions: actions: read"\./,
    )
    expect(await fs.readdir(path.join(dir, 's'))).toEqual([])
  })

  it('rate limiting: waits as GitHub says, then goes on', async () => {
    const dir = await tempDir()
    standIn.fail(/\/actions\/artifacts\?name=/, 'rate-limit', 1, {
      status: 429,
      retryAfterSeconds: 1,
    })
    const { report, log } = await run(
      'verify',
      { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(log.warnings.join('\n')).toMatch(/rate limit reached; retrying in 1 s/)
  })

  it('no artifact of that name says how to get one', async () => {
    const dir = await tempDir()
    const { report } = await run(
      'drill',
      {
        'download-artifact': 'true',
        'artifact-name': 'nightly-db',
        'scratch-dir': path.join(dir, 's'),
        ...token,
      },
      dir,
    )
    expect(report.error).toMatch(
      /^artifact-name: no unexpired artifact named "nightly-db" in .*\. Fix: run the backup workflow with upload-artifact: true first/,
    )
  })

  it('pages through a repository with many artifacts', async () => {
    for (let i = 0; i < 120; i++) {
      standIn.addArtifact({
        name: 'omniai-backup',
        expired: true,
        createdAt: new Date(Date.now() - (i + 10) * 86_400_000),
        files: { 'x.db': buildZip({}) },
      })
    }
    const dir = await tempDir()
    const { report } = await run(
      'verify',
      { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
      dir,
    )
    expect(report.artifact!.id).toBe(uploadedId)
    const lists = standIn.requests.filter((r) => /\/actions\/artifacts\?/.test(r.path))
    expect(lists.some((r) => /[?&]page=2\b/.test(r.path))).toBe(true)
  })
})

describe('drill evidence on the tracking issue', () => {
  it('a drill records itself on the tracking issue, and max-drill-age reads it back', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 10, auditRows: 20 })
    await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'drill-log': 'none', ...token },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.checks.at(-1)!).toMatchObject({ name: 'evidence', ok: true })
    expect(report.evidence!.issueNumber).toBeGreaterThan(0)
    expect(report.checks.at(-1)!.detail).toMatch(/^recorded on issue #\d+/)
    const v = await run('verify', { 'backup-dir': backups, 'max-drill-age': '100', ...token }, dir)
    expect(v.report.checks.at(-1)!).toMatchObject({ name: 'drill-age', ok: true })
    expect(v.report.checks.at(-1)!.detail).toMatch(/within max-drill-age 100 days/)
  })

  it('without issues: write, the drill fails naming the permission', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    standIn.fail(/\/issues\/\d+\/comments$/, '403-permission', 10, { method: 'POST' })
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'drill-log': 'none', ...token },
      dir,
    )
    expect(report.ok).toBe(false)
    expect(failed(report).evidence).toMatch(
      /^drill-evidence: the token cannot write issues in .*Fix: give the job "permissions: issues: write", or set drill-evidence: none\./,
    )
  })
})
