/**
 * The audit-log digest is stored in every manifest and recomputed by every drill, so its values
 * may never change: a manifest written by an earlier release must still verify. These tests pin
 * the digest of fixed rows (every value type encodeRow knows, integer and text keys, several
 * chunks) to the values the digest gave when they were written, and check the per-row sums
 * against a plain re-computation from their definition.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { AUDIT_CHUNK_ROWS, digestAudit, type AuditRow } from '../src/checks/audit.js'
import type { AuditChunk, AuditDigest } from '../src/checks/inventory.js'
import { encodeRow } from '../src/checks/digest.js'

/** Rows of every kind of value, deterministic, `n` of them, keyed 1..n (with gaps). */
function rows(n: number): AuditRow[] {
  const out: AuditRow[] = []
  for (let i = 1; i <= n; i++) {
    const key = i * 3 - (i % 2)
    const values: unknown[] = [
      key,
      `2026-01-01T00:${String(i % 60).padStart(2, '0')}:00.000Z`,
      i % 7 === 0 ? null : i % 50,
      [
        'login',
        'say "hi"',
        'back\\slash',
        'tab\there',
        'nl\nx',
        'ünïcødé ✓',
        '\u0001ctl',
        'x\ud800y',
      ][i % 8],
      i % 5 === 0 ? Buffer.from([i & 255, 0, 255]) : `c_${i}`,
      i % 3 === 0 ? i / 4 : i % 3 === 1 ? BigInt(i) * 1_000_000_007n : 2 ** 53 + i * 2,
      i % 11 === 0 ? -0 : i % 13 === 0 ? Number.NaN : `{"n":${i}}`,
    ]
    out.push({ key: String(key), row: values })
  }
  return out
}

const P = (1n << 61n) - 1n

describe('the audit-log digest keeps its values', () => {
  it('integer keys: pinned whole-table and chunk digests', async () => {
    const d = await digestAudit('audit_logs', { key: ['id'], rows: rows(2500) })
    expect(d.rows).toBe(2500)
    expect(d.chunks.map((c) => c.rows)).toEqual([AUDIT_CHUNK_ROWS, AUDIT_CHUNK_ROWS, 500])
    expect({ sha256: d.sha256, chunks: d.chunks }).toEqual(GOLDEN_INTEGER)
  })

  it('text keys: pinned digests', async () => {
    const source = rows(1200).map((r) => ({
      key: `k-${r.key}`,
      row: [`k-${r.key}`, ...r.row.slice(1)],
    }))
    const d = await digestAudit('audit_logs', { key: ['id'], rows: source })
    expect({ sha256: d.sha256, chunks: d.chunks }).toEqual(GOLDEN_TEXT)
  })

  it('the sums follow their definition (positive control for the pinned values)', async () => {
    const source = rows(AUDIT_CHUNK_ROWS)
    const d = await digestAudit('audit_logs', { key: ['id'], rows: source })
    let keySum = 0n
    let hashSum = 0n
    let weightedSum = 0n
    const sha = createHash('sha256')
    for (const r of source) {
      const line = encodeRow(r.row)
      const h = BigInt('0x' + createHash('sha256').update(line).digest('hex').slice(0, 14))
      keySum += BigInt(r.key)
      hashSum += h
      weightedSum += BigInt(r.key) * h
      sha.update(line)
    }
    expect(d.chunks[0]).toMatchObject({
      sha256: sha.digest('hex'),
      keySum: keySum.toString(),
      hashSum: (hashSum % P).toString(),
      weightedSum: (weightedSum % P).toString(),
    })
  })
})

describe("a drill's digest takes the manifest's sums only for chunks of the same rows", () => {
  const table = 'audit_logs'
  // Keys 10000 apart, so that rows can be added between two without reaching the next.
  const source = () =>
    rows(3500).map((r) => ({
      key: `${r.key}0000`,
      row: [Number(`${r.key}0000`), ...r.row.slice(1)],
    }))
  const digestOf = (r: AuditRow[], manifest?: AuditDigest) =>
    digestAudit(
      table,
      { key: ['id'], rows: r },
      manifest?.chunks.map((c) => c.firstKey),
      manifest?.chunks,
    )

  it('the same rows give the same digest, every chunk', async () => {
    const manifest = await digestOf(source())
    expect(await digestOf(source(), manifest)).toEqual(manifest)
  })

  it('a chunk whose rows differ sums its own rows: deleted, added, altered', async () => {
    const manifest = await digestOf(source())
    const changes: [string, (r: AuditRow[]) => AuditRow[]][] = [
      ['deleted', (r) => r.filter((_, i) => i !== 1500)],
      [
        'added',
        (r) => [...r.slice(0, 1500), ...extra(Number(r[1499]!.key) + 1, 1), ...r.slice(1500)],
      ],
      ['altered', (r) => r.map((x, i) => (i === 1500 ? { key: x.key, row: [...x.row, 'x'] } : x))],
      // More rows than the manifest's chunk by far: summed as they come, held back no longer.
      [
        'grown',
        (r) => [...r.slice(0, 1500), ...extra(Number(r[1499]!.key) + 1, 3000), ...r.slice(1500)],
      ],
    ]
    for (const [what, change] of changes) {
      const changed = change(source())
      const eager = await digestOf(changed, {
        ...manifest,
        chunks: manifest.chunks.map(neverMatching),
      })
      const taken = await digestOf(changed, manifest)
      expect(taken, what).toEqual(eager)
      // Only the changed chunk differs from the manifest, and it carries sums of its own.
      const differing = taken.chunks.filter((c, i) => c.sha256 !== manifest.chunks[i]!.sha256)
      expect(
        differing.map((c) => c.firstKey),
        what,
      ).toEqual([manifest.chunks[1]!.firstKey])
      expect(differing[0]!.hashSum, what).not.toBe(manifest.chunks[1]!.hashSum)
    }
  })

  it("positive control: the sums of an unchanged chunk are the manifest's, not recomputed", async () => {
    const manifest = await digestOf(source())
    const marked = {
      ...manifest,
      chunks: manifest.chunks.map((c) => ({ ...c, hashSum: '7', weightedSum: '11' })),
    }
    const taken = await digestOf(source(), marked)
    expect(taken.chunks.map((c) => [c.hashSum, c.weightedSum])).toEqual(
      manifest.chunks.map(() => ['7', '11']),
    )
    expect(taken.sha256).toBe(manifest.sha256)
  })
})

/** `n` rows keyed from `from` up, each a little different. */
function extra(from: number, n: number): AuditRow[] {
  return Array.from({ length: n }, (_, i) => ({ key: String(from + i), row: [from + i, `e${i}`] }))
}

/** The chunk with a sha256 no rows give: its sums are never taken, so every row is summed. */
function neverMatching(c: AuditChunk): AuditChunk {
  return { ...c, sha256: 'f'.repeat(64) }
}

/** What digestAudit gave for these rows when this test was written (commit f8a3fb9). */
const GOLDEN_INTEGER = {
  sha256: '7c6210a640eff8fa44545a9b1462f032b6d52df4447d24bf1a6e24285bb5378f',
  chunks: [
    {
      firstKey: '2',
      lastKey: '3000',
      rows: 1000,
      sha256: 'f987eb1957e1c9a4b3da1e0707e36f1d3d031f6491137d340d77465390d08ce3',
      keySum: '1501000',
      hashSum: '143126761073877365',
      weightedSum: '1426082307558798288',
    },
    {
      firstKey: '3002',
      lastKey: '6000',
      rows: 1000,
      sha256: '64477247ee905d518e3978e6b30ded4d254dc83f9ce51076c89c908af8e55aab',
      keySum: '4501000',
      hashSum: '549453354218698547',
      weightedSum: '139664404385796023',
    },
    {
      firstKey: '6002',
      lastKey: '7500',
      rows: 500,
      sha256: '6f18fc52ed290fb2bcfbabe6d98dd828a7f60f47bf3fffb41a67626e3ca6014b',
      keySum: '3375500',
      hashSum: '1643493806873752476',
      weightedSum: '470818589621164490',
    },
  ],
}

const GOLDEN_TEXT = {
  sha256: '06e75435d9908560fa0f0ebf679893c8015244aec3c7fc3467c8e4ffb07e6761',
  chunks: [
    {
      firstKey: 'k-2',
      lastKey: 'k-3000',
      rows: 1000,
      sha256: 'e252a487d7aa7b2104b9f95289df08a3d3c14b836eb519b4a0087a9cf32270c5',
      keySum: '266812456867255840',
      hashSum: '35893394092571522225',
      weightedSum: '9496168418458958034857212477281408',
      keyCoding: 'utf8',
    },
    {
      firstKey: 'k-3002',
      lastKey: 'k-3600',
      rows: 200,
      sha256: '1235faf650abb86d42ba231544ab6902c1e2f6a409a0350baf6ccf6f9ad44f4e',
      keySum: '79863370674678944',
      hashSum: '6697977283862832609',
      weightedSum: '2674615212964209429634641024877630',
      keyCoding: 'utf8',
    },
  ],
}
