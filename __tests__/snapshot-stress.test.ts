// The SQLite snapshot is a kernel copy of the main file and its WAL under a read lock (see
// copyUnderReadLock in src/engines/sqlite/engine.ts). Its proof of consistency rests on what
// checkpoints and WAL restarts may do while the lock is held; this runs backups against a
// writer that makes them happen all the time, and checks that each backup is one committed state.
// The windows where a checkpoint and a copy overlap are short (a few of each run's RESTART and
// TRUNCATE checkpoints find the backup's reader in the way): it is a soak, not a proof. A
// snapshot that leaves the WAL out failed it in each of 4 runs: in 3 the counter stopped moving
// between backups (none is later than the last checkpoint), in 1 a checkpoint wrote into the
// main file while it was copied and the backup was torn ("database disk image is malformed").

import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { demoWorkspace, execFileAsync, query, run, startWriter } from './helpers.js'

const WRITER = path.join(import.meta.dirname, 'fixtures', 'checkpointing-writer.mjs')
const ACCOUNTS = 30000n

/** What is wrong with `file` as a committed state of the writer's tables; '' if nothing. */
async function inconsistency(file: string): Promise<string> {
  const integrity = Object.values((await query(file, 'PRAGMA integrity_check'))[0]!)[0]
  const [{ total, transfers, counted }] = (await query(
    file,
    'SELECT (SELECT sum(balance) FROM accounts) AS total, (SELECT count(*) FROM transfers) AS transfers, (SELECT n FROM counter) AS counted',
  )) as [{ total: bigint; transfers: bigint; counted: bigint }]
  const problems = []
  if (integrity !== 'ok') problems.push(`integrity_check: ${String(integrity)}`)
  if (total !== ACCOUNTS * 1000n) problems.push(`balances sum to ${total}`)
  if (transfers !== counted) problems.push(`${transfers} transfers, counter ${counted}`)
  return problems.join('; ')
}

describe('the SQLite snapshot under checkpoints and WAL restarts', () => {
  it('every backup taken while the writer commits and checkpoints (PASSIVE, RESTART, TRUNCATE) is one committed state', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 50, auditRows: 100 })
    await execFileAsync(process.execPath, [WRITER, db, 'setup'])
    const writer = await startWriter(WRITER, [db])
    let out = ''
    writer.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    const ways = new Map<string, number>()
    const committed: bigint[] = []
    try {
      for (let i = 0; i < 10; i++) {
        const { report, log } = await run(
          'backup',
          { 'connection-string': db, 'backup-dir': backups },
          dir,
        )
        expect(report.error).toBeUndefined()
        expect(report.ok).toBe(true)
        const way = log.lines
          .filter((l) => l.startsWith('snapshot: '))
          .map((l) => l.replace(/ \(\d+ bytes\)| \(\d+ ms\)/g, ''))
          .join(' / ')
        ways.set(way, (ways.get(way) ?? 0) + 1)
        expect(await inconsistency(report.backup!.path), `backup ${i + 1} (${way})`).toBe('')
        const [{ n }] = (await query(report.backup!.path, 'SELECT n FROM counter')) as [
          { n: bigint },
        ]
        committed.push(n)
      }
    } finally {
      writer.kill('SIGTERM')
      await new Promise((resolve) => writer.once('exit', resolve))
    }
    const checkpoints = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>
    console.log('snapshot ways:', Object.fromEntries(ways), 'checkpoints:', checkpoints)
    // The writer committed between backups (each backup is a later state than the one before),
    // and the WAL was restarted and truncated along the way, not only checkpointed.
    expect(
      committed.every((n, i) => i === 0 || n > committed[i - 1]!),
      `${committed}`,
    ).toBe(true)
    expect(checkpoints.RESTART! + checkpoints.TRUNCATE!).toBeGreaterThan(0)
    expect([...ways.keys()].some((w) => /file copy and its WAL/.test(w))).toBe(true)
  })

  it('positive control: half a transfer in a copy of a backup is found', async () => {
    const { dir, db } = await demoWorkspace({ conversations: 5, auditRows: 10 })
    await execFileAsync(process.execPath, [WRITER, db, 'setup'])
    expect(await inconsistency(db)).toBe('')
    const copy = path.join(dir, 'half.db')
    await fs.copyFile(db, copy)
    const { default: Database } = await import('better-sqlite3')
    const half = new Database(copy)
    half.prepare('UPDATE accounts SET balance = balance - 7 WHERE id = 1').run()
    half.close()
    expect(await inconsistency(copy)).toBe('balances sum to 29999993')
  })
})
