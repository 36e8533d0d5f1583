// Runs the committed bundle (dist/index.js) the way a GitHub runner does: dist/ and action.yml
// copied into a folder with no node_modules anywhere above it, `node dist/index.js` with no
// arguments, inputs as INPUT_<NAME> variables (upper-cased, dashes kept), GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY as files, and nothing else from this machine's environment. A bundle that
// still needs node_modules, a missing prebuild, or a bad input/output wiring fails here.

import { spawn } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import * as os from 'node:os'
import { delimiter, dirname, join, resolve, sep } from 'node:path'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sql } from './helpers.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const RUN_TIMEOUT_MS = 60_000

const nodeMajor = Number(process.versions.node.split('.')[0])

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  outputs: Record<string, string>
  summary: string
  /** What the step saved for its post step (GITHUB_STATE). */
  state?: Record<string, string>
}

/** GITHUB_OUTPUT as @actions/core writes it: `name<<delim\nvalue\ndelim` (or `name=value`). */
function parseGithubOutput(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line === '') continue
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const [, name, delim] = heredoc
      const value: string[] = []
      i++
      while (i < lines.length && lines[i] !== delim) value.push(lines[i++]!)
      if (i >= lines.length) throw new Error(`GITHUB_OUTPUT: ${name} has no closing ${delim}`)
      out[name!] = value.join('\n')
      continue
    }
    const eq = line.indexOf('=')
    if (eq <= 0) throw new Error(`GITHUB_OUTPUT: cannot parse line ${JSON.stringify(line)}`)
    out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

/** A folder holding the action as a runner checks it out, plus the files a runner provides. */
class Workspace {
  readonly base: string
  /** dist/ + action.yml; the cwd of every run. */
  readonly dir: string
  readonly runnerTemp: string
  readonly home: string
  private runs = 0

  constructor(label: string, subActions = false) {
    this.base = mkdtempSync(join(os.tmpdir(), `omniai-bundle-${label}-`))
    this.dir = join(this.base, 'action')
    this.runnerTemp = join(this.base, 'runner-temp')
    this.home = join(this.base, 'home')
    for (const d of [this.dir, this.runnerTemp, this.home]) mkdirSync(d)
    cpSync(join(root, 'dist'), join(this.dir, 'dist'), { recursive: true })
    cpSync(join(root, 'action.yml'), join(this.dir, 'action.yml'))
    for (const mode of subActions ? SUB_ACTIONS : [])
      cpSync(join(root, mode, 'action.yml'), join(this.dir, mode, 'action.yml'))
  }

  path(...parts: string[]): string {
    return resolve(this.dir, ...parts)
  }

  /** The environment of a step: PATH (without any node_modules/.bin), HOME, and `extra`. */
  private env(extra: Record<string, string>): Record<string, string> {
    const PATH = (process.env.PATH ?? '/usr/bin:/bin')
      .split(delimiter)
      .filter((p) => p && !p.split(/[\\/]/).includes('node_modules'))
      .join(delimiter)
    return { PATH, HOME: this.home, ...extra }
  }

  private spawn(args: string[], env: Record<string, string>) {
    return new Promise<{
      code: number | null
      signal: NodeJS.Signals | null
      stdout: string
      stderr: string
    }>((resolvePromise, reject) => {
      const child = spawn(process.execPath, args, {
        cwd: this.dir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
      const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS)
      child.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        resolvePromise({ code, signal, stdout, stderr })
      })
    })
  }

  /** The bundle's CLI (`node dist/index.js <args>`), as the README runs it. */
  cli(args: string[], extraEnv: Record<string, string> = {}) {
    return this.spawn(['dist/index.js', ...args], this.env(extraEnv))
  }

  /**
   * One action step: inputs by action.yml name, plus any extra environment. `sub` runs a
   * sub-action instead of the root action: its action.yml's defaults and its runs.main.
   */
  async action(
    inputs: Record<string, string>,
    extraEnv: Record<string, string> = {},
    sub?: string,
  ): Promise<Run> {
    const n = ++this.runs
    const files = join(this.base, `step-${n}`)
    mkdirSync(files)
    const outputFile = join(files, 'output')
    const summaryFile = join(files, 'summary')
    const stateFile = join(files, 'state')
    writeFileSync(outputFile, '')
    writeFileSync(summaryFile, '')
    writeFileSync(stateFile, '')
    // As the runner does: every input action.yml declares arrives, with its default when the
    // step does not set it (an expression default such as the token as the runner expands it:
    // here, empty).
    const inputEnv = Object.fromEntries(
      Object.entries({ ...actionDefaults(sub), ...inputs }).map(([name, value]) => [
        `INPUT_${name.toUpperCase()}`,
        value,
      ]),
    )
    const result = await this.spawn(
      [sub ? mainOf(this.path(sub, 'action.yml')) : 'dist/index.js'],
      this.env({
        ...inputEnv,
        GITHUB_OUTPUT: outputFile,
        GITHUB_STEP_SUMMARY: summaryFile,
        GITHUB_STATE: stateFile,
        RUNNER_TEMP: this.runnerTemp,
        ...extraEnv,
      }),
    )
    return {
      ...result,
      outputs: parseGithubOutput(readFileSync(outputFile, 'utf8')),
      summary: readFileSync(summaryFile, 'utf8'),
      state: parseGithubOutput(readFileSync(stateFile, 'utf8')),
    }
  }

  remove(): void {
    rmSync(this.base, { recursive: true, force: true })
  }
}

const SUB_ACTIONS = ['backup', 'verify', 'drill', 'restore', 'gate', 'smoke']

/** A sub-action's `runs.main`, as the runner resolves it: relative to its action.yml's folder. */
function mainOf(actionYml: string): string {
  const main = /^ {2}main: (.+)$/m.exec(readFileSync(actionYml, 'utf8'))![1]!.trim()
  return resolve(dirname(actionYml), main)
}

/** Each input's default as action.yml (the root's, or a sub-action's) declares it. */
function actionDefaults(sub?: string): Record<string, string> {
  const text = readFileSync(join(root, sub ?? '', 'action.yml'), 'utf8')
  const inputs = text.slice(text.indexOf('\ninputs:\n'), text.indexOf('\noutputs:\n'))
  const defaults: Record<string, string> = {}
  for (const m of inputs.matchAll(/^ {2}([a-z0-9-]+):\n((?: {4}.*\n| *\n)*)/gm)) {
    const d = /^ {4}default: (.*)$/m.exec(m[2]!)?.[1]?.trim() ?? ''
    const value = d.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1')
    defaults[m[1]!] = value.startsWith('${{') ? '' : value
  }
  return defaults
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

/** What went wrong, for expect messages: exit code and both streams. */
const explain = (r: {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
}) => `exit ${r.code} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`

/** `::error::` annotations on stdout (each is one line; newlines in a message are %0A). */
const errorAnnotations = (stdout: string) =>
  stdout
    .split(/\r?\n/)
    .filter((l) => l.startsWith('::error'))
    .map((l) => l.replace(/^::error[^:]*::/, ''))

/** Check rows of the summary's check table: name to pass/fail. */
function summaryChecks(summary: string): Map<string, boolean> {
  const checks = new Map<string, boolean>()
  for (const m of summary.matchAll(/^\| ([a-z][a-z0-9-]*) \| (✅ pass|❌ fail) \|/gm))
    checks.set(m[1]!, m[2] === '✅ pass')
  return checks
}

/** A stack frame (`    at fn (file:1:2)` or `    at file:1:2`). */
const STACK_FRAME = /^\s+at .*(:\d+:\d+\)?|\(native\)|<anonymous>\)?)$/m

function expectNoNodeModulesAbove(dir: string): void {
  for (let d = dir; ; d = dirname(d)) {
    expect(existsSync(join(d, 'node_modules')), `${join(d, 'node_modules')} exists`).toBe(false)
    if (dirname(d) === d) break
  }
}

function expectReport(file: string, mode: string) {
  expect(existsSync(file), `report ${file} missing`).toBe(true)
  const report = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  for (const key of [
    'mode',
    'engine',
    'ok',
    'backup',
    'checks',
    'database',
    'backupCount',
    'durations',
  ])
    expect(report, `report lacks ${key}`).toHaveProperty(key)
  expect(report.mode).toBe(mode)
  expect(report.engine).toBe('sqlite')
  expect(report.ok).toBe(true)
  expect(Array.isArray(report.checks)).toBe(true)
  return report
}

function expectBackupOutputs(ws: Workspace, run: Run): string {
  const { outputs } = run
  expect(outputs.ok, explain(run)).toBe('true')
  expect(outputs['failed-checks']).toBe('')
  const backup = ws.path(outputs['backup-path'] ?? '')
  expect(outputs['backup-path'], 'backup-path output').toMatch(/\S/)
  expect(existsSync(backup), `backup ${backup} missing`).toBe(true)
  expect(outputs.sha256).toMatch(/^[0-9a-f]{64}$/)
  expect(outputs.sha256).toBe(sha256(backup))
  expect(outputs['size-bytes']).toBe(String(statSync(backup).size))
  return backup
}

describe('committed bundle, run as a GitHub runner runs it', () => {
  let ws: Workspace
  let backupPath = ''

  beforeAll(() => {
    if (!(nodeMajor >= 24)) {
      throw new Error(
        `bundle tests need Node >= 24 (action.yml runs: node24), but vitest runs under Node ${process.versions.node} (${process.execPath}). Run them with the project's node: cd /work/main && npx vitest run`,
      )
    }
    ws = new Workspace('main')
  })

  afterAll(() => ws?.remove())

  it('runs under Node >= 24, from a folder with dist/ and action.yml and no node_modules', () => {
    expect(
      nodeMajor,
      `Node ${process.versions.node} at ${process.execPath}`,
    ).toBeGreaterThanOrEqual(24)
    expect(readdirSync(ws.dir).sort()).toEqual(['action.yml', 'dist'])
    expect(existsSync(ws.path('dist', 'index.js'))).toBe(true)
    expect(
      existsSync(ws.path('dist', 'prebuilds', `${process.platform}-${process.arch}.node`)),
    ).toBe(true)
    expectNoNodeModulesAbove(ws.dir)
    expect(
      readdirSync(ws.path('dist'), { recursive: true })
        .map(String)
        .filter((f) => f.includes('node_modules')),
    ).toEqual([])
  })

  it('the post step (the same file, STATE_isPost) removes what a killed step left, nothing else', async () => {
    // main saves the state that tells the runner's later call of dist/index.js it is the post step.
    const main = await ws.action({ mode: 'smoke', 'smoke-url': '' })
    expect(main.state?.isPost).toBe('true')
    const scratch = ws.path('post-scratch')
    mkdirSync(join(scratch, 'omniai-drill-AbC123'), { recursive: true })
    writeFileSync(join(scratch, 'omniai-drill-AbC123', 'plain.db'), 'decrypted rows')
    mkdirSync(join(scratch, 'omniai-notes'))
    const post = await ws.action(
      { mode: 'drill', 'scratch-dir': scratch },
      { STATE_isPost: 'true' },
    )
    expect(post.code, explain(post)).toBe(0)
    expect(readdirSync(scratch)).toEqual(['omniai-notes'])
    // Positive control: without STATE_isPost the same call is the drill itself, not the post step.
    const notPost = await ws.action({
      mode: 'drill',
      'scratch-dir': scratch,
      'backup-dir': 'none-here',
    })
    expect(notPost.code).not.toBe(0)
  })

  it('backup: writes the backup, outputs, report and summary', async () => {
    const demo = await ws.cli(['demo-db', '--out', 'omniai.db'])
    expect(demo.code, explain(demo)).toBe(0)
    expect(existsSync(ws.path('omniai.db'))).toBe(true)

    const run = await ws.action({
      mode: 'backup',
      'connection-string': 'omniai.db',
      'backup-dir': 'backups',
    })
    expect(run.code, explain(run)).toBe(0)
    expect(run.signal).toBeNull()
    expect(errorAnnotations(run.stdout)).toEqual([])
    backupPath = expectBackupOutputs(ws, run)
    expect(backupPath.startsWith(ws.path('backups') + sep)).toBe(true)
    expect(existsSync(`${backupPath}.manifest.json`)).toBe(true)
    expect(run.outputs['backup-count']).toBe('1')

    // No report-file input: the report goes to $RUNNER_TEMP, as action.yml documents.
    expect(run.outputs.report).toBe(join(ws.runnerTemp, 'omniai-backup-report.json'))
    const report = expectReport(resolve(ws.dir, run.outputs.report!), 'backup')
    expect((report.backup as { sha256: string }).sha256).toBe(run.outputs.sha256)

    expect(run.summary).toMatch(/^\| --- \| --- \| --- \|$/m)
    expect(summaryChecks(run.summary).get('integrity')).toBe(true)
    expectNoNodeModulesAbove(ws.dir)
  })

  it('loads the native SQLite driver from dist/prebuilds and nothing from outside the folder', async () => {
    // NODE_DEBUG=module makes Node log each CommonJS load (the prebuild is loaded that way).
    const run = await ws.action(
      { mode: 'verify', 'backup-dir': 'backups' },
      { NODE_DEBUG: 'module' },
    )
    expect(run.code, explain(run)).toBe(0)
    const loaded = [...run.stderr.matchAll(/^MODULE \d+: load "([^"]+)"/gm)].map((m) => m[1]!)
    const prebuild = ws.path('dist', 'prebuilds', `${process.platform}-${process.arch}.node`)
    expect(loaded, run.stderr.slice(0, 4000)).toContain(prebuild)
    expect(loaded.filter((f) => !f.startsWith(ws.path('dist') + sep))).toEqual([])
    expect(run.stderr).not.toMatch(/^MODULE \d+: load "[^"]*node_modules/m)
  })

  it('verify then drill: every check passes, the drill is logged', async () => {
    expect(backupPath, 'the backup case did not run').not.toBe('')
    const verify = await ws.action({
      mode: 'verify',
      'backup-dir': 'backups',
      'max-backup-age': '1h',
    })
    expect(verify.code, explain(verify)).toBe(0)
    expect(verify.outputs.ok).toBe('true')
    expect(verify.outputs['failed-checks']).toBe('')
    expect(ws.path(verify.outputs['backup-path']!)).toBe(backupPath)
    expect(verify.outputs.sha256).toBe(sha256(backupPath))
    expect(verify.outputs['backup-age-seconds']).toMatch(/^\d+$/)
    expectReport(resolve(ws.dir, verify.outputs.report!), 'verify')
    const verifyChecks = summaryChecks(verify.summary)
    for (const name of ['checksum', 'integrity', 'schema'])
      expect(verifyChecks.get(name), `verify check ${name}\n${verify.summary}`).toBe(true)

    const drill = await ws.action({
      mode: 'drill',
      'backup-dir': 'backups',
      'max-backup-age': '1h',
      'drill-log': 'drill.jsonl',
    })
    expect(drill.code, explain(drill)).toBe(0)
    expect(drill.outputs.ok).toBe('true')
    expect(drill.outputs['failed-checks']).toBe('')
    expect(ws.path(drill.outputs['backup-path']!)).toBe(backupPath)
    expect(drill.outputs['restore-seconds']).toMatch(/^\d+\.\d{3}$/)
    expect(drill.outputs['backup-age-seconds']).toMatch(/^\d+$/)
    expectReport(resolve(ws.dir, drill.outputs.report!), 'drill')
    const drillChecks = summaryChecks(drill.summary)
    for (const name of ['checksum', 'integrity', 'schema', 'spot-check', 'audit-log'])
      expect(drillChecks.get(name), `drill check ${name}\n${drill.summary}`).toBe(true)

    const log = readFileSync(ws.path('drill.jsonl'), 'utf8').split('\n').filter(Boolean)
    expect(log).toHaveLength(1)
    const record = JSON.parse(log[0]!) as { ok: boolean }
    expect(record.ok).toBe(true)
    // The scratch copy (in RUNNER_TEMP by default) is deleted after the drill.
    expect(readdirSync(ws.runnerTemp).filter((f) => f.startsWith('omniai-drill-'))).toEqual([])
  })

  it('the audit log read and encoded on a worker thread (OMNIAI_AUDIT_WORKER=1): the same digest, the drill passes', async () => {
    expect(backupPath, 'the backup case did not run').not.toBe('')
    // Chosen by the variable, a worker that fails fails the job (no fallback to this thread):
    // the worker's source, made from the bundle's own encodeRow, must run as it is.
    const worker = { OMNIAI_AUDIT_WORKER: '1' }
    const backup = await ws.action(
      { mode: 'backup', 'connection-string': 'omniai.db', 'backup-dir': 'backups-worker' },
      worker,
    )
    expect(backup.code, explain(backup)).toBe(0)
    const audit = (file: string) =>
      (
        JSON.parse(readFileSync(`${file}.manifest.json`, 'utf8')) as {
          inventory: { audit: { rows: number } | null }
        }
      ).inventory.audit
    const there = audit(expectBackupOutputs(ws, backup))
    expect(there?.rows).toBeGreaterThan(0)
    expect(there).toEqual(audit(backupPath))
    const drill = await ws.action(
      { mode: 'drill', 'backup-dir': 'backups-worker', 'max-backup-age': '1h' },
      worker,
    )
    expect(drill.code, explain(drill)).toBe(0)
    expect(summaryChecks(drill.summary).get('audit-log'), drill.summary).toBe(true)
  })

  it('bad input: mode restorex fails with one ::error:: line naming mode and its values, no stack', async () => {
    const run = await ws.action({ mode: 'restorex', 'backup-dir': 'backups' })
    expect(run.code, explain(run)).not.toBe(0)
    expect(run.code).not.toBeNull()
    const errors = errorAnnotations(run.stdout)
    expect(errors, explain(run)).toHaveLength(1)
    const message = errors[0]!
    expect(message).not.toMatch(/%0A|%0D/) // one line: no escaped newlines inside the annotation
    expect(message).toMatch(/\bmode\b/)
    expect(message).toContain('restorex')
    for (const mode of ['backup', 'verify', 'drill']) expect(message).toContain(mode)
    expect(run.stdout + run.stderr).not.toMatch(STACK_FRAME)
  })

  it('fault: a flipped byte in the backup fails verify on checksum', async () => {
    expect(backupPath, 'the backup case did not run').not.toBe('')
    const bytes = readFileSync(backupPath)
    const middle = Math.floor(bytes.length / 2)
    bytes[middle] = bytes[middle]! ^ 0xff
    writeFileSync(backupPath, bytes)

    const run = await ws.action({ mode: 'verify', 'backup-dir': 'backups' })
    expect(run.code, explain(run)).not.toBe(0)
    expect(run.code).not.toBeNull()
    expect(run.outputs.ok).toBe('false')
    expect(run.outputs['failed-checks']?.split(',')).toContain('checksum')
    const errors = errorAnnotations(run.stdout)
    expect(errors, explain(run)).toHaveLength(1)
    expect(errors[0]).toContain('checksum')
    expect(summaryChecks(run.summary).get('checksum')).toBe(false)
    expect(run.stdout + run.stderr).not.toMatch(STACK_FRAME)
  })

  it('hostile names in the data: no workflow command and no HTML reach the log or the summary', async () => {
    const db = ws.path('hostile.db')
    const made = await ws.cli(['demo-db', '--out', db, '--conversations', '20'])
    expect(made.code, made.stderr).toBe(0)
    // A table whose name carries workflow commands and HTML, holding a row whose foreign key
    // points at no user (so the backup's warning names it), and a conversation id that does.
    const evil = 't\n::warning::FK-TABLE-INJECT\n<img src=https://example.com/x.png>'
    await sql(
      db,
      `PRAGMA foreign_keys = OFF;
       CREATE TABLE "${evil}"(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));
       INSERT INTO "${evil}" VALUES (1, 999999);
       UPDATE conversations SET id = 'c_' || char(10) || '::error::INJECTED-ID' || char(10) || '![x](https://example.com/y.png)'
         WHERE id = (SELECT max(id) FROM conversations);`,
    )
    const runs = [
      await ws.action({ mode: 'backup', 'connection-string': db, 'backup-dir': 'hostile' }),
      await ws.action({ mode: 'drill', 'backup-dir': 'hostile', 'drill-log': 'none' }),
    ]
    for (const run of runs) {
      expect(run.code, explain(run)).toBe(0)
      const lines = run.stdout.split('\n')
      // Positive control: the hostile names did reach the log, on lines of the action's own.
      expect(run.stdout).toMatch(/FK-TABLE-INJECT|INJECTED-ID/)
      // An injected command is one at the start of a line: `::warning::FK-TABLE-INJECT`.
      expect(
        lines.filter((l) => /^\s*(::|##\[)[a-z-]+[^:]*::(FK-TABLE-INJECT|INJECTED-ID)/.test(l)),
      ).toEqual([])
      expect(lines.filter((l) => /^\s*<img/.test(l))).toEqual([])
      // No HTML, no line of its own, no image or link: `[` is escaped.
      expect(run.summary).not.toMatch(/<img|^\s*::|!\[x\]\(/m)
    }
    expect(runs[0]!.summary).toMatch(/FK-TABLE-INJECT &lt;img/)
    expect(runs[1]!.summary).toMatch(/INJECTED-ID !\\\[x\\\]\(/)
  })
})

describe('committed bundle with the node:sqlite fallback driver (OMNIAI_SQLITE_DRIVER=node)', () => {
  let ws: Workspace
  const env = { OMNIAI_SQLITE_DRIVER: 'node' }

  beforeAll(() => {
    if (!(nodeMajor >= 24))
      throw new Error(
        `bundle tests need Node >= 24, vitest runs under Node ${process.versions.node}`,
      )
    ws = new Workspace('nodesqlite')
  })

  afterAll(() => ws?.remove())

  it('backup and drill pass', async () => {
    const demo = await ws.cli(['demo-db', '--out', 'omniai.db'], env)
    expect(demo.code, explain(demo)).toBe(0)

    const backup = await ws.action(
      { mode: 'backup', 'connection-string': 'omniai.db', 'backup-dir': 'backups' },
      env,
    )
    expect(backup.code, explain(backup)).toBe(0)
    const backupPath = expectBackupOutputs(ws, backup)
    expectReport(resolve(ws.dir, backup.outputs.report!), 'backup')
    // The manifest records sqlite_version() of the driver that took the backup: Node's own.
    const manifest = JSON.parse(readFileSync(`${backupPath}.manifest.json`, 'utf8')) as {
      engineVersion: string
    }
    expect(manifest.engineVersion).toBe(process.versions.sqlite)

    const drill = await ws.action(
      {
        mode: 'drill',
        'backup-dir': 'backups',
        'max-backup-age': '1h',
        'drill-log': 'drill.jsonl',
      },
      env,
    )
    expect(drill.code, explain(drill)).toBe(0)
    expect(drill.outputs.ok).toBe('true')
    expect(drill.outputs['failed-checks']).toBe('')
    const checks = summaryChecks(drill.summary)
    for (const name of ['checksum', 'integrity', 'schema', 'spot-check', 'audit-log'])
      expect(checks.get(name), `drill check ${name}\n${drill.summary}`).toBe(true)
    const log = readFileSync(ws.path('drill.jsonl'), 'utf8').split('\n').filter(Boolean)
    expect(log).toHaveLength(1)
    expect((JSON.parse(log[0]!) as { ok: boolean }).ok).toBe(true)
    expectNoNodeModulesAbove(ws.dir)
  })

  it('never loads the native prebuild', async () => {
    const run = await ws.action(
      { mode: 'verify', 'backup-dir': 'backups' },
      { ...env, NODE_DEBUG: 'module' },
    )
    expect(run.code, explain(run)).toBe(0)
    expect(run.stderr).not.toMatch(/^MODULE \d+: load "[^"]*\.node"/m)
  })
})

describe('the sub-actions: each runs the one bundle with its own job', () => {
  let ws: Workspace
  let server: Server
  let smokeUrl = ''

  beforeAll(async () => {
    if (!(nodeMajor >= 24))
      throw new Error(
        `bundle tests need Node >= 24, vitest runs under Node ${process.versions.node}`,
      )
    ws = new Workspace('sub', true)
    server = createServer((req, res) => {
      if (req.url === '/v1/health')
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
      else res.writeHead(404).end()
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    smokeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    ws?.remove()
    await new Promise((done) => server?.close(done))
  })

  /** The outputs a sub-action's action.yml declares. */
  const declaredOutputs = (sub: string) => {
    const text = readFileSync(join(root, sub, 'action.yml'), 'utf8')
    const block = text.slice(text.indexOf('\noutputs:\n'), text.indexOf('\nruns:\n'))
    return [...block.matchAll(/^ {2}([a-z0-9-]+):$/gm)].map((m) => m[1]!).sort()
  }

  it('every sub-action runs dist/<its job>.js, which holds no code of its own', () => {
    for (const sub of SUB_ACTIONS) {
      const main = mainOf(ws.path(sub, 'action.yml'))
      expect(main).toBe(ws.path('dist', `${sub}.js`))
      expect(statSync(main).size).toBeLessThan(400)
    }
  })

  it('backup, verify, drill, restore (dry run), gate and smoke, each without a mode input', async () => {
    const demo = await ws.cli(['demo-db', '--out', 'omniai.db'])
    expect(demo.code, explain(demo)).toBe(0)
    const runs: Record<string, Run> = {}
    // Its own job, in the report; its declared outputs and no others; no input out of place.
    const step = async (sub: string, inputs: Record<string, string>) => {
      const run = await ws.action(inputs, {}, sub)
      expect(run.code, `${sub}: ${explain(run)}`).toBe(0)
      expect(run.outputs.ok, sub).toBe('true')
      expect(JSON.parse(readFileSync(resolve(ws.dir, run.outputs.report!), 'utf8')).mode).toBe(sub)
      expect(Object.keys(run.outputs).sort(), sub).toEqual(declaredOutputs(sub))
      expect(run.stdout, sub).not.toMatch(/set, but mode/)
      return (runs[sub] = run)
    }
    await step('backup', { 'connection-string': 'omniai.db' })
    await step('verify', {})
    await step('drill', { 'drill-log': 'drill.jsonl', 'smoke-url': smokeUrl })
    await step('restore', {
      'connection-string': 'omniai.db',
      confirm: 'omniai.db',
      'dry-run': 'true',
    })
    cpSync(join(root, '__tests__', 'fixtures', 'pytest', 'all-pass'), ws.path('app'), {
      recursive: true,
    })
    await step('gate', {
      'gate-command': 'python3 -m pytest',
      'gate-working-directory': 'app',
      'csp-file': 'none',
    })
    await step('smoke', { 'smoke-url': smokeUrl })
    expect(Object.keys(runs)).toEqual(SUB_ACTIONS)
    expect(runs.backup.outputs.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(runs.verify.outputs.sha256).toBe(runs.backup.outputs.sha256)
    expect(runs.drill.outputs['restore-seconds']).toMatch(/^\d+\.\d{3}$/)
    expect(summaryChecks(runs.drill.summary).get('smoke-test')).toBe(true)
    expect(runs.gate.outputs['tests-passed']).toMatch(/^[1-9]\d*$/)
    expect(summaryChecks(runs.smoke.summary).get('smoke-test')).toBe(true)
    // The post step, as the runner calls it: the same entry, with the state the step saved.
    const post = await ws.action({}, { STATE_isPost: 'true' }, 'drill')
    expect(post.code, explain(post)).toBe(0)
  })

  it('a mode input that names another job fails in one line, nothing is written', async () => {
    const run = await ws.action(
      { mode: 'drill', 'connection-string': 'omniai.db', 'backup-dir': 'other' },
      {},
      'backup',
    )
    expect(run.code).not.toBe(0)
    expect(errorAnnotations(run.stdout)).toEqual([
      'mode: this is the backup action, and mode is drill. Fix: remove mode, or use the drill action (omniai/omniai-backups/drill@v1).',
    ])
    expect(existsSync(ws.path('other'))).toBe(false)
    // Positive control: the same step without the mode input backs up.
    const ok = await ws.action(
      { 'connection-string': 'omniai.db', 'backup-dir': 'other' },
      {},
      'backup',
    )
    expect(ok.code, explain(ok)).toBe(0)
    expect(existsSync(ws.path('other'))).toBe(true)
  })
})

// The parser the cases above rely on: GITHUB_OUTPUT delimiters are random per value.
describe('parseGithubOutput', () => {
  it('reads heredoc values with any delimiter, multi-line values and name=value lines', () => {
    const d1 = `ghadelimiter_${randomUUID()}`
    const d2 = `ghadelimiter_${randomUUID()}`
    const text = `ok<<${d1}\ntrue\n${d1}\nempty<<${d2}\n\n${d2}\nmulti<<${d1}\na\nb\n${d1}\nlegacy=x=y\n`
    expect(parseGithubOutput(text)).toEqual({ ok: 'true', empty: '', multi: 'a\nb', legacy: 'x=y' })
  })
})
