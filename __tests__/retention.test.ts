// Retention planning over generated calendars of backups. Every expected set below is written out
// by hand (days, ISO weeks checked against `date +%G-W%V`), never recomputed with the planner's
// own arithmetic.

import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { UserError } from '../src/util/errors.js'
import type { Manifest } from '../src/manifest/manifest.js'
import {
  applyRetention,
  planRetention,
  renderRetention,
  retentionRows,
  type Decision,
  type RetentionPolicy,
} from '../src/store/retention.js'
import type { BackupEntry } from '../src/store/local.js'

const DIR = '/backups'

/** A backup taken at `createdAt`, named after it unless `name` says otherwise. */
function backup(createdAt: string, name?: string, bytes = 1000): BackupEntry {
  const file = path.join(DIR, name ?? `omniai-${createdAt.replace(/[:.]/g, '-')}.db`)
  const manifest = { createdAt, backup: { file: path.basename(file), sha256: 'x', bytes } }
  return { path: file, manifestPath: `${file}.manifest.json`, manifest: manifest as Manifest }
}

/** One backup a day at `time` UTC, from `first` to `last` inclusive (YYYY-MM-DD). */
function nightly(first: string, last: string, time = '02:00:00Z'): BackupEntry[] {
  const out: BackupEntry[] = []
  for (let t = Date.parse(`${first}T${time}`); t <= Date.parse(`${last}T${time}`); t += 86_400_000)
    out.push(backup(new Date(t).toISOString()))
  return out
}

const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({
  keepDaily: 0,
  keepWeekly: 0,
  timeZone: 'UTC',
  ...p,
})

const plan = (entries: BackupEntry[], p: Partial<RetentionPolicy>, protect: string[] = []) =>
  planRetention(entries, policy(p), { protect })

/** createdAt of the kept backups, newest first. */
const kept = (ds: Decision[]) => ds.filter((d) => d.keep).map((d) => d.entry.manifest.createdAt)

/** Kept backups as { createdAt: reasons }. */
const why = (ds: Decision[]) =>
  Object.fromEntries(ds.filter((d) => d.keep).map((d) => [d.entry.manifest.createdAt, d.reasons]))

const at2 = (days: string[]) => days.map((d) => `${d}T02:00:00.000Z`)

describe('planRetention', () => {
  it('keeps 14 daily and 12 weekly of 120 nightly backups', () => {
    // 2026-08-01 .. 2026-11-28 (a Saturday) is 120 days.
    const entries = nightly('2026-08-01', '2026-11-28')
    expect(entries).toHaveLength(120)
    const ds = plan(entries, { keepDaily: 14, keepWeekly: 12 })
    expect(ds).toHaveLength(120)
    expect(kept(ds)).toEqual(
      at2([
        // daily: the last 14 days; the Sundays among them are also the newest of their week
        '2026-11-28',
        '2026-11-27',
        '2026-11-26',
        '2026-11-25',
        '2026-11-24',
        '2026-11-23',
        '2026-11-22',
        '2026-11-21',
        '2026-11-20',
        '2026-11-19',
        '2026-11-18',
        '2026-11-17',
        '2026-11-16',
        '2026-11-15',
        // weekly only: the Sundays of W45 .. W37
        '2026-11-08',
        '2026-11-01',
        '2026-10-25',
        '2026-10-18',
        '2026-10-11',
        '2026-10-04',
        '2026-09-27',
        '2026-09-20',
        '2026-09-13',
      ]),
    )
    const reasons = why(ds)
    expect(reasons['2026-11-28T02:00:00.000Z']).toEqual(['daily 2026-11-28', 'weekly 2026-W48'])
    expect(reasons['2026-11-27T02:00:00.000Z']).toEqual(['daily 2026-11-27'])
    expect(reasons['2026-11-22T02:00:00.000Z']).toEqual(['daily 2026-11-22', 'weekly 2026-W47'])
    expect(reasons['2026-11-15T02:00:00.000Z']).toEqual(['daily 2026-11-15', 'weekly 2026-W46'])
    expect(reasons['2026-11-08T02:00:00.000Z']).toEqual(['weekly 2026-W45'])
    expect(reasons['2026-09-13T02:00:00.000Z']).toEqual(['weekly 2026-W37'])
    for (const d of ds.filter((d) => !d.keep)) expect(d.reasons).toEqual([])
  })

  it('returns the decisions newest first whatever the input order', () => {
    const entries = nightly('2026-11-01', '2026-11-10')
    const shuffled = [...entries.slice(5), ...entries.slice(0, 5).reverse()]
    const ds = plan(shuffled, { keepDaily: 3 })
    expect(ds.map((d) => d.entry.manifest.createdAt)).toEqual(
      entries.map((e) => e.manifest.createdAt).reverse(),
    )
    expect(kept(ds)).toEqual(at2(['2026-11-10', '2026-11-09', '2026-11-08']))
  })

  it('keeps only the newest backup of a day with several', () => {
    const entries = ['2026-11-24', '2026-11-25', '2026-11-26'].flatMap((d) =>
      ['01:00', '19:00', '07:00', '13:00'].map((t) => backup(`${d}T${t}:00.000Z`)),
    )
    const ds = plan(entries.reverse(), { keepDaily: 2 })
    expect(why(ds)).toEqual({
      '2026-11-26T19:00:00.000Z': ['daily 2026-11-26'],
      '2026-11-25T19:00:00.000Z': ['daily 2026-11-25'],
    })
    expect(ds.filter((d) => !d.keep)).toHaveLength(10)
  })

  it('counts only days and weeks that have a backup', () => {
    const entries = [
      '2026-10-01', // Thu, W40
      '2026-10-02', // Fri, W40
      '2026-10-20', // Tue, W43
      '2026-11-05', // Thu, W45
      '2026-11-06', // Fri, W45
      '2026-11-20', // Fri, W47
    ].map((d) => backup(`${d}T12:00:00.000Z`))
    // Not the last 3 calendar days (11-18 .. 11-20), but the last 3 days with a backup.
    expect(why(plan(entries, { keepDaily: 3 }))).toEqual({
      '2026-11-20T12:00:00.000Z': ['daily 2026-11-20'],
      '2026-11-06T12:00:00.000Z': ['daily 2026-11-06'],
      '2026-11-05T12:00:00.000Z': ['daily 2026-11-05'],
    })
    // Weeks W46, W44, W42, W41 have none and are skipped.
    expect(why(plan(entries, { keepWeekly: 3 }))).toEqual({
      '2026-11-20T12:00:00.000Z': ['weekly 2026-W47'],
      '2026-11-06T12:00:00.000Z': ['weekly 2026-W45'],
      '2026-10-20T12:00:00.000Z': ['weekly 2026-W43'],
    })
  })

  it('ORs the rules and lists every reason', () => {
    const entries = nightly('2026-11-01', '2026-11-28')
    const ds = plan(entries, { keepDaily: 2, keepWeekly: 3 }, [
      path.join(DIR, 'omniai-2026-11-28T02-00-00-000Z.db'),
    ])
    expect(why(ds)).toEqual({
      '2026-11-28T02:00:00.000Z': ['daily 2026-11-28', 'weekly 2026-W48', 'newest verified'],
      '2026-11-27T02:00:00.000Z': ['daily 2026-11-27'],
      '2026-11-22T02:00:00.000Z': ['weekly 2026-W47'],
      '2026-11-15T02:00:00.000Z': ['weekly 2026-W46'],
    })
  })

  it('keeps the oldest backup too while a rule has periods to spare (restic 0.17+)', () => {
    const entries = ['2026-11-24', '2026-11-25', '2026-11-26'].flatMap((d) =>
      ['06:00', '18:00'].map((t) => backup(`${d}T${t}:00.000Z`)),
    )
    expect(why(plan(entries, { keepDaily: 7, keepWeekly: 4 }))).toEqual({
      '2026-11-26T18:00:00.000Z': ['daily 2026-11-26', 'weekly 2026-W48'],
      '2026-11-25T18:00:00.000Z': ['daily 2026-11-25'],
      '2026-11-24T18:00:00.000Z': ['daily 2026-11-24'],
      '2026-11-24T06:00:00.000Z': ['oldest daily 2026-11-24', 'oldest weekly 2026-W48'],
    })
    // With exactly 3 daily periods to spend, none is left for the oldest.
    expect(kept(plan(entries, { keepDaily: 3 }))).toEqual([
      '2026-11-26T18:00:00.000Z',
      '2026-11-25T18:00:00.000Z',
      '2026-11-24T18:00:00.000Z',
    ])
  })

  it('places backups on the right day across month and year ends', () => {
    const cases: [string, string, string][] = [
      ['2026-01-31T23:59:59.999Z', 'UTC', 'daily 2026-01-31'],
      ['2026-02-01T00:00:00.000Z', 'UTC', 'daily 2026-02-01'],
      ['2026-02-28T23:00:00.000Z', 'UTC', 'daily 2026-02-28'],
      ['2028-02-29T12:00:00.000Z', 'UTC', 'daily 2028-02-29'],
      ['2026-04-30T20:00:00.000Z', 'Asia/Tokyo', 'daily 2026-05-01'],
      ['2026-03-01T03:00:00.000Z', 'America/Los_Angeles', 'daily 2026-02-28'],
      ['2026-12-31T23:30:00.000Z', 'Asia/Tokyo', 'daily 2027-01-01'],
    ]
    for (const [createdAt, timeZone, reason] of cases) {
      const [d] = plan([backup(createdAt)], { keepDaily: 1, timeZone })
      expect(d?.reasons, `${createdAt} in ${timeZone}`).toEqual([reason])
    }
    // The last backup of February and the first of March are two days, not one.
    const entries = [
      '2026-02-27T12:00:00.000Z',
      '2026-02-28T10:00:00.000Z',
      '2026-02-28T22:00:00.000Z',
      '2026-03-01T01:00:00.000Z',
    ].map((t) => backup(t))
    expect(kept(plan(entries, { keepDaily: 2 }))).toEqual([
      '2026-03-01T01:00:00.000Z',
      '2026-02-28T22:00:00.000Z',
    ])
  })

  it('numbers weeks as ISO 8601 does, week 53 and year ends included', () => {
    const cases: [string, string][] = [
      ['2026-01-01', '2026-W01'], // Thursday: week 1 of its own year
      ['2025-12-29', '2026-W01'], // Dec 29-31 in week 1 of the next year
      ['2024-12-30', '2025-W01'],
      ['2026-06-15', '2026-W25'],
      ['2026-12-28', '2026-W53'], // 2026 has 53 weeks
      ['2027-01-01', '2026-W53'], // Jan 1 in the previous ISO year
      ['2027-01-03', '2026-W53'],
      ['2027-01-04', '2027-W01'],
      ['2020-12-31', '2020-W53'],
      ['2021-01-03', '2020-W53'],
      ['2022-01-01', '2021-W52'],
      ['2015-12-31', '2015-W53'],
    ]
    for (const [day, week] of cases) {
      const [d] = plan([backup(`${day}T12:00:00.000Z`)], { keepWeekly: 1 })
      expect(d?.reasons, day).toEqual([`weekly ${week}`])
    }
  })

  it('treats 2026-12-28 .. 2027-01-03 as one week, 2026-W53', () => {
    const ds = plan(nightly('2026-12-14', '2027-01-10', '12:00:00Z'), { keepWeekly: 4 })
    expect(why(ds)).toEqual({
      '2027-01-10T12:00:00.000Z': ['weekly 2027-W01'],
      '2027-01-03T12:00:00.000Z': ['weekly 2026-W53'],
      '2026-12-27T12:00:00.000Z': ['weekly 2026-W52'],
      '2026-12-20T12:00:00.000Z': ['weekly 2026-W51'],
    })
  })

  it('puts Dec 29-31 in the week of the next ISO year', () => {
    const entries = [
      '2025-12-26', // Fri, 2025-W52
      '2025-12-30', // Tue, 2026-W01
      '2026-01-02', // Fri, 2026-W01
      '2026-01-05', // Mon, 2026-W02
    ].map((d) => backup(`${d}T12:00:00.000Z`))
    expect(why(plan(entries, { keepWeekly: 3 }))).toEqual({
      '2026-01-05T12:00:00.000Z': ['weekly 2026-W02'],
      '2026-01-02T12:00:00.000Z': ['weekly 2026-W01'],
      '2025-12-26T12:00:00.000Z': ['weekly 2025-W52'],
    })
  })

  it('computes days in the policy time zone: Tokyo is a day ahead', () => {
    const entries = [
      '2026-11-25T12:00:00.000Z', // 11-25 21:00 in Tokyo
      '2026-11-26T12:00:00.000Z', // 11-26 21:00 in Tokyo
      '2026-11-26T23:30:00.000Z', // 11-27 08:30 in Tokyo
    ].map((t) => backup(t))
    expect(why(plan(entries, { keepDaily: 2 }))).toEqual({
      '2026-11-26T23:30:00.000Z': ['daily 2026-11-26'],
      '2026-11-25T12:00:00.000Z': ['daily 2026-11-25'],
    })
    expect(why(plan(entries, { keepDaily: 2, timeZone: 'Asia/Tokyo' }))).toEqual({
      '2026-11-26T23:30:00.000Z': ['daily 2026-11-27'],
      '2026-11-26T12:00:00.000Z': ['daily 2026-11-26'],
    })
    // Sunday 2026-11-29 16:00 UTC is Monday 01:00 in Tokyo: the next ISO week.
    const sunday = [backup('2026-11-29T16:00:00.000Z')]
    expect(plan(sunday, { keepWeekly: 1 })[0]?.reasons).toEqual(['weekly 2026-W48'])
    expect(plan(sunday, { keepWeekly: 1, timeZone: 'Asia/Tokyo' })[0]?.reasons).toEqual([
      'weekly 2026-W49',
    ])
  })

  it('computes days in the policy time zone: Los Angeles is a day behind', () => {
    const entries = [
      '2026-11-25T20:00:00.000Z', // 11-25 12:00 in Los Angeles
      '2026-11-26T02:00:00.000Z', // 11-25 18:00 in Los Angeles
      '2026-11-26T20:00:00.000Z', // 11-26 12:00 in Los Angeles
    ].map((t) => backup(t))
    expect(why(plan(entries, { keepDaily: 2 }))).toEqual({
      '2026-11-26T20:00:00.000Z': ['daily 2026-11-26'],
      '2026-11-25T20:00:00.000Z': ['daily 2026-11-25'],
    })
    expect(why(plan(entries, { keepDaily: 2, timeZone: 'America/Los_Angeles' }))).toEqual({
      '2026-11-26T20:00:00.000Z': ['daily 2026-11-26'],
      '2026-11-26T02:00:00.000Z': ['daily 2026-11-25'],
    })
  })

  it('follows Europe/Berlin through the spring-forward day', () => {
    // Clocks go from 02:00 CET to 03:00 CEST on Sunday 2026-03-29 (01:00 UTC).
    const entries = [
      '2026-03-28T21:30:00.000Z', // Sat 03-28 22:30 CET
      '2026-03-28T23:30:00.000Z', // Sun 03-29 00:30 CET
      '2026-03-29T21:30:00.000Z', // Sun 03-29 23:30 CEST
      '2026-03-29T22:30:00.000Z', // Mon 03-30 00:30 CEST, W14
      '2026-03-30T12:00:00.000Z', // Mon 03-30 14:00 CEST
    ].map((t) => backup(t))
    const ds = plan(entries, { keepDaily: 3, keepWeekly: 2, timeZone: 'Europe/Berlin' })
    expect(why(ds)).toEqual({
      '2026-03-30T12:00:00.000Z': ['daily 2026-03-30', 'weekly 2026-W14'],
      '2026-03-29T21:30:00.000Z': ['daily 2026-03-29', 'weekly 2026-W13'],
      '2026-03-28T21:30:00.000Z': ['daily 2026-03-28'],
    })
  })

  it('follows Europe/Berlin through the fall-back day', () => {
    // Clocks go from 03:00 CEST back to 02:00 CET on Sunday 2026-10-25 (01:00 UTC).
    const entries = [
      '2026-10-24T21:30:00.000Z', // Sat 10-24 23:30 CEST
      '2026-10-24T22:30:00.000Z', // Sun 10-25 00:30 CEST
      '2026-10-25T22:30:00.000Z', // Sun 10-25 23:30 CET
      '2026-10-25T23:30:00.000Z', // Mon 10-26 00:30 CET, W44
    ].map((t) => backup(t))
    const ds = plan(entries, { keepDaily: 2, keepWeekly: 2, timeZone: 'Europe/Berlin' })
    expect(why(ds)).toEqual({
      '2026-10-25T23:30:00.000Z': ['daily 2026-10-26', 'weekly 2026-W44'],
      '2026-10-25T22:30:00.000Z': ['daily 2026-10-25', 'weekly 2026-W43'],
    })
  })

  it('orders by the manifests, not by the file names', () => {
    // Names sort the other way round from the times they were taken.
    const entries = [
      backup('2026-11-26T10:00:00.000Z', 'c.db'),
      backup('2026-11-26T11:00:00.000Z', 'b.db'),
      backup('2026-11-26T12:00:00.000Z', 'a.db'),
    ]
    const ds = plan(entries, { keepDaily: 1 })
    expect(ds.map((d) => path.basename(d.entry.path))).toEqual(['a.db', 'b.db', 'c.db'])
    expect(ds.map((d) => d.keep)).toEqual([true, false, false])
  })

  it('keeps the protected newest verified backup when the rules would delete it', () => {
    // The newest backup failed verification; the one before it is the newest verified.
    const entries = nightly('2026-11-20', '2026-11-28')
    const verified = entries.find((e) => e.manifest.createdAt.startsWith('2026-11-27'))!
    const ds = plan(entries, { keepDaily: 1 }, [verified.path])
    expect(why(ds)).toEqual({
      '2026-11-28T02:00:00.000Z': ['daily 2026-11-28'],
      '2026-11-27T02:00:00.000Z': ['newest verified'],
    })
  })

  it('keeps the protected backup, and every other, when both rules are 0 (restic: empty policy)', () => {
    const entries = nightly('2026-11-20', '2026-11-28')
    const newest = entries.at(-1)!
    const ds = plan(entries, {}, [newest.path])
    expect(ds[0]).toMatchObject({ entry: newest, keep: true })
    expect(ds[0]?.reasons).toEqual(['policy is empty', 'newest verified'])
    expect(ds.every((d) => d.keep && d.reasons.includes('policy is empty'))).toBe(true)
  })

  it('refuses a protected path that is not among the backups', () => {
    expect(() =>
      plan(nightly('2026-11-20', '2026-11-28'), { keepDaily: 1 }, ['/elsewhere/x.db']),
    ).toThrow(/protected backup \/elsewhere\/x\.db is not among/)
  })

  it('rejects a bad policy naming the input and the fix', () => {
    const cases: [Partial<RetentionPolicy>, RegExp][] = [
      [{ keepDaily: -1 }, /^keep-daily: "-1" .* Fix: /],
      [{ keepDaily: 1.5 }, /^keep-daily: "1\.5" .* Fix: /],
      [{ keepWeekly: -3 }, /^keep-weekly: "-3" .* Fix: /],
      [{ keepWeekly: Number.NaN }, /^keep-weekly: "NaN" .* Fix: /],
      [{ timeZone: 'Mars/Olympus_Mons' }, /^retention-time-zone: "Mars\/Olympus_Mons" .* Fix: /],
    ]
    for (const [p, message] of cases) {
      let error: unknown
      try {
        plan([backup('2026-11-26T12:00:00.000Z')], { keepDaily: 1, ...p })
      } catch (err) {
        error = err
      }
      expect(error, JSON.stringify(p)).toBeInstanceOf(UserError)
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).not.toContain('\n')
    }
  })

  it('checks the policy even when there are no backups', () => {
    expect(() => plan([], { keepDaily: -1 })).toThrow(UserError)
    expect(plan([], { keepDaily: 1 })).toEqual([])
  })

  it('rejects a manifest whose createdAt is not a date, naming the manifest', () => {
    const bad = backup('yesterday', 'bad.db')
    expect(() => plan([bad], { keepDaily: 1 })).toThrow(
      /^manifest \/backups\/bad\.db\.manifest\.json: createdAt "yesterday"/,
    )
  })
})

describe('applyRetention', () => {
  const made: string[] = []
  afterEach(async () => {
    for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true })
  })

  /** Real backup files and manifests in a temporary folder. */
  async function folder(days: string[]) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-retention-'))
    made.push(dir)
    const entries: BackupEntry[] = []
    for (const [i, day] of days.entries()) {
      const e = backup(`${day}T02:00:00.000Z`, undefined, 100 * (i + 1))
      const file = path.join(dir, path.basename(e.path))
      const entry = { ...e, path: file, manifestPath: `${file}.manifest.json` }
      await fs.writeFile(file, Buffer.alloc(e.manifest.backup.bytes))
      await fs.writeFile(entry.manifestPath, JSON.stringify(entry.manifest))
      entries.push(entry)
    }
    return { dir, entries }
  }

  // As the caller will: the manifest first, so a half-done removal leaves an orphan file that
  // list() reports, never a manifest pointing at nothing.
  const removed: string[] = []
  const remove = async (e: BackupEntry) => {
    removed.push(path.basename(e.path))
    await fs.rm(e.manifestPath)
    await fs.rm(e.path)
  }

  const DAYS = ['2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24', '2026-11-25']

  it('deletes the backups not kept, oldest first, with their manifests', async () => {
    const { dir, entries } = await folder(DAYS)
    removed.length = 0
    // Given newest first, as planRetention returns them.
    const ds = plan(entries, { keepDaily: 2 })
    const summary = await applyRetention(ds, { dryRun: false, remove })
    expect(removed).toEqual([
      'omniai-2026-11-21T02-00-00-000Z.db',
      'omniai-2026-11-22T02-00-00-000Z.db',
      'omniai-2026-11-23T02-00-00-000Z.db',
    ])
    // Sizes 100, 200, 300 from the manifests.
    expect(summary).toEqual({ kept: 2, deleted: 3, freedBytes: 600 })
    expect((await fs.readdir(dir)).sort()).toEqual([
      'omniai-2026-11-24T02-00-00-000Z.db',
      'omniai-2026-11-24T02-00-00-000Z.db.manifest.json',
      'omniai-2026-11-25T02-00-00-000Z.db',
      'omniai-2026-11-25T02-00-00-000Z.db.manifest.json',
    ])
  })

  it('deletes nothing in a dry run', async () => {
    const { dir, entries } = await folder(DAYS)
    const calls: string[] = []
    const summary = await applyRetention(plan(entries, { keepDaily: 2 }), {
      dryRun: true,
      remove: async (e) => void calls.push(e.path),
    })
    expect(calls).toEqual([])
    expect(summary).toEqual({ kept: 2, deleted: 0, freedBytes: 0 })
    expect(await fs.readdir(dir)).toHaveLength(10)
  })

  it('stops at the first failed removal, names the file and leaves the rest', async () => {
    const { dir, entries } = await folder(DAYS)
    removed.length = 0
    // Someone else already took 11-22's manifest: removing it fails for real (ENOENT).
    const broken = entries[1]!
    await fs.rm(broken.manifestPath)
    const run = applyRetention(plan(entries, { keepDaily: 2 }), { dryRun: false, remove })
    await expect(run).rejects.toBeInstanceOf(UserError)
    await expect(run).rejects.toThrow(
      `retention: cannot delete ${broken.path} (Error: ENOENT: no such file or directory`,
    )
    await expect(run).rejects.toThrow(/1 older backup\(s\) were deleted before it; 1 newer/)
    expect(removed).toEqual([
      'omniai-2026-11-21T02-00-00-000Z.db',
      'omniai-2026-11-22T02-00-00-000Z.db',
    ])
    // 11-23 was due for deletion but is untouched; 11-22's file is still there.
    expect((await fs.readdir(dir)).sort()).toEqual([
      'omniai-2026-11-22T02-00-00-000Z.db',
      'omniai-2026-11-23T02-00-00-000Z.db',
      'omniai-2026-11-23T02-00-00-000Z.db.manifest.json',
      'omniai-2026-11-24T02-00-00-000Z.db',
      'omniai-2026-11-24T02-00-00-000Z.db.manifest.json',
      'omniai-2026-11-25T02-00-00-000Z.db',
      'omniai-2026-11-25T02-00-00-000Z.db.manifest.json',
    ])
  })
})

describe('renderRetention', () => {
  it('renders a Markdown table with every decision and its reasons', () => {
    const entries = nightly('2026-11-26', '2026-11-28')
    entries.push(backup('2026-11-25T02:00:00.000Z', 'odd|<name>.db'))
    const md = renderRetention(retentionRows(plan(entries, { keepDaily: 2 }, [entries[2]!.path])))
    expect(md).toBe(
      [
        '| Backup | Taken at | Kept | Why |',
        '| --- | --- | --- | --- |',
        '| `omniai-2026-11-28T02-00-00-000Z.db` | 2026-11-28T02:00:00.000Z | ✅ yes | daily 2026-11-28, newest verified |',
        '| `omniai-2026-11-27T02-00-00-000Z.db` | 2026-11-27T02:00:00.000Z | ✅ yes | daily 2026-11-27 |',
        '| `omniai-2026-11-26T02-00-00-000Z.db` | 2026-11-26T02:00:00.000Z | 🗑️ no | no rule keeps it |',
        '| `odd\\|&lt;name&gt;.db` | 2026-11-25T02:00:00.000Z | 🗑️ no | no rule keeps it |',
        '',
      ].join('\n'),
    )
  })
})
