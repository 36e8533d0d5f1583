/**
 * What the S3 store needs around the SDK: the manifest read from text, a stream that counts and
 * hashes (and checks at its end), Content-MD5 on requests, and a bounded parallel map.
 */
import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { UserError } from '../errors.js'
import { MANIFEST_FORMAT, type Manifest } from '../manifest.js'

/** A manifest that is there but does not parse: the backup is listed as damaged. */
export class DamagedManifest extends UserError {}

/**
 * The checks readManifest (manifest.ts) makes, on text: a manifest in a bucket has no file to
 * read. `where` names it in the error.
 */
export function parseManifest(text: string, where: string): Manifest {
  let m: Partial<Manifest>
  try {
    m = JSON.parse(text) as Partial<Manifest>
  } catch {
    throw new DamagedManifest(
      `manifest ${where} is not valid JSON: it is damaged; this backup cannot be verified.`,
    )
  }
  const valid =
    m !== null &&
    typeof m === 'object' &&
    m.format === MANIFEST_FORMAT &&
    (m.engine === 'sqlite' || m.engine === 'postgres') &&
    typeof m.createdAt === 'string' &&
    !Number.isNaN(Date.parse(m.createdAt)) &&
    typeof m.backup?.sha256 === 'string' &&
    typeof m.backup?.bytes === 'number' &&
    typeof m.inventory?.schema === 'object'
  if (!valid) {
    throw new DamagedManifest(
      `manifest ${where} is not an omniai-backups format ${MANIFEST_FORMAT} manifest (fields missing or wrong); this backup cannot be verified.`,
    )
  }
  return m as Manifest
}

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
