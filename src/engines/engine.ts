import type { AuditRows } from '../audit.js'
import type { Conversations, Schema } from '../inventory.js'
import type { Log } from '../log.js'

export type EngineName = 'sqlite' | 'postgres'

/** An open database (a backup opened read-only, or a restored scratch copy) that can be inspected. */
export interface Database {
  /** Size on disk in bytes. */
  bytes(): Promise<number>
  /** Integrity and foreign-key problems, one line each; empty when sound. */
  integrityProblems(): Promise<string[]>
  schema(): Promise<Schema>
  rowCounts(tables: string[]): Promise<Record<string, number>>
  /** The `count` most recent conversations with the digests of everything hanging off them. */
  recentConversations(table: string, count: number): Promise<Conversations>
  /** The same digests for the given conversation ids, to compare with a manifest. */
  conversations(table: string, ids: string[]): Promise<Conversations>
  /** Every row of the audit table in key order, for digestAudit. */
  auditRows(table: string): AuditRows
  close(): Promise<void>
}

export interface Snapshot {
  /** Engine's own version, e.g. SQLite 3.50.4. */
  engineVersion: string
  source: { bytes: number; journalMode?: string; description: string }
}

export interface Engine {
  readonly name: EngineName
  /** File extension of a backup, with the dot. */
  readonly extension: string
  /** Opens the live source read-only (to validate inputs against it); UserError naming the input if it cannot. */
  openSource(): Promise<Database>
  /** Writes a consistent snapshot of the live source database to `dest`, a new file. */
  snapshot(dest: string, log: Log): Promise<Snapshot>
  /** Opens a backup file for inspection without changing it. */
  openBackup(file: string): Promise<Database>
  /** Restores a backup into `scratchDir`, an empty folder of its own, and opens the result. */
  restore(file: string, scratchDir: string, log: Log): Promise<Database>
}
