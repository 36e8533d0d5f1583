import { execFile, spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { afterEach } from 'vitest'
import { parseConfig, type Config } from '../src/options/config.js'
import { Inputs, type Mode } from '../src/options/inputs.js'
import { generateDemoDatabase, type DemoOptions } from '../src/demo/sqlite.js'
import { openSqlite, type SqlValue } from '../src/engines/sqlite/driver.js'
import type { Annotation, Log } from '../src/util/log.js'
import { runMode } from '../src/modes/index.js'

export const ROOT = path.resolve(import.meta.dirname, '..')
export const DIST = path.join(ROOT, 'dist', 'index.js')

const made: string[] = []
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true })
})

/** A temporary folder, removed after the test. */
export async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-test-'))
  made.push(dir)
  return dir
}

/** A folder with a generated demo database at `db` and room for backups. */
export async function demoWorkspace(options: Partial<DemoOptions> = {}) {
  const dir = await tempDir()
  const db = path.join(dir, 'omniai.db')
  await generateDemoDatabase(db, options)
  return { dir, db, backups: path.join(dir, 'backups') }
}

/** A Log that keeps what it was told. */
export function memoryLog(): Log & {
  lines: string[]
  warnings: string[]
  groups: string[]
  annotations: (Annotation & { level: string; message: string })[]
  masked: string[]
} {
  const lines: string[] = []
  const warnings: string[] = []
  const groups: string[] = []
  const annotations: (Annotation & { level: string; message: string })[] = []
  const masked: string[] = []
  return {
    lines,
    warnings,
    groups,
    annotations,
    masked,
    info: (m) => void lines.push(m),
    warning: (m) => void warnings.push(m),
    group: (name, fn) => {
      groups.push(name)
      return fn()
    },
    annotate: (level, message, where) => void annotations.push({ level, message, ...where }),
    mask: (secret) => void masked.push(secret),
  }
}

/** A mode's options as the runner would build them from these inputs. */
export function configFor<M extends string>(
  mode: M,
  inputs: Partial<Record<`${Inputs}`, string>>,
  dir: string,
): M extends Mode ? Extract<Config, { mode: M }> : Config {
  // The runner's context is read once, from this process's environment (as the action does),
  // with RUNNER_TEMP pointed at the test's folder.
  return parseConfig((name) => (name === Inputs.Mode ? mode : (inputs[name] ?? '')), {
    ...process.env,
    RUNNER_TEMP: dir,
  }) as M extends Mode ? Extract<Config, { mode: M }> : Config
}

export async function run(
  mode: string,
  inputs: Partial<Record<`${Inputs}`, string>>,
  dir: string,
  now?: () => Date,
) {
  const log = memoryLog()
  const config = configFor(mode, inputs, dir)
  const report = await runMode(config, log, now)
  return { report, log, config }
}

/** Runs SQL against a database file (to alter a backup or a live database in a test). */
export async function sql(file: string, statement: string, ...params: SqlValue[]): Promise<void> {
  const db = await openSqlite(file, { readonly: false })
  try {
    if (params.length) db.run(statement, ...params)
    else db.exec(statement)
  } finally {
    db.close()
  }
}

export async function query(file: string, statement: string, ...params: SqlValue[]) {
  const db = await openSqlite(file, { readonly: true })
  try {
    return db.objects(statement, ...params)
  } finally {
    db.close()
  }
}

export const execFileAsync = promisify(execFile)

/** Runs the committed bundle's CLI; never throws, returns the exit code and output. */
export async function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [DIST, ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** The failed checks of a report, name to detail: `{}` when every check passed. */
export const failed = (report: { checks: { name: string; ok: boolean; detail: string }[] }) =>
  Object.fromEntries(report.checks.filter((c) => !c.ok).map((c) => [c.name, c.detail]))

/**
 * Starts a live writer (a fixture script that prints a line once its first transactions have
 * committed, then keeps committing until killed) and waits for that line.
 */
export async function startWriter(script: string, args: string[]): Promise<ChildProcess> {
  const writer = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    await new Promise<void>((resolve, reject) => {
      writer.stdout!.once('data', () => resolve())
      writer.once('exit', (code) => reject(new Error(`writer exited ${code}`)))
    })
  } catch (err) {
    writer.kill('SIGKILL')
    throw err
  }
  return writer
}
