// restore-check: every night's backup restored into a scratch copy and checked before it is
// accepted, on real SQLite files and real PostgreSQL servers.

import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { onDatabase, pgQuery } from './pg-cluster.js'
import { describe, expect, inject, it, vi } from 'vitest'
import { generateAgeIdentity } from '../src/codec/index.js'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { readManifest, type Manifest } from '../src/manifest/manifest.js'
import { renderSummary } from '../src/report/report.js'
import { restoreCheck } from '../src/modes/backup.js'
import { SqliteEngine } from '../src/engines/sqlite/engine.js'
import { PgDatabase } from '../src/engines/postgres/database.js'
import { damageIndexes, generateOmniaiShaped, key } from './fixtures/omniai-shaped.js'
import { memoryLog, sql as sqliteSql } from './helpers.js'
import { configFor, demoWorkspace, failed, run, tempDir } from './helpers.js'

describe('restore-check on SQLite', () => {
  it('restores the new backup into a scratch copy, checks it, and records it in the manifest', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': backups, 'restore-check': 'true' },
      dir,
    )
    expect(failed(report)).toEqual({})
    const check = report.checks.find((c) => c.name === 'restore-check')!
    expect(check.detail).toMatch(
      /^restored into a scratch copy and checked: .*schema.*row-counts.*spot-check.*audit-log/,
    )
    const m = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(m.restoreChecked!.checks).toEqual(
      expect.arrayContaining(['integrity', 'schema', 'row-counts', 'spot-check', 'audit-log']),
    )
    expect(m.damaged).toBeUndefined()
    expect(renderSummary(report)).toMatch(/\| Proven \| restored and checked \(/)
    // No scratch copy is left behind (the scratch folder is RUNNER_TEMP, the test's dir).
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('omniai-drill-'))).toEqual([])
    // The accepted backup is one a drill takes and passes.
    const drill = await run('drill', { 'backup-dir': backups, 'drill-log': 'none' }, dir)
    expect(failed(drill.report)).toEqual({})
  })

  it('positive control: without restore-check the backup is written and read back, not restored', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    expect(failed(report)).toEqual({})
    expect(report.checks.map((c) => c.name)).not.toContain('restore-check')
    expect((await readManifest(`${report.backup!.path}.manifest.json`)).restoreChecked).toBe(
      undefined,
    )
    expect(renderSummary(report)).toMatch(/\| Proven \| written and read back; not restored/)
  })

  it('an encrypted backup is checked from its plaintext snapshot; only the encrypted file is kept', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { recipient } = generateAgeIdentity()
    const { report } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        'restore-check': 'true',
        encryption: 'age',
        'age-recipients': recipient,
      },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.backup!.path).toMatch(/\.db\.age$/)
    // This job holds only the public key: it says what it restored instead.
    expect(report.checks.find((c) => c.name === 'restore-check')!.detail).toMatch(
      /\(from the plaintext snapshot it was encrypted from: this job holds only the public key\)$/,
    )
    const m = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(m.restoreChecked).toMatchObject({ from: 'snapshot' })
    expect(await fs.readdir(backups)).toEqual(
      expect.not.arrayContaining([expect.stringMatching(/\.db$/)]),
    )
  })

  it('the check: a copy that differs from its manifest fails it; a scratch-dir that cannot be made is "not run"', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    const manifest = await readManifest(`${report.backup!.path}.manifest.json`)
    const engine = new SqliteEngine(report.backup!.path)
    const scratch = path.join(dir, 'scratch')
    // Positive control: the backup as written passes, with every check named.
    const good = await restoreCheck(
      engine,
      { path: report.backup!.path, manifest },
      scratch,
      memoryLog(),
    )
    expect(good.outcome).toBe('passed')
    expect(good.names).toEqual(expect.arrayContaining(['schema', 'row-counts', 'audit-log']))
    // The same manifest over a file with one audit row gone: restored, but not what was backed up.
    const altered = path.join(dir, 'altered.db')
    await fs.copyFile(report.backup!.path, altered)
    await sqliteSql(altered, 'DELETE FROM audit_logs WHERE id = (SELECT max(id) FROM audit_logs)')
    const bad = await restoreCheck(engine, { path: altered, manifest }, scratch, memoryLog())
    expect(bad.outcome).toBe('failed')
    expect(bad.check.detail).toMatch(/^restored, but .*row-counts: .*audit_logs/)
    // A file where scratch-dir should be: the check cannot run, which says nothing of the backup.
    const blocked = path.join(dir, 'blocked')
    await fs.writeFile(blocked, '')
    const notRun = await restoreCheck(
      engine,
      { path: report.backup!.path, manifest },
      blocked,
      memoryLog(),
    )
    expect(notRun.outcome).toBe('not-run')
    expect(notRun.check.detail).toMatch(/^scratch-dir: /)
  })

  it('begins before its manifest exists (the copy is restored meanwhile); without one it is abandoned and leaves nothing', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    const file = report.backup!.path
    const manifest = await readManifest(`${file}.manifest.json`)
    const engine = new SqliteEngine(file)
    const scratch = path.join(dir, 'scratch')
    let give!: (m: Manifest) => void
    const later = new Promise<Manifest>((resolve) => (give = resolve))
    const checking = restoreCheck(engine, { path: file, manifest: later }, scratch, memoryLog())
    // The restored copy appears while the manifest is still to come. (Were the restore to wait
    // for it, this would give up after 20 s and the test fail.)
    const restored = async () =>
      (await fs.readdir(scratch).catch(() => [] as string[])).length > 0 &&
      (await fs.readdir(path.join(scratch, (await fs.readdir(scratch))[0]!))).includes(
        'restored.db',
      )
    for (let i = 0; i < 200 && !(await restored()); i++) await sleep(100)
    expect(await restored()).toBe(true)
    give(manifest)
    const done = await checking
    expect(done.outcome).toBe('passed')
    expect(done.names).toEqual(expect.arrayContaining(['integrity', 'schema', 'audit-log']))
    // A manifest that never comes (the snapshot was damaged, the backup failed): the check ends
    // as not run, and its scratch copy is gone.
    const never = Promise.reject(new Error('abandoned: there is no backup to check'))
    never.catch(() => undefined)
    const abandoned = await restoreCheck(
      engine,
      { path: file, manifest: never },
      scratch,
      memoryLog(),
    )
    expect(abandoned.outcome).toBe('not-run')
    expect(await fs.readdir(scratch)).toEqual([])
  })

  it('a damaged source: the check begun with the snapshot is abandoned, the copy kept as damaged, no scratch copy left', async () => {
    const dir = await tempDir()
    const db = path.join(dir, 'omniai.db')
    await generateOmniaiShaped(db)
    expect(await damageIndexes(db, key('user', 2))).toBeGreaterThan(0)
    const { report, log } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': path.join(dir, 'b'), 'restore-check': 'true' },
      dir,
    )
    // The check had begun (its copy was restored) before the damage was known: what follows
    // is the abandoning of a check under way, not of one never started.
    expect(log.lines.some((l) => /^restore: file copy/.test(l))).toBe(true)
    expect(report.ok).toBe(false)
    expect(report.backup!.path).toMatch(/-damaged\.db$/)
    expect(failed(report).integrity).toMatch(/^integrity_check FAILED: /)
    // Nothing to accept, so nothing is said to be restored and checked.
    expect(report.checks.map((c) => c.name)).not.toContain('restore-check')
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('omniai-drill-'))).toEqual([])
  })

  it('a bad value fails in one line naming restore-check; set in a drill it is only warned about', () => {
    expect(() => configFor('backup', { 'restore-check': 'yes' }, '/t')).toThrow(
      /^restore-check: "yes" is not true or false\./,
    )
    const drill = configFor('drill', { 'restore-check': 'true' }, '/t')
    expect(drill.ignoredInputs.join('\n')).toMatch(/^restore-check: set, but mode drill/m)
  })
})

const source = inject('pgSource')
const restoreServer = inject('pgRestore')

const sql = pgQuery
const onDb = onDatabase

describe.skipIf(!source)('restore-check on PostgreSQL', () => {
  it('without restore-connection-string it is refused before any snapshot, naming both inputs', async () => {
    const dir = await tempDir()
    const backups = path.join(dir, 'backups')
    expect(() =>
      configFor(
        'backup',
        { 'connection-string': onDb(source, 'postgres'), 'restore-check': 'true' },
        dir,
      ),
    ).toThrow(/^restore-check: .*restore-connection-string is not set\. Fix: /)
    await expect(fs.readdir(backups)).rejects.toThrow()
  })

  it('restores into a scratch database on restore-connection-string, checks it, drops it', async () => {
    const name = `omniai_rc${process.pid}_ok`
    await sql(source, `DROP DATABASE IF EXISTS ${name}`)
    await sql(source, `CREATE DATABASE ${name}`)
    const url = onDb(source, name)
    await generatePostgresDemo(url, { conversations: 40, auditRows: 500 })
    const dir = await tempDir()
    const backups = path.join(dir, 'backups')
    const passes = vi.spyOn(PgDatabase.prototype, 'integrityProblems')
    let report
    try {
      ;({ report } = await run(
        'backup',
        {
          'connection-string': url,
          'backup-dir': backups,
          'restore-check': 'true',
          'restore-connection-string': restoreServer,
        },
        dir,
      ))
      // One integrity pass (foreign-key anti-joins, sequences) on the restored database, and
      // one on the source's snapshot: PostgreSQL has no copy whose findings stand for both.
      const on = (db: unknown) => (db as PgDatabase).url()
      expect(passes.mock.contexts.filter((db) => /omniai_drill_/.test(on(db)))).toHaveLength(1)
      expect(passes.mock.contexts.filter((db) => !/omniai_drill_/.test(on(db)))).toHaveLength(1)
    } finally {
      passes.mockRestore()
    }
    expect(failed(report)).toEqual({})
    expect(report.checks.find((c) => c.name === 'restore-check')?.detail).toMatch(/audit-log/)
    expect((await readManifest(`${report.backup!.path}.manifest.json`)).restoreChecked).toBeTruthy()
    const left = await sql(
      restoreServer,
      "SELECT datname FROM pg_database WHERE datname LIKE 'omniai_drill_%'",
    )
    expect(left).toEqual([])
  })

  it('a restore server that refuses the drill role: the check did not run, the backup is kept as a backup, the job fails, retention deletes nothing', async () => {
    const name = `omniai_rc${process.pid}_bad`
    await sql(source, `DROP DATABASE IF EXISTS ${name}`)
    await sql(source, `CREATE DATABASE ${name}`)
    const url = onDb(source, name)
    await generatePostgresDemo(url, { conversations: 20, auditRows: 100 })
    // A restore server login that may not create the drill's own role: the restore fails.
    const role = `omniai_rc_weak${process.pid}`
    await sql(restoreServer, `DROP ROLE IF EXISTS ${role}`)
    await sql(restoreServer, `CREATE ROLE ${role} LOGIN PASSWORD 'weak-pass'`)
    const weak = new URL(restoreServer)
    weak.username = role
    weak.password = 'weak-pass'
    const dir = await tempDir()
    const backups = path.join(dir, 'backups')
    // Yesterday's good backup, which retention would delete with keep-daily: 1.
    const first = await run('backup', { 'connection-string': url, 'backup-dir': backups }, dir)
    expect(failed(first.report)).toEqual({})
    const { report } = await run(
      'backup',
      {
        'connection-string': url,
        'backup-dir': backups,
        'restore-check': 'true',
        'restore-connection-string': weak.href,
        'keep-daily': '1',
        'keep-weekly': '0',
      },
      dir,
    )
    expect(report.ok).toBe(false)
    expect(failed(report)['restore-check']).toMatch(/^restore-connection-string: /)
    // Nothing says the backup is bad: it is kept as written and read back, not proven.
    expect(report.backup!.path).not.toMatch(/-damaged/)
    const m = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(m.damaged).toBeUndefined()
    expect(m.restoreChecked).toBeUndefined()
    expect(report.warnings.join('\n')).toMatch(
      /^restore-check: not run, restore-connection-string: /m,
    )
    // keep-daily: 1 would have deleted yesterday's: retention did not run.
    expect(report.retention).toBeUndefined()
    await fs.access(first.report.backup!.path)
    // No password of either server reached the report or the summary.
    expect(JSON.stringify(report) + renderSummary(report)).not.toContain('weak-pass')
  })
})
