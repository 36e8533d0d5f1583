// What bench/sqlite.js and bench/postgres.js share: environment numbers, medians, and the loop
// that times a group of commands side by side (warm-ups, then runs in alternating order).
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'

export const log = (...a) => console.log(...a)
export const mib = (bytes) => bytes / (1 << 20)

/** A non-negative number from the environment, or `dflt` when unset. */
export const num = (name, dflt) => {
  const text = process.env[name]
  if (text === undefined || text === '') return dflt
  const n = Number(text)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${text}: not a number`)
  return n
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const fmtRss = (rss) => (Number.isNaN(rss) ? 'n/a' : rss.toFixed(1)).padStart(7)

export async function sha256Short(file) {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk)
  return hash.digest('hex').slice(0, 12)
}

/**
 * Times each entry `warmup` times untimed, then `runs` times, alternating the order between runs
 * so drift on a shared machine hits every command alike. Each entry has `label`, `sample()`
 * returning `{ seconds, rss }`, and optionally `prepare()` and `after(sample)` (phases kept per
 * timed run). Fills in `samples`, `phases`, `seconds` (median), `fastest` (the fastest run's
 * seconds) and `rss` (max).
 */
export async function timeGroup(title, entries, { warmup, runs, labelWidth }) {
  log(`\n== ${title}`)
  for (const e of entries) Object.assign(e, { samples: [], phases: [] })
  const once = async (e, timed) => {
    if (e.prepare) await e.prepare()
    const r = await e.sample()
    const phases = e.after ? await e.after(r) : null
    log(
      `   ${timed ? 'run   ' : 'warmup'} ${e.label.padEnd(labelWidth)} ${r.seconds.toFixed(2).padStart(7)} s  ${fmtRss(r.rss)} MiB`,
    )
    if (timed) {
      e.samples.push(r)
      if (phases) e.phases.push(phases)
    }
  }
  for (let i = 0; i < warmup; i++) for (const e of entries) await once(e, false)
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? entries : [...entries].reverse()
    for (const e of order) await once(e, true)
  }
  for (const e of entries) {
    e.seconds = median(e.samples.map((s) => s.seconds))
    e.fastest = Math.min(...e.samples.map((s) => s.seconds))
    e.rss = Math.max(...e.samples.map((s) => s.rss))
    // CPU seconds, where the sample measures them (bench/postgres.js): the median run's.
    if (e.samples.every((s) => s.cpu !== undefined)) e.cpu = median(e.samples.map((s) => s.cpu))
  }
  return entries
}
