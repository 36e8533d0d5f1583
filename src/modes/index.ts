import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { Config } from '../config.js'
import { describeError } from '../errors.js'
import type { Log } from '../log.js'
import type { Report } from '../report.js'
import { checkDrillAge, drillHistory, evidenceSettings } from '../evidence.js'
import { runCheck } from '../inspect.js'
import { writeFailureCause } from '../space.js'
import { backup } from './backup.js'
import { emptyReport, finish } from './common.js'
import { drill } from './drill.js'
import { gate } from './gate.js'
import { restore } from './restore.js'
import { smoke } from './smoke.js'
import { verify } from './verify.js'

const MODES = { backup, verify, drill, gate, restore, smoke }

/**
 * The staleness gate, usable in any mode (a PR check included): when was the last successful
 * drill? In a workflow run the tracking issue says; elsewhere the drill log does.
 */
async function drillAge(config: Config, log: Log, at: Date) {
  const maxDays = config.maxDrillAgeDays!
  if (process.env.GITHUB_REPOSITORY && config.drillEvidence !== 'none') {
    const settings = evidenceSettings({
      token: config.githubToken,
      title: config.drillIssueTitle,
      author: config.drillEvidenceAuthor,
    })
    const history = await drillHistory(settings, log)
    const check = checkDrillAge(history.last, maxDays, at, history.issueNumber)
    // Say what the verdict rests on: records left out, and a run that could not be checked.
    const notes: string[] = []
    if (history.ignored.length)
      notes.push(`${history.ignored.length} record(s) that do not count left out, see the log`)
    if (history.runProof === 'skipped')
      notes.push('its workflow run not checked: the job has no actions: read')
    if (notes.length) check.detail += ` (${notes.join('; ')})`
    return check
  }
  let last: { date: string } | null = null
  const text = config.drillLog ? await fs.readFile(config.drillLog, 'utf8').catch(() => '') : ''
  for (const line of text.split('\n')) {
    try {
      const r = JSON.parse(line) as { ok?: boolean; date?: string }
      if (r.ok && r.date) last = { date: r.date }
    } catch {
      // a torn or foreign line: not a record
    }
  }
  return checkDrillAge(last, maxDays, at)
}

/**
 * Runs the configured mode and writes the JSON report. An error (bad input, unreadable file)
 * becomes a failed report carrying the one-line message, so every run leaves a report.
 */
export async function runMode(
  config: Config,
  log: Log,
  now: () => Date = () => new Date(),
): Promise<Report> {
  const started = now()
  let report: Report
  try {
    report = await MODES[config.mode]({ config, log, now })
    if (config.maxDrillAgeDays !== null) {
      report.checks.push(await runCheck('drill-age', () => drillAge(config, log, now())))
      finish(report, started, now())
    }
  } catch (err) {
    report = emptyReport(config.mode, config.engine, started)
    report.error = describeError(err)
    finish(report, started, now())
  }
  try {
    await fs.mkdir(path.dirname(path.resolve(config.reportFile)), { recursive: true })
    await fs.writeFile(config.reportFile, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 })
  } catch (err) {
    // The report is evidence, not the result: the mode's outcome stands, the problem is logged.
    log.warning(
      `report-file: cannot write ${config.reportFile}: ${writeFailureCause(err) ?? describeError(err)}. Fix: set report-file to a writable path with room.`,
    )
  }
  return report
}
