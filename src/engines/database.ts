/**
 * The engine-neutral view of a database, which the checks read: its own file, so that the
 * manifest and the checks can name an engine and open a database without importing the
 * engines (no import cycle between engines/, checks/ and manifest/).
 */
import type { AuditRows } from '../checks/audit.js'
import type { Conversations, IntegrityFindings, Schema } from '../checks/inventory.js'

export type EngineName = 'sqlite' | 'postgres'

/** An open database (a backup opened read-only, or a restored scratch copy) that can be inspected. */
export interface Database {
  /** Size on disk in bytes. */
  bytes(): Promise<number>
  /** Damage (one line each; empty when sound) and foreign-key violations, counted per table pair. */
  integrityProblems(): Promise<IntegrityFindings>
  schema(): Promise<Schema>
  rowCounts(tables: string[]): Promise<Record<string, number>>
  /** The `count` most recent conversations with the digests of everything hanging off them. */
  recentConversations(table: string, count: number): Promise<Conversations>
  /** The same digests for the given conversation ids, to compare with a manifest. */
  conversations(table: string, ids: string[]): Promise<Conversations>
  /** Every row of the audit table in key order, for digestAudit. */
  auditRows(table: string): AuditRows
  /** Where the database is, for tests handed the restored copy: `sqlite:///abs/path` or a postgres URL. */
  url(): string
  close(): Promise<void>
}
