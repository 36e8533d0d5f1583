/**
 * Secrets and child processes. Every secret input is named here once: action/main.ts masks them, the
 * CLI reads them from an environment variable or a file, and no child process (pytest, pg_dump,
 * gpg, the stop and start commands) inherits them or the runner's tokens. A child gets the
 * runner's environment minus those, plus exactly what it needs (`childEnv`).
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Inputs } from '../options/inputs.js'

/** Inputs that hold a secret: masked in logs, never on argv, never inherited by a child. */
export const SECRET_INPUTS = [
  'connection-string',
  'restore-connection-string',
  'age-identity',
  'age-passphrase',
  'gpg-passphrase',
  'smoke-login-body',
  'github-token',
  'signing-key',
  's3-secret-access-key',
  's3-session-token',
] as const satisfies readonly `${Inputs}`[]

export type SecretInput = (typeof SECRET_INPUTS)[number]

/** The CLI's environment variable for a secret input: age-identity -> OMNIAI_AGE_IDENTITY. */
export const secretEnvName = (input: SecretInput): string =>
  `OMNIAI_${input.toUpperCase().replace(/-/g, '_')}`

/**
 * The runner's tokens, libpq's password variable, cloud credentials: what the action itself may
 * use, and a child must not see unless handed it on purpose (pg tools get PGPASSWORD from their
 * target).
 */
const SECRET_VARIABLES = new Set([
  'GITHUB_TOKEN',
  'GH_TOKEN',
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_RUNTIME_URL',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  'ACTIONS_ID_TOKEN_REQUEST_URL',
  'PGPASSWORD',
  // The S3 store's credentials when they come from the environment (configure-aws-credentials).
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  ...SECRET_INPUTS.map(secretEnvName),
])

/** True for a variable no child process inherits: every action input, every token above. */
export function isSecretVariable(name: string): boolean {
  // Windows spells variables in any case.
  return /^INPUT_/i.test(name) || SECRET_VARIABLES.has(name.toUpperCase())
}

/**
 * The one environment every child process gets: `base` (this process's) without the action's
 * inputs and the secrets above, plus `extra`, which is how a child is handed what it needs.
 */
export function childEnv(
  extra: Record<string, string> = {},
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && !isSecretVariable(name)) env[name] = value
  }
  return { ...env, ...extra }
}

/**
 * V8 flags the action runs with. Semi-spaces (the young generation) of at most 4 MiB instead
 * of 16: the audit-log digest and the row checks make short-lived garbage at hundreds of MB/s,
 * and V8 grows them to the maximum for it. Measured, a SQLite backup with restore-check at
 * 1 GiB, 3 runs each: peak RSS 153-154 MiB against 187-209 MiB, the same seconds (3.26-3.61
 * against 3.36-3.62).
 */
export const HEAP_FLAGS = ['--max-semi-space-size=4']

/**
 * The HEAP_FLAGS that neither `execArgv` nor NODE_OPTIONS sets (the user's own value wins;
 * V8 reads `_` in a flag's name as `-`).
 */
export function missingHeapFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const name = (arg: string) => arg.split('=')[0]!.replace(/_/g, '-')
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map(name)
  return HEAP_FLAGS.filter((flag) => !given.includes(name(flag)))
}

/** Set in the re-executed process: where its hidden variables wait to be read once. */
const HIDDEN_FILE = 'OMNIAI_HIDDEN_ENVIRONMENT'
const HIDDEN_DIR = 'omniai-env-'
const HIDDEN_NAME = 'environment.json'

/**
 * Keeps the secret variables out of /proc/<pid>/environ, which every process of the same user
 * can read: pytest's tests could otherwise read the recovery key from their parent's start-up
 * environment (deleting from process.env does not change it). Writes the secret variables to a
 * 0600 file, re-executes this process in place (same pid, same stdio) without them, and the new
 * image reads the file, deletes it and puts them back into process.env, which lives in memory.
 *
 * Call first thing, before anything async. Returns 'restored' in the re-executed process,
 * 'nothing' when there is nothing to hide, or why it could not (the run goes on: children still
 * get `childEnv`, which never holds them).
 *
 * The new image also gets the V8 flags of HEAP_FLAGS that neither its command line nor
 * NODE_OPTIONS sets (a runner starts actions with none, and cannot be told any): with nothing
 * to hide, this process is re-executed for them alone, once (`node` then has them).
 */
export function hideSecretEnvironment(): 'restored' | 'nothing' | string {
  const pointer = process.env[HIDDEN_FILE]
  if (pointer) {
    delete process.env[HIDDEN_FILE]
    // Only a file this function wrote is read and deleted, whatever the variable says.
    if (
      path.basename(pointer) !== HIDDEN_NAME ||
      !path.basename(path.dirname(pointer)).startsWith(HIDDEN_DIR)
    ) {
      throw new Error(`${HIDDEN_FILE} does not name a file this action wrote`)
    }
    const hidden = JSON.parse(fs.readFileSync(pointer, 'utf8')) as Record<string, string>
    fs.rmSync(pointer, { force: true })
    fs.rmdirSync(path.dirname(pointer))
    Object.assign(process.env, hidden)
    return 'restored'
  }
  const hidden: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value && isSecretVariable(name)) hidden[name] = value
  }
  // The new image: the same command, with the heap flags it lacks.
  const flags = missingHeapFlags()
  const argv = [process.execPath, ...process.execArgv, ...flags, ...process.argv.slice(1)]
  if (process.platform === 'win32' || typeof process.execve !== 'function') {
    if (Object.keys(hidden).length === 0) return 'nothing'
    return `process.execve is not available on ${process.platform} Node ${process.version}`
  }
  if (Object.keys(hidden).length === 0) {
    if (flags.length === 0) return 'nothing'
    try {
      process.execve(process.execPath, argv, process.env as Record<string, string>)
    } catch {
      // Only memory is at stake: the run goes on in this image, with V8's defaults.
    }
    return 'nothing'
  }
  // tmpfs when there is one: the file never reaches a disk.
  const parent = fs.existsSync('/dev/shm') ? '/dev/shm' : process.env.RUNNER_TEMP || os.tmpdir()
  let dir: string | null = null
  try {
    dir = fs.mkdtempSync(path.join(parent, HIDDEN_DIR))
    const file = path.join(dir, HIDDEN_NAME)
    fs.writeFileSync(file, JSON.stringify(hidden), { mode: 0o600, flag: 'wx' })
    const env: Record<string, string> = { [HIDDEN_FILE]: file }
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !(name in hidden)) env[name] = value
    }
    process.execve(process.execPath, argv, env)
  } catch (err) {
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
    return `re-executing without them failed (${(err as Error).message})`
  }
  return 'nothing'
}
