/**
 * The audit-log digest: one hash over every row in key order, plus per-chunk digests that let a
 * drill say which rows differ. For integer keys each chunk also carries sums that name a single
 * deleted, added or altered row exactly:
 *   keySum      = Σ key                 → a deleted or added row's key is the difference
 *   hashSum     = Σ h(row)      mod P   → h'(k) - h(k) for one altered row
 *   weightedSum = Σ key·h(row)  mod P   → k·(h' - h); k = Δweighted / Δhash
 * Any other key (text, a UUID, a composite key as `a,b`) of up to 62 bytes is turned into a
 * number from its UTF-8 bytes, so the same sums name it too. Those sums are kept exact (no
 * modulus: a chunk's sum of 500-bit numbers stays small), so k = Δweighted / Δhash is a plain
 * division, and the difference is turned back into the key's text.
 */
import { createHash, hash, type Hash } from 'node:crypto'
import { encodeRow } from './digest.js'
import type { AuditChunk, AuditDigest } from './inventory.js'

/** Rows per chunk when no manifest gives the boundaries. */
export const AUDIT_CHUNK_ROWS = 1000

/** A Mersenne prime larger than every 56-bit row hash. */
const P = (1n << 61n) - 1n

export interface AuditRow {
  key: string
  row: readonly unknown[]
}

/**
 * Rows already encoded (encodeRow) elsewhere, a batch at a time: `text` is one line per key, in
 * order, each ending in the newline that encodeRow escapes everywhere else.
 */
export interface EncodedRows {
  keys: string[]
  text: string
}

export interface AuditRows {
  key: string[]
  /**
   * Rows in key order, each with its key as text: one at a time from a synchronous source
   * (SQLite), or in batches from an asynchronous one (a PostgreSQL cursor; a SQLite file read
   * and encoded on a worker thread), so that a million rows do not cost a million promises.
   */
  rows: Iterable<AuditRow> | AsyncIterable<AuditRow[] | EncodedRows>
  /**
   * An engine that digests the rows where they are (PostgreSQL: in the server, see
   * engines/postgres/audit.ts) instead of handing them over; used instead of reading `rows`.
   */
  digest?: (boundaries?: string[]) => Promise<AuditDigest>
}

function rowHash(line: string | Buffer): bigint {
  return BigInt('0x' + hash('sha256', line).slice(0, 14))
}

function integerKey(key: string): bigint | null {
  return /^-?\d+$/.test(key) ? BigInt(key) : null
}

/** Longest key, in UTF-8 bytes, that the text sums can name. */
const MAX_TEXT_KEY_BYTES = 62

/** A text key as a number: 0x01 then its UTF-8 bytes (the 01 keeps leading zero bytes). */
function textKey(key: string): bigint | null {
  const bytes = Buffer.from(key, 'utf8')
  if (bytes.length > MAX_TEXT_KEY_BYTES) return null
  return BigInt('0x01' + bytes.toString('hex'))
}

/** The key a number stands for, or null when it is not one textKey made. */
function keyFromNumber(n: bigint): string | null {
  if (n <= 0n) return null
  const digits = n.toString(16)
  const hex = digits.length % 2 ? `0${digits}` : digits
  if (!hex.startsWith('01')) return null
  const bytes = Buffer.from(hex.slice(2), 'hex')
  if (bytes.length > MAX_TEXT_KEY_BYTES) return null
  const text = bytes.toString('utf8')
  // Not what some other key's bytes add up to by chance: valid UTF-8, printable.
  const unprintable = [...text].some((ch) => {
    const c = ch.codePointAt(0)!
    return c < 0x20 || c === 0x7f || c === 0xfffd
  })
  if (unprintable || !Buffer.from(text, 'utf8').equals(bytes)) return null
  return text
}

/** Rows read from a synchronous source between two turns of the event loop. */
export const YIELD_ROWS = 8192

/** Text of this many UTF-8 code units or more is handed to the hashes at once. */
const FLUSH_CHARS = 1 << 16

/**
 * Most a chunk holds back while its sums wait for its sha256 (see Chunk): more rows than the
 * manifest's chunk by this many, or this much text, and it sums as it goes.
 */
const DEFER_EXTRA_ROWS = 1000
const DEFER_MAX_CHARS = 16 << 20

/**
 * One chunk's digest. Given the manifest's chunk that starts at the same key (`known`), the sums
 * wait: the rows' keys are held back, and the chunk's text as the UTF-8 its hash took; if the
 * chunk's sha256 comes out as the manifest's, the sums are the manifest's (they are a function
 * of the rows, which the sha256 says are the same), which spares a hash and three big-integer
 * sums per row. Any other chunk, or one that grows past the manifest's by DEFER_EXTRA_ROWS,
 * sums its rows itself, from the held text split at its newlines (encodeRow escapes every
 * other newline), so no row's line is kept as a string of its own.
 */
class Chunk {
  private readonly hash: Hash = createHash('sha256')
  rows = 0
  lastKey = ''
  /** Which sums the keys allow: integers, text, or none once a key fits neither. */
  coding: 'integer' | 'utf8' | null
  // Exact sums; the integer coding's are taken mod P once, in finish(): Σ(x mod P) ≡ Σx.
  keySum = 0n
  hashSum = 0n
  weightedSum = 0n
  /** Encoded lines not yet hashed: hashed in runs of FLUSH_CHARS, from one UTF-8 conversion. */
  private pending = ''
  /** What the sums wait for while `known` is set: the keys, and the text as hashed. */
  private held: { keys: string[]; text: Buffer[]; chars: number } | null = null

  constructor(
    readonly firstKey: string,
    /** Takes the UTF-8 of the chunk's text, run by run, in order (the whole table's hash). */
    private readonly onText: (text: Buffer) => void,
    private known?: AuditChunk,
  ) {
    this.coding = integerKey(firstKey) !== null ? 'integer' : 'utf8'
    if (known) this.held = { keys: [], text: [], chars: 0 }
  }

  /** Counts a row and its line (encodeRow). */
  add(key: string, line: string) {
    this.rows++
    this.lastKey = key
    this.pending += line
    const held = this.held
    if (held) {
      held.keys.push(key)
      held.chars += line.length
      if (this.pending.length >= FLUSH_CHARS) this.flush()
      if (this.rows > this.known!.rows + DEFER_EXTRA_ROWS || held.chars > DEFER_MAX_CHARS) {
        this.sumHeld()
      }
      return
    }
    this.sum(key, line)
    if (this.pending.length >= FLUSH_CHARS) this.flush()
  }

  private flush() {
    if (this.pending === '') return
    const text = Buffer.from(this.pending, 'utf8')
    this.pending = ''
    this.hash.update(text)
    this.onText(text)
    this.held?.text.push(text)
  }

  /** Sums the rows held back, and every row from now on. */
  private sumHeld() {
    this.flush()
    const { keys, text } = this.held!
    this.held = null
    this.known = undefined
    let row = 0
    for (const run of text) {
      for (let at = 0; at < run.length;) {
        const end = run.indexOf(0x0a, at) + 1
        if (end === 0 || row >= keys.length) throw new Error('audit digest: held rows out of step')
        this.sum(keys[row++]!, run.subarray(at, end))
        at = end
      }
    }
    if (row !== keys.length) throw new Error('audit digest: held rows out of step')
  }

  /** Adds a row to the sums: its line as text, or as the UTF-8 bytes that hash the same. */
  private sum(key: string, line: string | Buffer) {
    if (this.coding === null) return
    const k = this.coding === 'integer' ? integerKey(key) : textKey(key)
    if (k === null) {
      this.coding = null
      return
    }
    const h = rowHash(line)
    this.keySum += k
    this.hashSum += h
    this.weightedSum += k * h
  }

  finish(): AuditChunk {
    this.flush()
    const chunk: AuditChunk = {
      firstKey: this.firstKey,
      lastKey: this.lastKey,
      rows: this.rows,
      sha256: this.hash.digest('hex'),
    }
    const known = this.known
    if (this.held && known && known.sha256 === chunk.sha256 && known.rows === chunk.rows) {
      for (const field of ['keySum', 'hashSum', 'weightedSum', 'keyCoding'] as const) {
        if (known[field] !== undefined) Object.assign(chunk, { [field]: known[field] })
      }
      return chunk
    }
    if (this.held) this.sumHeld()
    if (this.coding !== null) {
      const integer = this.coding === 'integer'
      const mod = (x: bigint) => (integer ? ((x % P) + P) % P : x)
      chunk.keySum = this.keySum.toString()
      chunk.hashSum = mod(this.hashSum).toString()
      chunk.weightedSum = mod(this.weightedSum).toString()
      if (!integer) chunk.keyCoding = 'utf8'
    }
    return chunk
  }
}

/**
 * Digests the audit rows. With `boundaries` (the first keys of a manifest's chunks) the chunks
 * start at the same rows as the manifest's, so a deleted row shifts nothing after it.
 *
 * Each row is encoded once. The encoded lines are hashed in runs of many rows (the sha256 of a
 * concatenation is that of its parts fed one by one), once into the chunk's hash and once into
 * the whole table's, from one UTF-8 conversion: a row costs its encoding and its own short hash.
 */
export async function digestAudit(
  table: string,
  source: AuditRows,
  boundaries?: string[],
  /** The manifest's chunks, whose sums a chunk of the same rows takes (see Chunk). */
  known?: readonly AuditChunk[],
): Promise<AuditDigest> {
  // PostgreSQL digests in the server (engines/postgres/audit.ts): no rows to read here.
  if (source.digest) return source.digest(boundaries)
  const starts = boundaries ? new Set(boundaries) : null
  const knownAt = new Map(known?.map((c) => [c.firstKey, c]))
  const all = createHash('sha256')
  let rows = 0
  const chunks: AuditChunk[] = []
  let chunk: Chunk | null = null
  let lastKey: string | null = null
  const toAll = (text: Buffer) => void all.update(text)
  const add = (key: string, line: string) => {
    const boundary = starts ? starts.has(key) : chunk?.rows === AUDIT_CHUNK_ROWS
    if (!chunk || boundary) {
      if (chunk) chunks.push(chunk.finish())
      chunk = new Chunk(key, toAll, knownAt.get(key))
    }
    chunk.add(key, line)
    rows++
    lastKey = key
  }
  // A synchronous source (SQLite) is read without a promise per row, but lets the event loop
  // run now and then: the answers of the worker threads checking and hashing meanwhile are
  // taken when they come, so the times they report are theirs, not this loop's.
  if (Symbol.iterator in source.rows) {
    for (const r of source.rows) {
      add(r.key, encodeRow(r.row))
      if (rows % YIELD_ROWS === 0) await new Promise(setImmediate)
    }
  } else {
    for await (const batch of source.rows) {
      if (Array.isArray(batch)) for (const r of batch) add(r.key, encodeRow(r.row))
      else addEncoded(batch, add)
    }
  }
  if (chunk) chunks.push((chunk as Chunk).finish())
  return { table, key: source.key, rows, lastKey, sha256: all.digest('hex'), chunks }
}

/** The lines of an encoded batch, one per key, each as its own string (a slice of the text). */
function addEncoded({ keys, text }: EncodedRows, add: (key: string, line: string) => void) {
  let at = 0
  for (const key of keys) {
    const end = text.indexOf('\n', at) + 1
    if (end === 0) throw new Error('audit digest: an encoded batch has fewer lines than keys')
    add(key, text.slice(at, end))
    at = end
  }
  if (at !== text.length) throw new Error('audit digest: an encoded batch has more lines than keys')
}

function modInverse(a: bigint): bigint {
  // Fermat: a^(P-2) mod P.
  let result = 1n
  let base = ((a % P) + P) % P
  let e = P - 2n
  while (e > 0n) {
    if (e & 1n) result = (result * base) % P
    base = (base * base) % P
    e >>= 1n
  }
  return result
}

const inRange = (k: bigint, c: AuditChunk) =>
  integerKey(c.firstKey) !== null && k >= BigInt(c.firstKey) - 1n && k <= BigInt(c.lastKey) + 1n

/** Says what differs between two chunks that start at the same key, as precisely as the sums allow. */
export function describeChunkDifference(
  table: string,
  key: string,
  want: AuditChunk,
  got: AuditChunk,
): string {
  const range = `${table} ${key} ${want.firstKey}..${want.lastKey}`
  const named =
    want.keyCoding === 'utf8' && got.keyCoding === 'utf8'
      ? nameTextRow(want, got)
      : want.keySum !== undefined && got.keySum !== undefined && !want.keyCoding && !got.keyCoding
        ? nameIntegerRow(want, got)
        : null
  if (named) return `${table} row ${key}=${named.key} was ${named.what}`
  if (got.rows !== want.rows) {
    return `${range}: ${got.rows} rows where the manifest has ${want.rows} (rows deleted or added)`
  }
  return `${range}: ${got.rows} rows as in the manifest, but their content differs (rows altered)`
}

type Named = { key: string; what: 'deleted' | 'added' | 'altered' } | null

/**
 * One row more or less moves the three sums together: Δkey = k, Δhash = h(row) and
 * Δweighted = k·h(row). Several changes that happen to add up to one key's difference almost
 * never keep that product, so a key is named only when it holds (else a range is reported).
 */
function oneRowInteger(k: bigint, dh: bigint, dw: bigint): boolean {
  const mod = (x: bigint) => ((x % P) + P) % P
  return mod(dw) === mod(mod(k) * mod(dh))
}

function nameIntegerRow(want: AuditChunk, got: AuditChunk): Named {
  const dh = BigInt(want.hashSum!) - BigInt(got.hashSum!)
  const dw = BigInt(want.weightedSum!) - BigInt(got.weightedSum!)
  if (got.rows === want.rows - 1) {
    const k = BigInt(want.keySum!) - BigInt(got.keySum!)
    if (inRange(k, want) && oneRowInteger(k, dh, dw)) return { key: String(k), what: 'deleted' }
  }
  if (got.rows === want.rows + 1) {
    const k = BigInt(got.keySum!) - BigInt(want.keySum!)
    if (inRange(k, got) && oneRowInteger(k, -dh, -dw)) return { key: String(k), what: 'added' }
  }
  if (got.rows === want.rows && got.keySum === want.keySum) {
    const dh = (BigInt(got.hashSum!) - BigInt(want.hashSum!) + P) % P
    const dw = (BigInt(got.weightedSum!) - BigInt(want.weightedSum!) + P) % P
    if (dh !== 0n) {
      let k = (dw * modInverse(dh)) % P
      if (k > P / 2n) k -= P
      if (inRange(k, want)) return { key: String(k), what: 'altered' }
    }
  }
  return null
}

/** A key named by the text sums must sort inside the chunk, as the database ordered it there. */
function textInChunk(k: string, c: AuditChunk): boolean {
  return k.length > 0 && c.rows > 0 && (k === c.firstKey || k === c.lastKey || c.rows > 1)
}

function nameTextRow(want: AuditChunk, got: AuditChunk): Named {
  const dk = BigInt(got.keySum!) - BigInt(want.keySum!)
  // See oneRowInteger: exact sums here, so the product must hold exactly.
  const oneRow = (k: bigint) =>
    BigInt(got.weightedSum!) - BigInt(want.weightedSum!) ===
    k * (BigInt(got.hashSum!) - BigInt(want.hashSum!))
  if (got.rows === want.rows - 1) {
    const k = keyFromNumber(-dk)
    if (k !== null && textInChunk(k, want) && oneRow(-dk)) return { key: k, what: 'deleted' }
  }
  if (got.rows === want.rows + 1) {
    const k = keyFromNumber(dk)
    if (k !== null && textInChunk(k, got) && oneRow(dk)) return { key: k, what: 'added' }
  }
  if (got.rows === want.rows && dk === 0n) {
    const dh = BigInt(got.hashSum!) - BigInt(want.hashSum!)
    const dw = BigInt(got.weightedSum!) - BigInt(want.weightedSum!)
    // One altered row: Δweighted = k·Δhash exactly. Several: almost never a whole multiple.
    if (dh !== 0n && dw % dh === 0n) {
      const k = keyFromNumber(dw / dh)
      if (k !== null && textInChunk(k, want)) return { key: k, what: 'altered' }
    }
  }
  return null
}
