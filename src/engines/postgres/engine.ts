/**
 * PostgreSQL: backups by `pg_dump -Fc` (or the directory format with --jobs), drills by
 * `pg_restore` into a scratch database on a separate server. The manifest is taken inside the
 * very snapshot pg_dump dumps: one REPEATABLE READ transaction exports its snapshot, pg_dump
 * imports it (--snapshot), and the inventory queries run in the exporting transaction.
 */
import { Inputs } from '../../options/inputs.js'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import pg from 'pg'
import { digestAudit, type AuditRows } from '../../checks/audit.js'
import { describeFindings, schemaNames } from '../../checks/checks.js'
import { cleanups } from '../../util/cleanup.js'
import { describeError, UserError } from '../../util/errors.js'
import { runCheck } from '../../checks/inspect.js'
import type {
  AuditDigest,
  Conversations,
  ConversationDigest,
  ForeignKeyViolation,
  Index,
  IntegrityFindings,
  Inventory,
  Schema,
  SchemaObject,
  Table,
} from '../../checks/inventory.js'
import type { Log } from '../../util/log.js'
import {
  SESSION_EXPIRY_COLUMNS,
  SESSION_TABLES,
  type BackupRef,
  type Database,
  type Engine,
  type Snapshot,
  type EngineOptions,
} from '../engine.js'
import { findTool, parsePgUrl, runTool, ToolError, toolConnection, type PgTarget } from './tools.js'
import { archiveExtensions, deniedRights, DrillRole, liveRights } from './roles.js'
import { connectionSecurity, openPgClient } from './ssl.js'
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

/** Every value as the server's own text: exact (no float or timestamp rounding in JavaScript). */
const RAW_TYPES = { getTypeParser: () => (value: string) => value }

/** Rows fetched per round trip when streaming the audit log. */
const FETCH_ROWS = 10_000

const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`

/**
 * One line for a failed connection, naming the input, host and database; never the URL, whose
 * user info and query may hold a password.
 */
function connectionError(err: unknown, target: PgTarget, input: string): UserError {
  // TLS problems (openPgClient) already say which setting and how to fix it.
  if (err instanceof UserError) return err
  const e = err as { code?: string; message?: string }
  const where = `${target.host}:${target.port}`
  // The driver's own words, with any secret it might repeat taken out.
  const said = target.secrets.reduce(
    (text, secret) => text.split(secret).join('***'),
    e.message ?? String(err),
  )
  switch (e.code) {
    case 'ECONNREFUSED':
      return new UserError(
        `${input}: cannot connect to ${where} (connection refused). Fix: check host and port, and that the server is running (in a workflow: a services: postgres container with its port mapped).`,
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(
        `${input}: host ${target.host} not found. Fix: check the host name in the URL.`,
      )
    case '28P01':
      return new UserError(
        `${input}: password authentication failed at ${where}. Fix: check the user and password in the secret.`,
      )
    case '3D000':
      return new UserError(
        `${input}: database "${target.database}" does not exist at ${where}. Fix: check the database name at the end of the URL.`,
      )
    case '28000':
      return new UserError(
        `${input}: ${said} (at ${where}). Fix: check the user name and the server's pg_hba.conf.`,
      )
    default:
      return new UserError(
        `${input}: cannot connect to database "${target.database}" at ${where}: ${said}`,
      )
  }
}

async function connect(target: PgTarget, input: string): Promise<pg.Client> {
  try {
    // TLS as libpq makes it for pg_dump from the same URL: one connects where the other does.
    return await openPgClient(target, input, {
      types: RAW_TYPES,
      connectionTimeoutMillis: 15_000,
      application_name: 'omniai-backups',
      // Values are compared as the server prints them: pin every setting that changes how a
      // value prints, so a restore server in another time zone or with other defaults prints
      // the same.
      options:
        '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex',
    })
  } catch (err) {
    throw connectionError(err, target, input)
  }
}

async function serverFacts(client: pg.Client) {
  const { rows } = await client.query<{ v: string; n: string }>(
    "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
  )
  let systemIdentifier: string | undefined
  try {
    const r = await client.query<{ id: string }>(
      'SELECT system_identifier AS id FROM pg_control_system()',
    )
    systemIdentifier = r.rows[0]?.id
  } catch {
    // Not allowed for this role on some managed servers; host and port are compared instead.
  }
  return {
    version: rows[0]!.v,
    versionNum: Number(rows[0]!.n),
    major: Math.floor(Number(rows[0]!.n) / 10000),
    systemIdentifier,
  }
}

/** How inputs, manifests and reports name a table: bare in public, schema-qualified elsewhere. */
const displayName = (schema: string, name: string) =>
  schema === 'public' ? name : `${schema}.${name}`

const majorOf = (version: string | undefined) => Number(/(\d+)/.exec(version ?? '')?.[1] ?? 0)

const IDENT = '(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
const COLUMNS = `\\(${IDENT}(?:, ${IDENT})*\\)`
const ACTION = `(?:NO ACTION|RESTRICT|CASCADE|SET NULL(?: ${COLUMNS})?|SET DEFAULT(?: ${COLUMNS})?)`
/**
 * One foreign key exactly as pg_get_constraintdef writes it, and nothing else: quoted or plain
 * identifiers, the fixed keywords, no comma outside a column list. A manifest is not trusted
 * to hold SQL: `ALTER TABLE` takes a comma-separated list of actions, so anything looser would
 * let a planted manifest run `ALTER COLUMN ... USING f()` with the restoring role's rights.
 */
export const FOREIGN_KEY_DEFINITION = new RegExp(
  `^FOREIGN KEY ${COLUMNS} REFERENCES (?:${IDENT}\\.)?${IDENT}${COLUMNS}` +
    `(?: MATCH (?:FULL|SIMPLE|PARTIAL))?(?: ON UPDATE ${ACTION})?(?: ON DELETE ${ACTION})?` +
    `(?: (?:NOT )?DEFERRABLE(?: INITIALLY (?:DEFERRED|IMMEDIATE))?)?$`,
)

interface DeferredConstraint {
  schema: string
  table: string
  name: string
  /** pg_get_constraintdef, from the manifest: `FOREIGN KEY (a) REFERENCES t(b) ...`. */
  definition: string
}

/**
 * Foreign keys the source violated while they were marked valid (its triggers were disabled
 * while rows were deleted). pg_restore re-creates a constraint with ADD CONSTRAINT, which checks
 * every row and fails on the orphans, so the whole restore would fail. These are left out of the
 * restore and added back NOT VALID: the rows as they were, the constraint in force for new rows.
 */
function deferredConstraints(backup: BackupRef): DeferredConstraint[] {
  const { inventory } = backup.manifest
  const notValid = new Set(inventory.notValid ?? [])
  const out: DeferredConstraint[] = []
  for (const v of inventory.foreignKeyViolations ?? []) {
    if (!v.constraint || notValid.has(`${v.table}.${v.constraint}`)) continue
    const definition = inventory.schema.constraints?.find(
      (c) => c.name === `${v.table}.${v.constraint}`,
    )?.sql
    // This text is executed: only pg_get_constraintdef's grammar of one foreign key passes.
    if (!definition || !FOREIGN_KEY_DEFINITION.test(definition)) {
      throw new UserError(
        `${Inputs.BackupFile}: the manifest records rows violating ${v.table}.${v.constraint} but not a foreign-key definition to re-create it with; the restore would fail at that constraint. Fix: restore another backup.`,
      )
    }
    const dot = v.table.indexOf('.')
    out.push({
      schema: dot < 0 ? 'public' : v.table.slice(0, dot),
      table: dot < 0 ? v.table : v.table.slice(dot + 1),
      name: v.constraint,
      definition,
    })
  }
  return out
}

/**
 * Writes a pg_restore --use-list file into `dir`: the archive's table of contents with the
 * deferred constraints, and the entries `leave` begins (`COMMENT - EXTENSION x `), commented
 * out. Returns the pg_restore arguments that use it.
 */
async function restoreListArgs(
  tool: string,
  backup: BackupRef,
  deferred: DeferredConstraint[],
  dir: string,
  leave: string[] = [],
): Promise<string[]> {
  if (deferred.length === 0 && leave.length === 0) return []
  const { stdout } = await runTool(tool, ['--list', backup.path], {})
  const skip = [
    ...deferred.map((d) => ` FK CONSTRAINT ${d.schema} ${d.table} ${d.name} `),
    ...leave.map((entry) => ` ${entry}`),
  ]
  const list = stdout
    .split('\n')
    .map((line) => (skip.some((s) => line.includes(s)) ? `;${line}` : line))
    .join('\n')
  const file = path.join(dir, 'restore.list')
  await fs.writeFile(file, list, { mode: 0o600 })
  return [`--use-list=${file}`]
}

/**
 * `--clean` cannot drop what the restore list leaves out: the live database's own copies of the
 * deferred constraints go first (their tables' keys cannot be dropped while they stand), and
 * come back as they were if the restore fails. Returns how to put them back.
 */
async function dropLiveConstraints(
  target: PgTarget,
  deferred: DeferredConstraint[],
): Promise<() => Promise<void>> {
  if (deferred.length === 0) return async () => undefined
  const client = await connect(target, Inputs.ConnectionString)
  const dropped: { table: string; name: string; definition: string; validated: boolean }[] = []
  try {
    for (const d of deferred) {
      const table = `${quoteIdent(d.schema)}.${quoteIdent(d.table)}`
      const { rows } = await client.query<{ def: string; ok: boolean }>(
        `SELECT pg_get_constraintdef(k.oid) AS def, k.convalidated AS ok FROM pg_constraint k
         WHERE k.conrelid = to_regclass($1) AND k.conname = $2`,
        [table, d.name],
      )
      if (!rows[0]) continue
      await client.query(`ALTER TABLE ${table} DROP CONSTRAINT ${quoteIdent(d.name)}`)
      dropped.push({
        table,
        name: d.name,
        definition: rows[0].def.replace(/ NOT VALID$/, ''),
        validated: rows[0].ok,
      })
    }
  } finally {
    await client.end().catch(() => undefined)
  }
  return async () => {
    const again = await connect(target, Inputs.ConnectionString)
    try {
      for (const d of dropped) {
        await again.query(
          `ALTER TABLE ${d.table} ADD CONSTRAINT ${quoteIdent(d.name)} ${d.definition} NOT VALID`,
        )
        if (d.validated) {
          await again.query(`ALTER TABLE ${d.table} VALIDATE CONSTRAINT ${quoteIdent(d.name)}`)
        }
      }
    } finally {
      await again.end().catch(() => undefined)
    }
  }
}

/** Adds the deferred constraints back, NOT VALID, on a restored database. */
async function addDeferred(
  target: PgTarget,
  input: string,
  deferred: DeferredConstraint[],
  log: Log,
) {
  if (deferred.length === 0) return
  const client = await connect(target, input)
  try {
    for (const d of deferred) {
      await client.query(
        `ALTER TABLE ${quoteIdent(d.schema)}.${quoteIdent(d.table)} ADD CONSTRAINT ${quoteIdent(d.name)} ${d.definition} NOT VALID`,
      )
      log.info(
        `constraint ${d.schema}.${d.table}.${d.name} re-created NOT VALID: the backup holds rows that violate it, as the source did`,
      )
    }
  } finally {
    await client.end().catch(() => undefined)
  }
}

export class PostgresEngine implements Engine {
  readonly name = 'postgres'
  readonly extension: string

  constructor(private readonly config: EngineOptions) {
    this.extension = config.jobs > 1 ? '.dumpdir' : '.dump'
  }

  private source(): PgTarget {
    return parsePgUrl(this.config.connectionString, Inputs.ConnectionString)
  }

  async openSource(): Promise<Database> {
    const target = this.source()
    return new PgDatabase(await connect(target, Inputs.ConnectionString), target, false)
  }

  async snapshot(
    dest: string,
    log: Log,
    inspect: (db: Database) => Promise<Inventory>,
    written?: () => void,
  ): Promise<Snapshot> {
    const target = this.source()
    const client = await connect(target, Inputs.ConnectionString)
    try {
      const server = await serverFacts(client)
      const where = `the PostgreSQL ${server.version} server at ${target.host}:${target.port}`
      const dumpTool = await findTool(
        'pg_dump',
        server.major,
        server.major,
        this.config.pgBinDir,
        `dumping ${where}`,
      )
      const listTool = await findTool(
        'pg_restore',
        dumpTool.major,
        dumpTool.major,
        this.config.pgBinDir,
        `reading a pg_dump ${dumpTool.major} archive`,
      )
      log.info(`pg_dump: ${dumpTool.version} (${dumpTool.path}) for server ${server.version}`)
      log.info(
        `${Inputs.ConnectionString}: ${target.host}:${target.port} ${await connectionSecurity(client, target)}`,
      )

      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
      const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')
      const parallel = this.config.jobs > 1
      const dump = toolConnection(target, (dbname, env) =>
        runTool(
          dumpTool.path,
          [
            parallel ? '--format=directory' : '--format=custom',
            ...(parallel ? [`--jobs=${this.config.jobs}`] : []),
            `--snapshot=${rows[0]!.id}`,
            '--no-password',
            `--file=${dest}`,
            `--dbname=${dbname}`,
          ],
          env,
        ),
      )
      // Settled below; this keeps an early failure from being reported as unhandled meanwhile.
      dump.catch(() => undefined)
      const snapshotId = rows[0]!.id
      // Other sessions importing the same snapshot, so that checks run side by side.
      const side = async () => {
        const other = await connect(target, Inputs.ConnectionString)
        try {
          await other.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
          // The server's own identifier (hex digits and dashes); SET takes no parameter.
          if (!/^[0-9A-F-]+$/i.test(snapshotId)) throw new Error(`unexpected snapshot id`)
          await other.query(`SET TRANSACTION SNAPSHOT '${snapshotId}'`)
        } catch (err) {
          await other.end().catch(() => undefined)
          throw err
        }
        return new PgDatabase(other, target, true, undefined, { closeInTransaction: true })
      }
      const db = new PgDatabase(client, target, true, undefined, {
        side,
        serverVersionNum: server.versionNum,
      })
      // Data-quality findings, from the same snapshot the dump reads: orphans do not stop a
      // dump, and the manifest records them so a drill can tell them from new ones. In a
      // session of their own, while this one takes the inventory.
      const finding = db.integrityProblems()
      finding.catch(() => undefined)
      const inventory = await inspect(db)
      const findings = await finding
      inventory.foreignKeyViolations = findings.foreignKeys
      inventory.notValid = findings.notValid ?? []
      const bytes = await db.bytes()
      try {
        await dump
      } catch (err) {
        throw new UserError(
          `${Inputs.ConnectionString}: ${(err as Error).message}. No backup was written; older backups are untouched.`,
        )
      }
      await client.query('COMMIT')
      written?.()
      // The archive's table of contents reads back with the pg_restore that will restore it.
      const { stdout } = await runTool(listTool.path, ['--list', dest], {})
      const entries = stdout.split('\n').filter((l) => /^\d+;/.test(l)).length
      return {
        engineVersion: server.version,
        toolVersion: dumpTool.version,
        source: {
          description: target.redacted,
          bytes,
          ...(server.systemIdentifier ? { systemIdentifier: server.systemIdentifier } : {}),
        },
        verified: `pg_restore --list reads ${entries} archive entries; ${describeFindings({ ...findings, damage: [] })}`,
        inventory,
        // pg_dump read every row: what the server says of its indexes and sequences is checked
        // on the restored copy, not a reason to mark the dump damaged.
        damage: [],
      }
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  liveName(): string {
    return this.source().database
  }

  async liveExists(): Promise<boolean> {
    return true
  }

  async liveUsers(): Promise<string[]> {
    const target = this.source()
    const client = await connect(target, Inputs.ConnectionString)
    try {
      const { rows } = await client.query<{ pid: string; app: string; who: string }>(
        `SELECT pid::text, coalesce(nullif(application_name, ''), 'unnamed') AS app, coalesce(usename, '?') AS who
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      )
      return rows.map((r) => `session ${r.pid} (${r.app}, user ${r.who})`)
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  async liveSessions(now: Date): Promise<{ table: string; active: number } | null> {
    const target = this.source()
    const client = await connect(target, Inputs.ConnectionString)
    try {
      const { rows } = await client.query<{ s: string; t: string; c: string }>(
        `SELECT n.nspname AS s, c.relname AS t, a.attname AS c FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1) AND a.attname = ANY($2) AND ${USER_SCHEMAS}
         ORDER BY n.nspname = 'public' DESC, array_position($1, c.relname::text), array_position($2, a.attname::text)
         LIMIT 1`,
        [SESSION_TABLES, SESSION_EXPIRY_COLUMNS],
      )
      const found = rows[0]
      if (!found) return null
      const { rows: counted } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${quoteIdent(found.s)}.${quoteIdent(found.t)} WHERE ${quoteIdent(found.c)}::timestamptz > $1::timestamptz`,
        [now.toISOString()],
      )
      return { table: displayName(found.s, found.t), active: Number(counted[0]!.n) }
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  async replaceLive(backup: BackupRef, log: Log): Promise<Database> {
    const target = this.source()
    const client = await connect(target, Inputs.ConnectionString)
    const server = await serverFacts(client).finally(() => client.end().catch(() => undefined))
    const tool = await this.restoreTool(backup, server.major)
    const deferred = deferredConstraints(backup)
    // Code in the backup runs during the restore: with the owner's rights where it can.
    const rights = await liveRights(target, tool.path, backup.path, connect, log)
    const listDir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-restore-list-'))
    try {
      const putBack = await dropLiveConstraints(target, deferred)
      // The runbook's pg_restore --clean --if-exists, in one transaction: a failure rolls back
      // and the old data stays.
      const listArgs = await restoreListArgs(tool.path, backup, deferred, listDir, rights.leave)
      await toolConnection(rights.target, (dbname, env) =>
        runTool(
          tool.path,
          [
            '--clean',
            '--if-exists',
            '--single-transaction',
            '--exit-on-error',
            '--no-password',
            ...rights.args,
            ...listArgs,
            `--dbname=${dbname}`,
            backup.path,
          ],
          env,
        ),
      ).catch(async (err: unknown) => {
        const notBack = await putBack().then(
          () => '',
          (e: unknown) =>
            ` Its foreign keys ${deferred.map((d) => d.name).join(', ')} could not be put back (${describeError(e)}): re-create them by hand.`,
        )
        throw err instanceof ToolError
          ? new UserError(
              `${(deniedRights(err, rights.who.replace(/^as /, '')) ?? err).message.replace(/\.$/, '')}. The restore was rolled back: the live database is as it was.${notBack}`,
            )
          : err
      })
    } finally {
      await rights.done()
      await fs.rm(listDir, { recursive: true, force: true })
    }
    log.info(
      `pg_restore --clean --if-exists --single-transaction into ${target.redacted} ${rights.who}`,
    )
    // pg_restore has committed: from here a failure must say the data was replaced.
    await addDeferred(target, Inputs.ConnectionString, deferred, log).catch((err: unknown) => {
      throw new UserError(
        `${Inputs.ConnectionString}: the database WAS replaced with the backup, but its foreign keys ${deferred.map((d) => `${d.schema}.${d.table}.${d.name}`).join(', ')} could not be re-created NOT VALID (${describeError(err)}). Fix: re-create them by hand (ALTER TABLE ... ADD CONSTRAINT ... NOT VALID, as the backup's manifest records them), or restore the safety backup.`,
      )
    })
    return new PgDatabase(
      await connect(target, Inputs.ConnectionString),
      target,
      false,
      undefined,
      {
        serverVersionNum: server.versionNum,
        manifestAudit: backup.manifest.inventory.audit,
      },
    )
  }

  private async restoreTool(backup: BackupRef, serverMajor: number) {
    const dumpMajor = majorOf(/\(PostgreSQL\)\s+(\d+)/.exec(backup.manifest.toolVersion ?? '')?.[1])
    return findTool(
      'pg_restore',
      dumpMajor,
      Math.max(dumpMajor, serverMajor),
      this.config.pgBinDir,
      `reading this backup (written by pg_dump ${dumpMajor})`,
    )
  }

  async verifyBackup(backup: BackupRef) {
    const tool = await this.restoreTool(backup, 0)
    const checks = [
      // Reading the whole archive into nowhere decompresses every table's data: a truncated or
      // damaged archive fails here without any server.
      await runCheck('integrity', async () => {
        await runTool(tool.path, [`--file=${os.devNull}`, backup.path], {})
        return {
          name: 'integrity',
          ok: true,
          detail: `pg_restore read the whole archive (${tool.version.replace(/^pg_restore /, '')})`,
        }
      }),
      await runCheck('schema', async () => {
        const { stdout } = await runTool(tool.path, ['--list', backup.path], {})
        return schemaNames(tocNames(stdout), backup.manifest.inventory.schema)
      }),
    ]
    return { checks, database: null }
  }

  async restore(backup: BackupRef, scratchDir: string, log: Log): Promise<Database> {
    if (!this.config.restoreConnectionString) {
      throw new UserError(
        `${Inputs.RestoreConnectionString}: not set. A PostgreSQL drill restores into a separate server, never the source. Fix: add a services: postgres container to the drill job and set restore-connection-string to its URL, e.g. postgres://postgres:postgres@localhost:5432/postgres.`,
      )
    }
    const admin = parsePgUrl(this.config.restoreConnectionString, Inputs.RestoreConnectionString)
    if (/^postgres(ql)?:/i.test(this.config.connectionString)) {
      const source = this.source()
      if (source.host === admin.host && source.port === admin.port) {
        throw new UserError(
          `${Inputs.RestoreConnectionString}: ${admin.host}:${admin.port} is the server connection-string backs up. Fix: restore into a separate server, e.g. a services: postgres container.`,
        )
      }
    }
    const adminClient = await connect(admin, Inputs.RestoreConnectionString)
    let dropped = false
    const name = `omniai_drill_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${Math.random().toString(36).slice(2, 8)}`
    // The code a dump carries runs during pg_restore: as a role with no rights beyond the
    // scratch database, never as the superuser restore-connection-string usually names.
    const role = new DrillRole(adminClient, admin, name, log)
    const drop = async () => {
      if (dropped) return
      dropped = true
      forgetDrop()
      try {
        await role.drop()
      } finally {
        await adminClient.end().catch(() => undefined)
      }
    }
    // Also on SIGINT/SIGTERM: a restored copy of every user's data must not outlive the drill.
    const forgetDrop = cleanups.add(`scratch database ${name}`, drop)
    try {
      const server = await serverFacts(adminClient)
      if (
        server.systemIdentifier &&
        server.systemIdentifier === backup.manifest.source.systemIdentifier
      ) {
        throw new UserError(
          `${Inputs.RestoreConnectionString}: ${admin.host}:${admin.port} is the server this backup came from (system identifier ${server.systemIdentifier}). Fix: restore into a separate server, e.g. a services: postgres container.`,
        )
      }
      const tool = await this.restoreTool(backup, server.major)
      log.info(
        `${Inputs.RestoreConnectionString}: ${admin.host}:${admin.port} ${await connectionSecurity(adminClient, admin)}`,
      )
      log.info(
        `pg_restore: ${tool.version} into scratch database ${name} on ${admin.host}:${admin.port}, as ${name}, a role made for the drill (no superuser, CREATEDB or CREATEROLE; owner of that database only; dropped with it)`,
      )
      await role.create()
      const leave = await role.prepare(
        await archiveExtensions(tool.path, backup.path, scratchDir),
        connect,
        server.major,
        log,
      )
      const scratch = await role.login()
      const deferred = deferredConstraints(backup)
      try {
        const listArgs = await restoreListArgs(tool.path, backup, deferred, scratchDir, leave)
        await toolConnection(scratch, (dbname, env) =>
          runTool(
            tool.path,
            [
              '--no-owner',
              '--no-acl',
              '--exit-on-error',
              '--no-password',
              ...(restoreJobs(this.config.jobs) > 1
                ? [`--jobs=${restoreJobs(this.config.jobs)}`]
                : []),
              ...listArgs,
              `--dbname=${dbname}`,
              backup.path,
            ],
            env,
          ),
        )
      } catch (err) {
        throw err instanceof ToolError
          ? (deniedRights(err, `${name}, the drill's own role without superuser rights`) ??
              new UserError(err.message))
          : err
      }
      await addDeferred(scratch, Inputs.RestoreConnectionString, deferred, log)
      const client = await connect(scratch, Inputs.RestoreConnectionString)
      const side = async () =>
        new PgDatabase(await connect(scratch, Inputs.RestoreConnectionString), scratch, false)
      const db = new PgDatabase(client, scratch, false, drop, {
        side,
        serverVersionNum: server.versionNum,
        manifestAudit: backup.manifest.inventory.audit,
      })
      // The audit-log digest of the restored copy, in a session of its own from now on, while
      // the drill runs its other checks in this one (the row counts first).
      db.prestartAudit()
      db.prestartCounts()
      return db
    } catch (err) {
      await drop().catch((e: unknown) => log.warning(describeError(e)))
      throw err
    }
  }
}

/**
 * pg_restore workers for a drill: the jobs input, or up to 4 cores' worth when it is 1. A
 * custom-format archive written to a file (as every backup is) is seekable, so pg_restore
 * restores its tables and builds its indexes side by side as it does a directory.
 */
function restoreJobs(jobs: number): number {
  return jobs > 1 ? jobs : Math.min(4, os.availableParallelism())
}

/** Object names in a pg_restore --list table of contents, grouped as a Schema names them. */
export function tocNames(toc: string) {
  const names = {
    tables: [] as string[],
    indexes: [] as string[],
    constraints: [] as string[],
    triggers: [] as string[],
    views: [] as string[],
    sequences: [] as string[],
  }
  const display = (schema: string, name: string) =>
    schema === 'public' ? name : `${schema}.${name}`
  for (const line of toc.split('\n')) {
    const m =
      /^\d+; \d+ \d+ (FK CONSTRAINT|CONSTRAINT|TABLE DATA|TABLE|INDEX|TRIGGER|SEQUENCE OWNED BY|SEQUENCE SET|SEQUENCE|VIEW|MATERIALIZED VIEW) (.*)$/.exec(
        line,
      )
    if (!m) continue
    const [schema, a, b] = m[2]!.split(' ')
    switch (m[1]) {
      case 'TABLE':
        names.tables.push(display(schema!, a!))
        break
      case 'INDEX':
        names.indexes.push(display(schema!, a!))
        break
      case 'SEQUENCE':
        names.sequences.push(display(schema!, a!))
        break
      case 'VIEW':
      case 'MATERIALIZED VIEW':
        names.views.push(display(schema!, a!))
        break
      case 'CONSTRAINT':
      case 'FK CONSTRAINT':
        names.constraints.push(`${display(schema!, a!)}.${b}`)
        break
      case 'TRIGGER':
        names.triggers.push(`${display(schema!, a!)}.${b}`)
        break
    }
  }
  return names
}

interface TableRef {
  schema: string
  name: string
  /** How inputs, manifests and reports name it: bare in public, schema-qualified elsewhere. */
  display: string
}

interface PgDatabaseOptions {
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

export class PgDatabase implements Database {
  private tablesCache: Map<string, TableRef> | undefined
  private keyCache = new Map<string, string[]>()
  private foreignKeysCache: ForeignKey[] | undefined
  private prestarted: { table: string; digest: Promise<AuditDigest> } | null = null
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
   * Runs `fn` on a side session when there can be one (closed after), else on this one: also
   * when the server refuses another session (a role's CONNECTION LIMIT, max_connections), as
   * before side sessions existed; it is slower, never a failure.
   */
  private async onSide<T>(fn: (db: PgDatabase) => Promise<T>): Promise<T> {
    if (!this.options.side) return fn(this)
    let side: PgDatabase
    try {
      side = await this.options.side()
    } catch {
      return fn(this)
    }
    try {
      return await fn(side)
    } finally {
      await side.client.end().catch(() => undefined)
    }
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
    const digest = (async () => {
      if (!(await this.serverDigests(expected.table))) {
        // The restored table lost its integer key: the digest as the manifest's cannot be made.
        throw new UserError(
          `${expected.table}: the restored copy has no single integer primary key, which the manifest's audit-log digest was made by`,
        )
      }
      const sqlName = await this.sqlName(expected.table)
      const key = (await this.keyColumns(expected.table))[0]!
      return this.onSide((db) =>
        serverAuditDigest(
          (text, values) => db.rows(text, values),
          expected.table,
          sqlName,
          key,
          boundaries,
        ),
      )
    })()
    digest.catch(() => undefined)
    this.prestarted = { table: expected.table, digest }
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
    this.countsStarted = (async () => this.countHere([...(await this.tables()).keys()]))()
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
