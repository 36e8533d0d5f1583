/**
 * What a database holds, in engine-neutral terms. The manifest written at backup time stores
 * one of these; verify and drill compute another from the backup or the restored copy, and the
 * checks compare the two. The checks never know which engine produced either.
 */

export interface Column {
  name: string
  type: string
  notNull: boolean
  default: string | null
  /** Position in the primary key, 0 when not part of it. */
  pk: number
}

export interface Table {
  name: string
  columns: Column[]
}

export interface Index {
  name: string
  table: string
  unique: boolean
  columns: string[]
  /** The index's definition; null for indexes the engine creates itself (e.g. for UNIQUE). */
  sql: string | null
}

export interface SchemaObject {
  name: string
  table: string
  sql: string
}

export interface Schema {
  tables: Table[]
  indexes: Index[]
  triggers: SchemaObject[]
  views: SchemaObject[]
  /** PostgreSQL: every constraint (primary, unique, foreign, check), by `table.name`. */
  constraints?: SchemaObject[]
  /** PostgreSQL: sequences. */
  sequences?: SchemaObject[]
}

/** Digest of a run of consecutive audit rows, so a difference can be located. */
export interface AuditChunk {
  firstKey: string
  lastKey: string
  rows: number
  sha256: string
  /** Sums that locate a single deleted, added or altered row (see checks/audit.ts). */
  keySum?: string
  hashSum?: string
  weightedSum?: string
  /** `utf8`: the sums are over text keys turned into numbers; absent: integer keys. */
  keyCoding?: 'utf8'
}

export interface AuditDigest {
  table: string
  /** Columns the rows are ordered and identified by. */
  key: string[]
  rows: number
  lastKey: string | null
  /** Hash over every row, in key order. */
  sha256: string
  chunks: AuditChunk[]
}

export interface RelatedDigest {
  table: string
  /** The foreign-key path from the conversation, e.g. `messages.conversation_id`. */
  via: string
  rows: number
  sha256: string
}

export interface ConversationDigest {
  id: string
  sha256: string
  related: RelatedDigest[]
}

export interface Conversations {
  table: string
  key: string
  /** The column recency was taken from. */
  orderBy: string
  items: ConversationDigest[]
}

/**
 * Rows whose foreign key points at no row, counted per table pair (and constraint, where the
 * engine names one). A data-quality finding, not damage: OmniAI never turns SQLite's
 * foreign-key enforcement on, and some of its deletes do not cascade. Never row values.
 */
export interface ForeignKeyViolation {
  table: string
  parent: string
  rows: number
  /** PostgreSQL: the constraint's name. */
  constraint?: string
}

/** What the integrity checks found in a database: damage, and data-quality findings. */
export interface IntegrityFindings {
  /** integrity_check lines (SQLite), invalid indexes and sequences behind (PostgreSQL). */
  damage: string[]
  foreignKeys: ForeignKeyViolation[]
  /** PostgreSQL: constraints created NOT VALID (`table.constraint`), which a dump keeps so. */
  notValid?: string[]
}

export interface Inventory {
  schema: Schema
  rowCounts: Record<string, number>
  audit: AuditDigest | null
  conversations: Conversations | null
  /**
   * The source's foreign-key violations when the backup was taken; a restored copy must have
   * exactly these. Absent in manifests written before they were recorded (a backup was then
   * refused when there were any), which means none.
   */
  foreignKeyViolations?: ForeignKeyViolation[]
  /** PostgreSQL: NOT VALID constraints in the source. Absent means none. */
  notValid?: string[]
}

/** What the inventory should cover; table names come from inputs. */
export interface InventoryOptions {
  conversationsTable: string | null
  auditTable: string | null
  spotCheckCount: number
}

/** The size of what a mode looked at, for the report. */
export interface DatabaseFacts {
  bytes: number
  tables: number
  rows: number
}
