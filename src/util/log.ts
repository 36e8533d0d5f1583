/**
 * Where progress goes: the Actions log (with groups and annotations) or a terminal.
 * Modes write through this so they run the same in a workflow and from the CLI.
 */
import { randomUUID } from 'node:crypto'
import { oneLine } from './text.js'

export interface Log {
  info(message: string): void
  warning(message: string): void
  /** Runs `fn` with what it logs under `name`; a group that logs nothing shows nothing. */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>
  /**
   * A problem pinned to a file and line, shown on the pull request's diff: an error (a failed
   * test) or a warning (a weak Content-Security-Policy).
   */
  annotate?(level: 'error' | 'warning', message: string, where: Annotation): void
  /** A value that must never appear in the log (a scratch database's password). */
  mask?(secret: string): void
  /**
   * Runs `fn` with the workflow commands in what it logs ignored by the runner: output of a
   * program this job does not trust (a pull request's tests) may print `::add-mask::` or
   * `::stop-commands::` lines, which must not act. Where the sink has no commands, just `fn`.
   */
  verbatim?<T>(fn: () => Promise<T>): Promise<T>
}

export interface Annotation {
  /** Relative to the repository root, with forward slashes. */
  file: string
  /** 1-based. */
  line?: number
  title?: string
}

/** Where a Log writes: lines, and a group's start and end. */
export interface LogSink extends Omit<Log, 'group' | 'verbatim'> {
  startGroup(name: string): void
  endGroup(): void
  /** Stops the runner's workflow commands until `resumeCommands` with the same token. */
  stopCommands?(token: string): void
  resumeCommands?(token: string): void
}

/**
 * A Log whose groups start at their first line: a group whose body logs nothing (a check that
 * had nothing to say, a stop command that printed nothing) leaves no empty heading behind.
 * Groups run one after another, as the modes use them; a nested group opens inside its parent.
 */
export function groupingLog(sink: LogSink): Log {
  const groups: { name: string; started: boolean }[] = []
  const start = () => {
    for (const g of groups) {
      if (!g.started) {
        sink.startGroup(g.name)
        g.started = true
      }
    }
  }
  return {
    // Every message is one line: a table name or a tool's message with a line break in it must
    // not start a line of the job's log, where `::error::` or `::add-mask::` would be obeyed.
    info: (message) => {
      start()
      sink.info(oneLine(message))
    },
    warning: (message) => {
      start()
      sink.warning(oneLine(message))
    },
    group: async (name, fn) => {
      const group = { name: oneLine(name), started: false }
      groups.push(group)
      try {
        return await fn()
      } finally {
        groups.splice(groups.indexOf(group), 1)
        if (group.started) sink.endGroup()
      }
    },
    ...(sink.annotate
      ? {
          annotate: (level, message, where) => {
            start()
            // The Actions sink escapes line breaks itself (the annotation keeps them); the console's
            // makes the message one line (below).
            sink.annotate!(level, message, where)
          },
        }
      : {}),
    ...(sink.mask ? { mask: sink.mask } : {}),
    ...(sink.stopCommands && sink.resumeCommands
      ? {
          verbatim: async <T>(fn: () => Promise<T>): Promise<T> => {
            // The group's own command goes first: nothing between the two tokens is obeyed.
            start()
            const token = `omniai-${randomUUID()}`
            sink.stopCommands!(token)
            try {
              return await fn()
            } finally {
              sink.resumeCommands!(token)
            }
          },
        }
      : {}),
  }
}

export const consoleLog: Log = groupingLog({
  info: (message) => console.log(message),
  warning: (message) => console.error(`warning: ${message}`),
  startGroup: (name) => console.log(`── ${name}`),
  endGroup: () => {},
  annotate: (level, message, { file, line }) =>
    console.error(oneLine(`${level}: ${file}${line ? `:${line}` : ''}: ${message}`)),
})

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
