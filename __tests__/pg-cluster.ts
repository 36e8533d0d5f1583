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

const run = promisify(execFile)

export const PG_PASSWORD = 'pw-S3cret;with@odd/chars'

export interface Cluster {
  /** Superuser URL with the password, to the `postgres` database. */
  url: string
  port: number
  binDir: string
  version: string
  stop(): Promise<void>
}

/** The newest installed PostgreSQL server, or PG_BIN. */
export async function defaultBinDir(): Promise<string | null> {
  if (process.env.PG_BIN) return process.env.PG_BIN
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

export async function startCluster(binDir: string): Promise<Cluster> {
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
  const port = await freePort()
  await asServer('pg_ctl', [
    '-D',
    data,
    '-l',
    path.join(dir, 'log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=40`,
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
