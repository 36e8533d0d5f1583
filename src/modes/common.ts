import { digestAudit } from '../audit.js'
import type { Check } from '../checks.js'
import type { Config, Mode } from '../config.js'
import type { Database, EngineName } from '../engines/engine.js'
import { describeError, UserError } from '../errors.js'
import type { Inventory, InventoryOptions, Schema } from '../inventory.js'
import type { Report } from '../report.js'
import { TOOL, VERSION } from '../version.js'

/** Fails naming `input` when a table it names is not in the database. */
export function requireTable(schema: Schema, table: string | null, input: string): void {
  if (table === null || schema.tables.some((t) => t.name === table)) return
  const names = schema.tables.map((t) => t.name).join(', ') || 'none'
  throw new UserError(
    `${input}: table "${table}" is not in the database (its tables: ${names}). Fix: set ${input} to the right table, or none to skip that check.`,
  )
}

export async function takeInventory(db: Database, options: InventoryOptions): Promise<Inventory> {
  const schema = await db.schema()
  return {
    schema,
    rowCounts: await db.rowCounts(schema.tables.map((t) => t.name)),
    audit: options.auditTable
      ? await digestAudit(options.auditTable, db.auditRows(options.auditTable))
      : null,
    conversations: options.conversationsTable
      ? await db.recentConversations(options.conversationsTable, options.spotCheckCount)
      : null,
  }
}

/** Runs one check; an error while checking is that check failing, with the error as its detail. */
export async function runCheck(name: string, fn: () => Promise<Check> | Check): Promise<Check> {
  try {
    return await fn()
  } catch (err) {
    return { name, ok: false, detail: describeError(err) }
  }
}

export function emptyReport(mode: Mode, engine: EngineName, started: Date): Report {
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
    backupCount: 0,
    backupAgeSeconds: null,
    restoreSeconds: null,
    durations: {},
    warnings: [],
  }
}

export function finish(report: Report, started: Date, now: Date): Report {
  report.finishedAt = now.toISOString()
  report.durations.totalMs = now.getTime() - started.getTime()
  report.ok = !report.error && report.checks.length > 0 && report.checks.every((c) => c.ok)
  return report
}

export interface ModeContext {
  config: Config
  log: import('../log.js').Log
  now: () => Date
}

export function databaseFacts(bytes: number, rowCounts: Record<string, number>) {
  return {
    bytes,
    tables: Object.keys(rowCounts).length,
    rows: Object.values(rowCounts).reduce((a, b) => a + b, 0),
  }
}
