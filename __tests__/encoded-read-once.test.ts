// An encoded (compressed, encrypted) backup's stored file is read once by verify, drill and
// restore: the decoding that reads every byte of it also gives the checksum. Where decoding stops
// short (no key, a wrong one, a tampered file), the file is hashed on its own, so the checksum
// check is always there and always about the whole file.

import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { generateAgeIdentity } from '../src/codec/index.js'
import { scratchNeed } from '../src/util/space.js'
import { demoWorkspace, failed, run } from './helpers.js'

// The real worker_threads, with a record of the files the hash worker was given.
const hashed = vi.hoisted(() => [] as string[])
vi.mock('node:worker_threads', async (importOriginal) => {
  const { recordWorkers } = await import('./recorded-workers.js')
  return recordWorkers(await importOriginal<typeof import('node:worker_threads')>(), {
    started: (_worker, data) => {
      if (typeof data === 'string') hashed.push(data)
    },
  })
})

async function encryptedBackup(
  encoding: Record<string, string> = { encryption: 'age', compression: 'zstd' },
) {
  const ws = await demoWorkspace()
  const key = generateAgeIdentity()
  const { report } = await run(
    'backup',
    {
      'connection-string': ws.db,
      'backup-dir': ws.backups,
      ...encoding,
      ...(encoding.encryption === 'age' ? { 'age-recipients': key.recipient } : {}),
    },
    ws.dir,
  )
  expect(failed(report)).toEqual({})
  return { ...ws, key, file: report.backup!.path, sha256: report.backup!.sha256 }
}

/** How often the hash worker read `file` since `from`. */
const reads = (file: string, from: number) => hashed.slice(from).filter((f) => f === file).length

describe('an encoded backup is read once', () => {
  const cases = [
    ['drill', 'age, zstd'],
    ['verify', 'age, zstd'],
    ['restore', 'age, zstd'],
    // age alone is decoded by the block path (codec/blocks.ts), not by streams.
    ['drill', 'age'],
    ['verify', 'age'],
  ] as const
  for (const [mode, how] of cases) {
    it(`${mode} (${how}): the checksum comes from the decoding, with no second read of the file`, async () => {
      const { dir, backups, key, file, sha256, db } = await encryptedBackup(
        how === 'age' ? { encryption: 'age' } : { encryption: 'age', compression: 'zstd' },
      )
      const from = hashed.length
      const inputs: Record<string, string> = {
        'backup-dir': backups,
        'age-identity': key.identity,
        'drill-log': 'none',
      }
      if (mode === 'restore') {
        inputs['connection-string'] = db
        inputs.confirm = path.basename(db)
      }
      const { report, log } = await run(mode, inputs, dir)
      expect(failed(report)).toEqual({})
      // A drill restores the decoded plaintext by moving it into place, not by a second copy.
      if (mode === 'drill') {
        expect(log.lines).toContainEqual(
          expect.stringMatching(/^restore: the decoded plaintext moved into place/),
        )
      }
      const checksum = report.checks.find((c) => c.name === 'checksum')!
      expect(checksum.ok).toBe(true)
      expect(checksum.detail).toContain(sha256.slice(0, 12))
      expect(reads(file, from)).toBe(0)
      // The checksum comes before what decoding found, as when it was read first.
      const names = report.checks.map((c) => c.name)
      expect(names.indexOf('checksum')).toBeLessThan(names.indexOf('decrypt'))
    })
  }

  it('bytes appended to a compressed backup: decoding refuses them, and the checksum fails too', async () => {
    // zlib's zstd decoder stops at the last frame and drops what follows in the same read; the
    // decoder refuses such a file, and the file is then hashed on its own.
    const { dir, backups, file } = await encryptedBackup({ compression: 'zstd' })
    await fs.appendFile(file, Buffer.alloc(22))
    for (const mode of ['verify', 'drill'] as const) {
      const from = hashed.length
      const { report } = await run(mode, { 'backup-dir': backups, 'drill-log': 'none' }, dir)
      expect(failed(report).decrypt).toMatch(/: 22 bytes follow the end of the zstd data/)
      expect(report.checks[0]?.name).toBe('checksum')
      expect(failed(report).checksum).toMatch(/bytes where the manifest says/)
      expect(reads(file, from)).toBe(1)
    }
  })

  it('positive control: verify without the recovery key hashes the file on its own, and the checksum passes', async () => {
    const { dir, backups, file } = await encryptedBackup()
    const from = hashed.length
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(report.checks.find((c) => c.name === 'checksum')?.ok).toBe(true)
    expect(reads(file, from)).toBe(1)
  })

  it('a tampered file: decoding stops, the file is hashed on its own, and the checksum fails as well as the decrypt', async () => {
    const { dir, backups, key, file } = await encryptedBackup()
    const bytes = await fs.readFile(file)
    bytes[bytes.length >> 1]! ^= 0x01
    await fs.writeFile(file, bytes)
    const from = hashed.length
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'age-identity': key.identity, 'drill-log': 'none' },
      dir,
    )
    expect(report.ok).toBe(false)
    expect(report.checks[0]?.name).toBe('checksum')
    expect(failed(report).checksum).toMatch(/sha256/)
    expect(failed(report).decrypt).toBeDefined()
    expect(reads(file, from)).toBe(1)
  })

  for (const how of ['age, zstd', 'age'] as const) {
    it(`backup (${how}): the plaintext snapshot is hashed as it is encoded, with no read of it by the hash worker`, async () => {
      const from = hashed.length
      const { dir, backups, key } = await encryptedBackup(
        how === 'age' ? { encryption: 'age' } : { encryption: 'age', compression: 'zstd' },
      )
      expect(hashed.slice(from)).toEqual([])
      // The manifest's plaintext digest is the encrypted bytes': a drill decodes the backup and
      // checks the plaintext against it.
      const { report } = await run(
        'drill',
        { 'backup-dir': backups, 'age-identity': key.identity, 'drill-log': 'none' },
        dir,
      )
      expect(failed(report)).toEqual({})
      expect(report.checks.find((c) => c.name === 'decrypt')?.detail).toMatch(/plaintext sha256/)
    })
  }

  it('positive control: an unencoded backup is hashed by the hash worker, once', async () => {
    const ws = await demoWorkspace()
    const from = hashed.length
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    expect(hashed.slice(from)).toHaveLength(1)
  })

  it('scratch-dir room: one plaintext copy for a decoded SQLite backup (moved into place), two copies never', () => {
    const manifest = (engine: string, encryption: string) => ({
      engine,
      backup: { bytes: 100, plain: { bytes: 1000 }, encryption },
    })
    expect(scratchNeed(manifest('sqlite', 'age'), '/s', true).bytes).toBe(1000)
    expect(scratchNeed(manifest('sqlite', 'none'), '/s', true).bytes).toBe(1000)
    // PostgreSQL restores into a server: only the decoded archive is in scratch-dir.
    expect(scratchNeed(manifest('postgres', 'age'), '/s', false).bytes).toBe(1000)
    expect(scratchNeed(manifest('postgres', 'none'), '/s', false).bytes).toBe(0)
  })
})
