import * as os from 'node:os'
import * as core from '@actions/core'
import { parseConfig } from '../options/config.js'
import { Inputs, type Output } from '../options/inputs.js'
import { pgSecrets } from '../engines/postgres/tools.js'
import { describeError, UserError } from '../util/errors.js'
import { actionOutputs } from '../options/action-yml.js'
import { groupingLog, type Log } from '../util/log.js'
import { runMode } from '../modes/index.js'
import { failedChecks, failureMessage, renderSummary } from '../report/report.js'
import { SECRET_INPUTS } from '../util/secrets.js'
import { oneLine } from '../util/text.js'

export const actionsLog: Log = groupingLog({
  info: (message) => core.info(message),
  warning: (message) => core.warning(message),
  startGroup: (name) => core.startGroup(name),
  endGroup: () => core.endGroup(),
  annotate: (level, message, { file, line, title }) =>
    (level === 'warning' ? core.warning : core.error)(message, { file, startLine: line, title }),
  mask: (secret) => core.setSecret(secret),
  // As @actions/core writes its lines: to stdout, one at a time, so the order holds.
  stopCommands: (token) => void process.stdout.write(`::stop-commands::${token}${os.EOL}`),
  resumeCommands: (token) => void process.stdout.write(`::${token}::${os.EOL}`),
})

/**
 * Masks every password of a database URL (user info, `?password=`, `?sslpassword=`, and
 * PGPASSWORD when it supplies one) so no log line, summary or output can show it. A SQLite
 * path has none.
 */
export function maskSecrets(connectionString: string, env = process.env): void {
  for (const secret of pgSecrets(connectionString, env)) core.setSecret(secret)
}

/**
 * The action: inputs into a Config, the mode, then outputs, summary and the job's status.
 * `subAction` is the job a sub-action's entry fixed (drill/action.yml runs dist/drill.js); null
 * for the root action, whose `mode` input chooses.
 */
export async function run(subAction: string | null = null): Promise<void> {
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
    config = parseConfig(subAction ? subActionInputs(subAction) : (name) => core.getInput(name))
  } catch (err) {
    core.setFailed(describeError(err))
    return
  }
  const report = await runMode(config, actionsLog)
  for (const c of report.checks) {
    core.info(oneLine(`${c.ok ? '✅' : '❌'} ${c.name}: ${c.detail}`))
  }
  const tests = report.gate?.tests
  const outputs: Record<Output, string> = {
    ok: String(report.ok),
    'backup-path': report.backup?.path ?? '',
    sha256: report.backup?.sha256 ?? '',
    'size-bytes': String(report.backup?.bytes ?? ''),
    report: config.reportFile,
    'backup-count': report.backupCount === null ? '' : String(report.backupCount),
    'backup-age-seconds':
      report.backupAgeSeconds === null ? '' : String(Math.round(report.backupAgeSeconds)),
    'restore-seconds': report.restoreSeconds === null ? '' : report.restoreSeconds.toFixed(3),
    'failed-checks': failedChecks(report).join(','),
    'tests-passed': tests ? String(tests.passed) : '',
    'tests-failed': tests ? String(tests.failed) : '',
    'tests-errors': tests ? String(tests.errors) : '',
    'tests-skipped': tests ? String(tests.skipped) : '',
    'artifact-id': report.artifact ? String(report.artifact.id) : '',
    'drill-issue-number': report.evidence ? String(report.evidence.issueNumber) : '',
    'drill-comment-url': report.evidence?.commentUrl ?? '',
  }
  // A sub-action sets the outputs its action.yml declares; the root action all of them.
  const declared = new Set(actionOutputs(subAction ? config.mode : null))
  for (const [name, value] of Object.entries(outputs)) {
    if (declared.has(name as Output)) core.setOutput(name, value)
  }
  try {
    await core.summary.addRaw(renderSummary(report)).write()
  } catch (err) {
    // No GITHUB_STEP_SUMMARY (a runner that does not provide one): the log still has it all.
    core.warning(`job summary not written: ${describeError(err)}`)
  }
  if (!report.ok) core.setFailed(failureMessage(report))
}

/**
 * A sub-action's inputs: its own job as the mode. `mode` is not one of its inputs, so a step that
 * sets it anyway (the runner only warns) is told, rather than running one job while asking for
 * another.
 */
function subActionInputs(subAction: string): (name: Inputs) => string {
  const given = core.getInput(Inputs.Mode)
  if (given && given !== subAction) {
    throw new UserError(
      `mode: this is the ${subAction} action, and mode is ${given}. Fix: remove mode, or use the ${given} action (omniai/omniai-backups/${given}@v1).`,
    )
  }
  return (name) => (name === Inputs.Mode ? subAction : core.getInput(name))
}
