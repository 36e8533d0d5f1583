/**
 * Finding pg_dump and pg_restore: every candidate costs a process (Debian's /usr/bin/pg_dump is
 * a Perl wrapper that takes a tenth of a second), so the search stops at the first tool of the
 * server's major and runs each file once, however many PATH entries lead to it.
 */
import * as fs from 'node:fs/promises'
import { userInfo } from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { findTool } from '../src/engines/postgres/tools.js'
import { tempDir } from './helpers.js'
import { accountExists, postgresAccountMissing } from './pg-cluster.js'

/** A stand-in pg_dump of `major` that leaves a line in `log` each time it runs. */
async function fakeTool(dir: string, major: number, log: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true })
  const file = path.join(dir, 'pg_dump')
  await fs.writeFile(
    file,
    `#!/bin/sh\necho "${dir}" >> "${log}"\necho "pg_dump (PostgreSQL) ${major}.1"\n`,
  )
  await fs.chmod(file, 0o755)
}

describe.skipIf(process.platform === 'win32')('findTool', () => {
  const path0 = process.env.PATH
  afterEach(() => {
    process.env.PATH = path0
  })

  it('stops at the first pg_dump of the preferred major; runs a file reached twice once', async () => {
    const dir = await tempDir()
    const log = path.join(dir, 'ran.log')
    const preferred = path.join(dir, 'bin-90')
    const later = path.join(dir, 'bin-91')
    const alias = path.join(dir, 'alias')
    await fakeTool(preferred, 90, log)
    await fakeTool(later, 91, log)
    await fs.symlink(later, alias)
    // No real PostgreSQL has a major of 90 or 91, so only the stand-ins can be chosen.
    process.env.PATH = [later, alias, path0].join(path.delimiter)

    const tool = await findTool('pg_dump', 90, 90, preferred, 'the test')
    expect(tool).toMatchObject({ path: path.join(preferred, 'pg_dump'), major: 90 })
    expect((await fs.readFile(log, 'utf8')).trim().split('\n')).toEqual([preferred])

    // Positive control: with no tool of the preferred major, every candidate is asked, the
    // folder reached through a symlink only once, and the oldest new enough is chosen.
    await fs.rm(log)
    const other = await findTool('pg_dump', 91, 92, preferred, 'the test')
    expect(other).toMatchObject({ path: path.join(later, 'pg_dump'), major: 91 })
    expect((await fs.readFile(log, 'utf8')).trim().split('\n')).toEqual([preferred, later])
  })
})

describe('the postgres account the test servers run as (as root)', () => {
  it('is looked up by name: this machine has postgres, and no account has a made-up name', async () => {
    expect(await accountExists('omniai-no-such-account')).toBe(false)
    expect(
      await accountExists(process.getuid?.() === 0 ? 'root' : String(userInfo().username)),
    ).toBe(true)
    // Where the account exists (or this is not root), nothing is reported missing.
    if (await accountExists('postgres')) expect(await postgresAccountMissing()).toBeNull()
  })
})
