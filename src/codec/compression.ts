/** gzip and zstd as streams, with errors that name the `compression` input. */
import { Duplex, Transform, type TransformCallback } from 'node:stream'
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

/**
 * zlib's output comes in pieces of this size (its default, 16 KiB, pushes 64 pieces per MiB
 * through the stream machinery). Measured, 256 MiB of a SQLite database, zstd, decodeFile:
 * 1.12-1.20 s against 3.29-3.63 s.
 */
const ZLIB_CHUNK = 1 << 20

export function compressStream(compression: Exclude<Compression, 'none'>): Duplex {
  checkCompression(compression)
  return compression === 'gzip' ? zlib.createGzip({ chunkSize: ZLIB_CHUNK }) : zstdOneFrame()
}

/**
 * zstd as one frame, whatever the timing of its input. Node's compressor ends the frame on the
 * last chunk when that chunk is compressed after the input has ended, then writes a second,
 * empty frame (9 bytes) when it is flushed; Node's decoder cannot read such a file where a read
 * splits that frame. Here each chunk is compressed before the next is given, and the input is
 * ended only after the last: the frame ends once, on the flush.
 */
function zstdOneFrame(): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const z = zlib.createZstdCompress({ chunkSize: ZLIB_CHUNK })
    const feeding = (async () => {
      for await (const chunk of source) {
        await new Promise<void>((resolve, reject) =>
          z.write(chunk, (err) => (err ? reject(err) : resolve())),
        )
      }
      z.end()
    })()
    feeding.catch((err: Error) => z.destroy(err))
    yield* z
    await feeding
  })
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
  const inflate =
    compression === 'gzip'
      ? zlib.createGunzip({ chunkSize: ZLIB_CHUNK })
      : zlib.createZstdDecompress({ chunkSize: ZLIB_CHUNK })
  const magic = new MagicCheck(compression, file)
  return [
    { stream: magic },
    {
      stream: inflate,
      // Only zlib's own errors; the pipeline also destroys this stage with other stages' errors.
      // Node's zstd decoder, ended by a frame that ends where a read ends, fails on the data of
      // the next read with a stream error of its own.
      explain: (err) => {
        const code = String((err as NodeJS.ErrnoException).code)
        if (err instanceof UserError) return err
        if (code === 'ERR_STREAM_PUSH_AFTER_EOF') {
          return new UserError(
            `${file}: data follows the end of the ${compression} data (the file was appended to or damaged); restore from another backup`,
          )
        }
        if (!/^(Z_|ZSTD_)/.test(code)) return err
        return new UserError(
          `${file}: the ${compression} data is damaged (${err.message}); restore from another backup`,
        )
      },
    },
    { stream: new NothingAfter(compression, file, magic, inflate) },
  ]
}

/**
 * Passes the plaintext through; at its end, fails if the decompressor left input unread. zlib
 * ends at the last whole member or frame and may drop what follows it in the same chunk: gzip
 * drops zero bytes, zstd any bytes, even a further frame of data. Such a file is not the one
 * that was written, with one exception: Node's zstd encoder could end its output with an empty
 * frame (9 bytes; see zstdOneFrame), which is allowed, byte for byte. What this cannot see: a
 * further gzip member, or a zstd frame that starts exactly where a read starts, is decoded, and
 * the plaintext's sha256 then differs from the manifest's.
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
    const tail = this.given.tail.subarray(-extra)
    const empty = this.compression === 'zstd' && extra <= TAIL_KEPT && emptyZstdFrames(tail)
    done(empty ? null : refuse)
  }
}

/**
 * The empty frame Node's zstd encoder wrote last before zstdOneFrame (magic, a single-segment
 * header of content size 0, one empty last raw block), byte for byte.
 */
const EMPTY_ZSTD_FRAME = Buffer.from('28b52ffd2000010000', 'hex')

/** The most bytes after the last frame that are kept to compare with empty frames. */
const TAIL_KEPT = 4 * EMPTY_ZSTD_FRAME.length

/**
 * Whether `bytes` are that empty frame, once or more: nothing else (a skippable frame would
 * decode to nothing too, carrying anything).
 */
function emptyZstdFrames(bytes: Buffer): boolean {
  if (bytes.length === 0 || bytes.length % EMPTY_ZSTD_FRAME.length !== 0) return false
  for (let at = 0; at < bytes.length; at += EMPTY_ZSTD_FRAME.length) {
    if (!bytes.subarray(at, at + EMPTY_ZSTD_FRAME.length).equals(EMPTY_ZSTD_FRAME)) return false
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
