export const id = 79;
export const ids = [79];
export const modules = {

/***/ 97622:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Gx: () => (/* binding */ YIELD_ROWS),
/* harmony export */   SF: () => (/* binding */ describeChunkDifference),
/* harmony export */   iL: () => (/* binding */ AUDIT_CHUNK_ROWS),
/* harmony export */   mw: () => (/* binding */ digestAudit)
/* harmony export */ });
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/* harmony import */ var _digest_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(73821);
/**
 * The audit-log digest: one hash over every row in key order, plus per-chunk digests that let a
 * drill say which rows differ. For integer keys each chunk also carries sums that name a single
 * deleted, added or altered row exactly:
 *   keySum      = Σ key                 → a deleted or added row's key is the difference
 *   hashSum     = Σ h(row)      mod P   → h'(k) - h(k) for one altered row
 *   weightedSum = Σ key·h(row)  mod P   → k·(h' - h); k = Δweighted / Δhash
 * Any other key (text, a UUID, a composite key as `a,b`) of up to 62 bytes is turned into a
 * number from its UTF-8 bytes, so the same sums name it too. Those sums are kept exact (no
 * modulus: a chunk's sum of 500-bit numbers stays small), so k = Δweighted / Δhash is a plain
 * division, and the difference is turned back into the key's text.
 */


/** Rows per chunk when no manifest gives the boundaries. */
const AUDIT_CHUNK_ROWS = 1000;
/** A Mersenne prime larger than every 56-bit row hash. */
const P = (1n << 61n) - 1n;
function rowHash(line) {
    return BigInt('0x' + (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.hash)('sha256', line).slice(0, 14));
}
function integerKey(key) {
    return /^-?\d+$/.test(key) ? BigInt(key) : null;
}
/** Longest key, in UTF-8 bytes, that the text sums can name. */
const MAX_TEXT_KEY_BYTES = 62;
/** A text key as a number: 0x01 then its UTF-8 bytes (the 01 keeps leading zero bytes). */
function textKey(key) {
    const bytes = Buffer.from(key, 'utf8');
    if (bytes.length > MAX_TEXT_KEY_BYTES)
        return null;
    return BigInt('0x01' + bytes.toString('hex'));
}
/** The key a number stands for, or null when it is not one textKey made. */
function keyFromNumber(n) {
    if (n <= 0n)
        return null;
    const digits = n.toString(16);
    const hex = digits.length % 2 ? `0${digits}` : digits;
    if (!hex.startsWith('01'))
        return null;
    const bytes = Buffer.from(hex.slice(2), 'hex');
    if (bytes.length > MAX_TEXT_KEY_BYTES)
        return null;
    const text = bytes.toString('utf8');
    // Not what some other key's bytes add up to by chance: valid UTF-8, printable.
    const unprintable = [...text].some((ch) => {
        const c = ch.codePointAt(0);
        return c < 0x20 || c === 0x7f || c === 0xfffd;
    });
    if (unprintable || !Buffer.from(text, 'utf8').equals(bytes))
        return null;
    return text;
}
/** Rows read from a synchronous source between two turns of the event loop. */
const YIELD_ROWS = 8192;
/** Text of this many UTF-8 code units or more is handed to the hashes at once. */
const FLUSH_CHARS = 1 << 16;
/**
 * Most a chunk holds back while its sums wait for its sha256 (see Chunk): more rows than the
 * manifest's chunk by this many, or this much text, and it sums as it goes.
 */
const DEFER_EXTRA_ROWS = 1000;
const DEFER_MAX_CHARS = 16 << 20;
/**
 * One chunk's digest. Given the manifest's chunk that starts at the same key (`known`), the sums
 * wait: the rows' keys are held back, and the chunk's text as the UTF-8 its hash took; if the
 * chunk's sha256 comes out as the manifest's, the sums are the manifest's (they are a function
 * of the rows, which the sha256 says are the same), which spares a hash and three big-integer
 * sums per row. Any other chunk, or one that grows past the manifest's by DEFER_EXTRA_ROWS,
 * sums its rows itself, from the held text split at its newlines (encodeRow escapes every
 * other newline), so no row's line is kept as a string of its own.
 */
class Chunk {
    firstKey;
    onText;
    known;
    hash = (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.createHash)('sha256');
    rows = 0;
    lastKey = '';
    /** Which sums the keys allow: integers, text, or none once a key fits neither. */
    coding;
    // Exact sums; the integer coding's are taken mod P once, in finish(): Σ(x mod P) ≡ Σx.
    keySum = 0n;
    hashSum = 0n;
    weightedSum = 0n;
    /** Encoded lines not yet hashed: hashed in runs of FLUSH_CHARS, from one UTF-8 conversion. */
    pending = '';
    /** What the sums wait for while `known` is set: the keys, and the text as hashed. */
    held = null;
    constructor(firstKey, 
    /** Takes the UTF-8 of the chunk's text, run by run, in order (the whole table's hash). */
    onText, known) {
        this.firstKey = firstKey;
        this.onText = onText;
        this.known = known;
        this.coding = integerKey(firstKey) !== null ? 'integer' : 'utf8';
        if (known)
            this.held = { keys: [], text: [], chars: 0 };
    }
    /** Counts a row and its line (encodeRow). */
    add(key, line) {
        this.rows++;
        this.lastKey = key;
        this.pending += line;
        const held = this.held;
        if (held) {
            held.keys.push(key);
            held.chars += line.length;
            if (this.pending.length >= FLUSH_CHARS)
                this.flush();
            if (this.rows > this.known.rows + DEFER_EXTRA_ROWS || held.chars > DEFER_MAX_CHARS) {
                this.sumHeld();
            }
            return;
        }
        this.sum(key, line);
        if (this.pending.length >= FLUSH_CHARS)
            this.flush();
    }
    flush() {
        if (this.pending === '')
            return;
        const text = Buffer.from(this.pending, 'utf8');
        this.pending = '';
        this.hash.update(text);
        this.onText(text);
        this.held?.text.push(text);
    }
    /** Sums the rows held back, and every row from now on. */
    sumHeld() {
        this.flush();
        const { keys, text } = this.held;
        this.held = null;
        this.known = undefined;
        let row = 0;
        for (const run of text) {
            for (let at = 0; at < run.length;) {
                const end = run.indexOf(0x0a, at) + 1;
                if (end === 0 || row >= keys.length)
                    throw new Error('audit digest: held rows out of step');
                this.sum(keys[row++], run.subarray(at, end));
                at = end;
            }
        }
        if (row !== keys.length)
            throw new Error('audit digest: held rows out of step');
    }
    /** Adds a row to the sums: its line as text, or as the UTF-8 bytes that hash the same. */
    sum(key, line) {
        if (this.coding === null)
            return;
        const k = this.coding === 'integer' ? integerKey(key) : textKey(key);
        if (k === null) {
            this.coding = null;
            return;
        }
        const h = rowHash(line);
        this.keySum += k;
        this.hashSum += h;
        this.weightedSum += k * h;
    }
    finish() {
        this.flush();
        const chunk = {
            firstKey: this.firstKey,
            lastKey: this.lastKey,
            rows: this.rows,
            sha256: this.hash.digest('hex'),
        };
        const known = this.known;
        if (this.held && known && known.sha256 === chunk.sha256 && known.rows === chunk.rows) {
            for (const field of ['keySum', 'hashSum', 'weightedSum', 'keyCoding']) {
                if (known[field] !== undefined)
                    Object.assign(chunk, { [field]: known[field] });
            }
            return chunk;
        }
        if (this.held)
            this.sumHeld();
        if (this.coding !== null) {
            const integer = this.coding === 'integer';
            const mod = (x) => (integer ? ((x % P) + P) % P : x);
            chunk.keySum = this.keySum.toString();
            chunk.hashSum = mod(this.hashSum).toString();
            chunk.weightedSum = mod(this.weightedSum).toString();
            if (!integer)
                chunk.keyCoding = 'utf8';
        }
        return chunk;
    }
}
/**
 * Digests the audit rows. With `boundaries` (the first keys of a manifest's chunks) the chunks
 * start at the same rows as the manifest's, so a deleted row shifts nothing after it.
 *
 * Each row is encoded once. The encoded lines are hashed in runs of many rows (the sha256 of a
 * concatenation is that of its parts fed one by one), once into the chunk's hash and once into
 * the whole table's, from one UTF-8 conversion: a row costs its encoding and its own short hash.
 */
async function digestAudit(table, source, boundaries, 
/** The manifest's chunks, whose sums a chunk of the same rows takes (see Chunk). */
known) {
    // PostgreSQL digests in the server (engines/postgres/audit.ts): no rows to read here.
    if (source.digest)
        return source.digest(boundaries);
    const starts = boundaries ? new Set(boundaries) : null;
    const knownAt = new Map(known?.map((c) => [c.firstKey, c]));
    const all = (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.createHash)('sha256');
    let rows = 0;
    const chunks = [];
    let chunk = null;
    let lastKey = null;
    const toAll = (text) => void all.update(text);
    const add = (key, line) => {
        const boundary = starts ? starts.has(key) : chunk?.rows === AUDIT_CHUNK_ROWS;
        if (!chunk || boundary) {
            if (chunk)
                chunks.push(chunk.finish());
            chunk = new Chunk(key, toAll, knownAt.get(key));
        }
        chunk.add(key, line);
        rows++;
        lastKey = key;
    };
    // A synchronous source (SQLite) is read without a promise per row, but lets the event loop
    // run now and then: the answers of the worker threads checking and hashing meanwhile are
    // taken when they come, so the times they report are theirs, not this loop's.
    if (Symbol.iterator in source.rows) {
        for (const r of source.rows) {
            add(r.key, (0,_digest_js__WEBPACK_IMPORTED_MODULE_1__/* .encodeRow */ .b9)(r.row));
            if (rows % YIELD_ROWS === 0)
                await new Promise(setImmediate);
        }
    }
    else {
        for await (const batch of source.rows) {
            if (Array.isArray(batch))
                for (const r of batch)
                    add(r.key, (0,_digest_js__WEBPACK_IMPORTED_MODULE_1__/* .encodeRow */ .b9)(r.row));
            else
                addEncoded(batch, add);
        }
    }
    if (chunk)
        chunks.push(chunk.finish());
    return { table, key: source.key, rows, lastKey, sha256: all.digest('hex'), chunks };
}
/** The lines of an encoded batch, one per key, each as its own string (a slice of the text). */
function addEncoded({ keys, text }, add) {
    let at = 0;
    for (const key of keys) {
        const end = text.indexOf('\n', at) + 1;
        if (end === 0)
            throw new Error('audit digest: an encoded batch has fewer lines than keys');
        add(key, text.slice(at, end));
        at = end;
    }
    if (at !== text.length)
        throw new Error('audit digest: an encoded batch has more lines than keys');
}
function modInverse(a) {
    // Fermat: a^(P-2) mod P.
    let result = 1n;
    let base = ((a % P) + P) % P;
    let e = P - 2n;
    while (e > 0n) {
        if (e & 1n)
            result = (result * base) % P;
        base = (base * base) % P;
        e >>= 1n;
    }
    return result;
}
const inRange = (k, c) => integerKey(c.firstKey) !== null && k >= BigInt(c.firstKey) - 1n && k <= BigInt(c.lastKey) + 1n;
/** Says what differs between two chunks that start at the same key, as precisely as the sums allow. */
function describeChunkDifference(table, key, want, got) {
    const range = `${table} ${key} ${want.firstKey}..${want.lastKey}`;
    const named = want.keyCoding === 'utf8' && got.keyCoding === 'utf8'
        ? nameTextRow(want, got)
        : want.keySum !== undefined && got.keySum !== undefined && !want.keyCoding && !got.keyCoding
            ? nameIntegerRow(want, got)
            : null;
    if (named)
        return `${table} row ${key}=${named.key} was ${named.what}`;
    if (got.rows !== want.rows) {
        return `${range}: ${got.rows} rows where the manifest has ${want.rows} (rows deleted or added)`;
    }
    return `${range}: ${got.rows} rows as in the manifest, but their content differs (rows altered)`;
}
/**
 * One row more or less moves the three sums together: Δkey = k, Δhash = h(row) and
 * Δweighted = k·h(row). Several changes that happen to add up to one key's difference almost
 * never keep that product, so a key is named only when it holds (else a range is reported).
 */
function oneRowInteger(k, dh, dw) {
    const mod = (x) => ((x % P) + P) % P;
    return mod(dw) === mod(mod(k) * mod(dh));
}
function nameIntegerRow(want, got) {
    const dh = BigInt(want.hashSum) - BigInt(got.hashSum);
    const dw = BigInt(want.weightedSum) - BigInt(got.weightedSum);
    if (got.rows === want.rows - 1) {
        const k = BigInt(want.keySum) - BigInt(got.keySum);
        if (inRange(k, want) && oneRowInteger(k, dh, dw))
            return { key: String(k), what: 'deleted' };
    }
    if (got.rows === want.rows + 1) {
        const k = BigInt(got.keySum) - BigInt(want.keySum);
        if (inRange(k, got) && oneRowInteger(k, -dh, -dw))
            return { key: String(k), what: 'added' };
    }
    if (got.rows === want.rows && got.keySum === want.keySum) {
        const dh = (BigInt(got.hashSum) - BigInt(want.hashSum) + P) % P;
        const dw = (BigInt(got.weightedSum) - BigInt(want.weightedSum) + P) % P;
        if (dh !== 0n) {
            let k = (dw * modInverse(dh)) % P;
            if (k > P / 2n)
                k -= P;
            if (inRange(k, want))
                return { key: String(k), what: 'altered' };
        }
    }
    return null;
}
/** A key named by the text sums must sort inside the chunk, as the database ordered it there. */
function textInChunk(k, c) {
    return k.length > 0 && c.rows > 0 && (k === c.firstKey || k === c.lastKey || c.rows > 1);
}
function nameTextRow(want, got) {
    const dk = BigInt(got.keySum) - BigInt(want.keySum);
    // See oneRowInteger: exact sums here, so the product must hold exactly.
    const oneRow = (k) => BigInt(got.weightedSum) - BigInt(want.weightedSum) ===
        k * (BigInt(got.hashSum) - BigInt(want.hashSum));
    if (got.rows === want.rows - 1) {
        const k = keyFromNumber(-dk);
        if (k !== null && textInChunk(k, want) && oneRow(-dk))
            return { key: k, what: 'deleted' };
    }
    if (got.rows === want.rows + 1) {
        const k = keyFromNumber(dk);
        if (k !== null && textInChunk(k, got) && oneRow(dk))
            return { key: k, what: 'added' };
    }
    if (got.rows === want.rows && dk === 0n) {
        const dh = BigInt(got.hashSum) - BigInt(want.hashSum);
        const dw = BigInt(got.weightedSum) - BigInt(want.weightedSum);
        // One altered row: Δweighted = k·Δhash exactly. Several: almost never a whole multiple.
        if (dh !== 0n && dw % dh === 0n) {
            const k = keyFromNumber(dw / dh);
            if (k !== null && textInChunk(k, want))
                return { key: k, what: 'altered' };
        }
    }
    return null;
}


/***/ }),

/***/ 73992:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   DU: () => (/* binding */ foreignKeys),
/* harmony export */   Gz: () => (/* binding */ schemaNames),
/* harmony export */   Uh: () => (/* binding */ restoreTime),
/* harmony export */   VZ: () => (/* binding */ rowCounts),
/* harmony export */   Xo: () => (/* binding */ formatSeconds),
/* harmony export */   cM: () => (/* binding */ checksum),
/* harmony export */   fC: () => (/* binding */ spotCheck),
/* harmony export */   kA: () => (/* binding */ describeFindings),
/* harmony export */   me: () => (/* binding */ integrity),
/* harmony export */   sc: () => (/* binding */ auditLog),
/* harmony export */   wQ: () => (/* binding */ schema),
/* harmony export */   wY: () => (/* binding */ backupAge)
/* harmony export */ });
/* harmony import */ var _audit_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(97622);
/**
 * The checks: each compares what a backup or restored copy holds with what its manifest says it
 * must hold, and returns a named result whose detail says what differs. They see only
 * engine-neutral inventories, never an engine.
 */

/** Detail lists at most this many differences, then says how many more. */
const MAX_LISTED = 5;
function listDifferences(name, differences, pass) {
    if (differences.length === 0)
        return { name, ok: true, detail: pass };
    const shown = differences.slice(0, MAX_LISTED).join('; ');
    const more = differences.length > MAX_LISTED ? `; and ${differences.length - MAX_LISTED} more` : '';
    return { name, ok: false, detail: shown + more };
}
const short = (sha) => sha.slice(0, 12);
function checksum(actual, expected) {
    if (actual.bytes !== expected.bytes) {
        return {
            name: 'checksum',
            ok: false,
            detail: `${actual.bytes} bytes where the manifest says ${expected.bytes} (truncated or appended to)`,
        };
    }
    if (actual.sha256 !== expected.sha256) {
        return {
            name: 'checksum',
            ok: false,
            detail: `sha256 ${short(actual.sha256)}… where the manifest says ${short(expected.sha256)}… (the file was altered)`,
        };
    }
    return {
        name: 'checksum',
        ok: true,
        detail: `sha256 ${short(actual.sha256)}… and ${actual.bytes} bytes match the manifest`,
    };
}
function integrity(damage) {
    return listDifferences('integrity', damage, 'integrity_check ok');
}
const pairKey = (v) => `${v.table} → ${v.parent}${v.constraint ? ` (${v.constraint})` : ''}`;
function listViolations(found) {
    const rows = found.reduce((n, v) => n + v.rows, 0);
    return `${rows} ${rows === 1 ? 'row points' : 'rows point'} at missing rows: ${found
        .slice(0, MAX_LISTED)
        .map((v) => `${pairKey(v)}: ${v.rows}`)
        .join(', ')}${found.length > MAX_LISTED ? `, and ${found.length - MAX_LISTED} more table pairs` : ''}`;
}
/** What a snapshot's integrity checks found, in one line for the report. */
function describeFindings(findings) {
    if (findings.damage.length)
        return `integrity_check FAILED: ${findings.damage.slice(0, 3).join('; ')}`;
    const parts = ['integrity_check ok'];
    if (findings.foreignKeys.length)
        parts.push(`foreign keys: ${listViolations(findings.foreignKeys)} (recorded in the manifest)`);
    else
        parts.push('no foreign-key violations');
    if (findings.notValid?.length)
        parts.push(`NOT VALID constraints: ${findings.notValid.join(', ')}`);
    return parts.join('; ');
}
/**
 * Foreign-key violations and NOT VALID constraints are data-quality findings: a faithful copy
 * has exactly those the source had when the backup was taken. The same ones pass (and are
 * reported); new ones, or a different count, fail naming the table pair.
 */
function foreignKeys(actual, expected) {
    const differences = [];
    const want = new Map(expected.foreignKeys.map((v) => [pairKey(v), v.rows]));
    const have = new Map(actual.foreignKeys.map((v) => [pairKey(v), v.rows]));
    for (const [pair, rows] of have) {
        const wanted = want.get(pair);
        if (wanted === undefined)
            differences.push(`${pair}: ${rows} rows point at missing rows, and the manifest has none (new violations)`);
        else if (wanted !== rows)
            differences.push(`${pair}: ${rows} rows point at missing rows where the manifest has ${wanted}`);
    }
    for (const [pair, rows] of want)
        if (!have.has(pair))
            differences.push(`${pair}: no violations where the manifest has ${rows} (rows differ from the backup)`);
    // A constraint whose rows the source violated can only be restored NOT VALID.
    const notValidWant = new Set([
        ...(expected.notValid ?? []),
        ...expected.foreignKeys.filter((v) => v.constraint).map((v) => `${v.table}.${v.constraint}`),
    ]);
    for (const c of actual.notValid ?? [])
        if (!notValidWant.has(c))
            differences.push(`constraint ${c} is not validated, and was valid in the source`);
    if (expected.foreignKeys.length === 0 && !expected.notValid?.length)
        return listDifferences('foreign-keys', differences, 'no foreign-key violations');
    const same = [];
    if (expected.foreignKeys.length)
        same.push(listViolations(expected.foreignKeys));
    if (expected.notValid?.length)
        same.push(`NOT VALID constraints ${expected.notValid.join(', ')}`);
    return listDifferences('foreign-keys', differences, `as in the source when the backup was taken (data quality, not damage): ${same.join('; ')}`);
}
function byName(items) {
    return new Map(items.map((i) => [i.name, i]));
}
/** Names of items missing from or added to `actual`, and those whose `same` test fails. */
function diffNamed(kind, actual, expected, same) {
    const out = [];
    const have = byName(actual);
    const want = byName(expected);
    for (const [name, e] of want) {
        const a = have.get(name);
        if (!a)
            out.push(`${kind} ${name} is missing`);
        else {
            const why = same(a, e);
            if (why)
                out.push(`${kind} ${name} ${why}`);
        }
    }
    for (const name of have.keys())
        if (!want.has(name))
            out.push(`${kind} ${name} is not in the manifest`);
    return out;
}
const json = (v) => JSON.stringify(v);
function schema(actual, expected) {
    const differences = [
        ...diffNamed('table', actual.tables, expected.tables, (a, e) => {
            const cols = diffNamed('column', a.columns, e.columns, (ac, ec) => json(ac) === json(ec) ? null : `changed (${json(ac)} where the manifest has ${json(ec)})`);
            return cols.length ? cols.join(', ') : null;
        }),
        ...diffNamed('index', actual.indexes, expected.indexes, (a, e) => json(a) === json(e)
            ? null
            : `differs (${a.table}(${a.columns.join(', ')})${a.unique ? ' unique' : ''} where the manifest has ${e.table}(${e.columns.join(', ')})${e.unique ? ' unique' : ''})`),
        ...diffNamed('trigger', actual.triggers, expected.triggers, (a, e) => a.sql === e.sql ? null : 'has a different definition'),
        ...diffNamed('view', actual.views, expected.views, (a, e) => a.sql === e.sql ? null : 'has a different definition'),
        ...diffNamed('constraint', actual.constraints ?? [], expected.constraints ?? [], (a, e) => a.sql === e.sql ? null : `differs (${a.sql} where the manifest has ${e.sql})`),
        ...diffNamed('sequence', actual.sequences ?? [], expected.sequences ?? [], () => null),
    ];
    const s = actual;
    return listDifferences('schema', differences, `${s.tables.length} tables, ${s.indexes.length} indexes, ${s.triggers.length} triggers, ${s.views.length} views match the manifest`);
}
/**
 * Schema check by names only, for a backup that can be listed but not queried (a pg_dump
 * archive's table of contents). Indexes that back a constraint are listed as the constraint.
 */
function schemaNames(actual, expected) {
    // CHECK and NOT NULL constraints live inside their table's entry; the others are entries.
    const listed = (expected.constraints ?? []).filter((c) => /^(PRIMARY KEY|UNIQUE|FOREIGN KEY|EXCLUDE)/.test(c.sql));
    const constraintNames = new Set(listed.map((c) => c.name.split('.').pop()));
    const want = {
        tables: expected.tables.map((t) => t.name),
        indexes: expected.indexes
            .filter((i) => !constraintNames.has(i.name.split('.').pop()))
            .map((i) => i.name),
        constraints: listed.map((c) => c.name),
        triggers: expected.triggers.map((t) => t.name),
        views: expected.views.map((v) => v.name),
        sequences: (expected.sequences ?? []).map((s) => s.name),
    };
    const differences = [];
    for (const kind of Object.keys(want)) {
        const have = new Set(actual[kind]);
        const wanted = new Set(want[kind]);
        const singular = kind === 'indexes' ? 'index' : kind.slice(0, -1);
        for (const name of wanted)
            if (!have.has(name))
                differences.push(`${singular} ${name} is missing`);
        for (const name of have)
            if (!wanted.has(name))
                differences.push(`${singular} ${name} is not in the manifest`);
    }
    return listDifferences('schema', differences, `${want.tables.length} tables, ${want.indexes.length} indexes, ${want.constraints.length} constraints, ${want.sequences.length} sequences, ${want.triggers.length} triggers, ${want.views.length} views in the archive match the manifest`);
}
function rowCounts(actual, expected) {
    const differences = [];
    for (const [table, want] of Object.entries(expected)) {
        const have = actual[table];
        if (have === undefined)
            differences.push(`table ${table} is missing`);
        else if (have !== want)
            differences.push(`${table} has ${have} rows where the manifest has ${want}`);
    }
    const total = Object.values(actual).reduce((sum, n) => sum + n, 0);
    return listDifferences('row-counts', differences, `${total} rows in ${Object.keys(expected).length} tables match the manifest`);
}
function spotCheck(actual, expected) {
    if (expected.items.length === 0) {
        return {
            name: 'spot-check',
            ok: actual.items.length === 0,
            detail: `${expected.table} was empty when the backup was taken; nothing to spot-check`,
        };
    }
    const differences = [];
    let related = 0;
    const tables = new Set();
    for (const want of expected.items) {
        const have = actual.items.find((i) => i.id === want.id);
        const who = `conversation ${want.id}`;
        if (!have || have.sha256 === 'missing') {
            differences.push(`${who} is missing`);
            continue;
        }
        if (have.sha256 !== want.sha256)
            differences.push(`${who}: its ${expected.table} row differs`);
        for (const w of want.related) {
            const h = have.related.find((r) => r.via === w.via);
            related += w.rows;
            tables.add(w.table);
            if (!h)
                differences.push(`${who}: ${w.table} (via ${w.via}) is missing`);
            else if (h.rows !== w.rows) {
                differences.push(`${who}: ${h.rows} ${w.table} rows where the manifest has ${w.rows}`);
            }
            else if (h.sha256 !== w.sha256) {
                differences.push(`${who}: its ${w.rows} ${w.table} rows differ in content`);
            }
        }
    }
    const ids = expected.items.map((i) => i.id).join(', ');
    return listDifferences('spot-check', differences, `${expected.items.length} most recent conversations (${ids}) and their ${related} related rows in ${tables.size} tables match`);
}
function auditLog(actual, expected) {
    const key = expected.key.join(',');
    if (actual.sha256 === expected.sha256 && actual.rows === expected.rows) {
        return {
            name: 'audit-log',
            ok: true,
            detail: `${expected.table}: ${expected.rows} rows, last ${key} ${expected.lastKey ?? '-'}, sha256 ${short(expected.sha256)}… match`,
        };
    }
    const differences = [];
    const have = new Map(actual.chunks.map((c) => [c.firstKey, c]));
    const firstKeys = new Set(expected.chunks.map((c) => c.firstKey));
    for (const want of expected.chunks) {
        const got = have.get(want.firstKey);
        if (!got) {
            differences.push(`${expected.table} rows ${key} ${want.firstKey}..${want.lastKey} (${want.rows} rows) are missing`);
        }
        else if (got.sha256 !== want.sha256 || got.rows !== want.rows) {
            differences.push((0,_audit_js__WEBPACK_IMPORTED_MODULE_0__/* .describeChunkDifference */ .SF)(expected.table, key, want, got));
        }
    }
    for (const got of actual.chunks) {
        if (!firstKeys.has(got.firstKey)) {
            differences.push(`${expected.table} rows ${key} ${got.firstKey}..${got.lastKey} (${got.rows} rows) are not in the manifest`);
        }
    }
    if (differences.length === 0)
        differences.push(`${expected.table}: ${actual.rows} rows, hash differs from the manifest`);
    return listDifferences('audit-log', differences, '');
}
/** RPO: how old the data in the backup is. */
function backupAge(ageSeconds, maxSeconds) {
    const age = formatSeconds(ageSeconds);
    if (maxSeconds === null)
        return { name: 'backup-age', ok: true, detail: `${age} old (no limit set)` };
    return ageSeconds <= maxSeconds
        ? {
            name: 'backup-age',
            ok: true,
            detail: `${age} old, within max-backup-age ${formatSeconds(maxSeconds)}`,
        }
        : {
            name: 'backup-age',
            ok: false,
            detail: `${age} old, over max-backup-age ${formatSeconds(maxSeconds)}: backups are not being taken or not reaching this job`,
        };
}
/** RTO: how long the restore took. */
function restoreTime(seconds, maxSeconds) {
    const took = `${seconds.toFixed(2)} s`;
    if (maxSeconds === null)
        return { name: 'restore-time', ok: true, detail: `restored in ${took} (no limit set)` };
    return seconds <= maxSeconds
        ? {
            name: 'restore-time',
            ok: true,
            detail: `restored in ${took}, within max-restore-seconds ${maxSeconds}`,
        }
        : {
            name: 'restore-time',
            ok: false,
            detail: `restored in ${took}, over max-restore-seconds ${maxSeconds}`,
        };
}
function formatSeconds(s) {
    if (s < 120)
        return `${Math.round(s)} s`;
    if (s < 7200)
        return `${Math.round(s / 60)} min`;
    if (s < 172800)
        return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
}


/***/ }),

/***/ 73821:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Mi: () => (/* binding */ ENCODE_ROW_NAME),
/* harmony export */   Pu: () => (/* binding */ keyText),
/* harmony export */   ae: () => (/* binding */ RowHasher),
/* harmony export */   b9: () => (/* binding */ encodeRow),
/* harmony export */   yo: () => (/* binding */ ENCODE_ROW_SOURCE)
/* harmony export */ });
/* unused harmony export encodeValue */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/**
 * Canonical row hashing. Each value is written with a type tag so that 1, 1.0, '1' and x'01'
 * hash differently, and the same rows give the same digest on either SQLite driver.
 */

function encodeValue(value) {
    if (value === null || value === undefined)
        return 'n';
    switch (typeof value) {
        case 'bigint':
            return `i${value}`;
        case 'number':
            return Number.isInteger(value) && Math.abs(value) < 2 ** 53 ? `r${value}.0` : `r${value}`;
        case 'string':
            // JSON.stringify's text, without its escaping pass where nothing needs escaping
            // (measured: 85-92 against 105-138 ms per 1.28M audit-log values): no quote, backslash
            // or control character, and no UTF-16 surrogate (a lone one is escaped; a pair is not,
            // but needs the check). The pattern is written here, not in a constant, so that the
            // function needs nothing outside itself (ENCODE_ROW_SOURCE); it costs no more per call.
            // eslint-disable-next-line no-control-regex -- the control characters are what it must find
            return /^[^"\\\u0000-\u001f\ud800-\udfff]*$/.test(value)
                ? `t"${value}"`
                : `t${JSON.stringify(value)}`;
        case 'boolean':
            return value ? 'i1' : 'i0';
    }
    if (value instanceof Uint8Array)
        return `b${Buffer.from(value).toString('hex')}`;
    if (value instanceof Date)
        return `d${value.toISOString()}`;
    return `j${JSON.stringify(value)}`;
}
function encodeRow(row) {
    // The same text as row.map(encodeValue).join('\u001f') + '\n', without the array.
    let line = row.length > 0 ? encodeValue(row[0]) : '';
    for (let i = 1; i < row.length; i++)
        line += '\u001f' + encodeValue(row[i]);
    return line + '\n';
}
/**
 * encodeValue and encodeRow as source text, declaring a function named ENCODE_ROW_NAME: for a
 * worker thread to encode rows exactly as this thread does (engines/sqlite/audit-worker.ts).
 * The two refer to nothing outside themselves but each other and JavaScript's globals.
 */
const ENCODE_ROW_SOURCE = `${encodeValue.toString()}\n${encodeRow.toString()}`;
const ENCODE_ROW_NAME = encodeRow.name;
/** Hashes rows one at a time; memory stays flat however many rows there are. */
class RowHasher {
    hash = (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.createHash)('sha256');
    count = 0;
    add(row) {
        this.addEncoded(encodeRow(row));
    }
    /** A row already encoded with encodeRow, so a caller hashing it several ways encodes it once. */
    addEncoded(line) {
        this.hash.update(line);
        this.count++;
    }
    digest() {
        return this.hash.digest('hex');
    }
}
/** A key value as shown in reports and stored in manifests. */
function keyText(value) {
    if (value instanceof Uint8Array)
        return Buffer.from(value).toString('hex');
    return String(value);
}


/***/ }),

/***/ 7833:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Hl: () => (/* binding */ checkRestored),
/* harmony export */   MG: () => (/* binding */ checkDatabase),
/* harmony export */   O1: () => (/* binding */ takeInventory),
/* harmony export */   k_: () => (/* binding */ runCheck),
/* harmony export */   vS: () => (/* binding */ databaseFacts)
/* harmony export */ });
/* unused harmony export startIntegrity */
/* harmony import */ var _audit_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(97622);
/* harmony import */ var _checks_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(73992);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(99661);
/**
 * Engine-neutral work on an open Database: taking the inventory a manifest records, and the
 * checks that compare a database with its manifest. Engines call these; modes call these; the
 * checks never know which engine they run on.
 */



async function takeInventory(db, options) {
    const schema = await db.schema();
    return {
        schema,
        rowCounts: await db.rowCounts(schema.tables.map((t) => t.name)),
        audit: options.auditTable
            ? await (0,_audit_js__WEBPACK_IMPORTED_MODULE_0__/* .digestAudit */ .mw)(options.auditTable, db.auditRows(options.auditTable))
            : null,
        conversations: options.conversationsTable
            ? await db.recentConversations(options.conversationsTable, options.spotCheckCount)
            : null,
    };
}
/** Runs one check; an error while checking is that check failing, with the error as its detail. */
async function runCheck(name, fn) {
    try {
        return await fn();
    }
    catch (err) {
        return { name, ok: false, detail: (0,_util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .describeError */ .U)(err) };
    }
}
function databaseFacts(bytes, counts) {
    return {
        bytes,
        tables: Object.keys(counts).length,
        rows: Object.values(counts).reduce((a, b) => a + b, 0),
    };
}
/**
 * Integrity reads the whole database, and an engine may do it off this thread: start it first,
 * do other work, and await it last (checkDatabase takes the started findings). Damage fails the
 * integrity check; foreign-key violations are compared with those the manifest recorded.
 */
function startIntegrity(db, manifest) {
    return Promise.all([db.integrityProblems(), manifest]).then(([found, { inventory }]) => [
        (0,_checks_js__WEBPACK_IMPORTED_MODULE_1__/* .integrity */ .me)(found.damage),
        (0,_checks_js__WEBPACK_IMPORTED_MODULE_1__/* .foreignKeys */ .DU)(found, {
            foreignKeys: inventory.foreignKeyViolations ?? [],
            notValid: inventory.notValid ?? [],
        }),
    ], (err) => [{ name: 'integrity', ok: false, detail: (0,_util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .describeError */ .U)(err) }]);
}
/**
 * Integrity, schema and row counts against the manifest. A database too damaged to read fails
 * the check that tried, and the others still run.
 */
async function checkDatabase(db, manifest, started = startIntegrity(db, manifest)) {
    const checks = [
        await runCheck('schema', async () => (0,_checks_js__WEBPACK_IMPORTED_MODULE_1__/* .schema */ .wQ)(await db.schema(), manifest.inventory.schema)),
    ];
    let database = null;
    checks.push(await runCheck('row-counts', async () => {
        const counts = await db.rowCounts((await db.schema()).tables.map((t) => t.name));
        database = databaseFacts(await db.bytes(), counts);
        return (0,_checks_js__WEBPACK_IMPORTED_MODULE_1__/* .rowCounts */ .VZ)(counts, manifest.inventory.rowCounts);
    }));
    checks.unshift(...(await started));
    return { checks, database };
}
/**
 * The runbook's post-restore checks, run on the restored copy against the manifest.
 * `findingsOf`: the manifest whose integrity findings (foreign-key violations, NOT VALID
 * constraints) the copy's are compared with, when it is completed after the rest of it (a
 * restore check that starts on the inventory before the snapshot's own checks are done).
 */
async function checkRestored(db, manifest, findingsOf = manifest) {
    const { inventory } = manifest;
    // SQLite's integrity check runs on another thread meanwhile.
    const integrityCheck = startIntegrity(db, findingsOf);
    const checks = [];
    const conversations = inventory.conversations;
    if (conversations) {
        checks.push(await runCheck('spot-check', async () => (0,_checks_js__WEBPACK_IMPORTED_MODULE_1__/* .spotCheck */ .fC)(await db.conversations(conversations.table, conversations.items.map((i) => i.id)), conversations)));
    }
    const audit = inventory.audit;
    if (audit) {
        checks.push(await runCheck('audit-log', async () => (0,_checks_js__WEBPACK_IMPORTED_MODULE_1__/* .auditLog */ .sc)(await (0,_audit_js__WEBPACK_IMPORTED_MODULE_0__/* .digestAudit */ .mw)(audit.table, db.auditRows(audit.table), audit.chunks.map((c) => c.firstKey), audit.chunks), audit)));
    }
    const base = await checkDatabase(db, manifest, integrityCheck);
    return { checks: [...base.checks, ...checks], database: base.database };
}


/***/ }),

/***/ 41708:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  _7: () => (/* reexport */ COMPRESSIONS),
  $d: () => (/* binding */ ENCRYPTIONS),
  gA: () => (/* reexport */ ageRecipientOf),
  q$: () => (/* binding */ checkDecryption),
  Wn: () => (/* binding */ checkEncryption),
  JG: () => (/* binding */ decodeFile),
  rN: () => (/* binding */ encodeFile),
  c: () => (/* binding */ encodedExtension),
  Lf: () => (/* reexport */ splitKeyLines)
});

// UNUSED EXPORTS: CodecInputs, detectFileFormat, detectFormat, encodeStream, generateAgeIdentity, verifyEncodedFile, zstdAvailable

// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(77598);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: external "node:stream"
var external_node_stream_ = __webpack_require__(57075);
// EXTERNAL MODULE: external "node:stream/promises"
var external_node_stream_promises_ = __webpack_require__(46466);
// EXTERNAL MODULE: ./lib/util/cleanup.js
var cleanup = __webpack_require__(16100);
// EXTERNAL MODULE: ./lib/util/errors.js
var errors = __webpack_require__(99661);
// EXTERNAL MODULE: ./lib/util/fs.js
var fs = __webpack_require__(27685);
// EXTERNAL MODULE: external "node:util"
var external_node_util_ = __webpack_require__(57975);
;// CONCATENATED MODULE: ./lib/codec/bech32.js
/**
 * Bech32 (BIP173) as age uses it for keys: no length limit on the data part, all-lowercase or
 * all-uppercase, the checksum always computed over the lowercase form.
 */
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
function polymod(values) {
    let chk = 1;
    for (const v of values) {
        const top = chk >>> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v;
        for (let i = 0; i < 5; i++)
            if ((top >>> i) & 1)
                chk ^= GENERATOR[i];
    }
    return chk >>> 0;
}
function hrpExpand(hrp) {
    const out = [];
    for (const c of hrp)
        out.push(c.charCodeAt(0) >> 5);
    out.push(0);
    for (const c of hrp)
        out.push(c.charCodeAt(0) & 31);
    return out;
}
/** Regroups bits; `pad` is false when decoding, where leftover bits must be zero padding. */
function convertBits(data, from, to, pad) {
    let acc = 0;
    let bits = 0;
    const out = [];
    const max = (1 << to) - 1;
    for (let i = 0; i < data.length; i++) {
        acc = (acc << from) | data[i];
        bits += from;
        while (bits >= to) {
            bits -= to;
            out.push((acc >> bits) & max);
        }
        acc &= (1 << bits) - 1;
    }
    if (pad) {
        if (bits > 0)
            out.push((acc << (to - bits)) & max);
    }
    else if (bits >= from || acc !== 0) {
        return null;
    }
    return out;
}
/** Encodes `data` under `hrp`; returns lowercase unless `upper`. */
function bech32_bech32Encode(hrp, data, upper = false) {
    const lower = hrp.toLowerCase();
    const words = convertBits(data, 8, 5, true);
    const mod = polymod([...hrpExpand(lower), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
    let out = `${lower}1`;
    for (const w of words)
        out += CHARSET[w];
    for (let i = 0; i < 6; i++)
        out += CHARSET[(mod >>> (5 * (5 - i))) & 31];
    return upper ? out.toUpperCase() : out;
}
/** Decodes a Bech32 string; returns null for anything malformed (mixed case, bad checksum). */
function bech32Decode(text) {
    if (text !== text.toLowerCase() && text !== text.toUpperCase())
        return null;
    const s = text.toLowerCase();
    const sep = s.lastIndexOf('1');
    if (sep < 1 || sep + 7 > s.length)
        return null;
    const hrp = s.slice(0, sep);
    for (const c of hrp) {
        const code = c.charCodeAt(0);
        if (code < 33 || code > 126)
            return null;
    }
    const words = [];
    for (const c of s.slice(sep + 1)) {
        const w = CHARSET.indexOf(c);
        if (w < 0)
            return null;
        words.push(w);
    }
    if (polymod([...hrpExpand(hrp), ...words]) !== 1)
        return null;
    const bytes = convertBits(words.slice(0, -6), 5, 8, false);
    if (!bytes)
        return null;
    return { hrp, data: Buffer.from(bytes) };
}

// EXTERNAL MODULE: ./lib/options/inputs.js
var inputs = __webpack_require__(91241);
;// CONCATENATED MODULE: ./lib/codec/inputs.js
/**
 * The action inputs that hold the codec's settings and keys, from the input table
 * (src/options/inputs.ts). Errors name these so a user knows which input to fix.
 */

const CodecInputs = {
    Encryption: inputs/* Inputs */.G0.Encryption,
    Compression: inputs/* Inputs */.G0.Compression,
    AgeRecipients: inputs/* Inputs */.G0.AgeRecipients,
    AgeIdentity: inputs/* Inputs */.G0.AgeIdentity,
    AgePassphrase: inputs/* Inputs */.G0.AgePassphrase,
    GpgPassphrase: inputs/* Inputs */.G0.GpgPassphrase,
    GpgRecipient: inputs/* Inputs */.G0.GpgRecipient,
    GpgHomedir: inputs/* Inputs */.G0.GpgHomedir,
};

;// CONCATENATED MODULE: ./lib/codec/age.js
/**
 * The age v1 file format (https://age-encryption.org/v1) on node:crypto: X25519 and scrypt
 * recipients, the HMAC'd text header, and the STREAM payload of 64 KiB ChaCha20-Poly1305 chunks.
 * Native crypto keeps throughput near the age CLI; files are interchangeable with it both ways.
 *
 * Decryption releases a chunk only after its tag verified, and a file that ends without a chunk
 * flagged final is an error, so a truncated file can never pass for a complete one.
 */






const scrypt = (0,external_node_util_.promisify)(external_node_crypto_.scrypt);
const AGE_MAGIC = 'age-encryption.org/';
const VERSION_LINE = 'age-encryption.org/v1';
/** Plaintext bytes per payload chunk, and the same chunk sealed (its 16-byte tag added). */
const CHUNK = 64 * 1024;
const TAG = 16;
const ENC_CHUNK = CHUNK + TAG;
const FILE_KEY_BYTES = 16;
const NONCE_BYTES = 16;
/**
 * How much each stage may hold before it pushes back. A few MiB rather than Node's 64 KiB lets
 * the disk reads and writes (on libuv's threads) run while this thread encrypts; memory stays
 * bounded all the same.
 */
const STAGE_BUFFER = 4 << 20;
/** Real headers are a few hundred bytes; this only stops a damaged file from filling memory. */
const MAX_HEADER = 1 << 20;
/**
 * X25519 recipients whose stanzas (98 bytes each: `-> X25519 `, two lines of 43 base64 digits)
 * fit in MAX_HEADER with the version line and the MAC line (70 bytes): 10,699.
 */
const AGE_MAX_RECIPIENTS = Math.floor((MAX_HEADER - 70) / 98);
/** The first bytes of a file that AgeOpener.begin needs at most: the longest header, the nonce. */
const AGE_HEAD_MAX = MAX_HEADER + NONCE_BYTES;
const X25519_INFO = 'age-encryption.org/v1/X25519';
const SCRYPT_SALT_LABEL = 'age-encryption.org/v1/scrypt';
/** age's own default: about a second of work, 256 MiB of memory. */
const DEFAULT_SCRYPT_WORK_FACTOR = 18;
/** age's own ceiling when decrypting; a header asking for more is refused. */
const MAX_SCRYPT_WORK_FACTOR = 22;
// DER wrappings of a raw X25519 key (RFC 8410), so node:crypto can take the 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
/** A new X25519 identity and its recipient, the same as `age-keygen` makes. */
function generateAgeIdentity() {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const secret = rawPrivate(privateKey);
    return {
        identity: bech32Encode('AGE-SECRET-KEY-', secret, true),
        recipient: bech32Encode('age', rawPublic(publicKey)),
    };
}
/** The recipient (public key) of an identity, like `age-keygen -y`. */
function ageRecipientOf(identity) {
    return bech32_bech32Encode('age', parseIdentity(identity, 1).publicRaw);
}
/**
 * The keys in an input or a key file: one per line, blank lines and `#` comments skipped, the
 * way age reads `-R` recipient files and `-i` identity files (age-keygen output works as is).
 */
function splitKeyLines(text) {
    const lines = typeof text === 'string' ? text.split(/\r?\n/) : text.flatMap((t) => t.split(/\r?\n/));
    return lines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}
/** Throws a UserError naming age-recipients unless `text` is an X25519 recipient. */
function parseRecipient(text, index) {
    const shown = text.length > 24 ? `${text.slice(0, 20)}…` : text;
    const where = `${CodecInputs.AgeRecipients}: entry ${index} ("${shown}")`;
    if (text.startsWith('ssh-')) {
        throw new errors/* UserError */.y(`${where} is an SSH key; only age X25519 recipients (age1...) are supported, make one with age-keygen`);
    }
    const decoded = bech32Decode(text);
    if (!decoded)
        throw new errors/* UserError */.y(`${where} is not an age recipient (age1..., as printed by age-keygen); check for a typo or a cut-off line`);
    if (decoded.hrp !== 'age') {
        throw new errors/* UserError */.y(`${where} is a "${decoded.hrp}" key; only age X25519 recipients (age1...) are supported, make one with age-keygen`);
    }
    if (decoded.data.length !== 32)
        throw new errors/* UserError */.y(`${where} has the wrong length for an X25519 key; copy it again from age-keygen`);
    return decoded.data;
}
/** Never echoes the text: it is a secret. */
function parseIdentity(text, index) {
    const where = `${CodecInputs.AgeIdentity}: entry ${index}`;
    if (/^AGE-PLUGIN-/i.test(text) || /^AGE-SECRET-KEY-PQ-/i.test(text)) {
        throw new errors/* UserError */.y(`${where} is a plugin or post-quantum identity; only X25519 identities (AGE-SECRET-KEY-1...) are supported`);
    }
    const decoded = bech32Decode(text);
    if (!decoded || decoded.hrp !== 'age-secret-key-' || decoded.data.length !== 32) {
        throw new errors/* UserError */.y(`${where} is not an age identity (AGE-SECRET-KEY-1..., as written by age-keygen); check for a typo or a cut-off line`);
    }
    const privateKey = (0,external_node_crypto_.createPrivateKey)({
        key: Buffer.concat([PKCS8_PREFIX, decoded.data]),
        format: 'der',
        type: 'pkcs8',
    });
    return { privateKey, publicRaw: rawPublic((0,external_node_crypto_.createPublicKey)(privateKey)) };
}
function rawPublic(key) {
    return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}
function rawPrivate(key) {
    return key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
}
function publicKeyOf(raw) {
    return (0,external_node_crypto_.createPublicKey)({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}
// ---------------------------------------------------------------------------------------------
// Primitives
function hkdf(ikm, salt, info) {
    return Buffer.from((0,external_node_crypto_.hkdfSync)('sha256', ikm, salt, info, 32));
}
const ZERO_NONCE = Buffer.alloc(12);
function seal(key, nonce, plaintext) {
    const cipher = (0,external_node_crypto_.createCipheriv)('chacha20-poly1305', key, nonce, { authTagLength: TAG });
    const out = cipher.update(plaintext);
    cipher.final();
    return Buffer.concat([out, cipher.getAuthTag()]);
}
/** null when the tag does not verify. */
function age_open(key, nonce, sealed) {
    if (sealed.length < TAG)
        return null;
    const decipher = (0,external_node_crypto_.createDecipheriv)('chacha20-poly1305', key, nonce, { authTagLength: TAG });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    const out = decipher.update(sealed.subarray(0, sealed.length - TAG));
    try {
        decipher.final();
    }
    catch {
        return null;
    }
    return out;
}
/** Unpadded base64, as the age header writes it. */
function b64(buf) {
    return buf.toString('base64').replace(/=+$/, '');
}
/** null unless `text` is canonical unpadded base64 (the spec requires rejecting anything else). */
function unb64(text) {
    if (!/^[A-Za-z0-9+/]*$/.test(text))
        return null;
    const buf = Buffer.from(text, 'base64');
    return b64(buf) === text ? buf : null;
}
function stanzaText({ args, body }) {
    const text = b64(body);
    const lines = [];
    for (let i = 0; i < text.length; i += 64)
        lines.push(text.slice(i, i + 64));
    // The body ends at the first line shorter than 64 columns, so a full last line needs an
    // empty one after it.
    if (text.length % 64 === 0)
        lines.push('');
    return `-> ${args.join(' ')}\n${lines.join('\n')}\n`;
}
function x25519Stanza(fileKey, recipient) {
    const ephemeral = (0,external_node_crypto_.generateKeyPairSync)('x25519');
    const share = rawPublic(ephemeral.publicKey);
    let shared;
    try {
        shared = (0,external_node_crypto_.diffieHellman)({ privateKey: ephemeral.privateKey, publicKey: publicKeyOf(recipient) });
    }
    catch {
        throw new errors/* UserError */.y(`${CodecInputs.AgeRecipients}: a recipient is not a usable X25519 public key; copy it again from age-keygen`);
    }
    const wrapKey = hkdf(shared, Buffer.concat([share, recipient]), X25519_INFO);
    return { args: ['X25519', b64(share)], body: seal(wrapKey, ZERO_NONCE, fileKey) };
}
function scryptParams(logN) {
    const N = 2 ** logN;
    // Node refuses scrypt above 32 MiB of memory unless told otherwise; it needs 128·N·r bytes.
    return { N, r: 8, p: 1, maxmem: 128 * 8 * N * 2 };
}
async function scryptStanza(fileKey, passphrase, logN) {
    const salt = (0,external_node_crypto_.randomBytes)(16);
    const label = Buffer.concat([Buffer.from(SCRYPT_SALT_LABEL), salt]);
    const wrapKey = await scrypt(passphrase, label, 32, scryptParams(logN));
    return { args: ['scrypt', b64(salt), String(logN)], body: seal(wrapKey, ZERO_NONCE, fileKey) };
}
function headerMac(fileKey, headerUpToDashes) {
    return (0,external_node_crypto_.createHmac)('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
        .update(headerUpToDashes)
        .digest();
}
/**
 * Finds the end of the header in `buf`: the byte after the newline that ends the `--- ` line.
 * Stanza bodies are base64 and arguments follow `-> `, so `\n--- ` can only be the MAC line.
 */
function headerEnd(buf) {
    const mark = buf.indexOf('\n--- ');
    if (mark < 0)
        return -1;
    const eol = buf.indexOf(0x0a, mark + 5);
    return eol < 0 ? -1 : eol + 1;
}
function parseHeader(header, file) {
    const bad = (why) => new errors/* UserError */.y(`${file}: the age header is malformed (${why}): the file is damaged or not an age file; restore from another backup`);
    for (const byte of header)
        if (byte > 0x7e || (byte < 0x20 && byte !== 0x0a))
            throw bad('non-text bytes');
    const text = header.toString('latin1');
    const lines = text.split('\n');
    lines.pop(); // the header ends with a newline
    if (lines[0] !== VERSION_LINE) {
        if (lines[0]?.startsWith(AGE_MAGIC))
            throw new errors/* UserError */.y(`${file}: is an age file of an unsupported version (${lines[0]}); decrypt it with a newer age`);
        throw bad('no age-encryption.org/v1 line');
    }
    const stanzas = [];
    let i = 1;
    while (i < lines.length && lines[i].startsWith('-> ')) {
        const args = lines[i].slice(3).split(' ');
        if (args.some((a) => a === '' || !/^[\x21-\x7e]+$/.test(a)))
            throw bad('bad stanza arguments');
        i++;
        let body = '';
        for (;;) {
            const line = lines[i++];
            if (line === undefined)
                throw bad('stanza body not terminated');
            if (line.length > 64)
                throw bad('stanza body line longer than 64 columns');
            body += line;
            if (line.length < 64)
                break;
        }
        const decoded = unb64(body);
        if (!decoded)
            throw bad('stanza body is not canonical base64');
        stanzas.push({ args, body: decoded });
    }
    if (stanzas.length === 0)
        throw bad('no recipient stanzas');
    if (i !== lines.length - 1 || !lines[i].startsWith('--- '))
        throw bad('unexpected line');
    const mac = unb64(lines[i].slice(4));
    if (!mac || mac.length !== 32)
        throw bad('bad MAC line');
    const macInput = header.subarray(0, header.length - (lines[i].length - 3) - 1);
    return { stanzas, macInput, mac };
}
/** Starts an age file. Key parsing and scrypt happen here, before any payload. */
async function ageEncryptStart(opts) {
    const fileKey = (0,external_node_crypto_.randomBytes)(FILE_KEY_BYTES);
    let stanzas;
    if (opts.recipients && opts.recipients.length > 0) {
        stanzas = opts.recipients.map((r, n) => x25519Stanza(fileKey, parseRecipient(r, n + 1)));
    }
    else if (opts.passphrase !== undefined) {
        stanzas = [
            await scryptStanza(fileKey, opts.passphrase, opts.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR),
        ];
    }
    else {
        throw new errors/* UserError */.y(`${CodecInputs.AgeRecipients}: encryption: age needs at least one recipient (age1...) or ${CodecInputs.AgePassphrase}`);
    }
    const upToDashes = `${VERSION_LINE}\n${stanzas.map(stanzaText).join('')}---`;
    const header = `${upToDashes} ${b64(headerMac(fileKey, upToDashes))}\n`;
    // A header the decrypter would refuse as damaged makes a backup nothing here restores.
    if (header.length > MAX_HEADER) {
        throw new errors/* UserError */.y(`${CodecInputs.AgeRecipients}: ${stanzas.length} recipients make an age header of ${header.length} bytes, more than the ${MAX_HEADER} (1 MiB) this action reads when it decrypts, so nothing could restore the backup; give at most ${AGE_MAX_RECIPIENTS} recipients`);
    }
    const nonce = (0,external_node_crypto_.randomBytes)(NONCE_BYTES);
    return {
        head: Buffer.concat([Buffer.from(header, 'latin1'), nonce]),
        sealer: new PayloadSealer(payloadKey(fileKey, nonce)),
    };
}
/** A transform from plaintext to an age file. Key parsing and scrypt happen before it returns. */
async function ageEncryptStream(opts) {
    const { head, sealer } = await ageEncryptStart(opts);
    return new AgeEncrypter(head, sealer);
}
/** Whole buffers in, exact-size slices out, copying only when a slice spans two buffers. */
class ByteQueue {
    parts = [];
    length = 0;
    push(buf) {
        if (buf.length === 0)
            return;
        this.parts.push(buf);
        this.length += buf.length;
    }
    take(n) {
        const first = this.parts[0];
        if (first && first.length >= n) {
            const out = first.subarray(0, n);
            if (first.length === n)
                this.parts.shift();
            else
                this.parts[0] = first.subarray(n);
            this.length -= n;
            return out;
        }
        const out = Buffer.allocUnsafe(n);
        let filled = 0;
        while (filled < n) {
            const part = this.parts[0];
            const used = Math.min(part.length, n - filled);
            part.copy(out, filled, 0, used);
            filled += used;
            if (used === part.length)
                this.parts.shift();
            else
                this.parts[0] = part.subarray(used);
        }
        this.length -= n;
        return out;
    }
}
/**
 * The payload key as a KeyObject: a raw Buffer key costs node:crypto a key import per cipher,
 * which at one cipher per 64 KiB chunk was a quarter of the encryption time.
 */
function payloadKey(fileKey, nonce) {
    return (0,external_node_crypto_.createSecretKey)(hkdf(fileKey, nonce, 'payload'));
}
/**
 * Writes the 12-byte STREAM nonce into `nonce` (reused: the cipher copies it): an 11-byte
 * big-endian chunk counter, then 1 for the last chunk.
 */
function chunkNonce(nonce, counter, last) {
    nonce.writeUIntBE(counter, 5, 6);
    nonce[11] = last ? 1 : 0;
    return nonce;
}
/**
 * The pieces of a block of chunks: whole chunks of `size`, but for the last block, whose final
 * piece may be short, or empty when the whole input was.
 */
function chunksOf(block, size, last) {
    const count = last ? Math.max(1, Math.ceil(block.length / size)) : block.length / size;
    return Array.from({ length: count }, (_, i) => block.subarray(i * size, (i + 1) * size));
}
/** Seals the STREAM payload, one 64 KiB chunk after another. */
class PayloadSealer {
    key;
    counter = 0;
    nonce = Buffer.alloc(12);
    constructor(key) {
        this.key = key;
    }
    /** The ciphertext and tag of the next chunk; `last` for the final one. */
    seal(plain, last) {
        const nonce = chunkNonce(this.nonce, this.counter++, last);
        const cipher = (0,external_node_crypto_.createCipheriv)('chacha20-poly1305', this.key, nonce, { authTagLength: TAG });
        const sealed = cipher.update(plain);
        cipher.final();
        return [sealed, cipher.getAuthTag()];
    }
    /**
     * Seals whole chunks, or with `last` the input's final block: ciphertexts and tags in file
     * order, uncopied, for one writev.
     */
    sealBlock(block, last) {
        const pieces = chunksOf(block, CHUNK, last);
        return pieces.flatMap((plain, i) => this.seal(plain, last && i === pieces.length - 1));
    }
}
class AgeEncrypter extends external_node_stream_.Transform {
    sealer;
    queue = new ByteQueue();
    prefix;
    constructor(prefix, sealer) {
        super({ highWaterMark: STAGE_BUFFER });
        this.sealer = sealer;
        this.prefix = prefix;
    }
    start() {
        if (this.prefix)
            this.push(this.prefix);
        this.prefix = null;
    }
    /**
     * Seals `count` whole chunks, or with `last` the one chunk left, into one buffer: one push,
     * and one write, per batch. Measured: pushing each chunk and its 16-byte tag separately costs
     * about 20% more CPU in the stream machinery and in small writes.
     */
    seal(count, last) {
        const size = last ? this.queue.length : CHUNK;
        const out = Buffer.allocUnsafe(count * (size + TAG));
        let at = 0;
        for (let i = 0; i < count; i++) {
            for (const piece of this.sealer.seal(this.queue.take(size), last))
                at += piece.copy(out, at);
        }
        this.push(out);
    }
    _transform(chunk, _encoding, done) {
        this.start();
        this.queue.push(chunk);
        // Keep at least one byte back: only the end of the input says which chunk is the last.
        const ready = Math.floor((this.queue.length - 1) / CHUNK);
        if (ready > 0)
            this.seal(ready, false);
        done();
    }
    _flush(done) {
        this.start();
        // What is left is at most one chunk, the last: empty only when the whole input was.
        this.seal(1, true);
        done();
    }
}
/** Throws a UserError naming the input unless these settings can open some age file. */
function ageDecryptCheck(opts) {
    const identities = splitKeyLines(opts.identities ?? []).map((t, n) => parseIdentity(t, n + 1));
    if (identities.length === 0 && opts.passphrase === undefined) {
        throw new errors/* UserError */.y(`${CodecInputs.AgeIdentity}: reading an age backup needs ${CodecInputs.AgeIdentity} (AGE-SECRET-KEY-1...) or ${CodecInputs.AgePassphrase}`);
    }
    if (opts.passphrase === '') {
        throw new errors/* UserError */.y(`${CodecInputs.AgePassphrase}: the passphrase is empty; set it or leave it unset`);
    }
    return identities;
}
/** A transform from an age file to its plaintext; `file` only names the backup in errors. */
function ageDecryptStream(opts, file) {
    return new AgeDecrypter(new AgeOpener(opts, file));
}
class AgeDecrypter extends external_node_stream_.Transform {
    opener;
    head = Buffer.alloc(0);
    queue = new ByteQueue();
    constructor(opener) {
        super({ highWaterMark: STAGE_BUFFER });
        this.opener = opener;
    }
    _transform(chunk, _encoding, done) {
        this.consume(chunk).then(() => done(), done);
    }
    async consume(chunk) {
        if (this.head) {
            const head = Buffer.concat([this.head, chunk]);
            if (!AgeOpener.enough(head)) {
                this.head = head;
                return;
            }
            this.head = null;
            chunk = head.subarray(await this.opener.begin(head));
        }
        this.queue.push(chunk);
        // The chunk that might be the last stays queued until the input ends. Each chunk goes on
        // by itself (measured: copying them into one buffer, as encryption does, costs more here).
        const ready = Math.floor((this.queue.length - 1) / ENC_CHUNK);
        for (let i = 0; i < ready; i++)
            this.push(this.opener.middle(this.queue.take(ENC_CHUNK)));
    }
    _flush(done) {
        this.finish().then(() => done(), done);
    }
    async finish() {
        // Cut short before the payload: begin() says where (empty, in the header, at the nonce).
        if (this.head)
            this.queue.push(this.head.subarray(await this.opener.begin(this.head)));
        this.push(this.opener.last(this.queue.take(this.queue.length)));
    }
}
/**
 * Reads an age file: the header from its first bytes, then the payload chunk by chunk, in
 * order. The transform and the file-to-file path both use it, so they fail alike.
 */
class AgeOpener {
    opts;
    file;
    identities;
    key = null;
    counter = 0;
    nonce = Buffer.alloc(12);
    constructor(opts, file) {
        this.opts = opts;
        this.file = file;
        this.identities = ageDecryptCheck(opts);
    }
    /** Whether `head`, a file's first bytes, holds its header and nonce, or shows it never ends. */
    static enough(head) {
        if (head.length >= AGE_HEAD_MAX)
            return true;
        const end = headerEnd(head);
        return end >= 0 && head.length >= end + NONCE_BYTES;
    }
    /**
     * Unwraps the file key from `head`: the file's first bytes, enough() of them or all there
     * are. Returns where the payload starts.
     */
    async begin(head) {
        if (head.length === 0) {
            throw new errors/* UserError */.y(`${this.file}: is empty (0 bytes), not an age file: the backup was cut off or never written; restore from another backup`);
        }
        const end = headerEnd(head.subarray(0, MAX_HEADER));
        if (end < 0) {
            throw this.truncated(head.length >= MAX_HEADER
                ? 'the age header never ends'
                : 'the file ends inside the age header');
        }
        const fileKey = await this.unwrap(parseHeader(head.subarray(0, end), this.file));
        if (head.length < end + NONCE_BYTES) {
            throw this.truncated('the file ends before the age payload starts');
        }
        this.key = payloadKey(fileKey, head.subarray(end, end + NONCE_BYTES));
        return end + NONCE_BYTES;
    }
    /** The plaintext of the next chunk, one that more of the file follows. */
    middle(sealed) {
        const plain = this.open(sealed, false);
        if (!plain) {
            if (this.open(sealed, true)) {
                throw this.damaged(`data follows the final age chunk ${this.counter}`);
            }
            throw this.damaged(`age payload chunk ${this.counter} failed authentication`);
        }
        this.counter++;
        return plain;
    }
    /** The plaintext of the final chunk: all of the file after the last middle chunk. */
    last(sealed) {
        if (sealed.length === 0)
            throw this.truncated('the file ends right after the age header');
        const plain = this.open(sealed, true);
        if (!plain) {
            // A whole chunk that opens as a middle one: the file was cut at a chunk boundary, which
            // only the last-chunk flag can tell from a complete file.
            if (sealed.length === ENC_CHUNK && this.open(sealed, false)) {
                throw this.truncated(`the age payload ends after chunk ${this.counter} without a final chunk`);
            }
            throw this.damaged(sealed.length < ENC_CHUNK
                ? `the last age chunk (${this.counter}) failed authentication; the file may also be truncated`
                : `age payload chunk ${this.counter} failed authentication`);
        }
        if (plain.length === 0 && this.counter > 0)
            throw this.damaged('the final age chunk is empty, which age never writes');
        return plain;
    }
    /**
     * Opens whole sealed chunks, or with `last` the file's final block: each chunk's plaintext,
     * in order, released only once its tag verified.
     */
    openBlock(block, last) {
        const pieces = chunksOf(block, ENC_CHUNK, last);
        return pieces.map((sealed, i) => last && i === pieces.length - 1 ? this.last(sealed) : this.middle(sealed));
    }
    open(sealed, last) {
        return age_open(this.key, chunkNonce(this.nonce, this.counter, last), sealed);
    }
    async unwrap(header) {
        const scryptStanzas = header.stanzas.filter((s) => s.args[0] === 'scrypt');
        const x25519 = header.stanzas.filter((s) => s.args[0] === 'X25519');
        let fileKey = null;
        if (scryptStanzas.length > 0) {
            if (header.stanzas.length !== 1)
                throw this.malformed('a passphrase stanza must be the only one');
            if (this.opts.passphrase === undefined) {
                throw new errors/* UserError */.y(`${CodecInputs.AgePassphrase}: ${this.file} is encrypted with a passphrase; set ${CodecInputs.AgePassphrase} (an identity cannot open it)`);
            }
            fileKey = await this.unwrapScrypt(scryptStanzas[0], this.opts.passphrase);
            if (!fileKey) {
                throw new errors/* UserError */.y(`${CodecInputs.AgePassphrase}: the passphrase does not decrypt ${this.file} (wrong passphrase, or the header is damaged)`);
            }
        }
        else {
            if (this.identities.length === 0) {
                throw new errors/* UserError */.y(`${CodecInputs.AgeIdentity}: ${this.file} is encrypted to age recipients, not a passphrase; set ${CodecInputs.AgeIdentity} to the matching AGE-SECRET-KEY-1...`);
            }
            for (const stanza of x25519) {
                for (const identity of this.identities) {
                    fileKey = this.unwrapX25519(stanza, identity);
                    if (fileKey)
                        break;
                }
                if (fileKey)
                    break;
            }
            if (!fileKey) {
                const n = this.identities.length;
                throw new errors/* UserError */.y(`${CodecInputs.AgeIdentity}: ${n === 1 ? 'the identity does' : `none of the ${n} identities`} not match any recipient of ${this.file} (encrypted to other age recipients, or the header is damaged); use the secret key for one of the backup's age-recipients`);
            }
        }
        if (!(0,external_node_crypto_.timingSafeEqual)(headerMac(fileKey, header.macInput), header.mac)) {
            throw this.damaged('the age header failed authentication');
        }
        return fileKey;
    }
    unwrapX25519(stanza, identity) {
        const share = stanza.args.length === 2 ? unb64(stanza.args[1]) : null;
        if (!share || share.length !== 32 || stanza.body.length !== FILE_KEY_BYTES + TAG) {
            throw this.malformed('bad X25519 stanza');
        }
        let shared;
        try {
            shared = (0,external_node_crypto_.diffieHellman)({ privateKey: identity.privateKey, publicKey: publicKeyOf(share) });
        }
        catch {
            throw this.malformed('X25519 share is not a valid point');
        }
        if (shared.every((b) => b === 0))
            throw this.malformed('X25519 share is a low-order point');
        const wrapKey = hkdf(shared, Buffer.concat([share, identity.publicRaw]), X25519_INFO);
        return age_open(wrapKey, ZERO_NONCE, stanza.body);
    }
    async unwrapScrypt(stanza, passphrase) {
        const salt = stanza.args.length === 3 ? unb64(stanza.args[1]) : null;
        const logText = stanza.args[2] ?? '';
        if (!salt ||
            salt.length !== 16 ||
            !/^[1-9][0-9]*$/.test(logText) ||
            stanza.body.length !== FILE_KEY_BYTES + TAG) {
            throw this.malformed('bad scrypt stanza');
        }
        const logN = Number(logText);
        const max = this.opts.maxScryptWorkFactor ?? MAX_SCRYPT_WORK_FACTOR;
        if (logN > max) {
            throw new errors/* UserError */.y(`${this.file}: the age passphrase work factor 2^${logN} is above the limit 2^${max}; decrypt it with the age CLI if it is trusted`);
        }
        const wrapKey = await scrypt(passphrase, Buffer.concat([Buffer.from(SCRYPT_SALT_LABEL), salt]), 32, scryptParams(logN));
        return age_open(wrapKey, ZERO_NONCE, stanza.body);
    }
    damaged(what) {
        return new errors/* UserError */.y(`${this.file}: ${what}: the file is damaged or was tampered with; restore from another backup`);
    }
    truncated(what) {
        return new errors/* UserError */.y(`${this.file}: ${what}: the file is truncated; restore from another backup or copy it again`);
    }
    malformed(what) {
        return new errors/* UserError */.y(`${this.file}: the age header is malformed (${what}): the file is damaged; restore from another backup`);
    }
}

// EXTERNAL MODULE: external "node:worker_threads"
var external_node_worker_threads_ = __webpack_require__(75919);
;// CONCATENATED MODULE: ./lib/codec/blocks.js
/**
 * File to file in blocks, off the stream machinery: for age with no compression, the one codec
 * whose CPU work (a cipher per 64 KiB chunk, two sha256s) is cheap enough that Node's streams,
 * their copies and their garbage were most of the time.
 *
 * The input is read into a ring of reused blocks in shared memory, a few blocks ahead, and
 * hashed as it is read; for a large file that is a worker thread's job (BlockReader), so the
 * second core reads and hashes while this thread converts. The output goes out one write at a
 * time on libuv's threads: positional writev of the pieces the conversion made, uncopied
 * (FileSink), or, for an encoded backup, gathered into aligned blocks and written past the
 * page cache with O_DIRECT (DirectSink).
 *
 * Measured and left out: at 512 MiB, the worker hashing only, with the reads on libuv (no
 * faster than one thread: the reads already kept the second core busy); at 1 GiB, the output
 * hashed on a second worker from a shared ring it was copied into (encode 2.23/2.27 -> 2.77/2.73
 * s, decode 2.20/2.22 -> 2.87/2.88 s, 0.9 to 1.1 more CPU seconds: three busy threads on two
 * cores, and the copy).
 */




/** Blocks in the ring: one converting, one read for lookahead, the rest reading ahead. */
const SLOTS = 4;
/**
 * Inputs from this size are read and hashed on a worker thread. Measured against reading and
 * hashing here: 10% slower at 64 MiB (a worker takes 60 to 90 ms to start, and 15 MiB), 5%
 * faster at 128 MiB, 10 to 17% faster at 512 MiB.
 */
const WORKER_FROM = 128 << 20;
/**
 * Output bytes between datasyncs. Measured at 1 GiB against one fsync at the end, two
 * alternating pairs of 3 runs: encode 2.50/2.48 -> 2.20/2.29 s, decode 2.53/2.43 -> 2.16/2.21 s.
 */
const SYNC_EVERY = 64 << 20;
/**
 * Runs `job` to the end of the input and every write; returns the sha256 and size of all the
 * input. On any error nothing is left in flight.
 */
async function convertBlocks(job) {
    const { input, size, signal } = job;
    // Slot n at n * size; a header is read at the start, before any block is.
    const ring = new SharedArrayBuffer(Math.max(SLOTS * size, job.head?.max ?? 0));
    const big = (await input.stat()).size >= WORKER_FROM;
    const reader = (big && startReadWorker(input, ring, size)) || new LocalReader(input, ring, size);
    const sink = job.output && outputSink(job.output);
    try {
        throwIfAborted(signal);
        let start = 0;
        if (job.head) {
            const head = await readFull(input, Buffer.from(ring, 0, job.head.max), 0);
            start = await job.head.begin(head);
        }
        reader.begin(start);
        if (job.output?.prefix)
            await sink.add([job.output.prefix], true);
        for (let block = await reader.next();;) {
            throwIfAborted(signal);
            // Only the next block tells whether a full one is the last; a short one is.
            const next = block.length < size ? null : await reader.next();
            const last = !next?.length;
            const pieces = job.convert(block, last);
            reader.release();
            if (sink)
                await sink.add(pieces);
            else
                free(pieces);
            if (last)
                break;
            block = next;
        }
        await sink?.end();
        return await reader.digest();
    }
    finally {
        await reader.close();
        await sink?.settled();
    }
}
function outputSink(output) {
    const stages = output.direct ? directStages() : null;
    return stages
        ? new DirectSink(output.direct, output.handle, output.at, stages)
        : new FileSink(output.handle, output.at, output.sync ?? true);
}
/**
 * Writes each block's pieces with one positional writev on libuv's threads, one write at a
 * time: the next block is converted while one is written. Measured at 1 GiB against two writes
 * in flight (which contend for the file's lock, one spinning while the other copies), three
 * alternating runs each: encode 1.55-1.73 -> 1.27-1.38 s, decode 2.46-2.99 -> 2.03-2.36 s.
 */
class FileSink {
    handle;
    at;
    pending = null;
    writeback;
    constructor(handle, at, sync) {
        this.handle = handle;
        this.at = at;
        this.writeback = sync ? new Writeback(handle) : null;
    }
    async add(pieces, keep = false) {
        await this.pending;
        const at = this.at;
        this.at += pieces.reduce((sum, p) => sum + p.length, 0);
        const end = this.at;
        this.pending = handled(writeAll(this.handle, [...pieces], at).then(() => {
            if (!keep)
                free(pieces);
            this.writeback?.written(end);
        }));
    }
    async end() {
        await this.pending;
        await this.writeback?.done();
    }
    async settled() {
        await this.pending?.catch(() => undefined);
        await this.writeback?.settled();
    }
}
/** O_DIRECT's alignment, of memory, file offsets and lengths alike: a page, 4096 bytes. */
const DIRECT_ALIGN = 4096;
/** Bytes per direct write: one of two staging buffers, filled while the other is written. */
const STAGE = 1 << 20;
/**
 * The file `handle` has open, opened again with O_DIRECT, through /proc/self/fd: the same
 * file whatever its name has come to point to. Null where the platform or the file system
 * does not allow it (not Linux; tmpfs before 6.6; no /proc): the output then goes through
 * the page cache as before.
 */
async function openDirect(handle) {
    const flag = external_node_fs_.constants.O_DIRECT;
    if (!flag)
        return null;
    return promises_.open(`/proc/self/fd/${handle.fd}`, external_node_fs_.constants.O_WRONLY | flag).catch(() => null);
}
/**
 * Two page-aligned staging buffers, or null where they cannot be had. A WebAssembly memory is
 * mapped by pages, so its first byte is page-aligned; a Buffer's need not be. Were it not, the
 * first direct write would fail with EINVAL, and the sink carries on through the page cache.
 */
function directStages() {
    try {
        const pages = (2 * STAGE) / 65536;
        const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
        return [Buffer.from(memory.buffer, 0, STAGE), Buffer.from(memory.buffer, STAGE, STAGE)];
    }
    catch {
        return null;
    }
}
/**
 * Writes past the page cache (O_DIRECT): the pieces are copied into a staging buffer, written
 * 1 MiB at a time at aligned offsets while the other buffer fills, so the backup neither
 * copies a gigabyte into the page cache (system CPU time) nor pushes the database's own pages
 * out of it. The direct descriptor is datasynced at the end, and the caller's fsync of
 * `buffered` makes the file durable. A direct write the file system refuses (EINVAL) is
 * written again through `buffered`, and so is all that follows.
 */
class DirectSink {
    direct;
    buffered;
    at;
    stages;
    current = 0;
    fill = 0;
    pending = null;
    constructor(direct, buffered, at, stages) {
        this.direct = direct;
        this.buffered = buffered;
        this.at = at;
        this.stages = stages;
    }
    async add(pieces, keep = false) {
        for (const piece of pieces) {
            for (let from = 0; from < piece.length;) {
                const copied = piece.copy(this.stages[this.current], this.fill, from);
                from += copied;
                this.fill += copied;
                if (this.fill === STAGE)
                    await this.flush(STAGE);
            }
        }
        if (!keep)
            free(pieces);
    }
    async end() {
        const fill = this.fill;
        const tail = this.stages[this.current].subarray(fill - (fill % DIRECT_ALIGN), fill);
        if (fill > tail.length)
            await this.flush(fill - tail.length);
        await this.pending;
        // The final fsync is of `buffered`: on a local file system it covers the whole file, but
        // FUSE and network file systems may sync only what went through that descriptor.
        await this.direct?.datasync();
        if (tail.length > 0)
            await writeAll(this.buffered, [tail], this.at);
    }
    async settled() {
        await this.pending?.catch(() => undefined);
    }
    /** Writes the current stage's first `length` bytes once the other's write is done. */
    async flush(length) {
        await this.pending;
        const at = this.at;
        this.at += length;
        this.pending = handled(this.write(this.stages[this.current].subarray(0, length), at));
        this.current ^= 1;
        this.fill = 0;
    }
    async write(bytes, at) {
        if (this.direct) {
            try {
                return await writeAll(this.direct, [bytes], at);
            }
            catch (err) {
                if (err.code !== 'EINVAL')
                    throw err;
                this.direct = null;
            }
        }
        await writeAll(this.buffered, [bytes], at);
    }
}
/**
 * Datasyncs the output every SYNC_EVERY bytes written, one at a time on libuv's threads, so the
 * disk takes the data while the next blocks are converted and the fsync before the rename has
 * little left to wait for. A failed datasync fails the job: after one, Linux may report the
 * next fsync of the same file as a success.
 */
class Writeback {
    handle;
    syncing = null;
    synced = 0;
    failure = null;
    constructor(handle) {
        this.handle = handle;
    }
    /** The output is written up to `end`. */
    written(end) {
        if (this.syncing || end - this.synced < SYNC_EVERY)
            return;
        this.synced = end;
        this.syncing = this.handle.datasync().then(() => void (this.syncing = null), (err) => void ((this.failure ??= err), (this.syncing = null)));
    }
    /** Waits for the datasync in flight; throws if any failed. */
    async done() {
        await this.syncing;
        if (this.failure)
            throw this.failure;
    }
    /** Waits for the datasync in flight, if any; never throws. */
    async settled() {
        await this.syncing;
    }
}
/** Reads with positional reads on libuv's threads and hashes on this one: for small files. */
class LocalReader {
    input;
    ring;
    size;
    /** Reads in flight or done, in block order, not yet handed out by next(). */
    reads = [];
    hash = (0,external_node_crypto_.createHash)('sha256');
    bytes = 0;
    start = 0;
    queued = 0;
    constructor(input, ring, size) {
        this.input = input;
        this.ring = ring;
        this.size = size;
    }
    begin(start) {
        this.add(Buffer.from(this.ring, 0, start));
        this.start = start;
        for (let i = 0; i < SLOTS; i++)
            this.readAhead();
    }
    async next() {
        return this.add(await this.reads.shift());
    }
    release() {
        this.readAhead();
    }
    async digest() {
        return { sha256: this.hash.digest('hex'), bytes: this.bytes };
    }
    async close() {
        await Promise.allSettled(this.reads);
    }
    /** Block n goes into slot n % SLOTS: one read per released block keeps the ring full. */
    readAhead() {
        const n = this.queued++;
        const slot = Buffer.from(this.ring, (n % SLOTS) * this.size, this.size);
        this.reads.push(handled(readFull(this.input, slot, this.start + n * this.size)));
    }
    add(block) {
        this.hash.update(block);
        this.bytes += block.length;
        return block;
    }
}
/** The cells of the array the main thread and READ_WORKER share. */
const Control = { Released: 0, Start: 1, Stop: 2, Tick: 3 };
// Runs in a worker thread: reads the file into the ring's slots, each once the main thread has
// released the block that was there, and hashes each block while it is still in cache; posts
// each block's length, then the digest. Control: the blocks released, where the blocks start
// (-1 until begin()), 1 to stop, and a tick that every change of those moves, so that a change
// made just before Atomics.wait still wakes it.
const READ_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const { readSync } = require('node:fs')
const { fd, ring, control, size, slots } = workerData
const Control = ${JSON.stringify(Control)}
const memory = Buffer.from(ring)
const ctrl = new Int32Array(control)

/** Waits until ready(); false if told to stop first. */
function wait(ready) {
  for (;;) {
    const tick = Atomics.load(ctrl, Control.Tick)
    if (Atomics.load(ctrl, Control.Stop) === 1) return false
    if (ready()) return true
    Atomics.wait(ctrl, Control.Tick, tick)
  }
}

function fill(slot, at) {
  let filled = 0
  for (let got; filled < size; filled += got) {
    got = readSync(fd, memory, slot + filled, size - filled, at + filled)
    if (got === 0) break
  }
  return memory.subarray(slot, slot + filled)
}

function run() {
  if (!wait(() => Atomics.load(ctrl, Control.Start) >= 0)) return
  const hash = createHash('sha256')
  let at = Atomics.load(ctrl, Control.Start)
  hash.update(memory.subarray(0, at))
  for (let n = 0; wait(() => n - Atomics.load(ctrl, Control.Released) < slots); n++) {
    const block = fill((n % slots) * size, at)
    at += block.length
    hash.update(block)
    parentPort.postMessage(block.length)
    if (block.length < size) {
      parentPort.postMessage({ sha256: hash.digest('hex'), bytes: at })
      return
    }
  }
}

run()
`;
/** A read worker, or null where none can be started (the LocalReader then does its job). */
function startReadWorker(input, ring, size) {
    try {
        return new ReadWorker(input, ring, size);
    }
    catch {
        return null;
    }
}
class ReadWorker {
    ring;
    size;
    worker;
    control = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * Object.keys(Control).length));
    /** Block lengths and the digest, as posted; then whoever waits for the next of them. */
    posted = [];
    waiting = [];
    failure = null;
    handedOut = 0;
    constructor(input, ring, size) {
        this.ring = ring;
        this.size = size;
        this.control[Control.Start] = -1;
        this.worker = new external_node_worker_threads_.Worker(READ_WORKER, {
            eval: true,
            workerData: { fd: input.fd, ring, control: this.control.buffer, size, slots: SLOTS },
        });
        this.worker.on('message', (m) => this.deliver(m));
        this.worker.on('error', (err) => this.fail(err));
        this.worker.on('exit', () => this.fail(new Error('the file reading thread stopped')));
    }
    begin(start) {
        this.change(Control.Start, start);
    }
    async next() {
        const length = (await this.take());
        const slot = (this.handedOut++ % SLOTS) * this.size;
        return Buffer.from(this.ring, slot, length);
    }
    release() {
        this.change(Control.Released, Atomics.load(this.control, Control.Released) + 1);
    }
    async digest() {
        return (await this.take());
    }
    async close() {
        this.change(Control.Stop, 1);
        await this.worker.terminate();
    }
    change(cell, value) {
        Atomics.store(this.control, cell, value);
        Atomics.add(this.control, Control.Tick, 1);
        Atomics.notify(this.control, Control.Tick);
    }
    take() {
        if (this.posted.length > 0)
            return Promise.resolve(this.posted.shift());
        if (this.failure)
            return Promise.reject(this.failure);
        return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    }
    deliver(message) {
        const waiter = this.waiting.shift();
        if (waiter)
            waiter.resolve(message);
        else
            this.posted.push(message);
    }
    fail(err) {
        this.failure ??= err;
        for (const { reject } of this.waiting.splice(0))
            reject(err);
    }
}
/** `promise`, its failure to surface where it is awaited: not as unhandled while it waits. */
function handled(promise) {
    promise.catch(() => { });
    return promise;
}
/** Like signal.throwIfAborted(), with the error pipeline() gives, so both paths fail alike. */
function throwIfAborted(signal) {
    if (!signal?.aborted)
        return;
    throw Object.assign(new Error('The operation was aborted', { cause: signal.reason }), {
        name: 'AbortError',
        code: 'ABORT_ERR',
    });
}
/**
 * Frees each piece that is a whole ArrayBuffer of its own now, not at V8's next collection:
 * one cipher output per 64 KiB chunk let some 64 MiB pile up before a collection, and fresh
 * pages for each. Measured at 512 MiB: peak RSS 153 → 84 MiB, and less CPU.
 */
function free(pieces) {
    for (const piece of pieces) {
        const buffer = piece.buffer;
        if (piece.length > 0 && piece.byteOffset === 0 && piece.length === buffer.byteLength) {
            buffer.transfer?.(0);
        }
    }
}
/** Fills `buf` from `at` unless the file ends first; returns what was read. */
async function readFull(handle, buf, at) {
    let filled = 0;
    while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, at + filled);
        if (bytesRead === 0)
            break;
        filled += bytesRead;
    }
    return buf.subarray(0, filled);
}
/** Writes all of `pieces` at `at`: a write may take fewer bytes than it was given. */
async function writeAll(handle, pieces, at) {
    while (pieces.length > 0) {
        let { bytesWritten } = await handle.writev(pieces, at);
        at += bytesWritten;
        while (pieces.length > 0 && bytesWritten >= pieces[0].length) {
            bytesWritten -= pieces.shift().length;
        }
        if (bytesWritten > 0)
            pieces[0] = pieces[0].subarray(bytesWritten);
    }
}

// EXTERNAL MODULE: external "node:zlib"
var external_node_zlib_ = __webpack_require__(38522);
;// CONCATENATED MODULE: ./lib/codec/format.js
/** What a file holds, from its first bytes: enough to refuse the wrong key kind early. */
/** How many leading bytes `detectFormat` looks at. */
const HEAD_BYTES = 64;
const startsWith = (head, text) => head.length >= text.length &&
    Buffer.from(head.subarray(0, text.length)).toString('latin1') === text;
/**
 * `unknown` is anything else: a SQLite file, a pg_dump archive or plain SQL. OpenPGP is
 * recognised by the packet that opens an encrypted message (a public-key or a symmetric-key
 * encrypted session key), in either packet header format.
 */
function format_detectFormat(head) {
    if (head.length === 0)
        return 'empty';
    if (startsWith(head, 'age-encryption.org/'))
        return 'age';
    const text = Buffer.from(head).toString('latin1').trimStart();
    if (text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----'))
        return 'age-armor';
    if (text.startsWith('-----BEGIN PGP MESSAGE-----'))
        return 'gpg-armor';
    if (head[0] === 0x1f && head[1] === 0x8b)
        return 'gzip';
    if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
        return 'zstd';
    const first = head[0];
    if (first & 0x80) {
        const tag = first & 0x40 ? first & 0x3f : (first >> 2) & 0x0f;
        if (tag === 1 || tag === 3)
            return 'gpg';
    }
    return 'unknown';
}
function describeFormat(format) {
    switch (format) {
        case 'age':
            return 'an age file';
        case 'age-armor':
            return 'an ASCII-armored age file';
        case 'gpg':
            return 'an OpenPGP (gpg) message';
        case 'gpg-armor':
            return 'an ASCII-armored OpenPGP (gpg) message';
        case 'zstd':
            return 'zstd-compressed data';
        case 'gzip':
            return 'gzip-compressed data';
        case 'empty':
            return 'empty (0 bytes)';
        case 'unknown':
            return 'neither encrypted nor compressed data';
    }
}

;// CONCATENATED MODULE: ./lib/codec/compression.js
/** gzip and zstd as streams, with errors that name the `compression` input. */





const COMPRESSIONS = ['none', 'gzip', 'zstd'];
/** zstd arrived in Node 23.8 / 22.15; the action runs on node24, the CLI may run on less. */
function zstdAvailable() {
    return typeof external_node_zlib_.createZstdCompress === 'function';
}
/** Throws a UserError naming `compression` unless `value` is usable here. */
function checkCompression(value) {
    if (!COMPRESSIONS.includes(value)) {
        throw new errors/* UserError */.y(`${CodecInputs.Compression}: "${value}" is not one of ${COMPRESSIONS.join(', ')}`);
    }
    if (value === 'zstd' && !zstdAvailable()) {
        throw new errors/* UserError */.y(`${CodecInputs.Compression}: zstd needs Node.js 22.15 or later (this is ${process.version}); use gzip`);
    }
    return value;
}
/**
 * zlib's output comes in pieces of this size (its default, 16 KiB, pushes 64 pieces per MiB
 * through the stream machinery). Measured, 256 MiB of a SQLite database, zstd, decodeFile:
 * 1.12-1.20 s against 3.29-3.63 s.
 */
const ZLIB_CHUNK = 1 << 20;
function compressStream(compression) {
    checkCompression(compression);
    return compression === 'gzip' ? external_node_zlib_.createGzip({ chunkSize: ZLIB_CHUNK }) : zstdOneFrame();
}
/**
 * zstd as one frame, whatever the timing of its input. Node's compressor ends the frame on the
 * last chunk when that chunk is compressed after the input has ended, then writes a second,
 * empty frame (9 bytes) when it is flushed; Node's decoder cannot read such a file where a read
 * splits that frame. Here each chunk is compressed before the next is given, and the input is
 * ended only after the last: the frame ends once, on the flush.
 */
function zstdOneFrame() {
    return external_node_stream_.Duplex.from(async function* (source) {
        const z = external_node_zlib_.createZstdCompress({ chunkSize: ZLIB_CHUNK });
        const feeding = (async () => {
            for await (const chunk of source) {
                await new Promise((resolve, reject) => z.write(chunk, (err) => (err ? reject(err) : resolve())));
            }
            z.end();
        })();
        feeding.catch((err) => z.destroy(err));
        yield* z;
        await feeding;
    });
}
/**
 * Decompression: first a check of the magic bytes, so a wrong `compression` setting is
 * reported as that; a zlib error after it means the compressed data itself is damaged.
 */
function decompressStages(compression, file) {
    checkCompression(compression);
    const inflate = compression === 'gzip'
        ? external_node_zlib_.createGunzip({ chunkSize: ZLIB_CHUNK })
        : external_node_zlib_.createZstdDecompress({ chunkSize: ZLIB_CHUNK });
    const magic = new MagicCheck(compression, file);
    return [
        { stream: magic },
        {
            stream: inflate,
            // Only zlib's own errors; the pipeline also destroys this stage with other stages' errors.
            // Node's zstd decoder, ended by a frame that ends where a read ends, fails on the data of
            // the next read with a stream error of its own.
            explain: (err) => {
                const code = String(err.code);
                if (err instanceof errors/* UserError */.y)
                    return err;
                if (code === 'ERR_STREAM_PUSH_AFTER_EOF') {
                    return new errors/* UserError */.y(`${file}: data follows the end of the ${compression} data (the file was appended to or damaged); restore from another backup`);
                }
                if (!/^(Z_|ZSTD_)/.test(code))
                    return err;
                return new errors/* UserError */.y(`${file}: the ${compression} data is damaged (${err.message}); restore from another backup`);
            },
        },
        { stream: new NothingAfter(compression, file, magic, inflate) },
    ];
}
/**
 * Passes the plaintext through; at its end, fails if the decompressor left input unread. zlib
 * ends at the last whole member or frame and may drop what follows it in the same chunk: gzip
 * drops zero bytes, zstd any bytes, even a further frame of data. Such a file is not the one
 * that was written, with one exception: Node's zstd encoder could end its output with an empty
 * frame (9 bytes; see zstdOneFrame), which is allowed, byte for byte. What this cannot see: a
 * further gzip member, or a zstd frame that starts exactly where a read starts, is decoded, and
 * the plaintext's sha256 then differs from the manifest's.
 */
class NothingAfter extends external_node_stream_.Transform {
    compression;
    file;
    given;
    inflate;
    constructor(compression, file, given, inflate) {
        super();
        this.compression = compression;
        this.file = file;
        this.given = given;
        this.inflate = inflate;
    }
    _transform(chunk, _encoding, done) {
        done(null, chunk);
    }
    _flush(done) {
        const extra = this.given.bytes - this.inflate.bytesWritten;
        if (extra <= 0)
            return done();
        const refuse = new errors/* UserError */.y(`${this.file}: ${extra} bytes follow the end of the ${this.compression} data (the file was appended to or damaged); restore from another backup`);
        const tail = this.given.tail.subarray(-extra);
        const empty = this.compression === 'zstd' && extra <= TAIL_KEPT && emptyZstdFrames(tail);
        done(empty ? null : refuse);
    }
}
/**
 * The empty frame Node's zstd encoder wrote last before zstdOneFrame (magic, a single-segment
 * header of content size 0, one empty last raw block), byte for byte.
 */
const EMPTY_ZSTD_FRAME = Buffer.from('28b52ffd2000010000', 'hex');
/** The most bytes after the last frame that are kept to compare with empty frames. */
const TAIL_KEPT = 4 * EMPTY_ZSTD_FRAME.length;
/**
 * Whether `bytes` are that empty frame, once or more: nothing else (a skippable frame would
 * decode to nothing too, carrying anything).
 */
function emptyZstdFrames(bytes) {
    if (bytes.length === 0 || bytes.length % EMPTY_ZSTD_FRAME.length !== 0)
        return false;
    for (let at = 0; at < bytes.length; at += EMPTY_ZSTD_FRAME.length) {
        if (!bytes.subarray(at, at + EMPTY_ZSTD_FRAME.length).equals(EMPTY_ZSTD_FRAME))
            return false;
    }
    return true;
}
class MagicCheck extends external_node_stream_.Transform {
    compression;
    file;
    head = Buffer.alloc(0);
    /** Bytes given to the decompressor so far, and the last TAIL_KEPT of them. */
    bytes = 0;
    tail = Buffer.alloc(0);
    constructor(compression, file) {
        super();
        this.compression = compression;
        this.file = file;
    }
    _transform(chunk, _encoding, done) {
        this.bytes += chunk.length;
        this.tail =
            chunk.length >= TAIL_KEPT
                ? Buffer.from(chunk.subarray(-TAIL_KEPT))
                : Buffer.concat([this.tail, chunk]).subarray(-TAIL_KEPT);
        if (!this.head)
            return done(null, chunk);
        const head = Buffer.concat([this.head, chunk]);
        if (head.length < 4) {
            this.head = head;
            return done();
        }
        this.head = null;
        done(this.check(head) ?? null, head);
    }
    _flush(done) {
        if (!this.head)
            return done();
        done(this.check(this.head));
    }
    check(head) {
        const found = format_detectFormat(head);
        if (found === this.compression)
            return undefined;
        const what = found === 'unknown' ? 'uncompressed data' : describeFormat(found);
        return new errors/* UserError */.y(`${CodecInputs.Compression}: ${this.file} holds ${what}, not ${this.compression} data; set compression to what the backup was made with`);
    }
}

// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(31421);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(48161);
// EXTERNAL MODULE: ./lib/util/secrets.js
var secrets = __webpack_require__(3693);
;// CONCATENATED MODULE: ./lib/codec/gpg.js
/**
 * OpenPGP through the `gpg` binary on the runner, as a transform stream: bytes in on gpg's
 * stdin, bytes out of its stdout. A passphrase goes in on its own pipe (fd 3), never on argv
 * where `ps` would show it; gpg's status lines come back on another (fd 4). gpg writes plaintext
 * before it has checked the MDC at the end of the message, so callers must treat the output as
 * unauthenticated until the stream ends cleanly, and it ends cleanly only on DECRYPTION_OKAY.
 *
 * Each gpg runs in a GNUPGHOME of its own (a copy of the keyring's folder) with its own agent,
 * which caches no passphrase and is stopped when gpg is done: no passphrase outlives the run in
 * an agent, and no agent of the operator's is asked for one.
 */









/** How each run's GNUPGHOME is named in the temporary folder (tests look for its agent). */
const RUN_HOME_PREFIX = 'omniai-gnupg-';
/**
 * The run's agent: nothing cached (a passphrase counts only for the operation it was given
 * for), loopback so the passphrase comes from our pipe and never a pinentry.
 */
const AGENT_CONF = 'default-cache-ttl 0\nmax-cache-ttl 0\nallow-loopback-pinentry\n';
/** Files of a GNUPGHOME that belong to its running daemons, not to its keyring. */
const isDaemonFile = (name) => name.startsWith('S.') ||
    name.startsWith('.#lk') ||
    name.endsWith('.lock') ||
    name === 'gpg-agent.conf';
/**
 * A fresh GNUPGHOME (0700) holding a copy of `source`'s keyring and configuration, without its
 * sockets and its agent's settings.
 */
async function runHome(source) {
    const home = await promises_.mkdtemp(external_node_path_.join(external_node_os_.tmpdir(), RUN_HOME_PREFIX));
    try {
        const from = source ?? process.env.GNUPGHOME ?? external_node_path_.join(external_node_os_.homedir(), '.gnupg');
        const stat = await promises_.stat(from).catch(() => null);
        if (!stat?.isDirectory() && source !== undefined) {
            throw new errors/* UserError */.y(`${CodecInputs.GpgHomedir}: ${source} is not a folder; give the folder that holds the keyring (what gpg --homedir takes), or leave it unset for ~/.gnupg`);
        }
        if (stat?.isDirectory()) {
            await promises_.cp(from, home, {
                recursive: true,
                filter: async (file) => {
                    if (isDaemonFile(external_node_path_.basename(file)))
                        return false;
                    const s = await promises_.lstat(file);
                    return s.isFile() || s.isDirectory();
                },
            });
        }
        await promises_.writeFile(external_node_path_.join(home, 'gpg-agent.conf'), AGENT_CONF, { mode: 0o600 });
        return home;
    }
    catch (err) {
        await promises_.rm(home, { recursive: true, force: true });
        throw err;
    }
}
/** Stops every daemon gpg started for `home` (its agent, a keyboxd), then deletes `home`. */
async function removeRunHome(home) {
    await new Promise((resolve) => {
        const child = (0,external_node_child_process_.spawn)('gpgconf', ['--homedir', home, '--kill', 'all'], {
            stdio: 'ignore',
            env: (0,secrets/* childEnv */.gf)(),
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const done = () => {
            clearTimeout(timer);
            resolve();
        };
        child.on('error', done);
        child.on('close', done);
    });
    await promises_.rm(home, { recursive: true, force: true });
}
const ARMORED_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const STDERR_LIMIT = 64 * 1024;
/** A transform that encrypts with gpg; `close()` removes the temporary key file, if any. */
async function gpgEncryptStream(opts) {
    const args = baseArgs();
    // The `compression` input is the one place compression is chosen; gpg's own would compress
    // twice, or compress when the user asked for none.
    args.push('--compress-algo', 'none');
    let keyDir = null;
    if (opts.recipient !== undefined) {
        const recipient = opts.recipient.trim();
        if (recipient.startsWith(ARMORED_KEY)) {
            // A key pasted into a secret is used as is, without importing it into anyone's keyring.
            keyDir = await promises_.mkdtemp(external_node_path_.join(external_node_os_.tmpdir(), 'omniai-gpg-key-'));
            const keyFile = external_node_path_.join(keyDir, 'recipient.asc');
            await promises_.writeFile(keyFile, recipient + '\n', { mode: 0o600 });
            args.push('--recipient-file', keyFile);
        }
        else {
            args.push('--recipient', recipient);
        }
        // The operator named this key in the workflow; that is the trust decision. Without this,
        // gpg --batch refuses any key not signed into its web of trust.
        args.push('--trust-model', 'always', '--encrypt');
    }
    else {
        args.push('--symmetric', '--cipher-algo', 'AES256');
    }
    args.push('--output', '-');
    const close = async () => {
        if (keyDir)
            await promises_.rm(keyDir, { recursive: true, force: true });
    };
    return {
        stream: gpgDuplex(args, opts.homedir, opts.recipient === undefined ? opts.passphrase : undefined, (s) => encryptError(s, opts)),
        close,
    };
}
/** A transform that decrypts with gpg; `file` only names the backup in errors. */
function gpgDecryptStream(opts, file) {
    const args = baseArgs();
    args.push('--decrypt', '--output', '-');
    return gpgDuplex(args, opts.homedir, opts.passphrase, (s) => decryptError(s, opts, file), {
        // Exit 0 is not enough: gpg --decrypt also prints a message that was never encrypted
        // (gpg --store, gpg --sign), and that is not a backup this action wrote.
        success: 'DECRYPTION_OKAY',
        missing: () => new errors/* UserError */.y(`${file}: is an OpenPGP message with no encrypted data in it (gpg reports no successful decryption): it was not written by encryption: gpg, or was replaced; restore from another backup`),
    });
}
function baseArgs() {
    const args = ['--batch', '--no-tty', '--yes', '--quiet', '--status-fd', '4'];
    // The agent would otherwise remember a symmetric passphrase, and a later run with a wrong one
    // would still decrypt: the passphrase given is the only one that may count.
    args.push('--no-symkey-cache', '--pinentry-mode', 'loopback');
    return args;
}
/**
 * The secret (sub)keys in `home`: gpg says "No secret key" both when there is none and when
 * one did not unlock (a wrong passphrase), and only the keyring tells the two apart.
 */
async function secretKeyIds(home) {
    const listing = await new Promise((resolve) => {
        let out = '';
        const child = (0,external_node_child_process_.spawn)('gpg', ['--homedir', home, '--batch', '--with-colons', '--list-secret-keys'], {
            stdio: ['ignore', 'pipe', 'ignore'],
            env: (0,secrets/* childEnv */.gf)({ LC_ALL: 'C' }),
        });
        child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
        child.on('error', () => resolve(''));
        child.on('close', () => resolve(out));
    });
    return new Set(listing
        .split('\n')
        .filter((l) => /^(sec|ssb):/.test(l))
        .map((l) => l.split(':')[4]));
}
function gpgDuplex(args, homedir, passphrase, describe, required) {
    if (passphrase !== undefined)
        args.splice(args.indexOf('--output'), 0, '--passphrase-fd', '3');
    return external_node_stream_.Duplex.from(async function* (source, { signal }) {
        const home = await runHome(homedir);
        let child;
        try {
            child = (0,external_node_child_process_.spawn)('gpg', ['--homedir', home, ...args], {
                stdio: ['pipe', 'pipe', 'pipe', passphrase !== undefined ? 'pipe' : 'ignore', 'pipe'],
                // Status keywords are stable; the human-readable lines we fall back on should be English.
                env: (0,secrets/* childEnv */.gf)({ LC_ALL: 'C', LANGUAGE: 'C' }),
            });
        }
        catch (err) {
            await removeRunHome(home);
            throw err;
        }
        // A stream torn down from outside (the next stage failed) stops gpg, so the cleanup below runs.
        const abort = () => child.kill();
        signal?.addEventListener('abort', abort);
        let spawnError = null;
        const closed = new Promise((resolve) => {
            child.on('error', (err) => {
                spawnError = err;
                resolve(null);
            });
            child.on('close', (code) => resolve(code));
        });
        let stderr = '';
        child.stderr.setEncoding('utf8');
        child.stderr.on('data', (text) => {
            stderr = (stderr + text).slice(-STDERR_LIMIT);
        });
        let status = '';
        const statusStream = child.stdio[4];
        statusStream.setEncoding('utf8');
        statusStream.on('data', (text) => {
            status = (status + text).slice(-STDERR_LIMIT);
        });
        const statusDone = new Promise((resolve) => {
            statusStream.on('close', resolve);
            statusStream.on('error', () => resolve());
        });
        if (passphrase !== undefined) {
            const fd3 = child.stdio[3];
            // gpg closes fd 3 unread when it needs no passphrase (an unprotected secret key).
            fd3.on('error', () => { });
            fd3.end(passphrase + '\n');
        }
        // gpg exits early on a wrong key; then the write side fails with EPIPE, and the reason is
        // in gpg's stderr, not in that error.
        const feeding = (0,external_node_stream_promises_.pipeline)(source, child.stdin).then(() => null, (err) => err);
        child.stdin.on('error', () => { });
        let finished = false;
        try {
            for await (const chunk of child.stdout)
                yield chunk;
            const code = await closed;
            await statusDone;
            const feedError = await feeding;
            if (code !== 0 || spawnError) {
                const secretKeys = /^\[GNUPG:\] ENC_TO /m.test(status)
                    ? await secretKeyIds(home)
                    : new Set();
                throw describe({ code, stderr, status, spawnError, secretKeys });
            }
            if (feedError)
                throw feedError;
            if (required && !statuses(status).has(required.success))
                throw required.missing();
            finished = true;
        }
        finally {
            signal?.removeEventListener('abort', abort);
            if (!finished && child.exitCode === null && child.signalCode === null) {
                child.kill();
                await closed;
            }
            await removeRunHome(home);
        }
    });
}
/** gpg's status keywords, from its status pipe (never from stderr, which quotes the message). */
function statuses(status) {
    const found = new Set();
    for (const m of status.matchAll(/^\[GNUPG:\] (\S+)(?: (.*))?$/gm)) {
        found.add(m[1]);
        if (m[1] === 'ERROR' && m[2])
            found.add(`ERROR ${m[2]}`);
    }
    return found;
}
/** The last human-readable gpg line, for failures this code does not recognise. */
function lastGpgLine(stderr) {
    const lines = stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('gpg: '));
    return lines.at(-1) ?? 'no message';
}
/** The reason at the end of gpg's last line, without the key name it starts with. */
function lastReason(stderr) {
    return lastGpgLine(stderr).split(': ').at(-1);
}
function notInstalled(f) {
    if (f.spawnError?.code !== 'ENOENT')
        return null;
    return new errors/* UserError */.y(`${CodecInputs.Encryption}: gpg was not found on PATH; install GnuPG (apt-get install gnupg) or use encryption: age`);
}
function encryptError(f, opts) {
    const missing = notInstalled(f);
    if (missing)
        return missing;
    const status = statuses(f.status);
    const keyring = opts.homedir ? `the keyring in ${opts.homedir}` : 'the default keyring';
    if (status.has('INV_RECP') || /No public key/i.test(f.stderr)) {
        return new errors/* UserError */.y(`${CodecInputs.GpgRecipient}: gpg cannot encrypt to this recipient (${lastReason(f.stderr)}); give a key id or fingerprint in ${keyring}, or the armored public key itself`);
    }
    if (f.spawnError)
        return f.spawnError;
    return new Error(`gpg encryption failed (exit ${f.code}): ${lastReason(f.stderr)}`);
}
function decryptError(f, opts, file) {
    const missing = notInstalled(f);
    if (missing)
        return missing;
    if (f.spawnError)
        return f.spawnError;
    const status = statuses(f.status);
    const damaged = `${file}: the gpg message is damaged, truncated or was tampered with`;
    if (status.has('NODATA')) {
        return new errors/* UserError */.y(`${file}: is not an OpenPGP message; check that encryption: gpg was used for it`);
    }
    if (status.has('BADMDC'))
        return new errors/* UserError */.y(`${damaged} (MDC check failed); restore from another backup`);
    // Without a passphrase, gpg in batch mode asks for one (NEED_PASSPHRASE) and gives up; with
    // a wrong one, it says "No secret key" about a key the keyring does hold.
    const unanswered = opts.passphrase === undefined &&
        (status.has('NEED_PASSPHRASE') || status.has('NEED_PASSPHRASE_SYM'));
    const locked = /No secret key/.test(f.stderr) &&
        [...f.status.matchAll(/^\[GNUPG:\] ENC_TO (\S+)/gm)].some((m) => f.secretKeys.has(m[1]));
    if ([...status].some((s) => s.endsWith('BAD_PASSPHRASE')) ||
        status.has('MISSING_PASSPHRASE') ||
        unanswered ||
        locked) {
        const hint = opts.passphrase === undefined
            ? 'set gpg-passphrase'
            : 'wrong passphrase, or the file is damaged';
        return new errors/* UserError */.y(`${CodecInputs.GpgPassphrase}: gpg could not decrypt ${file} with the passphrase given (${hint})`);
    }
    // After the passphrase: a secret key that would not unlock is reported as missing too.
    if (status.has('NO_SECKEY') || /No secret key/.test(f.stderr)) {
        const keyring = opts.homedir ? `the keyring in ${opts.homedir}` : 'the default keyring';
        return new errors/* UserError */.y(`${CodecInputs.GpgHomedir}: ${file} is encrypted to a public key whose secret key is not in ${keyring}; import the secret key there`);
    }
    if (status.has('DECRYPTION_FAILED') ||
        /invalid packet|unexpected EOF|problem reading source/i.test(f.stderr)) {
        return new errors/* UserError */.y(`${damaged} (${lastGpgLine(f.stderr).slice(5)}); restore from another backup`);
    }
    return new errors/* UserError */.y(`${file}: gpg decryption failed (exit ${f.code}): ${lastGpgLine(f.stderr).slice(5)}`);
}

;// CONCATENATED MODULE: ./lib/codec/index.js
/**
 * The codec between a database engine and the backup store: optional compression, then optional
 * encryption (age or gpg), as streams, so memory stays flat whatever the size of the database.
 * Every call hashes the bytes as they pass and returns the sha256 of both the stored (encoded)
 * file and the plaintext, without reading anything twice.
 *
 * age with no compression, file to file, skips the streams (blocks.ts): the same bytes, checks
 * and errors, at twice the speed.
 *
 * Output is written to a temporary name in the destination's folder, fsynced (not a plaintext
 * decoded as `scratch`), and renamed only once the whole stream has been written and, when
 * decoding, authenticated; on any error the temporary file is deleted. A partly decrypted backup never sits where a restore could find it.
 */



















const ENCRYPTIONS = ['none', 'age', 'gpg'];
/** `.gz`/`.zst` then `.age`/`.gpg`, in the order they were applied, for naming backups. */
function encodedExtension(compression, encryption) {
    const zip = { none: '', gzip: '.gz', zstd: '.zst' }[compression];
    const lock = { none: '', age: '.age', gpg: '.gpg' }[encryption];
    return zip + lock;
}
/**
 * Throws a one-line UserError naming the input at fault; for parsing inputs, so a bad key stops
 * the job before it takes a snapshot. Never echoes a secret.
 */
function checkEncryption(encryption) {
    checkKind(encryption.kind);
    if (encryption.kind === 'age') {
        const recipients = splitKeyLines(encryption.recipients ?? []);
        const passphrase = encryption.passphrase;
        if (recipients.length > 0 && passphrase !== undefined) {
            throw new errors/* UserError */.y(`${CodecInputs.AgeRecipients}: set either ${CodecInputs.AgeRecipients} or ${CodecInputs.AgePassphrase}, not both (age does not mix a passphrase with recipients)`);
        }
        if (recipients.length === 0 && passphrase === undefined) {
            throw new errors/* UserError */.y(`${CodecInputs.AgeRecipients}: encryption: age needs one or more recipients (age1..., from age-keygen) or ${CodecInputs.AgePassphrase}`);
        }
        recipients.forEach((r, n) => parseRecipient(r, n + 1));
        if (recipients.length > AGE_MAX_RECIPIENTS) {
            throw new errors/* UserError */.y(`${CodecInputs.AgeRecipients}: ${recipients.length} recipients make an age header longer than the 1 MiB this action reads when it decrypts, so nothing could restore the backup; give at most ${AGE_MAX_RECIPIENTS} recipients`);
        }
        if (passphrase === '') {
            throw new errors/* UserError */.y(`${CodecInputs.AgePassphrase}: the passphrase is empty; set a passphrase`);
        }
        const wf = encryption.scryptWorkFactor;
        if (wf !== undefined && !(Number.isInteger(wf) && wf >= 1 && wf <= 30)) {
            throw new errors/* UserError */.y(`${CodecInputs.AgePassphrase}: the scrypt work factor must be 1 to 30`);
        }
    }
    else if (encryption.kind === 'gpg') {
        const { recipient, passphrase } = encryption;
        if (recipient !== undefined && passphrase !== undefined) {
            throw new errors/* UserError */.y(`${CodecInputs.GpgRecipient}: set either ${CodecInputs.GpgRecipient} or ${CodecInputs.GpgPassphrase} for encryption, not both`);
        }
        if (recipient === undefined && passphrase === undefined) {
            throw new errors/* UserError */.y(`${CodecInputs.GpgRecipient}: encryption: gpg needs ${CodecInputs.GpgRecipient} (a public key) or ${CodecInputs.GpgPassphrase}`);
        }
        if (recipient !== undefined)
            checkGpgRecipient(recipient);
        if (passphrase === '') {
            throw new errors/* UserError */.y(`${CodecInputs.GpgPassphrase}: the passphrase is empty; set a passphrase`);
        }
    }
}
/** One key name, or one armored public key; gpg would echo anything else, secrets included. */
function checkGpgRecipient(recipient) {
    const text = recipient.trim();
    const fix = 'give a key id, fingerprint or e-mail, or an armored public key (gpg --armor --export)';
    if (text === '')
        throw new errors/* UserError */.y(`${CodecInputs.GpgRecipient}: the recipient is empty; ${fix}`);
    if (/PRIVATE KEY/.test(text)) {
        throw new errors/* UserError */.y(`${CodecInputs.GpgRecipient}: this is a private key, which the backup job must not hold; ${fix}`);
    }
    if (/\n/.test(text) && !text.startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
        throw new errors/* UserError */.y(`${CodecInputs.GpgRecipient}: spans several lines but is no armored public key; ${fix}`);
    }
}
/** As checkEncryption, for the settings that read backups. */
function checkDecryption(decryption) {
    checkKind(decryption.kind);
    if (decryption.kind === 'age')
        ageDecryptCheck(decryption);
    if (decryption.kind === 'gpg' && decryption.passphrase === '') {
        throw new errors/* UserError */.y(`${CodecInputs.GpgPassphrase}: the passphrase is empty; set a passphrase or leave it unset`);
    }
}
function checkKind(kind) {
    if (!ENCRYPTIONS.includes(kind)) {
        throw new errors/* UserError */.y(`${CodecInputs.Encryption}: "${kind}" is not one of ${ENCRYPTIONS.join(', ')}`);
    }
}
/** Compresses and encrypts `src` into `dest`, a new file: an existing one is never replaced (EEXIST). */
async function encodeFile(src, dest, opts) {
    checkEncryption(opts.encryption);
    checkCompression(opts.compression);
    if (external_node_path_.resolve(src) === external_node_path_.resolve(dest)) {
        throw new errors/* UserError */.y(`${dest}: cannot encode a file onto itself; choose another destination`);
    }
    await mustBeFile(src);
    if (opts.compression === 'none' && opts.encryption.kind === 'age') {
        return encodeAgeFile(src, dest, opts.encryption, opts.signal);
    }
    return encodeStream((0,external_node_fs_.createReadStream)(src, { highWaterMark: READ_SIZE }), dest, opts);
}
/**
 * Compresses and encrypts a stream (say, pg_dump's stdout) into `dest`, with no plaintext file;
 * a new file, as encodeFile's.
 */
async function encodeStream(source, dest, opts) {
    checkEncryption(opts.encryption);
    checkCompression(opts.compression);
    const { compression, encryption } = opts;
    const plain = new HashTap();
    const stages = [{ stream: plain }];
    if (compression !== 'none')
        stages.push({ stream: compressStream(compression) });
    let close = async () => { };
    if (encryption.kind === 'age') {
        stages.push({
            stream: await ageEncryptStream({
                ...encryption,
                recipients: splitKeyLines(encryption.recipients ?? []),
            }),
        });
    }
    else if (encryption.kind === 'gpg') {
        const gpg = await gpgEncryptStream(encryption);
        stages.push({ stream: gpg.stream });
        close = gpg.close;
    }
    const stored = stages.length === 1 ? plain : new HashTap();
    if (stored !== plain)
        stages.push({ stream: stored });
    try {
        await intoTempFile(dest, (out) => run(toReadable(source), stages, sink(out), opts.signal), {
            noClobber: true,
        });
    }
    finally {
        await close();
    }
    return digests(stored.tally, plain.tally);
}
/** Decrypts and decompresses `src` into `dest`; `dest` appears only if all of it checked out. */
async function decodeFile(src, dest, opts) {
    if (external_node_path_.resolve(src) === external_node_path_.resolve(dest)) {
        throw new errors/* UserError */.y(`${dest}: cannot decode a file onto itself; choose another destination`);
    }
    await checkEncoded(src, opts);
    const sync = !opts.scratch;
    if (ageOnly(opts))
        return intoTempFile(dest, (out) => decodeAgeFile(src, out, opts), { sync });
    const { stages, stored, plain } = decodeStages(src, opts);
    await intoTempFile(dest, (out) => run((0,external_node_fs_.createReadStream)(src, { highWaterMark: READ_SIZE }), stages, sink(out), opts.signal), { sync });
    return digests(stored.tally, plain.tally);
}
/**
 * Decodes `src` all the way and discards the plaintext: proves a backup opens with the keys
 * at hand and yields the checksums, without putting plaintext on disk.
 */
async function verifyEncodedFile(src, opts) {
    await checkEncoded(src, opts);
    if (ageOnly(opts))
        return decodeAgeFile(src, null, opts);
    const { stages, stored, plain } = decodeStages(src, opts);
    const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
    await run(createReadStream(src, { highWaterMark: READ_SIZE }), stages, discard, opts.signal);
    return digests(stored.tally, plain.tally);
}
/** What `file` holds, from its first bytes. */
async function detectFileFormat(file) {
    return detectFormat(await readHead(file));
}
// 1 MiB reads: fewer trips through the stream machinery per gigabyte than the 64 KiB default.
const READ_SIZE = 1 << 20;
/** age's 64 KiB chunks, 16 to a block: the block path's unit of reading, converting, writing. */
const BLOCK_CHUNKS = 16;
/** Encrypts `src` into `dest` in blocks: encodeFile for age with no compression. */
async function encodeAgeFile(src, dest, encryption, signal) {
    const { head, sealer } = await ageEncryptStart({
        ...encryption,
        recipients: splitKeyLines(encryption.recipients ?? []),
    });
    const stored = new Tally();
    const input = await promises_.open(src, 'r');
    try {
        const plain = await intoTempFile(dest, async (out) => {
            // Past the page cache: a backup is not read again soon, and the database's pages
            // are worth more there than a gigabyte of ciphertext (blocks.ts DirectSink).
            const direct = await openDirect(out);
            try {
                return await convertBlocks({
                    input,
                    size: BLOCK_CHUNKS * CHUNK,
                    convert: (block, last) => sealer.sealBlock(block, last).map((p) => stored.add(p)),
                    output: { handle: out, at: 0, prefix: stored.add(head), direct },
                    signal,
                });
            }
            finally {
                await direct?.close();
            }
        }, { noClobber: true });
        return {
            sha256: stored.digest(),
            bytes: stored.bytes,
            plainSha256: plain.sha256,
            plainBytes: plain.bytes,
        };
    }
    finally {
        await input.close();
    }
}
/** Decrypts `src` in blocks into `out`, or nowhere: decodeFile for age with no compression. */
async function decodeAgeFile(src, out, opts) {
    const opener = new AgeOpener(opts.decryption, src);
    const plain = new Tally();
    const input = await promises_.open(src, 'r');
    try {
        const stored = await convertBlocks({
            input,
            size: BLOCK_CHUNKS * ENC_CHUNK,
            head: { max: AGE_HEAD_MAX, begin: (head) => opener.begin(head) },
            convert: (block, last) => {
                const pieces = opener.openBlock(block, last).map((p) => plain.add(p));
                if (opts.maxPlainBytes !== undefined && plain.bytes > opts.maxPlainBytes) {
                    throw tooMuchPlaintext(src, opts.maxPlainBytes);
                }
                return pieces;
            },
            ...(out && { output: { handle: out, at: 0, sync: !opts.scratch } }),
            signal: opts.signal,
        });
        return { ...stored, plainSha256: plain.digest(), plainBytes: plain.bytes };
    }
    finally {
        await input.close();
    }
}
/** age and nothing else: the block path, rather than streams. */
function ageOnly(opts) {
    return opts.compression === 'none' && opts.decryption.kind === 'age';
}
/** Settings, and the file's first bytes: refuses, before any work, what cannot be decoded. */
async function checkEncoded(src, opts) {
    checkDecryption(opts.decryption);
    checkCompression(opts.compression);
    await mustBeFile(src);
    checkFormat(src, format_detectFormat(await readHead(src)), opts.decryption.kind);
}
function decodeStages(src, opts) {
    const { compression, decryption } = opts;
    const stored = new HashTap();
    const stages = [{ stream: stored }];
    if (decryption.kind === 'age')
        stages.push({ stream: ageDecryptStream(decryption, src) });
    if (decryption.kind === 'gpg')
        stages.push({ stream: gpgDecryptStream(decryption, src) });
    if (compression !== 'none')
        stages.push(...decompressStages(compression, src));
    if (opts.maxPlainBytes !== undefined) {
        stages.push({ stream: new ByteLimit(opts.maxPlainBytes, src) });
    }
    const plain = stages.length === 1 ? stored : new HashTap();
    if (plain !== stored)
        stages.push({ stream: plain });
    return { stages, stored, plain };
}
/** Refuses, before any work, a file that is plainly not what `encryption` says. */
function checkFormat(file, format, kind) {
    if (format === 'empty' && kind !== 'none') {
        throw new errors/* UserError */.y(`${file}: is empty (0 bytes): the backup was cut off or never written; restore from another backup`);
    }
    if (format === 'age-armor' && kind === 'age') {
        throw new errors/* UserError */.y(`${file}: is an ASCII-armored age file, which this action does not read; convert it with age -d | age -e, or decrypt it with the age CLI`);
    }
    const encrypted = {
        age: 'age',
        'age-armor': 'age',
        gpg: 'gpg',
        'gpg-armor': 'gpg',
    };
    const actual = encrypted[format];
    if (kind === 'none' && actual) {
        throw new errors/* UserError */.y(`${CodecInputs.Encryption}: ${file} is ${describeFormat(format)}, but encryption is none; set encryption: ${actual} and its key`);
    }
    const mismatch = kind === 'age' ? format !== 'age' : kind === 'gpg' && actual !== 'gpg' && format !== 'unknown';
    if (mismatch) {
        throw new errors/* UserError */.y(`${CodecInputs.Encryption}: ${file} is ${describeFormat(format)}, not ${kind === 'age' ? 'an age file' : 'an OpenPGP message'}; set encryption to what the backup was made with`);
    }
}
async function mustBeFile(file) {
    let stat;
    try {
        stat = await promises_.stat(file);
    }
    catch (err) {
        if (err.code === 'ENOENT') {
            throw new errors/* UserError */.y(`${file}: no such file; check the path`);
        }
        throw err;
    }
    if (!stat.isFile())
        throw new errors/* UserError */.y(`${file}: is not a regular file; give the path of a backup file`);
}
async function readHead(file) {
    const handle = await promises_.open(file, 'r');
    try {
        const buf = Buffer.alloc(HEAD_BYTES);
        const { bytesRead } = await handle.read(buf, 0, HEAD_BYTES, 0);
        return buf.subarray(0, bytesRead);
    }
    finally {
        await handle.close();
    }
}
/** sha256 and size of bytes as they go by. */
class Tally {
    hash = (0,external_node_crypto_.createHash)('sha256');
    bytes = 0;
    /** Counts `buf` in, and returns it. */
    add(buf) {
        this.hash.update(buf);
        this.bytes += buf.length;
        return buf;
    }
    digest() {
        return this.hash.digest('hex');
    }
}
/** Passes bytes through, hashing them on the way. */
class HashTap extends external_node_stream_.Transform {
    tally = new Tally();
    constructor() {
        super({ highWaterMark: STAGE_BUFFER });
    }
    _transform(chunk, _encoding, done) {
        done(null, this.tally.add(chunk));
    }
}
/** Passes at most `max` bytes; one more is an error that stops every stage. */
class ByteLimit extends external_node_stream_.Transform {
    max;
    file;
    bytes = 0;
    constructor(max, file) {
        super({ highWaterMark: STAGE_BUFFER });
        this.max = max;
        this.file = file;
    }
    _transform(chunk, _encoding, done) {
        this.bytes += chunk.length;
        if (this.bytes <= this.max)
            return done(null, chunk);
        done(tooMuchPlaintext(this.file, this.max));
    }
}
function tooMuchPlaintext(file, max) {
    return new errors/* UserError */.y(`${file}: decodes to more than the ${max} bytes of plaintext its manifest records (backup.plain.bytes), so decoding stopped there and nothing was kept: the backup was damaged or replaced (a decompression bomb looks like this); restore from another backup`);
}
function digests(stored, plain) {
    const sha256 = stored.digest();
    return {
        sha256,
        bytes: stored.bytes,
        plainSha256: plain === stored ? sha256 : plain.digest(),
        plainBytes: plain.bytes,
    };
}
function toReadable(source) {
    return source instanceof external_node_stream_.Readable ? source : external_node_stream_.Readable.from(source, { objectMode: false });
}
async function run(source, stages, sink, signal) {
    // A stage's raw error (zlib's "incorrect header check") is swapped for one that says what it
    // means for this backup; the first error anywhere stops every stage.
    const explained = new Map();
    for (const { stream, explain } of stages) {
        if (explain)
            stream.on('error', (err) => explained.set(err, explain(err)));
    }
    try {
        await (0,external_node_stream_promises_.pipeline)([source, ...stages.map((s) => s.stream), sink], signal ? { signal } : {});
    }
    catch (err) {
        throw explained.get(err) ?? err;
    }
}
/** A Writable onto `handle` for the stream path; intoTempFile syncs and closes it. */
function sink(handle) {
    let at = 0;
    return new external_node_stream_.Writable({
        highWaterMark: 2 * STAGE_BUFFER,
        writev: (chunks, done) => {
            const pieces = chunks.map((c) => c.chunk);
            const from = at;
            at += pieces.reduce((sum, p) => sum + p.length, 0);
            writeAll(handle, pieces, from).then(() => done(), done);
        },
    });
}
/**
 * Runs `write` into a new temporary file beside `dest`, then fsyncs and renames it to `dest`;
 * with `noClobber`, gives it that name only if no file has it (moveNoClobber: EEXIST otherwise);
 * with `sync: false` (scratch), renames it without the fsyncs. On any failure the temporary
 * file is closed and deleted, and `dest` is left as it was.
 */
async function intoTempFile(dest, write, { noClobber = false, sync = true } = {}) {
    const dir = external_node_path_.dirname(external_node_path_.resolve(dest));
    try {
        if (!(await promises_.stat(dir)).isDirectory())
            throw new Error('not a directory');
    }
    catch {
        throw new errors/* UserError */.y(`${dest}: its folder ${dir} does not exist; create it first`);
    }
    const tmp = (0,fs/* tempName */.u8)(dir, external_node_path_.basename(dest));
    // Interrupted (SIGINT/SIGTERM): a partly written file, perhaps plaintext, is removed first.
    const forget = (0,cleanup/* removeOnInterrupt */.vY)(tmp, 'partial file');
    let out;
    let result;
    try {
        out = await promises_.open(tmp, 'wx', 0o600);
        result = await write(out);
        // fsync before the rename, so it never exposes a file the disk has not got.
        if (sync)
            await out.sync();
        await out.close();
        await (noClobber ? (0,fs/* moveNoClobber */.uV)(tmp, dest) : promises_.rename(tmp, dest));
    }
    catch (err) {
        // close() waits for any write still in flight, so nothing lands after the rm; a close that
        // fails (or a second close) must not keep the partial file, perhaps plaintext, from going.
        await out?.close().catch(() => undefined);
        await promises_.rm(tmp, { force: true });
        throw err;
    }
    finally {
        forget();
    }
    if (sync)
        await (0,fs/* fsyncDir */.t_)(dir);
    return result;
}


/***/ }),

/***/ 38041:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   D: () => (/* binding */ SESSION_EXPIRY_COLUMNS),
/* harmony export */   h: () => (/* binding */ SESSION_TABLES)
/* harmony export */ });
/** Where OmniAI keeps logins, and the column that says until when each is valid. */
const SESSION_TABLES = ['sessions', 'user_sessions'];
const SESSION_EXPIRY_COLUMNS = ['expires_at', 'expires', 'expiry', 'expires_on'];


/***/ }),

/***/ 41549:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Vj: () => (/* binding */ connectionSecurity),
/* harmony export */   vo: () => (/* binding */ openPgClient),
/* harmony export */   ye: () => (/* binding */ sslSettings)
/* harmony export */ });
/* unused harmony exports SSL_MODES, libpqNameCheck */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(51455);
/* harmony import */ var node_net__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(77030);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(48161);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(76760);
/* harmony import */ var node_tls__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(41692);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(99661);
/**
 * TLS for the action's own PostgreSQL connections (node-postgres), made as libpq makes it for
 * pg_dump and pg_restore from the same URL and environment: one URL connects both or neither.
 * node-postgres on its own reads sslmode=require as verify-full, never falls back for prefer,
 * knows no allow, and ignores libpq's environment variables and ~/.postgresql files.
 *
 * What libpq does, and so what this does (PostgreSQL's libpq-ssl documentation, and
 * fe-connect.c / fe-secure-openssl.c):
 * - sslmode from the URL, else PGSSLMODE, else PGREQUIRESSL=1 (require), else prefer; `ssl=true`
 *   in a URL is sslmode=require; sslrootcert=system makes the default verify-full.
 * - disable: plain. allow: plain, and SSL when the server turns plain down. prefer: SSL, and
 *   plain when SSL fails (the server offers none, the handshake or a check fails, or the server
 *   turns the SSL login down). require, verify-ca, verify-full: SSL or nothing.
 * - The server's certificate is checked against the root certificate file (sslrootcert, else
 *   ~/.postgresql/root.crt) whenever that file exists, in every mode; require without one
 *   checks nothing. verify-ca and verify-full refuse to run without one; verify-full also
 *   matches the host name against the certificate's names as libpq does.
 * - The client certificate (sslcert, else ~/.postgresql/postgresql.crt) is sent when the file
 *   exists; its key (sslkey, else ~/.postgresql/postgresql.key) must then exist, be readable by
 *   its owner only (0640 if root owns it), match the certificate, and open with sslpassword.
 */







const SSL_MODES = [
    'disable',
    'allow',
    'prefer',
    'require',
    'verify-ca',
    'verify-full',
];
const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
/** Query parameters read here; node-postgres never sees them (its own reading differs). */
const isSslParam = (key) => /^(ssl|requiressl$)/.test(key);
/**
 * The TLS settings of a URL's query (its decoded pairs, in order) and the environment, as
 * libpq resolves them. Throws a one-line error naming `input` for what libpq would refuse.
 */
function sslSettings(query, env, input) {
    const params = new Map(query);
    // HOME first, as libpq 18 reads it (older libpq reads the passwd entry: the same on runners).
    const home = node_path__WEBPACK_IMPORTED_MODULE_4__.join(env.HOME || node_os__WEBPACK_IMPORTED_MODULE_3__.userInfo().homedir, '.postgresql');
    const setting = (param, variable) => {
        const v = params.get(param);
        if (v !== undefined && v !== '')
            return { value: v, from: `${param}=${v}` };
        const e = env[variable];
        if (e)
            return { value: e, from: `${variable}=${e}` };
        return null;
    };
    const ssl = params.get('ssl');
    if (ssl !== undefined && ssl !== 'true') {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ssl=${ssl} is node-postgres's own parameter, which pg_dump refuses ("invalid URI query parameter"). Fix: sslmode=disable for no encryption, sslmode=require to encrypt, sslmode=verify-full&sslrootcert=/path/to/ca.pem to encrypt and check the server.`);
    }
    if (params.has('uselibpqcompat')) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: uselibpqcompat is node-postgres's own parameter, which pg_dump refuses ("invalid URI query parameter"); the action already reads sslmode as libpq does. Fix: remove it from the URL.`);
    }
    const rootcert = setting('sslrootcert', 'PGSSLROOTCERT');
    // libpq stores ssl=true and the old requiressl as sslmode where they stand: the last wins.
    let mode = null;
    for (const [key, value] of query) {
        if (key === 'sslmode' && value !== '')
            mode = { value, from: `sslmode=${value}` };
        if (key === 'ssl')
            mode = { value: 'require', from: 'ssl=true (sslmode=require)' };
        if (key === 'requiressl') {
            mode = value.startsWith('1')
                ? { value: 'require', from: `requiressl=${value} (sslmode=require)` }
                : { value: 'prefer', from: `requiressl=${value} (sslmode=prefer)` };
        }
    }
    if (!mode && env.PGSSLMODE)
        mode = { value: env.PGSSLMODE, from: `PGSSLMODE=${env.PGSSLMODE}` };
    if (!mode && env.PGREQUIRESSL?.startsWith('1')) {
        mode = { value: 'require', from: 'PGREQUIRESSL=1 (sslmode=require)' };
    }
    mode ??=
        rootcert?.value === 'system'
            ? { value: 'verify-full', from: "sslrootcert=system (libpq's default sslmode then)" }
            : { value: 'prefer', from: "sslmode=prefer (libpq's default)" };
    if (!SSL_MODES.includes(mode.value)) {
        const hint = mode.value === 'no-verify'
            ? ' (no-verify is node-postgres\'s own; libpq\'s "encrypt, check nothing" is require)'
            : '';
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${mode.from} is not an sslmode pg_dump knows${hint}. Fix: use one of ${SSL_MODES.join(', ')}.`);
    }
    const sslMode = mode.value;
    if (rootcert?.value === 'system' && sslMode !== 'verify-full') {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${mode.from} with sslrootcert=system: trusting every CA of the system checks nothing unless the server's name is checked too, and libpq refuses it. Fix: sslmode=verify-full.`);
    }
    const version = (param, variable) => {
        const v = setting(param, variable);
        if (!v)
            return null;
        if (!TLS_VERSIONS.includes(v.value)) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${v.from} is not a TLS version. Fix: one of ${TLS_VERSIONS.join(', ')}.`);
        }
        return v.value;
    };
    const negotiation = setting('sslnegotiation', 'PGSSLNEGOTIATION');
    if (negotiation && !['postgres', 'direct'].includes(negotiation.value)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${negotiation.from} is not an SSL negotiation. Fix: sslnegotiation=postgres (the default) or direct.`);
    }
    if (negotiation?.value === 'direct' && ['disable', 'allow', 'prefer'].includes(sslMode)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${negotiation.from} needs an sslmode that always encrypts, and ${mode.from} does not. Fix: sslmode=require, verify-ca or verify-full.`);
    }
    return {
        mode: sslMode,
        modeFrom: mode.from,
        rootcert: rootcert?.value ?? node_path__WEBPACK_IMPORTED_MODULE_4__.join(home, 'root.crt'),
        cert: setting('sslcert', 'PGSSLCERT')?.value ?? node_path__WEBPACK_IMPORTED_MODULE_4__.join(home, 'postgresql.crt'),
        key: setting('sslkey', 'PGSSLKEY')?.value ?? node_path__WEBPACK_IMPORTED_MODULE_4__.join(home, 'postgresql.key'),
        crl: setting('sslcrl', 'PGSSLCRL')?.value ?? node_path__WEBPACK_IMPORTED_MODULE_4__.join(home, 'root.crl'),
        crlDir: setting('sslcrldir', 'PGSSLCRLDIR')?.value ?? null,
        minVersion: version('ssl_min_protocol_version', 'PGSSLMINPROTOCOLVERSION'),
        maxVersion: version('ssl_max_protocol_version', 'PGSSLMAXPROTOCOLVERSION'),
        negotiation: negotiation?.value ?? 'postgres',
    };
}
/** A file's contents, or null when it does not exist (libpq then goes on without it). */
async function readIfThere(file) {
    try {
        return await node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.readFile(file, 'utf8');
    }
    catch (err) {
        const code = err.code;
        if (code === 'ENOENT' || code === 'ENOTDIR')
            return null;
        throw err;
    }
}
/** The server's name is not one the certificate names (libpq's verify-full check failed). */
class NameMismatch extends Error {
    code = 'ERR_TLS_CERT_ALTNAME_INVALID';
}
/** Lower-case, and IPv6 written one way, so addresses compare as addresses. */
function canonicalIp(ip) {
    try {
        return new URL(`http://${node_net__WEBPACK_IMPORTED_MODULE_2__.isIPv6(ip) ? `[${ip}]` : ip}`).hostname.replace(/^\[|\]$/g, '');
    }
    catch {
        return ip.toLowerCase();
    }
}
/** libpq's wildcard rule: `*.example.com` matches one more label, never a dot. */
function nameMatches(pattern, host) {
    const p = pattern.toLowerCase();
    const h = host.toLowerCase();
    if (p === h)
        return true;
    if (p.length < 3 || !p.startsWith('*.') || p.length > h.length)
        return false;
    if (!h.endsWith(p.slice(1)))
        return false;
    return !h.slice(0, h.length - p.length + 1).includes('.');
}
/**
 * verify-full's name check, as libpq makes it: the host against every DNS name (and, for an
 * address, every IP address) of the subjectAltName; the Common Name only when there is no
 * subjectAltName of the host's kind. Node's own check never reads the Common Name for an
 * address, so libpq and Node would disagree on such a certificate.
 */
function libpqNameCheck(host, cert) {
    const isIp = node_net__WEBPACK_IMPORTED_MODULE_2__.isIP(host) !== 0;
    const names = [];
    let checkCn = true;
    for (const entry of (cert.subjectaltname ?? '').split(/,\s*/).filter(Boolean)) {
        const colon = entry.indexOf(':');
        const kind = entry.slice(0, colon);
        const value = entry.slice(colon + 1).replace(/^"|"$/g, '');
        if (kind === 'DNS') {
            if (!isIp)
                checkCn = false;
            names.push(value);
            if (nameMatches(value, host))
                return undefined;
        }
        else if (kind === 'IP Address') {
            if (isIp)
                checkCn = false;
            names.push(value);
            if (isIp && canonicalIp(value) === canonicalIp(host))
                return undefined;
        }
    }
    const cn = [cert.subject?.CN ?? []].flat()[0];
    if (checkCn && cn) {
        names.push(cn);
        if (nameMatches(cn, host))
            return undefined;
    }
    if (names.length === 0) {
        return new NameMismatch(`the server's certificate names no host, so it cannot be ${host}`);
    }
    const others = names.length > 1
        ? ` (and ${names.length - 1} other name${names.length > 2 ? 's' : ''}: ${names.slice(1).join(', ')})`
        : '';
    return new NameMismatch(`server certificate for "${names[0]}"${others} does not match host name "${host}"`);
}
/**
 * Node's TLS options for the SSL attempt, with what will be checked. File problems are one
 * line naming `input`, as libpq names them.
 */
async function tlsOptions(target, input) {
    const s = target.ssl;
    const options = {};
    const security = { checked: 'nothing', rootcert: s.rootcert, clientCert: null };
    const fileError = (what, file, err, fix) => new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${what} ${file} cannot be read (${err.code ?? err.message}). Fix: ${fix}`);
    let ca;
    if (s.rootcert === 'system') {
        ca = node_tls__WEBPACK_IMPORTED_MODULE_5__.getCACertificates('system');
    }
    else {
        try {
            ca = await readIfThere(s.rootcert);
        }
        catch (err) {
            throw fileError('the root certificate file', s.rootcert, err, 'make it readable by the runner, or set sslrootcert to the CA file that signed the server certificate.');
        }
    }
    if (ca === null && s.mode.startsWith('verify-')) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: sslmode=${s.mode} checks the server's certificate against a CA certificate, and there is none: root certificate file ${s.rootcert} does not exist. Fix: add sslrootcert=/path/to/ca.pem to the URL (the CA that signed the server's certificate: your provider's CA bundle, or the one you made), or sslmode=require to encrypt without checking the server.`);
    }
    if (ca !== null) {
        options.ca = ca;
        options.rejectUnauthorized = true;
        security.checked = s.mode === 'verify-full' ? 'ca-and-name' : 'ca';
        // Revocation lists count only with a CA to check against; one that cannot be read is
        // passed over, as libpq passes it over.
        const crls = [];
        const crl = await readIfThere(s.crl).catch(() => null);
        if (crl)
            crls.push(crl);
        if (s.crlDir) {
            const names = await node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.readdir(s.crlDir).catch(() => []);
            for (const name of names.filter((n) => /^[0-9a-f]{8}\.r\d+$/.test(n))) {
                const text = await readIfThere(node_path__WEBPACK_IMPORTED_MODULE_4__.join(s.crlDir, name)).catch(() => null);
                if (text)
                    crls.push(text);
            }
        }
        if (crls.length)
            options.crl = crls;
        options.checkServerIdentity = s.mode === 'verify-full' ? libpqNameCheck : () => undefined;
    }
    else {
        options.rejectUnauthorized = false;
    }
    if (s.minVersion)
        options.minVersion = s.minVersion;
    if (s.maxVersion)
        options.maxVersion = s.maxVersion;
    let cert;
    try {
        cert = await readIfThere(s.cert);
    }
    catch (err) {
        throw fileError('the client certificate file', s.cert, err, 'make it readable by the runner, or remove sslcert from the URL.');
    }
    if (cert !== null) {
        const key = await clientKey(s.key, target.sslPassword, input);
        let matches;
        try {
            matches = new node_crypto__WEBPACK_IMPORTED_MODULE_0__.X509Certificate(cert).checkPrivateKey(key.object);
        }
        catch (err) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: the client certificate file ${s.cert} is not a PEM certificate (${err.message}). Fix: set sslcert to the client certificate in PEM form (-----BEGIN CERTIFICATE-----).`);
        }
        if (!matches) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: certificate ${s.cert} does not match private key file ${s.key}. Fix: set sslkey to the key the client certificate was made for.`);
        }
        options.cert = cert;
        options.key = key.pem;
        if (target.sslPassword !== null)
            options.passphrase = target.sslPassword;
        security.clientCert = s.cert;
    }
    return { options, security };
}
/** The client key, checked as libpq checks it before it is used. */
async function clientKey(file, passphrase, input) {
    let stat;
    try {
        stat = await node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.stat(file);
    }
    catch (err) {
        const code = err.code;
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(code === 'ENOENT'
            ? `${input}: certificate present, but not private key file ${file}. Fix: set sslkey to the client certificate's key (or remove sslcert).`
            : `${input}: the private key file ${file} cannot be read (${code}). Fix: make it readable by the runner.`);
    }
    if (!stat.isFile()) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: private key file ${file} is not a regular file. Fix: set sslkey to the key file itself.`);
    }
    // libpq refuses a key others can read: 0600 or less for its owner, 0640 if root owns it.
    if (process.platform !== 'win32' && (stat.uid === 0 ? stat.mode & 0o037 : stat.mode & 0o077)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: private key file ${file} has group or world access (mode ${(stat.mode & 0o777).toString(8)}), which pg_dump refuses. Fix: chmod 600 ${file} (0640 or less if root owns it).`);
    }
    let pem;
    try {
        pem = await node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.readFile(file, 'utf8');
    }
    catch (err) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: the private key file ${file} cannot be read (${err.code}). Fix: make it readable by the runner.`);
    }
    try {
        return {
            pem,
            object: (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPrivateKey)({ key: pem, format: 'pem', passphrase: passphrase ?? '' }),
        };
    }
    catch (err) {
        const code = err.code ?? '';
        const encrypted = /ENCRYPTED/.test(pem);
        if (encrypted && passphrase === null) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: private key file ${file} is encrypted, and the URL has no sslpassword. Fix: add sslpassword=PASSPHRASE to the URL (it is masked, and reaches pg_dump through a 0600 service file), or give a key without a passphrase.`);
        }
        if (encrypted) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: private key file ${file} does not open with the sslpassword in the URL (${code || err.message}). Fix: put the key's passphrase in sslpassword.`);
        }
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: could not load private key file ${file} (${code || err.message}). Fix: set sslkey to the client key in PEM form.`);
    }
}
/**
 * node-postgres, loaded by the first connection: pg-tools.ts (and so every mode's start-up)
 * imports this file, and a SQLite run never needs the client.
 */
let pgModule = null;
const loadPg = async () => (pgModule ??= (await __webpack_require__.e(/* import() */ 849).then(__webpack_require__.bind(__webpack_require__, 83849))).default);
/** The server's own error (its SQLSTATE in `code`). Only a loaded client can have raised one. */
const isDatabaseError = (err) => pgModule !== null && err instanceof pgModule.DatabaseError;
/** What the action checked of each client's SSL connection, for connectionSecurity. */
const securities = new WeakMap();
/** Why a client of allow or prefer is connected without SSL, for connectionSecurity. */
const plainReasons = new WeakMap();
/** A system error before anything was said with the server: trying again without SSL (or with) changes nothing. */
function unreachable(err) {
    const code = err.code ?? '';
    return (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code) || /timeout/i.test(err.message ?? ''));
}
const wantsEncryption = (err) => isDatabaseError(err) && err.code === '28000' && /no encryption/.test(err.message);
/**
 * Opens a node-postgres client to `target` as libpq would open pg_dump's connection: the
 * attempts sslmode makes, the files it reads, the checks it runs. A TLS problem is a one-line
 * UserError naming `input` and the fix; other failures are node-postgres's own errors.
 */
async function openPgClient(target, input, config = {}) {
    const mode = target.ssl.mode;
    const order = mode === 'disable'
        ? ['plain']
        : mode === 'allow'
            ? ['plain', 'ssl']
            : mode === 'prefer'
                ? ['ssl', 'plain']
                : ['ssl'];
    // The URL without what this file reads: node-postgres's own reading of them differs.
    const u = new URL(target.url);
    for (const key of [...u.searchParams.keys()])
        if (isSslParam(key))
            u.searchParams.delete(key);
    const failures = [];
    for (const how of order) {
        let security = null;
        try {
            let ssl = false;
            if (how === 'ssl')
                ({ options: ssl, security } = await tlsOptions(target, input));
            const client = new (await loadPg()).Client({
                ...config,
                connectionString: u.href,
                ssl,
                sslnegotiation: target.ssl.negotiation,
            });
            // A dropped connection is reported by the query that meets it; this keeps it from also
            // crashing the process as an unhandled 'error' event.
            client.on('error', () => undefined);
            try {
                await client.connect();
            }
            catch (err) {
                await client.end().catch(() => undefined);
                throw err;
            }
            if (security)
                securities.set(client, security);
            const sslFailure = failures.find((f) => f.how === 'ssl');
            if (how === 'plain' && mode === 'allow') {
                plainReasons.set(client, 'the server took the plain connection allow tries first');
            }
            else if (how === 'plain' && sslFailure) {
                plainReasons.set(client, whySslFailed(sslFailure, target, input));
            }
            return client;
        }
        catch (err) {
            failures.push({ how, err, sent: security ? security.clientCert : undefined });
            if (unreachable(err))
                break;
            // allow tries SSL only when the server turned the plain login down.
            if (how === 'plain' && !isDatabaseError(err))
                break;
        }
    }
    // When plain was turned down for want of encryption, the SSL attempt's failure says why
    // there was none.
    const last = failures[failures.length - 1];
    const ssl = failures.find((f) => f.how === 'ssl');
    const shown = wantsEncryption(last.err) && ssl ? ssl : last;
    throw sslProblem(shown.err, target, input, shown) ?? shown.err;
}
/** Why prefer's SSL attempt failed, in words for the log line of the plain connection. */
function whySslFailed(failure, target, input) {
    const { err } = failure;
    if (err.message === 'The server does not support SSL connections') {
        return 'the server offers no SSL';
    }
    const said = sslProblem(err, target, input, failure)?.message ?? err.message;
    return `the SSL attempt failed, and prefer then tries plain: ${said.replace(/^[^:]*: /, '').split('. Fix:')[0]}`;
}
/**
 * One line for a failure that TLS settings explain, naming the input, the server and the fix;
 * null for any other failure.
 */
function sslProblem(err, target, input, 
/** The attempt that failed: SSL or plain, and the client certificate the SSL one sent. */
attempt) {
    const sentCert = attempt?.sent;
    if (err instanceof _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y)
        return err;
    const e = err;
    const message = e.message ?? String(err);
    const where = `the server at ${target.host}:${target.port}`;
    const mode = target.ssl.modeFrom;
    const code = e.code ?? '';
    if (err instanceof NameMismatch) {
        return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${mode} refused ${where}: ${message}. Fix: write the host name the server's certificate holds in the URL, or give the server a certificate that names ${target.host}; sslmode=verify-ca checks the CA without the name.`);
    }
    if (/CERT|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|CRL|INVALID_CA|PATH_LENGTH/.test(code) &&
        !code.startsWith('ERR_SSL_')) {
        const why = code === 'CERT_HAS_EXPIRED'
            ? "the server's certificate has expired. Fix: renew the server's certificate."
            : code === 'CERT_REVOKED'
                ? `the server's certificate is revoked in the revocation list. Fix: give the server a new certificate.`
                : `its certificate is not signed by the CA in ${target.ssl.rootcert} (${code}: ${message}). Fix: set sslrootcert to the CA certificate that signed the server's (your provider's CA bundle, or the CA you made its certificate with)${target.ssl.mode === 'require' ? '; sslmode=require checks the CA whenever sslrootcert (or ~/.postgresql/root.crt) exists' : ''}.`;
        return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${mode} refused ${where}: ${why}`);
    }
    if (message === 'The server does not support SSL connections') {
        return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${where} does not accept SSL connections, and ${mode} allows no other. Fix: turn ssl on in the server's postgresql.conf, or (on a network you trust) set sslmode=prefer in the URL.`);
    }
    if (isDatabaseError(err) && err.code === '28000') {
        if (/no encryption/.test(message)) {
            return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${where} accepts this user and database only over SSL (${message}), and ${mode} does not encrypt. Fix: remove sslmode=disable from the URL, or set sslmode=verify-full&sslrootcert=/path/to/ca.pem (or sslmode=require).`);
        }
        if (/SSL encryption/.test(message)) {
            return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${where} accepts this user and database only without SSL (${message}), and ${mode} allows only SSL. Fix: add a hostssl line for this user to the server's pg_hba.conf, or set sslmode=prefer.`);
        }
        if (/certificate/i.test(message)) {
            const sent = sentCert === undefined
                ? ''
                : sentCert
                    ? `; the runner sent ${sentCert}`
                    : `; the runner sent none: ${target.ssl.cert} does not exist`;
            return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: ${where} requires a client certificate it accepts (${message}${sent}). Fix: set sslcert and sslkey in the URL to a certificate signed by the CA in the server's ssl_ca_file, whose CN is the user name.`);
        }
    }
    if (/^ERR_SSL_/.test(code) ||
        (attempt?.how === 'ssl' && ['EPROTO', 'ECONNRESET'].includes(code))) {
        const client = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|ACCESS_DENIED)/.test(code);
        const version = /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS/.test(code);
        return new _util_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .UserError */ .y(`${input}: the TLS handshake with ${where} failed (${code}: ${err.reason ?? message}). Fix: ${client
            ? "the server turned the client certificate down: set sslcert and sslkey to a certificate signed by the CA in the server's ssl_ca_file."
            : version
                ? 'the server and the runner share no TLS version: set ssl_min_protocol_version / ssl_max_protocol_version to one the server accepts.'
                : `check that ${target.host}:${target.port} is a PostgreSQL server with ssl on.`}`);
    }
    return null;
}
/**
 * How `client` is connected, in one line for the log: what the server says of its TLS
 * (pg_stat_ssl) and what the action checked of the server's certificate.
 */
async function connectionSecurity(client, target) {
    let row;
    try {
        const { rows } = await client.query('SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
        row = rows[0];
    }
    catch (err) {
        // Only a log line: a server (or pooler) without the view still backs up.
        return `(TLS not known: pg_stat_ssl gave ${err.message}; ${target.ssl.modeFrom})`;
    }
    const mode = target.ssl.modeFrom;
    if (!row || !(row.ssl === true || row.ssl === 't')) {
        const why = plainReasons.get(client);
        return `not encrypted (${mode}${why ? `: ${why}` : ''})`;
    }
    const s = securities.get(client);
    const checked = s?.checked === 'ca-and-name'
        ? `the server's certificate checked against ${s.rootcert} and its name against ${target.host}`
        : s?.checked === 'ca'
            ? `the server's certificate checked against ${s.rootcert}, its name not checked`
            : `the server's certificate not checked (no root certificate file ${target.ssl.rootcert}: anyone on the path could stand in for the server)`;
    const clientCert = s?.clientCert ? `; client certificate ${s.clientCert}` : '';
    return `encrypted (${row.version}, ${row.cipher}; ${mode}: ${checked}${clientCert})`;
}


/***/ }),

/***/ 23548:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   SG: () => (/* binding */ findTool),
/* harmony export */   Z$: () => (/* binding */ toolConnection),
/* harmony export */   c6: () => (/* binding */ parsePgUrl),
/* harmony export */   fx: () => (/* binding */ pgSecrets),
/* harmony export */   gs: () => (/* binding */ redactPgUrl),
/* harmony export */   kR: () => (/* binding */ withDatabase),
/* harmony export */   qI: () => (/* binding */ runTool),
/* harmony export */   v4: () => (/* binding */ ToolError),
/* harmony export */   xP: () => (/* binding */ withoutRowValues)
/* harmony export */ });
/* harmony import */ var _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(91241);
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(31421);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(51455);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(48161);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(76760);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(99661);
/* harmony import */ var _util_secrets_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(3693);
/* harmony import */ var _ssl_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(41549);
/**
 * PostgreSQL connection strings and client tools (pg_dump, pg_restore). Passwords never reach an
 * argument list (visible in `ps` to every local user) or a message: every way libpq takes one
 * (`user:password@`, `?password=`, `?sslpassword=`, PGPASSWORD) is found here, and the tools get
 * the URL without them, the password through PGPASSWORD and sslpassword through a 0600 service
 * file (toolConnection).
 */








/** Query parameters that hold a secret: libpq's password and the client key's passphrase. */
const SECRET_PARAMS = new Set(['password', 'sslpassword']);
/** A query's `key=value` pairs, raw and decoded the way libpq decodes them (no `+` for space). */
function queryPairs(search, input) {
    return search
        .replace(/^\?/, '')
        .split('&')
        .filter(Boolean)
        .map((raw) => {
        const eq = raw.indexOf('=');
        const key = eq < 0 ? raw : raw.slice(0, eq);
        const value = eq < 0 ? '' : raw.slice(eq + 1);
        try {
            return {
                raw,
                rawValue: value,
                key: decodeURIComponent(key),
                value: decodeURIComponent(value),
            };
        }
        catch {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${input}: a query parameter of the URL is not percent-encoded correctly. Fix: write a % in a value as %25.`);
        }
    });
}
/**
 * Parses a postgres:// URL; a bad one is a one-line error naming `input`, never echoing it.
 * A URL without a password takes PGPASSWORD from `env`, as libpq would; sslmode and its files
 * come from the query, else libpq's PGSSL* variables in `env`.
 */
function parsePgUrl(text, input, env = process.env) {
    const { target, pairs } = parseUrl(text, input, env);
    const query = pairs.map((p) => [p.key, p.value]);
    return { ...target, ssl: (0,_ssl_js__WEBPACK_IMPORTED_MODULE_7__/* .sslSettings */ .ye)(query, env, input) };
}
/** parsePgUrl without the TLS settings: masking and redacting need no valid sslmode. */
function parseUrl(text, input, env) {
    let url;
    try {
        url = new URL(text);
    }
    catch {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${input}: not a valid URL. Fix: postgres://USER:PASSWORD@HOST:5432/DATABASE (percent-encode special characters in the password).`);
    }
    if (!/^postgres(ql)?:$/.test(url.protocol)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${input}: must be a postgres:// or postgresql:// URL. Fix: postgres://USER:PASSWORD@HOST:5432/DATABASE.`);
    }
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (!database) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${input}: the URL names no database. Fix: end it with /DATABASE, e.g. postgres://USER@HOST:5432/omniai.`);
    }
    const pairs = queryPairs(url.search, input);
    const secrets = [url.password, decodeURIComponent(url.password)];
    let password = decodeURIComponent(url.password);
    let sslPassword = null;
    for (const p of pairs) {
        if (!SECRET_PARAMS.has(p.key))
            continue;
        secrets.push(p.rawValue, p.value);
        // libpq reads the query after the user info: the last word wins.
        if (p.key === 'password')
            password = p.value;
        else
            sslPassword = p.value;
    }
    if (!password && env.PGPASSWORD) {
        password = env.PGPASSWORD;
        secrets.push(password);
    }
    if (sslPassword !== null && (/[\r\n]/.test(sslPassword) || sslPassword !== sslPassword.trim())) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${input}: sslpassword starts or ends with a space or holds a line break, which pg_dump cannot be given without showing it on its command line. Fix: choose a passphrase for the client key without them.`);
    }
    const keep = pairs.filter((p) => p.key !== 'password').map((p) => p.raw);
    const noSecrets = pairs.filter((p) => !SECRET_PARAMS.has(p.key)).map((p) => p.raw);
    const withQuery = (u, raw) => {
        u.search = raw.length ? `?${raw.join('&')}` : '';
        return u.href;
    };
    // One place for the password, the user info, which the pg client and libpq both read.
    const full = new URL(url.href);
    full.password = password ? encodeURIComponent(password) : '';
    const bare = new URL(url.href);
    bare.password = '';
    const redacted = new URL(url.href);
    redacted.password = password ? '***' : '';
    redacted.search = '';
    const target = {
        url: withQuery(full, keep),
        redacted: redacted.href,
        dbnameArg: withQuery(bare, noSecrets),
        env: password ? { PGPASSWORD: password } : {},
        sslPassword,
        secrets: [...new Set(secrets.filter(Boolean))],
        host: url.hostname || 'localhost',
        port: url.port || '5432',
        database,
    };
    return { target, pairs };
}
/** The secrets in a connection string (none for a SQLite path), for masking. */
function pgSecrets(text, env = process.env) {
    if (!/^postgres(ql)?:\/\//i.test(text))
        return [];
    try {
        return parseUrl(text, _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.ConnectionString, env).target.secrets;
    }
    catch {
        // Not a URL after all: parsing the inputs names the problem; anything after `:` may be secret.
        return text.includes('@') ? [text] : [];
    }
}
/** A connection URL as messages and logs may show it: no password, no query. */
function redactPgUrl(text) {
    try {
        return parseUrl(text, _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.ConnectionString, {}).target.redacted;
    }
    catch {
        return '(a connection string)';
    }
}
/** The name of the service the 0600 service file describes. */
const SERVICE = 'omniai_backups';
/**
 * Runs `use` with the `--dbname` value and environment a pg tool connects with: the password in
 * PGPASSWORD, sslpassword (no libpq environment variable carries it) in a 0600 service file
 * named by PGSERVICEFILE and deleted afterwards. Never a secret on argv.
 */
async function toolConnection(target, use) {
    if (target.sslPassword === null)
        return use(target.dbnameArg, target.env);
    const dbname = new URL(target.dbnameArg);
    if (dbname.searchParams.has('service')) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${_options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.ConnectionString}: service= and sslpassword= together cannot reach pg_dump without showing the passphrase. Fix: put sslpassword in that service's entry of your pg_service.conf and remove it from the URL.`);
    }
    const dir = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.mkdtemp(node_path__WEBPACK_IMPORTED_MODULE_4__.join(node_os__WEBPACK_IMPORTED_MODULE_3__.tmpdir(), 'omniai-pgservice-'));
    try {
        const file = node_path__WEBPACK_IMPORTED_MODULE_4__.join(dir, 'pg_service.conf');
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.writeFile(file, `[${SERVICE}]\nsslpassword=${target.sslPassword}\n`, {
            mode: 0o600,
            flag: 'wx',
        });
        dbname.search = `${dbname.search ? `${dbname.search}&` : '?'}service=${SERVICE}`;
        return await use(dbname.href, { ...target.env, PGSERVICEFILE: file });
    }
    finally {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.rm(dir, { recursive: true, force: true });
    }
}
/** The same server, another database. */
function withDatabase(target, database) {
    const u = new URL(target.url);
    u.pathname = `/${encodeURIComponent(database)}`;
    return parsePgUrl(u.href, _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.RestoreConnectionString);
}
/** Folders where PostgreSQL client tools live on GitHub's runners and common installs, newest first. */
async function candidateDirs(binDir) {
    const dirs = [];
    if (binDir)
        dirs.push(binDir);
    const versioned = async (parent, pattern, sub) => {
        try {
            const names = (await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.readdir(parent)).filter((n) => pattern.test(n));
            names.sort((a, b) => Number(b.replace(/\D/g, '')) - Number(a.replace(/\D/g, '')));
            return names.map((n) => node_path__WEBPACK_IMPORTED_MODULE_4__.join(parent, n, sub));
        }
        catch {
            return [];
        }
    };
    dirs.push(...(await versioned('/usr/lib/postgresql', /^\d+$/, 'bin')));
    dirs.push(...(await versioned('/opt/homebrew/opt', /^(postgresql|libpq)(@\d+)?$/, 'bin')));
    dirs.push(...(await versioned('/usr/local/opt', /^(postgresql|libpq)(@\d+)?$/, 'bin')));
    dirs.push(...(await versioned('C:\\Program Files\\PostgreSQL', /^\d+$/, 'bin')));
    dirs.push(...(process.env.PATH ?? '').split(node_path__WEBPACK_IMPORTED_MODULE_4__.delimiter).filter(Boolean));
    return dirs;
}
async function toolVersion(file) {
    try {
        const { stdout } = await runTool(file, ['--version'], {});
        const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
        return m ? { path: file, major: Number(m[1]), version: stdout.trim() } : null;
    }
    catch {
        return null;
    }
}
const exe = (name) => (process.platform === 'win32' ? `${name}.exe` : name);
/**
 * Finds `name` (pg_dump or pg_restore) of at least `minMajor`, preferring exactly `preferMajor`
 * (the server's), else the oldest that is new enough. Fails before any work with both versions
 * and the fix.
 */
async function findTool(name, minMajor, preferMajor, binDir, why) {
    const tools = [];
    const seen = new Set();
    for (const dir of await candidateDirs(binDir)) {
        const file = node_path__WEBPACK_IMPORTED_MODULE_4__.join(dir, exe(name));
        // Only files that exist, once each (/bin is often /usr/bin): each try runs the tool, and
        // Debian's /usr/bin/pg_dump is a Perl wrapper that takes a tenth of a second to answer.
        const real = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.realpath(file).catch(() => null);
        if (!real || seen.has(real))
            continue;
        seen.add(real);
        const tool = await toolVersion(file);
        if (!tool)
            continue;
        // The candidates come in order of preference: the first of the preferred major is the one.
        if (tool.major === preferMajor)
            return tool;
        tools.push(tool);
    }
    const fit = tools.filter((t) => t.major >= minMajor).sort((a, b) => a.major - b.major);
    if (fit[0])
        return fit[0];
    const found = tools.length
        ? `found only ${tools.map((t) => `${name} ${t.major} (${t.path})`).join(', ')}`
        : `found no ${name}`;
    throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y(`${_options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.PgBinDir}: ${why} needs ${name} ${minMajor} or newer; ${found}. Fix on an Ubuntu runner: sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y postgresql-client-${minMajor}; or set pg-bin-dir to a folder holding ${name} ${minMajor} or newer.`);
}
/**
 * PostgreSQL quotes row values in some messages (a duplicate key's value, the COPY line that
 * failed); reports and logs carry no row contents, so those lines are dropped.
 */
function withoutRowValues(stderr) {
    return (stderr
        .split('\n')
        // A COPY context line may also come last in a longer CONTEXT, under a function's lines.
        .filter((line) => !/^\s*(DETAIL:\s+(Key|Failing row)|(CONTEXT:\s+)?COPY .*, line \d+)/.test(line))
        .join('\n'));
}
/** A client tool failed; its message is one line ending with the tool's own last words. */
class ToolError extends _util_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .UserError */ .y {
    command;
    exitCode;
    stderr;
    constructor(command, exitCode, stderr) {
        // pg_restore --jobs: a worker's error comes first, then the leader's line saying that a
        // worker died, which says nothing of why.
        const last = withoutRowValues(stderr)
            .split('\n')
            .filter((line) => !/worker process died unexpectedly/.test(line))
            .join('\n')
            .trim()
            .split('\n')
            .slice(-3)
            .join(' | ');
        super(`${command} failed (exit ${exitCode ?? 'signal'}): ${last || 'no error output'}`);
        this.command = command;
        this.exitCode = exitCode;
        this.stderr = stderr;
        this.name = 'ToolError';
    }
}
/** Runs a tool without a shell; resolves with its output, rejects with a ToolError. */
function runTool(file, args, env, onStderrLine) {
    return new Promise((resolve, reject) => {
        const child = (0,node_child_process__WEBPACK_IMPORTED_MODULE_1__.spawn)(file, args, {
            // The runner's environment without the action's secrets; the target's own come in `env`.
            env: (0,_util_secrets_js__WEBPACK_IMPORTED_MODULE_6__/* .childEnv */ .gf)(env),
            stdio: ['ignore', 'pipe', 'pipe'],
            windowsHide: true,
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d) => {
            stderr += d;
            if (onStderrLine)
                for (const line of d.split('\n').filter(Boolean))
                    onStderrLine(line);
        });
        child.on('error', reject);
        child.on('close', (code) => {
            if (code === 0)
                resolve({ stdout, stderr });
            else
                reject(new ToolError(node_path__WEBPACK_IMPORTED_MODULE_4__.basename(file), code, stderr));
        });
    });
}


/***/ }),

/***/ 37796:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   MP: () => (/* binding */ hashRows),
/* harmony export */   Mu: () => (/* binding */ RECENCY_COLUMNS),
/* harmony export */   qe: () => (/* binding */ relatedQueries),
/* harmony export */   v4: () => (/* binding */ quoteIdent)
/* harmony export */ });
/* unused harmony export MAX_FK_DEPTH */
/* harmony import */ var _checks_digest_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(73821);
/**
 * SQL shared by the engines for the spot-check: which rows hang off a conversation, found by
 * following foreign keys backwards (conversation → messages → attachments). Both engines speak
 * the same SQL here; they differ only in how a table is named and how a parameter is written.
 */

/** Columns that say when a conversation was last active, most telling first. */
const RECENCY_COLUMNS = [
    'updated_at',
    'updatedAt',
    'last_message_at',
    'created_at',
    'createdAt',
];
/** How far down foreign keys the spot-check follows (conversation → message → attachment). */
const MAX_FK_DEPTH = 3;
function quoteIdent(name) {
    return `"${name.replace(/"/g, '""')}"`;
}
/** Every table reachable from `root` by following foreign keys backwards, with its query. */
function relatedQueries(root, rootKey, foreignKeys, sql) {
    const queries = [];
    const walk = (table, selectKeys, via, depth) => {
        if (depth > MAX_FK_DEPTH)
            return;
        for (const fk of foreignKeys.filter((k) => k.parent === table)) {
            if (fk.child === root || via.some((v) => v.startsWith(`${fk.child}.`)))
                continue;
            const where = `${quoteIdent(fk.from)} IN (${selectKeys(fk.to)})`;
            const path = [...via, `${fk.child}.${fk.from}`];
            queries.push({
                table: fk.child,
                via: path.join(' → '),
                sql: `SELECT * FROM ${sql.table(fk.child)} WHERE ${where} ORDER BY ${sql.orderBy(fk.child)}`,
            });
            walk(fk.child, (col) => `SELECT ${quoteIdent(col)} FROM ${sql.table(fk.child)} WHERE ${where}`, path, depth + 1);
        }
    };
    walk(root, (col) => `SELECT ${quoteIdent(col)} FROM ${sql.table(root)} WHERE ${quoteIdent(rootKey)} = ${sql.param}`, [], 1);
    return queries;
}
function hashRows(rows) {
    const hasher = new _checks_digest_js__WEBPACK_IMPORTED_MODULE_0__/* .RowHasher */ .ae();
    for (const row of rows)
        hasher.add(row);
    return { rows: hasher.count, sha256: hasher.digest() };
}


/***/ }),

/***/ 30884:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   L: () => (/* binding */ openSqlite),
/* harmony export */   t: () => (/* binding */ sqliteDriver)
/* harmony export */ });
/* harmony import */ var node_module__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(98995);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(99661);
/**
 * The SQLite connection the engine uses, behind a small interface with two implementations:
 * better-sqlite3 (fast, N-API prebuilds bundled for each GitHub-hosted runner platform) and
 * Node's built-in node:sqlite, used where no prebuild loads (e.g. musl Linux) or when
 * OMNIAI_SQLITE_DRIVER=node asks for it. Both return integers as bigint and BLOBs as bytes, so
 * digests are identical whichever driver computed them.
 */


// A static map of import() calls: ncc follows each one and emits that platform's prebuild
// beside the bundle, so dist/ runs from a folder with no node_modules. A plain
// `import 'better-sqlite3'` would resolve the binary through __dirname at run time, which an
// ESM bundle does not have.
const PREBUILDS = {
    'linux-x64': () => Promise.all(/* import() */[__webpack_require__.e(909), __webpack_require__.e(815)]).then(__webpack_require__.t.bind(__webpack_require__, 91815, 19)),
    'linux-arm64': () => Promise.all(/* import() */[__webpack_require__.e(909), __webpack_require__.e(557)]).then(__webpack_require__.t.bind(__webpack_require__, 8557, 19)),
    'darwin-arm64': () => Promise.all(/* import() */[__webpack_require__.e(909), __webpack_require__.e(862)]).then(__webpack_require__.t.bind(__webpack_require__, 64862, 19)),
    'darwin-x64': () => Promise.all(/* import() */[__webpack_require__.e(909), __webpack_require__.e(252)]).then(__webpack_require__.t.bind(__webpack_require__, 90252, 19)),
    'win32-x64': () => Promise.all(/* import() */[__webpack_require__.e(909), __webpack_require__.e(846)]).then(__webpack_require__.t.bind(__webpack_require__, 87846, 19)),
    'win32-arm64': () => Promise.all(/* import() */[__webpack_require__.e(909), __webpack_require__.e(140)]).then(__webpack_require__.t.bind(__webpack_require__, 42140, 19)),
};
let betterSqlite;
function isMusl() {
    if (process.platform !== 'linux')
        return false;
    const report = process.report?.getReport();
    return !report?.header?.glibcVersionRuntime;
}
async function loadBetterSqlite() {
    if (process.env.OMNIAI_SQLITE_DRIVER === 'node')
        return null;
    const key = `${process.platform}-${process.arch}`;
    const load = PREBUILDS[key];
    if (!load || isMusl())
        return null;
    try {
        const mod = await load();
        // Opening a memory database proves the native binary loads on this Node ABI.
        new mod.default(':memory:').close();
        return mod.default;
    }
    catch {
        return null;
    }
}
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
async function openSqlite(path, options) {
    const Better = await loaded();
    return Better ? openBetter(Better, path, options) : openNodeSqlite(path, options);
}
function loaded() {
    if (NODE_MAJOR < 22) {
        // better-sqlite3 13 crashes the process on Node 20, and node:sqlite does not exist there.
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`omniai-backups needs Node.js 24 (this is Node.js ${process.versions.node}). Fix: in action.yml it runs on node24 by itself; for the CLI, install Node.js 24 or run it through npm scripts (npm run demo), which use the Node 24 from node_modules.`);
    }
    betterSqlite ??= loadBetterSqlite();
    return betterSqlite;
}
/**
 * Which driver openSqlite uses here, and whether it is the fallback; for the log, so a missing
 * or unloadable prebuild is visible rather than silently slower.
 */
async function sqliteDriver() {
    if (await loaded())
        return { name: 'better-sqlite3', fallback: false };
    return { name: 'node:sqlite', fallback: process.env.OMNIAI_SQLITE_DRIVER !== 'node' };
}
function openBetter(Better, path, options) {
    const db = new Better(path, { readonly: options.readonly, fileMustExist: true });
    db.defaultSafeIntegers(true);
    const statement = (sql) => db.prepare(sql);
    return {
        driver: 'better-sqlite3',
        rows: (sql, ...params) => statement(sql)
            .raw(true)
            .all(...params),
        prepared: (sql) => {
            const s = statement(sql).raw(true);
            return (...params) => s.all(...params);
        },
        iterate: (sql, ...params) => statement(sql)
            .raw(true)
            .iterate(...params),
        objects: (sql, ...params) => statement(sql).all(...params),
        run: (sql, ...params) => void statement(sql).run(...params),
        exec: (sql) => void db.exec(sql),
        inTransaction: () => db.inTransaction,
        backup: async (dest, progress) => {
            let total = 0;
            await db.backup(dest, {
                progress: ({ totalPages, remainingPages }) => {
                    total = totalPages;
                    progress(totalPages - remainingPages, totalPages);
                    return STEP_PAGES;
                },
            });
            progress(total, total);
        },
        close: () => db.close(),
    };
}
// Pages copied per backup step (4 KiB pages: 16 MiB). Between steps the event loop runs, so
// progress can be logged; the caller holds a read transaction so steps see one snapshot.
const STEP_PAGES = 4096;
async function openNodeSqlite(path, options) {
    const require = (0,node_module__WEBPACK_IMPORTED_MODULE_0__.createRequire)(import.meta.url);
    const sqlite = require('node:sqlite');
    const { existsSync } = await Promise.resolve(/* import() */).then(__webpack_require__.t.bind(__webpack_require__, 73024, 19));
    // node:sqlite would create a missing file; better-sqlite3's fileMustExist refuses it.
    if (!existsSync(path))
        throw new Error(`unable to open database file: ${path}`);
    const db = new sqlite.DatabaseSync(path, { readOnly: options.readonly });
    const statement = (sql, arrays) => {
        const s = db.prepare(sql);
        s.setReadBigInts(true);
        s.setReturnArrays(arrays);
        return s;
    };
    return {
        driver: 'node:sqlite',
        rows: (sql, ...params) => statement(sql, true).all(...params),
        prepared: (sql) => {
            const s = statement(sql, true);
            return (...params) => s.all(...params);
        },
        iterate: (sql, ...params) => statement(sql, true).iterate(...params),
        objects: (sql, ...params) => statement(sql, false).all(...params),
        run: (sql, ...params) => void statement(sql, false).run(...params),
        exec: (sql) => db.exec(sql),
        inTransaction: () => db.isTransaction,
        backup: async (dest, progress) => {
            await sqlite.backup(db, dest, {
                rate: STEP_PAGES,
                progress: ({ totalPages, remainingPages }) => progress(totalPages - remainingPages, totalPages),
            });
        },
        close: () => db.close(),
    };
}


/***/ }),

/***/ 18571:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   O4: () => (/* binding */ signatureFor),
/* harmony export */   Ox: () => (/* binding */ verifyKeyOf),
/* harmony export */   TZ: () => (/* binding */ generateKeyPair),
/* harmony export */   UG: () => (/* binding */ parseSigningKey),
/* harmony export */   VV: () => (/* binding */ SIGNATURE_SUFFIX),
/* harmony export */   j3: () => (/* binding */ parseVerifyKeys),
/* harmony export */   jC: () => (/* binding */ checkSignature),
/* harmony export */   x0: () => (/* binding */ signaturePathFor)
/* harmony export */ });
/* unused harmony exports SIGNATURE_FORMAT, keyIdOf */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/* harmony import */ var _util_fs_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(27685);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(76760);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(99661);
/**
 * Ed25519 signatures over manifests, so that verify, drill and restore can tell a backup the
 * team's backup job made from one anybody else put in its place.
 *
 * The backup job holds the private key (`signing-key`, from a secret) and signs the manifest's
 * exact bytes; the signature goes in a small JSON file beside it, `<backup>.manifest.json.sig`.
 * The manifest holds the backup's sha256 (and the plaintext's, when encrypted), so the checksum
 * check carries the signature over to the backup itself. The reading side holds only public keys
 * (`verify-key`). Signing the stored bytes, not a re-serialised form, means nothing has to be
 * canonicalised and the signature can be checked with openssl alone (README, "Signed manifests").
 */




const SIGNATURE_SUFFIX = '.sig';
const SIGNATURE_FORMAT = 1;
// DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key (RFC 8410), before the 32 key bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
function signaturePathFor(manifestPath) {
    return manifestPath + SIGNATURE_SUFFIX;
}
/** The public key's raw 32 bytes. */
function rawPublicKey(key) {
    return key.export({ format: 'der', type: 'spki' }).subarray(-32);
}
/** First 16 hex digits of the sha256 of the raw public key: short enough to read, and to compare. */
function keyIdOf(publicKey) {
    return node_crypto__WEBPACK_IMPORTED_MODULE_0__.createHash('sha256').update(rawPublicKey(publicKey)).digest('hex').slice(0, 16);
}
function base64Bytes(text) {
    const compact = text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact))
        return null;
    return Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
const SIGNING_FIX = 'Fix: generate a key pair with "npx omniai-backup keygen" (or openssl genpkey -algorithm ed25519) and pass the private key from a secret.';
/**
 * The backup job's private key: a PEM "PRIVATE KEY" block (PKCS#8, as openssl genpkey writes it),
 * or base64 of the 32-byte seed, of the 48-byte PKCS#8 DER, or of libsodium's 64-byte secret key.
 * Messages never echo the value.
 */
function parseSigningKey(text, input) {
    let privateKey = null;
    if (text.includes('-----BEGIN')) {
        if (/ENCRYPTED PRIVATE KEY/.test(text)) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`${input}: the private key is encrypted with a passphrase, which the action cannot ask for. Fix: export it without a passphrase (openssl pkey -in key.pem -out plain.pem) and keep it in a secret.`);
        }
        try {
            privateKey = node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPrivateKey({ key: text, format: 'pem' });
        }
        catch {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`${input}: not a readable PEM private key. ${SIGNING_FIX}`);
        }
    }
    else {
        const bytes = base64Bytes(text);
        let seed = null;
        if (bytes?.length === 32)
            seed = bytes;
        else if (bytes?.length === 48 && bytes.subarray(0, 16).equals(PKCS8_PREFIX))
            seed = bytes.subarray(16);
        else if (bytes?.length === 64)
            seed = bytes.subarray(0, 32);
        if (seed) {
            privateKey = node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPrivateKey({
                key: Buffer.concat([PKCS8_PREFIX, seed]),
                format: 'der',
                type: 'pkcs8',
            });
            // libsodium's form carries the public key too: it must be this seed's.
            if (bytes.length === 64 &&
                !rawPublicKey(node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPublicKey(privateKey)).equals(bytes.subarray(32))) {
                throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`${input}: the 64-byte key's second half is not the public key of its first half. ${SIGNING_FIX}`);
            }
        }
    }
    if (!privateKey || privateKey.asymmetricKeyType !== 'ed25519') {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`${input}: not an Ed25519 private key (a PEM "BEGIN PRIVATE KEY" block, or 32 bytes in base64). ${SIGNING_FIX}`);
    }
    return { privateKey, keyId: keyIdOf(node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPublicKey(privateKey)) };
}
/**
 * The reading side's public keys, more than one during a key rotation: PEM "PUBLIC KEY" blocks,
 * or base64 of a raw 32-byte key or of the 44-byte SPKI DER, one per line.
 */
function parseVerifyKeys(text, input) {
    if (/PRIVATE KEY/.test(text)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`${input}: holds a private key. Fix: give the public key (npx omniai-backup keygen prints it; openssl pkey -in signing-key.pem -pubout), and keep the private key only in the backup job's secret.`);
    }
    const keys = [];
    const bad = () => new _util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`${input}: not an Ed25519 public key (a PEM "BEGIN PUBLIC KEY" block, or 32 bytes in base64, one key per line). Fix: copy the public key "npx omniai-backup keygen" printed, or run openssl pkey -in signing-key.pem -pubout.`);
    const rest = text.replace(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g, (pem) => {
        try {
            keys.push(node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPublicKey({ key: pem, format: 'pem' }));
        }
        catch {
            throw bad();
        }
        return '\n';
    });
    for (const line of rest.split(/[\r\n,]+/).map((l) => l.trim())) {
        if (!line)
            continue;
        const bytes = base64Bytes(line);
        const der = bytes?.length === 32
            ? Buffer.concat([SPKI_PREFIX, bytes])
            : bytes?.length === 44 && bytes.subarray(0, 12).equals(SPKI_PREFIX)
                ? bytes
                : null;
        if (!der)
            throw bad();
        keys.push(node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPublicKey({ key: der, format: 'der', type: 'spki' }));
    }
    if (keys.some((k) => k.asymmetricKeyType !== 'ed25519'))
        throw bad();
    const byId = new Map(keys.map((k) => [keyIdOf(k), k]));
    return [...byId].map(([keyId, publicKey]) => ({ keyId, publicKey }));
}
/** The public half of a signing key, to check what it signed. */
function verifyKeyOf(key) {
    return { publicKey: node_crypto__WEBPACK_IMPORTED_MODULE_0__.createPublicKey(key.privateKey), keyId: key.keyId };
}
/** The signature file's text for a manifest's exact bytes. */
function signatureFor(manifestBytes, key) {
    const file = {
        format: SIGNATURE_FORMAT,
        algorithm: 'ed25519',
        keyId: key.keyId,
        signature: node_crypto__WEBPACK_IMPORTED_MODULE_0__.sign(null, manifestBytes, key.privateKey).toString('base64'),
    };
    return JSON.stringify(file, null, 2) + '\n';
}
/** A new key pair: the private key as PKCS#8 PEM, the public key as PEM and as raw base64. */
function generateKeyPair() {
    const { privateKey, publicKey } = node_crypto__WEBPACK_IMPORTED_MODULE_0__.generateKeyPairSync('ed25519');
    return {
        privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
        publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
        publicBase64: rawPublicKey(publicKey).toString('base64'),
        keyId: keyIdOf(publicKey),
    };
}
/**
 * The `signature` check: the manifest beside `backupPath`, as it is on disk now, must carry a
 * signature by one of `keys`, and must be the manifest the caller read (`manifest`).
 */
async function checkSignature(entry, keys, input) {
    const name = node_path__WEBPACK_IMPORTED_MODULE_2__.basename(entry.path);
    const sigPath = signaturePathFor(entry.manifestPath);
    const trusted = keys.map((k) => k.keyId).join(', ');
    const fail = (detail) => ({ name: 'signature', ok: false, detail });
    let sig;
    try {
        sig = JSON.parse((await (0,_util_fs_js__WEBPACK_IMPORTED_MODULE_1__/* .readRegularFile */ .XF)(sigPath)).toString('utf8'));
    }
    catch (err) {
        return fail(err.code === 'ENOENT'
            ? `${input}: ${name}'s manifest is not signed (no ${node_path__WEBPACK_IMPORTED_MODULE_2__.basename(sigPath)} beside it), and ${input} accepts only manifests signed by key ${trusted}. Fix: set signing-key in the backup job, or use a backup it signed.`
            : `${input}: ${name}'s signature file ${node_path__WEBPACK_IMPORTED_MODULE_2__.basename(sigPath)} is damaged, so the manifest cannot be trusted. Fix: use another backup.`);
    }
    const bytes = await (0,_util_fs_js__WEBPACK_IMPORTED_MODULE_1__/* .readRegularFile */ .XF)(entry.manifestPath);
    const signature = typeof sig.signature === 'string' ? Buffer.from(sig.signature, 'base64') : null;
    const by = signature?.length === 64
        ? keys.find((k) => node_crypto__WEBPACK_IMPORTED_MODULE_0__.verify(null, bytes, k.publicKey, signature))
        : undefined;
    if (!by) {
        const claimed = typeof sig.keyId === 'string' ? sig.keyId : 'unknown';
        return fail(keys.some((k) => k.keyId === claimed)
            ? `${input}: ${name}'s manifest was altered after it was signed (the signature by key ${claimed} does not match it). Fix: use another backup, and find out who changed this one.`
            : `${input}: ${name}'s manifest is signed by another key (${claimed}), not by ${input} (${trusted}). Fix: use a backup your backup job signed, or add that job's public key to ${input}.`);
    }
    // The check is of what was read and is used from here on, not of a file swapped in between.
    if (JSON.stringify(JSON.parse(bytes.toString('utf8'))) !== JSON.stringify(entry.manifest)) {
        return fail(`${input}: ${name}'s manifest changed while it was being read. Fix: run again.`);
    }
    return {
        name: 'signature',
        ok: true,
        detail: `manifest signed by key ${by.keyId} (${input}); it names the backup's sha256, which the checksum check proves`,
    };
}


/***/ }),

/***/ 92079:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  r: () => (/* binding */ runMode)
});

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: ./lib/options/config.js + 1 modules
var options_config = __webpack_require__(62430);
// EXTERNAL MODULE: ./lib/util/errors.js
var errors = __webpack_require__(99661);
// EXTERNAL MODULE: ./lib/checks/checks.js
var checks_checks = __webpack_require__(73992);
;// CONCATENATED MODULE: ./lib/github/api.js

const MAX_RATE_LIMIT_WAITS = 3;
const MAX_WAIT_SECONDS = 60;
/** GitHub asks to wait at least a minute after a secondary rate limit that names no time. */
const SECONDARY_WAIT_SECONDS = 60;
/**
 * Server errors (5xx) and dropped connections (which Octokit reports as 500) are tried again this
 * many times, after 1, 4 and 9 s (@octokit/plugin-retry's backoff). Every 4xx is final here:
 * refusals name their fix, and rate limits are waited out below as GitHub asks. A retried POST
 * that did reach GitHub adds its comment or issue twice; the tracking issue is the oldest one of
 * its title, and a duplicate record of the same drill changes nothing.
 */
const SERVER_ERROR_RETRIES = 3;
const CLIENT_ERRORS = Array.from({ length: 100 }, (_, i) => 400 + i);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/**
 * Seconds to wait before retrying, when the response is a rate limit; null when it is not one.
 * Primary limits: 403/429 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds).
 * Secondary limits: 403/429 with `retry-after`, or only the message saying so.
 */
function rateLimitWait(status, headers, message) {
    if (status !== 403 && status !== 429)
        return null;
    const retryAfter = headers['retry-after'];
    if (retryAfter !== undefined && Number.isFinite(Number(retryAfter)))
        return Number(retryAfter);
    if (String(headers['x-ratelimit-remaining']) === '0') {
        const reset = Number(headers['x-ratelimit-reset'] ?? 0) * 1000 - Date.now();
        return Math.ceil(Math.max(reset, 1000) / 1000);
    }
    if (status === 429 || /rate limit/i.test(message))
        return SECONDARY_WAIT_SECONDS;
    return null;
}
/** Loaded on the first request only: a run that makes none does not pay for them at start-up. */
const libraries = async () => {
    const [github, httpClient, retryPlugin, undici] = await Promise.all([
        Promise.all(/* import() */[__webpack_require__.e(752), __webpack_require__.e(351), __webpack_require__.e(770)]).then(__webpack_require__.bind(__webpack_require__, 61351)),
        Promise.all(/* import() */[__webpack_require__.e(752), __webpack_require__.e(942)]).then(__webpack_require__.bind(__webpack_require__, 44942)),
        Promise.all(/* import() */[__webpack_require__.e(735), __webpack_require__.e(15)]).then(__webpack_require__.bind(__webpack_require__, 49735)),
        __webpack_require__.e(/* import() */ 752).then(__webpack_require__.t.bind(__webpack_require__, 46752, 19)),
    ]);
    return {
        getOctokit: github.getOctokit,
        HttpClient: httpClient.HttpClient,
        retry: retryPlugin.retry,
        fetch: undici.fetch,
    };
};
/**
 * fetch through the proxy that HTTPS_PROXY / HTTP_PROXY name for `url`, unless NO_PROXY (or a
 * loopback host) says to go direct: `@actions/http-client`'s rules, read now.
 */
function proxyAwareFetch(lib, url) {
    const dispatcher = new lib.HttpClient('omniai-backups').getAgentDispatcher(url);
    return dispatcher ? (input, init) => lib.fetch(input, { ...init, dispatcher }) : lib.fetch;
}
const isOctokitError = (err) => err instanceof Error && typeof err.status === 'number';
/**
 * A plugin that logs each failed attempt that @octokit/plugin-retry will try again: retries should
 * not be silent. Registered before the retry plugin, so that it sees every attempt, not the last.
 */
function logRetries(log) {
    return (octokit) => {
        octokit.hook.error('request', (err, options) => {
            const attempt = (options.request?.retryCount ?? 0) + 1;
            if (isOctokitError(err) && err.status >= 500 && attempt <= SERVER_ERROR_RETRIES) {
                const what = err.response ? String(err.status) : 'no response';
                log.info(`GitHub API ${options.method} ${new URL(options.url).pathname}: ${what} (${err.message}), attempt ${attempt} of ${SERVER_ERROR_RETRIES + 1}; trying again`);
            }
            throw err;
        });
    };
}
/**
 * One REST call. JSON in and out; retries after a rate limit when GitHub's wait is at most a
 * minute (three times at most), otherwise says when the limit resets.
 */
async function githubRequest(url, repo, log, refusal, init = {}) {
    const method = init.method ?? 'GET';
    const lib = await libraries();
    const octokit = lib.getOctokit(repo.token, {
        baseUrl: repo.apiUrl,
        userAgent: 'omniai-backups',
        request: { fetch: proxyAwareFetch(lib, url) },
        retry: { retries: SERVER_ERROR_RETRIES, doNotRetry: CLIENT_ERRORS },
        // Octokit's own notices (a deprecated endpoint) are for the log, not annotations.
        log: {
            debug: () => { },
            info: () => { },
            warn: (m) => log.info(m),
            error: (m) => log.info(m),
        },
    }, logRetries(log), lib.retry);
    for (let attempt = 0;; attempt++) {
        try {
            const res = await octokit.request(`${method} ${url}`, {
                headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
                ...(init.body === undefined ? {} : { data: init.body }),
            });
            const link = String(res.headers.link ?? '');
            const next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] ?? null;
            return { status: res.status, body: res.data === '' ? null : (res.data ?? null), next };
        }
        catch (err) {
            if (!isOctokitError(err))
                throw err;
            if (!err.response) {
                throw new Error(`GitHub API ${method} ${new URL(url).pathname}: no response (${err.message}) after ${SERVER_ERROR_RETRIES + 1} attempts`, { cause: err });
            }
            const { status, headers, data } = err.response;
            const body = data;
            const message = typeof body?.message === 'string'
                ? body.message
                : typeof data === 'string' && data
                    ? data.slice(0, 200)
                    : err.message;
            const wait = rateLimitWait(status, headers, message);
            if (wait !== null) {
                if (attempt < MAX_RATE_LIMIT_WAITS && wait <= MAX_WAIT_SECONDS) {
                    log.warning(`GitHub API rate limit reached; retrying in ${wait} s`);
                    await sleep(wait * 1000);
                    continue;
                }
                throw new errors/* UserError */.y(`github-token: GitHub's API rate limit is exhausted for this token (resets in ${wait} s). Fix: run the drill later, or less often alongside other API-heavy jobs.`);
            }
            if (status === 401)
                throw new errors/* UserError */.y('github-token: GitHub rejected the token (401 Bad credentials). Fix: leave github-token at its default or pass a valid token.');
            if (init.handle?.includes(status))
                return { status, body: { message }, next: null };
            if (status === 403 || status === 404 || status === 410)
                throw new errors/* UserError */.y(refusal(status, message));
            const tries = status >= 500 ? ` after ${SERVER_ERROR_RETRIES + 1} attempts` : '';
            throw new Error(`GitHub API ${method} ${new URL(url).pathname}: ${status} ${message}${tries}`, { cause: err });
        }
    }
}

// EXTERNAL MODULE: ./lib/report/report.js
var report = __webpack_require__(45650);
// EXTERNAL MODULE: ./lib/util/text.js
var util_text = __webpack_require__(28805);
;// CONCATENATED MODULE: ./lib/github/evidence.js





const DEFAULT_TITLE = 'OmniAI restore drills';
const DEFAULT_LABEL = 'omniai-drill';
const MARKER = 'omniai-drill-record';
/** The record: the whole last line of the comment, and nothing else. */
const RECORD_LINE = new RegExp(`^<!-- ${MARKER} (\\{.*\\}) -->$`);
const PER_PAGE = 100;
/** Past this many pages a list is cut rather than exhaust the rate limit (10,000 items). */
const MAX_PAGES = 100;
const DAY_MS = 24 * 60 * 60 * 1000;
/** GITHUB_TOKEN's identity: the GitHub Actions app's bot. */
const DEFAULT_AUTHOR = 'github-actions[bot]';
/** github-actions[bot]'s user id on github.com (GitHub Enterprise Server numbers its own). */
const GITHUB_ACTIONS_BOT_ID = 41898282;
/** How far a record's date may be ahead of its comment's created_at: the runner's clock is not GitHub's. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/**
 * Passing records whose workflow run is looked up, newest first, before the gate gives up: enough
 * to see past a burst of records that do not hold up, few enough for the rate limit (1,000 an hour
 * for GITHUB_TOKEN).
 */
const MAX_RUN_LOOKUPS = 25;
/** Free text in a record (a failed check's detail) is cut to this many characters... */
const MAX_TEXT = 500;
/** ...and at most this many failed checks are listed, so a comment stays within GitHub's 65,536. */
const MAX_FAILED = 40;
// ---------------------------------------------------------------------------------------------
// The comment
// ---------------------------------------------------------------------------------------------
/** A name shown as is when it is only letters, digits and hyphens; as inline code otherwise. */
const evidence_name = (s) => (/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(s) ? s : (0,util_text/* code */.aY)(s));
/**
 * A table cell. A pipe ends a cell even inside inline code, so each one is escaped; GitHub shows
 * `\|` as `|`, in code too.
 */
const cell = (s) => s.replace(/\|/g, '\\|');
/** `2026-11-26 05:48:12 UTC`, or the text as inline code when it is not a date. */
function when(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t)
        ? (0,util_text/* code */.aY)(iso)
        : `${new Date(t)
            .toISOString()
            .replace('T', ' ')
            .replace(/\.\d{3}Z$/, '')} UTC`;
}
/** A link to the run when it is a plain https URL; its text is code, so nothing in it renders. */
function runLink(run) {
    if (!run)
        return 'not recorded';
    return /^https:\/\/[A-Za-z0-9.-]+(?::\d+)?\/[A-Za-z0-9._~%/-]*$/.test(run)
        ? `[${(0,util_text/* code */.aY)(run)}](${run})`
        : (0,util_text/* code */.aY)(run);
}
/** The record as written: free text cut to size, so that the comment stays within GitHub's limit. */
function bounded(record) {
    const cut = (s) => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s);
    const failed = record.failed.slice(0, MAX_FAILED).map(cut);
    if (record.failed.length > MAX_FAILED)
        failed.push(`… and ${record.failed.length - MAX_FAILED} more failed checks`);
    return {
        ...record,
        failed,
        checks: Object.fromEntries(Object.entries(record.checks).map(([k, ok]) => [cut(k), ok])),
        backup: record.backup && {
            file: cut(record.backup.file),
            sha256: cut(record.backup.sha256),
            createdAt: cut(record.backup.createdAt),
        },
    };
}
/**
 * The record's line. `<`, `>` and `&` are written as JSON escapes, so no value can end the HTML
 * comment early; JSON.parse reads them back unchanged.
 */
function evidence_embed(record) {
    const json = JSON.stringify(record).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    return `<!-- ${MARKER} ${json} -->`;
}
const RECORD_KEYS = [
    'date',
    'ok',
    'engine',
    'backup',
    'backupAgeSeconds',
    'restoreSeconds',
    'databaseBytes',
    'backupCount',
    'checks',
    'failed',
    'decrypted',
    'run',
];
/** The drill log's line carries this too, and records written before it was left out hold it. */
const OPTIONAL_KEYS = ['artifact'];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?Z$/;
const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v) => typeof v === 'string' && v.length <= 2000;
const isNumberOrNull = (v) => v === null || (typeof v === 'number' && Number.isFinite(v));
/** `v` when it is a drill record as the action writes one, exactly; null otherwise. */
function asDrillRecord(v) {
    if (!isObject(v))
        return null;
    const keys = Object.keys(v);
    if (!keys.every((k) => RECORD_KEYS.includes(k) || OPTIONAL_KEYS.includes(k)))
        return null;
    if (!RECORD_KEYS.every((k) => k in v))
        return null;
    const { date, ok, engine, backup, backupCount, checks, failed, decrypted, run } = v;
    const fine = typeof date === 'string' &&
        ISO_UTC.test(date) &&
        !Number.isNaN(Date.parse(date)) &&
        typeof ok === 'boolean' &&
        typeof engine === 'string' &&
        /^[a-z0-9-]{1,32}$/.test(engine) &&
        (backup === null ||
            (isObject(backup) &&
                Object.keys(backup).sort().join() === 'createdAt,file,sha256' &&
                isText(backup.file) &&
                isText(backup.sha256) &&
                isText(backup.createdAt))) &&
        isNumberOrNull(v.backupAgeSeconds) &&
        isNumberOrNull(v.restoreSeconds) &&
        isNumberOrNull(v.databaseBytes) &&
        (backupCount === null || (Number.isSafeInteger(backupCount) && backupCount >= 0)) &&
        isObject(checks) &&
        Object.entries(checks).every(([k, c]) => isText(k) && typeof c === 'boolean') &&
        Array.isArray(failed) &&
        failed.every(isText) &&
        (decrypted === null || typeof decrypted === 'boolean') &&
        (run === null || isText(run)) &&
        (v.artifact === undefined || v.artifact === null || isObject(v.artifact));
    if (!fine)
        return null;
    // A pass with a failed check is not a record the action writes.
    if (ok && (failed.length > 0 || Object.values(checks).includes(false)))
        return null;
    return v;
}
/**
 * The record on the comment's last line, or null (a person's comment, or not a record). Only the
 * last line is read: a record quoted anywhere above it is text, not a record.
 */
function parseDrillComment(body) {
    const m = RECORD_LINE.exec(body.trimEnd().split(/\r?\n/).at(-1) ?? '');
    if (!m)
        return null;
    try {
        return asDrillRecord(JSON.parse(m[1]));
    }
    catch {
        return null;
    }
}
/** The drill's comment: a heading that says pass or fail, the failed checks first, the facts. */
function renderDrillComment(drill) {
    const record = bounded(drill);
    const lines = [
        record.ok
            ? `## ✅ Restore drill passed: ${when(record.date)}`
            : `## ❌ Restore drill FAILED: ${when(record.date)}`,
        '',
    ];
    if (!record.ok) {
        const failed = record.failed.length ? record.failed.map(util_text/* code */.aY).join(', ') : 'none recorded';
        lines.push(`**Failed checks: ${failed}.** Fix the cause and run the drill again; close this issue once a drill passes.`, '');
    }
    const facts = [['Engine', evidence_name(record.engine)]];
    if (record.backup) {
        facts.push(['Backup', (0,util_text/* code */.aY)(record.backup.file)]);
        facts.push(['SHA-256', (0,util_text/* code */.aY)(record.backup.sha256)]);
        facts.push(['Taken at', when(record.backup.createdAt)]);
    }
    else {
        facts.push(['Backup', 'none found']);
    }
    if (record.backupAgeSeconds !== null)
        facts.push(['Backup age (RPO)', (0,checks_checks/* formatSeconds */.Xo)(record.backupAgeSeconds)]);
    if (record.restoreSeconds !== null)
        facts.push(['Restore time (RTO)', `${record.restoreSeconds.toFixed(2)} s`]);
    if (record.databaseBytes !== null)
        facts.push(['Restored database', (0,report/* bytes */.ee)(record.databaseBytes)]);
    if (record.backupCount !== null)
        facts.push(['Backups available', String(record.backupCount)]);
    facts.push([
        'Recovery key',
        record.decrypted === null
            ? 'not encrypted'
            : record.decrypted
                ? '✅ decrypted the backup'
                : '❌ did not decrypt the backup',
    ]);
    facts.push(['Workflow run', runLink(record.run)]);
    lines.push('| | |', '| --- | --- |', ...facts.map(([k, v]) => `| ${k} | ${cell(v)} |`), '');
    const checks = Object.entries(record.checks);
    if (checks.length) {
        lines.push('| Check | Result |', '| --- | --- |');
        for (const [check, ok] of checks)
            lines.push(`| ${cell(evidence_name(check))} | ${ok ? '✅ pass' : '❌ fail'} |`);
        lines.push('');
    }
    // Last, alone on its line: the only place a record is read from.
    lines.push(evidence_embed(record));
    return lines.join('\n');
}
function issueBody(label) {
    return [
        'This issue is the record of the restore drills of this repository’s OmniAI database, kept by the OmniAI Backups action.',
        '',
        'Each drill adds a comment: when it ran, the backup it restored and that backup’s age, the size of the restored database, how many backups were available, each check and its result, how long the restore took, whether the recovery key decrypted the backup, and a link to the workflow run. Workflow logs and artifacts expire; these comments stay.',
        '',
        '- **A failed drill reopens this issue** with the failed checks. Close it once the cause is fixed and a drill has passed again.',
        '- With `max-drill-age`, a workflow fails when the last passing drill recorded here is older than that many days.',
        `- The action finds this issue by its title and the \`${label}\` label: keep both. Each of its comments ends with the same facts as JSON in an HTML comment, which the action reads back.`,
        `- Only the action's own comments count, unedited: a record in a comment by anyone else (a person, whatever their role, or another bot), in an edited comment, or dated after its comment was written is ignored.`,
        '',
        'For audits (for example SOC 2, ISO/IEC 27001 control A.8.13 “Information backup”), this issue is the log of restore tests and their results.',
    ].join('\n');
}
// ---------------------------------------------------------------------------------------------
// The tracking issue
// ---------------------------------------------------------------------------------------------
const repoPath = (s) => `${s.apiUrl}/repos/${s.owner}/${s.repo}`;
/** Recording needs `issues: write`; any refusal says so. */
const cannotWrite = (s) => (status, message) => status === 410
    ? `drill-evidence: issues are disabled in ${s.owner}/${s.repo} (410 ${message}). Fix: turn on Issues in the repository's settings, or set drill-evidence: none.`
    : `drill-evidence: the token cannot write issues in ${s.owner}/${s.repo} (${status} ${message}). Fix: give the job "permissions: issues: write", or set drill-evidence: none.`;
/** The staleness gate needs `issues: read`. */
const cannotRead = (s) => (status, message) => status === 410
    ? `max-drill-age: issues are disabled in ${s.owner}/${s.repo} (410 ${message}), so there is no drill record to read. Fix: turn on Issues in the repository's settings, or remove max-drill-age.`
    : `max-drill-age: the token cannot read issues in ${s.owner}/${s.repo} (${status} ${message}). Fix: give the job "permissions: issues: read", or remove max-drill-age.`;
/**
 * GitHub refused the issues routes (403 or 404: the token may not; 410: Issues are turned off), as
 * opposed to any other failure. drill-evidence: auto turns only this into a warning.
 */
class IssuesRefused extends errors/* UserError */.y {
}
/** Runs `fn` with `refusal`, and marks the UserError it throws for a refusal as IssuesRefused. */
async function marked(refusal, fn) {
    let refused = false;
    try {
        return await fn((status, message) => {
            refused = true;
            return refusal(status, message);
        });
    }
    catch (err) {
        if (refused && err instanceof errors/* UserError */.y && !(err instanceof IssuesRefused))
            throw new IssuesRefused(err.message);
        throw err;
    }
}
/** Every page of a list, following `Link: rel="next"`. */
async function listAll(url, s, log, refusal) {
    const all = [];
    let next = url;
    for (let page = 0; next && page < MAX_PAGES; page++) {
        const res = await githubRequest(next, s, log, refusal);
        const items = Array.isArray(res.body) ? res.body : [];
        all.push(...items);
        next = items.length ? res.next : null;
    }
    return all;
}
const sameTitle = (a, b) => a.trim().toLowerCase() === b.trim().toLowerCase();
/**
 * The oldest issue (not pull request) with the label and title. Oldest, so that a duplicate made
 * by hand, or by two first drills at once, never splits the record.
 */
async function findTrackingIssue(s, log, refusal) {
    const title = s.title ?? DEFAULT_TITLE;
    const label = s.label ?? DEFAULT_LABEL;
    let next = `${repoPath(s)}/issues?labels=${encodeURIComponent(label)}&state=all&sort=created&direction=asc&per_page=${PER_PAGE}`;
    for (let page = 0; next && page < MAX_PAGES; page++) {
        const res = await githubRequest(next, s, log, refusal);
        const items = Array.isArray(res.body) ? res.body : [];
        // The issues endpoint lists pull requests too; they carry a pull_request key.
        const found = items.find((i) => !i.pull_request && sameTitle(i.title, title));
        if (found)
            return found;
        next = items.length ? res.next : null;
    }
    return null;
}
const same = (a, b) => (a ?? '').toLowerCase() === b.toLowerCase();
/**
 * Why a comment's record does not count (rules 2 to 4 of this module's comment), or null when it
 * does. GitHub sets a comment's author and times; the body is the only part its author chooses.
 */
function distrust(c, record, s) {
    const author = s.author ?? DEFAULT_AUTHOR;
    const user = c.user;
    if (!user?.login)
        return `its comment's author is a deleted account, not ${author}`;
    if (user.type !== 'Bot' || !same(user.login, author))
        return `written by ${user.login}${user.type === 'Bot' ? '' : ` (${user.type ?? 'unknown type'})`}, not by ${author}`;
    const onGitHubCom = (s.serverUrl ?? 'https://github.com') === 'https://github.com';
    if (same(author, DEFAULT_AUTHOR) && onGitHubCom && user.id !== GITHUB_ACTIONS_BOT_ID)
        return `written by a ${user.login} with user id ${user.id}, not ${GITHUB_ACTIONS_BOT_ID}`;
    const created = Date.parse(c.created_at ?? '');
    if (Number.isNaN(created))
        return 'its comment has no creation time';
    if (Date.parse(c.updated_at ?? '') !== created)
        return `its comment was edited (updated ${c.updated_at}, written ${c.created_at})`;
    if (Date.parse(record.date) > created + CLOCK_SKEW_MS)
        return `dated ${record.date}, after its comment was written (${c.created_at})`;
    return null;
}
/**
 * Appends the drill's record to the tracking issue, opening the issue on first use. A failed
 * drill reopens a closed issue; a passing one leaves its state to the team. Fails when GitHub's
 * answer shows the record would not count (another author, a runner clock far ahead).
 */
async function recordDrill(record, settings, log) {
    return marked(cannotWrite(settings), (refusal) => writeRecord(record, settings, log, refusal));
}
async function writeRecord(record, settings, log, refusal) {
    const title = settings.title ?? DEFAULT_TITLE;
    const label = settings.label ?? DEFAULT_LABEL;
    let issue = await findTrackingIssue(settings, log, refusal);
    let created = false;
    let reopened = false;
    if (!issue) {
        const res = await githubRequest(`${repoPath(settings)}/issues`, settings, log, refusal, {
            method: 'POST',
            body: { title, body: issueBody(label), labels: [label] },
        });
        issue = res.body;
        created = true;
        log.info(`drill evidence: opened tracking issue #${issue.number} (${issue.html_url})`);
        const labels = (issue.labels ?? []).map((l) => (typeof l === 'string' ? l : l.name));
        if (!labels.some((l) => l?.toLowerCase() === label.toLowerCase())) {
            // GitHub drops the labels of a new issue, silently, when the token may not set them; the
            // next drill would not find this issue and would open another.
            log.warning(`drill-evidence: GitHub did not put the label "${label}" on issue #${issue.number}, so the next drill will not find it. Fix: add the label to issue #${issue.number} by hand.`);
        }
    }
    else if (!record.ok && issue.state === 'closed') {
        await githubRequest(`${repoPath(settings)}/issues/${issue.number}`, settings, log, refusal, {
            method: 'PATCH',
            body: { state: 'open' },
        });
        reopened = true;
        log.info(`drill evidence: reopened tracking issue #${issue.number}: the drill failed`);
    }
    const res = await githubRequest(`${repoPath(settings)}/issues/${issue.number}/comments`, settings, log, refusal, { method: 'POST', body: { body: renderDrillComment(record) } });
    const comment = res.body;
    log.info(`drill evidence: recorded in ${comment.html_url}`);
    const why = distrust(comment, bounded(record), settings);
    if (why) {
        const user = comment.user;
        const fix = user?.type === 'Bot' && !same(user.login, settings.author ?? DEFAULT_AUTHOR)
            ? `set drill-evidence-author: ${user.login} (the identity this token writes as)`
            : user?.type !== 'Bot'
                ? `record drills with the job's GITHUB_TOKEN or a GitHub App's token: records written with a person's token do not count`
                : /^dated/.test(why)
                    ? `set the runner's clock (NTP): it is ahead of GitHub's by more than ${CLOCK_SKEW_MS / 60_000} minutes`
                    : "record drills with the job's GITHUB_TOKEN";
        throw new errors/* UserError */.y(`drill-evidence: this drill's record (${comment.html_url}) would not count for max-drill-age: ${why}. Fix: ${fix}.`);
    }
    return { issueNumber: issue.number, commentUrl: comment.html_url, reopened, created };
}
/** The run id in a record's run URL, when it is a run of this repository; null otherwise. */
function runIdOf(run, s) {
    if (!run)
        return null;
    const base = `${s.serverUrl ?? 'https://github.com'}/${s.owner}/${s.repo}/actions/runs/`;
    if (!same(run.slice(0, base.length), base))
        return null;
    const m = /^(\d{1,19})(?:\/attempts\/\d{1,5})?$/.exec(run.slice(base.length));
    return m ? Number(m[1]) : null;
}
const SKIPPED = Symbol('skipped');
/**
 * Rule 5: why the record's workflow run does not back it, null when it does, or SKIPPED when the
 * token may not read Actions. `cache` keeps the default branch between records.
 */
async function disproveRun(record, written, s, log, cache) {
    const id = runIdOf(record.run, s);
    if (id === null)
        return `its run (${record.run ?? 'none recorded'}) is not a workflow run of ${s.owner}/${s.repo}`;
    const refusal = (status, message) => `max-drill-age: cannot read ${s.owner}/${s.repo} (${status} ${message}).`;
    const res = await githubRequest(`${repoPath(s)}/actions/runs/${id}`, s, log, refusal, {
        handle: [403, 404],
    });
    if (res.status === 403) {
        log.info(`max-drill-age: the token cannot read Actions in ${s.owner}/${s.repo} (403 ${res.body.message}), so the workflow runs behind the drill records were not checked. Give the job "permissions: actions: read" for that proof.`);
        return SKIPPED;
    }
    if (res.status === 404)
        return `its run ${id} does not exist in ${s.owner}/${s.repo}`;
    const run = res.body;
    if (cache.defaultBranch === undefined) {
        const repo = await githubRequest(repoPath(s), s, log, refusal);
        cache.defaultBranch = String(repo.body.default_branch ?? '');
    }
    if (run.head_repository?.id === undefined || run.head_repository.id !== run.repository?.id)
        return `its run ${id} ran another repository's code (a fork's pull request)`;
    if (run.head_branch !== cache.defaultBranch)
        return `its run ${id} ran branch "${run.head_branch ?? ''}", not the default branch "${cache.defaultBranch}"`;
    // The record names its run, but whoever writes a comment chooses that link: the comment must
    // have been written while the run's latest attempt ran (GitHub's clock on both sides). This
    // also drops the record of an attempt that was re-run.
    const at = Date.parse(written);
    const started = Date.parse(run.run_started_at ?? '');
    if (!(at >= started))
        return `its comment was written (${written}) before its run ${id}'s latest attempt started (${run.run_started_at})`;
    if (run.status === 'completed' && !(at <= Date.parse(run.updated_at ?? '')))
        return `its comment was written (${written}) after its run ${id} ended (${run.updated_at})`;
    if (run.status !== 'completed')
        return id === s.runId
            ? null
            : `its run ${id} is still ${run.status ?? 'running'}, so its outcome is not known yet`;
    if (run.conclusion !== 'success')
        return `its run ${id} ended ${run.conclusion ?? 'without a conclusion'}`;
    return null;
}
/** The tracking issue's drill records that count, read back for the staleness gate. */
async function drillHistory(settings, log) {
    return marked(cannotRead(settings), (refusal) => readHistory(settings, log, refusal));
}
async function readHistory(settings, log, refusal) {
    const issue = await findTrackingIssue(settings, log, refusal);
    if (!issue)
        return { issueNumber: null, last: null, records: 0, ignored: [], runProof: null };
    const comments = await listAll(`${repoPath(settings)}/issues/${issue.number}/comments?per_page=${PER_PAGE}`, settings, log, refusal);
    const ignored = [];
    const passing = [];
    let records = 0;
    for (const c of comments) {
        const record = parseDrillComment(c.body ?? '');
        if (!record)
            continue;
        const why = distrust(c, record, settings);
        if (why) {
            ignored.push(`${c.html_url}: ${why}`);
            continue;
        }
        records++;
        if (record.ok)
            passing.push({ record, url: c.html_url, written: c.created_at });
    }
    // Comments are listed oldest first: try the newest passing record first.
    passing.reverse();
    let last = null;
    let runProof = null;
    const cache = {};
    for (const [i, p] of passing.entries()) {
        if (i === MAX_RUN_LOOKUPS) {
            ignored.push(`${passing.length - i} older passing records: not looked at after ${MAX_RUN_LOOKUPS} whose runs did not back them`);
            break;
        }
        const why = await disproveRun(p.record, p.written, settings, log, cache);
        if (why === SKIPPED) {
            // No run can be read: the newest passing record counts on rules 1 to 4 alone.
            const newest = passing[0].record;
            last = { date: newest.date, run: newest.run, issueNumber: issue.number };
            runProof = 'skipped';
            break;
        }
        if (why) {
            ignored.push(`${p.url}: ${why}`);
            continue;
        }
        last = { date: p.record.date, run: p.record.run, issueNumber: issue.number };
        runProof = 'checked';
        break;
    }
    if (ignored.length) {
        log.info(`drill evidence: ${ignored.length} drill record(s) in issue #${issue.number} do not count:`);
        for (const line of ignored.slice(0, 20))
            log.info(`  ${line}`);
        if (ignored.length > 20)
            log.info(`  … and ${ignored.length - 20} more`);
    }
    return { issueNumber: issue.number, last, records, ignored, runProof };
}
/** The newest passing drill that counts, or null. */
async function lastSuccessfulDrill(settings, log) {
    return (await drillHistory(settings, log)).last;
}
/**
 * Where the evidence lives, from the run's environment (read once, by the caller's mode):
 * the repository, the API and server URLs, and this run's id.
 */
function evidenceSettings(options, runner) {
    if (!options.token) {
        throw new errors/* UserError */.y('github-token: empty. Fix: leave github-token at its default (${{ github.token }}), or pass a token with issues: write (drill-evidence) or issues: read (max-drill-age).');
    }
    if (!runner.repository) {
        throw new errors/* UserError */.y('drill-evidence: GITHUB_REPOSITORY is not set, so this is not a GitHub Actions run. Fix: set drill-evidence: none outside Actions (the drill log keeps the record).');
    }
    return {
        token: options.token,
        ...runner.repository,
        apiUrl: runner.apiUrl,
        serverUrl: runner.serverUrl,
        runId: runner.runId,
        title: options.title,
        author: options.author,
    };
}
/**
 * The staleness gate: fails when no passing drill is on record, or the last one is more than
 * `maxDays` days before `now`. `issueNumber` says where the record was looked for.
 */
function checkDrillAge(last, maxDays, now, issueNumber = null) {
    const name = 'drill-age';
    if (!last) {
        const where = issueNumber === null ? ' (no drill has been recorded yet)' : ` in issue #${issueNumber}`;
        return {
            name,
            ok: false,
            detail: `no successful drill on record${where}: run the drill workflow`,
        };
    }
    const t = Date.parse(last.date);
    if (Number.isNaN(t))
        return {
            name,
            ok: false,
            detail: `last successful drill has an unreadable date "${last.date}"`,
        };
    const day = new Date(t).toISOString().slice(0, 10);
    const ageMs = Math.max(0, now.getTime() - t);
    const days = Math.floor(ageMs / DAY_MS);
    const ago = `${days} ${days === 1 ? 'day' : 'days'} ago`;
    return ageMs > maxDays * DAY_MS
        ? {
            name,
            ok: false,
            detail: `last successful drill ${day} (${ago}), over max-drill-age ${maxDays} days: run the drill workflow`,
        }
        : {
            name,
            ok: true,
            detail: `last successful drill ${day} (${ago}), within max-drill-age ${maxDays} days`,
        };
}

// EXTERNAL MODULE: ./lib/checks/inspect.js
var inspect = __webpack_require__(7833);
;// CONCATENATED MODULE: ./lib/util/space.js
/**
 * Disk space, the commonest reason a backup fails: what a job will need, checked before it
 * writes anything, and a write that still fails said in words (which input, which path, what
 * happened), never as a library's class name or a misleading errno.
 */



/** Free space where `dir` is, or would be (its nearest existing parent); null when unknown. */
async function spaceAt(dir) {
    let at = external_node_path_.resolve(dir);
    for (;;) {
        try {
            const [s, st] = await Promise.all([promises_.statfs(at), promises_.stat(at)]);
            return { free: Number(s.bavail) * Number(s.bsize), device: Number(st.dev) };
        }
        catch (err) {
            const code = err.code;
            const parent = external_node_path_.dirname(at);
            if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== at)
                at = parent;
            else
                return null;
        }
    }
}
function formatBytes(n) {
    if (n < 1024)
        return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
/** Room kept free beyond the estimate: filesystems misbehave when full, and estimates are estimates. */
const HEADROOM = 0.05;
/**
 * Fails early, before anything is written, when the folders cannot hold what the job will
 * write there. Needs on the same filesystem add up. Where free space cannot be read, nothing
 * is refused: the write itself will say.
 */
async function requireSpace(needs, 
/** What not going on means, said before the fix. */
consequence = 'Nothing was written.') {
    const byDevice = new Map();
    for (const need of needs) {
        if (need.bytes <= 0)
            continue;
        const space = await spaceAt(need.dir);
        if (!space)
            continue;
        const entry = byDevice.get(space.device) ?? { space, needs: [] };
        entry.needs.push(need);
        byDevice.set(space.device, entry);
    }
    for (const { space, needs: here } of byDevice.values()) {
        const total = here.reduce((n, x) => n + x.bytes, 0);
        const wanted = Math.ceil(total * (1 + HEADROOM));
        if (space.free >= wanted)
            continue;
        const first = here[0];
        const parts = here.map((n) => `${n.what} in ${n.dir} (${n.input})`).join(' and ');
        throw new errors/* UserError */.y(`${first.input}: not enough space: ${parts} need${here.length === 1 ? 's' : ''} about ${formatBytes(wanted)}, and only ${formatBytes(space.free)} is free there. ${consequence} Fix: free ${formatBytes(wanted - space.free)} on that filesystem, or set ${here
            .map((n) => n.input)
            .filter((v, i, a) => a.indexOf(v) === i)
            .join(' / ')} to a folder with room.`);
    }
}
const CAUSES = {
    ENOSPC: 'out of space',
    EDQUOT: 'over the disk quota',
    EROFS: 'read-only filesystem',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EMFILE: 'too many open files',
    ENFILE: 'too many open files on this machine',
};
const FIXES = {
    'out of space': 'free space there, or point the input at a folder with room',
    'over the disk quota': 'free space within the quota, or point the input at another folder',
    'read-only filesystem': 'point the input at a writable folder',
    'permission denied': 'make the folder writable by the runner, or point the input elsewhere',
    'too many open files': 'raise the open-file limit (ulimit -n) and run again',
    'too many open files on this machine': 'close other programs, or raise fs.file-max',
};
/**
 * What a failed write means, in words, from any layer's error: a Node errno, SQLite's
 * "database or disk is full" / SQLITE_FULL, PostgreSQL's "could not extend file" / "No space
 * left on device". Null when the error is not about writing.
 */
function writeFailureCause(err) {
    const e = err;
    if (e?.code && CAUSES[e.code])
        return CAUSES[e.code];
    const text = `${e?.code ?? ''} ${e?.message ?? String(err)}`;
    if (/SQLITE_FULL|database or disk is full|could not extend file|No space left on device/i.test(text))
        return 'out of space';
    if (/SQLITE_READONLY|attempt to write a readonly database|Read-only file system/i.test(text))
        return 'read-only filesystem';
    if (/Disk quota exceeded/i.test(text))
        return 'over the disk quota';
    if (/SQLITE_CANTOPEN|unable to open database file/i.test(text) && /EACCES|permission/i.test(text))
        return 'permission denied';
    return null;
}
/**
 * A failed write as one line naming the input, the path and the cause in words, with what it
 * means (`consequence`, e.g. "no backup was written"); any other error as it was.
 */
async function asWriteFailure(err, input, target, consequence) {
    // Already one line naming an input (a check of this tool's own): leave it, unless it carries
    // a tool's own report of a full disk (pg_restore's "could not extend file").
    if (err instanceof errors/* UserError */.y &&
        !/could not extend file|No space left on device/i.test(err.message))
        return err;
    // SQLite says only "unable to open database file", and some layers ENOENT: ask the folder.
    const cause = writeFailureCause(err) ??
        (/unable to open database file|ENOENT|SQLITE_CANTOPEN/.test(String(err?.message ?? err))
            ? await whyNotWritable(target)
            : null);
    if (!cause)
        return err;
    const space = cause === 'out of space' ? await spaceAt(target) : null;
    return new errors/* UserError */.y(`${input}: cannot write in ${target}: ${cause}${space ? ` (${formatBytes(space.free)} free)` : ''}; ${consequence}. Fix: ${FIXES[cause]}.`);
}
/** What a drill or restore writes in scratch-dir: the decoded backup, and SQLite's restored copy. */
function scratchNeed(manifest, scratchDir, restoredThere) {
    const plain = manifest.backup.plain?.bytes ?? manifest.backup.bytes;
    const encoded = (manifest.backup.encryption ?? 'none') !== 'none' ||
        (manifest.backup.compression ?? 'none') !== 'none';
    // A decoded backup restored there is moved into place (SQLite), not copied: one file.
    // At most one plaintext copy either way.
    let what = restoredThere ? 'the restored copy' : null;
    if (encoded)
        what = restoredThere ? 'the decoded backup, restored in place' : 'the decoded backup';
    return {
        input: 'scratch-dir',
        dir: scratchDir,
        bytes: what ? plain : 0,
        what: what ? `${what} (${formatBytes(plain)})` : '',
    };
}
/** Why a folder cannot be written (read-only filesystem, permission), or null when it can. */
async function whyNotWritable(dir) {
    try {
        await promises_.access(dir, promises_.constants.W_OK);
        return null;
    }
    catch (err) {
        return CAUSES[err.code ?? ''] ?? null;
    }
}
/** What a SQLite database takes on disk now: its file and its WAL (0 for what is not there). */
async function sqliteBytes(file) {
    const size = async (f) => (await promises_.stat(f).catch(() => null))?.size ?? 0;
    return (await size(file)) + (await size(`${file}-wal`));
}

// EXTERNAL MODULE: ./lib/util/scratch.js
var util_scratch = __webpack_require__(71474);
;// CONCATENATED MODULE: ./lib/util/time.js
function stopwatch() {
    const t0 = performance.now();
    return {
        ms: () => Math.round(performance.now() - t0),
        seconds: () => (performance.now() - t0) / 1000,
    };
}

// EXTERNAL MODULE: ./lib/codec/index.js + 7 modules
var lib_codec = __webpack_require__(41708);
// EXTERNAL MODULE: ./lib/options/context.js
var context = __webpack_require__(26269);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(77598);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
// EXTERNAL MODULE: ./lib/util/fs.js
var fs = __webpack_require__(27685);
;// CONCATENATED MODULE: ./lib/github/catalog.js
/**
 * A small backup catalog carried from run to run in the Actions cache (`@actions/cache`): one entry
 * per backup (sizes, duration, tier). The summary turns it into a trend of database size and backup
 * time. The catalog is an optional extra: outside Actions, or when the cache service fails, loading
 * gives [] and saving does nothing, with a warning at most.
 */





/** Loaded only in a workflow run that uses the catalog: it is a large share of the bundle. */
const cacheClient = () => Promise.all(/* import() */[__webpack_require__.e(752), __webpack_require__.e(942), __webpack_require__.e(780), __webpack_require__.e(838), __webpack_require__.e(548), __webpack_require__.e(91)]).then(__webpack_require__.bind(__webpack_require__, 18091));
const CATALOG_FILE = 'catalog.json';
const CATALOG_MAX_ENTRIES = 400;
/**
 * The file handed to @actions/cache. Its path is part of the cache `version` (a hash of the paths),
 * and the archive restores to the path it was saved from, so it must not depend on `dir`: a fixed
 * file under RUNNER_TEMP, per key, copied to and from `dir`.
 */
function stagingFile(key, runner) {
    const base = runner.temp;
    const id = external_node_crypto_.createHash('sha256').update(key).digest('hex').slice(0, 12);
    return external_node_path_.join(base, `omniai-backups-catalog-${id}`, CATALOG_FILE);
}
/**
 * Runs an @actions/cache call; the catalog is optional, so nothing it does fails the job. The
 * library reports its own failures with core.warning (core.error for a 5xx from the cache service)
 * and returns normally: those lines reach the runner as the library writes them, after a line of
 * ours saying what was being tried, so its "Failed to restore: ..." reads in context. Capturing
 * them instead would mean replacing process.stdout.write while the library runs: @actions/core
 * has no hook for its workflow commands and @actions/cache no option to report otherwise. What it
 * throws (a key it refuses, a module that does not load) is one warning of ours.
 */
async function withCacheWarnings(log, what, fn) {
    log.info(`backup catalog: trying to ${what} ${what.startsWith('restore') ? 'from' : 'in'} the Actions cache`);
    try {
        return await fn();
    }
    catch (err) {
        log.warning(`backup catalog: could not ${what} (${err instanceof Error ? err.message : String(err)})`);
        return undefined;
    }
}
function parseEntries(text) {
    const data = JSON.parse(text);
    const list = Array.isArray(data) ? data : data.entries;
    if (!Array.isArray(list))
        return [];
    return list.filter((e) => typeof e === 'object' &&
        e !== null &&
        typeof e.at === 'string' &&
        typeof e.engine === 'string' &&
        Number.isFinite(e.databaseBytes) &&
        Number.isFinite(e.backupBytes) &&
        Number.isFinite(e.backupSeconds));
}
/**
 * Restore the newest catalog whose cache key starts with `${key}-` into `dir` (as catalog.json) and
 * return its entries; [] when there is none, outside Actions, or when the cache service fails.
 */
async function loadCatalog(dir, key, log, runner = (0,context/* readRunnerContext */.g)()) {
    if (!runner.actionsServices)
        return [];
    const staged = stagingFile(key, runner);
    external_node_fs_.rmSync(staged, { force: true });
    (0,fs/* makeDirsSync */.Iv)(external_node_path_.dirname(staged));
    // The primary key matches nothing (keys are saved as `${key}-<ms>`), so the restore key's prefix
    // match picks the newest entry.
    const matched = await withCacheWarnings(log, 'restore it', async () => (await cacheClient()).restoreCache([staged], `${key}-restore-${Date.now()}`, [`${key}-`]));
    if (!matched || !external_node_fs_.existsSync(staged))
        return [];
    try {
        const text = external_node_fs_.readFileSync(staged, 'utf8');
        const entries = parseEntries(text);
        (0,fs/* makeDirsSync */.Iv)(dir);
        external_node_fs_.writeFileSync(external_node_path_.join(dir, CATALOG_FILE), text);
        log.info(`backup catalog: ${entries.length} entries from cache ${matched}`);
        return entries;
    }
    catch (err) {
        log.warning(`backup catalog: cache ${matched} is unreadable (${err instanceof Error ? err.message : String(err)})`);
        return [];
    }
}
/**
 * Keep the last 400 entries, write `dir`/catalog.json and save it to the cache under
 * `${key}-${Date.now()}` (cache entries are immutable per key). Failures only warn.
 */
async function saveCatalog(dir, key, entries, log, runner = (0,context/* readRunnerContext */.g)()) {
    const kept = entries.slice(-CATALOG_MAX_ENTRIES);
    const text = `${JSON.stringify(kept, null, 2)}\n`;
    try {
        (0,fs/* makeDirsSync */.Iv)(dir);
        external_node_fs_.writeFileSync(external_node_path_.join(dir, CATALOG_FILE), text);
    }
    catch (err) {
        log.warning(`backup catalog: could not write it (${err instanceof Error ? err.message : String(err)})`);
        return;
    }
    if (!runner.actionsServices)
        return;
    const staged = stagingFile(key, runner);
    (0,fs/* makeDirsSync */.Iv)(external_node_path_.dirname(staged));
    external_node_fs_.writeFileSync(staged, text);
    const id = await withCacheWarnings(log, 'save it', async () => (await cacheClient()).saveCache([staged], `${key}-${Date.now()}`));
    if (id !== undefined && id >= 0)
        log.info(`backup catalog: saved ${kept.length} entries`);
}
// ------------------------------------------------------------------------------------ trend
const MIB = 1024 * 1024;
const SPARKS = '▁▂▃▄▅▆▇█';
function mib(bytes) {
    return `${(bytes / MIB).toFixed(1)} MiB`;
}
function signed(n, digits) {
    const s = n.toFixed(digits);
    return n > 0 || (n === 0 && !s.startsWith('-')) ? `+${s}` : s;
}
function median(values) {
    if (values.length === 0)
        return NaN;
    const s = [...values].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
function sparkline(values) {
    if (values.length === 0)
        return '';
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    return values
        .map((v) => hi === lo ? SPARKS[0] : SPARKS[Math.round(((v - lo) / (hi - lo)) * (SPARKS.length - 1))])
        .join('');
}
/**
 * Change of the database size over the last `n` entries: the newest entry against the one `n`
 * entries before it (or the oldest, when there are fewer).
 */
function change(entries, n) {
    const last = entries[entries.length - 1];
    const base = entries[Math.max(0, entries.length - 1 - n)];
    const span = entries.length - 1 - Math.max(0, entries.length - 1 - n);
    const delta = last.databaseBytes - base.databaseBytes;
    const pct = base.databaseBytes > 0 ? `${signed((delta / base.databaseBytes) * 100, 1)}%` : 'n/a';
    return `${pct} (${signed(delta / MIB, 1)} MiB) over the last ${span} runs`;
}
/**
 * Markdown: the last 10 runs, a one-line trend (database size change over the last 7 and 30
 * entries; median backup seconds of the last 30 entries against the 30 before them) and a sparkline
 * of the database size. Entries are taken in the order given (oldest first).
 */
function renderTrend(entries) {
    if (entries.length === 0)
        return '_No backup catalog yet: the trend starts with the next run._\n';
    const rows = entries
        .slice(-10)
        .map((e) => `| ${e.at.slice(0, 10)} | ${mib(e.databaseBytes)} | ${mib(e.backupBytes)} | ${e.backupSeconds.toFixed(1)} |`);
    const recent = entries.slice(-30).map((e) => e.backupSeconds);
    const earlier = entries.slice(-60, -30).map((e) => e.backupSeconds);
    const seconds = earlier.length > 0
        ? `median backup ${median(recent).toFixed(1)} s now vs ${median(earlier).toFixed(1)} s 30 runs ago`
        : `median backup ${median(recent).toFixed(1)} s`;
    const trend = entries.length > 1
        ? `Database size ${change(entries, 7)}, ${change(entries, 30)}; ${seconds}.`
        : `First run in the catalog; ${seconds}.`;
    return [
        '| Date | Database size | Backup size | Backup seconds |',
        '| --- | ---: | ---: | ---: |',
        ...rows,
        '',
        trend,
        '',
        `Database size: ${sparkline(entries.slice(-30).map((e) => e.databaseBytes))}`,
        '',
    ].join('\n');
}

// EXTERNAL MODULE: ./lib/util/cleanup.js
var cleanup = __webpack_require__(16100);
// EXTERNAL MODULE: ./lib/options/inputs.js
var inputs = __webpack_require__(91241);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(48161);
// EXTERNAL MODULE: external "node:worker_threads"
var external_node_worker_threads_ = __webpack_require__(75919);
// EXTERNAL MODULE: ./lib/checks/digest.js
var digest = __webpack_require__(73821);
// EXTERNAL MODULE: ./lib/checks/audit.js
var audit = __webpack_require__(97622);
// EXTERNAL MODULE: ./lib/util/log.js
var util_log = __webpack_require__(25574);
// EXTERNAL MODULE: ./lib/engines/engine.js
var engine = __webpack_require__(38041);
// EXTERNAL MODULE: ./lib/engines/related.js
var engines_related = __webpack_require__(37796);
// EXTERNAL MODULE: ./lib/engines/sqlite/driver.js
var sqlite_driver = __webpack_require__(30884);
;// CONCATENATED MODULE: ./lib/engines/sqlite/audit-worker.js
/**
 * The audit log's rows read and encoded on a worker thread, while this thread hashes them: a
 * two-stage pipeline for the audit digest of a SQLite file that nothing writes while it is read
 * (a backup's snapshot; never the live database, whose rows this thread reads inside its own
 * read transaction).
 *
 * On one thread a row cost 1.8 µs here (1M audit rows: 1.78-1.84 s): about half reading it out of
 * SQLite and encoding it (encodeRow), half its own sha256 and the chunk's sums. The worker takes
 * the first half, with Node's built-in SQLite (no native module to locate from inside a bundle,
 * as the check workers), and hands over the encoded lines in batches: the digest is the same,
 * byte for byte, as the rows read here would give (the same encodeRow, as source text).
 *
 * At most BATCHES_AHEAD batches wait for this thread, so memory stays flat whatever the table's
 * size. A worker that cannot start, or fails on the way (out of memory, say), leaves the rows
 * it has not sent to this thread: the file does not change, so the rows after the last key taken
 * are the rest of the same reading.
 */


/**
 * Characters of text per batch, about (a batch ends on a whole row). Measured on 1M audit rows
 * (110 MB of lines), the digest alone, 3 runs each: 256 Ki 1.16-1.30 s and 168-252 MB peak RSS
 * (batches that big outlive the young generation), 64 Ki 1.11-1.17 s and 99 MB, 32 Ki 1.05-1.08
 * s and 99 MB, 16 Ki 1.06-1.07 s and 98 MB; on this thread alone, 1.78-1.84 s and 76 MB.
 */
const BATCH_CHARS = 32 << 10;
/** Batches the worker may be ahead of this thread. */
const BATCHES_AHEAD = 4;
/**
 * Rows from which the worker is worth its start-up (60 to 90 ms), its 20 MiB and a third busy
 * thread beside the check and hash workers: below, this thread reads them. Measured, a SQLite
 * backup at 1 GiB on 2 cores: with 1M audit rows 2.15-2.24 s against 2.47-2.60 s (bench, the
 * same rounds); with 256k, 1.33-1.40 s against 1.27-1.69 s (4 pairs by hand), no gain. The
 * table's rowid span stands for its row count (max - min + 1, read from the b-tree's ends).
 */
const AUDIT_WORKER_FROM_ROWS = 500_000;
const AUDIT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { DatabaseSync } = require('node:sqlite')
${digest/* ENCODE_ROW_SOURCE */.yo}
const encode = ${digest/* ENCODE_ROW_NAME */.Mi}
const { file, select, rowid, at, page, batchChars, credits } = workerData
const ahead = new Int32Array(credits)
let db
try {
  db = new DatabaseSync(file, { readOnly: true, readBigInts: true })
  db.exec('BEGIN')
  const first = db.prepare(select + ' ORDER BY ' + rowid + ' LIMIT ' + page)
  const next = db.prepare(select + ' WHERE ' + rowid + ' > ? ORDER BY ' + rowid + ' LIMIT ' + page)
  first.setReturnArrays(true)
  next.setReturnArrays(true)
  let keys = []
  let text = ''
  const send = () => {
    // One batch more in flight: wait while this thread has BATCHES_AHEAD to take already.
    while (Atomics.sub(ahead, 0, 1) <= 0) {
      Atomics.add(ahead, 0, 1)
      Atomics.wait(ahead, 0, 0)
    }
    parentPort.postMessage({ keys, text })
    keys = []
    text = ''
  }
  for (let rows = first.all(); rows.length > 0; ) {
    for (const row of rows) {
      const key = row[at]
      keys.push(key instanceof Uint8Array ? Buffer.from(key).toString('hex') : String(key))
      text += encode(row)
      if (text.length >= batchChars) send()
    }
    if (rows.length < page) break
    rows = next.all(rows[rows.length - 1][at])
  }
  if (keys.length > 0) send()
  db.exec('COMMIT')
  parentPort.postMessage({ done: true })
} catch (err) {
  parentPort.postMessage({ error: String(err && err.message || err) })
} finally {
  try { db && db.close() } catch {}
}
`;
/** Workers started and not yet ended: for the tests, which check that none is left behind. */
let running = 0;
const runningAuditWorkers = () => running;
/**
 * The rows of `job`, encoded on a worker, in key order. The worker starts at the first read, so
 * an iteration never begun leaves nothing running; ending one early ends the worker. When the
 * worker cannot start or fails, `fallback(after, why)` gives the rest of the rows read here:
 * those after the key `after`, the last one taken from the worker (null: all of them). Without
 * a fallback, that failure is the iteration's.
 */
async function* encodedInWorker(job, fallback) {
    const credits = new SharedArrayBuffer(4);
    const ahead = new Int32Array(credits);
    ahead[0] = BATCHES_AHEAD;
    const queue = [];
    let wake = null;
    let failure = null;
    let worker = null;
    // The key of the last row taken by the caller.
    let after = null;
    try {
        worker = new external_node_worker_threads_.Worker(AUDIT_WORKER, {
            eval: true,
            workerData: { ...job, batchChars: BATCH_CHARS, credits },
            execArgv: ['--no-warnings'],
        });
        running++;
        worker.on('message', (m) => {
            queue.push(m);
            wake?.();
        });
        worker.once('error', (err) => {
            failure ??= err;
            wake?.();
        });
        worker.once('exit', (code) => {
            running--;
            failure ??= new Error(`the audit-log worker stopped (exit ${code})`);
            wake?.();
        });
        for (;;) {
            const m = queue.shift();
            if (!m) {
                if (failure)
                    throw failure;
                await new Promise((resolve) => (wake = resolve));
                wake = null;
                continue;
            }
            if ('done' in m)
                return;
            if ('error' in m)
                throw new Error(`audit-log worker: ${m.error}`);
            // Room for one more batch on the worker's side.
            Atomics.add(ahead, 0, 1);
            Atomics.notify(ahead, 0);
            after = m.keys[m.keys.length - 1] ?? after;
            yield m;
        }
    }
    catch (err) {
        if (!fallback)
            throw err;
        // The rest of the rows are read here instead (a worker that cannot start or load SQLite, or
        // ran out of memory on the way), and an error of the file's own comes again from there.
        // A worker that reported an error may still be running: it ends before the rows are read.
        void worker?.terminate();
        worker = null;
        yield* fallback(after, err);
    }
    finally {
        void worker?.terminate();
    }
}

;// CONCATENATED MODULE: ./lib/engines/sqlite/engine.js


















/**
 * A copy that is this process's own and private from its first byte. The kernel copies
 * (fs.copyFile: copy_file_range, or a reflink where the file system shares extents), as `cp`
 * does, with no pass of the data through this process. fs.copyFile gives the new file the
 * source's mode (a 0644 database would give a world-readable snapshot while it is written) and,
 * as root, its owner, so it is written inside a folder only this process may enter (0700,
 * named as temporary files are), made this process's and 0600 there, and only then moved to `dest`.
 */
async function copyPrivate(source, dest, ownCleanup = true) {
    const dir = (0,fs/* tempName */.u8)(external_node_path_.dirname(dest), external_node_path_.basename(dest));
    await promises_.mkdir(dir, { mode: 0o700 });
    // Unless `dest` is in a folder that is removed on interrupt as a whole (the drill's scratch).
    const forget = ownCleanup ? (0,cleanup/* removeOnInterrupt */.vY)(dir, 'partial copy') : () => undefined;
    try {
        const tmp = external_node_path_.join(dir, 'copy');
        await promises_.copyFile(source, tmp, external_node_fs_.constants.COPYFILE_EXCL);
        // Run as root, the copy also took the source's owner: give it back to this process.
        const [uid, gid] = [process.getuid?.(), process.getgid?.()];
        if (uid !== undefined && gid !== undefined)
            await promises_.chown(tmp, uid, gid);
        await promises_.chmod(tmp, 0o600);
        // Never over an existing file, also where the file system has no hard links.
        await (0,fs/* moveNoClobber */.uV)(tmp, dest);
    }
    finally {
        await promises_.rm(dir, { recursive: true, force: true });
        forget();
    }
}
const HEADER = Buffer.from('SQLite format 3\0', 'latin1');
const EMPTY_SCHEMA = { tables: [], indexes: [], triggers: [], views: [] };
/** Fails with a one-line error naming `input` unless `file` is a readable SQLite database. */
async function assertSqliteFile(file, input, fix) {
    let stat;
    try {
        stat = await promises_.stat(file);
    }
    catch (err) {
        const code = err.code;
        if (code === 'ENOENT')
            throw new errors/* UserError */.y(`${input}: ${file} does not exist. ${fix}`);
        throw new errors/* UserError */.y(`${input}: cannot read ${file} (${code}). ${fix}`);
    }
    if (stat.isDirectory()) {
        throw new errors/* UserError */.y(`${input}: ${file} is a directory, not a SQLite database file. ${fix}`);
    }
    if (stat.size === 0)
        throw new errors/* UserError */.y(`${input}: ${file} is empty (0 bytes). ${fix}`);
    let header;
    try {
        const handle = await promises_.open(file, 'r');
        try {
            header = Buffer.alloc(HEADER.length);
            await handle.read(header, 0, HEADER.length, 0);
        }
        finally {
            await handle.close();
        }
    }
    catch (err) {
        throw new errors/* UserError */.y(`${input}: cannot read ${file} (${err.code}). ${fix}`);
    }
    if (!header.equals(HEADER)) {
        throw new errors/* UserError */.y(`${input}: ${file} is not a SQLite database (it does not start with "SQLite format 3"). ${fix}`);
    }
}
/** Processes (other than this one) with the database or its -wal/-shm open, from /proc. */
async function processesWithOpen(file) {
    const real = await promises_.realpath(file);
    const targets = new Set([real, `${real}-wal`, `${real}-shm`, `${real}-journal`]);
    let pids;
    try {
        pids = (await promises_.readdir('/proc')).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
    }
    catch {
        return [];
    }
    const users = [];
    for (const pid of pids) {
        let fds;
        try {
            fds = await promises_.readdir(`/proc/${pid}/fd`);
        }
        catch {
            continue;
        }
        for (const fd of fds) {
            const link = await promises_.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
            if (targets.has(link)) {
                const comm = (await promises_.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
                users.push(`pid ${pid} (${comm})`);
                break;
            }
        }
    }
    return users;
}
/** Foreign-key violations (child table, parent table, rows) summed per table pair, in a stable order. */
function countViolations(pairs) {
    const counts = new Map();
    for (const [table, parent, rows = 1] of pairs) {
        if (rows === 0)
            continue;
        const id = JSON.stringify([String(table), String(parent)]);
        const v = counts.get(id);
        if (v)
            v.rows += rows;
        else
            counts.set(id, { table: String(table), parent: String(parent), rows });
    }
    return [...counts.values()].sort((a, b) => a.table.localeCompare(b.table) || a.parent.localeCompare(b.parent));
}
// Node's built-in SQLite in worker threads: no native module to locate from inside a bundle.
// integrity_check and the foreign-key check run there (checkWorkerJobs: in one worker or two),
// alongside the inventory on this thread. Only table names and counts cross back.
//
// The foreign-key check counts violations per foreign key with an anti-join, which reads the
// child's index on the key column instead of every row of the child table (messages is nearly
// the whole file: 0.25 s instead of 2.2 s at 1 GiB). It gives PRAGMA foreign_key_check's
// answer only where the lookup is the same one: a single-column key whose parent column is the
// rowid or has a unique BINARY index, with the same affinity on both sides (so no conversion
// makes '5' and 5 meet in one and not the other). Every other child table runs the pragma.
//
// A worker is started before the file it checks is written (see CheckWorkers): it loads, then
// waits for the file's name, so its start-up overlaps the copy.
const CHECK_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { DatabaseSync } = require('node:sqlite')
let db
const q = (name) => '"' + String(name).replace(/"/g, '""') + '"'
const all = (sql) => db.prepare(sql).all()
function affinity(type) {
  const t = String(type ?? '').toUpperCase()
  if (t.includes('INT')) return 'integer'
  if (/CHAR|CLOB|TEXT/.test(t)) return 'text'
  if (t === '' || t.includes('BLOB')) return 'blob'
  if (/REAL|FLOA|DOUB/.test(t)) return 'real'
  return 'numeric'
}
function columnsOf(table) {
  return new Map(all('PRAGMA table_info(' + q(table) + ')').map((c) => [c.name, c]))
}
/** The anti-join for one foreign key, or null when only the pragma gives its exact answer. */
function antiJoin(child, fk, childCols) {
  const parentCols = columnsOf(fk.table)
  if (parentCols.size === 0) return null
  const pk = [...parentCols.values()].filter((c) => c.pk > 0)
  const to = fk.to ?? (pk.length === 1 ? pk[0].name : null)
  const from = childCols.get(fk.from)
  const target = to === null ? null : parentCols.get(to)
  if (!from || !target || affinity(from.type) !== affinity(target.type)) return null
  const rowid = pk.length === 1 && pk[0].name === to && affinity(target.type) === 'integer' &&
    /^INTEGER$/i.test(String(target.type).trim())
  const unique = all('PRAGMA index_list(' + q(fk.table) + ')').some((ix) => {
    if (!ix.unique || ix.partial) return false
    const cols = all('PRAGMA index_xinfo(' + q(ix.name) + ')').filter((c) => c.key)
    return cols.length === 1 && cols[0].name === to && String(cols[0].coll).toUpperCase() === 'BINARY'
  })
  if (!rowid && !unique) return null
  return 'SELECT count(*) AS n FROM ' + q(child) + ' AS c WHERE c.' + q(fk.from) +
    ' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ' + q(fk.table) + ' AS p WHERE p.' + q(to) +
    ' = c.' + q(fk.from) + ')'
}
function foreignKeys() {
  const counts = []
  const tables = all("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
  for (const { name } of tables) {
    const fks = all('PRAGMA foreign_key_list(' + q(name) + ')')
    if (fks.length === 0) continue
    const perId = new Map()
    for (const fk of fks) perId.set(fk.id, (perId.get(fk.id) ?? 0) + 1)
    const childCols = columnsOf(name)
    const joins = fks.map((fk) => (perId.get(fk.id) === 1 ? antiJoin(name, fk, childCols) : null))
    if (joins.every((sql) => sql !== null)) {
      fks.forEach((fk, i) => counts.push([name, fk.table, Number(db.prepare(joins[i]).get().n)]))
    } else {
      for (const r of all('PRAGMA foreign_key_check(' + q(name) + ')')) counts.push([r.table, r.parent, 1])
    }
  }
  return counts
}
parentPort.once('message', (file) => {
  db = new DatabaseSync(file, { readOnly: true })
  let result
  try {
    result = workerData.jobs.map((job) => job === 'integrity'
      ? all('PRAGMA integrity_check').map((r) => String(Object.values(r)[0]))
      : foreignKeys())
  } finally {
    db.close()
  }
  parentPort.postMessage(result)
})
`;
/** One check worker, started ahead: run() hands it the file; stop() ends it if never run. */
class CheckWorker {
    worker;
    done;
    started = false;
    constructor(jobs) {
        this.worker = new external_node_worker_threads_.Worker(CHECK_WORKER, {
            eval: true,
            workerData: { jobs },
            execArgv: ['--no-warnings'],
        });
        // Idle, it keeps nothing waiting: the process may end without ever using it.
        this.worker.unref();
        this.done = new Promise((resolve, reject) => {
            this.worker.once('message', (result) => {
                resolve(result);
                void this.worker.terminate();
            });
            this.worker.once('error', reject);
            this.worker.once('exit', (code) => reject(new Error(`${jobs.join(' and ')} worker exit ${code}`)));
        });
        this.done.catch(() => undefined);
    }
    run(file) {
        if (this.started)
            throw new Error('a check worker runs once');
        this.started = true;
        this.worker.ref();
        this.worker.postMessage(file);
        return this.done;
    }
    stop() {
        if (!this.started)
            void this.worker.terminate();
    }
}
/**
 * The jobs of each check worker. With 4 cores or more, integrity_check and the foreign-key check
 * run in a worker each. With fewer, a snapshot's checks run in one worker, in turn: they run
 * beside this thread's inventory and the hash worker, which keep two cores busy, and a second
 * check worker only added its start-up and its memory. Measured at 1 GiB on 2 cores, 3
 * alternating runs each, one worker against two: backup 2.07-2.13 s against 2.11-2.20 s;
 * again on 2026-11-30, 2 runs each: 2.42-2.46 s and 137 MiB against 2.43-2.50 s and 150 MiB.
 *
 * A restored copy's checks (`restored`: the drill's and the restore check's) are what the job
 * waits for once the copy is made, so they run in a worker each from 2 cores. Measured on
 * 2026-11-30 at 1 GiB on 2 cores, 8 pairs of runs, one worker against two: drill 2.52-3.32 s
 * (median 2.80) against 2.24-2.66 s (2.56), two faster in 8 pairs of 8; backup with
 * restore-check 3.91-4.65 s (4.34) against 4.10-4.73 s (4.23), two faster in 5 of 8. Peak RSS
 * 127-129 against 138 MiB (drill), 152-153 against 161 MiB (restore-check).
 * OMNIAI_CHECK_WORKERS=1 or 2 chooses (tests run both).
 */
function checkWorkerJobs(cores = external_node_os_.availableParallelism(), restored = false) {
    const chosen = process.env.OMNIAI_CHECK_WORKERS;
    const split = chosen === '2' || (chosen !== '1' && cores >= (restored ? 2 : 4));
    return split ? [['integrity'], ['foreign-keys']] : [['integrity', 'foreign-keys']];
}
/**
 * Check workers, or null where none can be started (integrityProblems then checks in-thread).
 * `restored`: for a restored copy (see checkWorkerJobs).
 */
function startCheckWorkers(restored = false) {
    try {
        return new CheckWorkers(restored);
    }
    catch {
        return null;
    }
}
/** The integrity_check and foreign-key work, started before the file it will check exists. */
class CheckWorkers {
    workers;
    constructor(restored) {
        this.workers = [];
        try {
            for (const jobs of checkWorkerJobs(undefined, restored)) {
                this.workers.push(new CheckWorker(jobs));
            }
        }
        catch (err) {
            // One that cannot start: those already started end too (integrityProblems then starts
            // workers of its own, or checks in-thread).
            this.stop();
            throw err;
        }
    }
    async run(file) {
        const [integrity, fk] = (await Promise.all(this.workers.map((w) => w.run(file)))).flat();
        return { damage: integrity.filter((l) => l !== 'ok'), foreignKeys: countViolations(fk) };
    }
    stop() {
        for (const worker of this.workers)
            worker.stop();
    }
}
/**
 * Copies a database file while the caller's read transaction on it is open, the way Litestream
 * snapshots: the whole file, and in WAL mode the WAL beside it, with the kernel's file copy
 * instead of one backup step per page. Returns what it did, or null where only the backup API
 * can copy (journal_mode MEMORY or OFF).
 *
 * Why the copy is one committed state, in WAL mode (see wal.c): the open read transaction holds
 * a read lock on slot K of the wal-index.
 * - K > 0 (the snapshot uses WAL frames 1..M): no writer may restart the WAL (that needs every
 *   slot 1..N), so frames 1..M stay in place; a checkpoint may write only pages of frames <= M
 *   into the main file meanwhile, and replaying the copied WAL overwrites every such page,
 *   torn or not. Frames after M that writers append are kept only up to the last commit whose
 *   checksum chain is whole, as after a crash: the copy is that commit's state, a later one.
 * - K = 0 (every frame was already in the main file): no checkpoint may run (it needs slot 0),
 *   so the main file is the snapshot, but a writer may restart the WAL while it is read. A
 *   restart changes the WAL header's salts; if the header read after the copy differs from the
 *   copied one, the copied WAL is dropped and the main file alone is the snapshot.
 * In rollback-journal modes the read transaction's SHARED lock keeps every writer out of the
 * main file until it ends.
 */
async function copyUnderReadLock(source, dest, journalMode, log) {
    const mode = journalMode.toLowerCase();
    if (!['wal', 'delete', 'truncate', 'persist'].includes(mode))
        return null;
    const t0 = performance.now();
    await copyPrivate(source, dest);
    const ms = () => `${Math.round(performance.now() - t0)} ms`;
    if (mode !== 'wal')
        return `file copy under a shared lock (${ms()})`;
    const wal = `${source}-wal`;
    const copied = await copyPrivate(wal, `${dest}-wal`).then(() => true, (err) => {
        if (err.code === 'ENOENT')
            return false;
        throw err;
    });
    if (!copied)
        return `file copy, no WAL file (${ms()})`;
    const [before, after] = await Promise.all([walHeader(`${dest}-wal`), walHeader(wal)]);
    const bytes = (await promises_.stat(`${dest}-wal`)).size;
    if (!before.equals(after)) {
        await promises_.rm(`${dest}-wal`, { force: true });
        log.info('snapshot: the WAL restarted while it was copied; the main file alone is the snapshot');
        return `file copy, WAL restarted during the copy so not used (${ms()})`;
    }
    return `file copy and its WAL (${bytes} bytes) replayed to the last whole commit (${ms()})`;
}
/** The 32-byte WAL header (magic, page size, checkpoint sequence, salts, checksum), or empty. */
async function walHeader(file) {
    const handle = await promises_.open(file, 'r').catch(() => null);
    if (!handle)
        return Buffer.alloc(0);
    try {
        const buf = Buffer.alloc(32);
        const { bytesRead } = await handle.read(buf, 0, 32, 0);
        return buf.subarray(0, bytesRead);
    }
    finally {
        await handle.close();
    }
}
async function logDriver(log) {
    const driver = await (0,sqlite_driver/* sqliteDriver */.t)();
    if (driver.fallback) {
        log.warning(`no better-sqlite3 prebuild loads on ${process.platform}-${process.arch}; using Node's built-in node:sqlite instead (same results, slower).`);
    }
    else
        log.info(`SQLite driver: ${driver.name}`);
}
/**
 * Rows per page where audit rows are read in rowid order (SqliteDatabase.pagedByRowid). Measured
 * on 256k audit rows, a drill's digest pass: 721-723 ms, against 802-844 ms row by row; pages of
 * 1000 took 637-640 ms but added 20 MiB of peak RSS (pages that outlive the young generation).
 */
const ROWID_PAGE = 256;
/** The names SQLite gives the rowid, unless a column has the name. */
const ROWID_NAMES = new Set(['rowid', '_rowid_', 'oid']);
class SqliteEngine {
    source;
    name = 'sqlite';
    extension = '.db';
    constructor(source) {
        this.source = source;
    }
    async checkSource() {
        await assertSqliteFile(this.source, inputs/* Inputs */.G0.ConnectionString, 'Fix: set connection-string to the path of the OmniAI SQLite database (e.g. omniai.db).');
    }
    async openSource() {
        await this.checkSource();
        return new SqliteDatabase(this.source, await (0,sqlite_driver/* openSqlite */.L)(this.source, { readonly: true }));
    }
    async snapshot(dest, log, inspect, written, copyFindings, durable = true) {
        await this.checkSource();
        await logDriver(log);
        // Started now, they load while the file is copied (unless a copy's checks stand for them).
        const workers = copyFindings ? null : startCheckWorkers();
        try {
            return await this.snapshotWith(workers, dest, log, inspect, written, copyFindings, durable);
        }
        finally {
            workers?.stop();
        }
    }
    async snapshotWith(workers, dest, log, inspect, written, copyFindings, durable) {
        const src = await (0,sqlite_driver/* openSqlite */.L)(this.source, { readonly: true });
        let journalMode;
        let engineVersion;
        let method;
        try {
            // A writer in rollback-journal mode holds its lock briefly; wait for it rather than fail.
            src.exec('PRAGMA busy_timeout = 30000');
            journalMode = String(src.objects('PRAGMA journal_mode')[0]?.journal_mode ?? 'unknown');
            engineVersion = String(src.rows('SELECT sqlite_version()')[0][0]);
            // One read transaction pins one snapshot: the copy is consistent while other processes
            // keep writing (WAL readers do not block them).
            src.exec('BEGIN');
            try {
                src.rows('SELECT count(*) FROM sqlite_schema');
                method = await copyUnderReadLock(this.source, dest, journalMode, log);
                if (!method)
                    await src.backup(dest, (0,util_log/* progressLogger */.St)(log, 'snapshot'));
            }
            finally {
                src.exec('COMMIT');
            }
        }
        finally {
            src.close();
        }
        // A backup is one self-contained file: out of WAL mode, reading it never creates or
        // needs -wal and -shm files beside it. Opening a copied WAL replays its committed frames
        // (SQLite's own recovery), and leaving WAL mode checkpoints them into the file.
        const out = await (0,sqlite_driver/* openSqlite */.L)(dest, { readonly: false });
        try {
            // No fsync of its own: the whole file is fsynced below, after this (when it is the backup).
            out.exec('PRAGMA synchronous = OFF');
            out.exec('PRAGMA journal_mode = DELETE');
        }
        finally {
            out.close();
        }
        await promises_.rm(`${dest}-wal`, { force: true });
        await promises_.rm(`${dest}-shm`, { force: true });
        log.info(`snapshot: ${method ?? 'online backup API, page by page'}`);
        written?.();
        // The file is final: its writes go to disk while the checks read it from the page cache.
        // (The caller's own fsync afterwards then finds little or nothing left to write.) A failed
        // fsync is not swallowed here: a later one may not report it again. A plaintext snapshot
        // that the caller encodes into the backup is not the backup, and is not fsynced at all.
        const syncing = durable ? (0,fs/* fsyncFile */.o7)(dest) : Promise.resolve();
        syncing.catch(() => undefined);
        const { size } = await promises_.stat(this.source);
        const db = await this.openBackup(dest, workers, log);
        try {
            // The checks run on another thread while this one takes the inventory: on a kernel copy
            // of these same bytes that is checked anyway (the restore check's), or else on this file.
            let where = '';
            const checking = (copyFindings?.().catch(() => null) ?? Promise.resolve(null))
                .then((found) => {
                // Damage found in the copy may be the copy's own (a failing scratch disk): this file
                // is then read too, so that only damage of its own is ever called the source's.
                if (!found || found.damage.length)
                    return db.integrityProblems();
                where = " (on the restore check's byte-for-byte copy of this file)";
                return found;
            })
                .catch((err) => ({
                damage: [`integrity_check could not run: ${(0,errors/* describeError */.U)(err)}`],
                foreignKeys: [],
            }));
            let inventory = null;
            let unreadable = null;
            try {
                inventory = await inspect(db);
            }
            catch (err) {
                unreadable = err;
            }
            const findings = await checking;
            await syncing;
            // An inventory that fails on a sound file is this tool's problem, not the data's.
            if (!inventory && findings.damage.length === 0)
                throw unreadable;
            return {
                engineVersion,
                source: { bytes: size, journalMode, description: external_node_path_.basename(this.source) },
                verified: (0,checks_checks/* describeFindings */.kA)(findings) + where,
                // A damaged copy records what could be read of it; it is never chosen by default.
                inventory: {
                    ...(inventory ?? {
                        schema: await db.schema().catch(() => EMPTY_SCHEMA),
                        rowCounts: {},
                        audit: null,
                        conversations: null,
                    }),
                    foreignKeyViolations: findings.foreignKeys,
                },
                damage: findings.damage,
                ...(where ? { findingsOnCopy: true } : {}),
            };
        }
        finally {
            await db.close();
        }
    }
    async verifyBackup(backup) {
        let db;
        try {
            db = await this.openBackup(backup.path);
        }
        catch (err) {
            return {
                checks: [
                    { name: 'integrity', ok: false, detail: `cannot be opened: ${(0,errors/* describeError */.U)(err)}` },
                ],
                database: null,
            };
        }
        try {
            return await (0,inspect/* checkDatabase */.MG)(db, backup.manifest);
        }
        finally {
            await db.close();
        }
    }
    /** Opens a backup file read-only, for inspection (with check workers already started). */
    async openBackup(file, workers = null, log = null) {
        await assertSqliteFile(file, inputs/* Inputs */.G0.BackupFile, 'Fix: point backup-file at a backup written by mode backup, or leave it empty to use the newest.');
        try {
            return new SqliteDatabase(file, await (0,sqlite_driver/* openSqlite */.L)(file, { readonly: true }), workers, true, log);
        }
        catch (err) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: cannot open ${file} as SQLite: ${err.message}`);
        }
    }
    liveName() {
        return external_node_path_.basename(this.source);
    }
    async liveExists() {
        return promises_.stat(this.source).then(() => true, () => false);
    }
    async liveUsers() {
        if (!(await this.liveExists()))
            return [];
        const users = await processesWithOpen(this.source);
        if (users.length)
            return users;
        // Where /proc cannot be read (macOS, Windows), a connection in a transaction still shows:
        // an exclusive lock cannot be had without waiting.
        const db = await (0,sqlite_driver/* openSqlite */.L)(this.source, { readonly: false });
        try {
            db.exec('PRAGMA busy_timeout = 0');
            db.exec('BEGIN EXCLUSIVE');
            db.exec('ROLLBACK');
            return [];
        }
        catch (err) {
            // A file too damaged to lock is not in use by anyone: the restore is what it needs.
            if (!/locked|busy/i.test((0,errors/* describeError */.U)(err)))
                return [];
            return ['another connection holds a lock on it'];
        }
        finally {
            db.close();
        }
    }
    async liveSessions(now) {
        if (!(await this.liveExists()))
            return null;
        const db = await (0,sqlite_driver/* openSqlite */.L)(this.source, { readonly: true });
        try {
            const tables = new Set(db.rows("SELECT name FROM sqlite_schema WHERE type = 'table'").map((r) => String(r[0])));
            const table = engine/* SESSION_TABLES */.h.find((t) => tables.has(t));
            if (!table)
                return null;
            const columns = db
                .objects(`PRAGMA table_info(${(0,engines_related/* quoteIdent */.v4)(table)})`)
                .map((c) => String(c.name));
            const column = engine/* SESSION_EXPIRY_COLUMNS */.D.find((c) => columns.includes(c));
            if (!column)
                return null;
            const e = (0,engines_related/* quoteIdent */.v4)(column);
            // SQLAlchemy stores naive UTC text ('2026-11-29 18:00:00.123456'); others store epoch
            // seconds or milliseconds.
            const active = db.rows(`SELECT count(*) FROM ${(0,engines_related/* quoteIdent */.v4)(table)} WHERE CASE
           WHEN typeof(${e}) IN ('integer', 'real') THEN
             (CASE WHEN ${e} > 100000000000 THEN ${e} / 1000.0 ELSE ${e} END) > ?
           ELSE julianday(${e}) > julianday(?) END`, now.getTime() / 1000, now.toISOString())[0][0];
            return { table, active: Number(active) };
        }
        finally {
            db.close();
        }
    }
    async replaceLive(backup, log) {
        await logDriver(log);
        const target = external_node_path_.resolve(this.source);
        const dir = external_node_path_.dirname(target);
        const tmp = (0,fs/* tempName */.u8)(dir, external_node_path_.basename(target));
        const forget = (0,cleanup/* removeOnInterrupt */.vY)(tmp, 'partial restore');
        // The backup API writes it under a rollback journal, there while the copy is under way.
        const forgetJournal = (0,cleanup/* removeOnInterrupt */.vY)(`${tmp}-journal`, 'partial restore');
        // The restored file takes the live one's owner and mode: the backend often runs as another
        // user (omniai, 0640) and could not open a new file, which is this process's and 0600.
        const live = await promises_.stat(target).catch(() => null);
        try {
            const src = await (0,sqlite_driver/* openSqlite */.L)(backup.path, { readonly: true });
            try {
                await src.backup(tmp, (0,util_log/* progressLogger */.St)(log, 'restore'));
            }
            finally {
                src.close();
            }
            const out = await (0,sqlite_driver/* openSqlite */.L)(tmp, { readonly: false });
            try {
                const problems = out.rows('PRAGMA integrity_check').map((r) => String(r[0]));
                if (problems.join() !== 'ok')
                    throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: the restored copy fails integrity_check (${problems.slice(0, 3).join('; ')}); the live database was not touched.`);
                // Back to the journal mode the live database had (OmniAI runs in WAL mode).
                const mode = backup.manifest.source.journalMode;
                if (mode && /^(wal|delete|truncate|persist)$/i.test(mode))
                    out.exec(`PRAGMA journal_mode = ${mode}`);
            }
            finally {
                out.close();
            }
            if (live) {
                await (0,fs/* takeOwnership */.px)(tmp, live).catch((err) => {
                    if (err.code !== 'EPERM')
                        throw err;
                    throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ConnectionString}: ${target} belongs to uid ${live.uid} (group ${live.gid}), and this process (uid ${process.getuid?.()}) cannot give the restored file that owner, so the backend could no longer open it; the live database was not touched. Fix: run the restore as root (sudo) or as the file's owner.`);
                });
            }
            await (0,fs/* fsyncFile */.o7)(tmp);
            // A -wal left beside the old file would be replayed onto the restored one: its frames
            // belong to the old database. The safety backup already holds what they contained.
            await promises_.rm(`${target}-wal`, { force: true });
            await promises_.rm(`${target}-shm`, { force: true });
            await promises_.rm(`${target}-journal`, { force: true });
            await promises_.rename(tmp, target);
            await (0,fs/* fsyncDir */.t_)(dir);
        }
        catch (err) {
            await promises_.rm(tmp, { force: true });
            await promises_.rm(`${tmp}-journal`, { force: true });
            throw err;
        }
        finally {
            forget();
            forgetJournal();
        }
        return new SqliteDatabase(target, await (0,sqlite_driver/* openSqlite */.L)(target, { readonly: false }));
    }
    async restore({ path: file, decoded }, scratchDir, log) {
        // A decoded backup in this scratch folder is already a private copy: it is moved, not copied.
        const take = decoded === true && external_node_path_.dirname(external_node_path_.resolve(file)) === external_node_path_.resolve(scratchDir);
        return this.restoreFile(file, scratchDir, log, take);
    }
    async restoreFile(file, scratchDir, log, take = false) {
        await logDriver(log);
        const restored = external_node_path_.join(scratchDir, 'restored.db');
        // The runbook's `sqlite3 restored.db ".restore backup.db"`. A backup is one file in
        // rollback-journal mode that nothing else writes, so a file copy (in the kernel) gives the
        // same database as the backup API's page-by-page copy, several times faster; the checks
        // that follow read the restored copy, not the backup.
        const t0 = performance.now();
        // The checks' workers load while the file is copied. (scratchDir is the caller's folder of
        // its own, removed on interrupt as a whole.)
        const workers = startCheckWorkers(true);
        try {
            if (take)
                await promises_.rename(file, restored);
            else
                await copyPrivate(file, restored, false);
            const ms = Math.round(performance.now() - t0);
            log.info(`restore: ${take ? 'the decoded plaintext moved into place' : 'file copy'} (${ms} ms)`);
            const db = new SqliteDatabase(restored, await (0,sqlite_driver/* openSqlite */.L)(restored, { readonly: false }), workers, 
            // Not on a worker: a restored copy is checked against its manifest, whose chunks spare
            // this thread the sums, so the worker only added a fourth busy thread on 2 cores (1M
            // audit rows, drill 1.90 s against 1.86 s in the same bench rounds).
            false);
            // The copy is final: its integrity checks need nothing else, so they start now.
            db.startIntegrity();
            return db;
        }
        catch (err) {
            workers?.stop();
            throw err;
        }
    }
}
class SqliteDatabase {
    file;
    db;
    workers;
    fixed;
    log;
    foreignKeysCache;
    integrity = null;
    /**
     * `workers`: check workers already started for this file (else integrityProblems starts them).
     * `fixed`: nothing writes the file while it is open here (a snapshot, a backup), so another
     * connection reads the same rows: a large audit log's are then read and encoded on a worker
     * thread (audit-worker.ts).
     */
    constructor(file, db, workers = null, fixed = false, 
    /** Where a worker's failure is told (the rows are then read here: slower, not wrong). */
    log = null) {
        this.file = file;
        this.db = db;
        this.workers = workers;
        this.fixed = fixed;
        this.log = log;
    }
    async bytes() {
        return (await promises_.stat(this.file)).size;
    }
    async close() {
        this.workers?.stop();
        // Checks started ahead finish first: their folder may be removed once this returns.
        await this.integrity?.catch(() => undefined);
        this.db.close();
    }
    /**
     * `sqlite:///` then the absolute path, as SQLAlchemy and dj-database-url read it: four slashes
     * before a POSIX path (`sqlite:////tmp/x/restored.db`), `sqlite:///C:\\...` on Windows. With the
     * path's own slash dropped, they would open a relative path: a new, empty database.
     */
    url() {
        return `sqlite:///${external_node_path_.resolve(this.file)}`;
    }
    /**
     * integrity_check and foreign_key_check, on a second connection in a worker thread where it
     * can be had: they read the whole file, and meanwhile this thread computes the digests.
     */
    async integrityProblems() {
        return this.integrity ?? this.checkIntegrity();
    }
    /** Starts integrityProblems' work now; the next call to it returns this result. */
    startIntegrity() {
        this.integrity = this.checkIntegrity();
        this.integrity.catch(() => undefined);
    }
    async checkIntegrity() {
        const workers = this.workers ?? startCheckWorkers();
        this.workers = null;
        const found = workers ? await workers.run(this.file).catch(() => null) : null;
        if (found)
            return found;
        // A connection of its own: this one may be in the middle of reading rows (digestAudit lets
        // the event loop run between them).
        const db = await (0,sqlite_driver/* openSqlite */.L)(this.file, { readonly: true });
        try {
            return {
                damage: db
                    .rows('PRAGMA integrity_check')
                    .map((r) => String(r[0]))
                    .filter((line) => line !== 'ok'),
                foreignKeys: countViolations(db.objects('PRAGMA foreign_key_check').map((r) => [r.table, r.parent])),
            };
        }
        finally {
            db.close();
        }
    }
    tableNames() {
        return this.db
            .rows("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .map((r) => String(r[0]));
    }
    async schema() {
        const tables = [];
        const indexes = [];
        const sqlOf = new Map(this.db
            .rows("SELECT name, sql FROM sqlite_schema WHERE type = 'index'")
            .map((r) => [String(r[0]), r[1] === null ? null : String(r[1])]));
        for (const name of this.tableNames()) {
            tables.push({ name, columns: this.columns(name) });
            for (const ix of this.db.objects(`PRAGMA index_list(${(0,engines_related/* quoteIdent */.v4)(name)})`)) {
                const ixName = String(ix.name);
                const columns = this.db
                    .objects(`PRAGMA index_info(${(0,engines_related/* quoteIdent */.v4)(ixName)})`)
                    .sort((a, b) => Number(a.seqno) - Number(b.seqno))
                    .map((c) => (c.name === null ? '<expression>' : String(c.name)));
                indexes.push({
                    name: ixName,
                    table: name,
                    unique: Number(ix.unique) === 1,
                    columns,
                    sql: sqlOf.get(ixName) ?? null,
                });
            }
        }
        indexes.sort((a, b) => a.name.localeCompare(b.name));
        const objects = (type) => this.db
            .rows(`SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = ? ORDER BY name`, type)
            .map((r) => ({ name: String(r[0]), table: String(r[1]), sql: String(r[2]) }));
        return { tables, indexes, triggers: objects('trigger'), views: objects('view') };
    }
    columns(table) {
        return this.db.objects(`PRAGMA table_info(${(0,engines_related/* quoteIdent */.v4)(table)})`).map((c) => ({
            name: String(c.name),
            type: String(c.type),
            notNull: Number(c.notnull) === 1,
            default: c.dflt_value === null ? null : String(c.dflt_value),
            pk: Number(c.pk),
        }));
    }
    /** The columns that identify a row: the primary key, or SQLite's rowid when there is none. */
    keyColumns(table) {
        const pk = this.columns(table)
            .filter((c) => c.pk > 0)
            .sort((a, b) => a.pk - b.pk)
            .map((c) => c.name);
        return pk.length > 0 ? pk : ['rowid'];
    }
    orderBy(table) {
        return this.keyColumns(table).map(engines_related/* quoteIdent */.v4).join(', ');
    }
    async rowCounts(tables) {
        const counts = {};
        for (const t of tables) {
            counts[t] = Number(this.db.rows(`SELECT count(*) FROM ${(0,engines_related/* quoteIdent */.v4)(t)}`)[0][0]);
        }
        return counts;
    }
    foreignKeys() {
        if (this.foreignKeysCache)
            return this.foreignKeysCache;
        const keys = [];
        for (const child of this.tableNames()) {
            const rows = this.db.objects(`PRAGMA foreign_key_list(${(0,engines_related/* quoteIdent */.v4)(child)})`);
            // Composite foreign keys (several rows with one id) are not followed.
            const perId = new Map();
            for (const r of rows)
                perId.set(Number(r.id), (perId.get(Number(r.id)) ?? 0) + 1);
            for (const r of rows) {
                if (perId.get(Number(r.id)) !== 1)
                    continue;
                const parent = String(r.table);
                const to = r.to === null ? this.keyColumns(parent)[0] : String(r.to);
                keys.push({ child, from: String(r.from), parent, to });
            }
        }
        return (this.foreignKeysCache = keys);
    }
    dialect = {
        table: engines_related/* quoteIdent */.v4,
        orderBy: (table) => this.orderBy(table),
        param: '?',
    };
    conversationKey(table) {
        const key = this.keyColumns(table);
        return key.length === 1 ? key[0] : 'rowid';
    }
    async recentConversations(table, count) {
        const key = this.conversationKey(table);
        const names = this.columns(table).map((c) => c.name);
        const recency = engines_related/* RECENCY_COLUMNS */.Mu.find((c) => names.includes(c)) ?? key;
        const ids = this.db
            .rows(`SELECT ${(0,engines_related/* quoteIdent */.v4)(key)} FROM ${(0,engines_related/* quoteIdent */.v4)(table)} ORDER BY ${(0,engines_related/* quoteIdent */.v4)(recency)} DESC, ${(0,engines_related/* quoteIdent */.v4)(key)} DESC LIMIT ?`, BigInt(count))
            .map((r) => (0,digest/* keyText */.Pu)(r[0]));
        return { ...(await this.conversations(table, ids)), orderBy: recency };
    }
    async conversations(table, ids) {
        const key = this.conversationKey(table);
        const related = (0,engines_related/* relatedQueries */.qe)(table, key, this.foreignKeys(), this.dialect);
        const rowSql = `SELECT * FROM ${(0,engines_related/* quoteIdent */.v4)(table)} WHERE ${(0,engines_related/* quoteIdent */.v4)(key)} = ?`;
        const items = ids.map((id) => {
            const rows = this.db.rows(rowSql, id);
            return {
                id,
                sha256: rows.length === 0 ? 'missing' : (0,engines_related/* hashRows */.MP)(rows).sha256,
                related: related.map((q) => ({
                    table: q.table,
                    via: q.via,
                    ...(0,engines_related/* hashRows */.MP)(this.db.iterate(q.sql, id)),
                })),
            };
        });
        return { table, key, orderBy: key, items };
    }
    /**
     * The columns of `SELECT *` in order: table_info's and the generated ones (which table_info
     * leaves out), not a virtual table's hidden ones (which SELECT * leaves out).
     */
    selectStar(table) {
        return this.db
            .objects('SELECT name FROM pragma_table_xinfo(?) WHERE hidden <> 1 ORDER BY cid', table)
            .map((c) => String(c.name));
    }
    auditRows(table) {
        const key = this.keyColumns(table);
        const rowid = key[0] === 'rowid';
        // Where a generated column comes before the key, table_info's places are one off. Old
        // manifests of such a table hold the wrong column's values as keys: their whole-table
        // sha256 and row count, which decide the check, are the same either way.
        const names = rowid ? ['rowid'] : this.selectStar(table);
        const at = key.map((k) => names.indexOf(k));
        const select = `SELECT ${rowid ? 'rowid, *' : '*'} FROM ${(0,engines_related/* quoteIdent */.v4)(table)}`;
        const [only] = at;
        if (key.length === 1 && this.pagesByRowid(table, rowid)) {
            const job = {
                file: this.file,
                select,
                rowid: (0,engines_related/* quoteIdent */.v4)(key[0]),
                at: only,
                page: ROWID_PAGE,
            };
            const here = (after = null) => this.pagedByRowid(select, job.rowid, job.at, after);
            // Chosen by OMNIAI_AUDIT_WORKER=1, a worker that fails is an error, not a fallback: the
            // tests see it fail.
            const forced = process.env.OMNIAI_AUDIT_WORKER === '1';
            const onWorker = this.fixed && this.auditWorkerWorth(table, job.rowid);
            // A worker that failed is not a failure of the backup: its rows are read here, the same
            // digest, only slower; the log says so, so that a worker that always fails is seen.
            const fallback = (after, why) => {
                this.log?.warning(`audit-table ${table}: the audit log's reading thread stopped (${(0,errors/* describeError */.U)(why)}); ${after === null ? 'its rows are' : 'the rest of its rows are'} read on the main thread instead, which is slower.`);
                return inBatches(here(resumeKey(after)));
            };
            return {
                key,
                rows: onWorker ? encodedInWorker(job, forced ? null : fallback) : here(),
            };
        }
        const rows = this.db.iterate(`${select} ORDER BY ${this.orderBy(table)}`);
        return {
            key,
            rows: (function* () {
                if (at.length === 1)
                    for (const row of rows)
                        yield { key: (0,digest/* keyText */.Pu)(row[only]), row };
                else
                    for (const row of rows)
                        yield { key: at.map((i) => (0,digest/* keyText */.Pu)(row[i])).join(','), row };
            })(),
        };
    }
    /**
     * Whether the rows of a table with a one-column key can be read in rowid order a page at a
     * time, with the rows and order of ORDER BY that key: the key is the rowid (`noPrimaryKey`)
     * or a column that stands for it (no index was made for the primary key, as one is for any
     * other, and for every key of a WITHOUT ROWID table). Not where a column is named rowid,
     * _rowid_ or oid (the name is then that column's, which may repeat or be null), nor where a
     * column is hidden or generated (SELECT * then holds columns that table_info does not list,
     * so the key's place in a row is not known).
     */
    pagesByRowid(table, noPrimaryKey) {
        // An ordinary table: a virtual one's rowids need not be unique or stable between statements.
        const kind = this.db.objects('SELECT type, wr FROM pragma_table_list(?)', table);
        if (kind.length !== 1 || kind[0].type !== 'table' || Number(kind[0].wr) !== 0)
            return false;
        const columns = this.db.objects('SELECT name, hidden FROM pragma_table_xinfo(?)', table);
        const plain = columns.every((c) => Number(c.hidden) === 0 && !ROWID_NAMES.has(String(c.name).toLowerCase()));
        if (!plain)
            return false;
        if (noPrimaryKey)
            return true;
        return (this.db.rows("SELECT 1 FROM pragma_index_list(?) WHERE origin = 'pk'", table).length === 0);
    }
    /**
     * Whether the audit rows are many enough for a worker (AUDIT_WORKER_FROM_ROWS): the span of
     * the rowids, from the ends of the table's b-tree. OMNIAI_AUDIT_WORKER=1 or 0 decides instead
     * (the tests run both ways).
     */
    auditWorkerWorth(table, rowid) {
        const chosen = process.env.OMNIAI_AUDIT_WORKER;
        if (chosen === '1' || chosen === '0')
            return chosen === '1';
        // Each end by a subquery of its own: SQLite reads a lone min() or max() from the b-tree's
        // end, but max() - min() in one query by scanning the whole table.
        const t = (0,engines_related/* quoteIdent */.v4)(table);
        const [span] = this.db.rows(`SELECT (SELECT max(${rowid}) FROM ${t}) - (SELECT min(${rowid}) FROM ${t})`);
        return Number(span?.[0] ?? 0) + 1 >= AUDIT_WORKER_FROM_ROWS;
    }
    /**
     * The rows of `select` in rowid order, a page at a time, each page after the last rowid of the
     * one before, all in one read transaction (a savepoint, which nests in one the caller holds),
     * as one statement would read them. Rowids are unique integers, never null, so the pages hold
     * each row once, in the order of ORDER BY rowid. `after`: only the rows after that rowid.
     */
    *pagedByRowid(select, rowid, at, after = null) {
        // The savepoint begins the transaction unless the caller holds one.
        const outermost = !this.db.inTransaction();
        this.db.exec('SAVEPOINT omniai_audit_pages');
        let failed = false;
        try {
            // Prepared once, not again for each page: 2-3% of a digest pass.
            const next = this.db.prepared(`${select} WHERE ${rowid} > ? ORDER BY ${rowid} LIMIT ${ROWID_PAGE}`);
            let rows = after === null
                ? this.db.rows(`${select} ORDER BY ${rowid} LIMIT ${ROWID_PAGE}`)
                : next(after);
            while (rows.length > 0) {
                for (const row of rows)
                    yield { key: (0,digest/* keyText */.Pu)(row[at]), row };
                if (rows.length < ROWID_PAGE)
                    return;
                rows = next(rows[rows.length - 1][at]);
            }
        }
        catch (err) {
            failed = true;
            throw err;
        }
        finally {
            this.releasePages(failed, outermost);
        }
    }
    /**
     * Ends pagedByRowid's savepoint; after a failure, quietly (it may be rolled back already).
     * `outermost`: the savepoint began the transaction.
     */
    releasePages(failed, outermost) {
        try {
            this.db.exec('RELEASE omniai_audit_pages');
        }
        catch (err) {
            // Releasing the outermost savepoint commits, and after a read of a damaged page (this
            // one's, or another statement's in the same transaction) that fails too ("database disk
            // image is malformed"), leaving the transaction open: it is rolled back, so the connection
            // is not left inside it for what comes next.
            if (outermost && this.db.inTransaction()) {
                try {
                    this.db.exec('ROLLBACK');
                }
                catch {
                    // The release's or the reading's error is the one to see.
                }
            }
            // An I/O error may have rolled the savepoint back already: the reading's error is the one
            // to see.
            if (!failed)
                throw err;
        }
    }
}
/**
 * The rowid after which the audit worker's rows go on here: the key text of its last row (a
 * rowid is an integer). Anything else is not a place to go on from: the reading fails.
 */
function resumeKey(after) {
    if (after === null)
        return null;
    if (!/^-?\d{1,19}$/.test(after))
        throw new Error(`audit-log worker: cannot go on after key ${after}`);
    return BigInt(after);
}
/**
 * Rows read here, in batches of YIELD_ROWS with a turn of the event loop between them (as
 * digestAudit reads a synchronous source): the rows the audit worker did not send.
 */
async function* inBatches(rows) {
    let batch = [];
    for (const r of rows) {
        batch.push(r);
        if (batch.length === audit/* YIELD_ROWS */.Gx) {
            yield batch;
            batch = [];
            await new Promise(setImmediate);
        }
    }
    if (batch.length > 0)
        yield batch;
}

;// CONCATENATED MODULE: ./lib/engines/index.js

/**
 * The engine for `name`, given its own options. The PostgreSQL engine (and the
 * `pg` client) is loaded only when it is the one asked for: a SQLite run never pays for it.
 */
async function createEngine(name, options) {
    switch (name) {
        case 'sqlite':
            return new SqliteEngine(options.connectionString);
        case 'postgres': {
            const { PostgresEngine } = await __webpack_require__.e(/* import() */ 892).then(__webpack_require__.bind(__webpack_require__, 99892));
            return new PostgresEngine(options);
        }
    }
}

// EXTERNAL MODULE: ./lib/store/retention.js
var store_retention = __webpack_require__(231);
// EXTERNAL MODULE: ./lib/manifest/signature.js
var manifest_signature = __webpack_require__(18571);
;// CONCATENATED MODULE: ./lib/github/provenance.js
/**
 * Which backup artifacts count: only those the team's backup job made. Any workflow run in the
 * repository can upload an artifact named `artifact-name`, including a pull request from a fork
 * (whose workflow file is the pull request's own) or a branch someone pushed. An artifact counts
 * only when its workflow run
 *
 * - ran in this repository (its head repository is this one, not a fork),
 * - on the default branch,
 * - for an event a pull request cannot cause: `schedule`, `workflow_dispatch` or `push`,
 * - and, with `backup-workflow`, from that workflow file.
 *
 * The artifact's own `workflow_run` (head repository id, head branch) rules out most others
 * without a request; the rest is read from the run (`GET /repos/{owner}/{repo}/actions/runs/{id}`:
 * `event`, `head_branch`, `path`, `head_repository.full_name`).
 */



/** Events only people with write access can cause; a pull request causes none of them. */
const TRUSTED_EVENTS = ['schedule', 'workflow_dispatch', 'push'];
/**
 * This repository's id and default branch: from the runner (GITHUB_REPOSITORY_ID, the event
 * payload's `repository`) when it says, otherwise from `GET /repos/{owner}/{repo}`, which any
 * token of the repository may call. A scheduled run's payload has no `repository`.
 */
async function provenanceFor(repo, workflow, env, log) {
    let id = Number(env.repositoryId) || 0;
    let defaultBranch = '';
    if (env.eventPath) {
        try {
            const payload = JSON.parse(await promises_.readFile(env.eventPath, 'utf8'));
            id ||= Number(payload.repository?.id) || 0;
            defaultBranch = payload.repository?.default_branch ?? '';
        }
        catch {
            // No payload to read: ask the API.
        }
    }
    if (!id || !defaultBranch) {
        const { body } = await githubRequest(`${repo.apiUrl}/repos/${repo.owner}/${repo.repo}`, repo, log, (status, message) => `github-token: cannot read the repository ${repo.owner}/${repo.repo} (${status} ${message}). Fix: leave github-token at its default, or pass a token of this repository.`);
        const r = body;
        id ||= Number(r.id) || 0;
        defaultBranch ||= r.default_branch ?? '';
    }
    if (!id || !defaultBranch) {
        throw new Error(`GitHub did not say the id and default branch of ${repo.owner}/${repo.repo}`);
    }
    return { fullName: `${repo.owner}/${repo.repo}`, repositoryId: id, defaultBranch, workflow };
}
const provenance_same = (a, b) => (a ?? '').toLowerCase() === b.toLowerCase();
/**
 * Why the artifact's own record rules it out, or null when only its run can tell. Cheap: no
 * request, so a flood of pull-request artifacts costs nothing.
 */
function artifactRunRefusal(run, p) {
    if (!run?.id)
        return 'it belongs to no workflow run';
    if (run.head_repository_id !== undefined && run.head_repository_id !== p.repositoryId)
        return `its run ${run.id} ran another repository's code (head repository id ${run.head_repository_id}, a fork's pull request), not ${p.fullName}'s`;
    if (run.head_branch != null && run.head_branch !== p.defaultBranch)
        return `its run ${run.id} ran branch "${run.head_branch}", not the default branch "${p.defaultBranch}"`;
    return null;
}
/**
 * The workflow file a run's `path` names. GitHub documents `.github/workflows/build.yml@main`
 * and, for workflows of another repository, `octocat/octo-repo/.github/workflows/ci.yml@main`.
 */
function workflowOf(runPath) {
    const m = /^(?:([^/@]+\/[^/@]+)\/)?\.github\/workflows\/([^/@]+)(?:@.*)?$/.exec(runPath);
    return m ? { repo: m[1] ?? null, file: m[2] } : null;
}
/** Why the run rules its artifacts out, or null when it is one the backup job could be. */
function workflowRunRefusal(run, p) {
    const head = run.head_repository?.full_name;
    if (!provenance_same(head, p.fullName))
        return `its run ${run.id} ran ${head ?? 'an unknown repository'}'s code (a fork's pull request), not ${p.fullName}'s`;
    if (!TRUSTED_EVENTS.includes(run.event))
        return `its run ${run.id} was a ${run.event} run; only ${TRUSTED_EVENTS.join(', ')} runs of the default branch count, which a pull request cannot start`;
    if (run.head_branch !== p.defaultBranch)
        return `its run ${run.id} ran branch "${run.head_branch ?? '(none)'}", not the default branch "${p.defaultBranch}"`;
    if (p.workflow) {
        const w = workflowOf(run.path);
        if (!w || w.file !== p.workflow || (w.repo !== null && !provenance_same(w.repo, p.fullName)))
            return `its run ${run.id} was made by ${run.path || 'an unknown workflow'}, not by backup-workflow ${p.workflow}`;
    }
    return null;
}
/**
 * The run behind an artifact, or null when GitHub no longer has it (a deleted run). A token
 * without `actions: read` is an error naming the permission.
 */
async function readWorkflowRun(repo, runId, log) {
    let refused = 0;
    try {
        const { body } = await githubRequest(`${repo.apiUrl}/repos/${repo.owner}/${repo.repo}/actions/runs/${runId}?exclude_pull_requests=true`, repo, log, (status, message) => {
            refused = status;
            return `github-token: cannot read workflow run ${runId} of ${repo.owner}/${repo.repo} (${status} ${message}), which is how a backup artifact is traced to the backup job. Fix: give the job "permissions: actions: read".`;
        });
        return body;
    }
    catch (err) {
        if (err instanceof errors/* UserError */.y && (refused === 404 || refused === 410))
            return null;
        throw err;
    }
}

// EXTERNAL MODULE: external "node:stream"
var external_node_stream_ = __webpack_require__(57075);
// EXTERNAL MODULE: external "node:stream/promises"
var external_node_stream_promises_ = __webpack_require__(46466);
// EXTERNAL MODULE: external "node:zlib"
var external_node_zlib_ = __webpack_require__(38522);
;// CONCATENATED MODULE: ./lib/store/unzip.js
/**
 * Extracts a downloaded artifact zip into a folder, without trusting it. The archive may have been
 * made by anyone who could upload an artifact, so every entry is checked before a single byte is
 * written: its path must name a file inside the folder (no `..`, no absolute or drive path, no
 * backslash, no symbolic link), names must be unique (also ignoring case, for case-insensitive
 * file systems), and each file is written with O_EXCL into a folder this code just made. The
 * unzip library of @actions/artifact is not used, so what it does with such entries (unzip-stream
 * 0.3.4 rewrites `..` to `.`) does not matter here.
 *
 * Reads the central directory (zip64 included), streams each entry through inflate, and checks
 * its size and CRC-32 as it goes: an entry that inflates past its declared size is cut off.
 */







/** The archive cannot be extracted safely; nothing outside the folder was written. */
class UnsafeZipError extends Error {
}
const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_ENTRIES = 10_000;
const MAX_CENTRAL_DIRECTORY = 16 * 1024 * 1024;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
async function readAt(fh, position, length) {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    if (bytesRead !== length)
        throw new UnsafeZipError('the zip is truncated');
    return buf;
}
/** Why `name` may not be extracted into a folder, or null when it names a path inside it. */
function unsafeEntryName(name) {
    if (name === '')
        return 'an empty name';
    if (name.includes('\0'))
        return 'a NUL byte in the name';
    if (name.includes('\\'))
        return 'a backslash in the name';
    if (name.startsWith('/'))
        return 'an absolute path';
    if (/^[A-Za-z]:/.test(name))
        return 'a drive letter';
    const segments = name.replace(/\/$/, '').split('/');
    if (segments.some((s) => s === '..'))
        return 'a ".." segment (a path outside the folder)';
    if (segments.some((s) => s === '' || s === '.'))
        return 'an empty or "." segment';
    return null;
}
async function centralDirectory(fh, size) {
    const tailLength = Math.min(size, 22 + 0xffff);
    const tail = await readAt(fh, size - tailLength, tailLength);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
        if (tail.readUInt32LE(i) === EOCD) {
            at = i;
            break;
        }
    }
    if (at < 0)
        throw new UnsafeZipError('not a zip (no end of central directory record)');
    let count = tail.readUInt16LE(at + 10);
    let cdSize = tail.readUInt32LE(at + 12);
    let cdOffset = tail.readUInt32LE(at + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
        const locatorAt = size - tailLength + at - 20;
        if (locatorAt < 0)
            throw new UnsafeZipError('zip64 locator missing');
        const locator = await readAt(fh, locatorAt, 20);
        if (locator.readUInt32LE(0) !== ZIP64_LOCATOR)
            throw new UnsafeZipError('zip64 locator missing');
        const record = await readAt(fh, Number(locator.readBigUInt64LE(8)), 56);
        if (record.readUInt32LE(0) !== ZIP64_EOCD)
            throw new UnsafeZipError('zip64 record missing');
        count = Number(record.readBigUInt64LE(32));
        cdSize = Number(record.readBigUInt64LE(40));
        cdOffset = Number(record.readBigUInt64LE(48));
    }
    if (count > MAX_ENTRIES)
        throw new UnsafeZipError(`${count} entries (at most ${MAX_ENTRIES})`);
    if (cdSize > MAX_CENTRAL_DIRECTORY || cdOffset + cdSize > size)
        throw new UnsafeZipError('the central directory lies outside the file');
    return { count, cd: await readAt(fh, cdOffset, cdSize), cdOffset };
}
function unzip_parseEntries(cd, count) {
    const entries = [];
    let p = 0;
    for (let n = 0; n < count; n++) {
        if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL)
            throw new UnsafeZipError('a damaged central directory');
        const madeBy = cd.readUInt16LE(p + 4) >> 8;
        const flags = cd.readUInt16LE(p + 8);
        const method = cd.readUInt16LE(p + 10);
        const crc = cd.readUInt32LE(p + 16);
        let compressedSize = cd.readUInt32LE(p + 20);
        let size = cd.readUInt32LE(p + 24);
        const nameLength = cd.readUInt16LE(p + 28);
        const extraLength = cd.readUInt16LE(p + 30);
        const commentLength = cd.readUInt16LE(p + 32);
        const mode = cd.readUInt32LE(p + 38) >>> 16;
        let localOffset = cd.readUInt32LE(p + 42);
        const rawName = cd.subarray(p + 46, p + 46 + nameLength);
        const extra = cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
        p += 46 + nameLength + extraLength + commentLength;
        // Zip64: the sizes and offset that do not fit in 32 bits follow in this order.
        for (let e = 0; e + 4 <= extra.length;) {
            const id = extra.readUInt16LE(e);
            const length = extra.readUInt16LE(e + 2);
            if (id === 0x0001) {
                let q = e + 4;
                const next = () => {
                    if (q + 8 > e + 4 + length)
                        throw new UnsafeZipError('a damaged zip64 field');
                    const v = Number(extra.readBigUInt64LE(q));
                    q += 8;
                    return v;
                };
                if (size === 0xffffffff)
                    size = next();
                if (compressedSize === 0xffffffff)
                    compressedSize = next();
                if (localOffset === 0xffffffff)
                    localOffset = next();
            }
            e += 4 + length;
        }
        const name = rawName.toString('utf8');
        const why = unsafeEntryName(name);
        if (why)
            throw new UnsafeZipError(`entry ${JSON.stringify(name)} has ${why}`);
        // Unix hosts (3) keep the file type in the high bits: only files and folders are extracted.
        const type = madeBy === 3 ? mode & S_IFMT : 0;
        if (type !== 0 && type !== S_IFREG && type !== S_IFDIR)
            throw new UnsafeZipError(`entry ${JSON.stringify(name)} is a ${type === 0o120000 ? 'symbolic link' : 'special file'}`);
        if (flags & 0x1)
            throw new UnsafeZipError(`entry ${JSON.stringify(name)} is encrypted`);
        const directory = name.endsWith('/') || type === S_IFDIR;
        if (!directory && method !== 0 && method !== 8)
            throw new UnsafeZipError(`entry ${JSON.stringify(name)} uses compression method ${method}`);
        entries.push({
            name: name.replace(/\/$/, ''),
            rawName,
            directory,
            method,
            crc,
            compressedSize,
            size,
            localOffset,
            dataStart: 0,
        });
    }
    return entries;
}
/** Counts and checksums what passes through, and stops past the declared size. */
class Verify extends external_node_stream_.Transform {
    limit;
    name;
    bytes = 0;
    crc = 0;
    constructor(limit, name) {
        super();
        this.limit = limit;
        this.name = name;
    }
    _transform(chunk, _enc, done) {
        this.bytes += chunk.length;
        if (this.bytes > this.limit) {
            done(new UnsafeZipError(`entry ${JSON.stringify(this.name)} inflates past its stated size`));
            return;
        }
        this.crc = external_node_zlib_.crc32(chunk, this.crc);
        done(null, chunk);
    }
}
/**
 * Extracts every entry of `zipFile` into `dest`, a folder that must not exist yet. Throws
 * UnsafeZipError, having written nothing, when any entry would land outside `dest`.
 */
async function extractZip(zipFile, dest) {
    const fh = await promises_.open(zipFile, 'r');
    try {
        const { size } = await fh.stat();
        const { count, cd, cdOffset } = await centralDirectory(fh, size);
        const entries = unzip_parseEntries(cd, count);
        const root = external_node_path_.resolve(dest);
        const seen = new Set();
        for (const e of entries) {
            const target = external_node_path_.resolve(root, e.name);
            // Belt and braces: the name checks above already rule this out.
            if (!target.startsWith(root + external_node_path_.sep))
                throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} resolves outside the folder`);
            const key = e.name.toLowerCase();
            if (seen.has(key) && !e.directory)
                throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} appears twice`);
            seen.add(key);
            if (e.directory)
                continue;
            const local = await readAt(fh, e.localOffset, 30);
            if (local.readUInt32LE(0) !== LOCAL)
                throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} has no local header`);
            const nameLength = local.readUInt16LE(26);
            const localName = await readAt(fh, e.localOffset + 30, nameLength);
            // A local header naming another path than the directory is how zips fool one reader or
            // another: streaming readers go by the local header.
            if (!localName.equals(e.rawName))
                throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} has another name in its header`);
            e.dataStart = e.localOffset + 30 + nameLength + local.readUInt16LE(28);
            if (e.dataStart + e.compressedSize > cdOffset)
                throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} overlaps the central directory`);
        }
        // Only now, with every entry checked, is anything written.
        await promises_.mkdir(root, { mode: 0o700 });
        const written = [];
        for (const e of entries) {
            const target = external_node_path_.resolve(root, e.name);
            if (e.directory) {
                await (0,fs/* makeDirs */.X2)(target, 0o700);
                continue;
            }
            const start = e.dataStart;
            await (0,fs/* makeDirs */.X2)(external_node_path_.dirname(target), 0o700);
            const verify = new Verify(e.size, e.name);
            const streams = [
                e.compressedSize === 0
                    ? external_node_stream_.Readable.from([])
                    : external_node_fs_.createReadStream(zipFile, { start, end: start + e.compressedSize - 1 }),
            ];
            if (e.method === 8)
                streams.push(external_node_zlib_.createInflateRaw());
            streams.push(verify, external_node_fs_.createWriteStream(target, { flags: 'wx', mode: 0o600 }));
            await (0,external_node_stream_promises_.pipeline)(streams);
            if (verify.bytes !== e.size || verify.crc >>> 0 !== e.crc >>> 0)
                throw new UnsafeZipError(`entry ${JSON.stringify(e.name)} is damaged (size or CRC)`);
            written.push(target);
        }
        return written;
    }
    finally {
        await fh.close();
    }
}

;// CONCATENATED MODULE: ./lib/store/artifacts.js
/**
 * Backups kept as GitHub artifacts: the nightly job uploads the backup and its manifest with a
 * retention period from its tier, so GitHub enforces the retention policy on stored artifacts;
 * the drill, usually another workflow, finds the newest unexpired artifact of that name that the
 * backup job made (provenance.ts: this repository, the default branch, no pull request) through
 * the REST API, downloads the zip as it is, and extracts it itself (unzip.ts), refusing any entry
 * that would land outside the folder. The drill's checksum check then proves the download
 * against the manifest before anything is restored.
 */









/** Loaded only when an artifact is uploaded or downloaded: it is a large share of the bundle. */
async function artifactClient() {
    const { DefaultArtifactClient } = await Promise.all(/* import() */[__webpack_require__.e(752), __webpack_require__.e(942), __webpack_require__.e(780), __webpack_require__.e(838), __webpack_require__.e(548), __webpack_require__.e(351), __webpack_require__.e(735), __webpack_require__.e(518)]).then(__webpack_require__.bind(__webpack_require__, 56518));
    return new DefaultArtifactClient();
}
/**
 * Whether GITHUB_SERVER_URL is GitHub Enterprise Server: any host but github.com, GHE.com's
 * `*.ghe.com` and `*.localhost`, the rule @actions/artifact applies (`isGhes`) before it refuses.
 */
function isEnterpriseServer(serverUrl) {
    let host;
    try {
        host = new URL(serverUrl).hostname.toLowerCase();
    }
    catch {
        return false;
    }
    return host !== 'github.com' && !host.endsWith('.ghe.com') && !host.endsWith('.localhost');
}
/** The settings from the runner's environment; a missing piece names the input that supplies it. */
function artifactSettings(name, token, runner) {
    if (!token) {
        throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.GithubToken}: empty. Fix: leave github-token at its default ($\{{ github.token }}) or pass a token with actions: read (and write, to upload).`);
    }
    if (!runner.repository) {
        throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.UploadArtifact} / download-artifact: GITHUB_REPOSITORY is not set, so this is not a GitHub Actions run. Fix: use backup-dir for local backups outside Actions.`);
    }
    const server = runner.serverUrl;
    if (isEnterpriseServer(server)) {
        throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.UploadArtifact} / download-artifact: ${server} is GitHub Enterprise Server, where GitHub's artifact service that this action uses (the one of upload-artifact@v4 and download-artifact@v4) is not supported. Fix: keep the backups in backup-dir (a folder on a self-hosted runner) or in an S3-compatible bucket (storage: s3://bucket/prefix), and remove upload-artifact / download-artifact.`);
    }
    return {
        name,
        token,
        ...runner.repository,
        apiUrl: runner.apiUrl,
        ...(runner.repositoryId ? { repositoryId: runner.repositoryId } : {}),
        ...(runner.eventPath ? { eventPath: runner.eventPath } : {}),
    };
}
/** The files of a backup (a file, or a pg_dump directory's files), its manifest and signature. */
async function backupFiles(entry) {
    const stat = await promises_.stat(entry.path);
    const files = stat.isDirectory()
        ? (await promises_.readdir(entry.path)).sort().map((f) => external_node_path_.join(entry.path, f))
        : [entry.path];
    const signature = (0,manifest_signature/* signaturePathFor */.x0)(entry.manifestPath);
    const signed = await promises_.access(signature).then(() => true, () => false);
    return [...files, entry.manifestPath, ...(signed ? [signature] : [])];
}
async function uploadBackup(entry, retentionDays, settings, log) {
    const client = await artifactClient();
    const files = await backupFiles(entry);
    log.info(`uploading ${files.length} file(s) as artifact "${settings.name}", kept ${retentionDays} days`);
    const result = await client.uploadArtifact(settings.name, files, external_node_path_.dirname(entry.path), {
        retentionDays,
    });
    if (result.id === undefined)
        throw new Error(`artifact upload of ${entry.path} returned no id`);
    return { id: result.id, size: result.size ?? 0 };
}
const artifacts_PER_PAGE = 100;
/** A repository rarely holds more; past this the list is cut rather than exhaust the rate limit. */
const artifacts_MAX_PAGES = 20;
const cannotList = (settings) => (status, message) => `${inputs/* Inputs */.G0.GithubToken}: cannot list the artifacts of ${settings.owner}/${settings.repo} (${status} ${message}). Fix: give the job "permissions: actions: read".`;
/** Every artifact of `settings.name` in the repository, expired ones included. */
async function listArtifacts(settings, log) {
    const all = [];
    let url = `${settings.apiUrl}/repos/${settings.owner}/${settings.repo}/actions/artifacts?name=${encodeURIComponent(settings.name)}&per_page=${artifacts_PER_PAGE}`;
    for (let page = 0; url && page < artifacts_MAX_PAGES; page++) {
        const { body, next } = await githubRequest(url, settings, log, cannotList(settings));
        const artifacts = body.artifacts ?? [];
        all.push(...artifacts.filter((a) => a.name === settings.name));
        url = artifacts.length === 0 ? null : next;
    }
    return all;
}
/** One artifact, by id. */
async function getArtifact(settings, id, log) {
    const { body } = await githubRequest(`${settings.apiUrl}/repos/${settings.owner}/${settings.repo}/actions/artifacts/${id}`, settings, log, (status, message) => status === 404
        ? `${inputs/* Inputs */.G0.ArtifactId}: no artifact ${id} in ${settings.owner}/${settings.repo} (404 ${message}). Fix: copy the id from the backup run's summary ("Artifact ${settings.name} (id N)"); a deleted artifact cannot be used.`
        : cannotList(settings)(status, message));
    return body;
}
/** At most this many workflow runs are read while looking for one the backup job made. */
const artifacts_MAX_RUN_LOOKUPS = 50;
const describeArtifact = (a) => `artifact "${a.name}" id ${a.id} (created ${a.created_at})`;
/** Why an artifact does not count, or null when the backup job made it. */
async function refusal(a, provenance, runs, settings, log) {
    const cheap = artifactRunRefusal(a.workflow_run, provenance);
    if (cheap)
        return cheap;
    const runId = a.workflow_run.id;
    if (!runs.has(runId))
        runs.set(runId, await readWorkflowRun(settings, runId, log));
    const run = runs.get(runId);
    return run
        ? workflowRunRefusal(run, provenance)
        : `its run ${runId} no longer exists, so nothing shows who made it`;
}
/**
 * Downloads a backup artifact the backup job made, and extracts it into a new folder under
 * `dest`: the artifact `artifactId` names, or else the newest unexpired one of `settings.name`
 * whose workflow run passes the provenance rules (each one passed over is logged, with why).
 */
async function downloadBackup(settings, dest, log, options) {
    const provenance = await provenanceFor(settings, options.workflow, settings, log);
    const where = `${settings.owner}/${settings.repo}`;
    const rule = `a ${['schedule', 'workflow_dispatch', 'push'].join(', ')} run of ${where}'s default branch "${provenance.defaultBranch}"${provenance.workflow ? ` from backup-workflow ${provenance.workflow}` : ''}`;
    const runs = new Map();
    const skipped = [];
    let chosen = null;
    if (options.artifactId !== null) {
        const a = await getArtifact(settings, options.artifactId, log);
        if (a.name !== settings.name) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ArtifactId}: artifact ${a.id} is named "${a.name}", not "${settings.name}" (artifact-name). Fix: give the id of a backup artifact, or set artifact-name to "${a.name}".`);
        }
        if (a.expired) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ArtifactId}: ${describeArtifact(a)} has expired. Fix: choose an unexpired backup artifact.`);
        }
        const why = await refusal(a, provenance, runs, settings, log);
        if (why) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ArtifactId}: ${describeArtifact(a)} was not made by the backup job: ${why}. Only ${rule} counts. Fix: choose the id of an artifact the backup workflow uploaded (its run's summary names it).`);
        }
        chosen = a;
    }
    else {
        const candidates = (await listArtifacts(settings, log))
            .filter((a) => !a.expired)
            .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id);
        if (!candidates.length) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ArtifactName}: no unexpired artifact named "${settings.name}" in ${where}. Fix: run the backup workflow with upload-artifact: true first, or set artifact-name to the name it uploads.`);
        }
        for (const a of candidates) {
            // A flood of artifacts from pull requests costs no requests (artifactRunRefusal); this
            // bounds the rest.
            if (runs.size >= artifacts_MAX_RUN_LOOKUPS)
                break;
            const why = await refusal(a, provenance, runs, settings, log);
            if (!why) {
                chosen = a;
                break;
            }
            skipped.push({ id: a.id, createdAt: a.created_at, reason: why });
            log.warning(`skipped ${describeArtifact(a)}: ${why}`);
        }
        if (!chosen) {
            const reasons = skipped
                .slice(0, 5)
                .map((s) => `id ${s.id}: ${s.reason}`)
                .join('; ');
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ArtifactName}: none of the ${candidates.length} unexpired artifacts named "${settings.name}" in ${where} was made by the backup job (${rule}): ${reasons}${skipped.length > 5 ? `; and ${skipped.length - 5} more` : ''}. Fix: run the backup workflow on "${provenance.defaultBranch}" (workflow_dispatch or its schedule)${provenance.workflow ? ', and check that backup-workflow names its file' : ''}.`);
        }
    }
    const runId = chosen.workflow_run.id;
    const input = options.artifactId !== null ? inputs/* Inputs */.G0.ArtifactId : inputs/* Inputs */.G0.ArtifactName;
    log.info(`downloading ${describeArtifact(chosen)}, ${chosen.size_in_bytes} bytes, from run ${runId} (${rule})`);
    const zipDir = external_node_path_.join(dest, 'zip');
    const dir = external_node_path_.join(dest, 'backup');
    await (0,fs/* makeDirs */.X2)(zipDir);
    // The zip is kept as it is and extracted here, so that every path in it is checked first.
    const client = await artifactClient();
    const { digestMismatch } = await client.downloadArtifact(chosen.id, {
        path: zipDir,
        skipDecompress: true,
        ...(chosen.digest ? { expectedHash: chosen.digest } : {}),
        findBy: {
            token: settings.token,
            workflowRunId: runId,
            repositoryOwner: settings.owner,
            repositoryName: settings.repo,
        },
    });
    if (digestMismatch) {
        throw new errors/* UserError */.y(`${input}: ${describeArtifact(chosen)} downloaded with another sha256 than GitHub recorded for it (${chosen.digest}), so it was not used. Fix: run again; if it happens again, delete the artifact and run the backup workflow.`);
    }
    const [zip] = await promises_.readdir(zipDir);
    if (!zip)
        throw new Error(`the download of artifact ${chosen.id} left no file`);
    try {
        await extractZip(external_node_path_.join(zipDir, zip), dir);
    }
    catch (err) {
        if (!(err instanceof UnsafeZipError))
            throw err;
        throw new errors/* UserError */.y(`${input}: ${describeArtifact(chosen)} from run ${runId} was refused: ${err.message}, and nothing of it is used. Fix: delete that artifact, and find out what run ${runId} ran.`);
    }
    await promises_.rm(zipDir, { recursive: true, force: true });
    return { artifact: chosen, dir, skipped };
}
/**
 * The artifact's retention tier: the backup of the week's first day (Monday, UTC) is weekly and
 * kept keep-weekly weeks; the others are daily and kept keep-daily days. GitHub fixes an
 * artifact's retention when it is uploaded, so the tier is decided then.
 */
function artifactTier(createdAt, keepDaily, keepWeekly) {
    const weekly = createdAt.getUTCDay() === 1 && keepWeekly > 0;
    return weekly
        ? { tier: 'weekly', retentionDays: Math.max(1, keepWeekly * 7) }
        : { tier: 'daily', retentionDays: Math.max(1, keepDaily) };
}

;// CONCATENATED MODULE: ./lib/manifest/manifest.js


const MANIFEST_FORMAT = 1;
/**
 * The formats this version reads. 2 is written when the manifest holds something a reader of
 * format 1 would misread (PostgreSQL's audit digest made by the server, inventory.audit.hashing):
 * an older, pinned drill then refuses the manifest in one line instead of reporting every audit
 * chunk as altered. Everything else is still written as format 1.
 */
const MANIFEST_FORMATS = [1, 2];
const MANIFEST_SUFFIX = '.manifest.json';
function manifestPathFor(backupPath) {
    return backupPath + MANIFEST_SUFFIX;
}
/** A manifest that is there but does not parse: its backup cannot be verified. */
class DamagedManifest extends errors/* UserError */.y {
}
/** Checks a manifest's text (from a file or a bucket); `where` names it in the error. */
function parseManifest(text, where) {
    let m;
    try {
        m = JSON.parse(text);
    }
    catch {
        throw new DamagedManifest(`manifest ${where} is not valid JSON: it is damaged; this backup cannot be verified.`);
    }
    const valid = m !== null &&
        typeof m === 'object' &&
        MANIFEST_FORMATS.includes(m.format) &&
        (m.engine === 'sqlite' || m.engine === 'postgres') &&
        typeof m.createdAt === 'string' &&
        !Number.isNaN(Date.parse(m.createdAt)) &&
        typeof m.backup?.sha256 === 'string' &&
        typeof m.backup?.bytes === 'number' &&
        typeof m.inventory?.schema === 'object';
    if (!valid) {
        throw new DamagedManifest(`manifest ${where} is not an omniai-backups manifest of format ${MANIFEST_FORMATS.join(' or ')} (fields missing or wrong, or made by a newer version); this backup cannot be verified.`);
    }
    return m;
}
/** Reads and checks a manifest; a damaged one is an error naming the file. */
async function readManifest(file) {
    let text;
    try {
        text = (await (0,fs/* readRegularFile */.XF)(file)).toString('utf8');
    }
    catch (err) {
        const e = err;
        throw new errors/* UserError */.y(`manifest ${file} cannot be read (${err instanceof fs/* NotRegularFile */.k1 ? err.message : e.code}).`);
    }
    return parseManifest(text, file);
}

;// CONCATENATED MODULE: ./lib/store/local.js







/** A backup's file name: the engine's extension, then compression and encryption. */
const BACKUP_FILE = /\.(db|sqlite3?|dump|dumpdir)(\.(gz|zst))?(\.(age|gpg))?$/;
/**
 * A folder of backups, each `<name>` with `<name>.manifest.json` beside it. The manifest is
 * written last, so its presence is what marks a backup as complete.
 */
class LocalStore {
    dir;
    constructor(dir) {
        this.dir = dir;
    }
    async list() {
        let names;
        try {
            names = await promises_.readdir(this.dir);
        }
        catch (err) {
            if (err.code === 'ENOENT')
                return { backups: [], orphans: [], damaged: [] };
            if (err.code === 'ENOTDIR') {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupDir}: ${this.dir} is a file, not a folder. Fix: set backup-dir to a folder.`);
            }
            throw err;
        }
        const backups = [];
        const damaged = [];
        const described = new Set();
        for (const name of names.filter((n) => n.endsWith(MANIFEST_SUFFIX))) {
            const manifestPath = external_node_path_.join(this.dir, name);
            try {
                const manifest = await readManifest(manifestPath);
                const backupPath = external_node_path_.join(this.dir, name.slice(0, -MANIFEST_SUFFIX.length));
                // A FIFO or a device planted under a backup's name would stall the first read of it.
                await mustBeFileOrFolder(backupPath);
                backups.push({ path: backupPath, manifestPath, manifest });
                described.add(external_node_path_.basename(backupPath));
            }
            catch (err) {
                damaged.push((0,errors/* describeError */.U)(err));
            }
        }
        backups.sort((a, b) => Date.parse(b.manifest.createdAt) - Date.parse(a.manifest.createdAt) ||
            b.path.localeCompare(a.path));
        const orphans = names
            .filter((n) => BACKUP_FILE.test(n) && !n.startsWith('.') && !described.has(n))
            .map((n) => external_node_path_.join(this.dir, n));
        return { backups, orphans, damaged };
    }
    /**
     * The backup to verify or restore: `file` when given (it must have a manifest), otherwise
     * the newest by manifest.
     */
    async select(file, log) {
        const listing = await this.list();
        for (const d of listing.damaged)
            log.warning(d);
        if (file) {
            const manifestPath = manifestPathFor(file);
            // A name that is not there at all is said so, not taken for a backup without a manifest.
            const gone = await promises_.lstat(file).then(() => false, (err) => err.code === 'ENOENT');
            if (gone) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: ${file} does not exist. Fix: give the path of a backup file (its manifest, <name>.manifest.json, is beside it), or leave backup-file empty to use the newest in ${this.dir}.`);
            }
            await mustBeFileOrFolder(file).catch((err) => {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: ${err.message}. Fix: name a backup file.`);
            });
            try {
                await promises_.access(manifestPath);
            }
            catch {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: ${file} has no manifest (${external_node_path_.basename(manifestPath)} is missing), so nothing can prove what it should contain. Fix: use a backup written by mode backup, or run mode backup again.`);
            }
            return {
                entry: { path: file, manifestPath, manifest: await readManifest(manifestPath) },
                listing,
            };
        }
        // A copy of a damaged source is kept for recovery by hand, never chosen on its own.
        const newest = listing.backups.find((b) => !b.manifest.damaged);
        for (const b of listing.backups) {
            if (newest && b === newest)
                break;
            log.warning(`${external_node_path_.basename(b.path)} was taken from a damaged database and is not chosen; name it in backup-file to use it anyway.`);
        }
        if (!newest) {
            const orphans = listing.orphans.length
                ? ` It holds ${listing.orphans.length} backup file(s) without a manifest (${listing.orphans.map((o) => external_node_path_.basename(o)).join(', ')}), which cannot be verified.`
                : '';
            if (listing.backups.length) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupDir}: every backup in ${this.dir} was taken from a damaged database (${listing.backups.map((b) => external_node_path_.basename(b.path)).join(', ')}), so none is chosen on its own. Fix: set backup-file to one of them to use it anyway, or set backup-dir to a folder with good backups.`);
            }
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupDir}: no backups with a manifest in ${this.dir}.${orphans} Fix: run mode backup first, or set backup-dir to the folder your backup job writes.`);
        }
        return { entry: newest, listing };
    }
    /** The entry for a backup in this store, with its manifest. */
    async entry(backupPath) {
        const manifestPath = manifestPathFor(backupPath);
        return { path: backupPath, manifestPath, manifest: await readManifest(manifestPath) };
    }
    /**
     * Deletes a backup and its manifest. The manifest goes first: interrupted in between, what is
     * left is a backup file without a manifest, which list() reports, never a manifest pointing
     * at nothing.
     */
    async remove(entry) {
        await promises_.rm(entry.manifestPath);
        await promises_.rm((0,manifest_signature/* signaturePathFor */.x0)(entry.manifestPath), { force: true });
        await promises_.rm(entry.path, { recursive: true });
    }
    async prepare() {
        try {
            await (0,fs/* makeDirs */.X2)(this.dir, 0o700);
        }
        catch (err) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupDir}: cannot create ${this.dir} (${err.code}). Fix: set backup-dir to a writable folder.`);
        }
    }
    /** A temporary path in the store for a backup in progress; invisible to list(). */
    tempPath(name) {
        return (0,fs/* tempName */.u8)(this.dir, name);
    }
    /**
     * Moves a finished backup to its final name (never replacing another backup) and writes its
     * manifest beside it, and before the manifest its signature when `sign` is given (so a
     * manifest never stands without the signature it was made with). Returns the final path.
     */
    async commit(tmp, nameFor, manifestFor, sign) {
        const final = await (0,fs/* commitNoClobber */.aP)(tmp, this.dir, nameFor);
        const text = JSON.stringify(manifestFor(external_node_path_.basename(final)), null, 2) + '\n';
        if (sign) {
            await (0,fs/* writeFileAtomic */.Zf)((0,manifest_signature/* signaturePathFor */.x0)(manifestPathFor(final)), sign(Buffer.from(text)));
        }
        await (0,fs/* writeFileAtomic */.Zf)(manifestPathFor(final), text);
        return final;
    }
}
/**
 * Refuses a backup that is neither a regular file nor a folder (pg_dump's directory format):
 * reading a FIFO with no writer would wait for ever. A backup that is not there passes, for the
 * checks that say so.
 */
async function mustBeFileOrFolder(file) {
    const stat = await promises_.stat(file).catch(() => null);
    if (stat && !stat.isFile() && !stat.isDirectory()) {
        throw (0,fs/* notRegular */.oQ)(file, stat);
    }
}

// EXTERNAL MODULE: ./lib/store/s3-settings.js
var s3_settings = __webpack_require__(97589);
;// CONCATENATED MODULE: ./lib/store/s3-errors.js
/**
 * SDK errors as one-line UserErrors naming the input to fix. S3-compatible servers differ in
 * what they put in an error (Ceph gives codes without messages; HeadObject errors have no body),
 * so the code and HTTP status decide, and the server's message is added when there is one.
 */


/** The endpoint as a person knows it: the URL, or AWS and the region. */
function endpointName(settings) {
    return settings.endpoint ?? `AWS S3 in ${settings.region}`;
}
/**
 * One line for an SDK error, naming the input to fix: storage (bucket), s3-endpoint, s3-region,
 * the credentials' inputs, s3-object-lock. `what` is the operation ("upload", "list"), `key` the
 * object (null: the bucket), `after` a clause added before "Fix:". A UserError passes through.
 */
function s3Error(settings, err, what, key, after = '') {
    if (err instanceof errors/* UserError */.y)
        return err;
    const e = err;
    const name = e.Code ?? e.name ?? 'Error';
    const status = e.$metadata?.httpStatusCode;
    const where = key === null ? `bucket "${settings.bucket}"` : `s3://${settings.bucket}/${key}`;
    const detail = [
        name,
        status,
        e.message && e.message !== 'UnknownError' && e.message !== name ? e.message : '',
    ]
        .filter(Boolean)
        .join(' ');
    const network = e.code ?? e.cause?.code ?? '';
    let message;
    if (/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|EPIPE)$/.test(network) ||
        name === 'TimeoutError' ||
        name === 'RequestTimeout') {
        message = `${s3_settings/* S3Inputs */.a7.Endpoint}: cannot ${what} ${where}: ${endpointName(settings)} does not answer (${network || name})${after}. Fix: check s3-endpoint (scheme, host and port) and that the server is up and reachable from the runner.`;
    }
    else if (name === 'NoSuchBucket' || (name === 'NotFound' && key === null)) {
        message = `${s3_settings/* S3Inputs */.a7.Storage}: bucket "${settings.bucket}" does not exist at ${endpointName(settings)}${after}. Fix: create it, or correct the bucket in storage (and s3-endpoint / s3-region).`;
    }
    else if (/^(InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|TokenRefreshRequired|CredentialsProviderError)$/.test(name)) {
        message = `${credentialsInput(settings, detail)}: ${endpointName(settings)} refused the credentials from ${settings.credentialsFrom} (${detail}) while trying to ${what} ${where}${after}. Fix: set ${s3_settings/* S3Inputs */.a7.AccessKeyId} and ${s3_settings/* S3Inputs */.a7.SecretAccessKey} from secrets, or run aws-actions/configure-aws-credentials first; check the key is active and its session not expired.`;
    }
    else if (/^(QuotaExceeded|EntityTooLarge)$/.test(name)) {
        message = `${s3_settings/* S3Inputs */.a7.Storage}: bucket "${settings.bucket}" refused to ${what} ${where}: it is over its quota (${detail})${after}. Fix: make room (lower keep-daily / keep-weekly, or delete old backups) or raise the bucket's quota.`;
    }
    else if (name === 'AccessDenied' || status === 403) {
        message = `${credentialsInput(settings, detail)}: the credentials from ${settings.credentialsFrom} may not ${what} ${where} (${detail})${after}. Fix: grant them s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on the bucket and prefix${settings.objectLock ? ', and s3:PutObjectRetention / s3:GetObjectRetention' : ''}.`;
    }
    else if (/^(PermanentRedirect|AuthorizationHeaderMalformed|IllegalLocationConstraintException)$/.test(name) ||
        status === 301) {
        message = `${s3_settings/* S3Inputs */.a7.Region}: bucket "${settings.bucket}" is not in ${settings.region} (${detail})${after}. Fix: set s3-region to the bucket's region.`;
    }
    else if (name === 'InvalidRequest' && settings.objectLock) {
        message = `${s3_settings/* S3Inputs */.a7.ObjectLock}: ${endpointName(settings)} refused to ${what} ${where} with Object Lock (${detail})${after}. Fix: use a bucket with Object Lock enabled, or set s3-object-lock: off.`;
    }
    else {
        message = `${s3_settings/* S3Inputs */.a7.Storage}: cannot ${what} ${where} (${detail || (0,errors/* describeError */.U)(err)})${after}. Fix: run again; if it keeps failing, check the server's status${status && status >= 500 ? ` (it answered ${status})` : ''}.`;
    }
    const mapped = new errors/* UserError */.y(message);
    mapped.cause = err;
    return mapped;
}
/** The input a credentials problem is fixed in: the secret given, or the key id to give. */
function credentialsInput(settings, detail) {
    return settings.credentialsFrom.startsWith(s3_settings/* S3Inputs */.a7.AccessKeyId) &&
        !/InvalidAccessKeyId/.test(detail)
        ? s3_settings/* S3Inputs */.a7.SecretAccessKey
        : s3_settings/* S3Inputs */.a7.AccessKeyId;
}

;// CONCATENATED MODULE: ./lib/store/s3-support.js
/**
 * What the S3 store needs around the SDK: a stream that counts and
 * hashes (and checks at its end), Content-MD5 on requests, and a bounded parallel map.
 */


/**
 * Counts and hashes what passes through. With `expected`, the stream fails at its end when the
 * bytes are not the manifest's, before the last part is sent, so the upload is aborted and
 * never completed.
 */
class Digesting extends external_node_stream_.Transform {
    expected;
    file;
    bytes = 0;
    hash = (0,external_node_crypto_.createHash)('sha256');
    digest = null;
    constructor(expected, file = '') {
        super();
        this.expected = expected;
        this.file = file;
    }
    _transform(chunk, _enc, done) {
        this.bytes += chunk.length;
        this.hash.update(chunk);
        done(null, chunk);
    }
    _flush(done) {
        this.digest = this.hash.digest('hex');
        const e = this.expected;
        if (e && (this.bytes !== e.bytes || this.digest !== e.sha256)) {
            done(new Error(`${this.file} changed after its manifest was written: ${this.bytes} bytes with sha256 ${this.digest}, the manifest says ${e.bytes} bytes with sha256 ${e.sha256}`));
            return;
        }
        done();
    }
    hex() {
        if (this.digest === null)
            this.digest = this.hash.digest('hex');
        return this.digest;
    }
}
/**
 * Adds Content-MD5 to every request whose body is in memory (each part, the manifest): AWS
 * requires it for writes under Object Lock. Streaming bodies never reach here: lib-storage
 * buffers each part.
 */
const contentMd5 = (next) => async (args) => {
    const request = args.request;
    const body = request.body;
    if (request.headers &&
        (typeof body === 'string' || body instanceof Uint8Array) &&
        !Object.keys(request.headers).some((h) => h.toLowerCase() === 'content-md5')) {
        request.headers['content-md5'] = (0,external_node_crypto_.createHash)('md5').update(body).digest('base64');
    }
    return next(args);
};
/** Runs `fn` over `items`, at most `limit` at a time, keeping the order. */
async function mapLimit(items, limit, fn) {
    const results = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            results[i] = await fn(items[i]);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return results;
}

;// CONCATENATED MODULE: ./lib/store/s3.js
/**
 * Backups in an S3-compatible bucket (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Ceph RGW),
 * beside the local folder and GitHub artifacts: `storage: s3://bucket/prefix`.
 *
 * The layout is the local folder's: `<prefix>/<name>` (or, for pg_dump's directory format,
 * `<prefix>/<name>/<file>`), `<prefix>/<name>.manifest.json` and its signature
 * `<prefix>/<name>.manifest.json.sig`. The manifest is uploaded last, so its presence is what
 * marks a backup complete; a backup that was half uploaded has none and is never chosen.
 *
 * - upload() streams a finished local backup (after the backup's read-back check) with multipart
 *   upload: memory stays flat (a few parts), there is no second copy on disk, every part is sent
 *   with its sha256 signed (SigV4), which the server checks, and the bytes sent are hashed as
 *   they go and must match the manifest's sha256. On any failure the multipart upload is aborted and whatever was already
 *   written under the backup's name is deleted, so no object is left under a backup name.
 * - fetch() downloads a backup into a local folder, streaming, and proves it against the
 *   manifest (size first, then sha256; never the ETag, which is not a content hash for multipart
 *   uploads or encrypted buckets), then writes the manifest beside it. A truncated or replaced
 *   object leaves nothing behind.
 * - remove() never deletes an object under Object Lock before its retain-until date: it keeps the
 *   backup and says why. In a versioned bucket a delete adds a delete marker; the data stays as a
 *   noncurrent version until a lifecycle rule expires it (src/store/README.md).
 *
 * The AWS SDK is imported only by createS3Store(), when an s3:// location is used, so no other
 * mode loads it. Errors are one-line UserErrors naming the input to fix.
 */

















/** Same pattern as local.ts: the names the backup mode gives. */
const s3_DAY_MS = 86_400_000;
const s3_MIB = 1 << 20;
const DEFAULT_PART = 8 * s3_MIB;
const MAX_PARTS = 10_000;
/** Loads the SDK and returns a store for `settings`. */
async function createS3Store(settings, options = {}) {
    const [sdk, storage] = await Promise.all([
        __webpack_require__.e(/* import() */ 711).then(__webpack_require__.t.bind(__webpack_require__, 53711, 19)),
        Promise.all(/* import() */[__webpack_require__.e(711), __webpack_require__.e(358)]).then(__webpack_require__.t.bind(__webpack_require__, 22358, 19)),
    ]);
    return new S3Store(settings, sdk, storage.Upload, options);
}
class S3Store {
    settings;
    sdk;
    Upload;
    options;
    client;
    /** s3://bucket/prefix/, for messages. */
    location;
    now;
    constructor(settings, sdk, Upload, options = {}) {
        this.settings = settings;
        this.sdk = sdk;
        this.Upload = Upload;
        this.options = options;
        this.location = `s3://${settings.bucket}/${settings.prefix}`;
        this.now = options.now ?? (() => new Date());
        this.client = new sdk.S3Client({
            region: settings.region,
            ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
            forcePathStyle: settings.forcePathStyle,
            ...(settings.credentials ? { credentials: settings.credentials } : {}),
            // Many S3-compatible servers (Ceph, older MinIO) ignore or refuse the newer checksum
            // headers. They are not needed: every part and the manifest are in memory when sent, so
            // SigV4 signs their sha256 and the server refuses a body damaged on the way.
            requestChecksumCalculation: 'WHEN_REQUIRED',
            responseChecksumValidation: 'WHEN_REQUIRED',
            followRegionRedirects: settings.endpoint === null,
            maxAttempts: 3,
            requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 },
        });
        // AWS requires Content-MD5 (or a flexible checksum) on writes under Object Lock. Only then:
        // MD5 costs as much CPU as the transfer's other hashes together.
        if (settings.objectLock) {
            // Typed loosely: the SDK's middleware types come from a package this one does not depend on.
            this.client.middlewareStack.add(contentMd5, {
                step: 'build',
                name: 'omniaiContentMd5',
                override: true,
            });
        }
    }
    /** The key of a name in the store's prefix. */
    keyOf(name) {
        return this.settings.prefix + name;
    }
    urlOf(key) {
        return `s3://${this.settings.bucket}/${key}`;
    }
    /**
     * Checks the bucket can be reached with these credentials before any work, and, with
     * s3-object-lock, that the bucket has Object Lock enabled.
     */
    async check() {
        // A listing, not HeadBucket: its errors have a body saying what is wrong (HeadBucket's have
        // only a status), and listing is what every mode does first anyway.
        await this.call('list', null, () => this.client.send(new this.sdk.ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: this.settings.prefix,
            MaxKeys: 1,
        })));
        if (!this.settings.objectLock)
            return;
        const config = await this.call('read the Object Lock configuration of', null, () => this.client.send(new this.sdk.GetObjectLockConfigurationCommand({ Bucket: this.settings.bucket }))).catch((err) => {
            if (err instanceof errors/* UserError */.y && /ObjectLockConfigurationNotFound/.test(err.message))
                return null;
            throw err;
        });
        if (config?.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled') {
            throw new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.ObjectLock}: set to ${this.settings.objectLock.toLowerCase()}, but bucket "${this.settings.bucket}" does not have Object Lock enabled. Fix: use a bucket created with Object Lock (it cannot be turned on for every provider later), or set ${s3_settings/* S3Inputs */.a7.ObjectLock}: off.`);
        }
    }
    /** Every object and sub-folder directly under `prefix`, through as many pages as there are. */
    async listPrefix(prefix) {
        const objects = new Map();
        const folders = new Set();
        let token;
        do {
            const page = await this.call('list', prefix, () => this.client.send(new this.sdk.ListObjectsV2Command({
                Bucket: this.settings.bucket,
                Prefix: prefix,
                Delimiter: '/',
                ...(token ? { ContinuationToken: token } : {}),
            })));
            for (const o of page.Contents ?? [])
                if (o.Key)
                    objects.set(o.Key, { size: o.Size ?? 0 });
            for (const p of page.CommonPrefixes ?? [])
                if (p.Prefix)
                    folders.add(p.Prefix.slice(0, -1));
            if (page.IsTruncated && !page.NextContinuationToken) {
                throw new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Endpoint}: the server said the listing of ${this.urlOf(prefix)} goes on but gave no continuation token. Fix: check that s3-endpoint is an S3-compatible server.`);
            }
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return { objects, folders };
    }
    /** Every file of a directory backup, with sizes, through as many pages as there are. */
    async filesOf(key) {
        return (await this.listPrefix(`${key}/`)).objects;
    }
    async list() {
        const { objects, folders } = await this.listPrefix(this.settings.prefix);
        const backups = [];
        const damaged = [];
        const described = new Set();
        const manifests = [...objects.keys()].filter((k) => k.endsWith(MANIFEST_SUFFIX));
        const read = await mapLimit(manifests, 8, async (manifestKey) => {
            const key = manifestKey.slice(0, -MANIFEST_SUFFIX.length);
            const directory = !objects.has(key) && folders.has(key);
            if (!objects.has(key) && !directory) {
                return {
                    key,
                    error: `manifest ${this.urlOf(manifestKey)} describes ${external_node_path_.posix.basename(key)}, which is not in the bucket; this backup cannot be used.`,
                };
            }
            try {
                return { key, entry: await this.readEntry(key, directory) };
            }
            catch (err) {
                // Only a manifest that does not parse is "damaged": a server or network failure while
                // reading one fails the listing, rather than quietly choosing an older backup.
                if (err instanceof DamagedManifest)
                    return { key, error: err.message };
                // Deleted since it was listed (retention in another job): not there any more.
                if (err.cause &&
                    err.cause.name === 'NoSuchKey')
                    return { key };
                throw err;
            }
        });
        for (const r of read) {
            described.add(r.key);
            if (r.entry)
                backups.push(r.entry);
            else if (r.error)
                damaged.push(r.error);
        }
        backups.sort((a, b) => Date.parse(b.manifest.createdAt) - Date.parse(a.manifest.createdAt) ||
            b.key.localeCompare(a.key));
        const orphans = [...objects.keys(), ...folders]
            .filter((k) => BACKUP_FILE.test(k) && !external_node_path_.posix.basename(k).startsWith('.') && !described.has(k))
            .sort()
            .map((k) => this.urlOf(k));
        return { backups, orphans, damaged };
    }
    /** The entry of the backup at `key`, from its manifest (which must be there and valid). */
    async readEntry(key, directory) {
        const manifestKey = key + MANIFEST_SUFFIX;
        const object = await this.call('read', manifestKey, () => this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: manifestKey })));
        const manifestText = await object.Body.transformToString('utf8');
        const manifest = parseManifest(manifestText, this.urlOf(manifestKey));
        return {
            path: this.urlOf(key),
            manifestPath: this.urlOf(manifestKey),
            manifest,
            key,
            manifestKey,
            directory,
            manifestText,
            lock: lockOf(object),
        };
    }
    /**
     * `name` resolved to a key: `s3://bucket/key`, a key with a '/' in it (from the bucket's
     * root), or a name in the store's prefix.
     */
    resolve(name) {
        const n = name.trim();
        if ((0,s3_settings/* isS3Location */.WI)(n)) {
            const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(n);
            if (!m || m[1] !== this.settings.bucket) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: ${n} is not in bucket "${this.settings.bucket}" (${s3_settings/* S3Inputs */.a7.Storage}). Fix: name a backup in ${this.location}, e.g. its file name.`);
            }
            return m[2];
        }
        return n.includes('/') ? n.replace(/^\/+/, '') : this.keyOf(n);
    }
    /** The entry for a backup in the bucket, with its manifest. */
    async entry(name) {
        const key = this.resolve(name).replace(/\/+$/, '');
        const manifestKey = key + MANIFEST_SUFFIX;
        const head = await this.head(manifestKey);
        if (!head) {
            throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: ${this.urlOf(key)} has no manifest (${external_node_path_.posix.basename(manifestKey)} is not in the bucket), so nothing can prove what it should contain. Fix: name a backup that mode backup uploaded, or run mode backup again.`);
        }
        let directory = false;
        if (!(await this.head(key))) {
            directory = (await this.filesOf(key)).size > 0;
            if (!directory) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.BackupFile}: ${this.urlOf(key)} is not in the bucket, though its manifest is. Fix: name another backup; run mode backup again.`);
            }
        }
        return this.readEntry(key, directory);
    }
    /**
     * The backup to verify or restore: `name` when given (it must have a manifest), otherwise the
     * newest by its manifest's createdAt, never one taken from a damaged database.
     */
    async select(name, log) {
        const listing = await this.list();
        for (const d of listing.damaged)
            log.warning(d);
        if (name)
            return { entry: await this.entry(name), listing };
        const newest = listing.backups.find((b) => !b.manifest.damaged);
        for (const b of listing.backups) {
            if (newest && b === newest)
                break;
            log.warning(`${b.path} was taken from a damaged database and is not chosen; name it in backup-file to use it anyway.`);
        }
        if (!newest) {
            const orphans = listing.orphans.length
                ? ` It holds ${listing.orphans.length} backup(s) without a manifest (${listing.orphans.slice(0, 5).join(', ')}${listing.orphans.length > 5 ? ', ...' : ''}), which cannot be verified.`
                : '';
            if (listing.backups.length) {
                throw new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Storage}: every backup in ${this.location} was taken from a damaged database (${listing.backups.map((b) => external_node_path_.posix.basename(b.key)).join(', ')}), so none is chosen on its own. Fix: set backup-file to one of them to use it anyway.`);
            }
            throw new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Storage}: no backups with a manifest in ${this.location}.${orphans} Fix: run mode backup with this storage first, or set storage to where your backup job uploads.`);
        }
        return { entry: newest, listing };
    }
    /**
     * Downloads a backup into `dir` and proves it: its size and sha256 must be the manifest's.
     * Then writes its signature (when there is one) and its manifest beside it, the manifest last,
     * byte for byte as stored. Returns the local entry, for the checks that follow. On any failure
     * nothing of it is left in `dir`.
     */
    async fetch(entry, dir, log) {
        await (0,fs/* makeDirs */.X2)(dir, 0o700);
        const name = external_node_path_.posix.basename(entry.key);
        const target = external_node_path_.join(dir, name);
        const tmp = (0,fs/* tempName */.u8)(dir, name);
        const forget = cleanup/* cleanups */.WW.add(`partial download ${tmp}`, () => promises_.rm(tmp, { recursive: true, force: true }));
        // Once renamed into place, a failure (the signature or manifest not written) removes it too:
        // a backup without its manifest is not something to leave for the checks.
        let placed = false;
        try {
            const expected = entry.manifest.backup;
            if (entry.directory) {
                await promises_.mkdir(tmp, { mode: 0o700 });
                const files = await this.filesOf(entry.key);
                const total = [...files.values()].reduce((sum, f) => sum + f.size, 0);
                if (total !== expected.bytes)
                    throw this.sizeMismatch(entry, total);
                for (const key of [...files.keys()].sort()) {
                    const file = external_node_path_.posix.basename(key);
                    if (file.startsWith('.') || key !== `${entry.key}/${file}`)
                        continue;
                    await this.download(key, external_node_path_.join(tmp, file), null, entry);
                }
                const got = await (0,fs/* digestPath */.GV)(tmp);
                if (got.bytes !== expected.bytes)
                    throw this.sizeMismatch(entry, got.bytes);
                if (got.sha256 !== expected.sha256)
                    throw this.digestMismatch(entry, got.sha256);
            }
            else {
                await this.download(entry.key, tmp, expected, entry);
            }
            const signature = await this.getText(entry.manifestKey + manifest_signature/* SIGNATURE_SUFFIX */.VV);
            await (0,fs/* restrictPath */.iV)(tmp);
            await (0,fs/* fsyncPath */.Hr)(tmp);
            await promises_.rm(target, { recursive: true, force: true });
            await promises_.rename(tmp, target);
            placed = true;
            await (0,fs/* fsyncDir */.t_)(dir);
            const manifestPath = manifestPathFor(target);
            if (signature !== null)
                await (0,fs/* writeFileAtomic */.Zf)((0,manifest_signature/* signaturePathFor */.x0)(manifestPath), signature);
            await (0,fs/* writeFileAtomic */.Zf)(manifestPath, entry.manifestText);
            log?.info(`downloaded ${entry.path} (${expected.bytes} bytes, sha256 ${expected.sha256})`);
            return { path: target, manifestPath, manifest: entry.manifest };
        }
        catch (err) {
            await promises_.rm(tmp, { recursive: true, force: true });
            if (placed) {
                await promises_.rm(target, { recursive: true, force: true });
                await promises_.rm((0,manifest_signature/* signaturePathFor */.x0)(manifestPathFor(target)), { force: true });
            }
            throw err;
        }
        finally {
            forget();
        }
    }
    /**
     * Streams one object to `file`, counting and hashing; with `expected`, the size is checked
     * before the first byte is written and the sha256 after the last.
     */
    async download(key, file, expected, entry) {
        const object = await this.call('download', key, () => this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: key })));
        const body = object.Body;
        if (expected && object.ContentLength !== undefined && object.ContentLength !== expected.bytes) {
            body.destroy();
            throw this.sizeMismatch(entry, object.ContentLength);
        }
        const digest = new Digesting(null);
        try {
            await (0,external_node_stream_promises_.pipeline)(body, digest, (0,external_node_fs_.createWriteStream)(file, { mode: 0o600 }));
        }
        catch (err) {
            const e = err;
            if (e.syscall && e.path) {
                throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.ScratchDir}: cannot write ${e.path} while downloading ${this.urlOf(key)} (${e.code}); nothing of it was kept. Fix: free space there, or set scratch-dir to a folder with room for the backup.`);
            }
            throw new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Storage}: the download of ${this.urlOf(key)} broke off after ${digest.bytes} bytes (${(0,errors/* describeError */.U)(err)}); nothing of it was kept. Fix: run again; if it keeps failing, check the network to ${endpointName(this.settings)}.`);
        }
        if (object.ContentLength !== undefined && digest.bytes !== object.ContentLength) {
            throw new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Storage}: the download of ${this.urlOf(key)} ended after ${digest.bytes} of ${object.ContentLength} bytes; nothing of it was kept. Fix: run again.`);
        }
        if (!expected)
            return;
        if (digest.bytes !== expected.bytes)
            throw this.sizeMismatch(entry, digest.bytes);
        const sha256 = digest.hex();
        if (sha256 !== expected.sha256)
            throw this.digestMismatch(entry, sha256);
    }
    sizeMismatch(entry, bytes) {
        return new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Storage}: ${entry.path} is ${bytes} bytes, but its manifest says ${entry.manifest.backup.bytes}: the object is truncated or was replaced, and nothing of it was kept. Fix: choose another backup (backup-file), or run mode backup again.`);
    }
    digestMismatch(entry, sha256) {
        return new errors/* UserError */.y(`${s3_settings/* S3Inputs */.a7.Storage}: ${entry.path} has sha256 ${sha256}, but its manifest says ${entry.manifest.backup.sha256}: the object was changed or damaged in the bucket, and nothing of it was kept. Fix: choose another backup (backup-file), or run mode backup again.`);
    }
    /**
     * Uploads a finished local backup and its manifest (and signature), under the local name or
     * the first free `<name>-N` in the bucket, never replacing a backup there. The backup goes
     * first, streamed as a multipart upload and hashed as it goes (it must match the manifest);
     * the manifest goes last. With s3-object-lock, each object is kept under that mode until
     * `retentionDays` from now. On failure the multipart upload is aborted and what was written
     * is deleted, and the error says what (if anything) Object Lock kept.
     */
    async upload(local, options) {
        const { log } = options;
        await this.abortAbandonedUploads(log);
        const stat = await promises_.stat(local.path);
        const directory = stat.isDirectory();
        const manifestText = await promises_.readFile(local.manifestPath, 'utf8');
        const signature = await promises_.readFile((0,manifest_signature/* signaturePathFor */.x0)(local.manifestPath), 'utf8')
            .catch((err) => {
            if (err.code === 'ENOENT')
                return null;
            throw err;
        });
        const name = await this.freeName(external_node_path_.basename(local.path));
        const key = this.keyOf(name);
        const manifestKey = key + MANIFEST_SUFFIX;
        const lock = this.lockFor(options.retentionDays);
        const written = [];
        try {
            if (directory) {
                const listing = (0,external_node_crypto_.createHash)('sha256');
                let bytes = 0;
                for (const file of (await promises_.readdir(local.path)).sort()) {
                    const size = (await promises_.stat(external_node_path_.join(local.path, file))).size;
                    const sent = await this.uploadFile(external_node_path_.join(local.path, file), `${key}/${file}`, size, null, lock, written, options.onProgress);
                    listing.update(`${sent}  ${size}  ${file}\n`);
                    bytes += size;
                }
                const sha256 = listing.digest('hex');
                if (sha256 !== local.manifest.backup.sha256 || bytes !== local.manifest.backup.bytes) {
                    throw new Error(`${local.path} changed after its manifest was written (sha256 ${sha256}, manifest ${local.manifest.backup.sha256})`);
                }
            }
            else {
                await this.uploadFile(local.path, key, stat.size, local.manifest.backup, lock, written, options.onProgress);
            }
            if (signature !== null) {
                await this.putText(manifestKey + manifest_signature/* SIGNATURE_SUFFIX */.VV, signature, lock, written);
            }
            // Last: the manifest is what makes the backup visible to list() and select().
            await this.putText(manifestKey, manifestText, lock, written);
        }
        catch (err) {
            throw await this.undo(written, err, key);
        }
        log.info(`uploaded ${local.path} to ${this.urlOf(key)}${lock ? `, under Object Lock (${lock.mode}) until ${lock.until.toISOString()}` : ''}`);
        return {
            path: this.urlOf(key),
            manifestPath: this.urlOf(manifestKey),
            manifest: local.manifest,
            key,
            manifestKey,
            directory,
            manifestText,
            lock,
        };
    }
    lockFor(retentionDays) {
        if (!this.settings.objectLock || !retentionDays)
            return null;
        return {
            mode: this.settings.objectLock,
            until: new Date(this.now().getTime() + Math.max(1, retentionDays) * s3_DAY_MS),
        };
    }
    /** `name`, or the first `<stem>-N<suffix>` that no object, folder or manifest in the prefix has. */
    async freeName(name) {
        const { objects, folders } = await this.listPrefix(this.settings.prefix);
        const taken = (n) => {
            const k = this.keyOf(n);
            return objects.has(k) || folders.has(k) || objects.has(k + MANIFEST_SUFFIX);
        };
        if (!taken(name))
            return name;
        const m = BACKUP_FILE.exec(name);
        const stem = m ? name.slice(0, m.index) : name;
        const suffix = m ? m[0] : '';
        for (let n = 2; n < 10_000; n++) {
            const candidate = `${stem}-${n}${suffix}`;
            if (!taken(candidate))
                return candidate;
        }
        throw new Error(`no free name for ${name} in ${this.location}`);
    }
    /**
     * One file, streamed: a single PUT when it fits one part, else a multipart upload whose parts
     * are read as they are sent (so memory holds at most queueSize + 1 parts). Returns its sha256.
     */
    async uploadFile(file, key, bytes, expected, lock, written, onProgress) {
        const partSize = Math.max(this.options.partSize ?? DEFAULT_PART, Math.ceil(bytes / (MAX_PARTS - 1) / s3_MIB) * s3_MIB);
        const digest = new Digesting(expected, file);
        const source = (0,external_node_fs_.createReadStream)(file, { highWaterMark: s3_MIB });
        source.on('error', (err) => digest.destroy(err));
        source.pipe(digest);
        const upload = new this.Upload({
            client: this.client,
            params: {
                Bucket: this.settings.bucket,
                Key: key,
                Body: digest,
                ContentLength: bytes,
                ContentType: 'application/octet-stream',
                ...(lock
                    ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.until }
                    : {}),
            },
            partSize,
            queueSize: this.options.queueSize ?? 4,
            // Aborted here, not by lib-storage: its abort error would hide the upload's own.
            leavePartsOnError: true,
        });
        if (onProgress)
            upload.on('httpUploadProgress', (p) => onProgress(p.loaded ?? 0));
        const forget = cleanup/* cleanups */.WW.add(`incomplete upload ${this.urlOf(key)}`, async () => {
            await upload.abort();
            if (upload.uploadId)
                await this.abortUpload(key, upload.uploadId);
        });
        let result;
        try {
            result = await upload.done();
        }
        catch (err) {
            source.destroy();
            const uploadId = upload.uploadId;
            if (uploadId) {
                const aborted = await this.abortUpload(key, uploadId).then(() => null, (abortErr) => abortErr);
                if (aborted) {
                    const why = (0,errors/* describeError */.U)(s3Error(this.settings, aborted, 'abort', key));
                    throw s3Error(this.settings, err, 'upload', key, `; aborting the multipart upload failed too (${why}), so its parts stay until the next backup aborts uploads older than ${Math.round(this.abandonedMs() / 3_600_000)} h, or a lifecycle rule (AbortIncompleteMultipartUpload) removes them; no object was written under that name`);
                }
            }
            throw s3Error(this.settings, err, 'upload', key);
        }
        finally {
            forget();
        }
        written.push({ key, ...(result.VersionId ? { versionId: result.VersionId } : {}) });
        // CompleteMultipartUpload's answer is not enough on every server (Ceph gives no ETag): the
        // object is read back as stored.
        const head = await this.head(key);
        if (!head || head.ContentLength !== bytes) {
            throw new Error(`${this.urlOf(key)} reads back as ${head ? `${head.ContentLength} bytes` : 'missing'} after uploading ${bytes}`);
        }
        if (!written.at(-1).versionId && head.VersionId && head.VersionId !== 'null')
            written.at(-1).versionId = head.VersionId;
        if (lock)
            await this.ensureLock(key, head, lock);
        return digest.hex();
    }
    /**
     * Servers that ignore Object Lock headers on a multipart upload (Ceph before Reef) get the
     * retention set on the finished object; where the headers took, this only reads it back.
     */
    async ensureLock(key, head, lock) {
        const until = head.ObjectLockRetainUntilDate?.getTime() ?? 0;
        if (until >= lock.until.getTime() - 1000)
            return;
        await this.call('set Object Lock retention on', key, () => this.client.send(new this.sdk.PutObjectRetentionCommand({
            Bucket: this.settings.bucket,
            Key: key,
            ...(head.VersionId && head.VersionId !== 'null' ? { VersionId: head.VersionId } : {}),
            Retention: { Mode: lock.mode, RetainUntilDate: lock.until },
        })));
    }
    async putText(key, text, lock, written) {
        const result = await this.call('upload', key, () => this.client.send(new this.sdk.PutObjectCommand({
            Bucket: this.settings.bucket,
            Key: key,
            Body: text,
            ContentType: 'application/json',
            ...(lock
                ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.until }
                : {}),
        })));
        written.push({ key, ...(result.VersionId ? { versionId: result.VersionId } : {}) });
    }
    /**
     * After a failed upload: deletes what was written, newest first (the manifest, if it got
     * there, goes first), each version exactly, so a versioned bucket keeps no copy either.
     * Returns the error to throw, saying what Object Lock kept.
     */
    async undo(written, err, key) {
        const kept = [];
        for (const w of [...written].reverse()) {
            try {
                await this.client.send(new this.sdk.DeleteObjectCommand({
                    Bucket: this.settings.bucket,
                    Key: w.key,
                    ...(w.versionId ? { VersionId: w.versionId } : {}),
                }));
            }
            catch (deleteErr) {
                kept.push(`${this.urlOf(w.key)} (${(0,errors/* describeError */.U)(s3Error(this.settings, deleteErr, 'delete', w.key))})`);
            }
        }
        const mapped = s3Error(this.settings, err, 'upload', key);
        if (!kept.length)
            return mapped;
        return new errors/* UserError */.y(`${mapped.message} These could not be deleted and stay in the bucket without a manifest, so nothing chooses them: ${kept.join(', ')}.`);
    }
    abandonedMs() {
        return this.options.abandonedUploadMs ?? s3_DAY_MS;
    }
    /**
     * Aborts incomplete multipart uploads of backups under the prefix older than
     * abandonedUploadMs (a backup killed mid-upload, whose own abort could not reach the server).
     * Optional housekeeping: a failure only warns. Returns how many were aborted.
     */
    async abortAbandonedUploads(log) {
        const cutoff = this.now().getTime() - this.abandonedMs();
        let aborted = 0;
        try {
            let keyMarker;
            let uploadIdMarker;
            do {
                const page = await this.client.send(new this.sdk.ListMultipartUploadsCommand({
                    Bucket: this.settings.bucket,
                    Prefix: this.settings.prefix,
                    ...(keyMarker ? { KeyMarker: keyMarker } : {}),
                    ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
                }));
                for (const u of page.Uploads ?? []) {
                    if (!u.Key || !u.UploadId || (u.Initiated?.getTime() ?? 0) > cutoff)
                        continue;
                    const rest = u.Key.slice(this.settings.prefix.length);
                    const backupName = rest.split('/')[0];
                    if (!BACKUP_FILE.test(backupName) || rest.split('/').length > 2)
                        continue;
                    await this.abortUpload(u.Key, u.UploadId);
                    log.info(`aborted an incomplete upload of ${this.urlOf(u.Key)} from ${u.Initiated?.toISOString()}`);
                    aborted++;
                }
                keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
                uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
            } while (keyMarker);
        }
        catch (err) {
            log.warning(`could not clean up incomplete uploads in ${this.location}: ${(0,errors/* describeError */.U)(s3Error(this.settings, err, 'list the incomplete uploads of', this.settings.prefix))}`);
        }
        return aborted;
    }
    async abortUpload(key, uploadId) {
        try {
            await this.client.send(new this.sdk.AbortMultipartUploadCommand({
                Bucket: this.settings.bucket,
                Key: key,
                UploadId: uploadId,
            }));
        }
        catch (err) {
            if (err.name === 'NoSuchUpload')
                return;
            throw err;
        }
    }
    /**
     * Deletes a backup, its manifest first (interrupted in between, what is left is a backup
     * without a manifest, which list() reports and nothing chooses). A backup with any object
     * under Object Lock (a retain-until date still to come, or a legal hold) is not touched at all,
     * and the result says why. In a versioned bucket each delete adds a delete marker; earlier
     * versions stay until the bucket's lifecycle rules expire them.
     */
    async remove(entry, log) {
        const backupKeys = entry.directory ? [...(await this.filesOf(entry.key)).keys()] : [entry.key];
        const signatureKey = entry.manifestKey + manifest_signature/* SIGNATURE_SUFFIX */.VV;
        const now = this.now().getTime();
        const present = [];
        for (const key of [entry.manifestKey, signatureKey, ...backupKeys]) {
            const head = await this.head(key);
            if (!head)
                continue;
            present.push(key);
            const lock = lockOf(head);
            if (lock && (lock.legalHold || lock.until.getTime() > now)) {
                const reason = lock.legalHold
                    ? `${this.urlOf(key)} is under an Object Lock legal hold`
                    : `${this.urlOf(key)} is under Object Lock (${lock.mode}) until ${lock.until.toISOString()}`;
                log?.info(`kept ${entry.path}: ${reason}`);
                return { removed: false, reason };
            }
        }
        // Only what is there: in a versioned bucket, deleting a missing key adds a delete marker.
        for (const key of present) {
            await this.call('delete', key, () => this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key })));
        }
        return { removed: true };
    }
    /** HeadObject, or null when there is no such object. */
    async head(key) {
        try {
            return await this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }));
        }
        catch (err) {
            const name = err.name;
            if (name === 'NotFound' || name === 'NoSuchKey')
                return null;
            throw s3Error(this.settings, err, 'read', key);
        }
    }
    /** A small object's text, or null when there is no such object. */
    async getText(key) {
        try {
            const object = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: key }));
            return await object.Body.transformToString('utf8');
        }
        catch (err) {
            if (err.name === 'NoSuchKey')
                return null;
            throw s3Error(this.settings, err, 'read', key);
        }
    }
    async call(what, key, fn) {
        try {
            return await fn();
        }
        catch (err) {
            throw s3Error(this.settings, err, what, key);
        }
    }
}
/**
 * Retention's plan with Object Lock applied: a backup the plan would delete while its manifest
 * is still locked is kept, with the date as its reason, so retention never tries to delete it
 * before then (remove() checks every object again before deleting).
 */
function keepLocked(decisions, now) {
    return decisions.map((d) => {
        const lock = d.entry.lock;
        if (d.keep || !lock || (!lock.legalHold && lock.until.getTime() <= now.getTime()))
            return d;
        const reason = lock.legalHold
            ? 'Object Lock legal hold'
            : `Object Lock (${lock.mode}) until ${lock.until.toISOString().slice(0, 10)}`;
        return { ...d, keep: true, reasons: [reason] };
    });
}
function lockOf(o) {
    const legalHold = o.ObjectLockLegalHoldStatus === 'ON';
    if (!o.ObjectLockRetainUntilDate && !legalHold)
        return null;
    return {
        mode: o.ObjectLockMode ?? 'legal hold',
        until: o.ObjectLockRetainUntilDate ?? new Date(0),
        ...(legalHold ? { legalHold } : {}),
    };
}

;// CONCATENATED MODULE: ./lib/util/version.js
// Kept in step with package.json by the test suite (__tests__/version.test.ts).
const TOOL = 'omniai-backups';
const VERSION = '0.1.0';

;// CONCATENATED MODULE: ./lib/modes/common.js


/** Fails naming `input` when a table it names is not in the database. */
function requireTable(schema, table, input) {
    if (table === null || schema.tables.some((t) => t.name === table))
        return;
    const names = schema.tables.map((t) => t.name).join(', ') || 'none';
    throw new errors/* UserError */.y(`${input}: table "${table}" is not in the database (its tables: ${names}). Fix: set ${input} to the right table, or none to skip that check.`);
}
function emptyReport(mode, engine, started) {
    return {
        tool: `${TOOL}@${VERSION}`,
        mode,
        engine,
        ok: false,
        startedAt: started.toISOString(),
        finishedAt: started.toISOString(),
        backup: null,
        checks: [],
        database: null,
        backupCount: null,
        backupAgeSeconds: null,
        restoreSeconds: null,
        durations: {},
        warnings: [],
    };
}
function finish(report, started, now) {
    report.finishedAt = now.toISOString();
    report.durations.totalMs = now.getTime() - started.getTime();
    report.ok = !report.error && report.checks.length > 0 && report.checks.every((c) => c.ok);
    return report;
}

;// CONCATENATED MODULE: ./lib/modes/backup.js





















/**
 * Snapshot the live database into backup-dir with a manifest beside it. The snapshot is
 * written to a hidden temporary name, checked, fsynced, and only then given its final name;
 * the manifest, written last, marks it complete. On any failure the temporary file is removed
 * and no other backup is touched.
 */
async function backup(ctx) {
    const { config, log, now } = ctx;
    const { signingKey } = config;
    const started = now();
    const report = emptyReport('backup', config.engine, started);
    const engine = await createEngine(config.engine, config);
    const store = new LocalStore(config.backupDir);
    // Validate table inputs against the live database before copying anything. The safety
    // backup before a restore skips this: the live database may be exactly what is broken.
    if (!ctx.safety) {
        const source = await engine.openSource();
        try {
            const schema = await source.schema();
            requireTable(schema, config.conversationsTable, 'conversations-table');
            requireTable(schema, config.auditTable, 'audit-table');
        }
        finally {
            await source.close();
        }
    }
    // The bucket is reached (and, with Object Lock, checked for it) before any snapshot is taken.
    const s3 = config.s3 && !ctx.safety ? await createS3Store(config.s3) : null;
    if (s3)
        await log.group('Check S3 storage', () => s3.check());
    await store.prepare();
    const base = `${config.prefix}-${started.toISOString().slice(0, 10)}`;
    const encoded = config.encryption.kind !== 'none' || config.compression !== 'none';
    // Room for what this backup will write, before anything is written.
    await requireSpace(await backupNeeds(ctx, store, encoded));
    const suffix = engine.extension + (0,lib_codec/* encodedExtension */.c)(config.compression, config.encryption.kind);
    // Encrypted backups are snapshotted into the scratch folder, so no plaintext copy ever sits
    // in backup-dir, and only the encoded file is moved there.
    const work = encoded ? await (0,util_scratch/* scratchFolder */.$B)(config.scratchDir, 'backup') : null;
    const workDir = work?.path ?? null;
    const tmp = workDir ? external_node_path_.join(workDir, base + engine.extension) : store.tempPath(base + suffix);
    const stored = workDir ? store.tempPath(base + suffix) : tmp;
    // Interrupted (SIGINT/SIGTERM): the plaintext snapshot and the partial backup go first.
    const forget = [
        (0,cleanup/* removeOnInterrupt */.vY)(tmp, 'partial snapshot'),
        (0,cleanup/* removeOnInterrupt */.vY)(`${tmp}-journal`, 'partial snapshot'),
        ...(stored !== tmp ? [(0,cleanup/* removeOnInterrupt */.vY)(stored, 'partial backup')] : []),
    ];
    // Which input names the folder being written, for a write that fails anyway.
    // restore-check could not run: the backup is kept, and nothing older is deleted tonight.
    let restoreNotRun = false;
    let writing = workDir
        ? { input: inputs/* Inputs */.G0.ScratchDir, path: workDir }
        : { input: inputs/* Inputs */.G0.BackupDir, path: config.backupDir };
    // restore-check: begun as soon as the snapshot file is written, alongside the snapshot's own
    // checks (SQLite: the copy and its integrity checks), and judged against the manifest that
    // follows them. Settled with that manifest, or abandoned when there is none to check against.
    let settle;
    const against = new Promise((resolve, reject) => (settle = { resolve, reject }));
    against.catch(() => undefined);
    // The inventory comes first: the check's reading of rows begins with it, while the snapshot's
    // integrity checks (whose findings complete the manifest) may still run.
    let inventoried;
    const inventory = new Promise((resolve, reject) => (inventoried = { resolve, reject }));
    inventory.catch(() => undefined);
    // Whether the snapshot's integrity and foreign-key findings are the restore check's own.
    let findingsKnown;
    const findingsShared = new Promise((resolve) => (findingsKnown = resolve));
    let checking = null;
    // An encoded backup: the stored file and the sha256 it was written with (set once encoded).
    let storedAs;
    // SQLite: the restored copy is the snapshot's bytes, copied by the kernel, and its integrity
    // and foreign-key checks are the snapshot's too (one read of those bytes, not two).
    let restored;
    const copyChecked = new Promise((resolve) => (restored = (findings) => resolve(findings ? findings.catch(() => null) : null)));
    const startCheck = () => (checking ??= restoreCheck(engine, { path: tmp, manifest: against, inventory, findingsShared, stored: storedAs }, config.scratchDir, log, 
    // Asked of the copy only where the snapshot takes its findings (PostgreSQL's would be a
    // second pass over the restored database).
    (db) => restored(checkOnCopy && db ? db.integrityProblems() : null)));
    // Begun with the snapshot's own checks unless the backup is still to be encoded (its room comes
    // first, so the check's scratch copy starts after it).
    const checkEarly = config.restoreCheck && !ctx.safety && !workDir;
    const checkOnCopy = checkEarly && engine.restoreFile !== undefined;
    // The snapshot's sha256, taken by a worker while the snapshot is checked. Handled from the
    // start (a worker that fails before it is awaited would otherwise end the process), and
    // awaited before its file is removed on any failure.
    let hashing = null;
    try {
        const t0 = stopwatch();
        const snapshot = await log.group('Snapshot', () => engine.snapshot(tmp, log, (db) => (0,inspect/* takeInventory */.O1)(db, {
            conversationsTable: config.conversationsTable,
            auditTable: config.auditTable,
            spotCheckCount: config.spotCheckCount,
        }).then((taken) => {
            inventoried.resolve(taken);
            return taken;
        }), () => {
            // An encoded backup's plaintext is hashed as it is encoded (below): the bytes
            // hashed are the bytes encrypted, in one read, not two. Measured: encoding begun
            // here instead, alongside the snapshot's checks, was slower (2 cores, both busy).
            if (!workDir) {
                hashing = (0,fs/* digestInWorker */.An)(tmp);
                hashing.catch(() => undefined);
            }
            if (checkEarly)
                startCheck();
        }, 
        // Never waits on a check that was not begun.
        checkOnCopy ? () => (checking ? copyChecked : Promise.resolve(null)) : undefined, 
        // The plaintext snapshot of an encoded backup is scratch, not the backup: no fsync.
        !workDir));
        findingsKnown(snapshot.findingsOnCopy === true);
        const damaged = snapshot.damage.length > 0;
        report.checks.push({ name: 'integrity', ok: !damaged, detail: snapshot.verified });
        const violations = snapshot.inventory.foreignKeyViolations ?? [];
        if (violations.length) {
            // A faithful copy of imperfect data: recorded, reported, and compared by every later check.
            const { detail } = (0,checks_checks/* foreignKeys */.DU)({ foreignKeys: violations }, { foreignKeys: violations });
            report.checks.push({ name: 'foreign-keys', ok: true, detail });
            const warning = `foreign keys: ${detail}. The backup was taken and records them; a drill passes while a restored copy has exactly these. To fix the data, delete or re-link the rows (PRAGMA foreign_key_check lists them).`;
            report.warnings.push(warning);
            log.warning(warning);
        }
        await (0,fs/* restrictPath */.iV)(tmp);
        // The backup is durable before it is named. A plaintext snapshot in the scratch folder is
        // not the backup: its encoded copy is, fsynced as it is written.
        if (!workDir)
            await (0,fs/* fsyncPath */.Hr)(tmp);
        report.durations.snapshotMs = t0.ms();
        // The snapshot's sha256 and size (`plain`), and the stored file's (`sha256`, `bytes`): the
        // same unless the backup is encoded, whose plaintext is hashed as it is encoded (the bytes
        // hashed are the bytes encrypted, in one read).
        let plain;
        let kept = null;
        let codec = {};
        if (!workDir) {
            const t1 = stopwatch();
            plain = await (hashing ?? (0,fs/* digestPath */.GV)(tmp));
            report.durations.checksumMs = t1.ms();
        }
        else {
            report.durations.checksumMs = 0;
            const t2 = stopwatch();
            writing = { input: inputs/* Inputs */.G0.BackupDir, path: config.backupDir };
            const digests = await log.group(`Encode (${config.compression}, ${config.encryption.kind})`, () => (0,lib_codec/* encodeFile */.rN)(tmp, stored, {
                compression: config.compression,
                encryption: config.encryption,
            }));
            report.durations.encodeMs = t2.ms();
            plain = { sha256: digests.plainSha256, bytes: digests.plainBytes };
            await (0,fs/* restrictPath */.iV)(stored);
            codec = {
                encryption: config.encryption.kind,
                compression: config.compression,
                ...(config.encryption.kind === 'age' && config.encryption.recipients?.length
                    ? { recipients: [...config.encryption.recipients] }
                    : {}),
                // What a safety backup before restoring this one is encrypted to (mode restore).
                ...(config.encryption.kind === 'gpg' && config.encryption.recipient
                    ? { gpgRecipient: config.encryption.recipient }
                    : {}),
                plain: { sha256: plain.sha256, bytes: plain.bytes },
            };
            kept = { sha256: digests.sha256, bytes: digests.bytes };
            storedAs = { path: stored, ...kept };
        }
        const { sha256, bytes } = kept ?? plain;
        const { inventory } = snapshot;
        const manifestFor = (backup, extra = {}) => ({
            // 2 only for what a format-1 reader would misread (manifest.ts MANIFEST_FORMATS).
            format: inventory.audit?.hashing ? 2 : 1,
            tool: `${TOOL}@${VERSION}`,
            engine: engine.name,
            engineVersion: snapshot.engineVersion,
            ...(snapshot.toolVersion ? { toolVersion: snapshot.toolVersion } : {}),
            createdAt: started.toISOString(),
            backup,
            source: snapshot.source,
            inventory,
            ...extra,
            durations: {
                snapshotMs: report.durations.snapshotMs,
                checksumMs: report.durations.checksumMs,
            },
        });
        // restore-check: the new backup is restored into a scratch copy and checked as a drill
        // checks it, before it is accepted. An encoded backup that this job can open (compressed
        // only, or encrypted with a passphrase) is first decoded back from the stored file in place
        // of its snapshot; one encrypted to a public key, from the plaintext snapshot it was
        // encrypted from. One that does not restore is kept only as damaged.
        let restoreChecked;
        const unrestorable = [];
        if (config.restoreCheck && !damaged && !ctx.safety) {
            // What is left of it after the backup: the time it adds to the job.
            const t3 = stopwatch();
            const own = workDir ? ownDecryption(config.encryption) : null;
            const from = !workDir ? undefined : own ? 'stored' : 'snapshot';
            const result = await log.group('Restore check', async () => {
                if (own) {
                    const back = await decodeBack(stored, tmp, 
                    // Decoded into scratch-dir, read by the check and removed: no fsync.
                    { compression: config.compression, decryption: own, scratch: true }, { sha256, bytes, plain });
                    if (back)
                        return back;
                }
                settle.resolve(manifestFor({ file: external_node_path_.basename(tmp), sha256: plain.sha256, bytes: plain.bytes }));
                const checked = await startCheck();
                if (from === 'stored' && checked.outcome !== 'not-run') {
                    checked.check.detail = `decoded back from the stored file (sha256 and plaintext as written), then ${checked.check.detail}`;
                }
                else if (from === 'snapshot' && checked.outcome !== 'not-run') {
                    checked.check.detail = `${checked.check.detail} (from the plaintext snapshot it was encrypted from: this job holds only the public key)`;
                }
                return checked;
            });
            report.durations.restoreCheckMs = t3.ms();
            report.checks.push(result.check);
            if (result.outcome === 'passed') {
                restoreChecked = {
                    at: now().toISOString(),
                    seconds: result.seconds,
                    checks: result.names,
                    ...(from ? { from } : {}),
                };
                report.restoreChecked = {
                    seconds: restoreChecked.seconds,
                    checks: restoreChecked.checks,
                    ...(from ? { from } : {}),
                };
            }
            else if (result.outcome === 'failed') {
                unrestorable.push(`restore-check failed: ${result.check.detail}`);
            }
            else {
                // The check could not run (the restore server, scratch-dir): the backup is kept as a
                // backup, not proven; the job fails, and retention deletes nothing tonight.
                restoreNotRun = true;
                const [cause, fix] = result.check.detail.split(/ Fix: /, 2);
                const where = s3 ? ', here or off-site' : '';
                const warning = `${inputs/* Inputs */.G0.RestoreCheck}: not run, ${cause.replace(/\.$/, '')}. The backup was kept as written and read back, not restored; retention deleted nothing${where}. Fix: ${fix ?? 'the cause above, then run the backup again.'}`;
                report.warnings.push(warning);
                log.warning(warning);
            }
        }
        const damage = [...snapshot.damage, ...unrestorable];
        // A damaged source is an emergency, not a reason to keep nothing: the copy is kept under a
        // name that says so, for recovery by hand, and nothing ever chooses it by default. So is a
        // backup that did not restore.
        const name = damage.length ? `${base}-damaged` : base;
        const final = await store.commit(stored, (n) => (n === 1 ? `${name}${suffix}` : `${name}-${n}${suffix}`), (file) => manifestFor({ file, sha256, bytes, ...codec }, {
            ...(damage.length ? { damaged: damage } : {}),
            ...(restoreChecked ? { restoreChecked } : {}),
        }), signingKey ? (bytes) => (0,manifest_signature/* signatureFor */.O4)(bytes, signingKey) : undefined);
        log.info(`backup written: ${final} (${bytes} bytes, sha256 ${sha256})`);
        report.backup = { path: final, sha256, bytes, createdAt: started.toISOString() };
        report.database = (0,inspect/* databaseFacts */.vS)(snapshot.source.bytes, inventory.rowCounts);
    }
    catch (err) {
        findingsKnown(false);
        settle.reject(new Error('abandoned: there is no backup to check'));
        inventoried.reject(new Error('abandoned: there is no backup to check'));
        await checking;
        // Let a hash under way finish reading before the file is removed.
        await hashing?.catch(() => undefined);
        // Removing what was written cannot replace the error that stopped the backup: in a folder
        // the runner cannot enter, the removal fails too (EACCES), and says nothing of why. What
        // could not be removed is said, so that a leftover is never silent.
        for (const partial of [tmp, `${tmp}-journal`, stored]) {
            await promises_.rm(partial, { recursive: true, force: true }).catch((why) => {
                log.warning(`could not remove the partial file ${partial}: ${(0,errors/* describeError */.U)(why)}`);
            });
        }
        throw await asWriteFailure(err, writing.input, writing.path, 'no backup was written; older backups are untouched');
    }
    finally {
        // A check begun for a snapshot that is damaged, or a backup that failed, is abandoned; it
        // ends (and removes its scratch copy) before the files it reads go.
        settle.reject(new Error('abandoned: there is no backup to check'));
        inventoried.reject(new Error('abandoned: there is no backup to check'));
        await checking;
        // As above: a scratch folder that will not go must not replace the backup's own error.
        await work?.remove().catch((why) => {
            log.warning(`could not remove the scratch folder ${workDir} (it may hold the plaintext snapshot; remove it by hand): ${(0,errors/* describeError */.U)(why)}`);
        });
        for (const f of forget)
            f();
    }
    // Nothing older may go, and nothing is uploaded, until the backup is committed as recorded:
    // its manifest reads back from disk and names a file of the size that was hashed. (The
    // content itself was hashed once, from the same inode the final name now links to.)
    const entry = await store.entry(report.backup.path);
    const readBack = (0,checks_checks/* checksum */.cM)({ sha256: report.backup.sha256, bytes: await (0,fs/* pathBytes */.X5)(entry.path) }, entry.manifest.backup);
    report.checks.push(readBack);
    // The signature reads back too: against verify-key when this job holds it, so that a key pair
    // that does not match is found the night it is set up, not at the next drill.
    const signed = signingKey
        ? await (0,manifest_signature/* checkSignature */.jC)(entry, config.verifyKeys.length ? config.verifyKeys : [(0,manifest_signature/* verifyKeyOf */.Ox)(signingKey)], config.verifyKeys.length ? inputs/* Inputs */.G0.VerifyKey : inputs/* Inputs */.G0.SigningKey)
        : null;
    if (signed)
        report.checks.push(signed);
    if (entry.manifest.damaged && !damagedSource(entry.manifest)) {
        const error = `${inputs/* Inputs */.G0.RestoreCheck}: the new backup did not restore and check as it must (${entry.manifest.damaged.join('; ')}). It was kept as ${report.backup.path}, marked damaged: verify, drill and restore never choose it unless backup-file names it, and retention deleted nothing. Fix: drill the newest good backup, and look at the restore check's detail above.`;
        report.warnings.push(error);
        log.warning(error);
    }
    else if (entry.manifest.damaged) {
        const error = `connection-string: ${external_node_path_.basename(config.connectionString)} is DAMAGED (${entry.manifest.damaged.slice(0, 3).join('; ')}). A copy was kept as ${report.backup.path}, marked damaged: verify, drill and restore never choose it unless backup-file names it, and retention deleted nothing. Fix: restore the newest good backup (mode restore), or recover rows from the damaged copy by hand.`;
        report.warnings.push(error);
        log.warning(error);
    }
    else if (readBack.ok && signed?.ok !== false) {
        if (config.uploadArtifact) {
            const settings = artifactSettings(config.artifactName, config.githubToken, config.runner);
            const { tier, retentionDays } = artifactTier(started, config.keepDaily, config.keepWeekly);
            const { id } = await log.group('Upload artifact', () => uploadBackup(entry, retentionDays, settings, log));
            report.artifact = { name: config.artifactName, id, tier, retentionDays };
            if (config.encryption.kind === 'none') {
                report.warnings.push(`UNENCRYPTED backup uploaded as artifact "${config.artifactName}" (allow-unencrypted-artifact: true): anyone who can read this repository can download every user's conversations.`);
            }
        }
        if (config.retention !== 'off' && !restoreNotRun) {
            report.retention = await applyRetentionTo(store, entry.path, config);
        }
        // Uploaded all the same: an off-site copy of an unproven backup is better than none.
        if (s3)
            report.s3 = await offsite(s3, entry, ctx, started, !restoreNotRun);
    }
    const listing = await store.list();
    report.backupCount = listing.backups.length;
    // The summary shows the room left beside the backups, and warns before the next one fails.
    const space = await spaceFacts(config.backupDir, report.backup.bytes, listing.backups.reduce((n, b) => n + b.manifest.backup.bytes, 0));
    if (space) {
        report.space = space;
        if (!space.nextFits && !ctx.safety) {
            const warning = `backup-dir: ${formatBytes(space.free)} free in ${config.backupDir}, and the newest backup is ${formatBytes(space.newestBytes)}: the next backup will not fit. Fix: free space, lower keep-daily/keep-weekly, or move backup-dir.`;
            report.warnings.push(warning);
            log.warning(warning);
        }
    }
    if (!ctx.safety)
        await recordTrend(ctx, report);
    return finish(report, started, now());
}
/**
 * The backup catalog carried from run to run in the Actions cache (sizes and times), which the
 * summary turns into a trend of database size and backup time. An optional extra: outside a
 * workflow run it does nothing, and a cache failure only warns.
 */
async function recordTrend({ config, log }, report) {
    // Outside a workflow run there is no cache to carry the catalog in.
    if (!report.backup || !report.database || !config.runner.actionsServices)
        return;
    const key = `omniai-backups-catalog-${config.prefix}`;
    const entries = await loadCatalog(config.scratchDir, key, log, config.runner);
    entries.push({
        at: report.backup.createdAt,
        engine: report.engine,
        databaseBytes: report.database.bytes,
        backupBytes: report.backup.bytes,
        backupSeconds: ((report.durations.snapshotMs ?? 0) + (report.durations.checksumMs ?? 0)) / 1000,
        ...(report.artifact?.tier ? { tier: report.artifact.tier } : {}),
    });
    await saveCatalog(config.scratchDir, key, entries, log, config.runner);
    report.trend = renderTrend(entries);
}
async function applyRetentionTo(store, newest, config) {
    // Damaged copies are never a day's or week's backup (they would push out a good one), and
    // retention leaves them for a person to remove.
    const decisions = (0,store_retention/* planRetention */.SA)((await store.list()).backups.filter((e) => !e.manifest.damaged), {
        keepDaily: config.keepDaily,
        keepWeekly: config.keepWeekly,
        timeZone: config.retentionTimeZone,
    }, { protect: [newest] });
    const dryRun = config.retention === 'dry-run';
    const summary = await (0,store_retention/* applyRetention */.dX)(decisions, { dryRun, remove: (e) => store.remove(e) });
    return {
        mode: dryRun ? 'dry-run' : 'apply',
        ...summary,
        decisions: (0,store_retention/* retentionRows */.wH)(decisions),
    };
}
/**
 * Off-site: the committed backup (signature, then manifest last) streamed to the bucket, then
 * retention there, which never deletes a backup still under Object Lock. An upload that fails
 * leaves nothing under a backup name and fails the job before retention runs.
 */
async function offsite(s3, entry, ctx, started, 
/** False where tonight's backup is not proven (restore-check not run): nothing is deleted. */
retain) {
    const { config, log, now } = ctx;
    const { tier, retentionDays } = artifactTier(started, config.keepDaily, config.keepWeekly);
    const up = await log.group(`Upload to ${s3.location}`, () => s3.upload(entry, { retentionDays, log }));
    log.info(`uploaded ${up.key}${up.lock ? ` (Object Lock ${up.lock.mode} until ${up.lock.until.toISOString()})` : ''}`);
    let retention;
    if (config.retention !== 'off' && retain) {
        const decisions = keepLocked((0,store_retention/* planRetention */.SA)((await s3.list()).backups.filter((e) => !e.manifest.damaged), {
            keepDaily: config.keepDaily,
            keepWeekly: config.keepWeekly,
            timeZone: config.retentionTimeZone,
        }, { protect: [up.path] }), now());
        const dryRun = config.retention === 'dry-run';
        const summary = await (0,store_retention/* applyRetention */.dX)(decisions, {
            dryRun,
            remove: async (e) => {
                const r = await s3.remove(e, log);
                if (!r.removed)
                    log.warning(`retention in ${s3.location}: ${r.reason}`);
            },
        });
        retention = {
            mode: dryRun ? 'dry-run' : 'apply',
            ...summary,
            decisions: (0,store_retention/* retentionRows */.wH)(decisions),
        };
    }
    return {
        location: s3.location,
        key: up.key,
        tier,
        lockedUntil: up.lock?.until.toISOString() ?? null,
        ...(retention ? { retention } : {}),
    };
}
/**
 * What a backup will write, estimated before it starts: SQLite's snapshot is the size of the
 * database (and its WAL); the stored file is that times the ratio the newest backup here had
 * (compression), or for PostgreSQL the newest dump's size. With no history and no local file to
 * measure, nothing is estimated and the write itself reports a full disk.
 */
async function backupNeeds({ config, safety }, store, encoded) {
    const newest = (await store.list().catch(() => null))?.backups.find((b) => !b.manifest.damaged);
    let source = null;
    if (config.engine === 'sqlite') {
        source = await sqliteBytes(config.connectionString);
    }
    const ratio = newest && newest.manifest.source.bytes > 0 && encoded
        ? newest.manifest.backup.bytes / newest.manifest.source.bytes
        : 1;
    const stored = source !== null ? Math.ceil(source * Math.min(1, ratio)) : (newest?.manifest.backup.bytes ?? 0);
    const name = external_node_path_.basename(config.connectionString);
    const needs = [
        {
            input: inputs/* Inputs */.G0.BackupDir,
            dir: config.backupDir,
            bytes: stored,
            what: `the ${safety ? 'safety ' : ''}backup of ${config.engine === 'sqlite' ? name : 'the database'} (${formatBytes(stored)}${encoded && newest ? ", at the last backup's compression" : ''})`,
        },
    ];
    if (encoded && source !== null) {
        needs.push({
            input: inputs/* Inputs */.G0.ScratchDir,
            dir: config.scratchDir,
            bytes: source,
            what: `the plaintext snapshot before it is encrypted (${formatBytes(source)})`,
        });
    }
    return needs;
}
/** Free space beside the backups, and whether the next backup of this size still fits. */
async function spaceFacts(dir, newestBytes, folderBytes) {
    const space = await spaceAt(dir);
    if (!space)
        return null;
    return {
        dir,
        free: space.free,
        folderBytes,
        newestBytes,
        nextFits: space.free >= newestBytes * 1.05,
    };
}
/**
 * How this backup job opens its own encoded backup: nothing to open, or the passphrase it
 * encrypted with. Null where it holds only a public key (age recipients, a gpg recipient).
 */
function ownDecryption(encryption) {
    if (encryption.kind === 'none')
        return { kind: 'none' };
    if (encryption.passphrase === undefined)
        return null;
    if (encryption.kind === 'age') {
        return encryption.recipients?.length ? null : { kind: 'age', passphrase: encryption.passphrase };
    }
    if (encryption.recipient)
        return null;
    return {
        kind: 'gpg',
        passphrase: encryption.passphrase,
        ...(encryption.homedir ? { homedir: encryption.homedir } : {}),
    };
}
/**
 * restore-check of an encoded backup this job can open: the stored file decoded back into
 * `snapshot`'s place (the plaintext snapshot goes first, so no more room is needed), where it
 * must read as it was written (its sha256) and decode to the snapshot (the plaintext's). Null
 * when it did, for the checks to go on with; else the check's result.
 */
async function decodeBack(stored, snapshot, opts, written) {
    const t0 = stopwatch();
    const result = (outcome, detail) => ({
        check: { name: 'restore-check', ok: false, detail },
        names: [],
        outcome,
        seconds: t0.seconds(),
    });
    await promises_.rm(snapshot, { force: true });
    let got;
    try {
        got = await (0,lib_codec/* decodeFile */.JG)(stored, snapshot, opts);
    }
    catch (err) {
        // What the codec says of the data (damaged, a key that does not open it), or a failed read
        // of the stored file, is the backup's; any other error is writing into scratch-dir.
        const backups = err instanceof errors/* UserError */.y || err.syscall === 'read';
        return backups
            ? result('failed', `the stored backup did not decode: ${(0,errors/* describeError */.U)(err)}`)
            : result('not-run', `${inputs/* Inputs */.G0.ScratchDir}: the stored backup could not be decoded into ${external_node_path_.dirname(snapshot)}: ${(0,errors/* describeError */.U)(err)}`);
    }
    const short = (h) => `${h.slice(0, 12)}…`;
    if (got.sha256 !== written.sha256 || got.bytes !== written.bytes) {
        return result('failed', `the stored file reads back as sha256 ${short(got.sha256)} (${got.bytes} bytes), written as ${short(written.sha256)} (${written.bytes} bytes)`);
    }
    if (got.plainSha256 !== written.plain.sha256 || got.plainBytes !== written.plain.bytes) {
        return result('failed', `the stored file decodes to sha256 ${short(got.plainSha256)} (${got.plainBytes} bytes), where its snapshot was ${short(written.plain.sha256)} (${written.plain.bytes} bytes)`);
    }
    return null;
}
/** Whether a damaged manifest's damage is the source's (not only a failed restore check). */
function damagedSource(manifest) {
    return (manifest.damaged ?? []).some((d) => !d.startsWith('restore-check failed:'));
}
/**
 * restore-check: `ref` (the new backup's plaintext) restored into a scratch copy as a drill
 * restores it, and checked against its manifest by the drill's checks. Never throws. The
 * manifest may still be on its way: an engine that restores from the file alone (SQLite)
 * restores and starts the integrity checks meanwhile; a rejected manifest abandons the check.
 * `failed`: it did not restore, or the restored copy differs (the backup is not usable);
 * `not-run`: the check itself could not run (no room in scratch-dir, the restore server refused
 * the drill's role or a connection), which says nothing about the backup.
 */
async function restoreCheck(engine, ref, scratchDir, log, 
/** Told the restored copy as soon as it is open (its checks under way), or null if none is. */
onRestored = () => undefined) {
    const t0 = stopwatch();
    const result = (outcome, detail, names = []) => ({
        check: { name: 'restore-check', ok: outcome === 'passed', detail },
        names,
        outcome,
        seconds: t0.seconds(),
    });
    try {
        if (engine.name === 'sqlite') {
            const { size } = await promises_.stat(ref.path);
            await requireSpace([
                {
                    input: inputs/* Inputs */.G0.ScratchDir,
                    dir: scratchDir,
                    bytes: size,
                    what: `the restore check's scratch copy (${formatBytes(size)})`,
                },
            ], "The restore check's copy was not made.");
        }
        return await (0,util_scratch/* withScratch */.hM)(scratchDir, 'drill', async (dir) => {
            // An engine that restores from the file alone does not wait for the manifest.
            const restoring = engine.restoreFile
                ? engine.restoreFile(ref.path, dir, log)
                : Promise.resolve(ref.manifest).then((manifest) => engine.restore({ path: ref.path, manifest }, dir, log));
            let db;
            try {
                db = await restoring;
            }
            catch (err) {
                onRestored(null);
                return notRun(err)
                    ? result('not-run', (0,errors/* describeError */.U)(err))
                    : result('failed', `did not restore: ${(0,errors/* describeError */.U)(err)}`);
            }
            onRestored(db);
            let checks;
            try {
                const early = ref.inventory ?? Promise.resolve(ref.manifest).then((m) => m.inventory);
                ({ checks } = await (0,inspect/* checkRestored */.Hl)(db, { inventory: await early }, ref.manifest));
            }
            finally {
                await db
                    .close()
                    .catch((err) => log.warning(`restore-check: ${(0,errors/* describeError */.U)(err)}`));
            }
            const failed = checks.filter((c) => !c.ok);
            const unlike = failed.length && engine.restoreFile ? await notTheBackup(db, ref) : null;
            if (unlike)
                return result('not-run', unlike);
            // A comparison of a reading with itself proves nothing: it is not named as checked.
            const shared = (await ref.findingsShared) === true;
            const names = checks.filter((c) => !(shared && c.name === 'foreign-keys')).map((c) => c.name);
            const own = shared
                ? "; the foreign-key findings the manifest records are this copy's own (one reading of the same bytes), so not compared"
                : '';
            return failed.length
                ? result('failed', `restored, but ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`, names)
                : result('passed', `restored into a scratch copy and checked: ${names.join(', ')} match the manifest${own}`, names);
        });
    }
    catch (err) {
        return result('not-run', (0,errors/* describeError */.U)(err));
    }
    finally {
        onRestored(null);
    }
}
/**
 * Where a restored SQLite copy (the backup's bytes, copied) failed its checks: why those checks
 * say nothing of the backup, or null when they do. The copy is hashed, and the backup again
 * (the stored file, for an encoded backup): a copy unlike a backup that is still as it was
 * written was changed in scratch-dir (its disk), after the snapshot was read or the stored file
 * decoded. Only on this failing path is anything hashed.
 */
async function notTheBackup(db, ref) {
    const file = db.file;
    if (typeof file !== 'string')
        return null;
    const want = (await ref.manifest).backup;
    const stored = ref.stored ?? { path: ref.path, sha256: want.sha256, bytes: want.bytes };
    const [copy, backup] = await Promise.all([(0,fs/* digestPath */.GV)(file), (0,fs/* digestPath */.GV)(stored.path)]);
    const same = (d, as) => d.sha256 === as.sha256 && d.bytes === as.bytes;
    if (same(copy, want) || !same(backup, stored))
        return null;
    return `${inputs/* Inputs */.G0.ScratchDir}: the restored copy differs from the backup it was copied from (sha256 ${copy.sha256.slice(0, 12)}… and ${copy.bytes} bytes, where the backup has ${want.sha256.slice(0, 12)}… and ${want.bytes}): the disk under scratch-dir did not keep it, so its checks say nothing of the backup. Fix: check that disk, or set scratch-dir to a folder on another one.`;
}
/** An error of the check's surroundings (restore server, scratch-dir, disk), not of the backup. */
function notRun(err) {
    if (writeFailureCause(err))
        return true;
    const message = err instanceof Error ? err.message : String(err);
    return new RegExp(`^(${inputs/* Inputs */.G0.RestoreConnectionString}|${inputs/* Inputs */.G0.ScratchDir}|${inputs/* Inputs */.G0.PgBinDir}):`).test(message);
}

;// CONCATENATED MODULE: ./lib/modes/plain.js




/** Whether a backup's stored file is compressed or encrypted, so it must be decoded to be read. */
function isEncoded(entry) {
    const b = entry.manifest.backup;
    return (b.encryption ?? 'none') !== 'none' || (b.compression ?? 'none') !== 'none';
}
function decryptionFor(entry, keys) {
    const b = entry.manifest.backup;
    const file = external_node_path_.basename(entry.path);
    switch (b.encryption ?? 'none') {
        case 'age':
            if (!keys.ageIdentities.length && !keys.agePassphrase) {
                const to = b.recipients?.length ? ` (to ${b.recipients.join(', ')})` : '';
                throw new errors/* UserError */.y(`age-identity: ${file} is age-encrypted${to}; reading it needs the recovery key. Fix: pass the AGE-SECRET-KEY-1... key from a secret as age-identity (or age-passphrase for a passphrase backup).`);
            }
            return {
                kind: 'age',
                identities: keys.ageIdentities,
                ...(keys.agePassphrase ? { passphrase: keys.agePassphrase } : {}),
            };
        case 'gpg':
            return {
                kind: 'gpg',
                ...(keys.gpgPassphrase ? { passphrase: keys.gpgPassphrase } : {}),
                ...(keys.gpgHomedir ? { homedir: keys.gpgHomedir } : {}),
            };
        default:
            return { kind: 'none' };
    }
}
/**
 * The backup as the engine reads it: the stored file itself, or for an encoded backup its
 * plaintext decoded into `scratch` (streamed; a wrong key or a tampered file leaves nothing),
 * with a `decrypt` check proving the plaintext against the manifest. `stored`: the stored
 * file's sha256 and size as the decoding read it, once it read to the end (null otherwise), so
 * that its checksum needs no second read (checksumOf). `live`: the plaintext is what a restore
 * puts live, and is fsynced (DecodeOptions.scratch); else it is scratch, and is not.
 */
async function plaintextOf(entry, config, scratch, log, { live = false } = {}) {
    if (!isEncoded(entry))
        return { ref: entry, check: null, stored: null };
    const b = entry.manifest.backup;
    const decryption = decryptionFor(entry, config.keys);
    (0,lib_codec/* checkDecryption */.q$)(decryption);
    const dest = external_node_path_.join(scratch, `plain${entry.manifest.engine === 'sqlite' ? '.db' : '.dump'}`);
    const how = `${b.encryption ?? 'none'}${b.compression && b.compression !== 'none' ? `, ${b.compression}` : ''}`;
    try {
        const digests = await log.group(`Decode (${how})`, () => (0,lib_codec/* decodeFile */.JG)(entry.path, dest, {
            compression: b.compression ?? 'none',
            decryption,
            // Never more than the manifest says: a bomb in a replaced backup cannot fill the disk.
            ...(b.plain ? { maxPlainBytes: b.plain.bytes } : {}),
            // Read by this job and removed; a restore's is fsynced (a failed write must stop it).
            scratch: !live,
        }));
        const want = b.plain;
        const ok = !!want && digests.plainSha256 === want.sha256 && digests.plainBytes === want.bytes;
        const key = b.encryption === 'age' ? 'the recovery key' : b.encryption === 'gpg' ? 'gpg' : 'no key';
        return {
            ref: ok ? { path: dest, manifest: entry.manifest } : null,
            stored: { sha256: digests.sha256, bytes: digests.bytes },
            check: {
                name: 'decrypt',
                ok,
                detail: ok
                    ? `decrypted with ${key} (${how}); plaintext sha256 ${digests.plainSha256.slice(0, 12)}… and ${digests.plainBytes} bytes match the manifest`
                    : `decoded (${how}), but the plaintext sha256 ${digests.plainSha256.slice(0, 12)}… does not match the manifest's ${want?.sha256.slice(0, 12) ?? '(none)'}…`,
            },
        };
    }
    catch (err) {
        const why = await asWriteFailure(err, 'scratch-dir', scratch, 'the partial copy was removed');
        return {
            ref: null,
            check: { name: 'decrypt', ok: false, detail: (0,errors/* describeError */.U)(why) },
            stored: null,
        };
    }
}

// EXTERNAL MODULE: external "node:timers/promises"
var external_node_timers_promises_ = __webpack_require__(58500);
;// CONCATENATED MODULE: ./lib/smoke/smoke.js
/**
 * The HTTP smoke test after a restore (runbook, Restore step 4): the health endpoint answers,
 * a login works, and the conversations list comes back. The backend is usually still starting
 * when this runs, so the health endpoint is polled until it answers 2xx or the time runs out.
 *
 * Unless a health path is given, the runbook's /v1/health is tried first and then the paths
 * OmniAI itself serves (/health, /healthz, /readyz, /v1/status; backend/api/health.py and
 * backend/api/v1/status.py): the runbook names an endpoint the real backend does not have.
 *
 * OmniAI logs in with cookies (backend/api/auth.py): POST /api/auth/login answers with a session
 * cookie (omni_session, HttpOnly) and a CSRF cookie (omni_csrf), and the CSRF token again as
 * csrf_token in the JSON. A state-changing request that carries the session cookie must echo the
 * token in X-CSRF-Token and carry an allowed Origin, or it gets 403 (backend/core/middleware.py,
 * ChatCSRFMiddleware). A bearer-token login (smoke-token-field) works as well.
 *
 * The login body and whatever the login returns (cookies, a bearer token) are credentials from
 * secrets: they are sent on and never written to a log line, a detail or an error message;
 * response bodies are never quoted either, since a server may echo what it was sent.
 */


/** Input names for the error messages (as in action.yml and options/). */
const SMOKE_INPUTS = {
    url: 'smoke-url',
    healthPath: 'smoke-health-path',
    timeout: 'smoke-timeout',
    loginPath: 'smoke-login-path',
    loginBody: 'smoke-login-body',
    tokenField: 'smoke-token-field',
    conversationsPath: 'smoke-conversations-path',
};
/** The runbook's health path first, then OmniAI's own, in the order tried when none is given. */
const DEFAULT_HEALTH_PATHS = ['/v1/health', '/health', '/healthz', '/readyz', '/v1/status'];
/** OmniAI's csrf_header_name (backend/config/settings.py). */
const CSRF_HEADER = 'X-CSRF-Token';
/** A cookie whose value a CSRF check wants back in the header: omni_csrf, csrftoken, XSRF-TOKEN. */
const CSRF_COOKIE = /csrf|xsrf/i;
const DEFAULT_REQUEST_TIMEOUT_SECONDS = 10;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
/** A try made once the time is up still gets this long to answer. */
const LAST_TRY_MS = 500;
function parseBaseUrl(text) {
    const input = SMOKE_INPUTS.url;
    let url;
    try {
        url = new URL(text);
    }
    catch {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a URL. Fix: give the backend's address, e.g. ${input}: http://localhost:8000.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new errors/* UserError */.y(`${input}: "${url.protocol}" is not http: or https:. Fix: e.g. ${input}: http://localhost:8000.`);
    }
    if (url.username || url.password) {
        // Not quoted: the URL holds a password.
        throw new errors/* UserError */.y(`${input}: holds a user name or password, which fetch refuses. Fix: remove them from the URL and log in with ${SMOKE_INPUTS.loginPath} and ${SMOKE_INPUTS.loginBody}.`);
    }
    if (url.search || url.hash) {
        throw new errors/* UserError */.y(`${input}: "${text}" has a query or fragment. Fix: give only the address and path prefix, e.g. ${input}: http://localhost:8000.`);
    }
    if (!url.pathname.endsWith('/'))
        url.pathname += '/';
    return url;
}
/** `path` below `base` (keeping a path prefix such as /api); it may not leave the base's origin. */
function endpoint(base, path, input) {
    const url = new URL(path.replace(/^\/+/, ''), base);
    if (url.origin !== base.origin || /^[a-z][a-z0-9+.-]*:/i.test(path)) {
        throw new errors/* UserError */.y(`${input}: "${path}" is not a path. Fix: give a path on ${SMOKE_INPUTS.url}, e.g. /health.`);
    }
    return url;
}
/** Short values (flags like "1") are not masked: that would hide every such string in the log. */
function maskLong(log, value) {
    if (value.length >= 8)
        log.mask?.(value);
}
/** Cookies by name, as a browser would send them back to the same server. */
class CookieJar {
    log;
    cookies = new Map();
    constructor(log) {
        this.log = log;
    }
    /** Keeps the response's cookies; returns the names it set (names are not secret, values are). */
    store(res) {
        const set = [];
        for (const line of res.headers.getSetCookie()) {
            const [pair = '', ...attributes] = line.split(';');
            const eq = pair.indexOf('=');
            if (eq <= 0)
                continue;
            const name = pair.slice(0, eq).trim();
            const value = pair.slice(eq + 1).trim();
            const expired = attributes.some((a) => {
                const [key = '', v = ''] = a.split('=').map((s) => s.trim());
                if (/^max-age$/i.test(key))
                    return Number(v) <= 0;
                if (/^expires$/i.test(key))
                    return Date.parse(v) <= Date.now();
                return false;
            });
            if (expired)
                this.cookies.delete(name);
            else {
                maskLong(this.log, value);
                this.cookies.set(name, value);
                set.push(name);
            }
        }
        return set;
    }
    get size() {
        return this.cookies.size;
    }
    /** The value of the CSRF cookie (OmniAI's omni_csrf), which the CSRF header must repeat. */
    csrfCookie() {
        for (const [name, value] of this.cookies)
            if (CSRF_COOKIE.test(name) && value)
                return value;
        return null;
    }
    header() {
        if (this.cookies.size === 0)
            return {};
        return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    }
}
/**
 * The headers a page on the backend's own origin adds to a POST: the CSRF token in X-CSRF-Token
 * when one is known, and Origin when cookies go along. Origin only with cookies, because that is
 * when OmniAI checks it (ChatCSRFMiddleware: a request carrying the session cookie without Origin
 * gets 403), and because OmniAI drops Set-Cookie from its answer to any request that has an Origin
 * header (SecurityHeadersMiddleware compares an int port with a str and never finds a request
 * same-site): a login sent with Origin gets 200 and no session.
 */
function stateChangingHeaders(base, session) {
    const headers = {};
    const csrf = session.jar.csrfCookie() ?? session.csrfToken;
    if (csrf)
        headers[CSRF_HEADER] = csrf;
    if (session.jar.size)
        headers.origin = base.origin;
    return headers;
}
/** Why a request got no answer, without the request itself. */
function whyNoAnswer(err, timeoutMs) {
    const e = err;
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
        return `no answer within ${seconds(timeoutMs)}`;
    const code = e?.cause?.code;
    const known = {
        ECONNREFUSED: 'connection refused',
        ECONNRESET: 'connection reset',
        ENOTFOUND: 'host not found',
        EAI_AGAIN: 'host not found (DNS)',
        EHOSTUNREACH: 'host unreachable',
        UND_ERR_SOCKET: 'connection closed',
    };
    if (code)
        return known[code] ? `${known[code]} (${code})` : code;
    return (e?.cause?.message ?? e?.message ?? String(err)).replace(/\s*\n\s*/g, ' ');
}
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** "a, b or c" */
const either = (items) => items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
/** The value at a dotted path in parsed JSON. */
function at(json, path) {
    let v = json;
    for (const key of path.split('.')) {
        if (v === null || typeof v !== 'object')
            return undefined;
        v = v[key];
    }
    return v;
}
/** Every string in parsed JSON (the login body's password among them). */
function strings(json) {
    if (typeof json === 'string')
        return [json];
    if (json && typeof json === 'object')
        return Object.values(json).flatMap(strings);
    return [];
}
const LIST_KEYS = ['items', 'data', 'conversations'];
/** The conversations in a list response: the array itself, or one under a usual key. */
function conversationsIn(json) {
    if (Array.isArray(json))
        return json;
    if (json && typeof json === 'object') {
        for (const key of LIST_KEYS) {
            const v = json[key];
            if (Array.isArray(v))
                return v;
        }
    }
    return null;
}
async function readJson(res) {
    const text = await res.text();
    try {
        return { json: JSON.parse(text) };
    }
    catch {
        const type = res.headers.get('content-type')?.split(';')[0] || 'no content-type';
        return { notJson: text.trim() === '' ? 'an empty body' : type };
    }
}
/** Polls the backend, logs in and lists conversations; see SmokeOptions. */
async function smokeTest(opts) {
    const base = parseBaseUrl(opts.baseUrl);
    if (!(opts.timeoutSeconds > 0) || !Number.isFinite(opts.timeoutSeconds)) {
        throw new errors/* UserError */.y(`${SMOKE_INPUTS.timeout}: "${opts.timeoutSeconds}" is not a number of seconds above 0. Fix: e.g. ${SMOKE_INPUTS.timeout}: 120.`);
    }
    const explicit = Boolean(opts.healthPath);
    const healthPaths = opts.healthPath ? [opts.healthPath] : DEFAULT_HEALTH_PATHS;
    const candidates = healthPaths.map((path) => ({
        path,
        url: endpoint(base, path, SMOKE_INPUTS.healthPath),
    }));
    const loginUrl = opts.login && endpoint(base, opts.login.path, SMOKE_INPUTS.loginPath);
    const listUrl = opts.conversationsPath && endpoint(base, opts.conversationsPath, SMOKE_INPUTS.conversationsPath);
    if (opts.login) {
        let body;
        try {
            body = JSON.parse(opts.login.body);
        }
        catch {
            // JSON.parse's message quotes the text, which holds the password: not passed on.
            throw new errors/* UserError */.y(`${SMOKE_INPUTS.loginBody}: is not valid JSON. Fix: e.g. ${SMOKE_INPUTS.loginBody}: '{"username": "\${{ secrets.SMOKE_USERNAME }}", "password": "\${{ secrets.SMOKE_PASSWORD }}"}'.`);
        }
        opts.log.mask?.(opts.login.body);
        // The password alone too: a server may answer with it, and an answer could reach a log some day.
        for (const value of strings(body))
            maskLong(opts.log, value);
    }
    const fetchImpl = opts.fetchImpl ?? fetch;
    const requestSeconds = opts.requestTimeoutSeconds ?? DEFAULT_REQUEST_TIMEOUT_SECONDS;
    const requestMs = Math.ceil((requestSeconds > 0 ? requestSeconds : DEFAULT_REQUEST_TIMEOUT_SECONDS) * 1000);
    const session = { jar: new CookieJar(opts.log), csrfToken: null, bearer: null };
    const steps = [];
    steps.push(await pollHealth(base, candidates, explicit, opts.timeoutSeconds * 1000, requestMs, session.jar, opts.log, fetchImpl));
    if (steps[0].ok && opts.login && loginUrl) {
        steps.push(await login(base, loginUrl, opts.login, requestMs, session, opts.log, fetchImpl));
    }
    if (steps.every((s) => s.ok) && listUrl) {
        steps.push(await conversations(listUrl, opts.requireConversations, requestMs, session, opts.log, fetchImpl));
    }
    const planned = ['health', opts.login && 'login', listUrl && 'conversations'].filter((s) => Boolean(s));
    const skipped = planned.slice(steps.length);
    const ok = steps.every((s) => s.ok);
    const detail = steps.map((s) => s.detail).join('; ') +
        (skipped.length ? `; ${skipped.join(' and ')} not run` : '');
    return { check: { name: 'smoke-test', ok, detail }, steps };
}
/** 404 and 405: the server is up and this path is not its health endpoint. */
const notServed = (status) => status === 404 || status === 405;
/**
 * Polls the candidates until one answers 2xx. No answer (still starting) or an answer other than
 * 404/405 (a health endpoint that says "not yet") waits and asks the same path again; 404/405
 * moves on to the next path at once, and after the last one starts over after the wait.
 */
async function pollHealth(base, candidates, explicit, timeoutMs, requestMs, jar, log, fetchImpl) {
    const started = performance.now();
    const deadline = started + timeoutMs;
    let delay = FIRST_DELAY_MS;
    let tries = 0;
    let i = 0;
    let status;
    let why;
    /** The last answer of each path that was asked, for the detail. */
    const answers = new Map();
    for (;;) {
        const { path, url } = candidates[i];
        tries++;
        // AbortSignal.timeout takes whole milliseconds only.
        const limit = Math.ceil(Math.min(requestMs, Math.max(deadline - performance.now(), LAST_TRY_MS)));
        try {
            const res = await fetchImpl(url, {
                headers: { accept: 'application/json', ...jar.header() },
                signal: AbortSignal.timeout(limit),
            });
            // Read to the end so the connection can be reused; the body itself is not shown.
            await res.arrayBuffer();
            jar.store(res);
            status = res.status;
            why = `${res.status}`;
            answers.set(path, why);
            if (res.ok) {
                const ms = performance.now() - started;
                // The paths before this one, each of which answered 404 or 405 last.
                const skipped = candidates
                    .slice(0, i)
                    .map((c) => `${c.path} ${answers.get(c.path)}`)
                    .join(', ');
                const detail = `health ${res.status} from ${path} after ${plural(tries, 'try', 'tries')} (${seconds(ms)}${skipped ? `; not served: ${skipped}` : ''})`;
                log.info(`smoke: GET ${url.href} → ${res.status}: ${detail}`);
                return { name: 'health', ok: true, status, ms, detail };
            }
        }
        catch (err) {
            status = null;
            why = whyNoAnswer(err, limit);
        }
        const next = candidates[i + 1];
        if (notServed(status) && next) {
            // The server is up: ask its next path now. A round of these ends even past the deadline,
            // so a backend that came up at the last moment still gets all its paths asked.
            log.info(`smoke: GET ${url.href} → ${why} (not served here); trying ${next.path}`);
            i++;
            continue;
        }
        if (notServed(status))
            i = 0;
        const left = deadline - performance.now();
        if (left <= 0)
            break;
        const wait = Math.min(delay, left);
        log.info(`smoke: GET ${url.href} → ${why} (try ${tries}, ${seconds(performance.now() - started)}); trying ${candidates[i].url.href === url.href ? 'again' : candidates[i].path} in ${seconds(wait)}`);
        await (0,external_node_timers_promises_.setTimeout)(wait);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
    const ms = performance.now() - started;
    const last = `${plural(tries, 'try', 'tries')}, last: ${why}`;
    let detail;
    if (explicit) {
        const hint = notServed(status)
            ? `; check ${SMOKE_INPUTS.healthPath}`
            : status === null
                ? `; is the backend running at ${base.origin}?`
                : '';
        detail = `health: no 2xx from ${candidates[0].url.href} within ${seconds(timeoutMs)} (${last})${hint}`;
    }
    else {
        const asked = [...answers].map(([p, a]) => `${p} ${a}`).join(', ');
        const hint = status === null
            ? `; is the backend running at ${base.origin}?`
            : answers.size === candidates.length &&
                [...answers.values()].every((a) => /^40[45]$/.test(a))
                ? `; none of them is served: set ${SMOKE_INPUTS.healthPath} to the backend's health endpoint`
                : '';
        detail = `health: no 2xx from ${either(candidates.map((c) => c.path))} at ${base.href} within ${seconds(timeoutMs)} (${last}${asked ? `; answers: ${asked}` : ''})${hint}`;
    }
    log.info(`smoke: ${detail}`);
    return { name: 'health', ok: false, status, ms, detail };
}
async function login(base, url, login, requestMs, session, log, fetchImpl) {
    const started = performance.now();
    const done = (ok, status, detail) => {
        log.info(`smoke: POST ${url.href} → ${detail}`);
        return { name: 'login', ok, status, ms: performance.now() - started, detail };
    };
    const extra = stateChangingHeaders(base, session);
    let res;
    try {
        res = await fetchImpl(url, {
            method: 'POST',
            headers: {
                'content-type': 'application/json',
                accept: 'application/json',
                ...session.jar.header(),
                ...extra,
            },
            body: login.body,
            // A form-style login answers 302/303 with the session cookie: keep it, do not follow.
            redirect: 'manual',
            signal: AbortSignal.timeout(requestMs),
        });
    }
    catch (err) {
        return done(false, null, `login: ${whyNoAnswer(err, requestMs)}`);
    }
    const set = session.jar.store(res);
    const redirected = res.status >= 300 && res.status < 400;
    if (!res.ok && !redirected) {
        await res.arrayBuffer().catch(() => undefined);
        const sent = [CSRF_HEADER in extra && CSRF_HEADER, extra.origin && `Origin ${extra.origin}`]
            .filter(Boolean)
            .join(' and ');
        const hint = res.status === 401 || res.status === 403
            ? `: check the credentials in ${SMOKE_INPUTS.loginBody}${res.status === 403 && sent ? `, or the server's CSRF check (sent ${sent})` : ''}`
            : res.status === 404 || res.status === 405
                ? `: check ${SMOKE_INPUTS.loginPath}`
                : res.status === 422 || res.status === 400
                    ? `: check the fields in ${SMOKE_INPUTS.loginBody}`
                    : res.status === 429
                        ? ': too many login attempts, the server refuses more for now'
                        : '';
        return done(false, res.status, `login ${res.status} (expected 2xx${hint})`);
    }
    const body = redirected ? { notJson: `a ${res.status} redirect` } : await readJson(res);
    if ('json' in body) {
        const csrf = at(body.json, 'csrf_token');
        if (typeof csrf === 'string' && csrf !== '') {
            maskLong(log, csrf);
            session.csrfToken = csrf;
        }
    }
    const got = [
        ...(set.length ? [`${set.length === 1 ? 'cookie' : 'cookies'} ${set.join(', ')}`] : []),
        ...(session.jar.csrfCookie() || session.csrfToken ? ['CSRF token'] : []),
    ];
    const field = login.tokenField;
    if (!field) {
        if (session.jar.size === 0) {
            return done(false, res.status, `login ${res.status} but it set no cookie, and ${SMOKE_INPUTS.tokenField} is not set: nothing carries the session to the next request`);
        }
        return done(true, res.status, `login ${res.status} (${got.join('; ')})`);
    }
    if ('notJson' in body) {
        return done(false, res.status, `login ${res.status} but the response is ${body.notJson}, not JSON with ${field}`);
    }
    const token = at(body.json, field);
    if (typeof token !== 'string' || token === '') {
        // Field names are not secret and show where the token is instead.
        const fields = body.json && typeof body.json === 'object' && !Array.isArray(body.json)
            ? Object.keys(body.json).slice(0, 10).join(', ')
            : '';
        return done(false, res.status, `login ${res.status} but the response has no token at ${field}${fields ? ` (its fields: ${fields})` : ''}: check ${SMOKE_INPUTS.tokenField}`);
    }
    log.mask?.(token);
    session.bearer = token;
    return done(true, res.status, `login ${res.status} (${[...got, 'bearer token'].join('; ')})`);
}
async function conversations(url, require, requestMs, session, log, fetchImpl) {
    const started = performance.now();
    const done = (ok, status, detail) => {
        log.info(`smoke: GET ${url.href} → ${detail}`);
        return { name: 'conversations', ok, status, ms: performance.now() - started, detail };
    };
    let res;
    try {
        // A GET: no CSRF header or Origin, as OmniAI asks for neither on a read.
        res = await fetchImpl(url, {
            headers: {
                accept: 'application/json',
                ...session.jar.header(),
                ...(session.bearer ? { authorization: `Bearer ${session.bearer}` } : {}),
            },
            signal: AbortSignal.timeout(requestMs),
        });
    }
    catch (err) {
        return done(false, null, `conversations: ${whyNoAnswer(err, requestMs)}`);
    }
    if (!res.ok) {
        await res.arrayBuffer().catch(() => undefined);
        const hint = res.status === 401 || res.status === 403
            ? ': not logged in (the login gave no session cookie or token it accepts)'
            : '';
        return done(false, res.status, `conversations ${res.status} (expected 2xx${hint})`);
    }
    const body = await readJson(res);
    if ('notJson' in body) {
        // A single-page app's server answers every path with index.html: a 200 that proves nothing.
        return done(false, res.status, `conversations ${res.status} but the response is ${body.notJson}, not JSON: check ${SMOKE_INPUTS.conversationsPath}`);
    }
    const list = conversationsIn(body.json);
    if (require && list === null) {
        return done(false, res.status, `conversations ${res.status} but the JSON is not a list, nor holds one under ${LIST_KEYS.join(', ')}`);
    }
    if (require && list.length === 0) {
        return done(false, res.status, `conversations ${res.status} but the list is empty, and conversations are required: the restored database holds none this user can see`);
    }
    return done(true, res.status, `conversations ${res.status}${list ? `, ${plural(list.length, 'item')}` : ''}`);
}

;// CONCATENATED MODULE: ./lib/modes/smoke.js




/**
 * The runbook's restore step 4 (health, login, list conversations) as a check in the report,
 * when smoke-url is set: after a restore, after a drill, or on its own (mode smoke, once the
 * backend has been started on the restored database).
 */
async function smokeInto(report, { config, log }) {
    const smoke = config.smoke;
    if (!smoke)
        return;
    const result = await log.group('Smoke test', () => smokeTest({
        baseUrl: smoke.url,
        ...(smoke.healthPath ? { healthPath: smoke.healthPath } : {}),
        timeoutSeconds: smoke.timeoutSeconds,
        ...(smoke.login ? { login: smoke.login } : {}),
        ...(smoke.conversationsPath ? { conversationsPath: smoke.conversationsPath } : {}),
        requireConversations: smoke.requireConversations,
        log,
    }));
    report.checks.push(result.check);
    report.smoke = result.steps;
}
async function smoke(ctx) {
    const started = ctx.now();
    if (!ctx.config.smoke) {
        throw new errors/* UserError */.y('smoke-url: not set, and mode smoke has nothing else to do. Fix: set smoke-url to the running backend, e.g. http://localhost:8000.');
    }
    const report = emptyReport('smoke', (0,options_config/* engineOf */.ky)(ctx.config), started);
    await smokeInto(report, ctx);
    return finish(report, started, ctx.now());
}

;// CONCATENATED MODULE: ./lib/modes/trust.js
/**
 * Whether a backup may be read at all, decided from this job's inputs and never from the backup's
 * own manifest, which whoever made the backup wrote: its signature (`verify-key`) and its
 * encryption (a job that holds a key reads only backups encrypted to it). verify, drill and
 * restore run these first; when one fails, nothing of the backup is decoded or restored.
 */



/**
 * The encryption kinds this job's inputs expect, with the inputs that say so. A job holding the
 * age recovery key expects age-encrypted backups; a plaintext one in their place must not be
 * believed because its manifest says "encryption: none".
 */
function expectedEncryption(config) {
    const expected = new Map();
    const add = (kind, input) => expected.set(kind, [...(expected.get(kind) ?? []), input]);
    if (config.keys.ageIdentities.length)
        add('age', inputs/* Inputs */.G0.AgeIdentity);
    if (config.keys.agePassphrase)
        add('age', inputs/* Inputs */.G0.AgePassphrase);
    if (config.keys.gpgPassphrase)
        add('gpg', inputs/* Inputs */.G0.GpgPassphrase);
    if (config.keys.gpgHomedir)
        add('gpg', inputs/* Inputs */.G0.GpgHomedir);
    if (config.encryption.kind !== 'none')
        add(config.encryption.kind, inputs/* Inputs */.G0.Encryption);
    return expected;
}
/** The `encryption` check, or null when this job expects no particular encryption. */
function encryptionPolicy(entry, config) {
    const expected = expectedEncryption(config);
    if (!expected.size)
        return null;
    const kind = entry.manifest.backup.encryption ?? 'none';
    const inputs = [...new Set([...expected.values()].flat())].join(', ');
    const kinds = [...expected.keys()].join(' or ');
    const name = external_node_path_.basename(entry.path);
    if (expected.has(kind)) {
        return {
            name: 'encryption',
            ok: true,
            detail: `${name} is ${kind}-encrypted, as this job's ${inputs} expects`,
        };
    }
    return {
        name: 'encryption',
        ok: false,
        detail: kind === 'none'
            ? `${inputs}: ${name} is not encrypted (its manifest says encryption: none), and this job holds ${inputs}, so it reads only ${kinds}-encrypted backups: a plaintext file may have been put in place of the real backup, and it was not read. Fix: use a backup the backup job encrypted; to read plaintext backups, remove ${inputs} from this job.`
            : `${inputs}: ${name} is ${kind}-encrypted, and this job holds ${inputs}, so it reads only ${kinds}-encrypted backups; it was not read. Fix: use a backup the backup job encrypted with ${kinds}, or give this job the ${kind} key.`,
    };
}
/** The checks that decide whether the backup may be read; empty when no input asks for any. */
async function trustChecks(entry, config) {
    const checks = [];
    if (config.verifyKeys.length)
        checks.push(await (0,manifest_signature/* checkSignature */.jC)(entry, config.verifyKeys, inputs/* Inputs */.G0.VerifyKey));
    const encryption = encryptionPolicy(entry, config);
    if (encryption)
        checks.push(encryption);
    return checks;
}

;// CONCATENATED MODULE: ./lib/modes/verify.js













/**
 * The backup to use and the engine its manifest says made it: from backup-dir, or with
 * download-artifact the artifact artifact-id names or the newest unexpired one the backup job
 * made, downloaded into the scratch folder. `release()` deletes what was downloaded.
 */
async function selectBackup({ config, log }) {
    let dir = config.backupDir;
    let artifact = null;
    let skipped = [];
    let release = async () => { };
    if (config.downloadArtifact) {
        if (config.backupFile) {
            throw new errors/* UserError */.y('backup-file: cannot be combined with download-artifact, which takes a backup artifact (artifact-id, or the newest the backup job made). Fix: remove one of them.');
        }
        const settings = artifactSettings(config.artifactName, config.githubToken, config.runner);
        const download = await scratchDownload(config.scratchDir, 'artifact');
        release = download.release;
        ({ artifact, dir, skipped } = await download.fill(() => log.group('Download artifact', () => downloadBackup(settings, download.dir, log, {
            artifactId: config.artifactId,
            workflow: config.backupWorkflow,
        }))));
    }
    // From the bucket: the newest backup by manifest time (or backup-file's), downloaded into the
    // scratch folder and proved against its manifest's sha256 on the way.
    let remote = null;
    let fetched = null;
    if (config.s3) {
        const settings = config.s3;
        const download = await scratchDownload(config.scratchDir, 's3');
        release = download.release;
        const got = await download.fill(() => log.group('Download from S3', async () => {
            const s3 = await createS3Store(settings);
            const selected = await s3.select(config.backupFile, log);
            return {
                listing: selected.listing,
                local: await s3.fetch(selected.entry, download.dir, log),
            };
        }));
        remote = got.listing;
        fetched = got.local.path;
        dir = download.dir;
    }
    const store = new LocalStore(dir);
    const selected = await store.select(fetched ?? config.backupFile, log).catch(async (err) => {
        await release();
        throw err;
    });
    const { entry } = selected;
    const listing = remote ?? selected.listing;
    const { manifest } = entry;
    // From here a refusal must not leave a downloaded copy behind.
    const engine = await (async () => {
        if (config.engineExplicit && config.engine !== manifest.engine) {
            throw new errors/* UserError */.y(`engine: set to ${config.engine}, but ${entry.path} is a ${manifest.engine} backup. Fix: remove the engine input or set it to ${manifest.engine}.`);
        }
        return createEngine(manifest.engine, config);
    })().catch(async (err) => {
        await release();
        throw err;
    });
    for (const orphan of listing.orphans) {
        log.warning(`${orphan} has no manifest: it cannot be verified and is never chosen as the newest backup.`);
    }
    return { entry, listing, engine, artifact, skipped, release };
}
/**
 * A folder of its own in scratch-dir for a download, removed on an interrupt and by `release`;
 * `fill` runs the download and removes the folder if it fails.
 */
async function scratchDownload(scratchDir, purpose) {
    const scratch = await (0,util_scratch/* scratchFolder */.$B)(scratchDir, purpose);
    const dir = scratch.path;
    const release = () => scratch.remove();
    const fill = async (download) => download().catch(async (err) => {
        await release();
        throw err;
    });
    return { dir, release, fill };
}
/** Selects the backup, runs `fn` on it, and deletes whatever the selection downloaded. */
async function withSelection(ctx, fn) {
    const selection = await selectBackup(ctx);
    try {
        return await fn(selection);
    }
    finally {
        await selection.release();
    }
}
/** The report of a mode that works on a selected backup, with the backup's facts filled in. */
function reportOn(mode, engine, selection, started) {
    const { entry, listing, artifact } = selection;
    const { manifest } = entry;
    const report = emptyReport(mode, engine, started);
    report.artifact = artifactFacts(artifact);
    report.backup = {
        path: entry.path,
        sha256: manifest.backup.sha256,
        bytes: manifest.backup.bytes,
        createdAt: manifest.createdAt,
    };
    report.backupCount = listing.backups.length;
    // Newer artifacts of the name that the backup job did not make: a fork's pull request may
    // have uploaded one on purpose, so the summary names each.
    for (const s of selection.skipped)
        report.warnings.push(`artifact ${s.id} (created ${s.createdAt}) skipped: ${s.reason}`);
    return report;
}
/** What the report says of a downloaded artifact. */
function artifactFacts(artifact) {
    if (!artifact)
        return undefined;
    return {
        name: artifact.name,
        id: artifact.id,
        createdAt: artifact.created_at,
        runId: artifact.workflow_run?.id ?? 0,
    };
}
/**
 * The stored file against its manifest: from `read`, the digest of a pass that already read all
 * of it (decoding, see plaintextOf), or else hashed now, on another thread.
 */
async function checksumOf(entry, read = null) {
    return (0,inspect/* runCheck */.k_)('checksum', async () => (0,checks_checks/* checksum */.cM)(read ?? (await (0,fs/* digestInWorker */.An)(entry.path)), entry.manifest.backup));
}
function ageSeconds(entry, now) {
    return Math.max(0, (now.getTime() - Date.parse(entry.manifest.createdAt)) / 1000);
}
/** Prove a backup is whole and readable: checksum, integrity and schema against its manifest. */
async function verify(ctx) {
    return withSelection(ctx, (selection) => verifySelected(ctx, selection));
}
async function verifySelected(ctx, selection) {
    const { config, log, now } = ctx;
    const { entry, engine } = selection;
    const started = now();
    const report = reportOn('verify', entry.manifest.engine, selection, started);
    // A backup this job's inputs do not trust is not read at all.
    const trust = await trustChecks(entry, config);
    report.checks.push(...trust);
    if (trust.some((c) => !c.ok))
        return finish(report, started, now());
    // An encoded backup's stored file is hashed by the decoding that reads it (below), not twice.
    const checksumAt = report.checks.length;
    const checksumFrom = async (read) => {
        const t0 = stopwatch();
        report.checks.splice(checksumAt, 0, await checksumOf(entry, read));
        report.durations.checksumMs = t0.ms();
    };
    const encoded = isEncoded(entry);
    if (!encoded)
        await checksumFrom(null);
    const t1 = stopwatch();
    const scratch = await (0,util_scratch/* scratchFolder */.$B)(config.scratchDir, 'verify');
    const work = scratch.path;
    try {
        let ref = entry;
        if (encoded) {
            let stored = null;
            try {
                const plain = await plaintextOf(entry, config, work, log);
                if (plain.check)
                    report.checks.push(plain.check);
                ref = plain.ref;
                stored = plain.stored;
                report.decrypted = plain.check?.ok ?? null;
            }
            catch (err) {
                // The nightly job holds only the public key: it proves the stored file, the drill (which
                // holds the recovery key) proves the rest.
                if (!(err instanceof errors/* UserError */.y) || !/^age-identity:/.test(err.message))
                    throw err;
                report.warnings.push(`not decrypted: ${err.message} Only the stored file's checksum was verified here.`);
                ref = null;
            }
            finally {
                // Hashed on its own where decoding did not read it to the end (no key, a wrong one).
                await checksumFrom(stored);
            }
        }
        if (ref) {
            const target = ref;
            const { checks, database } = await log.group('Checks', () => engine.verifyBackup(target, log));
            report.checks.push(...checks);
            report.database = database;
        }
    }
    finally {
        await scratch.remove();
    }
    // Without a separate hash of its own (the fallback above) counted twice.
    report.durations.checksMs = t1.ms() - (encoded ? (report.durations.checksumMs ?? 0) : 0);
    report.backupAgeSeconds = ageSeconds(entry, started);
    report.checks.push((0,checks_checks/* backupAge */.wY)(report.backupAgeSeconds, config.maxBackupAgeSeconds));
    return finish(report, started, now());
}

// EXTERNAL MODULE: ./lib/engines/postgres/tools.js
var tools = __webpack_require__(23548);
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(31421);
// EXTERNAL MODULE: external "node:readline"
var external_node_readline_ = __webpack_require__(80481);
// EXTERNAL MODULE: ./lib/util/secrets.js
var secrets = __webpack_require__(3693);
;// CONCATENATED MODULE: ./lib/gate/pytest.js
/**
 * Runs pytest for the security gate: no shell, its output streamed to the log line by line as it
 * runs, its JUnit XML report read back. Problems that mean pytest never ran the selection (not
 * installed, bad arguments, a marker expression it rejects) are UserErrors naming the input to fix;
 * what the tests did is left to the caller to judge.
 */







/** pytest's documented exit codes. */
const EXIT = {
    ok: 0,
    testsFailed: 1,
    interrupted: 2,
    internalError: 3,
    usage: 4,
    noTests: 5,
};
const TAIL_LINES = 40;
/** The command as a person would type it, for logs and messages. */
function showCommand(argv) {
    return argv.map((a) => (a === '' || /[\s"'\\$`]/.test(a) ? JSON.stringify(a) : a)).join(' ');
}
/** A one-line fix for a command that did not start pytest. */
const INSTALL_FIX = 'Fix: install pytest in an earlier step (actions/setup-python, then pip install pytest or your project install), or set gate-command to how your project runs it, e.g. python -m pytest or poetry run pytest.';
async function assertDirectory(dir) {
    let stat;
    try {
        stat = await promises_.stat(dir);
    }
    catch (err) {
        const code = err.code;
        throw new errors/* UserError */.y(code === 'ENOENT'
            ? `gate-working-directory: ${dir} does not exist. Fix: set gate-working-directory to the folder holding your pytest.ini or pyproject.toml, relative to the repository root, and check the repository is checked out (actions/checkout) before this step.`
            : `gate-working-directory: cannot open ${dir} (${code}). Fix: set gate-working-directory to a readable folder.`);
    }
    if (!stat.isDirectory()) {
        throw new errors/* UserError */.y(`gate-working-directory: ${dir} is a file, not a folder. Fix: set gate-working-directory to the folder that holds it.`);
    }
}
/**
 * The line of pytest's output that says why it refused to run: the `-m` parser's message, an
 * argparse error, or pytest's own `ERROR:` line. This reads text written for people, so it
 * only picks a line to quote; the exit code decides what happened.
 */
function pytest_refusal(tail) {
    const lines = tail.map((l) => l.trim()).filter(Boolean);
    const markers = lines.find((l) => l.includes("Wrong expression passed to '-m'"));
    if (markers)
        return { markers: true, line: markers.replace(/^ERROR:\s*/, '') };
    const line = lines.find((l) => /^\S+: error: /.test(l)) ??
        lines.find((l) => l.startsWith('ERROR:')) ??
        lines.at(-1) ??
        '(no output)';
    return { markers: false, line };
}
/** Runs pytest with the gate's selection; resolves once it exits and its report is read. */
async function runPytest(options, log) {
    const { command, markers, cwd, junitFile } = options;
    await assertDirectory(cwd);
    const argv = [
        ...command,
        '-m',
        markers,
        `--junitxml=${junitFile}`,
        // xunit1 is the JUnit flavour whose <testcase> carries the test's file and line.
        '-o',
        'junit_family=xunit1',
        // No cache: `--lf`/`--ff` in a project's addopts cannot narrow the gate to last run's
        // failures, and nothing is written into the checkout.
        '-p',
        'no:cacheprovider',
    ];
    const tail = [];
    let rootdir = null;
    const shown = `${showCommand(command)} -m ${JSON.stringify(markers)}`;
    const { exitCode, signal } = await log.group(shown, async () => {
        log.info(`$ ${showCommand(argv)}   (in ${cwd})`);
        // The tests are the pull request's code: what they print is shown, never obeyed.
        const verbatim = log.verbatim?.bind(log) ?? ((fn) => fn());
        return verbatim(async () => {
            const child = (0,external_node_child_process_.spawn)(argv[0], argv.slice(1), {
                cwd,
                // Python buffers output written to a pipe; unbuffered, the log shows each test as it ends.
                // The tests get the runner's environment without the action's inputs and tokens: the
                // project's code must not be able to read the recovery key.
                env: (0,secrets/* childEnv */.gf)({ PYTHONUNBUFFERED: '1', ...options.env }),
                stdio: ['ignore', 'pipe', 'pipe'],
                windowsHide: true,
            });
            const onLine = (line) => {
                log.info(line);
                tail.push(line);
                if (tail.length > TAIL_LINES)
                    tail.shift();
                const m = rootdir === null ? /^rootdir: (.+?)(?:, (?:inifile|configfile): .*)?$/.exec(line) : null;
                if (m)
                    rootdir = m[1];
            };
            const streams = [child.stdout, child.stderr].map((stream) => {
                const lines = (0,external_node_readline_.createInterface)({ input: stream, crlfDelay: Infinity });
                lines.on('line', onLine);
                return new Promise((resolve) => lines.on('close', resolve));
            });
            const exited = new Promise((resolve, reject) => {
                child.on('error', reject);
                child.on('close', (code, sig) => resolve({ exitCode: code, signal: sig }));
            });
            try {
                const result = await exited;
                await Promise.all(streams);
                return result;
            }
            catch (err) {
                const code = err.code;
                if (code === 'ENOENT') {
                    throw new errors/* UserError */.y(`gate-command: ${argv[0]} was not found on PATH (the command is "${showCommand(command)}"). ${INSTALL_FIX}`);
                }
                throw new errors/* UserError */.y(`gate-command: cannot start ${argv[0]} (${code ?? err.message}). ${INSTALL_FIX}`);
            }
        });
    });
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    let junitXml = null;
    try {
        // The report pytest wrote, which the pull request's code could have replaced with a FIFO.
        junitXml = (await (0,fs/* readRegularFile */.XF)(junitFile)).toString('utf8');
    }
    catch (err) {
        if (err.code !== 'ENOENT')
            throw err;
    }
    // An exit code means what pytest documents only when pytest ran: `python -m pytest` without
    // pytest installed also exits with 1, which is not "tests failed".
    log.info(junitXml === null && exitCode !== EXIT.usage
        ? `${showCommand(command)} ${how}, and pytest wrote no report: no test results`
        : `pytest ${how} (${exitMeaning(exitCode)})`);
    if (exitCode === EXIT.usage) {
        const why = pytest_refusal(tail);
        if (why.markers) {
            throw new errors/* UserError */.y(`gate-markers: pytest rejects the expression: ${why.line}. Fix: write marker names joined by and, or, not and parentheses, e.g. gate-markers: security or csrf.`);
        }
        throw new errors/* UserError */.y(`gate-command: pytest refused to run "${showCommand(command)}" (exit 4, usage error): ${why.line}. Fix: correct gate-command and the pytest options in your configuration (pytest runs in gate-working-directory ${cwd}).`);
    }
    if (junitXml === null) {
        // pytest writes its report at the end of every session it starts, even one that collects
        // nothing; no report means the command never got as far as running pytest.
        throw new errors/* UserError */.y(`gate-command: "${showCommand(command)}" ${how} without pytest writing its report: ${pytest_refusal(tail).line}. ${INSTALL_FIX}`);
    }
    const root = rootdir === null ? null : external_node_path_.resolve(cwd, rootdir);
    return { argv, exitCode, signal, junitXml, rootdir: root, tail };
}
function exitMeaning(code) {
    switch (code) {
        case EXIT.ok:
            return 'all selected tests passed';
        case EXIT.testsFailed:
            return 'tests failed';
        case EXIT.interrupted:
            return 'interrupted, e.g. by a collection error';
        case EXIT.internalError:
            return 'pytest internal error';
        case EXIT.usage:
            return 'usage error';
        case EXIT.noTests:
            return 'no tests selected';
        default:
            return code === null ? 'killed' : 'not a pytest exit code';
    }
}

;// CONCATENATED MODULE: ./lib/gate/csp.js
/**
 * The Content-Security-Policy hardening check (runbook, "Security Configuration"): reads the
 * policy a `<meta http-equiv="Content-Security-Policy">` in the front end's HTML delivers, the
 * way a browser would, and reports what it allows that an attacker could use.
 *
 * The HTML goes through parse5, which builds the same tree a browser does (a `<meta>` written
 * between `</head>` and `<body>` still lands in `<head>`; one in `<noscript>` is text), because
 * where the element ends up decides whether the policy applies at all.
 */


/** The action input naming the HTML file; used in error messages. */
const CSP_FILE_INPUT = 'csp-file';
/** The check's name in the report and the failed-checks output. */
const CSP_CHECK = 'csp';
const POLICY = '(policy)';
/** CSP3 and the still-shipped older directives; anything else is ignored by browsers. */
const KNOWN = new Set([
    'base-uri',
    'block-all-mixed-content',
    'child-src',
    'connect-src',
    'default-src',
    'fenced-frame-src',
    'font-src',
    'form-action',
    'frame-ancestors',
    'frame-src',
    'img-src',
    'manifest-src',
    'media-src',
    'object-src',
    'prefetch-src',
    'report-to',
    'report-uri',
    'require-trusted-types-for',
    'sandbox',
    'script-src',
    'script-src-attr',
    'script-src-elem',
    'style-src',
    'style-src-attr',
    'style-src-elem',
    'trusted-types',
    'upgrade-insecure-requests',
    'webrtc',
    'worker-src',
]);
/** Directives the HTML spec removes from a policy delivered by `<meta>`. */
const IGNORED_IN_META = {
    'frame-ancestors': 'clickjacking protection needs the HTTP header (or X-Frame-Options)',
    'report-uri': 'violation reports need the HTTP header',
    sandbox: 'sandboxing needs the HTTP header or the iframe sandbox attribute',
};
/**
 * Parses a serialized policy as CSP3 §2.2.1 does: split at `;`, trim, the name is the first
 * word in lower case, the values the remaining words; a repeated directive is dropped.
 */
function parsePolicy(text) {
    const directives = [];
    const duplicates = [];
    for (const token of text.split(';')) {
        const words = token.split(/[\t\n\f\r ]+/).filter(Boolean);
        if (words.length === 0)
            continue;
        const directive = { name: words[0].toLowerCase(), values: words.slice(1) };
        if (directives.some((d) => d.name === directive.name))
            duplicates.push(directive);
        else
            directives.push(directive);
    }
    return { directives, duplicates };
}
const isNonceOrHash = (v) => /^'(nonce-|sha256-|sha384-|sha512-)/i.test(v);
/** Sources that let any site (or the page's own data) supply a script. */
function isWildcard(v) {
    const s = v.toLowerCase();
    if (['*', 'http:', 'https:', 'data:'].includes(s))
        return true;
    // A host-source whose host is `*` (https://*, *:443) matches every host.
    return /^([a-z][a-z0-9+.-]*:\/\/)?\*(:(\d+|\*))?(\/.*)?$/.test(s);
}
function scriptFindings(name, values, from, weak) {
    const findings = [];
    const lower = values.map((v) => v.toLowerCase());
    const note = from === name ? '' : ` (${name} is not set, so scripts fall back to ${from})`;
    const nonceOrHash = values.some(isNonceOrHash);
    const strictDynamic = lower.includes("'strict-dynamic'");
    if (lower.includes("'unsafe-inline'")) {
        findings.push(nonceOrHash
            ? {
                directive: from,
                problem: `'unsafe-inline'${note} is ignored by CSP2+ browsers because a nonce or hash is present; it only keeps old browsers working, and is not a weakness`,
                severity: 'warn',
            }
            : {
                directive: from,
                problem: `'unsafe-inline'${note} lets injected inline scripts and event handlers run; use nonces or hashes instead`,
                severity: weak,
            });
    }
    if (lower.includes("'unsafe-eval'")) {
        findings.push({
            directive: from,
            problem: `'unsafe-eval'${note} allows eval() and new Function(); remove it (use 'wasm-unsafe-eval' if only WebAssembly needs it)`,
            severity: weak,
        });
    }
    const wild = values.filter(isWildcard);
    if (wild.length) {
        findings.push(nonceOrHash && strictDynamic
            ? {
                directive: from,
                problem: `${wild.join(' ')}${note} is ignored by CSP3 browsers because of 'strict-dynamic'; it only keeps old browsers working`,
                severity: 'warn',
            }
            : {
                directive: from,
                problem: `${wild.join(' ')}${note} lets scripts load from ${wild.length === 1 ? 'a source' : 'sources'} an attacker can supply; list the script hosts, or use nonces or hashes`,
                severity: weak,
            });
    }
    return findings;
}
/** What a parsed policy lets an attacker do. `strict` turns weaknesses into failures. */
function evaluatePolicy(directives, duplicates, strict) {
    const weak = strict ? 'fail' : 'warn';
    const get = (name) => directives.find((d) => d.name === name);
    const isNone = (d) => d !== undefined && d.values.length === 1 && d.values[0].toLowerCase() === "'none'";
    const findings = [];
    const defaultSrc = get('default-src');
    if (!defaultSrc) {
        findings.push({
            directive: 'default-src',
            problem: "is not set, so every fetch directive not listed (connect-src, frame-src, …) allows anything; add default-src 'self'",
            severity: weak,
        });
    }
    const scriptSrc = get('script-src') ?? defaultSrc;
    if (scriptSrc)
        findings.push(...scriptFindings('script-src', scriptSrc.values, scriptSrc.name, weak));
    else {
        findings.push({
            directive: 'script-src',
            problem: "is not set, nor is default-src, so scripts may load from anywhere; add script-src 'self'",
            severity: weak,
        });
    }
    for (const name of ['script-src-elem', 'script-src-attr']) {
        const d = get(name);
        if (d)
            findings.push(...scriptFindings(name, d.values, name, weak));
    }
    const objectSrc = get('object-src');
    if (objectSrc && !isNone(objectSrc)) {
        findings.push({
            directive: 'object-src',
            problem: `is ${objectSrc.values.join(' ') || 'empty'}, not 'none': <object> and <embed> can load active content; set object-src 'none'`,
            severity: weak,
        });
    }
    else if (!objectSrc && !isNone(defaultSrc)) {
        findings.push({
            directive: 'object-src',
            problem: `is not set, and default-src is not 'none', so <object> and <embed> ${defaultSrc ? 'fall back to default-src' : 'may load anything'}; add object-src 'none'`,
            severity: weak,
        });
    }
    for (const d of directives) {
        const why = IGNORED_IN_META[d.name];
        if (why) {
            findings.push({
                directive: d.name,
                problem: `is ignored in a <meta> policy: ${why}; send it as a Content-Security-Policy response header`,
                severity: 'warn',
            });
        }
        else if (!KNOWN.has(d.name)) {
            findings.push({
                directive: d.name,
                problem: 'is not a CSP directive, so browsers ignore it; check the spelling',
                severity: 'warn',
            });
        }
    }
    for (const d of duplicates) {
        findings.push({
            directive: d.name,
            problem: `is repeated; browsers keep the first and ignore this one (${d.values.join(' ') || 'no sources'}), so merge them`,
            severity: 'warn',
        });
    }
    return findings;
}
const attr = (el, name) => el.attrs.find((a) => a.name === name)?.value;
const lineOf = (node) => node.sourceCodeLocation?.startLine ?? 0;
/** Elements that load or run something the policy should cover. */
function isSubresource(el) {
    if (el.tagName === 'script' || el.tagName === 'style')
        return true;
    if (el.tagName !== 'link')
        return false;
    const rel = (attr(el, 'rel') ?? '').toLowerCase().split(/\s+/);
    return rel.some((r) => ['stylesheet', 'modulepreload', 'preload'].includes(r));
}
/** The CSP meta elements, and every element in document order (template contents skipped). */
function findMetas(document) {
    const metas = [];
    const reportOnly = [];
    const order = [];
    const walk = (node) => {
        for (const child of node.childNodes) {
            if (!('tagName' in child))
                continue;
            order.push(child);
            if (child.tagName === 'meta') {
                // http-equiv is matched ASCII case-insensitively and not trimmed, as browsers do.
                const equiv = attr(child, 'http-equiv')?.toLowerCase();
                if (equiv === 'content-security-policy') {
                    metas.push({
                        content: attr(child, 'content') ?? null,
                        line: lineOf(child),
                        parent: child.parentNode && 'tagName' in child.parentNode ? child.parentNode.tagName : '',
                        element: child,
                    });
                }
                else if (equiv === 'content-security-policy-report-only')
                    reportOnly.push(lineOf(child));
            }
            walk(child);
        }
    };
    walk(document);
    return { metas, reportOnly, order };
}
async function readHtml(file) {
    try {
        return (await (0,fs/* readRegularFile */.XF)(file)).toString('utf8');
    }
    catch (err) {
        const code = err.code;
        if (code === 'ENOENT') {
            throw new errors/* UserError */.y(`${CSP_FILE_INPUT}: ${file} does not exist. Fix: set ${CSP_FILE_INPUT} to the HTML file that carries the policy, e.g. frontend/index.html, or to none to turn the check off.`);
        }
        if (code === 'EISDIR' || (err instanceof fs/* NotRegularFile */.k1 && err.kind === 'a folder')) {
            throw new errors/* UserError */.y(`${CSP_FILE_INPUT}: ${file} is a folder. Fix: name the HTML file in it, e.g. ${file.replace(/\/+$/, '')}/index.html.`);
        }
        throw new errors/* UserError */.y(`${CSP_FILE_INPUT}: cannot read ${file} (${err instanceof fs/* NotRegularFile */.k1 ? err.what : (code ?? err.message)}). Fix: make it readable by the job's user, or set ${CSP_FILE_INPUT} to another page, or to none.`);
    }
}
const EXAMPLE = `<meta http-equiv="Content-Security-Policy" content="default-src 'self'; object-src 'none'">`;
/** Reads `file`, finds its meta CSP and reports what the policy allows. */
async function checkCsp(opts) {
    const html = await readHtml(opts.file);
    // parse5 is loaded here, by the gate alone: it would add a tenth to every mode's start-up.
    const { parse } = await __webpack_require__.e(/* import() */ 194).then(__webpack_require__.bind(__webpack_require__, 63194));
    const weak = opts.strict ? 'fail' : 'warn';
    const { metas, reportOnly, order } = findMetas(parse(html, { sourceCodeLocationInfo: true }));
    const findings = [];
    const inHead = metas.filter((m) => m.parent === 'head');
    // The HTML spec skips a meta with no content or an empty one before parsing it.
    const enforced = inHead.filter((m) => m.content);
    const chosen = enforced[0];
    const misplacedSeverity = chosen ? 'warn' : 'fail';
    for (const m of metas) {
        if (m.parent !== 'head') {
            findings.push({
                directive: POLICY,
                problem: `the meta at line ${m.line} is inside <${m.parent || 'template'}>, where browsers ignore it; move it into <head>`,
                severity: misplacedSeverity,
                line: m.line,
            });
        }
        else if (!m.content) {
            findings.push({
                directive: POLICY,
                problem: `the meta at line ${m.line} has ${m.content === null ? 'no' : 'an empty'} content attribute, so browsers ignore it; put the policy in content`,
                severity: misplacedSeverity,
                line: m.line,
            });
        }
    }
    if (metas.length === 0) {
        const ro = reportOnly.length
            ? ` (the Content-Security-Policy-Report-Only meta at line ${reportOnly[0]} does nothing: report-only works only as a response header)`
            : '';
        findings.push({
            directive: POLICY,
            problem: `no <meta http-equiv="Content-Security-Policy">${ro}; add one to <head>, e.g. ${EXAMPLE}`,
            severity: 'fail',
        });
    }
    let directives = [];
    if (chosen) {
        const parsed = parsePolicy(chosen.content);
        directives = parsed.directives;
        if (directives.length === 0) {
            findings.push({
                directive: POLICY,
                problem: `the meta at line ${chosen.line} holds no directives; put the policy in content, e.g. default-src 'self'; object-src 'none'`,
                severity: 'fail',
                line: chosen.line,
            });
        }
        else {
            for (const f of evaluatePolicy(directives, parsed.duplicates, opts.strict))
                findings.push({ ...f, line: chosen.line });
            const before = order.slice(0, order.indexOf(chosen.element)).filter(isSubresource);
            if (before.length) {
                const first = before[0];
                findings.push({
                    directive: POLICY,
                    problem: `<${first.tagName}> at line ${lineOf(first)}${before.length > 1 ? ` and ${before.length - 1} more` : ''} come${before.length > 1 ? '' : 's'} before the policy, which covers only what follows it; put the meta first in <head>`,
                    severity: weak,
                    line: chosen.line,
                });
            }
        }
        for (const extra of enforced.slice(1)) {
            findings.push({
                directive: POLICY,
                problem: `the meta at line ${extra.line} is a second policy; browsers enforce both, and only the first (line ${chosen.line}) is analysed here; merge them into one`,
                severity: 'warn',
                line: extra.line,
            });
        }
    }
    const check = summarize(opts.file, directives, findings, opts.strict);
    return {
        check,
        directives,
        findings,
        markdown: renderCsp(opts.file, directives, findings, check),
    };
}
/** Findings listed in the check's detail; the table has them all. */
const MAX_LISTED = 5;
function summarize(file, directives, findings, strict) {
    const fails = findings.filter((f) => f.severity === 'fail');
    const warns = findings.filter((f) => f.severity === 'warn');
    const parts = [
        directives.length
            ? `${file}: ${directives.length} ${directives.length === 1 ? 'directive' : 'directives'}`
            : `${file}: no policy`,
    ];
    if (fails.length)
        parts.push(`${fails.length} failing`);
    if (warns.length)
        parts.push(`${warns.length} ${warns.length === 1 ? 'warning' : 'warnings'}`);
    if (findings.length === 0)
        parts.push('no weaknesses found');
    const listed = [...fails, ...warns].slice(0, MAX_LISTED).map(describeFinding);
    const more = findings.length > MAX_LISTED ? `; and ${findings.length - MAX_LISTED} more` : '';
    const mode = !fails.length && warns.length && !strict ? ' (strict is off)' : '';
    return {
        name: CSP_CHECK,
        ok: fails.length === 0,
        detail: `${parts.join(', ')}${mode}${listed.length ? `: ${listed.join('; ')}${more}` : ''}`,
    };
}
const describeFinding = (f) => f.directive === POLICY ? f.problem : `${f.directive} ${f.problem}`;
/** Text for a Markdown table cell: no table breaks, no HTML, no emphasis. */
function mdCell(s) {
    return s
        .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/\s*\n\s*/g, ' ');
}
const ICON = { fail: '❌', warn: '⚠️' };
function renderCsp(file, directives, findings, check) {
    const cellFor = (name) => findings
        .filter((f) => f.directive === name)
        .map((f) => `${ICON[f.severity]} ${mdCell(f.problem)}`)
        .join('<br>');
    const fails = findings.filter((f) => f.severity === 'fail').length;
    const status = check.ok
        ? `✅ **passed**${findings.length ? ` with ${findings.length} ${findings.length === 1 ? 'warning' : 'warnings'}` : ''}`
        : `❌ **failed**: ${fails} failing ${fails === 1 ? 'finding' : 'findings'}`;
    const lines = [`### Content-Security-Policy in ${mdCell(file)}`, '', status, ''];
    lines.push('| Directive | Sources | Finding |', '| --- | --- | --- |');
    const names = new Set(directives.map((d) => d.name));
    for (const d of directives)
        lines.push(`| ${mdCell(d.name)} | ${mdCell(d.values.join(' '))} | ${cellFor(d.name)} |`);
    const rest = [...new Set(findings.map((f) => f.directive))].filter((n) => !names.has(n));
    for (const name of rest) {
        const sources = name === POLICY ? '' : '(not set)';
        lines.push(`| ${mdCell(name)} | ${sources} | ${cellFor(name)} |`);
    }
    lines.push('');
    return lines.join('\n');
}

;// CONCATENATED MODULE: ./lib/modes/gate.js
/**
 * The security gate: `pytest -m "security or csrf"`, the runbook's required check. It fails on
 * any failed or errored test, on pytest itself failing (collection error, crash, interruption),
 * and on fewer tests than gate-min-tests having run: a gate that passes on zero tests protects
 * nothing. Mode `gate` runs it and the CSP check of csp-file, each its own check (pull request
 * checks); a drill with gate-after-drill runs it against the restored copy, as the runbook's
 * smoke test.
 */










const GATE_CHECK = 'security-gate';
/** GitHub shows at most 10 error annotations per step; one stays free for the job's failure. */
const MAX_ANNOTATIONS = 9;
/**
 * CSP findings shown as warnings on the page's lines; the summary's table has them all. GitHub
 * shows 10 warnings per step, and the step's other warnings need room too.
 */
const MAX_CSP_ANNOTATIONS = 5;
/** Names listed in a check's detail; the summary's table has them all. */
const MAX_NAMED = 3;
const tests = (n) => `${n} ${n === 1 ? 'test' : 'tests'}`;
function named(entries) {
    const names = [...new Set(entries.map((e) => e.name))];
    const more = names.length > MAX_NAMED ? `, and ${names.length - MAX_NAMED} more` : '';
    return names.slice(0, MAX_NAMED).join(', ') + more;
}
/** The gate's verdict from pytest's exit code and its report. */
function judge(run, r, markers, minTests) {
    const selection = `-m ${JSON.stringify(markers)}`;
    const of = (kind) => r.problems.filter((p) => p.kind === kind);
    const problems = [];
    if (r.failed)
        problems.push(`${r.failed} of ${tests(r.tests)} failed: ${named(of('failure'))}`);
    const errored = of('error');
    if (errored.length) {
        const n = new Set(errored.map((e) => e.name)).size;
        problems.push(`${tests(n)} errored in setup or teardown: ${named(errored)}`);
    }
    const uncollected = of('collection');
    if (uncollected.length) {
        const first = uncollected[0];
        problems.push(`pytest could not collect ${uncollected.length === 1 ? first.name : `${uncollected.length} files (${named(uncollected)})`}: ${first.message}`);
    }
    const internal = of('internal');
    if (internal.length || run.exitCode === EXIT.internalError) {
        problems.push(`pytest crashed with an internal error (exit 3)${internal[0] ? `: ${internal[0].message}` : ''}`);
    }
    if (run.exitCode === EXIT.interrupted && !uncollected.length) {
        problems.push(`pytest was interrupted (exit 2) after ${tests(r.tests)}`);
    }
    if (run.signal)
        problems.push(`pytest was killed by ${run.signal}`);
    // Only a session that ran to its end says how many tests the selection holds.
    const completed = [EXIT.ok, EXIT.testsFailed, EXIT.noTests].includes(run.exitCode ?? -1);
    const ran = r.tests - r.skipped;
    if (completed && ran < minTests) {
        problems.push(r.tests === 0
            ? `0 tests selected by ${selection}; gate-min-tests is ${minTests}`
            : r.skipped
                ? `${ran} of the ${tests(r.tests)} selected by ${selection} ran (${r.skipped} skipped); gate-min-tests is ${minTests}`
                : `${tests(r.tests)} selected by ${selection}; gate-min-tests is ${minTests}`);
    }
    if (problems.length === 0 && run.exitCode !== EXIT.ok) {
        problems.push(`pytest exited with code ${run.exitCode} (${exitMeaning(run.exitCode)}) though its report shows no failed test`);
    }
    if (problems.length)
        return { name: GATE_CHECK, ok: false, detail: problems.join('; ') };
    const skipped = r.skipped ? `, ${r.skipped} skipped (a weakened gate: see the list)` : '';
    return {
        name: GATE_CHECK,
        ok: true,
        detail: `${tests(r.tests)} selected by ${selection}: ${r.passed} passed${skipped}`,
    };
}
/** A path as the repository sees it, for annotations on the diff. */
function gate_repoPath(absolute, root) {
    return external_node_path_.relative(root, absolute).split(external_node_path_.sep).join('/');
}
const KIND_TITLE = {
    failure: 'failed',
    error: 'errored',
    collection: 'could not be collected',
    internal: 'crashed pytest',
    skip: 'skipped',
    xfail: 'xfailed',
};
/**
 * Runs pytest with the gate's selection, `env` added to its environment. Throws a UserError when
 * pytest could not run the selection at all (not installed, bad options, bad marker expression).
 */
async function runGate(config, log, env = {}) {
    const cwd = external_node_path_.resolve(config.gateWorkingDirectory);
    const run = await (0,util_scratch/* withScratch */.hM)(config.scratchDir, 'gate', (tmp) => runPytest({
        command: config.gateCommand,
        markers: config.gateMarkers,
        cwd,
        env,
        junitFile: external_node_path_.join(tmp, 'pytest-junit.xml'),
    }, log));
    // The XML parser is loaded here, by the one mode that reads a JUnit report.
    const { parseJUnit } = await Promise.all(/* import() */[__webpack_require__.e(780), __webpack_require__.e(303)]).then(__webpack_require__.bind(__webpack_require__, 64303));
    let results;
    try {
        results = parseJUnit(run.junitXml);
    }
    catch (err) {
        throw new errors/* UserError */.y(`gate-command: pytest's JUnit XML report cannot be read (${(0,errors/* describeError */.U)(err)}). Fix: remove options that change --junitxml or junit_family from gate-command and the pytest configuration.`);
    }
    const check = judge(run, results, config.gateMarkers, config.gateMinTests);
    const gate = {
        command: `${showCommand(config.gateCommand)} -m ${JSON.stringify(config.gateMarkers)}`,
        workingDirectory: config.gateWorkingDirectory,
        markers: config.gateMarkers,
        minTests: config.gateMinTests,
        exitCode: run.exitCode,
        tests: {
            selected: results.tests,
            passed: results.passed,
            failed: results.failed,
            errors: results.errors,
            skipped: results.skipped,
        },
        failures: results.problems,
        skipped: results.skips,
    };
    for (const p of results.problems.slice(0, MAX_ANNOTATIONS)) {
        if (!p.file)
            continue;
        log.annotate?.('error', p.message || KIND_TITLE[p.kind], {
            file: gate_repoPath(external_node_path_.resolve(run.rootdir ?? cwd, p.file), config.runner.workspace),
            line: p.line ?? undefined,
            title: `Security gate: ${p.name} ${KIND_TITLE[p.kind]}`,
        });
    }
    const warnings = [];
    if (results.skips.length) {
        warnings.push(`${tests(results.skipped)} of the security gate skipped or xfailed (${named(results.skips)}): a skipped gate test is a weakened gate.`);
    }
    for (const w of warnings)
        log.warning(w);
    return { check, gate, warnings };
}
/**
 * Runs the gate and adds its check, section, warnings and duration to `report`. Whatever stops
 * pytest (not installed, a bad option, a missing working directory) is a failed security-gate
 * check, not an error of the whole mode: the run's other checks (the CSP check, a drill's
 * checks) keep their results in the report.
 */
async function gateInto(report, config, log, env) {
    const t0 = stopwatch();
    try {
        const { check, gate, warnings } = await runGate(config, log, env);
        report.checks.push(check);
        report.gate = gate;
        report.warnings.push(...warnings);
    }
    catch (err) {
        report.checks.push({ name: GATE_CHECK, ok: false, detail: (0,errors/* describeError */.U)(err) });
    }
    finally {
        report.durations.gateMs = t0.ms();
    }
}
const isMissing = (file) => promises_.stat(file).then(() => false, (err) => err.code === 'ENOENT');
/**
 * The runbook's other security item: the CSP directive in the front end's page, as its own
 * check. A page that cannot be read fails this check alone; pytest's results stay.
 */
async function cspInto(report, config, log) {
    const file = config.cspFile;
    if (file === null)
        return;
    if (!config.cspFileExplicit && (await isMissing(file))) {
        // Only the default, and this checkout keeps its page elsewhere or has none (OmniAI's
        // backend-only commits): not a failure of the gate, whose verdict is then pytest's alone.
        const warning = `CSP check skipped: no ${file} (the default ${CSP_FILE_INPUT}) in ${process.cwd()}. Fix: point the check at the page that carries the Content-Security-Policy with ${CSP_FILE_INPUT}: path/to/index.html, or turn it off with ${CSP_FILE_INPUT}: none.`;
        log.warning(warning);
        report.warnings.push(warning);
        return;
    }
    try {
        const csp = await checkCsp({ file, strict: config.cspStrict });
        report.checks.push(csp.check);
        report.csp = { file, markdown: csp.markdown, findings: csp.findings };
        for (const f of csp.findings.filter((f) => f.severity === 'warn')) {
            report.warnings.push(`CSP ${f.directive}: ${f.problem}`);
        }
        // On the page's lines in the pull request. Warnings, failing findings too: the error
        // annotations are the failed tests' and the job's own (runGate keeps one free for it).
        for (const f of csp.findings.slice(0, MAX_CSP_ANNOTATIONS)) {
            log.annotate?.('warning', f.directive === POLICY ? f.problem : `${f.directive} ${f.problem}`, {
                file: gate_repoPath(external_node_path_.resolve(file), config.runner.workspace),
                line: f.line || undefined,
                title: f.severity === 'fail'
                    ? 'Content-Security-Policy failure'
                    : 'Content-Security-Policy weakness',
            });
        }
    }
    catch (err) {
        report.checks.push({ name: CSP_CHECK, ok: false, detail: (0,errors/* describeError */.U)(err) });
    }
}
/** Mode gate: the security gate and the CSP check, as a pull request check. */
async function gate({ config, log, now, }) {
    const started = now();
    const report = emptyReport('gate', (0,options_config/* engineOf */.ky)(config), started);
    await gateInto(report, config, log, {});
    await cspInto(report, config, log);
    return finish(report, started, now());
}
/**
 * Drill with gate-after-drill: the gate against the restored copy, while it still exists. Only
 * a restore that passed every check is worth testing; a gate that could not run is a failed
 * check (gateInto), so the drill's own results stay in the report.
 */
async function gateOnRestored({ config, log }, db, report) {
    const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
    if (!db || failed.length) {
        report.checks.push({
            name: GATE_CHECK,
            ok: false,
            detail: `not run: ${db ? `the restored copy failed ${failed.join(', ')}` : 'the backup did not restore'}, and the gate runs only against a restore that passed every check`,
        });
        return;
    }
    const url = db.url();
    const env = { DATABASE_URL: url };
    if (url.startsWith('sqlite:///'))
        env.OMNIAI_DB_PATH = url.slice('sqlite:///'.length);
    // The restore server's password (user info, query or PGPASSWORD) reaches pytest in
    // DATABASE_URL, which its tests need; the log shows the URL without it or its query.
    for (const secret of (0,tools/* pgSecrets */.fx)(url))
        log.mask?.(secret);
    const shown = (0,options_config/* isPostgresUrl */.pT)(url) ? (0,tools/* redactPgUrl */.gs)(url) : url;
    log.info(`security gate against the restored copy: DATABASE_URL=${shown}`);
    await gateInto(report, config, log, env);
}

;// CONCATENATED MODULE: ./lib/modes/drill.js


















/**
 * The quarterly restore drill: restore the backup into an isolated scratch folder, check it
 * against its manifest, record RTO and RPO, log the drill, delete the scratch copy (also when
 * a check fails).
 */
async function drill(ctx) {
    return withSelection(ctx, (selection) => drillSelected(ctx, selection));
}
async function drillSelected(ctx, selection) {
    const { config, log, now } = ctx;
    const { entry, engine } = selection;
    const started = now();
    const { manifest } = entry;
    const report = reportOn('drill', manifest.engine, selection, started);
    // A backup this job's inputs do not trust is neither decoded nor restored; the failed drill
    // is still recorded.
    const trust = await trustChecks(entry, config);
    report.checks.push(...trust);
    if (trust.some((c) => !c.ok)) {
        finish(report, started, now());
        if (config.drillLog)
            await appendDrillLog(config.drillLog, report, config.runner.runUrl);
        await recordEvidence(ctx, report);
        return report;
    }
    log.info(`drill: restoring ${entry.path} (taken ${manifest.createdAt})`);
    // The checksum is read on another thread while the restore and checks run on this one; its
    // result still heads the report.
    // An encoded backup's stored file is hashed by the decoding that reads it all (below), not
    // twice; where decoding stops short, on its own.
    const encoded = isEncoded(entry);
    const checksumFrom = (read) => {
        const t0 = stopwatch();
        return checksumOf(entry, read).then((check) => {
            report.durations.checksumMs = t0.ms();
            return check;
        });
    };
    let checksumming = encoded ? null : checksumFrom(null);
    await (0,util_scratch/* ensureScratchDir */.s2)(config.scratchDir);
    // Room for the decoded backup and the restored copy, before anything is written.
    await requireSpace([scratchNeed(manifest, config.scratchDir, manifest.engine === 'sqlite')]);
    const work = await (0,util_scratch/* scratchFolder */.$B)(config.scratchDir, 'drill');
    const scratch = work.path;
    try {
        const t1 = stopwatch();
        let db = null;
        let ref = entry;
        if (encoded) {
            // Decrypting with the recovery key is part of the drill: it proves the key still works.
            const plain = await plaintextOf(entry, config, scratch, log).catch((err) => ({
                ref: null,
                check: { name: 'decrypt', ok: false, detail: (0,errors/* describeError */.U)(err) },
                stored: null,
            }));
            checksumming = checksumFrom(plain.stored);
            if (plain.check)
                report.checks.push(plain.check);
            report.decrypted = plain.check?.ok ?? null;
            ref = plain.ref;
        }
        try {
            if (!ref)
                throw new Error('the backup could not be decoded (see the decrypt check)');
            const source = ref;
            db = await log.group('Restore', () => engine.restore(source === entry ? source : { ...source, decoded: true }, scratch, log));
        }
        catch (err) {
            const why = manifest.engine === 'sqlite'
                ? await asWriteFailure(err, inputs/* Inputs */.G0.ScratchDir, scratch, 'the scratch copy was removed')
                : await asWriteFailure(err, inputs/* Inputs */.G0.RestoreConnectionString, 'the restore server', 'the scratch database was dropped');
            report.checks.push({
                name: 'restore',
                ok: false,
                detail: `the backup did not restore: ${(0,errors/* describeError */.U)(why)}`,
            });
        }
        const restored = db;
        try {
            if (restored) {
                report.restoreSeconds = t1.seconds();
                report.durations.restoreMs = t1.ms();
                const t2 = stopwatch();
                const { checks, database } = await log.group('Checks', () => (0,inspect/* checkRestored */.Hl)(restored, manifest));
                report.checks.push(...checks);
                report.durations.checksMs = t2.ms();
                report.database = database;
                report.checks.push((0,checks_checks/* restoreTime */.Uh)(report.restoreSeconds, config.maxRestoreSeconds));
            }
            // The gate runs only on a drill whose every check passed, the checksum included.
            report.checks.unshift(await (checksumming ?? checksumFrom(null)));
            // The runbook's smoke test: the security gate against the restored copy while it still
            // exists (closing a PostgreSQL copy drops its scratch database and role).
            if (config.gateAfterDrill)
                await gateOnRestored(ctx, restored, report);
        }
        finally {
            await restored?.close();
        }
        await smokeInto(report, ctx);
    }
    finally {
        // The runbook's "delete restore test database", whatever happened above.
        await work.remove();
    }
    report.backupAgeSeconds = ageSeconds(entry, started);
    report.checks.push((0,checks_checks/* backupAge */.wY)(report.backupAgeSeconds, config.maxBackupAgeSeconds));
    finish(report, started, now());
    if (config.drillLog)
        await appendDrillLog(config.drillLog, report, config.runner.runUrl);
    await recordEvidence(ctx, report);
    return report;
}
/**
 * The drill's record where the team and auditors look: a comment on the tracking issue, which a
 * failed drill reopens. Outside a workflow run there is no repository to record in. With
 * drill-evidence: issue a record that cannot be written fails the job: a drill nobody can show
 * happened does not count. With auto (the default) a token that may not write issues, or a
 * repository with Issues turned off, is one warning with the fix, and the drill's own checks
 * decide the job: a workflow copied without `issues: write` still says whether the backup
 * restores. Any other failure (a bad token, GitHub down after retries, a record that would not
 * count) fails the drill under auto too: the team set it up to record, and it does not.
 */
async function recordEvidence({ config, log, now }, report) {
    if (config.drillEvidence === 'none')
        return;
    if (!config.runner.repository) {
        log.info('drill-evidence: not a GitHub Actions run, so no tracking issue; the drill log holds the record');
        return;
    }
    const auto = {};
    const check = await (0,inspect/* runCheck */.k_)('evidence', async () => {
        const settings = evidenceSettings({
            token: config.githubToken,
            title: config.drillIssueTitle,
            author: config.drillEvidenceAuthor,
        }, config.runner);
        const { issueNumber, commentUrl, reopened, created } = await log
            .group('Drill evidence', () => recordDrill(drillRecord(report, config.runner.runUrl), settings, log))
            .catch((err) => {
            if (err instanceof IssuesRefused && config.drillEvidence === 'auto')
                auto.refused = err;
            throw err;
        });
        report.evidence = { issueNumber, commentUrl, reopened, created };
        return {
            name: 'evidence',
            ok: true,
            detail: `recorded on issue #${issueNumber}${created ? ' (opened now)' : ''}${reopened ? ' (reopened: the drill failed)' : ''}: ${commentUrl}`,
        };
    });
    if (auto.refused) {
        const warning = `${auto.refused.message} (drill-evidence: auto, so this drill is not on the tracking issue and its own checks decide the job)`;
        report.warnings.push(warning);
        log.warning(warning);
        return;
    }
    report.checks.push(check);
    finish(report, new Date(report.startedAt), now());
}
/** What a drill leaves on record: in the drill log, and in the tracking issue. */
function drillRecord(report, run) {
    return {
        date: report.finishedAt,
        ok: report.ok,
        engine: report.engine,
        backup: report.backup && {
            file: external_node_path_.basename(report.backup.path),
            sha256: report.backup.sha256,
            createdAt: report.backup.createdAt,
        },
        backupAgeSeconds: report.backupAgeSeconds,
        restoreSeconds: report.restoreSeconds,
        databaseBytes: report.database?.bytes ?? null,
        backupCount: report.backupCount,
        decrypted: report.decrypted ?? null,
        artifact: report.artifact ?? null,
        checks: Object.fromEntries(report.checks.map((c) => [c.name, c.ok])),
        failed: report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
        run,
    };
}
/** One JSON line per drill: the runbook's "log drill completion date". */
async function appendDrillLog(file, report, run) {
    const record = drillRecord(report, run);
    try {
        await (0,fs/* makeDirs */.X2)(external_node_path_.dirname(file));
        // Not through a symbolic link (one planted in the workspace would have the record appended
        // to any file the runner can write), nor into a FIFO or a device (opened without waiting).
        const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = external_node_fs_.constants;
        const handle = await promises_.open(file, O_WRONLY | O_APPEND | O_CREAT | (O_NOFOLLOW ?? 0) | (O_NONBLOCK ?? 0), 0o600)
            .catch((err) => {
            if (err.code === 'ELOOP' || err.code === 'EMLINK') {
                throw Object.assign(new Error(`${file} is a symbolic link`), { code: 'a symbolic link' });
            }
            // O_NONBLOCK on a FIFO that nothing reads.
            if (err.code === 'ENXIO') {
                throw Object.assign(new Error(`${file} is a FIFO`), {
                    code: 'a FIFO, not a regular file',
                });
            }
            throw err;
        });
        try {
            const stat = await handle.stat();
            if (!stat.isFile()) {
                const not = (0,fs/* notRegular */.oQ)(file, stat);
                throw Object.assign(new Error(not.message), { code: not.what });
            }
            await handle.write(JSON.stringify(record) + '\n');
            await handle.sync();
        }
        finally {
            await handle.close();
        }
    }
    catch (err) {
        const cause = writeFailureCause(err) ?? err.code ?? (0,errors/* describeError */.U)(err);
        throw new errors/* UserError */.y(`drill-log: cannot append to ${file}: ${cause}. Fix: set drill-log to a writable file with room, or none.`);
    }
    report.drillLog = file;
}

;// CONCATENATED MODULE: ./lib/modes/service.js
/**
 * The backend's stop and start commands, run around a restore as the runbook orders it: stop
 * the backend, replace the database, start the backend. Each runs without a shell (argv from
 * the input), its output in a log group, and a failure is an error naming the input.
 */



/** How long a stop or start command may take before it counts as failed. */
const SERVICE_COMMAND_TIMEOUT_MS = 10 * 60 * 1000;
/**
 * Runs `argv` (e.g. ['systemctl', 'stop', 'omniai']) to completion, its output line by line in
 * the log. Throws a UserError naming `input` when it cannot start, exits non-zero, or times out.
 */
async function runServiceCommand(argv, input, log, timeoutMs = SERVICE_COMMAND_TIMEOUT_MS) {
    const shown = argv.join(' ');
    await log.group(`${input}: ${shown}`, async () => {
        const outcome = await new Promise((resolve) => {
            const tail = [];
            let timedOut = false;
            const child = (0,external_node_child_process_.spawn)(argv[0], argv.slice(1), {
                // systemctl and docker compose need PATH, HOME and their own settings, never the
                // recovery key or the GitHub token.
                env: (0,secrets/* childEnv */.gf)(),
                stdio: ['ignore', 'pipe', 'pipe'],
            });
            const timer = setTimeout(() => {
                timedOut = true;
                child.kill('SIGKILL');
            }, timeoutMs);
            const onLines = (chunk) => {
                for (const line of chunk.toString('utf8').split(/\r?\n/)) {
                    if (!line.trim())
                        continue;
                    log.info(line);
                    // One line of plain text in an error message, whatever the command printed.
                    tail.push([...line]
                        .map((ch) => (ch < ' ' || ch === '\u007f' ? ' ' : ch))
                        .join('')
                        .slice(0, 200));
                    if (tail.length > 3)
                        tail.shift();
                }
            };
            child.stdout.on('data', onLines);
            child.stderr.on('data', onLines);
            child.once('error', (error) => {
                clearTimeout(timer);
                resolve({ code: null, signal: null, error, timedOut, tail });
            });
            child.once('close', (code, signal) => {
                clearTimeout(timer);
                resolve({ code, signal, timedOut, tail });
            });
        });
        if (outcome.error) {
            throw new errors/* UserError */.y(outcome.error.code === 'ENOENT'
                ? `${input}: "${argv[0]}" was not found. Fix: give the command as it runs on this runner (e.g. ${input}: systemctl ${input === 'stop-command' ? 'stop' : 'start'} omniai), with its full path if it is not on PATH.`
                : `${input}: "${shown}" could not start (${outcome.error.code}). Fix: check the command and the runner's permissions.`);
        }
        if (outcome.timedOut) {
            throw new errors/* UserError */.y(`${input}: "${shown}" did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped. Fix: make the command return once the backend has ${input === 'stop-command' ? 'stopped' : 'started'} (e.g. systemctl without --no-block, docker compose without attach).`);
        }
        if (outcome.code !== 0) {
            const said = outcome.tail.length ? `: ${outcome.tail.join(' / ')}` : '';
            throw new errors/* UserError */.y(`${input}: "${shown}" failed (${outcome.signal ? `killed by ${outcome.signal}` : `exit code ${outcome.code}`})${said}. Fix: run it by hand on the runner to see why.`);
        }
        log.info(`${input}: done`);
    });
}

;// CONCATENATED MODULE: ./lib/modes/safety-codec.js



/**
 * The safety backup holds the same users' data as the backup being restored, so it is protected
 * the same way: encrypted to the recipients the backup's manifest records (age public keys, the
 * gpg recipient), else to the keys the restore was given (an age identity's public key, the age
 * or gpg passphrase). When none of those exists, the restore is refused unless
 * allow-unencrypted-safety-backup says otherwise. An unencrypted backup gets an unencrypted
 * safety backup: it adds nothing that backup-dir did not hold already.
 */
function safetyCodec(manifest, file, config) {
    const b = manifest.backup;
    const compression = b.compression ?? 'none';
    const kind = b.encryption ?? 'none';
    const { keys } = config;
    if (kind === 'none') {
        return { encryption: { kind }, compression, how: '' };
    }
    if (kind === 'age') {
        if (b.recipients?.length) {
            return {
                encryption: { kind, recipients: b.recipients },
                compression,
                how: `encrypted with age to ${b.recipients.join(', ')}, as the backup restored`,
            };
        }
        // A recipient can be had from each identity: whoever restores holds the key that reads it.
        const recipients = keys.ageIdentities.flatMap((identity) => {
            try {
                return [(0,lib_codec/* ageRecipientOf */.gA)(identity)];
            }
            catch {
                return [];
            }
        });
        if (recipients.length) {
            return {
                encryption: { kind, recipients },
                compression,
                how: `encrypted with age to ${recipients.join(', ')} (the public key of age-identity)`,
            };
        }
        if (keys.agePassphrase) {
            return {
                encryption: { kind, passphrase: keys.agePassphrase },
                compression,
                how: 'encrypted with age to age-passphrase, as the backup restored',
            };
        }
    }
    if (kind === 'gpg') {
        const homedir = keys.gpgHomedir ? { homedir: keys.gpgHomedir } : {};
        if (b.gpgRecipient) {
            return {
                encryption: { kind, recipient: b.gpgRecipient, ...homedir },
                compression,
                how: `encrypted with gpg to ${describeGpgRecipient(b.gpgRecipient)}, as the backup restored`,
            };
        }
        if (keys.gpgPassphrase) {
            return {
                encryption: { kind, passphrase: keys.gpgPassphrase, ...homedir },
                compression,
                how: 'encrypted with gpg to gpg-passphrase (symmetric)',
            };
        }
    }
    const input = inputs/* Inputs */.G0.AllowUnencryptedSafetyBackup;
    if (config.allowUnencryptedSafetyBackup) {
        return {
            encryption: { kind: 'none' },
            compression,
            how: `UNENCRYPTED (${input}: true)`,
            warning: `the safety backup of the live database is UNENCRYPTED (${input}: true), although ${external_node_path_.basename(file)} is ${kind}-encrypted: delete it from ${external_node_path_.join(config.backupDir, 'pre-restore')} once the restore is confirmed good.`,
        };
    }
    return {
        refusal: `${input}: ${external_node_path_.basename(file)} is ${kind}-encrypted, but its manifest records no ${kind === 'gpg' ? 'gpg recipient' : 'age recipient'} and no key was given to encrypt the safety backup of the live database with, which would put every user's data into ${external_node_path_.join(config.backupDir, 'pre-restore')} in plaintext. Fix: ${kind === 'gpg' ? 'set gpg-passphrase to encrypt it symmetrically' : 'set age-identity (its public key is used) or age-passphrase'}, or set ${input}: true; nothing was changed.`,
    };
}
/** A key id as is; an armored public key block by its first line only. */
function describeGpgRecipient(recipient) {
    return recipient.includes('\n') ? 'the armored public key in the manifest' : recipient;
}

;// CONCATENATED MODULE: ./lib/modes/restore.js




















/**
 * The runbook's Restore: put a backup back as the live database. It destroys the current data,
 * so it asks for it (confirm must name the target), refuses a backup of another engine or
 * source, refuses while the database is in use (the runbook's "stop the backend"), verifies the
 * backup first, and takes a safety backup of the current database through the normal backup
 * path so that restoring the wrong file can itself be undone. Afterwards the drill's checks run
 * on the restored database against the backup's manifest.
 */
async function restore(ctx) {
    return withSelection(ctx, async (selection) => {
        return (0,util_scratch/* withScratch */.hM)(ctx.config.scratchDir, 'restore', (work) => restoreSelected(ctx, selection, work));
    });
}
async function restoreSelected(ctx, selection, work) {
    const { config, log, now } = ctx;
    const { entry } = selection;
    const started = now();
    const { manifest } = entry;
    const report = reportOn('restore', config.engine, selection, started);
    // Whether the backup may be read at all comes first: everything below believes its manifest.
    const trust = await trustChecks(entry, config);
    report.checks.push(...trust);
    const untrusted = trust.find((c) => !c.ok);
    if (untrusted) {
        throw new errors/* UserError */.y(untrusted.detail.replace(/ Fix: /, ' Nothing was changed. Fix: '));
    }
    if (manifest.engine !== config.engine) {
        throw new errors/* UserError */.y(`backup-file: ${entry.path} is a ${manifest.engine} backup, and connection-string is a ${config.engine} database. Fix: choose a ${config.engine} backup, or the connection-string it belongs to.`);
    }
    const engine = await createEngine(config.engine, config);
    const target = engine.liveName();
    const from = sourceName(manifest.source.description);
    if (from !== target) {
        throw new errors/* UserError */.y(`backup-file: ${external_node_path_.basename(entry.path)} is a backup of ${from}, not of ${target}. Fix: choose a backup of ${target}, or set connection-string to ${from}'s location.`);
    }
    if (!config.dryRun && config.confirm !== target) {
        throw new errors/* UserError */.y(`confirm: a restore replaces the live database ${target}${config.confirm ? ` (confirm says "${config.confirm}")` : ''}. Fix: set confirm: ${target} to proceed, or dry-run: true to see the plan first.`);
    }
    // Room for everything the restore writes, before anything is written: the decoded backup,
    // the safety backup of the live database, and (SQLite) the new file beside the live one.
    await requireSpace(await restoreNeeds(config, manifest));
    // The backup must prove itself before anything is touched.
    // An encoded backup's stored file is hashed by the decoding that reads it, not twice.
    // What goes live: fsynced as it is decoded, so that a write the disk failed stops the restore.
    const plain = await plaintextOf(entry, config, work, log, { live: true });
    const checks = [await checksumOf(entry, plain.stored)];
    if (plain.check)
        checks.push(plain.check);
    const ref = plain.ref;
    if (ref)
        checks.push(...(await log.group('Verify the backup', () => engine.verifyBackup(ref, log))).checks);
    report.checks.push(...checks);
    const bad = checks.filter((c) => !c.ok);
    if (bad.length) {
        throw new errors/* UserError */.y(`backup-file: ${external_node_path_.basename(entry.path)} fails verification (${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}); nothing was changed. Fix: restore another backup (backup-file).`);
    }
    const exists = await engine.liveExists();
    // The runbook's pre-drill "ensure no active user sessions": a restore logs everyone out and
    // drops what they did since the backup.
    const sessions = exists
        ? await engine.liveSessions(started).catch((err) => {
            // The guard cannot vouch for anything it could not count: say so, never stay silent.
            const warning = `allow-active-sessions: could not count the live database's unexpired sessions (${(0,errors/* describeError */.U)(err)}); check that no one is logged in before restoring.`;
            report.warnings.push(warning);
            log.warning(warning);
            return null;
        })
        : null;
    const safetyDir = external_node_path_.join(config.backupDir, 'pre-restore');
    // The safety backup holds the same users' data as the backup: encrypted the same way.
    const codec = exists ? safetyCodec(manifest, entry.path, config) : null;
    const plan = [
        `verified ${external_node_path_.basename(entry.path)} (taken ${manifest.createdAt}): ${checks.map((c) => c.name).join(', ')} passed`,
        ...(sessions
            ? [
                `${sessions.active} unexpired user session(s) in ${target}'s ${sessions.table} table${sessions.active && config.allowActiveSessions ? ' (allow-active-sessions: true)' : ''}`,
            ]
            : []),
        ...(config.stopCommand ? [`stop the backend: ${config.stopCommand.join(' ')}`] : []),
        exists
            ? `back up the current ${target} into ${safetyDir}${codec && 'how' in codec && codec.how ? `, ${codec.how}` : ''} (manifest included; taken whatever state it is in)`
            : `${target} does not exist yet: no safety backup needed`,
        `replace ${target} with ${external_node_path_.basename(entry.path)}${config.engine === 'sqlite' ? ' (written beside it, fsynced, renamed over it; stale -wal/-shm removed)' : ' (pg_restore --clean --if-exists in one transaction)'}`,
        `check the restored ${target} against the backup's manifest: schema, row counts, foreign keys, recent conversations, audit log`,
        ...(config.startCommand ? [`start the backend: ${config.startCommand.join(' ')}`] : []),
        ...(config.smoke
            ? [
                `smoke test ${config.smoke.url} (waiting up to ${config.smoke.timeoutSeconds} s for health)`,
            ]
            : []),
    ];
    report.restore = {
        target,
        dryRun: config.dryRun,
        plan,
        safetyBackup: null,
        undo: null,
        activeSessions: sessions,
    };
    const refusal = sessions?.active && !config.allowActiveSessions
        ? `allow-active-sessions: ${target} holds ${sessions.active} unexpired user session(s) in ${sessions.table}; a restore logs them out and loses what they did since the backup. Fix: announce the maintenance window and wait for them to end (the runbook's "ensure no active user sessions"), or set allow-active-sessions: true; nothing was changed.`
        : null;
    const codecRefusal = codec && 'refusal' in codec ? codec.refusal : null;
    if (config.dryRun) {
        // A dry run shows the whole plan, and says what would stop the real run.
        for (const r of [refusal, codecRefusal]) {
            if (!r)
                continue;
            report.warnings.push(r);
            log.warning(r);
        }
        log.info(`dry run: ${plan.join('; ')}`);
        return finish(report, started, now());
    }
    if (refusal)
        throw new errors/* UserError */.y(refusal);
    if (codecRefusal)
        throw new errors/* UserError */.y(codecRefusal);
    // Interrupted (SIGINT/SIGTERM) from here on, the backend is started again, as on a failure.
    const start = config.startCommand;
    const forgetStart = start
        ? cleanup/* cleanups */.WW.add(`the backend started again (${start.join(' ')})`, () => runServiceCommand(start, inputs/* Inputs */.G0.StartCommand, log))
        : () => { };
    // Whatever fails from the stop until the database is replaced leaves the old data in place:
    // the backend goes back up as it was (a stop that failed may have half-worked).
    const restart = async (err) => {
        forgetStart();
        if (config.startCommand) {
            await runServiceCommand(config.startCommand, inputs/* Inputs */.G0.StartCommand, log).catch((startErr) => log.warning(`the backend was not started again: ${(0,errors/* describeError */.U)(startErr)}`));
        }
        throw err;
    };
    if (config.stopCommand) {
        await runServiceCommand(config.stopCommand, inputs/* Inputs */.G0.StopCommand, log).catch(restart);
    }
    try {
        const users = await engine.liveUsers();
        if (users.length) {
            throw new errors/* UserError */.y(config.stopCommand
                ? `stop-command: ${target} is still in use by ${users.join(', ')} after "${config.stopCommand.join(' ')}". Fix: make stop-command wait until the backend has exited; nothing was changed.`
                : `connection-string: ${target} is in use by ${users.join(', ')}. Fix: stop the OmniAI backend first (the runbook's restore step 1, or set stop-command and start-command), then run the restore again; nothing was changed.`);
        }
        if (codec && 'how' in codec)
            await safetyBackup(ctx, report, target, safetyDir, codec);
    }
    catch (err) {
        await restart(err);
    }
    const t0 = stopwatch();
    if (!ref)
        throw new Error('unreachable: an undecodable backup fails verification above');
    let db;
    try {
        db = await log.group('Restore', () => engine.replaceLive(ref, log));
    }
    catch (err) {
        return restart(config.engine === 'sqlite'
            ? await asWriteFailure(err, inputs/* Inputs */.G0.ConnectionString, external_node_path_.dirname(external_node_path_.resolve(config.connectionString)), 'the live database was not touched')
            : await asWriteFailure(err, inputs/* Inputs */.G0.ConnectionString, 'the database server', 'the restore was rolled back'));
    }
    report.restoreSeconds = t0.seconds();
    // The checks failing to run must not leave the backend down: it starts either way.
    let checksFailed = null;
    try {
        const { checks: after, database } = await log.group('Checks', () => (0,inspect/* checkRestored */.Hl)(db, manifest));
        report.checks.push(...after.map((c) => ({ ...c, name: c.name === 'integrity' ? 'restored-integrity' : c.name })));
        report.database = database;
    }
    catch (err) {
        checksFailed = err;
    }
    finally {
        await db.close().catch(() => undefined);
    }
    forgetStart();
    if (config.startCommand) {
        try {
            await runServiceCommand(config.startCommand, inputs/* Inputs */.G0.StartCommand, log);
        }
        catch (err) {
            throw new errors/* UserError */.y(`${(0,errors/* describeError */.U)(err)} The database WAS replaced with ${external_node_path_.basename(entry.path)}.${report.restore.undo ? ` To go back to what was there before: ${report.restore.undo}` : ''}`);
        }
    }
    if (checksFailed) {
        throw new errors/* UserError */.y(`${(0,errors/* describeError */.U)(checksFailed)} (checking the restored database). The database WAS replaced with ${external_node_path_.basename(entry.path)}.${report.restore.undo ? ` To go back to what was there before: ${report.restore.undo}` : ''}`);
    }
    await smokeInto(report, ctx);
    return finish(report, started, now());
}
/**
 * The backup of the live database before it is replaced, through the normal backup path. It is
 * never blocked by the state of the live database, which may be exactly what is broken: a
 * damaged database is copied and marked damaged, tables the inputs name need not be there, and
 * a SQLite file the backup cannot even open is copied byte for byte.
 */
async function safetyBackup(ctx, report, target, safetyDir, codec) {
    const { config, log } = ctx;
    const restore = report.restore;
    const prefix = `${config.prefix}-pre-restore`;
    const { encryption, compression } = codec;
    const safety = await log.group('Safety backup of the current database', () => backup({
        ...ctx,
        safety: true,
        // The options of a backup of the live database: this restore's source and inventory, a
        // folder and encoding of its own, nothing kept elsewhere, no retention.
        config: {
            ...config,
            mode: 'backup',
            backupDir: safetyDir,
            prefix,
            retention: 'off',
            keepDaily: 0,
            keepWeekly: 0,
            retentionTimeZone: 'UTC',
            uploadArtifact: false,
            allowUnencryptedArtifact: false,
            restoreCheck: false,
            encryption,
            compression,
            s3: null,
        },
    }).catch(async (err) => {
        if (config.engine !== 'sqlite')
            throw err;
        return rawCopy(config.connectionString, safetyDir, prefix, err, log, codec);
    }));
    if (codec.warning) {
        report.warnings.push(codec.warning);
        log.warning(codec.warning);
    }
    if (!safety.backup || safety.checks.some((c) => c.name === 'checksum' && !c.ok)) {
        throw new errors/* UserError */.y(`connection-string: the safety backup of ${target} could not be written (${safety.error ??
            safety.checks
                .filter((c) => !c.ok)
                .map((c) => c.detail)
                .join('; ')}); nothing was changed.`);
    }
    for (const w of safety.warnings)
        report.warnings.push(`safety backup: ${w}`);
    restore.safetyBackup = safety.backup.path;
    restore.undo =
        'raw' in safety
            ? safety.raw
            : `omniai-backup restore --connection-string ${config.engine === 'sqlite' ? config.connectionString : '<the same URL>'} --backup-dir ${safetyDir} --backup-file ${safety.backup.path} --confirm ${target}`;
    log.info(`safety backup: ${safety.backup.path}. To undo this restore: ${restore.undo}`);
}
/** A byte-for-byte copy of a SQLite file (and its -wal) that the backup could not open. */
async function rawCopy(source, dir, prefix, why, log, codec) {
    await (0,fs/* makeDirs */.X2)(dir, 0o700);
    const name = `${prefix}-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}-raw.db`;
    const ext = (0,lib_codec/* encodedExtension */.c)(codec.compression, codec.encryption.kind);
    const dest = external_node_path_.join(dir, name + ext);
    // Encoded like the backups when they are (encodeFile writes a new file, fsynced).
    const copy = async (from, to) => {
        if (!ext)
            return promises_.copyFile(from, to, promises_.constants.COPYFILE_EXCL);
        if (await promises_.stat(to).catch(() => null))
            throw new Error(`${to} exists`);
        await (0,lib_codec/* encodeFile */.rN)(from, to, { compression: codec.compression, encryption: codec.encryption });
    };
    await copy(source, dest);
    const wal = external_node_path_.join(dir, `${name}-wal${ext}`);
    await copy(`${source}-wal`, wal).catch((err) => {
        if (err.code !== 'ENOENT' && !/no such file/.test(err.message))
            throw err;
    });
    if (!ext)
        await (0,fs/* fsyncPath */.Hr)(dest);
    const warning = `the live database could not be backed up the normal way (${(0,errors/* describeError */.U)(why)}); it was copied byte for byte to ${dest} instead.`;
    log.warning(warning);
    const report = emptyReport('backup', 'sqlite', new Date());
    const { sha256, bytes } = await (0,fs/* digestPath */.GV)(dest);
    report.backup = { path: dest, sha256, bytes, createdAt: new Date().toISOString() };
    report.warnings.push(warning);
    const undo = ext
        ? `stop the backend, then ${decodeCommand(codec, dest)} > ${source} (and ${decodeCommand(codec, wal)} > ${source}-wal if that file exists)`
        : `stop the backend, then copy ${dest} over ${source}`;
    return { ...report, raw: undo };
}
/** The shell command that turns a raw copy back into the database file, with the standard tools. */
function decodeCommand(codec, file) {
    const e = codec.encryption;
    const decrypt = e.kind === 'age'
        ? `age -d${e.recipients?.length ? ' -i <recovery key file>' : ''} ${file}`
        : e.kind === 'gpg'
            ? `gpg -d ${file}`
            : `cat ${file}`;
    const unzip = { none: '', gzip: ' | gunzip', zstd: ' | zstd -d' }[codec.compression];
    return decrypt + unzip;
}
/** The source's name as the manifest recorded it: a SQLite file name, or a PostgreSQL URL's database. */
function sourceName(description) {
    try {
        const url = new URL(description);
        if (/^postgres(ql)?:$/.test(url.protocol))
            return decodeURIComponent(url.pathname.slice(1));
    }
    catch {
        // a file name
    }
    return external_node_path_.basename(description);
}
async function restoreNeeds(config, manifest) {
    const needs = [scratchNeed(manifest, config.scratchDir, false)];
    if (config.engine !== 'sqlite')
        return needs;
    const plain = manifest.backup.plain?.bytes ?? manifest.backup.bytes;
    const live = external_node_path_.resolve(config.connectionString);
    const liveBytes = await sqliteBytes(live);
    needs.push({
        input: inputs/* Inputs */.G0.ConnectionString,
        dir: external_node_path_.dirname(live),
        bytes: plain,
        what: `the restored database beside the live one (${formatBytes(plain)})`,
    });
    if (liveBytes > 0) {
        needs.push({
            input: inputs/* Inputs */.G0.BackupDir,
            dir: external_node_path_.join(config.backupDir, 'pre-restore'),
            bytes: liveBytes,
            what: `the safety backup of the live database (${formatBytes(liveBytes)})`,
        });
    }
    return needs;
}

;// CONCATENATED MODULE: ./lib/modes/index.js















/** The mode `config` is for, given its own options. */
function runOne(config, log, now) {
    switch (config.mode) {
        case 'backup':
            return backup({ config, log, now });
        case 'verify':
            return verify({ config, log, now });
        case 'drill':
            return drill({ config, log, now });
        case 'restore':
            return restore({ config, log, now });
        case 'gate':
            return gate({ config, log, now });
        case 'smoke':
            return smoke({ config, log, now });
    }
}
/**
 * The staleness gate, usable in any mode (a PR check included): when was the last successful
 * drill? In a workflow run the tracking issue says; elsewhere the drill log does.
 */
async function drillAge(config, log, at, report) {
    const maxDays = config.maxDrillAgeDays;
    if (config.runner.repository && config.drillEvidence !== 'none') {
        const settings = evidenceSettings({
            token: config.githubToken,
            title: config.drillIssueTitle,
            author: config.drillEvidenceAuthor,
        }, config.runner);
        let history;
        try {
            history = await drillHistory(settings, log);
        }
        catch (err) {
            if (!(err instanceof IssuesRefused) || config.drillEvidence !== 'auto')
                throw err;
            return drillLogInstead(config, log, at, report, err);
        }
        const check = checkDrillAge(history.last, maxDays, at, history.issueNumber);
        // Say what the verdict rests on: records left out, and a run that could not be checked.
        const notes = [];
        if (history.ignored.length)
            notes.push(`${history.ignored.length} record(s) that do not count left out, see the log`);
        if (history.runProof === 'skipped')
            notes.push('its workflow run not checked: the job has no actions: read');
        if (notes.length)
            check.detail += ` (${notes.join('; ')})`;
        return check;
    }
    const text = config.drillLog ? await readDrillLog(config.drillLog).catch(() => '') : '';
    return checkDrillAge(lastInDrillLog(text), maxDays, at);
}
/** The newest passing drill in the drill log's text (JSON Lines), or null. */
function lastInDrillLog(text) {
    let last = null;
    for (const line of text.split('\n')) {
        try {
            const r = JSON.parse(line);
            if (r.ok && r.date)
                last = { date: r.date };
        }
        catch {
            // a torn or foreign line: not a record
        }
    }
    return last;
}
/**
 * drill-evidence: auto, and the tracking issue cannot be read (no `issues: read`, or Issues turned
 * off): the drill log decides, with a warning that names the fix, when there is one. Never in a
 * pull request's run (or a merge queue's): its files are the pull request's, and a drill log it
 * brings would let it pass the gate. Without a drill log to read, the gate fails with the fix.
 */
async function drillLogInstead(config, log, at, report, refused) {
    const event = config.runner.eventName;
    if (/^pull_request/.test(event) || event === 'merge_group') {
        throw new errors/* UserError */.y(`${refused.message} (drill-evidence: auto reads no drill log instead in a ${event} run, whose files a pull request can write)`);
    }
    const text = config.drillLog ? await readDrillLog(config.drillLog).catch(() => null) : null;
    if (text === null) {
        throw new errors/* UserError */.y(`${refused.message} (drill-evidence: auto found no drill log to read instead${config.drillLog ? ` at ${config.drillLog}` : ''})`);
    }
    const note = `${refused.message} (drill-evidence: auto, so the drill log ${config.drillLog} decides instead)`;
    // Said once: when this step's drill already warned that it could not write the issue, the
    // same missing permission is a log line here.
    if (report.warnings.some((w) => w.startsWith('drill-evidence:')))
        log.info(note);
    else {
        report.warnings.push(note);
        log.warning(note);
    }
    const check = checkDrillAge(lastInDrillLog(text), config.maxDrillAgeDays, at);
    check.detail += ` (from the drill log ${config.drillLog}: the tracking issue could not be read)`;
    return check;
}
/**
 * Runs the configured mode and writes the JSON report. An error (bad input, unreadable file)
 * becomes a failed report carrying the one-line message, so every run leaves a report.
 */
async function runMode(config, log, now = () => new Date()) {
    const started = now();
    // First in the log, and first among the summary's warnings: an input this mode ignores.
    for (const warning of config.ignoredInputs)
        log.warning(warning);
    let report;
    try {
        report = await runOne(config, log, now);
        if (config.maxDrillAgeDays !== null) {
            report.checks.push(await (0,inspect/* runCheck */.k_)('drill-age', () => drillAge(config, log, now(), report)));
            finish(report, started, now());
        }
    }
    catch (err) {
        report = emptyReport(config.mode, (0,options_config/* engineOf */.ky)(config), started);
        report.error = (0,errors/* describeError */.U)(err);
        finish(report, started, now());
    }
    report.warnings.unshift(...config.ignoredInputs);
    try {
        await (0,fs/* makeDirs */.X2)(external_node_path_.dirname(external_node_path_.resolve(config.reportFile)));
        await promises_.writeFile(config.reportFile, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
    }
    catch (err) {
        // The report is evidence, not the result: the mode's outcome stands, the problem is logged.
        log.warning(`report-file: cannot write ${config.reportFile}: ${writeFailureCause(err) ?? (0,errors/* describeError */.U)(err)}. Fix: set report-file to a writable path with room.`);
    }
    return report;
}
/**
 * The drill log, read as a regular file and not through a symbolic link: a FIFO planted under
 * its name would stall the job, a link would read whatever the runner can.
 */
async function readDrillLog(file) {
    return (await (0,fs/* readRegularFile */.XF)(file, { follow: false })).toString('utf8');
}


/***/ }),

/***/ 62430:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  ky: () => (/* binding */ engineOf),
  pT: () => (/* binding */ isPostgresUrl),
  o4: () => (/* binding */ parseConfig)
});

// UNUSED EXPORTS: DEFAULT_CSP_FILE, ENGINES

// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: ./lib/codec/index.js + 7 modules
var codec = __webpack_require__(41708);
// EXTERNAL MODULE: ./lib/util/errors.js
var errors = __webpack_require__(99661);
// EXTERNAL MODULE: ./lib/store/s3-settings.js
var s3_settings = __webpack_require__(97589);
// EXTERNAL MODULE: ./lib/manifest/signature.js
var signature = __webpack_require__(18571);
// EXTERNAL MODULE: ./lib/options/context.js
var context = __webpack_require__(26269);
// EXTERNAL MODULE: ./lib/options/inputs.js
var inputs = __webpack_require__(91241);
;// CONCATENATED MODULE: ./lib/options/values.js
/**
 * Input values into typed values: durations, whole numbers, booleans as the runner spells them,
 * commands without a shell, names GitHub and SQLite accept. Each failure is one UserError that
 * names the input and the fix.
 */


const UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
/** `26h`, `2d`, `90m`, `3600s`, `1w` to seconds. */
function parseDuration(text, input) {
    const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(text.trim());
    if (!m) {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a duration. Fix: give a number and a unit (s, m, h, d, w), e.g. 26h, 2d, 90m.`);
    }
    const seconds = Number(m[1]) * UNITS[m[2].toLowerCase()];
    if (seconds <= 0)
        throw new errors/* UserError */.y(`${input}: must be more than 0. Fix: e.g. 26h.`);
    return seconds;
}
function oneOf(value, allowed, input) {
    if (allowed.includes(value))
        return value;
    throw new errors/* UserError */.y(`${input}: "${value}" is not one of ${allowed.join(', ')}. Fix: set ${input} to one of them.`);
}
function integer(text, input, min, max) {
    if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a whole number from ${min} to ${max}. Fix: e.g. ${input}: ${inputs/* DEFAULTS */.zY[input] || min}.`);
    }
    return Number(text);
}
function seconds(text, input) {
    const n = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a number of seconds above 0. Fix: e.g. ${input}: 600.`);
    }
    return n;
}
function timeZone(text, input) {
    try {
        new Intl.DateTimeFormat('en-US', { timeZone: text });
        return text;
    }
    catch {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a time zone. Fix: an IANA name such as UTC, Europe/Berlin or America/New_York.`);
    }
}
function artifactName(text, input) {
    // GitHub refuses these characters in artifact names.
    if (/[":<>|*?\\/\r\n]/.test(text)) {
        throw new errors/* UserError */.y(`${input}: "${text}" holds a character GitHub refuses in artifact names (" : < > | * ? \\ /). Fix: e.g. artifact-name: omniai-backup.`);
    }
    return text;
}
function tableName(text, input) {
    if (text === 'none')
        return null;
    if (text.trim() === '' || [...text].some((ch) => ch.charCodeAt(0) < 0x20)) {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a table name. Fix: name a table, or none to skip this check.`);
    }
    return text;
}
/** `true` or `false` as YAML 1.2 and core.getBooleanInput spell them. */
/** A bot's login (`github-actions[bot]`, `my-app[bot]`): people cannot hold one. */
function botLogin(text, input) {
    if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\[bot\]$/.test(text)) {
        throw new errors/* UserError */.y(`${input}: "${text}" is not a bot's login. Fix: github-actions[bot] for the job's GITHUB_TOKEN, or <app-slug>[bot] for a GitHub App's token; a person's comments never count as drill records.`);
    }
    return text;
}
function bool(text, input) {
    if (['true', 'True', 'TRUE'].includes(text))
        return true;
    if (['false', 'False', 'FALSE'].includes(text))
        return false;
    throw new errors/* UserError */.y(`${input}: "${text}" is not true or false. Fix: ${input}: true.`);
}
/** What a shell would do with these words; the gate runs its command without one. */
const SHELL_OPERATORS = new Set(['&&', '||', '|', ';', '&', '>', '>>', '<', '2>&1']);
/**
 * A command line into argv, with no shell: words split at whitespace, '...' and "..." keep
 * spaces inside a word, and in "..." a backslash escapes " or \. A backslash anywhere else is
 * kept, so Windows paths work as written.
 */
function splitCommand(text, input, fix = 'give only the command that starts pytest (e.g. poetry run pytest), use gate-working-directory instead of cd, and run other commands in an earlier step') {
    const words = [];
    let word = '';
    let inWord = false;
    let quoted = false;
    let quote = null;
    const end = () => {
        if (!inWord)
            return;
        if (!quoted && SHELL_OPERATORS.has(word)) {
            throw new errors/* UserError */.y(`${input}: "${word}" needs a shell, and the command runs without one. Fix: ${fix}.`);
        }
        words.push(word);
        word = '';
        inWord = quoted = false;
    };
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (quote === "'") {
            if (ch === "'")
                quote = null;
            else
                word += ch;
        }
        else if (quote === '"') {
            if (ch === '"')
                quote = null;
            else if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\'))
                word += text[++i];
            else
                word += ch;
        }
        else if (ch === "'" || ch === '"') {
            quote = ch;
            inWord = quoted = true;
        }
        else if (/\s/.test(ch))
            end();
        else {
            word += ch;
            inWord = true;
        }
    }
    if (quote) {
        throw new errors/* UserError */.y(`${input}: the ${quote} in "${text}" is not closed. Fix: close the quote, e.g. ${input}: python -m pytest "tests/security suite".`);
    }
    end();
    if (words.length === 0 || words[0] === '') {
        throw new errors/* UserError */.y(`${input}: no command in "${text}". Fix: e.g. ${input}: python -m pytest.`);
    }
    return words;
}
function serviceCommand(text, input) {
    if (!text)
        return null;
    return splitCommand(text, input, `give one command (e.g. ${input}: systemctl ${input === inputs/* Inputs */.G0.StopCommand ? 'stop' : 'start'} omniai, or docker compose ${input === inputs/* Inputs */.G0.StopCommand ? 'stop' : 'start'} backend), or a script that does the rest`);
}

;// CONCATENATED MODULE: ./lib/options/config.js
/**
 * Inputs into each mode's options (types.ts), once: a mode's parser reads only the inputs the
 * table (inputs.ts) says it uses, through the value parsers (values.ts). The rest of the code
 * reads the typed options and never the raw inputs.
 */







/** The page the gate's CSP check reads when csp-file is not set (OmniAI's front end). */
const DEFAULT_CSP_FILE = 'frontend/index.html';
const ENGINES = ['sqlite', 'postgres'];

/**
 * The engine a report names: the mode's, or for gate and smoke (which read no database) OmniAI's
 * default, SQLite, as the report format has always had one.
 */
function engineOf(config) {
    return 'engine' in config ? config.engine : 'sqlite';
}
function isPostgresUrl(s) {
    return /^postgres(ql)?:\/\//i.test(s);
}
/**
 * Reads the inputs `mode` uses through `get` (which returns '' for unset) and validates them
 * into that mode's options. An input the mode does not use is never parsed, so a bad value
 * there cannot fail the job (it is warned about, see ignoredInputs).
 */
function parseConfig(get, env = process.env) {
    const modeText = get(inputs/* Inputs */.G0.Mode).trim();
    if (modeText === '') {
        throw new errors/* UserError */.y(`mode: not set. Fix: set mode to one of ${inputs/* MODES */.FN.join(', ')}.`);
    }
    const mode = oneOf(modeText, inputs/* MODES */.FN, inputs/* Inputs */.G0.Mode);
    const read = (input) => {
        const { modes, also } = inputs/* INPUTS */.mc[input];
        // The table is the truth: a parser that reads an input its mode does not use is a bug here.
        if (!modes.includes(mode) && !also) {
            throw new Error(`${input} is read by mode ${mode}, which the input table says does not use it`);
        }
        const v = get(input).trim();
        return v === '' ? inputs/* DEFAULTS */.zY[input] : v;
    };
    const runner = (0,context/* readRunnerContext */.g)(env);
    const common = commonOptions(read, get, mode, runner);
    /** What the modes that read a backup share: the database, the stores, which backup. */
    const reading = (mode) => {
        const selection = selectionOptions(read, mode);
        return {
            mode,
            ...common,
            ...sourceOptions(read, mode),
            ...storeOptions(read, env, mode, selection.downloadArtifact),
            ...selection,
        };
    };
    switch (mode) {
        case 'backup':
            return {
                mode,
                ...common,
                ...sourceOptions(read, mode),
                ...storeOptions(read, env, mode, false),
                ...inventoryOptions(read),
                ...encodeOptions(read),
                ...retentionOptions(read),
                verifyKeys: verifyKeys(read),
                restoreCheck: restoreCheck(read),
            };
        case 'verify':
            return reading(mode);
        case 'drill':
            return {
                ...reading(mode),
                ...gateOptions(read),
                smoke: smokeConfig(read),
                maxRestoreSeconds: optional(read(inputs/* Inputs */.G0.MaxRestoreSeconds), (t) => seconds(t, inputs/* Inputs */.G0.MaxRestoreSeconds)),
                gateAfterDrill: bool(read(inputs/* Inputs */.G0.GateAfterDrill), inputs/* Inputs */.G0.GateAfterDrill),
            };
        case 'restore':
            return {
                ...reading(mode),
                ...inventoryOptions(read),
                smoke: smokeConfig(read),
                confirm: read(inputs/* Inputs */.G0.Confirm),
                dryRun: bool(read(inputs/* Inputs */.G0.DryRun), inputs/* Inputs */.G0.DryRun),
                stopCommand: serviceCommand(read(inputs/* Inputs */.G0.StopCommand), inputs/* Inputs */.G0.StopCommand),
                startCommand: serviceCommand(read(inputs/* Inputs */.G0.StartCommand), inputs/* Inputs */.G0.StartCommand),
                allowActiveSessions: bool(read(inputs/* Inputs */.G0.AllowActiveSessions), inputs/* Inputs */.G0.AllowActiveSessions),
                allowUnencryptedSafetyBackup: bool(read(inputs/* Inputs */.G0.AllowUnencryptedSafetyBackup), inputs/* Inputs */.G0.AllowUnencryptedSafetyBackup),
                signingKey: signingKey(read),
            };
        case 'gate':
            return { mode, ...common, ...gateOptions(read), ...cspOptions(read) };
        case 'smoke':
            return { mode, ...common, smoke: smokeConfig(read) };
    }
}
const optional = (text, parse) => text ? parse(text) : null;
function commonOptions(read, get, mode, runner) {
    const backupDir = read(inputs/* Inputs */.G0.BackupDir);
    const drillLogText = read(inputs/* Inputs */.G0.DrillLog);
    // Set in a mode that does not run a drill: a mistake to say, not to ignore.
    const gateAfterDrill = get(inputs/* Inputs */.G0.GateAfterDrill).trim();
    if (mode !== 'drill' && gateAfterDrill && bool(gateAfterDrill, inputs/* Inputs */.G0.GateAfterDrill)) {
        throw new errors/* UserError */.y(`gate-after-drill: only a drill runs the gate afterwards, and mode is ${mode}. Fix: remove gate-after-drill${mode === 'gate' ? ' (mode gate runs the gate on its own)' : ', or set mode: drill'}.`);
    }
    // A private key where it does not belong is an error, not a warning: it should not be there.
    if (get(inputs/* Inputs */.G0.SigningKey).trim() && mode !== 'backup' && mode !== 'restore') {
        throw new errors/* UserError */.y(`signing-key: ${mode} signs nothing, and the private key belongs only in the backup job. Fix: remove signing-key here; verify-key (the public key) checks signatures.`);
    }
    return {
        runner,
        ignoredInputs: (0,inputs/* ignoredInputs */.oV)(get, mode),
        backupDir,
        drillLog: drillLogText === 'none' ? null : drillLogText || external_node_path_.join(backupDir, 'drill-log.jsonl'),
        reportFile: read(inputs/* Inputs */.G0.ReportFile) ||
            (runner.runnerTemp
                ? external_node_path_.join(runner.runnerTemp, 'omniai-backup-report.json')
                : 'omniai-backup-report.json'),
        scratchDir: (inputs/* INPUTS */.mc[inputs/* Inputs */.G0.ScratchDir].modes.includes(mode) && read(inputs/* Inputs */.G0.ScratchDir)) || runner.temp,
        // Outside a workflow (the CLI) the default expression is not expanded: use GITHUB_TOKEN.
        githubToken: read(inputs/* Inputs */.G0.GithubToken).startsWith('${{')
            ? runner.envToken
            : read(inputs/* Inputs */.G0.GithubToken),
        drillEvidence: oneOf(read(inputs/* Inputs */.G0.DrillEvidence), ['auto', 'issue', 'none'], inputs/* Inputs */.G0.DrillEvidence),
        drillIssueTitle: read(inputs/* Inputs */.G0.DrillIssueTitle),
        drillEvidenceAuthor: botLogin(read(inputs/* Inputs */.G0.DrillEvidenceAuthor), inputs/* Inputs */.G0.DrillEvidenceAuthor),
        maxDrillAgeDays: optional(read(inputs/* Inputs */.G0.MaxDrillAge), (t) => integer(t, inputs/* Inputs */.G0.MaxDrillAge, 1, 3660)),
    };
}
function sourceOptions(read, mode) {
    // verify reads no database: the engine is the one its manifest names.
    const connectionString = mode === 'verify' ? '' : read(inputs/* Inputs */.G0.ConnectionString);
    const inferred = isPostgresUrl(connectionString) ? 'postgres' : 'sqlite';
    const engineText = read(inputs/* Inputs */.G0.Engine);
    const engine = engineText ? oneOf(engineText, ENGINES, inputs/* Inputs */.G0.Engine) : inferred;
    if (engineText && mode === 'backup' && engine !== inferred) {
        throw new errors/* UserError */.y(engine === 'postgres'
            ? `connection-string: engine is postgres but connection-string is not a postgres:// URL. Fix: give the database URL, or set engine: sqlite.`
            : `connection-string: engine is sqlite but connection-string is a postgres:// URL. Fix: give the SQLite file path, or set engine: postgres.`);
    }
    return {
        engine,
        engineExplicit: engineText !== '',
        connectionString,
        restoreConnectionString: mode === 'drill' || mode === 'backup' ? read(inputs/* Inputs */.G0.RestoreConnectionString) || null : null,
        pgBinDir: read(inputs/* Inputs */.G0.PgBinDir) || null,
        jobs: integer(read(inputs/* Inputs */.G0.Jobs), inputs/* Inputs */.G0.Jobs, 1, 64),
    };
}
function storeOptions(read, env, mode, downloadArtifact) {
    const prefix = inputs/* INPUTS */.mc[inputs/* Inputs */.G0.Prefix].modes.includes(mode)
        ? read(inputs/* Inputs */.G0.Prefix)
        : inputs/* DEFAULTS */.zY[inputs/* Inputs */.G0.Prefix];
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(prefix)) {
        throw new errors/* UserError */.y(`prefix: "${prefix}" may only hold letters, digits, ".", "_" and "-". Fix: e.g. prefix: omniai.`);
    }
    return {
        prefix,
        artifactName: artifactName(read(inputs/* Inputs */.G0.ArtifactName), inputs/* Inputs */.G0.ArtifactName),
        s3: storageConfig(read, env, mode, downloadArtifact),
    };
}
function selectionOptions(read, mode) {
    const downloadArtifact = bool(read(inputs/* Inputs */.G0.DownloadArtifact), inputs/* Inputs */.G0.DownloadArtifact);
    const maxAge = mode === 'restore' ? '' : read(inputs/* Inputs */.G0.MaxBackupAge);
    return {
        // Only its kind: a job that says encryption: age reads only age-encrypted backups (trust.ts).
        encryption: { kind: oneOf(read(inputs/* Inputs */.G0.Encryption), codec/* ENCRYPTIONS */.$d, inputs/* Inputs */.G0.Encryption) },
        backupFile: read(inputs/* Inputs */.G0.BackupFile) || null,
        downloadArtifact,
        ...trustConfig(read, mode, downloadArtifact),
        keys: {
            ageIdentities: (0,codec/* splitKeyLines */.Lf)(read(inputs/* Inputs */.G0.AgeIdentity)),
            agePassphrase: read(inputs/* Inputs */.G0.AgePassphrase) || null,
            gpgPassphrase: read(inputs/* Inputs */.G0.GpgPassphrase) || null,
            gpgHomedir: read(inputs/* Inputs */.G0.GpgHomedir) || null,
        },
        maxBackupAgeSeconds: optional(maxAge, (t) => parseDuration(t, inputs/* Inputs */.G0.MaxBackupAge)),
    };
}
function inventoryOptions(read) {
    return {
        conversationsTable: tableName(read(inputs/* Inputs */.G0.ConversationsTable), inputs/* Inputs */.G0.ConversationsTable),
        auditTable: tableName(read(inputs/* Inputs */.G0.AuditTable), inputs/* Inputs */.G0.AuditTable),
        spotCheckCount: integer(read(inputs/* Inputs */.G0.SpotCheckCount), inputs/* Inputs */.G0.SpotCheckCount, 1, 100),
    };
}
function encodeOptions(read) {
    const uploadArtifact = bool(read(inputs/* Inputs */.G0.UploadArtifact), inputs/* Inputs */.G0.UploadArtifact);
    const { compression, encryption, allowUnencryptedArtifact } = codecConfig(read, uploadArtifact, integer(read(inputs/* Inputs */.G0.Jobs), inputs/* Inputs */.G0.Jobs, 1, 64));
    return {
        compression,
        encryption,
        allowUnencryptedArtifact,
        uploadArtifact,
        signingKey: signingKey(read),
    };
}
function retentionOptions(read) {
    return {
        retention: oneOf(read(inputs/* Inputs */.G0.Retention), ['apply', 'dry-run', 'off'], inputs/* Inputs */.G0.Retention),
        keepDaily: integer(read(inputs/* Inputs */.G0.KeepDaily), inputs/* Inputs */.G0.KeepDaily, 0, 3660),
        keepWeekly: integer(read(inputs/* Inputs */.G0.KeepWeekly), inputs/* Inputs */.G0.KeepWeekly, 0, 520),
        retentionTimeZone: timeZone(read(inputs/* Inputs */.G0.RetentionTimeZone), inputs/* Inputs */.G0.RetentionTimeZone),
    };
}
function gateOptions(read) {
    return {
        gateMarkers: read(inputs/* Inputs */.G0.GateMarkers),
        gateCommand: splitCommand(read(inputs/* Inputs */.G0.GateCommand), inputs/* Inputs */.G0.GateCommand),
        gateWorkingDirectory: read(inputs/* Inputs */.G0.GateWorkingDirectory),
        gateMinTests: integer(read(inputs/* Inputs */.G0.GateMinTests), inputs/* Inputs */.G0.GateMinTests, 1, 100_000),
    };
}
function cspOptions(read) {
    return {
        // Empty in action.yml too: the runner passes an input's default as if it were set, and an
        // unset csp-file must stay distinguishable (its page missing is a warning, not a failure).
        cspFile: read(inputs/* Inputs */.G0.CspFile) === 'none' ? null : read(inputs/* Inputs */.G0.CspFile) || DEFAULT_CSP_FILE,
        cspFileExplicit: read(inputs/* Inputs */.G0.CspFile) !== '',
        cspStrict: bool(read(inputs/* Inputs */.G0.CspStrict), inputs/* Inputs */.G0.CspStrict),
    };
}
/** backup with restore-check: a PostgreSQL backup needs a server to be restored into. */
function restoreCheck(read) {
    const on = bool(read(inputs/* Inputs */.G0.RestoreCheck), inputs/* Inputs */.G0.RestoreCheck);
    const postgres = read(inputs/* Inputs */.G0.Engine) === 'postgres' || isPostgresUrl(read(inputs/* Inputs */.G0.ConnectionString));
    if (on && postgres && !read(inputs/* Inputs */.G0.RestoreConnectionString)) {
        throw new errors/* UserError */.y(`${inputs/* Inputs */.G0.RestoreCheck}: a PostgreSQL backup is checked by restoring it into a scratch database, and restore-connection-string is not set. Fix: set restore-connection-string to a separate server (a services: postgres container), or restore-check: false.`);
    }
    return on;
}
function verifyKeys(read) {
    const text = read(inputs/* Inputs */.G0.VerifyKey);
    return text ? (0,signature/* parseVerifyKeys */.j3)(text, inputs/* Inputs */.G0.VerifyKey) : [];
}
function signingKey(read) {
    const text = read(inputs/* Inputs */.G0.SigningKey);
    return text ? (0,signature/* parseSigningKey */.UG)(text, inputs/* Inputs */.G0.SigningKey) : null;
}
/** The S3 store's settings when `storage` is set (the SDK is loaded only then, by the mode). */
function storageConfig(read, env, mode, downloadArtifact) {
    const storage = read(inputs/* Inputs */.G0.Storage);
    if (!storage)
        return null;
    // Restore replaces the live database: not with whatever a bucket's newest manifest claims to
    // be, unless a signature proves who made it (as with artifacts and artifact-id).
    if (mode === 'restore' && !read(inputs/* Inputs */.G0.BackupFile) && !read(inputs/* Inputs */.G0.VerifyKey)) {
        throw new errors/* UserError */.y('backup-file: restore replaces the live database, so from storage it does not take the newest backup on its own. Fix: set backup-file to the backup to restore (its file name in the prefix, or its s3:// URL), or set verify-key so only signed backups count.');
    }
    if (downloadArtifact) {
        throw new errors/* UserError */.y('storage: verify, drill and restore read one place, and download-artifact is also true. Fix: remove one of them (storage reads the bucket; download-artifact reads the newest artifact).');
    }
    return (0,s3_settings/* parseS3Settings */.pv)({
        Storage: storage,
        Endpoint: read(inputs/* Inputs */.G0.S3Endpoint),
        Region: read(inputs/* Inputs */.G0.S3Region),
        PathStyle: read(inputs/* Inputs */.G0.S3PathStyle),
        AccessKeyId: read(inputs/* Inputs */.G0.S3AccessKeyId),
        SecretAccessKey: read(inputs/* Inputs */.G0.S3SecretAccessKey),
        SessionToken: read(inputs/* Inputs */.G0.S3SessionToken),
        // Locking is the backup's to do: the modes that read backups do not read it.
        ObjectLock: mode === 'backup' ? read(inputs/* Inputs */.G0.S3ObjectLock) : inputs/* DEFAULTS */.zY[inputs/* Inputs */.G0.S3ObjectLock],
    }, env);
}
/** Where backups may come from, and the keys that sign and check their manifests. */
function trustConfig(read, mode, downloadArtifact) {
    const workflowText = read(inputs/* Inputs */.G0.BackupWorkflow);
    const idText = read(inputs/* Inputs */.G0.ArtifactId);
    for (const [input, text] of [
        [inputs/* Inputs */.G0.BackupWorkflow, workflowText],
        [inputs/* Inputs */.G0.ArtifactId, idText],
    ]) {
        if (text && !downloadArtifact) {
            throw new errors/* UserError */.y(`${input}: only applies to artifacts, and download-artifact is not true. Fix: set download-artifact: true, or remove ${input}.`);
        }
    }
    const workflow = workflowText.replace(/^\.?\/?\.github\/workflows\//, '');
    if (workflowText && !/^[^/\\@]+\.ya?ml$/.test(workflow)) {
        throw new errors/* UserError */.y(`backup-workflow: "${workflowText}" is not a workflow file name. Fix: the name of the backup workflow's file under .github/workflows, e.g. backup-workflow: nightly.yml.`);
    }
    if (idText && !/^[1-9]\d{0,15}$/.test(idText)) {
        throw new errors/* UserError */.y(`artifact-id: "${idText}" is not an artifact id. Fix: the number the backup run's summary shows ("Artifact omniai-backup (id 1234567890)").`);
    }
    // Restore replaces the live database: which backup must be a decision, not whatever is newest.
    if (mode === 'restore' && downloadArtifact && !idText) {
        throw new errors/* UserError */.y(`artifact-id: restore replaces the live database, so with download-artifact it does not take the newest artifact on its own. Fix: set artifact-id to the artifact to restore (the backup run's summary shows "Artifact omniai-backup (id N)"; a drill's report too), or restore a local backup with backup-file.`);
    }
    return {
        backupWorkflow: workflowText ? workflow : null,
        artifactId: idText ? Number(idText) : null,
        verifyKeys: verifyKeys(read),
    };
}
/** backup: how the new backup is stored, checked before a snapshot is taken. */
function codecConfig(read, upload, jobs) {
    const kind = oneOf(read(inputs/* Inputs */.G0.Encryption), codec/* ENCRYPTIONS */.$d, inputs/* Inputs */.G0.Encryption);
    const compression = oneOf(read(inputs/* Inputs */.G0.Compression), codec/* COMPRESSIONS */._7, inputs/* Inputs */.G0.Compression);
    const optional = (input) => read(input) || undefined;
    const encryption = kind === 'age'
        ? {
            kind,
            recipients: (0,codec/* splitKeyLines */.Lf)(read(inputs/* Inputs */.G0.AgeRecipients)),
            ...(optional(inputs/* Inputs */.G0.AgePassphrase) ? { passphrase: read(inputs/* Inputs */.G0.AgePassphrase) } : {}),
        }
        : kind === 'gpg'
            ? {
                kind,
                ...(optional(inputs/* Inputs */.G0.GpgRecipient) ? { recipient: read(inputs/* Inputs */.G0.GpgRecipient) } : {}),
                ...(optional(inputs/* Inputs */.G0.GpgPassphrase) ? { passphrase: read(inputs/* Inputs */.G0.GpgPassphrase) } : {}),
                ...(optional(inputs/* Inputs */.G0.GpgHomedir) ? { homedir: read(inputs/* Inputs */.G0.GpgHomedir) } : {}),
            }
            : { kind };
    // A bad key stops the job before it takes a snapshot.
    (0,codec/* checkEncryption */.Wn)(encryption);
    if (jobs > 1 && (kind !== 'none' || compression !== 'none')) {
        throw new errors/* UserError */.y(`jobs: above 1, pg_dump writes a folder, which is not encrypted or compressed as one file. Fix: jobs: 1 with encryption or compression (pg_dump's custom format is compressed already).`);
    }
    const allowUnencryptedArtifact = bool(read(inputs/* Inputs */.G0.AllowUnencryptedArtifact), inputs/* Inputs */.G0.AllowUnencryptedArtifact);
    if (upload && kind === 'none' && !allowUnencryptedArtifact) {
        throw new errors/* UserError */.y(`upload-artifact: the backup is not encrypted, and anyone who can read this repository could download every user's conversations. Fix: set encryption: age with age-recipients (the nightly job needs only the public key), or allow-unencrypted-artifact: true for a repository only operators can read.`);
    }
    return { compression, encryption, allowUnencryptedArtifact };
}
function smokeConfig(read) {
    const url = read(inputs/* Inputs */.G0.SmokeUrl);
    if (!url)
        return null;
    const loginPath = read(inputs/* Inputs */.G0.SmokeLoginPath);
    const loginBody = read(inputs/* Inputs */.G0.SmokeLoginBody);
    if (Boolean(loginPath) !== Boolean(loginBody)) {
        throw new errors/* UserError */.y(`${loginPath ? inputs/* Inputs */.G0.SmokeLoginBody : inputs/* Inputs */.G0.SmokeLoginPath}: the smoke test's login needs both smoke-login-path and smoke-login-body. Fix: set both (the body from a secret), or neither.`);
    }
    const tokenField = read(inputs/* Inputs */.G0.SmokeTokenField);
    return {
        url,
        healthPath: read(inputs/* Inputs */.G0.SmokeHealthPath) || null,
        timeoutSeconds: seconds(read(inputs/* Inputs */.G0.SmokeTimeout), inputs/* Inputs */.G0.SmokeTimeout),
        login: loginPath
            ? { path: loginPath, body: loginBody, ...(tokenField ? { tokenField } : {}) }
            : null,
        conversationsPath: read(inputs/* Inputs */.G0.SmokeConversationsPath) || null,
        requireConversations: bool(read(inputs/* Inputs */.G0.SmokeRequireConversations), inputs/* Inputs */.G0.SmokeRequireConversations),
    };
}


/***/ }),

/***/ 26269:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   g: () => (/* binding */ readRunnerContext)
/* harmony export */ });
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(48161);
/**
 * What comes from the runner's environment, read once (by the action or the CLI, when the
 * options are parsed) into one object the modes receive. Nothing deeper reads `process.env`
 * for these, and `repository` is the one place that decides "are we in a workflow run".
 */

function readRunnerContext(env = process.env) {
    const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
    const repository = owner && repo ? { owner, repo } : null;
    const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/$/, '');
    const id = Number(env.GITHUB_RUN_ID);
    const runId = Number.isSafeInteger(id) && id > 0 ? id : null;
    return {
        repository,
        apiUrl: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/$/, ''),
        serverUrl,
        runId,
        runUrl: env.GITHUB_SERVER_URL && repository && env.GITHUB_RUN_ID
            ? `${env.GITHUB_SERVER_URL}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}`
            : null,
        eventName: env.GITHUB_EVENT_NAME ?? '',
        workspace: env.GITHUB_WORKSPACE || process.cwd(),
        temp: env.RUNNER_TEMP || node_os__WEBPACK_IMPORTED_MODULE_0__.tmpdir(),
        runnerTemp: env.RUNNER_TEMP || null,
        repositoryId: env.GITHUB_REPOSITORY_ID || null,
        eventPath: env.GITHUB_EVENT_PATH || null,
        envToken: env.GITHUB_TOKEN || '',
        actionsServices: Boolean(env.ACTIONS_RESULTS_URL && env.ACTIONS_RUNTIME_TOKEN),
    };
}


/***/ }),

/***/ 91241:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   FN: () => (/* binding */ MODES),
/* harmony export */   G0: () => (/* binding */ Inputs),
/* harmony export */   mc: () => (/* binding */ INPUTS),
/* harmony export */   oV: () => (/* binding */ ignoredInputs),
/* harmony export */   py: () => (/* binding */ OUTPUTS),
/* harmony export */   zY: () => (/* binding */ DEFAULTS)
/* harmony export */ });
/**
 * The inputs and outputs of the action and its sub-actions: one table each, the single source.
 * action.yml (the root's and each sub-action's), the README's tables and the CLI's flags are
 * made from these (src/options/action-yml.ts, scripts/actions.mjs), and a test holds each of
 * them to this file. Error messages name inputs through `Inputs`, never by a string of their own.
 */
var Inputs;
(function (Inputs) {
    Inputs["Mode"] = "mode";
    Inputs["Engine"] = "engine";
    Inputs["ConnectionString"] = "connection-string";
    Inputs["BackupDir"] = "backup-dir";
    Inputs["BackupFile"] = "backup-file";
    Inputs["Prefix"] = "prefix";
    Inputs["ConversationsTable"] = "conversations-table";
    Inputs["AuditTable"] = "audit-table";
    Inputs["SpotCheckCount"] = "spot-check-count";
    Inputs["DrillLog"] = "drill-log";
    Inputs["MaxBackupAge"] = "max-backup-age";
    Inputs["MaxRestoreSeconds"] = "max-restore-seconds";
    Inputs["ReportFile"] = "report-file";
    Inputs["ScratchDir"] = "scratch-dir";
    Inputs["GateMarkers"] = "gate-markers";
    Inputs["GateCommand"] = "gate-command";
    Inputs["GateWorkingDirectory"] = "gate-working-directory";
    Inputs["GateMinTests"] = "gate-min-tests";
    Inputs["GateAfterDrill"] = "gate-after-drill";
    Inputs["RestoreConnectionString"] = "restore-connection-string";
    Inputs["PgBinDir"] = "pg-bin-dir";
    Inputs["Jobs"] = "jobs";
    Inputs["Retention"] = "retention";
    Inputs["KeepDaily"] = "keep-daily";
    Inputs["KeepWeekly"] = "keep-weekly";
    Inputs["RetentionTimeZone"] = "retention-time-zone";
    Inputs["UploadArtifact"] = "upload-artifact";
    Inputs["DownloadArtifact"] = "download-artifact";
    Inputs["ArtifactName"] = "artifact-name";
    Inputs["GithubToken"] = "github-token";
    Inputs["Confirm"] = "confirm";
    Inputs["DrillEvidence"] = "drill-evidence";
    Inputs["DrillIssueTitle"] = "drill-issue-title";
    Inputs["DrillEvidenceAuthor"] = "drill-evidence-author";
    Inputs["MaxDrillAge"] = "max-drill-age";
    Inputs["Encryption"] = "encryption";
    Inputs["Compression"] = "compression";
    Inputs["AgeRecipients"] = "age-recipients";
    Inputs["AgeIdentity"] = "age-identity";
    Inputs["AgePassphrase"] = "age-passphrase";
    Inputs["GpgRecipient"] = "gpg-recipient";
    Inputs["GpgPassphrase"] = "gpg-passphrase";
    Inputs["GpgHomedir"] = "gpg-homedir";
    Inputs["AllowUnencryptedArtifact"] = "allow-unencrypted-artifact";
    Inputs["CspFile"] = "csp-file";
    Inputs["CspStrict"] = "csp-strict";
    Inputs["SmokeUrl"] = "smoke-url";
    Inputs["SmokeHealthPath"] = "smoke-health-path";
    Inputs["SmokeTimeout"] = "smoke-timeout";
    Inputs["SmokeLoginPath"] = "smoke-login-path";
    Inputs["SmokeLoginBody"] = "smoke-login-body";
    Inputs["SmokeTokenField"] = "smoke-token-field";
    Inputs["SmokeConversationsPath"] = "smoke-conversations-path";
    Inputs["SmokeRequireConversations"] = "smoke-require-conversations";
    Inputs["DryRun"] = "dry-run";
    Inputs["StopCommand"] = "stop-command";
    Inputs["StartCommand"] = "start-command";
    Inputs["AllowActiveSessions"] = "allow-active-sessions";
    Inputs["AllowUnencryptedSafetyBackup"] = "allow-unencrypted-safety-backup";
    Inputs["BackupWorkflow"] = "backup-workflow";
    Inputs["ArtifactId"] = "artifact-id";
    Inputs["SigningKey"] = "signing-key";
    Inputs["VerifyKey"] = "verify-key";
    Inputs["Storage"] = "storage";
    Inputs["S3Endpoint"] = "s3-endpoint";
    Inputs["S3Region"] = "s3-region";
    Inputs["S3PathStyle"] = "s3-path-style";
    Inputs["S3AccessKeyId"] = "s3-access-key-id";
    Inputs["S3SecretAccessKey"] = "s3-secret-access-key";
    Inputs["S3SessionToken"] = "s3-session-token";
    Inputs["S3ObjectLock"] = "s3-object-lock";
    Inputs["RestoreCheck"] = "restore-check";
})(Inputs || (Inputs = {}));
const MODES = ['backup', 'verify', 'drill', 'gate', 'restore', 'smoke'];
const ALL = MODES;
/** Modes that read or write backups. */
const STORED = ['backup', 'verify', 'drill', 'restore'];
/** Modes that read a backup. */
const READS = ['verify', 'drill', 'restore'];
/** The gate runs on its own and after a drill (gate-after-drill). */
const GATE = ['gate', 'drill'];
const SMOKE = ['drill', 'restore', 'smoke'];
/** Every input: one row each. */
/** Every input: one row each. */
const INPUTS = {
    [Inputs.Mode]: {
        default: '',
        modes: ALL,
        summary: '`backup`, `verify`, `drill`, `gate`, `restore` or `smoke` (root action only)',
        description: 'The job, in the root action only (each sub-action is one job: omniai/omniai-backups/backup ' +
            'and so on). `backup` (snapshot the database and write a manifest beside it), `verify` ' +
            '(prove a backup is whole and readable against its manifest), `drill` (restore a backup ' +
            'into a scratch copy and check schema, recent conversations and audit log against its ' +
            'manifest), `restore` (put a verified backup back as the live database, after a safety ' +
            'backup of the current one; needs `confirm`), `gate` (the pytest security gate, ' +
            '`pytest -m "security or csrf"`, and the CSP check) or `smoke` (the HTTP smoke test alone).',
        readmeDefault: '(required)',
    },
    [Inputs.Engine]: {
        default: '',
        modes: STORED,
        summary: '`sqlite` or `postgres`; a `postgres://` URL means postgres, anything else a SQLite file. ' +
            'verify and drill use the engine the manifest names.',
        description: '`sqlite` or `postgres`. Default: inferred from `connection-string` (a `postgres://` or ' +
            '`postgresql://` URL means postgres, anything else is a SQLite file path).',
        readmeDefault: 'inferred',
    },
    [Inputs.ConnectionString]: {
        default: 'omniai.db',
        modes: ['backup', 'drill', 'restore'],
        secret: true,
        summary: 'backup: the database. SQLite: a file path. PostgreSQL: a URL (keep it in a secret; its ' +
            'password is masked).',
        description: 'The database to back up. SQLite: a file path. PostgreSQL: a URL; put it in a secret, its ' +
            'password is masked and never logged. Not needed by `verify` and `drill`, which read only ' +
            'the backup and its manifest.',
        readmeDefault: '`omniai.db`',
    },
    [Inputs.BackupDir]: {
        default: 'backups',
        modes: STORED,
        also: Inputs.MaxDrillAge,
        summary: 'Folder of backups and their manifests',
        description: 'Folder that holds the backups and their manifests (`<backup>.manifest.json`).',
        readmeDefault: '`backups`',
    },
    [Inputs.BackupFile]: {
        default: '',
        modes: READS,
        summary: 'verify, drill: the backup to use (it must have its manifest)',
        description: 'verify and drill: the backup to use. Default: the newest backup in `backup-dir`, by the ' +
            'creation time recorded in its manifest (never by file name).',
        readmeDefault: 'newest',
    },
    [Inputs.Prefix]: {
        default: 'omniai',
        modes: ['backup', 'restore'],
        summary: 'backup: file name prefix, `<prefix>-YYYY-MM-DD.db`',
        description: 'backup: file name prefix. Backups are named `<prefix>-YYYY-MM-DD.db` (UTC) as in the ' +
            'runbook; a second backup on the same day gets `-2`, `-3`, ... and never replaces the ' +
            'first.',
        readmeDefault: '`omniai`',
    },
    [Inputs.ConversationsTable]: {
        default: 'conversations',
        modes: ['backup', 'restore'],
        summary: 'Table spot-checked; `none` to skip',
        description: 'Table of conversations whose most recent rows (and every row referencing them by foreign ' +
            'key) are spot-checked.',
        readmeDefault: '`conversations`',
    },
    [Inputs.AuditTable]: {
        default: 'audit_logs',
        modes: ['backup', 'restore'],
        summary: 'Audit table, hashed row by row; `none` to skip',
        description: 'Audit log table; every row is hashed in key order, so a deleted, added or altered row is ' +
            'caught.',
        readmeDefault: '`audit_logs`',
    },
    [Inputs.SpotCheckCount]: {
        default: '5',
        modes: ['backup', 'restore'],
        summary: 'How many recent conversations to spot-check (1-100)',
        description: 'How many of the most recent conversations to spot-check (1 to 100).',
        readmeDefault: '`5`',
    },
    [Inputs.DrillLog]: {
        default: '',
        modes: ['drill'],
        also: Inputs.MaxDrillAge,
        summary: 'JSON Lines file each drill appends to; `none` to skip',
        description: 'drill: a JSON Lines file each drill appends one record to (date, backup, checks, RTO, ' +
            'RPO). Default: `drill-log.jsonl` in `backup-dir`. Set to `none` to skip.',
        readmeDefault: '`<backup-dir>/drill-log.jsonl`',
    },
    [Inputs.MaxBackupAge]: {
        default: '',
        modes: ['verify', 'drill'],
        summary: 'verify, drill: fail when the backup is older, e.g. `26h`, `2d` (RPO)',
        description: 'drill (and verify): fail when the backup is older than this (RPO gate), e.g. `26h`, ' +
            '`2d`, `90m`, `3600s`. Empty: no gate, the age is still reported.',
        readmeDefault: 'none',
    },
    [Inputs.MaxRestoreSeconds]: {
        default: '',
        modes: ['drill'],
        summary: 'drill: fail when the restore takes longer (RTO)',
        description: 'drill: fail when restoring the backup takes longer than this many seconds (RTO gate). ' +
            'Empty: no gate.',
        readmeDefault: 'none',
    },
    [Inputs.ReportFile]: {
        default: '',
        modes: ALL,
        summary: 'Where the JSON report goes (CLI: the working directory)',
        description: 'Where to write the JSON report. Default: `omniai-backup-report.json` in `$RUNNER_TEMP` ' +
            '(in a workflow) or in the working directory (CLI).',
        readmeDefault: '`$RUNNER_TEMP/omniai-backup-report.json`',
    },
    [Inputs.ScratchDir]: {
        default: '',
        modes: [...STORED, 'gate'],
        summary: 'drill: parent of the scratch folder, which is deleted afterwards',
        description: 'drill: parent folder for the isolated scratch copy, deleted afterwards. Default: ' +
            '`$RUNNER_TEMP` or the system temp folder.',
        readmeDefault: '`$RUNNER_TEMP`',
    },
    [Inputs.GateMarkers]: {
        default: 'security or csrf',
        modes: GATE,
        summary: 'gate: the pytest `-m` expression',
        description: 'gate (and `gate-after-drill`): the pytest `-m` expression that selects the security ' +
            "gate's tests.",
        readmeDefault: '`security or csrf`',
    },
    [Inputs.GateCommand]: {
        default: 'pytest',
        modes: GATE,
        summary: 'gate: how to start pytest, e.g. `python -m pytest`, `poetry run pytest`; split at ' +
            'spaces, no shell',
        description: 'gate: how to start pytest, e.g. `python -m pytest` or `poetry run pytest`. Split into ' +
            'words at spaces (quote a word that holds spaces) and run without a shell; the action ' +
            'adds `-m`, `--junitxml` and its own options.',
        readmeDefault: '`pytest`',
    },
    [Inputs.GateWorkingDirectory]: {
        default: '.',
        modes: GATE,
        summary: 'gate: where pytest runs (its `pytest.ini` or `pyproject.toml`)',
        description: 'gate: the folder pytest runs in, where its `pytest.ini` or `pyproject.toml` is.',
        readmeDefault: '`.`',
    },
    [Inputs.GateMinTests]: {
        default: '1',
        modes: GATE,
        summary: 'gate: fail when fewer selected tests ran (skipped ones do not count)',
        description: 'gate: fail when fewer than this many selected tests ran (skipped ones do not count), so ' +
            'a marker typo or a moved test folder cannot pass the gate on zero tests.',
        readmeDefault: '`1`',
    },
    [Inputs.GateAfterDrill]: {
        default: 'false',
        modes: ['drill'],
        summary: 'drill: run the gate against the restored copy (`DATABASE_URL`) before it is deleted',
        description: 'drill: after every check passed, run the gate against the restored copy (`DATABASE_URL` ' +
            'points at it; SQLite also gets `OMNIAI_DB_PATH`) before it is deleted.',
        readmeDefault: '`false`',
    },
    [Inputs.RestoreConnectionString]: {
        default: '',
        modes: ['drill', 'backup'],
        secret: true,
        summary: 'postgres drill: the server to restore into (a service container), never the source',
        description: 'postgres drill: a URL of the server to restore into, typically a `services: postgres` ' +
            'container in the drill job. The action creates a scratch database with a unique name ' +
            'there, restores into it with `pg_restore --no-owner --no-acl`, checks it, and drops it ' +
            'afterwards. It restores and checks as a role it creates for the drill (no superuser ' +
            "rights; dropped afterwards), so this URL's role needs CREATEROLE and CREATEDB (the " +
            "container's `postgres` user has both). Never the server the backup came from. Keep it in " +
            'a secret.',
        readmeDefault: 'none',
    },
    [Inputs.PgBinDir]: {
        default: '',
        modes: STORED,
        summary: 'postgres: folder with pg_dump and pg_restore, searched first',
        description: 'postgres: a folder holding `pg_dump` and `pg_restore`, searched before ' +
            '`/usr/lib/postgresql/*/bin` and PATH. The action picks a client at least as new as the ' +
            'server (or the dump) and fails before dumping when none is.',
        readmeDefault: 'none',
    },
    [Inputs.Jobs]: {
        default: '1',
        modes: STORED,
        summary: 'postgres: parallel jobs; above 1, directory-format backups and `pg_restore --jobs`',
        description: "postgres: parallel jobs. Above 1, backups use pg_dump's directory format with `--jobs` " +
            '(the backup is a folder `<prefix>-YYYY-MM-DD.dumpdir`) and drills run `pg_restore ' +
            '--jobs`.',
        readmeDefault: '`1`',
    },
    [Inputs.Retention]: {
        default: 'apply',
        modes: ['backup'],
        summary: 'backup: `apply` deletes older backups no rule keeps, `dry-run` only reports, `off`',
        description: 'backup: after the new backup is written and verified, `apply` deletes older backups in ' +
            '`backup-dir` that no rule keeps (each backup with its manifest), `dry-run` only reports ' +
            'what it would delete, `off` leaves them all. The newest verified backup is never ' +
            'deleted.',
        readmeDefault: '`apply`',
    },
    [Inputs.KeepDaily]: {
        default: '14',
        modes: ['backup'],
        summary: 'Newest backup of each of the last N days that have one; with artifacts, daily artifacts ' +
            'are kept N days',
        description: "Keep the newest backup of each of the last N days that have one (restic's --keep-daily); " +
            '0 turns the rule off. With upload-artifact, daily artifacts are kept N days.',
        readmeDefault: '`14`',
    },
    [Inputs.KeepWeekly]: {
        default: '12',
        modes: ['backup'],
        summary: "Newest backup of each of the last N ISO weeks that have one; with artifacts, Monday's is " +
            'kept N weeks',
        description: "Keep the newest backup of each of the last N ISO weeks that have one (restic's " +
            "--keep-weekly); rules are ORed. With upload-artifact, Monday's artifact is weekly and " +
            'kept N weeks.',
        readmeDefault: '`12`',
    },
    [Inputs.RetentionTimeZone]: {
        default: 'UTC',
        modes: ['backup'],
        summary: 'Time zone in which retention days and weeks begin',
        description: 'IANA time zone in which days and weeks begin for the retention rules.',
        readmeDefault: '`UTC`',
    },
    [Inputs.UploadArtifact]: {
        default: 'false',
        modes: ['backup'],
        summary: 'backup: also upload the backup and manifest as an artifact',
        description: 'backup: also upload the backup and its manifest as a GitHub artifact named ' +
            "`artifact-name`, kept for its tier's retention (needs no token permission: the upload " +
            "uses the runner's own artifact token).",
        readmeDefault: '`false`',
    },
    [Inputs.DownloadArtifact]: {
        default: 'false',
        modes: READS,
        summary: 'verify, drill, restore: use an artifact the backup job made instead of `backup-dir` (the ' +
            'newest; restore: `artifact-id`)',
        description: 'verify, drill, restore: instead of `backup-dir`, use an artifact named `artifact-name` ' +
            'that the backup job made: uploaded by a `schedule`, `workflow_dispatch` or `push` run of ' +
            "this repository's default branch (never a pull request, a fork or another branch; with " +
            "`backup-workflow`, only that workflow's runs). verify and drill take the newest such " +
            'artifact; restore takes only the one `artifact-id` names. Needs `actions: read`.',
        readmeDefault: '`false`',
    },
    [Inputs.ArtifactName]: {
        default: 'omniai-backup',
        modes: STORED,
        summary: 'Name of the backup artifacts',
        description: 'Name of the backup artifacts, to upload and to look up.',
        readmeDefault: '`omniai-backup`',
    },
    [Inputs.GithubToken]: {
        default: '${{ github.token }}',
        modes: ALL,
        secret: true,
        summary: 'Token for the artifact lookup (needs `actions: read`)',
        description: "Token for finding and downloading backup artifacts through the REST API: the job's own " +
            'token by default, which needs `permissions: actions: read`.',
        readmeDefault: '`${{ github.token }}`',
    },
    [Inputs.Confirm]: {
        default: '',
        modes: ['restore'],
        summary: "restore: must repeat the live database's name",
        description: "restore: the name of the live database being replaced (the SQLite file's name, e.g. " +
            '`omniai.db`, or the PostgreSQL database name). A restore destroys the current data, so ' +
            "it runs only when this repeats the target's name.",
        readmeDefault: 'none',
    },
    [Inputs.DrillEvidence]: {
        default: 'auto',
        modes: ['drill'],
        also: Inputs.MaxDrillAge,
        summary: 'drill: record each drill on a tracking issue (`issues: write`); `auto` warns without the ' +
            'permission, `issue` fails, `none` turns it off',
        description: 'drill: records every drill as a comment on a tracking issue the action opens on first ' +
            'use (title drill-issue-title), readable by auditors without tools, with the ' +
            'machine-readable record embedded; a failed drill reopens it. Needs `permissions: issues: ' +
            'write`. `auto`: record when the token may, otherwise one warning naming the permission, ' +
            "and the drill's own checks decide the job. `issue`: the record is required, a drill that " +
            'cannot write it fails (for auditors). `none`: no record on the issue (the drill log ' +
            'still holds it).',
        readmeDefault: '`auto`',
    },
    [Inputs.DrillIssueTitle]: {
        default: 'OmniAI restore drills',
        modes: ['drill'],
        also: Inputs.MaxDrillAge,
        summary: 'Title of the tracking issue',
        description: 'Title of the tracking issue that holds the drill records.',
        readmeDefault: '`OmniAI restore drills`',
    },
    [Inputs.DrillEvidenceAuthor]: {
        default: 'github-actions[bot]',
        modes: ['drill'],
        also: Inputs.MaxDrillAge,
        summary: "The bot whose comments hold drill records (`<app-slug>[bot]` for a GitHub App's token); " +
            "nobody else's count",
        description: "The bot that writes the drill records: `github-actions[bot]` for the job's GITHUB_TOKEN, " +
            "`<app-slug>[bot]` when github-token is a GitHub App's token. Records in comments by " +
            'anyone else (people, whatever their role, and other bots) never count; a drill whose ' +
            'comment GitHub shows under another author fails, naming it.',
        readmeDefault: '`github-actions[bot]`',
    },
    [Inputs.MaxDrillAge]: {
        default: '',
        modes: ALL,
        summary: 'Any mode: fail when the last successful drill on record is older than N days',
        description: 'Any mode (PR checks included): fail when the last successful drill on record (the ' +
            'tracking issue in a workflow, else the drill log) is older than this many days, e.g. 100 ' +
            'for a quarterly drill. Needs `issues: read`; with `actions: read` a record also counts ' +
            'only when its workflow run succeeded on the default branch. Without `issues: read`, ' +
            'drill-evidence `auto` warns and reads the drill log when there is one (never in a pull ' +
            "request's run), else fails naming the permission; `issue` fails.",
        readmeDefault: 'none',
    },
    [Inputs.Encryption]: {
        default: 'none',
        modes: ['backup', ...READS],
        summary: 'backup: `age`, `gpg` or `none`; verify, drill, restore: when set (or a key is given), an ' +
            'unencrypted backup is refused',
        description: 'backup: encrypt backups at rest with `age` (public recipients in age-recipients, so the ' +
            'nightly job never holds the key that decrypts) or `gpg` (gpg-recipient or ' +
            'gpg-passphrase), or `none`. Streams: memory does not grow with the database. verify, ' +
            'drill and restore read the kind from the manifest.',
        readmeDefault: '`none`',
    },
    [Inputs.Compression]: {
        default: 'none',
        modes: ['backup'],
        summary: 'backup: `zstd`, `gzip` or `none`, before encryption',
        description: 'backup: `zstd`, `gzip` or `none`, applied before encryption (useful for SQLite; pg_dump ' +
            '-Fc is compressed already).',
        readmeDefault: '`none`',
    },
    [Inputs.AgeRecipients]: {
        default: '',
        modes: ['backup'],
        summary: 'backup: age public keys (age1...), one per line',
        description: 'backup with encryption: age: one or more age1... public keys, one per line (an age ' +
            'recipients file works as is).',
        readmeDefault: 'none',
    },
    [Inputs.AgeIdentity]: {
        default: '',
        modes: READS,
        secret: true,
        summary: 'verify, drill, restore: the age recovery key (a secret)',
        description: 'verify, drill, restore: the AGE-SECRET-KEY-1... recovery key (from a secret) that ' +
            'decrypts age backups; the drill proves it still works and says so in the drill record.',
        readmeDefault: 'none',
    },
    [Inputs.AgePassphrase]: {
        default: '',
        modes: STORED,
        secret: true,
        summary: 'age with a passphrase instead of keys (a secret)',
        description: 'age with a passphrase instead of keys (scrypt), for backup and for reading. A secret.',
        readmeDefault: 'none',
    },
    [Inputs.GpgRecipient]: {
        default: '',
        modes: ['backup'],
        summary: 'backup: gpg key id, fingerprint, e-mail or armored public key',
        description: 'backup with encryption: gpg: a key id, fingerprint or e-mail in the keyring, or an ' +
            'armored public key.',
        readmeDefault: 'none',
    },
    [Inputs.GpgPassphrase]: {
        default: '',
        modes: STORED,
        secret: true,
        summary: "gpg symmetric passphrase, or the secret key's passphrase (a secret)",
        description: "gpg symmetric passphrase (backup and reading), or the secret key's passphrase (reading). " +
            'A secret.',
        readmeDefault: 'none',
    },
    [Inputs.GpgHomedir]: {
        default: '',
        modes: STORED,
        summary: 'GNUPGHOME with the keyring',
        description: "GNUPGHOME holding the keyring for gpg; gpg's default when empty.",
        readmeDefault: 'none',
    },
    [Inputs.AllowUnencryptedArtifact]: {
        default: 'false',
        modes: ['backup'],
        summary: 'backup: permit uploading an unencrypted backup as an artifact',
        description: 'backup: permit upload-artifact with encryption none. Off by default: an artifact can be ' +
            'downloaded by anyone who can read the repository. The summary says loudly when it was ' +
            'allowed.',
        readmeDefault: '`false`',
    },
    [Inputs.CspFile]: {
        default: '',
        modes: ['gate'],
        summary: 'gate: the page whose Content-Security-Policy meta is checked; unset: ' +
            '`frontend/index.html`, only warning when missing; `none` to skip',
        description: 'gate: the HTML page whose Content-Security-Policy `<meta http-equiv>` is checked (the ' +
            "runbook's CSP hardening): missing fails; no default-src, unsafe-inline or unsafe-eval in " +
            "script-src, wildcard sources and object-src other than 'none' warn (fail with " +
            'csp-strict). `none` skips it. Empty: frontend/index.html when it exists (a warning says ' +
            'how to point the check at the right page when it does not); a page named here that is ' +
            'missing fails.',
        readmeDefault: 'none',
    },
    [Inputs.CspStrict]: {
        default: 'false',
        modes: ['gate'],
        summary: 'gate: CSP weaknesses fail instead of warning',
        description: 'gate: weaknesses in the Content-Security-Policy fail the gate instead of warning.',
        readmeDefault: '`false`',
    },
    [Inputs.SmokeUrl]: {
        default: '',
        modes: SMOKE,
        summary: 'drill, restore, smoke: base URL of the running backend for the smoke test',
        description: "drill, restore: base URL of a running OmniAI backend for the runbook's smoke test " +
            '(health, login, list conversations), e.g. http://localhost:8000. Empty: no smoke test.',
        readmeDefault: 'none',
    },
    [Inputs.SmokeHealthPath]: {
        default: '',
        modes: SMOKE,
        summary: 'Health endpoint, polled until 2xx, used as given; unset: `/v1/health`, then `/health`, ' +
            '`/healthz`, `/readyz`, `/v1/status`',
        description: 'Health endpoint, polled until it answers 2xx or smoke-timeout passes, used exactly as ' +
            "given. Empty: the runbook's /v1/health, then OmniAI's /health, /healthz, /readyz and " +
            '/v1/status, each tried while the one before answers 404 (the detail names the path that ' +
            'answered).',
        readmeDefault: 'none',
    },
    [Inputs.SmokeTimeout]: {
        default: '120',
        modes: SMOKE,
        summary: 'Seconds the backend may take to become healthy',
        description: 'Seconds the backend may take to become healthy.',
        readmeDefault: '`120`',
    },
    [Inputs.SmokeLoginPath]: {
        default: '',
        modes: SMOKE,
        summary: "Login endpoint (POST JSON), e.g. OmniAI's `/api/auth/login`; its cookies are kept",
        description: "Login endpoint (POST, JSON body from smoke-login-body), e.g. OmniAI's /api/auth/login. " +
            'Its cookies (session, CSRF) are kept and sent back; the CSRF token goes in X-CSRF-Token ' +
            'on state-changing requests. Empty skips the login.',
        readmeDefault: 'none',
    },
    [Inputs.SmokeLoginBody]: {
        default: '',
        modes: SMOKE,
        secret: true,
        summary: 'Login JSON body (a secret, never logged)',
        description: 'JSON body of the login request, for OmniAI {"username": ..., "password": ...}; put it in ' +
            'a secret. Never logged.',
        readmeDefault: 'none',
    },
    [Inputs.SmokeTokenField]: {
        default: '',
        modes: SMOKE,
        summary: 'Bearer token field in the login response; unset: the login must set a cookie',
        description: 'Where the login response holds a bearer token (e.g. access_token); cookies are kept ' +
            "either way. Empty: the login must set a cookie (OmniAI's session cookie).",
        readmeDefault: 'none',
    },
    [Inputs.SmokeConversationsPath]: {
        default: '',
        modes: SMOKE,
        summary: "Conversations list endpoint (GET), e.g. OmniAI's `/v1/conversations`",
        description: "Conversations list endpoint (GET) checked for 2xx JSON, e.g. OmniAI's /v1/conversations " +
            'or /api/chat/conversations. Empty skips it.',
        readmeDefault: 'none',
    },
    [Inputs.SmokeRequireConversations]: {
        default: 'false',
        modes: SMOKE,
        summary: 'The list must not be empty',
        description: 'The conversations list must not be empty.',
        readmeDefault: '`false`',
    },
    [Inputs.DryRun]: {
        default: 'false',
        modes: ['restore'],
        summary: 'restore: verify the backup and print the plan, change nothing',
        description: 'restore: verify the backup and say exactly what would happen, changing nothing.',
        readmeDefault: '`false`',
    },
    [Inputs.StopCommand]: {
        default: '',
        modes: ['restore'],
        summary: 'restore: stops the backend before the replacement (no shell), e.g. `systemctl stop ' +
            'omniai`',
        description: 'restore: the command that stops the OmniAI backend before the database is replaced (the ' +
            "runbook's step 1), e.g. `systemctl stop omniai` or `docker compose stop backend`. Run " +
            'without a shell, its output in a log group; if it fails, nothing is changed. Empty: the ' +
            'backend must already be stopped.',
        readmeDefault: 'none',
    },
    [Inputs.StartCommand]: {
        default: '',
        modes: ['restore'],
        summary: 'restore: starts the backend after the replacement and its checks, before the smoke test',
        description: 'restore: the command that starts the backend again after the replacement and its checks, ' +
            'before the smoke test (which waits up to smoke-timeout for health). Also run if the ' +
            'restore fails after stop-command, so the backend comes back on the old data.',
        readmeDefault: 'none',
    },
    [Inputs.AllowActiveSessions]: {
        default: 'false',
        modes: ['restore'],
        summary: 'restore: go ahead while the live database holds unexpired user sessions',
        description: 'restore: go ahead although the live database holds unexpired user sessions (the ' +
            'runbook\'s "ensure no active user sessions"; OmniAI\'s sessions table). Dry runs report ' +
            'the count.',
        readmeDefault: '`false`',
    },
    [Inputs.AllowUnencryptedSafetyBackup]: {
        default: 'false',
        modes: ['restore'],
        summary: 'restore: permit an unencrypted safety backup when the restored backup is encrypted and ' +
            'no key to encrypt it to is known',
        description: 'restore: the safety backup of the live database is encrypted like the backup being ' +
            'restored (to the recipients its manifest records, else the public key of age-identity, ' +
            'or the age or gpg passphrase); when none of those exists the restore is refused, unless ' +
            'this permits an unencrypted safety backup in backup-dir/pre-restore.',
        readmeDefault: '`false`',
    },
    [Inputs.BackupWorkflow]: {
        default: '',
        modes: READS,
        summary: "download-artifact: only artifacts of this workflow file's runs count, e.g. `nightly.yml`",
        description: 'download-artifact: the file name of the workflow that makes the backups (e.g. ' +
            "`nightly.yml`, under .github/workflows); only its runs' artifacts count. Unset: any " +
            '`schedule`, `workflow_dispatch` or `push` run of the default branch.',
        readmeDefault: 'none',
    },
    [Inputs.ArtifactId]: {
        default: '',
        modes: READS,
        summary: 'download-artifact: this artifact instead of the newest; required by restore',
        description: "download-artifact: the artifact to use (the backup run's summary shows its id) instead " +
            'of the newest; required by restore, which never takes "the newest" on its own. It must ' +
            'still be one the backup job made.',
        readmeDefault: 'none',
    },
    [Inputs.SigningKey]: {
        default: '',
        modes: ['backup', 'restore'],
        secret: true,
        summary: 'backup: Ed25519 private key that signs each manifest (a secret; `omniai-backup keygen` ' +
            'makes one)',
        description: 'backup: an Ed25519 private key (PEM "BEGIN PRIVATE KEY", or 32 bytes in base64) that ' +
            'signs each manifest; the signature goes beside it as `<backup>.manifest.json.sig` and ' +
            'into the artifact. A secret: masked, never logged. Make one with `npx omniai-backup ' +
            'keygen --out key.pem` or `openssl genpkey -algorithm ed25519`.',
        readmeDefault: 'none',
    },
    [Inputs.VerifyKey]: {
        default: '',
        modes: ['backup', ...READS],
        summary: 'verify, drill, restore: Ed25519 public key(s); an unsigned, altered or otherwise-signed ' +
            'manifest is refused',
        description: 'verify, drill, restore: the Ed25519 public key(s) of signing-key (PEM or 32 bytes in ' +
            'base64, one per line for a rotation). A backup whose manifest is unsigned, altered after ' +
            'signing, or signed by another key is then refused before anything of it is read.',
        readmeDefault: 'none',
    },
    [Inputs.Storage]: {
        default: '',
        modes: STORED,
        summary: 'backup, verify, drill, restore: an S3-compatible bucket, `s3://bucket/prefix`, beside ' +
            'backup-dir',
        description: 'backup, verify, drill, restore: also keep backups off-site in an S3-compatible bucket, ' +
            '`s3://bucket/prefix` (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Ceph). backup uploads ' +
            'each backup, signature and manifest (last) after its read-back check, streamed in parts, ' +
            'and applies retention there; verify, drill and restore read the newest by manifest time, ' +
            'or backup-file (a file name in the prefix, a key, or an s3:// URL). Empty: backup-dir ' +
            'only.',
        readmeDefault: 'none',
    },
    [Inputs.S3Endpoint]: {
        default: '',
        modes: STORED,
        summary: 'S3 endpoint for R2, B2, MinIO, Ceph; empty: AWS',
        description: 'S3 API endpoint for providers other than AWS, e.g. ' +
            '`https://<account>.r2.cloudflarestorage.com`, `https://s3.<region>.backblazeb2.com`, ' +
            '`http://minio:9000`. Empty: AWS.',
        readmeDefault: 'none',
    },
    [Inputs.S3Region]: {
        default: '',
        modes: STORED,
        summary: 'bucket region; empty: AWS_REGION, else us-east-1',
        description: 'Bucket region. Empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1 (R2: auto).',
        readmeDefault: 'none',
    },
    [Inputs.S3PathStyle]: {
        default: 'auto',
        modes: STORED,
        summary: 'path-style addressing: auto, true, false',
        description: 'auto (path-style with s3-endpoint, virtual-hosted on AWS), true or false.',
        readmeDefault: '`auto`',
    },
    [Inputs.S3AccessKeyId]: {
        default: '',
        modes: STORED,
        summary: 'from a secret; empty: AWS_* environment (OIDC) or the SDK chain',
        description: 'From a secret. Empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from ' +
            'the environment (aws-actions/configure-aws-credentials, also through OIDC), else the ' +
            "SDK's default chain.",
        readmeDefault: 'none',
    },
    [Inputs.S3SecretAccessKey]: {
        default: '',
        modes: STORED,
        secret: true,
        summary: 'from a secret (masked)',
        description: 'The secret key for s3-access-key-id, from a secret (masked).',
        readmeDefault: 'none',
    },
    [Inputs.S3SessionToken]: {
        default: '',
        modes: STORED,
        secret: true,
        summary: 'from a secret (masked)',
        description: 'A session token for temporary credentials, from a secret (masked).',
        readmeDefault: 'none',
    },
    [Inputs.S3ObjectLock]: {
        default: 'off',
        modes: ['backup'],
        summary: 'off, governance, compliance: lock each backup for its tier',
        description: 'off, governance or compliance: each backup, signature and manifest is put under Object ' +
            'Lock for its tier (daily: keep-daily days; weekly: keep-weekly × 7 days). The bucket ' +
            'must have Object Lock enabled. Retention never tries to delete a locked backup before ' +
            'its date.',
        readmeDefault: '`off`',
    },
    [Inputs.RestoreCheck]: {
        default: 'false',
        modes: ['backup'],
        summary: 'true: the new backup is restored into a scratch copy and checked as a drill checks it before ' +
            'it is accepted (PostgreSQL: into `restore-connection-string`); its manifest records it',
        description: "backup: `true` restores the new backup into a scratch copy and runs the drill's checks on it " +
            '(integrity, foreign keys, schema, row counts, spot-check, audit log) before it is accepted, ' +
            "so every night's backup is known to restore. SQLite restores into scratch-dir; PostgreSQL " +
            'into a scratch database on `restore-connection-string` (a service container, never the ' +
            'source). The manifest records the check; a backup that fails it is kept only as damaged, ' +
            'retention deletes nothing, and the job fails. A compressed backup, or one encrypted with ' +
            'a passphrase, is first decoded back from the stored file, which must read and decode as ' +
            'it was written; one encrypted to a public key is checked from the plaintext snapshot it ' +
            'was encrypted from (the nightly job holds only the public key).',
        readmeDefault: '`false`',
    },
};
const DEFAULTS = Object.fromEntries(Object.entries(INPUTS).map(([input, spec]) => [input, spec.default]));
/**
 * The inputs set in this step that `mode` does not read, each as a warning: a misplaced input
 * or a wrong mode must not pass silently. The runner passes every input action.yml declares,
 * with its default when the step does not set it, so an input counts as set only when it is
 * neither empty nor its default. An expression default (the token's) reaches the action
 * expanded, so whether it was set cannot be told: it is never warned about.
 */
function ignoredInputs(get, mode) {
    const isSet = (input) => {
        const value = get(input).trim();
        return value !== '' && value !== INPUTS[input].default;
    };
    const warnings = [];
    for (const input of Object.values(Inputs)) {
        const { modes, also, default: initial } = INPUTS[input];
        if (modes.includes(mode) || initial.startsWith('${{'))
            continue;
        if (!isSet(input) || (also && isSet(also)))
            continue;
        const users = `${modes.join(', ')}${also ? `, and by any mode with ${also}` : ''}`;
        warnings.push(`${input}: set, but mode ${mode} does not use it (used by ${users}). Fix: remove ${input} from this step, or check the input's name and the mode.`);
    }
    return warnings;
}
/** Every output: the root action declares all, a sub-action those its mode sets. */
const OUTPUTS = {
    ok: {
        modes: ALL,
        summary: '`true` when every check passed',
        description: '`true` when every check passed.',
    },
    'backup-path': {
        modes: STORED,
        summary: 'The backup written (backup) or used (verify, drill)',
        description: 'Path of the backup written (backup) or used (verify, drill).',
    },
    sha256: {
        modes: STORED,
        summary: 'SHA-256 of the backup file',
        description: 'SHA-256 of the backup file.',
    },
    'size-bytes': {
        modes: STORED,
        summary: 'Size of the backup file',
        description: 'Size of the backup file in bytes.',
    },
    report: {
        modes: ALL,
        summary: 'Path of the JSON report',
        description: 'Path of the JSON report (mode, engine, ok, backup, checks, database, backupCount, ' +
            'durations).',
    },
    'backup-count': {
        modes: STORED,
        summary: 'Backups with a manifest in `backup-dir`',
        description: 'Number of backups with a manifest in `backup-dir`; empty where the job stopped before it looked.',
    },
    'backup-age-seconds': {
        modes: READS,
        summary: 'verify, drill: age of the backup (RPO)',
        description: 'verify, drill: age of the backup used, in seconds (the RPO actually achieved).',
    },
    'restore-seconds': {
        modes: ['drill'],
        summary: 'drill: restore time (RTO)',
        description: 'drill: seconds the restore took (the RTO measured).',
    },
    'failed-checks': {
        modes: ALL,
        summary: 'Comma-separated names of failed checks',
        description: 'Comma-separated names of the checks that failed; empty when all passed.',
    },
    'tests-passed': {
        modes: GATE,
        summary: 'gate: security tests that passed (empty when the gate did not run)',
        description: 'gate: security gate tests that passed. Empty when the gate did not run.',
    },
    'tests-failed': {
        modes: GATE,
        summary: 'gate: security tests that failed',
        description: 'gate: security gate tests that failed.',
    },
    'tests-errors': {
        modes: GATE,
        summary: 'gate: tests that errored in setup or teardown, plus uncollectable files',
        description: 'gate: tests that errored in setup or teardown, plus files pytest could not collect.',
    },
    'tests-skipped': {
        modes: GATE,
        summary: 'gate: selected tests skipped or xfailed',
        description: 'gate: selected tests that were skipped or xfailed (each one weakens the gate).',
    },
    'artifact-id': {
        modes: STORED,
        summary: 'backup: the artifact uploaded; verify, drill, restore: the one used',
        description: 'backup with upload-artifact: the id of the artifact uploaded; verify, drill, restore ' +
            'with download-artifact: the id of the artifact used. Empty otherwise.',
    },
    'drill-issue-number': {
        modes: ['drill'],
        summary: 'drill: the tracking issue it was recorded on (empty when not recorded)',
        description: 'drill: the number of the tracking issue the drill was recorded on. Empty when it was not ' +
            'recorded.',
    },
    'drill-comment-url': {
        modes: ['drill'],
        summary: 'drill: the comment that holds its record (empty when not recorded)',
        description: "drill: the URL of the tracking issue's comment that holds this drill's record. Empty " +
            'when it was not recorded.',
    },
};


/***/ }),

/***/ 45650:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Br: () => (/* binding */ renderSummary),
/* harmony export */   HH: () => (/* binding */ failedChecks),
/* harmony export */   ee: () => (/* binding */ bytes),
/* harmony export */   oh: () => (/* binding */ failureMessage)
/* harmony export */ });
/* harmony import */ var _checks_checks_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(73992);
/* harmony import */ var _store_retention_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(231);
/* harmony import */ var _util_text_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(28805);



/** The job's one-line failure: the error that stopped the mode, else each failed check. */
function failureMessage(report) {
    if (report.error)
        return report.error;
    const failed = report.checks.filter((c) => !c.ok);
    return `${report.mode} failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join(' | ')}`;
}
function failedChecks(report) {
    return report.checks.filter((c) => !c.ok).map((c) => c.name);
}
/** A size for people: 1.71 MiB. */
function bytes(n) {
    if (n < 1024)
        return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = -1;
    do {
        v /= 1024;
        u++;
    } while (v >= 1024 && u < units.length - 1);
    return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}
const cell = (s) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
/** Test output in a table cell: one line, no HTML (GitHub renders the summary's HTML). */
const testText = (s, max = 300) => {
    const line = s.replace(/\s+/g, ' ').trim();
    const short = line.length > max ? `${line.slice(0, max - 1)}…` : line;
    return (0,_util_text_js__WEBPACK_IMPORTED_MODULE_2__/* .markdownText */ .p7)(short);
};
/** Rows shown per table; the JSON report has them all. */
const MAX_ROWS = 50;
const KIND = {
    failure: 'failed',
    error: 'error',
    collection: 'not collected',
    internal: 'pytest crashed',
    skip: 'skipped',
    xfail: 'xfail',
};
const at = (e) => (e.file ? `${e.file}${e.line ? `:${e.line}` : ''}` : '');
function renderGate(gate) {
    const t = gate.tests;
    const counts = [
        `${t.passed} passed`,
        `${t.failed} failed`,
        `${t.errors} ${t.errors === 1 ? 'error' : 'errors'}`,
        `${t.skipped} skipped`,
    ].join(', ');
    const exit = gate.exitCode === null ? 'killed' : `exit ${gate.exitCode}`;
    const lines = [
        '### Security gate',
        '',
        `\`${cell(gate.command)}\` in \`${cell(gate.workingDirectory)}\` (${exit}): **${t.selected} selected**, ${counts}; at least ${gate.minTests} must run`,
        '',
    ];
    const more = (n) => n > MAX_ROWS ? [`… and ${n - MAX_ROWS} more in the JSON report`, ''] : [];
    if (gate.failures.length) {
        lines.push('| Test | Result | Where | Message |', '| --- | --- | --- | --- |');
        for (const f of gate.failures.slice(0, MAX_ROWS)) {
            lines.push(`| ${testText(f.name, 200)} | ❌ ${KIND[f.kind]} | ${testText(at(f))} | ${testText(f.message)} |`);
        }
        lines.push('', ...more(gate.failures.length));
    }
    if (gate.skipped.length) {
        lines.push('**Skipped gate tests** (each one weakens the gate):', '');
        for (const s of gate.skipped.slice(0, MAX_ROWS)) {
            const where = at(s) ? ` (${testText(at(s))})` : '';
            lines.push(`- ⚠️ ${testText(s.name, 200)}${where}: ${KIND[s.kind]}${s.message ? `: ${testText(s.message)}` : ''}`);
        }
        lines.push('', ...more(gate.skipped.length));
    }
    return lines;
}
/** The job summary, as Markdown: readable at a glance, in a terminal too. */
function renderSummary(report) {
    const title = {
        backup: 'Backup',
        verify: 'Verify',
        drill: 'Restore drill',
        gate: 'Security gate',
        restore: 'Restore',
        smoke: 'Smoke test',
    }[report.mode];
    const failed = failedChecks(report);
    const status = report.error
        ? `❌ **failed**: ${(0,_util_text_js__WEBPACK_IMPORTED_MODULE_2__/* .markdownText */ .p7)(report.error)}`
        : report.ok
            ? `✅ **passed**: ${report.checks.length} checks`
            : `❌ **failed**: ${failed.join(', ')}`;
    // The gate runs tests, not a database engine.
    const heading = report.mode === 'gate' || report.mode === 'smoke' ? title : `${title} (${report.engine})`;
    const lines = [`## OmniAI ${heading}`, '', status, ''];
    if (report.checks.length) {
        lines.push('| Check | Result | Detail |', '| --- | --- | --- |');
        for (const c of report.checks)
            lines.push(`| ${c.name} | ${c.ok ? '✅ pass' : '❌ fail'} | ${(0,_util_text_js__WEBPACK_IMPORTED_MODULE_2__/* .markdownText */ .p7)(c.detail)} |`);
        lines.push('');
    }
    if (report.gate)
        lines.push(...renderGate(report.gate));
    const facts = [];
    if (report.backup) {
        facts.push(['Backup', `\`${report.backup.path}\``]);
        if (report.mode === 'backup') {
            facts.push([
                'Proven',
                report.restoreChecked
                    ? `restored and checked (${report.restoreChecked.checks.join(', ')}) in ${report.restoreChecked.seconds.toFixed(2)} s${report.restoreChecked.from === 'snapshot' ? ', from the plaintext snapshot it was encrypted from (this job cannot decrypt it)' : report.restoreChecked.from === 'stored' ? ', decoded back from the stored file' : ''}`
                    : 'written and read back; not restored (restore-check: true restores each backup)',
            ]);
        }
        facts.push(['Size', bytes(report.backup.bytes)]);
        facts.push(['SHA-256', `\`${report.backup.sha256}\``]);
        facts.push(['Taken at', report.backup.createdAt]);
    }
    if (report.backupAgeSeconds !== null)
        facts.push(['Backup age (RPO)', (0,_checks_checks_js__WEBPACK_IMPORTED_MODULE_0__/* .formatSeconds */ .Xo)(report.backupAgeSeconds)]);
    if (report.restoreSeconds !== null)
        facts.push(['Restore time (RTO)', `${report.restoreSeconds.toFixed(2)} s`]);
    if (report.database) {
        facts.push([
            report.mode === 'drill' ? 'Restored database' : 'Database',
            `${bytes(report.database.bytes)}, ${report.database.tables} tables, ${report.database.rows} rows`,
        ]);
    }
    if (report.mode !== 'gate' && report.mode !== 'smoke' && report.backupCount !== null)
        facts.push(['Backups in folder', String(report.backupCount)]);
    if (report.space) {
        const s = report.space;
        facts.push([
            'Disk space',
            `${bytes(s.free)} free beside the backups (folder ${bytes(s.folderBytes)}, newest ${bytes(s.newestBytes)})${s.nextFits ? '' : ': ⚠️ the next backup will not fit'}`,
        ]);
    }
    if (report.artifact) {
        const a = report.artifact;
        facts.push([
            'Artifact',
            a.tier
                ? `${a.name} (id ${a.id}), ${a.tier}, kept ${a.retentionDays} days`
                : `${a.name} (id ${a.id}) from run ${a.runId}, made ${a.createdAt}`,
        ]);
    }
    const total = report.durations.totalMs;
    if (total !== undefined) {
        const phases = Object.entries(report.durations)
            .filter(([k]) => k !== 'totalMs')
            .map(([k, v]) => `${k.replace(/Ms$/, '')} ${(v / 1000).toFixed(2)} s`);
        facts.push([
            'Duration',
            `${(total / 1000).toFixed(2)} s${phases.length ? ` (${phases.join(', ')})` : ''}`,
        ]);
    }
    lines.push('| | |', '| --- | --- |', ...facts.map(([k, v]) => `| ${k} | ${(0,_util_text_js__WEBPACK_IMPORTED_MODULE_2__/* .markdownText */ .p7)(v)} |`), '');
    // The CSP section brings its own heading (with the file and the verdict).
    if (report.csp)
        lines.push(report.csp.markdown, '');
    if (report.smoke) {
        lines.push('### Smoke test', '', '| Step | Result | Status | Time | Detail |', '| --- | --- | --- | --- | --- |');
        for (const s of report.smoke) {
            lines.push(`| ${s.name} | ${s.ok ? '✅' : '❌'} | ${s.status ?? '-'} | ${(s.ms / 1000).toFixed(2)} s | ${(0,_util_text_js__WEBPACK_IMPORTED_MODULE_2__/* .markdownText */ .p7)(s.detail)} |`);
        }
        lines.push('');
    }
    if (report.trend)
        lines.push('### Trend', '', report.trend, '');
    if (report.restore) {
        const r = report.restore;
        lines.push(`### ${r.dryRun ? 'Restore plan (dry run: nothing was changed)' : 'Restore'}`, '', ...r.plan.map((p, i) => `${i + 1}. ${p}`), '');
        if (r.undo)
            lines.push(`To undo: \`${cell(r.undo)}\``, '');
    }
    if (report.s3) {
        const o = report.s3;
        lines.push('### Off-site (S3)', '', `\`${o.location}${o.key.split('/').pop()}\` (${o.tier})${o.lockedUntil ? `, Object Lock until ${o.lockedUntil}` : ''}`, '');
        if (o.retention) {
            const r = o.retention;
            lines.push(r.mode === 'dry-run'
                ? `Retention (dry run): ${r.decisions.filter((d) => !d.keep).length} would be deleted, ${r.kept} kept`
                : `Retention: ${r.deleted} deleted (${bytes(r.freedBytes)} freed), ${r.kept} kept`, '', (0,_store_retention_js__WEBPACK_IMPORTED_MODULE_1__/* .renderRetention */ .vj)(r.decisions));
        }
    }
    if (report.retention) {
        const r = report.retention;
        const what = r.mode === 'dry-run'
            ? `dry run: ${r.decisions.filter((d) => !d.keep).length} would be deleted, ${r.kept} kept`
            : `${r.deleted} deleted (${bytes(r.freedBytes)} freed), ${r.kept} kept`;
        lines.push('### Retention', '', what, '', (0,_store_retention_js__WEBPACK_IMPORTED_MODULE_1__/* .renderRetention */ .vj)(r.decisions));
    }
    for (const w of report.warnings)
        lines.push(`> ⚠️ ${(0,_util_text_js__WEBPACK_IMPORTED_MODULE_2__/* .markdownText */ .p7)(w)}`, '');
    return lines.join('\n');
}


/***/ }),

/***/ 231:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   SA: () => (/* binding */ planRetention),
/* harmony export */   dX: () => (/* binding */ applyRetention),
/* harmony export */   vj: () => (/* binding */ renderRetention),
/* harmony export */   wH: () => (/* binding */ retentionRows)
/* harmony export */ });
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(76760);
/* harmony import */ var _options_inputs_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(91241);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(99661);



const DAY_MS = 86_400_000;
/**
 * The decision for every entry, newest first by the manifests' createdAt (never the file names;
 * equal times fall back to the path, as LocalStore.list does, so the plan is repeatable).
 * Throws UserError on a bad policy and on a manifest whose createdAt is not a date.
 */
function planRetention(entries, policy, opts) {
    checkCount(_options_inputs_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.KeepDaily, policy.keepDaily, 14);
    checkCount(_options_inputs_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.KeepWeekly, policy.keepWeekly, 12);
    const localDate = localDateIn(policy.timeZone || 'UTC');
    // A protected path that matches nothing would protect nothing: most likely the caller spelt
    // the path differently (relative vs absolute), and the backup it meant could be deleted.
    const protect = new Set(opts.protect.map((p) => node_path__WEBPACK_IMPORTED_MODULE_0__.resolve(p)));
    const known = new Set(entries.map((e) => node_path__WEBPACK_IMPORTED_MODULE_0__.resolve(e.path)));
    for (const p of protect) {
        if (!known.has(p)) {
            throw new Error(`${_options_inputs_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.Retention}: protected backup ${p} is not among the backups to plan.`);
        }
    }
    const timed = entries.map((entry) => ({ entry, at: takenAt(entry) }));
    timed.sort((a, b) => b.at - a.at || b.entry.path.localeCompare(a.entry.path));
    const rules = [
        { name: 'daily', left: policy.keepDaily, period: (d) => d.day },
        { name: 'weekly', left: policy.keepWeekly, period: (d) => d.week },
    ].map((r) => ({ ...r, seen: new Set() }));
    // restic refuses to act on an empty policy and keeps everything: with both rules at 0,
    // deleting all but the newest verified backup is far more likely a mistake than a wish.
    const empty = rules.every((r) => r.left === 0);
    return timed.map(({ entry, at }, i) => {
        const reasons = [];
        const local = localDate(at);
        for (const rule of rules) {
            if (rule.left === 0)
                continue;
            const period = rule.period(local);
            if (!rule.seen.has(period)) {
                rule.seen.add(period);
                rule.left--;
                reasons.push(`${rule.name} ${period}`);
            }
            else if (i === timed.length - 1) {
                // restic (0.17+): while a rule still has periods to spare, it also keeps the oldest
                // backup, so a young history is not cut short to one backup per period.
                rule.left--;
                reasons.push(`oldest ${rule.name} ${period}`);
            }
        }
        if (empty)
            reasons.push('policy is empty');
        if (protect.has(node_path__WEBPACK_IMPORTED_MODULE_0__.resolve(entry.path)))
            reasons.push('newest verified');
        return { entry, keep: reasons.length > 0, reasons };
    });
}
/**
 * Removes the backups not kept, oldest first, so an interrupted run leaves the newest ones.
 * `remove` deletes a backup and its manifest together. The first failure stops the run and is
 * thrown naming the file; the newer backups after it are not touched.
 */
async function applyRetention(decisions, opts) {
    const kept = decisions.filter((d) => d.keep).length;
    const doomed = decisions
        .filter((d) => !d.keep)
        .map((d) => ({ entry: d.entry, at: takenAt(d.entry) }))
        .sort((a, b) => a.at - b.at || a.entry.path.localeCompare(b.entry.path));
    if (opts.dryRun)
        return { kept, deleted: 0, freedBytes: 0 };
    let deleted = 0;
    let freedBytes = 0;
    for (const [i, { entry }] of doomed.entries()) {
        try {
            await opts.remove(entry);
        }
        catch (err) {
            const error = new _util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .UserError */ .y(`${_options_inputs_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.Retention}: cannot delete ${entry.path} (${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .describeError */ .U)(err)}). ${deleted} older backup(s) were deleted before it; ${doomed.length - i - 1} newer one(s) due for deletion were left in place. Fix: make sure the backup folder is writable, then run again.`);
            error.cause = err;
            throw error;
        }
        deleted++;
        freedBytes += entry.manifest.backup.bytes;
    }
    return { kept, deleted, freedBytes };
}
function retentionRows(decisions) {
    return decisions.map((d) => ({
        file: node_path__WEBPACK_IMPORTED_MODULE_0__.basename(d.entry.path),
        createdAt: d.entry.manifest.createdAt,
        keep: d.keep,
        reasons: d.reasons,
    }));
}
/** The plan as a Markdown table for the job summary, in the order given (planRetention's: newest first). */
function renderRetention(rows) {
    const lines = ['| Backup | Taken at | Kept | Why |', '| --- | --- | --- | --- |'];
    for (const d of rows) {
        const why = d.reasons.length ? d.reasons.join(', ') : 'no rule keeps it';
        lines.push(`| \`${cell(d.file)}\` | ${cell(d.createdAt)} | ${d.keep ? '✅ yes' : '🗑️ no'} | ${cell(why)} |`);
    }
    return lines.join('\n') + '\n';
}
/** One line in a table cell, no HTML (GitHub renders the summary's HTML). */
const cell = (s) => s
    .replace(/\s+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/([[\]])/g, '\\$1')
    .replace(/`/g, "'");
function checkCount(input, n, example) {
    if (!Number.isInteger(n) || n < 0) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .UserError */ .y(`${input}: "${n}" is not a whole number of 0 or more. Fix: e.g. ${input}: ${example}, or 0 to turn this rule off.`);
    }
}
function takenAt(entry) {
    const at = Date.parse(entry.manifest.createdAt);
    if (Number.isNaN(at)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .UserError */ .y(`manifest ${entry.manifestPath}: createdAt "${entry.manifest.createdAt}" is not a date, so retention cannot tell how old ${node_path__WEBPACK_IMPORTED_MODULE_0__.basename(entry.path)} is. Fix: restore the manifest, or move the backup out of the folder.`);
    }
    return at;
}
function localDateIn(timeZone) {
    let format;
    try {
        format = new Intl.DateTimeFormat('en-US', {
            timeZone,
            calendar: 'gregory',
            numberingSystem: 'latn',
            year: 'numeric',
            month: 'numeric',
            day: 'numeric',
        });
    }
    catch {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .UserError */ .y(`${_options_inputs_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.RetentionTimeZone}: "${timeZone}" is not a time zone. Fix: give an IANA name, e.g. retention-time-zone: Europe/Berlin, or UTC.`);
    }
    return (at) => {
        const parts = {};
        for (const p of format.formatToParts(at))
            parts[p.type] = Number(p.value);
        const { year, month, day } = parts;
        return {
            day: `${year}-${pad(month)}-${pad(day)}`,
            week: isoWeek(year, month, day),
        };
    };
}
/** ISO 8601 week: Monday to Sunday; week 1 is the one with the year's first Thursday. */
function isoWeek(year, month, day) {
    const date = Date.UTC(year, month - 1, day);
    const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
    // A week belongs to the year its Thursday falls in.
    const thursday = date + (3 - weekday) * DAY_MS;
    const weekYear = new Date(thursday).getUTCFullYear();
    const week = Math.floor((thursday - Date.UTC(weekYear, 0, 1)) / DAY_MS / 7) + 1;
    return `${weekYear}-W${pad(week)}`;
}
const pad = (n) => String(n).padStart(2, '0');


/***/ }),

/***/ 97589:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   WI: () => (/* binding */ isS3Location),
/* harmony export */   a7: () => (/* binding */ S3Inputs),
/* harmony export */   pv: () => (/* binding */ parseS3Settings)
/* harmony export */ });
/* harmony import */ var _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(91241);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(99661);
/**
 * The S3 store's settings: its inputs (one table, S3Inputs), parsed and validated once, with the
 * environment read by the caller and secrets masked before anything can print them. No SDK here:
 * config parsing imports this without loading it.
 */


/** The inputs that configure the store, from the input table; errors name these. */
const S3Inputs = {
    Storage: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.Storage,
    Endpoint: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3Endpoint,
    Region: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3Region,
    PathStyle: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3PathStyle,
    AccessKeyId: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3AccessKeyId,
    SecretAccessKey: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3SecretAccessKey,
    SessionToken: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3SessionToken,
    ObjectLock: _options_inputs_js__WEBPACK_IMPORTED_MODULE_0__/* .Inputs */ .G0.S3ObjectLock,
};
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
function isS3Location(storage) {
    return /^s3:\/\//i.test(storage.trim());
}
/**
 * The store's settings from its inputs and the environment (read once, by the caller). Secrets
 * are masked through `mask` before anything can print them. Credentials: the inputs when given
 * (both key and secret), else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (what
 * aws-actions/configure-aws-credentials sets, from OIDC or keys), else the SDK's default chain.
 */
function parseS3Settings(inputs, env, mask = () => { }) {
    const storage = inputs.Storage.trim();
    const match = /^s3:\/\/([^/]*)\/?(.*)$/i.exec(storage);
    if (!match) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.Storage}: "${storage}" is not an S3 location. Fix: write it as s3://bucket or s3://bucket/prefix.`);
    }
    const bucket = match[1];
    if (!BUCKET.test(bucket) || bucket.includes('..')) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.Storage}: "${bucket}" is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens). Fix: write storage as s3://bucket/prefix with the bucket's name.`);
    }
    const trimmed = match[2].replace(/^\/+|\/+$/g, '');
    if (trimmed && trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.Storage}: the prefix "${match[2]}" has an empty, "." or ".." part. Fix: e.g. storage: s3://${bucket}/omniai/nightly.`);
    }
    const prefix = trimmed ? `${trimmed}/` : '';
    const endpointText = inputs.Endpoint.trim();
    let endpoint = null;
    if (endpointText) {
        let url;
        try {
            url = new URL(endpointText);
        }
        catch {
            url = new URL('invalid:');
        }
        if (url.protocol !== 'https:' && url.protocol !== 'http:') {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.Endpoint}: "${endpointText}" is not an http(s) URL. Fix: e.g. https://<account>.r2.cloudflarestorage.com, https://s3.us-west-004.backblazeb2.com, or leave it empty for AWS.`);
        }
        endpoint = endpointText.replace(/\/+$/, '');
    }
    const region = inputs.Region.trim() || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
    if (!/^[a-z0-9-]{2,32}$/.test(region)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.Region}: "${region}" is not a region name. Fix: e.g. us-east-1, eu-central-1, or auto for R2.`);
    }
    const pathStyle = inputs.PathStyle.trim().toLowerCase() || 'auto';
    if (!['auto', 'true', 'false'].includes(pathStyle)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.PathStyle}: "${inputs.PathStyle}" is not auto, true or false. Fix: leave it at auto (path-style with s3-endpoint, virtual-hosted on AWS).`);
    }
    // Custom endpoints (MinIO, Ceph, an IP address) rarely have a DNS name per bucket.
    const forcePathStyle = pathStyle === 'auto' ? endpoint !== null : pathStyle === 'true';
    const lockText = inputs.ObjectLock.trim().toUpperCase() || 'OFF';
    if (!['OFF', 'GOVERNANCE', 'COMPLIANCE'].includes(lockText)) {
        throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.ObjectLock}: "${inputs.ObjectLock}" is not off, governance or compliance. Fix: choose one; the bucket must have Object Lock enabled for the other two.`);
    }
    const objectLock = lockText === 'OFF' ? null : lockText;
    const key = inputs.AccessKeyId.trim();
    const secret = inputs.SecretAccessKey.trim();
    const token = inputs.SessionToken.trim();
    for (const s of [secret, token, env.AWS_SECRET_ACCESS_KEY ?? '', env.AWS_SESSION_TOKEN ?? ''])
        if (s)
            mask(s);
    let credentials = null;
    let credentialsFrom = 'the SDK default chain (no s3-access-key-id and no AWS_ACCESS_KEY_ID)';
    if (key || secret || token) {
        if (!key || !secret) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${key ? S3Inputs.SecretAccessKey : S3Inputs.AccessKeyId}: empty while ${key ? S3Inputs.AccessKeyId : S3Inputs.SecretAccessKey} is set. Fix: set both from secrets, or neither to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (aws-actions/configure-aws-credentials).`);
        }
        credentials = {
            accessKeyId: key,
            secretAccessKey: secret,
            ...(token ? { sessionToken: token } : {}),
        };
        credentialsFrom = `${S3Inputs.AccessKeyId} / ${S3Inputs.SecretAccessKey}`;
    }
    else if (env.AWS_ACCESS_KEY_ID || env.AWS_SECRET_ACCESS_KEY) {
        if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
            throw new _util_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .UserError */ .y(`${S3Inputs.AccessKeyId}: not set, and only one of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY is in the environment. Fix: set both (aws-actions/configure-aws-credentials does), or set ${S3Inputs.AccessKeyId} and ${S3Inputs.SecretAccessKey} from secrets.`);
        }
        credentials = {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        };
        credentialsFrom = 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment';
    }
    return {
        bucket,
        prefix,
        endpoint,
        region,
        forcePathStyle,
        credentials,
        credentialsFrom,
        objectLock,
    };
}


/***/ }),

/***/ 27685:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   An: () => (/* binding */ digestInWorker),
/* harmony export */   GV: () => (/* binding */ digestPath),
/* harmony export */   Hr: () => (/* binding */ fsyncPath),
/* harmony export */   Iv: () => (/* binding */ makeDirsSync),
/* harmony export */   X2: () => (/* binding */ makeDirs),
/* harmony export */   X5: () => (/* binding */ pathBytes),
/* harmony export */   XF: () => (/* binding */ readRegularFile),
/* harmony export */   Zf: () => (/* binding */ writeFileAtomic),
/* harmony export */   aP: () => (/* binding */ commitNoClobber),
/* harmony export */   iV: () => (/* binding */ restrictPath),
/* harmony export */   k1: () => (/* binding */ NotRegularFile),
/* harmony export */   o7: () => (/* binding */ fsyncFile),
/* harmony export */   oQ: () => (/* binding */ notRegular),
/* harmony export */   px: () => (/* binding */ takeOwnership),
/* harmony export */   t_: () => (/* binding */ fsyncDir),
/* harmony export */   u8: () => (/* binding */ tempName),
/* harmony export */   uV: () => (/* binding */ moveNoClobber)
/* harmony export */ });
/* unused harmony export sha256File */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(73024);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(51455);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(76760);
/* harmony import */ var node_worker_threads__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(75919);
/* harmony import */ var _cleanup_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(16100);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(99661);








/**
 * `mkdir -p`: makes `dir` and any folders missing above it (new ones with `mode`). Not Node's
 * `fs.mkdir(dir, { recursive: true })`, which loops for ever where a parent that exists answers
 * mkdir with ENOENT (under /proc: a job that never ends); here that is an error like any other.
 * A path that exists but is not a folder fails with ENOTDIR.
 */
async function makeDirs(dir, mode) {
    for (const folder of missingFolders(dir)) {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.mkdir(folder, mode === undefined ? {} : { mode })
            .catch(async (err) => {
            // Made meanwhile by someone else: fine if it is a folder.
            if (err.code !== 'EEXIST' || !(await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(folder)).isDirectory())
                throw err;
        });
    }
}
/** makeDirs, synchronously. */
function makeDirsSync(dir, mode) {
    for (const folder of missingFolders(dir)) {
        try {
            node_fs__WEBPACK_IMPORTED_MODULE_1__.mkdirSync(folder, mode === undefined ? {} : { mode });
        }
        catch (err) {
            if (err.code !== 'EEXIST' ||
                !node_fs__WEBPACK_IMPORTED_MODULE_1__.statSync(folder).isDirectory())
                throw err;
        }
    }
}
/**
 * The folders makeDirs must make for `dir`, outermost first: those up to the nearest that exists
 * (a few stat calls, made synchronously). ENOTDIR where what exists there is not a folder.
 */
function missingFolders(dir) {
    const missing = [];
    for (let at = node_path__WEBPACK_IMPORTED_MODULE_3__.resolve(dir);;) {
        const found = node_fs__WEBPACK_IMPORTED_MODULE_1__.statSync(at, { throwIfNoEntry: false });
        if (found) {
            if (!found.isDirectory()) {
                throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), {
                    code: 'ENOTDIR',
                    syscall: 'mkdir',
                    path: at,
                });
            }
            break;
        }
        missing.push(at);
        const up = node_path__WEBPACK_IMPORTED_MODULE_3__.dirname(at);
        if (up === at)
            break;
        at = up;
    }
    return missing.reverse();
}
/**
 * The contents of `file`, which must be a regular file: a FIFO, a device or a socket planted
 * under its name is refused (ENOTREG below) instead of read. It is opened without blocking, so
 * a FIFO with no writer cannot stall the job (reading one would wait for ever, past SIGTERM).
 * `follow: false`: not through a symbolic link either (ELOOP).
 */
async function readRegularFile(file, { follow = true } = {}) {
    const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW } = node_fs__WEBPACK_IMPORTED_MODULE_1__.constants;
    const handle = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.open(file, O_RDONLY | (O_NONBLOCK ?? 0) | (follow ? 0 : (O_NOFOLLOW ?? 0)));
    try {
        const stat = await handle.stat();
        if (!stat.isFile())
            throw notRegular(file, stat);
        return await handle.readFile();
    }
    finally {
        await handle.close();
    }
}
/** A file that is not a regular one where one belongs: `what` says what it is instead. */
class NotRegularFile extends Error {
    path;
    kind;
    code = 'ENOTREG';
    constructor(path, kind) {
        super(`${path} is ${kind}, not a regular file`);
        this.path = path;
        this.kind = kind;
    }
    /** "a FIFO, not a regular file". */
    get what() {
        return `${this.kind}, not a regular file`;
    }
}
/** What `file` is, where a regular file (or a folder, for pg_dump's directory format) belongs. */
function notRegular(file, stat) {
    const kind = stat.isFIFO()
        ? 'a FIFO'
        : stat.isSocket()
            ? 'a socket'
            : stat.isCharacterDevice() || stat.isBlockDevice()
                ? 'a device'
                : stat.isDirectory()
                    ? 'a folder'
                    : 'something else';
    return new NotRegularFile(file, kind);
}
async function sha256File(file) {
    const hash = (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.createHash)('sha256');
    for await (const chunk of (0,node_fs__WEBPACK_IMPORTED_MODULE_1__.createReadStream)(file, { highWaterMark: 1 << 20 }))
        hash.update(chunk);
    return hash.digest('hex');
}
// Runs in a worker thread: reads with one reused buffer, so memory stays flat however large
// the file is.
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const hash = createHash('sha256')
const fd = fs.openSync(workerData, 'r')
const buf = Buffer.allocUnsafe(1 << 20)
let bytes = 0
try {
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) hash.update(buf.subarray(0, n))
} finally {
  fs.closeSync(fd)
}
parentPort.postMessage({ sha256: hash.digest('hex'), bytes })
`;
/**
 * digestPath on another thread: the SQLite checks block this one, so hashing alongside them in
 * a worker uses the second core instead of adding a full read of the file afterwards.
 */
async function digestInWorker(p) {
    if ((await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(p)).isDirectory())
        return digestPath(p);
    return new Promise((resolve, reject) => {
        const worker = new node_worker_threads__WEBPACK_IMPORTED_MODULE_4__.Worker(HASH_WORKER, { eval: true, workerData: p });
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => code !== 0 && reject(new Error(`hashing ${p} stopped (exit ${code})`)));
    });
}
/**
 * sha256 and size of a backup: a file's own sha256, or for a directory (pg_dump's directory
 * format) the sha256 of its listing, one line per file in name order: `<sha256>  <bytes>  <name>`.
 */
async function digestPath(p) {
    const stat = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(p);
    if (!stat.isDirectory())
        return { sha256: await sha256File(p), bytes: stat.size };
    const names = (await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.readdir(p)).sort();
    const listing = (0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.createHash)('sha256');
    let bytes = 0;
    for (const name of names) {
        const file = node_path__WEBPACK_IMPORTED_MODULE_3__.join(p, name);
        const { size } = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(file);
        bytes += size;
        listing.update(`${await sha256File(file)}  ${size}  ${name}\n`);
    }
    return { sha256: listing.digest('hex'), bytes };
}
/**
 * Owner-only permissions: a backup holds every user's conversations. Files 0600, folders 0700
 * (pg_dump and SQLite create files by the umask, typically world-readable).
 */
async function restrictPath(p) {
    if (!(await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(p)).isDirectory())
        return node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.chmod(p, 0o600);
    await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.chmod(p, 0o700);
    for (const name of await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.readdir(p))
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.chmod(node_path__WEBPACK_IMPORTED_MODULE_3__.join(p, name), 0o600);
}
/**
 * Gives `file` the owner, group and permission bits of `like` (the file it is about to replace),
 * so whoever could open the old one opens the new one. Throws EPERM when this process may not
 * give that owner (only root may give a file away).
 */
async function takeOwnership(file, like) {
    if (process.platform === 'win32')
        return;
    const mine = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(file);
    // chown first: it may clear set-id bits that the chmod then puts back.
    if (mine.uid !== like.uid || mine.gid !== like.gid)
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.chown(file, like.uid, like.gid);
    await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.chmod(file, like.mode & 0o7777);
}
/** Size of a backup: a file's, or the sum of a directory's files (as digestPath counts it). */
async function pathBytes(p) {
    const stat = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(p);
    if (!stat.isDirectory())
        return stat.size;
    let bytes = 0;
    for (const name of await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.readdir(p))
        bytes += (await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(node_path__WEBPACK_IMPORTED_MODULE_3__.join(p, name))).size;
    return bytes;
}
/** fsync a file, or every file of a directory and the directory itself. */
async function fsyncPath(p) {
    if (!(await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(p)).isDirectory())
        return fsyncFile(p);
    for (const name of await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.readdir(p))
        await fsyncFile(node_path__WEBPACK_IMPORTED_MODULE_3__.join(p, name));
    await fsyncDir(p);
}
async function fsyncFile(file) {
    const handle = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.open(file, 'r+');
    try {
        await handle.sync();
    }
    finally {
        await handle.close();
    }
}
/** Makes a rename durable. Windows cannot open a directory for fsync; NTFS journals renames. */
async function fsyncDir(dir) {
    if (process.platform === 'win32')
        return;
    const handle = await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.open(dir, 'r');
    try {
        await handle.sync();
    }
    finally {
        await handle.close();
    }
}
/** A name in `dir` for work in progress; listing skips it, and nothing else ever has it. */
function tempName(dir, final) {
    const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    return node_path__WEBPACK_IMPORTED_MODULE_3__.join(dir, `.${final}.${tag}.tmp`);
}
/**
 * What link() says on a file system without hard links: FUSE mounts and vfat on Linux (EPERM,
 * ENOSYS), network shares (ENOTSUP, EOPNOTSUPP), FAT and exFAT drives on Windows (libuv maps
 * ERROR_INVALID_FUNCTION to EISDIR).
 */
const NO_HARD_LINKS = new Set([
    'EPERM',
    'ENOTSUP',
    'EOPNOTSUPP',
    'ENOSYS',
    ...(process.platform === 'win32' ? ['EISDIR'] : []),
]);
/**
 * Gives the file `tmp` the name `final`, failing with EEXIST when a file of that name exists,
 * never replacing it: link() fails with EEXIST where rename() would silently overwrite. Where
 * the file system has no hard links, the name is first taken with an exclusive create, so no
 * other file can be under it, and `tmp` is renamed over that empty placeholder (removed if the
 * rename fails or the job is interrupted first). On a FUSE mount of a bucket, the exclusive
 * create is only as exclusive as the mount's view of the bucket. `tmp` is gone afterwards; on a
 * failure `final` is not taken.
 */
async function moveNoClobber(tmp, final) {
    try {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.link(tmp, final);
    }
    catch (err) {
        if (!NO_HARD_LINKS.has(err.code ?? ''))
            throw err;
        await (await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.open(final, 'wx', 0o600)).close();
        const forget = (0,_cleanup_js__WEBPACK_IMPORTED_MODULE_5__/* .removeOnInterrupt */ .vY)(final, 'placeholder');
        try {
            await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.rename(tmp, final);
        }
        catch (renameErr) {
            await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.rm(final, { force: true }).catch(() => undefined);
            throw renameErr;
        }
        finally {
            forget();
        }
        return;
    }
    try {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.unlink(tmp);
    }
    catch (err) {
        // Gone all the same (an unlink a network file system retried, or one that removed the name
        // and still reported an error): the move is done, and `final` is the only name left.
        if (err.code === 'ENOENT')
            return;
        if (!(await exists(tmp)))
            return;
        // Both names hold the file: taking the new one back leaves things as before the move, so a
        // caller that reports the move failed (and removes `tmp`) leaves no file behind.
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.unlink(final).catch((undo) => {
            if (undo.code === 'ENOENT')
                return;
            const e = err;
            e.message += `; ${final} stays, as it could not be removed either (${(0,_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .describeError */ .U)(undo)})`;
        });
        throw err;
    }
}
/**
 * Moves a finished, fsynced temporary file to the first free name that `nameFor(n)` gives
 * (n = 1, 2, ...), never replacing an existing file (moveNoClobber). Returns the final path.
 */
async function commitNoClobber(tmp, dir, nameFor) {
    const isDir = (await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.stat(tmp)).isDirectory();
    for (let n = 1; n < 10_000; n++) {
        const final = node_path__WEBPACK_IMPORTED_MODULE_3__.join(dir, nameFor(n));
        try {
            if (isDir) {
                // Directories cannot be hard-linked; rename() refuses a non-empty target, and an
                // existing target of any kind is skipped first.
                if (await exists(final))
                    continue;
                await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.rename(tmp, final);
            }
            else {
                await moveNoClobber(tmp, final);
            }
        }
        catch (err) {
            const code = err.code;
            if (code === 'EEXIST' || code === 'ENOTEMPTY')
                continue;
            throw err;
        }
        await fsyncDir(dir);
        return final;
    }
    throw new Error(`no free file name in ${dir}`);
}
/** Writes text so that readers see the old file or the new one, never a partial one. */
async function writeFileAtomic(file, text) {
    const dir = node_path__WEBPACK_IMPORTED_MODULE_3__.dirname(file);
    const tmp = tempName(dir, node_path__WEBPACK_IMPORTED_MODULE_3__.basename(file));
    try {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.writeFile(tmp, text, { mode: 0o600 });
        await fsyncFile(tmp);
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.rename(tmp, file);
    }
    catch (err) {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.rm(tmp, { force: true });
        throw err;
    }
    await fsyncDir(dir);
}
async function exists(p) {
    try {
        await node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.lstat(p);
        return true;
    }
    catch {
        return false;
    }
}


/***/ }),

/***/ 25574:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   GN: () => (/* binding */ groupingLog),
/* harmony export */   St: () => (/* binding */ progressLogger),
/* harmony export */   aO: () => (/* binding */ consoleLog)
/* harmony export */ });
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/* harmony import */ var _text_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(28805);
/**
 * Where progress goes: the Actions log (with groups and annotations) or a terminal.
 * Modes write through this so they run the same in a workflow and from the CLI.
 */


/**
 * A Log whose groups start at their first line: a group whose body logs nothing (a check that
 * had nothing to say, a stop command that printed nothing) leaves no empty heading behind.
 * Groups run one after another, as the modes use them; a nested group opens inside its parent.
 */
function groupingLog(sink) {
    const groups = [];
    const start = () => {
        for (const g of groups) {
            if (!g.started) {
                sink.startGroup(g.name);
                g.started = true;
            }
        }
    };
    return {
        // Every message is one line: a table name or a tool's message with a line break in it must
        // not start a line of the job's log, where `::error::` or `::add-mask::` would be obeyed.
        info: (message) => {
            start();
            sink.info((0,_text_js__WEBPACK_IMPORTED_MODULE_1__/* .oneLine */ .TN)(message));
        },
        warning: (message) => {
            start();
            sink.warning((0,_text_js__WEBPACK_IMPORTED_MODULE_1__/* .oneLine */ .TN)(message));
        },
        group: async (name, fn) => {
            const group = { name: (0,_text_js__WEBPACK_IMPORTED_MODULE_1__/* .oneLine */ .TN)(name), started: false };
            groups.push(group);
            try {
                return await fn();
            }
            finally {
                groups.splice(groups.indexOf(group), 1);
                if (group.started)
                    sink.endGroup();
            }
        },
        ...(sink.annotate
            ? {
                annotate: (level, message, where) => {
                    start();
                    // The Actions sink escapes line breaks itself (the annotation keeps them); the console's
                    // makes the message one line (below).
                    sink.annotate(level, message, where);
                },
            }
            : {}),
        ...(sink.mask ? { mask: sink.mask } : {}),
        ...(sink.stopCommands && sink.resumeCommands
            ? {
                verbatim: async (fn) => {
                    // The group's own command goes first: nothing between the two tokens is obeyed.
                    start();
                    const token = `omniai-${(0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.randomUUID)()}`;
                    sink.stopCommands(token);
                    try {
                        return await fn();
                    }
                    finally {
                        sink.resumeCommands(token);
                    }
                },
            }
            : {}),
    };
}
const consoleLog = groupingLog({
    info: (message) => console.log(message),
    warning: (message) => console.error(`warning: ${message}`),
    startGroup: (name) => console.log(`── ${name}`),
    endGroup: () => { },
    annotate: (level, message, { file, line }) => console.error((0,_text_js__WEBPACK_IMPORTED_MODULE_1__/* .oneLine */ .TN)(`${level}: ${file}${line ? `:${line}` : ''}: ${message}`)),
});
/** Logs "what: 40%" at most once per step of 10%. */
function progressLogger(log, what) {
    let shown = -1;
    return (done, total) => {
        const percent = total > 0 ? Math.floor((done / total) * 10) * 10 : 100;
        if (percent > shown) {
            shown = percent;
            log.info(`${what}: ${percent}% (${done}/${total} pages)`);
        }
    };
}


/***/ }),

/***/ 71474:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   $B: () => (/* binding */ scratchFolder),
/* harmony export */   Hb: () => (/* binding */ SCRATCH_PURPOSES),
/* harmony export */   hM: () => (/* binding */ withScratch),
/* harmony export */   s2: () => (/* binding */ ensureScratchDir)
/* harmony export */ });
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(51455);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(76760);
/* harmony import */ var _cleanup_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(16100);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(99661);
/* harmony import */ var _fs_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(27685);
/**
 * Scratch folders: one helper for every mode. Each is a folder of its own under scratch-dir,
 * `omniai-<purpose>-XXXXXX` (the names the post step recognises), owner-only, removed when the
 * work ends, on SIGINT/SIGTERM (cleanup.ts), or by the post step after a kill.
 */





/** What scratch folders are for; the post step removes only folders named after one of these. */
const SCRATCH_PURPOSES = [
    'backup',
    'drill',
    'restore',
    'verify',
    'artifact',
    'gate',
    's3',
];
/** scratch-dir itself, made when missing; one that cannot be made is said naming the input. */
async function ensureScratchDir(parent) {
    await (0,_fs_js__WEBPACK_IMPORTED_MODULE_4__/* .makeDirs */ .X2)(parent).catch((err) => {
        throw new _errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .y(`scratch-dir: cannot create ${parent} (${err.code}). Fix: set scratch-dir to a writable folder.`);
    });
}
/** A new scratch folder under `parent` (scratch-dir). */
async function scratchFolder(parent, purpose) {
    await ensureScratchDir(parent);
    const dir = await node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.mkdtemp(node_path__WEBPACK_IMPORTED_MODULE_1__.join(parent, `omniai-${purpose}-`));
    const forget = (0,_cleanup_js__WEBPACK_IMPORTED_MODULE_2__/* .removeOnInterrupt */ .vY)(dir);
    await node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.chmod(dir, 0o700);
    return {
        path: dir,
        remove: async () => {
            await node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm(dir, { recursive: true, force: true });
            forget();
        },
    };
}
/** Runs `fn` in a scratch folder of its own, removed afterwards whatever happens. */
async function withScratch(parent, purpose, fn) {
    const scratch = await scratchFolder(parent, purpose);
    try {
        return await fn(scratch.path);
    }
    finally {
        await scratch.remove();
    }
}


/***/ }),

/***/ 28805:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   TN: () => (/* binding */ oneLine),
/* harmony export */   aY: () => (/* binding */ code),
/* harmony export */   p7: () => (/* binding */ markdownText)
/* harmony export */ });
/**
 * Untrusted text (a table name, a conversation id, a tool's message) where a person reads it: the
 * job's log, its summary, an issue comment.
 */
/**
 * One line of untrusted text: line breaks and control characters become spaces, and the
 * characters that reorder what is displayed (bidirectional overrides) become U+FFFD. In the
 * job's log no line of it can then start a workflow command (`::error::`, `::add-mask::`).
 */
function oneLine(s) {
    return (s
        // eslint-disable-next-line no-control-regex -- control characters are what it replaces
        .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
        .replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '\ufffd'));
}
/**
 * Untrusted text as inline code, which Markdown shows literally: no HTML, links, emphasis,
 * @-mentions or #-references. The fence is longer than any run of backticks inside it.
 */
function code(s) {
    const t = oneLine(s);
    if (!t.trim())
        return '(empty)';
    const fence = '`'.repeat(Math.max(0, ...(t.match(/`+/g) ?? []).map((m) => m.length)) + 1);
    // CommonMark strips one space at each end when both are there: pad so the text stays whole.
    const pad = t.startsWith('`') || t.endsWith('`') || (t.startsWith(' ') && t.endsWith(' '));
    return pad ? `${fence} ${t} ${fence}` : `${fence}${t}${fence}`;
}
/**
 * Text that mixes this tool's words with untrusted names, for a Markdown table cell or a line of
 * the summary: one line, no HTML (GitHub renders a summary's HTML), no links or images (`[` and
 * `]` escaped), and no pipe that would end the cell.
 */
function markdownText(s) {
    return oneLine(s)
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/([[\]|])/g, '\\$1');
}


/***/ })

};
