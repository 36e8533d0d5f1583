import * as fs from 'node:fs/promises'
import { ensureScratchDir, scratchFolder } from '../util/scratch.js'
import { stopwatch } from '../util/time.js'
import { type DrillOptions } from '../options/config.js'
import * as path from 'node:path'
import { backupAge, restoreTime } from '../checks/checks.js'
import type { BackupRef, Database } from '../engines/engine.js'
import { describeError, UserError } from '../util/errors.js'
import type { ModeReport, Report } from '../report/report.js'
import { checkRestored, runCheck } from '../checks/inspect.js'
import { isEncoded, plaintextOf, type Read } from './plain.js'
import {
  evidenceSettings,
  IssuesRefused,
  recordDrill,
  type DrillRecord,
} from '../github/evidence.js'
import { Inputs } from '../options/inputs.js'
import { asWriteFailure, requireSpace, scratchNeed, writeFailureCause } from '../util/space.js'
import { smokeInto } from './smoke.js'
import { ageSeconds, checksumOf, reportOn, withSelection, type Selection } from './verify.js'
import { finish, type ModeContext } from './common.js'
import { gateOnRestored } from './gate.js'
import { trustChecks } from './trust.js'
import { makeDirs, notRegular } from '../util/fs.js'
import { constants as fsConstants } from 'node:fs'

/**
 * The quarterly restore drill: restore the backup into an isolated scratch folder, check it
 * against its manifest, record RTO and RPO, log the drill, delete the scratch copy (also when
 * a check fails).
 */
export async function drill(ctx: ModeContext<DrillOptions>): Promise<ModeReport<'drill'>> {
  return withSelection(ctx, (selection) => drillSelected(ctx, selection))
}

async function drillSelected(
  ctx: ModeContext<DrillOptions>,
  selection: Selection,
): Promise<ModeReport<'drill'>> {
  const { config, log, now } = ctx
  const { entry, engine } = selection
  const started = now()
  const { manifest } = entry
  const report = reportOn('drill', manifest.engine, selection, started)
  // A backup this job's inputs do not trust is neither decoded nor restored; the failed drill
  // is still recorded.
  const trust = await trustChecks(entry, config)
  report.checks.push(...trust)
  if (trust.some((c) => !c.ok)) {
    finish(report, started, now())
    if (config.drillLog) await appendDrillLog(config.drillLog, report, config.runner.runUrl)
    await recordEvidence(ctx, report)
    return report
  }
  log.info(`drill: restoring ${entry.path} (taken ${manifest.createdAt})`)

  // The checksum is read on another thread while the restore and checks run on this one; its
  // result still heads the report.
  // An encoded backup's stored file is hashed by the decoding that reads it all (below), not
  // twice; where decoding stops short, on its own.
  const encoded = isEncoded(entry)
  const checksumFrom = (read: Read | null) => {
    const t0 = stopwatch()
    return checksumOf(entry, read).then((check) => {
      report.durations.checksumMs = t0.ms()
      return check
    })
  }
  let checksumming = encoded ? null : checksumFrom(null)

  await ensureScratchDir(config.scratchDir)
  // Room for the decoded backup and the restored copy, before anything is written.
  await requireSpace([scratchNeed(manifest, config.scratchDir, manifest.engine === 'sqlite')])
  const work = await scratchFolder(config.scratchDir, 'drill')
  const scratch = work.path
  try {
    const t1 = stopwatch()
    let db: Database | null = null
    let ref: BackupRef | null = entry
    if (encoded) {
      // Decrypting with the recovery key is part of the drill: it proves the key still works.
      const plain = await plaintextOf(entry, config, scratch, log).catch((err: unknown) => ({
        ref: null,
        check: { name: 'decrypt', ok: false, detail: describeError(err) },
        stored: null,
      }))
      checksumming = checksumFrom(plain.stored)
      if (plain.check) report.checks.push(plain.check)
      report.decrypted = plain.check?.ok ?? null
      ref = plain.ref
    }
    try {
      if (!ref) throw new Error('the backup could not be decoded (see the decrypt check)')
      const source = ref
      db = await log.group('Restore', () =>
        engine.restore(source === entry ? source : { ...source, decoded: true }, scratch, log),
      )
    } catch (err) {
      const why =
        manifest.engine === 'sqlite'
          ? await asWriteFailure(err, Inputs.ScratchDir, scratch, 'the scratch copy was removed')
          : await asWriteFailure(
              err,
              Inputs.RestoreConnectionString,
              'the restore server',
              'the scratch database was dropped',
            )
      report.checks.push({
        name: 'restore',
        ok: false,
        detail: `the backup did not restore: ${describeError(why)}`,
      })
    }
    const restored = db
    try {
      if (restored) {
        report.restoreSeconds = t1.seconds()
        report.durations.restoreMs = t1.ms()
        const t2 = stopwatch()
        const { checks, database } = await log.group('Checks', () =>
          checkRestored(restored, manifest),
        )
        report.checks.push(...checks)
        report.durations.checksMs = t2.ms()
        report.database = database
        report.checks.push(restoreTime(report.restoreSeconds, config.maxRestoreSeconds))
      }
      // The gate runs only on a drill whose every check passed, the checksum included.
      report.checks.unshift(await (checksumming ?? checksumFrom(null)))
      // The runbook's smoke test: the security gate against the restored copy while it still
      // exists (closing a PostgreSQL copy drops its scratch database and role).
      if (config.gateAfterDrill) await gateOnRestored(ctx, restored, report)
    } finally {
      await restored?.close()
    }
    await smokeInto(report, ctx)
  } finally {
    // The runbook's "delete restore test database", whatever happened above.
    await work.remove()
  }
  report.backupAgeSeconds = ageSeconds(entry, started)
  report.checks.push(backupAge(report.backupAgeSeconds, config.maxBackupAgeSeconds))
  finish(report, started, now())
  if (config.drillLog) await appendDrillLog(config.drillLog, report, config.runner.runUrl)
  await recordEvidence(ctx, report)
  return report
}

/**
 * The drill's record where the team and auditors look: a comment on the tracking issue, which a
 * failed drill reopens. Outside a workflow run there is no repository to record in. With
 * drill-evidence: issue a record that cannot be written fails the job: a drill nobody can show
 * happened does not count. With auto (the default) a token that may not write issues, or a
 * repository with Issues turned off, is one warning with the fix, and the drill's own checks
 * decide the job: a workflow copied without `issues: write` still says whether the backup
 * restores. Any other failure (a bad token, GitHub down after retries, a record that would not
 * count) fails the drill under auto too: the team set it up to record, and it does not.
 */
async function recordEvidence(
  { config, log, now }: ModeContext<DrillOptions>,
  report: ModeReport<'drill'>,
): Promise<void> {
  if (config.drillEvidence === 'none') return
  if (!config.runner.repository) {
    log.info(
      'drill-evidence: not a GitHub Actions run, so no tracking issue; the drill log holds the record',
    )
    return
  }
  const auto: { refused?: IssuesRefused } = {}
  const check = await runCheck('evidence', async () => {
    const settings = evidenceSettings(
      {
        token: config.githubToken,
        title: config.drillIssueTitle,
        author: config.drillEvidenceAuthor,
      },
      config.runner,
    )
    const { issueNumber, commentUrl, reopened, created } = await log
      .group('Drill evidence', () =>
        recordDrill(drillRecord(report, config.runner.runUrl), settings, log),
      )
      .catch((err: unknown) => {
        if (err instanceof IssuesRefused && config.drillEvidence === 'auto') auto.refused = err
        throw err
      })
    report.evidence = { issueNumber, commentUrl, reopened, created }
    return {
      name: 'evidence',
      ok: true,
      detail: `recorded on issue #${issueNumber}${created ? ' (opened now)' : ''}${reopened ? ' (reopened: the drill failed)' : ''}: ${commentUrl}`,
    }
  })
  if (auto.refused) {
    const warning = `${auto.refused.message} (drill-evidence: auto, so this drill is not on the tracking issue and its own checks decide the job)`
    report.warnings.push(warning)
    log.warning(warning)
    return
  }
  report.checks.push(check)
  finish(report, new Date(report.startedAt), now())
}

/** What a drill leaves on record: in the drill log, and in the tracking issue. */
export function drillRecord(
  report: ModeReport<'drill'>,
  run: string | null,
): DrillRecord & { artifact: Report['artifact'] | null } {
  return {
    date: report.finishedAt,
    ok: report.ok,
    engine: report.engine,
    backup: report.backup && {
      file: path.basename(report.backup.path),
      sha256: report.backup.sha256,
      createdAt: report.backup.createdAt,
    },
    backupAgeSeconds: report.backupAgeSeconds,
    restoreSeconds: report.restoreSeconds,
    databaseBytes: report.database?.bytes ?? null,
    backupCount: report.backupCount,
    decrypted: report.decrypted ?? null,
    artifact: report.artifact ?? null,
    checks: Object.fromEntries(report.checks.map((c) => [c.name, c.ok])),
    failed: report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
    run,
  }
}

/** One JSON line per drill: the runbook's "log drill completion date". */
export async function appendDrillLog(
  file: string,
  report: ModeReport<'drill'>,
  run: string | null,
): Promise<void> {
  const record = drillRecord(report, run)
  try {
    await makeDirs(path.dirname(file))
    // Not through a symbolic link (one planted in the workspace would have the record appended
    // to any file the runner can write), nor into a FIFO or a device (opened without waiting).
    const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = fsConstants
    const handle = await fs
      .open(file, O_WRONLY | O_APPEND | O_CREAT | (O_NOFOLLOW ?? 0) | (O_NONBLOCK ?? 0), 0o600)
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ELOOP' || err.code === 'EMLINK') {
          throw Object.assign(new Error(`${file} is a symbolic link`), { code: 'a symbolic link' })
        }
        // O_NONBLOCK on a FIFO that nothing reads.
        if (err.code === 'ENXIO') {
          throw Object.assign(new Error(`${file} is a FIFO`), {
            code: 'a FIFO, not a regular file',
          })
        }
        throw err
      })
    try {
      const stat = await handle.stat()
      if (!stat.isFile()) {
        const not = notRegular(file, stat)
        throw Object.assign(new Error(not.message), { code: not.what })
      }
      await handle.write(JSON.stringify(record) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (err) {
    const cause =
      writeFailureCause(err) ?? (err as NodeJS.ErrnoException).code ?? describeError(err)
    throw new UserError(
      `drill-log: cannot append to ${file}: ${cause}. Fix: set drill-log to a writable file with room, or none.`,
    )
  }
  report.drillLog = file
}
