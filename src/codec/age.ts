/**
 * The age v1 file format (https://age-encryption.org/v1) on node:crypto: X25519 and scrypt
 * recipients, the HMAC'd text header, and the STREAM payload of 64 KiB ChaCha20-Poly1305 chunks.
 * Native crypto keeps throughput near the age CLI; files are interchangeable with it both ways.
 *
 * Decryption releases a chunk only after its tag verified, and a file that ends without a chunk
 * flagged final is an error, so a truncated file can never pass for a complete one.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scrypt as scryptCb,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { promisify } from 'node:util'
import { UserError } from '../util/errors.js'
import { bech32Decode, bech32Encode } from './bech32.js'
import { CodecInputs } from './inputs.js'

const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>

export const AGE_MAGIC = 'age-encryption.org/'
const VERSION_LINE = 'age-encryption.org/v1'
/** Plaintext bytes per payload chunk, and the same chunk sealed (its 16-byte tag added). */
export const CHUNK = 64 * 1024
const TAG = 16
export const ENC_CHUNK = CHUNK + TAG
const FILE_KEY_BYTES = 16
const NONCE_BYTES = 16
/**
 * How much each stage may hold before it pushes back. A few MiB rather than Node's 64 KiB lets
 * the disk reads and writes (on libuv's threads) run while this thread encrypts; memory stays
 * bounded all the same.
 */
export const STAGE_BUFFER = 4 << 20
/** Real headers are a few hundred bytes; this only stops a damaged file from filling memory. */
const MAX_HEADER = 1 << 20
/**
 * X25519 recipients whose stanzas (98 bytes each: `-> X25519 `, two lines of 43 base64 digits)
 * fit in MAX_HEADER with the version line and the MAC line (70 bytes): 10,699.
 */
export const AGE_MAX_RECIPIENTS = Math.floor((MAX_HEADER - 70) / 98)
/** The first bytes of a file that AgeOpener.begin needs at most: the longest header, the nonce. */
export const AGE_HEAD_MAX = MAX_HEADER + NONCE_BYTES
const X25519_INFO = 'age-encryption.org/v1/X25519'
const SCRYPT_SALT_LABEL = 'age-encryption.org/v1/scrypt'
/** age's own default: about a second of work, 256 MiB of memory. */
export const DEFAULT_SCRYPT_WORK_FACTOR = 18
/** age's own ceiling when decrypting; a header asking for more is refused. */
export const MAX_SCRYPT_WORK_FACTOR = 22

// DER wrappings of a raw X25519 key (RFC 8410), so node:crypto can take the 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

// ---------------------------------------------------------------------------------------------
// Keys

export interface AgeKeyPair {
  /** AGE-SECRET-KEY-1...: reads backups. Keep it out of the job that writes them. */
  identity: string
  /** age1...: writes backups; safe to publish. */
  recipient: string
}

/** A new X25519 identity and its recipient, the same as `age-keygen` makes. */
export function generateAgeIdentity(): AgeKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const secret = rawPrivate(privateKey)
  return {
    identity: bech32Encode('AGE-SECRET-KEY-', secret, true),
    recipient: bech32Encode('age', rawPublic(publicKey)),
  }
}

/** The recipient (public key) of an identity, like `age-keygen -y`. */
export function ageRecipientOf(identity: string): string {
  return bech32Encode('age', parseIdentity(identity, 1).publicRaw)
}

/**
 * The keys in an input or a key file: one per line, blank lines and `#` comments skipped, the
 * way age reads `-R` recipient files and `-i` identity files (age-keygen output works as is).
 */
export function splitKeyLines(text: string | readonly string[]): string[] {
  const lines =
    typeof text === 'string' ? text.split(/\r?\n/) : text.flatMap((t) => t.split(/\r?\n/))
  return lines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
}

/** Throws a UserError naming age-recipients unless `text` is an X25519 recipient. */
export function parseRecipient(text: string, index: number): Buffer {
  const shown = text.length > 24 ? `${text.slice(0, 20)}…` : text
  const where = `${CodecInputs.AgeRecipients}: entry ${index} ("${shown}")`
  if (text.startsWith('ssh-')) {
    throw new UserError(
      `${where} is an SSH key; only age X25519 recipients (age1...) are supported, make one with age-keygen`,
    )
  }
  const decoded = bech32Decode(text)
  if (!decoded)
    throw new UserError(
      `${where} is not an age recipient (age1..., as printed by age-keygen); check for a typo or a cut-off line`,
    )
  if (decoded.hrp !== 'age') {
    throw new UserError(
      `${where} is a "${decoded.hrp}" key; only age X25519 recipients (age1...) are supported, make one with age-keygen`,
    )
  }
  if (decoded.data.length !== 32)
    throw new UserError(
      `${where} has the wrong length for an X25519 key; copy it again from age-keygen`,
    )
  return decoded.data
}

interface Identity {
  privateKey: KeyObject
  publicRaw: Buffer
}

/** Never echoes the text: it is a secret. */
function parseIdentity(text: string, index: number): Identity {
  const where = `${CodecInputs.AgeIdentity}: entry ${index}`
  if (/^AGE-PLUGIN-/i.test(text) || /^AGE-SECRET-KEY-PQ-/i.test(text)) {
    throw new UserError(
      `${where} is a plugin or post-quantum identity; only X25519 identities (AGE-SECRET-KEY-1...) are supported`,
    )
  }
  const decoded = bech32Decode(text)
  if (!decoded || decoded.hrp !== 'age-secret-key-' || decoded.data.length !== 32) {
    throw new UserError(
      `${where} is not an age identity (AGE-SECRET-KEY-1..., as written by age-keygen); check for a typo or a cut-off line`,
    )
  }
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, decoded.data]),
    format: 'der',
    type: 'pkcs8',
  })
  return { privateKey, publicRaw: rawPublic(createPublicKey(privateKey)) }
}

function rawPublic(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length)
}

function rawPrivate(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length)
}

function publicKeyOf(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
}

// ---------------------------------------------------------------------------------------------
// Primitives

function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32))
}

const ZERO_NONCE = Buffer.alloc(12)

function seal(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
  const out = cipher.update(plaintext)
  cipher.final()
  return Buffer.concat([out, cipher.getAuthTag()])
}

/** null when the tag does not verify. */
function open(key: Buffer | KeyObject, nonce: Buffer, sealed: Buffer): Buffer | null {
  if (sealed.length < TAG) return null
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG))
  const out = decipher.update(sealed.subarray(0, sealed.length - TAG))
  try {
    decipher.final()
  } catch {
    return null
  }
  return out
}

/** Unpadded base64, as the age header writes it. */
function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '')
}

/** null unless `text` is canonical unpadded base64 (the spec requires rejecting anything else). */
function unb64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*$/.test(text)) return null
  const buf = Buffer.from(text, 'base64')
  return b64(buf) === text ? buf : null
}

// ---------------------------------------------------------------------------------------------
// Header

interface Stanza {
  /** args[0] is the stanza type: X25519, scrypt, or anything else (ignored). */
  args: string[]
  body: Buffer
}

function stanzaText({ args, body }: Stanza): string {
  const text = b64(body)
  const lines: string[] = []
  for (let i = 0; i < text.length; i += 64) lines.push(text.slice(i, i + 64))
  // The body ends at the first line shorter than 64 columns, so a full last line needs an
  // empty one after it.
  if (text.length % 64 === 0) lines.push('')
  return `-> ${args.join(' ')}\n${lines.join('\n')}\n`
}

function x25519Stanza(fileKey: Buffer, recipient: Buffer): Stanza {
  const ephemeral = generateKeyPairSync('x25519')
  const share = rawPublic(ephemeral.publicKey)
  let shared: Buffer
  try {
    shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: publicKeyOf(recipient) })
  } catch {
    throw new UserError(
      `${CodecInputs.AgeRecipients}: a recipient is not a usable X25519 public key; copy it again from age-keygen`,
    )
  }
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient]), X25519_INFO)
  return { args: ['X25519', b64(share)], body: seal(wrapKey, ZERO_NONCE, fileKey) }
}

function scryptParams(logN: number) {
  const N = 2 ** logN
  // Node refuses scrypt above 32 MiB of memory unless told otherwise; it needs 128·N·r bytes.
  return { N, r: 8, p: 1, maxmem: 128 * 8 * N * 2 }
}

async function scryptStanza(fileKey: Buffer, passphrase: string, logN: number): Promise<Stanza> {
  const salt = randomBytes(16)
  const label = Buffer.concat([Buffer.from(SCRYPT_SALT_LABEL), salt])
  const wrapKey = await scrypt(passphrase, label, 32, scryptParams(logN))
  return { args: ['scrypt', b64(salt), String(logN)], body: seal(wrapKey, ZERO_NONCE, fileKey) }
}

function headerMac(fileKey: Buffer, headerUpToDashes: Buffer | string): Buffer {
  return createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
    .update(headerUpToDashes)
    .digest()
}

interface ParsedHeader {
  stanzas: Stanza[]
  /** The header bytes the MAC covers: everything up to and including `---`. */
  macInput: Buffer
  mac: Buffer
}

/**
 * Finds the end of the header in `buf`: the byte after the newline that ends the `--- ` line.
 * Stanza bodies are base64 and arguments follow `-> `, so `\n--- ` can only be the MAC line.
 */
function headerEnd(buf: Buffer): number {
  const mark = buf.indexOf('\n--- ')
  if (mark < 0) return -1
  const eol = buf.indexOf(0x0a, mark + 5)
  return eol < 0 ? -1 : eol + 1
}

function parseHeader(header: Buffer, file: string): ParsedHeader {
  const bad = (why: string) =>
    new UserError(
      `${file}: the age header is malformed (${why}): the file is damaged or not an age file; restore from another backup`,
    )
  for (const byte of header)
    if (byte > 0x7e || (byte < 0x20 && byte !== 0x0a)) throw bad('non-text bytes')
  const text = header.toString('latin1')
  const lines = text.split('\n')
  lines.pop() // the header ends with a newline
  if (lines[0] !== VERSION_LINE) {
    if (lines[0]?.startsWith(AGE_MAGIC))
      throw new UserError(
        `${file}: is an age file of an unsupported version (${lines[0]}); decrypt it with a newer age`,
      )
    throw bad('no age-encryption.org/v1 line')
  }
  const stanzas: Stanza[] = []
  let i = 1
  while (i < lines.length && lines[i]!.startsWith('-> ')) {
    const args = lines[i]!.slice(3).split(' ')
    if (args.some((a) => a === '' || !/^[\x21-\x7e]+$/.test(a))) throw bad('bad stanza arguments')
    i++
    let body = ''
    for (;;) {
      const line = lines[i++]
      if (line === undefined) throw bad('stanza body not terminated')
      if (line.length > 64) throw bad('stanza body line longer than 64 columns')
      body += line
      if (line.length < 64) break
    }
    const decoded = unb64(body)
    if (!decoded) throw bad('stanza body is not canonical base64')
    stanzas.push({ args, body: decoded })
  }
  if (stanzas.length === 0) throw bad('no recipient stanzas')
  if (i !== lines.length - 1 || !lines[i]!.startsWith('--- ')) throw bad('unexpected line')
  const mac = unb64(lines[i]!.slice(4))
  if (!mac || mac.length !== 32) throw bad('bad MAC line')
  const macInput = header.subarray(0, header.length - (lines[i]!.length - 3) - 1)
  return { stanzas, macInput, mac }
}

// ---------------------------------------------------------------------------------------------
// Encryption

export interface AgeEncryptOptions {
  /** X25519 recipients (age1...). Exactly one of recipients and passphrase. */
  recipients?: readonly string[]
  passphrase?: string
  /** log2 of the scrypt work factor for a passphrase; age's default 18 when unset. */
  scryptWorkFactor?: number
}

/** A new age file's first bytes (header, payload nonce), and the sealer of its payload. */
export interface AgeFileStart {
  head: Buffer
  sealer: PayloadSealer
}

/** Starts an age file. Key parsing and scrypt happen here, before any payload. */
export async function ageEncryptStart(opts: AgeEncryptOptions): Promise<AgeFileStart> {
  const fileKey = randomBytes(FILE_KEY_BYTES)
  let stanzas: Stanza[]
  if (opts.recipients && opts.recipients.length > 0) {
    stanzas = opts.recipients.map((r, n) => x25519Stanza(fileKey, parseRecipient(r, n + 1)))
  } else if (opts.passphrase !== undefined) {
    stanzas = [
      await scryptStanza(
        fileKey,
        opts.passphrase,
        opts.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR,
      ),
    ]
  } else {
    throw new UserError(
      `${CodecInputs.AgeRecipients}: encryption: age needs at least one recipient (age1...) or ${CodecInputs.AgePassphrase}`,
    )
  }
  const upToDashes = `${VERSION_LINE}\n${stanzas.map(stanzaText).join('')}---`
  const header = `${upToDashes} ${b64(headerMac(fileKey, upToDashes))}\n`
  // A header the decrypter would refuse as damaged makes a backup nothing here restores.
  if (header.length > MAX_HEADER) {
    throw new UserError(
      `${CodecInputs.AgeRecipients}: ${stanzas.length} recipients make an age header of ${header.length} bytes, more than the ${MAX_HEADER} (1 MiB) this action reads when it decrypts, so nothing could restore the backup; give at most ${AGE_MAX_RECIPIENTS} recipients`,
    )
  }
  const nonce = randomBytes(NONCE_BYTES)
  return {
    head: Buffer.concat([Buffer.from(header, 'latin1'), nonce]),
    sealer: new PayloadSealer(payloadKey(fileKey, nonce)),
  }
}

/** A transform from plaintext to an age file. Key parsing and scrypt happen before it returns. */
export async function ageEncryptStream(opts: AgeEncryptOptions): Promise<Transform> {
  const { head, sealer } = await ageEncryptStart(opts)
  return new AgeEncrypter(head, sealer)
}

/** Whole buffers in, exact-size slices out, copying only when a slice spans two buffers. */
class ByteQueue {
  private parts: Buffer[] = []
  length = 0

  push(buf: Buffer): void {
    if (buf.length === 0) return
    this.parts.push(buf)
    this.length += buf.length
  }

  take(n: number): Buffer {
    const first = this.parts[0]
    if (first && first.length >= n) {
      const out = first.subarray(0, n)
      if (first.length === n) this.parts.shift()
      else this.parts[0] = first.subarray(n)
      this.length -= n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const part = this.parts[0]!
      const used = Math.min(part.length, n - filled)
      part.copy(out, filled, 0, used)
      filled += used
      if (used === part.length) this.parts.shift()
      else this.parts[0] = part.subarray(used)
    }
    this.length -= n
    return out
  }
}

/**
 * The payload key as a KeyObject: a raw Buffer key costs node:crypto a key import per cipher,
 * which at one cipher per 64 KiB chunk was a quarter of the encryption time.
 */
function payloadKey(fileKey: Buffer, nonce: Buffer): KeyObject {
  return createSecretKey(hkdf(fileKey, nonce, 'payload'))
}

/**
 * Writes the 12-byte STREAM nonce into `nonce` (reused: the cipher copies it): an 11-byte
 * big-endian chunk counter, then 1 for the last chunk.
 */
function chunkNonce(nonce: Buffer, counter: number, last: boolean): Buffer {
  nonce.writeUIntBE(counter, 5, 6)
  nonce[11] = last ? 1 : 0
  return nonce
}

/**
 * The pieces of a block of chunks: whole chunks of `size`, but for the last block, whose final
 * piece may be short, or empty when the whole input was.
 */
function chunksOf(block: Buffer, size: number, last: boolean): Buffer[] {
  const count = last ? Math.max(1, Math.ceil(block.length / size)) : block.length / size
  return Array.from({ length: count }, (_, i) => block.subarray(i * size, (i + 1) * size))
}

/** Seals the STREAM payload, one 64 KiB chunk after another. */
export class PayloadSealer {
  private counter = 0
  private readonly nonce = Buffer.alloc(12)

  constructor(private readonly key: KeyObject) {}

  /** The ciphertext and tag of the next chunk; `last` for the final one. */
  seal(plain: Buffer, last: boolean): [Buffer, Buffer] {
    const nonce = chunkNonce(this.nonce, this.counter++, last)
    const cipher = createCipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: TAG })
    const sealed = cipher.update(plain)
    cipher.final()
    return [sealed, cipher.getAuthTag()]
  }

  /**
   * Seals whole chunks, or with `last` the input's final block: ciphertexts and tags in file
   * order, uncopied, for one writev.
   */
  sealBlock(block: Buffer, last: boolean): Buffer[] {
    const pieces = chunksOf(block, CHUNK, last)
    return pieces.flatMap((plain, i) => this.seal(plain, last && i === pieces.length - 1))
  }
}

class AgeEncrypter extends Transform {
  private readonly queue = new ByteQueue()
  private prefix: Buffer | null

  constructor(
    prefix: Buffer,
    private readonly sealer: PayloadSealer,
  ) {
    super({ highWaterMark: STAGE_BUFFER })
    this.prefix = prefix
  }

  private start(): void {
    if (this.prefix) this.push(this.prefix)
    this.prefix = null
  }

  /**
   * Seals `count` whole chunks, or with `last` the one chunk left, into one buffer: one push,
   * and one write, per batch. Measured: pushing each chunk and its 16-byte tag separately costs
   * about 20% more CPU in the stream machinery and in small writes.
   */
  private seal(count: number, last: boolean): void {
    const size = last ? this.queue.length : CHUNK
    const out = Buffer.allocUnsafe(count * (size + TAG))
    let at = 0
    for (let i = 0; i < count; i++) {
      for (const piece of this.sealer.seal(this.queue.take(size), last)) at += piece.copy(out, at)
    }
    this.push(out)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.start()
    this.queue.push(chunk)
    // Keep at least one byte back: only the end of the input says which chunk is the last.
    const ready = Math.floor((this.queue.length - 1) / CHUNK)
    if (ready > 0) this.seal(ready, false)
    done()
  }

  override _flush(done: TransformCallback): void {
    this.start()
    // What is left is at most one chunk, the last: empty only when the whole input was.
    this.seal(1, true)
    done()
  }
}

// ---------------------------------------------------------------------------------------------
// Decryption

export interface AgeDecryptOptions {
  /** X25519 identities (AGE-SECRET-KEY-1...); any that matches a stanza opens the file. */
  identities?: readonly string[]
  /** For files encrypted with a passphrase (a scrypt stanza). */
  passphrase?: string
  /** Refuse scrypt work factors above 2^this; age's default 22. */
  maxScryptWorkFactor?: number
}

/** Throws a UserError naming the input unless these settings can open some age file. */
export function ageDecryptCheck(opts: AgeDecryptOptions): Identity[] {
  const identities = splitKeyLines(opts.identities ?? []).map((t, n) => parseIdentity(t, n + 1))
  if (identities.length === 0 && opts.passphrase === undefined) {
    throw new UserError(
      `${CodecInputs.AgeIdentity}: reading an age backup needs ${CodecInputs.AgeIdentity} (AGE-SECRET-KEY-1...) or ${CodecInputs.AgePassphrase}`,
    )
  }
  if (opts.passphrase === '') {
    throw new UserError(
      `${CodecInputs.AgePassphrase}: the passphrase is empty; set it or leave it unset`,
    )
  }
  return identities
}

/** A transform from an age file to its plaintext; `file` only names the backup in errors. */
export function ageDecryptStream(opts: AgeDecryptOptions, file: string): Transform {
  return new AgeDecrypter(new AgeOpener(opts, file))
}

class AgeDecrypter extends Transform {
  private head: Buffer | null = Buffer.alloc(0)
  private readonly queue = new ByteQueue()

  constructor(private readonly opener: AgeOpener) {
    super({ highWaterMark: STAGE_BUFFER })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.consume(chunk).then(() => done(), done)
  }

  private async consume(chunk: Buffer): Promise<void> {
    if (this.head) {
      const head = Buffer.concat([this.head, chunk])
      if (!AgeOpener.enough(head)) {
        this.head = head
        return
      }
      this.head = null
      chunk = head.subarray(await this.opener.begin(head))
    }
    this.queue.push(chunk)
    // The chunk that might be the last stays queued until the input ends. Each chunk goes on
    // by itself (measured: copying them into one buffer, as encryption does, costs more here).
    const ready = Math.floor((this.queue.length - 1) / ENC_CHUNK)
    for (let i = 0; i < ready; i++) this.push(this.opener.middle(this.queue.take(ENC_CHUNK)))
  }

  override _flush(done: TransformCallback): void {
    this.finish().then(() => done(), done)
  }

  private async finish(): Promise<void> {
    // Cut short before the payload: begin() says where (empty, in the header, at the nonce).
    if (this.head) this.queue.push(this.head.subarray(await this.opener.begin(this.head)))
    this.push(this.opener.last(this.queue.take(this.queue.length)))
  }
}

/**
 * Reads an age file: the header from its first bytes, then the payload chunk by chunk, in
 * order. The transform and the file-to-file path both use it, so they fail alike.
 */
export class AgeOpener {
  private readonly identities: Identity[]
  private key: KeyObject | null = null
  private counter = 0
  private readonly nonce = Buffer.alloc(12)

  constructor(
    private readonly opts: AgeDecryptOptions,
    private readonly file: string,
  ) {
    this.identities = ageDecryptCheck(opts)
  }

  /** Whether `head`, a file's first bytes, holds its header and nonce, or shows it never ends. */
  static enough(head: Buffer): boolean {
    if (head.length >= AGE_HEAD_MAX) return true
    const end = headerEnd(head)
    return end >= 0 && head.length >= end + NONCE_BYTES
  }

  /**
   * Unwraps the file key from `head`: the file's first bytes, enough() of them or all there
   * are. Returns where the payload starts.
   */
  async begin(head: Buffer): Promise<number> {
    if (head.length === 0) {
      throw new UserError(
        `${this.file}: is empty (0 bytes), not an age file: the backup was cut off or never written; restore from another backup`,
      )
    }
    const end = headerEnd(head.subarray(0, MAX_HEADER))
    if (end < 0) {
      throw this.truncated(
        head.length >= MAX_HEADER
          ? 'the age header never ends'
          : 'the file ends inside the age header',
      )
    }
    const fileKey = await this.unwrap(parseHeader(head.subarray(0, end), this.file))
    if (head.length < end + NONCE_BYTES) {
      throw this.truncated('the file ends before the age payload starts')
    }
    this.key = payloadKey(fileKey, head.subarray(end, end + NONCE_BYTES))
    return end + NONCE_BYTES
  }

  /** The plaintext of the next chunk, one that more of the file follows. */
  middle(sealed: Buffer): Buffer {
    const plain = this.open(sealed, false)
    if (!plain) {
      if (this.open(sealed, true)) {
        throw this.damaged(`data follows the final age chunk ${this.counter}`)
      }
      throw this.damaged(`age payload chunk ${this.counter} failed authentication`)
    }
    this.counter++
    return plain
  }

  /** The plaintext of the final chunk: all of the file after the last middle chunk. */
  last(sealed: Buffer): Buffer {
    if (sealed.length === 0) throw this.truncated('the file ends right after the age header')
    const plain = this.open(sealed, true)
    if (!plain) {
      // A whole chunk that opens as a middle one: the file was cut at a chunk boundary, which
      // only the last-chunk flag can tell from a complete file.
      if (sealed.length === ENC_CHUNK && this.open(sealed, false)) {
        throw this.truncated(
          `the age payload ends after chunk ${this.counter} without a final chunk`,
        )
      }
      throw this.damaged(
        sealed.length < ENC_CHUNK
          ? `the last age chunk (${this.counter}) failed authentication; the file may also be truncated`
          : `age payload chunk ${this.counter} failed authentication`,
      )
    }
    if (plain.length === 0 && this.counter > 0)
      throw this.damaged('the final age chunk is empty, which age never writes')
    return plain
  }

  /**
   * Opens whole sealed chunks, or with `last` the file's final block: each chunk's plaintext,
   * in order, released only once its tag verified.
   */
  openBlock(block: Buffer, last: boolean): Buffer[] {
    const pieces = chunksOf(block, ENC_CHUNK, last)
    return pieces.map((sealed, i) =>
      last && i === pieces.length - 1 ? this.last(sealed) : this.middle(sealed),
    )
  }

  private open(sealed: Buffer, last: boolean): Buffer | null {
    return open(this.key!, chunkNonce(this.nonce, this.counter, last), sealed)
  }

  private async unwrap(header: ParsedHeader): Promise<Buffer> {
    const scryptStanzas = header.stanzas.filter((s) => s.args[0] === 'scrypt')
    const x25519 = header.stanzas.filter((s) => s.args[0] === 'X25519')
    let fileKey: Buffer | null = null
    if (scryptStanzas.length > 0) {
      if (header.stanzas.length !== 1)
        throw this.malformed('a passphrase stanza must be the only one')
      if (this.opts.passphrase === undefined) {
        throw new UserError(
          `${CodecInputs.AgePassphrase}: ${this.file} is encrypted with a passphrase; set ${CodecInputs.AgePassphrase} (an identity cannot open it)`,
        )
      }
      fileKey = await this.unwrapScrypt(scryptStanzas[0]!, this.opts.passphrase)
      if (!fileKey) {
        throw new UserError(
          `${CodecInputs.AgePassphrase}: the passphrase does not decrypt ${this.file} (wrong passphrase, or the header is damaged)`,
        )
      }
    } else {
      if (this.identities.length === 0) {
        throw new UserError(
          `${CodecInputs.AgeIdentity}: ${this.file} is encrypted to age recipients, not a passphrase; set ${CodecInputs.AgeIdentity} to the matching AGE-SECRET-KEY-1...`,
        )
      }
      for (const stanza of x25519) {
        for (const identity of this.identities) {
          fileKey = this.unwrapX25519(stanza, identity)
          if (fileKey) break
        }
        if (fileKey) break
      }
      if (!fileKey) {
        const n = this.identities.length
        throw new UserError(
          `${CodecInputs.AgeIdentity}: ${n === 1 ? 'the identity does' : `none of the ${n} identities`} not match any recipient of ${this.file} (encrypted to other age recipients, or the header is damaged); use the secret key for one of the backup's age-recipients`,
        )
      }
    }
    if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) {
      throw this.damaged('the age header failed authentication')
    }
    return fileKey
  }

  private unwrapX25519(stanza: Stanza, identity: Identity): Buffer | null {
    const share = stanza.args.length === 2 ? unb64(stanza.args[1]!) : null
    if (!share || share.length !== 32 || stanza.body.length !== FILE_KEY_BYTES + TAG) {
      throw this.malformed('bad X25519 stanza')
    }
    let shared: Buffer
    try {
      shared = diffieHellman({ privateKey: identity.privateKey, publicKey: publicKeyOf(share) })
    } catch {
      throw this.malformed('X25519 share is not a valid point')
    }
    if (shared.every((b) => b === 0)) throw this.malformed('X25519 share is a low-order point')
    const wrapKey = hkdf(shared, Buffer.concat([share, identity.publicRaw]), X25519_INFO)
    return open(wrapKey, ZERO_NONCE, stanza.body)
  }

  private async unwrapScrypt(stanza: Stanza, passphrase: string): Promise<Buffer | null> {
    const salt = stanza.args.length === 3 ? unb64(stanza.args[1]!) : null
    const logText = stanza.args[2] ?? ''
    if (
      !salt ||
      salt.length !== 16 ||
      !/^[1-9][0-9]*$/.test(logText) ||
      stanza.body.length !== FILE_KEY_BYTES + TAG
    ) {
      throw this.malformed('bad scrypt stanza')
    }
    const logN = Number(logText)
    const max = this.opts.maxScryptWorkFactor ?? MAX_SCRYPT_WORK_FACTOR
    if (logN > max) {
      throw new UserError(
        `${this.file}: the age passphrase work factor 2^${logN} is above the limit 2^${max}; decrypt it with the age CLI if it is trusted`,
      )
    }
    const wrapKey = await scrypt(
      passphrase,
      Buffer.concat([Buffer.from(SCRYPT_SALT_LABEL), salt]),
      32,
      scryptParams(logN),
    )
    return open(wrapKey, ZERO_NONCE, stanza.body)
  }

  private damaged(what: string): UserError {
    return new UserError(
      `${this.file}: ${what}: the file is damaged or was tampered with; restore from another backup`,
    )
  }

  private truncated(what: string): UserError {
    return new UserError(
      `${this.file}: ${what}: the file is truncated; restore from another backup or copy it again`,
    )
  }

  private malformed(what: string): UserError {
    return new UserError(
      `${this.file}: the age header is malformed (${what}): the file is damaged; restore from another backup`,
    )
  }
}
