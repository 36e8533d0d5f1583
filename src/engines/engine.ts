import type { Check } from '../checks/checks.js'
import type { DatabaseFacts, IntegrityFindings, Inventory } from '../checks/inventory.js'
import type { Database, EngineName } from './database.js'
import type { Log } from '../util/log.js'
import type { Manifest } from '../manifest/manifest.js'

export type { Database, EngineName } from './database.js'

/** What an engine is given: its own settings, never the whole of a mode's options. */
export interface EngineOptions {
  /** The database: a SQLite file path or a PostgreSQL URL. */
  connectionString: string
  /** postgres drill: the server to restore into (a service container), never the source. */
  restoreConnectionString: string | null
  /** postgres: a folder holding pg_dump and pg_restore, searched first. */
  pgBinDir: string | null
  /** postgres: parallel jobs for pg_dump (directory format) and pg_restore. */
  jobs: number
}

/** Where OmniAI keeps logins, and the column that says until when each is valid. */
export const SESSION_TABLES = ['sessions', 'user_sessions']
export const SESSION_EXPIRY_COLUMNS = ['expires_at', 'expires', 'expiry', 'expires_on']

/** A backup file and the manifest written beside it. */
export interface BackupRef {
  path: string
  manifest: Manifest
  /**
   * `path` is plaintext this job decoded into the scratch folder a restore is given (its own,
   * private file, proven against the manifest, that nothing else reads): an engine that restores
   * by copying the file may move it into place instead.
   */
  decoded?: boolean
}

export interface Snapshot {
  /** Engine's own version, e.g. SQLite 3.50.4. */
  engineVersion: string
  source: { bytes: number; journalMode?: string; description: string; systemIdentifier?: string }
  /** Version of the dump tool that wrote the backup (pg_dump), when there is one. */
  toolVersion?: string
  /** What proved the snapshot sound before it was kept, e.g. "integrity_check ok". */
  verified: string
  /** What the manifest records, taken from exactly the data the backup holds. */
  inventory: Inventory
  /**
   * What integrity_check found wrong with the source: the copy was still taken (a damaged
   * database is an emergency, not a reason to keep nothing) and is kept marked damaged.
   */
  damage: string[]
  /**
   * The integrity and foreign-key findings are the restore check's, read on its kernel copy of
   * these bytes, not on this file: one reading, so the restore check has nothing to compare
   * them with.
   */
  findingsOnCopy?: true
}

export interface Engine {
  readonly name: EngineName
  /** File extension of a backup, with the dot. */
  readonly extension: string
  /** Opens the live source read-only (to validate inputs against it); UserError naming the input if it cannot. */
  openSource(): Promise<Database>
  /**
   * Writes a consistent snapshot of the live source database to `dest` (a new path), and calls
   * `inspect` on a Database that sees exactly the data the snapshot holds. Throws, leaving
   * whatever it wrote at `dest` for the caller to remove, when the snapshot is not sound.
   */
  snapshot(
    dest: string,
    log: Log,
    inspect: (db: Database) => Promise<Inventory>,
    /** Called once the file at `dest` will not change any more (it may be hashed meanwhile). */
    written?: () => void,
    /**
     * The integrity findings of a byte-for-byte copy of `dest` that is checked anyway (the
     * restore check's scratch copy, made once `written` has been called): an engine whose
     * integrity checks read the file takes these instead of reading the same bytes twice, and
     * checks `dest` itself only when this gives null (the copy could not be made or checked).
     */
    copyFindings?: () => Promise<IntegrityFindings | null>,
    /**
     * Whether `dest` is the backup (default true): an engine that fsyncs what it wrote does so
     * only then (the caller fsyncs a backup in any case). False for a plaintext snapshot in
     * scratch-dir that the caller encodes into the backup and then removes.
     */
    durable?: boolean,
  ): Promise<Snapshot>
  /** The checks that prove a backup whole and readable without restoring it; changes nothing. */
  verifyBackup(
    backup: BackupRef,
    log: Log,
  ): Promise<{ checks: Check[]; database: DatabaseFacts | null }>
  /** How the live database is named, as the restore confirmation must repeat it. */
  liveName(): string
  /** Whether the live database exists (a restore onto a new machine has none). */
  liveExists(): Promise<boolean>
  /** Other processes or sessions using the live database, one line each; empty when none. */
  liveUsers(): Promise<string[]>
  /**
   * The runbook's "ensure no active user sessions": unexpired rows of the app's sessions table
   * at `now`, or null when the live database has no such table (or no expiry column).
   */
  liveSessions(now: Date): Promise<{ table: string; active: number } | null>
  /**
   * Replaces the live database with a verified backup, so that a failure part-way leaves the
   * old data in place, and opens the result.
   */
  replaceLive(backup: BackupRef, log: Log): Promise<Database>
  /** Restores a backup into an isolated place (`scratchDir` is an empty folder of its own) and opens it. */
  restore(backup: BackupRef, scratchDir: string, log: Log): Promise<Database>
  /**
   * The same from the backup file alone, for an engine whose restore needs nothing else (SQLite:
   * a file copy): a restore check can then begin while the manifest is still being made, and
   * the restored copy's integrity checks start at once.
   */
  restoreFile?(file: string, scratchDir: string, log: Log): Promise<Database>
}
