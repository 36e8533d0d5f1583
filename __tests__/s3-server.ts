/**
 * A real S3 server for the tests: Ceph's RADOS Gateway on a throwaway single-node cluster (one
 * monitor, one OSD keeping its objects in memory, no authentication inside the cluster), in a
 * temporary folder outside the checkout. No systemd, no Docker: the Debian packages radosgw,
 * ceph-mon and ceph-osd. Ready in about 4 s, about 140 MB of memory (three daemons).
 *
 * The global setup starts one cluster for the run when an S3 test file is selected; a test that
 * needs to kill a gateway mid-upload starts a second gateway on the same cluster (startGateway),
 * so the others keep theirs. Every daemon writes a pid file into the cluster's run folder, and
 * stopS3Server stops them by those, one kind at a time: gateways, then the OSD, then the monitor
 * (stopping all at once can leave one waiting for the others for minutes).
 */
import { execFile, spawn, spawnSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import * as fsSync from 'node:fs'
import * as fs from 'node:fs/promises'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3'
import type { TestProject } from 'vitest/node'
import type { Missing } from './tools.js'

const run = promisify(execFile)

export interface S3Server {
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  /** The cluster's folder: ceph.conf, run/ (pid files), log/. */
  dir: string
}

const DAEMONS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph']

/** What is missing to run the S3 tests, or null when everything is there. */
export function s3Missing(): Missing | null {
  // Lets a test run see what a machine without Ceph sees.
  const absent = DAEMONS.filter(
    (d) =>
      process.env.OMNIAI_TEST_NO_CEPH === '1' ||
      spawnSync('sh', ['-c', `command -v ${d}`], { stdio: 'ignore' }).status !== 0,
  )
  if (!absent.length) return null
  return {
    what: `Ceph's S3 gateway (${absent.join(', ')})`,
    tests: 'the S3 store tests',
    install: 'sudo apt-get install radosgw ceph-mon ceph-osd',
  }
}

/**
 * For the global setup: the server for this run when an S3 test file is among the files it
 * runs (a run of other files does not pay for it), or what is missing to start it.
 */
export async function s3ForRun(
  project: TestProject,
): Promise<{ server: S3Server | null; missing: Missing | null }> {
  let selected = true
  try {
    // The file filters given on the command line (`npm test -- __tests__/x.test.ts`).
    const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern
    const specs = await project.vitest.getRelevantTestSpecifications(filters)
    selected = specs.some((s) => /s3/i.test(path.basename(s.moduleId)))
  } catch {
    // Not knowing which files run, start it: a missed server fails tests, a spare one does not.
  }
  if (!selected) return { server: null, missing: null }
  const missing = s3Missing()
  if (missing) return { server: null, missing }
  try {
    return { server: await startS3Server(), missing: null }
  } catch (err) {
    // Ports are chosen free and bound moments later, while the run's PostgreSQL clusters start
    // too: a port taken meanwhile keeps a daemon from starting. A second cluster on new ports.
    console.warn(`S3 server: ${(err as Error).message}; starting another`)
    return { server: await startS3Server(), missing: null }
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

function config(dir: string, fsid: string, monPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
# No cephx inside the throwaway cluster; S3 requests are still signed and checked by the gateway.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd objectstore = memstore
# A cap, not an allocation: the OSD holds what is stored, in memory.
memstore device bytes = ${8 * 2 ** 30}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.05
# Quotas are checked against fresh bucket stats, so a test can fill a bucket to the byte.
rgw bucket quota ttl = 0
# A gateway killed by a test leaves its watches on the cluster's control objects; every
# metadata change (a bucket created) waits for them until they time out (30 s by default).
osd client watch timeout = 3
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$id
osd data = ${dir}/osd/$id
rgw data = ${dir}/rgw/$id
`
}

/**
 * Runs a Ceph daemon in the foreground, detached from the test process's signals, and records
 * its pid as run/<name>.pid (in the foreground, radosgw and ceph-osd write none themselves).
 */
function daemon(command: string, name: string, args: string[], dir: string): number {
  const child = spawn(command, ['-f', '-c', path.join(dir, 'ceph.conf'), '-n', name, ...args], {
    stdio: 'ignore',
    detached: true,
  })
  child.unref()
  fsSync.writeFileSync(path.join(dir, 'run', `${name}.pid`), String(child.pid))
  return child.pid!
}

async function waitFor(what: string, dir: string, ok: () => Promise<boolean>, ms = 30_000) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await ok().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${what} did not start within ${ms / 1000} s; see ${path.join(dir, 'log')}`)
}

const ceph = (dir: string, ...args: string[]) =>
  run('ceph', ['-c', path.join(dir, 'ceph.conf'), ...args], { timeout: 30_000 })
const admin = (dir: string, ...args: string[]) =>
  run('radosgw-admin', ['-c', path.join(dir, 'ceph.conf'), ...args], { timeout: 30_000 })

export async function startS3Server(): Promise<S3Server> {
  // Not omniai-s3-XXXXXX: that is the action's own scratch folder name, which a post step
  // removes from its scratch-dir.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-test-s3-'))
  try {
    for (const sub of ['run', 'log', 'mon/a', 'osd/0', 'rgw'])
      await fs.mkdir(path.join(dir, sub), { recursive: true })
    const fsid = randomUUID()
    const monPort = await freePort()
    const conf = path.join(dir, 'ceph.conf')
    await fs.writeFile(conf, config(dir, fsid, monPort))
    const monmap = path.join(dir, 'monmap')
    await run('monmaptool', [
      '--create',
      '--addv',
      'a',
      `[v2:127.0.0.1:${monPort}]`,
      '--fsid',
      fsid,
      monmap,
    ])
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap])
    daemon('ceph-mon', 'mon.a', [], dir)
    const osdUuid = randomUUID()
    // `ceph osd new` waits for the monitor to be up, and allocates id 0.
    await ceph(dir, 'osd', 'new', osdUuid)
    await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid])
    daemon('ceph-osd', 'osd.0', [], dir)
    const gateway = await startGateway({ dir } as S3Server, 'rgw')
    const accessKeyId = `TEST${randomBytes(8).toString('hex').toUpperCase()}`
    const secretAccessKey = randomBytes(24).toString('base64url')
    await admin(
      dir,
      'user',
      'create',
      '--uid=omniai-test',
      '--display-name=omniai tests',
      `--access-key=${accessKeyId}`,
      `--secret-key=${secretAccessKey}`,
    )
    const server = {
      endpoint: gateway.endpoint,
      region: 'us-east-1',
      accessKeyId,
      secretAccessKey,
      dir,
    }
    stopAtExit(dir)
    return server
  } catch (err) {
    // The daemons' last words, before their folder goes.
    const logs = await fs.readdir(path.join(dir, 'log')).catch(() => [] as string[])
    for (const log of logs) {
      const text = await fs.readFile(path.join(dir, 'log', log), 'utf8').catch(() => '')
      const tail = text.trimEnd().split('\n').slice(-5).join('\n  ')
      if (tail) (err as Error).message += `\n${log}:\n  ${tail}`
    }
    if (process.env.OMNIAI_KEEP_S3 !== '1') await stopS3Server({ dir } as S3Server)
    throw err
  }
}

export interface Gateway {
  endpoint: string
  pid: number
  /** Stops it (SIGKILL by default: the abrupt end of a server mid-request). */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/**
 * Starts a RADOS Gateway on the cluster at a free port, named client.<name>, and waits until it
 * answers HTTP.
 */
export async function startGateway(server: Pick<S3Server, 'dir'>, name: string): Promise<Gateway> {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  await fs.mkdir(path.join(server.dir, 'rgw', `client.${name}`), { recursive: true })
  const pid = daemon(
    'radosgw',
    `client.${name}`,
    ['--rgw-frontends', `beast endpoint=127.0.0.1:${port}`],
    server.dir,
  )
  await waitFor(`radosgw ${name}`, server.dir, async () => (await fetch(endpoint)).ok)
  return { endpoint, pid, stop: (signal = 'SIGKILL') => stopPid(pid, signal) }
}

async function stopPid(pid: number, signal: NodeJS.Signals): Promise<void> {
  try {
    process.kill(pid, signal)
  } catch {
    return
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0)
    } catch {
      return
    }
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The pids of the daemons of a kind (`client.`, `osd.`, `mon.`) from their pid files. */
function pidsOf(dir: string, kind: string): number[] {
  let names: string[]
  try {
    names = fsSync.readdirSync(path.join(dir, 'run'))
  } catch {
    return []
  }
  return names
    .filter((n) => n.startsWith(kind) && n.endsWith('.pid'))
    .map((n) => Number(fsSync.readFileSync(path.join(dir, 'run', n), 'utf8')))
    .filter((pid) => pid > 0)
}

const ORDER = ['client.', 'osd.', 'mon.']

/**
 * Stops the gateways, then the OSD, then the monitor, each kind gone before the next, and
 * deletes the cluster's folder. SIGKILL: the cluster is thrown away, so there is nothing to
 * flush, and a daemon stopped with SIGTERM waits on the others.
 */
export async function stopS3Server(server: Pick<S3Server, 'dir'>): Promise<void> {
  for (const kind of ORDER) {
    await Promise.all(pidsOf(server.dir, kind).map((pid) => stopPid(pid, 'SIGKILL')))
  }
  await fs.rm(server.dir, { recursive: true, force: true })
}

/** If the test process exits without a teardown, the daemons go with it. */
function stopAtExit(dir: string): void {
  process.once('exit', () => {
    for (const kind of ORDER) {
      for (const pid of pidsOf(dir, kind)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }
  })
}

/** Bucket quota in bytes (0 turns it off): the server then refuses writes past it, mid-upload. */
export async function setBucketQuota(server: S3Server, bucket: string, maxBytes: number) {
  await admin(
    server.dir,
    'quota',
    'set',
    '--quota-scope=bucket',
    `--bucket=${bucket}`,
    `--max-size=${maxBytes}`,
  )
  await admin(
    server.dir,
    'quota',
    maxBytes > 0 ? 'enable' : 'disable',
    '--quota-scope=bucket',
    `--bucket=${bucket}`,
  )
}

/** An SDK client as the tests' own eyes on the server (never the store under test's). */
export function rawClient(server: S3Server, endpoint = server.endpoint): S3Client {
  return new S3Client({
    endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

let buckets = 0

/** A new bucket with a unique name: plain, versioned, or with Object Lock (which versions it). */
export async function createBucket(
  server: S3Server,
  kind: 'plain' | 'versioned' | 'object-lock' = 'plain',
): Promise<string> {
  const name = `t-${process.pid}-${++buckets}-${randomBytes(3).toString('hex')}`
  const client = rawClient(server)
  await client.send(
    new CreateBucketCommand({
      Bucket: name,
      ...(kind === 'object-lock' ? { ObjectLockEnabledForBucket: true } : {}),
    }),
  )
  if (kind === 'versioned') {
    await client.send(
      new PutBucketVersioningCommand({
        Bucket: name,
        VersioningConfiguration: { Status: 'Enabled' },
      }),
    )
  }
  client.destroy()
  return name
}
