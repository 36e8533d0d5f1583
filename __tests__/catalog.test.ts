/**
 * The backup catalog carried from run to run in the Actions cache, against the local stand-in for
 * GitHub's services (its cache service v2 routes; see __tests__/data/github/README.md).
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { startGitHubStandIn } from './github-standin.js'

// @actions/cache reads the environment when it runs: the environment first, then the code under test.
const standIn = await startGitHubStandIn()
const saved = { ...process.env }
const runnerTemp = fs.mkdtempSync(path.join(os.tmpdir(), 'catalog-runner-temp-'))
Object.assign(process.env, standIn.env, { RUNNER_TEMP: runnerTemp })
const { loadCatalog, saveCatalog, renderTrend } = await import('../src/github/catalog.js')
type CatalogEntry = import('../src/github/catalog.js').CatalogEntry

afterAll(async () => {
  process.env = saved
  await standIn.close()
  for (const dir of [runnerTemp, ...runDirs]) fs.rmSync(dir, { recursive: true, force: true })
})

const MIB = 1024 * 1024
const DAY = 86_400_000

const runDirs: string[] = []
function newRunDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catalog-run-'))
  runDirs.push(dir)
  return dir
}

function makeLog() {
  const info: string[] = []
  const warnings: string[] = []
  return {
    info: (m: string) => void info.push(m),
    warning: (m: string) => void warnings.push(m),
    info_: info,
    warnings,
  }
}

function entry(i: number, extra: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    at: new Date(Date.UTC(2026, 0, 1) + i * DAY).toISOString(),
    engine: 'sqlite',
    databaseBytes: (100 + 2 * i) * MIB,
    backupBytes: (30 + i) * MIB,
    backupSeconds: 10 + i,
    ...extra,
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('backup catalog in the Actions cache', () => {
  let log = makeLog()
  beforeEach(() => {
    log = makeLog()
  })

  it('round-trips from one run to the next', async () => {
    const key = 'omniai-backups-catalog'
    const first = newRunDir()
    const entries = [entry(0, { tier: 'weekly' }), entry(1, { tier: 'daily' })]
    await saveCatalog(first, key, entries, log)
    expect(log.warnings).toEqual([])
    expect(JSON.parse(fs.readFileSync(path.join(first, 'catalog.json'), 'utf8'))).toEqual(entries)
    const stored = standIn.caches.filter((c) => c.key.startsWith(`${key}-`))
    expect(stored).toHaveLength(1)
    expect(stored[0]!.finalized).toBe(true)
    expect(stored[0]!.key).toMatch(/^omniai-backups-catalog-\d{13}$/)

    const second = newRunDir()
    const loaded = await loadCatalog(second, key, log)
    expect(log.warnings).toEqual([])
    expect(loaded).toEqual(entries)
    expect(JSON.parse(fs.readFileSync(path.join(second, 'catalog.json'), 'utf8'))).toEqual(entries)
    const calls = standIn.requests.map((r) => r.path).filter((p) => p.includes('CacheService'))
    expect(calls).toEqual([
      '/twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry',
      '/twirp/github.actions.results.api.v1.CacheService/FinalizeCacheEntryUpload',
      '/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL',
    ])
  })

  it('restores the newest of several saved catalogs and keeps the last 400 entries', async () => {
    const key = 'newest-catalog'
    for (const n of [1, 2, 3]) {
      await saveCatalog(
        newRunDir(),
        key,
        Array.from({ length: n }, (_, i) => entry(i)),
        log,
      )
      await sleep(5) // keys carry Date.now()
    }
    const many = Array.from({ length: 450 }, (_, i) => entry(i))
    await saveCatalog(newRunDir(), key, many, log)
    expect(standIn.caches.filter((c) => c.key.startsWith(`${key}-`))).toHaveLength(4)
    const loaded = await loadCatalog(newRunDir(), key, log)
    expect(log.warnings).toEqual([])
    expect(loaded).toHaveLength(400)
    expect(loaded).toEqual(many.slice(50))
  })

  it('loads [] when there is no cache for the key', async () => {
    const dir = newRunDir()
    expect(await loadCatalog(dir, 'never-saved', log)).toEqual([])
    expect(log.warnings).toEqual([])
    expect(fs.existsSync(path.join(dir, 'catalog.json'))).toBe(false)
  })

  it('outside Actions, loads [] and saves only the file, without a request', async () => {
    const before = standIn.requests.length
    const { ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN } = process.env
    delete process.env.ACTIONS_RESULTS_URL
    delete process.env.ACTIONS_RUNTIME_TOKEN
    try {
      const dir = newRunDir()
      expect(await loadCatalog(dir, 'omniai-backups-catalog', log)).toEqual([])
      await saveCatalog(dir, 'omniai-backups-catalog', [entry(0)], log)
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'catalog.json'), 'utf8'))).toEqual([
        entry(0),
      ])
    } finally {
      process.env.ACTIONS_RESULTS_URL = ACTIONS_RESULTS_URL
      process.env.ACTIONS_RUNTIME_TOKEN = ACTIONS_RUNTIME_TOKEN
    }
    expect(log.warnings).toEqual([])
    expect(standIn.requests.length).toBe(before)
  })

  /** What the code under test writes to stdout meanwhile: workflow commands and plain lines. */
  async function stdoutOf<T>(fn: () => Promise<T>): Promise<{ result: T; stdout: string }> {
    let stdout = ''
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      stdout += String(chunk)
      return true
    })
    try {
      return { result: await fn(), stdout }
    } finally {
      spy.mockRestore()
    }
  }
  const commands = (stdout: string, kind: string) =>
    stdout.split('\n').filter((l) => l.startsWith(`::${kind}::`))

  it("a failing cache service: @actions/cache's own warning reaches the runner as it wrote it, after our line, and nothing throws", async () => {
    const key = 'faulty-catalog'
    standIn.fail(/CacheService\/FinalizeCacheEntryUpload/, '403-permission', 1)
    const saving = await stdoutOf(() => saveCatalog(newRunDir(), key, [entry(0)], log))
    expect(saving.result).toBeUndefined()
    expect(log.warnings).toEqual([])
    expect(log.info_).toEqual(['backup catalog: trying to save it in the Actions cache'])
    expect(commands(saving.stdout, 'warning')).toEqual([
      expect.stringMatching(/^::warning::Failed to save: .*403/),
    ])

    await saveCatalog(newRunDir(), key, [entry(1)], makeLog()) // a good one, to have something to restore
    standIn.fail(/CacheService\/GetCacheEntryDownloadURL/, '403-permission', 1)
    const failed = makeLog()
    const loading = await stdoutOf(() => loadCatalog(newRunDir(), key, failed))
    expect(loading.result).toEqual([])
    expect(failed.warnings).toEqual([])
    expect(failed.info_).toEqual(['backup catalog: trying to restore it from the Actions cache'])
    expect(commands(loading.stdout, 'warning')).toEqual([
      expect.stringMatching(/^::warning::Failed to restore: .*403/),
    ])
    // The fault was one request only: the next run restores again.
    expect(await loadCatalog(newRunDir(), key, log)).toEqual([entry(1)])
  })

  it('what @actions/cache throws (a key it refuses) is one warning of ours', async () => {
    const { result, stdout } = await stdoutOf(() =>
      saveCatalog(newRunDir(), 'no,commas', [entry(0)], log),
    )
    expect(result).toBeUndefined()
    expect(log.warnings).toEqual([
      expect.stringMatching(/^backup catalog: could not save it \(Key Validation Error: .*commas/),
    ])
    expect(commands(stdout, 'warning')).toEqual([])
  })

  it('process.stdout.write is never replaced to silence the library (regression: it was, around @actions/cache)', () => {
    const source = fs.readFileSync(
      path.join(import.meta.dirname, '..', 'src', 'github', 'catalog.ts'),
      'utf8',
    )
    expect(source).not.toMatch(/process\.stdout\.write\s*=/)
  })
})

describe('the stand-in cache service', () => {
  it('keeps entries immutable per key: a second save under the same key is refused (409)', async () => {
    const cache = await import('@actions/cache')
    const file = path.join(runnerTemp, 'immutable', 'x.txt')
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, 'one')
    expect(await cache.saveCache([file], 'immutable-key')).toBeGreaterThan(0)
    fs.writeFileSync(file, 'two')
    expect(await cache.saveCache([file], 'immutable-key')).toBe(-1)
    const refused = standIn.requests.filter((r) => r.path.endsWith('/CreateCacheEntry'))
    expect(refused.length).toBeGreaterThanOrEqual(2)
    fs.rmSync(file)
    expect(await cache.restoreCache([file], 'immutable-key')).toBe('immutable-key')
    expect(fs.readFileSync(file, 'utf8')).toBe('one')
    // Another path list is another version: no match.
    expect(await cache.restoreCache([file, `${file}.other`], 'immutable-key')).toBeUndefined()
  })
})

describe('renderTrend', () => {
  // 40 daily runs: the database grows by 2 MiB a run, the backup by 1 MiB, backup time by 1 s.
  const series = Array.from({ length: 40 }, (_, i) => entry(i))
  const out = renderTrend(series)
  const lines = out.split('\n')

  it('tabulates the last 10 runs', () => {
    expect(lines.slice(0, 12)).toEqual([
      '| Date | Database size | Backup size | Backup seconds |',
      '| --- | ---: | ---: | ---: |',
      '| 2026-01-31 | 160.0 MiB | 60.0 MiB | 40.0 |',
      '| 2026-02-01 | 162.0 MiB | 61.0 MiB | 41.0 |',
      '| 2026-02-02 | 164.0 MiB | 62.0 MiB | 42.0 |',
      '| 2026-02-03 | 166.0 MiB | 63.0 MiB | 43.0 |',
      '| 2026-02-04 | 168.0 MiB | 64.0 MiB | 44.0 |',
      '| 2026-02-05 | 170.0 MiB | 65.0 MiB | 45.0 |',
      '| 2026-02-06 | 172.0 MiB | 66.0 MiB | 46.0 |',
      '| 2026-02-07 | 174.0 MiB | 67.0 MiB | 47.0 |',
      '| 2026-02-08 | 176.0 MiB | 68.0 MiB | 48.0 |',
      '| 2026-02-09 | 178.0 MiB | 69.0 MiB | 49.0 |',
    ])
  })

  it('states the trend of database size and backup time', () => {
    // Newest 178 MiB; 7 runs before it (run 32) 164 MiB; 30 runs before it (run 9) 118 MiB.
    // 14 / 164 = 8.54 %, 60 / 118 = 50.85 %. Backup seconds: runs 10..39 are 20..49 s (median
    // 34.5), runs 0..9 are 10..19 s (median 14.5).
    expect(lines[13]).toBe(
      'Database size +8.5% (+14.0 MiB) over the last 7 runs, +50.8% (+60.0 MiB) over the last 30 runs; ' +
        'median backup 34.5 s now vs 14.5 s 30 runs ago.',
    )
  })

  it('draws a sparkline of the database size', () => {
    // 30 evenly growing sizes: level k of 0..7 for run j of 0..29 is round(7 * j / 29).
    const expected = Array.from({ length: 30 }, (_, j) => '▁▂▃▄▅▆▇█'[Math.round((7 * j) / 29)])
    expect(lines[15]).toBe(`Database size: ${expected.join('')}`)
    expect(lines[15]).toMatch(/^Database size: ▁.*█$/)
  })

  it('handles an empty or one-entry catalog', () => {
    expect(renderTrend([])).toMatch(/No backup catalog yet/)
    expect(renderTrend([entry(0)])).toContain('First run in the catalog; median backup 10.0 s.')
  })
})
