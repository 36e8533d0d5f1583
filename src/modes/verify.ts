import { backupAge, checksum, integrity, rowCounts, schema } from '../checks.js'
import { createEngine } from '../engines/index.js'
import type { Database } from '../engines/engine.js'
import { describeError, UserError } from '../errors.js'
import type { Manifest } from '../manifest.js'
import { fileSize, sha256File } from '../fsutil.js'
import type { Report } from '../report.js'
import { LocalStore, type BackupEntry } from '../store/local.js'
import { databaseFacts, emptyReport, finish, runCheck, type ModeContext } from './common.js'

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
    checksum(
      { sha256: await sha256File(entry.path), bytes: await fileSize(entry.path) },
      entry.manifest.backup,
    ),
  )
}

export function ageSeconds(entry: BackupEntry, now: Date): number {
  return Math.max(0, (now.getTime() - Date.parse(entry.manifest.createdAt)) / 1000)
}

/**
 * The checks that need no restore: integrity, schema and row counts against the manifest. A
 * database too damaged to read fails the check that tried, and the others still run.
 */
export async function checkDatabase(db: Database, manifest: Manifest) {
  const checks = [await runCheck('integrity', async () => integrity(await db.integrityProblems()))]
  checks.push(
    await runCheck('schema', async () => schema(await db.schema(), manifest.inventory.schema)),
  )
  let database: Report['database'] = null
  checks.push(
    await runCheck('row-counts', async () => {
      const counts = await db.rowCounts((await db.schema()).tables.map((t) => t.name))
      database = databaseFacts(await db.bytes(), counts)
      return rowCounts(counts, manifest.inventory.rowCounts)
    }),
  )
  return { checks, database }
}

/** Prove a backup is whole and readable: checksum, integrity and schema against its manifest. */
export async function verify(ctx: ModeContext): Promise<Report> {
  const { config, now } = ctx
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
  let db: Database | null = null
  try {
    db = await engine.openBackup(entry.path)
  } catch (err) {
    report.checks.push({
      name: 'integrity',
      ok: false,
      detail: `cannot be opened: ${describeError(err)}`,
    })
  }
  if (db) {
    try {
      const { checks, database } = await checkDatabase(db, manifest)
      report.checks.push(...checks)
      report.database = database
    } finally {
      await db.close()
    }
  }
  report.durations.checksMs = Math.round(performance.now() - t1)
  report.backupAgeSeconds = ageSeconds(entry, started)
  report.checks.push(backupAge(report.backupAgeSeconds, config.maxBackupAgeSeconds))
  return finish(report, started, now())
}
