/**
 * The SQLite connection the engine uses, behind a small interface with two implementations:
 * better-sqlite3 (fast, N-API prebuilds bundled for each GitHub-hosted runner platform) and
 * Node's built-in node:sqlite, used where no prebuild loads (e.g. musl Linux) or when
 * OMNIAI_SQLITE_DRIVER=node asks for it. Both return integers as bigint and BLOBs as bytes, so
 * digests are identical whichever driver computed them.
 */
import { createRequire } from 'node:module'
import { UserError } from '../../util/errors.js'

export type SqlValue = null | bigint | number | string | Uint8Array
export type Row = SqlValue[]

export interface SqliteConnection {
  readonly driver: 'better-sqlite3' | 'node:sqlite'
  /** Rows as arrays of values, in column order. */
  rows(sql: string, ...params: SqlValue[]): Row[]
  /**
   * One statement prepared once, for a query run many times (a page of rows after another):
   * each call runs it with `params` and returns its rows as arrays, as rows() does.
   */
  prepared(sql: string): (...params: SqlValue[]) => Row[]
  /** Rows one at a time, so memory does not grow with the table. */
  iterate(sql: string, ...params: SqlValue[]): Iterable<Row>
  /** Rows as objects keyed by column name (for PRAGMA results). */
  objects(sql: string, ...params: SqlValue[]): Record<string, SqlValue>[]
  /** Runs a statement that returns no rows (INSERT, UPDATE, ...). */
  run(sql: string, ...params: SqlValue[]): void
  exec(sql: string): void
  /** Whether a transaction is open (BEGIN, or a SAVEPOINT outside one). */
  inTransaction(): boolean
  /** Online backup API: copies this database into `dest`, calling `progress` after each step. */
  backup(dest: string, progress: (done: number, total: number) => void): Promise<void>
  close(): void
}

export interface OpenOptions {
  readonly: boolean
}

type BetterSqlite = typeof import('better-sqlite3')

// A static map of import() calls: ncc follows each one and emits that platform's prebuild
// beside the bundle, so dist/ runs from a folder with no node_modules. A plain
// `import 'better-sqlite3'` would resolve the binary through __dirname at run time, which an
// ESM bundle does not have.
const PREBUILDS: Record<string, () => Promise<{ default: BetterSqlite }>> = {
  'linux-x64': () => import('better-sqlite3/linux-x64'),
  'linux-arm64': () => import('better-sqlite3/linux-arm64'),
  'darwin-arm64': () => import('better-sqlite3/darwin-arm64'),
  'darwin-x64': () => import('better-sqlite3/darwin-x64'),
  'win32-x64': () => import('better-sqlite3/win32-x64'),
  'win32-arm64': () => import('better-sqlite3/win32-arm64'),
}

let betterSqlite: Promise<BetterSqlite | null> | undefined

function isMusl(): boolean {
  if (process.platform !== 'linux') return false
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }
  return !report?.header?.glibcVersionRuntime
}

async function loadBetterSqlite(): Promise<BetterSqlite | null> {
  if (process.env.OMNIAI_SQLITE_DRIVER === 'node') return null
  const key = `${process.platform}-${process.arch}`
  const load = PREBUILDS[key]
  if (!load || isMusl()) return null
  try {
    const mod = await load()
    // Opening a memory database proves the native binary loads on this Node ABI.
    new mod.default(':memory:').close()
    return mod.default
  } catch {
    return null
  }
}

const NODE_MAJOR = Number(process.versions.node.split('.')[0])

export async function openSqlite(path: string, options: OpenOptions): Promise<SqliteConnection> {
  const Better = await loaded()
  return Better ? openBetter(Better, path, options) : openNodeSqlite(path, options)
}

function loaded(): Promise<BetterSqlite | null> {
  if (NODE_MAJOR < 22) {
    // better-sqlite3 13 crashes the process on Node 20, and node:sqlite does not exist there.
    throw new UserError(
      `omniai-backups needs Node.js 24 (this is Node.js ${process.versions.node}). Fix: in action.yml it runs on node24 by itself; for the CLI, install Node.js 24 or run it through npm scripts (npm run demo), which use the Node 24 from node_modules.`,
    )
  }
  betterSqlite ??= loadBetterSqlite()
  return betterSqlite
}

/**
 * Which driver openSqlite uses here, and whether it is the fallback; for the log, so a missing
 * or unloadable prebuild is visible rather than silently slower.
 */
export async function sqliteDriver(): Promise<{
  name: SqliteConnection['driver']
  fallback: boolean
}> {
  if (await loaded()) return { name: 'better-sqlite3', fallback: false }
  return { name: 'node:sqlite', fallback: process.env.OMNIAI_SQLITE_DRIVER !== 'node' }
}

function openBetter(Better: BetterSqlite, path: string, options: OpenOptions): SqliteConnection {
  const db = new Better(path, { readonly: options.readonly, fileMustExist: true })
  db.defaultSafeIntegers(true)
  const statement = (sql: string) => db.prepare(sql)
  return {
    driver: 'better-sqlite3',
    rows: (sql, ...params) =>
      statement(sql)
        .raw(true)
        .all(...params) as Row[],
    prepared: (sql) => {
      const s = statement(sql).raw(true)
      return (...params) => s.all(...params) as Row[]
    },
    iterate: (sql, ...params) =>
      statement(sql)
        .raw(true)
        .iterate(...params) as Iterable<Row>,
    objects: (sql, ...params) => statement(sql).all(...params) as Record<string, SqlValue>[],
    run: (sql, ...params) => void statement(sql).run(...params),
    exec: (sql) => void db.exec(sql),
    inTransaction: () => db.inTransaction,
    backup: async (dest, progress) => {
      let total = 0
      await db.backup(dest, {
        progress: ({ totalPages, remainingPages }) => {
          total = totalPages
          progress(totalPages - remainingPages, totalPages)
          return STEP_PAGES
        },
      })
      progress(total, total)
    },
    close: () => db.close(),
  }
}

// Pages copied per backup step (4 KiB pages: 16 MiB). Between steps the event loop runs, so
// progress can be logged; the caller holds a read transaction so steps see one snapshot.
const STEP_PAGES = 4096

async function openNodeSqlite(path: string, options: OpenOptions): Promise<SqliteConnection> {
  const require = createRequire(import.meta.url)
  const sqlite = require('node:sqlite') as typeof import('node:sqlite')
  const { existsSync } = await import('node:fs')
  // node:sqlite would create a missing file; better-sqlite3's fileMustExist refuses it.
  if (!existsSync(path)) throw new Error(`unable to open database file: ${path}`)
  const db = new sqlite.DatabaseSync(path, { readOnly: options.readonly })
  const statement = (sql: string, arrays: boolean) => {
    const s = db.prepare(sql)
    s.setReadBigInts(true)
    s.setReturnArrays(arrays)
    return s
  }
  return {
    driver: 'node:sqlite',
    rows: (sql, ...params) => statement(sql, true).all(...params) as unknown as Row[],
    prepared: (sql) => {
      const s = statement(sql, true)
      return (...params) => s.all(...params) as unknown as Row[]
    },
    iterate: (sql, ...params) =>
      statement(sql, true).iterate(...params) as unknown as Iterable<Row>,
    objects: (sql, ...params) =>
      statement(sql, false).all(...params) as unknown as Record<string, SqlValue>[],
    run: (sql, ...params) => void statement(sql, false).run(...params),
    exec: (sql) => db.exec(sql),
    inTransaction: () => db.isTransaction,
    backup: async (dest, progress) => {
      await sqlite.backup(db, dest, {
        rate: STEP_PAGES,
        progress: ({ totalPages, remainingPages }) =>
          progress(totalPages - remainingPages, totalPages),
      })
    },
    close: () => db.close(),
  }
}
