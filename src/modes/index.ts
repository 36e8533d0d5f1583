import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { Config } from '../config.js'
import { describeError } from '../errors.js'
import type { Log } from '../log.js'
import type { Report } from '../report.js'
import { backup } from './backup.js'
import { emptyReport, finish } from './common.js'
import { drill } from './drill.js'
import { gate } from './gate.js'
import { restore } from './restore.js'
import { smoke } from './smoke.js'
import { verify } from './verify.js'

const MODES = { backup, verify, drill, gate, restore, smoke }

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
    log.warning(`report-file: cannot write ${config.reportFile} (${describeError(err)}).`)
  }
  return report
}
