/**
 * PostgreSQL connection strings and client tools (pg_dump, pg_restore). Passwords never reach an
 * argument list (visible in `ps` to every local user) or a message: every way libpq takes one
 * (`user:password@`, `?password=`, `?sslpassword=`, PGPASSWORD) is found here, and the tools get
 * the URL without them, the password through PGPASSWORD and sslpassword through a 0600 service
 * file (toolConnection).
 */
import { Inputs } from '../../options/inputs.js'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { UserError } from '../../util/errors.js'
import { childEnv } from '../../util/secrets.js'
import { sslSettings, type PgSsl } from './ssl.js'

export interface PgTarget {
  /** For the `pg` client and the gate's DATABASE_URL: the whole URL, the password in it. */
  url: string
  /** For messages, reports and manifests: user, host, port and database, a password as `***`, no query. */
  redacted: string
  /** For pg_dump and pg_restore `--dbname` (through toolConnection): the URL without any secret. */
  dbnameArg: string
  /** Environment for the tools: PGPASSWORD when there is a password. */
  env: Record<string, string>
  /** `?sslpassword=`: libpq reads it from no environment variable, so a service file carries it. */
  sslPassword: string | null
  /** sslmode and its files, from the query and libpq's environment variables, as libpq reads them. */
  ssl: PgSsl
  /** Every secret, as written and decoded, for masking. */
  secrets: string[]
  host: string
  port: string
  database: string
}

/** Query parameters that hold a secret: libpq's password and the client key's passphrase. */
const SECRET_PARAMS = new Set(['password', 'sslpassword'])

/** A query's `key=value` pairs, raw and decoded the way libpq decodes them (no `+` for space). */
function queryPairs(search: string, input: string) {
  return search
    .replace(/^\?/, '')
    .split('&')
    .filter(Boolean)
    .map((raw) => {
      const eq = raw.indexOf('=')
      const key = eq < 0 ? raw : raw.slice(0, eq)
      const value = eq < 0 ? '' : raw.slice(eq + 1)
      try {
        return {
          raw,
          rawValue: value,
          key: decodeURIComponent(key),
          value: decodeURIComponent(value),
        }
      } catch {
        throw new UserError(
          `${input}: a query parameter of the URL is not percent-encoded correctly. Fix: write a % in a value as %25.`,
        )
      }
    })
}

/**
 * Parses a postgres:// URL; a bad one is a one-line error naming `input`, never echoing it.
 * A URL without a password takes PGPASSWORD from `env`, as libpq would; sslmode and its files
 * come from the query, else libpq's PGSSL* variables in `env`.
 */
export function parsePgUrl(text: string, input: string, env = process.env): PgTarget {
  const { target, pairs } = parseUrl(text, input, env)
  const query = pairs.map((p): [string, string] => [p.key, p.value])
  return { ...target, ssl: sslSettings(query, env, input) }
}

/** parsePgUrl without the TLS settings: masking and redacting need no valid sslmode. */
function parseUrl(text: string, input: string, env: NodeJS.ProcessEnv) {
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
  const pairs = queryPairs(url.search, input)
  const secrets = [url.password, decodeURIComponent(url.password)]
  let password = decodeURIComponent(url.password)
  let sslPassword: string | null = null
  for (const p of pairs) {
    if (!SECRET_PARAMS.has(p.key)) continue
    secrets.push(p.rawValue, p.value)
    // libpq reads the query after the user info: the last word wins.
    if (p.key === 'password') password = p.value
    else sslPassword = p.value
  }
  if (!password && env.PGPASSWORD) {
    password = env.PGPASSWORD
    secrets.push(password)
  }
  if (sslPassword !== null && (/[\r\n]/.test(sslPassword) || sslPassword !== sslPassword.trim())) {
    throw new UserError(
      `${input}: sslpassword starts or ends with a space or holds a line break, which pg_dump cannot be given without showing it on its command line. Fix: choose a passphrase for the client key without them.`,
    )
  }
  const keep = pairs.filter((p) => p.key !== 'password').map((p) => p.raw)
  const noSecrets = pairs.filter((p) => !SECRET_PARAMS.has(p.key)).map((p) => p.raw)
  const withQuery = (u: URL, raw: string[]) => {
    u.search = raw.length ? `?${raw.join('&')}` : ''
    return u.href
  }
  // One place for the password, the user info, which the pg client and libpq both read.
  const full = new URL(url.href)
  full.password = password ? encodeURIComponent(password) : ''
  const bare = new URL(url.href)
  bare.password = ''
  const redacted = new URL(url.href)
  redacted.password = password ? '***' : ''
  redacted.search = ''
  const target: Omit<PgTarget, 'ssl'> = {
    url: withQuery(full, keep),
    redacted: redacted.href,
    dbnameArg: withQuery(bare, noSecrets),
    env: password ? { PGPASSWORD: password } : {},
    sslPassword,
    secrets: [...new Set(secrets.filter(Boolean))],
    host: url.hostname || 'localhost',
    port: url.port || '5432',
    database,
  }
  return { target, pairs }
}

/** The secrets in a connection string (none for a SQLite path), for masking. */
export function pgSecrets(text: string, env = process.env): string[] {
  if (!/^postgres(ql)?:\/\//i.test(text)) return []
  try {
    return parseUrl(text, Inputs.ConnectionString, env).target.secrets
  } catch {
    // Not a URL after all: parsing the inputs names the problem; anything after `:` may be secret.
    return text.includes('@') ? [text] : []
  }
}

/** A connection URL as messages and logs may show it: no password, no query. */
export function redactPgUrl(text: string): string {
  try {
    return parseUrl(text, Inputs.ConnectionString, {}).target.redacted
  } catch {
    return '(a connection string)'
  }
}

/** The name of the service the 0600 service file describes. */
const SERVICE = 'omniai_backups'

/**
 * Runs `use` with the `--dbname` value and environment a pg tool connects with: the password in
 * PGPASSWORD, sslpassword (no libpq environment variable carries it) in a 0600 service file
 * named by PGSERVICEFILE and deleted afterwards. Never a secret on argv.
 */
export async function toolConnection<T>(
  target: PgTarget,
  use: (dbname: string, env: Record<string, string>) => Promise<T>,
): Promise<T> {
  if (target.sslPassword === null) return use(target.dbnameArg, target.env)
  const dbname = new URL(target.dbnameArg)
  if (dbname.searchParams.has('service')) {
    throw new UserError(
      `${Inputs.ConnectionString}: service= and sslpassword= together cannot reach pg_dump without showing the passphrase. Fix: put sslpassword in that service's entry of your pg_service.conf and remove it from the URL.`,
    )
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-pgservice-'))
  try {
    const file = path.join(dir, 'pg_service.conf')
    await fs.writeFile(file, `[${SERVICE}]\nsslpassword=${target.sslPassword}\n`, {
      mode: 0o600,
      flag: 'wx',
    })
    dbname.search = `${dbname.search ? `${dbname.search}&` : '?'}service=${SERVICE}`
    return await use(dbname.href, { ...target.env, PGSERVICEFILE: file })
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

/** The same server, another database. */
export function withDatabase(target: PgTarget, database: string): PgTarget {
  const u = new URL(target.url)
  u.pathname = `/${encodeURIComponent(database)}`
  return parsePgUrl(u.href, Inputs.RestoreConnectionString)
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
  const tools: PgTool[] = []
  const seen = new Set<string>()
  for (const dir of await candidateDirs(binDir)) {
    const file = path.join(dir, exe(name))
    // Only files that exist, once each (/bin is often /usr/bin): each try runs the tool, and
    // Debian's /usr/bin/pg_dump is a Perl wrapper that takes a tenth of a second to answer.
    const real = await fs.realpath(file).catch(() => null)
    if (!real || seen.has(real)) continue
    seen.add(real)
    const tool = await toolVersion(file)
    if (!tool) continue
    // The candidates come in order of preference: the first of the preferred major is the one.
    if (tool.major === preferMajor) return tool
    tools.push(tool)
  }
  const fit = tools.filter((t) => t.major >= minMajor).sort((a, b) => a.major - b.major)
  if (fit[0]) return fit[0]
  const found = tools.length
    ? `found only ${tools.map((t) => `${name} ${t.major} (${t.path})`).join(', ')}`
    : `found no ${name}`
  throw new UserError(
    `${Inputs.PgBinDir}: ${why} needs ${name} ${minMajor} or newer; ${found}. Fix on an Ubuntu runner: sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y postgresql-client-${minMajor}; or set pg-bin-dir to a folder holding ${name} ${minMajor} or newer.`,
  )
}

/**
 * PostgreSQL quotes row values in some messages (a duplicate key's value, the COPY line that
 * failed); reports and logs carry no row contents, so those lines are dropped.
 */
export function withoutRowValues(stderr: string): string {
  return (
    stderr
      .split('\n')
      // A COPY context line may also come last in a longer CONTEXT, under a function's lines.
      .filter(
        (line) => !/^\s*(DETAIL:\s+(Key|Failing row)|(CONTEXT:\s+)?COPY .*, line \d+)/.test(line),
      )
      .join('\n')
  )
}

/** A client tool failed; its message is one line ending with the tool's own last words. */
export class ToolError extends UserError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    // pg_restore --jobs: a worker's error comes first, then the leader's line saying that a
    // worker died, which says nothing of why.
    const last = withoutRowValues(stderr)
      .split('\n')
      .filter((line) => !/worker process died unexpectedly/.test(line))
      .join('\n')
      .trim()
      .split('\n')
      .slice(-3)
      .join(' | ')
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
      // The runner's environment without the action's secrets; the target's own come in `env`.
      env: childEnv(env),
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
