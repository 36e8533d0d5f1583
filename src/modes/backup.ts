import * as fs from 'node:fs/promises'
import { scratchFolder, withScratch } from '../util/scratch.js'
import { stopwatch } from '../util/time.js'
import { type BackupOptions } from '../options/config.js'
import { checksum, foreignKeys, type Check } from '../checks/checks.js'
import * as path from 'node:path'
import {
  decodeFile,
  encodedExtension,
  encodeFile,
  type DecodeOptions,
  type Decryption,
  type Encryption,
} from '../codec/index.js'
import { loadCatalog, renderTrend, saveCatalog } from '../github/catalog.js'
import { removeOnInterrupt } from '../util/cleanup.js'
import { createEngine } from '../engines/index.js'
import type { Database, Engine } from '../engines/engine.js'
import { describeError, UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'
import { applyRetention, planRetention, retentionRows } from '../store/retention.js'
import { artifactSettings, artifactTier, uploadBackup } from '../store/artifacts.js'
import { digestInWorker, digestPath, fsyncPath, pathBytes, restrictPath } from '../util/fs.js'
import { checkRestored, databaseFacts, takeInventory } from '../checks/inspect.js'
import type { IntegrityFindings, Inventory } from '../checks/inventory.js'
import type { Manifest } from '../manifest/manifest.js'
import type { ModeReport, Report } from '../report/report.js'
import { LocalStore, type BackupEntry } from '../store/local.js'
import { createS3Store, keepLocked, type S3Entry, type S3Store } from '../store/s3.js'
import { Inputs } from '../options/inputs.js'
import { checkSignature, signatureFor, verifyKeyOf } from '../manifest/signature.js'
import {
  asWriteFailure,
  writeFailureCause,
  formatBytes,
  requireSpace,
  spaceAt,
  sqliteBytes,
  type Need,
} from '../util/space.js'
import { TOOL, VERSION } from '../util/version.js'
import { emptyReport, finish, requireTable, type ModeContext } from './common.js'

/** A file's sha256 and size, as a manifest records them. */
type Hashed = { sha256: string; bytes: number }

/** An encoded backup's stored file, with the sha256 and size it was written with. */
type StoredFile = Hashed & { path: string }

/**
 * Snapshot the live database into backup-dir with a manifest beside it. The snapshot is
 * written to a hidden temporary name, checked, fsynced, and only then given its final name;
 * the manifest, written last, marks it complete. On any failure the temporary file is removed
 * and no other backup is touched.
 */
export async function backup(ctx: ModeContext<BackupOptions>): Promise<ModeReport<'backup'>> {
  const { config, log, now } = ctx
  const { signingKey } = config
  const started = now()
  const report = emptyReport('backup', config.engine, started)
  const engine = await createEngine(config.engine, config)
  const store = new LocalStore(config.backupDir)

  // Validate table inputs against the live database before copying anything. The safety
  // backup before a restore skips this: the live database may be exactly what is broken.
  if (!ctx.safety) {
    const source = await engine.openSource()
    try {
      const schema = await source.schema()
      requireTable(schema, config.conversationsTable, 'conversations-table')
      requireTable(schema, config.auditTable, 'audit-table')
    } finally {
      await source.close()
    }
  }

  // The bucket is reached (and, with Object Lock, checked for it) before any snapshot is taken.
  const s3 = config.s3 && !ctx.safety ? await createS3Store(config.s3) : null
  if (s3) await log.group('Check S3 storage', () => s3.check())

  await store.prepare()
  const base = `${config.prefix}-${started.toISOString().slice(0, 10)}`
  const encoded = config.encryption.kind !== 'none' || config.compression !== 'none'
  // Room for what this backup will write, before anything is written.
  await requireSpace(await backupNeeds(ctx, store, encoded))
  const suffix = engine.extension + encodedExtension(config.compression, config.encryption.kind)
  // Encrypted backups are snapshotted into the scratch folder, so no plaintext copy ever sits
  // in backup-dir, and only the encoded file is moved there.
  const work = encoded ? await scratchFolder(config.scratchDir, 'backup') : null
  const workDir = work?.path ?? null
  const tmp = workDir ? path.join(workDir, base + engine.extension) : store.tempPath(base + suffix)
  const stored = workDir ? store.tempPath(base + suffix) : tmp
  // Interrupted (SIGINT/SIGTERM): the plaintext snapshot and the partial backup go first.
  const forget = [
    removeOnInterrupt(tmp, 'partial snapshot'),
    removeOnInterrupt(`${tmp}-journal`, 'partial snapshot'),
    ...(stored !== tmp ? [removeOnInterrupt(stored, 'partial backup')] : []),
  ]
  // Which input names the folder being written, for a write that fails anyway.
  // restore-check could not run: the backup is kept, and nothing older is deleted tonight.
  let restoreNotRun = false
  let writing: { input: string; path: string } = workDir
    ? { input: Inputs.ScratchDir, path: workDir }
    : { input: Inputs.BackupDir, path: config.backupDir }
  // restore-check: begun as soon as the snapshot file is written, alongside the snapshot's own
  // checks (SQLite: the copy and its integrity checks), and judged against the manifest that
  // follows them. Settled with that manifest, or abandoned when there is none to check against.
  let settle!: { resolve: (m: Manifest) => void; reject: (err: Error) => void }
  const against = new Promise<Manifest>((resolve, reject) => (settle = { resolve, reject }))
  against.catch(() => undefined)
  // The inventory comes first: the check's reading of rows begins with it, while the snapshot's
  // integrity checks (whose findings complete the manifest) may still run.
  let inventoried!: { resolve: (i: Inventory) => void; reject: (err: Error) => void }
  const inventory = new Promise<Inventory>((resolve, reject) => (inventoried = { resolve, reject }))
  inventory.catch(() => undefined)
  // Whether the snapshot's integrity and foreign-key findings are the restore check's own.
  let findingsKnown!: (onCopy: boolean) => void
  const findingsShared = new Promise<boolean>((resolve) => (findingsKnown = resolve))
  let checking: ReturnType<typeof restoreCheck> | null = null
  // An encoded backup: the stored file and the sha256 it was written with (set once encoded).
  let storedAs: StoredFile | undefined
  // SQLite: the restored copy is the snapshot's bytes, copied by the kernel, and its integrity
  // and foreign-key checks are the snapshot's too (one read of those bytes, not two).
  let restored!: (findings: Promise<IntegrityFindings> | null) => void
  const copyChecked = new Promise<IntegrityFindings | null>(
    (resolve) => (restored = (findings) => resolve(findings ? findings.catch(() => null) : null)),
  )
  const startCheck = () =>
    (checking ??= restoreCheck(
      engine,
      { path: tmp, manifest: against, inventory, findingsShared, stored: storedAs },
      config.scratchDir,
      log,
      // Asked of the copy only where the snapshot takes its findings (PostgreSQL's would be a
      // second pass over the restored database).
      (db) => restored(checkOnCopy && db ? db.integrityProblems() : null),
    ))
  // Begun with the snapshot's own checks unless the backup is still to be encoded (its room comes
  // first, so the check's scratch copy starts after it).
  const checkEarly = config.restoreCheck && !ctx.safety && !workDir
  const checkOnCopy = checkEarly && engine.restoreFile !== undefined
  // The snapshot's sha256, taken by a worker while the snapshot is checked. Handled from the
  // start (a worker that fails before it is awaited would otherwise end the process), and
  // awaited before its file is removed on any failure.
  let hashing: Promise<Hashed> | null = null
  try {
    const t0 = stopwatch()
    const snapshot = await log.group('Snapshot', () =>
      engine.snapshot(
        tmp,
        log,
        (db) =>
          takeInventory(db, {
            conversationsTable: config.conversationsTable,
            auditTable: config.auditTable,
            spotCheckCount: config.spotCheckCount,
          }).then((taken) => {
            inventoried.resolve(taken)
            return taken
          }),
        () => {
          // An encoded backup's plaintext is hashed as it is encoded (below): the bytes
          // hashed are the bytes encrypted, in one read, not two. Measured: encoding begun
          // here instead, alongside the snapshot's checks, was slower (2 cores, both busy).
          if (!workDir) {
            hashing = digestInWorker(tmp)
            hashing.catch(() => undefined)
          }
          if (checkEarly) startCheck()
        },
        // Never waits on a check that was not begun.
        checkOnCopy ? () => (checking ? copyChecked : Promise.resolve(null)) : undefined,
        // The plaintext snapshot of an encoded backup is scratch, not the backup: no fsync.
        !workDir,
      ),
    )
    findingsKnown(snapshot.findingsOnCopy === true)
    const damaged = snapshot.damage.length > 0
    report.checks.push({ name: 'integrity', ok: !damaged, detail: snapshot.verified })
    const violations = snapshot.inventory.foreignKeyViolations ?? []
    if (violations.length) {
      // A faithful copy of imperfect data: recorded, reported, and compared by every later check.
      const { detail } = foreignKeys({ foreignKeys: violations }, { foreignKeys: violations })
      report.checks.push({ name: 'foreign-keys', ok: true, detail })
      const warning = `foreign keys: ${detail}. The backup was taken and records them; a drill passes while a restored copy has exactly these. To fix the data, delete or re-link the rows (PRAGMA foreign_key_check lists them).`
      report.warnings.push(warning)
      log.warning(warning)
    }
    await restrictPath(tmp)
    // The backup is durable before it is named. A plaintext snapshot in the scratch folder is
    // not the backup: its encoded copy is, fsynced as it is written.
    if (!workDir) await fsyncPath(tmp)
    report.durations.snapshotMs = t0.ms()

    // The snapshot's sha256 and size (`plain`), and the stored file's (`sha256`, `bytes`): the
    // same unless the backup is encoded, whose plaintext is hashed as it is encoded (the bytes
    // hashed are the bytes encrypted, in one read).
    let plain: Hashed
    let kept: Hashed | null = null
    let codec: Partial<Manifest['backup']> = {}
    if (!workDir) {
      const t1 = stopwatch()
      plain = await (hashing ?? digestPath(tmp))
      report.durations.checksumMs = t1.ms()
    } else {
      report.durations.checksumMs = 0
      const t2 = stopwatch()
      writing = { input: Inputs.BackupDir, path: config.backupDir }
      const digests = await log.group(
        `Encode (${config.compression}, ${config.encryption.kind})`,
        () =>
          encodeFile(tmp, stored, {
            compression: config.compression,
            encryption: config.encryption,
          }),
      )
      report.durations.encodeMs = t2.ms()
      plain = { sha256: digests.plainSha256, bytes: digests.plainBytes }
      await restrictPath(stored)
      codec = {
        encryption: config.encryption.kind,
        compression: config.compression,
        ...(config.encryption.kind === 'age' && config.encryption.recipients?.length
          ? { recipients: [...config.encryption.recipients] }
          : {}),
        // What a safety backup before restoring this one is encrypted to (mode restore).
        ...(config.encryption.kind === 'gpg' && config.encryption.recipient
          ? { gpgRecipient: config.encryption.recipient }
          : {}),
        plain: { sha256: plain.sha256, bytes: plain.bytes },
      }
      kept = { sha256: digests.sha256, bytes: digests.bytes }
      storedAs = { path: stored, ...kept }
    }
    const { sha256, bytes } = kept ?? plain

    const { inventory } = snapshot
    const manifestFor = (backup: Manifest['backup'], extra: Partial<Manifest> = {}): Manifest => ({
      // 2 only for what a format-1 reader would misread (manifest.ts MANIFEST_FORMATS).
      format: (inventory.audit as { hashing?: string } | undefined)?.hashing ? 2 : 1,
      tool: `${TOOL}@${VERSION}`,
      engine: engine.name,
      engineVersion: snapshot.engineVersion,
      ...(snapshot.toolVersion ? { toolVersion: snapshot.toolVersion } : {}),
      createdAt: started.toISOString(),
      backup,
      source: snapshot.source,
      inventory,
      ...extra,
      durations: {
        snapshotMs: report.durations.snapshotMs!,
        checksumMs: report.durations.checksumMs!,
      },
    })

    // restore-check: the new backup is restored into a scratch copy and checked as a drill
    // checks it, before it is accepted. An encoded backup that this job can open (compressed
    // only, or encrypted with a passphrase) is first decoded back from the stored file in place
    // of its snapshot; one encrypted to a public key, from the plaintext snapshot it was
    // encrypted from. One that does not restore is kept only as damaged.
    let restoreChecked: Manifest['restoreChecked']
    const unrestorable: string[] = []
    if (config.restoreCheck && !damaged && !ctx.safety) {
      // What is left of it after the backup: the time it adds to the job.
      const t3 = stopwatch()
      const own = workDir ? ownDecryption(config.encryption) : null
      const from = !workDir ? undefined : own ? ('stored' as const) : ('snapshot' as const)
      const result = await log.group('Restore check', async () => {
        if (own) {
          const back = await decodeBack(
            stored,
            tmp,
            // Decoded into scratch-dir, read by the check and removed: no fsync.
            { compression: config.compression, decryption: own, scratch: true },
            { sha256, bytes, plain },
          )
          if (back) return back
        }
        settle.resolve(
          manifestFor({ file: path.basename(tmp), sha256: plain.sha256, bytes: plain.bytes }),
        )
        const checked = await startCheck()
        if (from === 'stored' && checked.outcome !== 'not-run') {
          checked.check.detail = `decoded back from the stored file (sha256 and plaintext as written), then ${checked.check.detail}`
        } else if (from === 'snapshot' && checked.outcome !== 'not-run') {
          checked.check.detail = `${checked.check.detail} (from the plaintext snapshot it was encrypted from: this job holds only the public key)`
        }
        return checked
      })
      report.durations.restoreCheckMs = t3.ms()
      report.checks.push(result.check)
      if (result.outcome === 'passed') {
        restoreChecked = {
          at: now().toISOString(),
          seconds: result.seconds,
          checks: result.names,
          ...(from ? { from } : {}),
        }
        report.restoreChecked = {
          seconds: restoreChecked.seconds,
          checks: restoreChecked.checks,
          ...(from ? { from } : {}),
        }
      } else if (result.outcome === 'failed') {
        unrestorable.push(`restore-check failed: ${result.check.detail}`)
      } else {
        // The check could not run (the restore server, scratch-dir): the backup is kept as a
        // backup, not proven; the job fails, and retention deletes nothing tonight.
        restoreNotRun = true
        const [cause, fix] = result.check.detail.split(/ Fix: /, 2) as [string, string?]
        const where = s3 ? ', here or off-site' : ''
        const warning = `${Inputs.RestoreCheck}: not run, ${cause.replace(/\.$/, '')}. The backup was kept as written and read back, not restored; retention deleted nothing${where}. Fix: ${fix ?? 'the cause above, then run the backup again.'}`
        report.warnings.push(warning)
        log.warning(warning)
      }
    }
    const damage = [...snapshot.damage, ...unrestorable]

    // A damaged source is an emergency, not a reason to keep nothing: the copy is kept under a
    // name that says so, for recovery by hand, and nothing ever chooses it by default. So is a
    // backup that did not restore.
    const name = damage.length ? `${base}-damaged` : base
    const final = await store.commit(
      stored,
      (n) => (n === 1 ? `${name}${suffix}` : `${name}-${n}${suffix}`),
      (file): Manifest =>
        manifestFor(
          { file, sha256, bytes, ...codec },
          {
            ...(damage.length ? { damaged: damage } : {}),
            ...(restoreChecked ? { restoreChecked } : {}),
          },
        ),
      signingKey ? (bytes) => signatureFor(bytes, signingKey) : undefined,
    )
    log.info(`backup written: ${final} (${bytes} bytes, sha256 ${sha256})`)
    report.backup = { path: final, sha256, bytes, createdAt: started.toISOString() }
    report.database = databaseFacts(snapshot.source.bytes, inventory.rowCounts)
  } catch (err) {
    findingsKnown(false)
    settle.reject(new Error('abandoned: there is no backup to check'))
    inventoried.reject(new Error('abandoned: there is no backup to check'))
    await checking
    // Let a hash under way finish reading before the file is removed.
    await (hashing as Promise<unknown> | null)?.catch(() => undefined)
    // Removing what was written cannot replace the error that stopped the backup: in a folder
    // the runner cannot enter, the removal fails too (EACCES), and says nothing of why. What
    // could not be removed is said, so that a leftover is never silent.
    for (const partial of [tmp, `${tmp}-journal`, stored]) {
      await fs.rm(partial, { recursive: true, force: true }).catch((why: unknown) => {
        log.warning(`could not remove the partial file ${partial}: ${describeError(why)}`)
      })
    }
    throw await asWriteFailure(
      err,
      writing.input,
      writing.path,
      'no backup was written; older backups are untouched',
    )
  } finally {
    // A check begun for a snapshot that is damaged, or a backup that failed, is abandoned; it
    // ends (and removes its scratch copy) before the files it reads go.
    settle.reject(new Error('abandoned: there is no backup to check'))
    inventoried.reject(new Error('abandoned: there is no backup to check'))
    await checking
    // As above: a scratch folder that will not go must not replace the backup's own error.
    await work?.remove().catch((why: unknown) => {
      log.warning(
        `could not remove the scratch folder ${workDir} (it may hold the plaintext snapshot; remove it by hand): ${describeError(why)}`,
      )
    })
    for (const f of forget) f()
  }
  // Nothing older may go, and nothing is uploaded, until the backup is committed as recorded:
  // its manifest reads back from disk and names a file of the size that was hashed. (The
  // content itself was hashed once, from the same inode the final name now links to.)
  const entry = await store.entry(report.backup.path)
  const readBack = checksum(
    { sha256: report.backup.sha256, bytes: await pathBytes(entry.path) },
    entry.manifest.backup,
  )
  report.checks.push(readBack)
  // The signature reads back too: against verify-key when this job holds it, so that a key pair
  // that does not match is found the night it is set up, not at the next drill.
  const signed = signingKey
    ? await checkSignature(
        entry,
        config.verifyKeys.length ? config.verifyKeys : [verifyKeyOf(signingKey)],
        config.verifyKeys.length ? Inputs.VerifyKey : Inputs.SigningKey,
      )
    : null
  if (signed) report.checks.push(signed)
  if (entry.manifest.damaged && !damagedSource(entry.manifest)) {
    const error = `${Inputs.RestoreCheck}: the new backup did not restore and check as it must (${entry.manifest.damaged.join('; ')}). It was kept as ${report.backup.path}, marked damaged: verify, drill and restore never choose it unless backup-file names it, and retention deleted nothing. Fix: drill the newest good backup, and look at the restore check's detail above.`
    report.warnings.push(error)
    log.warning(error)
  } else if (entry.manifest.damaged) {
    const error = `connection-string: ${path.basename(config.connectionString)} is DAMAGED (${entry.manifest.damaged.slice(0, 3).join('; ')}). A copy was kept as ${report.backup.path}, marked damaged: verify, drill and restore never choose it unless backup-file names it, and retention deleted nothing. Fix: restore the newest good backup (mode restore), or recover rows from the damaged copy by hand.`
    report.warnings.push(error)
    log.warning(error)
  } else if (readBack.ok && signed?.ok !== false) {
    if (config.uploadArtifact) {
      const settings = artifactSettings(config.artifactName, config.githubToken, config.runner)
      const { tier, retentionDays } = artifactTier(started, config.keepDaily, config.keepWeekly)
      const { id } = await log.group('Upload artifact', () =>
        uploadBackup(entry, retentionDays, settings, log),
      )
      report.artifact = { name: config.artifactName, id, tier, retentionDays }
      if (config.encryption.kind === 'none') {
        report.warnings.push(
          `UNENCRYPTED backup uploaded as artifact "${config.artifactName}" (allow-unencrypted-artifact: true): anyone who can read this repository can download every user's conversations.`,
        )
      }
    }
    if (config.retention !== 'off' && !restoreNotRun) {
      report.retention = await applyRetentionTo(store, entry.path, config)
    }
    // Uploaded all the same: an off-site copy of an unproven backup is better than none.
    if (s3) report.s3 = await offsite(s3, entry, ctx, started, !restoreNotRun)
  }
  const listing = await store.list()
  report.backupCount = listing.backups.length
  // The summary shows the room left beside the backups, and warns before the next one fails.
  const space = await spaceFacts(
    config.backupDir,
    report.backup.bytes,
    listing.backups.reduce((n, b) => n + b.manifest.backup.bytes, 0),
  )
  if (space) {
    report.space = space
    if (!space.nextFits && !ctx.safety) {
      const warning = `backup-dir: ${formatBytes(space.free)} free in ${config.backupDir}, and the newest backup is ${formatBytes(space.newestBytes)}: the next backup will not fit. Fix: free space, lower keep-daily/keep-weekly, or move backup-dir.`
      report.warnings.push(warning)
      log.warning(warning)
    }
  }
  if (!ctx.safety) await recordTrend(ctx, report)
  return finish(report, started, now())
}

/**
 * The backup catalog carried from run to run in the Actions cache (sizes and times), which the
 * summary turns into a trend of database size and backup time. An optional extra: outside a
 * workflow run it does nothing, and a cache failure only warns.
 */
async function recordTrend(
  { config, log }: ModeContext<BackupOptions>,
  report: ModeReport<'backup'>,
): Promise<void> {
  // Outside a workflow run there is no cache to carry the catalog in.
  if (!report.backup || !report.database || !config.runner.actionsServices) return
  const key = `omniai-backups-catalog-${config.prefix}`
  const entries = await loadCatalog(config.scratchDir, key, log, config.runner)
  entries.push({
    at: report.backup.createdAt,
    engine: report.engine,
    databaseBytes: report.database.bytes,
    backupBytes: report.backup.bytes,
    backupSeconds: ((report.durations.snapshotMs ?? 0) + (report.durations.checksumMs ?? 0)) / 1000,
    ...(report.artifact?.tier ? { tier: report.artifact.tier } : {}),
  })
  await saveCatalog(config.scratchDir, key, entries, log, config.runner)
  report.trend = renderTrend(entries)
}

async function applyRetentionTo(store: LocalStore, newest: string, config: BackupOptions) {
  // Damaged copies are never a day's or week's backup (they would push out a good one), and
  // retention leaves them for a person to remove.
  const decisions = planRetention(
    (await store.list()).backups.filter((e) => !e.manifest.damaged),
    {
      keepDaily: config.keepDaily,
      keepWeekly: config.keepWeekly,
      timeZone: config.retentionTimeZone,
    },
    { protect: [newest] },
  )
  const dryRun = config.retention === 'dry-run'
  const summary = await applyRetention(decisions, { dryRun, remove: (e) => store.remove(e) })
  return {
    mode: dryRun ? ('dry-run' as const) : ('apply' as const),
    ...summary,
    decisions: retentionRows(decisions),
  }
}

/**
 * Off-site: the committed backup (signature, then manifest last) streamed to the bucket, then
 * retention there, which never deletes a backup still under Object Lock. An upload that fails
 * leaves nothing under a backup name and fails the job before retention runs.
 */
async function offsite(
  s3: S3Store,
  entry: BackupEntry,
  ctx: ModeContext<BackupOptions>,
  started: Date,
  /** False where tonight's backup is not proven (restore-check not run): nothing is deleted. */
  retain: boolean,
) {
  const { config, log, now } = ctx
  const { tier, retentionDays } = artifactTier(started, config.keepDaily, config.keepWeekly)
  const up = await log.group(`Upload to ${s3.location}`, () =>
    s3.upload(entry, { retentionDays, log }),
  )
  log.info(
    `uploaded ${up.key}${up.lock ? ` (Object Lock ${up.lock.mode} until ${up.lock.until.toISOString()})` : ''}`,
  )
  let retention: Report['retention']
  if (config.retention !== 'off' && retain) {
    const decisions = keepLocked(
      planRetention(
        (await s3.list()).backups.filter((e) => !e.manifest.damaged),
        {
          keepDaily: config.keepDaily,
          keepWeekly: config.keepWeekly,
          timeZone: config.retentionTimeZone,
        },
        { protect: [up.path] },
      ),
      now(),
    )
    const dryRun = config.retention === 'dry-run'
    const summary = await applyRetention(decisions, {
      dryRun,
      remove: async (e) => {
        const r = await s3.remove(e as S3Entry, log)
        if (!r.removed) log.warning(`retention in ${s3.location}: ${r.reason}`)
      },
    })
    retention = {
      mode: dryRun ? 'dry-run' : 'apply',
      ...summary,
      decisions: retentionRows(decisions),
    }
  }
  return {
    location: s3.location,
    key: up.key,
    tier,
    lockedUntil: up.lock?.until.toISOString() ?? null,
    ...(retention ? { retention } : {}),
  }
}

/**
 * What a backup will write, estimated before it starts: SQLite's snapshot is the size of the
 * database (and its WAL); the stored file is that times the ratio the newest backup here had
 * (compression), or for PostgreSQL the newest dump's size. With no history and no local file to
 * measure, nothing is estimated and the write itself reports a full disk.
 */
async function backupNeeds(
  { config, safety }: ModeContext<BackupOptions>,
  store: LocalStore,
  encoded: boolean,
): Promise<Need[]> {
  const newest = (await store.list().catch(() => null))?.backups.find((b) => !b.manifest.damaged)
  let source: number | null = null
  if (config.engine === 'sqlite') {
    source = await sqliteBytes(config.connectionString)
  }
  const ratio =
    newest && newest.manifest.source.bytes > 0 && encoded
      ? newest.manifest.backup.bytes / newest.manifest.source.bytes
      : 1
  const stored =
    source !== null ? Math.ceil(source * Math.min(1, ratio)) : (newest?.manifest.backup.bytes ?? 0)
  const name = path.basename(config.connectionString)
  const needs: Need[] = [
    {
      input: Inputs.BackupDir,
      dir: config.backupDir,
      bytes: stored,
      what: `the ${safety ? 'safety ' : ''}backup of ${config.engine === 'sqlite' ? name : 'the database'} (${formatBytes(stored)}${encoded && newest ? ", at the last backup's compression" : ''})`,
    },
  ]
  if (encoded && source !== null) {
    needs.push({
      input: Inputs.ScratchDir,
      dir: config.scratchDir,
      bytes: source,
      what: `the plaintext snapshot before it is encrypted (${formatBytes(source)})`,
    })
  }
  return needs
}

/** Free space beside the backups, and whether the next backup of this size still fits. */
export async function spaceFacts(dir: string, newestBytes: number, folderBytes: number) {
  const space = await spaceAt(dir)
  if (!space) return null
  return {
    dir,
    free: space.free,
    folderBytes,
    newestBytes,
    nextFits: space.free >= newestBytes * 1.05,
  }
}

/**
 * How this backup job opens its own encoded backup: nothing to open, or the passphrase it
 * encrypted with. Null where it holds only a public key (age recipients, a gpg recipient).
 */
function ownDecryption(encryption: Encryption): Decryption | null {
  if (encryption.kind === 'none') return { kind: 'none' }
  if (encryption.passphrase === undefined) return null
  if (encryption.kind === 'age') {
    return encryption.recipients?.length ? null : { kind: 'age', passphrase: encryption.passphrase }
  }
  if (encryption.recipient) return null
  return {
    kind: 'gpg',
    passphrase: encryption.passphrase,
    ...(encryption.homedir ? { homedir: encryption.homedir } : {}),
  }
}

/**
 * restore-check of an encoded backup this job can open: the stored file decoded back into
 * `snapshot`'s place (the plaintext snapshot goes first, so no more room is needed), where it
 * must read as it was written (its sha256) and decode to the snapshot (the plaintext's). Null
 * when it did, for the checks to go on with; else the check's result.
 */
async function decodeBack(
  stored: string,
  snapshot: string,
  opts: DecodeOptions,
  written: Hashed & { plain: Hashed },
): Promise<Awaited<ReturnType<typeof restoreCheck>> | null> {
  const t0 = stopwatch()
  const result = (outcome: 'failed' | 'not-run', detail: string) => ({
    check: { name: 'restore-check', ok: false, detail },
    names: [],
    outcome,
    seconds: t0.seconds(),
  })
  await fs.rm(snapshot, { force: true })
  let got
  try {
    got = await decodeFile(stored, snapshot, opts)
  } catch (err) {
    // What the codec says of the data (damaged, a key that does not open it), or a failed read
    // of the stored file, is the backup's; any other error is writing into scratch-dir.
    const backups = err instanceof UserError || (err as { syscall?: string }).syscall === 'read'
    return backups
      ? result('failed', `the stored backup did not decode: ${describeError(err)}`)
      : result(
          'not-run',
          `${Inputs.ScratchDir}: the stored backup could not be decoded into ${path.dirname(snapshot)}: ${describeError(err)}`,
        )
  }
  const short = (h: string) => `${h.slice(0, 12)}…`
  if (got.sha256 !== written.sha256 || got.bytes !== written.bytes) {
    return result(
      'failed',
      `the stored file reads back as sha256 ${short(got.sha256)} (${got.bytes} bytes), written as ${short(written.sha256)} (${written.bytes} bytes)`,
    )
  }
  if (got.plainSha256 !== written.plain.sha256 || got.plainBytes !== written.plain.bytes) {
    return result(
      'failed',
      `the stored file decodes to sha256 ${short(got.plainSha256)} (${got.plainBytes} bytes), where its snapshot was ${short(written.plain.sha256)} (${written.plain.bytes} bytes)`,
    )
  }
  return null
}

/** Whether a damaged manifest's damage is the source's (not only a failed restore check). */
function damagedSource(manifest: Manifest): boolean {
  return (manifest.damaged ?? []).some((d) => !d.startsWith('restore-check failed:'))
}

/**
 * restore-check: `ref` (the new backup's plaintext) restored into a scratch copy as a drill
 * restores it, and checked against its manifest by the drill's checks. Never throws. The
 * manifest may still be on its way: an engine that restores from the file alone (SQLite)
 * restores and starts the integrity checks meanwhile; a rejected manifest abandons the check.
 * `failed`: it did not restore, or the restored copy differs (the backup is not usable);
 * `not-run`: the check itself could not run (no room in scratch-dir, the restore server refused
 * the drill's role or a connection), which says nothing about the backup.
 */
export async function restoreCheck(
  engine: Engine,
  ref: {
    path: string
    manifest: Manifest | Promise<Manifest>
    /**
     * The manifest's inventory, known before the rest of it: the checks that read rows begin
     * with it, and the integrity findings are compared when the manifest follows.
     */
    inventory?: Promise<Inventory>
    /**
     * True where the manifest's foreign-key findings are this check's own reading of the
     * restored copy (SQLite's snapshot takes them from it): not compared, and not named as checked.
     */
    findingsShared?: Promise<boolean>
    /**
     * The backup as stored, where it is not `path` (an encoded backup), and the sha256 it was
     * written with: whether it is still as written decides who a copy that differs blames.
     */
    stored?: StoredFile
  },
  scratchDir: string,
  log: Log,
  /** Told the restored copy as soon as it is open (its checks under way), or null if none is. */
  onRestored: (db: Database | null) => void = () => undefined,
): Promise<{
  check: Check
  names: string[]
  outcome: 'passed' | 'failed' | 'not-run'
  seconds: number
}> {
  const t0 = stopwatch()
  const result = (
    outcome: 'passed' | 'failed' | 'not-run',
    detail: string,
    names: string[] = [],
  ) => ({
    check: { name: 'restore-check', ok: outcome === 'passed', detail },
    names,
    outcome,
    seconds: t0.seconds(),
  })
  try {
    if (engine.name === 'sqlite') {
      const { size } = await fs.stat(ref.path)
      await requireSpace(
        [
          {
            input: Inputs.ScratchDir,
            dir: scratchDir,
            bytes: size,
            what: `the restore check's scratch copy (${formatBytes(size)})`,
          },
        ],
        "The restore check's copy was not made.",
      )
    }
    return await withScratch(scratchDir, 'drill', async (dir) => {
      // An engine that restores from the file alone does not wait for the manifest.
      const restoring = engine.restoreFile
        ? engine.restoreFile(ref.path, dir, log)
        : Promise.resolve(ref.manifest).then((manifest) =>
            engine.restore({ path: ref.path, manifest }, dir, log),
          )
      let db: Database
      try {
        db = await restoring
      } catch (err) {
        onRestored(null)
        return notRun(err)
          ? result('not-run', describeError(err))
          : result('failed', `did not restore: ${describeError(err)}`)
      }
      onRestored(db)
      let checks: Check[]
      try {
        const early = ref.inventory ?? Promise.resolve(ref.manifest).then((m) => m.inventory)
        ;({ checks } = await checkRestored(db, { inventory: await early }, ref.manifest))
      } finally {
        await db
          .close()
          .catch((err: unknown) => log.warning(`restore-check: ${describeError(err)}`))
      }
      const failed = checks.filter((c) => !c.ok)
      const unlike = failed.length && engine.restoreFile ? await notTheBackup(db, ref) : null
      if (unlike) return result('not-run', unlike)
      // A comparison of a reading with itself proves nothing: it is not named as checked.
      const shared = (await ref.findingsShared) === true
      const names = checks.filter((c) => !(shared && c.name === 'foreign-keys')).map((c) => c.name)
      const own = shared
        ? "; the foreign-key findings the manifest records are this copy's own (one reading of the same bytes), so not compared"
        : ''
      return failed.length
        ? result(
            'failed',
            `restored, but ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`,
            names,
          )
        : result(
            'passed',
            `restored into a scratch copy and checked: ${names.join(', ')} match the manifest${own}`,
            names,
          )
    })
  } catch (err) {
    return result('not-run', describeError(err))
  } finally {
    onRestored(null)
  }
}

/**
 * Where a restored SQLite copy (the backup's bytes, copied) failed its checks: why those checks
 * say nothing of the backup, or null when they do. The copy is hashed, and the backup again
 * (the stored file, for an encoded backup): a copy unlike a backup that is still as it was
 * written was changed in scratch-dir (its disk), after the snapshot was read or the stored file
 * decoded. Only on this failing path is anything hashed.
 */
async function notTheBackup(
  db: Database,
  ref: {
    path: string
    manifest: Manifest | Promise<Manifest>
    stored?: StoredFile
  },
): Promise<string | null> {
  const file = (db as { file?: unknown }).file
  if (typeof file !== 'string') return null
  const want = (await ref.manifest).backup
  const stored = ref.stored ?? { path: ref.path, sha256: want.sha256, bytes: want.bytes }
  const [copy, backup] = await Promise.all([digestPath(file), digestPath(stored.path)])
  const same = (d: Hashed, as: Hashed) => d.sha256 === as.sha256 && d.bytes === as.bytes
  if (same(copy, want) || !same(backup, stored)) return null
  return `${Inputs.ScratchDir}: the restored copy differs from the backup it was copied from (sha256 ${copy.sha256.slice(0, 12)}… and ${copy.bytes} bytes, where the backup has ${want.sha256.slice(0, 12)}… and ${want.bytes}): the disk under scratch-dir did not keep it, so its checks say nothing of the backup. Fix: check that disk, or set scratch-dir to a folder on another one.`
}

/** An error of the check's surroundings (restore server, scratch-dir, disk), not of the backup. */
function notRun(err: unknown): boolean {
  if (writeFailureCause(err)) return true
  const message = err instanceof Error ? err.message : String(err)
  return new RegExp(
    `^(${Inputs.RestoreConnectionString}|${Inputs.ScratchDir}|${Inputs.PgBinDir}):`,
  ).test(message)
}
