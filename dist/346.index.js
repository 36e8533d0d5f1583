export const id = 346;
export const ids = [346];
export const modules = {

/***/ 55346:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  actionsLog: () => (/* binding */ actionsLog),
  Q: () => (/* binding */ maskSecrets),
  run: () => (/* binding */ run)
});

// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(48161);
// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 7 modules
var core = __webpack_require__(33838);
// EXTERNAL MODULE: ./lib/options/config.js + 1 modules
var options_config = __webpack_require__(62430);
// EXTERNAL MODULE: ./lib/options/inputs.js
var inputs = __webpack_require__(91241);
// EXTERNAL MODULE: ./lib/engines/postgres/tools.js
var tools = __webpack_require__(23548);
// EXTERNAL MODULE: ./lib/util/errors.js
var errors = __webpack_require__(99661);
;// CONCATENATED MODULE: ./lib/options/action-yml.js
/**
 * The files made from the input and output tables (inputs.ts): the root action.yml (every input,
 * `mode` chooses the job), one action.yml per sub-action (only the inputs and outputs its job
 * uses), and the README's tables. scripts/actions.mjs writes them; __tests__/actions.test.ts
 * holds the committed files to what these functions return.
 */

/** What the marketplace and `uses:` show for each action. */
const ACTIONS = {
    root: {
        name: 'OmniAI Backups',
        description: 'Consistent online backups of an OmniAI database (SQLite or PostgreSQL), verified, and ' +
            'restore drills that prove the backup restores: schema, recent conversations and the audit ' +
            'log, with the evidence in the job summary. One action for every job, chosen by `mode`; ' +
            'the backup/, verify/, drill/, restore/, gate/ and smoke/ actions each take only their own inputs.',
    },
    backup: {
        name: 'OmniAI Backups: backup',
        description: 'A consistent online backup of the OmniAI database (SQLite or PostgreSQL) with a manifest ' +
            'of what it must hold, checked, optionally encrypted, uploaded and signed, with retention.',
    },
    verify: {
        name: 'OmniAI Backups: verify',
        description: 'Proves a backup is whole and readable against its manifest: checksum, signature, ' +
            'integrity, schema.',
    },
    drill: {
        name: 'OmniAI Backups: restore drill',
        description: 'Restores a backup into a scratch copy and checks schema, recent conversations and the ' +
            'audit log against its manifest, with the restore time and backup age, recorded as evidence.',
    },
    restore: {
        name: 'OmniAI Backups: restore',
        description: 'Puts a verified backup back as the live OmniAI database, after a safety backup of the ' +
            'current one, guarded by confirm; stops and starts the backend and smoke-tests it.',
    },
    gate: {
        name: 'OmniAI Backups: security gate',
        description: 'The runbook security gate: pytest -m "security or csrf" (failing on any failed, errored or ' +
            'missing test) and the Content-Security-Policy check.',
    },
    smoke: {
        name: 'OmniAI Backups: smoke test',
        description: 'The post-restore smoke test against a running OmniAI backend: health, login, conversations.',
    },
};
/**
 * The inputs an action declares: the root every one; a sub-action those its mode reads, and
 * those any mode reads with max-drill-age (the drill records), never `mode` (the action is the
 * mode).
 */
function actionInputs(mode) {
    return Object.values(Inputs).filter((input) => {
        if (mode === null)
            return true;
        if (input === Inputs.Mode)
            return false;
        const { modes, also } = INPUTS[input];
        return modes.includes(mode) || also !== undefined;
    });
}
/** The outputs an action declares: the root every one, a sub-action those its mode sets. */
function actionOutputs(mode) {
    return Object.keys(inputs/* OUTPUTS */.py).filter((output) => mode === null || inputs/* OUTPUTS */.py[output].modes.includes(mode));
}
/** Words into lines of at most `width` columns, each with `indent` spaces before it. */
function wrap(text, indent, width = 100) {
    const lines = [];
    let line = '';
    for (const word of text.split(/\s+/).filter(Boolean)) {
        if (line && indent + line.length + 1 + word.length > width) {
            lines.push(line);
            line = word;
        }
        else
            line = line ? `${line} ${word}` : word;
    }
    if (line)
        lines.push(line);
    return lines.map((l) => ' '.repeat(indent) + l);
}
/** A folded block scalar: the text as written, whatever characters it holds. */
const folded = (key, text, indent) => [`${' '.repeat(indent)}${key}: >-`, ...wrap(text, indent + 2)].join('\n');
const quoted = (text) => `'${text.replaceAll("'", "''")}'`;
/** The action.yml of the root action (`mode` null) or of a sub-action. */
function renderActionYml(mode) {
    const meta = ACTIONS[mode ?? 'root'];
    const dist = mode === null ? 'dist/index.js' : `../dist/${mode}.js`;
    const out = [
        '# Made from src/options/inputs.ts by `npm run bundle` (scripts/actions.mjs): edit that table,',
        '# not this file. __tests__/actions.test.ts fails when the two differ.',
        `name: ${quoted(meta.name)}`,
        folded('description', meta.description, 0),
        'author: OmniAI',
        'branding:',
        '  icon: database',
        '  color: green',
        '',
        'inputs:',
    ];
    for (const input of actionInputs(mode)) {
        const spec = INPUTS[input];
        out.push(`  ${input}:`, folded('description', spec.description, 4));
        if (input === Inputs.Mode)
            out.push('    required: true');
        else
            out.push('    required: false', `    default: ${quoted(spec.default)}`);
    }
    out.push('', 'outputs:');
    for (const output of actionOutputs(mode)) {
        out.push(`  ${output}:`, folded('description', OUTPUTS[output].description, 4));
    }
    out.push('', 'runs:', '  using: node24', `  main: ${dist}`, '  # The same bundle: it knows the post phase from the state the main step saved, and removes', '  # whatever a killed step left (scratch folders, scratch databases).', `  post: ${dist}`, '  post-if: always()', '');
    return out.join('\n');
}
/** The sub-action entries in dist/: each loads the one bundle, which reads its mode from the name. */
function renderEntry(mode) {
    return [
        `// The ${mode} action (${mode}/action.yml): the one bundle, index.js, with its mode fixed by this`,
        "// file's name (src/entry.ts). Made by scripts/actions.mjs.",
        "import './index.js'",
        '',
    ].join('\n');
}
const cell = (text) => text.replaceAll('|', '\\|');
/** Pads a Markdown table's columns as prettier does, so the README stays formatted. */
function table(header, rows) {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length), 3));
    const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
    return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
const usedBy = (modes) => modes.length === inputs/* MODES */.FN.length ? 'all' : modes.map((m) => `\`${m}\``).join(', ');
/** The README's input table: every input, its default, the actions that take it, one line on it. */
function renderReadmeInputs() {
    return table(['Input', 'Default', 'Used by', 'Description'], Object.values(inputs/* Inputs */.G0).map((input) => {
        const spec = inputs/* INPUTS */.mc[input];
        const by = input === inputs/* Inputs */.G0.Mode
            ? 'root action'
            : `${usedBy(spec.modes)}${spec.also ? ` (all, with \`${spec.also}\`)` : ''}`;
        return [`\`${input}\``, cell(spec.readmeDefault), by, cell(spec.summary)];
    }));
}
/** The README's output table. */
function renderReadmeOutputs() {
    return table(['Output', 'Set by', 'Description'], Object.keys(inputs/* OUTPUTS */.py).map((output) => [
        `\`${output}\``,
        usedBy(inputs/* OUTPUTS */.py[output].modes),
        cell(inputs/* OUTPUTS */.py[output].summary),
    ]));
}
/** The markers around a generated block in README.md. */
const README_BLOCKS = {
    inputs: renderReadmeInputs,
    outputs: renderReadmeOutputs,
};
/** README.md with each generated block (between its markers) made anew from the tables. */
function renderReadme(readme) {
    let text = readme;
    for (const [name, render] of Object.entries(README_BLOCKS)) {
        const start = `<!-- ${name}: made from src/options/inputs.ts by npm run bundle -->`;
        const end = `<!-- /${name} -->`;
        const from = text.indexOf(start);
        const to = text.indexOf(end);
        if (from < 0 || to < from)
            throw new Error(`README.md: the ${name} markers are missing`);
        text = text.slice(0, from + start.length) + '\n\n' + render() + '\n\n' + text.slice(to);
    }
    return text;
}

// EXTERNAL MODULE: ./lib/util/log.js
var log = __webpack_require__(25574);
// EXTERNAL MODULE: ./lib/modes/index.js + 31 modules
var modes = __webpack_require__(92079);
// EXTERNAL MODULE: ./lib/report/report.js
var report_report = __webpack_require__(45650);
// EXTERNAL MODULE: ./lib/util/secrets.js
var secrets = __webpack_require__(3693);
// EXTERNAL MODULE: ./lib/util/text.js
var util_text = __webpack_require__(28805);
;// CONCATENATED MODULE: ./lib/action/main.js












const actionsLog = (0,log/* groupingLog */.GN)({
    info: (message) => core/* info */.pq(message),
    warning: (message) => core/* warning */.$e(message),
    startGroup: (name) => core/* startGroup */.Oh(name),
    endGroup: () => core/* endGroup */.N4(),
    annotate: (level, message, { file, line, title }) => (level === 'warning' ? core/* warning */.$e : core/* error */.z3)(message, { file, startLine: line, title }),
    mask: (secret) => core/* setSecret */.Pq(secret),
    // As @actions/core writes its lines: to stdout, one at a time, so the order holds.
    stopCommands: (token) => void process.stdout.write(`::stop-commands::${token}${external_node_os_.EOL}`),
    resumeCommands: (token) => void process.stdout.write(`::${token}::${external_node_os_.EOL}`),
});
/**
 * Masks every password of a database URL (user info, `?password=`, `?sslpassword=`, and
 * PGPASSWORD when it supplies one) so no log line, summary or output can show it. A SQLite
 * path has none.
 */
function maskSecrets(connectionString, env = process.env) {
    for (const secret of (0,tools/* pgSecrets */.fx)(connectionString, env))
        core/* setSecret */.Pq(secret);
}
/**
 * The action: inputs into a Config, the mode, then outputs, summary and the job's status.
 * `subAction` is the job a sub-action's entry fixed (drill/action.yml runs dist/drill.js); null
 * for the root action, whose `mode` input chooses.
 */
async function run(subAction = null) {
    // Tells the post step (the same file, run again at the end of the job) that it is the post step.
    core/* saveState */.LZ('isPost', 'true');
    maskSecrets(core/* getInput */.V4(inputs/* Inputs */.G0.ConnectionString));
    maskSecrets(core/* getInput */.V4(inputs/* Inputs */.G0.RestoreConnectionString));
    if (process.env.PGPASSWORD)
        core/* setSecret */.Pq(process.env.PGPASSWORD);
    // S3 credentials from the environment (aws-actions/configure-aws-credentials sets these).
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
        if (process.env[name])
            core/* setSecret */.Pq(process.env[name]);
    // Keys, passphrases, the smoke test's login body, the token: never in a log line or the summary.
    for (const input of secrets/* SECRET_INPUTS */.pH) {
        if (input === inputs/* Inputs */.G0.ConnectionString || input === inputs/* Inputs */.G0.RestoreConnectionString)
            continue;
        for (const line of core/* getInput */.V4(input).split(/\r?\n/))
            if (line.trim())
                core/* setSecret */.Pq(line.trim());
    }
    let config;
    try {
        config = (0,options_config/* parseConfig */.o4)(subAction ? subActionInputs(subAction) : (name) => core/* getInput */.V4(name));
    }
    catch (err) {
        core/* setFailed */.C1((0,errors/* describeError */.U)(err));
        return;
    }
    const report = await (0,modes/* runMode */.r)(config, actionsLog);
    for (const c of report.checks) {
        core/* info */.pq((0,util_text/* oneLine */.TN)(`${c.ok ? '✅' : '❌'} ${c.name}: ${c.detail}`));
    }
    const tests = report.gate?.tests;
    const outputs = {
        ok: String(report.ok),
        'backup-path': report.backup?.path ?? '',
        sha256: report.backup?.sha256 ?? '',
        'size-bytes': String(report.backup?.bytes ?? ''),
        report: config.reportFile,
        'backup-count': report.backupCount === null ? '' : String(report.backupCount),
        'backup-age-seconds': report.backupAgeSeconds === null ? '' : String(Math.round(report.backupAgeSeconds)),
        'restore-seconds': report.restoreSeconds === null ? '' : report.restoreSeconds.toFixed(3),
        'failed-checks': (0,report_report/* failedChecks */.HH)(report).join(','),
        'tests-passed': tests ? String(tests.passed) : '',
        'tests-failed': tests ? String(tests.failed) : '',
        'tests-errors': tests ? String(tests.errors) : '',
        'tests-skipped': tests ? String(tests.skipped) : '',
        'artifact-id': report.artifact ? String(report.artifact.id) : '',
        'drill-issue-number': report.evidence ? String(report.evidence.issueNumber) : '',
        'drill-comment-url': report.evidence?.commentUrl ?? '',
    };
    // A sub-action sets the outputs its action.yml declares; the root action all of them.
    const declared = new Set(actionOutputs(subAction ? config.mode : null));
    for (const [name, value] of Object.entries(outputs)) {
        if (declared.has(name))
            core/* setOutput */.uH(name, value);
    }
    try {
        await core/* summary */.z.addRaw((0,report_report/* renderSummary */.Br)(report)).write();
    }
    catch (err) {
        // No GITHUB_STEP_SUMMARY (a runner that does not provide one): the log still has it all.
        core/* warning */.$e(`job summary not written: ${(0,errors/* describeError */.U)(err)}`);
    }
    if (!report.ok)
        core/* setFailed */.C1((0,report_report/* failureMessage */.oh)(report));
}
/**
 * A sub-action's inputs: its own job as the mode. `mode` is not one of its inputs, so a step that
 * sets it anyway (the runner only warns) is told, rather than running one job while asking for
 * another.
 */
function subActionInputs(subAction) {
    const given = core/* getInput */.V4(inputs/* Inputs */.G0.Mode);
    if (given && given !== subAction) {
        throw new errors/* UserError */.y(`mode: this is the ${subAction} action, and mode is ${given}. Fix: remove mode, or use the ${given} action (omniai/omniai-backups/${given}@v1).`);
    }
    return (name) => (name === inputs/* Inputs */.G0.Mode ? subAction : core/* getInput */.V4(name));
}


/***/ })

};
