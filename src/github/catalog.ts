/**
 * A small backup catalog carried from run to run in the Actions cache (`@actions/cache`): one entry
 * per backup (sizes, duration, tier). The summary turns it into a trend of database size and backup
 * time. The catalog is an optional extra: outside Actions, or when the cache service fails, loading
 * gives [] and saving does nothing, with a warning at most.
 */
import { readRunnerContext, type RunnerContext } from '../options/context.js'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { Log } from '../util/log.js'
import { makeDirsSync } from '../util/fs.js'

export interface CatalogEntry {
  /** ISO 8601. */
  at: string
  engine: string
  databaseBytes: number
  backupBytes: number
  backupSeconds: number
  tier?: 'daily' | 'weekly'
}

/** Loaded only in a workflow run that uses the catalog: it is a large share of the bundle. */
const cacheClient = () => import('@actions/cache')

export const CATALOG_FILE = 'catalog.json'
export const CATALOG_MAX_ENTRIES = 400

type CatalogLog = Pick<Log, 'info' | 'warning'>

/**
 * The file handed to @actions/cache. Its path is part of the cache `version` (a hash of the paths),
 * and the archive restores to the path it was saved from, so it must not depend on `dir`: a fixed
 * file under RUNNER_TEMP, per key, copied to and from `dir`.
 */
function stagingFile(key: string, runner: RunnerContext): string {
  const base = runner.temp
  const id = crypto.createHash('sha256').update(key).digest('hex').slice(0, 12)
  return path.join(base, `omniai-backups-catalog-${id}`, CATALOG_FILE)
}

/**
 * Runs an @actions/cache call; the catalog is optional, so nothing it does fails the job. The
 * library reports its own failures with core.warning (core.error for a 5xx from the cache service)
 * and returns normally: those lines reach the runner as the library writes them, after a line of
 * ours saying what was being tried, so its "Failed to restore: ..." reads in context. Capturing
 * them instead would mean replacing process.stdout.write while the library runs: @actions/core
 * has no hook for its workflow commands and @actions/cache no option to report otherwise. What it
 * throws (a key it refuses, a module that does not load) is one warning of ours.
 */
async function withCacheWarnings<T>(log: CatalogLog, what: string, fn: () => Promise<T>) {
  log.info(
    `backup catalog: trying to ${what} ${what.startsWith('restore') ? 'from' : 'in'} the Actions cache`,
  )
  try {
    return await fn()
  } catch (err) {
    log.warning(
      `backup catalog: could not ${what} (${err instanceof Error ? err.message : String(err)})`,
    )
    return undefined
  }
}

function parseEntries(text: string): CatalogEntry[] {
  const data: unknown = JSON.parse(text)
  const list = Array.isArray(data) ? data : (data as { entries?: unknown }).entries
  if (!Array.isArray(list)) return []
  return list.filter(
    (e): e is CatalogEntry =>
      typeof e === 'object' &&
      e !== null &&
      typeof (e as CatalogEntry).at === 'string' &&
      typeof (e as CatalogEntry).engine === 'string' &&
      Number.isFinite((e as CatalogEntry).databaseBytes) &&
      Number.isFinite((e as CatalogEntry).backupBytes) &&
      Number.isFinite((e as CatalogEntry).backupSeconds),
  )
}

/**
 * Restore the newest catalog whose cache key starts with `${key}-` into `dir` (as catalog.json) and
 * return its entries; [] when there is none, outside Actions, or when the cache service fails.
 */
export async function loadCatalog(
  dir: string,
  key: string,
  log: CatalogLog,
  runner: RunnerContext = readRunnerContext(),
): Promise<CatalogEntry[]> {
  if (!runner.actionsServices) return []
  const staged = stagingFile(key, runner)
  fs.rmSync(staged, { force: true })
  makeDirsSync(path.dirname(staged))
  // The primary key matches nothing (keys are saved as `${key}-<ms>`), so the restore key's prefix
  // match picks the newest entry.
  const matched = await withCacheWarnings(log, 'restore it', async () =>
    (await cacheClient()).restoreCache([staged], `${key}-restore-${Date.now()}`, [`${key}-`]),
  )
  if (!matched || !fs.existsSync(staged)) return []
  try {
    const text = fs.readFileSync(staged, 'utf8')
    const entries = parseEntries(text)
    makeDirsSync(dir)
    fs.writeFileSync(path.join(dir, CATALOG_FILE), text)
    log.info(`backup catalog: ${entries.length} entries from cache ${matched}`)
    return entries
  } catch (err) {
    log.warning(
      `backup catalog: cache ${matched} is unreadable (${err instanceof Error ? err.message : String(err)})`,
    )
    return []
  }
}

/**
 * Keep the last 400 entries, write `dir`/catalog.json and save it to the cache under
 * `${key}-${Date.now()}` (cache entries are immutable per key). Failures only warn.
 */
export async function saveCatalog(
  dir: string,
  key: string,
  entries: CatalogEntry[],
  log: CatalogLog,
  runner: RunnerContext = readRunnerContext(),
): Promise<void> {
  const kept = entries.slice(-CATALOG_MAX_ENTRIES)
  const text = `${JSON.stringify(kept, null, 2)}\n`
  try {
    makeDirsSync(dir)
    fs.writeFileSync(path.join(dir, CATALOG_FILE), text)
  } catch (err) {
    log.warning(
      `backup catalog: could not write it (${err instanceof Error ? err.message : String(err)})`,
    )
    return
  }
  if (!runner.actionsServices) return
  const staged = stagingFile(key, runner)
  makeDirsSync(path.dirname(staged))
  fs.writeFileSync(staged, text)
  const id = await withCacheWarnings(log, 'save it', async () =>
    (await cacheClient()).saveCache([staged], `${key}-${Date.now()}`),
  )
  if (id !== undefined && id >= 0) log.info(`backup catalog: saved ${kept.length} entries`)
}

// ------------------------------------------------------------------------------------ trend

const MIB = 1024 * 1024
const SPARKS = '▁▂▃▄▅▆▇█'

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`
}

function signed(n: number, digits: number): string {
  const s = n.toFixed(digits)
  return n > 0 || (n === 0 && !s.startsWith('-')) ? `+${s}` : s
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function sparkline(values: number[]): string {
  if (values.length === 0) return ''
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  return values
    .map((v) =>
      hi === lo ? SPARKS[0]! : SPARKS[Math.round(((v - lo) / (hi - lo)) * (SPARKS.length - 1))]!,
    )
    .join('')
}

/**
 * Change of the database size over the last `n` entries: the newest entry against the one `n`
 * entries before it (or the oldest, when there are fewer).
 */
function change(entries: CatalogEntry[], n: number): string {
  const last = entries[entries.length - 1]!
  const base = entries[Math.max(0, entries.length - 1 - n)]!
  const span = entries.length - 1 - Math.max(0, entries.length - 1 - n)
  const delta = last.databaseBytes - base.databaseBytes
  const pct = base.databaseBytes > 0 ? `${signed((delta / base.databaseBytes) * 100, 1)}%` : 'n/a'
  return `${pct} (${signed(delta / MIB, 1)} MiB) over the last ${span} runs`
}

/**
 * Markdown: the last 10 runs, a one-line trend (database size change over the last 7 and 30
 * entries; median backup seconds of the last 30 entries against the 30 before them) and a sparkline
 * of the database size. Entries are taken in the order given (oldest first).
 */
export function renderTrend(entries: CatalogEntry[]): string {
  if (entries.length === 0) return '_No backup catalog yet: the trend starts with the next run._\n'
  const rows = entries
    .slice(-10)
    .map(
      (e) =>
        `| ${e.at.slice(0, 10)} | ${mib(e.databaseBytes)} | ${mib(e.backupBytes)} | ${e.backupSeconds.toFixed(1)} |`,
    )
  const recent = entries.slice(-30).map((e) => e.backupSeconds)
  const earlier = entries.slice(-60, -30).map((e) => e.backupSeconds)
  const seconds =
    earlier.length > 0
      ? `median backup ${median(recent).toFixed(1)} s now vs ${median(earlier).toFixed(1)} s 30 runs ago`
      : `median backup ${median(recent).toFixed(1)} s`
  const trend =
    entries.length > 1
      ? `Database size ${change(entries, 7)}, ${change(entries, 30)}; ${seconds}.`
      : `First run in the catalog; ${seconds}.`
  return [
    '| Date | Database size | Backup size | Backup seconds |',
    '| --- | ---: | ---: | ---: |',
    ...rows,
    '',
    trend,
    '',
    `Database size: ${sparkline(entries.slice(-30).map((e) => e.databaseBytes))}`,
    '',
  ].join('\n')
}
