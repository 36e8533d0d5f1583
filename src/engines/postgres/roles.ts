/**
 * Who a restore runs as. pg_restore runs code the dump carries: the functions a materialized
 * view, an index expression, a CHECK constraint or a generated column calls while pg_restore
 * builds it. Run by a superuser, that code may run programs on the database server
 * (`COPY ... TO PROGRAM`) or write its files. So a drill restores as a role made for it, which
 * owns the scratch database and nothing else, and a restore over the live database runs with the
 * owner's rights where the owner is not a superuser.
 *
 * Both log in as a role of their own. `SET ROLE` from a superuser's session is no boundary: code
 * running under it can `RESET ROLE` back to the superuser that logged in.
 */
import { Inputs } from '../../options/inputs.js'
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pg from 'pg'
import { describeError, UserError } from '../../util/errors.js'
import type { Log } from '../../util/log.js'
import {
  parsePgUrl,
  runTool,
  withDatabase,
  withoutRowValues,
  type PgTarget,
  type ToolError,
} from './tools.js'
import { openPgClient } from './ssl.js'
import { quoteIdent } from '../related.js'

/** Every right a role can be given beyond its own objects, refused. */
const UNPRIVILEGED = 'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'

/** A role left behind by a runner killed mid-restore cannot log in after this. */
const VALID_MS = 24 * 3600_000

const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`

type Connect = (target: PgTarget, input: string) => Promise<pg.Client>

/** 192 random bits, URL-safe: it goes into a connection URL as is. */
export const newPassword = () => randomBytes(24).toString('base64url')

/**
 * The password as PostgreSQL stores it (SCRAM-SHA-256, made as libpq's PQencryptPasswordConn
 * makes it): the password itself never reaches the server, nor its log.
 */
export function scramVerifier(password: string): string {
  const iterations = 4096
  const salt = randomBytes(16)
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** The server of `target`, another database, logged in as `user`. */
export function asUser(
  target: PgTarget,
  database: string,
  user: string,
  password: string,
  input: string,
): PgTarget {
  const u = new URL(target.url)
  u.username = encodeURIComponent(user)
  u.password = encodeURIComponent(password)
  u.pathname = `/${encodeURIComponent(database)}`
  // A password in the query would win over the one in the user info.
  u.search = u.search
    .replace(/^\?/, '')
    .split('&')
    .filter((p) => p && !/^password=/i.test(p))
    .join('&')
  return parsePgUrl(u.href, input)
}

const stamp = () =>
  `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${Math.random().toString(36).slice(2, 8)}`

/** Gives `role` a password and LOGIN, until a day from now. */
async function allowLogin(admin: pg.Client, role: string, password: string) {
  await admin.query(
    `ALTER ROLE ${quoteIdent(role)} LOGIN PASSWORD '${scramVerifier(password)}' VALID UNTIL '${new Date(Date.now() + VALID_MS).toISOString()}'`,
  )
}

/** Logs in once as `target`'s user: null when it can, else the server's words. */
async function cannotLogIn(target: PgTarget, input: string): Promise<string | null> {
  // With the admin URL's TLS settings (asUser keeps them), as pg_restore will log in.
  let client: pg.Client
  try {
    client = await openPgClient(target, input, {
      connectionTimeoutMillis: 15_000,
    })
  } catch (err) {
    return (err as Error).message
  }
  await client.end().catch(() => undefined)
  return null
}

/** Takes the role's rights away and drops it; `inDatabase` runs first, on the admin's database. */
async function dropRole(admin: pg.Client, role: string, inDatabase = '') {
  const q = quoteIdent(role)
  // First of all: whatever fails below, it can no longer log in.
  await admin.query(`ALTER ROLE ${q} NOLOGIN`)
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
    role,
  ])
  if (inDatabase) await admin.query(inDatabase)
  await admin.query(`DROP ROLE IF EXISTS ${q}`)
}

/** A boolean column, whether the client parses types or (as the engine's does) keeps the text. */
const yes = (value: unknown) => value === true || value === 't'

async function adminFacts(admin: pg.Client) {
  const { rows } = await admin.query<{ me: string; su: unknown }>(
    'SELECT current_user AS me, rolsuper AS su FROM pg_roles WHERE rolname = current_user',
  )
  return { me: rows[0]!.me, su: yes(rows[0]!.su) }
}

/**
 * pg_restore refused something for want of rights: one line naming the refusal, the statement,
 * who restored, and the fix. Null for any other failure.
 */
export function deniedRights(err: ToolError, ranAs: string): UserError | null {
  const stderr = withoutRowValues(err.stderr)
  const error = /ERROR:\s+(.*)/.exec(stderr)?.[1]?.trim()
  if (
    !error ||
    !/must be superuser|must be owner|permission denied|have privileges of/i.test(error)
  )
    return null
  const command = /^Command was: (.*)$/m.exec(stderr)?.[1]?.trim()
  const table = /COPY failed for table "([^"]+)"/.exec(stderr)?.[1]
  const during = command
    ? ` (running: ${command.length > 160 ? `${command.slice(0, 160)}...` : command})`
    : table
      ? ` (loading table ${table})`
      : ''
  return new UserError(
    `${err.command} failed (exit ${err.exitCode ?? 'signal'}): code in the backup needs rights it was not given: ${error}${during}. The restore ran as ${ranAs}, so it could not. Fix: find what in the source database needs those rights (a function that a materialized view, an index, a constraint or a generated column calls; an untrusted language) and remove it: nothing in OmniAI's database should need a superuser to restore it.`,
  )
}

export interface ArchiveExtension {
  name: string
  /** The schema the dump creates it in. */
  schema: string
}

const IDENT = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`
const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s)

/**
 * The extensions an archive creates, each with its schema, read from pg_restore's own script of
 * just those entries. Only names come out of it, matched strictly and quoted again: nothing of
 * the dump's text is run.
 */
export async function archiveExtensions(
  tool: string,
  archive: string,
  dir: string,
): Promise<ArchiveExtension[]> {
  const { stdout: toc } = await runTool(tool, ['--list', archive], {})
  const entries = toc.split('\n').filter((l) => /^\d+; \d+ \d+ EXTENSION - /.test(l))
  if (entries.length === 0) return []
  const list = path.join(dir, 'extensions.list')
  await fs.writeFile(list, `${entries.join('\n')}\n`, { mode: 0o600 })
  try {
    const { stdout } = await runTool(tool, ['--file=-', `--use-list=${list}`, archive], {})
    const create = new RegExp(
      `^CREATE EXTENSION IF NOT EXISTS ${IDENT} WITH SCHEMA ${IDENT};$`,
      'gm',
    )
    return [...stdout.matchAll(create)].map((m) => ({
      name: unquote(m[1]!),
      schema: unquote(m[2]!),
    }))
  } finally {
    await fs.rm(list, { force: true })
  }
}

/**
 * The drill's own role, named as its scratch database: created NOLOGIN with no rights, made the
 * owner of the database, given LOGIN and a random password only once the database is ready, and
 * dropped with it. The password is masked, and reaches pg_restore through PGPASSWORD only.
 */
export class DrillRole {
  private readonly password = newPassword()
  private created = false
  /** The restore-connection-string role, for messages. */
  private admin = 'the restore-connection-string role'

  constructor(
    private readonly client: pg.Client,
    private readonly server: PgTarget,
    readonly name: string,
    log: Log,
  ) {
    log.mask?.(this.password)
  }

  /** The role, and the scratch database it owns (both named `name`). */
  async create(): Promise<void> {
    const q = quoteIdent(this.name)
    const { me, su } = await adminFacts(this.client)
    this.admin = `role ${me}`
    try {
      await this.client.query(`CREATE ROLE ${q} NOLOGIN ${UNPRIVILEGED}`)
    } catch (err) {
      throw new UserError(
        `${Inputs.RestoreConnectionString}: ${this.admin} cannot create the role the drill restores as (${describeError(err)}). A drill restores as a role of its own, without superuser rights, so that code in the backup cannot act on the restore server. Fix: use the restore server's superuser (a services: postgres container's postgres user), or a role with CREATEROLE and CREATEDB.`,
      )
    }
    this.created = true
    // An admin that is not a superuser acts for the role through membership: to make it the
    // database's owner, and later to drop both.
    if (!su) await this.client.query(`GRANT ${q} TO CURRENT_USER`)
    // A fresh database of the action's own: pg_restore never touches an existing one.
    await this.client.query(`CREATE DATABASE ${q} OWNER ${q} TEMPLATE template0`)
    // It will hold every user's data: only its owner (and superusers) may connect.
    await this.client.query(`REVOKE ALL ON DATABASE ${q} FROM PUBLIC`)
  }

  /**
   * Creates the extensions the archive needs, as the admin, in the still-empty database, before
   * any of the dump runs: what runs with the admin's rights is the server's own extension
   * scripts, never the dump. The role may not create an untrusted extension itself; a trusted
   * one it could, but the extension's script would then run as superuser among objects the
   * dump made.
   * Returns the archive entries pg_restore must leave out: comments on extensions the role does
   * not own, schemas made here.
   */
  async prepare(
    extensions: ArchiveExtension[],
    open: Connect,
    serverMajor: number,
    log: Log,
  ): Promise<string[]> {
    const q = quoteIdent(this.name)
    const leave: string[] = []
    if (extensions.length === 0 && serverMajor >= 15) return leave
    const client = await open(withDatabase(this.server, this.name), Inputs.RestoreConnectionString)
    try {
      if (serverMajor < 15) {
        // Before 15 the bootstrap superuser owns public, and the dump's COMMENT ON SCHEMA public
        // would fail; a non-superuser admin cannot change that, and the restore says so.
        await client.query(`ALTER SCHEMA public OWNER TO ${q}`).catch(() => undefined)
      }
      if (extensions.length === 0) return leave
      const names = [...new Set(extensions.map((e) => e.name))]
      const { rows } = await client.query<{ name: string }>(
        'SELECT name FROM pg_available_extensions WHERE name = ANY($1)',
        [names],
      )
      const missing = names.filter((n) => !rows.some((r) => r.name === n))
      if (missing.length) {
        const them = missing.length > 1 ? 'them' : 'it'
        throw new UserError(
          `${Inputs.BackupFile}: the backup needs the extension${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which the restore server at ${this.server.host}:${this.server.port} does not have. Fix: restore into a server that has ${them} installed (in a workflow, a services: image that includes ${missing.join(', ')}), then drill again.`,
        )
      }
      for (const ext of extensions) {
        const { rows: schema } = await client.query(
          'SELECT 1 FROM pg_namespace WHERE nspname = $1',
          [ext.schema],
        )
        if (schema.length === 0) {
          await client.query(`CREATE SCHEMA ${quoteIdent(ext.schema)} AUTHORIZATION ${q}`)
          leave.push(`SCHEMA - ${ext.schema} `)
        }
        try {
          await client.query(
            `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(ext.name)} WITH SCHEMA ${quoteIdent(ext.schema)} CASCADE`,
          )
        } catch (err) {
          throw new UserError(
            `${Inputs.RestoreConnectionString}: the backup needs the extension ${ext.name}, which ${this.admin} could not create in the scratch database (${describeError(err)}), and the drill's own role may not create it either. Fix: use the restore server's superuser in restore-connection-string (a services: postgres container's postgres user is one).`,
          )
        }
      }
      const { rows: made } = await client.query<{ n: string }>(
        "SELECT extname AS n FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
      )
      for (const { n } of made) leave.push(`COMMENT - EXTENSION ${n} `)
      log.info(
        `extensions ${made.map((r) => r.n).join(', ')} created in ${this.name} by ${this.admin} before the restore, from the restore server's own files`,
      )
      return leave
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  /** Lets the role log in: where pg_restore and the checks connect. */
  async login(): Promise<PgTarget> {
    await allowLogin(this.client, this.name, this.password)
    const target = asUser(
      this.server,
      this.name,
      this.name,
      this.password,
      Inputs.RestoreConnectionString,
    )
    const refused = await cannotLogIn(target, Inputs.RestoreConnectionString)
    if (refused) {
      throw new UserError(
        `${Inputs.RestoreConnectionString}: the drill restores as a role of its own (${this.name}, without superuser rights), and the restore server at ${this.server.host}:${this.server.port} did not let it log in: ${refused}. Fix: let every user log in with a password from this runner in the restore server's pg_hba.conf (host all all 0.0.0.0/0 scram-sha-256, as the postgres image has it).`,
      )
    }
    return target
  }

  /** Drops the database, then the role. */
  async drop(): Promise<void> {
    // The database exists only once the role does.
    if (!this.created) return
    const q = quoteIdent(this.name)
    try {
      await dropRole(this.client, this.name, `DROP DATABASE IF EXISTS ${q} WITH (FORCE)`)
    } catch (err) {
      throw new UserError(
        `${Inputs.RestoreConnectionString}: the drill's scratch database and role ${this.name} were not both dropped (${describeError(err)}). Fix: as ${this.admin}, DROP DATABASE IF EXISTS ${this.name}; then, in each database where it still owns something, DROP OWNED BY ${this.name}; then DROP ROLE ${this.name}.`,
      )
    }
  }
}

/** How pg_restore restores over the live database, and what to undo afterwards. */
export interface LiveRights {
  /** Where pg_restore logs in. */
  target: PgTarget
  /** Its own arguments: --role=OWNER when a role of the action's own stands in for the owner. */
  args: string[]
  /** Archive entries it leaves out: the extensions the live database already has. */
  leave: string[]
  /** Who restored, for the log and messages. */
  who: string
  /** Drops what was made for the restore; never throws (a leftover is a warning). */
  done(): Promise<void>
}

/**
 * Who restores over the live database. A role that is not a superuser restores as itself. A
 * superuser hands the restore to a role made for it, a member of the database's owner and
 * nothing else, which logs in and SETs ROLE to the owner: code in the backup gets the owner's
 * rights, and RESET ROLE brings it back to that role, not to the superuser. When the owner is a
 * superuser itself, or the backup or the database holds objects the owner cannot restore or
 * drop, the superuser restores as before, and a warning says so.
 */
export async function liveRights(
  target: PgTarget,
  tool: string,
  archive: string,
  open: Connect,
  log: Log,
): Promise<LiveRights> {
  const { stdout: toc } = await runTool(tool, ['--list', archive], {})
  const client = await open(target, Inputs.ConnectionString)
  let keep = false
  try {
    const { rows } = await client.query<{
      me: string
      su: unknown
      owner: string
      owner_su: unknown
    }>(
      `SELECT current_user AS me, r.rolsuper AS su, o.rolname AS owner, o.rolsuper AS owner_su
       FROM pg_roles r, pg_database d JOIN pg_roles o ON o.oid = d.datdba
       WHERE r.rolname = current_user AND d.datname = current_database()`,
    )
    const { me, owner } = rows[0]!
    const su = yes(rows[0]!.su)
    const ownerSu = yes(rows[0]!.owner_su)
    const db = target.database
    const entries = toc
      .split('\n')
      .map((l) => /^\d+; \d+ \d+ (.*)$/.exec(l)?.[1])
      .filter((e): e is string => e !== undefined)
    const archived = entries
      .map((e) => /^EXTENSION - (\S+) ?$/.exec(e)?.[1])
      .filter((n): n is string => n !== undefined)
    const { rows: present } = await client.query<{ n: string }>(
      'SELECT extname AS n FROM pg_extension WHERE extname = ANY($1)',
      [archived],
    )
    // The live database's extensions stay as they are: dropping one takes its owner, often a
    // superuser; the objects that use them are dropped and restored around them.
    const leave = present.flatMap(({ n }) => [`EXTENSION - ${n} `, `COMMENT - EXTENSION ${n} `])
    const absent = archived.filter((n) => !present.some((p) => p.n === n))
    // Trusted extensions are the ones a database's owner may create (PostgreSQL 13 and later;
    // before, the column is missing and none is).
    const { rows: trusted } = await client.query<{ n: string }>(
      `SELECT a.name AS n FROM pg_available_extensions a
       JOIN pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version
       WHERE a.name = ANY($1) AND coalesce((to_jsonb(v) ->> 'trusted')::boolean, false)`,
      [absent],
    )
    const untrusted = absent.filter((n) => !trusted.some((t) => t.n === n))

    if (!su) {
      if (untrusted.length) {
        throw new UserError(
          `${Inputs.ConnectionString}: the backup creates the extension${untrusted.length > 1 ? 's' : ''} ${untrusted.join(', ')}, which ${db} does not have and role ${me} (not a superuser) may not create. Fix: as a superuser, CREATE EXTENSION ${untrusted.join(', ')} in ${db}, then restore again; nothing was changed.`,
        )
      }
      return {
        target,
        args: [],
        leave,
        who: `as ${me}, connection-string's role (not a superuser)`,
        done: async () => undefined,
      }
    }
    const asSuperuser = (why: string, fix: string): LiveRights => {
      log.warning(
        `pg_restore runs as superuser ${me}: ${why}. Code in the backup (functions that its materialized views, indexes, constraints and generated columns call while they are restored) runs with superuser rights, and could run programs on the database server. Fix: ${fix}`,
      )
      return { target, args: [], leave: [], who: `as superuser ${me}`, done: async () => undefined }
    }
    const ownerFix = `make a role without superuser rights own ${db} and everything in it (ALTER DATABASE ${db} OWNER TO omniai; ALTER ... OWNER TO omniai), as the app's own migrations would.`
    if (ownerSu) return asSuperuser(`${db} is owned by ${owner}, itself a superuser`, ownerFix)
    const others = [
      ...new Set(
        entries.map((e) => e.slice(e.lastIndexOf(' ') + 1)).filter((o) => o && o !== owner),
      ),
    ].filter((o) => o !== 'pg_database_owner')
    if (others.length) {
      return asSuperuser(
        `the backup holds objects owned by ${others.join(', ')}, not by ${db}'s owner ${owner}, and only a superuser restores them as they were`,
        ownerFix,
      )
    }
    const { rows: foreign } = await client.query<{ what: string; who: string }>(
      `SELECT pg_describe_object(x.cls, x.oid, 0) AS what, pg_get_userbyid(x.owner) AS who FROM (
         SELECT 'pg_class'::regclass AS cls, c.oid, c.relowner AS owner FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_SCHEMAS}
         UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.proowner FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_SCHEMAS}
         UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typowner FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('d', 'e', 'r') AND ${USER_SCHEMAS}
         UNION ALL SELECT 'pg_namespace'::regclass, n.oid, n.nspowner FROM pg_namespace n
           WHERE ${USER_SCHEMAS} AND n.nspname <> 'public') x
       WHERE x.owner <> (SELECT datdba FROM pg_database WHERE datname = current_database())
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = x.cls AND d.objid = x.oid AND d.deptype = 'e')
       ORDER BY 1 LIMIT 4`,
    )
    if (foreign.length) {
      return asSuperuser(
        `${db} holds objects that its owner ${owner} does not own and so cannot drop (${foreign.map((f) => `${f.what}, owned by ${f.who}`).join('; ')})`,
        ownerFix,
      )
    }
    if (untrusted.length) {
      return asSuperuser(
        `the backup creates the extension${untrusted.length > 1 ? 's' : ''} ${untrusted.join(', ')}, which ${db} does not have and its owner ${owner} may not create`,
        `as a superuser, CREATE EXTENSION ${untrusted.join(', ')} in ${db} before restoring.`,
      )
    }

    const role = `omniai_restore_${stamp()}`
    const password = newPassword()
    log.mask?.(password)
    await client.query(
      `CREATE ROLE ${quoteIdent(role)} NOLOGIN ${UNPRIVILEGED} IN ROLE ${quoteIdent(owner)}`,
    )
    const done = async () => {
      try {
        // Anything it owns was made by code in the backup that stepped out of SET ROLE.
        await dropRole(client, role, `DROP OWNED BY ${quoteIdent(role)}`)
      } catch (err) {
        log.warning(
          `role ${role}, made for the restore, was not dropped (${describeError(err)}); it can no longer log in. Fix: as a superuser, in ${db}: DROP OWNED BY ${role}; DROP ROLE ${role}.`,
        )
      } finally {
        await client.end().catch(() => undefined)
      }
    }
    try {
      await allowLogin(client, role, password)
      const as = asUser(target, db, role, password, Inputs.ConnectionString)
      const refused = await cannotLogIn(as, Inputs.ConnectionString)
      if (refused) {
        await done()
        return asSuperuser(
          `the role made to restore as ${db}'s owner ${owner} could not log in (${refused})`,
          `let password logins from this runner in for every user in the server's pg_hba.conf, or set connection-string to ${owner}'s own URL.`,
        )
      }
      keep = true
      const who = `as ${owner}, the owner of ${db}, not as superuser ${me} (logged in as ${role}, a role made for the restore that is a member of ${owner} and nothing else, dropped afterwards)`
      log.info(`pg_restore runs ${who}`)
      return { target: as, args: [`--role=${owner}`], leave, who, done }
    } catch (err) {
      await done()
      throw err
    }
  } finally {
    if (!keep) await client.end().catch(() => undefined)
  }
}
