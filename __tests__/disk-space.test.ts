/**
 * A full disk, the commonest backup failure, on real small filesystems (tmpfs, mounted by the
 * test as root): each job checks the room it needs before it writes, names the input, the
 * folder, the space needed and the space free; a write that fails anyway is said in words; and
 * nothing is left behind or damaged.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { generateAgeIdentity } from '../src/codec/index.js'
import { openSqlite } from '../src/engines/sqlite/driver.js'
import { asWriteFailure, writeFailureCause } from '../src/util/space.js'
import { demoWorkspace, failed, run, tempDir } from './helpers.js'

const root = process.getuid?.() === 0 && process.platform === 'linux'
const mounted: string[] = []

afterEach(async () => {
  for (const m of mounted.splice(0)) {
    try {
      execFileSync('umount', [m])
    } catch {
      // already gone
    }
  }
})

/** A fresh tmpfs of `kib` KiB, read-only when asked (after `prepare` ran on it). */
async function smallDisk(kib: number, prepare?: (dir: string) => Promise<void>, readOnly = false) {
  const dir = await tempDir()
  const mnt = path.join(dir, 'disk')
  await fs.mkdir(mnt)
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', mnt])
  mounted.push(mnt)
  if (prepare) await prepare(mnt)
  if (readOnly) execFileSync('mount', ['-o', 'remount,ro', mnt])
  return mnt
}

const sha = async (f: string) =>
  createHash('sha256')
    .update(await fs.readFile(f))
    .digest('hex')
const listAll = async (dir: string) => (await fs.readdir(dir, { recursive: true })).sort()

describe.skipIf(!root)('a full disk (tmpfs)', () => {
  it('backup: fails before writing, naming backup-dir, the folder, the space needed and free', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    const size = (await fs.stat(ws.db)).size
    const disk = await smallDisk(Math.floor(size / 1024 / 2))
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': disk },
      ws.dir,
    )
    expect(report.error).toMatch(
      new RegExp(
        `^backup-dir: not enough space: the backup of omniai\\.db \\([\\d.]+ MiB\\) in ${disk} \\(backup-dir\\) needs about [\\d.]+ MiB, and only [\\d.]+ KiB is free there\\. Nothing was written\\. Fix: free [\\d.]+ [KM]iB on that filesystem, or set backup-dir to a folder with room\\.$`,
      ),
    )
    expect(await listAll(disk)).toEqual([])
  })

  it('positive control: the same backup into a disk with room is written', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    const size = (await fs.stat(ws.db)).size
    const disk = await smallDisk(Math.ceil((size * 3) / 1024))
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': disk },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.space).toMatchObject({ dir: disk, nextFits: true })
  })

  it('backup: the summary warns when the next backup will not fit', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    const size = (await fs.stat(ws.db)).size
    const disk = await smallDisk(Math.ceil((size * 1.6) / 1024))
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': disk },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.space!.nextFits).toBe(false)
    expect(report.warnings.join('\n')).toMatch(
      /^backup-dir: .* free in .*, and the newest backup is .*: the next backup will not fit\./m,
    )
  })

  it('backup with encryption: the plaintext snapshot needs scratch-dir, named as such; nothing left', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    const size = (await fs.stat(ws.db)).size
    const scratch = await smallDisk(Math.floor(size / 1024 / 2))
    const { recipient } = generateAgeIdentity()
    const { report } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        'scratch-dir': scratch,
        encryption: 'age',
        'age-recipients': recipient,
      },
      ws.dir,
    )
    expect(report.error).toMatch(
      /^scratch-dir: not enough space: the plaintext snapshot before it is encrypted .* \(scratch-dir\) needs about/,
    )
    expect(await listAll(scratch)).toEqual([])
  })

  it('backup into a read-only backup-dir says "read-only filesystem", not ENOENT', async () => {
    const ws = await demoWorkspace({ conversations: 20 })
    const disk = await smallDisk(8192, undefined, true)
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': disk },
      ws.dir,
    )
    expect(report.error).toMatch(
      /^backup-dir: cannot write in .*: read-only filesystem; no backup was written; older backups are untouched\. Fix: point the input at a writable folder\.$/,
    )
  })

  it('drill: a scratch-dir too small for the restored copy fails before restoring, naming it', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    await run('backup', { 'connection-string': ws.db, 'backup-dir': ws.backups }, ws.dir)
    const scratch = await smallDisk(256)
    const { report } = await run(
      'drill',
      { 'backup-dir': ws.backups, 'scratch-dir': scratch, 'drill-log': 'none' },
      ws.dir,
    )
    expect(report.error).toMatch(
      /^scratch-dir: not enough space: the restored copy \([\d.]+ MiB\) in .* \(scratch-dir\) needs about [\d.]+ MiB, and only [\d.]+ KiB is free there/,
    )
    expect(await listAll(scratch)).toEqual([])
  })

  it('backup with restore-check: a scratch-dir too small for the check keeps the backup, unproven, and says so in one sentence of each kind', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    const scratch = await smallDisk(256)
    const { report } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        'restore-check': 'true',
        'scratch-dir': scratch,
      },
      ws.dir,
    )
    expect(report.ok).toBe(false)
    expect(report.backup!.path).not.toMatch(/-damaged/)
    const warning = report.warnings.find((w) => w.startsWith('restore-check: '))!
    expect(warning).toMatch(
      /^restore-check: not run, scratch-dir: not enough space: the restore check's scratch copy \([\d.]+ MiB\) in .* \(scratch-dir\) needs about [\d.]+ MiB, and only [\d.]+ KiB is free there\. The restore check's copy was not made\. The backup was kept as written and read back, not restored; retention deleted nothing\. Fix: free [\d.]+ [KM]iB on that filesystem, or set scratch-dir to a folder with room\.$/,
    )
    expect(warning).not.toMatch(/Nothing was written|\.\./)
    expect(warning.match(/Fix: /g)).toHaveLength(1)
    expect(await listAll(scratch)).toEqual([])
  })

  it('drill of an encrypted, compressed backup needs room for one plaintext copy: the decoded backup is restored in place', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    const key = generateAgeIdentity()
    const b = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        encryption: 'age',
        compression: 'gzip',
        'age-recipients': key.recipient,
      },
      ws.dir,
    )
    expect(failed(b.report)).toEqual({})
    const plain = (await fs.stat(ws.db)).size
    const drill = (scratch: string) =>
      run(
        'drill',
        {
          'backup-dir': ws.backups,
          'scratch-dir': scratch,
          'drill-log': 'none',
          'age-identity': key.identity,
        },
        ws.dir,
      )
    // Room for less than one copy: refused before anything is written.
    const tight = await smallDisk(Math.ceil((plain * 0.7) / 1024))
    const { report } = await drill(tight)
    expect(report.error).toMatch(
      /^scratch-dir: not enough space: the decoded backup, restored in place \(.*\) in .* needs about/,
    )
    expect(await listAll(tight)).toEqual([])
    // Room for one copy and not two (a decoded backup and a restored copy of it): it passes.
    const one = await smallDisk(Math.ceil((plain * 1.3) / 1024))
    const passed = await drill(one)
    expect(failed(passed.report)).toEqual({})
    expect(await listAll(one)).toEqual([])
  })

  it('restore: no room beside the live database fails before anything is touched', async () => {
    const ws = await demoWorkspace({ conversations: 200 })
    await run('backup', { 'connection-string': ws.db, 'backup-dir': ws.backups }, ws.dir)
    const size = (await fs.stat(ws.db)).size
    // The live database alone fits; a second copy of it beside it does not.
    const disk = await smallDisk(Math.ceil((size * 1.5) / 1024), async (d) => {
      await fs.copyFile(ws.db, path.join(d, 'omniai.db'))
    })
    const live = path.join(disk, 'omniai.db')
    const before = await sha(live)
    const { report } = await run(
      'restore',
      {
        'connection-string': live,
        'backup-dir': ws.backups,
        confirm: 'omniai.db',
        'allow-unencrypted-safety-backup': 'true',
      },
      ws.dir,
    )
    expect(report.error).toMatch(
      /^connection-string: not enough space: the restored database beside the live one .* \(connection-string\) needs about/,
    )
    expect(await sha(live)).toBe(before)
    expect(await listAll(disk)).toEqual(['omniai.db'])
  })
})

describe.skipIf(!root)('a write that fails anyway is said in words', () => {
  it('SQLite\'s "database or disk is full" becomes out of space, naming the input and path', async () => {
    const disk = await smallDisk(64)
    const file = path.join(disk, 'fill.db')
    await fs.writeFile(file, '')
    const db = await openSqlite(file, { readonly: false })
    let caught: unknown
    try {
      db.exec('CREATE TABLE t (x BLOB)')
      for (let i = 0; i < 1000; i++) db.run('INSERT INTO t VALUES (randomblob(4096))')
    } catch (err) {
      caught = err
    } finally {
      db.close()
    }
    // The real error SQLite gives on a full filesystem, and what the action makes of it.
    expect(String((caught as Error).message)).toMatch(/database or disk is full/)
    expect(writeFailureCause(caught)).toBe('out of space')
    const said = (await asWriteFailure(
      caught,
      'scratch-dir',
      disk,
      'the scratch copy was removed',
    )) as Error
    expect(said.message).toMatch(
      new RegExp(
        `^scratch-dir: cannot write in ${disk}: out of space \\([\\d.]+ [KMG]?i?B free\\); the scratch copy was removed\\. Fix: free space there`,
      ),
    )
    expect(said.message).not.toMatch(/SqliteError/)
  })

  it('other causes by errno, and errors that are not about writing pass through', () => {
    expect(writeFailureCause(Object.assign(new Error('x'), { code: 'EDQUOT' }))).toBe(
      'over the disk quota',
    )
    expect(writeFailureCause(Object.assign(new Error('x'), { code: 'EMFILE' }))).toBe(
      'too many open files',
    )
    expect(
      writeFailureCause(
        new Error(
          'pg_restore: error: could not extend file "base/16384/16390": No space left on device',
        ),
      ),
    ).toBe('out of space')
    expect(writeFailureCause(new Error('relation "x" does not exist'))).toBeNull()
  })
})
