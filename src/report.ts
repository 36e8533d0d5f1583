import type { Check } from './checks.js'
import { formatSeconds } from './checks.js'
import type { Mode } from './config.js'
import type { EngineName } from './engines/engine.js'

/** What a mode did, for the JSON report, the job summary, the outputs and the drill log. */
export interface Report {
  tool: string
  mode: Mode
  engine: EngineName
  ok: boolean
  startedAt: string
  finishedAt: string
  backup: { path: string; sha256: string; bytes: number; createdAt: string } | null
  checks: Check[]
  /** The database the mode looked at: the source (backup), the backup (verify) or the restored copy (drill). */
  database: { bytes: number; tables: number; rows: number } | null
  /** Backups with a manifest in backup-dir after the mode ran. */
  backupCount: number
  /** RPO: age of the backup used (verify, drill). */
  backupAgeSeconds: number | null
  /** RTO: seconds the restore took (drill). */
  restoreSeconds: number | null
  /** Milliseconds per phase. */
  durations: Record<string, number>
  warnings: string[]
  /** drill: the JSON Lines file the drill record was appended to. */
  drillLog?: string
  /** Set when the mode stopped on an error rather than on a failed check. */
  error?: string
}

export function failedChecks(report: Report): string[] {
  return report.checks.filter((c) => !c.ok).map((c) => c.name)
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = -1
  do {
    v /= 1024
    u++
  } while (v >= 1024 && u < units.length - 1)
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

/** The job summary, as Markdown: readable at a glance, in a terminal too. */
export function renderSummary(report: Report): string {
  const title = { backup: 'Backup', verify: 'Verify', drill: 'Restore drill' }[report.mode]
  const failed = failedChecks(report)
  const status = report.error
    ? `❌ **failed**: ${report.error}`
    : report.ok
      ? `✅ **passed**: ${report.checks.length} checks`
      : `❌ **failed**: ${failed.join(', ')}`
  const lines = [`## OmniAI ${title} (${report.engine})`, '', status, '']
  if (report.checks.length) {
    lines.push('| Check | Result | Detail |', '| --- | --- | --- |')
    for (const c of report.checks)
      lines.push(`| ${c.name} | ${c.ok ? '✅ pass' : '❌ fail'} | ${cell(c.detail)} |`)
    lines.push('')
  }
  const facts: [string, string][] = []
  if (report.backup) {
    facts.push(['Backup', `\`${report.backup.path}\``])
    facts.push(['Size', bytes(report.backup.bytes)])
    facts.push(['SHA-256', `\`${report.backup.sha256}\``])
    facts.push(['Taken at', report.backup.createdAt])
  }
  if (report.backupAgeSeconds !== null)
    facts.push(['Backup age (RPO)', formatSeconds(report.backupAgeSeconds)])
  if (report.restoreSeconds !== null)
    facts.push(['Restore time (RTO)', `${report.restoreSeconds.toFixed(2)} s`])
  if (report.database) {
    facts.push([
      report.mode === 'drill' ? 'Restored database' : 'Database',
      `${bytes(report.database.bytes)}, ${report.database.tables} tables, ${report.database.rows} rows`,
    ])
  }
  facts.push(['Backups in folder', String(report.backupCount)])
  const total = report.durations.totalMs
  if (total !== undefined) {
    const phases = Object.entries(report.durations)
      .filter(([k]) => k !== 'totalMs')
      .map(([k, v]) => `${k.replace(/Ms$/, '')} ${(v / 1000).toFixed(2)} s`)
    facts.push([
      'Duration',
      `${(total / 1000).toFixed(2)} s${phases.length ? ` (${phases.join(', ')})` : ''}`,
    ])
  }
  lines.push('| | |', '| --- | --- |', ...facts.map(([k, v]) => `| ${k} | ${cell(v)} |`), '')
  for (const w of report.warnings) lines.push(`> ⚠️ ${w}`, '')
  return lines.join('\n')
}
