export const id = 393;
export const ids = [393];
export const modules = {

/***/ 1393:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  cli: () => (/* binding */ cli)
});

// UNUSED EXPORTS: CLI_FLAGS, parseFlags, secretValue

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: ./lib/options/config.js + 1 modules
var options_config = __webpack_require__(62430);
// EXTERNAL MODULE: ./lib/options/inputs.js
var inputs = __webpack_require__(91241);
// EXTERNAL MODULE: ./lib/engines/sqlite/driver.js
var driver = __webpack_require__(30884);
// EXTERNAL MODULE: ./lib/util/fs.js
var fs = __webpack_require__(27685);
;// CONCATENATED MODULE: ./lib/demo/sqlite.js
/**
 * A generated OmniAI-like database: users, sessions, conversations with messages and
 * attachments (two levels of foreign keys), tags (a composite key), an audit log, a trigger and
 * a view. Deterministic for a given size, so tests can name rows, and in WAL mode like a live
 * OmniAI database.
 */




const DEMO_DEFAULTS = {
    conversations: 200,
    messagesPerConversation: 12,
    messageChars: 400,
    auditRows: 3000,
};
const DEMO_SCHEMA = `
PRAGMA foreign_keys = ON;
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  display_name TEXT,
  password_hash TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT 'omni-1',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX conversations_user_updated ON conversations(user_id, updated_at);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, created_at);
CREATE TABLE message_attachments (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  filename TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE conversation_tags (
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (conversation_id, tag)
) WITHOUT ROWID;
CREATE TABLE audit_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  actor_id INTEGER REFERENCES users(id),
  action TEXT NOT NULL,
  target TEXT,
  ip TEXT,
  details TEXT
);
CREATE INDEX audit_logs_ts ON audit_logs(ts);
CREATE TRIGGER messages_touch_conversation AFTER INSERT ON messages BEGIN
  UPDATE conversations SET updated_at = NEW.created_at WHERE id = NEW.conversation_id;
END;
CREATE VIEW conversation_stats AS
  SELECT c.id, c.user_id, count(m.id) AS messages, sum(m.tokens) AS tokens
  FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id;
`;
const WORDS = 'the backup restores and we knew that before we needed it model answer question context token stream'.split(' ');
const BASE = Date.parse('2026-01-01T00:00:00Z');
/** A small deterministic generator (mulberry32), so the same options give the same database. */
function random(seed) {
    let a = seed;
    return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
function conversationId(n) {
    return `c_${String(n).padStart(6, '0')}`;
}
/** Creates `file` (which must not exist) and fills it. */
async function generateDemoDatabase(file, options = {}) {
    const o = { ...DEMO_DEFAULTS, ...options };
    await (0,fs/* makeDirs */.X2)(external_node_path_.dirname(external_node_path_.resolve(file)));
    // openSqlite refuses a missing file (a typo must not create an empty database), so create it;
    // 'wx' refuses to overwrite an existing database.
    await promises_.writeFile(file, '', { flag: 'wx' });
    const db = await (0,driver/* openSqlite */.L)(file, { readonly: false });
    const rnd = random(42);
    const text = (n) => {
        let s = '';
        while (s.length < n)
            s += WORDS[Math.floor(rnd() * WORDS.length)] + ' ';
        return s.slice(0, n);
    };
    const iso = (minutes) => new Date(BASE + minutes * 60_000).toISOString();
    try {
        db.exec('PRAGMA journal_mode = WAL');
        db.exec(DEMO_SCHEMA);
        db.exec('BEGIN');
        const users = Math.max(1, Math.ceil(o.conversations / 10));
        for (let u = 1; u <= users; u++) {
            db.run('INSERT INTO users VALUES (?, ?, ?, ?, ?)', BigInt(u), `user${u}@example.test`, `User ${u}`, `pbkdf2$${text(24)}`, iso(u));
            db.run('INSERT INTO sessions VALUES (?, ?, ?, ?)', `s_${u}`, BigInt(u), text(16), 
            // Long expired: a restore of the demo is not held up by logins (tests add live ones).
            iso(60 * 24));
        }
        let message = 0;
        for (let c = 1; c <= o.conversations; c++) {
            const id = conversationId(c);
            const start = c * 90;
            db.run('INSERT INTO conversations (id, user_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', id, BigInt(1 + (c % users)), text(30), iso(start), iso(start));
            for (let m = 0; m < o.messagesPerConversation; m++) {
                message++;
                db.run('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)', BigInt(message), id, m % 2 ? 'assistant' : 'user', text(o.messageChars), BigInt(1 + Math.floor(rnd() * 500)), iso(start + m));
                if (message % 7 === 0) {
                    db.run('INSERT INTO message_attachments (message_id, filename, data) VALUES (?, ?, ?)', BigInt(message), `file${message}.png`, Buffer.from(text(64)));
                }
            }
            db.run('INSERT INTO conversation_tags VALUES (?, ?)', id, c % 3 ? 'work' : 'personal');
        }
        const actions = [
            'login',
            'logout',
            'conversation.create',
            'conversation.delete',
            'settings.update',
            'export',
        ];
        for (let a = 1; a <= o.auditRows; a++) {
            db.run('INSERT INTO audit_logs (ts, actor_id, action, target, ip, details) VALUES (?, ?, ?, ?, ?, ?)', iso(a * 5), BigInt(1 + (a % users)), actions[a % actions.length], conversationId(1 + (a % o.conversations)), `10.0.${a % 250}.${a % 200}`, JSON.stringify({ n: a }));
        }
        db.exec('COMMIT');
    }
    finally {
        db.close();
    }
}

// EXTERNAL MODULE: ./lib/engines/postgres/tools.js
var tools = __webpack_require__(23548);
// EXTERNAL MODULE: ./lib/util/errors.js
var errors = __webpack_require__(99661);
// EXTERNAL MODULE: ./lib/util/log.js
var log = __webpack_require__(25574);
// EXTERNAL MODULE: ./lib/modes/index.js + 31 modules
var modes = __webpack_require__(92079);
// EXTERNAL MODULE: ./lib/report/report.js
var report_report = __webpack_require__(45650);
// EXTERNAL MODULE: ./lib/manifest/signature.js
var signature = __webpack_require__(18571);
// EXTERNAL MODULE: ./lib/util/secrets.js
var util_secrets = __webpack_require__(3693);
// EXTERNAL MODULE: ./lib/util/text.js
var util_text = __webpack_require__(28805);
;// CONCATENATED MODULE: ./lib/cli/cli.js
/**
 * The local CLI: `omniai-backup backup|verify|drill|gate --flag value ...`, with the action's input
 * names as flags, plus `demo-db` (generate the demo database) and `demo` (generate it, then run
 * backup, verify and drill on it). Prints the same summary the job summary shows.
 */













const USAGE = `usage: omniai-backup <${inputs/* MODES */.FN.join('|')}> [--<input> <value> ...]
       omniai-backup demo-db --out <file> | --postgres <url> [--conversations N] [--message-chars N] [--audit-rows N]
       omniai-backup demo [--dir <folder>]
       omniai-backup keygen --out <private key file>   (an Ed25519 pair for signing-key / verify-key)

inputs (as in action.yml):
${Object.values(inputs/* Inputs */.G0)
    .filter((i) => i !== inputs/* Inputs */.G0.Mode)
    .map((i) => `  --${i}${inputs/* DEFAULTS */.zY[i] ? ` (default ${inputs/* DEFAULTS */.zY[i]})` : ''}`)
    .join('\n')}

secrets (${util_secrets/* SECRET_INPUTS */.pH.join(', ')}): every local user can read a command line
(ps, /proc/<pid>/cmdline), so give each from a file or an environment variable instead:
${util_secrets/* SECRET_INPUTS */.pH.map((i) => `  --${i}-file <file>  or  ${(0,util_secrets/* secretEnvName */.ln)(i)}=...`).join('\n')}`;
/** The flags a mode takes: every input, and a -file twin for each secret. */
const CLI_FLAGS = [
    ...Object.values(inputs/* Inputs */.G0).filter((i) => i !== inputs/* Inputs */.G0.Mode),
    ...util_secrets/* SECRET_INPUTS */.pH.map((i) => `${i}-file`),
];
/**
 * A secret input's value: from --<input>-file, else the OMNIAI_ environment variable, else the
 * flag itself (with a warning: a command line is public on this machine). Two of them at once
 * are refused: which one counts would be a guess.
 */
async function secretValue(input, flags, env = process.env, warn = (m) => console.error((0,util_text/* oneLine */.TN)(`warning: ${m}`))) {
    const envName = (0,util_secrets/* secretEnvName */.ln)(input);
    const given = [
        flags.has(input) && `--${input}`,
        flags.has(`${input}-file`) && `--${input}-file`,
        env[envName] && envName,
    ].filter(Boolean);
    if (given.length > 1) {
        throw new errors/* UserError */.y(`${input}: given as ${given.join(' and ')}. Fix: give it once, preferably as --${input}-file or ${envName}.`);
    }
    const file = flags.get(`${input}-file`);
    if (file !== undefined) {
        try {
            // The file as written, without the line end an editor adds: a key file may hold several lines.
            return (await promises_.readFile(file, 'utf8')).replace(/\r?\n$/, '');
        }
        catch (err) {
            throw new errors/* UserError */.y(`--${input}-file: cannot read ${file} (${err.code}). Fix: give a readable file that holds only the ${input}.`);
        }
    }
    if (env[envName])
        return env[envName];
    const value = flags.get(input);
    const secret = input === inputs/* Inputs */.G0.ConnectionString || input === inputs/* Inputs */.G0.RestoreConnectionString
        ? (0,tools/* pgSecrets */.fx)(value ?? '', {}).length > 0
        : Boolean(value);
    if (secret) {
        warn(`--${input} on the command line can be read by every user of this machine (ps, /proc/<pid>/cmdline). Use --${input}-file <file> or ${envName} instead.`);
    }
    return value;
}
/** `--name value` pairs into a map; every name must be one of `allowed`. */
function parseFlags(args, allowed) {
    const flags = new Map();
    for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
        if (!m)
            throw new errors/* UserError */.y(`unexpected argument "${arg}". Fix: give options as --name value.`);
        const name = m[1];
        if (!allowed.includes(name)) {
            throw new errors/* UserError */.y(`unknown option --${name}. Fix: use one of ${allowed.map((a) => `--${a}`).join(', ')}.`);
        }
        let value = m[2];
        if (value === undefined) {
            value = args[++i];
            if (value === undefined)
                throw new errors/* UserError */.y(`--${name}: no value given. Fix: --${name} <value>.`);
        }
        flags.set(name, value);
    }
    return flags;
}
async function runOne(mode, flags) {
    const secrets = new Map();
    for (const input of util_secrets/* SECRET_INPUTS */.pH) {
        const value = await secretValue(input, flags);
        if (value !== undefined)
            secrets.set(input, value);
    }
    const config = (0,options_config/* parseConfig */.o4)((name) => name === inputs/* Inputs */.G0.Mode ? mode : (secrets.get(name) ?? flags.get(name) ?? ''));
    const report = await (0,modes/* runMode */.r)(config, log/* consoleLog */.aO);
    console.log('\n' + (0,report_report/* renderSummary */.Br)(report));
    console.log(`report: ${config.reportFile}`);
    if (!report.ok)
        console.error((0,util_text/* oneLine */.TN)(`Error: ${(0,report_report/* failureMessage */.oh)(report)}`));
    return report.ok;
}
const count = (flags, name, fallback) => {
    const v = flags.get(name);
    if (v === undefined)
        return fallback;
    if (!/^\d+$/.test(v))
        throw new errors/* UserError */.y(`--${name}: "${v}" is not a whole number.`);
    return Number(v);
};
async function demoDb(flags) {
    const postgres = flags.get('postgres');
    if (postgres) {
        // Into an existing, empty PostgreSQL database (for benchmarks and trying the engine).
        const { generatePostgresDemo } = await __webpack_require__.e(/* import() */ 356).then(__webpack_require__.bind(__webpack_require__, 60356));
        await generatePostgresDemo(postgres, {
            conversations: count(flags, 'conversations', DEMO_DEFAULTS.conversations),
            messageChars: count(flags, 'message-chars', DEMO_DEFAULTS.messageChars),
            auditRows: count(flags, 'audit-rows', DEMO_DEFAULTS.auditRows),
        });
        console.log(`demo database written: ${(0,tools/* parsePgUrl */.c6)(postgres, '--postgres').redacted}`);
        return;
    }
    const out = flags.get('out');
    if (!out)
        throw new errors/* UserError */.y('--out: not set. Fix: demo-db --out demo/omniai.db (or --postgres URL)');
    await generateDemoDatabase(out, {
        conversations: count(flags, 'conversations', DEMO_DEFAULTS.conversations),
        messageChars: count(flags, 'message-chars', DEMO_DEFAULTS.messageChars),
        auditRows: count(flags, 'audit-rows', DEMO_DEFAULTS.auditRows),
    }).catch((err) => {
        if (err.code === 'EEXIST')
            throw new errors/* UserError */.y(`--out: ${out} already exists. Fix: remove it or choose another path.`);
        throw err;
    });
    console.log(`demo database written: ${out}`);
}
/** The README's first command: a demo database, then backup, verify and drill on it. */
async function demo(flags) {
    const dir = flags.get('dir') ?? 'demo';
    const db = external_node_path_.join(dir, 'omniai.db');
    await promises_.rm(dir, { recursive: true, force: true });
    await generateDemoDatabase(db);
    console.log(`demo database written: ${db}`);
    const common = new Map([
        [inputs/* Inputs */.G0.ConnectionString, db],
        [inputs/* Inputs */.G0.BackupDir, external_node_path_.join(dir, 'backups')],
        [inputs/* Inputs */.G0.ScratchDir, external_node_path_.join(dir, 'scratch')],
    ]);
    // The demo database has no test suite: the gate is not part of the demo.
    for (const mode of ['backup', 'verify', 'drill']) {
        console.log(`\n$ omniai-backup ${mode}`);
        // Only what this mode reads: verify would warn about connection-string.
        const flagsFor = new Map([
            ...[...common].filter(([input]) => inputs/* INPUTS */.mc[input].modes.includes(mode)),
            [inputs/* Inputs */.G0.ReportFile, external_node_path_.join(dir, `report-${mode}.json`)],
        ]);
        if (!(await runOne(mode, flagsFor)))
            return false;
    }
    return true;
}
/**
 * A key pair for signed manifests: the private key goes to a new 0600 file (never to the
 * terminal, whose scrollback and logs outlive it), the public key to stdout.
 */
async function keygen(flags) {
    const out = flags.get('out');
    if (!out)
        throw new errors/* UserError */.y('--out: not set. Fix: keygen --out signing-key.pem');
    const pair = (0,signature/* generateKeyPair */.TZ)();
    await promises_.writeFile(out, pair.privatePem, { mode: 0o600, flag: 'wx' }).catch((err) => {
        if (err.code === 'EEXIST')
            throw new errors/* UserError */.y(`--out: ${out} already exists. Fix: choose another file; keys are never overwritten.`);
        throw err;
    });
    console.log(`private key (signing-key, key id ${pair.keyId}) written to ${out}, readable only by you.
Store it as a secret of the backup job, then delete the file:
  gh secret set OMNIAI_BACKUP_SIGNING_KEY < ${out}

public key (verify-key for verify, drill and restore; not secret):
${pair.publicPem.trim()}

or on one line: ${pair.publicBase64}`);
}
/** Returns the process exit code: 0 ok, 1 failed, 2 bad usage. */
async function cli(args) {
    const [command, ...rest] = args;
    try {
        switch (command) {
            case 'demo-db':
                await demoDb(parseFlags(rest, ['out', 'postgres', 'conversations', 'message-chars', 'audit-rows']));
                return 0;
            case 'keygen':
                await keygen(parseFlags(rest, ['out']));
                return 0;
            case 'demo':
                return (await demo(parseFlags(rest, ['dir']))) ? 0 : 1;
            case 'help':
            case '--help':
            case '-h':
                console.log(USAGE);
                return 0;
            default:
                if (!inputs/* MODES */.FN.includes(command ?? '')) {
                    console.error(`Error: unknown command "${command ?? ''}".\n${USAGE}`);
                    return 2;
                }
                return (await runOne(command, parseFlags(rest, CLI_FLAGS))) ? 0 : 1;
        }
    }
    catch (err) {
        console.error((0,util_text/* oneLine */.TN)(`Error: ${(0,errors/* describeError */.U)(err)}`));
        return err instanceof errors/* UserError */.y ? 2 : 1;
    }
}


/***/ })

};
