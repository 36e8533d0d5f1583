/**
 * The audit-log digest computed by the PostgreSQL server, in one query, instead of every row
 * streamed to Node and hashed there (checks/audit.ts digestAudit): the same chunks, sums and
 * checks, with the row's text as the server prints it (`ROW(t.*)::text`, under the settings
 * connect() pins) in place of checks/digest.ts encodeRow. For tables keyed by one integer
 * column, which is what an audit log is; other keys keep the Node digest.
 *
 * Per chunk of AUDIT_CHUNK_ROWS rows in key order:
 *   sha256      = sha256 of the rows' text in key order, each followed by a newline (UTF-8)
 *   h(row)      = hashtextextended(the row's text, 0), 56 bits of it: the sums only name a
 *                 row once the chunk's sha256 says it differs (a sha256 per row cost the server
 *                 3.8 s of CPU per million rows, this 0.25 s)
 *   keySum, hashSum = Σ h mod P, weightedSum = Σ key·h mod P, as in checks/audit.ts
 * and over the whole table: sha256 of the chunks' sha256 (hex), one line each, in key order.
 *
 * A manifest says which digest it holds (`hashing`): a drill computes the digest of the
 * restored copy the same way, so an older manifest (no `hashing`) is checked with the Node
 * digest as before.
 */
import { createHash } from 'node:crypto'
import { AUDIT_CHUNK_ROWS } from '../../checks/audit.js'
import type { AuditChunk, AuditDigest } from '../../checks/inventory.js'
import { quoteIdent } from '../related.js'

/** The value of AuditDigest.hashing for a digest made here. */
export const SERVER_HASHING = 'postgres-row-text'

declare module '../../checks/inventory.js' {
  interface AuditDigest {
    /**
     * How each row was hashed. Absent: encodeRow in Node (checks/digest.ts; SQLite, and
     * PostgreSQL manifests before this field). `postgres-row-text`: by the server, see
     * engines/postgres/audit.ts.
     */
    hashing?: typeof SERVER_HASHING
  }
}

/** Column types whose values the integer sums of checks/audit.ts take as they are. */
export const INTEGER_KEY_TYPES = new Set(['smallint', 'integer', 'bigint'])

/** The Mersenne prime of checks/audit.ts. */
const P = '2305843009213693951'
/** 2^56 - 1: h(row) below P, as checks/audit.ts keeps it. */
const H_MASK = '72057594037927935'

/** Keys up to this size in either direction take WEIGHTED_SUM's bigint sums. */
const SMALL_KEY = '34359738367'

/**
 * Σ key·h over a chunk, exactly, as Σ key::numeric * h would give it, for less: with h split at
 * bit 28 (h = hi·2^28 + lo, each below 2^28), key·hi and key·lo fit a bigint for |key| < 2^35,
 * and PostgreSQL sums bigints in 128 bits instead of multiplying numerics row by row. Larger
 * keys take the numeric product. Measured on 1M audit rows, 3 runs each, the whole digest:
 * 2.02-2.16 s against 2.22-2.42 s, the same values.
 */
const WEIGHTED_SUM = `coalesce(sum(k * (h >> 28)) FILTER (WHERE k BETWEEN -${SMALL_KEY} AND ${SMALL_KEY}), 0) * 268435456
               + coalesce(sum(k * (h & 268435455)) FILTER (WHERE k BETWEEN -${SMALL_KEY} AND ${SMALL_KEY}), 0)
               + coalesce(sum(k::numeric * h) FILTER (WHERE k NOT BETWEEN -${SMALL_KEY} AND ${SMALL_KEY}), 0)`

/** hashtextextended and sha256() came with PostgreSQL 11. */
export const SERVER_DIGEST_MIN_VERSION_NUM = 110000

/** Runs one query on a session; every value as the server's text. */
export type ServerQuery = (text: string, values?: unknown[]) => Promise<string[][]>

/**
 * Digests `sqlName` (keyed by the integer column `key`) on `client`. Without `boundaries` the
 * chunks are AUDIT_CHUNK_ROWS rows each (their first keys read from the primary key's index
 * first). With `boundaries` (the first keys of a manifest's chunks) a row belongs to the chunk of
 * the largest boundary at or below its key, and the chunk is named by that boundary even when
 * its first row is gone, so a deleted first row is named like any other; rows below every
 * boundary form a chunk of their own, named by their first key.
 *
 * `query` may be several sessions (a restored copy's, with a manifest's boundaries): the key
 * range is then cut at a boundary into one part per session, digested side by side, and the
 * parts' chunks joined in key order make the same digest as one session's. Measured on 1M
 * audit rows (160 B each) with nothing else running, 2 cores, 3 runs: 1.10-1.19 s in two
 * sessions against 2.18-2.23 s in one. In a drill at 1 GiB, beside the row counts and the
 * foreign-key check in their own sessions, 4 pairs of runs: checks 2.70-2.82 s against
 * 3.18-3.37 s, the drill 11.19-12.12 s against 11.89-12.37 s.
 */
export async function serverAuditDigest(
  query: ServerQuery | readonly ServerQuery[],
  table: string,
  sqlName: string,
  key: string,
  boundaries?: string[],
): Promise<AuditDigest> {
  const sessions = typeof query === 'function' ? [query] : query
  const k = quoteIdent(key)
  // The first key, then each key AUDIT_CHUNK_ROWS rows on: a hop of that many index entries
  // per chunk. Measured on 1M rows, alone: 56 ms, against 220-245 ms for numbering every row
  // with row_number() and keeping every 1000th (500 ms next to pg_dump).
  const starts =
    boundaries ??
    (
      await sessions[0]!(
        `WITH RECURSIVE b(k) AS (
           SELECT min(t.${k}) FROM ${sqlName} t
           UNION ALL
           SELECT (SELECT t.${k} FROM ${sqlName} t WHERE t.${k} > b.k ORDER BY t.${k}
                   OFFSET ${AUDIT_CHUNK_ROWS - 1} LIMIT 1)
           FROM b WHERE b.k IS NOT NULL)
         SELECT b.k::text FROM b WHERE b.k IS NOT NULL ORDER BY b.k`,
      )
    ).map((r) => r[0]!)
  const parts = cutAtBoundaries(starts, boundaries ? sessions.length : 1)
  const digested = await Promise.all(
    parts.map((part, i) => chunksOf(sessions[i]!, sqlName, k, part)),
  )
  const chunks = digested.flat()
  const all = createHash('sha256')
  let count = 0
  for (const chunk of chunks) {
    all.update(`${chunk.sha256}\n`)
    count += chunk.rows
  }
  return {
    table,
    key: [key],
    rows: count,
    lastKey: chunks.at(-1)?.lastKey ?? null,
    sha256: all.digest('hex'),
    chunks,
    hashing: SERVER_HASHING,
  }
}

/**
 * One session's share of the key range: the chunks starting at `starts`, the rows below
 * `starts[0]` as a chunk of their own where `below` (the first part), and none from `end` on.
 */
export interface KeyRangePart {
  starts: string[]
  below: boolean
  /** The next part's first boundary, or null for the last part. */
  end: string | null
}

/** `starts` cut into at most `count` parts of about as many chunks each, at boundaries. */
export function cutAtBoundaries(starts: string[], count: number): KeyRangePart[] {
  const n = Math.max(1, Math.min(count, starts.length))
  const parts: KeyRangePart[] = []
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * starts.length) / n)
    const to = Math.floor(((i + 1) * starts.length) / n)
    parts.push({
      starts: starts.slice(from, to),
      below: i === 0,
      end: i === n - 1 ? null : starts[to]!,
    })
  }
  return parts
}

/**
 * The chunks of one part, in key order. Chunk by chunk through the primary key's index: each
 * chunk's rows are put in key order in memory, never the whole table.
 */
async function chunksOf(
  query: ServerQuery,
  sqlName: string,
  k: string,
  { starts, below, end }: KeyRangePart,
): Promise<AuditChunk[]> {
  const text = `
    WITH b AS (
      SELECT n, lo, CASE WHEN coalesce(lead(lo) OVER w, $3::bigint) IS NULL
                           THEN 9223372036854775807
                         WHEN coalesce(lead(lo) OVER w, $3::bigint) = -9223372036854775808
                           THEN NULL
                         ELSE coalesce(lead(lo) OVER w, $3::bigint) - 1 END AS hi
      FROM unnest(CASE WHEN $2::boolean THEN ARRAY[-9223372036854775808]::bigint[]
                       ELSE '{}'::bigint[] END || $1::bigint[]) WITH ORDINALITY u(lo, n)
      WINDOW w AS (ORDER BY n))
    SELECT b.n, c.* FROM b CROSS JOIN LATERAL (
      SELECT min(k)::text, max(k)::text, count(*) AS rows,
             encode(sha256(convert_to(string_agg(r || E'\\n', '' ORDER BY k), 'UTF8')), 'hex'),
             sum(k)::text, (sum(h) % ${P})::text, (((${WEIGHTED_SUM}) % ${P} + ${P}) % ${P})::text
      FROM (SELECT k, r, hashtextextended(r COLLATE "C", 0) & ${H_MASK} AS h
            FROM (SELECT t.${k} AS k, ROW(t.*)::text AS r FROM ${sqlName} t
                  WHERE t.${k} >= b.lo AND t.${k} <= b.hi OFFSET 0) i) j
    ) c WHERE c.rows > 0 ORDER BY b.n`
  // The last chunk of a part ends where the next part's first boundary begins, as in one
  // session's query (the server reads the boundary: a manifest's text is never parsed here).
  const result = await query(text, [starts, below, end])
  // Every value arrives as the server's text (connect() parses no types).
  return result.map(([n, first, lastKey, rows, sha256, keySum, hashSum, weightedSum]) => {
    const at = Number(n) - (below ? 2 : 1)
    return {
      firstKey: at >= 0 ? starts[at]! : first!,
      lastKey: lastKey!,
      rows: Number(rows),
      sha256: sha256!,
      keySum: keySum!,
      hashSum: hashSum!,
      weightedSum: weightedSum!,
    }
  })
}
