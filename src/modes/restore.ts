import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { createEngine } from '../engines/index.js'
import { UserError } from '../errors.js'
import type { Report } from '../report.js'
import { backup } from './backup.js'
import { finish, type ModeContext } from './common.js'
import { checkRestored } from './drill.js'
import { plaintextOf } from './plain.js'
import { smokeInto } from './smoke.js'
import { checksumOf, reportOn, withSelection, type Selection } from './verify.js'

/**
 * The runbook's Restore: put a backup back as the live database. It destroys the current data,
 * so it asks for it (confirm must name the target), refuses a backup of another engine or
 * source, refuses while the database is in use (the runbook's "stop the backend"), verifies the
 * backup first, and takes a safety backup of the current database through the normal backup
 * path so that restoring the wrong file can itself be undone. Afterwards the drill's checks run
 * on the restored database against the backup's manifest.
 */
export async function restore(ctx: ModeContext): Promise<Report> {
  return withSelection(ctx, async (selection) => {
    await fs.mkdir(ctx.config.scratchDir, { recursive: true })
    const work = await fs.mkdtemp(path.join(ctx.config.scratchDir, 'omniai-restore-'))
    try {
      return await restoreSelected(ctx, selection, work)
    } finally {
      await fs.rm(work, { recursive: true, force: true })
    }
  })
}

async function restoreSelected(
  ctx: ModeContext,
  selection: Selection,
  work: string,
): Promise<Report> {
  const { config, log, now } = ctx
  const { entry } = selection
  const started = now()
  const { manifest } = entry
  const report = reportOn('restore', config.engine, selection, started)

  if (manifest.engine !== config.engine) {
    throw new UserError(
      `backup-file: ${entry.path} is a ${manifest.engine} backup, and connection-string is a ${config.engine} database. Fix: choose a ${config.engine} backup, or the connection-string it belongs to.`,
    )
  }
  const engine = createEngine(config.engine, config)
  const target = engine.liveName()
  const from = sourceName(manifest.source.description)
  if (from !== target) {
    throw new UserError(
      `backup-file: ${path.basename(entry.path)} is a backup of ${from}, not of ${target}. Fix: choose a backup of ${target}, or set connection-string to ${from}'s location.`,
    )
  }
  if (!config.dryRun && config.confirm !== target) {
    throw new UserError(
      `confirm: a restore replaces the live database ${target}${config.confirm ? ` (confirm says "${config.confirm}")` : ''}. Fix: set confirm: ${target} to proceed, or dry-run: true to see the plan first.`,
    )
  }

  // The backup must prove itself before anything is touched.
  const checks = [await checksumOf(entry)]
  const plain = await plaintextOf(entry, config, work, log)
  if (plain.check) checks.push(plain.check)
  const ref = plain.ref
  if (ref)
    checks.push(
      ...(await log.group('Verify the backup', () => engine.verifyBackup(ref, log))).checks,
    )
  report.checks.push(...checks)
  const bad = checks.filter((c) => !c.ok)
  if (bad.length) {
    throw new UserError(
      `backup-file: ${path.basename(entry.path)} fails verification (${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}); nothing was changed. Fix: restore another backup (backup-file).`,
    )
  }
  const users = await engine.liveUsers()
  if (users.length) {
    throw new UserError(
      `connection-string: ${target} is in use by ${users.join(', ')}. Fix: stop the OmniAI backend first (the runbook's restore step 1), then run the restore again; nothing was changed.`,
    )
  }

  const exists = await engine.liveExists()
  const safetyDir = path.join(config.backupDir, 'pre-restore')
  const plan = [
    `verified ${path.basename(entry.path)} (taken ${manifest.createdAt}): ${checks.map((c) => c.name).join(', ')} passed`,
    exists
      ? `back up the current ${target} into ${safetyDir} (manifest included)`
      : `${target} does not exist yet: no safety backup needed`,
    `replace ${target} with ${path.basename(entry.path)}${config.engine === 'sqlite' ? ' (written beside it, fsynced, renamed over it; stale -wal/-shm removed)' : ' (pg_restore --clean --if-exists in one transaction)'}`,
    `check the restored ${target} against the backup's manifest: schema, row counts, recent conversations, audit log`,
  ]
  report.restore = { target, dryRun: config.dryRun, plan, safetyBackup: null, undo: null }
  if (config.dryRun) {
    log.info(`dry run: ${plan.join('; ')}`)
    return finish(report, started, now())
  }

  if (exists) {
    const safety = await log.group('Safety backup of the current database', () =>
      backup({
        ...ctx,
        config: {
          ...config,
          backupDir: safetyDir,
          prefix: `${config.prefix}-pre-restore`,
          retention: 'off',
          uploadArtifact: false,
        },
      }),
    )
    if (!safety.ok || !safety.backup) {
      throw new UserError(
        `connection-string: the safety backup of ${target} failed (${
          safety.error ??
          safety.checks
            .filter((c) => !c.ok)
            .map((c) => c.detail)
            .join('; ')
        }); nothing was changed.`,
      )
    }
    report.restore.safetyBackup = safety.backup.path
    report.restore.undo = `omniai-backup restore --connection-string ${config.engine === 'sqlite' ? config.connectionString : '<the same URL>'} --backup-dir ${safetyDir} --backup-file ${safety.backup.path} --confirm ${target}`
    log.info(`safety backup: ${safety.backup.path}. To undo this restore: ${report.restore.undo}`)
  }

  const t0 = performance.now()
  if (!ref) throw new Error('unreachable: an undecodable backup fails verification above')
  const db = await log.group('Restore', () => engine.replaceLive(ref, log))
  report.restoreSeconds = (performance.now() - t0) / 1000
  try {
    const { checks: after, database } = await log.group('Checks', () => checkRestored(db, manifest))
    report.checks.push(
      ...after.map((c) => ({ ...c, name: c.name === 'integrity' ? 'restored-integrity' : c.name })),
    )
    report.database = database
  } finally {
    await db.close()
  }
  await smokeInto(report, ctx)
  return finish(report, started, now())
}

/** The source's name as the manifest recorded it: a SQLite file name, or a PostgreSQL URL's database. */
function sourceName(description: string): string {
  try {
    const url = new URL(description)
    if (/^postgres(ql)?:$/.test(url.protocol)) return decodeURIComponent(url.pathname.slice(1))
  } catch {
    // a file name
  }
  return path.basename(description)
}
