/**
 * SQL shared by the engines for the spot-check: which rows hang off a conversation, found by
 * following foreign keys backwards (conversation → messages → attachments). Both engines speak
 * the same SQL here; they differ only in how a table is named and how a parameter is written.
 */
import { RowHasher } from '../checks/digest.js'

/** Columns that say when a conversation was last active, most telling first. */
export const RECENCY_COLUMNS = [
  'updated_at',
  'updatedAt',
  'last_message_at',
  'created_at',
  'createdAt',
]

/** How far down foreign keys the spot-check follows (conversation → message → attachment). */
export const MAX_FK_DEPTH = 3

/** A single-column foreign key: child.from references parent.to. */
export interface ForeignKey {
  child: string
  from: string
  parent: string
  to: string
}

export interface RelatedQuery {
  table: string
  /** The path from the conversation, e.g. `messages.conversation_id → message_attachments.message_id`. */
  via: string
  /** Selects the table's rows that belong to one conversation, in key order; one parameter: the conversation's key. */
  sql: string
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

export interface SqlDialect {
  /** The table as it is written in SQL, quoted (and schema-qualified where needed). */
  table(name: string): string
  /** ORDER BY list that puts the table's rows in key order. */
  orderBy(name: string): string
  /** The one parameter placeholder (`?` or `$1`). */
  param: string
}

/** Every table reachable from `root` by following foreign keys backwards, with its query. */
export function relatedQueries(
  root: string,
  rootKey: string,
  foreignKeys: ForeignKey[],
  sql: SqlDialect,
): RelatedQuery[] {
  const queries: RelatedQuery[] = []
  const walk = (
    table: string,
    selectKeys: (col: string) => string,
    via: string[],
    depth: number,
  ) => {
    if (depth > MAX_FK_DEPTH) return
    for (const fk of foreignKeys.filter((k) => k.parent === table)) {
      if (fk.child === root || via.some((v) => v.startsWith(`${fk.child}.`))) continue
      const where = `${quoteIdent(fk.from)} IN (${selectKeys(fk.to)})`
      const path = [...via, `${fk.child}.${fk.from}`]
      queries.push({
        table: fk.child,
        via: path.join(' → '),
        sql: `SELECT * FROM ${sql.table(fk.child)} WHERE ${where} ORDER BY ${sql.orderBy(fk.child)}`,
      })
      walk(
        fk.child,
        (col) => `SELECT ${quoteIdent(col)} FROM ${sql.table(fk.child)} WHERE ${where}`,
        path,
        depth + 1,
      )
    }
  }
  walk(
    root,
    (col) =>
      `SELECT ${quoteIdent(col)} FROM ${sql.table(root)} WHERE ${quoteIdent(rootKey)} = ${sql.param}`,
    [],
    1,
  )
  return queries
}

export function hashRows(rows: Iterable<readonly unknown[]>): { rows: number; sha256: string } {
  const hasher = new RowHasher()
  for (const row of rows) hasher.add(row)
  return { rows: hasher.count, sha256: hasher.digest() }
}
