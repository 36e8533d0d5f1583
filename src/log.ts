/**
 * Where progress goes: the Actions log (with groups and annotations) or a terminal.
 * Modes write through this so they run the same in a workflow and from the CLI.
 */
export interface Log {
  info(message: string): void
  warning(message: string): void
  group<T>(name: string, fn: () => Promise<T>): Promise<T>
  /** An error pinned to a file and line (a failed test), shown on the pull request's diff. */
  annotate?(level: 'error', message: string, where: Annotation): void
  /** A value that must never appear in the log (a scratch database's password). */
  mask?(secret: string): void
}

export interface Annotation {
  /** Relative to the repository root, with forward slashes. */
  file: string
  /** 1-based. */
  line?: number
  title?: string
}

export const consoleLog: Log = {
  info: (message) => console.log(message),
  warning: (message) => console.error(`warning: ${message}`),
  group: async (name, fn) => {
    console.log(`── ${name}`)
    return fn()
  },
  annotate: (level, message, { file, line }) =>
    console.error(`${level}: ${file}${line ? `:${line}` : ''}: ${message}`),
}

/** Logs "what: 40%" at most once per step of 10%. */
export function progressLogger(log: Log, what: string): (done: number, total: number) => void {
  let shown = -1
  return (done, total) => {
    const percent = total > 0 ? Math.floor((done / total) * 10) * 10 : 100
    if (percent > shown) {
      shown = percent
      log.info(`${what}: ${percent}% (${done}/${total} pages)`)
    }
  }
}
