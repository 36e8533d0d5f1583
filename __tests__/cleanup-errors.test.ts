// A backup that fails removes what it wrote; where that removal fails too (a backup-dir the
// runner cannot enter: lstat gives EACCES), the error of the removal must not replace the one
// that says why the backup failed, naming the input. Root is never refused a lstat, so the
// refusal is the one thing stood in for here; the failed write is a real read-only filesystem.
import { execFileSync } from 'node:child_process'
import * as path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { demoWorkspace, run, tempDir } from './helpers.js'

const refuse = vi.hoisted(() => ({
  under: null as string | null,
  /** Refuses only the folder itself, not what is removed inside it on the way. */
  folderOnly: false,
  refused: 0,
}))
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>()
  const rm: typeof real.rm = async (target, options) => {
    const t = String(target)
    const hit = refuse.folderOnly
      ? path.dirname(t) === refuse.under
      : refuse.under !== null && t.startsWith(`${refuse.under}/`)
    if (hit) {
      refuse.refused++
      throw Object.assign(new Error(`EACCES: permission denied, lstat '${String(target)}'`), {
        code: 'EACCES',
        syscall: 'lstat',
      })
    }
    return real.rm(target, options)
  }
  return { ...real, rm, default: { ...real, rm } }
})

const root = process.getuid?.() === 0 && process.platform === 'linux'
const mounted: string[] = []
afterEach(() => {
  refuse.under = null
  refuse.folderOnly = false
  for (const m of mounted.splice(0)) execFileSync('umount', [m])
})

/** A new read-only tmpfs: every write into it fails, for real. */
async function readOnlyDisk(): Promise<string> {
  const disk = path.join(await tempDir(), 'disk')
  execFileSync('mkdir', [disk])
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4096k,ro', 'tmpfs', disk])
  mounted.push(disk)
  return disk
}

describe.skipIf(!root)('a failed backup whose partial files cannot be removed either', () => {
  it('says why the backup failed, naming backup-dir, not the removal’s EACCES', async () => {
    const ws = await demoWorkspace({ conversations: 5 })
    const disk = await readOnlyDisk()
    refuse.under = disk
    const { report, log } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': disk },
      ws.dir,
    )
    // Positive control: the removal was tried, and refused.
    expect(refuse.refused).toBeGreaterThan(0)
    expect(report.error).toMatch(
      /^backup-dir: cannot write in .*disk: read-only filesystem; no backup was written; older backups are untouched\. Fix: point the input at a writable folder\.$/,
    )
    // What could not be removed is not silent.
    expect(log.warnings).toContainEqual(
      expect.stringMatching(/^could not remove the partial file .*disk\/\..*: Error: EACCES/),
    )
  })

  it('an encrypted backup: nor does a scratch folder that will not go, which is said', async () => {
    const ws = await demoWorkspace({ conversations: 5 })
    const disk = await readOnlyDisk()
    const scratch = path.join(await tempDir(), 'scratch')
    refuse.under = scratch
    refuse.folderOnly = true
    const { report, log } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': disk,
        'scratch-dir': scratch,
        encryption: 'age',
        'age-passphrase': 'correct horse battery staple',
      },
      ws.dir,
    )
    expect(refuse.refused).toBeGreaterThan(0)
    expect(report.error).toMatch(/^backup-dir: cannot write in .*disk: read-only filesystem; /)
    expect(log.warnings).toContainEqual(
      expect.stringMatching(
        /^could not remove the scratch folder .*scratch\/omniai-backup-\S+ \(it may hold the plaintext snapshot; remove it by hand\): Error: EACCES/,
      ),
    )
  })
})
