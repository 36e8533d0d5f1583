import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { readManifest, type Manifest } from '../src/manifest/manifest.js'
import { cli, demoWorkspace, failed, query, run, sql, tempDir } from './helpers.js'

/** A demo database with one backup of it. */
async function backedUp(options = {}) {
  const ws = await demoWorkspace(options)
  const { report } = await run(
    'backup',
    { 'connection-string': ws.db, 'backup-dir': ws.backups },
    ws.dir,
  )
  expect(report.ok).toBe(true)
  return {
    ...ws,
    backup: report.backup!.path,
    manifestPath: `${report.backup!.path}.manifest.json`,
  }
}

async function editManifest(file: string, edit: (m: Manifest) => void) {
  const m = await readManifest(file)
  edit(m)
  await fs.writeFile(file, JSON.stringify(m))
}

describe('verify', () => {
  it('passes on a good backup with checksum, integrity, schema, row counts and age', async () => {
    const { dir, backups } = await backedUp()
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(report.ok).toBe(true)
    expect(report.checks.map((c) => c.name)).toEqual([
      'checksum',
      'integrity',
      'foreign-keys',
      'schema',
      'row-counts',
      'backup-age',
    ])
  })

  it('a bit-flipped backup fails the checksum', async () => {
    const { dir, backups, backup } = await backedUp()
    const bytes = await fs.readFile(backup)
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10
    await fs.writeFile(backup, bytes)
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(report.ok).toBe(false)
    expect(failed(report).checksum).toMatch(
      /sha256 .* where the manifest says .* \(the file was altered\)/,
    )
  })

  it('a truncated backup fails checksum and integrity, and says so in one line each', async () => {
    const { dir, backups, backup } = await backedUp()
    const { size } = await fs.stat(backup)
    await fs.truncate(backup, Math.floor(size / 2))
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(report.ok).toBe(false)
    expect(failed(report).checksum).toMatch(/bytes where the manifest says \d+ \(truncated/)
    expect(Object.keys(failed(report))).toContain('integrity')
  })

  it('a backup without a manifest is refused, naming the file', async () => {
    const { dir, backup, manifestPath } = await backedUp({ conversations: 5, auditRows: 5 })
    await fs.rm(manifestPath)
    const { report } = await run('verify', { 'backup-file': backup }, dir)
    expect(report.error).toMatch(
      /^backup-file: .*omniai-.*\.db has no manifest \(omniai-.*\.manifest\.json is missing\).*Fix:/,
    )
  })

  it('a backup-file that does not exist is said so, not called a backup without a manifest', async () => {
    const { dir, backup } = await backedUp({ conversations: 5, auditRows: 5 })
    const missing = path.join(path.dirname(backup), 'nope.db')
    for (const mode of ['verify', 'drill']) {
      const { report } = await run(mode, { 'backup-file': missing, 'drill-log': 'none' }, dir)
      expect(report.error).toMatch(
        /^backup-file: .*nope\.db does not exist\. Fix: give the path of a backup file .*, or leave backup-file empty to use the newest in .*\.$/,
      )
    }
    // Positive control: the backup itself, named the same way, is verified.
    const { report } = await run('verify', { 'backup-file': backup }, dir)
    expect(report.error).toBeUndefined()
  })

  it('an empty backup folder says to run a backup first', async () => {
    const dir = await tempDir()
    await fs.mkdir(path.join(dir, 'backups'))
    const { report } = await run('drill', { 'backup-dir': path.join(dir, 'backups') }, dir)
    expect(report.error).toMatch(
      /^backup-dir: no backups with a manifest in .*backups\. Fix: run mode backup first/,
    )
  })

  it('backup files without manifests are named, never chosen', async () => {
    const dir = await tempDir()
    const backups = path.join(dir, 'backups')
    await fs.mkdir(backups)
    await fs.writeFile(path.join(backups, 'omniai-2026-01-01.db'), 'x')
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(report.error).toMatch(
      /holds 1 backup file\(s\) without a manifest \(omniai-2026-01-01\.db\)/,
    )
  })

  it('a damaged manifest is an error naming it', async () => {
    const { dir, backup, manifestPath } = await backedUp({ conversations: 5, auditRows: 5 })
    await fs.writeFile(manifestPath, '{"format": 1, "engine": "sqlite"')
    const { report } = await run('verify', { 'backup-file': backup }, dir)
    expect(report.error).toMatch(/^manifest .*manifest\.json is not valid JSON/)
  })

  it('a file that is not SQLite given as backup-file', async () => {
    const { dir, backup } = await backedUp({ conversations: 5, auditRows: 5 })
    await fs.writeFile(backup, 'PGDMP not sqlite')
    const { report } = await run('verify', { 'backup-file': backup }, dir)
    expect(report.ok).toBe(false)
    expect(failed(report).integrity).toMatch(
      /^cannot be opened: backup-file: .* is not a SQLite database/,
    )
    expect(Object.keys(failed(report))).toContain('checksum')
  })

  it('orders backups by the manifest time, never by file name', async () => {
    const { dir, db, backups } = await backedUp({ conversations: 5, auditRows: 5 })
    const second = (await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir))
      .report.backup!.path
    const first = second.replace(/-2\.db$/, '.db')
    // Make the first file (name sorts first) the newer one by its manifest.
    await editManifest(
      `${first}.manifest.json`,
      (m) => void (m.createdAt = '2099-01-01T00:00:00.000Z'),
    )
    await editManifest(
      `${second}.manifest.json`,
      (m) => void (m.createdAt = '2001-01-01T00:00:00.000Z'),
    )
    expect((await run('verify', { 'backup-dir': backups }, dir)).report.backup!.path).toBe(first)
    await fs.rename(first, path.join(backups, 'zzz.db'))
    await fs.rename(`${first}.manifest.json`, path.join(backups, 'zzz.db.manifest.json'))
    expect((await run('verify', { 'backup-dir': backups }, dir)).report.backup!.path).toBe(
      path.join(backups, 'zzz.db'),
    )
  })

  it('a schema that differs from the manifest is named (index dropped, column added)', async () => {
    const { dir, backups, backup } = await backedUp({ conversations: 5, auditRows: 5 })
    await sql(backup, 'DROP INDEX audit_logs_ts; ALTER TABLE users ADD COLUMN role TEXT')
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(failed(report).schema).toContain('table users column role is not in the manifest')
    expect(failed(report).schema).toContain('index audit_logs_ts is missing')
  })

  it('max-backup-age fails an old backup (RPO)', async () => {
    const { dir, backups } = await backedUp({ conversations: 5, auditRows: 5 })
    const later = () => new Date(Date.now() + 30 * 3600_000)
    const { report } = await run(
      'verify',
      { 'backup-dir': backups, 'max-backup-age': '26h' },
      dir,
      later,
    )
    expect(failed(report)['backup-age']).toMatch(/^30\.0 h old, over max-backup-age 26\.0 h/)
  })
})

describe('drill', () => {
  it('restores into a scratch folder, checks everything, logs the drill and deletes the copy', async () => {
    const { dir, backups } = await backedUp()
    const scratch = path.join(dir, 'scratch')
    const log = path.join(dir, 'drills.jsonl')
    const { report } = await run(
      'drill',
      {
        'backup-dir': backups,
        'scratch-dir': scratch,
        'drill-log': log,
        'max-backup-age': '1h',
        'max-restore-seconds': '600',
      },
      dir,
    )
    expect(report.ok).toBe(true)
    expect(report.checks.map((c) => c.name)).toEqual([
      'checksum',
      'integrity',
      'foreign-keys',
      'schema',
      'row-counts',
      'spot-check',
      'audit-log',
      'restore-time',
      'backup-age',
    ])
    expect(report.restoreSeconds).toBeGreaterThan(0)
    expect(report.database).toMatchObject({ tables: 7 })
    expect(report.database!.rows).toBeGreaterThan(5000)
    expect(await fs.readdir(scratch)).toEqual([])
    const lines = (await fs.readFile(log, 'utf8')).trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({
      ok: true,
      engine: 'sqlite',
      backupCount: 1,
      checks: { 'audit-log': true },
    })
    // A second drill appends.
    await run('drill', { 'backup-dir': backups, 'scratch-dir': scratch, 'drill-log': log }, dir)
    expect((await fs.readFile(log, 'utf8')).trim().split('\n')).toHaveLength(2)
  })

  // Each tampering below is made to the backup file itself; the drill must name what changed.
  it.each([
    ['DELETE FROM audit_logs WHERE id = 1234', 'audit_logs row id=1234 was deleted'],
    [
      "INSERT INTO audit_logs (id, ts, action) VALUES (1500000, 'x', 'login')",
      'audit_logs row id=1500000 was added',
    ],
    [
      "UPDATE audit_logs SET action = 'settings.update' WHERE id = 2718",
      'audit_logs row id=2718 was altered',
    ],
    ["UPDATE audit_logs SET ts = 'x' WHERE id = 3000", 'audit_logs row id=3000 was altered'],
  ])('audit log: %s', async (statement, named) => {
    const { dir, backups, backup } = await backedUp()
    await sql(backup, statement)
    const { report } = await run('drill', { 'backup-dir': backups, 'drill-log': 'none' }, dir)
    expect(report.ok).toBe(false)
    expect(failed(report)['audit-log']).toBe(named)
  })

  it('audit log with a generated column before its key: a deleted row is named by its key; a manifest that recorded the generated values as keys still passes on the same data', async () => {
    const ws = await demoWorkspace()
    await sql(
      ws.db,
      "CREATE TABLE events (g TEXT GENERATED ALWAYS AS ('x' || ts) VIRTUAL, id INTEGER PRIMARY KEY, ts TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) INSERT INTO events (id, ts) SELECT i, 't' || (i % 9) FROM n",
    )
    const inputs = { 'connection-string': ws.db, 'backup-dir': ws.backups, 'audit-table': 'events' }
    const { report } = await run('backup', inputs, ws.dir)
    expect(report.ok).toBe(true)
    const manifestPath = `${report.backup!.path}.manifest.json`
    const audit = (await readManifest(manifestPath)).inventory.audit!
    expect([audit.chunks[1]!.firstKey, audit.lastKey]).toEqual(['1001', '2500'])
    const drill = (backupDir: string) =>
      run(
        'drill',
        { 'backup-dir': backupDir, 'drill-log': 'none', 'audit-table': 'events' },
        ws.dir,
      )
    // Keys as a version before this one recorded them: the generated column's values.
    await editManifest(manifestPath, (m) => {
      for (const c of m.inventory.audit!.chunks) {
        c.firstKey = `xt${Number(c.firstKey) % 9}`
        c.lastKey = `xt${Number(c.lastKey) % 9}`
      }
      m.inventory.audit!.lastKey = 'xt7'
    })
    expect(failed((await drill(ws.backups)).report)).toEqual({})
    // Positive control: the same backup with a row deleted fails, on the current manifest
    // naming the row.
    const second = await run('backup', { ...inputs, 'backup-dir': path.join(ws.dir, 'b2') }, ws.dir)
    await sql(second.report.backup!.path, 'DELETE FROM events WHERE id = 1234')
    expect(failed((await drill(path.join(ws.dir, 'b2'))).report)['audit-log']).toBe(
      'events row id=1234 was deleted',
    )
  })

  it('audit log: several rows deleted are located by range', async () => {
    const { dir, backups, backup } = await backedUp()
    await sql(backup, 'DELETE FROM audit_logs WHERE id BETWEEN 1500 AND 1510')
    const { report } = await run('drill', { 'backup-dir': backups, 'drill-log': 'none' }, dir)
    expect(failed(report)['audit-log']).toBe(
      'audit_logs id 1001..2000: 989 rows where the manifest has 1000 (rows deleted or added)',
    )
  })

  it('spot-check names the conversation and the table that lost rows, two foreign keys deep', async () => {
    const { dir, backups, backup } = await backedUp()
    const lost = "message_id IN (SELECT id FROM messages WHERE conversation_id = 'c_000199')"
    const [{ n }] = (await query(
      backup,
      `SELECT count(*) AS n FROM message_attachments WHERE ${lost}`,
    )) as [{ n: bigint }]
    expect(n).toBeGreaterThan(0n)
    await sql(backup, `DELETE FROM message_attachments WHERE ${lost}`)
    await sql(
      backup,
      "UPDATE messages SET content = 'edited' WHERE conversation_id = 'c_000197' AND id = (SELECT min(id) FROM messages WHERE conversation_id = 'c_000197')",
    )
    await sql(backup, "DELETE FROM conversations WHERE id = 'c_000196'")
    const { report } = await run('drill', { 'backup-dir': backups, 'drill-log': 'none' }, dir)
    const detail = failed(report)['spot-check']!
    expect(detail).toContain(
      `conversation c_000199: 0 message_attachments rows where the manifest has ${n}`,
    )
    expect(detail).toContain('conversation c_000197: its 12 messages rows differ in content')
    expect(detail).toContain('conversation c_000196 is missing')
  })

  it('a backup that cannot be restored fails the drill and still deletes the scratch folder', async () => {
    const { dir, backups, backup } = await backedUp({ conversations: 5, auditRows: 5 })
    const bytes = await fs.readFile(backup)
    bytes.fill(0xff, 100, 4096 * 2)
    await fs.writeFile(backup, bytes)
    const scratch = path.join(dir, 'scratch')
    const { report } = await run('drill', { 'backup-dir': backups, 'scratch-dir': scratch }, dir)
    expect(report.ok).toBe(false)
    expect(Object.keys(failed(report))).toEqual(expect.arrayContaining(['checksum']))
    expect(
      Object.keys(failed(report)).some(
        (n) => n === 'restore' || n === 'integrity' || n === 'schema',
      ),
    ).toBe(true)
    expect(await fs.readdir(scratch)).toEqual([])
    const drillLog = path.join(backups, 'drill-log.jsonl')
    expect(JSON.parse((await fs.readFile(drillLog, 'utf8')).trim())).toMatchObject({ ok: false })
  })

  it('max-restore-seconds fails a slow restore (RTO)', async () => {
    const { dir, backups } = await backedUp()
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'max-restore-seconds': '0.000001', 'drill-log': 'none' },
      dir,
    )
    expect(failed(report)['restore-time']).toMatch(/over max-restore-seconds 0\.000001/)
  })

  it('digests agree across drivers: backup by better-sqlite3, drill by node:sqlite', async () => {
    const { dir, backups } = await backedUp()
    const result = await cli(
      [
        'drill',
        '--backup-dir',
        backups,
        '--drill-log',
        'none',
        '--report-file',
        path.join(dir, 'r.json'),
      ],
      dir,
      { OMNIAI_SQLITE_DRIVER: 'node' },
    )
    expect(result.stderr + result.stdout).not.toMatch(/Error:/)
    expect(result.code).toBe(0)
    const report = JSON.parse(await fs.readFile(path.join(dir, 'r.json'), 'utf8'))
    expect(report.ok).toBe(true)
  })
})

describe('max-drill-age (outside a workflow run: from the drill log)', () => {
  it('fails with none on record, passes after a drill, fails when the last one is too old', async () => {
    const { dir, backups } = await backedUp({ conversations: 5, auditRows: 5 })
    const drillLog = path.join(dir, 'drills.jsonl')
    const none = await run(
      'verify',
      { 'backup-dir': backups, 'drill-log': drillLog, 'max-drill-age': '100' },
      dir,
    )
    expect(failed(none.report)['drill-age']).toMatch(/^no successful drill on record/)
    await run('drill', { 'backup-dir': backups, 'drill-log': drillLog }, dir)
    const fresh = await run(
      'verify',
      { 'backup-dir': backups, 'drill-log': drillLog, 'max-drill-age': '100' },
      dir,
    )
    expect(failed(fresh.report)).toEqual({})
    const later = () => new Date(Date.now() + 120 * 86_400_000)
    const stale = await run(
      'verify',
      { 'backup-dir': backups, 'drill-log': drillLog, 'max-drill-age': '100' },
      dir,
      later,
    )
    expect(failed(stale.report)['drill-age']).toMatch(
      /^last successful drill \d{4}-\d\d-\d\d \(120 days ago\), over max-drill-age 100 days/,
    )
  })
})
