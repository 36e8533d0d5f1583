import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseDuration } from '../src/options/values.js'
import { DEFAULTS, ignoredInputs, INPUTS, Inputs, MODES } from '../src/options/inputs.js'
import { run as runAction } from '../src/action/main.js'
import { SECRET_INPUTS } from '../src/util/secrets.js'
import { configFor, demoWorkspace, ROOT, run } from './helpers.js'

const fails = (mode: string, inputs: Record<string, string>) => () =>
  configFor(mode, inputs, '/tmp')

describe('inputs', () => {
  it('defaults match the runbook', () => {
    const c = configFor('backup', {}, '/runner-temp')
    expect(c).toMatchObject({
      engine: 'sqlite',
      connectionString: 'omniai.db',
      backupDir: 'backups',
      prefix: 'omniai',
      conversationsTable: 'conversations',
      auditTable: 'audit_logs',
      spotCheckCount: 5,
      drillLog: 'backups/drill-log.jsonl',
      reportFile: '/runner-temp/omniai-backup-report.json',
      scratchDir: '/runner-temp',
    })
    // Each mode has only its own options: the backup's age is verify's and drill's to check.
    expect(c).not.toHaveProperty('maxBackupAgeSeconds')
    expect(configFor('verify', {}, '/runner-temp')).toMatchObject({ maxBackupAgeSeconds: null })
  })

  it('infers postgres from a URL', () => {
    expect(configFor('drill', { 'connection-string': 'postgresql://u:p@h/db' }, '/t').engine).toBe(
      'postgres',
    )
  })

  // Each bad input: one line, naming the input, saying how to fix it.
  it.each([
    [
      'restorex',
      {},
      /^mode: "restorex" is not one of backup, verify, drill, gate, restore, smoke\. Fix:/,
    ],
    ['', {}, /^mode: not set\. Fix:/],
    ['backup', { engine: 'mysql' }, /^engine: "mysql" is not one of sqlite, postgres/],
    [
      'backup',
      { engine: 'postgres', 'connection-string': 'omniai.db' },
      /^connection-string: engine is postgres but/,
    ],
    [
      'backup',
      { 'spot-check-count': '0' },
      /^spot-check-count: "0" is not a whole number from 1 to 100/,
    ],
    ['backup', { 'spot-check-count': 'five' }, /^spot-check-count:/],
    ['drill', { 'max-backup-age': '26' }, /^max-backup-age: "26" is not a duration\. Fix: .*26h/],
    ['drill', { 'max-backup-age': '-1h' }, /^max-backup-age:/],
    [
      'drill',
      { 'max-restore-seconds': 'soon' },
      /^max-restore-seconds: "soon" is not a number of seconds/,
    ],
    ['drill', { 'max-restore-seconds': '0' }, /^max-restore-seconds:/],
    ['backup', { prefix: '../etc/x' }, /^prefix: "\.\.\/etc\/x" may only hold/],
    ['backup', { 'audit-table': 'a\nb' }, /^audit-table: .* is not a table name/],
  ])('mode %j with %j is refused', (mode, inputs, message) => {
    expect(fails(mode, inputs)).toThrow(message)
    try {
      fails(mode, inputs)()
    } catch (err) {
      expect((err as Error).message).not.toContain('\n')
    }
  })

  it('parses durations', () => {
    expect(parseDuration('26h', 'x')).toBe(93600)
    expect(parseDuration('2d', 'x')).toBe(172800)
    expect(parseDuration('90m', 'x')).toBe(5400)
    expect(parseDuration('1w', 'x')).toBe(604800)
    expect(parseDuration('0.5h', 'x')).toBe(1800)
  })

  it('none turns off a table check', () => {
    const c = configFor(
      'backup',
      { 'audit-table': 'none', 'conversations-table': 'none', 'drill-log': 'none' },
      '/t',
    )
    expect(c.auditTable).toBeNull()
    expect(c.conversationsTable).toBeNull()
    expect(c.drillLog).toBeNull()
  })
})

/** Each input's default as action.yml declares it, the value the runner passes when unset. */
function actionYmlDefaults(): Record<string, string> {
  const text = readFileSync(path.join(ROOT, 'action.yml'), 'utf8')
  const inputs = text.slice(text.indexOf('\ninputs:\n'), text.indexOf('\noutputs:\n'))
  const defaults: Record<string, string> = {}
  for (const m of inputs.matchAll(/^ {2}([a-z0-9-]+):\n((?: {4}.*\n| *\n)*)/gm)) {
    const d = /^ {4}default: (.*)$/m.exec(m[2]!)?.[1]?.trim() ?? ''
    defaults[m[1]!] = d.replace(/^'(.*)'$/, '$1')
  }
  return defaults
}

/** What the runner passes: every declared input, its default unless the step sets it. */
function asRunner(mode: string, inputs: Record<string, string> = {}) {
  const values: Record<string, string> = {
    ...actionYmlDefaults(),
    // The runner expands the expression: the action sees the token itself.
    'github-token': 'ghs_runnerExpandedTokenValue',
    mode,
    ...inputs,
  }
  return (input: Inputs) => values[input] ?? ''
}

describe('the input table', () => {
  it('marks exactly the inputs src/util/secrets.ts treats as secret', () => {
    const secret = Object.values(Inputs).filter((i) => INPUTS[i].secret)
    expect(secret.sort()).toEqual([...SECRET_INPUTS].sort())
  })

  it('gives every input at least one mode, and DEFAULTS its defaults', () => {
    for (const input of Object.values(Inputs)) {
      expect(INPUTS[input].modes.length, input).toBeGreaterThan(0)
      for (const mode of INPUTS[input].modes) expect(MODES).toContain(mode)
      expect(DEFAULTS[input]).toBe(INPUTS[input].default)
    }
  })
})

describe('an input the mode does not use is warned about', () => {
  it('keep-daily in a drill: one warning naming it and the mode that uses it', () => {
    expect(ignoredInputs(asRunner('drill', { 'keep-daily': '3' }), 'drill')).toEqual([
      "keep-daily: set, but mode drill does not use it (used by backup). Fix: remove keep-daily from this step, or check the input's name and the mode.",
    ])
  })

  // Positive controls: the runner passes every default, which is not "set".
  it.each(MODES)('mode %s with every default as the runner passes them: no warning', (mode) => {
    expect(ignoredInputs(asRunner(mode), mode)).toEqual([])
  })

  it('the same input where it is used, or set to its default, or empty: no warning', () => {
    expect(ignoredInputs(asRunner('backup', { 'keep-daily': '3' }), 'backup')).toEqual([])
    expect(ignoredInputs(asRunner('drill', { 'keep-daily': '14' }), 'drill')).toEqual([])
    expect(ignoredInputs(asRunner('drill', { 'keep-daily': '' }), 'drill')).toEqual([])
    // The CLI passes '' for every flag not given.
    expect(ignoredInputs(() => '', 'gate')).toEqual([])
  })

  it('names each misplaced input, secrets without their value', () => {
    const warnings = ignoredInputs(
      asRunner('gate', { 'age-identity': 'AGE-SECRET-KEY-1QQQ', 'smoke-url': 'http://x' }),
      'gate',
    )
    expect(warnings).toEqual([
      expect.stringMatching(
        /^age-identity: set, but mode gate does not use it \(used by verify, drill, restore\)/,
      ),
      expect.stringMatching(
        /^smoke-url: set, but mode gate does not use it \(used by drill, restore, smoke\)/,
      ),
    ])
    expect(warnings.join('\n')).not.toContain('AGE-SECRET-KEY')
  })

  it('max-drill-age makes every mode read the drill records', () => {
    expect(ignoredInputs(asRunner('gate', { 'drill-log': 'log.jsonl' }), 'gate')).toEqual([
      expect.stringMatching(/^drill-log: .*\(used by drill, and by any mode with max-drill-age\)/),
    ])
    expect(
      ignoredInputs(asRunner('gate', { 'drill-log': 'log.jsonl', 'max-drill-age': '100' }), 'gate'),
    ).toEqual([])
  })

  it('parseConfig carries the warnings', () => {
    const config = configFor('verify', { 'connection-string': 'live.db' }, '/t')
    expect(config.ignoredInputs).toEqual([
      expect.stringMatching(/^connection-string: set, but mode verify does not use it/),
    ])
    expect(configFor('verify', {}, '/t').ignoredInputs).toEqual([])
  })
})

describe('the action, with INPUT_* variables as the runner sets them', () => {
  // @actions/core keeps the first GITHUB_STEP_SUMMARY it sees: one file for every run here.
  const files = mkdtempSync(path.join(os.tmpdir(), 'omniai-config-'))
  const summary = path.join(files, 'summary')
  afterAll(() => rmSync(files, { recursive: true, force: true }))

  /** run() from the source, every declared input in the environment, workflow commands captured. */
  async function action(inputs: Record<string, string>, cwd: string) {
    const output = path.join(files, 'output')
    writeFileSync(output, '')
    writeFileSync(summary, '')
    const values = { ...actionYmlDefaults(), 'github-token': '', ...inputs }
    const env: Record<string, string> = {
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      RUNNER_TEMP: cwd,
      ...Object.fromEntries(
        Object.entries(values).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
      ),
    }
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
    const dirBefore = process.cwd()
    const exitCodeBefore = process.exitCode
    const write = process.stdout.write
    let stdout = ''
    process.stdout.write = ((chunk: string | Uint8Array) => {
      stdout += String(chunk)
      return true
    }) as typeof process.stdout.write
    Object.assign(process.env, env)
    process.chdir(cwd)
    let failed: boolean
    try {
      await runAction()
    } finally {
      process.stdout.write = write
      process.chdir(dirBefore)
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      failed = process.exitCode === 1
      process.exitCode = exitCodeBefore
    }
    const warnings = stdout
      .split('\n')
      .filter((l) => l.startsWith('::warning'))
      .map((l) => l.replace(/^::warning[^:]*::/, ''))
    return { failed, warnings, stdout, summary: readFileSync(summary, 'utf8') }
  }

  it('keep-daily: 3 in a drill: the drill passes, one warning names keep-daily and backup', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 3, auditRows: 5 })
    const made = await run('backup', { 'connection-string': db, 'backup-dir': backups }, dir)
    expect(made.report.ok).toBe(true)
    const drill = { mode: 'drill', 'backup-dir': backups, 'drill-log': 'none' }

    const r = await action({ ...drill, 'keep-daily': '3' }, dir)
    expect(r.failed, r.stdout).toBe(false)
    expect(r.warnings).toEqual([
      "keep-daily: set, but mode drill does not use it (used by backup). Fix: remove keep-daily from this step, or check the input's name and the mode.",
    ])
    expect(r.summary).toContain('> ⚠️ keep-daily: set, but mode drill does not use it')

    // Positive control: the same drill with every other input at its default warns of nothing.
    const clean = await action(drill, dir)
    expect(clean.failed, clean.stdout).toBe(false)
    expect(clean.warnings).toEqual([])
  })
})

describe('each mode parses only its own inputs', () => {
  // Values each input refuses; set in a mode that does not read it, they are only warned about.
  const BAD: Partial<Record<`${Inputs}`, string>> = {
    'gate-command': 'pytest | tee out',
    'gate-min-tests': '0',
    'keep-daily': 'many',
    'retention-time-zone': 'Mars/Olympus',
    'spot-check-count': '0',
    'max-restore-seconds': 'soon',
    'smoke-timeout': 'never',
    'csp-strict': 'maybe',
    'max-backup-age': 'yesterday',
    'artifact-name': 'a/b',
    encryption: 'rot13',
  }
  const modesOf = (input: `${Inputs}`) => INPUTS[input as Inputs].modes as readonly string[]

  it.each(MODES)(
    '%s: a bad value of an input it does not read is a warning, not a failure',
    (mode) => {
      const foreign = Object.fromEntries(
        Object.entries(BAD).filter(([input]) => !modesOf(input as `${Inputs}`).includes(mode)),
      )
      expect(Object.keys(foreign).length).toBeGreaterThan(0)
      const extra = modesOf('smoke-url').includes(mode)
        ? { 'smoke-url': 'http://localhost:8000' }
        : {}
      const c = configFor(mode, { ...foreign, ...extra }, '/t')
      expect(c.mode).toBe(mode)
      for (const input of Object.keys(foreign))
        expect(c.ignoredInputs.join('\n'), input).toMatch(
          new RegExp(`^${input}: set, but mode ${mode} does not use it`, 'm'),
        )
    },
  )

  it.each(MODES)(
    'positive control, %s: a bad value of an input it reads fails in one line naming it',
    (mode) => {
      const own = Object.entries(BAD).filter(([input]) =>
        modesOf(input as `${Inputs}`).includes(mode),
      )
      expect(own.length).toBeGreaterThan(0)
      for (const [input, value] of own) {
        const extra = modesOf('smoke-url').includes(mode)
          ? { 'smoke-url': 'http://localhost:8000' }
          : {}
        expect(() => configFor(mode, { [input]: value, ...extra }, '/t'), input).toThrow(
          new RegExp(`^${input}: `),
        )
      }
    },
  )

  it('a parser that reads an input its mode does not use, by the table, is caught', () => {
    // Every mode parses with its defaults: no parser reads outside its mode's rows.
    for (const mode of MODES)
      expect(() => configFor(mode, { 'smoke-url': 'http://localhost:8000' }, '/t')).not.toThrow()
    // Positive control: the table says gate does not read gate-command, and the gate's parser does.
    const spec = INPUTS[Inputs.GateCommand] as { modes: readonly string[] }
    const modes = spec.modes
    spec.modes = ['drill']
    try {
      expect(() => configFor('gate', {}, '/t')).toThrow(
        'gate-command is read by mode gate, which the input table says does not use it',
      )
    } finally {
      spec.modes = modes
    }
  })
})
