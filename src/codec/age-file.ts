/**
 * age from a file to a file, without compression: the common case and the one that moves the
 * most bytes per CPU second, so it skips the stream machinery. The file is read in blocks of
 * whole payload chunks straight into shared memory, each block is sealed (or opened) on this
 * thread into a second shared buffer, and the two sha256 (stored file and plaintext) run on two
 * worker threads over those same buffers while the next block is read and the last one written.
 * A few blocks are in flight at once, so memory stays flat whatever the file size.
 *
 * The age format and its checks are age.ts's own (PayloadSealer, AgeOpener): the same chunks,
 * nonces and last-chunk flag as the stream, and the same errors for a truncated, reordered or
 * tampered file. Nothing reaches `out` before it authenticated.
 */
import { fdatasync } from 'node:fs'
import * as fs from 'node:fs/promises'
import { Writable } from 'node:stream'
import {
  AGE_CHUNK,
  AGE_MAX_HEAD,
  AGE_SEALED_CHUNK,
  ageEncryptStart,
  ageOpener,
  type AgeDecryptOptions,
  type AgeEncryptOptions,
} from './age.js'
import { inlineSha256, sharedBuffer, workerSha256, type Sha256 } from './hash.js'

/** Payload chunks per block: 2 MiB of plaintext per read and per write. */
const BLOCK_CHUNKS = 32
/** Blocks in memory at once: being read, sealed or opened, hashed, written. */
const SLOTS = 4
/** Below this the two worker threads cost more than they save: hash on this thread. */
const WORKER_MIN_BYTES = 8 << 20
/** Bytes written between two fdatasync calls (see Writer). */
const SYNC_BYTES = 32 << 20

export interface FileDigests {
  sha256: string
  bytes: number
  plainSha256: string
  plainBytes: number
}

interface Slot {
  input: Buffer
  output: Buffer
  /** Resolves when the block in this slot is hashed and written: the slot may be reused. */
  free: Promise<unknown>
}

/**
 * Reads `src` block by block at `base + k * size`, up to SLOTS - 1 blocks ahead, each into its
 * slot's input. Block k is read only once the block that last used its slot is done with.
 */
class BlockReader {
  private readonly reads: Promise<number>[] = []

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly slots: Slot[],
    private readonly base: number,
    private readonly size: number,
  ) {}

  /** Bytes in block k (fewer than `size` only at the end of the file). */
  block(k: number): Promise<number> {
    // Read ahead, into slots whose blocks are done with (readBlock waits for that).
    const ahead = k + Math.max(1, this.slots.length - 2)
    for (let j = this.reads.length; j <= ahead; j++) this.reads.push(this.readBlock(j))
    return this.reads[k]!
  }

  private async readBlock(k: number): Promise<number> {
    const slot = this.slots[k % this.slots.length]!
    if (k >= 1) {
      // Stop at the end of the file: block k - 1 short (or empty) means there is no block k.
      const before = await this.reads[k - 1]!
      if (before < this.size) return 0
    }
    await slot.free
    let filled = 0
    while (filled < this.size) {
      const { bytesRead } = await this.handle.read(
        slot.input,
        filled,
        this.size - filled,
        this.base + k * this.size + filled,
      )
      if (bytesRead === 0) break
      filled += bytesRead
    }
    return filled
  }

  /** Waits for every read issued, so the file can be closed. */
  settle(): Promise<unknown> {
    return Promise.allSettled(this.reads)
  }
}

/** Two sha256, on worker threads that share `slots` and `head` when the file is large. */
function hashes(size: number, slots: Slot[], head: Buffer): [Sha256, Sha256] {
  if (size < WORKER_MIN_BYTES) return [inlineSha256(), inlineSha256()]
  const shared = [head, ...slots.flatMap((s) => [s.input, s.output])].map(
    (b) => b.buffer as SharedArrayBuffer,
  )
  return [workerSha256(shared), workerSha256(shared)]
}

/** `p` itself, marked handled: on an error path it may never be awaited. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/**
 * Writes blocks to `out` (a file stream) and, after every SYNC_BYTES, starts an fdatasync
 * on libuv's pool while the next blocks are sealed or opened: the disk catches up during the
 * run, so the fsync before the rename has little left to do. An error from any of them fails
 * the run (the kernel reports a write-back error once).
 */
class Writer {
  private unsynced = 0
  private syncing: Promise<void> | null = null
  private error: Error | null = null

  constructor(private readonly out: Writable) {}

  async write(view: Buffer): Promise<void> {
    if (this.error) throw this.error
    await write(this.out, view)
    this.unsynced += view.length
    const fd = (this.out as Writable & { fd?: unknown }).fd
    if (this.syncing || this.unsynced < SYNC_BYTES || typeof fd !== 'number') return
    this.unsynced = 0
    this.syncing = new Promise<void>((resolve) =>
      fdatasync(fd, (err) => {
        if (err) this.error ??= err
        this.syncing = null
        resolve()
      }),
    )
  }

  /** Waits for the sync in flight; throws the first error any of them met. */
  async settle(): Promise<void> {
    while (this.syncing) await this.syncing
    if (this.error) throw this.error
  }
}

function write(out: Writable, view: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(view, (err) => (err ? reject(err) : resolve()))
  })
}

function makeSlots(inputBytes: number, outputBytes: number): Slot[] {
  return Array.from({ length: SLOTS }, () => ({
    input: sharedBuffer(inputBytes),
    output: sharedBuffer(outputBytes),
    free: Promise.resolve(),
  }))
}

/** Encrypts the file `src` to `out` (not ended); returns the digests of both sides. */
export async function ageEncryptFile(
  src: string,
  out: Writable,
  opts: AgeEncryptOptions,
  signal?: AbortSignal,
): Promise<FileDigests> {
  const { prefix, sealer } = await ageEncryptStart(opts)
  const handle = await fs.open(src, 'r')
  const slots = makeSlots(BLOCK_CHUNKS * AGE_CHUNK, BLOCK_CHUNKS * AGE_SEALED_CHUNK)
  const head = sharedBuffer(prefix.length)
  const [plainHash, storedHash] = hashes((await handle.stat()).size, slots, head)
  const reader = new BlockReader(handle, slots, 0, BLOCK_CHUNKS * AGE_CHUNK)
  const blockBytes = BLOCK_CHUNKS * AGE_CHUNK
  const writer = new Writer(out)
  let plainBytes = 0
  let bytes = 0
  try {
    prefix.copy(head)
    const headDone = quiet(Promise.all([storedHash.update(head), writer.write(head)]))
    bytes += head.length
    for (let k = 0; ; k++) {
      signal?.throwIfAborted()
      const slot = slots[k % SLOTS]!
      const n = await reader.block(k)
      // The last block is short, or full and followed by nothing; an empty file is one empty
      // final chunk, and a file of whole chunks ends with a full one flagged final.
      const last = n < blockBytes || (await reader.block(k + 1)) === 0
      const count = last ? Math.max(1, Math.ceil(n / AGE_CHUNK)) : BLOCK_CHUNKS
      let at = 0
      for (let i = 0; i < count; i++) {
        const chunk = slot.input.subarray(i * AGE_CHUNK, Math.min(n, (i + 1) * AGE_CHUNK))
        at = sealer.seal(chunk, last && i === count - 1, slot.output, at)
      }
      const plain = slot.input.subarray(0, n)
      const sealed = slot.output.subarray(0, at)
      plainBytes += n
      bytes += at
      slot.free = quiet(
        Promise.all([plainHash.update(plain), storedHash.update(sealed), writer.write(sealed)]),
      )
      if (last) break
    }
    await Promise.all([headDone, ...slots.map((s) => s.free)])
    await writer.settle()
    const [plainSha256, sha256] = await Promise.all([plainHash.digest(), storedHash.digest()])
    return { sha256, bytes, plainSha256, plainBytes }
  } catch (err) {
    plainHash.destroy()
    storedHash.destroy()
    throw err
  } finally {
    await reader.settle()
    await Promise.allSettled(slots.map((s) => s.free))
    await writer?.settle().catch(() => {})
    await handle.close()
  }
}

/**
 * Decrypts the age file `src` to `out` (not ended; null only checks and hashes), stopping with
 * `tooMuch()` at the first plaintext byte past `maxPlainBytes`.
 */
export async function ageDecryptFile(
  src: string,
  out: Writable | null,
  opts: AgeDecryptOptions,
  limit: { maxPlainBytes?: number; tooMuch: () => Error },
  signal?: AbortSignal,
): Promise<FileDigests> {
  const opener = ageOpener(opts, src)
  const handle = await fs.open(src, 'r')
  const size = (await handle.stat()).size
  const slots = makeSlots(BLOCK_CHUNKS * AGE_SEALED_CHUNK, BLOCK_CHUNKS * AGE_CHUNK)
  // The header and the payload nonce come first: read as much as they can take, or the whole
  // file and one byte more, so a short read means the end of the file.
  const head = sharedBuffer(Math.min(size + 1, AGE_MAX_HEAD))
  const [storedHash, plainHash] = hashes(size, slots, head)
  let reader: BlockReader | null = null
  const writer = out && new Writer(out)
  let plainBytes = 0
  let bytes = 0
  try {
    let headBytes = 0
    while (headBytes < head.length) {
      const { bytesRead } = await handle.read(head, headBytes, head.length - headBytes, headBytes)
      if (bytesRead === 0) break
      headBytes += bytesRead
    }
    const start = await opener.start(head.subarray(0, headBytes), headBytes < head.length)
    if (start < 0) await opener.start(head.subarray(0, headBytes), true) // throws
    const headDone = quiet(storedHash.update(head.subarray(0, start)))
    bytes += start

    const blockBytes = BLOCK_CHUNKS * AGE_SEALED_CHUNK
    reader = new BlockReader(handle, slots, start, blockBytes)
    for (let k = 0; ; k++) {
      signal?.throwIfAborted()
      const slot = slots[k % SLOTS]!
      const n = await reader.block(k)
      const last = n < blockBytes || (await reader.block(k + 1)) === 0
      // With `last`, the final chunk is what is left, perhaps short (or nothing at all, which
      // the opener refuses as a file that ends right after its header).
      const count = last ? Math.max(1, Math.ceil(n / AGE_SEALED_CHUNK)) : BLOCK_CHUNKS
      let at = 0
      for (let i = 0; i < count; i++) {
        const final = last && i === count - 1
        const sealed = slot.input.subarray(
          i * AGE_SEALED_CHUNK,
          Math.min(n, (i + 1) * AGE_SEALED_CHUNK),
        )
        at += opener.open(sealed, final).copy(slot.output, at)
        if (limit.maxPlainBytes !== undefined && plainBytes + at > limit.maxPlainBytes) {
          throw limit.tooMuch()
        }
      }
      const plain = slot.output.subarray(0, at)
      plainBytes += at
      bytes += n
      slot.free = quiet(
        Promise.all([
          storedHash.update(slot.input.subarray(0, n)),
          plainHash.update(plain),
          writer?.write(plain),
        ]),
      )
      if (last) break
    }
    await Promise.all([headDone, ...slots.map((s) => s.free)])
    await writer?.settle()
    const [sha256, plainSha256] = await Promise.all([storedHash.digest(), plainHash.digest()])
    return { sha256, bytes, plainSha256, plainBytes }
  } catch (err) {
    storedHash.destroy()
    plainHash.destroy()
    throw err
  } finally {
    await reader?.settle()
    await Promise.allSettled(slots.map((s) => s.free))
    await writer?.settle().catch(() => {})
    await handle.close()
  }
}
