import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { readManifest } from '../src/manifest/manifest.js'
import { renderSummary } from '../src/report/report.js'
import { demoWorkspace, query, run, sql, startWriter, tempDir } from './helpers.js'

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex')

describe('backup', () => {
  it('writes a consistent snapshot named as in the runbook, with a manifest beside it', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    expect(report.error).toBeUndefined()
    expect(report.ok).toBe(true)
    const day = report.startedAt.slice(0, 10)
    expect(report.backup!.path).toBe(path.join(backups, `omniai-${day}.db`))
    expect(report.backup!.sha256).toBe(await sha256(report.backup!.path))
    const manifest = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(manifest).toMatchObject({
      engine: 'sqlite',
      backup: {
        file: `omniai-${day}.db`,
        sha256: report.backup!.sha256,
        bytes: report.backup!.bytes,
      },
      source: { journalMode: 'wal' },
    })
    const { inventory } = manifest
    expect(inventory.schema.tables.map((t) => t.name)).toEqual([
      'audit_logs',
      'conversation_tags',
      'conversations',
      'message_attachments',
      'messages',
      'sessions',
      'users',
    ])
    expect(inventory.schema.triggers.map((t) => t.name)).toEqual(['messages_touch_conversation'])
    expect(inventory.schema.views.map((t) => t.name)).toEqual(['conversation_stats'])
    expect(inventory.rowCounts).toMatchObject({
      conversations: 200,
      messages: 2400,
      audit_logs: 3000,
    })
    expect(inventory.audit).toMatchObject({
      table: 'audit_logs',
      key: ['id'],
      rows: 3000,
      lastKey: '3000',
    })
    expect(inventory.audit!.chunks).toHaveLength(3)
    // The most recent conversations, and everything that hangs off them by foreign key.
    expect(inventory.conversations!.orderBy).toBe('updated_at')
    expect(inventory.conversations!.items.map((i) => i.id)).toEqual([
      'c_000200',
      'c_000199',
      'c_000198',
      'c_000197',
      'c_000196',
    ])
    const related = inventory.conversations!.items[0]!.related
    expect(related.map((r) => r.via)).toEqual(
      expect.arrayContaining([
        'conversation_tags.conversation_id',
        'messages.conversation_id',
        'messages.conversation_id → message_attachments.message_id',
      ]),
    )
    expect(related.find((r) => r.table === 'messages')!.rows).toBe(12)
    // The backup is one self-contained file, outside WAL mode: reading it creates nothing beside it.
    expect(await query(report.backup!.path, 'PRAGMA journal_mode')).toEqual([
      { journal_mode: 'delete' },
    ])
    expect((await fs.readdir(backups)).sort()).toEqual([
      `omniai-${day}.db`,
      `omniai-${day}.db.manifest.json`,
    ])
  })

  // Naming never replaces a file; whether an older same-day backup stays is retention's call,
  // made loudly in the summary (see the retention test below), so it is off here.
  it('a backup that stops before it looks at backup-dir does not say the folder is empty', async () => {
    const ws = await demoWorkspace({ conversations: 5 })
    await run('backup', { 'connection-string': ws.db, 'backup-dir': ws.backups }, ws.dir)
    const second = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups },
      ws.dir,
    )
    // Positive control: a backup that ran counts the folder's backups.
    expect(second.report.backupCount).toBe(2)
    expect(renderSummary(second.report)).toMatch(/\| Backups in folder \| 2 \|/)
    const { report } = await run(
      'backup',
      { 'connection-string': path.join(ws.dir, 'nope.db'), 'backup-dir': ws.backups },
      ws.dir,
    )
    expect(report.error).toMatch(/^connection-string: /)
    expect(report.backupCount).toBeNull()
    expect(renderSummary(report)).not.toMatch(/Backups in folder/)
  })

  it('a second backup on the same day keeps the first', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 20, auditRows: 50 })
    const first = (
      await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    ).report
    const firstSha = await sha256(first.backup!.path)
    await sql(db, "INSERT INTO audit_logs (ts, action) VALUES ('2026-11-26T00:00:00Z', 'login')")
    const second = (
      await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    ).report
    const third = (
      await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    ).report
    expect(second.backup!.path).toBe(first.backup!.path.replace(/\.db$/, '-2.db'))
    expect(third.backup!.path).toBe(first.backup!.path.replace(/\.db$/, '-3.db'))
    expect(await sha256(first.backup!.path)).toBe(firstSha)
    expect(third.backupCount).toBe(3)
  })

  // Regression: without one read transaction around all backup steps, every commit by the writer
  // restarts the backup and it never finishes (it timed out after 60 s here).
  it('retention runs after the new backup is written and verified, and reports what it deleted', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 20, auditRows: 50 })
    const inputs = { 'connection-string': db, 'backup-dir': backups }
    const first = (await run('backup', { ...inputs, retention: 'off' }, dir)).report
    const second = (await run('backup', { ...inputs, retention: 'off' }, dir)).report
    const dry = (await run('backup', { ...inputs, retention: 'dry-run' }, dir)).report
    // Three backups on one day: the newest is the day's, the oldest starts the history
    // (restic keeps it while the rules have unused days); the one between would go. A dry run
    // deletes nothing and says so.
    expect(dry.retention).toMatchObject({ mode: 'dry-run', deleted: 0, kept: 2 })
    expect(dry.retention!.decisions.filter((d) => !d.keep).map((d) => d.file)).toEqual([
      path.basename(second.backup!.path),
    ])
    await expect(fs.stat(second.backup!.path)).resolves.toBeTruthy()
    const applied = (await run('backup', inputs, dir)).report
    expect(applied.checks.map((c) => c.name)).toEqual(['integrity', 'checksum'])
    expect(applied.retention).toMatchObject({ mode: 'apply', deleted: 2, kept: 2 })
    expect(applied.retention!.decisions[0]).toMatchObject({
      keep: true,
      file: path.basename(applied.backup!.path),
    })
    expect(applied.retention!.decisions[0]!.reasons).toEqual(
      expect.arrayContaining(['newest verified']),
    )
    const left = [first.backup!.path, applied.backup!.path].map((p) => path.basename(p))
    expect((await fs.readdir(backups)).sort()).toEqual(
      [...left, ...left.map((f) => `${f}.manifest.json`)].sort(),
    )
    expect(applied.backupCount).toBe(2)
  })

  it('is transactionally consistent, and finishes, while another process keeps writing (WAL)', async () => {
    // Big enough (about 30 MiB) that the snapshot takes several backup steps.
    const { dir, db, backups } = await demoWorkspace({
      conversations: 2500,
      messageChars: 900,
      auditRows: 1000,
    })
    const [{ m: messagesBefore, a: auditBefore }] = (await query(
      db,
      'SELECT count(*) AS m, (SELECT count(*) FROM audit_logs) AS a FROM messages',
    )) as [{ m: bigint; a: bigint }]
    const writer = await startWriter(path.join(import.meta.dirname, 'fixtures', 'writer.mjs'), [db])
    try {
      const { report, log } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups },
        dir,
      )
      expect(report.error).toBeUndefined()
      expect(report.ok).toBe(true)
      expect(log.lines.find((l) => l.startsWith('snapshot: file copy'))).toBeTruthy()
      const [{ m, a }] = (await query(
        report.backup!.path,
        'SELECT count(*) AS m, (SELECT count(*) FROM audit_logs) AS a FROM messages',
      )) as [{ m: bigint; a: bigint }]
      // The writer had committed before the snapshot began, and every transaction is whole.
      expect(m - messagesBefore).toBeGreaterThanOrEqual(20n)
      expect(m - messagesBefore).toBe(a - auditBefore)
    } finally {
      writer.kill('SIGKILL')
    }
    // The writer went on committing during the backup: the live database moved past the snapshot.
    const manifest = await readManifest(
      `${(await fs.readdir(backups)).map((f) => path.join(backups, f)).find((f) => f.endsWith('.manifest.json'))}`,
    )
    const [{ a: liveAudit }] = (await query(db, 'SELECT count(*) AS a FROM audit_logs')) as [
      { a: bigint },
    ]
    expect(BigInt(manifest.inventory.rowCounts.audit_logs!)).toBeLessThan(liveAudit)
  })

  // The snapshot copies the main file and the WAL (see copyUnderReadLock): transactions that
  // only the WAL holds, never checkpointed, must be in the backup, whole.
  it('a WAL-mode backup holds the transactions only the WAL has, and none half', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 50, auditRows: 100 })
    const { default: Database } = await import('better-sqlite3')
    const live = new Database(db)
    try {
      live.pragma('wal_autocheckpoint = 0')
      const add = live.transaction((n: number) => {
        for (let i = 0; i < n; i++)
          live
            .prepare(
              "INSERT INTO audit_logs (ts, action, target) VALUES ('2026-01-01', 'wal.only', 'x')",
            )
            .run()
      })
      add(300)
      // An uncommitted transaction's frames may reach the WAL too (cache spill); they are not a commit.
      live.exec('BEGIN')
      live
        .prepare("INSERT INTO audit_logs (ts, action, target) VALUES ('x', 'uncommitted', 'x')")
        .run()
      expect((await fs.stat(`${db}-wal`)).size).toBeGreaterThan(0)
      const { report, log } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups },
        dir,
      )
      expect(report.ok).toBe(true)
      expect(log.lines.find((l) => l.startsWith('snapshot: file copy and its WAL'))).toBeTruthy()
      const rows = (await query(
        report.backup!.path,
        "SELECT action, count(*) AS n FROM audit_logs WHERE action IN ('wal.only', 'uncommitted') GROUP BY action",
      )) as { action: string; n: bigint }[]
      expect(rows).toEqual([{ action: 'wal.only', n: 300n }])
      // One self-contained file: no WAL beside it, rollback-journal mode.
      await expect(fs.stat(`${report.backup!.path}-wal`)).rejects.toThrow()
      expect(await query(report.backup!.path, 'PRAGMA journal_mode')).toEqual([
        { journal_mode: 'delete' },
      ])
      live.exec('ROLLBACK')
    } finally {
      live.close()
    }
  })

  it('a backup killed half-way leaves no file where a backup is expected and damages no older one', async () => {
    const { dir, db, backups } = await demoWorkspace({
      conversations: 2500,
      messageChars: 900,
      auditRows: 1000,
    })
    const first = (await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir))
      .report
    const firstSha = await sha256(first.backup!.path)
    const { DIST } = await import('./helpers.js')
    const child = spawn(
      process.execPath,
      [
        DIST,
        'backup',
        '--connection-string',
        db,
        '--backup-dir',
        backups,
        '--report-file',
        path.join(dir, 'r.json'),
      ],
      { stdio: 'ignore' },
    )
    // Listened for from the start: a child that ends before the kill still counts as ended.
    const exited = new Promise((r) => child.once('exit', r))
    // Kill it as soon as its temporary file exists: mid-snapshot.
    for (let i = 0; i < 2000; i++) {
      if ((await fs.readdir(backups)).some((f) => f.endsWith('.tmp'))) break
      await new Promise((r) => setTimeout(r, 2))
    }
    child.kill('SIGKILL')
    await exited
    const names = await fs.readdir(backups)
    const visible = names.filter((f) => !f.startsWith('.'))
    expect(visible.sort()).toEqual([
      path.basename(first.backup!.path),
      path.basename(first.backup!.path) + '.manifest.json',
    ])
    expect(await sha256(first.backup!.path)).toBe(firstSha)
    const next = (await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir))
      .report
    expect(next.ok).toBe(true)
    expect(next.backupCount).toBe(2)
  })

  describe('bad source', () => {
    it.each([
      [
        'missing',
        async (d: string) => path.join(d, 'nope.db'),
        /^connection-string: .*nope\.db does not exist\. Fix:/,
      ],
      [
        'a directory',
        async (d: string) => d,
        /^connection-string: .* is a directory, not a SQLite database file/,
      ],
      [
        'empty',
        async (d: string) => {
          const f = path.join(d, 'empty.db')
          await fs.writeFile(f, '')
          return f
        },
        /^connection-string: .* is empty \(0 bytes\)/,
      ],
      [
        'not SQLite',
        async (d: string) => {
          const f = path.join(d, 'notes.db')
          await fs.writeFile(f, 'hello, this is not a database file at all')
          return f
        },
        /^connection-string: .* is not a SQLite database/,
      ],
    ])('%s: one-line error, nothing written', async (_what, make, message) => {
      const dir = await tempDir()
      const source = await make(dir)
      const backups = path.join(dir, 'backups')
      const { report } = await run(
        'backup',
        { 'connection-string': source, 'backup-dir': backups },
        dir,
      )
      expect(report.ok).toBe(false)
      expect(report.error).toMatch(message)
      expect(report.error).not.toContain('\n')
      await expect(fs.readdir(backups)).rejects.toThrow()
    })

    it('a table input that is not in the database names the input and the tables there', async () => {
      const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
      const { report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'audit-table': 'audit_log' },
        dir,
      )
      expect(report.error).toMatch(
        /^audit-table: table "audit_log" is not in the database \(its tables: audit_logs, .*\)\. Fix: .*none/,
      )
    })

    it('table names are never pasted into SQL unquoted', async () => {
      const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
      const evil = 'audit_logs"; DROP TABLE users; --'
      const { report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'audit-table': evil },
        dir,
      )
      expect(report.error).toMatch(
        /^audit-table: table "audit_logs"; DROP TABLE users; --" is not in the database/,
      )
      await sql(db, `CREATE TABLE "${evil.replace(/"/g, '""')}" (id INTEGER PRIMARY KEY, v TEXT)`)
      const ok = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'audit-table': evil },
        dir,
      )
      expect(ok.report.ok).toBe(true)
      expect(
        await query(db, "SELECT count(*) AS n FROM sqlite_schema WHERE name = 'users'"),
      ).toEqual([{ n: 1n }])
    })
  })
})
