/**
 * The security gate: `pytest -m "security or csrf"`, the runbook's required check. It fails on
 * any failed or errored test, on pytest itself failing (collection error, crash, interruption),
 * and on fewer tests than gate-min-tests having run: a gate that passes on zero tests protects
 * nothing. Mode `gate` runs it and the CSP check of csp-file, each its own check (pull request
 * checks); a drill with gate-after-drill runs it against the restored copy, as the runbook's
 * smoke test.
 */
import { withScratch } from '../util/scratch.js'
import { stopwatch } from '../util/time.js'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { Check } from '../checks/checks.js'
import {
  engineOf,
  isPostgresUrl,
  type DrillOptions,
  type GateModeOptions,
  type GateOptions,
  type CspOptions,
  type Config,
} from '../options/config.js'
import type { Database } from '../engines/engine.js'
import { pgSecrets, redactPgUrl } from '../engines/postgres/tools.js'
import { describeError, UserError } from '../util/errors.js'
import type { JUnitEntry, JUnitResults } from '../gate/junit.js'
import type { Log } from '../util/log.js'
import { EXIT, exitMeaning, runPytest, showCommand, type PytestRun } from '../gate/pytest.js'
import { checkCsp, CSP_CHECK, CSP_FILE_INPUT, POLICY } from '../gate/csp.js'
import type { GateReport, ModeReport } from '../report/report.js'
import { emptyReport, finish, type ModeContext } from './common.js'

export const GATE_CHECK = 'security-gate'

/** GitHub shows at most 10 error annotations per step; one stays free for the job's failure. */
const MAX_ANNOTATIONS = 9

/**
 * CSP findings shown as warnings on the page's lines; the summary's table has them all. GitHub
 * shows 10 warnings per step, and the step's other warnings need room too.
 */
const MAX_CSP_ANNOTATIONS = 5

/** Names listed in a check's detail; the summary's table has them all. */
const MAX_NAMED = 3

const tests = (n: number) => `${n} ${n === 1 ? 'test' : 'tests'}`

function named(entries: JUnitEntry[]): string {
  const names = [...new Set(entries.map((e) => e.name))]
  const more = names.length > MAX_NAMED ? `, and ${names.length - MAX_NAMED} more` : ''
  return names.slice(0, MAX_NAMED).join(', ') + more
}

/** The gate's verdict from pytest's exit code and its report. */
export function judge(
  run: Pick<PytestRun, 'exitCode' | 'signal'>,
  r: JUnitResults,
  markers: string,
  minTests: number,
): Check {
  const selection = `-m ${JSON.stringify(markers)}`
  const of = (kind: JUnitEntry['kind']) => r.problems.filter((p) => p.kind === kind)
  const problems: string[] = []
  if (r.failed) problems.push(`${r.failed} of ${tests(r.tests)} failed: ${named(of('failure'))}`)
  const errored = of('error')
  if (errored.length) {
    const n = new Set(errored.map((e) => e.name)).size
    problems.push(`${tests(n)} errored in setup or teardown: ${named(errored)}`)
  }
  const uncollected = of('collection')
  if (uncollected.length) {
    const first = uncollected[0]!
    problems.push(
      `pytest could not collect ${uncollected.length === 1 ? first.name : `${uncollected.length} files (${named(uncollected)})`}: ${first.message}`,
    )
  }
  const internal = of('internal')
  if (internal.length || run.exitCode === EXIT.internalError) {
    problems.push(
      `pytest crashed with an internal error (exit 3)${internal[0] ? `: ${internal[0].message}` : ''}`,
    )
  }
  if (run.exitCode === EXIT.interrupted && !uncollected.length) {
    problems.push(`pytest was interrupted (exit 2) after ${tests(r.tests)}`)
  }
  if (run.signal) problems.push(`pytest was killed by ${run.signal}`)
  // Only a session that ran to its end says how many tests the selection holds.
  const completed = [EXIT.ok, EXIT.testsFailed, EXIT.noTests].includes(run.exitCode ?? -1)
  const ran = r.tests - r.skipped
  if (completed && ran < minTests) {
    problems.push(
      r.tests === 0
        ? `0 tests selected by ${selection}; gate-min-tests is ${minTests}`
        : r.skipped
          ? `${ran} of the ${tests(r.tests)} selected by ${selection} ran (${r.skipped} skipped); gate-min-tests is ${minTests}`
          : `${tests(r.tests)} selected by ${selection}; gate-min-tests is ${minTests}`,
    )
  }
  if (problems.length === 0 && run.exitCode !== EXIT.ok) {
    problems.push(
      `pytest exited with code ${run.exitCode} (${exitMeaning(run.exitCode)}) though its report shows no failed test`,
    )
  }
  if (problems.length) return { name: GATE_CHECK, ok: false, detail: problems.join('; ') }
  const skipped = r.skipped ? `, ${r.skipped} skipped (a weakened gate: see the list)` : ''
  return {
    name: GATE_CHECK,
    ok: true,
    detail: `${tests(r.tests)} selected by ${selection}: ${r.passed} passed${skipped}`,
  }
}

/** A path as the repository sees it, for annotations on the diff. */
function repoPath(absolute: string, root: string): string {
  return path.relative(root, absolute).split(path.sep).join('/')
}

const KIND_TITLE: Record<JUnitEntry['kind'], string> = {
  failure: 'failed',
  error: 'errored',
  collection: 'could not be collected',
  internal: 'crashed pytest',
  skip: 'skipped',
  xfail: 'xfailed',
}

/**
 * Runs pytest with the gate's selection, `env` added to its environment. Throws a UserError when
 * pytest could not run the selection at all (not installed, bad options, bad marker expression).
 */
export async function runGate(
  config: GateOptions & Pick<Config, 'scratchDir' | 'runner'>,
  log: Log,
  env: Record<string, string> = {},
): Promise<{ check: Check; gate: GateReport; warnings: string[] }> {
  const cwd = path.resolve(config.gateWorkingDirectory)
  const run: PytestRun = await withScratch(config.scratchDir, 'gate', (tmp) =>
    runPytest(
      {
        command: config.gateCommand,
        markers: config.gateMarkers,
        cwd,
        env,
        junitFile: path.join(tmp, 'pytest-junit.xml'),
      },
      log,
    ),
  )
  // The XML parser is loaded here, by the one mode that reads a JUnit report.
  const { parseJUnit } = await import('../gate/junit.js')
  let results: JUnitResults
  try {
    results = parseJUnit(run.junitXml!)
  } catch (err) {
    throw new UserError(
      `gate-command: pytest's JUnit XML report cannot be read (${describeError(err)}). Fix: remove options that change --junitxml or junit_family from gate-command and the pytest configuration.`,
    )
  }
  const check = judge(run, results, config.gateMarkers, config.gateMinTests)
  const gate: GateReport = {
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
  }
  for (const p of results.problems.slice(0, MAX_ANNOTATIONS)) {
    if (!p.file) continue
    log.annotate?.('error', p.message || KIND_TITLE[p.kind], {
      file: repoPath(path.resolve(run.rootdir ?? cwd, p.file), config.runner.workspace),
      line: p.line ?? undefined,
      title: `Security gate: ${p.name} ${KIND_TITLE[p.kind]}`,
    })
  }
  const warnings: string[] = []
  if (results.skips.length) {
    warnings.push(
      `${tests(results.skipped)} of the security gate skipped or xfailed (${named(results.skips)}): a skipped gate test is a weakened gate.`,
    )
  }
  for (const w of warnings) log.warning(w)
  return { check, gate, warnings }
}

/**
 * Runs the gate and adds its check, section, warnings and duration to `report`. Whatever stops
 * pytest (not installed, a bad option, a missing working directory) is a failed security-gate
 * check, not an error of the whole mode: the run's other checks (the CSP check, a drill's
 * checks) keep their results in the report.
 */
async function gateInto(
  report: ModeReport<'gate' | 'drill'>,
  config: GateOptions & Pick<Config, 'scratchDir' | 'runner'>,
  log: Log,
  env: Record<string, string>,
): Promise<void> {
  const t0 = stopwatch()
  try {
    const { check, gate, warnings } = await runGate(config, log, env)
    report.checks.push(check)
    report.gate = gate
    report.warnings.push(...warnings)
  } catch (err) {
    report.checks.push({ name: GATE_CHECK, ok: false, detail: describeError(err) })
  } finally {
    report.durations.gateMs = t0.ms()
  }
}

const isMissing = (file: string) =>
  fs.stat(file).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  )

/**
 * The runbook's other security item: the CSP directive in the front end's page, as its own
 * check. A page that cannot be read fails this check alone; pytest's results stay.
 */
async function cspInto(
  report: ModeReport<'gate'>,
  config: CspOptions & Pick<Config, 'runner'>,
  log: Log,
): Promise<void> {
  const file = config.cspFile
  if (file === null) return
  if (!config.cspFileExplicit && (await isMissing(file))) {
    // Only the default, and this checkout keeps its page elsewhere or has none (OmniAI's
    // backend-only commits): not a failure of the gate, whose verdict is then pytest's alone.
    const warning = `CSP check skipped: no ${file} (the default ${CSP_FILE_INPUT}) in ${process.cwd()}. Fix: point the check at the page that carries the Content-Security-Policy with ${CSP_FILE_INPUT}: path/to/index.html, or turn it off with ${CSP_FILE_INPUT}: none.`
    log.warning(warning)
    report.warnings.push(warning)
    return
  }
  try {
    const csp = await checkCsp({ file, strict: config.cspStrict })
    report.checks.push(csp.check)
    report.csp = { file, markdown: csp.markdown, findings: csp.findings }
    for (const f of csp.findings.filter((f) => f.severity === 'warn')) {
      report.warnings.push(`CSP ${f.directive}: ${f.problem}`)
    }
    // On the page's lines in the pull request. Warnings, failing findings too: the error
    // annotations are the failed tests' and the job's own (runGate keeps one free for it).
    for (const f of csp.findings.slice(0, MAX_CSP_ANNOTATIONS)) {
      log.annotate?.(
        'warning',
        f.directive === POLICY ? f.problem : `${f.directive} ${f.problem}`,
        {
          file: repoPath(path.resolve(file), config.runner.workspace),
          line: f.line || undefined,
          title:
            f.severity === 'fail'
              ? 'Content-Security-Policy failure'
              : 'Content-Security-Policy weakness',
        },
      )
    }
  } catch (err) {
    report.checks.push({ name: CSP_CHECK, ok: false, detail: describeError(err) })
  }
}

/** Mode gate: the security gate and the CSP check, as a pull request check. */
export async function gate({
  config,
  log,
  now,
}: ModeContext<GateModeOptions>): Promise<ModeReport<'gate'>> {
  const started = now()
  const report = emptyReport('gate', engineOf(config), started)
  await gateInto(report, config, log, {})
  await cspInto(report, config, log)
  return finish(report, started, now())
}

/**
 * Drill with gate-after-drill: the gate against the restored copy, while it still exists. Only
 * a restore that passed every check is worth testing; a gate that could not run is a failed
 * check (gateInto), so the drill's own results stay in the report.
 */
export async function gateOnRestored(
  { config, log }: ModeContext<DrillOptions>,
  db: Database | null,
  report: ModeReport<'drill'>,
): Promise<void> {
  const failed = report.checks.filter((c) => !c.ok).map((c) => c.name)
  if (!db || failed.length) {
    report.checks.push({
      name: GATE_CHECK,
      ok: false,
      detail: `not run: ${db ? `the restored copy failed ${failed.join(', ')}` : 'the backup did not restore'}, and the gate runs only against a restore that passed every check`,
    })
    return
  }
  const url = db.url()
  const env: Record<string, string> = { DATABASE_URL: url }
  if (url.startsWith('sqlite:///')) env.OMNIAI_DB_PATH = url.slice('sqlite:///'.length)
  // The restore server's password (user info, query or PGPASSWORD) reaches pytest in
  // DATABASE_URL, which its tests need; the log shows the URL without it or its query.
  for (const secret of pgSecrets(url)) log.mask?.(secret)
  const shown = isPostgresUrl(url) ? redactPgUrl(url) : url
  log.info(`security gate against the restored copy: DATABASE_URL=${shown}`)
  await gateInto(report, config, log, env)
}
