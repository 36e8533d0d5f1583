import { backupAge, checksum } from '../checks.js'
import { createEngine } from '../engines/index.js'
import { UserError } from '../errors.js'
import { digestPath } from '../fsutil.js'
import { runCheck } from '../inspect.js'
import type { Report } from '../report.js'
import { LocalStore, type BackupEntry } from '../store/local.js'
import { emptyReport, finish, type ModeContext } from './common.js'

/** The backup to use and the engine its manifest says made it. */
export async function selectBackup({ config, log }: ModeContext) {
  const store = new LocalStore(config.backupDir)
  const { entry, listing } = await store.select(config.backupFile, log)
  const { manifest } = entry
  if (config.engineExplicit && config.engine !== manifest.engine) {
    throw new UserError(
      `engine: set to ${config.engine}, but ${entry.path} is a ${manifest.engine} backup. Fix: remove the engine input or set it to ${manifest.engine}.`,
    )
  }
  const engine = createEngine(manifest.engine, config)
  for (const orphan of listing.orphans) {
    log.warning(
      `${orphan} has no manifest: it cannot be verified and is never chosen as the newest backup.`,
    )
  }
  return { entry, listing, engine }
}

export async function checksumOf(entry: BackupEntry) {
  return runCheck('checksum', async () =>
    checksum(await digestPath(entry.path), entry.manifest.backup),
  )
}

export function ageSeconds(entry: BackupEntry, now: Date): number {
  return Math.max(0, (now.getTime() - Date.parse(entry.manifest.createdAt)) / 1000)
}

/** Prove a backup is whole and readable: checksum, integrity and schema against its manifest. */
export async function verify(ctx: ModeContext): Promise<Report> {
  const { config, log, now } = ctx
  const started = now()
  const { entry, listing, engine } = await selectBackup(ctx)
  const { manifest } = entry
  const report = emptyReport('verify', manifest.engine, started)
  report.backup = {
    path: entry.path,
    sha256: manifest.backup.sha256,
    bytes: manifest.backup.bytes,
    createdAt: manifest.createdAt,
  }
  report.backupCount = listing.backups.length

  const t0 = performance.now()
  report.checks.push(await checksumOf(entry))
  report.durations.checksumMs = Math.round(performance.now() - t0)

  const t1 = performance.now()
  const { checks, database } = await log.group('Checks', () => engine.verifyBackup(entry, log))
  report.checks.push(...checks)
  report.database = database
  report.durations.checksMs = Math.round(performance.now() - t1)
  report.backupAgeSeconds = ageSeconds(entry, started)
  report.checks.push(backupAge(report.backupAgeSeconds, config.maxBackupAgeSeconds))
  return finish(report, started, now())
}
