// A backup folder on a file system without hard links: many FUSE mounts (s3fs, gcsfuse, rclone)
// and some network shares refuse link(2). The backup is then committed by taking its final name
// with an exclusive create and renaming over that placeholder, still never replacing a file.
//
// The file system itself stands in here: link() from node:fs/promises refuses as such a mount
// does (EPERM), for every caller in the action's code. (None can be mounted on these machines:
// their kernel has no vfat or exFAT, and a FUSE one would be a stand-in written for the test
// too.) Everything else is real: SQLite files, the backup, restore-check and the drill.

import { createHash } from 'node:crypto'
import type { PathLike } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { readManifest } from '../src/manifest/manifest.js'
import { demoWorkspace, failed, run, sql } from './helpers.js'

const links = vi.hoisted(() => ({
  refuse: true,
  tried: 0,
  failCommit: false,
  failUnlink: false,
  // How it fails: EIO, or ENOENT after removing the name (an unlink a network file system retried).
  // Or EIO after removing it (a soft network mount that lost the answer).
  unlinkCode: 'EIO' as 'EIO' | 'ENOENT' | 'EIO, removed',
  // The backup folder, and the temporary names link() gave a backup's final name there to.
  backups: '',
  committed: new Set<string>(),
}))

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>()
  const link = async (from: PathLike, to: PathLike) => {
    links.tried++
    const final = String(to)
    const slash = final.lastIndexOf('/')
    if (final.slice(0, slash) === links.backups && !final.startsWith('.', slash + 1)) {
      links.committed.add(String(from))
    }
    if (!links.refuse) return real.link(from, to)
    throw Object.assign(new Error(`EPERM: operation not permitted, link '${from}' -> '${to}'`), {
      errno: -1,
      code: 'EPERM',
      syscall: 'link',
    })
  }
  // With failCommit, the rename that gives a backup its final name fails (a full disk, a
  // dropped network mount), after the placeholder took the name.
  const rename = async (from: PathLike, to: PathLike) => {
    if (links.failCommit && /^[^.].*\.db$/.test(String(to).split('/').pop()!)) {
      throw Object.assign(new Error(`EIO: i/o error, rename '${from}' -> '${to}'`), {
        errno: -5,
        code: 'EIO',
        syscall: 'rename',
      })
    }
    return real.rename(from, to)
  }
  // With failUnlink, removing a backup's temporary name fails once link() gave it its final one.
  const unlink = async (file: PathLike) => {
    if (links.failUnlink && links.committed.has(String(file))) {
      if (links.unlinkCode === 'ENOENT') {
        await real.unlink(file)
        throw Object.assign(new Error(`ENOENT: no such file or directory, unlink '${file}'`), {
          errno: -2,
          code: 'ENOENT',
          syscall: 'unlink',
        })
      }
      if (links.unlinkCode === 'EIO, removed') await real.unlink(file)
      throw Object.assign(new Error(`EIO: i/o error, unlink '${file}'`), {
        errno: -5,
        code: 'EIO',
        syscall: 'unlink',
      })
    }
    return real.unlink(file)
  }
  return { ...real, link, rename, unlink, default: { ...real, link, rename, unlink } }
})

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex')

/** What a backup folder holds besides backups and their manifests: work files left behind. */
async function leftovers(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.startsWith('.') || n.endsWith('.tmp'))
}

describe('a backup folder without hard links', () => {
  it('backs up, restore-checks and drills as on any other folder', async () => {
    links.tried = 0
    const { dir, db, backups } = await demoWorkspace()
    const { report } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': backups, 'restore-check': 'true' },
      dir,
    )
    expect(failed(report)).toEqual({})
    // The stand-in was in the way: the snapshot's copy, the restore check's and the commit.
    expect(links.tried).toBeGreaterThanOrEqual(3)
    const file = report.backup!.path
    const manifest = await readManifest(`${file}.manifest.json`)
    expect(manifest.backup.sha256).toBe(await sha256(file))
    expect(manifest.restoreChecked).toBeDefined()
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600)
    expect(await leftovers(backups)).toEqual([])

    const drill = await run('drill', { 'backup-dir': backups, 'drill-log': 'none' }, dir)
    expect(failed(drill.report)).toEqual({})
  })

  it('never replaces a backup already under the name: the new one takes the next', async () => {
    const { dir, db, backups } = await demoWorkspace()
    const first = (await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir))
      .report.backup!.path
    const before = await sha256(first)
    // The database changes, so the second backup's bytes differ from the first's.
    await sql(db, "UPDATE users SET display_name = 'renamed'")
    links.tried = 0
    const { report } = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    expect(failed(report)).toEqual({})
    expect(links.tried).toBeGreaterThanOrEqual(1)
    const second = report.backup!.path
    expect(path.dirname(second)).toBe(path.dirname(first))
    expect(second).not.toBe(first)
    expect(await sha256(first)).toBe(before)
    expect(await sha256(second)).not.toBe(before)
    expect(await leftovers(backups)).toEqual([])
  })

  it('a commit that fails leaves neither the backup nor its placeholder under the name', async () => {
    const { dir, db, backups } = await demoWorkspace()
    links.failCommit = true
    try {
      const { report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups },
        dir,
      )
      expect(report.error).toMatch(/EIO: i\/o error, rename /)
    } finally {
      links.failCommit = false
    }
    expect(await fs.readdir(backups)).toEqual([])
  })

  it('where link() works but the temporary name cannot be removed after it, the final name is taken back: the failed job leaves no file', async () => {
    // Without taking it back, the backup stood under its final name with no manifest while the
    // job reported that no backup was written.
    links.refuse = false
    links.failUnlink = true
    try {
      for (const encoding of [{}, { compression: 'gzip' }]) {
        const { dir, db, backups } = await demoWorkspace()
        links.backups = backups
        const { report } = await run(
          'backup',
          { 'connection-string': db, 'backup-dir': backups, ...encoding },
          dir,
        )
        // The unlink that failed is the commit's, in backup-dir (not the snapshot's own copy).
        expect(report.error).toContain(`EIO: i/o error, unlink '${backups}/.omniai-`)
        expect(await fs.readdir(backups)).toEqual([])
      }
    } finally {
      links.refuse = true
      links.failUnlink = false
      links.backups = ''
    }
  })

  for (const code of ['ENOENT', 'EIO, removed'] as const) {
    it(`an unlink of the temporary name that failed (${code}) but left it gone is a move done: the backup is committed`, async () => {
      links.refuse = false
      links.failUnlink = true
      links.unlinkCode = code
      try {
        const { dir, db, backups } = await demoWorkspace()
        links.backups = backups
        const { report } = await run(
          'backup',
          { 'connection-string': db, 'backup-dir': backups },
          dir,
        )
        expect(failed(report)).toEqual({})
        expect(links.committed.size).toBeGreaterThan(0)
        expect(await leftovers(backups)).toEqual([])
        expect(await readManifest(`${report.backup!.path}.manifest.json`)).toBeDefined()
      } finally {
        links.refuse = true
        links.failUnlink = false
        links.unlinkCode = 'EIO'
        links.backups = ''
      }
    })
  }

  it('positive control: where link() works, it is what commits the backup', async () => {
    links.refuse = false
    links.tried = 0
    try {
      const { dir, db, backups } = await demoWorkspace()
      const { report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups },
        dir,
      )
      expect(failed(report)).toEqual({})
      expect(links.tried).toBeGreaterThanOrEqual(2)
      expect(await leftovers(backups)).toEqual([])
    } finally {
      links.refuse = true
    }
  })
})
