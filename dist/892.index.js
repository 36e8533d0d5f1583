export const id = 892;
export const ids = [892];
export const modules = {

/***/ 99892:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  PostgresEngine: () => (/* binding */ PostgresEngine)
});

// UNUSED EXPORTS: FOREIGN_KEY_DEFINITION, tocNames

// EXTERNAL MODULE: ./lib/options/inputs.js
var inputs = __webpack_require__(91241);
// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(48161);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(77598);
// EXTERNAL MODULE: external "node:timers/promises"
var external_node_timers_promises_ = __webpack_require__(58500);
// EXTERNAL MODULE: ./lib/checks/checks.js
var checks_checks = __webpack_require__(73992);
// EXTERNAL MODULE: ./lib/util/cleanup.js
var cleanup = __webpack_require__(16100);
// EXTERNAL MODULE: ./lib/util/errors.js
var errors = __webpack_require__(99661);
// EXTERNAL MODULE: ./lib/checks/inspect.js
var inspect = __webpack_require__(7833);
// EXTERNAL MODULE: ./lib/engines/engine.js
var engine = __webpack_require__(38041);
// EXTERNAL MODULE: ./lib/engines/postgres/tools.js
var tools = __webpack_require__(23548);
// EXTERNAL MODULE: ./lib/engines/postgres/ssl.js
var ssl = __webpack_require__(41549);
// EXTERNAL MODULE: ./lib/engines/related.js
var engines_related = __webpack_require__(37796);
;// CONCATENATED MODULE: ./lib/engines/postgres/roles.js
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








/** Every right a role can be given beyond its own objects, refused. */
const UNPRIVILEGED = 'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';
/** A role left behind by a runner killed mid-restore cannot log in after this. */
const VALID_MS = 24 * 3600_000;
const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`;
/** 192 random bits, URL-safe: it goes into a connection URL as is. */
const newPassword = () => (0,external_node_crypto_.randomBytes)(24).toString('base64url');
/**
 * The password as PostgreSQL stores it (SCRAM-SHA-256, made as libpq's PQencryptPasswordConn
 * makes it): the password itself never reaches the server, nor its log.
 */
function scramVerifier(password) {
    const iterations = 4096;
    const salt = (0,external_node_crypto_.randomBytes)(16);
    const salted = (0,external_node_crypto_.pbkdf2Sync)(password, salt, iterations, 32, 'sha256');
    const clientKey = (0,external_node_crypto_.createHmac)('sha256', salted).update('Client Key').digest();
    const storedKey = (0,external_node_crypto_.createHash)('sha256').update(clientKey).digest();
    const serverKey = (0,external_node_crypto_.createHmac)('sha256', salted).update('Server Key').digest();
    return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
/** The server of `target`, another database, logged in as `user`. */
function asUser(target, database, user, password, input) {
    const u = new URL(target.url);
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password);
    u.pathname = `/${encodeURIComponent(database)}`;
    // A password in the query would win over the one in the user info.
    u.search = u.search
        .replace(/^\?/, '')
        .split('&')
        .filter((p) => p && !/^password=/i.test(p))
        .join('&');
    return (0,tools/* parsePgUrl */.c6)(u.href, input);
}
const stamp = () => `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${Math.random().toString(36).slice(2, 8)}`;
/** Gives `role` a password and LOGIN, until a day from now. */
async function allowLogin(admin, role, password) {
    await admin.query(`ALTER ROLE ${(0,engines_related/* quoteIdent */.v4)(role)} LOGIN PASSWORD '${scramVerifier(password)}' VALID UNTIL '${new Date(Date.now() + VALID_MS).toISOString()}'`);
}
/** Logs in once as `target`'s user: null when it can, else the server's words. */
async function cannotLogIn(target, input) {
    // With the admin URL's TLS settings (asUser keeps them), as pg_restore will log in.
    let client;
    try {
        client = await (0,ssl/* openPgClient */.vo)(target, input, {
            connectionTimeoutMillis: 15_000,
        });
    }
    catch (err) {
        return err.message;
    }
    await client.end().catch(() => undefined);
    return null;
}
/** Takes the role's rights away and drops it; `inDatabase` runs first, on the admin's database. */
async function dropRole(admin, role, inDatabase = '') {
    const q = (0,engines_related/* quoteIdent */.v4)(role);
    // First of all: whatever fails below, it can no longer log in.
    await admin.query(`ALTER ROLE ${q} NOLOGIN`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
        role,
    ]);
    if (inDatabase)
        await admin.query(inDatabase);
    await admin.query(`DROP ROLE IF EXISTS ${q}`);
}
/** A boolean column, whether the client parses types or (as the engine's does) keeps the text. */
const yes = (value) => value === true || value === 't';
async function adminFacts(admin) {
    const { rows } = await admin.query('SELECT current_user AS me, rolsuper AS su FROM pg_roles WHERE rolname = current_user');
    return { me: rows[0].me, su: yes(rows[0].su) };
}
/**
 * pg_restore refused something for want of rights: one line naming the refusal, the statement,
 * who restored, and the fix. Null for any other failure.
 */
function deniedRights(err, ranAs) {
    const stderr = (0,tools/* withoutRowValues */.xP)(err.stderr);
    const error = /ERROR:\s+(.*)/.exec(stderr)?.[1]?.trim();
    if (!error ||
        !/must be superuser|must be owner|permission denied|have privileges of/i.test(error))
        return null;
    const command = /^Command was: (.*)$/m.exec(stderr)?.[1]?.trim();
    const table = /COPY failed for table "([^"]+)"/.exec(stderr)?.[1];
    const during = command
        ? ` (running: ${command.length > 160 ? `${command.slice(0, 160)}...` : command})`
        : table
            ? ` (loading table ${table})`
            : '';
    return new errors/* UserError */.y(`${err.command} failed (exit ${err.exitCode ?? 'signal'}): code in the backup needs rights it was not given: ${error}${during}. The restore ran as ${ranAs}, so it could not. Fix: find what in the source database needs those rights (a function that a materialized view, an index, a constraint or a generated column calls; an untrusted language) and remove it: nothing in OmniAI's database should need a superuser to restore it.`);
}
const IDENT = String.raw `("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const unquote = (s) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
/**
 * The extensions an archive creates, each with its schema, read from pg_restore's own script of
 * just those entries. Only names come out of it, matched strictly and quoted again: nothing of
 * the dump's text is run.
 */
async function archiveExtensions(tool, archive, dir) {
    const { stdout: toc } = await (0,tools/* runTool */.qI)(tool, ['--list', archive], {});
    const entries = toc.split('\n').filter((l) => /^\d+; \d+ \d+ EXTENSION - /.test(l));
    if (entries.length === 0)
        return [];
    const list = external_node_path_.join(dir, 'extensions.list');
    await promises_.writeFile(list, `${entries.join('\n')}\n`, { mode: 0o600 });
    try {
        const { stdout } = await (0,tools/* runTool */.qI)(tool, ['--file=-', `--use-list=${list}`, archive], {});
        const create = new RegExp(`^CREATE EXTENSION IF NOT EXISTS ${IDENT} WITH SCHEMA ${IDENT};$`, 'gm');
        return [...stdout.matchAll(create)].map((m) => ({
            name: unquote(m[1]),
            schema: unquote(m[2]),
        }));
    }
    finally {
        await promises_.rm(list, { force: true });
    }
}
/**
 * The drill's own role, named as its scratch database: created NOLOGIN with no rights, made the
 * owner of the database, given LOGIN and a random password only once the database is ready, and
 * dropped with it. The password is masked, and reaches pg_restore through PGPASSWORD only.
 */
class DrillRole {
    client;
    server;
    name;
    password = newPassword();
    created = false;
    /** The restore-connection-string role, for messages. */
    admin = 'the restore-connection-string role';
    constructor(client, server, name, log) {
        this.client = client;
        this.server = server;
        this.name = name;
        log.mask?.(this.password);
    }
    /** The role, and the scratch database it owns (both named `name`). */
    async create() {
        const q = (0,engines_related/* quoteIdent */.v4)(this.name);
        const { me, su } = await adminFacts(this.client);
        this.admin = `role ${me}`;
        try {
            await this.client.query(`CREATE ROLE ${q} NOLOGIN ${UNPRIVILEGED}`);
        }
        catch (err) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: ${this.admin} cannot create the role the drill restores as (${(0,errors/* describeError */.U)(err)}). A drill restores as a role of its own, without superuser rights, so that code in the backup cannot act on the restore server. Fix: use the restore server's superuser (a services: postgres container's postgres user), or a role with CREATEROLE and CREATEDB.`);
        }
        this.created = true;
        // An admin that is not a superuser acts for the role through membership: to make it the
        // database's owner, and later to drop both.
        if (!su)
            await this.client.query(`GRANT ${q} TO CURRENT_USER`);
        // A fresh database of the action's own: pg_restore never touches an existing one.
        await this.client.query(`CREATE DATABASE ${q} OWNER ${q} TEMPLATE template0`);
        // It will hold every user's data: only its owner (and superusers) may connect.
        await this.client.query(`REVOKE ALL ON DATABASE ${q} FROM PUBLIC`);
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
    async prepare(extensions, open, serverMajor, log) {
        const q = (0,engines_related/* quoteIdent */.v4)(this.name);
        const leave = [];
        if (extensions.length === 0 && serverMajor >= 15)
            return leave;
        const client = await open((0,tools/* withDatabase */.kR)(this.server, this.name), inputs/* Inputs */.G0.RestoreConnectionString);
        try {
            if (serverMajor < 15) {
                // Before 15 the bootstrap superuser owns public, and the dump's COMMENT ON SCHEMA public
                // would fail; a non-superuser admin cannot change that, and the restore says so.
                await client.query(`ALTER SCHEMA public OWNER TO ${q}`).catch(() => undefined);
            }
            if (extensions.length === 0)
                return leave;
            const names = [...new Set(extensions.map((e) => e.name))];
            const { rows } = await client.query('SELECT name FROM pg_available_extensions WHERE name = ANY($1)', [names]);
            const missing = names.filter((n) => !rows.some((r) => r.name === n));
            if (missing.length) {
                const them = missing.length > 1 ? 'them' : 'it';
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: the backup needs the extension${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which the restore server at ${this.server.host}:${this.server.port} does not have. Fix: restore into a server that has ${them} installed (in a workflow, a services: image that includes ${missing.join(', ')}), then drill again.`);
            }
            for (const ext of extensions) {
                const { rows: schema } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [ext.schema]);
                if (schema.length === 0) {
                    await client.query(`CREATE SCHEMA ${(0,engines_related/* quoteIdent */.v4)(ext.schema)} AUTHORIZATION ${q}`);
                    leave.push(`SCHEMA - ${ext.schema} `);
                }
                try {
                    await client.query(`CREATE EXTENSION IF NOT EXISTS ${(0,engines_related/* quoteIdent */.v4)(ext.name)} WITH SCHEMA ${(0,engines_related/* quoteIdent */.v4)(ext.schema)} CASCADE`);
                }
                catch (err) {
                    throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: the backup needs the extension ${ext.name}, which ${this.admin} could not create in the scratch database (${(0,errors/* describeError */.U)(err)}), and the drill's own role may not create it either. Fix: use the restore server's superuser in restore-connection-string (a services: postgres container's postgres user is one).`);
                }
            }
            const { rows: made } = await client.query("SELECT extname AS n FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1");
            for (const { n } of made)
                leave.push(`COMMENT - EXTENSION ${n} `);
            log.info(`extensions ${made.map((r) => r.n).join(', ')} created in ${this.name} by ${this.admin} before the restore, from the restore server's own files`);
            return leave;
        }
        finally {
            await client.end().catch(() => undefined);
        }
    }
    /** Lets the role log in: where pg_restore and the checks connect. */
    async login() {
        await allowLogin(this.client, this.name, this.password);
        const target = asUser(this.server, this.name, this.name, this.password, inputs/* Inputs */.G0.RestoreConnectionString);
        const refused = await cannotLogIn(target, inputs/* Inputs */.G0.RestoreConnectionString);
        if (refused) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: the drill restores as a role of its own (${this.name}, without superuser rights), and the restore server at ${this.server.host}:${this.server.port} did not let it log in: ${refused}. Fix: let every user log in with a password from this runner in the restore server's pg_hba.conf (host all all 0.0.0.0/0 scram-sha-256, as the postgres image has it).`);
        }
        return target;
    }
    /** Drops the database, then the role. */
    async drop() {
        // The database exists only once the role does.
        if (!this.created)
            return;
        const q = (0,engines_related/* quoteIdent */.v4)(this.name);
        try {
            await dropRole(this.client, this.name, `DROP DATABASE IF EXISTS ${q} WITH (FORCE)`);
        }
        catch (err) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: the drill's scratch database and role ${this.name} were not both dropped (${(0,errors/* describeError */.U)(err)}). Fix: as ${this.admin}, DROP DATABASE IF EXISTS ${this.name}; then, in each database where it still owns something, DROP OWNED BY ${this.name}; then DROP ROLE ${this.name}.`);
        }
    }
}
/**
 * Who restores over the live database. A role that is not a superuser restores as itself. A
 * superuser hands the restore to a role made for it, a member of the database's owner and
 * nothing else, which logs in and SETs ROLE to the owner: code in the backup gets the owner's
 * rights, and RESET ROLE brings it back to that role, not to the superuser. When the owner is a
 * superuser itself, or the backup or the database holds objects the owner cannot restore or
 * drop, the superuser restores as before, and a warning says so.
 */
async function liveRights(target, tool, archive, open, log) {
    const { stdout: toc } = await (0,tools/* runTool */.qI)(tool, ['--list', archive], {});
    const client = await open(target, inputs/* Inputs */.G0.ConnectionString);
    let keep = false;
    try {
        const { rows } = await client.query(`SELECT current_user AS me, r.rolsuper AS su, o.rolname AS owner, o.rolsuper AS owner_su
       FROM pg_roles r, pg_database d JOIN pg_roles o ON o.oid = d.datdba
       WHERE r.rolname = current_user AND d.datname = current_database()`);
        const { me, owner } = rows[0];
        const su = yes(rows[0].su);
        const ownerSu = yes(rows[0].owner_su);
        const db = target.database;
        const entries = toc
            .split('\n')
            .map((l) => /^\d+; \d+ \d+ (.*)$/.exec(l)?.[1])
            .filter((e) => e !== undefined);
        const archived = entries
            .map((e) => /^EXTENSION - (\S+) ?$/.exec(e)?.[1])
            .filter((n) => n !== undefined);
        const { rows: present } = await client.query('SELECT extname AS n FROM pg_extension WHERE extname = ANY($1)', [archived]);
        // The live database's extensions stay as they are: dropping one takes its owner, often a
        // superuser; the objects that use them are dropped and restored around them.
        const leave = present.flatMap(({ n }) => [`EXTENSION - ${n} `, `COMMENT - EXTENSION ${n} `]);
        const absent = archived.filter((n) => !present.some((p) => p.n === n));
        // Trusted extensions are the ones a database's owner may create (PostgreSQL 13 and later;
        // before, the column is missing and none is).
        const { rows: trusted } = await client.query(`SELECT a.name AS n FROM pg_available_extensions a
       JOIN pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version
       WHERE a.name = ANY($1) AND coalesce((to_jsonb(v) ->> 'trusted')::boolean, false)`, [absent]);
        const untrusted = absent.filter((n) => !trusted.some((t) => t.n === n));
        if (!su) {
            if (untrusted.length) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ConnectionString}: the backup creates the extension${untrusted.length > 1 ? 's' : ''} ${untrusted.join(', ')}, which ${db} does not have and role ${me} (not a superuser) may not create. Fix: as a superuser, CREATE EXTENSION ${untrusted.join(', ')} in ${db}, then restore again; nothing was changed.`);
            }
            return {
                target,
                args: [],
                leave,
                who: `as ${me}, connection-string's role (not a superuser)`,
                done: async () => undefined,
            };
        }
        const asSuperuser = (why, fix) => {
            log.warning(`pg_restore runs as superuser ${me}: ${why}. Code in the backup (functions that its materialized views, indexes, constraints and generated columns call while they are restored) runs with superuser rights, and could run programs on the database server. Fix: ${fix}`);
            return { target, args: [], leave: [], who: `as superuser ${me}`, done: async () => undefined };
        };
        const ownerFix = `make a role without superuser rights own ${db} and everything in it (ALTER DATABASE ${db} OWNER TO omniai; ALTER ... OWNER TO omniai), as the app's own migrations would.`;
        if (ownerSu)
            return asSuperuser(`${db} is owned by ${owner}, itself a superuser`, ownerFix);
        const others = [
            ...new Set(entries.map((e) => e.slice(e.lastIndexOf(' ') + 1)).filter((o) => o && o !== owner)),
        ].filter((o) => o !== 'pg_database_owner');
        if (others.length) {
            return asSuperuser(`the backup holds objects owned by ${others.join(', ')}, not by ${db}'s owner ${owner}, and only a superuser restores them as they were`, ownerFix);
        }
        const { rows: foreign } = await client.query(`SELECT pg_describe_object(x.cls, x.oid, 0) AS what, pg_get_userbyid(x.owner) AS who FROM (
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
       ORDER BY 1 LIMIT 4`);
        if (foreign.length) {
            return asSuperuser(`${db} holds objects that its owner ${owner} does not own and so cannot drop (${foreign.map((f) => `${f.what}, owned by ${f.who}`).join('; ')})`, ownerFix);
        }
        if (untrusted.length) {
            return asSuperuser(`the backup creates the extension${untrusted.length > 1 ? 's' : ''} ${untrusted.join(', ')}, which ${db} does not have and its owner ${owner} may not create`, `as a superuser, CREATE EXTENSION ${untrusted.join(', ')} in ${db} before restoring.`);
        }
        const role = `omniai_restore_${stamp()}`;
        const password = newPassword();
        log.mask?.(password);
        await client.query(`CREATE ROLE ${(0,engines_related/* quoteIdent */.v4)(role)} NOLOGIN ${UNPRIVILEGED} IN ROLE ${(0,engines_related/* quoteIdent */.v4)(owner)}`);
        const done = async () => {
            try {
                // Anything it owns was made by code in the backup that stepped out of SET ROLE.
                await dropRole(client, role, `DROP OWNED BY ${(0,engines_related/* quoteIdent */.v4)(role)}`);
            }
            catch (err) {
                log.warning(`role ${role}, made for the restore, was not dropped (${(0,errors/* describeError */.U)(err)}); it can no longer log in. Fix: as a superuser, in ${db}: DROP OWNED BY ${role}; DROP ROLE ${role}.`);
            }
            finally {
                await client.end().catch(() => undefined);
            }
        };
        try {
            await allowLogin(client, role, password);
            const as = asUser(target, db, role, password, inputs/* Inputs */.G0.ConnectionString);
            const refused = await cannotLogIn(as, inputs/* Inputs */.G0.ConnectionString);
            if (refused) {
                await done();
                return asSuperuser(`the role made to restore as ${db}'s owner ${owner} could not log in (${refused})`, `let password logins from this runner in for every user in the server's pg_hba.conf, or set connection-string to ${owner}'s own URL.`);
            }
            keep = true;
            const who = `as ${owner}, the owner of ${db}, not as superuser ${me} (logged in as ${role}, a role made for the restore that is a member of ${owner} and nothing else, dropped afterwards)`;
            log.info(`pg_restore runs ${who}`);
            return { target: as, args: [`--role=${owner}`], leave, who, done };
        }
        catch (err) {
            await done();
            throw err;
        }
    }
    finally {
        if (!keep)
            await client.end().catch(() => undefined);
    }
}

;// CONCATENATED MODULE: ./lib/engines/postgres/session.js


/** Every value as the server's own text: exact (no float or timestamp rounding in JavaScript). */
const RAW_TYPES = { getTypeParser: () => (value) => value };
/** Rows fetched per round trip when streaming the audit log. */
const FETCH_ROWS = 10_000;
const session_USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`;
/**
 * One line for a failed connection, naming the input, host and database; never the URL, whose
 * user info and query may hold a password.
 */
function connectionError(err, target, input) {
    // TLS problems (openPgClient) already say which setting and how to fix it.
    if (err instanceof errors/* UserError */.y)
        return err;
    const e = err;
    const where = `${target.host}:${target.port}`;
    // The driver's own words, with any secret it might repeat taken out.
    const said = target.secrets.reduce((text, secret) => text.split(secret).join('***'), e.message ?? String(err));
    switch (e.code) {
        case 'ECONNREFUSED':
            return new errors/* UserError */.y(`${input}: cannot connect to ${where} (connection refused). Fix: check host and port, and that the server is running (in a workflow: a services: postgres container with its port mapped).`);
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
            return new errors/* UserError */.y(`${input}: host ${target.host} not found. Fix: check the host name in the URL.`);
        case '28P01':
            return new errors/* UserError */.y(`${input}: password authentication failed at ${where}. Fix: check the user and password in the secret.`);
        case '3D000':
            return new errors/* UserError */.y(`${input}: database "${target.database}" does not exist at ${where}. Fix: check the database name at the end of the URL.`);
        case '28000':
            return new errors/* UserError */.y(`${input}: ${said} (at ${where}). Fix: check the user name and the server's pg_hba.conf.`);
        default:
            return new errors/* UserError */.y(`${input}: cannot connect to database "${target.database}" at ${where}: ${said}`);
    }
}
async function connect(target, input) {
    try {
        // TLS as libpq makes it for pg_dump from the same URL: one connects where the other does.
        return await (0,ssl/* openPgClient */.vo)(target, input, {
            types: RAW_TYPES,
            connectionTimeoutMillis: 15_000,
            application_name: 'omniai-backups',
            // Values are compared as the server prints them: pin every setting that changes how a
            // value prints, so a restore server in another time zone or with other defaults prints
            // the same.
            options: '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex',
        });
    }
    catch (err) {
        throw connectionError(err, target, input);
    }
}
async function serverFacts(client) {
    const { rows } = await client.query("SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n");
    let systemIdentifier;
    try {
        const r = await client.query('SELECT system_identifier AS id FROM pg_control_system()');
        systemIdentifier = r.rows[0]?.id;
    }
    catch {
        // Not allowed for this role on some managed servers; host and port are compared instead.
    }
    return {
        version: rows[0].v,
        versionNum: Number(rows[0].n),
        major: Math.floor(Number(rows[0].n) / 10000),
        systemIdentifier,
    };
}
/** How inputs, manifests and reports name a table: bare in public, schema-qualified elsewhere. */
const displayName = (schema, name) => schema === 'public' ? name : `${schema}.${name}`;
const majorOf = (version) => Number(/(\d+)/.exec(version ?? '')?.[1] ?? 0);

// EXTERNAL MODULE: ./lib/checks/audit.js
var audit = __webpack_require__(97622);
;// CONCATENATED MODULE: ./lib/engines/postgres/audit.js
/**
 * The audit-log digest computed by the PostgreSQL server, in one query, instead of every row
 * streamed to Node and hashed there (checks/audit.ts digestAudit): the same chunks, sums and
 * checks, with the row's text as the server prints it (`ROW(t.*)::text`, under the settings
 * connect() pins) in place of checks/digest.ts encodeRow. For tables keyed by one integer
 * column, which is what an audit log is; other keys keep the Node digest.
 *
 * Per chunk of AUDIT_CHUNK_ROWS rows in key order:
 *   sha256      = sha256 of the rows' text in key order, each followed by a newline (UTF-8)
 *   h(row)      = hashtextextended(the row's text, 0), 56 bits of it: the sums only name a
 *                 row once the chunk's sha256 says it differs (a sha256 per row cost the server
 *                 3.8 s of CPU per million rows, this 0.25 s)
 *   keySum, hashSum = Σ h mod P, weightedSum = Σ key·h mod P, as in checks/audit.ts
 * and over the whole table: sha256 of the chunks' sha256 (hex), one line each, in key order.
 *
 * A manifest says which digest it holds (`hashing`): a drill computes the digest of the
 * restored copy the same way, so an older manifest (no `hashing`) is checked with the Node
 * digest as before.
 */



/** The value of AuditDigest.hashing for a digest made here. */
const SERVER_HASHING = 'postgres-row-text';
/** Column types whose values the integer sums of checks/audit.ts take as they are. */
const INTEGER_KEY_TYPES = new Set(['smallint', 'integer', 'bigint']);
/** The Mersenne prime of checks/audit.ts. */
const P = '2305843009213693951';
/** 2^56 - 1: h(row) below P, as checks/audit.ts keeps it. */
const H_MASK = '72057594037927935';
/** Keys up to this size in either direction take WEIGHTED_SUM's bigint sums. */
const SMALL_KEY = '34359738367';
/**
 * Σ key·h over a chunk, exactly, as Σ key::numeric * h would give it, for less: with h split at
 * bit 28 (h = hi·2^28 + lo, each below 2^28), key·hi and key·lo fit a bigint for |key| < 2^35,
 * and PostgreSQL sums bigints in 128 bits instead of multiplying numerics row by row. Larger
 * keys take the numeric product. Measured on 1M audit rows, 3 runs each, the whole digest:
 * 2.02-2.16 s against 2.22-2.42 s, the same values.
 */
const WEIGHTED_SUM = `coalesce(sum(k * (h >> 28)) FILTER (WHERE k BETWEEN -${SMALL_KEY} AND ${SMALL_KEY}), 0) * 268435456
               + coalesce(sum(k * (h & 268435455)) FILTER (WHERE k BETWEEN -${SMALL_KEY} AND ${SMALL_KEY}), 0)
               + coalesce(sum(k::numeric * h) FILTER (WHERE k NOT BETWEEN -${SMALL_KEY} AND ${SMALL_KEY}), 0)`;
/** hashtextextended and sha256() came with PostgreSQL 11. */
const SERVER_DIGEST_MIN_VERSION_NUM = 110000;
/**
 * Digests `sqlName` (keyed by the integer column `key`) on `client`. Without `boundaries` the
 * chunks are AUDIT_CHUNK_ROWS rows each (their first keys read from the primary key's index
 * first). With `boundaries` (the first keys of a manifest's chunks) a row belongs to the chunk of
 * the largest boundary at or below its key, and the chunk is named by that boundary even when
 * its first row is gone, so a deleted first row is named like any other; rows below every
 * boundary form a chunk of their own, named by their first key.
 *
 * `query` may be several sessions (a restored copy's, with a manifest's boundaries): the key
 * range is then cut at a boundary into one part per session, digested side by side, and the
 * parts' chunks joined in key order make the same digest as one session's. Measured on 1M
 * audit rows (160 B each) with nothing else running, 2 cores, 3 runs: 1.10-1.19 s in two
 * sessions against 2.18-2.23 s in one. In a drill at 1 GiB, beside the row counts and the
 * foreign-key check in their own sessions, 4 pairs of runs: checks 2.70-2.82 s against
 * 3.18-3.37 s, the drill 11.19-12.12 s against 11.89-12.37 s.
 */
async function serverAuditDigest(query, table, sqlName, key, boundaries) {
    const sessions = typeof query === 'function' ? [query] : query;
    const k = (0,engines_related/* quoteIdent */.v4)(key);
    // The first key, then each key AUDIT_CHUNK_ROWS rows on: a hop of that many index entries
    // per chunk. Measured on 1M rows, alone: 56 ms, against 220-245 ms for numbering every row
    // with row_number() and keeping every 1000th (500 ms next to pg_dump).
    const starts = boundaries ??
        (await sessions[0](`WITH RECURSIVE b(k) AS (
           SELECT min(t.${k}) FROM ${sqlName} t
           UNION ALL
           SELECT (SELECT t.${k} FROM ${sqlName} t WHERE t.${k} > b.k ORDER BY t.${k}
                   OFFSET ${audit/* AUDIT_CHUNK_ROWS */.iL - 1} LIMIT 1)
           FROM b WHERE b.k IS NOT NULL)
         SELECT b.k::text FROM b WHERE b.k IS NOT NULL ORDER BY b.k`)).map((r) => r[0]);
    const parts = cutAtBoundaries(starts, boundaries ? sessions.length : 1);
    const digested = await Promise.all(parts.map((part, i) => chunksOf(sessions[i], sqlName, k, part)));
    const chunks = digested.flat();
    const all = (0,external_node_crypto_.createHash)('sha256');
    let count = 0;
    for (const chunk of chunks) {
        all.update(`${chunk.sha256}\n`);
        count += chunk.rows;
    }
    return {
        table,
        key: [key],
        rows: count,
        lastKey: chunks.at(-1)?.lastKey ?? null,
        sha256: all.digest('hex'),
        chunks,
        hashing: SERVER_HASHING,
    };
}
/** `starts` cut into at most `count` parts of about as many chunks each, at boundaries. */
function cutAtBoundaries(starts, count) {
    const n = Math.max(1, Math.min(count, starts.length));
    const parts = [];
    for (let i = 0; i < n; i++) {
        const from = Math.floor((i * starts.length) / n);
        const to = Math.floor(((i + 1) * starts.length) / n);
        parts.push({
            starts: starts.slice(from, to),
            below: i === 0,
            end: i === n - 1 ? null : starts[to],
        });
    }
    return parts;
}
/**
 * The chunks of one part, in key order. Chunk by chunk through the primary key's index: each
 * chunk's rows are put in key order in memory, never the whole table.
 */
async function chunksOf(query, sqlName, k, { starts, below, end }) {
    const text = `
    WITH b AS (
      SELECT n, lo, CASE WHEN coalesce(lead(lo) OVER w, $3::bigint) IS NULL
                           THEN 9223372036854775807
                         WHEN coalesce(lead(lo) OVER w, $3::bigint) = -9223372036854775808
                           THEN NULL
                         ELSE coalesce(lead(lo) OVER w, $3::bigint) - 1 END AS hi
      FROM unnest(CASE WHEN $2::boolean THEN ARRAY[-9223372036854775808]::bigint[]
                       ELSE '{}'::bigint[] END || $1::bigint[]) WITH ORDINALITY u(lo, n)
      WINDOW w AS (ORDER BY n))
    SELECT b.n, c.* FROM b CROSS JOIN LATERAL (
      SELECT min(k)::text, max(k)::text, count(*) AS rows,
             encode(sha256(convert_to(string_agg(r || E'\\n', '' ORDER BY k), 'UTF8')), 'hex'),
             sum(k)::text, (sum(h) % ${P})::text, (((${WEIGHTED_SUM}) % ${P} + ${P}) % ${P})::text
      FROM (SELECT k, r, hashtextextended(r COLLATE "C", 0) & ${H_MASK} AS h
            FROM (SELECT t.${k} AS k, ROW(t.*)::text AS r FROM ${sqlName} t
                  WHERE t.${k} >= b.lo AND t.${k} <= b.hi OFFSET 0) i) j
    ) c WHERE c.rows > 0 ORDER BY b.n`;
    // The last chunk of a part ends where the next part's first boundary begins, as in one
    // session's query (the server reads the boundary: a manifest's text is never parsed here).
    const result = await query(text, [starts, below, end]);
    // Every value arrives as the server's text (connect() parses no types).
    return result.map(([n, first, lastKey, rows, sha256, keySum, hashSum, weightedSum]) => {
        const at = Number(n) - (below ? 2 : 1);
        return {
            firstKey: at >= 0 ? starts[at] : first,
            lastKey: lastKey,
            rows: Number(rows),
            sha256: sha256,
            keySum: keySum,
            hashSum: hashSum,
            weightedSum: weightedSum,
        };
    });
}

;// CONCATENATED MODULE: ./lib/engines/postgres/database.js
/**
 * An open PostgreSQL database as the checks see it (`Database`): the source inside pg_dump's
 * snapshot, or a drill's restored scratch copy; schema, row counts, the spot-check's and the
 * audit log's digests, the integrity findings, each query on a session of its own where that
 * is faster.
 */






/**
 * Sessions a restored copy's audit-log digest is spread over (serverAuditDigest), each taking
 * part of the key range.
 */
const AUDIT_SESSIONS = 2;
class PgDatabase {
    client;
    target;
    inTransaction;
    onClose;
    options;
    tablesCache;
    keyCache = new Map();
    foreignKeysCache;
    prestarted = null;
    /** Settled once the prestarted digest has what it needs from this session (or has failed). */
    auditStarted = null;
    /** Whether this role may read pg_stat_activity (sessionsNamed). */
    seesSessions;
    countsStarted;
    queue = Promise.resolve();
    constructor(client, target, 
    /** True inside the snapshot transaction pg_dump shares; cursors then need no BEGIN of their own. */
    inTransaction, onClose = async () => undefined, options = {}) {
        this.client = client;
        this.target = target;
        this.inTransaction = inTransaction;
        this.onClose = onClose;
        this.options = options;
    }
    /**
     * Runs `fn` on up to `count` side sessions, as many as can be had (closed after), else on this
     * one: also when the server refuses another session (a role's CONNECTION LIMIT,
     * max_connections), as before side sessions existed; it is slower, never a failure.
     */
    async onSides(count, fn) {
        const open = this.options.side;
        if (!open)
            return fn([this]);
        const opened = await Promise.allSettled(Array.from({ length: count }, () => open()));
        const sides = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
        try {
            return await fn(sides.length ? sides : [this]);
        }
        finally {
            await Promise.all(sides.map((side) => side.client.end().catch(() => undefined)));
        }
    }
    /** onSides with one session. */
    onSide(fn) {
        return this.onSides(1, ([db]) => fn(db));
    }
    /**
     * Whether the server digests `table` itself: an integer primary key of one column on
     * PostgreSQL 11 or later, and, on a restored copy, a manifest digest made the same way.
     */
    async serverDigests(table) {
        const expected = this.options.manifestAudit;
        if (expected !== undefined && expected?.hashing !== SERVER_HASHING)
            return false;
        if ((this.options.serverVersionNum ?? 0) < SERVER_DIGEST_MIN_VERSION_NUM)
            return false;
        const key = await this.keyColumns(table);
        if (key.length !== 1)
            return false;
        const type = (await this.schema()).tables
            .find((t) => t.name === table)
            ?.columns.find((c) => c.name === key[0])?.type;
        return type !== undefined && INTEGER_KEY_TYPES.has(type);
    }
    /**
     * A restored copy checked against a manifest whose audit digest the server makes: starts that
     * digest now, in a session of its own, with the manifest's chunk boundaries.
     */
    prestartAudit() {
        const expected = this.options.manifestAudit;
        if (!expected || expected.hashing !== SERVER_HASHING)
            return;
        const boundaries = expected.chunks.map((c) => c.firstKey);
        let ready;
        // The counts' session is this one, which the digest's start needs first (the key and its
        // type, the table's name): the counts wait for that, not the other way round.
        this.auditStarted = new Promise((resolve) => (ready = resolve));
        const digest = (async () => {
            if (!(await this.serverDigests(expected.table))) {
                // The restored table lost its integer key: the digest as the manifest's cannot be made.
                throw new errors/* UserError */.y(`${expected.table}: the restored copy has no single integer primary key, which the manifest's audit-log digest was made by`);
            }
            const sqlName = await this.sqlName(expected.table);
            const key = (await this.keyColumns(expected.table))[0];
            ready();
            // Two sessions, each digesting half the key range: the restore is over, the server has
            // nothing else to do but the other checks, which end long before the digest.
            return this.onSides(AUDIT_SESSIONS, (dbs) => serverAuditDigest(dbs.map((db) => (text, values) => db.rows(text, values)), expected.table, sqlName, key, boundaries));
        })();
        digest.catch(() => undefined);
        digest.then(ready, ready);
        this.prestarted = { table: expected.table, digest };
    }
    /**
     * How many sessions named `applicationName` the server shows now, or null where this role may
     * not read pg_stat_activity. Asked first, not tried: an error here would abort the transaction
     * whose snapshot pg_dump and the checks share (and other queries of this session come between
     * any two of these, so a savepoint could not catch it).
     */
    async sessionsNamed(applicationName) {
        this.seesSessions ??= this.rows(`SELECT has_table_privilege('pg_catalog.pg_stat_activity', 'SELECT')
              AND has_function_privilege('pg_catalog.pg_stat_clear_snapshot()', 'EXECUTE')`).then((r) => r[0]?.[0] === 't');
        if (!(await this.seesSessions))
            return null;
        // A transaction reads pg_stat_activity once and keeps what it read; now, not then.
        await this.rows('SELECT pg_stat_clear_snapshot()');
        const [[n]] = (await this.rows('SELECT count(*)::text FROM pg_stat_activity WHERE application_name = $1', [applicationName]));
        return Number(n);
    }
    /** One query at a time on this session, as the checks run side by side (pg 8 warns, pg 9 refuses). */
    rows(text, values = []) {
        const run = this.queue.then(() => this.client.query({ text, values, rowMode: 'array' }));
        this.queue = run.catch(() => undefined);
        return run.then((r) => r.rows);
    }
    async tables() {
        if (this.tablesCache)
            return this.tablesCache;
        const rows = await this.rows(`SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${session_USER_SCHEMAS} ORDER BY 1, 2`);
        this.tablesCache = new Map(rows.map(([schema, name]) => {
            const display = schema === 'public' ? name : `${schema}.${name}`;
            return [display, { schema: schema, name: name, display }];
        }));
        return this.tablesCache;
    }
    async sqlName(display) {
        const t = (await this.tables()).get(display);
        if (!t)
            throw new errors/* UserError */.y(`table "${display}" is not in the database`);
        return `${(0,engines_related/* quoteIdent */.v4)(t.schema)}.${(0,engines_related/* quoteIdent */.v4)(t.name)}`;
    }
    async bytes() {
        return Number((await this.rows('SELECT pg_database_size(current_database())'))[0][0]);
    }
    url() {
        return this.target.url;
    }
    async close() {
        // A digest still running in its own session ends before the scratch database is dropped.
        await this.prestarted?.digest.catch(() => undefined);
        await this.countsStarted?.catch(() => undefined);
        if (!this.inTransaction || this.options.closeInTransaction)
            await this.client.end().catch(() => undefined);
        await this.onClose();
    }
    /** In a session of its own where there can be one: it reads whole tables (foreign keys). */
    async integrityProblems() {
        return this.onSide((db) => db.integrityHere());
    }
    async integrityHere() {
        const problems = [];
        for (const [ix] of await this.rows('SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid')) {
            problems.push(`index ${ix} is not valid`);
        }
        const notValid = (await this.rows(`SELECT n.nspname, c.relname, k.conname FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT k.convalidated AND ${session_USER_SCHEMAS} ORDER BY 1, 2, 3`)).map(([schema, table, name]) => `${displayName(schema, table)}.${name}`);
        // A sequence behind its column's maximum hands out ids that already exist: after a bad
        // restore, the first insert fails with a duplicate key.
        const owned = await this.rows(`SELECT d.objid::regclass::text, d.refobjid::regclass::text, a.attname, s.last_value::text
       FROM pg_depend d
       JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
       JOIN pg_sequences s ON s.schemaname = (SELECT nspname FROM pg_namespace WHERE oid = sc.relnamespace) AND s.sequencename = sc.relname
       WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')`);
        for (const [seq, table, column, last] of owned) {
            const [max] = (await this.rows(`SELECT max(${(0,engines_related/* quoteIdent */.v4)(column)})::text FROM ${table}`))[0];
            if (max !== null && max !== undefined && (last === null || BigInt(max) > BigInt(last))) {
                problems.push(`sequence ${seq} is at ${last ?? 'its start'}, behind max(${table}.${column}) = ${max}`);
            }
        }
        return { damage: problems, foreignKeys: await this.foreignKeyViolations(), notValid };
    }
    /**
     * Rows whose foreign key points at no row, per constraint: possible under a NOT VALID
     * constraint, or after triggers were disabled (session_replication_role = replica, ALTER
     * TABLE ... DISABLE TRIGGER ALL). MATCH SIMPLE: a key with a NULL in it references nothing.
     */
    async foreignKeyViolations() {
        const constraints = await this.rows(`SELECT k.conname, cn.nspname, c.relname, pn.nspname, p.relname,
              (SELECT json_agg(a.attname ORDER BY u.i) FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n)::text,
              (SELECT json_agg(a.attname ORDER BY u.i) FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n)::text
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
       WHERE k.contype = 'f' AND ${session_USER_SCHEMAS.replace(/\bn\./g, 'cn.')} ORDER BY 2, 3, 1`);
        const found = [];
        for (const [name, cs, c, ps, p, fromJson, toJson] of constraints) {
            const from = JSON.parse(fromJson);
            const to = JSON.parse(toJson);
            const child = `${(0,engines_related/* quoteIdent */.v4)(cs)}.${(0,engines_related/* quoteIdent */.v4)(c)}`;
            const parent = `${(0,engines_related/* quoteIdent */.v4)(ps)}.${(0,engines_related/* quoteIdent */.v4)(p)}`;
            const [[count]] = (await this.rows(`SELECT count(*)::text FROM ${child} c WHERE ${from.map((f) => `c.${(0,engines_related/* quoteIdent */.v4)(f)} IS NOT NULL`).join(' AND ')}
         AND NOT EXISTS (SELECT 1 FROM ${parent} p WHERE ${from.map((f, i) => `p.${(0,engines_related/* quoteIdent */.v4)(to[i])} = c.${(0,engines_related/* quoteIdent */.v4)(f)}`).join(' AND ')})`));
            if (Number(count) > 0) {
                found.push({
                    table: displayName(cs, c),
                    parent: displayName(ps, p),
                    constraint: name,
                    rows: Number(count),
                });
            }
        }
        return found;
    }
    async schema() {
        const tables = await this.tables();
        const display = (schema, name) => schema === 'public' ? name : `${schema}.${name}`;
        const columns = await this.rows(`SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
              pg_get_expr(d.adbin, d.adrelid), coalesce(array_position(pk.conkey, a.attnum), 0)::text
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN pg_constraint pk ON pk.conrelid = a.attrelid AND pk.contype = 'p'
       WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ${session_USER_SCHEMAS}
       ORDER BY n.nspname, c.relname, a.attnum`);
        const byTable = new Map([...tables.keys()].map((t) => [t, { name: t, columns: [] }]));
        for (const [schema, table, name, type, notNull, dflt, pk] of columns) {
            byTable.get(display(schema, table))?.columns.push({
                name: name,
                type: type,
                notNull: notNull === 'true',
                default: dflt ?? null,
                pk: Number(pk),
            });
        }
        const indexes = (await this.rows(`SELECT n.nspname, ic.relname, tn.nspname, t.relname, i.indisunique::text,
                array_to_json(array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k))::text,
                pg_get_indexdef(i.indexrelid)
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
         JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE ${session_USER_SCHEMAS} ORDER BY 1, 2`)).map(([schema, name, tschema, table, unique, cols, sql]) => ({
            name: display(schema, name),
            table: display(tschema, table),
            unique: unique === 'true',
            columns: JSON.parse(cols),
            sql: sql,
        }));
        const objects = async (query) => (await this.rows(query)).map(([schema, table, name, sql]) => ({
            name: `${display(schema, table)}.${name}`,
            table: display(schema, table),
            sql: sql,
        }));
        const triggers = await objects(`SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
       JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE NOT t.tgisinternal AND ${session_USER_SCHEMAS} ORDER BY 1, 2, 3`);
        const constraints = await objects(
        // Validity is tracked apart (integrityProblems' notValid): a constraint's definition is the
        // same whether or not it was created NOT VALID.
        `SELECT n.nspname, c.relname, k.conname, regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${session_USER_SCHEMAS} ORDER BY 1, 2, 3`);
        const views = (await this.rows(`SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('v', 'm') AND ${session_USER_SCHEMAS} ORDER BY 1, 2`)).map(([schema, name, sql]) => ({ name: display(schema, name), table: '', sql: sql }));
        const sequences = (await this.rows(`SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'S' AND ${session_USER_SCHEMAS} ORDER BY 1, 2`)).map(([schema, name]) => ({ name: display(schema, name), table: '', sql: '' }));
        return { tables: [...byTable.values()], indexes, triggers, views, constraints, sequences };
    }
    async rowCounts(tables) {
        const started = await this.countsStarted?.catch(() => null);
        if (started && tables.every((t) => t in started)) {
            return Object.fromEntries(tables.map((t) => [t, started[t]]));
        }
        return this.countHere(tables);
    }
    /**
     * A restored copy: counts every table's rows now, in this session, so that it does not sit
     * idle while the drill waits for the audit digest from another.
     */
    prestartCounts() {
        this.countsStarted = (async () => {
            await this.auditStarted;
            return this.countHere([...(await this.tables()).keys()]);
        })();
        this.countsStarted.catch(() => undefined);
    }
    async countHere(tables) {
        const counts = {};
        for (const t of tables)
            counts[t] = Number((await this.rows(`SELECT count(*) FROM ${await this.sqlName(t)}`))[0][0]);
        return counts;
    }
    /** Primary-key columns in key order. */
    async keyColumns(display) {
        const cached = this.keyCache.get(display);
        if (cached)
            return cached;
        const rows = await this.rows(`SELECT a.attname FROM pg_constraint k
       JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, pos) ON true
       JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
       WHERE k.conrelid = $1::regclass AND k.contype = 'p' ORDER BY u.pos`, [await this.sqlName(display)]);
        const key = rows.map((r) => r[0]);
        this.keyCache.set(display, key);
        return key;
    }
    async orderBy(display) {
        const key = await this.keyColumns(display);
        // Without a primary key, every column in order: deterministic, if slower.
        if (key.length)
            return key.map(engines_related/* quoteIdent */.v4).join(', ');
        const n = (await this.schema()).tables.find((t) => t.name === display)?.columns.length ?? 1;
        return Array.from({ length: n }, (_, i) => String(i + 1)).join(', ');
    }
    async foreignKeys() {
        if (this.foreignKeysCache)
            return this.foreignKeysCache;
        const rows = await this.rows(`SELECT cn.nspname, c.relname, ca.attname, pn.nspname, p.relname, pa.attname
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
       JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
       JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
       WHERE k.contype = 'f' AND array_length(k.conkey, 1) = 1`);
        const d = (schema, name) => (schema === 'public' ? name : `${schema}.${name}`);
        this.foreignKeysCache = rows.map(([cs, c, from, ps, p, to]) => ({
            child: d(cs, c),
            from: from,
            parent: d(ps, p),
            to: to,
        }));
        return this.foreignKeysCache;
    }
    async conversationKey(table) {
        const key = await this.keyColumns(table);
        if (key.length !== 1) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ConversationsTable}: ${table} has no single-column primary key, which the spot-check needs to name conversations. Fix: set conversations-table to the table of conversations, or none.`);
        }
        return key[0];
    }
    async recentConversations(table, count) {
        const key = await this.conversationKey(table);
        const names = (await this.schema()).tables
            .find((t) => t.name === table)
            .columns.map((c) => c.name);
        const recency = engines_related/* RECENCY_COLUMNS */.Mu.find((c) => names.includes(c)) ?? key;
        const ids = (await this.rows(`SELECT ${(0,engines_related/* quoteIdent */.v4)(key)}::text FROM ${await this.sqlName(table)} ORDER BY ${(0,engines_related/* quoteIdent */.v4)(recency)} DESC NULLS LAST, ${(0,engines_related/* quoteIdent */.v4)(key)} DESC LIMIT $1`, [count])).map((r) => r[0]);
        return { ...(await this.conversations(table, ids)), orderBy: recency };
    }
    async conversations(table, ids) {
        const key = await this.conversationKey(table);
        const names = new Map();
        const orders = new Map();
        for (const fk of await this.foreignKeys()) {
            for (const t of [fk.child, fk.parent, table]) {
                if (!names.has(t) && (await this.tables()).has(t)) {
                    names.set(t, await this.sqlName(t));
                    orders.set(t, await this.orderBy(t));
                }
            }
        }
        names.set(table, await this.sqlName(table));
        const dialect = {
            table: (t) => names.get(t) ?? (0,engines_related/* quoteIdent */.v4)(t),
            orderBy: (t) => orders.get(t) ?? '1',
            param: '$1',
        };
        const related = (0,engines_related/* relatedQueries */.qe)(table, key, await this.foreignKeys(), dialect);
        const items = [];
        for (const id of ids) {
            const rows = await this.rows(`SELECT * FROM ${names.get(table)} WHERE ${(0,engines_related/* quoteIdent */.v4)(key)}::text = $1`, [id]);
            const digests = [];
            for (const q of related)
                digests.push({ table: q.table, via: q.via, ...(0,engines_related/* hashRows */.MP)(await this.rows(q.sql, [id])) });
            items.push({
                id,
                sha256: rows.length === 0 ? 'missing' : (0,engines_related/* hashRows */.MP)(rows).sha256,
                related: digests,
            });
        }
        return { table, key, orderBy: key, items };
    }
    auditRows(table) {
        const key = [];
        return {
            key,
            rows: this.streamAudit(table, key),
            digest: async (boundaries) => {
                const expected = this.options.manifestAudit;
                if (this.prestarted?.table === table &&
                    expected &&
                    JSON.stringify(boundaries) === JSON.stringify(expected.chunks.map((c) => c.firstKey))) {
                    return this.prestarted.digest;
                }
                if (await this.serverDigests(table)) {
                    const k = (await this.keyColumns(table))[0];
                    return serverAuditDigest((text, values) => this.rows(text, values), table, await this.sqlName(table), k, boundaries);
                }
                // Rows streamed to Node and hashed there (checks/audit.ts): keys that are not one
                // integer, and restored copies of manifests that were digested so.
                return (0,audit/* digestAudit */.mw)(table, { key, rows: this.streamAudit(table, key) }, boundaries);
            },
        };
    }
    /** Rows in key order through a cursor: memory stays flat however long the log is. */
    async *streamAudit(table, key) {
        const sqlName = await this.sqlName(table);
        key.push(...(await this.keyColumns(table)));
        const columns = (await this.schema()).tables
            .find((t) => t.name === table)
            .columns.map((c) => c.name);
        const at = key.map((k) => columns.indexOf(k));
        let position = 0;
        const cursor = `omniai_audit_${Math.random().toString(36).slice(2, 8)}`;
        if (!this.inTransaction)
            await this.rows('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        try {
            await this.rows(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT * FROM ${sqlName} ORDER BY ${await this.orderBy(table)}`);
            for (;;) {
                const rows = await this.rows(`FETCH ${FETCH_ROWS} FROM ${cursor}`);
                if (rows.length === 0)
                    break;
                // Without a primary key a row is named by its position in column order.
                yield rows.map((row) => ({
                    key: at.length ? at.map((i) => String(row[i])).join(',') : String(++position),
                    row,
                }));
            }
            await this.rows(`CLOSE ${cursor}`);
        }
        finally {
            if (!this.inTransaction)
                await this.rows('COMMIT');
        }
    }
}

;// CONCATENATED MODULE: ./lib/engines/postgres/engine.js
/**
 * PostgreSQL: backups by `pg_dump -Fc` (or the directory format with --jobs), drills by
 * `pg_restore` into a scratch database on a separate server. The manifest is taken inside the
 * very snapshot pg_dump dumps: one REPEATABLE READ transaction exports its snapshot, pg_dump
 * imports it (--snapshot), and the inventory queries run in the exporting transaction.
 */

















const engine_IDENT = '(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)';
const COLUMNS = `\\(${engine_IDENT}(?:, ${engine_IDENT})*\\)`;
const ACTION = `(?:NO ACTION|RESTRICT|CASCADE|SET NULL(?: ${COLUMNS})?|SET DEFAULT(?: ${COLUMNS})?)`;
/**
 * One foreign key exactly as pg_get_constraintdef writes it, and nothing else: quoted or plain
 * identifiers, the fixed keywords, no comma outside a column list. A manifest is not trusted
 * to hold SQL: `ALTER TABLE` takes a comma-separated list of actions, so anything looser would
 * let a planted manifest run `ALTER COLUMN ... USING f()` with the restoring role's rights.
 */
const FOREIGN_KEY_DEFINITION = new RegExp(`^FOREIGN KEY ${COLUMNS} REFERENCES (?:${engine_IDENT}\\.)?${engine_IDENT}${COLUMNS}` +
    `(?: MATCH (?:FULL|SIMPLE|PARTIAL))?(?: ON UPDATE ${ACTION})?(?: ON DELETE ${ACTION})?` +
    `(?: (?:NOT )?DEFERRABLE(?: INITIALLY (?:DEFERRED|IMMEDIATE))?)?$`);
/**
 * Foreign keys the source violated while they were marked valid (its triggers were disabled
 * while rows were deleted). pg_restore re-creates a constraint with ADD CONSTRAINT, which checks
 * every row and fails on the orphans, so the whole restore would fail. These are left out of the
 * restore and added back NOT VALID: the rows as they were, the constraint in force for new rows.
 */
function deferredConstraints(backup) {
    const { inventory } = backup.manifest;
    const notValid = new Set(inventory.notValid ?? []);
    const out = [];
    for (const v of inventory.foreignKeyViolations ?? []) {
        if (!v.constraint || notValid.has(`${v.table}.${v.constraint}`))
            continue;
        const definition = inventory.schema.constraints?.find((c) => c.name === `${v.table}.${v.constraint}`)?.sql;
        // This text is executed: only pg_get_constraintdef's grammar of one foreign key passes.
        if (!definition || !FOREIGN_KEY_DEFINITION.test(definition)) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: the manifest records rows violating ${v.table}.${v.constraint} but not a foreign-key definition to re-create it with; the restore would fail at that constraint. Fix: restore another backup.`);
        }
        const dot = v.table.indexOf('.');
        out.push({
            schema: dot < 0 ? 'public' : v.table.slice(0, dot),
            table: dot < 0 ? v.table : v.table.slice(dot + 1),
            name: v.constraint,
            definition,
        });
    }
    return out;
}
/**
 * Writes a pg_restore --use-list file into `dir`: the archive's table of contents with the
 * deferred constraints, and the entries `leave` begins (`COMMENT - EXTENSION x `), commented
 * out. Returns the pg_restore arguments that use it.
 */
async function restoreListArgs(tool, backup, deferred, dir, leave = []) {
    if (deferred.length === 0 && leave.length === 0)
        return [];
    const { stdout } = await (0,tools/* runTool */.qI)(tool, ['--list', backup.path], {});
    const skip = [
        ...deferred.map((d) => ` FK CONSTRAINT ${d.schema} ${d.table} ${d.name} `),
        ...leave.map((entry) => ` ${entry}`),
    ];
    const list = stdout
        .split('\n')
        .map((line) => (skip.some((s) => line.includes(s)) ? `;${line}` : line))
        .join('\n');
    const file = external_node_path_.join(dir, 'restore.list');
    await promises_.writeFile(file, list, { mode: 0o600 });
    return [`--use-list=${file}`];
}
/**
 * `--clean` cannot drop what the restore list leaves out: the live database's own copies of the
 * deferred constraints go first (their tables' keys cannot be dropped while they stand), and
 * come back as they were if the restore fails. Returns how to put them back.
 */
async function dropLiveConstraints(target, deferred) {
    if (deferred.length === 0)
        return async () => undefined;
    const client = await connect(target, inputs/* Inputs */.G0.ConnectionString);
    const dropped = [];
    try {
        for (const d of deferred) {
            const table = `${(0,engines_related/* quoteIdent */.v4)(d.schema)}.${(0,engines_related/* quoteIdent */.v4)(d.table)}`;
            const { rows } = await client.query(`SELECT pg_get_constraintdef(k.oid) AS def, k.convalidated AS ok FROM pg_constraint k
         WHERE k.conrelid = to_regclass($1) AND k.conname = $2`, [table, d.name]);
            if (!rows[0])
                continue;
            await client.query(`ALTER TABLE ${table} DROP CONSTRAINT ${(0,engines_related/* quoteIdent */.v4)(d.name)}`);
            dropped.push({
                table,
                name: d.name,
                definition: rows[0].def.replace(/ NOT VALID$/, ''),
                validated: rows[0].ok,
            });
        }
    }
    finally {
        await client.end().catch(() => undefined);
    }
    return async () => {
        const again = await connect(target, inputs/* Inputs */.G0.ConnectionString);
        try {
            for (const d of dropped) {
                await again.query(`ALTER TABLE ${d.table} ADD CONSTRAINT ${(0,engines_related/* quoteIdent */.v4)(d.name)} ${d.definition} NOT VALID`);
                if (d.validated) {
                    await again.query(`ALTER TABLE ${d.table} VALIDATE CONSTRAINT ${(0,engines_related/* quoteIdent */.v4)(d.name)}`);
                }
            }
        }
        finally {
            await again.end().catch(() => undefined);
        }
    };
}
/** Adds the deferred constraints back, NOT VALID, on a restored database. */
async function addDeferred(target, input, deferred, log) {
    if (deferred.length === 0)
        return;
    const client = await connect(target, input);
    try {
        for (const d of deferred) {
            await client.query(`ALTER TABLE ${(0,engines_related/* quoteIdent */.v4)(d.schema)}.${(0,engines_related/* quoteIdent */.v4)(d.table)} ADD CONSTRAINT ${(0,engines_related/* quoteIdent */.v4)(d.name)} ${d.definition} NOT VALID`);
            log.info(`constraint ${d.schema}.${d.table}.${d.name} re-created NOT VALID: the backup holds rows that violate it, as the source did`);
        }
    }
    finally {
        await client.end().catch(() => undefined);
    }
}
class PostgresEngine {
    config;
    name = 'postgres';
    extension;
    constructor(config) {
        this.config = config;
        this.extension = config.jobs > 1 ? '.dumpdir' : '.dump';
    }
    source() {
        return (0,tools/* parsePgUrl */.c6)(this.config.connectionString, inputs/* Inputs */.G0.ConnectionString);
    }
    async openSource() {
        const target = this.source();
        return new PgDatabase(await connect(target, inputs/* Inputs */.G0.ConnectionString), target, false);
    }
    async snapshot(dest, log, inspect, written) {
        const target = this.source();
        const client = await connect(target, inputs/* Inputs */.G0.ConnectionString);
        try {
            const server = await serverFacts(client);
            const where = `the PostgreSQL ${server.version} server at ${target.host}:${target.port}`;
            const restoreFor = (major) => (0,tools/* findTool */.SG)('pg_restore', major, major, this.config.pgBinDir, `reading a pg_dump ${major} archive`);
            // Both looked for at once (each candidate is run for its version), for the usual case of
            // a pg_dump of the server's own major; another one's pg_restore is looked for after.
            const [dumpTool, sameMajor] = await Promise.all([
                (0,tools/* findTool */.SG)('pg_dump', server.major, server.major, this.config.pgBinDir, `dumping ${where}`),
                restoreFor(server.major).catch(() => null),
            ]);
            const listTool = sameMajor?.major === dumpTool.major ? sameMajor : await restoreFor(dumpTool.major);
            log.info(`pg_dump: ${dumpTool.version} (${dumpTool.path}) for server ${server.version}`);
            log.info(`${inputs/* Inputs */.G0.ConnectionString}: ${target.host}:${target.port} ${await (0,ssl/* connectionSecurity */.Vj)(client, target)}`);
            await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
            const { rows } = await client.query('SELECT pg_export_snapshot() AS id');
            const parallel = this.config.jobs > 1;
            // pg_dump's sessions are told apart from anyone else's by a name of their own, set in
            // the connection string (which wins over PGAPPNAME and a service file's).
            const dumpName = `omniai-backups-pg_dump-${(0,external_node_crypto_.randomBytes)(6).toString('hex')}`;
            const dump = (0,tools/* toolConnection */.Z$)(target, (dbname, env) => (0,tools/* runTool */.qI)(dumpTool.path, [
                parallel ? '--format=directory' : '--format=custom',
                ...(parallel ? [`--jobs=${this.config.jobs}`] : []),
                `--snapshot=${rows[0].id}`,
                '--no-password',
                `--file=${dest}`,
                `--dbname=${withApplicationName(dbname, dumpName)}`,
            ], env));
            // Settled below; this keeps an early failure from being reported as unhandled meanwhile.
            dump.catch(() => undefined);
            const snapshotId = rows[0].id;
            // pg_dump's sessions come first (its leader, and with --jobs its workers): a role at its
            // CONNECTION LIMIT, or a server near max_connections, then refuses a side session, which
            // the checks do without, and never pg_dump.
            let dumpConnected = null;
            const whenDumpConnected = () => (dumpConnected ??= (async () => {
                const ended = dump.then(() => true, () => true);
                const wanted = parallel ? this.config.jobs + 1 : 1;
                // Not forever: sessions a pooler renames, or a role that may not read
                // pg_stat_activity (null), only cost the checks their head start.
                const until = Date.now() + DUMP_CONNECT_WAIT_MS;
                for (let pause = 20; Date.now() < until; pause = Math.min(2 * pause, 250)) {
                    const seen = await db.sessionsNamed(dumpName);
                    if (seen === null || seen >= wanted)
                        return;
                    if (await Promise.race([ended, (0,external_node_timers_promises_.setTimeout)(pause).then(() => false)]))
                        return;
                }
            })());
            // Other sessions importing the same snapshot, so that checks run side by side.
            const side = async () => {
                await whenDumpConnected();
                const other = await connect(target, inputs/* Inputs */.G0.ConnectionString);
                try {
                    await other.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
                    // The server's own identifier (hex digits and dashes); SET takes no parameter.
                    if (!/^[0-9A-F-]+$/i.test(snapshotId))
                        throw new Error(`unexpected snapshot id`);
                    await other.query(`SET TRANSACTION SNAPSHOT '${snapshotId}'`);
                }
                catch (err) {
                    await other.end().catch(() => undefined);
                    throw err;
                }
                return new PgDatabase(other, target, true, undefined, { closeInTransaction: true });
            };
            const db = new PgDatabase(client, target, true, undefined, {
                side,
                serverVersionNum: server.versionNum,
            });
            // Data-quality findings, from the same snapshot the dump reads: orphans do not stop a
            // dump, and the manifest records them so a drill can tell them from new ones. In a
            // session of their own, while this one takes the inventory.
            const finding = db.integrityProblems();
            finding.catch(() => undefined);
            const inventory = await inspect(db);
            const findings = await finding;
            inventory.foreignKeyViolations = findings.foreignKeys;
            inventory.notValid = findings.notValid ?? [];
            const bytes = await db.bytes();
            try {
                await dump;
            }
            catch (err) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ConnectionString}: ${err.message}. No backup was written; older backups are untouched.`);
            }
            await client.query('COMMIT');
            written?.();
            // The archive's table of contents reads back with the pg_restore that will restore it.
            const { stdout } = await (0,tools/* runTool */.qI)(listTool.path, ['--list', dest], {});
            const entries = stdout.split('\n').filter((l) => /^\d+;/.test(l)).length;
            return {
                engineVersion: server.version,
                toolVersion: dumpTool.version,
                source: {
                    description: target.redacted,
                    bytes,
                    ...(server.systemIdentifier ? { systemIdentifier: server.systemIdentifier } : {}),
                },
                verified: `pg_restore --list reads ${entries} archive entries; ${(0,checks_checks/* describeFindings */.kA)({ ...findings, damage: [] })}`,
                inventory,
                // pg_dump read every row: what the server says of its indexes and sequences is checked
                // on the restored copy, not a reason to mark the dump damaged.
                damage: [],
            };
        }
        finally {
            await client.end().catch(() => undefined);
        }
    }
    liveName() {
        return this.source().database;
    }
    async liveExists() {
        return true;
    }
    async liveUsers() {
        const target = this.source();
        const client = await connect(target, inputs/* Inputs */.G0.ConnectionString);
        try {
            const { rows } = await client.query(`SELECT pid::text, coalesce(nullif(application_name, ''), 'unnamed') AS app, coalesce(usename, '?') AS who
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`);
            return rows.map((r) => `session ${r.pid} (${r.app}, user ${r.who})`);
        }
        finally {
            await client.end().catch(() => undefined);
        }
    }
    async liveSessions(now) {
        const target = this.source();
        const client = await connect(target, inputs/* Inputs */.G0.ConnectionString);
        try {
            const { rows } = await client.query(`SELECT n.nspname AS s, c.relname AS t, a.attname AS c FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1) AND a.attname = ANY($2) AND ${session_USER_SCHEMAS}
         ORDER BY n.nspname = 'public' DESC, array_position($1, c.relname::text), array_position($2, a.attname::text)
         LIMIT 1`, [engine/* SESSION_TABLES */.h, engine/* SESSION_EXPIRY_COLUMNS */.D]);
            const found = rows[0];
            if (!found)
                return null;
            const { rows: counted } = await client.query(`SELECT count(*)::text AS n FROM ${(0,engines_related/* quoteIdent */.v4)(found.s)}.${(0,engines_related/* quoteIdent */.v4)(found.t)} WHERE ${(0,engines_related/* quoteIdent */.v4)(found.c)}::timestamptz > $1::timestamptz`, [now.toISOString()]);
            return { table: displayName(found.s, found.t), active: Number(counted[0].n) };
        }
        finally {
            await client.end().catch(() => undefined);
        }
    }
    async replaceLive(backup, log) {
        const target = this.source();
        const client = await connect(target, inputs/* Inputs */.G0.ConnectionString);
        const server = await serverFacts(client).finally(() => client.end().catch(() => undefined));
        const tool = await this.restoreTool(backup, server.major);
        const deferred = deferredConstraints(backup);
        // Code in the backup runs during the restore: with the owner's rights where it can.
        const rights = await liveRights(target, tool.path, backup.path, connect, log);
        const listDir = await promises_.mkdtemp(external_node_path_.join(external_node_os_.tmpdir(), 'omniai-restore-list-'));
        try {
            const putBack = await dropLiveConstraints(target, deferred);
            // The runbook's pg_restore --clean --if-exists, in one transaction: a failure rolls back
            // and the old data stays.
            const listArgs = await restoreListArgs(tool.path, backup, deferred, listDir, rights.leave);
            await (0,tools/* toolConnection */.Z$)(rights.target, (dbname, env) => (0,tools/* runTool */.qI)(tool.path, [
                '--clean',
                '--if-exists',
                '--single-transaction',
                '--exit-on-error',
                '--no-password',
                ...rights.args,
                ...listArgs,
                `--dbname=${dbname}`,
                backup.path,
            ], env)).catch(async (err) => {
                const notBack = await putBack().then(() => '', (e) => ` Its foreign keys ${deferred.map((d) => d.name).join(', ')} could not be put back (${(0,errors/* describeError */.U)(e)}): re-create them by hand.`);
                throw err instanceof tools/* ToolError */.v4
                    ? new errors/* UserError */.y(`${(deniedRights(err, rights.who.replace(/^as /, '')) ?? err).message.replace(/\.$/, '')}. The restore was rolled back: the live database is as it was.${notBack}`)
                    : err;
            });
        }
        finally {
            await rights.done();
            await promises_.rm(listDir, { recursive: true, force: true });
        }
        log.info(`pg_restore --clean --if-exists --single-transaction into ${target.redacted} ${rights.who}`);
        // pg_restore has committed: from here a failure must say the data was replaced.
        await addDeferred(target, inputs/* Inputs */.G0.ConnectionString, deferred, log).catch((err) => {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ConnectionString}: the database WAS replaced with the backup, but its foreign keys ${deferred.map((d) => `${d.schema}.${d.table}.${d.name}`).join(', ')} could not be re-created NOT VALID (${(0,errors/* describeError */.U)(err)}). Fix: re-create them by hand (ALTER TABLE ... ADD CONSTRAINT ... NOT VALID, as the backup's manifest records them), or restore the safety backup.`);
        });
        return new PgDatabase(await connect(target, inputs/* Inputs */.G0.ConnectionString), target, false, undefined, {
            serverVersionNum: server.versionNum,
            manifestAudit: backup.manifest.inventory.audit,
        });
    }
    async restoreTool(backup, serverMajor) {
        const dumpMajor = majorOf(/\(PostgreSQL\)\s+(\d+)/.exec(backup.manifest.toolVersion ?? '')?.[1]);
        return (0,tools/* findTool */.SG)('pg_restore', dumpMajor, Math.max(dumpMajor, serverMajor), this.config.pgBinDir, `reading this backup (written by pg_dump ${dumpMajor})`);
    }
    async verifyBackup(backup) {
        const tool = await this.restoreTool(backup, 0);
        const checks = [
            // Reading the whole archive into nowhere decompresses every table's data: a truncated or
            // damaged archive fails here without any server.
            await (0,inspect/* runCheck */.k_)('integrity', async () => {
                await (0,tools/* runTool */.qI)(tool.path, [`--file=${external_node_os_.devNull}`, backup.path], {});
                return {
                    name: 'integrity',
                    ok: true,
                    detail: `pg_restore read the whole archive (${tool.version.replace(/^pg_restore /, '')})`,
                };
            }),
            await (0,inspect/* runCheck */.k_)('schema', async () => {
                const { stdout } = await (0,tools/* runTool */.qI)(tool.path, ['--list', backup.path], {});
                return (0,checks_checks/* schemaNames */.Gz)(tocNames(stdout), backup.manifest.inventory.schema);
            }),
        ];
        return { checks, database: null };
    }
    async restore(backup, scratchDir, log) {
        if (!this.config.restoreConnectionString) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: not set. A PostgreSQL drill restores into a separate server, never the source. Fix: add a services: postgres container to the drill job and set restore-connection-string to its URL, e.g. postgres://postgres:postgres@localhost:5432/postgres.`);
        }
        const admin = (0,tools/* parsePgUrl */.c6)(this.config.restoreConnectionString, inputs/* Inputs */.G0.RestoreConnectionString);
        if (/^postgres(ql)?:/i.test(this.config.connectionString)) {
            const source = this.source();
            if (source.host === admin.host && source.port === admin.port) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: ${admin.host}:${admin.port} is the server connection-string backs up. Fix: restore into a separate server, e.g. a services: postgres container.`);
            }
        }
        const adminClient = await connect(admin, inputs/* Inputs */.G0.RestoreConnectionString);
        let dropped = false;
        const name = `omniai_drill_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${Math.random().toString(36).slice(2, 8)}`;
        // The code a dump carries runs during pg_restore: as a role with no rights beyond the
        // scratch database, never as the superuser restore-connection-string usually names.
        const role = new DrillRole(adminClient, admin, name, log);
        const drop = async () => {
            if (dropped)
                return;
            dropped = true;
            forgetDrop();
            try {
                await role.drop();
            }
            finally {
                await adminClient.end().catch(() => undefined);
            }
        };
        // Also on SIGINT/SIGTERM: a restored copy of every user's data must not outlive the drill.
        const forgetDrop = cleanup/* cleanups */.WW.add(`scratch database ${name}`, drop);
        try {
            const server = await serverFacts(adminClient);
            if (server.systemIdentifier &&
                server.systemIdentifier === backup.manifest.source.systemIdentifier) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreConnectionString}: ${admin.host}:${admin.port} is the server this backup came from (system identifier ${server.systemIdentifier}). Fix: restore into a separate server, e.g. a services: postgres container.`);
            }
            const tool = await this.restoreTool(backup, server.major);
            log.info(`${inputs/* Inputs */.G0.RestoreConnectionString}: ${admin.host}:${admin.port} ${await (0,ssl/* connectionSecurity */.Vj)(adminClient, admin)}`);
            log.info(`pg_restore: ${tool.version} into scratch database ${name} on ${admin.host}:${admin.port}, as ${name}, a role made for the drill (no superuser, CREATEDB or CREATEROLE; owner of that database only; dropped with it)`);
            await role.create();
            const leave = await role.prepare(await archiveExtensions(tool.path, backup.path, scratchDir), connect, server.major, log);
            const scratch = await role.login();
            const deferred = deferredConstraints(backup);
            try {
                const listArgs = await restoreListArgs(tool.path, backup, deferred, scratchDir, leave);
                await (0,tools/* toolConnection */.Z$)(scratch, (dbname, env) => (0,tools/* runTool */.qI)(tool.path, [
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
                ], env));
            }
            catch (err) {
                throw err instanceof tools/* ToolError */.v4
                    ? (deniedRights(err, `${name}, the drill's own role without superuser rights`) ??
                        new errors/* UserError */.y(err.message))
                    : err;
            }
            await addDeferred(scratch, inputs/* Inputs */.G0.RestoreConnectionString, deferred, log);
            const client = await connect(scratch, inputs/* Inputs */.G0.RestoreConnectionString);
            const side = async () => new PgDatabase(await connect(scratch, inputs/* Inputs */.G0.RestoreConnectionString), scratch, false);
            const db = new PgDatabase(client, scratch, false, drop, {
                side,
                serverVersionNum: server.versionNum,
                manifestAudit: backup.manifest.inventory.audit,
            });
            // The audit-log digest of the restored copy, in a session of its own from now on, while
            // the drill runs its other checks in this one (the row counts first).
            db.prestartAudit();
            db.prestartCounts();
            return db;
        }
        catch (err) {
            await drop().catch((e) => log.warning((0,errors/* describeError */.U)(e)));
            throw err;
        }
    }
}
/** How long side sessions wait for pg_dump's sessions to appear before going ahead. */
const DUMP_CONNECT_WAIT_MS = 30_000;
/** A libpq connection URL with `application_name` set to `name`, whatever it said before. */
function withApplicationName(url, name) {
    const u = new URL(url);
    u.searchParams.set('application_name', name);
    return u.href;
}
/**
 * pg_restore workers for a drill: the jobs input, or up to 4 cores' worth when it is 1. A
 * custom-format archive written to a file (as every backup is) is seekable, so pg_restore
 * restores its tables and builds its indexes side by side as it does a directory.
 */
function restoreJobs(jobs) {
    return jobs > 1 ? jobs : Math.min(4, external_node_os_.availableParallelism());
}
/** Object names in a pg_restore --list table of contents, grouped as a Schema names them. */
function tocNames(toc) {
    const names = {
        tables: [],
        indexes: [],
        constraints: [],
        triggers: [],
        views: [],
        sequences: [],
    };
    const display = (schema, name) => schema === 'public' ? name : `${schema}.${name}`;
    for (const line of toc.split('\n')) {
        const m = /^\d+; \d+ \d+ (FK CONSTRAINT|CONSTRAINT|TABLE DATA|TABLE|INDEX|TRIGGER|SEQUENCE OWNED BY|SEQUENCE SET|SEQUENCE|VIEW|MATERIALIZED VIEW) (.*)$/.exec(line);
        if (!m)
            continue;
        const [schema, a, b] = m[2].split(' ');
        switch (m[1]) {
            case 'TABLE':
                names.tables.push(display(schema, a));
                break;
            case 'INDEX':
                names.indexes.push(display(schema, a));
                break;
            case 'SEQUENCE':
                names.sequences.push(display(schema, a));
                break;
            case 'VIEW':
            case 'MATERIALIZED VIEW':
                names.views.push(display(schema, a));
                break;
            case 'CONSTRAINT':
            case 'FK CONSTRAINT':
                names.constraints.push(`${display(schema, a)}.${b}`);
                break;
            case 'TRIGGER':
                names.triggers.push(`${display(schema, a)}.${b}`);
                break;
        }
    }
    return names;
}


/***/ })

};
