/**
 * A restore runs no code from the dump with superuser rights. A dump can carry a function that a
 * materialized view, an index expression, a generated column or a CHECK constraint calls while
 * pg_restore builds it; with COPY ... TO PROGRAM inside, restoring it as a superuser runs a
 * program on the restore server. Each case first shows the hole with the bare pg_restore (the
 * marker file appears), then that the action's restore does not run it (the marker stays away).
 */
import { existsSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { DrillRole } from '../src/engines/postgres/roles.js'
import { parsePgUrl } from '../src/engines/postgres/tools.js'
import { PostgresEngine } from '../src/engines/postgres/engine.js'
import { readManifest } from '../src/manifest/manifest.js'
import { configFor, execFileAsync, failed, memoryLog, run, tempDir } from './helpers.js'
import { defaultBinDir, onDatabase, pgQuery } from './pg-cluster.js'

const source = inject('pgSource')
const restoreServer = inject('pgRestore')

const onDb = onDatabase
const asUser = (url: string, user: string, password: string) =>
  Object.assign(new URL(url), { username: user, password }).href

const sql = pgQuery

/** Where the servers' functions leave their marker files: the servers run as another OS user. */
let markers: string
beforeAll(async () => {
  markers = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-markers-'))
  await fs.chmod(markers, 0o777)
})
afterAll(async () => {
  await fs.rm(markers, { recursive: true, force: true })
})

let counter = 0
const unique = (what: string) => `omniai_${what}_${process.pid}_${++counter}`

/** Runs the bare client tool as the runbook would, the password in PGPASSWORD; never throws. */
async function bare(tool: string, args: string[], url: string) {
  const u = new URL(url)
  const password = decodeURIComponent(u.password)
  u.password = ''
  const bin = path.join((await defaultBinDir())!, tool)
  return execFileAsync(bin, [...args, `--dbname=${u.href}`], {
    env: { ...process.env, PGPASSWORD: password },
  }).catch((err: { stderr: string }) => err)
}

/** Whether a role and a database of this name exist on the restore server. */
async function remains(name: string) {
  const [r] = await sql(
    restoreServer,
    `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role,
            EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS database`,
    [name],
  )
  return r as { role: boolean; database: boolean }
}

/** The scratch database and role a drill named in its log. */
const drillName = (lines: string[]) =>
  /into scratch database (omniai_drill_\w+)/.exec(lines.join('\n'))?.[1] ?? 'none in the log'

/** A drill of the backups in `backups` into the restore server. */
const drill = (backups: string, dir: string, admin = restoreServer) =>
  run(
    'drill',
    { 'backup-dir': backups, 'restore-connection-string': admin, 'drill-log': 'none' },
    dir,
  )

async function backupOf(url: string) {
  const dir = await tempDir()
  const backups = path.join(dir, 'backups')
  const { report } = await run('backup', { 'connection-string': url, 'backup-dir': backups }, dir)
  expect(report.error).toBeUndefined()
  return { dir, backups, archive: report.backup!.path }
}

const HOSTILE = {
  'materialized view': 'CREATE MATERIALIZED VIEW pwned_view AS SELECT public.pwn() AS x',
  'index expression': 'CREATE INDEX pwned_index ON pwned (public.pwn_i(id))',
  'generated column':
    'ALTER TABLE pwned ADD COLUMN g int GENERATED ALWAYS AS (public.pwn_i(id)) STORED',
  'CHECK constraint': 'ALTER TABLE pwned ADD CONSTRAINT pwned_check CHECK (public.pwn() = 1)',
}
type Vector = keyof typeof HOSTILE

/**
 * A demo database plus a function that has a program on the database server write `marker`
 * (for the CHECK constraint, COPY ... TO the file itself), called from `vector` when pg_restore
 * builds it. An immutable wrapper lets an index and a generated column call it. The program is
 * `cat`, which reads what COPY sends it: `touch` exits first, and COPY fails on the closed pipe.
 */
async function hostile(vector: Vector, marker: string) {
  const name = unique('hostile')
  await sql(source, `CREATE DATABASE ${name}`)
  const url = onDb(source, name)
  await generatePostgresDemo(url, { conversations: 5, auditRows: 10 })
  const act =
    vector === 'CHECK constraint'
      ? `COPY (SELECT 1) TO '${marker}'`
      : `COPY (SELECT 1) TO PROGRAM 'cat > ${marker}'`
  await sql(
    url,
    `CREATE FUNCTION public.pwn() RETURNS int LANGUAGE plpgsql VOLATILE AS $$ BEGIN ${act}; RETURN 1; END $$;
     CREATE FUNCTION public.pwn_i(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.pwn(); RETURN i; END $$;
     CREATE TABLE pwned (id int PRIMARY KEY);
     INSERT INTO pwned VALUES (1), (2);
     ${HOSTILE[vector]};`,
  )
  // Building it on the source ran it once, there.
  await fs.rm(marker, { force: true })
  return url
}

describe('drill: the dump restores as a role of its own, without superuser rights', () => {
  it.each(Object.keys(HOSTILE) as Vector[])(
    'a function called from a %s: the bare superuser pg_restore runs it, the drill does not and says why',
    async (vector) => {
      const marker = path.join(markers, vector.replace(/\W/g, '-'))
      const { dir, backups, archive } = await backupOf(await hostile(vector, marker))
      expect(existsSync(marker)).toBe(false)

      // Positive control: the runbook's pg_restore as the superuser runs the dump's code.
      const target = unique('bare')
      await sql(restoreServer, `CREATE DATABASE ${target}`)
      await bare('pg_restore', ['--no-owner', archive], onDb(restoreServer, target))
      await sql(restoreServer, `DROP DATABASE ${target} WITH (FORCE)`)
      expect(existsSync(marker)).toBe(true)
      await fs.rm(marker)

      const { report, log } = await drill(backups, dir)
      expect(existsSync(marker)).toBe(false)
      expect(report.ok).toBe(false)
      const name = drillName(log.lines)
      expect(failed(report).restore).toMatch(
        new RegExp(
          `^the backup did not restore: pg_restore failed \\(exit 1\\): code in the backup needs rights it was not given: must be superuser or have privileges of the pg_(execute_server_program|write_server_files) role to COPY .*\\. The restore ran as ${name}, the drill's own role without superuser rights, so it could not\\. Fix: find what in the source database needs those rights`,
        ),
      )
      expect(failed(report).restore).not.toContain('\n')
      // Also after a failed drill: no scratch database, no role.
      expect(await remains(name)).toEqual({ role: false, database: false })
    },
  )

  it('a normal drill passes every check; the copy belongs to a role with no rights, dropped with it', async () => {
    const name = unique('normal')
    await sql(source, `CREATE DATABASE ${name}`)
    const url = onDb(source, name)
    await generatePostgresDemo(url, { conversations: 20, auditRows: 50 })
    // A trusted extension, an untrusted one, and one in a schema of its own.
    await sql(
      url,
      `CREATE EXTENSION pgcrypto; CREATE EXTENSION dblink;
       CREATE SCHEMA extensions; CREATE EXTENSION citext WITH SCHEMA extensions;
       CREATE TABLE tagged (id int PRIMARY KEY, token text DEFAULT encode(gen_random_bytes(4), 'hex'), nick extensions.citext);
       INSERT INTO tagged (id, nick) VALUES (1, 'Ada'), (2, 'Bob');`,
    )
    const { dir, backups, archive } = await backupOf(url)

    const { report, log } = await drill(backups, dir)
    expect(report.error).toBeUndefined()
    expect(failed(report)).toEqual({})
    expect(report.checks.map((c) => c.name)).toEqual([
      'checksum',
      'integrity',
      'foreign-keys',
      'schema',
      'row-counts',
      'spot-check',
      'audit-log',
      'restore-time',
      'backup-age',
    ])
    const scratch = drillName(log.lines)
    expect(log.lines.join('\n')).toContain(
      `as ${scratch}, a role made for the drill (no superuser, CREATEDB or CREATEROLE; owner of that database only; dropped with it)`,
    )
    expect(log.lines.join('\n')).toContain(
      `extensions citext, dblink, pgcrypto created in ${scratch} by role postgres before the restore`,
    )
    expect(await remains(scratch)).toEqual({ role: false, database: false })

    // The engine itself, to look at the restored copy while it is open.
    const config = configFor('drill', { 'restore-connection-string': restoreServer }, dir)
    const engine = new PostgresEngine(config)
    const mlog = memoryLog()
    const db = await engine.restore(
      { path: archive, manifest: await readManifest(`${archive}.manifest.json`) },
      await tempDir(),
      mlog,
    )
    const copy = parsePgUrl(db.url(), 'test')
    const password = decodeURIComponent(new URL(db.url()).password)
    try {
      expect(password).toMatch(/^[\w-]{32}$/)
      expect(mlog.masked).toContain(password)
      expect(mlog.lines.join('\n')).not.toContain(password)
      // The tools get it in PGPASSWORD, never in --dbname.
      expect(copy.dbnameArg).not.toContain(password)
      expect(copy.env.PGPASSWORD).toBe(password)
      const [who] = await sql(
        db.url(),
        `SELECT current_user AS me, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,
                (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS owner,
                (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm', 'S', 'i') AND c.relowner <> r.oid
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')) AS not_its_own,
                has_database_privilege('public', current_database(), 'CONNECT') AS public_may_connect
         FROM pg_roles r WHERE rolname = current_user`,
      )
      expect(who).toEqual({
        me: db.url().match(/\/\/(omniai_drill_\w+):/)![1],
        rolsuper: false,
        rolcreatedb: false,
        rolcreaterole: false,
        rolbypassrls: false,
        owner: who.me,
        not_its_own: 0,
        public_may_connect: false,
      })
      // What the dump's code would need, it does not have.
      await expect(sql(db.url(), "COPY (SELECT 1) TO PROGRAM 'true'")).rejects.toThrow(
        /must be superuser or have privileges of the pg_execute_server_program role/,
      )
      await expect(sql(db.url(), 'RESET ROLE; CREATE ROLE nope')).rejects.toThrow(
        /permission denied to create role/,
      )
    } finally {
      await db.close()
    }
    expect(await remains(userOf(db.url()))).toEqual({ role: false, database: false })
    // Its password no longer opens anything.
    await expect(sql(db.url(), 'SELECT 1')).rejects.toThrow()
  })

  it('an extension the restore server does not have: one line naming it and the fix; nothing left', async () => {
    const admin = new pg.Client({ connectionString: restoreServer })
    await admin.connect()
    const name = `omniai_drill_${process.pid}${++counter}`
    const role = new DrillRole(admin, parsePgUrl(restoreServer, 'test'), name, memoryLog())
    try {
      await role.create()
      await expect(
        role.prepare(
          [{ name: 'omniai_no_such_extension', schema: 'public' }],
          async (t) => {
            const c = new pg.Client({ connectionString: t.url })
            await c.connect()
            return c
          },
          15,
          memoryLog(),
        ),
      ).rejects.toThrow(
        /^backup-file: the backup needs the extension omniai_no_such_extension, which the restore server at 127\.0\.0\.1:\d+ does not have\. Fix: restore into a server that has it installed \(in a workflow, a services: image that includes omniai_no_such_extension\), then drill again\.$/,
      )
      expect(await remains(name)).toEqual({ role: true, database: true })
    } finally {
      await role.drop()
      await admin.end()
    }
    expect(await remains(name)).toEqual({ role: false, database: false })
  })

  describe('restore-connection-string names a role that is not a superuser', () => {
    const password = 'admin-pw-4-tests'
    let demo: Awaited<ReturnType<typeof backupOf>>
    beforeAll(async () => {
      const name = unique('plain')
      await sql(source, `CREATE DATABASE ${name}`)
      await generatePostgresDemo(onDb(source, name), { conversations: 5, auditRows: 10 })
      demo = await backupOf(onDb(source, name))
    })

    it('with CREATEROLE and CREATEDB it drills; without CREATEROLE it says what it needs', async () => {
      const able = unique('able_admin')
      await sql(
        restoreServer,
        `CREATE ROLE ${able} LOGIN CREATEDB CREATEROLE PASSWORD '${password}'`,
      )
      const { report, log } = await drill(
        demo.backups,
        demo.dir,
        asUser(restoreServer, able, password),
      )
      expect(failed(report)).toEqual({})
      expect(await remains(drillName(log.lines))).toEqual({ role: false, database: false })

      const unable = unique('unable_admin')
      await sql(restoreServer, `CREATE ROLE ${unable} LOGIN CREATEDB PASSWORD '${password}'`)
      const no = await drill(demo.backups, demo.dir, asUser(restoreServer, unable, password))
      expect(failed(no.report).restore).toMatch(
        new RegExp(
          `^the backup did not restore: restore-connection-string: role ${unable} cannot create the role the drill restores as \\(.*permission denied to create role.*\\)\\. .* Fix: use the restore server's superuser .*, or a role with CREATEROLE and CREATEDB\\.$`,
        ),
      )
      await sql(restoreServer, `DROP ROLE ${able}; DROP ROLE ${unable}`)
    })

    it('an untrusted extension it may not create: named, with the fix', async () => {
      const name = unique('untrusted')
      await sql(source, `CREATE DATABASE ${name}`)
      await generatePostgresDemo(onDb(source, name), { conversations: 5, auditRows: 10 })
      await sql(onDb(source, name), 'CREATE EXTENSION dblink')
      const { dir, backups } = await backupOf(onDb(source, name))
      const able = unique('able_admin')
      await sql(
        restoreServer,
        `CREATE ROLE ${able} LOGIN CREATEDB CREATEROLE PASSWORD '${password}'`,
      )
      const { report, log } = await drill(backups, dir, asUser(restoreServer, able, password))
      expect(failed(report).restore).toMatch(
        new RegExp(
          `^the backup did not restore: restore-connection-string: the backup needs the extension dblink, which role ${able} could not create in the scratch database \\(.*permission denied to create extension "dblink".*\\), and the drill's own role may not create it either\\. Fix: use the restore server's superuser in restore-connection-string`,
        ),
      )
      expect(await remains(drillName(log.lines))).toEqual({ role: false, database: false })
      await sql(restoreServer, `DROP ROLE ${able}`)
    })
  })
})

/** The user in a URL. */
function userOf(url: string) {
  return decodeURIComponent(new URL(url).username)
}

describe('restore over the live database: with the owner’s rights, not a superuser’s', () => {
  const ownerPassword = 'owner-pw-4-tests'

  /** A demo database owned by a role without superuser rights; pgcrypto made by the superuser. */
  async function owned() {
    const name = unique('owned')
    const owner = `${name}_app`
    await sql(source, `CREATE ROLE ${owner} LOGIN PASSWORD '${ownerPassword}'`)
    await sql(source, `CREATE DATABASE ${name} OWNER ${owner}`)
    const url = onDb(source, name)
    await sql(url, 'CREATE EXTENSION pgcrypto')
    const ownerUrl = asUser(url, owner, ownerPassword)
    await generatePostgresDemo(ownerUrl, { conversations: 10, auditRows: 20 })
    await sql(
      ownerUrl,
      `CREATE TABLE tokens (id int PRIMARY KEY, token text DEFAULT encode(gen_random_bytes(4), 'hex'));
       INSERT INTO tokens (id) VALUES (1), (2);`,
    )
    return { name, owner, url, ownerUrl }
  }

  const restore = (url: string, name: string, backups: string, dir: string) =>
    run('restore', { 'connection-string': url, 'backup-dir': backups, confirm: name }, dir)

  /** The role a restore made to stand in for the owner, as its log names it. */
  const standIn = (lines: string[]) =>
    /logged in as (omniai_restore_\w+)/.exec(lines.join('\n'))?.[1] ?? 'none in the log'

  const roleExists = async (role: string) =>
    (await sql(source, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).length > 0

  it('a superuser connection-string restores as the owner, through a role made for it and dropped', async () => {
    const db = await owned()
    const { dir, backups } = await backupOf(db.url)
    const { report, log } = await restore(db.url, db.name, backups, dir)
    expect(report.error).toBeUndefined()
    expect(failed(report)).toEqual({})
    const role = standIn(log.lines)
    expect(log.lines.join('\n')).toContain(
      `into ${parsePgUrl(db.url, 'x').redacted} as ${db.owner}, the owner of ${db.name}, not as superuser postgres (logged in as ${role}, a role made for the restore that is a member of ${db.owner} and nothing else, dropped afterwards)`,
    )
    expect(log.warnings.join('\n')).not.toMatch(/superuser/)
    expect(await roleExists(role)).toBe(false)
    // Everything restored belongs to the owner, as before; the extension stayed as it was.
    expect(
      await sql(
        db.url,
        `SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class c
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')`,
      ),
    ).toEqual([{ owner: db.owner }])
    expect(await sql(db.url, 'SELECT count(*)::int AS n FROM tokens')).toEqual([{ n: 2 }])
  })

  it("connection-string as the owner itself restores as it, the superuser's extension left in place", async () => {
    const db = await owned()
    const { dir, backups, archive } = await backupOf(db.ownerUrl)
    // Positive control: the bare pg_restore --clean as the owner fails at the extension.
    const control = await bare(
      'pg_restore',
      ['--clean', '--if-exists', '--single-transaction', '--exit-on-error', archive],
      db.ownerUrl,
    )
    expect((control as { stderr: string }).stderr).toMatch(/must be owner of extension pgcrypto/)
    const { report, log } = await restore(db.ownerUrl, db.name, backups, dir)
    expect(report.error).toBeUndefined()
    expect(failed(report)).toEqual({})
    expect(log.lines.join('\n')).toContain(
      `as ${db.owner}, connection-string's role (not a superuser)`,
    )
  })

  it('a CHECK constraint whose function RESETs ROLE and runs a program: SET ROLE alone lets it out, the restore does not', async () => {
    const db = await owned()
    const marker = path.join(markers, 'reset-role')
    // Made by the superuser, owned by the app's role: what a dump of a compromised app's
    // database may hold.
    await sql(
      db.url,
      `CREATE FUNCTION public.escape() RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN RESET ROLE; COPY (SELECT 1) TO PROGRAM 'cat > ${marker}'; RETURN true; END $$;
       ALTER FUNCTION public.escape() OWNER TO ${db.owner};
       ALTER TABLE tokens ADD CONSTRAINT tokens_escape CHECK (public.escape());`,
    )
    await fs.rm(marker, { force: true })
    const { dir, backups, archive } = await backupOf(db.url)
    expect(existsSync(marker)).toBe(false)

    // Positive controls: the superuser's pg_restore, even with --role=OWNER (SET ROLE), runs it.
    for (const role of [[], [`--role=${db.owner}`]]) {
      const copy = unique('control')
      await sql(source, `CREATE DATABASE ${copy} OWNER ${db.owner}`)
      await bare('pg_restore', ['--no-owner', ...role, archive], onDb(source, copy))
      await sql(source, `DROP DATABASE ${copy} WITH (FORCE)`)
      expect(existsSync(marker)).toBe(true)
      await fs.rm(marker)
    }

    const { report, log } = await restore(db.url, db.name, backups, dir)
    expect(existsSync(marker)).toBe(false)
    const role = standIn(log.lines)
    expect(report.error).toMatch(
      new RegExp(
        `^pg_restore failed \\(exit 1\\): code in the backup needs rights it was not given: must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program \\(loading table tokens\\)\\. The restore ran as ${db.owner}, the owner of ${db.name}, not as superuser postgres \\(logged in as ${role},.*\\), so it could not\\. Fix: .*\\. The restore was rolled back: the live database is as it was\\.$`,
      ),
    )
    expect(await sql(db.url, 'SELECT count(*)::int AS n FROM tokens')).toEqual([{ n: 2 }])
    expect(await roleExists(role)).toBe(false)
  })

  it('a database the superuser owns: restored as before, and a warning says code ran as superuser', async () => {
    const name = unique('su_owned')
    await sql(source, `CREATE DATABASE ${name}`)
    await generatePostgresDemo(onDb(source, name), { conversations: 5, auditRows: 10 })
    const { dir, backups } = await backupOf(onDb(source, name))
    const { report, log } = await restore(onDb(source, name), name, backups, dir)
    expect(failed(report)).toEqual({})
    expect(log.warnings).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^pg_restore runs as superuser postgres: ${name} is owned by postgres, itself a superuser\\. Code in the backup .* runs with superuser rights.* Fix: make a role without superuser rights own ${name}`,
        ),
      ),
    )
    expect(log.lines.join('\n')).toMatch(/single-transaction into .* as superuser postgres/)
  })
})

describe('tool errors: a row quoted under a function’s CONTEXT', () => {
  // Regression: only a CONTEXT that began with COPY was dropped; under a function's lines the
  // COPY line comes last, and the message keeps the last lines.
  it('is dropped as well', async () => {
    const { ToolError } = await import('../src/engines/postgres/tools.js')
    const stderr = [
      'pg_restore: error: COPY failed for table "users": ERROR:  division by zero',
      'CONTEXT:  PL/pgSQL function public.check_user(text) line 1 at RETURN',
      'COPY users, line 1: "999\tceo.private@omniai-secret.test\tCEO"',
    ].join('\n')
    expect(new ToolError('pg_restore', 1, stderr).message).not.toContain('omniai-secret')
  })
})
