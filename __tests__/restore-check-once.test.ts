// restore-check on SQLite reads the new backup's bytes for integrity_check once, not twice: the
// restored scratch copy is the snapshot copied by the kernel, and its integrity and foreign-key
// findings are the snapshot's. Where that copy cannot be made or checked, the snapshot checks
// its own file, so damage is never left unfound.

import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { Transferable } from 'node:worker_threads'
import { describe, expect, it, vi } from 'vitest'
import { readManifest } from '../src/manifest/manifest.js'
import { restoreCheck } from '../src/modes/backup.js'
import { SqliteEngine } from '../src/engines/sqlite/engine.js'
import {
  damageIndexes,
  deleteLikeOmniai,
  generateOmniaiShaped,
  key,
} from './fixtures/omniai-shaped.js'
import { demoWorkspace, failed, memoryLog, run, tempDir } from './helpers.js'

// The real worker_threads, with a record of each file a check worker was given and the jobs it
// ran on it.
const checked = vi.hoisted(() => [] as { jobs: string[]; file: string }[])
vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:worker_threads')>()
  class Recorded extends real.Worker {
    private readonly jobs: string[] | undefined
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args)
      this.jobs = (args[1]?.workerData as { jobs?: string[] } | undefined)?.jobs
    }
    override postMessage(value: unknown, transfer?: readonly Transferable[]): void {
      if (this.jobs && typeof value === 'string') checked.push({ jobs: this.jobs, file: value })
      super.postMessage(value, transfer)
    }
  }
  return { ...real, Worker: Recorded, default: { ...real, Worker: Recorded } }
})

/** The files integrity_check ran on since `from`, by name. */
const integrityRuns = (from: number) =>
  checked
    .slice(from)
    .filter((c) => c.jobs.includes('integrity'))
    .map((c) => path.basename(c.file))

describe('restore-check reads the backup for integrity once', () => {
  it('the restored copy is checked once, and its findings are the snapshot’s', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const from = checked.length
    const { report } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': backups, 'restore-check': 'true' },
      dir,
    )
    expect(report.ok).toBe(true)
    expect(integrityRuns(from)).toEqual(['restored.db'])
    const integrity = report.checks.find((c) => c.name === 'integrity')!
    expect(integrity).toMatchObject({ ok: true })
    expect(integrity.detail).toMatch(/on the restore check's byte-for-byte copy of this file\)$/)
    expect(report.checks.find((c) => c.name === 'restore-check')?.ok).toBe(true)
  })

  it('positive control: without restore-check, the snapshot file itself is checked, once', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const from = checked.length
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    expect(report.ok).toBe(true)
    const runs = integrityRuns(from)
    expect(runs).toHaveLength(1)
    expect(runs[0]).not.toBe('restored.db')
    expect(report.checks.find((c) => c.name === 'integrity')?.detail).not.toMatch(/copy/)
  })

  it('a damaged source is found on the copy and kept as the source’s damage, not as a failed restore', async () => {
    const dir = await tempDir()
    const db = path.join(dir, 'omniai.db')
    await generateOmniaiShaped(db)
    expect(await damageIndexes(db, key('user', 2))).toBeGreaterThan(0)
    const from = checked.length
    const { report } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': path.join(dir, 'b'), 'restore-check': 'true' },
      dir,
    )
    expect(integrityRuns(from)).toEqual(['restored.db'])
    expect(report.ok).toBe(false)
    expect(report.backup!.path).toMatch(/-damaged\.db$/)
    expect(failed(report).integrity).toMatch(/^integrity_check FAILED: /)
    expect(report.warnings.join('\n')).toMatch(/is DAMAGED/)
    expect(report.warnings.join('\n')).not.toMatch(/did not restore and check/)
  })

  it('where the copy cannot be made, the snapshot checks its own file and still finds the damage', async () => {
    const dir = await tempDir()
    const db = path.join(dir, 'omniai.db')
    await generateOmniaiShaped(db)
    expect(await damageIndexes(db, key('user', 2))).toBeGreaterThan(0)
    // A file where scratch-dir should be: the restore check cannot make its copy.
    const blocked = path.join(dir, 'blocked')
    await fs.writeFile(blocked, '')
    const from = checked.length
    const { report } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': path.join(dir, 'b'),
        'restore-check': 'true',
        'scratch-dir': blocked,
      },
      dir,
    )
    const runs = integrityRuns(from)
    expect(runs).toHaveLength(1)
    expect(runs[0]).not.toBe('restored.db')
    expect(report.ok).toBe(false)
    expect(report.backup!.path).toMatch(/-damaged\.db$/)
    expect(failed(report).integrity).toMatch(/^integrity_check FAILED: /)
  })

  it('rows with missing parents: the check starts on the inventory and compares the violations the manifest records', async () => {
    const dir = await tempDir()
    const db = path.join(dir, 'omniai.db')
    await generateOmniaiShaped(db)
    await deleteLikeOmniai(db, { conversation: 2, user: 4 })
    const { report } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': path.join(dir, 'b'), 'restore-check': 'true' },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.checks.find((c) => c.name === 'restore-check')?.detail).toMatch(/foreign-keys/)
    const manifest = await readManifest(`${report.backup!.path}.manifest.json`)
    const recorded = manifest.inventory.foreignKeyViolations!
    expect(recorded.length).toBeGreaterThan(0)
    // Positive control: the same restored copy against a manifest that records one orphan fewer
    // fails the foreign-key comparison, though the inventory that the row checks read is whole.
    const fewer = {
      ...manifest,
      inventory: {
        ...manifest.inventory,
        foreignKeyViolations: recorded.map((v, i) => (i === 0 ? { ...v, rows: v.rows - 1 } : v)),
      },
    }
    const result = await restoreCheck(
      new SqliteEngine(report.backup!.path),
      {
        path: report.backup!.path,
        manifest: fewer,
        inventory: Promise.resolve(manifest.inventory),
      },
      path.join(dir, 'scratch'),
      memoryLog(),
    )
    expect(result.outcome).toBe('failed')
    expect(result.check.detail).toMatch(/foreign-keys: /)
  })
})
