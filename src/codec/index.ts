/**
 * The codec between a database engine and the backup store: optional compression, then optional
 * encryption (age or gpg), as streams, so memory stays flat whatever the size of the database.
 * Every call hashes the bytes as they pass and returns the sha256 of both the stored (encoded)
 * file and the plaintext, without reading anything twice.
 *
 * age with no compression, file to file, skips the streams (blocks.ts): the same bytes, checks
 * and errors, at twice the speed.
 *
 * Output is written to a temporary name in the destination's folder, fsynced (not a plaintext
 * decoded as `scratch`), and renamed only once the whole stream has been written and, when
 * decoding, authenticated; on any error the temporary file is deleted. A partly decrypted backup never sits where a restore could find it.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { removeOnInterrupt } from '../util/cleanup.js'
import { UserError } from '../util/errors.js'
import { fsyncDir, moveNoClobber, tempName } from '../util/fs.js'
import {
  AGE_HEAD_MAX,
  AGE_MAX_RECIPIENTS,
  ageDecryptStream,
  ageEncryptStart,
  ageEncryptStream,
  AgeOpener,
  CHUNK,
  ENC_CHUNK,
  parseRecipient,
  STAGE_BUFFER,
  splitKeyLines,
  ageDecryptCheck,
  type AgeDecryptOptions,
  type AgeEncryptOptions,
} from './age.js'
import { convertBlocks, openDirect, writeAll } from './blocks.js'
import {
  checkCompression,
  compressStream,
  decompressStages,
  type Compression,
  type Stage,
} from './compression.js'
import { describeFormat, detectFormat, HEAD_BYTES, type Format } from './format.js'
import { gpgDecryptStream, gpgEncryptStream } from './gpg.js'
import { CodecInputs } from './inputs.js'

export { ageRecipientOf, generateAgeIdentity, splitKeyLines, type AgeKeyPair } from './age.js'
export { COMPRESSIONS, zstdAvailable, type Compression } from './compression.js'
export { detectFormat, type Format } from './format.js'
export { CodecInputs } from './inputs.js'

export const ENCRYPTIONS = ['none', 'age', 'gpg'] as const
export type EncryptionKind = (typeof ENCRYPTIONS)[number]

/** How backups are written. The nightly job needs only public keys (or a passphrase). */
export type Encryption =
  | { kind: 'none' }
  | {
      kind: 'age'
      /** X25519 recipients (age1...); lines of an age recipients file work too. */
      recipients?: readonly string[]
      /** Instead of recipients: encrypt with a passphrase (age's scrypt recipient). */
      passphrase?: string
      /** log2 of the scrypt work factor; age's default, 18, when unset. */
      scryptWorkFactor?: number
    }
  | {
      kind: 'gpg'
      /** A key id, fingerprint or e-mail in the keyring, or an armored public key block. */
      recipient?: string
      /** Instead of a recipient: symmetric encryption (AES256) with this passphrase. */
      passphrase?: string
      /** GNUPGHOME; gpg's default when unset. */
      homedir?: string
    }

/** How backups are read back (verify, drill, restore). */
export type Decryption =
  | { kind: 'none' }
  | {
      kind: 'age'
      /** X25519 identities (AGE-SECRET-KEY-1...); the lines of an age-keygen key file work too. */
      identities?: readonly string[]
      /** For files encrypted with a passphrase. */
      passphrase?: string
      /** Refuse scrypt work factors above 2^this (age's default, 22, when unset). */
      maxScryptWorkFactor?: number
    }
  | {
      kind: 'gpg'
      /** The symmetric passphrase, or the passphrase of the secret key in the keyring. */
      passphrase?: string
      homedir?: string
    }

export interface EncodeOptions {
  compression: Compression
  encryption: Encryption
  signal?: AbortSignal
}

export interface DecodeOptions {
  /** What the backup was made with; a mismatch is an error naming `compression`. */
  compression: Compression
  decryption: Decryption
  /**
   * The plaintext's size as the manifest recorded it: decoding stops with an error at the first
   * byte beyond it, so a decompression bomb (or a gpg message with its own compression) cannot
   * fill the disk. Unset: no limit.
   */
  maxPlainBytes?: number
  /**
   * The plaintext is scratch that this job reads and removes (a drill's, verify's, a restore
   * check's): written through the page cache, with no datasync or fsync. A crash loses nothing a
   * later run needs, and a write the disk later fails makes a check fail, not pass: the stored
   * file is proven by its own digest. Unset: fsynced, as an encoded backup is, and as a restore
   * decodes (whose plaintext is what goes live: a failed write must stop it, and only fsync
   * says).
   */
  scratch?: boolean
  signal?: AbortSignal
}

/** Both checksums of one backup, hashed as the bytes streamed by. */
export interface Digests {
  /** sha256 (hex) and size of the stored file: compressed and encrypted. */
  sha256: string
  bytes: number
  /** sha256 (hex) and size of the plaintext: what the engine wrote, or what was restored. */
  plainSha256: string
  plainBytes: number
}

/** `.gz`/`.zst` then `.age`/`.gpg`, in the order they were applied, for naming backups. */
export function encodedExtension(compression: Compression, encryption: EncryptionKind): string {
  const zip = { none: '', gzip: '.gz', zstd: '.zst' }[compression]
  const lock = { none: '', age: '.age', gpg: '.gpg' }[encryption]
  return zip + lock
}

/**
 * Throws a one-line UserError naming the input at fault; for parsing inputs, so a bad key stops
 * the job before it takes a snapshot. Never echoes a secret.
 */
export function checkEncryption(encryption: Encryption): void {
  checkKind(encryption.kind)
  if (encryption.kind === 'age') {
    const recipients = splitKeyLines(encryption.recipients ?? [])
    const passphrase = encryption.passphrase
    if (recipients.length > 0 && passphrase !== undefined) {
      throw new UserError(
        `${CodecInputs.AgeRecipients}: set either ${CodecInputs.AgeRecipients} or ${CodecInputs.AgePassphrase}, not both (age does not mix a passphrase with recipients)`,
      )
    }
    if (recipients.length === 0 && passphrase === undefined) {
      throw new UserError(
        `${CodecInputs.AgeRecipients}: encryption: age needs one or more recipients (age1..., from age-keygen) or ${CodecInputs.AgePassphrase}`,
      )
    }
    recipients.forEach((r, n) => parseRecipient(r, n + 1))
    if (recipients.length > AGE_MAX_RECIPIENTS) {
      throw new UserError(
        `${CodecInputs.AgeRecipients}: ${recipients.length} recipients make an age header longer than the 1 MiB this action reads when it decrypts, so nothing could restore the backup; give at most ${AGE_MAX_RECIPIENTS} recipients`,
      )
    }
    if (passphrase === '') {
      throw new UserError(`${CodecInputs.AgePassphrase}: the passphrase is empty; set a passphrase`)
    }
    const wf = encryption.scryptWorkFactor
    if (wf !== undefined && !(Number.isInteger(wf) && wf >= 1 && wf <= 30)) {
      throw new UserError(`${CodecInputs.AgePassphrase}: the scrypt work factor must be 1 to 30`)
    }
  } else if (encryption.kind === 'gpg') {
    const { recipient, passphrase } = encryption
    if (recipient !== undefined && passphrase !== undefined) {
      throw new UserError(
        `${CodecInputs.GpgRecipient}: set either ${CodecInputs.GpgRecipient} or ${CodecInputs.GpgPassphrase} for encryption, not both`,
      )
    }
    if (recipient === undefined && passphrase === undefined) {
      throw new UserError(
        `${CodecInputs.GpgRecipient}: encryption: gpg needs ${CodecInputs.GpgRecipient} (a public key) or ${CodecInputs.GpgPassphrase}`,
      )
    }
    if (recipient !== undefined) checkGpgRecipient(recipient)
    if (passphrase === '') {
      throw new UserError(`${CodecInputs.GpgPassphrase}: the passphrase is empty; set a passphrase`)
    }
  }
}

/** One key name, or one armored public key; gpg would echo anything else, secrets included. */
function checkGpgRecipient(recipient: string): void {
  const text = recipient.trim()
  const fix =
    'give a key id, fingerprint or e-mail, or an armored public key (gpg --armor --export)'
  if (text === '')
    throw new UserError(`${CodecInputs.GpgRecipient}: the recipient is empty; ${fix}`)
  if (/PRIVATE KEY/.test(text)) {
    throw new UserError(
      `${CodecInputs.GpgRecipient}: this is a private key, which the backup job must not hold; ${fix}`,
    )
  }
  if (/\n/.test(text) && !text.startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
    throw new UserError(
      `${CodecInputs.GpgRecipient}: spans several lines but is no armored public key; ${fix}`,
    )
  }
}

/** As checkEncryption, for the settings that read backups. */
export function checkDecryption(decryption: Decryption): void {
  checkKind(decryption.kind)
  if (decryption.kind === 'age') ageDecryptCheck(decryption)
  if (decryption.kind === 'gpg' && decryption.passphrase === '') {
    throw new UserError(
      `${CodecInputs.GpgPassphrase}: the passphrase is empty; set a passphrase or leave it unset`,
    )
  }
}

function checkKind(kind: string): void {
  if (!(ENCRYPTIONS as readonly string[]).includes(kind)) {
    throw new UserError(
      `${CodecInputs.Encryption}: "${kind}" is not one of ${ENCRYPTIONS.join(', ')}`,
    )
  }
}

/** Compresses and encrypts `src` into `dest`, a new file: an existing one is never replaced (EEXIST). */
export async function encodeFile(src: string, dest: string, opts: EncodeOptions): Promise<Digests> {
  checkEncryption(opts.encryption)
  checkCompression(opts.compression)
  if (path.resolve(src) === path.resolve(dest)) {
    throw new UserError(`${dest}: cannot encode a file onto itself; choose another destination`)
  }
  await mustBeFile(src)
  if (opts.compression === 'none' && opts.encryption.kind === 'age') {
    return encodeAgeFile(src, dest, opts.encryption, opts.signal)
  }
  return encodeStream(createReadStream(src, { highWaterMark: READ_SIZE }), dest, opts)
}

/**
 * Compresses and encrypts a stream (say, pg_dump's stdout) into `dest`, with no plaintext file;
 * a new file, as encodeFile's.
 */
export async function encodeStream(
  source: Readable | AsyncIterable<Uint8Array>,
  dest: string,
  opts: EncodeOptions,
): Promise<Digests> {
  checkEncryption(opts.encryption)
  checkCompression(opts.compression)
  const { compression, encryption } = opts
  const plain = new HashTap()
  const stages: Stage[] = [{ stream: plain }]
  if (compression !== 'none') stages.push({ stream: compressStream(compression) })
  let close = async () => {}
  if (encryption.kind === 'age') {
    stages.push({
      stream: await ageEncryptStream({
        ...encryption,
        recipients: splitKeyLines(encryption.recipients ?? []),
      }),
    })
  } else if (encryption.kind === 'gpg') {
    const gpg = await gpgEncryptStream(encryption)
    stages.push({ stream: gpg.stream })
    close = gpg.close
  }
  const stored = stages.length === 1 ? plain : new HashTap()
  if (stored !== plain) stages.push({ stream: stored })
  try {
    await intoTempFile(dest, (out) => run(toReadable(source), stages, sink(out), opts.signal), {
      noClobber: true,
    })
  } finally {
    await close()
  }
  return digests(stored.tally, plain.tally)
}

/** Decrypts and decompresses `src` into `dest`; `dest` appears only if all of it checked out. */
export async function decodeFile(src: string, dest: string, opts: DecodeOptions): Promise<Digests> {
  if (path.resolve(src) === path.resolve(dest)) {
    throw new UserError(`${dest}: cannot decode a file onto itself; choose another destination`)
  }
  await checkEncoded(src, opts)
  const sync = !opts.scratch
  if (ageOnly(opts)) return intoTempFile(dest, (out) => decodeAgeFile(src, out, opts), { sync })
  const { stages, stored, plain } = decodeStages(src, opts)
  await intoTempFile(
    dest,
    (out) =>
      run(createReadStream(src, { highWaterMark: READ_SIZE }), stages, sink(out), opts.signal),
    { sync },
  )
  return digests(stored.tally, plain.tally)
}

/**
 * Decodes `src` all the way and discards the plaintext: proves a backup opens with the keys
 * at hand and yields the checksums, without putting plaintext on disk.
 */
export async function verifyEncodedFile(src: string, opts: DecodeOptions): Promise<Digests> {
  await checkEncoded(src, opts)
  if (ageOnly(opts)) return decodeAgeFile(src, null, opts)
  const { stages, stored, plain } = decodeStages(src, opts)
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() })
  await run(createReadStream(src, { highWaterMark: READ_SIZE }), stages, discard, opts.signal)
  return digests(stored.tally, plain.tally)
}

/** What `file` holds, from its first bytes. */
export async function detectFileFormat(file: string): Promise<Format> {
  return detectFormat(await readHead(file))
}

// 1 MiB reads: fewer trips through the stream machinery per gigabyte than the 64 KiB default.
const READ_SIZE = 1 << 20

/** age's 64 KiB chunks, 16 to a block: the block path's unit of reading, converting, writing. */
const BLOCK_CHUNKS = 16

/** Encrypts `src` into `dest` in blocks: encodeFile for age with no compression. */
async function encodeAgeFile(
  src: string,
  dest: string,
  encryption: AgeEncryptOptions,
  signal: AbortSignal | undefined,
): Promise<Digests> {
  const { head, sealer } = await ageEncryptStart({
    ...encryption,
    recipients: splitKeyLines(encryption.recipients ?? []),
  })
  const stored = new Tally()
  const input = await fs.open(src, 'r')
  try {
    const plain = await intoTempFile(
      dest,
      async (out) => {
        // Past the page cache: a backup is not read again soon, and the database's pages
        // are worth more there than a gigabyte of ciphertext (blocks.ts DirectSink).
        const direct = await openDirect(out)
        try {
          return await convertBlocks({
            input,
            size: BLOCK_CHUNKS * CHUNK,
            convert: (block, last) => sealer.sealBlock(block, last).map((p) => stored.add(p)),
            output: { handle: out, at: 0, prefix: stored.add(head), direct },
            signal,
          })
        } finally {
          await direct?.close()
        }
      },
      { noClobber: true },
    )
    return {
      sha256: stored.digest(),
      bytes: stored.bytes,
      plainSha256: plain.sha256,
      plainBytes: plain.bytes,
    }
  } finally {
    await input.close()
  }
}

/** Decrypts `src` in blocks into `out`, or nowhere: decodeFile for age with no compression. */
async function decodeAgeFile(
  src: string,
  out: fs.FileHandle | null,
  opts: DecodeOptions & { decryption: AgeDecryptOptions },
): Promise<Digests> {
  const opener = new AgeOpener(opts.decryption, src)
  const plain = new Tally()
  const input = await fs.open(src, 'r')
  try {
    const stored = await convertBlocks({
      input,
      size: BLOCK_CHUNKS * ENC_CHUNK,
      head: { max: AGE_HEAD_MAX, begin: (head) => opener.begin(head) },
      convert: (block, last) => {
        const pieces = opener.openBlock(block, last).map((p) => plain.add(p))
        if (opts.maxPlainBytes !== undefined && plain.bytes > opts.maxPlainBytes) {
          throw tooMuchPlaintext(src, opts.maxPlainBytes)
        }
        return pieces
      },
      ...(out && { output: { handle: out, at: 0, sync: !opts.scratch } }),
      signal: opts.signal,
    })
    return { ...stored, plainSha256: plain.digest(), plainBytes: plain.bytes }
  } finally {
    await input.close()
  }
}

/** age and nothing else: the block path, rather than streams. */
function ageOnly(opts: DecodeOptions): opts is DecodeOptions & { decryption: AgeDecryptOptions } {
  return opts.compression === 'none' && opts.decryption.kind === 'age'
}

/** Settings, and the file's first bytes: refuses, before any work, what cannot be decoded. */
async function checkEncoded(src: string, opts: DecodeOptions): Promise<void> {
  checkDecryption(opts.decryption)
  checkCompression(opts.compression)
  await mustBeFile(src)
  checkFormat(src, detectFormat(await readHead(src)), opts.decryption.kind)
}

function decodeStages(src: string, opts: DecodeOptions) {
  const { compression, decryption } = opts
  const stored = new HashTap()
  const stages: Stage[] = [{ stream: stored }]
  if (decryption.kind === 'age') stages.push({ stream: ageDecryptStream(decryption, src) })
  if (decryption.kind === 'gpg') stages.push({ stream: gpgDecryptStream(decryption, src) })
  if (compression !== 'none') stages.push(...decompressStages(compression, src))
  if (opts.maxPlainBytes !== undefined) {
    stages.push({ stream: new ByteLimit(opts.maxPlainBytes, src) })
  }
  const plain = stages.length === 1 ? stored : new HashTap()
  if (plain !== stored) stages.push({ stream: plain })
  return { stages, stored, plain }
}

/** Refuses, before any work, a file that is plainly not what `encryption` says. */
function checkFormat(file: string, format: Format, kind: EncryptionKind): void {
  if (format === 'empty' && kind !== 'none') {
    throw new UserError(
      `${file}: is empty (0 bytes): the backup was cut off or never written; restore from another backup`,
    )
  }
  if (format === 'age-armor' && kind === 'age') {
    throw new UserError(
      `${file}: is an ASCII-armored age file, which this action does not read; convert it with age -d | age -e, or decrypt it with the age CLI`,
    )
  }
  const encrypted: Partial<Record<Format, EncryptionKind>> = {
    age: 'age',
    'age-armor': 'age',
    gpg: 'gpg',
    'gpg-armor': 'gpg',
  }
  const actual = encrypted[format]
  if (kind === 'none' && actual) {
    throw new UserError(
      `${CodecInputs.Encryption}: ${file} is ${describeFormat(format)}, but encryption is none; set encryption: ${actual} and its key`,
    )
  }
  const mismatch =
    kind === 'age' ? format !== 'age' : kind === 'gpg' && actual !== 'gpg' && format !== 'unknown'
  if (mismatch) {
    throw new UserError(
      `${CodecInputs.Encryption}: ${file} is ${describeFormat(format)}, not ${kind === 'age' ? 'an age file' : 'an OpenPGP message'}; set encryption to what the backup was made with`,
    )
  }
}

async function mustBeFile(file: string): Promise<void> {
  let stat
  try {
    stat = await fs.stat(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(`${file}: no such file; check the path`)
    }
    throw err
  }
  if (!stat.isFile())
    throw new UserError(`${file}: is not a regular file; give the path of a backup file`)
}

async function readHead(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r')
  try {
    const buf = Buffer.alloc(HEAD_BYTES)
    const { bytesRead } = await handle.read(buf, 0, HEAD_BYTES, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

/** sha256 and size of bytes as they go by. */
class Tally {
  private readonly hash = createHash('sha256')
  bytes = 0

  /** Counts `buf` in, and returns it. */
  add(buf: Buffer): Buffer {
    this.hash.update(buf)
    this.bytes += buf.length
    return buf
  }

  digest(): string {
    return this.hash.digest('hex')
  }
}

/** Passes bytes through, hashing them on the way. */
class HashTap extends Transform {
  readonly tally = new Tally()

  constructor() {
    super({ highWaterMark: STAGE_BUFFER })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    done(null, this.tally.add(chunk))
  }
}

/** Passes at most `max` bytes; one more is an error that stops every stage. */
class ByteLimit extends Transform {
  private bytes = 0

  constructor(
    private readonly max: number,
    private readonly file: string,
  ) {
    super({ highWaterMark: STAGE_BUFFER })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.bytes <= this.max) return done(null, chunk)
    done(tooMuchPlaintext(this.file, this.max))
  }
}

function tooMuchPlaintext(file: string, max: number): UserError {
  return new UserError(
    `${file}: decodes to more than the ${max} bytes of plaintext its manifest records (backup.plain.bytes), so decoding stopped there and nothing was kept: the backup was damaged or replaced (a decompression bomb looks like this); restore from another backup`,
  )
}

function digests(stored: Tally, plain: Tally): Digests {
  const sha256 = stored.digest()
  return {
    sha256,
    bytes: stored.bytes,
    plainSha256: plain === stored ? sha256 : plain.digest(),
    plainBytes: plain.bytes,
  }
}

function toReadable(source: Readable | AsyncIterable<Uint8Array>): Readable {
  return source instanceof Readable ? source : Readable.from(source, { objectMode: false })
}

async function run(
  source: Readable,
  stages: Stage[],
  sink: Writable,
  signal: AbortSignal | undefined,
): Promise<void> {
  // A stage's raw error (zlib's "incorrect header check") is swapped for one that says what it
  // means for this backup; the first error anywhere stops every stage.
  const explained = new Map<unknown, Error>()
  for (const { stream, explain } of stages) {
    if (explain) stream.on('error', (err: Error) => explained.set(err, explain(err)))
  }
  try {
    await pipeline([source, ...stages.map((s) => s.stream), sink], signal ? { signal } : {})
  } catch (err) {
    throw explained.get(err) ?? err
  }
}

/** A Writable onto `handle` for the stream path; intoTempFile syncs and closes it. */
function sink(handle: fs.FileHandle): Writable {
  let at = 0
  return new Writable({
    highWaterMark: 2 * STAGE_BUFFER,
    writev: (chunks, done) => {
      const pieces = chunks.map((c) => c.chunk as Buffer)
      const from = at
      at += pieces.reduce((sum, p) => sum + p.length, 0)
      writeAll(handle, pieces, from).then(() => done(), done)
    },
  })
}

/**
 * Runs `write` into a new temporary file beside `dest`, then fsyncs and renames it to `dest`;
 * with `noClobber`, gives it that name only if no file has it (moveNoClobber: EEXIST otherwise);
 * with `sync: false` (scratch), renames it without the fsyncs. On any failure the temporary
 * file is closed and deleted, and `dest` is left as it was.
 */
async function intoTempFile<T>(
  dest: string,
  write: (out: fs.FileHandle) => Promise<T>,
  { noClobber = false, sync = true } = {},
): Promise<T> {
  const dir = path.dirname(path.resolve(dest))
  try {
    if (!(await fs.stat(dir)).isDirectory()) throw new Error('not a directory')
  } catch {
    throw new UserError(`${dest}: its folder ${dir} does not exist; create it first`)
  }
  const tmp = tempName(dir, path.basename(dest))
  // Interrupted (SIGINT/SIGTERM): a partly written file, perhaps plaintext, is removed first.
  const forget = removeOnInterrupt(tmp, 'partial file')
  let out: fs.FileHandle | undefined
  let result: T
  try {
    out = await fs.open(tmp, 'wx', 0o600)
    result = await write(out)
    // fsync before the rename, so it never exposes a file the disk has not got.
    if (sync) await out.sync()
    await out.close()
    await (noClobber ? moveNoClobber(tmp, dest) : fs.rename(tmp, dest))
  } catch (err) {
    // close() waits for any write still in flight, so nothing lands after the rm; a close that
    // fails (or a second close) must not keep the partial file, perhaps plaintext, from going.
    await out?.close().catch(() => undefined)
    await fs.rm(tmp, { force: true })
    throw err
  } finally {
    forget()
  }
  if (sync) await fsyncDir(dir)
  return result
}
