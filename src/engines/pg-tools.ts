/**
 * PostgreSQL connection strings and client tools (pg_dump, pg_restore). Passwords never reach an
 * argument list (visible in `ps`) or a message: the tools get the URL without its password and
 * the password through PGPASSWORD in their environment.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { UserError } from '../errors.js'

export interface PgTarget {
  /** For the `pg` client: the whole URL, password included. */
  url: string
  /** For messages, reports and manifests: the URL with the password replaced by `***`. */
  redacted: string
  /** For pg_dump and pg_restore `--dbname`: the URL without its password. */
  dbnameArg: string
  /** Environment for the tools: PGPASSWORD when the URL has a password. */
  env: Record<string, string>
  host: string
  port: string
  database: string
}

/** Parses a postgres:// URL; a bad one is a one-line error naming `input`, never echoing it. */
export function parsePgUrl(text: string, input: string): PgTarget {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UserError(
      `${input}: not a valid URL. Fix: postgres://USER:PASSWORD@HOST:5432/DATABASE (percent-encode special characters in the password).`,
    )
  }
  if (!/^postgres(ql)?:$/.test(url.protocol)) {
    throw new UserError(
      `${input}: must be a postgres:// or postgresql:// URL. Fix: postgres://USER:PASSWORD@HOST:5432/DATABASE.`,
    )
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''))
  if (!database) {
    throw new UserError(
      `${input}: the URL names no database. Fix: end it with /DATABASE, e.g. postgres://USER@HOST:5432/omniai.`,
    )
  }
  const password = decodeURIComponent(url.password)
  const bare = new URL(url.href)
  bare.password = ''
  const redacted = new URL(url.href)
  if (password) redacted.password = '***'
  return {
    url: url.href,
    redacted: redacted.href,
    dbnameArg: bare.href,
    env: password ? { PGPASSWORD: password } : {},
    host: url.hostname || 'localhost',
    port: url.port || '5432',
    database,
  }
}

/** The same server, another database. */
export function withDatabase(target: PgTarget, database: string): PgTarget {
  const u = new URL(target.url)
  u.pathname = `/${encodeURIComponent(database)}`
  return parsePgUrl(u.href, 'restore-connection-string')
}

export interface PgTool {
  path: string
  major: number
  version: string
}

/** Folders where PostgreSQL client tools live on GitHub's runners and common installs, newest first. */
async function candidateDirs(binDir: string | null): Promise<string[]> {
  const dirs: string[] = []
  if (binDir) dirs.push(binDir)
  const versioned = async (parent: string, pattern: RegExp, sub: string) => {
    try {
      const names = (await fs.readdir(parent)).filter((n) => pattern.test(n))
      names.sort((a, b) => Number(b.replace(/\D/g, '')) - Number(a.replace(/\D/g, '')))
      return names.map((n) => path.join(parent, n, sub))
    } catch {
      return []
    }
  }
  dirs.push(...(await versioned('/usr/lib/postgresql', /^\d+$/, 'bin')))
  dirs.push(...(await versioned('/opt/homebrew/opt', /^(postgresql|libpq)(@\d+)?$/, 'bin')))
  dirs.push(...(await versioned('/usr/local/opt', /^(postgresql|libpq)(@\d+)?$/, 'bin')))
  dirs.push(...(await versioned('C:\\Program Files\\PostgreSQL', /^\d+$/, 'bin')))
  dirs.push(...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean))
  return dirs
}

async function toolVersion(file: string): Promise<PgTool | null> {
  try {
    const { stdout } = await runTool(file, ['--version'], {})
    const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout)
    return m ? { path: file, major: Number(m[1]), version: stdout.trim() } : null
  } catch {
    return null
  }
}

const exe = (name: string) => (process.platform === 'win32' ? `${name}.exe` : name)

/**
 * Finds `name` (pg_dump or pg_restore) of at least `minMajor`, preferring exactly `preferMajor`
 * (the server's), else the oldest that is new enough. Fails before any work with both versions
 * and the fix.
 */
export async function findTool(
  name: 'pg_dump' | 'pg_restore',
  minMajor: number,
  preferMajor: number,
  binDir: string | null,
  why: string,
): Promise<PgTool> {
  const seen = new Map<string, PgTool>()
  for (const dir of await candidateDirs(binDir)) {
    const file = path.join(dir, exe(name))
    if (seen.has(file)) continue
    const tool = await toolVersion(file)
    if (tool) seen.set(file, tool)
  }
  const tools = [...seen.values()]
  const fit = tools.filter((t) => t.major >= minMajor).sort((a, b) => a.major - b.major)
  const chosen = fit.find((t) => t.major === preferMajor) ?? fit[0]
  if (chosen) return chosen
  const found = tools.length
    ? `found only ${tools.map((t) => `${name} ${t.major} (${t.path})`).join(', ')}`
    : `found no ${name}`
  throw new UserError(
    `pg-bin-dir: ${why} needs ${name} ${minMajor} or newer; ${found}. Fix on an Ubuntu runner: sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y postgresql-client-${minMajor}; or set pg-bin-dir to a folder holding ${name} ${minMajor} or newer.`,
  )
}

/**
 * PostgreSQL quotes row values in some messages (a duplicate key's value, the COPY line that
 * failed); reports and logs carry no row contents, so those lines are dropped.
 */
export function withoutRowValues(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => !/^\s*(DETAIL:\s+(Key|Failing row)|CONTEXT:\s+COPY)/.test(line))
    .join('\n')
}

/** A client tool failed; its message is one line ending with the tool's own last words. */
export class ToolError extends UserError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    const last = withoutRowValues(stderr).trim().split('\n').slice(-3).join(' | ')
    super(`${command} failed (exit ${exitCode ?? 'signal'}): ${last || 'no error output'}`)
    this.name = 'ToolError'
  }
}

/** Runs a tool without a shell; resolves with its output, rejects with a ToolError. */
export function runTool(
  file: string,
  args: string[],
  env: Record<string, string>,
  onStderrLine?: (line: string) => void,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      if (onStderrLine) for (const line of d.split('\n').filter(Boolean)) onStderrLine(line)
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr })
      else reject(new ToolError(path.basename(file), code, stderr))
    })
  })
}
