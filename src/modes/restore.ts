import * as fs from 'node:fs/promises'
import { withScratch } from '../util/scratch.js'
import { stopwatch } from '../util/time.js'
import { type RestoreOptions } from '../options/config.js'
import * as path from 'node:path'
import { cleanups } from '../util/cleanup.js'
import { Inputs } from '../options/inputs.js'
import type { Database } from '../engines/engine.js'
import { createEngine } from '../engines/index.js'
import { describeError, UserError } from '../util/errors.js'
import { digestPath, fsyncPath, makeDirs } from '../util/fs.js'
import type { Log } from '../util/log.js'
import type { Manifest } from '../manifest/manifest.js'
import type { ModeReport, Report } from '../report/report.js'
import { runServiceCommand } from './service.js'
import {
  asWriteFailure,
  formatBytes,
  requireSpace,
  scratchNeed,
  sqliteBytes,
  type Need,
} from '../util/space.js'
import { encodedExtension, encodeFile } from '../codec/index.js'
import { safetyCodec, type SafetyCodec } from './safety-codec.js'
import { backup } from './backup.js'
import { emptyReport, finish, type ModeContext } from './common.js'
import { checkRestored } from '../checks/inspect.js'
import { trustChecks } from './trust.js'
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
export async function restore(ctx: ModeContext<RestoreOptions>): Promise<ModeReport<'restore'>> {
  return withSelection(ctx, async (selection) => {
    return withScratch(ctx.config.scratchDir, 'restore', (work) =>
      restoreSelected(ctx, selection, work),
    )
  })
}

async function restoreSelected(
  ctx: ModeContext<RestoreOptions>,
  selection: Selection,
  work: string,
): Promise<ModeReport<'restore'>> {
  const { config, log, now } = ctx
  const { entry } = selection
  const started = now()
  const { manifest } = entry
  const report = reportOn('restore', config.engine, selection, started)

  // Whether the backup may be read at all comes first: everything below believes its manifest.
  const trust = await trustChecks(entry, config)
  report.checks.push(...trust)
  const untrusted = trust.find((c) => !c.ok)
  if (untrusted) {
    throw new UserError(untrusted.detail.replace(/ Fix: /, ' Nothing was changed. Fix: '))
  }

  if (manifest.engine !== config.engine) {
    throw new UserError(
      `backup-file: ${entry.path} is a ${manifest.engine} backup, and connection-string is a ${config.engine} database. Fix: choose a ${config.engine} backup, or the connection-string it belongs to.`,
    )
  }
  const engine = await createEngine(config.engine, config)
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

  // Room for everything the restore writes, before anything is written: the decoded backup,
  // the safety backup of the live database, and (SQLite) the new file beside the live one.
  await requireSpace(await restoreNeeds(config, manifest))

  // The backup must prove itself before anything is touched.
  // An encoded backup's stored file is hashed by the decoding that reads it, not twice.
  // What goes live: fsynced as it is decoded, so that a write the disk failed stops the restore.
  const plain = await plaintextOf(entry, config, work, log, { live: true })
  const checks = [await checksumOf(entry, plain.stored)]
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
  const exists = await engine.liveExists()
  // The runbook's pre-drill "ensure no active user sessions": a restore logs everyone out and
  // drops what they did since the backup.
  const sessions = exists
    ? await engine.liveSessions(started).catch((err: unknown) => {
        // The guard cannot vouch for anything it could not count: say so, never stay silent.
        const warning = `allow-active-sessions: could not count the live database's unexpired sessions (${describeError(err)}); check that no one is logged in before restoring.`
        report.warnings.push(warning)
        log.warning(warning)
        return null
      })
    : null
  const safetyDir = path.join(config.backupDir, 'pre-restore')
  // The safety backup holds the same users' data as the backup: encrypted the same way.
  const codec = exists ? safetyCodec(manifest, entry.path, config) : null
  const plan = [
    `verified ${path.basename(entry.path)} (taken ${manifest.createdAt}): ${checks.map((c) => c.name).join(', ')} passed`,
    ...(sessions
      ? [
          `${sessions.active} unexpired user session(s) in ${target}'s ${sessions.table} table${sessions.active && config.allowActiveSessions ? ' (allow-active-sessions: true)' : ''}`,
        ]
      : []),
    ...(config.stopCommand ? [`stop the backend: ${config.stopCommand.join(' ')}`] : []),
    exists
      ? `back up the current ${target} into ${safetyDir}${codec && 'how' in codec && codec.how ? `, ${codec.how}` : ''} (manifest included; taken whatever state it is in)`
      : `${target} does not exist yet: no safety backup needed`,
    `replace ${target} with ${path.basename(entry.path)}${config.engine === 'sqlite' ? ' (written beside it, fsynced, renamed over it; stale -wal/-shm removed)' : ' (pg_restore --clean --if-exists in one transaction)'}`,
    `check the restored ${target} against the backup's manifest: schema, row counts, foreign keys, recent conversations, audit log`,
    ...(config.startCommand ? [`start the backend: ${config.startCommand.join(' ')}`] : []),
    ...(config.smoke
      ? [
          `smoke test ${config.smoke.url} (waiting up to ${config.smoke.timeoutSeconds} s for health)`,
        ]
      : []),
  ]
  report.restore = {
    target,
    dryRun: config.dryRun,
    plan,
    safetyBackup: null,
    undo: null,
    activeSessions: sessions,
  }
  const refusal =
    sessions?.active && !config.allowActiveSessions
      ? `allow-active-sessions: ${target} holds ${sessions.active} unexpired user session(s) in ${sessions.table}; a restore logs them out and loses what they did since the backup. Fix: announce the maintenance window and wait for them to end (the runbook's "ensure no active user sessions"), or set allow-active-sessions: true; nothing was changed.`
      : null
  const codecRefusal = codec && 'refusal' in codec ? codec.refusal : null
  if (config.dryRun) {
    // A dry run shows the whole plan, and says what would stop the real run.
    for (const r of [refusal, codecRefusal]) {
      if (!r) continue
      report.warnings.push(r)
      log.warning(r)
    }
    log.info(`dry run: ${plan.join('; ')}`)
    return finish(report, started, now())
  }
  if (refusal) throw new UserError(refusal)
  if (codecRefusal) throw new UserError(codecRefusal)

  // Interrupted (SIGINT/SIGTERM) from here on, the backend is started again, as on a failure.
  const start = config.startCommand
  const forgetStart = start
    ? cleanups.add(`the backend started again (${start.join(' ')})`, () =>
        runServiceCommand(start, Inputs.StartCommand, log),
      )
    : () => {}
  // Whatever fails from the stop until the database is replaced leaves the old data in place:
  // the backend goes back up as it was (a stop that failed may have half-worked).
  const restart = async (err: unknown): Promise<never> => {
    forgetStart()
    if (config.startCommand) {
      await runServiceCommand(config.startCommand, Inputs.StartCommand, log).catch(
        (startErr: unknown) =>
          log.warning(`the backend was not started again: ${describeError(startErr)}`),
      )
    }
    throw err
  }
  if (config.stopCommand) {
    await runServiceCommand(config.stopCommand, Inputs.StopCommand, log).catch(restart)
  }
  try {
    const users = await engine.liveUsers()
    if (users.length) {
      throw new UserError(
        config.stopCommand
          ? `stop-command: ${target} is still in use by ${users.join(', ')} after "${config.stopCommand.join(' ')}". Fix: make stop-command wait until the backend has exited; nothing was changed.`
          : `connection-string: ${target} is in use by ${users.join(', ')}. Fix: stop the OmniAI backend first (the runbook's restore step 1, or set stop-command and start-command), then run the restore again; nothing was changed.`,
      )
    }
    if (codec && 'how' in codec) await safetyBackup(ctx, report, target, safetyDir, codec)
  } catch (err) {
    await restart(err)
  }

  const t0 = stopwatch()
  if (!ref) throw new Error('unreachable: an undecodable backup fails verification above')
  let db: Database
  try {
    db = await log.group('Restore', () => engine.replaceLive(ref, log))
  } catch (err) {
    return restart(
      config.engine === 'sqlite'
        ? await asWriteFailure(
            err,
            Inputs.ConnectionString,
            path.dirname(path.resolve(config.connectionString)),
            'the live database was not touched',
          )
        : await asWriteFailure(
            err,
            Inputs.ConnectionString,
            'the database server',
            'the restore was rolled back',
          ),
    )
  }
  report.restoreSeconds = t0.seconds()
  // The checks failing to run must not leave the backend down: it starts either way.
  let checksFailed: unknown = null
  try {
    const { checks: after, database } = await log.group('Checks', () => checkRestored(db, manifest))
    report.checks.push(
      ...after.map((c) => ({ ...c, name: c.name === 'integrity' ? 'restored-integrity' : c.name })),
    )
    report.database = database
  } catch (err) {
    checksFailed = err
  } finally {
    await db.close().catch(() => undefined)
  }
  forgetStart()
  if (config.startCommand) {
    try {
      await runServiceCommand(config.startCommand, Inputs.StartCommand, log)
    } catch (err) {
      throw new UserError(
        `${describeError(err)} The database WAS replaced with ${path.basename(entry.path)}.${report.restore.undo ? ` To go back to what was there before: ${report.restore.undo}` : ''}`,
      )
    }
  }
  if (checksFailed) {
    throw new UserError(
      `${describeError(checksFailed)} (checking the restored database). The database WAS replaced with ${path.basename(entry.path)}.${report.restore.undo ? ` To go back to what was there before: ${report.restore.undo}` : ''}`,
    )
  }
  await smokeInto(report, ctx)
  return finish(report, started, now())
}

/**
 * The backup of the live database before it is replaced, through the normal backup path. It is
 * never blocked by the state of the live database, which may be exactly what is broken: a
 * damaged database is copied and marked damaged, tables the inputs name need not be there, and
 * a SQLite file the backup cannot even open is copied byte for byte.
 */
async function safetyBackup(
  ctx: ModeContext<RestoreOptions>,
  report: ModeReport<'restore'>,
  target: string,
  safetyDir: string,
  codec: SafetyCodec,
) {
  const { config, log } = ctx
  const restore = report.restore!
  const prefix = `${config.prefix}-pre-restore`
  const { encryption, compression } = codec
  const safety = await log.group('Safety backup of the current database', () =>
    backup({
      ...ctx,
      safety: true,
      // The options of a backup of the live database: this restore's source and inventory, a
      // folder and encoding of its own, nothing kept elsewhere, no retention.
      config: {
        ...config,
        mode: 'backup',
        backupDir: safetyDir,
        prefix,
        retention: 'off',
        keepDaily: 0,
        keepWeekly: 0,
        retentionTimeZone: 'UTC',
        uploadArtifact: false,
        allowUnencryptedArtifact: false,
        restoreCheck: false,
        encryption,
        compression,
        s3: null,
      },
    }).catch(async (err: unknown) => {
      if (config.engine !== 'sqlite') throw err
      return rawCopy(config.connectionString, safetyDir, prefix, err, log, codec)
    }),
  )
  if (codec.warning) {
    report.warnings.push(codec.warning)
    log.warning(codec.warning)
  }
  if (!safety.backup || safety.checks.some((c) => c.name === 'checksum' && !c.ok)) {
    throw new UserError(
      `connection-string: the safety backup of ${target} could not be written (${
        safety.error ??
        safety.checks
          .filter((c) => !c.ok)
          .map((c) => c.detail)
          .join('; ')
      }); nothing was changed.`,
    )
  }
  for (const w of safety.warnings) report.warnings.push(`safety backup: ${w}`)
  restore.safetyBackup = safety.backup.path
  restore.undo =
    'raw' in safety
      ? safety.raw
      : `omniai-backup restore --connection-string ${config.engine === 'sqlite' ? config.connectionString : '<the same URL>'} --backup-dir ${safetyDir} --backup-file ${safety.backup.path} --confirm ${target}`
  log.info(`safety backup: ${safety.backup.path}. To undo this restore: ${restore.undo}`)
}

/** A byte-for-byte copy of a SQLite file (and its -wal) that the backup could not open. */
async function rawCopy(
  source: string,
  dir: string,
  prefix: string,
  why: unknown,
  log: Log,
  codec: SafetyCodec,
): Promise<Report & { raw: string }> {
  await makeDirs(dir, 0o700)
  const name = `${prefix}-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}-raw.db`
  const ext = encodedExtension(codec.compression, codec.encryption.kind)
  const dest = path.join(dir, name + ext)
  // Encoded like the backups when they are (encodeFile writes a new file, fsynced).
  const copy = async (from: string, to: string) => {
    if (!ext) return fs.copyFile(from, to, fs.constants.COPYFILE_EXCL)
    if (await fs.stat(to).catch(() => null)) throw new Error(`${to} exists`)
    await encodeFile(from, to, { compression: codec.compression, encryption: codec.encryption })
  }
  await copy(source, dest)
  const wal = path.join(dir, `${name}-wal${ext}`)
  await copy(`${source}-wal`, wal).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT' && !/no such file/.test(err.message)) throw err
  })
  if (!ext) await fsyncPath(dest)
  const warning = `the live database could not be backed up the normal way (${describeError(why)}); it was copied byte for byte to ${dest} instead.`
  log.warning(warning)
  const report = emptyReport('backup', 'sqlite', new Date())
  const { sha256, bytes } = await digestPath(dest)
  report.backup = { path: dest, sha256, bytes, createdAt: new Date().toISOString() }
  report.warnings.push(warning)
  const undo = ext
    ? `stop the backend, then ${decodeCommand(codec, dest)} > ${source} (and ${decodeCommand(codec, wal)} > ${source}-wal if that file exists)`
    : `stop the backend, then copy ${dest} over ${source}`
  return { ...report, raw: undo }
}

/** The shell command that turns a raw copy back into the database file, with the standard tools. */
function decodeCommand(codec: SafetyCodec, file: string): string {
  const e = codec.encryption
  const decrypt =
    e.kind === 'age'
      ? `age -d${e.recipients?.length ? ' -i <recovery key file>' : ''} ${file}`
      : e.kind === 'gpg'
        ? `gpg -d ${file}`
        : `cat ${file}`
  const unzip = { none: '', gzip: ' | gunzip', zstd: ' | zstd -d' }[codec.compression]
  return decrypt + unzip
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

async function restoreNeeds(config: RestoreOptions, manifest: Manifest): Promise<Need[]> {
  const needs: Need[] = [scratchNeed(manifest, config.scratchDir, false)]
  if (config.engine !== 'sqlite') return needs
  const plain = manifest.backup.plain?.bytes ?? manifest.backup.bytes
  const live = path.resolve(config.connectionString)
  const liveBytes = await sqliteBytes(live)
  needs.push({
    input: Inputs.ConnectionString,
    dir: path.dirname(live),
    bytes: plain,
    what: `the restored database beside the live one (${formatBytes(plain)})`,
  })
  if (liveBytes > 0) {
    needs.push({
      input: Inputs.BackupDir,
      dir: path.join(config.backupDir, 'pre-restore'),
      bytes: liveBytes,
      what: `the safety backup of the live database (${formatBytes(liveBytes)})`,
    })
  }
  return needs
}
