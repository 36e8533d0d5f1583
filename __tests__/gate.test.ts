// The security gate on real pytest: each sample project under fixtures/pytest is copied into a
// temporary "repository" (as backend/, so annotation paths must come out repository-relative)
// and gated through runMode, as the action runs it.

import { spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { splitCommand } from '../src/options/values.js'
import { parseJUnit } from '../src/gate/junit.js'
import { run as runAction } from '../src/action/main.js'
import { renderSummary, type Report } from '../src/report/report.js'
import {
  configFor,
  DIST,
  demoWorkspace,
  execFileAsync,
  ROOT,
  run,
  sql,
  tempDir,
} from './helpers.js'

const FIXTURES = path.join(ROOT, '__tests__', 'fixtures', 'pytest')
const PYTEST = 'python3 -m pytest'
const GATE = 'security-gate'

const workspaceBefore = process.env.GITHUB_WORKSPACE
afterEach(() => {
  if (workspaceBefore === undefined) delete process.env.GITHUB_WORKSPACE
  else process.env.GITHUB_WORKSPACE = workspaceBefore
})

/** A checkout with the sample project `name` in backend/; GITHUB_WORKSPACE points at it. */
async function project(name: string) {
  const repo = await tempDir()
  const dir = path.join(repo, 'backend')
  await fs.cp(path.join(FIXTURES, name), dir, { recursive: true })
  process.env.GITHUB_WORKSPACE = repo
  return { repo, dir }
}

async function gate(name: string, inputs: Record<string, string> = {}) {
  const { repo, dir } = await project(name)
  const result = await run(
    'gate',
    { 'gate-working-directory': dir, 'gate-command': PYTEST, ...inputs },
    repo,
  )
  const check = result.report.checks.find((c) => c.name === GATE)
  return { ...result, check, repo, dir }
}

/** A gate pytest could not run: its own failed check with one line, no counts, no mode error. */
const oneLine = (report: Report) => {
  expect(report.error).toBeUndefined()
  expect(report.gate).toBeUndefined()
  const check = report.checks.find((c) => c.name === GATE)
  expect(check?.ok).toBe(false)
  expect(check?.detail).not.toContain('\n')
  expect(report.ok).toBe(false)
  return check!.detail
}

/** The CSP warning a checkout without the default page gets, in `dir`. */
const CSP_SKIPPED = (dir: string) =>
  `CSP check skipped: no frontend/index.html (the default csp-file) in ${dir}. Fix: point the check at the page that carries the Content-Security-Policy with csp-file: path/to/index.html, or turn it off with csp-file: none.`

describe('gate: what passes and what fails', () => {
  it('all pass: ok, counts, the output streamed in a group, the summary', async () => {
    const { report, log, check, config } = await gate('all-pass')
    expect(check).toEqual({
      name: GATE,
      ok: true,
      detail: '3 tests selected by -m "security or csrf": 3 passed',
    })
    expect(report.ok).toBe(true)
    expect(report.checks).toHaveLength(1)
    expect(report.gate).toMatchObject({
      command: 'python3 -m pytest -m "security or csrf"',
      markers: 'security or csrf',
      exitCode: 0,
      tests: { selected: 3, passed: 3, failed: 0, errors: 0, skipped: 0 },
      failures: [],
      skipped: [],
    })
    expect(log.groups).toEqual(['python3 -m pytest -m "security or csrf"'])
    // pytest's own lines, as it printed them (the unmarked test is deselected).
    expect(log.lines).toContainEqual(
      expect.stringMatching(/^collected 4 items \/ 1 deselected \/ 3 selected$/),
    )
    expect(log.lines).toContainEqual(expect.stringMatching(/^=+ 3 passed, 1 deselected in .*=+$/))
    expect(log.annotations).toEqual([])
    // The only warning: these sample projects have no frontend/index.html for the CSP check.
    expect(log.warnings).toEqual([CSP_SKIPPED(process.cwd())])
    expect(report.warnings).toEqual(log.warnings)
    const summary = renderSummary(report)
    expect(summary).toMatch(/^## OmniAI Security gate$/m)
    expect(summary).toContain('**3 selected**, 3 passed, 0 failed, 0 errors, 0 skipped')
    expect(summary).not.toContain('Backups in folder')
    const written = JSON.parse(await fs.readFile(config.reportFile, 'utf8')) as Report
    expect(written.gate?.tests.passed).toBe(3)
    // pytest's cache is off: nothing is written into the checkout.
    expect(existsSync(path.join(path.dirname(config.reportFile), 'backend', '.pytest_cache'))).toBe(
      false,
    )
  })

  it('the default command is plain `pytest`', async () => {
    const { check, report } = await gate('all-pass', { 'gate-command': '' })
    expect(check?.ok).toBe(true)
    expect(report.gate?.command).toBe('pytest -m "security or csrf"')
  })

  it('one failing test fails the gate, with its message, file and line, and an annotation', async () => {
    const { report, log, check } = await gate('one-fails')
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail: '1 of 3 tests failed: tests/test_csrf.py::TestForms::test_post_needs_a_token',
    })
    expect(report.ok).toBe(false)
    expect(report.gate?.exitCode).toBe(1)
    expect(report.gate?.tests).toEqual({ selected: 3, passed: 2, failed: 1, errors: 0, skipped: 0 })
    const [failure, ...rest] = report.gate!.failures
    expect(rest).toEqual([])
    expect(failure).toMatchObject({
      name: 'tests/test_csrf.py::TestForms::test_post_needs_a_token',
      file: 'tests/test_csrf.py',
      // The test's definition starts on line 16 (its decorator).
      line: 16,
      kind: 'failure',
    })
    expect(failure!.message).toBe(
      "AssertionError: POST is exempt from the CSRF check\nassert False\n +  where False = needs_csrf_token('POST')",
    )
    expect(log.annotations).toEqual([
      {
        level: 'error',
        message: failure!.message,
        file: 'backend/tests/test_csrf.py',
        line: 16,
        title: 'Security gate: tests/test_csrf.py::TestForms::test_post_needs_a_token failed',
      },
    ])
    const summary = renderSummary(report)
    expect(summary).toContain(
      '| tests/test_csrf.py::TestForms::test_post_needs_a_token | ❌ failed | tests/test_csrf.py:16 | AssertionError: POST is exempt from the CSRF check',
    )
    expect(summary).toContain('❌ **failed**: security-gate')
  })

  it('an error in a fixture fails the gate as an error', async () => {
    const { report, check, log } = await gate('setup-error')
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail:
        '1 test errored in setup or teardown: tests/test_sessions.py::test_logout_revokes_the_session',
    })
    expect(report.gate?.tests).toEqual({ selected: 2, passed: 1, failed: 0, errors: 1, skipped: 0 })
    expect(report.gate?.failures).toMatchObject([
      {
        kind: 'error',
        message: 'failed on setup with "ConnectionError: session store unreachable"',
      },
    ])
    expect(log.annotations.map((a) => `${a.file}:${a.line}`)).toEqual([
      // The test's first decorator.
      'backend/tests/test_sessions.py:9',
    ])
  })

  it('a file pytest cannot collect fails the gate (pytest exit 2), naming the file and why', async () => {
    const { report, check, log } = await gate('collection-error')
    expect(report.gate?.exitCode).toBe(2)
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail:
        "pytest could not collect tests/test_tokens.py: ModuleNotFoundError: No module named 'omniai_tokens'",
    })
    // pytest stops before running anything, so the good file's test did not run either.
    expect(report.gate?.tests).toEqual({ selected: 0, passed: 0, failed: 0, errors: 1, skipped: 0 })
    expect(log.annotations).toMatchObject([
      {
        file: 'backend/tests/test_tokens.py',
        line: undefined,
        message: expect.stringContaining('omniai_tokens'),
      },
    ])
    expect(renderSummary(report)).toContain('| tests/test_tokens.py | ❌ not collected |')
    // What the pull request controls (test names, files, messages in the junit report) renders
    // as text: no HTML, no image or link, on one line.
    const hostile =
      '<img src=https://example.com/x.png> ![px](https://example.com/p.png)\n::error::x'
    const f = report.gate!.failures[0]!
    const mutated = {
      ...report,
      error: hostile,
      gate: {
        ...report.gate!,
        failures: [{ ...f, name: hostile, file: hostile, message: hostile }],
        skipped: [{ ...f, kind: 'skip' as const, name: hostile, file: hostile }],
      },
    }
    const summary = renderSummary(mutated)
    // Positive control: the hostile text is in the summary, escaped.
    expect(summary).toContain('&lt;img src=https://example.com/x.png&gt; !\\[px\\]')
    expect(summary).not.toMatch(/<img|!\[px\]\(|^\s*::/m)
  })

  it('unregistered markers under strict markers fail collection (exit 2)', async () => {
    const { report, check } = await gate('unregistered-strict')
    expect(report.gate?.exitCode).toBe(2)
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail:
        "pytest could not collect tests/test_admin.py: 'security' not found in `markers` configuration option",
    })
  })

  it('a crash inside pytest (a broken conftest hook, exit 3) fails the gate', async () => {
    const { report, check } = await gate('internal-error')
    expect(report.gate?.exitCode).toBe(3)
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail: 'pytest crashed with an internal error (exit 3): RuntimeError: conftest hook failed',
    })
  })

  it('an interrupted session (KeyboardInterrupt, exit 2) fails the gate, even after passes', async () => {
    const { report, check } = await gate('interrupted')
    expect(report.gate?.exitCode).toBe(2)
    expect(report.gate?.tests).toEqual({ selected: 1, passed: 1, failed: 0, errors: 0, skipped: 0 })
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail: 'pytest was interrupted (exit 2) after 1 test',
    })
  })

  it('zero selected tests fail the gate (pytest exit 5): a gate on nothing protects nothing', async () => {
    const { report, check } = await gate('none-selected')
    expect(report.gate?.exitCode).toBe(5)
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail: '0 tests selected by -m "security or csrf"; gate-min-tests is 1',
    })
    expect(report.ok).toBe(false)
  })

  it('a typo in gate-markers selects nothing and fails the same way', async () => {
    const { check } = await gate('all-pass', { 'gate-markers': 'securty' })
    expect(check?.detail).toBe('0 tests selected by -m "securty"; gate-min-tests is 1')
  })

  it('fewer tests than gate-min-tests fail the gate', async () => {
    const { check } = await gate('all-pass', { 'gate-min-tests': '4' })
    expect(check).toEqual({
      name: GATE,
      ok: false,
      detail: '3 tests selected by -m "security or csrf"; gate-min-tests is 4',
    })
  })

  it('skipped and xfailed tests are listed and warned about, and do not count as run', async () => {
    const { report, check, log } = await gate('some-skipped')
    expect(check).toEqual({
      name: GATE,
      ok: true,
      detail:
        '4 tests selected by -m "security or csrf": 2 passed, 2 skipped (a weakened gate: see the list)',
    })
    expect(report.gate?.tests).toEqual({ selected: 4, passed: 2, failed: 0, errors: 0, skipped: 2 })
    expect(report.gate?.skipped).toEqual([
      {
        name: 'tests/test_limits.py::test_rate_limit_survives_a_restart',
        file: 'tests/test_limits.py',
        line: 14,
        message: 'needs a Redis server',
        kind: 'skip',
      },
      {
        name: 'tests/test_limits.py::test_account_locks_after_ten_failures',
        file: 'tests/test_limits.py',
        line: 20,
        message: 'lockout not implemented yet',
        kind: 'xfail',
      },
    ])
    expect(log.warnings.filter((w) => !w.startsWith('CSP check skipped'))).toEqual([
      '2 tests of the security gate skipped or xfailed (tests/test_limits.py::test_rate_limit_survives_a_restart, tests/test_limits.py::test_account_locks_after_ten_failures): a skipped gate test is a weakened gate.',
    ])
    expect(report.warnings).toEqual(log.warnings)
    const summary = renderSummary(report)
    expect(summary).toContain(
      '- ⚠️ tests/test_limits.py::test_rate_limit_survives_a_restart (tests/test_limits.py:14): skipped: needs a Redis server',
    )
    expect(summary).toContain(
      '- ⚠️ tests/test_limits.py::test_account_locks_after_ten_failures (tests/test_limits.py:20): xfail: lockout not implemented yet',
    )

    const strict = await gate('some-skipped', { 'gate-min-tests': '3' })
    expect(strict.check).toEqual({
      name: GATE,
      ok: false,
      detail:
        '2 of the 4 tests selected by -m "security or csrf" ran (2 skipped); gate-min-tests is 3',
    })
  })

  it('a quoted word in gate-command reaches pytest as one argument', async () => {
    const { check } = await gate('all-pass', {
      'gate-command': `${PYTEST} -k "accepts or rejects"`,
    })
    expect(check?.detail).toBe('2 tests selected by -m "security or csrf": 2 passed')
  })
})

describe('gate: pytest cannot run the selection, a failed security-gate check with the fix', () => {
  it('a marker expression pytest rejects names gate-markers (pytest exit 4)', async () => {
    const { report } = await gate('all-pass', { 'gate-markers': 'security or' })
    expect(oneLine(report)).toMatch(
      /^gate-markers: pytest rejects the expression: Wrong expression passed to '-m': security or: at column 12: .*\. Fix: .*gate-markers: security or csrf\.$/,
    )
  })

  it('an option pytest does not know names gate-command (pytest exit 4)', async () => {
    const { report } = await gate('all-pass', { 'gate-command': `${PYTEST} --no-such-option` })
    expect(oneLine(report)).toMatch(
      /^gate-command: pytest refused to run "python3 -m pytest --no-such-option" \(exit 4, usage error\): .*unrecognized arguments: --no-such-option\. Fix: /,
    )
  })

  it('a command that is not installed', async () => {
    const { report } = await gate('all-pass', { 'gate-command': 'omniai-no-such-pytest -q' })
    expect(oneLine(report)).toMatch(
      /^gate-command: omniai-no-such-pytest was not found on PATH \(the command is "omniai-no-such-pytest -q"\)\. Fix: install pytest .*, e\.g\. python -m pytest or poetry run pytest\.$/,
    )
  })

  it('a Python without pytest installed', async () => {
    const venv = path.join(await tempDir(), 'venv')
    await execFileAsync('python3', ['-m', 'venv', '--without-pip', venv])
    const python = path.join(venv, 'bin', 'python')
    const { report, log } = await gate('all-pass', { 'gate-command': `${python} -m pytest` })
    expect(oneLine(report)).toMatch(
      /^gate-command: ".*\/venv\/bin\/python -m pytest" exited with code 1 without pytest writing its report: .*No module named pytest\. Fix: install pytest/,
    )
    // Exit 1 is pytest's "tests failed" only when pytest ran: the log must not say so here.
    expect(log.lines.join('\n')).not.toMatch(/tests failed/)
    expect(log.lines).toContainEqual(
      expect.stringMatching(/python -m pytest exited with code 1, and pytest wrote no report/),
    )
  })

  it('a working directory that does not exist', async () => {
    const { report } = await gate('all-pass', { 'gate-working-directory': 'no/such/dir' })
    expect(oneLine(report)).toMatch(
      /^gate-working-directory: .*no\/such\/dir does not exist\. Fix: set gate-working-directory to the folder holding your pytest\.ini/,
    )
  })
})

describe('gate inputs', () => {
  it('defaults', () => {
    expect(configFor('gate', {}, '/t')).toMatchObject({
      gateMarkers: 'security or csrf',
      gateCommand: ['pytest'],
      gateWorkingDirectory: '.',
      gateMinTests: 1,
    })
    expect(configFor('drill', {}, '/t')).toMatchObject({ gateAfterDrill: false })
  })

  it.each([
    ['python -m pytest', ['python', '-m', 'pytest']],
    ['  poetry   run pytest  ', ['poetry', 'run', 'pytest']],
    [
      `pytest -k "login and not slow" 'tests/security suite'`,
      ['pytest', '-k', 'login and not slow', 'tests/security suite'],
    ],
    ['pytest -k "say \\"hi\\""', ['pytest', '-k', 'say "hi"']],
    ['C:\\Python312\\python.exe -m pytest', ['C:\\Python312\\python.exe', '-m', 'pytest']],
    ['pytest --junit-prefix=""', ['pytest', '--junit-prefix=']],
    ['pytest "&&"', ['pytest', '&&']],
  ])('gate-command %j splits into %j', (text, argv) => {
    expect(splitCommand(text, 'gate-command')).toEqual(argv)
  })

  it.each([
    [
      'gate',
      { 'gate-command': 'pytest "tests' },
      /^gate-command: the " in "pytest "tests" is not closed\. Fix:/,
    ],
    [
      'gate',
      { 'gate-command': 'cd backend && pytest' },
      /^gate-command: "&&" needs a shell, and the command runs without one\. Fix: .*gate-working-directory/,
    ],
    ['gate', { 'gate-command': 'pytest | tee out' }, /^gate-command: "\|" needs a shell/],
    [
      'gate',
      { 'gate-min-tests': '0' },
      /^gate-min-tests: "0" is not a whole number from 1 to 100000\. Fix: e\.g\. gate-min-tests: 1\./,
    ],
    ['gate', { 'gate-after-drill': 'yes' }, /^gate-after-drill: "yes" is not true or false\. Fix:/],
    [
      'gate',
      { 'gate-after-drill': 'true' },
      /^gate-after-drill: only a drill runs the gate afterwards, and mode is gate\. Fix: remove gate-after-drill \(mode gate runs the gate on its own\)\.$/,
    ],
    [
      'verify',
      { 'gate-after-drill': 'true' },
      /^gate-after-drill: .*mode is verify\. Fix: remove gate-after-drill, or set mode: drill\.$/,
    ],
  ])('mode %s with %j is refused', (mode, inputs, message) => {
    expect(() => configFor(mode, inputs, '/t')).toThrow(message)
  })

  it('gate-after-drill takes true and false as the runner spells them', () => {
    expect(configFor('drill', { 'gate-after-drill': 'True' }, '/t').gateAfterDrill).toBe(true)
    expect(configFor('drill', { 'gate-after-drill': 'FALSE' }, '/t').gateAfterDrill).toBe(false)
  })
})

describe('JUnit XML', () => {
  it('a test that fails and then errors in teardown is one failed test, with both problems listed', () => {
    const xml = `<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="2" failures="1" skipped="0" tests="3">
      <testcase classname="tests.test_i" name="test_fail_td" file="tests/test_i.py" line="7"><failure message="AssertionError: boom">tb</failure></testcase>
      <testcase classname="tests.test_i" name="test_fail_td" file="tests/test_i.py" line="7"><error message="failed on teardown with &quot;RuntimeError: teardown broke&quot;">tb</error></testcase>
      <testcase classname="tests.test_i" name="test_pass_td" file="tests/test_i.py" line="11"><error message="failed on teardown with &quot;RuntimeError: teardown broke&quot;">tb</error></testcase>
    </testsuite></testsuites>`
    const r = parseJUnit(xml)
    expect(r).toMatchObject({ tests: 2, passed: 0, failed: 1, errors: 1, skipped: 0 })
    expect(r.problems.map((p) => `${p.kind} ${p.name}: ${p.message}`)).toEqual([
      'failure tests/test_i.py::test_fail_td: AssertionError: boom',
      'error tests/test_i.py::test_fail_td: failed on teardown with "RuntimeError: teardown broke"',
      'error tests/test_i.py::test_pass_td: failed on teardown with "RuntimeError: teardown broke"',
    ])
  })

  it('decodes character references: pytest writes a newline in a message as &#10;', () => {
    const xml = `<testsuites><testsuite><testcase classname="t" name="x" file="t.py" line="0"><failure message="assert 1 == 2&#10; +  where &#x41; &lt; &quot;B&quot;">tb</failure></testcase></testsuite></testsuites>`
    expect(parseJUnit(xml).problems[0]).toMatchObject({
      name: 't.py::x',
      line: 1,
      message: 'assert 1 == 2\n +  where A < "B"',
    })
  })

  it('a report that is not XML is refused, naming why', () => {
    expect(() => parseJUnit('<testsuites><testsuite>')).toThrow(/^not well-formed XML \(line 1: /)
    expect(() => parseJUnit('<html></html>')).toThrow(/no <testsuites> or <testsuite> element/)
  })
})

describe('drill with gate-after-drill', () => {
  async function backedUp(options = {}) {
    const ws = await demoWorkspace(options)
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups },
      ws.dir,
    )
    expect(report.ok).toBe(true)
    const tests = path.join(ws.dir, 'backend')
    await fs.cp(path.join(FIXTURES, 'restored-db'), tests, { recursive: true })
    return { ...ws, backup: report.backup!.path, tests }
  }

  const drillInputs = (ws: { backups: string; dir: string; tests: string }) => ({
    'backup-dir': ws.backups,
    'scratch-dir': path.join(ws.dir, 'scratch'),
    'gate-after-drill': 'true',
    'gate-command': PYTEST,
    'gate-working-directory': ws.tests,
  })

  it('runs the gate against the restored copy (DATABASE_URL), then deletes the copy', async () => {
    const ws = await backedUp()
    const { report, log } = await run('drill', drillInputs(ws), ws.dir)
    expect(report.checks.find((c) => c.name === GATE)).toEqual({
      name: GATE,
      ok: true,
      detail: '3 tests selected by -m "security or csrf": 3 passed',
    })
    expect(report.ok).toBe(true)
    expect(report.checks.map((c) => c.name)).toEqual([
      'checksum',
      'integrity',
      'foreign-keys',
      'schema',
      'row-counts',
      'spot-check',
      'audit-log',
      'restore-time',
      GATE,
      'backup-age',
    ])
    expect(report.gate?.tests).toEqual({ selected: 3, passed: 3, failed: 0, errors: 0, skipped: 0 })
    const url = log.lines.find((l) => l.startsWith('security gate against the restored copy'))
    expect(url).toMatch(
      new RegExp(
        `DATABASE_URL=sqlite:///${path.join(ws.dir, 'scratch')}/omniai-drill-\\w+/restored\\.db$`,
      ),
    )
    expect(await fs.readdir(path.join(ws.dir, 'scratch'))).toEqual([])
    const drillLog = readFileSync(path.join(ws.backups, 'drill-log.jsonl'), 'utf8')
    expect(JSON.parse(drillLog.trim())).toMatchObject({ ok: true, checks: { [GATE]: true } })
    expect(renderSummary(report)).toContain('### Security gate')
  })

  it('a restored database the tests find wanting fails the drill on the gate', async () => {
    // A database whose audit log was empty when backed up: every drill check passes, the
    // restored-db tests (which read the copy) do not.
    const ws = await backedUp({ auditRows: 0 })
    const { report } = await run('drill', drillInputs(ws), ws.dir)
    expect(report.checks.filter((c) => !c.ok)).toEqual([
      {
        name: GATE,
        ok: false,
        detail: '1 of 3 tests failed: tests/test_restored.py::test_audit_log_was_restored',
      },
    ])
    expect(report.gate?.failures[0]?.message).toMatch(/^AssertionError: audit_logs is empty/)
    expect(report.ok).toBe(false)
  })

  it('is not run against a restore that failed a check, and says so', async () => {
    const ws = await backedUp()
    await sql(ws.backup, 'DELETE FROM audit_logs WHERE id = 1234')
    const { report, log } = await run('drill', drillInputs(ws), ws.dir)
    expect(report.checks.find((c) => c.name === GATE)).toEqual({
      name: GATE,
      ok: false,
      detail:
        'not run: the restored copy failed checksum, row-counts, audit-log, and the gate runs only against a restore that passed every check',
    })
    expect(report.gate).toBeUndefined()
    expect(log.groups.some((g) => g.includes('pytest'))).toBe(false)
  })

  it('a gate that cannot start is a failed check, and the drill keeps its other results', async () => {
    const ws = await backedUp({ conversations: 5, auditRows: 5 })
    const { report } = await run(
      'drill',
      { ...drillInputs(ws), 'gate-command': 'omniai-no-such-pytest' },
      ws.dir,
    )
    expect(report.error).toBeUndefined()
    expect(report.checks.filter((c) => !c.ok)).toEqual([
      {
        name: GATE,
        ok: false,
        detail: expect.stringMatching(/^gate-command: omniai-no-such-pytest was not found on PATH/),
      },
    ])
    expect(await fs.readdir(path.join(ws.dir, 'scratch'))).toEqual([])
  })
})

// The committed bundle, as a runner runs it: dist/ alone in a folder with no node_modules above,
// inputs as INPUT_* variables, outputs and summary in files, annotations as ::error lines.
describe('committed bundle: mode gate', () => {
  async function action(name: string, inputs: Record<string, string>) {
    const base = await tempDir()
    const actionDir = path.join(base, 'action')
    cpSync(path.join(ROOT, 'dist'), path.join(actionDir, 'dist'), { recursive: true })
    const repo = path.join(base, 'repo')
    cpSync(path.join(FIXTURES, name), path.join(repo, 'backend'), { recursive: true })
    const files = path.join(base, 'runner')
    mkdirSync(files)
    const output = path.join(files, 'output')
    const summary = path.join(files, 'summary')
    writeFileSync(output, '')
    writeFileSync(summary, '')
    const PATH = (process.env.PATH ?? '')
      .split(path.delimiter)
      .filter((p) => !p.split(path.sep).includes('node_modules'))
      .join(path.delimiter)
    const env: Record<string, string> = {
      PATH,
      HOME: process.env.HOME ?? base,
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_WORKSPACE: repo,
      RUNNER_TEMP: files,
      ...Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
      ),
    }
    // The runner starts the action in the workspace.
    const child = spawn(process.execPath, [path.join(actionDir, 'dist', 'index.js')], {
      cwd: repo,
      env,
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    return { code, stdout, outputs: readOutputs(output), summary: readFileSync(summary, 'utf8') }
  }

  it('all pass: exit 0, the counts as outputs', async () => {
    const r = await action('all-pass', { mode: 'gate', 'gate-working-directory': 'backend' })
    expect(r.code, r.stdout).toBe(0)
    expect(r.outputs).toMatchObject({
      ok: 'true',
      'failed-checks': '',
      'tests-passed': '3',
      'tests-failed': '0',
      'tests-errors': '0',
      'tests-skipped': '0',
    })
    expect(r.stdout).toContain('::group::pytest -m "security or csrf"')
    expect(r.summary).toContain('## OmniAI Security gate')
  })

  it('what the tests print is shown between stop-commands and its token, so the runner obeys none of it', async () => {
    const r = await action('prints-commands', {
      mode: 'gate',
      'gate-working-directory': 'backend',
      'gate-command': `${PYTEST} -s`,
    })
    expect(r.code, r.stdout).toBe(0)
    const lines = r.stdout.split(/\r?\n/)
    const stop = lines.findIndex((l) => /^::stop-commands::omniai-[0-9a-f-]{36}$/.test(l))
    expect(stop, r.stdout).toBeGreaterThan(-1)
    const token = lines[stop]!.slice('::stop-commands::'.length)
    const resume = lines.indexOf(`::${token}::`)
    // Positive control: the test's commands were printed, and printed inside.
    const printed = lines.findIndex((l) => l.endsWith('::error::FROM-THE-TESTS'))
    expect(printed, r.stdout).toBeGreaterThan(-1)
    expect(stop).toBeLessThan(printed)
    expect(printed).toBeLessThan(resume)
    for (const l of ['::add-mask::the', '::stop-commands::from-the-tests']) {
      expect(lines.indexOf(l), l).toBeGreaterThan(stop)
      expect(lines.indexOf(l), l).toBeLessThan(resume)
    }
    // The group's header is before, and the action's own commands (the outputs' end) after.
    expect(lines.findIndex((l) => l.startsWith('::group::'))).toBeLessThan(stop)
    expect(lines.findIndex((l, i) => i > resume && l === '::endgroup::')).toBeGreaterThan(resume)
  })

  it('one fails: exit 1, an error annotation on the test, the failure in the summary', async () => {
    const r = await action('one-fails', {
      mode: 'gate',
      'gate-working-directory': 'backend',
      'gate-command': PYTEST,
    })
    expect(r.code, r.stdout).toBe(1)
    expect(r.outputs).toMatchObject({
      ok: 'false',
      'failed-checks': GATE,
      'tests-passed': '2',
      'tests-failed': '1',
      'tests-errors': '0',
      'tests-skipped': '0',
    })
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error'))
    expect(errors).toEqual([
      expect.stringMatching(
        /^::error title=Security gate%3A tests\/test_csrf\.py%3A%3ATestForms%3A%3Atest_post_needs_a_token failed,file=backend\/tests\/test_csrf\.py,line=16::AssertionError: POST is exempt from the CSRF check/,
      ),
      '::error::gate failed: security-gate: 1 of 3 tests failed: tests/test_csrf.py::TestForms::test_post_needs_a_token',
    ])
    expect(r.summary).toContain(
      '| tests/test_csrf.py::TestForms::test_post_needs_a_token | ❌ failed |',
    )
  })

  it('the CLI runs the gate too', async () => {
    const { dir } = await project('one-fails')
    // Run from the project folder: the CLI names files relative to where it runs.
    const cli = await execFileAsync(
      process.execPath,
      [DIST, 'gate', '--gate-command', PYTEST, '--report-file', path.join(dir, '..', 'r.json')],
      { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME } },
    ).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    )
    expect(cli.code).toBe(1)
    // On one line: the test's own output (a pull request's) cannot start a line of the log.
    expect(cli.stderr).toMatch(
      /^error: tests\/test_csrf\.py:16: AssertionError: POST is exempt from the CSRF check assert False .*$/m,
    )
    expect(cli.stdout).toContain('## OmniAI Security gate')
  })
})

describe('gate: the CSP hardening check', () => {
  it('runs on csp-file after pytest, fails the gate on a page without a policy, and shows the table', async () => {
    const dir = await tempDir()
    const page = path.join(dir, 'index.html')
    await fs.writeFile(
      page,
      '<!doctype html><html><head><title>OmniAI</title></head><body></body></html>',
    )
    const { report } = await run(
      'gate',
      { 'gate-working-directory': path.join(FIXTURES, 'all-pass'), 'csp-file': page },
      dir,
    )
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['security-gate', true],
      ['csp', false],
    ])
    expect(report.ok).toBe(false)
    await fs.writeFile(
      page,
      `<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' 'unsafe-inline'; object-src 'none'"></head></html>`,
    )
    const weak = await run(
      'gate',
      { 'gate-working-directory': path.join(FIXTURES, 'all-pass'), 'csp-file': page },
      dir,
    )
    expect(weak.report.ok).toBe(true)
    expect(weak.report.warnings.join('\n')).toMatch(/CSP script-src: .*unsafe-inline/)
    expect(renderSummary(weak.report)).toMatch(/### Content-Security-Policy/)
    const strict = await run(
      'gate',
      {
        'gate-working-directory': path.join(FIXTURES, 'all-pass'),
        'csp-file': page,
        'csp-strict': 'true',
      },
      dir,
    )
    expect(strict.report.ok).toBe(false)
  })

  it('a csp-file that was set must exist: a failed csp check, and the gate still runs', async () => {
    const dir = await tempDir()
    const missing = path.join(dir, 'nope.html')
    const { report } = await run(
      'gate',
      { 'gate-working-directory': path.join(FIXTURES, 'all-pass'), 'csp-file': missing },
      dir,
    )
    expect(report.error).toBeUndefined()
    expect(report.checks).toEqual([
      {
        name: GATE,
        ok: true,
        detail: '3 tests selected by -m "security or csrf": 3 passed',
      },
      {
        name: 'csp',
        ok: false,
        detail: `csp-file: ${missing} does not exist. Fix: set csp-file to the HTML file that carries the policy, e.g. frontend/index.html, or to none to turn the check off.`,
      },
    ])
    expect(report.gate?.tests).toEqual({ selected: 3, passed: 3, failed: 0, errors: 0, skipped: 0 })
    expect(report.ok).toBe(false)
  })

  it.each([
    ['a folder', async (dir: string) => dir, /^csp-file: .* is a folder\. Fix: name the HTML file/],
    [
      'a symlink loop',
      async (dir: string) => {
        const loop = path.join(dir, 'index.html')
        await fs.symlink(loop, loop)
        return loop
      },
      /^csp-file: cannot read .*index\.html \(ELOOP\)\. Fix: /,
    ],
  ])('a page that cannot be read (%s) fails the csp check alone', async (_, make, message) => {
    const dir = await tempDir()
    const { report } = await run(
      'gate',
      { 'gate-working-directory': path.join(FIXTURES, 'all-pass'), 'csp-file': await make(dir) },
      dir,
    )
    expect(report.error).toBeUndefined()
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      [GATE, true],
      ['csp', false],
    ])
    expect(report.checks[1]?.detail).toMatch(message)
    expect(report.gate?.tests).toEqual({ selected: 3, passed: 3, failed: 0, errors: 0, skipped: 0 })
  })

  it('csp-file: none turns the check off, without a warning', async () => {
    const dir = await tempDir()
    const { report, log } = await run(
      'gate',
      { 'gate-working-directory': path.join(FIXTURES, 'all-pass'), 'csp-file': 'none' },
      dir,
    )
    expect(report.checks.map((c) => c.name)).toEqual([GATE])
    expect(report.ok).toBe(true)
    expect(log.warnings).toEqual([])
    expect(report.warnings).toEqual([])
  })
})

/** GITHUB_OUTPUT as @actions/core writes it: `name<<delimiter`, the value, the delimiter. */
function readOutputs(file: string): Record<string, string> {
  const outputs: Record<string, string> = {}
  const lines = readFileSync(file, 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i]!)
    if (m) outputs[m[1]!] = lines[i + 1] === m[2] ? '' : lines[++i]!
  }
  return outputs
}

// A real run on OmniAI (tests in backend/, no frontend/index.html at that commit) lost pytest's
// 73 passed / 2 failed from the report and outputs to the missing default page. Each part of the
// gate is its own check now: what happens to one never erases the other's results.
describe('gate: pytest and the CSP check report apart (OmniAI layout)', () => {
  // @actions/core keeps the first GITHUB_STEP_SUMMARY it sees for the life of the process, so
  // every run here writes to one file, emptied before each.
  const summary = path.join(mkdtempSync(path.join(os.tmpdir(), 'omniai-gate-')), 'summary')
  afterAll(() => rmSync(path.dirname(summary), { recursive: true, force: true }))

  /** A checkout shaped like OmniAI's: backend/pytest.ini, 5 passing and 2 failing gate tests. */
  async function checkout() {
    const repo = await tempDir()
    await fs.cp(path.join(FIXTURES, 'omniai-layout'), repo, { recursive: true })
    return repo
  }

  /**
   * The action's run() from the source (the committed bundle is the last `npm run bundle`), as a
   * runner starts it: inputs as INPUT_* variables, the checkout as working directory and
   * GITHUB_WORKSPACE, outputs and summary in files, workflow commands on stdout.
   */
  async function action(repo: string, inputs: Record<string, string>) {
    const files = await tempDir()
    const output = path.join(files, 'output')
    writeFileSync(output, '')
    writeFileSync(summary, '')
    const env: Record<string, string> = {
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_WORKSPACE: repo,
      RUNNER_TEMP: files,
      ...Object.fromEntries(
        Object.entries({ mode: 'gate', 'gate-working-directory': 'backend', ...inputs }).map(
          ([k, v]) => [`INPUT_${k.toUpperCase()}`, v],
        ),
      ),
    }
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
    const cwd = process.cwd()
    const exitCodeBefore = process.exitCode
    const write = process.stdout.write
    let stdout = ''
    process.stdout.write = ((chunk: string | Uint8Array) => {
      stdout += String(chunk)
      return true
    }) as typeof process.stdout.write
    Object.assign(process.env, env)
    process.chdir(repo)
    let exitCode
    try {
      await runAction()
    } finally {
      process.stdout.write = write
      process.chdir(cwd)
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      exitCode = process.exitCode
      process.exitCode = exitCodeBefore
    }
    const outputs = readOutputs(output)
    const report = JSON.parse(readFileSync(outputs.report!, 'utf8')) as Report
    return {
      failed: exitCode === 1,
      stdout,
      outputs,
      report,
      summary: readFileSync(summary, 'utf8'),
    }
  }

  const FAILED_TESTS =
    '2 of 7 tests failed: tests/test_forwarded_headers.py::test_forwarded_for_from_untrusted_client_is_ignored, tests/test_v1_csrf.py::test_v1_lookalike_origin_is_rejected'
  const COUNTS = {
    'tests-passed': '5',
    'tests-failed': '2',
    'tests-errors': '0',
    'tests-skipped': '0',
  }
  /** Only the tests that pass: the selection without the two that catch a bug. */
  const PASSING = `${PYTEST} -k "not lookalike and not untrusted"`

  it("default csp-file missing: a warning, pytest counts in report and outputs, the verdict is pytest's", async () => {
    const repo = await checkout()
    const r = await action(repo, { 'gate-command': PYTEST })
    expect(r.report.error).toBeUndefined()
    expect(r.report.checks).toEqual([{ name: GATE, ok: false, detail: FAILED_TESTS }])
    expect(r.report.gate?.tests).toEqual({
      selected: 7,
      passed: 5,
      failed: 2,
      errors: 0,
      skipped: 0,
    })
    expect(r.report.gate?.failures.map((f) => f.name)).toEqual([
      'tests/test_forwarded_headers.py::test_forwarded_for_from_untrusted_client_is_ignored',
      'tests/test_v1_csrf.py::test_v1_lookalike_origin_is_rejected',
    ])
    expect(r.outputs).toMatchObject({ ok: 'false', 'failed-checks': GATE, ...COUNTS })
    // The warning, in the report and as a warning annotation, says how to point the check.
    expect(r.report.warnings).toEqual([CSP_SKIPPED(repo)])
    expect(r.stdout.split('\n')).toContain(`::warning::${CSP_SKIPPED(repo)}`)
    expect(r.summary).toContain('**7 selected**, 5 passed, 2 failed, 0 errors, 0 skipped')
    expect(r.summary).toContain(`> ⚠️ ${CSP_SKIPPED(repo)}`)
    expect(r.failed).toBe(true)
    expect(r.stdout.split('\n')).toContain(`::error::gate failed: ${GATE}: ${FAILED_TESTS}`)

    // The missing page alone does not fail the gate: with the failing tests left out, it passes.
    const green = await action(repo, { 'gate-command': PASSING })
    expect(green.report.checks).toEqual([
      { name: GATE, ok: true, detail: '5 tests selected by -m "security or csrf": 5 passed' },
    ])
    expect(green.outputs).toMatchObject({
      ok: 'true',
      'failed-checks': '',
      'tests-passed': '5',
      'tests-failed': '0',
    })
    expect(green.failed).toBe(false)
  })

  it('csp-file named and missing: a failed csp check naming it, and pytest counts still reported', async () => {
    const repo = await checkout()
    const r = await action(repo, { 'gate-command': PYTEST, 'csp-file': 'frontend/index.html' })
    expect(r.report.error).toBeUndefined()
    expect(r.report.checks).toEqual([
      { name: GATE, ok: false, detail: FAILED_TESTS },
      {
        name: 'csp',
        ok: false,
        detail:
          'csp-file: frontend/index.html does not exist. Fix: set csp-file to the HTML file that carries the policy, e.g. frontend/index.html, or to none to turn the check off.',
      },
    ])
    expect(r.report.gate?.tests).toMatchObject({ selected: 7, passed: 5, failed: 2 })
    expect(r.outputs).toMatchObject({ ok: 'false', 'failed-checks': `${GATE},csp`, ...COUNTS })
    expect(r.report.warnings).toEqual([])
    expect(r.summary).toContain('| csp | ❌ fail | csp-file: frontend/index.html does not exist.')
    expect(r.summary).toContain('**7 selected**, 5 passed, 2 failed')

    // A page the user named decides too: passing tests do not hide it.
    const green = await action(repo, { 'gate-command': PASSING, 'csp-file': 'frontend/index.html' })
    expect(green.outputs).toMatchObject({
      ok: 'false',
      'failed-checks': 'csp',
      'tests-passed': '5',
    })
  })

  it('a broken page and failing tests: both reported, each with its own check', async () => {
    const repo = await checkout()
    await fs.mkdir(path.join(repo, 'frontend'))
    // Not well-formed, and its policy in <body>, where browsers ignore it.
    await fs.writeFile(
      path.join(repo, 'frontend', 'index.html'),
      `<html><head><title>OmniAI</title>\n<body><div <p class=>\n<meta http-equiv="Content-Security-Policy" content="default-src 'self'">\x00\n</body>`,
    )
    const r = await action(repo, { 'gate-command': PYTEST })
    expect(r.report.error).toBeUndefined()
    expect(r.report.checks).toEqual([
      { name: GATE, ok: false, detail: FAILED_TESTS },
      {
        name: 'csp',
        ok: false,
        detail: expect.stringMatching(
          /^frontend\/index\.html: no policy, 1 failing: the meta at line 3 is inside <div>, where browsers ignore it/,
        ),
      },
    ])
    expect(r.report.csp).toMatchObject({
      file: 'frontend/index.html',
      findings: [{ directive: '(policy)', severity: 'fail' }],
    })
    expect(r.outputs).toMatchObject({ ok: 'false', 'failed-checks': `${GATE},csp`, ...COUNTS })
    expect(r.summary).toContain('**7 selected**, 5 passed, 2 failed')
    expect(r.summary).toContain('### Content-Security-Policy')
    expect(r.stdout.split('\n')).toContain(
      `::error::gate failed: ${GATE}: ${FAILED_TESTS} | csp: ${r.report.checks[1]!.detail}`,
    )
  })

  it('gate-command not found: its own message naming gate-command, no counts, the CSP findings stay', async () => {
    const repo = await checkout()
    await fs.mkdir(path.join(repo, 'frontend'))
    await fs.writeFile(
      path.join(repo, 'frontend', 'index.html'),
      `<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' 'unsafe-inline'; object-src 'none'"></head></html>`,
    )
    const r = await action(repo, { 'gate-command': 'omniai-no-such-pytest' })
    expect(r.report.error).toBeUndefined()
    const detail =
      'gate-command: omniai-no-such-pytest was not found on PATH (the command is "omniai-no-such-pytest"). Fix: install pytest in an earlier step (actions/setup-python, then pip install pytest or your project install), or set gate-command to how your project runs it, e.g. python -m pytest or poetry run pytest.'
    expect(r.report.checks).toEqual([
      { name: GATE, ok: false, detail },
      {
        name: 'csp',
        ok: true,
        detail: expect.stringMatching(/^frontend\/index\.html: 3 directives, 1 warning/),
      },
    ])
    expect(r.report.warnings).toEqual([expect.stringMatching(/^CSP script-src: 'unsafe-inline'/)])
    expect(r.report.csp?.findings).toHaveLength(1)
    // Not "tests failed": pytest never ran, so there are no counts, and the outputs say so.
    expect(r.report.gate).toBeUndefined()
    expect(r.outputs).toMatchObject({
      ok: 'false',
      'failed-checks': GATE,
      'tests-passed': '',
      'tests-failed': '',
      'tests-errors': '',
      'tests-skipped': '',
    })
    expect(r.summary).not.toContain('### Security gate')
    expect(r.stdout.split('\n')).toContain(`::error::gate failed: ${GATE}: ${detail}`)
    // The CSP finding on the page's line in the pull request, and one CSP heading in the summary.
    expect(r.stdout.split('\n')).toContainEqual(
      expect.stringMatching(
        /^::warning title=Content-Security-Policy weakness,file=frontend\/index\.html,line=1::script-src 'unsafe-inline' lets injected inline scripts/,
      ),
    )
    expect(r.summary.match(/^### Content-Security-Policy/gm)).toEqual([
      '### Content-Security-Policy',
    ])
  })

  it.each([
    [
      'internal-error',
      {},
      'pytest crashed with an internal error (exit 3): RuntimeError: conftest hook failed',
    ],
    ['none-selected', {}, '0 tests selected by -m "security or csrf"; gate-min-tests is 1'],
    ['all-pass', { 'gate-markers': 'security or' }, /^gate-markers: pytest rejects the expression/],
  ])('pytest %s %j: the CSP findings stay', async (name, inputs, message) => {
    const dir = await tempDir()
    const page = path.join(dir, 'index.html')
    await fs.writeFile(page, '<!doctype html><html><head></head></html>')
    const { report } = await run(
      'gate',
      {
        'gate-working-directory': path.join(FIXTURES, name),
        'gate-command': PYTEST,
        'csp-file': page,
        ...inputs,
      },
      dir,
    )
    expect(report.error).toBeUndefined()
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      [GATE, false],
      ['csp', false],
    ])
    expect(report.checks[0]?.detail).toEqual(
      typeof message === 'string' ? message : expect.stringMatching(message),
    )
    expect(report.csp?.findings).toEqual([
      expect.objectContaining({ directive: '(policy)', severity: 'fail' }),
    ])
  })
})
