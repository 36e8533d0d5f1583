/**
 * The CLI compiled from src (tsc into a temporary folder, never dist/), run as a separate
 * process: for what only a process of its own shows (its umask, signals, the post step).
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileAsync, ROOT } from './helpers.js'

/** Compiles src into `dir`/lib, beside the repository's node_modules; returns lib/index.js. */
export async function buildCli(dir: string): Promise<string> {
  const out = path.join(dir, 'lib')
  // tsc emits even when a file elsewhere in the tree has a type error; the CLI is what counts.
  await execFileAsync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      path.join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      out,
    ],
    { cwd: ROOT },
  ).catch(() => undefined)
  await fs.access(path.join(out, 'index.js'))
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n')
  return path.join(out, 'index.js')
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Starts `node <cli> <args>` with only PATH, HOME and `env`; `prefix` runs it through another
 * command first (`sh -c 'umask 000; exec "$@"' sh`, setpriv).
 */
export function startCli(
  cli: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  prefix: string[] = [],
) {
  const [command, ...rest] = [...prefix, process.execPath, cli, ...args]
  const child = spawn(command!, rest, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  )
  return { child, exited }
}
