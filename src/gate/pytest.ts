/**
 * Runs pytest for the security gate: no shell, its output streamed to the log line by line as it
 * runs, its JUnit XML report read back. Problems that mean pytest never ran the selection (not
 * installed, bad arguments, a marker expression it rejects) are UserErrors naming the input to fix;
 * what the tests did is left to the caller to judge.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import { readRegularFile } from '../util/fs.js'
import * as path from 'node:path'
import { createInterface } from 'node:readline'
import { UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'
import { childEnv } from '../util/secrets.js'

export interface PytestOptions {
  /** argv that starts pytest, e.g. ['python', '-m', 'pytest']. */
  command: string[]
  markers: string
  cwd: string
  /** Added to the environment pytest gets (childEnv: without the action's secrets). */
  env: Record<string, string>
  /** Where pytest writes its JUnit XML report. */
  junitFile: string
}

export interface PytestRun {
  argv: string[]
  /** null when pytest was killed by a signal. */
  exitCode: number | null
  signal: NodeJS.Signals | null
  /** The JUnit XML report, null when pytest did not write one. */
  junitXml: string | null
  /** pytest's rootdir from its header (file paths in the report are relative to it). */
  rootdir: string | null
  /** The last lines pytest printed, stdout and stderr as they came. */
  tail: string[]
}

/** pytest's documented exit codes. */
export const EXIT = {
  ok: 0,
  testsFailed: 1,
  interrupted: 2,
  internalError: 3,
  usage: 4,
  noTests: 5,
}

const TAIL_LINES = 40

/** The command as a person would type it, for logs and messages. */
export function showCommand(argv: string[]): string {
  return argv.map((a) => (a === '' || /[\s"'\\$`]/.test(a) ? JSON.stringify(a) : a)).join(' ')
}

/** A one-line fix for a command that did not start pytest. */
const INSTALL_FIX =
  'Fix: install pytest in an earlier step (actions/setup-python, then pip install pytest or your project install), or set gate-command to how your project runs it, e.g. python -m pytest or poetry run pytest.'

async function assertDirectory(dir: string): Promise<void> {
  let stat
  try {
    stat = await fs.stat(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new UserError(
      code === 'ENOENT'
        ? `gate-working-directory: ${dir} does not exist. Fix: set gate-working-directory to the folder holding your pytest.ini or pyproject.toml, relative to the repository root, and check the repository is checked out (actions/checkout) before this step.`
        : `gate-working-directory: cannot open ${dir} (${code}). Fix: set gate-working-directory to a readable folder.`,
    )
  }
  if (!stat.isDirectory()) {
    throw new UserError(
      `gate-working-directory: ${dir} is a file, not a folder. Fix: set gate-working-directory to the folder that holds it.`,
    )
  }
}

/**
 * The line of pytest's output that says why it refused to run: the `-m` parser's message, an
 * argparse error, or pytest's own `ERROR:` line. This reads text written for people, so it
 * only picks a line to quote; the exit code decides what happened.
 */
function refusal(tail: string[]): { markers: boolean; line: string } {
  const lines = tail.map((l) => l.trim()).filter(Boolean)
  const markers = lines.find((l) => l.includes("Wrong expression passed to '-m'"))
  if (markers) return { markers: true, line: markers.replace(/^ERROR:\s*/, '') }
  const line =
    lines.find((l) => /^\S+: error: /.test(l)) ??
    lines.find((l) => l.startsWith('ERROR:')) ??
    lines.at(-1) ??
    '(no output)'
  return { markers: false, line }
}

/** Runs pytest with the gate's selection; resolves once it exits and its report is read. */
export async function runPytest(options: PytestOptions, log: Log): Promise<PytestRun> {
  const { command, markers, cwd, junitFile } = options
  await assertDirectory(cwd)
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
  ]
  const tail: string[] = []
  let rootdir: string | null = null
  const shown = `${showCommand(command)} -m ${JSON.stringify(markers)}`

  const { exitCode, signal } = await log.group(shown, async () => {
    log.info(`$ ${showCommand(argv)}   (in ${cwd})`)
    // The tests are the pull request's code: what they print is shown, never obeyed.
    const verbatim = log.verbatim?.bind(log) ?? (<T>(fn: () => Promise<T>) => fn())
    return verbatim(async () => {
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd,
        // Python buffers output written to a pipe; unbuffered, the log shows each test as it ends.
        // The tests get the runner's environment without the action's inputs and tokens: the
        // project's code must not be able to read the recovery key.
        env: childEnv({ PYTHONUNBUFFERED: '1', ...options.env }),
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true,
      })
      const onLine = (line: string) => {
        log.info(line)
        tail.push(line)
        if (tail.length > TAIL_LINES) tail.shift()
        const m =
          rootdir === null ? /^rootdir: (.+?)(?:, (?:inifile|configfile): .*)?$/.exec(line) : null
        if (m) rootdir = m[1]!
      }
      const streams = [child.stdout, child.stderr].map((stream) => {
        const lines = createInterface({ input: stream, crlfDelay: Infinity })
        lines.on('line', onLine)
        return new Promise<void>((resolve) => lines.on('close', resolve))
      })
      const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>(
        (resolve, reject) => {
          child.on('error', reject)
          child.on('close', (code, sig) => resolve({ exitCode: code, signal: sig }))
        },
      )
      try {
        const result = await exited
        await Promise.all(streams)
        return result
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT') {
          throw new UserError(
            `gate-command: ${argv[0]} was not found on PATH (the command is "${showCommand(command)}"). ${INSTALL_FIX}`,
          )
        }
        throw new UserError(
          `gate-command: cannot start ${argv[0]} (${code ?? (err as Error).message}). ${INSTALL_FIX}`,
        )
      }
    })
  })
  const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`
  let junitXml: string | null = null
  try {
    // The report pytest wrote, which the pull request's code could have replaced with a FIFO.
    junitXml = (await readRegularFile(junitFile)).toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  // An exit code means what pytest documents only when pytest ran: `python -m pytest` without
  // pytest installed also exits with 1, which is not "tests failed".
  log.info(
    junitXml === null && exitCode !== EXIT.usage
      ? `${showCommand(command)} ${how}, and pytest wrote no report: no test results`
      : `pytest ${how} (${exitMeaning(exitCode)})`,
  )

  if (exitCode === EXIT.usage) {
    const why = refusal(tail)
    if (why.markers) {
      throw new UserError(
        `gate-markers: pytest rejects the expression: ${why.line}. Fix: write marker names joined by and, or, not and parentheses, e.g. gate-markers: security or csrf.`,
      )
    }
    throw new UserError(
      `gate-command: pytest refused to run "${showCommand(command)}" (exit 4, usage error): ${why.line}. Fix: correct gate-command and the pytest options in your configuration (pytest runs in gate-working-directory ${cwd}).`,
    )
  }
  if (junitXml === null) {
    // pytest writes its report at the end of every session it starts, even one that collects
    // nothing; no report means the command never got as far as running pytest.
    throw new UserError(
      `gate-command: "${showCommand(command)}" ${how} without pytest writing its report: ${refusal(tail).line}. ${INSTALL_FIX}`,
    )
  }
  const root = rootdir === null ? null : path.resolve(cwd, rootdir)
  return { argv, exitCode, signal, junitXml, rootdir: root, tail }
}

export function exitMeaning(code: number | null): string {
  switch (code) {
    case EXIT.ok:
      return 'all selected tests passed'
    case EXIT.testsFailed:
      return 'tests failed'
    case EXIT.interrupted:
      return 'interrupted, e.g. by a collection error'
    case EXIT.internalError:
      return 'pytest internal error'
    case EXIT.usage:
      return 'usage error'
    case EXIT.noTests:
      return 'no tests selected'
    default:
      return code === null ? 'killed' : 'not a pytest exit code'
  }
}
