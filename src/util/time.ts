/** Timing for reports: one stopwatch, read in milliseconds (durations) or seconds (RTO). */
export interface Stopwatch {
  /** Whole milliseconds since it started. */
  ms(): number
  /** Seconds since it started, unrounded. */
  seconds(): number
}

export function stopwatch(): Stopwatch {
  const t0 = performance.now()
  return {
    ms: () => Math.round(performance.now() - t0),
    seconds: () => (performance.now() - t0) / 1000,
  }
}
