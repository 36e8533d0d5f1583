// Folders the action makes (backup-dir, scratch-dir, a report's folder...) are made by makeDirs,
// not by Node's recursive mkdir, which never returns where a parent that exists answers mkdir
// with ENOENT (a path under /proc): the job would spin until the runner's time-out.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { makeDirs, makeDirsSync } from '../src/util/fs.js'
import { demoWorkspace, run, tempDir } from './helpers.js'

const linux = process.platform === 'linux'

describe('makeDirs', () => {
  it('makes every missing folder, with the mode asked for, and accepts one that exists', async () => {
    const dir = await tempDir()
    const deep = path.join(dir, 'a', 'b', 'c')
    await makeDirs(deep, 0o700)
    for (const p of ['a', 'a/b', 'a/b/c']) {
      const s = await fs.stat(path.join(dir, p))
      expect(s.isDirectory()).toBe(true)
      expect(s.mode & 0o777).toBe(0o700)
    }
    await makeDirs(deep)
    makeDirsSync(path.join(deep, 'd'))
    expect((await fs.stat(path.join(deep, 'd'))).isDirectory()).toBe(true)
  })

  it('through a symbolic link to a folder (macOS: /var is one), and many at once on one path', async () => {
    const dir = await tempDir()
    await fs.mkdir(path.join(dir, 'real'))
    await fs.symlink(path.join(dir, 'real'), path.join(dir, 'link'))
    await makeDirs(path.join(dir, 'link'))
    await makeDirs(path.join(dir, 'link', 'x', 'y'))
    expect((await fs.stat(path.join(dir, 'real', 'x', 'y'))).isDirectory()).toBe(true)
    // Eight callers racing for the same folders: each finds them made, none fails.
    const shared = path.join(dir, 'p', 'q', 'r')
    await Promise.all(Array.from({ length: 8 }, () => makeDirs(shared)))
    expect((await fs.stat(shared)).isDirectory()).toBe(true)
  })

  it('a file in the way is ENOTDIR, whether it is the folder or a parent', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'file')
    await fs.writeFile(file, 'x')
    for (const target of [file, path.join(file, 'below')]) {
      await expect(makeDirs(target)).rejects.toMatchObject({ code: 'ENOTDIR' })
      expect(() => makeDirsSync(target)).toThrow(expect.objectContaining({ code: 'ENOTDIR' }))
    }
  })

  it.runIf(linux)(
    'under /proc: an error at once, where Node’s recursive mkdir never returns',
    async () => {
      for (const target of ['/proc/omniai-backups-test', '/proc/omniai-backups-test/deeper']) {
        await expect(makeDirs(target)).rejects.toMatchObject({ code: 'ENOENT' })
        expect(() => makeDirsSync(target)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
      }
      // Positive control: what makeDirs replaces is still stuck after 3 s (in a process of its
      // own, which the time-out ends: its spinning thread could not be stopped here).
      const stuck = spawnSync(
        process.execPath,
        ['-e', "require('node:fs').mkdirSync('/proc/omniai-backups-test', { recursive: true })"],
        { timeout: 3000 },
      )
      expect(stuck.signal).toBe('SIGTERM')
    },
  )
})

describe.runIf(linux)('a folder input under /proc fails in one line, naming it', () => {
  it('backup-dir', async () => {
    const ws = await demoWorkspace({ conversations: 5 })
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': '/proc/omniai-backups-test' },
      ws.dir,
    )
    expect(report.error).toMatch(
      /^backup-dir: cannot create \/proc\/omniai-backups-test \(ENOENT\)\. Fix: set backup-dir to a writable folder\.$/,
    )
  })

  it('scratch-dir', async () => {
    const ws = await demoWorkspace({ conversations: 5 })
    const backups = path.join(await tempDir(), 'backups')
    const made = await run('backup', { 'connection-string': ws.db, 'backup-dir': backups }, ws.dir)
    expect(made.report.error).toBeUndefined()
    const { report } = await run(
      'drill',
      {
        'backup-dir': backups,
        'scratch-dir': '/proc/omniai-backups-test/scratch',
        'drill-log': 'none',
      },
      ws.dir,
    )
    expect(report.error).toMatch(
      /^scratch-dir: cannot create \/proc\/omniai-backups-test\/scratch \(ENOENT\)\. Fix: set scratch-dir to a writable folder\.$/,
    )
  })
})
