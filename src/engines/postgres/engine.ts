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
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { describeFindings, schemaNames } from '../../checks/checks.js'
import { cleanups } from '../../util/cleanup.js'
import { describeError, UserError } from '../../util/errors.js'
import { runCheck } from '../../checks/inspect.js'
import type { Inventory } from '../../checks/inventory.js'
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
import { connectionSecurity } from './ssl.js'
import { quoteIdent } from '../related.js'
import { USER_SCHEMAS, connect, serverFacts, displayName, majorOf } from './session.js'
import { PgDatabase } from './database.js'

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
      const restoreFor = (major: number) =>
        findTool(
          'pg_restore',
          major,
          major,
          this.config.pgBinDir,
          `reading a pg_dump ${major} archive`,
        )
      // Both looked for at once (each candidate is run for its version), for the usual case of
      // a pg_dump of the server's own major; another one's pg_restore is looked for after.
      const [dumpTool, sameMajor] = await Promise.all([
        findTool('pg_dump', server.major, server.major, this.config.pgBinDir, `dumping ${where}`),
        restoreFor(server.major).catch(() => null),
      ])
      const listTool =
        sameMajor?.major === dumpTool.major ? sameMajor : await restoreFor(dumpTool.major)
      log.info(`pg_dump: ${dumpTool.version} (${dumpTool.path}) for server ${server.version}`)
      log.info(
        `${Inputs.ConnectionString}: ${target.host}:${target.port} ${await connectionSecurity(client, target)}`,
      )

      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
      const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')
      const parallel = this.config.jobs > 1
      // pg_dump's sessions are told apart from anyone else's by a name of their own, set in
      // the connection string (which wins over PGAPPNAME and a service file's).
      const dumpName = `omniai-backups-pg_dump-${randomBytes(6).toString('hex')}`
      const dump = toolConnection(target, (dbname, env) =>
        runTool(
          dumpTool.path,
          [
            parallel ? '--format=directory' : '--format=custom',
            ...(parallel ? [`--jobs=${this.config.jobs}`] : []),
            `--snapshot=${rows[0]!.id}`,
            '--no-password',
            `--file=${dest}`,
            `--dbname=${withApplicationName(dbname, dumpName)}`,
          ],
          env,
        ),
      )
      // Settled below; this keeps an early failure from being reported as unhandled meanwhile.
      dump.catch(() => undefined)
      const snapshotId = rows[0]!.id
      // pg_dump's sessions come first (its leader, and with --jobs its workers): a role at its
      // CONNECTION LIMIT, or a server near max_connections, then refuses a side session, which
      // the checks do without, and never pg_dump.
      let dumpConnected: Promise<void> | null = null
      const whenDumpConnected = () =>
        (dumpConnected ??= (async () => {
          const ended = dump.then(
            () => true,
            () => true,
          )
          const wanted = parallel ? this.config.jobs + 1 : 1
          // Not forever: sessions a pooler renames, or a role that may not read
          // pg_stat_activity (null), only cost the checks their head start.
          const until = Date.now() + DUMP_CONNECT_WAIT_MS
          for (let pause = 20; Date.now() < until; pause = Math.min(2 * pause, 250)) {
            const seen = await db.sessionsNamed(dumpName)
            if (seen === null || seen >= wanted) return
            if (await Promise.race([ended, sleep(pause).then(() => false)])) return
          }
        })())
      // Other sessions importing the same snapshot, so that checks run side by side.
      const side = async () => {
        await whenDumpConnected()
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

/** How long side sessions wait for pg_dump's sessions to appear before going ahead. */
const DUMP_CONNECT_WAIT_MS = 30_000

/** A libpq connection URL with `application_name` set to `name`, whatever it said before. */
function withApplicationName(url: string, name: string): string {
  const u = new URL(url)
  u.searchParams.set('application_name', name)
  return u.href
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
