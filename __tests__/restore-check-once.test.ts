// restore-check on SQLite reads the new backup's bytes for integrity_check once, not twice: the
// restored scratch copy is the snapshot copied by the kernel, and its integrity and foreign-key
// findings are the snapshot's. Where that copy cannot be made or checked, the snapshot checks
// its own file, so damage is never left unfound.

import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it, vi } from 'vitest'
import { readManifest } from '../src/manifest/manifest.js'
import { restoreCheck } from '../src/modes/backup.js'
import { SqliteDatabase, SqliteEngine } from '../src/engines/sqlite/engine.js'
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
  const { recordWorkers } = await import('./recorded-workers.js')
  return recordWorkers(await importOriginal<typeof import('node:worker_threads')>(), {
    posted: (data, value) => {
      const jobs = (data as { jobs?: string[] } | undefined)?.jobs
      if (jobs && typeof value === 'string') checked.push({ jobs, file: value })
    },
  })
})

// The real fs/promises, but with copies into a restore check's scratch folder damaged as they
// land while `damageCopies` is set: a failing scratch disk under a sound backup.
const faulty = vi.hoisted(() => ({ damageCopies: false }))
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>()
  const copyFile: typeof real.copyFile = async (src, dest, mode) => {
    await real.copyFile(src, dest, mode)
    if (faulty.damageCopies && String(dest).includes(`${path.sep}omniai-drill-`)) {
      expect(await damageIndexes(String(dest), key('user', 2))).toBeGreaterThan(0)
    }
  }
  return { ...real, copyFile, default: { ...real, copyFile } }
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

  it('a damaged source: found on the copy, then on the snapshot itself, and kept as the source’s damage, not as a failed restore', async () => {
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
    // Damage in the copy is the source's only once the snapshot itself shows it too.
    const runs = integrityRuns(from)
    expect(runs[0]).toBe('restored.db')
    expect(runs).toHaveLength(2)
    expect(runs[1]).not.toBe('restored.db')
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

  it('rows with missing parents: the backup records the copy’s violations, and its restore check does not call that one reading a match; a check that reads its own copy compares them', async () => {
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
    // The manifest's violations are the restored copy's own findings: compared with themselves,
    // they could never differ, so the check says so instead of naming them as matched.
    const detail = report.checks.find((c) => c.name === 'restore-check')!.detail
    expect(detail).toMatch(
      /\bintegrity\b.* match the manifest; the foreign-key findings .* so not compared$/,
    )
    expect(detail).not.toMatch(/foreign-keys/)
    const manifest = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(manifest.restoreChecked!.checks).toContain('integrity')
    expect(manifest.restoreChecked!.checks).not.toContain('foreign-keys')
    expect(report.restoreChecked!.checks).not.toContain('foreign-keys')
    const recorded = manifest.inventory.foreignKeyViolations!
    expect(recorded.length).toBeGreaterThan(0)
    // A restore check of the stored backup, whose copy is read apart from the manifest's
    // findings, compares them and names them.
    const apart = await restoreCheck(
      new SqliteEngine(report.backup!.path),
      { path: report.backup!.path, manifest },
      path.join(dir, 'scratch-apart'),
      memoryLog(),
    )
    expect(apart.outcome).toBe('passed')
    expect(apart.names).toContain('foreign-keys')
    expect(apart.check.detail).not.toMatch(/not compared/)
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

  it('a copy damaged on a failing scratch disk under a sound backup: the snapshot is read too, the copy is blamed, and the backup is kept unproven, not damaged', async () => {
    const dir = await tempDir()
    const db = path.join(dir, 'omniai.db')
    const backups = path.join(dir, 'b')
    await generateOmniaiShaped(db)
    const from = checked.length
    faulty.damageCopies = true
    let report
    try {
      ;({ report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'restore-check': 'true' },
        dir,
      ))
    } finally {
      faulty.damageCopies = false
    }
    // The copy, then the snapshot itself once the copy's findings showed damage.
    const runs = integrityRuns(from)
    expect(runs[0]).toBe('restored.db')
    expect(runs).toHaveLength(2)
    expect(runs[1]).not.toBe('restored.db')
    expect(report.ok).toBe(false)
    expect(report.checks.find((c) => c.name === 'integrity')).toMatchObject({ ok: true })
    expect(report.checks.find((c) => c.name === 'integrity')!.detail).not.toMatch(/copy/)
    // The copy no longer hashes as the backup, which still does: the check did not run on the
    // backup, which is kept under its own name, not proven, and retention deletes nothing.
    expect(failed(report)['restore-check']).toMatch(
      /^scratch-dir: the restored copy differs from the backup it was copied from \(sha256 [0-9a-f]{12}… and \d+ bytes, where the backup has [0-9a-f]{12}… and \d+\): the disk under scratch-dir did not keep it/,
    )
    expect(report.backup!.path).not.toMatch(/-damaged/)
    const manifest = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(manifest.damaged).toBeUndefined()
    expect(manifest.restoreChecked).toBeUndefined()
    expect(manifest.inventory.foreignKeyViolations).toEqual([])
    expect(report.warnings.join('\n')).toMatch(/^restore-check: not run, scratch-dir: /m)
    expect(report.warnings.join('\n')).not.toMatch(/is DAMAGED|foreign keys:|did not restore/)
  })

  it('the row checks begin on the inventory while the manifest is still to come; without it they wait', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    const file = report.backup!.path
    const manifest = await readManifest(`${file}.manifest.json`)
    const reads = vi.spyOn(SqliteDatabase.prototype, 'auditRows')
    try {
      for (const early of [true, false]) {
        reads.mockClear()
        let give!: (m: typeof manifest) => void
        const later = new Promise<typeof manifest>((resolve) => (give = resolve))
        const checking = restoreCheck(
          new SqliteEngine(file),
          {
            path: file,
            manifest: later,
            ...(early ? { inventory: Promise.resolve(manifest.inventory) } : {}),
          },
          path.join(dir, `scratch-${early}`),
          memoryLog(),
        )
        if (early) {
          // Rows are read with the manifest still pending (were they not, this gives up after 20 s).
          for (let i = 0; i < 200 && reads.mock.calls.length === 0; i++) await sleep(100)
          expect(reads).toHaveBeenCalled()
        } else {
          // Positive control: the restored copy is there, and still no row has been read.
          const scratch = path.join(dir, `scratch-${early}`)
          const restored = async () =>
            (await fs.readdir(scratch).catch(() => [] as string[])).length > 0
          for (let i = 0; i < 200 && !(await restored()); i++) await sleep(100)
          await sleep(300)
          expect(reads).not.toHaveBeenCalled()
        }
        give(manifest)
        expect((await checking).outcome).toBe('passed')
        expect(reads).toHaveBeenCalled()
      }
    } finally {
      reads.mockRestore()
    }
  })
})
