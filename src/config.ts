/**
 * Every input, parsed and validated once. The rest of the code reads this typed Config and
 * never the raw inputs. Names match action.yml; the CLI takes the same names as --flags.
 */
import * as os from 'node:os'
import * as path from 'node:path'
import type { EngineName } from './engines/engine.js'
import { UserError } from './errors.js'

export enum Inputs {
  Mode = 'mode',
  Engine = 'engine',
  ConnectionString = 'connection-string',
  BackupDir = 'backup-dir',
  BackupFile = 'backup-file',
  Prefix = 'prefix',
  ConversationsTable = 'conversations-table',
  AuditTable = 'audit-table',
  SpotCheckCount = 'spot-check-count',
  DrillLog = 'drill-log',
  MaxBackupAge = 'max-backup-age',
  MaxRestoreSeconds = 'max-restore-seconds',
  ReportFile = 'report-file',
  ScratchDir = 'scratch-dir',
  RestoreConnectionString = 'restore-connection-string',
  PgBinDir = 'pg-bin-dir',
  Jobs = 'jobs',
}

export const DEFAULTS: Record<Inputs, string> = {
  [Inputs.Mode]: '',
  [Inputs.Engine]: '',
  [Inputs.ConnectionString]: 'omniai.db',
  [Inputs.BackupDir]: 'backups',
  [Inputs.BackupFile]: '',
  [Inputs.Prefix]: 'omniai',
  [Inputs.ConversationsTable]: 'conversations',
  [Inputs.AuditTable]: 'audit_logs',
  [Inputs.SpotCheckCount]: '5',
  [Inputs.DrillLog]: '',
  [Inputs.MaxBackupAge]: '',
  [Inputs.MaxRestoreSeconds]: '',
  [Inputs.ReportFile]: '',
  [Inputs.ScratchDir]: '',
  [Inputs.RestoreConnectionString]: '',
  [Inputs.PgBinDir]: '',
  [Inputs.Jobs]: '1',
}

export const MODES = ['backup', 'verify', 'drill'] as const
export type Mode = (typeof MODES)[number]
export const ENGINES: readonly EngineName[] = ['sqlite', 'postgres']

export interface Config {
  mode: Mode
  engine: EngineName
  /** True when `engine` was set rather than inferred. */
  engineExplicit: boolean
  connectionString: string
  backupDir: string
  backupFile: string | null
  prefix: string
  /** null when the input is `none`. */
  conversationsTable: string | null
  auditTable: string | null
  spotCheckCount: number
  drillLog: string | null
  maxBackupAgeSeconds: number | null
  maxRestoreSeconds: number | null
  reportFile: string
  scratchDir: string
  /** postgres drill: the server to restore into (a service container), never the source. */
  restoreConnectionString: string | null
  /** postgres: a folder holding pg_dump and pg_restore, searched first. */
  pgBinDir: string | null
  /** postgres: parallel jobs for pg_dump (directory format) and pg_restore. */
  jobs: number
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }

/** `26h`, `2d`, `90m`, `3600s`, `1w` to seconds. */
export function parseDuration(text: string, input: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(text.trim())
  if (!m) {
    throw new UserError(
      `${input}: "${text}" is not a duration. Fix: give a number and a unit (s, m, h, d, w), e.g. 26h, 2d, 90m.`,
    )
  }
  const seconds = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!
  if (seconds <= 0) throw new UserError(`${input}: must be more than 0. Fix: e.g. 26h.`)
  return seconds
}

function oneOf<T extends string>(value: string, allowed: readonly T[], input: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new UserError(
    `${input}: "${value}" is not one of ${allowed.join(', ')}. Fix: set ${input} to one of them.`,
  )
}

function integer(text: string, input: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw new UserError(
      `${input}: "${text}" is not a whole number from ${min} to ${max}. Fix: e.g. ${input}: ${DEFAULTS[input as Inputs] || min}.`,
    )
  }
  return Number(text)
}

function seconds(text: string, input: string): number {
  const n = Number(text)
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
    throw new UserError(
      `${input}: "${text}" is not a number of seconds above 0. Fix: e.g. ${input}: 600.`,
    )
  }
  return n
}

function tableName(text: string, input: string): string | null {
  if (text === 'none') return null
  if (text.trim() === '' || [...text].some((ch) => ch.charCodeAt(0) < 0x20)) {
    throw new UserError(
      `${input}: "${text}" is not a table name. Fix: name a table, or none to skip this check.`,
    )
  }
  return text
}

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s)
}

/** Reads every input through `get` (which returns '' for unset) and validates it. */
export function parseConfig(
  get: (input: Inputs) => string,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const read = (input: Inputs) => {
    const v = get(input).trim()
    return v === '' ? DEFAULTS[input] : v
  }
  const modeText = read(Inputs.Mode)
  if (modeText === '') {
    throw new UserError(`mode: not set. Fix: set mode to one of ${MODES.join(', ')}.`)
  }
  const mode = oneOf(modeText, MODES, Inputs.Mode)
  const connectionString = read(Inputs.ConnectionString)
  const inferred: EngineName = isPostgresUrl(connectionString) ? 'postgres' : 'sqlite'
  const engineText = read(Inputs.Engine)
  const engine = engineText ? oneOf(engineText, ENGINES, Inputs.Engine) : inferred
  if (engineText && mode === 'backup' && engine !== inferred) {
    throw new UserError(
      engine === 'postgres'
        ? `connection-string: engine is postgres but connection-string is not a postgres:// URL. Fix: give the database URL, or set engine: sqlite.`
        : `connection-string: engine is sqlite but connection-string is a postgres:// URL. Fix: give the SQLite file path, or set engine: postgres.`,
    )
  }
  const prefix = read(Inputs.Prefix)
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(prefix)) {
    throw new UserError(
      `prefix: "${prefix}" may only hold letters, digits, ".", "_" and "-". Fix: e.g. prefix: omniai.`,
    )
  }
  const backupDir = read(Inputs.BackupDir)
  const drillLogText = read(Inputs.DrillLog)
  const temp = env.RUNNER_TEMP || os.tmpdir()
  const maxAge = read(Inputs.MaxBackupAge)
  const maxRestore = read(Inputs.MaxRestoreSeconds)
  return {
    mode,
    engine,
    engineExplicit: engineText !== '',
    connectionString,
    backupDir,
    backupFile: read(Inputs.BackupFile) || null,
    prefix,
    conversationsTable: tableName(read(Inputs.ConversationsTable), Inputs.ConversationsTable),
    auditTable: tableName(read(Inputs.AuditTable), Inputs.AuditTable),
    spotCheckCount: integer(read(Inputs.SpotCheckCount), Inputs.SpotCheckCount, 1, 100),
    drillLog:
      drillLogText === 'none' ? null : drillLogText || path.join(backupDir, 'drill-log.jsonl'),
    maxBackupAgeSeconds: maxAge ? parseDuration(maxAge, Inputs.MaxBackupAge) : null,
    maxRestoreSeconds: maxRestore ? seconds(maxRestore, Inputs.MaxRestoreSeconds) : null,
    reportFile:
      read(Inputs.ReportFile) ||
      (env.RUNNER_TEMP
        ? path.join(env.RUNNER_TEMP, 'omniai-backup-report.json')
        : 'omniai-backup-report.json'),
    scratchDir: read(Inputs.ScratchDir) || temp,
    restoreConnectionString: read(Inputs.RestoreConnectionString) || null,
    pgBinDir: read(Inputs.PgBinDir) || null,
    jobs: integer(read(Inputs.Jobs), Inputs.Jobs, 1, 64),
  }
}
