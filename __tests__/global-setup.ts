/**
 * Starts the PostgreSQL servers the tests use, once for the whole run: a source server and a
 * separate restore server (a drill must never restore into the source). DATABASE_URL and
 * RESTORE_DATABASE_URL, when set, point at servers to use instead.
 */
import type { TestProject } from 'vitest/node'
import {
  clientMajor,
  defaultBinDir,
  postgresAccountMissing,
  startCluster,
  type Cluster,
} from './pg-cluster.js'
import { s3ForRun, stopS3Server, type S3Server } from './s3-server.js'
import { HAS_AGE_CLI, HAS_GPG, reportMissing, type Missing } from './tools.js'

declare module 'vitest' {
  export interface ProvidedContext {
    pgSource: string
    pgRestore: string
    /** The S3 server (Ceph RGW), when an S3 test file runs and Ceph is installed. */
    s3Server: S3Server | null
  }
}

const started: Cluster[] = []
let s3: S3Server | null = null

export async function setup(project: TestProject) {
  let source = process.env.DATABASE_URL ?? ''
  let restore = process.env.RESTORE_DATABASE_URL ?? ''
  const missing: Missing[] = []
  const s3Starting = s3ForRun(project)
  s3Starting.catch(() => undefined) // awaited below; not unhandled while PostgreSQL starts
  if (!source || !restore) {
    // The server: the system's, else the npm package's (a devDependency). The client tools
    // (pg_dump, pg_restore) come only from the operating system.
    const [binDir, client, account] = await Promise.all([
      defaultBinDir(),
      clientMajor(),
      postgresAccountMissing(),
    ])
    if (binDir && client && account) {
      missing.push(account)
      source = restore = ''
    } else if (!binDir || !client) {
      missing.push({
        what: client
          ? 'a PostgreSQL server (none in /usr/lib/postgresql, and the npm one is for linux-x64 only)'
          : 'the PostgreSQL client tools (pg_dump, pg_restore)',
        tests: 'the PostgreSQL tests',
        install:
          'sudo apt-get install postgresql-client (or set DATABASE_URL and RESTORE_DATABASE_URL)',
      })
      source = restore = ''
    } else {
      const [a, b] = await Promise.all([startCluster(binDir), startCluster(binDir)])
      started.push(a!, b!)
      source ||= a!.url
      restore ||= b!.url
    }
  }
  if (!HAS_GPG) {
    missing.push({
      what: 'gpg',
      tests: 'the gpg encryption tests',
      install: 'sudo apt-get install gnupg',
    })
  }
  if (!HAS_AGE_CLI) {
    missing.push({
      what: 'the age CLI',
      tests:
        'the interop tests against the age CLI (those against the age-encryption npm package still run)',
      install: 'sudo apt-get install age',
    })
  }
  try {
    const s3Run = await s3Starting
    s3 = s3Run.server
    if (s3Run.missing) missing.push(s3Run.missing)
    reportMissing(missing)
  } catch (err) {
    await teardown()
    throw err
  }
  project.provide('pgSource', source)
  project.provide('pgRestore', restore)
  project.provide('s3Server', s3)
}

export async function teardown() {
  await Promise.all([...started.map((c) => c.stop()), ...(s3 ? [stopS3Server(s3)] : [])])
}
