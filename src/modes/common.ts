import { type Config } from '../options/config.js'
import type { Mode } from '../options/inputs.js'
import type { EngineName } from '../engines/engine.js'
import { UserError } from '../util/errors.js'
import type { Schema } from '../checks/inventory.js'
import type { ModeReport, Report } from '../report/report.js'
import { TOOL, VERSION } from '../util/version.js'

/** Fails naming `input` when a table it names is not in the database. */
export function requireTable(schema: Schema, table: string | null, input: string): void {
  if (table === null || schema.tables.some((t) => t.name === table)) return
  const names = schema.tables.map((t) => t.name).join(', ') || 'none'
  throw new UserError(
    `${input}: table "${table}" is not in the database (its tables: ${names}). Fix: set ${input} to the right table, or none to skip that check.`,
  )
}

export function emptyReport<M extends Mode>(
  mode: M,
  engine: EngineName,
  started: Date,
): ModeReport<M> {
  return {
    tool: `${TOOL}@${VERSION}`,
    mode,
    engine,
    ok: false,
    startedAt: started.toISOString(),
    finishedAt: started.toISOString(),
    backup: null,
    checks: [],
    database: null,
    backupCount: null,
    backupAgeSeconds: null,
    restoreSeconds: null,
    durations: {},
    warnings: [],
  }
}

export function finish<R extends Report | ModeReport<Mode>>(
  report: R,
  started: Date,
  now: Date,
): R {
  report.finishedAt = now.toISOString()
  report.durations.totalMs = now.getTime() - started.getTime()
  report.ok = !report.error && report.checks.length > 0 && report.checks.every((c) => c.ok)
  return report
}

/** What a mode is given: its own options (O), the log, the clock. */
export interface ModeContext<O extends Config = Config> {
  config: O
  log: import('../util/log.js').Log
  now: () => Date
  /** backup: the safety backup taken before a restore, which nothing about the live data may block. */
  safety?: boolean
}
