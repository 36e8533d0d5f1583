/** gzip and zstd as streams, with errors that name the `compression` input. */
import { Transform, type TransformCallback } from 'node:stream'
import * as zlib from 'node:zlib'
import { UserError } from '../util/errors.js'
import { describeFormat, detectFormat } from './format.js'
import { CodecInputs } from './inputs.js'

export const COMPRESSIONS = ['none', 'gzip', 'zstd'] as const
export type Compression = (typeof COMPRESSIONS)[number]

/** zstd arrived in Node 23.8 / 22.15; the action runs on node24, the CLI may run on less. */
export function zstdAvailable(): boolean {
  return typeof zlib.createZstdCompress === 'function'
}

/** Throws a UserError naming `compression` unless `value` is usable here. */
export function checkCompression(value: string): Compression {
  if (!(COMPRESSIONS as readonly string[]).includes(value)) {
    throw new UserError(
      `${CodecInputs.Compression}: "${value}" is not one of ${COMPRESSIONS.join(', ')}`,
    )
  }
  if (value === 'zstd' && !zstdAvailable()) {
    throw new UserError(
      `${CodecInputs.Compression}: zstd needs Node.js 22.15 or later (this is ${process.version}); use gzip`,
    )
  }
  return value as Compression
}

export function compressStream(compression: Exclude<Compression, 'none'>): Transform {
  checkCompression(compression)
  return compression === 'gzip' ? zlib.createGzip() : zlib.createZstdCompress()
}

/** A stream stage, with what its own errors mean to the user. */
export interface Stage {
  stream: NodeJS.ReadWriteStream
  explain?: (err: Error) => Error
}

/**
 * Decompression: first a check of the magic bytes, so a wrong `compression` setting is
 * reported as that; a zlib error after it means the compressed data itself is damaged.
 */
export function decompressStages(compression: Exclude<Compression, 'none'>, file: string): Stage[] {
  checkCompression(compression)
  const inflate = compression === 'gzip' ? zlib.createGunzip() : zlib.createZstdDecompress()
  const magic = new MagicCheck(compression, file)
  return [
    { stream: magic },
    {
      stream: inflate,
      // Only zlib's own errors; the pipeline also destroys this stage with other stages' errors.
      explain: (err) =>
        err instanceof UserError || !/^(Z_|ZSTD_)/.test(String((err as NodeJS.ErrnoException).code))
          ? err
          : new UserError(
              `${file}: the ${compression} data is damaged (${err.message}); restore from another backup`,
            ),
    },
    { stream: new NothingAfter(compression, file, magic, inflate) },
  ]
}

/**
 * Passes the plaintext through; at its end, fails if the decompressor left input unread. zlib
 * ends at the last whole member or frame and may drop what follows it in the same chunk: gzip
 * drops zero bytes, zstd any bytes, even a further frame of data. Such a file is not the one
 * that was written, with one exception: Node's zstd encoder may end its output with an empty
 * frame (9 bytes; seen where its input came in several writes), so frames that decode to
 * nothing are read, and allowed.
 */
class NothingAfter extends Transform {
  constructor(
    private readonly compression: 'gzip' | 'zstd',
    private readonly file: string,
    private readonly given: MagicCheck,
    private readonly inflate: zlib.Gunzip | zlib.ZstdDecompress,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    const extra = this.given.bytes - this.inflate.bytesWritten
    if (extra <= 0) return done()
    const refuse = new UserError(
      `${this.file}: ${extra} bytes follow the end of the ${this.compression} data (the file was appended to or damaged); restore from another backup`,
    )
    if (this.compression !== 'zstd' || extra > TAIL_KEPT) return done(refuse)
    emptyZstdFrames(this.given.tail.subarray(-extra)).then(
      (empty) => done(empty ? null : refuse),
      () => done(refuse),
    )
  }
}

/** The most bytes after the last frame that are read to see whether they are empty frames. */
const TAIL_KEPT = 64

/** Whether `bytes` are whole zstd frames that decode to nothing, one after another. */
async function emptyZstdFrames(bytes: Buffer): Promise<boolean> {
  while (bytes.length > 0) {
    // One frame at a time: the decoder stops at the end of the first.
    const z = zlib.createZstdDecompress()
    let out = 0
    const ended = await new Promise<boolean>((resolve) => {
      z.on('data', (b: Buffer) => (out += b.length))
      z.on('error', () => resolve(false))
      z.on('end', () => resolve(true))
      z.end(bytes)
    })
    if (!ended || out > 0 || z.bytesWritten <= 0) return false
    bytes = bytes.subarray(z.bytesWritten)
  }
  return true
}

class MagicCheck extends Transform {
  private head: Buffer | null = Buffer.alloc(0)
  /** Bytes given to the decompressor so far, and the last TAIL_KEPT of them. */
  bytes = 0
  tail = Buffer.alloc(0)

  constructor(
    private readonly compression: 'gzip' | 'zstd',
    private readonly file: string,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.tail =
      chunk.length >= TAIL_KEPT
        ? Buffer.from(chunk.subarray(-TAIL_KEPT))
        : Buffer.concat([this.tail, chunk]).subarray(-TAIL_KEPT)
    if (!this.head) return done(null, chunk)
    const head = Buffer.concat([this.head, chunk])
    if (head.length < 4) {
      this.head = head
      return done()
    }
    this.head = null
    done(this.check(head) ?? null, head)
  }

  override _flush(done: TransformCallback): void {
    if (!this.head) return done()
    done(this.check(this.head))
  }

  private check(head: Buffer): UserError | undefined {
    const found = detectFormat(head)
    if (found === this.compression) return undefined
    const what = found === 'unknown' ? 'uncompressed data' : describeFormat(found)
    return new UserError(
      `${CodecInputs.Compression}: ${this.file} holds ${what}, not ${this.compression} data; set compression to what the backup was made with`,
    )
  }
}
