/**
 * Decoding stops at the plaintext size the manifest recorded (`backup.plain.bytes`): a backup
 * replaced by a gzip or zstd bomb (or a gpg message with its own compression) is refused with
 * a one-line message, and nothing it decoded is left on disk.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { decodeFile, verifyEncodedFile, type Compression } from '../src/codec/index.js'
import { sha256File } from '../src/util/fs.js'
import { UserError } from '../src/util/errors.js'
import { demoWorkspace, failed, run, tempDir } from './helpers.js'

const execFileAsync = promisify(execFile)
const MiB = 1 << 20
/** 64 MiB of zeros: ~64 KiB as gzip, a few KiB as zstd. */
const BOMB_BYTES = 64 * MiB

function bomb(compression: Exclude<Compression, 'none'>): Buffer {
  const zeros = Buffer.alloc(BOMB_BYTES)
  return compression === 'gzip' ? zlib.gzipSync(zeros) : zlib.zstdCompressSync(zeros)
}

const LIMIT_MESSAGE =
  /^.*bomb\.(gz|zst|gpg): decodes to more than the 4096 bytes of plaintext its manifest records \(backup\.plain\.bytes\), so decoding stopped there and nothing was kept: the backup was damaged or replaced \(a decompression bomb looks like this\); restore from another backup$/

describe('decoding stops at the recorded plaintext size', () => {
  for (const compression of ['gzip', 'zstd'] as const) {
    it(`a ${compression} bomb whose manifest claims 4 KiB: refused, nothing written; the honest size passes`, async () => {
      const dir = await tempDir()
      const src = path.join(dir, compression === 'gzip' ? 'bomb.gz' : 'bomb.zst')
      const data = bomb(compression)
      expect(data.length).toBeLessThan(MiB)
      await fs.writeFile(src, data)
      const dest = path.join(dir, 'plain.db')
      const opts = { compression, decryption: { kind: 'none' } as const }

      const err = await decodeFile(src, dest, { ...opts, maxPlainBytes: 4096 }).catch((e) => e)
      expect(err).toBeInstanceOf(UserError)
      expect(err.message).toMatch(LIMIT_MESSAGE)
      expect((await fs.readdir(dir)).sort()).toEqual([path.basename(src)])
      await expect(verifyEncodedFile(src, { ...opts, maxPlainBytes: 4096 })).rejects.toThrow(
        LIMIT_MESSAGE,
      )

      // Positive control: with the size it really decodes to, it decodes.
      const digests = await decodeFile(src, dest, { ...opts, maxPlainBytes: BOMB_BYTES })
      expect(digests.plainBytes).toBe(BOMB_BYTES)
      expect((await fs.stat(dest)).size).toBe(BOMB_BYTES)
    })
  }

  it('a gpg message compressed by gpg itself (which this action never writes) is held to the limit too', async () => {
    const dir = await tempDir()
    const plain = path.join(dir, 'zeros')
    await fs.writeFile(plain, Buffer.alloc(16 * MiB))
    const src = path.join(dir, 'bomb.gpg')
    await execFileAsync('gpg', [
      '--homedir',
      dir,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      'pw',
      '--symmetric',
      '--compress-algo',
      'zlib',
      '--output',
      src,
      plain,
    ])
    await fs.rm(plain)
    expect((await fs.stat(src)).size).toBeLessThan(MiB)
    const decryption = { kind: 'gpg', passphrase: 'pw', homedir: dir } as const
    const dest = path.join(dir, 'out.db')
    await expect(
      decodeFile(src, dest, { compression: 'none', decryption, maxPlainBytes: 4096 }),
    ).rejects.toThrow(LIMIT_MESSAGE)
    await expect(fs.access(dest)).rejects.toThrow()
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
    await execFileAsync('gpgconf', ['--homedir', dir, '--kill', 'all']).catch(() => {})
  })

  it('a drill of a backup replaced by a bomb (its checksum updated to match) fails the decrypt check and leaves nothing', async () => {
    const ws = await demoWorkspace({ conversations: 10, auditRows: 20 })
    const scratch = path.join(ws.dir, 'scratch')
    const inputs = { 'backup-dir': ws.backups, 'scratch-dir': scratch, 'drill-evidence': 'none' }
    const b = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups, compression: 'gzip' },
      ws.dir,
    )
    expect(b.report.error).toBeUndefined()
    const file = b.report.backup!.path
    const manifestFile = `${file}.manifest.json`
    const honest = await fs.readFile(manifestFile, 'utf8')
    expect((await run('drill', inputs, ws.dir)).report.ok).toBe(true)

    // Whoever replaced the backup fixed the stored file's checksum; the plaintext size stayed.
    await fs.writeFile(file, bomb('gzip'))
    const manifest = JSON.parse(honest)
    manifest.backup.sha256 = await sha256File(file)
    manifest.backup.bytes = (await fs.stat(file)).size
    await fs.writeFile(manifestFile, JSON.stringify(manifest))
    const { report } = await run('drill', inputs, ws.dir)
    expect(failed(report)).toMatchObject({
      decrypt: expect.stringMatching(
        new RegExp(
          `^.*${path.basename(file).replace(/\./g, '\\.')}: decodes to more than the ${manifest.backup.plain.bytes} bytes of plaintext its manifest records`,
        ),
      ),
    })
    expect(await fs.readdir(scratch)).toEqual([])
  })
})
