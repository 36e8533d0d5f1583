// SQLite audit rows keyed by the rowid are read a page at a time (each page after the last rowid
// of the one before) instead of by one statement stepped row by row. The digest must not be able
// to tell: every row once, in key order, at every page boundary. The same rows under a primary
// key that is not the rowid are read the old way, so the two digests must be equal. Run once per
// SQLite driver (audit-pages.test.ts, audit-pages-node.test.ts).
import { open as openFile, rename, writeFile } from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { digestAudit, type AuditRow } from '../src/checks/audit.js'
import type { AuditDigest } from '../src/checks/inventory.js'
import {
  AUDIT_WORKER_FROM_ROWS,
  BATCHES_AHEAD,
  runningAuditWorkers,
} from '../src/engines/sqlite/audit-worker.js'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  openSqlite,
  sqliteDriver,
  type SqliteConnection,
  type SqlValue,
} from '../src/engines/sqlite/driver.js'
import { SqliteDatabase } from '../src/engines/sqlite/engine.js'
import { demoWorkspace, failed, run, sql, tempDir } from './helpers.js'
import { workerEvents } from './recorded-workers.js'

const COLUMNS = 'ts TEXT, actor_id INTEGER, action TEXT, details TEXT'

/** Tables of the same rows, and whether each is read in pages. */
const TABLES: Record<string, { create: string; paged: boolean }> = {
  // The rowid, or a column that stands for it.
  alias: { create: `CREATE TABLE alias(id INTEGER PRIMARY KEY, ${COLUMNS})`, paged: true },
  aliasConstraint: {
    create: `CREATE TABLE aliasConstraint(id INTEGER, ${COLUMNS}, PRIMARY KEY(id DESC))`,
    paged: true,
  },
  // No primary key: SELECT rowid, * gives the same rows as intKey's SELECT *.
  noKey: { create: `CREATE TABLE noKey(${COLUMNS})`, paged: true },
  // Not the rowid (an index holds the key): one statement in key order.
  intKey: { create: `CREATE TABLE intKey(id INT PRIMARY KEY, ${COLUMNS})`, paged: false },
  descQuirk: {
    create: `CREATE TABLE descQuirk(id INTEGER PRIMARY KEY DESC, ${COLUMNS})`,
    paged: false,
  },
  withoutRowid: {
    create: `CREATE TABLE withoutRowid(id INTEGER PRIMARY KEY, ${COLUMNS}) WITHOUT ROWID`,
    paged: false,
  },
}

const KEYS = [
  -9223372036854775808n,
  -5n,
  0n,
  ...Array.from({ length: 2999 }, (_, i) => BigInt(i * 2 + 1)),
  9223372036854775807n,
]

const values = (keys: bigint[]) =>
  keys
    .map(
      (k, i) =>
        `(${k}, '2026-01-01 00:00:${i % 60}', ${i % 7 === 0 ? 'NULL' : i % 40}, 'a''${i}"\\', '{"n":${i}}')`,
    )
    .join(',')

async function database(keys = KEYS): Promise<string> {
  const file = path.join(await tempDir(), 'audit.db')
  await writeFile(file, '') // an empty file is an empty database
  for (const [table, { create }] of Object.entries(TABLES)) {
    await sql(file, create)
    const cols = table === 'noKey' ? `(rowid, ${COLUMNS.replace(/ [A-Z]+/g, '')})` : ''
    if (keys.length) await sql(file, `INSERT INTO ${table} ${cols} VALUES ${values(keys)}`)
  }
  return file
}

/** A table whose key comes after a generated column, of the first 2500 KEYS. */
async function addGenerated(file: string): Promise<void> {
  await sql(
    file,
    `CREATE TABLE generated(g TEXT GENERATED ALWAYS AS ('x' || ts) VIRTUAL, id INTEGER PRIMARY KEY, ${COLUMNS})`,
  )
  await sql(
    file,
    `INSERT INTO generated (id, ts, actor_id, action, details) VALUES ${values(KEYS.slice(0, 2500))}`,
  )
}

/** A connection that counts the statements run through rows() and prepared() (one per page). */
function counted(db: SqliteConnection) {
  const seen = { rows: 0 }
  const rows = (q: string, ...params: SqlValue[]) => {
    seen.rows++
    return db.rows(q, ...params)
  }
  const prepared = (q: string) => {
    const run = db.prepared(q)
    return (...params: SqlValue[]) => {
      seen.rows++
      return run(...params)
    }
  }
  return { seen, db: { ...db, rows, prepared } }
}

async function digests(file: string, tables: string[]) {
  const { db, seen } = counted(await openSqlite(file, { readonly: true }))
  const database = new SqliteDatabase(file, db)
  const out: Record<string, { sha256: string; rows: number; statements: number }> = {}
  try {
    for (const table of tables) {
      const before = seen.rows
      const d = await digestAudit(table, database.auditRows(table))
      out[table] = { sha256: d.sha256, rows: d.rows, statements: seen.rows - before }
    }
    // Every page's read transaction (a savepoint) is over: a transaction can begin.
    db.exec('BEGIN')
    db.exec('ROLLBACK')
  } finally {
    await database.close()
  }
  return out
}

export function auditPageTests(driver: string) {
  describe(`audit rows keyed by the rowid, read a page at a time (${driver})`, () => {
    it('runs on the driver it is meant for', async () => {
      expect((await sqliteDriver()).name).toBe(driver)
    })

    for (const count of [KEYS.length, 2000, 512, 511, 256, 0]) {
      it(`${count} rows: the digest of one statement's rows, on both sides of every page boundary`, async () => {
        const file = await database(KEYS.slice(0, count))
        const got = await digests(file, Object.keys(TABLES))
        // Paged: a page of 256 rows per statement, and a last one short or empty.
        const pages = Math.floor(count / 256) + 1
        for (const [table, { paged }] of Object.entries(TABLES)) {
          expect(got[table]!.rows, table).toBe(count)
          if (paged) expect(got[table]!.statements, table).toBeGreaterThanOrEqual(pages)
          else expect(got[table]!.statements, table).toBeLessThan(2)
          expect(got[table]!.sha256, table).toBe(got.intKey!.sha256)
        }
      })
    }

    it('a column named rowid, or a generated column: read by one statement, every row', async () => {
      const file = path.join(await tempDir(), 'odd.db')
      await writeFile(file, '')
      await sql(file, `CREATE TABLE named(rowid INTEGER, ${COLUMNS})`)
      await sql(file, `INSERT INTO named VALUES ${values(KEYS.slice(0, 2500))}`)
      // The same rowid value twice, and none at all: pages after a "last rowid" would skip rows.
      await sql(
        file,
        'UPDATE named SET rowid = 7 WHERE actor_id = 3; UPDATE named SET rowid = NULL WHERE actor_id = 5',
      )
      await addGenerated(file)
      // The other names of the rowid, in any case.
      await sql(file, `CREATE TABLE named2(OID INTEGER, ${COLUMNS})`)
      await sql(file, `INSERT INTO named2 VALUES ${values(KEYS.slice(0, 2500))}`)
      await sql(file, `CREATE TABLE named3(_ROWID_ INTEGER PRIMARY KEY, ${COLUMNS})`)
      await sql(file, `INSERT INTO named3 VALUES ${values(KEYS.slice(0, 2500))}`)
      // A virtual table: its rowids need not be unique or stable between statements.
      await sql(file, 'CREATE VIRTUAL TABLE virtual USING rtree(id, minX, maxX)')
      await sql(
        file,
        'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) INSERT INTO virtual SELECT i, i, i + 1 FROM n',
      )
      const tables = ['named', 'generated', 'named2', 'named3', 'virtual']
      const got = await digests(file, tables)
      for (const table of tables) {
        expect(got[table]!.rows, table).toBe(2500)
        expect(got[table]!.statements, table).toBeLessThan(2)
      }
    })

    it('a generated column before the key: each row’s key is read from the key’s own column', async () => {
      const file = path.join(await tempDir(), 'generated.db')
      await writeFile(file, '')
      await addGenerated(file)
      // A composite key with a stored generated column between its columns.
      await sql(
        file,
        'CREATE TABLE composite(a TEXT, n INTEGER GENERATED ALWAYS AS (length(a)) STORED, b INTEGER, ts TEXT, PRIMARY KEY (a, b))',
      )
      await sql(
        file,
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1500) INSERT INTO composite (a, b, ts) SELECT printf('u%04d', i / 10), i % 10, 't' FROM k",
      )
      const db = new SqliteDatabase(file, await openSqlite(file, { readonly: true }))
      try {
        const d = await digestAudit('generated', db.auditRows('generated'))
        expect(d.lastKey).toBe(String(KEYS[2499]))
        expect(d.chunks.map((c) => c.firstKey)).toEqual([0, 1000, 2000].map((i) => String(KEYS[i])))
        const c = await digestAudit('composite', db.auditRows('composite'))
        expect(c.key).toEqual(['a', 'b'])
        expect([c.chunks[0]!.firstKey, c.lastKey]).toEqual(['u0000,1', 'u0150,0'])
      } finally {
        await db.close()
      }
    })

    it('every page is read in one read transaction: rows deleted between pages are still read', async () => {
      const file = await database()
      await sql(file, 'PRAGMA journal_mode = WAL')
      const db = new SqliteDatabase(file, await openSqlite(file, { readonly: true }))
      try {
        const rows = (db.auditRows('alias').rows as Iterable<AuditRow>)[Symbol.iterator]()
        let read = 0
        for (; read < 10; read++) rows.next()
        // Rows of later pages, deleted by another connection after the first page was read.
        await sql(file, 'DELETE FROM alias WHERE id > 3001')
        for (let r = rows.next(); !r.done; r = rows.next()) read++
        expect(read).toBe(KEYS.length)
        // Positive control: the rows are gone for a read that begins now.
        const after = await digestAudit('alias', db.auditRows('alias'))
        expect(after.rows).toBeLessThan(KEYS.length - 400)
      } finally {
        await db.close()
      }
    })

    it('positive control: the comparison sees one row fewer', async () => {
      const file = await database()
      await sql(file, 'DELETE FROM alias WHERE id = 2001')
      const got = await digests(file, ['alias', 'intKey'])
      expect(got.alias!.rows).toBe(KEYS.length - 1)
      expect(got.alias!.sha256).not.toBe(got.intKey!.sha256)
    })
  })

  describe(`audit rows of a file nothing writes, read and encoded on a worker thread (${driver})`, () => {
    /** Rows of every kind of value SQLite stores, keyed 1..n: text that needs escaping too. */
    async function varied(n = 3000): Promise<string> {
      const file = path.join(await tempDir(), 'varied.db')
      await writeFile(file, '')
      await sql(file, 'CREATE TABLE varied(id INTEGER PRIMARY KEY, v, w TEXT, x REAL, y BLOB)')
      await sql(
        file,
        `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ${n})
         INSERT INTO varied SELECT i,
           CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN i * 1.5 WHEN 2 THEN 9223372036854775807 - i
                      WHEN 3 THEN x'00ff10' WHEN 4 THEN 2.0 WHEN 5 THEN -1e300 ELSE 'ü€😀' || i END,
           'a"b\\c' || char(10) || char(9) || char(1) || printf('%.*c', i % 90, 'z'),
           i / 3.0, randomblob(i % 5)
         FROM k`,
      )
      return file
    }

    /** `run` with OMNIAI_AUDIT_WORKER set as given (undefined: unset), then as it was. */
    async function withWorker<T>(worker: '1' | '0' | undefined, run: () => Promise<T>) {
      const before = process.env.OMNIAI_AUDIT_WORKER
      if (worker === undefined) delete process.env.OMNIAI_AUDIT_WORKER
      else process.env.OMNIAI_AUDIT_WORKER = worker
      try {
        return await run()
      } finally {
        if (before === undefined) delete process.env.OMNIAI_AUDIT_WORKER
        else process.env.OMNIAI_AUDIT_WORKER = before
      }
    }

    /** The digest with OMNIAI_AUDIT_WORKER set as given, and whether its rows came from a worker. */
    async function digestWith(
      file: string,
      table: string,
      worker: '1' | '0' | undefined,
      {
        fixed = true,
        manifest,
        pace = 0,
      }: { fixed?: boolean; manifest?: AuditDigest; pace?: number } = {},
    ) {
      const warnings: string[] = []
      const db = new SqliteDatabase(file, await openSqlite(file, { readonly: true }), null, fixed, {
        warning: (m) => void warnings.push(m),
      })
      try {
        return await withWorker(worker, async () => {
          const source = db.auditRows(table)
          const onWorker = !(Symbol.iterator in source.rows)
          // `pace` ms before each batch is taken: the worker's batches wait in this thread's queue.
          if (pace > 0 && onWorker) source.rows = paced(source.rows as AsyncIterable<never>, pace)
          const digest = await digestAudit(
            table,
            source,
            manifest?.chunks.map((c) => c.firstKey),
            manifest?.chunks,
          )
          return { digest, onWorker, warnings }
        })
      } finally {
        await db.close()
      }
    }

    /** Audit workers still running once those ending have had 2 s to end. */
    async function gone(): Promise<number> {
      for (let i = 0; i < 200 && runningAuditWorkers() > 0; i++) await sleep(10)
      return runningAuditWorkers()
    }

    async function* paced<T>(rows: AsyncIterable<T>, ms: number): AsyncIterable<T> {
      for await (const batch of rows) {
        await sleep(ms)
        yield batch
      }
    }

    it('the same digest as this thread reads, chunks and sums included, for every rowid table', async () => {
      const file = await database()
      for (const table of ['alias', 'aliasConstraint', 'noKey']) {
        const here = await digestWith(file, table, '0')
        const there = await digestWith(file, table, '1')
        expect([here.onWorker, there.onWorker], table).toEqual([false, true])
        expect(there.digest, table).toEqual(here.digest)
        expect(there.digest.rows, table).toBe(KEYS.length)
      }
    })

    it('every kind of value, over many batches (the worker waits for this thread): the same digest', async () => {
      // About 450 KB of lines: a dozen batches of 32 Ki characters, more than the 4 the worker may
      // send ahead of this thread.
      const file = await varied(4000)
      const here = await digestWith(file, 'varied', '0')
      const there = await digestWith(file, 'varied', '1')
      expect(there.onWorker).toBe(true)
      expect(there.digest).toEqual(here.digest)
      // Positive control: a changed value of a kind only the worker encodes (a blob) is seen.
      await sql(file, "UPDATE varied SET v = x'00ff11' WHERE id = 10")
      const changed = await digestWith(file, 'varied', '1')
      expect(changed.digest.sha256).not.toBe(here.digest.sha256)
      expect(
        changed.digest.chunks.filter((c, i) => c.sha256 !== here.digest.chunks[i]!.sha256),
      ).toHaveLength(1)
    })

    it("against a manifest's chunks: a deleted row is named alike, the unchanged chunks' sums taken alike", async () => {
      const file = await varied()
      const manifest = (await digestWith(file, 'varied', '0')).digest
      await sql(file, 'DELETE FROM varied WHERE id = 1234')
      const here = await digestWith(file, 'varied', '0', { manifest })
      const there = await digestWith(file, 'varied', '1', { manifest })
      expect(there.onWorker).toBe(true)
      expect(there.digest).toEqual(here.digest)
      const changed = there.digest.chunks.filter((c, i) => c.sha256 !== manifest.chunks[i]!.sha256)
      expect(changed.map((c) => c.firstKey)).toEqual(['1001'])
      expect(changed[0]!.keySum).toBe(String(BigInt(manifest.chunks[1]!.keySum!) - 1234n))
    })

    it('no worker is left behind: none before the first read, ended by an early stop and by the end', async () => {
      const file = await varied(4000)
      const db = new SqliteDatabase(file, await openSqlite(file, { readonly: true }), null, true)
      try {
        await withWorker('1', () => stops(db))
      } finally {
        await db.close()
      }

      async function stops(db: SqliteDatabase) {
        const rows = db.auditRows('varied').rows as AsyncIterable<unknown>
        expect(runningAuditWorkers()).toBe(0)
        const reading = rows[Symbol.asyncIterator]()
        expect((await reading.next()).done).toBe(false)
        // Positive control: the count sees the worker while it runs.
        expect(runningAuditWorkers()).toBe(1)
        await reading.return?.()
        expect(await gone()).toBe(0)
        // Never begun: nothing starts (the process could not end with a worker waiting).
        const unread = db.auditRows('varied').rows as AsyncIterable<unknown>
        await unread[Symbol.asyncIterator]().return?.()
        expect(runningAuditWorkers()).toBe(0)
        await digestAudit('varied', db.auditRows('varied'))
        expect(await gone()).toBe(0)
      }
    })

    it('the live database is never read on a worker: its rows belong to the read transaction here', async () => {
      const file = await varied()
      const live = await digestWith(file, 'varied', '1', { fixed: false })
      expect(live.onWorker).toBe(false)
    })

    it(`a worker from a rowid span of ${AUDIT_WORKER_FROM_ROWS}, not below`, async () => {
      const file = await varied(2)
      await sql(file, `UPDATE varied SET id = ${AUDIT_WORKER_FROM_ROWS - 1} WHERE id = 2`)
      expect((await digestWith(file, 'varied', undefined)).onWorker).toBe(false)
      await sql(file, `UPDATE varied SET id = ${AUDIT_WORKER_FROM_ROWS} WHERE id > 1`)
      const wide = await digestWith(file, 'varied', undefined)
      expect(wide.onWorker).toBe(true)
      expect(wide.digest).toEqual((await digestWith(file, 'varied', '0')).digest)
    })

    it('a worker that cannot open the file: the rows are read here, the same digest', async () => {
      const file = await varied()
      await sql(file, `UPDATE varied SET id = ${AUDIT_WORKER_FROM_ROWS} WHERE id = 3000`)
      const want = (await digestWith(file, 'varied', '0')).digest
      const open = async (worker: '1' | undefined) => {
        const db = new SqliteDatabase(file, await openSqlite(file, { readonly: true }), null, true)
        try {
          // Open here, gone by name for the worker (which opens it by name).
          await rename(file, `${file}.moved`)
          return await withWorker(worker, async () => {
            const source = db.auditRows('varied')
            expect(Symbol.iterator in source.rows).toBe(false)
            return await digestAudit('varied', source)
          })
        } finally {
          await db.close()
          await rename(`${file}.moved`, file)
        }
      }
      expect(await open(undefined)).toEqual(want)
      // Positive control: the worker did fail there; chosen by OMNIAI_AUDIT_WORKER=1, it is an error.
      await expect(open('1')).rejects.toThrow(/audit-log worker/)
    })

    it("a damaged page: the reading fails with SQLite's error, and leaves no transaction open on the connection", async () => {
      const file = await varied(4000)
      await sql(file, `UPDATE varied SET id = ${AUDIT_WORKER_FROM_ROWS} WHERE id = 4000`)
      // A leaf of the table halfway along it (not on the way to its first or last row): its
      // page header overwritten.
      const look = await openSqlite(file, { readonly: true })
      const leaves = look
        .rows("SELECT pageno FROM dbstat WHERE name = 'varied' AND pagetype = 'leaf' ORDER BY path")
        .map((r) => Number(r[0]))
      const pageSize = Number(look.rows('PRAGMA page_size')[0]![0])
      look.close()
      expect(leaves.length).toBeGreaterThan(10)
      const at = (leaves[Math.floor(leaves.length / 2)]! - 1) * pageSize
      const handle = await openFile(file, 'r+')
      await handle.write(Buffer.alloc(16, 0xff), 0, 16, at)
      await handle.close()
      for (const worker of ['0', undefined] as const) {
        const conn = await openSqlite(file, { readonly: true })
        const db = new SqliteDatabase(file, conn, null, true)
        try {
          await withWorker(worker, async () => {
            await expect(digestAudit('varied', db.auditRows('varied'))).rejects.toThrow(/malformed/)
          })
          expect(conn.inTransaction(), `worker ${worker}`).toBe(false)
          conn.exec('BEGIN')
          conn.exec('COMMIT')
          // Inside a transaction of the caller's, the reading leaves it to the caller.
          conn.exec('BEGIN')
          await withWorker(worker, async () => {
            await expect(digestAudit('varied', db.auditRows('varied'))).rejects.toThrow(/malformed/)
          })
          expect(conn.inTransaction(), `worker ${worker}`).toBe(true)
          conn.exec('ROLLBACK')
        } finally {
          await db.close()
        }
      }
    })

    it('a worker ended part way (out of memory, say): the rows it did not send are read here, the same digest', async () => {
      const file = await varied(4000)
      await sql(file, `UPDATE varied SET id = ${AUDIT_WORKER_FROM_ROWS} WHERE id = 4000`)
      const want = (await digestWith(file, 'varied', '0')).digest
      /**
       * The digest, with the audit worker ended once it has sent `end` batches (0: never; -1: as
       * soon as it is made, before it sends any).
       */
      const endedAfter = async (end: number, worker: '1' | undefined = undefined) => {
        let sent = 0
        workerEvents.started = (w, data) => {
          if (typeof (data as { select?: unknown } | undefined)?.select !== 'string') return
          if (end < 0) void w.terminate()
          w.on('message', (m: { keys?: unknown }) => {
            if (m.keys && ++sent === end) void w.terminate()
          })
        }
        try {
          // Taken slowly: batches the worker sent wait in the queue when it ends, and must be
          // taken before the rows after them are read here.
          return { ...(await digestWith(file, 'varied', worker, { pace: 5 })), sent }
        } finally {
          delete workerEvents.started
        }
      }
      const whole = await endedAfter(0)
      const part = await endedAfter(3)
      expect([whole.onWorker, part.onWorker]).toEqual([true, true])
      expect(part.digest).toEqual(want)
      expect(whole.digest).toEqual(want)
      // Positive controls: the worker was ended with most of the rows still to send, and chosen by
      // OMNIAI_AUDIT_WORKER=1 (no fallback) the same end is an error.
      expect(whole.sent).toBeGreaterThan(10)
      // At most BATCHES_AHEAD batches beyond those taken (at most 2 when the third arrived).
      expect(part.sent).toBeLessThanOrEqual(2 + BATCHES_AHEAD)
      expect(part.sent).toBeLessThan(whole.sent)
      // The log says so, once, naming the table; a worker that was not ended says nothing.
      expect(whole.warnings).toEqual([])
      expect(part.warnings).toEqual([
        expect.stringMatching(
          /^audit-table varied: the audit log's reading thread stopped \(Error: the audit-log worker stopped \(exit 1\)\); the rest of its rows are read on the main thread instead/,
        ),
      ])
      // Ended before it sent anything: every row is read here, and the log says all of them.
      const never = await endedAfter(-1)
      expect(never.sent).toBe(0)
      expect(never.digest).toEqual(want)
      expect(never.warnings).toEqual([
        expect.stringMatching(/stopped \(.*\); its rows are read on the main thread instead/),
      ])
      await expect(endedAfter(3, '1')).rejects.toThrow(/audit-log worker stopped/)
      expect(await gone()).toBe(0)
    })

    it('a backup whose audit worker ends part way passes, and its log says why it was slower', async () => {
      const ws = await demoWorkspace({ conversations: 20, auditRows: 3000 })
      // A rowid span past the threshold, so that the backup reads the audit log on a worker.
      await sql(ws.db, `UPDATE audit_logs SET id = ${AUDIT_WORKER_FROM_ROWS} WHERE id = 3000`)
      const backup = async (end: number) => {
        let sent = 0
        workerEvents.started = (w, data) => {
          if (typeof (data as { select?: unknown } | undefined)?.select !== 'string') return
          w.on('message', (m: { keys?: unknown }) => {
            if (m.keys && ++sent === end) void w.terminate()
          })
        }
        try {
          const dir = await tempDir()
          const { report, log } = await withWorker(undefined, () =>
            run('backup', { 'connection-string': ws.db, 'backup-dir': dir }, ws.dir),
          )
          return { report, log, sent }
        } finally {
          delete workerEvents.started
        }
      }
      const whole = await backup(0)
      const ended = await backup(1)
      for (const { report } of [whole, ended]) expect(failed(report)).toEqual({})
      // Positive control: the worker read the audit log (sent more than one batch) when left alone.
      expect(whole.sent).toBeGreaterThan(1)
      expect(ended.sent).toBeLessThan(whole.sent)
      expect(ended.report.backup!.sha256).toBe(whole.report.backup!.sha256)
      const said = (w: string[]) => w.filter((m) => /reading thread stopped/.test(m))
      expect(said(whole.log.warnings)).toEqual([])
      expect(said(ended.log.warnings)).toEqual([
        expect.stringMatching(/^audit-table audit_logs: the audit log's reading thread stopped/),
      ])
      expect(await gone()).toBe(0)
    })
  })
}
