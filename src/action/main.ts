import * as core from '@actions/core'
import { Inputs, parseConfig } from '../options/config.js'
import { pgSecrets } from '../engines/postgres/tools.js'
import { describeError } from '../util/errors.js'
import { groupingLog, type Log } from '../util/log.js'
import { runMode } from '../modes/index.js'
import { failedChecks, failureMessage, renderSummary } from '../report/report.js'
import { SECRET_INPUTS } from '../util/secrets.js'

export const actionsLog: Log = groupingLog({
  info: (message) => core.info(message),
  warning: (message) => core.warning(message),
  startGroup: (name) => core.startGroup(name),
  endGroup: () => core.endGroup(),
  annotate: (level, message, { file, line, title }) =>
    (level === 'warning' ? core.warning : core.error)(message, { file, startLine: line, title }),
  mask: (secret) => core.setSecret(secret),
})

/**
 * Masks every password of a database URL (user info, `?password=`, `?sslpassword=`, and
 * PGPASSWORD when it supplies one) so no log line, summary or output can show it. A SQLite
 * path has none.
 */
export function maskSecrets(connectionString: string, env = process.env): void {
  for (const secret of pgSecrets(connectionString, env)) core.setSecret(secret)
}

/** The action: inputs into a Config, the mode, then outputs, summary and the job's status. */
export async function run(): Promise<void> {
  // Tells the post step (the same file, run again at the end of the job) that it is the post step.
  core.saveState('isPost', 'true')
  maskSecrets(core.getInput(Inputs.ConnectionString))
  maskSecrets(core.getInput(Inputs.RestoreConnectionString))
  if (process.env.PGPASSWORD) core.setSecret(process.env.PGPASSWORD)
  // S3 credentials from the environment (aws-actions/configure-aws-credentials sets these).
  for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
    if (process.env[name]) core.setSecret(process.env[name])
  // Keys, passphrases, the smoke test's login body, the token: never in a log line or the summary.
  for (const input of SECRET_INPUTS) {
    if (input === Inputs.ConnectionString || input === Inputs.RestoreConnectionString) continue
    for (const line of core.getInput(input).split(/\r?\n/))
      if (line.trim()) core.setSecret(line.trim())
  }
  let config
  try {
    config = parseConfig((name) => core.getInput(name))
  } catch (err) {
    core.setFailed(describeError(err))
    return
  }
  const report = await runMode(config, actionsLog)
  for (const c of report.checks) {
    core.info(`${c.ok ? '✅' : '❌'} ${c.name}: ${c.detail}`)
  }
  core.setOutput('ok', String(report.ok))
  core.setOutput('backup-path', report.backup?.path ?? '')
  core.setOutput('sha256', report.backup?.sha256 ?? '')
  core.setOutput('size-bytes', String(report.backup?.bytes ?? ''))
  core.setOutput('report', config.reportFile)
  core.setOutput('backup-count', String(report.backupCount))
  core.setOutput(
    'backup-age-seconds',
    report.backupAgeSeconds === null ? '' : String(Math.round(report.backupAgeSeconds)),
  )
  core.setOutput(
    'restore-seconds',
    report.restoreSeconds === null ? '' : report.restoreSeconds.toFixed(3),
  )
  core.setOutput('failed-checks', failedChecks(report).join(','))
  const tests = report.gate?.tests
  core.setOutput('tests-passed', tests ? String(tests.passed) : '')
  core.setOutput('tests-failed', tests ? String(tests.failed) : '')
  core.setOutput('tests-errors', tests ? String(tests.errors) : '')
  core.setOutput('tests-skipped', tests ? String(tests.skipped) : '')
  core.setOutput('artifact-id', report.artifact ? String(report.artifact.id) : '')
  core.setOutput('drill-issue-number', report.evidence ? String(report.evidence.issueNumber) : '')
  core.setOutput('drill-comment-url', report.evidence?.commentUrl ?? '')
  try {
    await core.summary.addRaw(renderSummary(report)).write()
  } catch (err) {
    // No GITHUB_STEP_SUMMARY (a runner that does not provide one): the log still has it all.
    core.warning(`job summary not written: ${describeError(err)}`)
  }
  if (!report.ok) core.setFailed(failureMessage(report))
}
