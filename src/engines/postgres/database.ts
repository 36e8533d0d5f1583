/**
 * An open PostgreSQL database as the checks see it (`Database`): the source inside pg_dump's
 * snapshot, or a drill's restored scratch copy; schema, row counts, the spot-check's and the
 * audit log's digests, the integrity findings, each query on a session of its own where that
 * is faster.
 */
import { Inputs } from '../../options/inputs.js'
import pg from 'pg'
import { digestAudit, type AuditRows } from '../../checks/audit.js'
import { UserError } from '../../util/errors.js'
import type {
  AuditDigest,
  Conversations,
  ConversationDigest,
  ForeignKeyViolation,
  Index,
  IntegrityFindings,
  Schema,
  SchemaObject,
  Table,
} from '../../checks/inventory.js'
import { type Database } from '../engine.js'
import { type PgTarget } from './tools.js'
import {
  INTEGER_KEY_TYPES,
  SERVER_DIGEST_MIN_VERSION_NUM,
  SERVER_HASHING,
  serverAuditDigest,
} from './audit.js'
import {
  hashRows,
  quoteIdent,
  RECENCY_COLUMNS,
  relatedQueries,
  type ForeignKey,
  type SqlDialect,
} from '../related.js'
import { FETCH_ROWS, USER_SCHEMAS, displayName } from './session.js'

export interface TableRef {
  schema: string
  name: string
  /** How inputs, manifests and reports name it: bare in public, schema-qualified elsewhere. */
  display: string
}

export interface PgDatabaseOptions {
  /** Opens another session on the same data (for a snapshot: importing it), for checks side by side. */
  side?: () => Promise<PgDatabase>
  /** server_version_num: the server's own audit digest needs 11 or later. */
  serverVersionNum?: number
  /**
   * A restored copy: the audit digest of the manifest it is checked against, whose hashing it
   * follows (like with like). Absent for a live database, which takes the server's digest.
   */
  manifestAudit?: AuditDigest | null
  /** A side session in its own snapshot transaction: ended without waiting for a COMMIT. */
  closeInTransaction?: boolean
}

/**
 * Sessions a restored copy's audit-log digest is spread over (serverAuditDigest), each taking
 * part of the key range.
 */
const AUDIT_SESSIONS = 2

export class PgDatabase implements Database {
  private tablesCache: Map<string, TableRef> | undefined
  private keyCache = new Map<string, string[]>()
  private foreignKeysCache: ForeignKey[] | undefined
  private prestarted: { table: string; digest: Promise<AuditDigest> } | null = null
  /** Settled once the prestarted digest has what it needs from this session (or has failed). */
  private auditStarted: Promise<void> | null = null
  /** Whether this role may read pg_stat_activity (sessionsNamed). */
  private seesSessions: Promise<boolean> | undefined
  private countsStarted: Promise<Record<string, number>> | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly client: pg.Client,
    private readonly target: PgTarget,
    /** True inside the snapshot transaction pg_dump shares; cursors then need no BEGIN of their own. */
    private readonly inTransaction: boolean,
    private readonly onClose: () => Promise<void> = async () => undefined,
    private readonly options: PgDatabaseOptions = {},
  ) {}

  /**
   * Runs `fn` on up to `count` side sessions, as many as can be had (closed after), else on this
   * one: also when the server refuses another session (a role's CONNECTION LIMIT,
   * max_connections), as before side sessions existed; it is slower, never a failure.
   */
  private async onSides<T>(count: number, fn: (dbs: PgDatabase[]) => Promise<T>): Promise<T> {
    const open = this.options.side
    if (!open) return fn([this])
    const opened = await Promise.allSettled(Array.from({ length: count }, () => open()))
    const sides = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
    try {
      return await fn(sides.length ? sides : [this])
    } finally {
      await Promise.all(sides.map((side) => side.client.end().catch(() => undefined)))
    }
  }

  /** onSides with one session. */
  private onSide<T>(fn: (db: PgDatabase) => Promise<T>): Promise<T> {
    return this.onSides(1, ([db]) => fn(db!))
  }

  /**
   * Whether the server digests `table` itself: an integer primary key of one column on
   * PostgreSQL 11 or later, and, on a restored copy, a manifest digest made the same way.
   */
  private async serverDigests(table: string): Promise<boolean> {
    const expected = this.options.manifestAudit
    if (expected !== undefined && expected?.hashing !== SERVER_HASHING) return false
    if ((this.options.serverVersionNum ?? 0) < SERVER_DIGEST_MIN_VERSION_NUM) return false
    const key = await this.keyColumns(table)
    if (key.length !== 1) return false
    const type = (await this.schema()).tables
      .find((t) => t.name === table)
      ?.columns.find((c) => c.name === key[0])?.type
    return type !== undefined && INTEGER_KEY_TYPES.has(type)
  }

  /**
   * A restored copy checked against a manifest whose audit digest the server makes: starts that
   * digest now, in a session of its own, with the manifest's chunk boundaries.
   */
  prestartAudit(): void {
    const expected = this.options.manifestAudit
    if (!expected || expected.hashing !== SERVER_HASHING) return
    const boundaries = expected.chunks.map((c) => c.firstKey)
    let ready!: () => void
    // The counts' session is this one, which the digest's start needs first (the key and its
    // type, the table's name): the counts wait for that, not the other way round.
    this.auditStarted = new Promise<void>((resolve) => (ready = resolve))
    const digest = (async () => {
      if (!(await this.serverDigests(expected.table))) {
        // The restored table lost its integer key: the digest as the manifest's cannot be made.
        throw new UserError(
          `${expected.table}: the restored copy has no single integer primary key, which the manifest's audit-log digest was made by`,
        )
      }
      const sqlName = await this.sqlName(expected.table)
      const key = (await this.keyColumns(expected.table))[0]!
      ready()
      // Two sessions, each digesting half the key range: the restore is over, the server has
      // nothing else to do but the other checks, which end long before the digest.
      return this.onSides(AUDIT_SESSIONS, (dbs) =>
        serverAuditDigest(
          dbs.map((db) => (text: string, values?: unknown[]) => db.rows(text, values)),
          expected.table,
          sqlName,
          key,
          boundaries,
        ),
      )
    })()
    digest.catch(() => undefined)
    digest.then(ready, ready)
    this.prestarted = { table: expected.table, digest }
  }

  /**
   * How many sessions named `applicationName` the server shows now, or null where this role may
   * not read pg_stat_activity. Asked first, not tried: an error here would abort the transaction
   * whose snapshot pg_dump and the checks share (and other queries of this session come between
   * any two of these, so a savepoint could not catch it).
   */
  async sessionsNamed(applicationName: string): Promise<number | null> {
    this.seesSessions ??= this.rows(
      `SELECT has_table_privilege('pg_catalog.pg_stat_activity', 'SELECT')
              AND has_function_privilege('pg_catalog.pg_stat_clear_snapshot()', 'EXECUTE')`,
    ).then((r) => r[0]?.[0] === 't')
    if (!(await this.seesSessions)) return null
    // A transaction reads pg_stat_activity once and keeps what it read; now, not then.
    await this.rows('SELECT pg_stat_clear_snapshot()')
    const [[n]] = (await this.rows(
      'SELECT count(*)::text FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    )) as [[string]]
    return Number(n)
  }

  /** One query at a time on this session, as the checks run side by side (pg 8 warns, pg 9 refuses). */
  private rows(text: string, values: unknown[] = []): Promise<string[][]> {
    const run = this.queue.then(() => this.client.query({ text, values, rowMode: 'array' }))
    this.queue = run.catch(() => undefined)
    return run.then((r) => r.rows as string[][])
  }

  private async tables(): Promise<Map<string, TableRef>> {
    if (this.tablesCache) return this.tablesCache
    const rows = await this.rows(
      `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${USER_SCHEMAS} ORDER BY 1, 2`,
    )
    this.tablesCache = new Map(
      rows.map(([schema, name]) => {
        const display = schema === 'public' ? name! : `${schema}.${name}`
        return [display, { schema: schema!, name: name!, display }]
      }),
    )
    return this.tablesCache
  }

  private async sqlName(display: string): Promise<string> {
    const t = (await this.tables()).get(display)
    if (!t) throw new UserError(`table "${display}" is not in the database`)
    return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`
  }

  async bytes(): Promise<number> {
    return Number((await this.rows('SELECT pg_database_size(current_database())'))[0]![0])
  }

  url(): string {
    return this.target.url
  }

  async close(): Promise<void> {
    // A digest still running in its own session ends before the scratch database is dropped.
    await this.prestarted?.digest.catch(() => undefined)
    await this.countsStarted?.catch(() => undefined)
    if (!this.inTransaction || this.options.closeInTransaction)
      await this.client.end().catch(() => undefined)
    await this.onClose()
  }

  /** In a session of its own where there can be one: it reads whole tables (foreign keys). */
  async integrityProblems(): Promise<IntegrityFindings> {
    return this.onSide((db) => db.integrityHere())
  }

  private async integrityHere(): Promise<IntegrityFindings> {
    const problems: string[] = []
    for (const [ix] of await this.rows(
      'SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid',
    )) {
      problems.push(`index ${ix} is not valid`)
    }
    const notValid = (
      await this.rows(
        `SELECT n.nspname, c.relname, k.conname FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT k.convalidated AND ${USER_SCHEMAS} ORDER BY 1, 2, 3`,
      )
    ).map(([schema, table, name]) => `${displayName(schema!, table!)}.${name}`)
    // A sequence behind its column's maximum hands out ids that already exist: after a bad
    // restore, the first insert fails with a duplicate key.
    const owned = await this.rows(
      `SELECT d.objid::regclass::text, d.refobjid::regclass::text, a.attname, s.last_value::text
       FROM pg_depend d
       JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
       JOIN pg_sequences s ON s.schemaname = (SELECT nspname FROM pg_namespace WHERE oid = sc.relnamespace) AND s.sequencename = sc.relname
       WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')`,
    )
    for (const [seq, table, column, last] of owned) {
      const [max] = (await this.rows(`SELECT max(${quoteIdent(column!)})::text FROM ${table}`))[0]!
      if (max !== null && max !== undefined && (last === null || BigInt(max) > BigInt(last!))) {
        problems.push(
          `sequence ${seq} is at ${last ?? 'its start'}, behind max(${table}.${column}) = ${max}`,
        )
      }
    }
    return { damage: problems, foreignKeys: await this.foreignKeyViolations(), notValid }
  }

  /**
   * Rows whose foreign key points at no row, per constraint: possible under a NOT VALID
   * constraint, or after triggers were disabled (session_replication_role = replica, ALTER
   * TABLE ... DISABLE TRIGGER ALL). MATCH SIMPLE: a key with a NULL in it references nothing.
   */
  private async foreignKeyViolations(): Promise<ForeignKeyViolation[]> {
    const constraints = await this.rows(
      `SELECT k.conname, cn.nspname, c.relname, pn.nspname, p.relname,
              (SELECT json_agg(a.attname ORDER BY u.i) FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n)::text,
              (SELECT json_agg(a.attname ORDER BY u.i) FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n)::text
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
       WHERE k.contype = 'f' AND ${USER_SCHEMAS.replace(/\bn\./g, 'cn.')} ORDER BY 2, 3, 1`,
    )
    const found: ForeignKeyViolation[] = []
    for (const [name, cs, c, ps, p, fromJson, toJson] of constraints) {
      const from = JSON.parse(fromJson!) as string[]
      const to = JSON.parse(toJson!) as string[]
      const child = `${quoteIdent(cs!)}.${quoteIdent(c!)}`
      const parent = `${quoteIdent(ps!)}.${quoteIdent(p!)}`
      const [[count]] = (await this.rows(
        `SELECT count(*)::text FROM ${child} c WHERE ${from.map((f) => `c.${quoteIdent(f)} IS NOT NULL`).join(' AND ')}
         AND NOT EXISTS (SELECT 1 FROM ${parent} p WHERE ${from.map((f, i) => `p.${quoteIdent(to[i]!)} = c.${quoteIdent(f)}`).join(' AND ')})`,
      )) as [[string]]
      if (Number(count) > 0) {
        found.push({
          table: displayName(cs!, c!),
          parent: displayName(ps!, p!),
          constraint: name!,
          rows: Number(count),
        })
      }
    }
    return found
  }

  async schema(): Promise<Schema> {
    const tables = await this.tables()
    const display = (schema: string, name: string) =>
      schema === 'public' ? name : `${schema}.${name}`
    const columns = await this.rows(
      `SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
              pg_get_expr(d.adbin, d.adrelid), coalesce(array_position(pk.conkey, a.attnum), 0)::text
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN pg_constraint pk ON pk.conrelid = a.attrelid AND pk.contype = 'p'
       WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ${USER_SCHEMAS}
       ORDER BY n.nspname, c.relname, a.attnum`,
    )
    const byTable = new Map<string, Table>(
      [...tables.keys()].map((t) => [t, { name: t, columns: [] }]),
    )
    for (const [schema, table, name, type, notNull, dflt, pk] of columns) {
      byTable.get(display(schema!, table!))?.columns.push({
        name: name!,
        type: type!,
        notNull: notNull === 'true',
        default: dflt ?? null,
        pk: Number(pk),
      })
    }
    const indexes: Index[] = (
      await this.rows(
        `SELECT n.nspname, ic.relname, tn.nspname, t.relname, i.indisunique::text,
                array_to_json(array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k))::text,
                pg_get_indexdef(i.indexrelid)
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
         JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE ${USER_SCHEMAS} ORDER BY 1, 2`,
      )
    ).map(([schema, name, tschema, table, unique, cols, sql]) => ({
      name: display(schema!, name!),
      table: display(tschema!, table!),
      unique: unique === 'true',
      columns: JSON.parse(cols!) as string[],
      sql: sql!,
    }))
    const objects = async (query: string): Promise<SchemaObject[]> =>
      (await this.rows(query)).map(([schema, table, name, sql]) => ({
        name: `${display(schema!, table!)}.${name}`,
        table: display(schema!, table!),
        sql: sql!,
      }))
    const triggers = await objects(
      `SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE NOT t.tgisinternal AND ${USER_SCHEMAS} ORDER BY 1, 2, 3`,
    )
    const constraints = await objects(
      // Validity is tracked apart (integrityProblems' notValid): a constraint's definition is the
      // same whether or not it was created NOT VALID.
      `SELECT n.nspname, c.relname, k.conname, regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${USER_SCHEMAS} ORDER BY 1, 2, 3`,
    )
    const views = (
      await this.rows(
        `SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('v', 'm') AND ${USER_SCHEMAS} ORDER BY 1, 2`,
      )
    ).map(([schema, name, sql]) => ({ name: display(schema!, name!), table: '', sql: sql! }))
    const sequences = (
      await this.rows(
        `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'S' AND ${USER_SCHEMAS} ORDER BY 1, 2`,
      )
    ).map(([schema, name]) => ({ name: display(schema!, name!), table: '', sql: '' }))
    return { tables: [...byTable.values()], indexes, triggers, views, constraints, sequences }
  }

  async rowCounts(tables: string[]): Promise<Record<string, number>> {
    const started = await this.countsStarted?.catch(() => null)
    if (started && tables.every((t) => t in started)) {
      return Object.fromEntries(tables.map((t) => [t, started[t]!]))
    }
    return this.countHere(tables)
  }

  /**
   * A restored copy: counts every table's rows now, in this session, so that it does not sit
   * idle while the drill waits for the audit digest from another.
   */
  prestartCounts(): void {
    this.countsStarted = (async () => {
      await this.auditStarted
      return this.countHere([...(await this.tables()).keys()])
    })()
    this.countsStarted.catch(() => undefined)
  }

  private async countHere(tables: string[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = {}
    for (const t of tables)
      counts[t] = Number((await this.rows(`SELECT count(*) FROM ${await this.sqlName(t)}`))[0]![0])
    return counts
  }

  /** Primary-key columns in key order. */
  private async keyColumns(display: string): Promise<string[]> {
    const cached = this.keyCache.get(display)
    if (cached) return cached
    const rows = await this.rows(
      `SELECT a.attname FROM pg_constraint k
       JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, pos) ON true
       JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
       WHERE k.conrelid = $1::regclass AND k.contype = 'p' ORDER BY u.pos`,
      [await this.sqlName(display)],
    )
    const key = rows.map((r) => r[0]!)
    this.keyCache.set(display, key)
    return key
  }

  private async orderBy(display: string): Promise<string> {
    const key = await this.keyColumns(display)
    // Without a primary key, every column in order: deterministic, if slower.
    if (key.length) return key.map(quoteIdent).join(', ')
    const n = (await this.schema()).tables.find((t) => t.name === display)?.columns.length ?? 1
    return Array.from({ length: n }, (_, i) => String(i + 1)).join(', ')
  }

  private async foreignKeys(): Promise<ForeignKey[]> {
    if (this.foreignKeysCache) return this.foreignKeysCache
    const rows = await this.rows(
      `SELECT cn.nspname, c.relname, ca.attname, pn.nspname, p.relname, pa.attname
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
       JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
       JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
       WHERE k.contype = 'f' AND array_length(k.conkey, 1) = 1`,
    )
    const d = (schema: string, name: string) => (schema === 'public' ? name : `${schema}.${name}`)
    this.foreignKeysCache = rows.map(([cs, c, from, ps, p, to]) => ({
      child: d(cs!, c!),
      from: from!,
      parent: d(ps!, p!),
      to: to!,
    }))
    return this.foreignKeysCache
  }

  private async conversationKey(table: string): Promise<string> {
    const key = await this.keyColumns(table)
    if (key.length !== 1) {
      throw new UserError(
        `${Inputs.ConversationsTable}: ${table} has no single-column primary key, which the spot-check needs to name conversations. Fix: set conversations-table to the table of conversations, or none.`,
      )
    }
    return key[0]!
  }

  async recentConversations(table: string, count: number): Promise<Conversations> {
    const key = await this.conversationKey(table)
    const names = (await this.schema()).tables
      .find((t) => t.name === table)!
      .columns.map((c) => c.name)
    const recency = RECENCY_COLUMNS.find((c) => names.includes(c)) ?? key
    const ids = (
      await this.rows(
        `SELECT ${quoteIdent(key)}::text FROM ${await this.sqlName(table)} ORDER BY ${quoteIdent(recency)} DESC NULLS LAST, ${quoteIdent(key)} DESC LIMIT $1`,
        [count],
      )
    ).map((r) => r[0]!)
    return { ...(await this.conversations(table, ids)), orderBy: recency }
  }

  async conversations(table: string, ids: string[]): Promise<Conversations> {
    const key = await this.conversationKey(table)
    const names = new Map<string, string>()
    const orders = new Map<string, string>()
    for (const fk of await this.foreignKeys()) {
      for (const t of [fk.child, fk.parent, table]) {
        if (!names.has(t) && (await this.tables()).has(t)) {
          names.set(t, await this.sqlName(t))
          orders.set(t, await this.orderBy(t))
        }
      }
    }
    names.set(table, await this.sqlName(table))
    const dialect: SqlDialect = {
      table: (t) => names.get(t) ?? quoteIdent(t),
      orderBy: (t) => orders.get(t) ?? '1',
      param: '$1',
    }
    const related = relatedQueries(table, key, await this.foreignKeys(), dialect)
    const items: ConversationDigest[] = []
    for (const id of ids) {
      const rows = await this.rows(
        `SELECT * FROM ${names.get(table)} WHERE ${quoteIdent(key)}::text = $1`,
        [id],
      )
      const digests = []
      for (const q of related)
        digests.push({ table: q.table, via: q.via, ...hashRows(await this.rows(q.sql, [id])) })
      items.push({
        id,
        sha256: rows.length === 0 ? 'missing' : hashRows(rows).sha256,
        related: digests,
      })
    }
    return { table, key, orderBy: key, items }
  }

  auditRows(table: string): AuditRows {
    const key: string[] = []
    return {
      key,
      rows: this.streamAudit(table, key),
      digest: async (boundaries) => {
        const expected = this.options.manifestAudit
        if (
          this.prestarted?.table === table &&
          expected &&
          JSON.stringify(boundaries) === JSON.stringify(expected.chunks.map((c) => c.firstKey))
        ) {
          return this.prestarted.digest
        }
        if (await this.serverDigests(table)) {
          const k = (await this.keyColumns(table))[0]!
          return serverAuditDigest(
            (text, values) => this.rows(text, values),
            table,
            await this.sqlName(table),
            k,
            boundaries,
          )
        }
        // Rows streamed to Node and hashed there (checks/audit.ts): keys that are not one
        // integer, and restored copies of manifests that were digested so.
        return digestAudit(table, { key, rows: this.streamAudit(table, key) }, boundaries)
      },
    }
  }

  /** Rows in key order through a cursor: memory stays flat however long the log is. */
  private async *streamAudit(table: string, key: string[]) {
    const sqlName = await this.sqlName(table)
    key.push(...(await this.keyColumns(table)))
    const columns = (await this.schema()).tables
      .find((t) => t.name === table)!
      .columns.map((c) => c.name)
    const at = key.map((k) => columns.indexOf(k))
    let position = 0
    const cursor = `omniai_audit_${Math.random().toString(36).slice(2, 8)}`
    if (!this.inTransaction) await this.rows('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
    try {
      await this.rows(
        `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT * FROM ${sqlName} ORDER BY ${await this.orderBy(table)}`,
      )
      for (;;) {
        const rows = await this.rows(`FETCH ${FETCH_ROWS} FROM ${cursor}`)
        if (rows.length === 0) break
        // Without a primary key a row is named by its position in column order.
        yield rows.map((row) => ({
          key: at.length ? at.map((i) => String(row[i])).join(',') : String(++position),
          row,
        }))
      }
      await this.rows(`CLOSE ${cursor}`)
    } finally {
      if (!this.inTransaction) await this.rows('COMMIT')
    }
  }
}
