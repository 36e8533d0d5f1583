/**
 * age with no compression, file to file, goes through blocks (src/codec/blocks.ts) rather than
 * streams: read and hashed on a worker thread from blocks.ts's WORKER_FROM up, on this thread
 * below it. These tests hold that path to what the stream path guarantees: files the age CLI
 * opens both ways, both checksums right, the same refusals in the same words, the plaintext
 * limit, abort, and nothing left behind when anything fails.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { ageDecryptStream } from '../src/codec/age.js'
import {
  convertBlocks,
  DIRECT_ALIGN,
  openDirect,
  STAGE,
  SYNC_EVERY,
  WORKER_FROM,
} from '../src/codec/blocks.js'
import {
  decodeFile,
  encodeFile,
  encodeStream,
  generateAgeIdentity,
  verifyEncodedFile,
  type Digests,
} from '../src/codec/index.js'
import { cleanups } from '../src/util/cleanup.js'
import { UserError } from '../src/util/errors.js'
import { sha256File } from '../src/util/fs.js'
import { execFileAsync, tempDir } from './helpers.js'
import { HAS_AGE_CLI } from './tools.js'

const CHUNK = 64 * 1024
const ENC_CHUNK = CHUNK + 16
/** What the block path reads and writes at a time: 16 chunks. */
const BLOCK = 16 * CHUNK

/** Where an age file's payload starts: after the `--- ` line and the 16-byte nonce. */
function payloadStart(file: Buffer): number {
  return file.indexOf(0x0a, file.indexOf('\n--- ') + 1) + 1 + 16
}

/** An age key, a file of `size` random bytes and its encryption by the block path. */
async function encoded(size: number) {
  const dir = await tempDir()
  const key = generateAgeIdentity()
  const plain = path.join(dir, 'db')
  await fs.writeFile(plain, randomBytes(size))
  const stored = path.join(dir, 'db.age')
  const digests = await encodeFile(plain, stored, {
    compression: 'none',
    encryption: { kind: 'age', recipients: [key.recipient] },
  })
  const decryption = { kind: 'age', identities: [key.identity] } as const
  return {
    dir,
    key,
    plain,
    stored,
    digests,
    decryption,
    opts: { compression: 'none', decryption } as const,
  }
}

/** The sha256 and size of `plain` and `stored` as files, as Digests. */
async function digestsOf(stored: string, plain: string): Promise<Digests> {
  return {
    sha256: await sha256File(stored),
    bytes: (await fs.stat(stored)).size,
    plainSha256: await sha256File(plain),
    plainBytes: (await fs.stat(plain)).size,
  }
}

/** The error `promise` fails with; fails the test if it does not. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (err: Error) => err,
  )
}

/** Nothing at `dest`, and no temporary file beside it. */
async function expectNoOutput(dest: string) {
  await expect(fs.stat(dest)).rejects.toThrow(/ENOENT/)
  const left = await fs.readdir(path.dirname(dest))
  expect(left.filter((n) => n.endsWith('.tmp'))).toEqual([])
}

/** A copy of `file` with the byte at offset `flip` flipped, or cut to `cut` bytes. */
async function damaged(file: string, change: { flip: number } | { cut: number }) {
  const copy = `${file}.bad`
  await fs.copyFile(file, copy)
  const handle = await fs.open(copy, 'r+')
  try {
    if ('cut' in change) {
      await handle.truncate(change.cut)
    } else {
      const byte = Buffer.alloc(1)
      await handle.read(byte, 0, 1, change.flip)
      byte[0]! ^= 0x01
      await handle.write(byte, 0, 1, change.flip)
    }
  } finally {
    await handle.close()
  }
  return copy
}

describe('age file to file in blocks', () => {
  // Around the block: a short last block, a full one (the payload then ends on a block, and
  // only the next, empty, read says it was the last), one chunk more.
  const sizes = [0, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 2 * BLOCK + CHUNK + 7]

  it.each(sizes)(
    '%i bytes: encode, decode and verify agree with sha256 of the files',
    async (size) => {
      const { dir, plain, stored, digests, opts } = await encoded(size)
      expect(digests).toEqual(await digestsOf(stored, plain))
      // 16 bytes of tag per chunk, one (empty) chunk for an empty file.
      const chunks = Math.max(1, Math.ceil(size / CHUNK))
      expect(digests.bytes - digests.plainBytes - 16 * chunks).toBe(
        payloadStart(await fs.readFile(stored)),
      )
      const out = path.join(dir, 'out')
      expect(await decodeFile(stored, out, opts)).toEqual(digests)
      expect(await sha256File(out)).toBe(digests.plainSha256)
      expect(await verifyEncodedFile(stored, opts)).toEqual(digests)
    },
  )

  it.skipIf(!HAS_AGE_CLI).each([BLOCK, 2 * BLOCK + CHUNK + 7])(
    '%i bytes: the age CLI opens what the block path writes, and the other way round',
    async (size) => {
      const { dir, key, plain, stored, digests, opts } = await encoded(size)
      await fs.writeFile(path.join(dir, 'key.txt'), `${key.identity}\n`)
      const cliOut = path.join(dir, 'cli.out')
      await execFileAsync('age', ['-d', '-i', path.join(dir, 'key.txt'), '-o', cliOut, stored])
      expect(await sha256File(cliOut)).toBe(digests.plainSha256)

      const cliStored = path.join(dir, 'cli.age')
      await execFileAsync('age', ['-e', '-r', key.recipient, '-o', cliStored, plain])
      const out = path.join(dir, 'out')
      expect(await decodeFile(cliStored, out, opts)).toEqual(await digestsOf(cliStored, plain))
    },
  )

  it('the stream path (encodeStream) writes the same format; the block path reads it', async () => {
    const { dir, key, plain, digests, opts } = await encoded(3 * BLOCK + 100)
    const streamed = path.join(dir, 'streamed.age')
    const viaStream = await encodeStream(Readable.from([await fs.readFile(plain)]), streamed, {
      compression: 'none',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    // Another file key and nonce: the same sizes and plaintext, other stored bytes.
    expect(viaStream).toEqual({ ...digests, sha256: await sha256File(streamed) })
    expect(viaStream.sha256).not.toBe(digests.sha256)
    expect(await verifyEncodedFile(streamed, opts)).toEqual(viaStream)
  })
})

describe('the block path and the stream path refuse damage alike', () => {
  /** Decodes `file` both ways; returns the two messages (null where it decoded). */
  async function bothWays(file: string, opts: Awaited<ReturnType<typeof encoded>>['opts']) {
    const dest = path.join(path.dirname(file), 'restored')
    const blocks = await decodeFile(file, dest, opts).then(
      async () => {
        await fs.rm(dest)
        return null
      },
      (err: Error) => err.message,
    )
    // The stream path's decrypter, fed in pieces that straddle the chunks.
    const bytes = await fs.readFile(file)
    const pieces = Array.from({ length: Math.ceil(bytes.length / 7000) }, (_, i) =>
      bytes.subarray(i * 7000, (i + 1) * 7000),
    )
    const stream = await pipeline(
      Readable.from(pieces),
      ageDecryptStream(opts.decryption, file),
      new Writable({ write: (_chunk, _encoding, done) => done() }),
    ).then(
      () => null,
      (err: Error) => err.message,
    )
    return { blocks, stream }
  }

  it('each damage the same words either way; the file itself decodes both ways', async () => {
    const { stored, opts } = await encoded(2 * BLOCK + 3 * CHUNK + 100)
    const good = await fs.readFile(stored)
    const start = payloadStart(good)
    // Positive control: undamaged, both ways decode it.
    expect(await bothWays(stored, opts)).toEqual({ blocks: null, stream: null })

    const cases: [{ flip: number } | { cut: number }, RegExp][] = [
      [{ flip: start + 20 * ENC_CHUNK + 5 }, /age payload chunk 20 failed authentication/],
      [{ flip: good.length - 5 }, /the last age chunk \(35\) failed authentication/],
      [{ cut: start + 32 * ENC_CHUNK }, /ends after chunk 31 without a final chunk/],
      [{ cut: start + 20 * ENC_CHUNK }, /ends after chunk 19 without a final chunk/],
      [{ cut: good.length - 50 }, /the file may also be truncated/],
      [{ cut: start }, /ends right after the age header/],
      [{ cut: start - 5 }, /before the age payload starts/],
      [{ cut: 40 }, /ends inside the age header/],
    ]
    for (const [change, pattern] of cases) {
      const { blocks, stream } = await bothWays(await damaged(stored, change), opts)
      expect(blocks).toMatch(pattern)
      expect(stream).toBe(blocks)
    }
    // Data after a short final chunk spoils it; after a whole final chunk, it is data too many.
    const whole = await encoded(2 * BLOCK)
    const appended: [string, Buffer, RegExp][] = [
      [stored, good, /the last age chunk \(35\) failed authentication/],
      [whole.stored, await fs.readFile(whole.stored), /data follows the final age chunk 31/],
    ]
    for (const [file, bytes, pattern] of appended) {
      await fs.writeFile(`${file}.long`, Buffer.concat([bytes, Buffer.from('x')]))
      const { blocks, stream } = await bothWays(`${file}.long`, file === stored ? opts : whole.opts)
      expect(blocks).toMatch(pattern)
      expect(stream).toBe(blocks)
    }
  })
})

describe('on a worker thread, from WORKER_FROM up', () => {
  // Whole blocks: the payload ends on a block both ways, and cuts near the end stay above
  // WORKER_FROM, so every decode here reads on the worker too.
  const size = WORKER_FROM + 2 * BLOCK

  it('encode, decode and verify agree with sha256 of the files; damage is refused', async () => {
    const { dir, plain, stored, digests, opts } = await encoded(size)
    expect(digests).toEqual(await digestsOf(stored, plain))
    const out = path.join(dir, 'out')
    expect(await decodeFile(stored, out, opts)).toEqual(digests)
    expect(await sha256File(out)).toBe(digests.plainSha256)
    expect(await verifyEncodedFile(stored, opts)).toEqual(digests)
    await fs.rm(out)

    const start = payloadStart(await fs.readFile(stored).then((b) => b.subarray(0, 1024)))
    const last = size / CHUNK - 1
    const cases: [{ flip: number } | { cut: number }, RegExp][] = [
      [{ flip: start + 2050 * ENC_CHUNK + 9 }, /age payload chunk 2050 failed authentication/],
      [{ cut: start + 2070 * ENC_CHUNK }, /ends after chunk 2069 without a final chunk/],
      [{ cut: start + last * ENC_CHUNK }, new RegExp(`ends after chunk ${last - 1} without`)],
      [{ cut: digests.bytes - 50 }, /the file may also be truncated/],
    ]
    for (const [change, pattern] of cases) {
      const bad = await damaged(stored, change)
      expect((await fs.stat(bad)).size).toBeGreaterThanOrEqual(WORKER_FROM)
      const err = await failure(decodeFile(bad, out, opts))
      expect(err).toBeInstanceOf(UserError)
      expect(err.message).toMatch(pattern)
      await expectNoOutput(out)
      await expect(verifyEncodedFile(bad, opts)).rejects.toThrow(pattern)
    }
  })

  it('the age CLI opens what the worker path writes', { skip: !HAS_AGE_CLI }, async () => {
    const { dir, key, stored, digests } = await encoded(WORKER_FROM + 12_345)
    await fs.writeFile(path.join(dir, 'key.txt'), `${key.identity}\n`)
    const out = path.join(dir, 'cli.out')
    await execFileAsync('age', ['-d', '-i', path.join(dir, 'key.txt'), '-o', out, stored])
    expect(await sha256File(out)).toBe(digests.plainSha256)
  })
})

describe('the block path keeps the limits of the stream path', () => {
  it('stops at maxPlainBytes and keeps nothing; the exact size passes', async () => {
    const { dir, stored, digests, opts } = await encoded(2 * BLOCK + 10)
    const out = path.join(dir, 'out')
    const limit = /decodes to more than the 1048576 bytes of plaintext its manifest records/
    const err = await failure(decodeFile(stored, out, { ...opts, maxPlainBytes: BLOCK }))
    expect(err).toBeInstanceOf(UserError)
    expect(err.message).toMatch(limit)
    await expectNoOutput(out)
    await expect(verifyEncodedFile(stored, { ...opts, maxPlainBytes: BLOCK })).rejects.toThrow(
      limit,
    )
    // Positive control: the size it really has.
    const maxPlainBytes = digests.plainBytes
    expect(await decodeFile(stored, out, { ...opts, maxPlainBytes })).toEqual(digests)
  })

  it('an aborted signal stops encode, decode and verify as it stops the streams, leaving nothing', async () => {
    const { dir, plain, stored, opts } = await encoded(BLOCK + 1)
    const signal = AbortSignal.abort()
    const encryption = { kind: 'age', recipients: [generateAgeIdentity().recipient] } as const
    // What pipeline() throws on the stream path (gzip), for the block path to match.
    const viaStreams = await failure(
      encodeFile(plain, path.join(dir, 'gz.age'), { compression: 'gzip', encryption, signal }),
    )
    expect(viaStreams).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' })
    await expectNoOutput(path.join(dir, 'gz.age'))

    const attempts: [string, () => Promise<unknown>][] = [
      [
        'enc.age',
        () =>
          encodeFile(plain, path.join(dir, 'enc.age'), {
            compression: 'none',
            encryption,
            signal,
          }),
      ],
      ['dec', () => decodeFile(stored, path.join(dir, 'dec'), { ...opts, signal })],
      ['ver', () => verifyEncodedFile(stored, { ...opts, signal })],
    ]
    for (const [name, attempt] of attempts) {
      const err = await failure(attempt())
      expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' })
      expect(err.message).toBe(viaStreams.message)
      await expectNoOutput(path.join(dir, name))
    }
    // Positive control: the same calls with a signal never aborted.
    const live = new AbortController().signal
    await encodeFile(plain, path.join(dir, 'enc.age'), {
      compression: 'none',
      encryption,
      signal: live,
    })
    await decodeFile(stored, path.join(dir, 'dec'), { ...opts, signal: live })
  })

  it('aborted halfway through a large file, on the worker: nothing left', async () => {
    const { dir, stored, opts } = await encoded(WORKER_FROM + BLOCK)
    const out = path.join(dir, 'out')
    const controller = new AbortController()
    const decoding = decodeFile(stored, out, { ...opts, signal: controller.signal })
    await partialFile(dir)
    controller.abort()
    expect(await failure(decoding)).toMatchObject({ name: 'AbortError' })
    await expectNoOutput(out)
  })

  it('what SIGINT runs removes the partial file the worker path is writing', async () => {
    const { dir, stored, opts } = await encoded(WORKER_FROM + BLOCK)
    const out = path.join(dir, 'out')
    const decoding = decodeFile(stored, out, opts)
    const tmp = await partialFile(dir)
    // Positive control: registered while it is written.
    expect(cleanups.size).toBe(1)
    expect((await cleanups.runAll()).cleaned).toEqual([`partial file ${tmp}`])
    await expect(decoding).rejects.toThrow(/ENOENT/)
    await expectNoOutput(out)
  })
})

describe('datasyncs along the way (every SYNC_EVERY bytes written)', () => {
  /** Copies `size` random bytes through convertBlocks onto a real file whose datasync is `sync`. */
  async function copyWith(size: number, sync: (real: () => Promise<void>) => Promise<void>) {
    const dir = await tempDir()
    const src = path.join(dir, 'in')
    await fs.writeFile(src, randomBytes(size))
    const input = await fs.open(src, 'r')
    const output = await fs.open(path.join(dir, 'out'), 'w')
    const real = output.datasync.bind(output)
    output.datasync = () => sync(real)
    try {
      return await convertBlocks({
        input,
        size: BLOCK,
        convert: (block) => [Buffer.from(block)],
        output: { handle: output, at: 0 },
      })
    } finally {
      await input.close()
      await output.close()
    }
  }

  it('a failed datasync fails the job, though the last fsync might then report success', async () => {
    const size = SYNC_EVERY + 3 * BLOCK
    // Positive control: the same copy datasyncs at least once and succeeds.
    let syncs = 0
    const ok = await copyWith(size, (real) => (syncs++, real()))
    expect(syncs).toBeGreaterThanOrEqual(1)
    expect(ok.bytes).toBe(size)

    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })
    const err = await failure(copyWith(size, () => Promise.reject(eio)))
    expect(err).toBe(eio)
  })
})

/**
 * Whether the tests' temporary folder takes O_DIRECT (ext4 here and in CI; tmpfs before Linux
 * 6.6 does not). Where it does not, the tests that need it are skipped, and under CI=true
 * they run and fail.
 */
const DIRECT_HERE = await (async () => {
  const file = await fs.open(path.join(await tempDir(), 'probe'), 'wx')
  const handle = await openDirect(file)
  await handle?.close()
  await file.close()
  return handle !== null
})()
const needsDirect = !DIRECT_HERE && process.env.CI !== 'true'

describe('an encoded backup is written past the page cache (O_DIRECT)', () => {
  /** What `fail` may do to a handle's writev call number `call`: fail it, or slow it down. */
  type Fault = (call: number) => Error | { delayMs: number } | null

  /**
   * `handle`, counting the bytes each of its writev calls was given, and the calls not yet
   * settled (`inFlight.count`); `fail` may fail or slow a call down.
   */
  function counted(handle: fs.FileHandle, fail?: Fault, inFlight = { count: 0 }) {
    const sizes: number[] = []
    const real = handle.writev.bind(handle)
    handle.writev = (async (buffers: NodeJS.ArrayBufferView[], at?: number) => {
      const fault = fail?.(sizes.length) ?? null
      sizes.push(buffers.reduce((sum, b) => sum + b.byteLength, 0))
      inFlight.count++
      try {
        if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs))
        if (fault instanceof Error) throw fault
        return await real(buffers, at)
      } finally {
        inFlight.count--
      }
    }) as typeof handle.writev
    return sizes
  }

  /**
   * Copies `size` random bytes after a 37-byte prefix through convertBlocks, with a direct
   * handle unless `direct` is false; returns the output, what went in, and each handle's writes.
   */
  async function copy(
    size: number,
    {
      direct = true,
      fail = undefined as Fault | undefined,
      signal = undefined as AbortSignal | undefined,
      inFlight = { count: 0 },
    } = {},
  ) {
    const dir = await tempDir()
    const src = path.join(dir, 'in')
    const data = randomBytes(size)
    await fs.writeFile(src, data)
    // A buffer with memory of its own (not a slice of Node's pool), which freeing would empty.
    const prefix = randomFillSync(Buffer.alloc(37))
    const out = path.join(dir, 'out')
    const input = await fs.open(src, 'r')
    const buffered = await fs.open(out, 'wx')
    const directHandle = direct ? await openDirect(buffered) : null
    const writes = {
      buffered: counted(buffered),
      direct: directHandle ? counted(directHandle, fail, inFlight) : [],
    }
    try {
      const digest = await convertBlocks({
        input,
        size: BLOCK,
        convert: (block) => [Buffer.from(block)],
        output: { handle: buffered, at: 0, prefix, direct: directHandle },
        signal,
      })
      // The prefix is the caller's: written, not freed.
      expect(prefix.length).toBe(37)
      expect(digest).toEqual({ sha256: sha256Of(data), bytes: size })
    } finally {
      await input.close()
      await directHandle?.close()
      await buffered.close()
    }
    return { written: await fs.readFile(out), expected: Buffer.concat([prefix, data]), writes, out }
  }

  const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

  // Output sizes (with the prefix) below, at and around DIRECT_ALIGN and STAGE.
  const sizes = [
    0,
    DIRECT_ALIGN - 37,
    DIRECT_ALIGN - 36,
    STAGE - 37,
    STAGE - 36,
    3 * BLOCK + 12_345,
  ]

  it.skipIf(needsDirect).each(sizes)(
    '%i bytes and a prefix: the same file, aligned writes, the tail alone through the page cache',
    async (size) => {
      const { written, expected, writes } = await copy(size)
      expect(written.equals(expected)).toBe(true)
      const total = expected.length
      expect(writes.direct.every((n) => n % DIRECT_ALIGN === 0 && n <= STAGE)).toBe(true)
      expect(writes.direct.reduce((a, b) => a + b, 0)).toBe(total - (total % DIRECT_ALIGN))
      expect(writes.buffered).toEqual(total % DIRECT_ALIGN ? [total % DIRECT_ALIGN] : [])
    },
  )

  it.skipIf(needsDirect)(
    'encodeFile leaves the stored file out of the page cache; a buffered copy is in it',
    async () => {
      const { dir, plain, stored, digests, opts } = await encoded(4 * BLOCK + 12_345)
      /** Bytes of `file` in the page cache, from util-linux's fincore. */
      const resident = async (file: string) => {
        const { stdout } = await execFileAsync('fincore', [
          '--bytes',
          '--noheadings',
          '--output',
          'RES',
          file,
        ])
        return Number(stdout.trim())
      }
      // Nothing has read `stored` yet, which would bring its pages into the cache.
      const written = await fs.stat(stored)
      // Positive control: the same bytes written through the page cache are all in it.
      const copyOf = path.join(dir, 'buffered.age')
      await fs.writeFile(copyOf, randomBytes(written.size))
      expect(await resident(copyOf)).toBeGreaterThanOrEqual(written.size - DIRECT_ALIGN)
      // Only the tail written through the page cache, a page at most, is.
      expect(await resident(stored)).toBeLessThanOrEqual(DIRECT_ALIGN)
      expect(digests).toEqual(await digestsOf(stored, plain))
      expect(await verifyEncodedFile(stored, opts)).toEqual(digests)
    },
  )

  it.skipIf(needsDirect)(
    'a direct write the file system refuses (EINVAL) goes through the page cache, and all after it',
    async () => {
      const size = 3 * STAGE + 999
      const einval = Object.assign(new Error('EINVAL: invalid argument, write'), { code: 'EINVAL' })
      for (const at of [0, 2]) {
        const { written, expected, writes } = await copy(size, {
          fail: (call) => (call === at ? einval : null),
        })
        expect(written.equals(expected)).toBe(true)
        // The refused write was the last one tried direct; it and the rest went buffered.
        expect(writes.direct).toHaveLength(at + 1)
        expect(writes.buffered.reduce((a, b) => a + b, 0)).toBe(expected.length - at * STAGE)
      }
    },
  )

  it.skipIf(needsDirect)('any other failure of a direct write (ENOSPC) fails the job', async () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
    })
    const err = await failure(copy(3 * STAGE, { fail: (call) => (call === 1 ? enospc : null) }))
    expect(err).toBe(enospc)
  })

  it.skipIf(needsDirect)(
    'the direct handle is the open file, not whatever its name points to by then',
    async () => {
      const dir = await tempDir()
      const name = path.join(dir, 'backup.tmp')
      const handle = await fs.open(name, 'wx')
      // The name moved away and replaced by a link to another file before the reopening.
      await fs.rename(name, path.join(dir, 'moved'))
      await fs.writeFile(path.join(dir, 'victim'), 'keep')
      await fs.symlink(path.join(dir, 'victim'), name)
      const direct = await openDirect(handle)
      expect(direct).not.toBeNull()
      try {
        const page = Buffer.from(new WebAssembly.Memory({ initial: 1 }).buffer, 0, DIRECT_ALIGN)
        page.fill(7)
        await direct!.write(page, 0, DIRECT_ALIGN, 0)
      } finally {
        await direct?.close()
        await handle.close()
      }
      expect(await fs.readFile(path.join(dir, 'victim'), 'utf8')).toBe('keep')
      // Positive control: reopening by the name would have written through the link.
      const byName = await fs.open(name, 'r+')
      await byName.write('gone', 0)
      await byName.close()
      expect(await fs.readFile(path.join(dir, 'victim'), 'utf8')).toBe('gone')
      expect(
        (await fs.readFile(path.join(dir, 'moved'))).equals(Buffer.alloc(DIRECT_ALIGN, 7)),
      ).toBe(true)
    },
  )

  it.skipIf(needsDirect)(
    'a failure of the last direct write fails the job, with nothing left in flight',
    async () => {
      const size = 3 * STAGE + 5000
      const eio = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })
      // Positive control: four direct writes, the last one the aligned part of the end.
      expect((await copy(size)).writes.direct).toHaveLength(4)
      for (const call of [3, 1]) {
        const inFlight = { count: 0 }
        const err = await failure(
          copy(size, {
            fail: (n) => (n === call ? eio : n === call - 1 ? { delayMs: 50 } : null),
            inFlight,
          }),
        )
        expect(err).toBe(eio)
        expect(inFlight.count).toBe(0)
      }
    },
  )

  it.skipIf(needsDirect)(
    'aborted while a direct write is slow: it fails once that write is done',
    async () => {
      const controller = new AbortController()
      const inFlight = { count: 0 }
      const err = await failure(
        copy(6 * STAGE, {
          signal: controller.signal,
          inFlight,
          fail: (n) => (n === 1 ? (controller.abort(), { delayMs: 200 }) : null),
        }),
      )
      expect(err.name).toBe('AbortError')
      expect(inFlight.count).toBe(0)
    },
  )

  it('without a direct handle, everything goes through the page cache as before', async () => {
    const { written, expected, writes } = await copy(2 * STAGE + 5, { direct: false })
    expect(written.equals(expected)).toBe(true)
    expect(writes.direct).toEqual([])
    expect(writes.buffered.reduce((a, b) => a + b, 0)).toBe(expected.length)
  })
})

/** The temporary file being written in `dir`, once it holds some bytes. */
async function partialFile(dir: string): Promise<string> {
  for (;;) {
    const name = (await fs.readdir(dir)).find((n) => n.endsWith('.tmp'))
    const file = name && path.join(dir, name)
    if (file && (await fs.stat(file).catch(() => null))?.size) return file
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
