import { constants as fsConstants } from 'node:fs'
import { Inputs } from '../../options/inputs.js'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'
import { describeFindings } from '../../checks/checks.js'
import { keyText } from '../../checks/digest.js'
import { describeError, UserError } from '../../util/errors.js'
import { checkDatabase } from '../../checks/inspect.js'
import { removeOnInterrupt } from '../../util/cleanup.js'
import { fsyncDir, fsyncFile, moveNoClobber, takeOwnership, tempName } from '../../util/fs.js'
import { YIELD_ROWS, type AuditRow, type AuditRows } from '../../checks/audit.js'
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
} from '../../checks/inventory.js'
import { progressLogger, type Log } from '../../util/log.js'
import {
  SESSION_EXPIRY_COLUMNS,
  SESSION_TABLES,
  type BackupRef,
  type Database,
  type Engine,
  type Snapshot,
} from '../engine.js'
import {
  hashRows,
  quoteIdent,
  RECENCY_COLUMNS,
  relatedQueries,
  type ForeignKey,
  type SqlDialect,
} from '../related.js'
import { openSqlite, sqliteDriver, type SqliteConnection } from './driver.js'
import { AUDIT_WORKER_FROM_ROWS, encodedInWorker } from './audit-worker.js'

/**
 * A copy that is this process's own and private from its first byte. The kernel copies
 * (fs.copyFile: copy_file_range, or a reflink where the file system shares extents), as `cp`
 * does, with no pass of the data through this process. fs.copyFile gives the new file the
 * source's mode (a 0644 database would give a world-readable snapshot while it is written) and,
 * as root, its owner, so it is written inside a folder only this process may enter (0700,
 * named as temporary files are), made this process's and 0600 there, and only then moved to `dest`.
 */
async function copyPrivate(source: string, dest: string, ownCleanup = true): Promise<void> {
  const dir = tempName(path.dirname(dest), path.basename(dest))
  await fs.mkdir(dir, { mode: 0o700 })
  // Unless `dest` is in a folder that is removed on interrupt as a whole (the drill's scratch).
  const forget = ownCleanup ? removeOnInterrupt(dir, 'partial copy') : () => undefined
  try {
    const tmp = path.join(dir, 'copy')
    await fs.copyFile(source, tmp, fsConstants.COPYFILE_EXCL)
    // Run as root, the copy also took the source's owner: give it back to this process.
    const [uid, gid] = [process.getuid?.(), process.getgid?.()]
    if (uid !== undefined && gid !== undefined) await fs.chown(tmp, uid, gid)
    await fs.chmod(tmp, 0o600)
    // Never over an existing file, also where the file system has no hard links.
    await moveNoClobber(tmp, dest)
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
    forget()
  }
}

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

/** Foreign-key violations (child table, parent table, rows) summed per table pair, in a stable order. */
function countViolations(pairs: Iterable<[unknown, unknown, number?]>): ForeignKeyViolation[] {
  const counts = new Map<string, ForeignKeyViolation>()
  for (const [table, parent, rows = 1] of pairs) {
    if (rows === 0) continue
    const id = JSON.stringify([String(table), String(parent)])
    const v = counts.get(id)
    if (v) v.rows += rows
    else counts.set(id, { table: String(table), parent: String(parent), rows })
  }
  return [...counts.values()].sort(
    (a, b) => a.table.localeCompare(b.table) || a.parent.localeCompare(b.parent),
  )
}

// Node's built-in SQLite in worker threads: no native module to locate from inside a bundle.
// integrity_check and the foreign-key check run there (checkWorkerJobs: in one worker or two),
// alongside the inventory on this thread. Only table names and counts cross back.
//
// The foreign-key check counts violations per foreign key with an anti-join, which reads the
// child's index on the key column instead of every row of the child table (messages is nearly
// the whole file: 0.25 s instead of 2.2 s at 1 GiB). It gives PRAGMA foreign_key_check's
// answer only where the lookup is the same one: a single-column key whose parent column is the
// rowid or has a unique BINARY index, with the same affinity on both sides (so no conversion
// makes '5' and 5 meet in one and not the other). Every other child table runs the pragma.
//
// A worker is started before the file it checks is written (see CheckWorkers): it loads, then
// waits for the file's name, so its start-up overlaps the copy.
const CHECK_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { DatabaseSync } = require('node:sqlite')
let db
const q = (name) => '"' + String(name).replace(/"/g, '""') + '"'
const all = (sql) => db.prepare(sql).all()
function affinity(type) {
  const t = String(type ?? '').toUpperCase()
  if (t.includes('INT')) return 'integer'
  if (/CHAR|CLOB|TEXT/.test(t)) return 'text'
  if (t === '' || t.includes('BLOB')) return 'blob'
  if (/REAL|FLOA|DOUB/.test(t)) return 'real'
  return 'numeric'
}
function columnsOf(table) {
  return new Map(all('PRAGMA table_info(' + q(table) + ')').map((c) => [c.name, c]))
}
/** The anti-join for one foreign key, or null when only the pragma gives its exact answer. */
function antiJoin(child, fk, childCols) {
  const parentCols = columnsOf(fk.table)
  if (parentCols.size === 0) return null
  const pk = [...parentCols.values()].filter((c) => c.pk > 0)
  const to = fk.to ?? (pk.length === 1 ? pk[0].name : null)
  const from = childCols.get(fk.from)
  const target = to === null ? null : parentCols.get(to)
  if (!from || !target || affinity(from.type) !== affinity(target.type)) return null
  const rowid = pk.length === 1 && pk[0].name === to && affinity(target.type) === 'integer' &&
    /^INTEGER$/i.test(String(target.type).trim())
  const unique = all('PRAGMA index_list(' + q(fk.table) + ')').some((ix) => {
    if (!ix.unique || ix.partial) return false
    const cols = all('PRAGMA index_xinfo(' + q(ix.name) + ')').filter((c) => c.key)
    return cols.length === 1 && cols[0].name === to && String(cols[0].coll).toUpperCase() === 'BINARY'
  })
  if (!rowid && !unique) return null
  return 'SELECT count(*) AS n FROM ' + q(child) + ' AS c WHERE c.' + q(fk.from) +
    ' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ' + q(fk.table) + ' AS p WHERE p.' + q(to) +
    ' = c.' + q(fk.from) + ')'
}
function foreignKeys() {
  const counts = []
  const tables = all("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
  for (const { name } of tables) {
    const fks = all('PRAGMA foreign_key_list(' + q(name) + ')')
    if (fks.length === 0) continue
    const perId = new Map()
    for (const fk of fks) perId.set(fk.id, (perId.get(fk.id) ?? 0) + 1)
    const childCols = columnsOf(name)
    const joins = fks.map((fk) => (perId.get(fk.id) === 1 ? antiJoin(name, fk, childCols) : null))
    if (joins.every((sql) => sql !== null)) {
      fks.forEach((fk, i) => counts.push([name, fk.table, Number(db.prepare(joins[i]).get().n)]))
    } else {
      for (const r of all('PRAGMA foreign_key_check(' + q(name) + ')')) counts.push([r.table, r.parent, 1])
    }
  }
  return counts
}
parentPort.once('message', (file) => {
  db = new DatabaseSync(file, { readOnly: true })
  let result
  try {
    result = workerData.jobs.map((job) => job === 'integrity'
      ? all('PRAGMA integrity_check').map((r) => String(Object.values(r)[0]))
      : foreignKeys())
  } finally {
    db.close()
  }
  parentPort.postMessage(result)
})
`

export type Job = 'integrity' | 'foreign-keys'

/** One check worker, started ahead: run() hands it the file; stop() ends it if never run. */
class CheckWorker<T> {
  private readonly worker: Worker
  private readonly done: Promise<T>
  private started = false

  constructor(jobs: Job[]) {
    this.worker = new Worker(CHECK_WORKER, {
      eval: true,
      workerData: { jobs },
      execArgv: ['--no-warnings'],
    })
    // Idle, it keeps nothing waiting: the process may end without ever using it.
    this.worker.unref()
    this.done = new Promise<T>((resolve, reject) => {
      this.worker.once('message', (result: T) => {
        resolve(result)
        void this.worker.terminate()
      })
      this.worker.once('error', reject)
      this.worker.once('exit', (code) =>
        reject(new Error(`${jobs.join(' and ')} worker exit ${code}`)),
      )
    })
    this.done.catch(() => undefined)
  }

  run(file: string): Promise<T> {
    if (this.started) throw new Error('a check worker runs once')
    this.started = true
    this.worker.ref()
    this.worker.postMessage(file)
    return this.done
  }

  stop(): void {
    if (!this.started) void this.worker.terminate()
  }
}

/**
 * The jobs of each check worker. With 4 cores or more, integrity_check and the foreign-key check
 * run in a worker each. With fewer, a snapshot's checks run in one worker, in turn: they run
 * beside this thread's inventory and the hash worker, which keep two cores busy, and a second
 * check worker only added its start-up and its memory. Measured at 1 GiB on 2 cores, 3
 * alternating runs each, one worker against two: backup 2.07-2.13 s against 2.11-2.20 s;
 * again on 2026-11-30, 2 runs each: 2.42-2.46 s and 137 MiB against 2.43-2.50 s and 150 MiB.
 *
 * A restored copy's checks (`restored`: the drill's and the restore check's) are what the job
 * waits for once the copy is made, so they run in a worker each from 2 cores. Measured on
 * 2026-11-30 at 1 GiB on 2 cores, 8 pairs of runs, one worker against two: drill 2.52-3.32 s
 * (median 2.80) against 2.24-2.66 s (2.56), two faster in 8 pairs of 8; backup with
 * restore-check 3.91-4.65 s (4.34) against 4.10-4.73 s (4.23), two faster in 5 of 8. Peak RSS
 * 127-129 against 138 MiB (drill), 152-153 against 161 MiB (restore-check).
 * OMNIAI_CHECK_WORKERS=1 or 2 chooses (tests run both).
 */
export function checkWorkerJobs(cores = os.availableParallelism(), restored = false): Job[][] {
  const chosen = process.env.OMNIAI_CHECK_WORKERS
  const split = chosen === '2' || (chosen !== '1' && cores >= (restored ? 2 : 4))
  return split ? [['integrity'], ['foreign-keys']] : [['integrity', 'foreign-keys']]
}

/**
 * Check workers, or null where none can be started (integrityProblems then checks in-thread).
 * `restored`: for a restored copy (see checkWorkerJobs).
 */
function startCheckWorkers(restored = false): CheckWorkers | null {
  try {
    return new CheckWorkers(restored)
  } catch {
    return null
  }
}

/** The integrity_check and foreign-key work, started before the file it will check exists. */
class CheckWorkers {
  private readonly workers: CheckWorker<Findings>[]

  constructor(restored: boolean) {
    this.workers = []
    try {
      for (const jobs of checkWorkerJobs(undefined, restored)) {
        this.workers.push(new CheckWorker(jobs))
      }
    } catch (err) {
      // One that cannot start: those already started end too (integrityProblems then starts
      // workers of its own, or checks in-thread).
      this.stop()
      throw err
    }
  }

  async run(file: string): Promise<IntegrityFindings> {
    const [integrity, fk] = (await Promise.all(this.workers.map((w) => w.run(file)))).flat() as [
      string[],
      [string, string, number][],
    ]
    return { damage: integrity.filter((l) => l !== 'ok'), foreignKeys: countViolations(fk) }
  }

  stop(): void {
    for (const worker of this.workers) worker.stop()
  }
}

type Findings = (string[] | [string, string, number][])[]

/**
 * Copies a database file while the caller's read transaction on it is open, the way Litestream
 * snapshots: the whole file, and in WAL mode the WAL beside it, with the kernel's file copy
 * instead of one backup step per page. Returns what it did, or null where only the backup API
 * can copy (journal_mode MEMORY or OFF).
 *
 * Why the copy is one committed state, in WAL mode (see wal.c): the open read transaction holds
 * a read lock on slot K of the wal-index.
 * - K > 0 (the snapshot uses WAL frames 1..M): no writer may restart the WAL (that needs every
 *   slot 1..N), so frames 1..M stay in place; a checkpoint may write only pages of frames <= M
 *   into the main file meanwhile, and replaying the copied WAL overwrites every such page,
 *   torn or not. Frames after M that writers append are kept only up to the last commit whose
 *   checksum chain is whole, as after a crash: the copy is that commit's state, a later one.
 * - K = 0 (every frame was already in the main file): no checkpoint may run (it needs slot 0),
 *   so the main file is the snapshot, but a writer may restart the WAL while it is read. A
 *   restart changes the WAL header's salts; if the header read after the copy differs from the
 *   copied one, the copied WAL is dropped and the main file alone is the snapshot.
 * In rollback-journal modes the read transaction's SHARED lock keeps every writer out of the
 * main file until it ends.
 */
async function copyUnderReadLock(
  source: string,
  dest: string,
  journalMode: string,
  log: Log,
): Promise<string | null> {
  const mode = journalMode.toLowerCase()
  if (!['wal', 'delete', 'truncate', 'persist'].includes(mode)) return null
  const t0 = performance.now()
  await copyPrivate(source, dest)
  const ms = () => `${Math.round(performance.now() - t0)} ms`
  if (mode !== 'wal') return `file copy under a shared lock (${ms()})`
  const wal = `${source}-wal`
  const copied = await copyPrivate(wal, `${dest}-wal`).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false
      throw err
    },
  )
  if (!copied) return `file copy, no WAL file (${ms()})`
  const [before, after] = await Promise.all([walHeader(`${dest}-wal`), walHeader(wal)])
  const bytes = (await fs.stat(`${dest}-wal`)).size
  if (!before.equals(after)) {
    await fs.rm(`${dest}-wal`, { force: true })
    log.info('snapshot: the WAL restarted while it was copied; the main file alone is the snapshot')
    return `file copy, WAL restarted during the copy so not used (${ms()})`
  }
  return `file copy and its WAL (${bytes} bytes) replayed to the last whole commit (${ms()})`
}

/** The 32-byte WAL header (magic, page size, checkpoint sequence, salts, checksum), or empty. */
async function walHeader(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r').catch(() => null)
  if (!handle) return Buffer.alloc(0)
  try {
    const buf = Buffer.alloc(32)
    const { bytesRead } = await handle.read(buf, 0, 32, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

async function logDriver(log: Log): Promise<void> {
  const driver = await sqliteDriver()
  if (driver.fallback) {
    log.warning(
      `no better-sqlite3 prebuild loads on ${process.platform}-${process.arch}; using Node's built-in node:sqlite instead (same results, slower).`,
    )
  } else log.info(`SQLite driver: ${driver.name}`)
}

/**
 * Rows per page where audit rows are read in rowid order (SqliteDatabase.pagedByRowid). Measured
 * on 256k audit rows, a drill's digest pass: 721-723 ms, against 802-844 ms row by row; pages of
 * 1000 took 637-640 ms but added 20 MiB of peak RSS (pages that outlive the young generation).
 */
const ROWID_PAGE = 256
/** The names SQLite gives the rowid, unless a column has the name. */
const ROWID_NAMES = new Set(['rowid', '_rowid_', 'oid'])

export class SqliteEngine implements Engine {
  readonly name = 'sqlite'
  readonly extension = '.db'

  constructor(private readonly source: string) {}

  private async checkSource(): Promise<void> {
    await assertSqliteFile(
      this.source,
      Inputs.ConnectionString,
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
    copyFindings?: () => Promise<IntegrityFindings | null>,
    durable = true,
  ): Promise<Snapshot> {
    await this.checkSource()
    await logDriver(log)
    // Started now, they load while the file is copied (unless a copy's checks stand for them).
    const workers = copyFindings ? null : startCheckWorkers()
    try {
      return await this.snapshotWith(workers, dest, log, inspect, written, copyFindings, durable)
    } finally {
      workers?.stop()
    }
  }

  private async snapshotWith(
    workers: CheckWorkers | null,
    dest: string,
    log: Log,
    inspect: (db: Database) => Promise<Inventory>,
    written: (() => void) | undefined,
    copyFindings: (() => Promise<IntegrityFindings | null>) | undefined,
    durable: boolean,
  ): Promise<Snapshot> {
    const src = await openSqlite(this.source, { readonly: true })
    let journalMode: string
    let engineVersion: string
    let method: string | null
    try {
      // A writer in rollback-journal mode holds its lock briefly; wait for it rather than fail.
      src.exec('PRAGMA busy_timeout = 30000')
      journalMode = String(src.objects('PRAGMA journal_mode')[0]?.journal_mode ?? 'unknown')
      engineVersion = String(src.rows('SELECT sqlite_version()')[0]![0])
      // One read transaction pins one snapshot: the copy is consistent while other processes
      // keep writing (WAL readers do not block them).
      src.exec('BEGIN')
      try {
        src.rows('SELECT count(*) FROM sqlite_schema')
        method = await copyUnderReadLock(this.source, dest, journalMode, log)
        if (!method) await src.backup(dest, progressLogger(log, 'snapshot'))
      } finally {
        src.exec('COMMIT')
      }
    } finally {
      src.close()
    }
    // A backup is one self-contained file: out of WAL mode, reading it never creates or
    // needs -wal and -shm files beside it. Opening a copied WAL replays its committed frames
    // (SQLite's own recovery), and leaving WAL mode checkpoints them into the file.
    const out = await openSqlite(dest, { readonly: false })
    try {
      // No fsync of its own: the whole file is fsynced below, after this (when it is the backup).
      out.exec('PRAGMA synchronous = OFF')
      out.exec('PRAGMA journal_mode = DELETE')
    } finally {
      out.close()
    }
    await fs.rm(`${dest}-wal`, { force: true })
    await fs.rm(`${dest}-shm`, { force: true })
    log.info(`snapshot: ${method ?? 'online backup API, page by page'}`)
    written?.()
    // The file is final: its writes go to disk while the checks read it from the page cache.
    // (The caller's own fsync afterwards then finds little or nothing left to write.) A failed
    // fsync is not swallowed here: a later one may not report it again. A plaintext snapshot
    // that the caller encodes into the backup is not the backup, and is not fsynced at all.
    const syncing = durable ? fsyncFile(dest) : Promise.resolve()
    syncing.catch(() => undefined)
    const { size } = await fs.stat(this.source)
    const db = await this.openBackup(dest, workers, log)
    try {
      // The checks run on another thread while this one takes the inventory: on a kernel copy
      // of these same bytes that is checked anyway (the restore check's), or else on this file.
      let where = ''
      const checking = (copyFindings?.().catch(() => null) ?? Promise.resolve(null))
        .then((found) => {
          // Damage found in the copy may be the copy's own (a failing scratch disk): this file
          // is then read too, so that only damage of its own is ever called the source's.
          if (!found || found.damage.length) return db.integrityProblems()
          where = " (on the restore check's byte-for-byte copy of this file)"
          return found
        })
        .catch((err: unknown): IntegrityFindings => ({
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
      await syncing
      // An inventory that fails on a sound file is this tool's problem, not the data's.
      if (!inventory && findings.damage.length === 0) throw unreadable
      return {
        engineVersion,
        source: { bytes: size, journalMode, description: path.basename(this.source) },
        verified: describeFindings(findings) + where,
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
        ...(where ? { findingsOnCopy: true as const } : {}),
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

  /** Opens a backup file read-only, for inspection (with check workers already started). */
  async openBackup(
    file: string,
    workers: CheckWorkers | null = null,
    log: Pick<Log, 'warning'> | null = null,
  ): Promise<SqliteDatabase> {
    await assertSqliteFile(
      file,
      Inputs.BackupFile,
      'Fix: point backup-file at a backup written by mode backup, or leave it empty to use the newest.',
    )
    try {
      return new SqliteDatabase(
        file,
        await openSqlite(file, { readonly: true }),
        workers,
        true,
        log,
      )
    } catch (err) {
      throw new UserError(
        `${Inputs.BackupFile}: cannot open ${file} as SQLite: ${(err as Error).message}`,
      )
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
    // The backup API writes it under a rollback journal, there while the copy is under way.
    const forgetJournal = removeOnInterrupt(`${tmp}-journal`, 'partial restore')
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
            `${Inputs.BackupFile}: the restored copy fails integrity_check (${problems.slice(0, 3).join('; ')}); the live database was not touched.`,
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
            `${Inputs.ConnectionString}: ${target} belongs to uid ${live.uid} (group ${live.gid}), and this process (uid ${process.getuid?.()}) cannot give the restored file that owner, so the backend could no longer open it; the live database was not touched. Fix: run the restore as root (sudo) or as the file's owner.`,
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
      await fs.rm(`${tmp}-journal`, { force: true })
      throw err
    } finally {
      forget()
      forgetJournal()
    }
    return new SqliteDatabase(target, await openSqlite(target, { readonly: false }))
  }

  async restore(
    { path: file, decoded }: BackupRef,
    scratchDir: string,
    log: Log,
  ): Promise<Database> {
    // A decoded backup in this scratch folder is already a private copy: it is moved, not copied.
    const take = decoded === true && path.dirname(path.resolve(file)) === path.resolve(scratchDir)
    return this.restoreFile(file, scratchDir, log, take)
  }

  async restoreFile(file: string, scratchDir: string, log: Log, take = false): Promise<Database> {
    await logDriver(log)
    const restored = path.join(scratchDir, 'restored.db')
    // The runbook's `sqlite3 restored.db ".restore backup.db"`. A backup is one file in
    // rollback-journal mode that nothing else writes, so a file copy (in the kernel) gives the
    // same database as the backup API's page-by-page copy, several times faster; the checks
    // that follow read the restored copy, not the backup.
    const t0 = performance.now()
    // The checks' workers load while the file is copied. (scratchDir is the caller's folder of
    // its own, removed on interrupt as a whole.)
    const workers = startCheckWorkers(true)
    try {
      if (take) await fs.rename(file, restored)
      else await copyPrivate(file, restored, false)
      const ms = Math.round(performance.now() - t0)
      log.info(
        `restore: ${take ? 'the decoded plaintext moved into place' : 'file copy'} (${ms} ms)`,
      )
      const db = new SqliteDatabase(
        restored,
        await openSqlite(restored, { readonly: false }),
        workers,
        // Not on a worker: a restored copy is checked against its manifest, whose chunks spare
        // this thread the sums, so the worker only added a fourth busy thread on 2 cores (1M
        // audit rows, drill 1.90 s against 1.86 s in the same bench rounds).
        false,
      )
      // The copy is final: its integrity checks need nothing else, so they start now.
      db.startIntegrity()
      return db
    } catch (err) {
      workers?.stop()
      throw err
    }
  }
}

export class SqliteDatabase implements Database {
  private foreignKeysCache: ForeignKey[] | undefined
  private integrity: Promise<IntegrityFindings> | null = null

  /**
   * `workers`: check workers already started for this file (else integrityProblems starts them).
   * `fixed`: nothing writes the file while it is open here (a snapshot, a backup), so another
   * connection reads the same rows: a large audit log's are then read and encoded on a worker
   * thread (audit-worker.ts).
   */
  constructor(
    readonly file: string,
    private readonly db: SqliteConnection,
    private workers: CheckWorkers | null = null,
    private readonly fixed = false,
    /** Where a worker's failure is told (the rows are then read here: slower, not wrong). */
    private readonly log: Pick<Log, 'warning'> | null = null,
  ) {}

  async bytes(): Promise<number> {
    return (await fs.stat(this.file)).size
  }

  async close(): Promise<void> {
    this.workers?.stop()
    // Checks started ahead finish first: their folder may be removed once this returns.
    await this.integrity?.catch(() => undefined)
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
    return this.integrity ?? this.checkIntegrity()
  }

  /** Starts integrityProblems' work now; the next call to it returns this result. */
  startIntegrity(): void {
    this.integrity = this.checkIntegrity()
    this.integrity.catch(() => undefined)
  }

  private async checkIntegrity(): Promise<IntegrityFindings> {
    const workers = this.workers ?? startCheckWorkers()
    this.workers = null
    const found = workers ? await workers.run(this.file).catch(() => null) : null
    if (found) return found
    // A connection of its own: this one may be in the middle of reading rows (digestAudit lets
    // the event loop run between them).
    const db = await openSqlite(this.file, { readonly: true })
    try {
      return {
        damage: db
          .rows('PRAGMA integrity_check')
          .map((r) => String(r[0]))
          .filter((line) => line !== 'ok'),
        foreignKeys: countViolations(
          db.objects('PRAGMA foreign_key_check').map((r) => [r.table, r.parent]),
        ),
      }
    } finally {
      db.close()
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

  /**
   * The columns of `SELECT *` in order: table_info's and the generated ones (which table_info
   * leaves out), not a virtual table's hidden ones (which SELECT * leaves out).
   */
  private selectStar(table: string): string[] {
    return this.db
      .objects('SELECT name FROM pragma_table_xinfo(?) WHERE hidden <> 1 ORDER BY cid', table)
      .map((c) => String(c.name))
  }

  auditRows(table: string): AuditRows {
    const key = this.keyColumns(table)
    const rowid = key[0] === 'rowid'
    // Where a generated column comes before the key, table_info's places are one off. Old
    // manifests of such a table hold the wrong column's values as keys: their whole-table
    // sha256 and row count, which decide the check, are the same either way.
    const names = rowid ? ['rowid'] : this.selectStar(table)
    const at = key.map((k) => names.indexOf(k))
    const select = `SELECT ${rowid ? 'rowid, *' : '*'} FROM ${quoteIdent(table)}`
    const [only] = at
    if (key.length === 1 && this.pagesByRowid(table, rowid)) {
      const job = {
        file: this.file,
        select,
        rowid: quoteIdent(key[0]!),
        at: only!,
        page: ROWID_PAGE,
      }
      const here = (after: bigint | null = null) =>
        this.pagedByRowid(select, job.rowid, job.at, after)
      // Chosen by OMNIAI_AUDIT_WORKER=1, a worker that fails is an error, not a fallback: the
      // tests see it fail.
      const forced = process.env.OMNIAI_AUDIT_WORKER === '1'
      const onWorker = this.fixed && this.auditWorkerWorth(table, job.rowid)
      // A worker that failed is not a failure of the backup: its rows are read here, the same
      // digest, only slower; the log says so, so that a worker that always fails is seen.
      const fallback = (after: string | null, why: unknown) => {
        this.log?.warning(
          `audit-table ${table}: the audit log's reading thread stopped (${describeError(why)}); ${after === null ? 'its rows are' : 'the rest of its rows are'} read on the main thread instead, which is slower.`,
        )
        return inBatches(here(resumeKey(after)))
      }
      return {
        key,
        rows: onWorker ? encodedInWorker(job, forced ? null : fallback) : here(),
      }
    }
    const rows = this.db.iterate(`${select} ORDER BY ${this.orderBy(table)}`)
    return {
      key,
      rows: (function* () {
        if (at.length === 1) for (const row of rows) yield { key: keyText(row[only!]), row }
        else for (const row of rows) yield { key: at.map((i) => keyText(row[i])).join(','), row }
      })(),
    }
  }

  /**
   * Whether the rows of a table with a one-column key can be read in rowid order a page at a
   * time, with the rows and order of ORDER BY that key: the key is the rowid (`noPrimaryKey`)
   * or a column that stands for it (no index was made for the primary key, as one is for any
   * other, and for every key of a WITHOUT ROWID table). Not where a column is named rowid,
   * _rowid_ or oid (the name is then that column's, which may repeat or be null), nor where a
   * column is hidden or generated (SELECT * then holds columns that table_info does not list,
   * so the key's place in a row is not known).
   */
  private pagesByRowid(table: string, noPrimaryKey: boolean): boolean {
    // An ordinary table: a virtual one's rowids need not be unique or stable between statements.
    const kind = this.db.objects('SELECT type, wr FROM pragma_table_list(?)', table)
    if (kind.length !== 1 || kind[0]!.type !== 'table' || Number(kind[0]!.wr) !== 0) return false
    const columns = this.db.objects('SELECT name, hidden FROM pragma_table_xinfo(?)', table)
    const plain = columns.every(
      (c) => Number(c.hidden) === 0 && !ROWID_NAMES.has(String(c.name).toLowerCase()),
    )
    if (!plain) return false
    if (noPrimaryKey) return true
    return (
      this.db.rows("SELECT 1 FROM pragma_index_list(?) WHERE origin = 'pk'", table).length === 0
    )
  }

  /**
   * Whether the audit rows are many enough for a worker (AUDIT_WORKER_FROM_ROWS): the span of
   * the rowids, from the ends of the table's b-tree. OMNIAI_AUDIT_WORKER=1 or 0 decides instead
   * (the tests run both ways).
   */
  private auditWorkerWorth(table: string, rowid: string): boolean {
    const chosen = process.env.OMNIAI_AUDIT_WORKER
    if (chosen === '1' || chosen === '0') return chosen === '1'
    // Each end by a subquery of its own: SQLite reads a lone min() or max() from the b-tree's
    // end, but max() - min() in one query by scanning the whole table.
    const t = quoteIdent(table)
    const [span] = this.db.rows(
      `SELECT (SELECT max(${rowid}) FROM ${t}) - (SELECT min(${rowid}) FROM ${t})`,
    )
    return Number(span?.[0] ?? 0) + 1 >= AUDIT_WORKER_FROM_ROWS
  }

  /**
   * The rows of `select` in rowid order, a page at a time, each page after the last rowid of the
   * one before, all in one read transaction (a savepoint, which nests in one the caller holds),
   * as one statement would read them. Rowids are unique integers, never null, so the pages hold
   * each row once, in the order of ORDER BY rowid. `after`: only the rows after that rowid.
   */
  private *pagedByRowid(
    select: string,
    rowid: string,
    at: number,
    after: bigint | null = null,
  ): Iterable<AuditRow> {
    // The savepoint begins the transaction unless the caller holds one.
    const outermost = !this.db.inTransaction()
    this.db.exec('SAVEPOINT omniai_audit_pages')
    let failed = false
    try {
      // Prepared once, not again for each page: 2-3% of a digest pass.
      const next = this.db.prepared(
        `${select} WHERE ${rowid} > ? ORDER BY ${rowid} LIMIT ${ROWID_PAGE}`,
      )
      let rows =
        after === null
          ? this.db.rows(`${select} ORDER BY ${rowid} LIMIT ${ROWID_PAGE}`)
          : next(after)
      while (rows.length > 0) {
        for (const row of rows) yield { key: keyText(row[at]), row }
        if (rows.length < ROWID_PAGE) return
        rows = next(rows[rows.length - 1]![at]!)
      }
    } catch (err) {
      failed = true
      throw err
    } finally {
      this.releasePages(failed, outermost)
    }
  }

  /**
   * Ends pagedByRowid's savepoint; after a failure, quietly (it may be rolled back already).
   * `outermost`: the savepoint began the transaction.
   */
  private releasePages(failed: boolean, outermost: boolean): void {
    try {
      this.db.exec('RELEASE omniai_audit_pages')
    } catch (err) {
      // Releasing the outermost savepoint commits, and after a read of a damaged page (this
      // one's, or another statement's in the same transaction) that fails too ("database disk
      // image is malformed"), leaving the transaction open: it is rolled back, so the connection
      // is not left inside it for what comes next.
      if (outermost && this.db.inTransaction()) {
        try {
          this.db.exec('ROLLBACK')
        } catch {
          // The release's or the reading's error is the one to see.
        }
      }
      // An I/O error may have rolled the savepoint back already: the reading's error is the one
      // to see.
      if (!failed) throw err
    }
  }
}

/**
 * The rowid after which the audit worker's rows go on here: the key text of its last row (a
 * rowid is an integer). Anything else is not a place to go on from: the reading fails.
 */
function resumeKey(after: string | null): bigint | null {
  if (after === null) return null
  if (!/^-?\d{1,19}$/.test(after))
    throw new Error(`audit-log worker: cannot go on after key ${after}`)
  return BigInt(after)
}

/**
 * Rows read here, in batches of YIELD_ROWS with a turn of the event loop between them (as
 * digestAudit reads a synchronous source): the rows the audit worker did not send.
 */
async function* inBatches(rows: Iterable<AuditRow>): AsyncIterable<AuditRow[]> {
  let batch: AuditRow[] = []
  for (const r of rows) {
    batch.push(r)
    if (batch.length === YIELD_ROWS) {
      yield batch
      batch = []
      await new Promise(setImmediate)
    }
  }
  if (batch.length > 0) yield batch
}
