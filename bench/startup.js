#!/usr/bin/env node
/**
 * Start-up time of a built bundle: milliseconds from spawning `node <dist>/index.js` to the first
 * line it writes to stdout, and to its exit, median of N runs, run the way a GitHub runner runs
 * the action (no arguments; every input action.yml declares as INPUT_<NAME> with its default
 * unless the case sets it; GITHUB_OUTPUT, GITHUB_STATE, GITHUB_STEP_SUMMARY as files). The
 * INPUT_ variables make the entry re-execute itself without them (src/util/secrets.ts), so the time
 * includes loading the bundle twice, as on a runner.
 *
 *   npm run build:ts && npx ncc build lib/index.js -o /tmp/omniai-dist --target es2022 -q
 *   node_modules/.bin/node bench/startup.js /tmp/omniai-dist [--runs 10] [--action-yml FILE]
 *
 * --action-yml: the action.yml whose inputs and defaults the runner would pass (default: this
 * repository's); an older bundle needs the action.yml of its own commit
 * (git show <commit>:action.yml > /tmp/action.yml).
 *
 * Cases:
 *   smoke (fails fast)   mode smoke without smoke-url: refused after parsing the inputs
 *   backup (tiny db)     mode backup of a SQLite database of 3 conversations (made by demo-db)
 *   cli smoke            `index.js smoke`: the CLI, nothing to hide, no re-execution; first
 *                        line is the summary on stdout
 *
 * Use Node 24 (node_modules/.bin/node, as action.yml runs node24): Node 20 has no
 * process.execve and so would not re-execute. The dist folder is copied to a temporary folder
 * with no node_modules above it first, as the bundle tests do, and removed at the end.
 */
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as os from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { log, median } from './lib.js'

const root = fileURLToPath(new URL('..', import.meta.url))

const args = process.argv.slice(2)
const WITH_VALUE = ['--runs', '--action-yml']
const distArg = args.find((a, i) => !a.startsWith('--') && !WITH_VALUE.includes(args[i - 1]))
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const RUNS = Number(option('--runs') ?? 10)
const ACTION_YML = resolve(option('--action-yml') ?? join(root, 'action.yml'))
if (!distArg || !(RUNS >= 1)) {
  console.error('usage: node bench/startup.js <dist folder> [--runs N] [--action-yml FILE]')
  process.exit(2)
}
if (Number(process.versions.node.split('.')[0]) < 24) {
  console.error(
    `Node ${process.versions.node}: use Node 24 (node_modules/.bin/node), which re-executes as the runner's does.`,
  )
  process.exit(2)
}

/** Each input's default as action.yml declares it; an expression default as empty. */
function actionDefaults() {
  const text = readFileSync(ACTION_YML, 'utf8')
  const inputs = text.slice(text.indexOf('\ninputs:\n'), text.indexOf('\noutputs:\n'))
  const defaults = {}
  for (const m of inputs.matchAll(/^ {2}([a-z0-9-]+):\n((?: {4}.*\n| *\n)*)/gm)) {
    const d = /^ {4}default: (.*)$/m.exec(m[2])?.[1]?.trim() ?? ''
    const value = d.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1')
    defaults[m[1]] = value.startsWith('${{') ? '' : value
  }
  return defaults
}

const base = mkdtempSync(join(os.tmpdir(), 'omniai-startup-'))
const dir = join(base, 'action')
const runnerTemp = join(base, 'runner-temp')
mkdirSync(runnerTemp, { recursive: true })
cpSync(resolve(distArg), join(dir, 'dist'), { recursive: true })
const PATH = (process.env.PATH ?? '/usr/bin:/bin')
  .split(':')
  .filter((p) => p && !p.split('/').includes('node_modules'))
  .join(':')
const DEFAULTS = actionDefaults()
let step = 0

/** One step's environment: the runner's files, every input (default unless set). */
function stepEnv(inputs) {
  const files = join(base, `step-${++step}`)
  mkdirSync(files)
  const env = { PATH, HOME: base, RUNNER_TEMP: runnerTemp }
  for (const name of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY']) {
    env[name] = join(files, name.toLowerCase())
    writeFileSync(env[name], '')
  }
  for (const [name, value] of Object.entries({ ...DEFAULTS, ...inputs }))
    env[`INPUT_${name.toUpperCase()}`] = value
  return env
}

/**
 * Preloaded into each run (and kept by the re-execution, which repeats execArgv): at exit it
 * writes the process's CPU time to stderr (fd 3 does not survive the re-execution). getrusage counts the image before execve too, so this
 * is the CPU both images used, a figure a busy machine distorts less than wall time.
 */
const CPU_PRELOAD = join(base, 'cpu.cjs')
const CPU_MARK = 'omniai-startup-cpu-ms'
writeFileSync(
  CPU_PRELOAD,
  `process.on('exit', () => { const u = process.cpuUsage(); try { require('node:fs').writeSync(2, '\\n${CPU_MARK} ' + (u.user + u.system) / 1000 + '\\n') } catch {} })\n`,
)

/** Spawns once; resolves with ms to the first stdout line, ms to exit, CPU ms, and that line. */
function sample(argv, env) {
  return new Promise((done, fail) => {
    const start = process.hrtime.bigint()
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6
    const child = spawn(process.execPath, ['-r', CPU_PRELOAD, 'dist/index.js', ...argv], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let err = ''
    let out = ''
    let first = null
    let firstLine = ''
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d
      const line = /^.*\S.*$/m.exec(out)
      if (first === null && line && out.indexOf('\n', line.index) >= 0) {
        first = ms()
        firstLine = line[0]
      }
    })
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d))
    child.on('error', fail)
    child.on('close', (code) =>
      done({
        first: first ?? NaN,
        exit: ms(),
        cpu: Number(new RegExp(`^${CPU_MARK} (\\S+)$`, 'm').exec(err)?.[1] ?? NaN),
        code,
        firstLine,
      }),
    )
  })
}

const cases = [
  {
    label: 'action smoke, no smoke-url (fails fast)',
    argv: [],
    env: () => stepEnv({ mode: 'smoke' }),
  },
  {
    label: 'action backup, tiny SQLite db',
    argv: [],
    // A fresh backup-dir each run: the work is the same every time (no retention to apply).
    env: () =>
      stepEnv({
        mode: 'backup',
        'connection-string': 'omniai.db',
        'backup-dir': join(base, `backups-${step + 1}`),
      }),
  },
  { label: 'cli smoke (no re-execution)', argv: ['smoke'], env: () => ({ PATH, HOME: base }) },
]

try {
  const made = spawnSync(
    process.execPath,
    [
      'dist/index.js',
      'demo-db',
      '--out',
      'omniai.db',
      '--conversations',
      '3',
      '--audit-rows',
      '10',
    ],
    { cwd: dir, env: { PATH, HOME: base }, encoding: 'utf8' },
  )
  if (made.status !== 0) throw new Error(`demo-db failed: ${made.stderr}`)
  log(`bundle ${resolve(distArg)}, Node ${process.version}, ${RUNS} runs each after 1 warm-up`)
  log(`inputs and defaults from ${ACTION_YML}, load average ${os.loadavg()[0].toFixed(1)}`)
  log(
    `${'case'.padEnd(42)} ${'first line ms'.padStart(14)} ${'exit ms'.padStart(9)} ${'CPU ms'.padStart(8)}  exit code`,
  )
  for (const c of cases) {
    await sample(c.argv, c.env())
    const samples = []
    for (let i = 0; i < RUNS; i++) samples.push(await sample(c.argv, c.env()))
    const first = median(samples.map((s) => s.first))
    const exit = median(samples.map((s) => s.exit))
    const cpu = median(samples.map((s) => s.cpu))
    const codes = [...new Set(samples.map((s) => s.code))].join(',')
    log(
      `${c.label.padEnd(42)} ${first.toFixed(0).padStart(14)} ${exit.toFixed(0).padStart(9)} ${cpu.toFixed(0).padStart(8)}  ${codes}`,
    )
    log(`  first line: ${samples[0].firstLine.slice(0, 100)}`)
  }
} finally {
  rmSync(base, { recursive: true, force: true })
}
