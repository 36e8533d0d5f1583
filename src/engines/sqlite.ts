import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'
import { describeFindings } from '../checks.js'
import { keyText } from '../digest.js'
import { describeError, UserError } from '../errors.js'
import { checkDatabase } from '../inspect.js'
import { removeOnInterrupt } from '../cleanup.js'
import { fsyncDir, fsyncFile, takeOwnership, tempName } from '../fsutil.js'
import type { AuditRows } from '../audit.js'
import type {
  ForeignKeyViolation,
  IntegrityFindings,
  Inventory,
  Conversations,
  ConversationDigest,
  Index,
  Schema,
  SchemaObject,
  Table,
} from '../inventory.js'
import { progressLogger, type Log } from '../log.js'
import {
  SESSION_EXPIRY_COLUMNS,
  SESSION_TABLES,
  type BackupRef,
  type Database,
  type Engine,
  type Snapshot,
} from './engine.js'
import {
  hashRows,
  quoteIdent,
  RECENCY_COLUMNS,
  relatedQueries,
  type ForeignKey,
  type SqlDialect,
} from './related.js'
import { openSqlite, sqliteDriver, type SqliteConnection } from './sqlite-driver.js'

const HEADER = Buffer.from('SQLite format 3\0', 'latin1')
const EMPTY_SCHEMA: Schema = { tables: [], indexes: [], triggers: [], views: [] }

/** Fails with a one-line error naming `input` unless `file` is a readable SQLite database. */
export async function assertSqliteFile(file: string, input: string, fix: string): Promise<void> {
  let stat
  try {
    stat = await fs.stat(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UserError(`${input}: ${file} does not exist. ${fix}`)
    throw new UserError(`${input}: cannot read ${file} (${code}). ${fix}`)
  }
  if (stat.isDirectory()) {
    throw new UserError(`${input}: ${file} is a directory, not a SQLite database file. ${fix}`)
  }
  if (stat.size === 0) throw new UserError(`${input}: ${file} is empty (0 bytes). ${fix}`)
  let header: Buffer
  try {
    const handle = await fs.open(file, 'r')
    try {
      header = Buffer.alloc(HEADER.length)
      await handle.read(header, 0, HEADER.length, 0)
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw new UserError(
      `${input}: cannot read ${file} (${(err as NodeJS.ErrnoException).code}). ${fix}`,
    )
  }
  if (!header.equals(HEADER)) {
    throw new UserError(
      `${input}: ${file} is not a SQLite database (it does not start with "SQLite format 3"). ${fix}`,
    )
  }
}

/** Processes (other than this one) with the database or its -wal/-shm open, from /proc. */
async function processesWithOpen(file: string): Promise<string[]> {
  const real = await fs.realpath(file)
  const targets = new Set([real, `${real}-wal`, `${real}-shm`, `${real}-journal`])
  let pids: string[]
  try {
    pids = (await fs.readdir('/proc')).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
  } catch {
    return []
  }
  const users: string[] = []
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = await fs.readdir(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      if (targets.has(link)) {
        const comm = (await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim()
        users.push(`pid ${pid} (${comm})`)
        break
      }
    }
  }
  return users
}

/** foreign_key_check rows (child table, parent table) counted per table pair, in a stable order. */
function countViolations(pairs: Iterable<[unknown, unknown]>): ForeignKeyViolation[] {
  const counts = new Map<string, ForeignKeyViolation>()
  for (const [table, parent] of pairs) {
    const id = JSON.stringify([String(table), String(parent)])
    const v = counts.get(id)
    if (v) v.rows++
    else counts.set(id, { table: String(table), parent: String(parent), rows: 1 })
  }
  return [...counts.values()].sort(
    (a, b) => a.table.localeCompare(b.table) || a.parent.localeCompare(b.parent),
  )
}

// Node's built-in SQLite in a worker: no native module to locate from inside a bundle. Only
// table names and counts cross back: foreign_key_check's rowids stay in the worker.
const INTEGRITY_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { DatabaseSync } = require('node:sqlite')
const db = new DatabaseSync(workerData, { readOnly: true })
try {
  const integrity = db.prepare('PRAGMA integrity_check').all().map((r) => String(Object.values(r)[0]))
  const fk = db.prepare('PRAGMA foreign_key_check').all().map((r) => [r.table, r.parent])
  parentPort.postMessage({ integrity, fk })
} finally {
  db.close()
}
`

async function integrityInWorker(file: string): Promise<IntegrityFindings> {
  const { integrity, fk } = await new Promise<{
    integrity: string[]
    fk: [string, string][]
  }>((resolve, reject) => {
    const worker = new Worker(INTEGRITY_WORKER, {
      eval: true,
      workerData: file,
      execArgv: ['--no-warnings'],
    })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => code !== 0 && reject(new Error(`integrity worker exit ${code}`)))
  })
  return { damage: integrity.filter((l) => l !== 'ok'), foreignKeys: countViolations(fk) }
}

async function logDriver(log: Log): Promise<void> {
  const driver = await sqliteDriver()
  if (driver.fallback) {
    log.warning(
      `no better-sqlite3 prebuild loads on ${process.platform}-${process.arch}; using Node's built-in node:sqlite instead (same results, slower).`,
    )
  } else log.info(`SQLite driver: ${driver.name}`)
}

export class SqliteEngine implements Engine {
  readonly name = 'sqlite'
  readonly extension = '.db'

  constructor(private readonly source: string) {}

  private async checkSource(): Promise<void> {
    await assertSqliteFile(
      this.source,
      'connection-string',
      'Fix: set connection-string to the path of the OmniAI SQLite database (e.g. omniai.db).',
    )
  }

  async openSource(): Promise<Database> {
    await this.checkSource()
    return new SqliteDatabase(this.source, await openSqlite(this.source, { readonly: true }))
  }

  async snapshot(
    dest: string,
    log: Log,
    inspect: (db: Database) => Promise<Inventory>,
    written?: () => void,
  ): Promise<Snapshot> {
    await this.checkSource()
    await logDriver(log)
    const src = await openSqlite(this.source, { readonly: true })
    let journalMode: string
    let engineVersion: string
    try {
      // A writer in rollback-journal mode holds its lock briefly; wait for it rather than fail.
      src.exec('PRAGMA busy_timeout = 30000')
      journalMode = String(src.objects('PRAGMA journal_mode')[0]?.journal_mode ?? 'unknown')
      engineVersion = String(src.rows('SELECT sqlite_version()')[0]![0])
      // One read transaction around every backup step pins one snapshot: the copy is
      // consistent while other processes keep writing (WAL readers do not block them), and
      // the backup never restarts because the source changed between steps.
      src.exec('BEGIN')
      try {
        src.rows('SELECT count(*) FROM sqlite_schema')
        await src.backup(dest, progressLogger(log, 'snapshot'))
      } finally {
        src.exec('COMMIT')
      }
    } finally {
      src.close()
    }
    // A backup is one self-contained file: out of WAL mode, reading it never creates or
    // needs -wal and -shm files beside it.
    const out = await openSqlite(dest, { readonly: false })
    try {
      out.exec('PRAGMA journal_mode = DELETE')
    } finally {
      out.close()
    }
    written?.()
    const { size } = await fs.stat(this.source)
    const db = await this.openBackup(dest)
    try {
      // The checks run on another thread while this one takes the inventory.
      const checking = db.integrityProblems().catch((err: unknown): IntegrityFindings => ({
        damage: [`integrity_check could not run: ${describeError(err)}`],
        foreignKeys: [],
      }))
      let inventory: Inventory | null = null
      let unreadable: unknown = null
      try {
        inventory = await inspect(db)
      } catch (err) {
        unreadable = err
      }
      const findings = await checking
      // An inventory that fails on a sound file is this tool's problem, not the data's.
      if (!inventory && findings.damage.length === 0) throw unreadable
      return {
        engineVersion,
        source: { bytes: size, journalMode, description: path.basename(this.source) },
        verified: describeFindings(findings),
        // A damaged copy records what could be read of it; it is never chosen by default.
        inventory: {
          ...(inventory ?? {
            schema: await db.schema().catch(() => EMPTY_SCHEMA),
            rowCounts: {},
            audit: null,
            conversations: null,
          }),
          foreignKeyViolations: findings.foreignKeys,
        },
        damage: findings.damage,
      }
    } finally {
      await db.close()
    }
  }

  async verifyBackup(backup: BackupRef) {
    let db: SqliteDatabase
    try {
      db = await this.openBackup(backup.path)
    } catch (err) {
      return {
        checks: [
          { name: 'integrity', ok: false, detail: `cannot be opened: ${describeError(err)}` },
        ],
        database: null,
      }
    }
    try {
      return await checkDatabase(db, backup.manifest)
    } finally {
      await db.close()
    }
  }

  /** Opens a backup file read-only, for inspection. */
  async openBackup(file: string): Promise<SqliteDatabase> {
    await assertSqliteFile(
      file,
      'backup-file',
      'Fix: point backup-file at a backup written by mode backup, or leave it empty to use the newest.',
    )
    try {
      return new SqliteDatabase(file, await openSqlite(file, { readonly: true }))
    } catch (err) {
      throw new UserError(`backup-file: cannot open ${file} as SQLite: ${(err as Error).message}`)
    }
  }

  liveName(): string {
    return path.basename(this.source)
  }

  async liveExists(): Promise<boolean> {
    return fs.stat(this.source).then(
      () => true,
      () => false,
    )
  }

  async liveUsers(): Promise<string[]> {
    if (!(await this.liveExists())) return []
    const users = await processesWithOpen(this.source)
    if (users.length) return users
    // Where /proc cannot be read (macOS, Windows), a connection in a transaction still shows:
    // an exclusive lock cannot be had without waiting.
    const db = await openSqlite(this.source, { readonly: false })
    try {
      db.exec('PRAGMA busy_timeout = 0')
      db.exec('BEGIN EXCLUSIVE')
      db.exec('ROLLBACK')
      return []
    } catch (err) {
      // A file too damaged to lock is not in use by anyone: the restore is what it needs.
      if (!/locked|busy/i.test(describeError(err))) return []
      return ['another connection holds a lock on it']
    } finally {
      db.close()
    }
  }

  async liveSessions(now: Date): Promise<{ table: string; active: number } | null> {
    if (!(await this.liveExists())) return null
    const db = await openSqlite(this.source, { readonly: true })
    try {
      const tables = new Set(
        db.rows("SELECT name FROM sqlite_schema WHERE type = 'table'").map((r) => String(r[0])),
      )
      const table = SESSION_TABLES.find((t) => tables.has(t))
      if (!table) return null
      const columns = db
        .objects(`PRAGMA table_info(${quoteIdent(table)})`)
        .map((c) => String(c.name))
      const column = SESSION_EXPIRY_COLUMNS.find((c) => columns.includes(c))
      if (!column) return null
      const e = quoteIdent(column)
      // SQLAlchemy stores naive UTC text ('2026-11-29 18:00:00.123456'); others store epoch
      // seconds or milliseconds.
      const active = db.rows(
        `SELECT count(*) FROM ${quoteIdent(table)} WHERE CASE
           WHEN typeof(${e}) IN ('integer', 'real') THEN
             (CASE WHEN ${e} > 100000000000 THEN ${e} / 1000.0 ELSE ${e} END) > ?
           ELSE julianday(${e}) > julianday(?) END`,
        now.getTime() / 1000,
        now.toISOString(),
      )[0]![0]
      return { table, active: Number(active) }
    } finally {
      db.close()
    }
  }

  async replaceLive(backup: BackupRef, log: Log): Promise<Database> {
    await logDriver(log)
    const target = path.resolve(this.source)
    const dir = path.dirname(target)
    const tmp = tempName(dir, path.basename(target))
    const forget = removeOnInterrupt(tmp, 'partial restore')
    // The restored file takes the live one's owner and mode: the backend often runs as another
    // user (omniai, 0640) and could not open a new file, which is this process's and 0600.
    const live = await fs.stat(target).catch(() => null)
    try {
      const src = await openSqlite(backup.path, { readonly: true })
      try {
        await src.backup(tmp, progressLogger(log, 'restore'))
      } finally {
        src.close()
      }
      const out = await openSqlite(tmp, { readonly: false })
      try {
        const problems = out.rows('PRAGMA integrity_check').map((r) => String(r[0]))
        if (problems.join() !== 'ok')
          throw new UserError(
            `backup-file: the restored copy fails integrity_check (${problems.slice(0, 3).join('; ')}); the live database was not touched.`,
          )
        // Back to the journal mode the live database had (OmniAI runs in WAL mode).
        const mode = backup.manifest.source.journalMode
        if (mode && /^(wal|delete|truncate|persist)$/i.test(mode))
          out.exec(`PRAGMA journal_mode = ${mode}`)
      } finally {
        out.close()
      }
      if (live) {
        await takeOwnership(tmp, live).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EPERM') throw err
          throw new UserError(
            `connection-string: ${target} belongs to uid ${live.uid} (group ${live.gid}), and this process (uid ${process.getuid?.()}) cannot give the restored file that owner, so the backend could no longer open it; the live database was not touched. Fix: run the restore as root (sudo) or as the file's owner.`,
          )
        })
      }
      await fsyncFile(tmp)
      // A -wal left beside the old file would be replayed onto the restored one: its frames
      // belong to the old database. The safety backup already holds what they contained.
      await fs.rm(`${target}-wal`, { force: true })
      await fs.rm(`${target}-shm`, { force: true })
      await fs.rm(`${target}-journal`, { force: true })
      await fs.rename(tmp, target)
      await fsyncDir(dir)
    } catch (err) {
      await fs.rm(tmp, { force: true })
      throw err
    } finally {
      forget()
    }
    return new SqliteDatabase(target, await openSqlite(target, { readonly: false }))
  }

  async restore({ path: file }: BackupRef, scratchDir: string, log: Log): Promise<Database> {
    await logDriver(log)
    const restored = path.join(scratchDir, 'restored.db')
    // The runbook's `sqlite3 restored.db ".restore backup.db"`: the online backup API, from the
    // backup file into a fresh database in the scratch folder.
    const src = await openSqlite(file, { readonly: true })
    try {
      await src.backup(restored, progressLogger(log, 'restore'))
    } finally {
      src.close()
    }
    return new SqliteDatabase(restored, await openSqlite(restored, { readonly: false }))
  }
}

export class SqliteDatabase implements Database {
  private foreignKeysCache: ForeignKey[] | undefined

  constructor(
    readonly file: string,
    private readonly db: SqliteConnection,
  ) {}

  async bytes(): Promise<number> {
    return (await fs.stat(this.file)).size
  }

  async close(): Promise<void> {
    this.db.close()
  }

  /**
   * `sqlite:///` then the absolute path, as SQLAlchemy and dj-database-url read it: four slashes
   * before a POSIX path (`sqlite:////tmp/x/restored.db`), `sqlite:///C:\\...` on Windows. With the
   * path's own slash dropped, they would open a relative path: a new, empty database.
   */
  url(): string {
    return `sqlite:///${path.resolve(this.file)}`
  }

  /**
   * integrity_check and foreign_key_check, on a second connection in a worker thread where it
   * can be had: they read the whole file, and meanwhile this thread computes the digests.
   */
  async integrityProblems(): Promise<IntegrityFindings> {
    const found = await integrityInWorker(this.file).catch(() => null)
    if (found) return found
    return {
      damage: this.db
        .rows('PRAGMA integrity_check')
        .map((r) => String(r[0]))
        .filter((line) => line !== 'ok'),
      foreignKeys: countViolations(
        this.db.objects('PRAGMA foreign_key_check').map((r) => [r.table, r.parent]),
      ),
    }
  }

  private tableNames(): string[] {
    return this.db
      .rows(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
      )
      .map((r) => String(r[0]))
  }

  async schema(): Promise<Schema> {
    const tables: Table[] = []
    const indexes: Index[] = []
    const sqlOf = new Map(
      this.db
        .rows("SELECT name, sql FROM sqlite_schema WHERE type = 'index'")
        .map((r) => [String(r[0]), r[1] === null ? null : String(r[1])]),
    )
    for (const name of this.tableNames()) {
      tables.push({ name, columns: this.columns(name) })
      for (const ix of this.db.objects(`PRAGMA index_list(${quoteIdent(name)})`)) {
        const ixName = String(ix.name)
        const columns = this.db
          .objects(`PRAGMA index_info(${quoteIdent(ixName)})`)
          .sort((a, b) => Number(a.seqno) - Number(b.seqno))
          .map((c) => (c.name === null ? '<expression>' : String(c.name)))
        indexes.push({
          name: ixName,
          table: name,
          unique: Number(ix.unique) === 1,
          columns,
          sql: sqlOf.get(ixName) ?? null,
        })
      }
    }
    indexes.sort((a, b) => a.name.localeCompare(b.name))
    const objects = (type: string): SchemaObject[] =>
      this.db
        .rows(`SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = ? ORDER BY name`, type)
        .map((r) => ({ name: String(r[0]), table: String(r[1]), sql: String(r[2]) }))
    return { tables, indexes, triggers: objects('trigger'), views: objects('view') }
  }

  private columns(table: string) {
    return this.db.objects(`PRAGMA table_info(${quoteIdent(table)})`).map((c) => ({
      name: String(c.name),
      type: String(c.type),
      notNull: Number(c.notnull) === 1,
      default: c.dflt_value === null ? null : String(c.dflt_value),
      pk: Number(c.pk),
    }))
  }

  /** The columns that identify a row: the primary key, or SQLite's rowid when there is none. */
  private keyColumns(table: string): string[] {
    const pk = this.columns(table)
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name)
    return pk.length > 0 ? pk : ['rowid']
  }

  private orderBy(table: string): string {
    return this.keyColumns(table).map(quoteIdent).join(', ')
  }

  async rowCounts(tables: string[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = {}
    for (const t of tables) {
      counts[t] = Number(this.db.rows(`SELECT count(*) FROM ${quoteIdent(t)}`)[0]![0])
    }
    return counts
  }

  private foreignKeys(): ForeignKey[] {
    if (this.foreignKeysCache) return this.foreignKeysCache
    const keys: ForeignKey[] = []
    for (const child of this.tableNames()) {
      const rows = this.db.objects(`PRAGMA foreign_key_list(${quoteIdent(child)})`)
      // Composite foreign keys (several rows with one id) are not followed.
      const perId = new Map<number, number>()
      for (const r of rows) perId.set(Number(r.id), (perId.get(Number(r.id)) ?? 0) + 1)
      for (const r of rows) {
        if (perId.get(Number(r.id)) !== 1) continue
        const parent = String(r.table)
        const to = r.to === null ? this.keyColumns(parent)[0]! : String(r.to)
        keys.push({ child, from: String(r.from), parent, to })
      }
    }
    return (this.foreignKeysCache = keys)
  }

  private readonly dialect: SqlDialect = {
    table: quoteIdent,
    orderBy: (table) => this.orderBy(table),
    param: '?',
  }

  private conversationKey(table: string): string {
    const key = this.keyColumns(table)
    return key.length === 1 ? key[0]! : 'rowid'
  }

  async recentConversations(table: string, count: number): Promise<Conversations> {
    const key = this.conversationKey(table)
    const names = this.columns(table).map((c) => c.name)
    const recency = RECENCY_COLUMNS.find((c) => names.includes(c)) ?? key
    const ids = this.db
      .rows(
        `SELECT ${quoteIdent(key)} FROM ${quoteIdent(table)} ORDER BY ${quoteIdent(recency)} DESC, ${quoteIdent(key)} DESC LIMIT ?`,
        BigInt(count),
      )
      .map((r) => keyText(r[0]))
    return { ...(await this.conversations(table, ids)), orderBy: recency }
  }

  async conversations(table: string, ids: string[]): Promise<Conversations> {
    const key = this.conversationKey(table)
    const related = relatedQueries(table, key, this.foreignKeys(), this.dialect)
    const rowSql = `SELECT * FROM ${quoteIdent(table)} WHERE ${quoteIdent(key)} = ?`
    const items: ConversationDigest[] = ids.map((id) => {
      const rows = this.db.rows(rowSql, id)
      return {
        id,
        sha256: rows.length === 0 ? 'missing' : hashRows(rows).sha256,
        related: related.map((q) => ({
          table: q.table,
          via: q.via,
          ...hashRows(this.db.iterate(q.sql, id)),
        })),
      }
    })
    return { table, key, orderBy: key, items }
  }

  auditRows(table: string): AuditRows {
    const key = this.keyColumns(table)
    const rowid = key[0] === 'rowid'
    const names = rowid ? ['rowid'] : this.columns(table).map((c) => c.name)
    const at = key.map((k) => names.indexOf(k))
    const rows = this.db.iterate(
      `SELECT ${rowid ? 'rowid, *' : '*'} FROM ${quoteIdent(table)} ORDER BY ${this.orderBy(table)}`,
    )
    return {
      key,
      rows: (function* () {
        for (const row of rows) yield { key: at.map((i) => keyText(row[i])).join(','), row }
      })(),
    }
  }
}
