export const id = 905;
export const ids = [905];
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


/***/ })

};
