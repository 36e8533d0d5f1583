/**
 * The action's post step (action.yml `runs.post`, `post-if: always()`): the runner calls
 * dist/index.js again at the end of the job, with STATE_isPost set (src/entry.ts). A step that
 * ended, failed or was interrupted by SIGINT/SIGTERM has already removed its scratch folders and
 * databases (src/util/cleanup.ts); one killed outright (SIGKILL, a runner that lost the process)
 * cannot, and this removes what it left: scratch folders under scratch-dir, which may hold a
 * decrypted backup or a restored copy, and scratch databases on restore-connection-string.
 */
import { readRunnerContext } from '../options/context.js'
import { SCRATCH_PURPOSES } from '../util/scratch.js'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import * as core from '@actions/core'
import pg from 'pg'
import { Inputs } from '../options/inputs.js'
import { openPgClient } from '../engines/postgres/ssl.js'
import { parsePgUrl } from '../engines/postgres/tools.js'
import { quoteIdent } from '../engines/related.js'
import { describeError } from '../util/errors.js'
import type { Log } from '../util/log.js'
import { maskSecrets } from './main.js'

/**
 * The folders the modes make (util/scratch.ts, mkdtemp) (its six random characters at the end). Only these:
 * scratch-dir may be a folder that holds other things named omniai-something.
 */
export const SCRATCH_FOLDER = new RegExp(`^omniai-(${SCRATCH_PURPOSES.join('|')})-[A-Za-z0-9]{6}$`)

/** Scratch databases as the PostgreSQL engine names them (src/engines/postgres/engine.ts). */
export const SCRATCH_DATABASE = '^omniai_drill_[0-9]{14}_[a-z0-9]+$'

export interface Leftovers {
  /** Folders and databases removed. */
  removed: string[]
  /** Scratch databases another session still uses (a drill elsewhere on a shared server): kept. */
  inUse: string[]
  /** What could not be removed, and why. */
  failed: string[]
}

/** Removes the scratch folders and scratch databases a killed step left behind. */
export async function removeLeftovers(
  scratchDir: string,
  restoreConnectionString: string | null,
): Promise<Leftovers> {
  const found: Leftovers = { removed: [], inUse: [], failed: [] }
  const names = await fs.readdir(scratchDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return []
    throw err
  })
  for (const name of names.filter((n) => SCRATCH_FOLDER.test(n))) {
    const folder = path.join(scratchDir, name)
    try {
      // lstat: a symlink with a scratch folder's name was not made here, and is not followed.
      if (!(await fs.lstat(folder)).isDirectory()) continue
      await fs.rm(folder, { recursive: true, force: true })
      found.removed.push(folder)
    } catch (err) {
      found.failed.push(`${folder} (${describeError(err)})`)
    }
  }
  if (restoreConnectionString) await dropScratchDatabases(restoreConnectionString, found)
  return found
}

async function dropScratchDatabases(url: string, found: Leftovers): Promise<void> {
  const admin = parsePgUrl(url, Inputs.RestoreConnectionString)
  let client: pg.Client
  try {
    client = await openPgClient(admin, Inputs.RestoreConnectionString, {
      connectionTimeoutMillis: 15_000,
      application_name: 'omniai-backups-post',
    })
  } catch (err) {
    found.failed.push(
      `scratch databases on ${admin.host}:${admin.port} (cannot connect: ${describeError(err)})`,
    )
    return
  }
  try {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname ~ $1 ORDER BY datname',
      [SCRATCH_DATABASE],
    )
    for (const { datname } of rows) {
      const where = `database ${datname} on ${admin.host}:${admin.port}`
      try {
        // Without FORCE: a scratch database someone is connected to belongs to a drill still
        // running (another job on a shared server), not to a killed step.
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)}`)
        found.removed.push(where)
      } catch (err) {
        if ((err as { code?: string }).code === '55006') found.inUse.push(where)
        else found.failed.push(`${where} (${describeError(err)})`)
      }
    }
    // A drill restores as a role named as its scratch database (pg-roles.ts); once that
    // database is gone, so is the role. One whose database is still in use stays with it.
    const { rows: roles } = await client.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles WHERE rolname ~ $1
         AND rolname NOT IN (SELECT datname FROM pg_database) ORDER BY rolname`,
      [SCRATCH_DATABASE],
    )
    for (const { rolname } of roles) {
      const where = `role ${rolname} on ${admin.host}:${admin.port}`
      try {
        await client.query(`DROP ROLE IF EXISTS ${quoteIdent(rolname)}`)
        found.removed.push(where)
      } catch (err) {
        found.failed.push(`${where} (${describeError(err)})`)
      }
    }
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * The post step: one line per thing removed. Plaintext left on the runner fails the job (it
 * must not look clean); a scratch database still in use by another session only warns.
 */
export async function post(read: (input: Inputs) => string, log: Log): Promise<boolean> {
  const scratchDir = read(Inputs.ScratchDir) || readRunnerContext().temp
  const found = await removeLeftovers(scratchDir, read(Inputs.RestoreConnectionString) || null)
  for (const what of found.removed) log.info(`removed ${what}, left by an interrupted step`)
  for (const what of found.inUse) {
    log.warning(`${what} is a scratch database in use by another session: left in place.`)
  }
  if (!found.removed.length && !found.inUse.length && !found.failed.length) {
    log.info(`nothing left behind in ${scratchDir}`)
  }
  if (found.failed.length) {
    log.warning(
      `could not remove ${found.failed.join('; ')}. Fix: delete it by hand; it may hold a decrypted backup or a restored copy.`,
    )
    return false
  }
  return true
}

/** The post step as the runner runs it: inputs from INPUT_*, the job failed on leftovers it could not remove. */
export async function runPost(log: Log): Promise<void> {
  const read = (input: Inputs) => core.getInput(input)
  maskSecrets(read(Inputs.RestoreConnectionString))
  try {
    if (!(await post(read, log))) core.setFailed('post: scratch data was left on the runner')
  } catch (err) {
    core.setFailed(`post: ${describeError(err)}`)
  }
}
