/**
 * What the S3 store needs around the SDK: a stream that counts and
 * hashes (and checks at its end), Content-MD5 on requests, and a bounded parallel map.
 */
import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'

/**
 * Counts and hashes what passes through. With `expected`, the stream fails at its end when the
 * bytes are not the manifest's, before the last part is sent, so the upload is aborted and
 * never completed.
 */
export class Digesting extends Transform {
  bytes = 0
  private readonly hash = createHash('sha256')
  private digest: string | null = null

  constructor(
    private readonly expected: { sha256: string; bytes: number } | null,
    private readonly file = '',
  ) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
    done(null, chunk)
  }

  override _flush(done: TransformCallback): void {
    this.digest = this.hash.digest('hex')
    const e = this.expected
    if (e && (this.bytes !== e.bytes || this.digest !== e.sha256)) {
      done(
        new Error(
          `${this.file} changed after its manifest was written: ${this.bytes} bytes with sha256 ${this.digest}, the manifest says ${e.bytes} bytes with sha256 ${e.sha256}`,
        ),
      )
      return
    }
    done()
  }

  hex(): string {
    if (this.digest === null) this.digest = this.hash.digest('hex')
    return this.digest
  }
}

/**
 * Adds Content-MD5 to every request whose body is in memory (each part, the manifest): AWS
 * requires it for writes under Object Lock. Streaming bodies never reach here: lib-storage
 * buffers each part.
 */
export const contentMd5 =
  (next: (args: { request: unknown }) => Promise<unknown>) =>
  async (args: { request: unknown }) => {
    const request = args.request as { headers?: Record<string, string>; body?: unknown }
    const body = request.body
    if (
      request.headers &&
      (typeof body === 'string' || body instanceof Uint8Array) &&
      !Object.keys(request.headers).some((h) => h.toLowerCase() === 'content-md5')
    ) {
      request.headers['content-md5'] = createHash('md5').update(body).digest('base64')
    }
    return next(args)
  }

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}
