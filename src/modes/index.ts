import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { engineOf, type Config, type Options } from '../options/config.js'
import { describeError, UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'
import type { Report } from '../report/report.js'
import type { Check } from '../checks/checks.js'
import { checkDrillAge, drillHistory, evidenceSettings, IssuesRefused } from '../github/evidence.js'
import { runCheck } from '../checks/inspect.js'
import { writeFailureCause } from '../util/space.js'
import { backup } from './backup.js'
import { emptyReport, finish } from './common.js'
import { drill } from './drill.js'
import { gate } from './gate.js'
import { restore } from './restore.js'
import { smoke } from './smoke.js'
import { verify } from './verify.js'
import { makeDirs, readRegularFile } from '../util/fs.js'

/** The mode `config` is for, given its own options. */
function runOne(config: Options, log: Log, now: () => Date): Promise<Report> {
  switch (config.mode) {
    case 'backup':
      return backup({ config, log, now })
    case 'verify':
      return verify({ config, log, now })
    case 'drill':
      return drill({ config, log, now })
    case 'restore':
      return restore({ config, log, now })
    case 'gate':
      return gate({ config, log, now })
    case 'smoke':
      return smoke({ config, log, now })
  }
}

/**
 * The staleness gate, usable in any mode (a PR check included): when was the last successful
 * drill? In a workflow run the tracking issue says; elsewhere the drill log does.
 */
async function drillAge(config: Config, log: Log, at: Date, report: Report) {
  const maxDays = config.maxDrillAgeDays!
  if (config.runner.repository && config.drillEvidence !== 'none') {
    const settings = evidenceSettings(
      {
        token: config.githubToken,
        title: config.drillIssueTitle,
        author: config.drillEvidenceAuthor,
      },
      config.runner,
    )
    let history
    try {
      history = await drillHistory(settings, log)
    } catch (err) {
      if (!(err instanceof IssuesRefused) || config.drillEvidence !== 'auto') throw err
      return drillLogInstead(config, log, at, report, err)
    }
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
  const text = config.drillLog ? await readDrillLog(config.drillLog).catch(() => '') : ''
  return checkDrillAge(lastInDrillLog(text), maxDays, at)
}

/** The newest passing drill in the drill log's text (JSON Lines), or null. */
function lastInDrillLog(text: string): { date: string } | null {
  let last: { date: string } | null = null
  for (const line of text.split('\n')) {
    try {
      const r = JSON.parse(line) as { ok?: boolean; date?: string }
      if (r.ok && r.date) last = { date: r.date }
    } catch {
      // a torn or foreign line: not a record
    }
  }
  return last
}

/**
 * drill-evidence: auto, and the tracking issue cannot be read (no `issues: read`, or Issues turned
 * off): the drill log decides, with a warning that names the fix, when there is one. Never in a
 * pull request's run (or a merge queue's): its files are the pull request's, and a drill log it
 * brings would let it pass the gate. Without a drill log to read, the gate fails with the fix.
 */
async function drillLogInstead(
  config: Config,
  log: Log,
  at: Date,
  report: Report,
  refused: IssuesRefused,
): Promise<Check> {
  const event = config.runner.eventName
  if (/^pull_request/.test(event) || event === 'merge_group') {
    throw new UserError(
      `${refused.message} (drill-evidence: auto reads no drill log instead in a ${event} run, whose files a pull request can write)`,
    )
  }
  const text = config.drillLog ? await readDrillLog(config.drillLog).catch(() => null) : null
  if (text === null) {
    throw new UserError(
      `${refused.message} (drill-evidence: auto found no drill log to read instead${config.drillLog ? ` at ${config.drillLog}` : ''})`,
    )
  }
  const note = `${refused.message} (drill-evidence: auto, so the drill log ${config.drillLog} decides instead)`
  // Said once: when this step's drill already warned that it could not write the issue, the
  // same missing permission is a log line here.
  if (report.warnings.some((w) => w.startsWith('drill-evidence:'))) log.info(note)
  else {
    report.warnings.push(note)
    log.warning(note)
  }
  const check = checkDrillAge(lastInDrillLog(text), config.maxDrillAgeDays!, at)
  check.detail += ` (from the drill log ${config.drillLog}: the tracking issue could not be read)`
  return check
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
  // First in the log, and first among the summary's warnings: an input this mode ignores.
  for (const warning of config.ignoredInputs) log.warning(warning)
  let report: Report
  try {
    report = await runOne(config, log, now)
    if (config.maxDrillAgeDays !== null) {
      report.checks.push(await runCheck('drill-age', () => drillAge(config, log, now(), report)))
      finish(report, started, now())
    }
  } catch (err) {
    report = emptyReport(config.mode, engineOf(config), started)
    report.error = describeError(err)
    finish(report, started, now())
  }
  report.warnings.unshift(...config.ignoredInputs)
  try {
    await makeDirs(path.dirname(path.resolve(config.reportFile)))
    await fs.writeFile(config.reportFile, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 })
  } catch (err) {
    // The report is evidence, not the result: the mode's outcome stands, the problem is logged.
    log.warning(
      `report-file: cannot write ${config.reportFile}: ${writeFailureCause(err) ?? describeError(err)}. Fix: set report-file to a writable path with room.`,
    )
  }
  return report
}

/**
 * The drill log, read as a regular file and not through a symbolic link: a FIFO planted under
 * its name would stall the job, a link would read whatever the runner can.
 */
async function readDrillLog(file: string): Promise<string> {
  return (await readRegularFile(file, { follow: false })).toString('utf8')
}
