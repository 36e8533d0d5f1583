// A decoded plaintext in scratch-dir (a drill's, verify's, a restore check's) is read by this
// job and removed: it is written through the page cache with no datasync or fsync. What must
// outlast the job (the stored backup, a restored live database) is still fsynced, and so is a
// restore's decoded plaintext, whose failed write must stop the restore (only fsync says).
import { readlinkSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { SYNC_EVERY } from '../src/codec/blocks.js'
import {
  decodeFile,
  encodeFile,
  generateAgeIdentity,
  type Compression,
} from '../src/codec/index.js'
import { demoWorkspace as demo, failed, run, tempDir as temp } from './helpers.js'

// /proc/self/fd gives real paths: the folders compared with them are real paths too (TMPDIR may
// be a symbolic link).
const tempDir = async () => fs.realpath(await temp())
const demoWorkspace = async () => {
  const ws = await demo()
  const dir = await fs.realpath(ws.dir)
  return { dir, db: path.join(dir, path.basename(ws.db)), backups: path.join(dir, 'backups') }
}

/** Every fsync and datasync of this process, by the path of the file or folder synced. */
const synced: string[] = []
const probe = await fs.open(import.meta.filename, 'r')
const FileHandle = Object.getPrototypeOf(probe) as {
  sync: (this: { fd: number }) => Promise<void>
  datasync: (this: { fd: number }) => Promise<void>
}
await probe.close()
const real = { sync: FileHandle.sync, datasync: FileHandle.datasync }
for (const name of ['sync', 'datasync'] as const) {
  FileHandle[name] = function (this: { fd: number }) {
    synced.push(readlinkSync(`/proc/self/fd/${this.fd}`))
    return real[name].call(this)
  }
}
afterAll(() => Object.assign(FileHandle, real))
beforeEach(() => void (synced.length = 0))

const inside = (dir: string) => synced.filter((p) => p === dir || p.startsWith(`${dir}/`))

describe('decodeFile', () => {
  // age alone takes the block path (codec/blocks.ts), with datasyncs as the output grows; with
  // compression the stream path, with one fsync at the end.
  it.each([['none'], ['zstd']] as [Compression][])(
    'compression %s: scratch is never synced; a durable decode is (positive control)',
    async (compression) => {
      const dir = await tempDir()
      const src = path.join(dir, 'plain')
      // Past SYNC_EVERY, so that the durable block path datasyncs before its fsync.
      const bytes = Buffer.alloc(SYNC_EVERY + (1 << 20), 'omniai ')
      await fs.writeFile(src, bytes)
      const key = generateAgeIdentity()
      const stored = path.join(dir, 'stored.age')
      await encodeFile(src, stored, {
        compression,
        encryption: { kind: 'age', recipients: [key.recipient] },
      })
      const opts = { compression, decryption: { kind: 'age' as const, identities: [key.identity] } }

      const out = await tempDir()
      synced.length = 0
      await decodeFile(stored, path.join(out, 'durable'), opts)
      expect(inside(out).length).toBeGreaterThanOrEqual(compression === 'none' ? 3 : 2)
      expect(inside(out)).toContain(out)

      synced.length = 0
      const digests = await decodeFile(stored, path.join(out, 'scratch'), {
        ...opts,
        scratch: true,
      })
      expect(synced).toEqual([])
      expect(digests.plainBytes).toBe(bytes.length)
      expect((await fs.readFile(path.join(out, 'scratch'))).equals(bytes)).toBe(true)
    },
  )

  it('a scratch decode that fails still leaves nothing behind', async () => {
    const dir = await tempDir()
    const src = path.join(dir, 'plain')
    await fs.writeFile(src, Buffer.alloc(3 << 20, 'x'))
    const key = generateAgeIdentity()
    const stored = path.join(dir, 'stored.age')
    await encodeFile(src, stored, {
      compression: 'none',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    const handle = await fs.open(stored, 'r+')
    await handle.write(Buffer.from([0xff]), 0, 1, 2 << 20)
    await handle.close()
    const out = await tempDir()
    await expect(
      decodeFile(stored, path.join(out, 'scratch'), {
        compression: 'none',
        decryption: { kind: 'age', identities: [key.identity] },
        scratch: true,
      }),
    ).rejects.toThrow(/age/)
    expect(await fs.readdir(out)).toEqual([])
  })
})

describe('the modes: scratch plaintext unsynced, what outlasts the job synced', () => {
  async function backupWith(extra: Record<string, string> = {}) {
    const ws = await demoWorkspace()
    const key = generateAgeIdentity()
    const scratch = path.join(ws.dir, 'scratch')
    await fs.mkdir(scratch)
    const { report } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        'scratch-dir': scratch,
        encryption: 'age',
        compression: 'zstd',
        'age-recipients': key.recipient,
        ...extra,
      },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    return { ...ws, key, scratch, report }
  }

  it('backup: the stored file is fsynced; its plaintext snapshot is not', async () => {
    const { backups, scratch, report } = await backupWith()
    expect(synced.some((p) => p.startsWith(`${backups}/`))).toBe(true)
    expect(synced).toContain(backups)
    expect(inside(scratch)).toEqual([])
    expect(report.backup!.path.startsWith(backups)).toBe(true)
  })

  it('backup with restore-check (a passphrase: decoded back): nothing in scratch is synced', async () => {
    const ws = await demoWorkspace()
    const scratch = path.join(ws.dir, 'scratch')
    await fs.mkdir(scratch)
    const { report, log } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        'scratch-dir': scratch,
        encryption: 'age',
        'age-passphrase': 'correct horse battery staple',
        'restore-check': 'true',
      },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    // Positive control: the check decoded the stored file back into scratch.
    expect(log.groups).toContain('Restore check')
    expect(report.checks.find((c) => c.name === 'restore-check')?.ok).toBe(true)
    expect(synced.some((p) => p.startsWith(`${ws.backups}/`))).toBe(true)
    expect(inside(scratch)).toEqual([])
  })

  it.each(['drill', 'verify'])('%s decodes into scratch with no sync', async (mode) => {
    const { dir, backups, key, scratch } = await backupWith()
    synced.length = 0
    const { report } = await run(
      mode,
      {
        'backup-dir': backups,
        'scratch-dir': scratch,
        'age-identity': key.identity,
        'drill-log': 'none',
      },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.decrypted).toBe(true)
    expect(inside(scratch)).toEqual([])
  })

  it('restore: the decoded plaintext is fsynced (it goes live), and so is the restored database', async () => {
    const { dir, db, backups, key, scratch } = await backupWith()
    synced.length = 0
    const { report } = await run(
      'restore',
      {
        'connection-string': db,
        'backup-dir': backups,
        'scratch-dir': scratch,
        'age-identity': key.identity,
        confirm: path.basename(db),
      },
      dir,
    )
    expect(failed(report)).toEqual({})
    // The plaintext, under its temporary name in the restore's own folder in scratch-dir.
    expect(inside(scratch).some((p) => /plain\.db/.test(path.basename(p)))).toBe(true)
    // The restored file, under its temporary name beside the live one, and that folder.
    expect(synced.some((p) => path.dirname(p) === dir && p !== db && p.includes('omniai.db'))).toBe(
      true,
    )
    expect(synced).toContain(dir)
  })
})
