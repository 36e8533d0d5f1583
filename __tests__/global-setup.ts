/**
 * Starts the PostgreSQL servers the tests use, once for the whole run: a source server and a
 * separate restore server (a drill must never restore into the source). DATABASE_URL and
 * RESTORE_DATABASE_URL, when set, point at servers to use instead.
 */
import type { TestProject } from 'vitest/node'
import { defaultBinDir, startCluster, type Cluster } from './pg-cluster.js'

declare module 'vitest' {
  export interface ProvidedContext {
    pgSource: string
    pgRestore: string
  }
}

const started: Cluster[] = []

export async function setup(project: TestProject) {
  let source = process.env.DATABASE_URL ?? ''
  let restore = process.env.RESTORE_DATABASE_URL ?? ''
  if (!source || !restore) {
    const binDir = await defaultBinDir()
    if (!binDir) {
      throw new Error(
        'PostgreSQL server binaries not found (looked in PG_BIN and /usr/lib/postgresql/*/bin). Install postgresql, or set DATABASE_URL and RESTORE_DATABASE_URL.',
      )
    }
    const [a, b] = await Promise.all([startCluster(binDir), startCluster(binDir)])
    started.push(a!, b!)
    source ||= a!.url
    restore ||= b!.url
  }
  project.provide('pgSource', source)
  project.provide('pgRestore', restore)
}

export async function teardown() {
  await Promise.all(started.map((c) => c.stop()))
}
