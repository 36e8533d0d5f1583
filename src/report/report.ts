import type { Check } from '../checks/checks.js'
import { formatSeconds } from '../checks/checks.js'
import type { Mode } from '../options/inputs.js'
import type { EngineName } from '../engines/engine.js'
import { renderRetention, type RetentionRow } from '../store/retention.js'
import type { JUnitEntry } from '../gate/junit.js'
import { markdownText } from '../util/text.js'

/**
 * What every mode reports, for the JSON report, the job summary, the outputs and the drill log.
 * Each mode adds its own sections (BackupSections, ...): `ModeReport<'drill'>` is a drill's.
 */
export interface ReportCore {
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
  /**
   * Backups with a manifest in backup-dir after the mode ran; null where the job stopped before
   * it looked (a bad input, a database that would not open), which is not the same as none.
   */
  backupCount: number | null
  /** RPO: age of the backup used (verify, drill). */
  backupAgeSeconds: number | null
  /** RTO: seconds the restore took (drill). */
  restoreSeconds: number | null
  /** Milliseconds per phase. */
  durations: Record<string, number>
  warnings: string[]
  /** Set when the mode stopped on an error rather than on a failed check. */
  error?: string
}

/** The artifact a backup uploaded, or the one verify, drill or restore downloaded. */
export interface ArtifactSection {
  name: string
  id: number
  /** upload: the tier and how long GitHub keeps it. */
  tier?: 'daily' | 'weekly'
  retentionDays?: number
  /** download: when it was made, and by which run. */
  createdAt?: string
  runId?: number
}

export interface RetentionSection {
  mode: 'apply' | 'dry-run'
  kept: number
  deleted: number
  freedBytes: number
  decisions: RetentionRow[]
}

export type SmokeSection = {
  name: string
  ok: boolean
  status: number | null
  ms: number
  detail: string
}[]

export interface BackupSections {
  /** restore-check: restored into a scratch copy and checked before it was accepted. */
  restoreChecked?: { seconds: number; checks: string[]; from?: 'stored' | 'snapshot' }
  /** In a workflow run: the trend of database size and backup time, from the catalog. */
  trend?: string
  /** Free space beside the backups, the folder's size, the newest backup's size. */
  space?: { dir: string; free: number; folderBytes: number; newestBytes: number; nextFits: boolean }
  /** What retention kept and deleted in backup-dir. */
  retention?: RetentionSection
  /** With storage: where the backup went off-site, and retention in the bucket. */
  s3?: {
    location: string
    key: string
    tier: string
    lockedUntil: string | null
    retention?: RetentionSection
  }
  /** With upload-artifact. */
  artifact?: ArtifactSection
}

/** What a mode that reads a backup adds (verify, drill, restore). */
export interface ReadSections {
  /** An encrypted backup: whether the key decrypted it (null: not tried). */
  decrypted?: boolean | null
  /** With download-artifact: the artifact used. */
  artifact?: ArtifactSection
}

export interface DrillSections extends ReadSections {
  /** The comment on the tracking issue that records it. */
  evidence?: { issueNumber: number; commentUrl: string; reopened: boolean; created: boolean }
  /** The JSON Lines file the drill record was appended to. */
  drillLog?: string
  /** With smoke-url: the HTTP smoke test's steps. */
  smoke?: SmokeSection
  /** With gate-after-drill: what pytest ran and how each selected test ended. */
  gate?: GateReport
}

export interface RestoreSections extends ReadSections {
  /** What was (or, in a dry run, would be) done. */
  restore?: {
    target: string
    dryRun: boolean
    plan: string[]
    /** The backup of the live database taken first, and how to go back to it. */
    safetyBackup: string | null
    undo: string | null
    /** The runbook's "ensure no active user sessions": unexpired logins in the live database. */
    activeSessions?: { table: string; active: number } | null
  }
  /** With smoke-url: the HTTP smoke test's steps. */
  smoke?: SmokeSection
}

export interface GateSections {
  /** What pytest ran and how each selected test ended. */
  gate?: GateReport
  /** The Content-Security-Policy found in csp-file. */
  csp?: {
    file: string
    markdown: string
    findings: { directive: string; problem: string; severity: 'fail' | 'warn'; line?: number }[]
  }
}

export interface SmokeSections {
  smoke?: SmokeSection
}

interface SectionsOf {
  backup: BackupSections
  verify: ReadSections
  drill: DrillSections
  restore: RestoreSections
  gate: GateSections
  smoke: SmokeSections
}

/** A mode's report: the shared core and that mode's own sections, none of another's. */
export type ModeReport<M extends Mode> = ReportCore & { mode: M } & SectionsOf[M]

/** Any mode's report, as the JSON report, the summary and the outputs read it. */
export type Report = ReportCore &
  BackupSections &
  DrillSections &
  RestoreSections &
  GateSections &
  SmokeSections

/** The security gate's run, from pytest's JUnit XML report. */
export interface GateReport {
  /** As run, for people: `pytest -m "security or csrf"`. */
  command: string
  workingDirectory: string
  markers: string
  minTests: number
  /** pytest's exit code; null when it was killed by a signal. */
  exitCode: number | null
  /** Each selected test counted once; errors also count files pytest could not collect. */
  tests: { selected: number; passed: number; failed: number; errors: number; skipped: number }
  /** Failed and errored tests, collection and internal errors, in the order pytest ran them. */
  failures: JUnitEntry[]
  /** Skipped and xfailed tests: each one is a weakened gate. */
  skipped: JUnitEntry[]
}

/** The job's one-line failure: the error that stopped the mode, else each failed check. */
export function failureMessage(report: Report): string {
  if (report.error) return report.error
  const failed = report.checks.filter((c) => !c.ok)
  return `${report.mode} failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join(' | ')}`
}

export function failedChecks(report: Report): string[] {
  return report.checks.filter((c) => !c.ok).map((c) => c.name)
}

/** A size for people: 1.71 MiB. */
export function bytes(n: number): string {
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

/** Test output in a table cell: one line, no HTML (GitHub renders the summary's HTML). */
const testText = (s: string, max = 300) => {
  const line = s.replace(/\s+/g, ' ').trim()
  const short = line.length > max ? `${line.slice(0, max - 1)}…` : line
  return markdownText(short)
}

/** Rows shown per table; the JSON report has them all. */
const MAX_ROWS = 50

const KIND: Record<JUnitEntry['kind'], string> = {
  failure: 'failed',
  error: 'error',
  collection: 'not collected',
  internal: 'pytest crashed',
  skip: 'skipped',
  xfail: 'xfail',
}

const at = (e: JUnitEntry) => (e.file ? `${e.file}${e.line ? `:${e.line}` : ''}` : '')

function renderGate(gate: GateReport): string[] {
  const t = gate.tests
  const counts = [
    `${t.passed} passed`,
    `${t.failed} failed`,
    `${t.errors} ${t.errors === 1 ? 'error' : 'errors'}`,
    `${t.skipped} skipped`,
  ].join(', ')
  const exit = gate.exitCode === null ? 'killed' : `exit ${gate.exitCode}`
  const lines = [
    '### Security gate',
    '',
    `\`${cell(gate.command)}\` in \`${cell(gate.workingDirectory)}\` (${exit}): **${t.selected} selected**, ${counts}; at least ${gate.minTests} must run`,
    '',
  ]
  const more = (n: number) =>
    n > MAX_ROWS ? [`… and ${n - MAX_ROWS} more in the JSON report`, ''] : []
  if (gate.failures.length) {
    lines.push('| Test | Result | Where | Message |', '| --- | --- | --- | --- |')
    for (const f of gate.failures.slice(0, MAX_ROWS)) {
      lines.push(
        `| ${testText(f.name, 200)} | ❌ ${KIND[f.kind]} | ${testText(at(f))} | ${testText(f.message)} |`,
      )
    }
    lines.push('', ...more(gate.failures.length))
  }
  if (gate.skipped.length) {
    lines.push('**Skipped gate tests** (each one weakens the gate):', '')
    for (const s of gate.skipped.slice(0, MAX_ROWS)) {
      const where = at(s) ? ` (${testText(at(s))})` : ''
      lines.push(
        `- ⚠️ ${testText(s.name, 200)}${where}: ${KIND[s.kind]}${s.message ? `: ${testText(s.message)}` : ''}`,
      )
    }
    lines.push('', ...more(gate.skipped.length))
  }
  return lines
}

/** The job summary, as Markdown: readable at a glance, in a terminal too. */
export function renderSummary(report: Report): string {
  const title = {
    backup: 'Backup',
    verify: 'Verify',
    drill: 'Restore drill',
    gate: 'Security gate',
    restore: 'Restore',
    smoke: 'Smoke test',
  }[report.mode]
  const failed = failedChecks(report)
  const status = report.error
    ? `❌ **failed**: ${markdownText(report.error)}`
    : report.ok
      ? `✅ **passed**: ${report.checks.length} checks`
      : `❌ **failed**: ${failed.join(', ')}`
  // The gate runs tests, not a database engine.
  const heading =
    report.mode === 'gate' || report.mode === 'smoke' ? title : `${title} (${report.engine})`
  const lines = [`## OmniAI ${heading}`, '', status, '']
  if (report.checks.length) {
    lines.push('| Check | Result | Detail |', '| --- | --- | --- |')
    for (const c of report.checks)
      lines.push(`| ${c.name} | ${c.ok ? '✅ pass' : '❌ fail'} | ${markdownText(c.detail)} |`)
    lines.push('')
  }
  if (report.gate) lines.push(...renderGate(report.gate))
  const facts: [string, string][] = []
  if (report.backup) {
    facts.push(['Backup', `\`${report.backup.path}\``])
    if (report.mode === 'backup') {
      facts.push([
        'Proven',
        report.restoreChecked
          ? `restored and checked (${report.restoreChecked.checks.join(', ')}) in ${report.restoreChecked.seconds.toFixed(2)} s${report.restoreChecked.from === 'snapshot' ? ', from the plaintext snapshot it was encrypted from (this job cannot decrypt it)' : report.restoreChecked.from === 'stored' ? ', decoded back from the stored file' : ''}`
          : 'written and read back; not restored (restore-check: true restores each backup)',
      ])
    }
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
  if (report.mode !== 'gate' && report.mode !== 'smoke' && report.backupCount !== null)
    facts.push(['Backups in folder', String(report.backupCount)])
  if (report.space) {
    const s = report.space
    facts.push([
      'Disk space',
      `${bytes(s.free)} free beside the backups (folder ${bytes(s.folderBytes)}, newest ${bytes(s.newestBytes)})${s.nextFits ? '' : ': ⚠️ the next backup will not fit'}`,
    ])
  }
  if (report.artifact) {
    const a = report.artifact
    facts.push([
      'Artifact',
      a.tier
        ? `${a.name} (id ${a.id}), ${a.tier}, kept ${a.retentionDays} days`
        : `${a.name} (id ${a.id}) from run ${a.runId}, made ${a.createdAt}`,
    ])
  }
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
  lines.push(
    '| | |',
    '| --- | --- |',
    ...facts.map(([k, v]) => `| ${k} | ${markdownText(v)} |`),
    '',
  )
  // The CSP section brings its own heading (with the file and the verdict).
  if (report.csp) lines.push(report.csp.markdown, '')
  if (report.smoke) {
    lines.push(
      '### Smoke test',
      '',
      '| Step | Result | Status | Time | Detail |',
      '| --- | --- | --- | --- | --- |',
    )
    for (const s of report.smoke) {
      lines.push(
        `| ${s.name} | ${s.ok ? '✅' : '❌'} | ${s.status ?? '-'} | ${(s.ms / 1000).toFixed(2)} s | ${markdownText(s.detail)} |`,
      )
    }
    lines.push('')
  }
  if (report.trend) lines.push('### Trend', '', report.trend, '')
  if (report.restore) {
    const r = report.restore
    lines.push(
      `### ${r.dryRun ? 'Restore plan (dry run: nothing was changed)' : 'Restore'}`,
      '',
      ...r.plan.map((p, i) => `${i + 1}. ${p}`),
      '',
    )
    if (r.undo) lines.push(`To undo: \`${cell(r.undo)}\``, '')
  }
  if (report.s3) {
    const o = report.s3
    lines.push(
      '### Off-site (S3)',
      '',
      `\`${o.location}${o.key.split('/').pop()}\` (${o.tier})${o.lockedUntil ? `, Object Lock until ${o.lockedUntil}` : ''}`,
      '',
    )
    if (o.retention) {
      const r = o.retention
      lines.push(
        r.mode === 'dry-run'
          ? `Retention (dry run): ${r.decisions.filter((d) => !d.keep).length} would be deleted, ${r.kept} kept`
          : `Retention: ${r.deleted} deleted (${bytes(r.freedBytes)} freed), ${r.kept} kept`,
        '',
        renderRetention(r.decisions),
      )
    }
  }
  if (report.retention) {
    const r = report.retention
    const what =
      r.mode === 'dry-run'
        ? `dry run: ${r.decisions.filter((d) => !d.keep).length} would be deleted, ${r.kept} kept`
        : `${r.deleted} deleted (${bytes(r.freedBytes)} freed), ${r.kept} kept`
    lines.push('### Retention', '', what, '', renderRetention(r.decisions))
  }
  for (const w of report.warnings) lines.push(`> ⚠️ ${markdownText(w)}`, '')
  return lines.join('\n')
}
