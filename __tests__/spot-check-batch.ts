// The spot-check hashes, per conversation, the rows of every table hanging off it by foreign keys.
// SQLite reads each such table once for all the conversations (one join) instead of once per
// conversation (one IN query each). A manifest written either way must be checked by the other:
// the digests must be equal, on schemas where the two could part (a parent key that is not
// unique, so a row is reached twice; identical rows; collations and affinities that decide what
// matches; null keys; shadowed rowid names). Run once per SQLite driver (spot-check-batch.test.ts,
// spot-check-batch-node.test.ts).
import { writeFile } from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  openSqlite,
  sqliteDriver,
  type SqliteConnection,
  type SqlValue,
} from '../src/engines/sqlite/driver.js'
import { SqliteDatabase } from '../src/engines/sqlite/engine.js'
import { sql, tempDir } from './helpers.js'

const SCHEMA = `
CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT, updated_at TEXT);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id TEXT REFERENCES conversations(id),
  code TEXT,
  body TEXT
);
CREATE INDEX messages_conversation ON messages(conversation_id);
-- No index on message_id: per conversation, a scan of the whole table.
CREATE TABLE attachments (id INTEGER PRIMARY KEY, message_id INTEGER REFERENCES messages(id), data BLOB);
-- Reached through messages.code, which is not unique: two messages of one conversation with the
-- same code reach the same note twice; messages of two conversations share it.
CREATE TABLE notes (code TEXT REFERENCES messages(code), text TEXT);
CREATE TABLE pins (code TEXT REFERENCES messages(code), n INTEGER, PRIMARY KEY (code, n)) WITHOUT ROWID;
-- Collations: the child's decides (x IN (SELECT y) compares as x = y).
CREATE TABLE labels (code TEXT COLLATE NOCASE REFERENCES messages(code), label TEXT);
CREATE TABLE marks (conversation_id TEXT REFERENCES conversations(id), mark TEXT);
-- Affinity: no type (BLOB affinity) against the parent's integer key.
CREATE TABLE loose (message_id REFERENCES messages(id), v);
-- Every rowid name is a column's: rows cannot be told apart by a rowid.
CREATE TABLE shadowed (rowid INTEGER, _rowid_ INTEGER, oid INTEGER, message_id INTEGER REFERENCES messages(id));
CREATE TABLE partly (rowid TEXT, message_id INTEGER REFERENCES messages(id));
-- Depth 3: conversation → messages → attachments → thumbs.
CREATE TABLE thumbs (attachment_id INTEGER REFERENCES attachments(id), px INTEGER);
`

const CONVERSATIONS = Array.from({ length: 40 }, (_, i) => `c${i}`)

async function database(): Promise<string> {
  const file = path.join(await tempDir(), 'spot.db')
  await writeFile(file, '')
  await sql(file, SCHEMA)
  const inserts: string[] = []
  CONVERSATIONS.forEach((c, i) => {
    inserts.push(
      `INSERT INTO conversations VALUES ('${c}', 't${i}', '2026-01-${String((i % 28) + 1).padStart(2, '0')}')`,
    )
    inserts.push(`INSERT INTO marks VALUES ('${c}', 'm'), ('${c}', 'm'), (NULL, 'none')`)
    for (let m = 0; m < 4; m++) {
      const id = i * 10 + m
      // Codes repeat within a conversation and across neighbours; in even ones, one differs
      // only in case (an odd one's labels with an upper-case code match only without case).
      const code = m === 3 && i % 2 === 0 ? `K${i % 5}` : `k${i % 5}`
      inserts.push(`INSERT INTO messages VALUES (${id}, '${c}', '${code}', 'b${id}')`)
      inserts.push(
        `INSERT INTO attachments VALUES (${id * 2}, ${id}, x'${id.toString(16).padStart(4, '0')}')`,
      )
      inserts.push(`INSERT INTO thumbs VALUES (${id * 2}, ${m}), (${id * 2}, ${m}), (NULL, 0)`)
      inserts.push(
        `INSERT INTO loose VALUES (${id}, 'int'), ('${id}', 'text'), (${id}.0, 'real'), (NULL, 'null')`,
      )
      inserts.push(`INSERT INTO shadowed VALUES (1, 1, 1, ${id}), (1, 1, 1, ${id})`)
      inserts.push(`INSERT INTO partly VALUES ('r', ${id}), ('r', ${id})`)
    }
  })
  // A conversation with no messages, and messages with no conversation.
  inserts.push(`INSERT INTO conversations VALUES ('empty', 'e', '2026-02-01')`)
  inserts.push(
    `INSERT INTO messages VALUES (9999, NULL, 'k1', 'orphan'), (9998, 'gone', 'k2', 'orphan')`,
  )
  for (let k = 0; k < 5; k++) {
    // Identical rows: both are the conversation's.
    inserts.push(
      `INSERT INTO notes VALUES ('k${k}', 'n${k}'), ('k${k}', 'n${k}'), ('K${k}', 'upper')`,
    )
    inserts.push(`INSERT INTO pins VALUES ('k${k}', 1), ('k${k}', 2), ('K${k}', 1)`)
    inserts.push(`INSERT INTO labels VALUES ('k${k}', 'lower'), ('K${k}', 'upper'), (NULL, 'none')`)
  }
  // Parent keys that are not unique: SQLite enforces no such foreign key (OmniAI runs with
  // foreign_keys off too); its rows are only written.
  await sql(file, ['PRAGMA foreign_keys = OFF', ...inserts].join(';\n'))
  return file
}

/** A connection that counts the statements run through iterate(), by what they begin with. */
function counted(db: SqliteConnection) {
  const seen = { batched: 0, single: 0 }
  const iterate = (q: string, ...params: SqlValue[]) => {
    if (q.startsWith('WITH omniai_ids')) seen.batched++
    else seen.single++
    return db.iterate(q, ...params)
  }
  return { seen, db: { ...db, iterate } }
}

async function spot(file: string, ids: string[], oneByOne: boolean, table = 'conversations') {
  const { db, seen } = counted(await openSqlite(file, { readonly: true }))
  const database = new SqliteDatabase(file, db)
  // The reference: one IN query per conversation and table, as before.
  if (oneByOne) (database as unknown as { relatedOfAll: () => null }).relatedOfAll = () => null
  try {
    return { found: await database.conversations(table, ids), seen }
  } finally {
    await database.close()
  }
}

export function spotCheckBatchTests(driver: string) {
  describe(`spot-check: each related table read once for all the conversations (${driver})`, () => {
    it('runs on the driver it is meant for', async () => {
      expect((await sqliteDriver()).name).toBe(driver)
    })

    it('the digests of one query per conversation, table by table, from one statement per table', async () => {
      const file = await database()
      const ids = [...CONVERSATIONS, 'empty', 'missing', 'c3']
      const batched = await spot(file, ids, false)
      const single = await spot(file, ids, true)
      const tables = batched.found.items[0]!.related.map((r) => r.table)
      expect(tables.sort()).toEqual(
        [
          'attachments',
          'labels',
          'loose',
          'marks',
          'messages',
          'notes',
          'partly',
          'pins',
          'shadowed',
          'thumbs',
        ].sort(),
      )
      for (const [i, item] of batched.found.items.entries()) {
        expect(item, item.id).toEqual(single.found.items[i])
      }
      // c0's messages have codes k0, k0, k0 and K0. Rows reached by several of them (notes,
      // pins, labels: 7, 7 and 8 joined rows) are counted once; identical rows (notes, marks,
      // thumbs) each count.
      const rows = (i: number) =>
        Object.fromEntries(batched.found.items[i]!.related.map((r) => [r.table, r.rows]))
      expect(rows(0)).toMatchObject({
        messages: 4,
        notes: 3,
        pins: 3,
        labels: 2,
        marks: 2,
        thumbs: 8,
      })
      // c1's are all k1: labels compare without case (their column's collation), notes do not.
      expect(rows(1)).toMatchObject({ notes: 2, pins: 2, labels: 2 })
      // One statement per table, except `shadowed`, whose rows have no rowid to tell them
      // apart: it is read per conversation.
      expect(batched.seen.batched).toBe(tables.length - 1)
      expect(batched.seen.single).toBe(ids.length)
      expect(single.seen.batched).toBe(0)
      expect(single.seen.single).toBe(ids.length * tables.length)
    })

    it('more conversations than one statement takes, and a conversation named twice', async () => {
      const file = await database()
      const ids = Array.from({ length: 450 }, (_, i) => CONVERSATIONS[i % CONVERSATIONS.length]!)
      const batched = await spot(file, ids, false)
      const single = await spot(file, ids, true)
      expect(batched.found).toEqual(single.found)
    })

    it('integer keys, and a table keyed by its rowid (no primary key), given as text', async () => {
      const file = path.join(await tempDir(), 'keys.db')
      await writeFile(file, '')
      await sql(
        file,
        `PRAGMA foreign_keys = OFF;
        CREATE TABLE chats (id INTEGER PRIMARY KEY, t TEXT);
        CREATE TABLE lines (chat_id INTEGER REFERENCES chats(id), x);
        CREATE TABLE rooms (name TEXT, t TEXT);
        CREATE TABLE posts (room REFERENCES rooms, x);
        INSERT INTO chats VALUES (1, 'a'), (2, 'b'), (-3, 'c');
        INSERT INTO lines VALUES (1, 'one'), ('1', 'text one'), (2.0, 'real two'), (-3, 'minus'), (4, 'none');
        INSERT INTO rooms VALUES ('r1', 'x'), ('r2', 'y');
        INSERT INTO posts VALUES (1, 'p1'), ('2', 'p2'), (2, 'p2 again'), (NULL, 'none');`,
      )
      for (const [table, ids] of [
        ['chats', ['1', '2', '-3', '4', '01', 'x']],
        ['rooms', ['1', '2', '3']],
      ] as const) {
        const batched = await spot(file, [...ids], false, table)
        const single = await spot(file, [...ids], true, table)
        expect(batched.found, table).toEqual(single.found)
        expect(batched.seen.batched, table).toBe(1)
        expect(batched.found.items[0]!.related[0]!.rows, table).toBeGreaterThan(0)
      }
    })

    it('a table named as the statement names its keys (omniai_ids) is read per conversation', async () => {
      const file = await database()
      await sql(
        file,
        'PRAGMA foreign_keys = OFF; CREATE TABLE omniai_ids (k TEXT, conversation_id TEXT REFERENCES conversations(id)); ' +
          "INSERT INTO omniai_ids VALUES ('x', 'c1'), ('y', 'c2')",
      )
      const batched = await spot(file, ['c1', 'c2'], false)
      const single = await spot(file, ['c1', 'c2'], true)
      expect(batched.found).toEqual(single.found)
      const own = batched.found.items[0]!.related.find((r) => r.table === 'omniai_ids')
      expect(own?.rows).toBe(1)
    })
  })
}
