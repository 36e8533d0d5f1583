import { UserError } from '../util/errors.js'
import { engineOf, type SmokeModeOptions, type SmokingOptions } from '../options/config.js'
import type { ModeReport } from '../report/report.js'
import { smokeTest } from '../smoke/smoke.js'
import { emptyReport, finish, type ModeContext } from './common.js'

/**
 * The runbook's restore step 4 (health, login, list conversations) as a check in the report,
 * when smoke-url is set: after a restore, after a drill, or on its own (mode smoke, once the
 * backend has been started on the restored database).
 */
export async function smokeInto(
  report: ModeReport<'drill' | 'restore' | 'smoke'>,
  { config, log }: ModeContext<SmokingOptions>,
): Promise<void> {
  const smoke = config.smoke
  if (!smoke) return
  const result = await log.group('Smoke test', () =>
    smokeTest({
      baseUrl: smoke.url,
      ...(smoke.healthPath ? { healthPath: smoke.healthPath } : {}),
      timeoutSeconds: smoke.timeoutSeconds,
      ...(smoke.login ? { login: smoke.login } : {}),
      ...(smoke.conversationsPath ? { conversationsPath: smoke.conversationsPath } : {}),
      requireConversations: smoke.requireConversations,
      log,
    }),
  )
  report.checks.push(result.check)
  report.smoke = result.steps
}

export async function smoke(ctx: ModeContext<SmokeModeOptions>): Promise<ModeReport<'smoke'>> {
  const started = ctx.now()
  if (!ctx.config.smoke) {
    throw new UserError(
      'smoke-url: not set, and mode smoke has nothing else to do. Fix: set smoke-url to the running backend, e.g. http://localhost:8000.',
    )
  }
  const report = emptyReport('smoke', engineOf(ctx.config), started)
  await smokeInto(report, ctx)
  return finish(report, started, ctx.now())
}
