// SQLite audit rows keyed by the rowid are read a page at a time (each page after the last rowid
// of the one before) instead of by one statement stepped row by row. The digest must not be able
// to tell: every row once, in key order, at every page boundary. The same rows under a primary
// key that is not the rowid are read the old way, so the two digests must be equal.
import { writeFile } from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { digestAudit } from '../src/checks/audit.js'
import { openSqlite, type SqliteConnection, type SqlValue } from '../src/engines/sqlite/driver.js'
import { SqliteDatabase } from '../src/engines/sqlite/engine.js'
import { sql, tempDir } from './helpers.js'

const COLUMNS = 'ts TEXT, actor_id INTEGER, action TEXT, details TEXT'

/** Tables of the same rows: keys with gaps, negative ones, and page-sized runs. */
const TABLES = {
  // Rowid aliases: read in pages.
  alias: `CREATE TABLE alias(id INTEGER PRIMARY KEY, ${COLUMNS})`,
  aliasConstraint: `CREATE TABLE aliasConstraint(id INTEGER, ${COLUMNS}, PRIMARY KEY(id DESC))`,
  // Not the rowid (an index holds the key): read by one statement in key order.
  intKey: `CREATE TABLE intKey(id INT PRIMARY KEY, ${COLUMNS})`,
  descQuirk: `CREATE TABLE descQuirk(id INTEGER PRIMARY KEY DESC, ${COLUMNS})`,
  withoutRowid: `CREATE TABLE withoutRowid(id INTEGER PRIMARY KEY, ${COLUMNS}) WITHOUT ROWID`,
}

const KEYS = [
  -9223372036854775808n,
  -5n,
  0n,
  ...Array.from({ length: 2999 }, (_, i) => BigInt(i * 2 + 1)),
  9223372036854775807n,
]

async function database(): Promise<string> {
  const file = path.join(await tempDir(), 'audit.db')
  await writeFile(file, '') // an empty file is an empty database
  for (const create of Object.values(TABLES)) await sql(file, create)
  const values = KEYS.map(
    (k, i) =>
      `(${k}, '2026-01-01 00:00:${i % 60}', ${i % 7 === 0 ? 'NULL' : i % 40}, 'a''${i}"\\', '{"n":${i}}')`,
  ).join(',')
  for (const table of Object.keys(TABLES)) await sql(file, `INSERT INTO ${table} VALUES ${values}`)
  return file
}

/** A connection that counts the statements run through rows() (one per page). */
function counted(db: SqliteConnection) {
  const seen = { rows: 0 }
  return {
    seen,
    db: {
      ...db,
      rows: (q: string, ...params: SqlValue[]) => {
        seen.rows++
        return db.rows(q, ...params)
      },
    },
  }
}

describe('audit rows keyed by the rowid, read a page at a time', () => {
  it('digest as the same rows read by one statement, on both sides of every page boundary', async () => {
    const file = await database()
    const { db, seen } = counted(await openSqlite(file, { readonly: true }))
    const database_ = new SqliteDatabase(file, db)
    const digests: Record<string, { sha256: string; rows: number; pages: number }> = {}
    for (const table of Object.keys(TABLES)) {
      const before = seen.rows
      const d = await digestAudit(table, database_.auditRows(table))
      digests[table] = { sha256: d.sha256, rows: d.rows, pages: seen.rows - before }
    }
    await database_.close()
    expect(digests.alias!.rows).toBe(KEYS.length)
    // Paged: 3003 rows in pages of 1000 (and the question whether the key is the rowid).
    expect(digests.alias!.pages).toBeGreaterThanOrEqual(4)
    expect(digests.aliasConstraint!.pages).toBeGreaterThanOrEqual(4)
    for (const table of ['intKey', 'descQuirk', 'withoutRowid']) {
      expect(digests[table]!.pages).toBeLessThan(4)
    }
    const [first, ...rest] = Object.values(digests).map((d) => d.sha256)
    for (const sha256 of rest) expect(sha256).toBe(first)
  })

  it('positive control: the comparison sees one row fewer', async () => {
    const file = await database()
    await sql(file, 'DELETE FROM alias WHERE id = 2001')
    const db = new SqliteDatabase(file, await openSqlite(file, { readonly: true }))
    const paged = await digestAudit('alias', db.auditRows('alias'))
    const stepped = await digestAudit('intKey', db.auditRows('intKey'))
    await db.close()
    expect(paged.rows).toBe(KEYS.length - 1)
    expect(paged.sha256).not.toBe(stepped.sha256)
  })
})
