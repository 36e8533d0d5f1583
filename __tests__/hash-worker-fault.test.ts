// The snapshot's sha256 is taken by a worker thread while the snapshot is checked, and awaited
// only after. A worker that fails meanwhile (it cannot start, a read error) must fail the job
// with its one-line error and leave nothing, not end the process on an unhandled rejection with
// the plaintext snapshot left in backup-dir.
import * as fs from 'node:fs/promises'
import { describe, expect, it, vi } from 'vitest'
import { demoWorkspace, run } from './helpers.js'

const fault = vi.hoisted(() => ({ on: false, calls: 0 }))
vi.mock('../src/util/fs.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/util/fs.js')>()
  return {
    ...real,
    digestInWorker: (file: string) => {
      fault.calls++
      // Fails at once: long before the snapshot's checks are done and the hash is awaited.
      return fault.on
        ? Promise.reject(new Error('worker could not start (ERR_WORKER_INIT_FAILED)'))
        : real.digestInWorker(file)
    },
  }
})

describe('the hash worker fails while the snapshot is checked', () => {
  for (const restoreCheck of ['false', 'true']) {
    it(`restore-check: ${restoreCheck}: the job fails with one line, and nothing is left`, async () => {
      const { dir, db, backups } = await demoWorkspace()
      const unhandled: unknown[] = []
      const record = (r: unknown) => unhandled.push(r)
      process.on('unhandledRejection', record)
      fault.on = true
      fault.calls = 0
      try {
        const { report } = await run(
          'backup',
          { 'connection-string': db, 'backup-dir': backups, 'restore-check': restoreCheck },
          dir,
        )
        // Let any rejection left without a handler surface.
        await new Promise((resolve) => setTimeout(resolve, 50))
        expect(fault.calls).toBe(1)
        expect(unhandled).toEqual([])
        expect(report.ok).toBe(false)
        expect(report.error).toMatch(/worker could not start \(ERR_WORKER_INIT_FAILED\)/)
        expect(report.error).not.toMatch(/\n/)
        expect(await fs.readdir(backups).catch(() => [])).toEqual([])
        // No scratch folder of the snapshot's or the restore check's (the report is a file).
        const left = (await fs.readdir(dir)).filter((f) => /^omniai-(drill|backup)-/.test(f))
        expect(left).toEqual(['omniai-backup-report.json'])
      } finally {
        fault.on = false
        process.off('unhandledRejection', record)
      }
      // Positive control: with the worker working, the same backup is written.
      const { report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'restore-check': restoreCheck },
        dir,
      )
      expect(report.ok).toBe(true)
    })
  }
})
