import { stopwatch } from '../util/time.js'
import { scratchFolder, type ScratchPurpose } from '../util/scratch.js'
import { type VerifyOptions, type ReadingOptions } from '../options/config.js'
import { backupAge, checksum } from '../checks/checks.js'
import { createEngine } from '../engines/index.js'
import { UserError } from '../util/errors.js'
import { digestInWorker } from '../util/fs.js'
import type { BackupRef } from '../engines/engine.js'
import { runCheck } from '../checks/inspect.js'
import { isEncoded, plaintextOf, type Read } from './plain.js'
import type { ModeReport, Report } from '../report/report.js'
import {
  artifactSettings,
  downloadBackup,
  type RestArtifact,
  type SkippedArtifact,
} from '../store/artifacts.js'
import { createS3Store } from '../store/s3.js'
import { LocalStore, type BackupEntry, type Listing } from '../store/local.js'
import { emptyReport, finish, type ModeContext } from './common.js'
import { trustChecks } from './trust.js'

export type Selection = Awaited<ReturnType<typeof selectBackup>>

/**
 * The backup to use and the engine its manifest says made it: from backup-dir, or with
 * download-artifact the artifact artifact-id names or the newest unexpired one the backup job
 * made, downloaded into the scratch folder. `release()` deletes what was downloaded.
 */
export async function selectBackup({ config, log }: ModeContext<ReadingOptions>) {
  let dir = config.backupDir
  let artifact: RestArtifact | null = null
  let skipped: SkippedArtifact[] = []
  let release = async () => {}
  if (config.downloadArtifact) {
    if (config.backupFile) {
      throw new UserError(
        'backup-file: cannot be combined with download-artifact, which takes a backup artifact (artifact-id, or the newest the backup job made). Fix: remove one of them.',
      )
    }
    const settings = artifactSettings(config.artifactName, config.githubToken, config.runner)
    const download = await scratchDownload(config.scratchDir, 'artifact')
    release = download.release
    ;({ artifact, dir, skipped } = await download.fill(() =>
      log.group('Download artifact', () =>
        downloadBackup(settings, download.dir, log, {
          artifactId: config.artifactId,
          workflow: config.backupWorkflow,
        }),
      ),
    ))
  }
  // From the bucket: the newest backup by manifest time (or backup-file's), downloaded into the
  // scratch folder and proved against its manifest's sha256 on the way.
  let remote: Listing | null = null
  let fetched: string | null = null
  if (config.s3) {
    const settings = config.s3
    const download = await scratchDownload(config.scratchDir, 's3')
    release = download.release
    const got = await download.fill(() =>
      log.group('Download from S3', async () => {
        const s3 = await createS3Store(settings)
        const selected = await s3.select(config.backupFile, log)
        return {
          listing: selected.listing,
          local: await s3.fetch(selected.entry, download.dir, log),
        }
      }),
    )
    remote = got.listing
    fetched = got.local.path
    dir = download.dir
  }
  const store = new LocalStore(dir)
  const selected = await store.select(fetched ?? config.backupFile, log).catch(async (err) => {
    await release()
    throw err
  })
  const { entry } = selected
  const listing = remote ?? selected.listing
  const { manifest } = entry
  // From here a refusal must not leave a downloaded copy behind.
  const engine = await (async () => {
    if (config.engineExplicit && config.engine !== manifest.engine) {
      throw new UserError(
        `engine: set to ${config.engine}, but ${entry.path} is a ${manifest.engine} backup. Fix: remove the engine input or set it to ${manifest.engine}.`,
      )
    }
    return createEngine(manifest.engine, config)
  })().catch(async (err: unknown) => {
    await release()
    throw err
  })
  for (const orphan of listing.orphans) {
    log.warning(
      `${orphan} has no manifest: it cannot be verified and is never chosen as the newest backup.`,
    )
  }
  return { entry, listing, engine, artifact, skipped, release }
}

/**
 * A folder of its own in scratch-dir for a download, removed on an interrupt and by `release`;
 * `fill` runs the download and removes the folder if it fails.
 */
async function scratchDownload(scratchDir: string, purpose: ScratchPurpose) {
  const scratch = await scratchFolder(scratchDir, purpose)
  const dir = scratch.path
  const release = () => scratch.remove()
  const fill = async <T>(download: () => Promise<T>): Promise<T> =>
    download().catch(async (err: unknown) => {
      await release()
      throw err
    })
  return { dir, release, fill }
}

/** Selects the backup, runs `fn` on it, and deletes whatever the selection downloaded. */
export async function withSelection<O extends ReadingOptions, R extends Report>(
  ctx: ModeContext<O>,
  fn: (selection: Selection) => Promise<R>,
): Promise<R> {
  const selection = await selectBackup(ctx)
  try {
    return await fn(selection)
  } finally {
    await selection.release()
  }
}

/** The report of a mode that works on a selected backup, with the backup's facts filled in. */
export function reportOn<M extends 'verify' | 'drill' | 'restore'>(
  mode: M,
  engine: Report['engine'],
  selection: Selection,
  started: Date,
): ModeReport<M> {
  const { entry, listing, artifact } = selection
  const { manifest } = entry
  const report = emptyReport(mode, engine, started)
  report.artifact = artifactFacts(artifact)
  report.backup = {
    path: entry.path,
    sha256: manifest.backup.sha256,
    bytes: manifest.backup.bytes,
    createdAt: manifest.createdAt,
  }
  report.backupCount = listing.backups.length
  // Newer artifacts of the name that the backup job did not make: a fork's pull request may
  // have uploaded one on purpose, so the summary names each.
  for (const s of selection.skipped)
    report.warnings.push(`artifact ${s.id} (created ${s.createdAt}) skipped: ${s.reason}`)
  return report
}

/** What the report says of a downloaded artifact. */
export function artifactFacts(artifact: RestArtifact | null): Report['artifact'] {
  if (!artifact) return undefined
  return {
    name: artifact.name,
    id: artifact.id,
    createdAt: artifact.created_at,
    runId: artifact.workflow_run?.id ?? 0,
  }
}

/**
 * The stored file against its manifest: from `read`, the digest of a pass that already read all
 * of it (decoding, see plaintextOf), or else hashed now, on another thread.
 */
export async function checksumOf(entry: BackupEntry, read: Read | null = null) {
  return runCheck('checksum', async () =>
    checksum(read ?? (await digestInWorker(entry.path)), entry.manifest.backup),
  )
}

export function ageSeconds(entry: BackupEntry, now: Date): number {
  return Math.max(0, (now.getTime() - Date.parse(entry.manifest.createdAt)) / 1000)
}

/** Prove a backup is whole and readable: checksum, integrity and schema against its manifest. */
export async function verify(ctx: ModeContext<VerifyOptions>): Promise<ModeReport<'verify'>> {
  return withSelection(ctx, (selection) => verifySelected(ctx, selection))
}

async function verifySelected(
  ctx: ModeContext<VerifyOptions>,
  selection: Selection,
): Promise<ModeReport<'verify'>> {
  const { config, log, now } = ctx
  const { entry, engine } = selection
  const started = now()
  const report = reportOn('verify', entry.manifest.engine, selection, started)

  // A backup this job's inputs do not trust is not read at all.
  const trust = await trustChecks(entry, config)
  report.checks.push(...trust)
  if (trust.some((c) => !c.ok)) return finish(report, started, now())

  // An encoded backup's stored file is hashed by the decoding that reads it (below), not twice.
  const checksumAt = report.checks.length
  const checksumFrom = async (read: Read | null) => {
    const t0 = stopwatch()
    report.checks.splice(checksumAt, 0, await checksumOf(entry, read))
    report.durations.checksumMs = t0.ms()
  }
  const encoded = isEncoded(entry)
  if (!encoded) await checksumFrom(null)

  const t1 = stopwatch()
  const scratch = await scratchFolder(config.scratchDir, 'verify')
  const work = scratch.path
  try {
    let ref: BackupRef | null = entry
    if (encoded) {
      let stored: Read | null = null
      try {
        const plain = await plaintextOf(entry, config, work, log)
        if (plain.check) report.checks.push(plain.check)
        ref = plain.ref
        stored = plain.stored
        report.decrypted = plain.check?.ok ?? null
      } catch (err) {
        // The nightly job holds only the public key: it proves the stored file, the drill (which
        // holds the recovery key) proves the rest.
        if (!(err instanceof UserError) || !/^age-identity:/.test(err.message)) throw err
        report.warnings.push(
          `not decrypted: ${err.message} Only the stored file's checksum was verified here.`,
        )
        ref = null
      } finally {
        // Hashed on its own where decoding did not read it to the end (no key, a wrong one).
        await checksumFrom(stored)
      }
    }
    if (ref) {
      const target = ref
      const { checks, database } = await log.group('Checks', () => engine.verifyBackup(target, log))
      report.checks.push(...checks)
      report.database = database
    }
  } finally {
    await scratch.remove()
  }
  // Without a separate hash of its own (the fallback above) counted twice.
  report.durations.checksMs = t1.ms() - (encoded ? (report.durations.checksumMs ?? 0) : 0)
  report.backupAgeSeconds = ageSeconds(entry, started)
  report.checks.push(backupAge(report.backupAgeSeconds, config.maxBackupAgeSeconds))
  return finish(report, started, now())
}
