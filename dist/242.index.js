export const id = 242;
export const ids = [242,905];
export const modules = {

/***/ 64905:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Q: () => (/* binding */ maskSecrets),
/* harmony export */   actionsLog: () => (/* binding */ actionsLog),
/* harmony export */   run: () => (/* binding */ run)
/* harmony export */ });
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(33838);
/* harmony import */ var _options_config_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(33274);
/* harmony import */ var _engines_postgres_tools_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(23548);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(99661);
/* harmony import */ var _util_log_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(25574);
/* harmony import */ var _modes_index_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(83703);
/* harmony import */ var _report_report_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(45650);
/* harmony import */ var _util_secrets_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(3693);








const actionsLog = (0,_util_log_js__WEBPACK_IMPORTED_MODULE_4__/* .groupingLog */ .GN)({
    info: (message) => _actions_core__WEBPACK_IMPORTED_MODULE_0__.info(message),
    warning: (message) => _actions_core__WEBPACK_IMPORTED_MODULE_0__.warning(message),
    startGroup: (name) => _actions_core__WEBPACK_IMPORTED_MODULE_0__.startGroup(name),
    endGroup: () => _actions_core__WEBPACK_IMPORTED_MODULE_0__.endGroup(),
    annotate: (level, message, { file, line, title }) => (level === 'warning' ? _actions_core__WEBPACK_IMPORTED_MODULE_0__.warning : _actions_core__WEBPACK_IMPORTED_MODULE_0__.error)(message, { file, startLine: line, title }),
    mask: (secret) => _actions_core__WEBPACK_IMPORTED_MODULE_0__.setSecret(secret),
});
/**
 * Masks every password of a database URL (user info, `?password=`, `?sslpassword=`, and
 * PGPASSWORD when it supplies one) so no log line, summary or output can show it. A SQLite
 * path has none.
 */
function maskSecrets(connectionString, env = process.env) {
    for (const secret of (0,_engines_postgres_tools_js__WEBPACK_IMPORTED_MODULE_2__/* .pgSecrets */ .fx)(connectionString, env))
        _actions_core__WEBPACK_IMPORTED_MODULE_0__.setSecret(secret);
}
/** The action: inputs into a Config, the mode, then outputs, summary and the job's status. */
async function run() {
    // Tells the post step (the same file, run again at the end of the job) that it is the post step.
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.saveState('isPost', 'true');
    maskSecrets(_actions_core__WEBPACK_IMPORTED_MODULE_0__.getInput(_options_config_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.ConnectionString));
    maskSecrets(_actions_core__WEBPACK_IMPORTED_MODULE_0__.getInput(_options_config_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.RestoreConnectionString));
    if (process.env.PGPASSWORD)
        _actions_core__WEBPACK_IMPORTED_MODULE_0__.setSecret(process.env.PGPASSWORD);
    // S3 credentials from the environment (aws-actions/configure-aws-credentials sets these).
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
        if (process.env[name])
            _actions_core__WEBPACK_IMPORTED_MODULE_0__.setSecret(process.env[name]);
    // Keys, passphrases, the smoke test's login body, the token: never in a log line or the summary.
    for (const input of _util_secrets_js__WEBPACK_IMPORTED_MODULE_7__/* .SECRET_INPUTS */ .pH) {
        if (input === _options_config_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.ConnectionString || input === _options_config_js__WEBPACK_IMPORTED_MODULE_1__/* .Inputs */ .G0.RestoreConnectionString)
            continue;
        for (const line of _actions_core__WEBPACK_IMPORTED_MODULE_0__.getInput(input).split(/\r?\n/))
            if (line.trim())
                _actions_core__WEBPACK_IMPORTED_MODULE_0__.setSecret(line.trim());
    }
    let config;
    try {
        config = (0,_options_config_js__WEBPACK_IMPORTED_MODULE_1__/* .parseConfig */ .o4)((name) => _actions_core__WEBPACK_IMPORTED_MODULE_0__.getInput(name));
    }
    catch (err) {
        _actions_core__WEBPACK_IMPORTED_MODULE_0__.setFailed((0,_util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .describeError */ .U)(err));
        return;
    }
    const report = await (0,_modes_index_js__WEBPACK_IMPORTED_MODULE_5__/* .runMode */ .r)(config, actionsLog);
    for (const c of report.checks) {
        _actions_core__WEBPACK_IMPORTED_MODULE_0__.info(`${c.ok ? '✅' : '❌'} ${c.name}: ${c.detail}`);
    }
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('ok', String(report.ok));
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('backup-path', report.backup?.path ?? '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('sha256', report.backup?.sha256 ?? '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('size-bytes', String(report.backup?.bytes ?? ''));
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('report', config.reportFile);
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('backup-count', String(report.backupCount));
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('backup-age-seconds', report.backupAgeSeconds === null ? '' : String(Math.round(report.backupAgeSeconds)));
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('restore-seconds', report.restoreSeconds === null ? '' : report.restoreSeconds.toFixed(3));
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('failed-checks', (0,_report_report_js__WEBPACK_IMPORTED_MODULE_6__/* .failedChecks */ .HH)(report).join(','));
    const tests = report.gate?.tests;
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('tests-passed', tests ? String(tests.passed) : '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('tests-failed', tests ? String(tests.failed) : '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('tests-errors', tests ? String(tests.errors) : '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('tests-skipped', tests ? String(tests.skipped) : '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('artifact-id', report.artifact ? String(report.artifact.id) : '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('drill-issue-number', report.evidence ? String(report.evidence.issueNumber) : '');
    _actions_core__WEBPACK_IMPORTED_MODULE_0__.setOutput('drill-comment-url', report.evidence?.commentUrl ?? '');
    try {
        await _actions_core__WEBPACK_IMPORTED_MODULE_0__.summary.addRaw((0,_report_report_js__WEBPACK_IMPORTED_MODULE_6__/* .renderSummary */ .Br)(report)).write();
    }
    catch (err) {
        // No GITHUB_STEP_SUMMARY (a runner that does not provide one): the log still has it all.
        _actions_core__WEBPACK_IMPORTED_MODULE_0__.warning(`job summary not written: ${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .describeError */ .U)(err)}`);
    }
    if (!report.ok)
        _actions_core__WEBPACK_IMPORTED_MODULE_0__.setFailed((0,_report_report_js__WEBPACK_IMPORTED_MODULE_6__/* .failureMessage */ .oh)(report));
}


/***/ }),

/***/ 45242:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   SCRATCH_DATABASE: () => (/* binding */ SCRATCH_DATABASE),
/* harmony export */   SCRATCH_FOLDER: () => (/* binding */ SCRATCH_FOLDER),
/* harmony export */   post: () => (/* binding */ post),
/* harmony export */   removeLeftovers: () => (/* binding */ removeLeftovers),
/* harmony export */   runPost: () => (/* binding */ runPost)
/* harmony export */ });
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(51455);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(48161);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(76760);
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(33838);
/* harmony import */ var _options_config_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(33274);
/* harmony import */ var _engines_postgres_ssl_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(41549);
/* harmony import */ var _engines_postgres_tools_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(23548);
/* harmony import */ var _engines_related_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(37796);
/* harmony import */ var _util_errors_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(99661);
/* harmony import */ var _main_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(64905);
/**
 * The action's post step (action.yml `runs.post`, `post-if: always()`): the runner calls
 * dist/index.js again at the end of the job, with STATE_isPost set (src/entry.ts). A step that
 * ended, failed or was interrupted by SIGINT/SIGTERM has already removed its scratch folders and
 * databases (src/util/cleanup.ts); one killed outright (SIGKILL, a runner that lost the process)
 * cannot, and this removes what it left: scratch folders under scratch-dir, which may hold a
 * decrypted backup or a restored copy, and scratch databases on restore-connection-string.
 */










/**
 * The folders the modes make with mkdtemp (its six random characters at the end). Only these:
 * scratch-dir may be a folder that holds other things named omniai-something.
 */
const SCRATCH_FOLDER = /^omniai-(backup|drill|restore|verify|artifact|gate|s3)-[A-Za-z0-9]{6}$/;
/** Scratch databases as the PostgreSQL engine names them (src/engines/postgres/engine.ts). */
const SCRATCH_DATABASE = '^omniai_drill_[0-9]{14}_[a-z0-9]+$';
/** Removes the scratch folders and scratch databases a killed step left behind. */
async function removeLeftovers(scratchDir, restoreConnectionString) {
    const found = { removed: [], inUse: [], failed: [] };
    const names = await node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.readdir(scratchDir).catch((err) => {
        if (err.code === 'ENOENT')
            return [];
        throw err;
    });
    for (const name of names.filter((n) => SCRATCH_FOLDER.test(n))) {
        const folder = node_path__WEBPACK_IMPORTED_MODULE_2__.join(scratchDir, name);
        try {
            // lstat: a symlink with a scratch folder's name was not made here, and is not followed.
            if (!(await node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.lstat(folder)).isDirectory())
                continue;
            await node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm(folder, { recursive: true, force: true });
            found.removed.push(folder);
        }
        catch (err) {
            found.failed.push(`${folder} (${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_8__/* .describeError */ .U)(err)})`);
        }
    }
    if (restoreConnectionString)
        await dropScratchDatabases(restoreConnectionString, found);
    return found;
}
async function dropScratchDatabases(url, found) {
    const admin = (0,_engines_postgres_tools_js__WEBPACK_IMPORTED_MODULE_6__/* .parsePgUrl */ .c6)(url, _options_config_js__WEBPACK_IMPORTED_MODULE_4__/* .Inputs */ .G0.RestoreConnectionString);
    let client;
    try {
        client = await (0,_engines_postgres_ssl_js__WEBPACK_IMPORTED_MODULE_5__/* .openPgClient */ .vo)(admin, _options_config_js__WEBPACK_IMPORTED_MODULE_4__/* .Inputs */ .G0.RestoreConnectionString, {
            connectionTimeoutMillis: 15_000,
            application_name: 'omniai-backups-post',
        });
    }
    catch (err) {
        found.failed.push(`scratch databases on ${admin.host}:${admin.port} (cannot connect: ${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_8__/* .describeError */ .U)(err)})`);
        return;
    }
    try {
        const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname ~ $1 ORDER BY datname', [SCRATCH_DATABASE]);
        for (const { datname } of rows) {
            const where = `database ${datname} on ${admin.host}:${admin.port}`;
            try {
                // Without FORCE: a scratch database someone is connected to belongs to a drill still
                // running (another job on a shared server), not to a killed step.
                await client.query(`DROP DATABASE IF EXISTS ${(0,_engines_related_js__WEBPACK_IMPORTED_MODULE_7__/* .quoteIdent */ .v4)(datname)}`);
                found.removed.push(where);
            }
            catch (err) {
                if (err.code === '55006')
                    found.inUse.push(where);
                else
                    found.failed.push(`${where} (${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_8__/* .describeError */ .U)(err)})`);
            }
        }
        // A drill restores as a role named as its scratch database (pg-roles.ts); once that
        // database is gone, so is the role. One whose database is still in use stays with it.
        const { rows: roles } = await client.query(`SELECT rolname FROM pg_roles WHERE rolname ~ $1
         AND rolname NOT IN (SELECT datname FROM pg_database) ORDER BY rolname`, [SCRATCH_DATABASE]);
        for (const { rolname } of roles) {
            const where = `role ${rolname} on ${admin.host}:${admin.port}`;
            try {
                await client.query(`DROP ROLE IF EXISTS ${(0,_engines_related_js__WEBPACK_IMPORTED_MODULE_7__/* .quoteIdent */ .v4)(rolname)}`);
                found.removed.push(where);
            }
            catch (err) {
                found.failed.push(`${where} (${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_8__/* .describeError */ .U)(err)})`);
            }
        }
    }
    finally {
        await client.end().catch(() => undefined);
    }
}
/**
 * The post step: one line per thing removed. Plaintext left on the runner fails the job (it
 * must not look clean); a scratch database still in use by another session only warns.
 */
async function post(read, log) {
    const scratchDir = read(_options_config_js__WEBPACK_IMPORTED_MODULE_4__/* .Inputs */ .G0.ScratchDir) || process.env.RUNNER_TEMP || node_os__WEBPACK_IMPORTED_MODULE_1__.tmpdir();
    const found = await removeLeftovers(scratchDir, read(_options_config_js__WEBPACK_IMPORTED_MODULE_4__/* .Inputs */ .G0.RestoreConnectionString) || null);
    for (const what of found.removed)
        log.info(`removed ${what}, left by an interrupted step`);
    for (const what of found.inUse) {
        log.warning(`${what} is a scratch database in use by another session: left in place.`);
    }
    if (!found.removed.length && !found.inUse.length && !found.failed.length) {
        log.info(`nothing left behind in ${scratchDir}`);
    }
    if (found.failed.length) {
        log.warning(`could not remove ${found.failed.join('; ')}. Fix: delete it by hand; it may hold a decrypted backup or a restored copy.`);
        return false;
    }
    return true;
}
/** The post step as the runner runs it: inputs from INPUT_*, the job failed on leftovers it could not remove. */
async function runPost(log) {
    const read = (input) => _actions_core__WEBPACK_IMPORTED_MODULE_3__.getInput(input);
    (0,_main_js__WEBPACK_IMPORTED_MODULE_9__/* .maskSecrets */ .Q)(read(_options_config_js__WEBPACK_IMPORTED_MODULE_4__/* .Inputs */ .G0.RestoreConnectionString));
    try {
        if (!(await post(read, log)))
            _actions_core__WEBPACK_IMPORTED_MODULE_3__.setFailed('post: scratch data was left on the runner');
    }
    catch (err) {
        _actions_core__WEBPACK_IMPORTED_MODULE_3__.setFailed(`post: ${(0,_util_errors_js__WEBPACK_IMPORTED_MODULE_8__/* .describeError */ .U)(err)}`);
    }
}


/***/ })

};
