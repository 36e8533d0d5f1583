/**
 * Backups in an S3-compatible bucket (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Ceph RGW),
 * beside the local folder and GitHub artifacts: `storage: s3://bucket/prefix`.
 *
 * The layout is the local folder's: `<prefix>/<name>` (or, for pg_dump's directory format,
 * `<prefix>/<name>/<file>`), `<prefix>/<name>.manifest.json` and its signature
 * `<prefix>/<name>.manifest.json.sig`. The manifest is uploaded last, so its presence is what
 * marks a backup complete; a backup that was half uploaded has none and is never chosen.
 *
 * - upload() streams a finished local backup (after the backup's read-back check) with multipart
 *   upload: memory stays flat (a few parts), there is no second copy on disk, every part is sent
 *   with its sha256 signed (SigV4), which the server checks, and the bytes sent are hashed as
 *   they go and must match the manifest's sha256. On any failure the multipart upload is aborted and whatever was already
 *   written under the backup's name is deleted, so no object is left under a backup name.
 * - fetch() downloads a backup into a local folder, streaming, and proves it against the
 *   manifest (size first, then sha256; never the ETag, which is not a content hash for multipart
 *   uploads or encrypted buckets), then writes the manifest beside it. A truncated or replaced
 *   object leaves nothing behind.
 * - remove() never deletes an object under Object Lock before its retain-until date: it keeps the
 *   backup and says why. In a versioned bucket a delete adds a delete marker; the data stays as a
 *   noncurrent version until a lifecycle rule expires it (src/store/README.md).
 *
 * The AWS SDK is imported only by createS3Store(), when an s3:// location is used, so no other
 * mode loads it. Errors are one-line UserErrors naming the input to fix.
 */
import { Inputs } from '../options/inputs.js'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { cleanups } from '../util/cleanup.js'
import { UserError, describeError } from '../util/errors.js'
import {
  digestPath,
  fsyncDir,
  fsyncPath,
  makeDirs,
  restrictPath,
  tempName,
  writeFileAtomic,
} from '../util/fs.js'
import type { Log } from '../util/log.js'
import { MANIFEST_SUFFIX, manifestPathFor } from '../manifest/manifest.js'
import type { Decision } from './retention.js'
import { SIGNATURE_SUFFIX, signaturePathFor } from '../manifest/signature.js'
import { BACKUP_FILE, type BackupEntry, type Listing } from './local.js'
import { endpointName, s3Error } from './s3-errors.js'
import { isS3Location, S3Inputs, type ObjectLockMode, type S3Settings } from './s3-settings.js'
import { DamagedManifest, parseManifest } from '../manifest/manifest.js'
import { contentMd5, Digesting, mapLimit } from './s3-support.js'

export * from './s3-settings.js'

type S3Sdk = typeof import('@aws-sdk/client-s3')
type UploadClass = typeof import('@aws-sdk/lib-storage').Upload

/** Same pattern as local.ts: the names the backup mode gives. */
const DAY_MS = 86_400_000

/** A backup in the bucket. `path` and `manifestPath` are s3:// URLs, for messages and retention. */
export interface S3Entry extends BackupEntry {
  key: string
  manifestKey: string
  /** pg_dump's directory format: the files are under `<key>/`. */
  directory: boolean
  /** The manifest's bytes as stored (a signature is over exactly these). */
  manifestText: string
  /** The manifest object's Object Lock, when it has one. */
  lock: ObjectLock | null
}

export interface ObjectLock {
  mode: string
  until: Date
  legalHold?: boolean
}

export interface S3Listing extends Listing {
  backups: S3Entry[]
}

export type RemoveResult = { removed: true } | { removed: false; reason: string }

export interface S3StoreOptions {
  /** Multipart part size in bytes (at least 5 MiB); larger backups get larger parts. */
  partSize?: number
  /** Parts in flight at once. */
  queueSize?: number
  /** Incomplete multipart uploads under the prefix older than this are aborted by upload(). */
  abandonedUploadMs?: number
  now?: () => Date
}

const MIB = 1 << 20
const DEFAULT_PART = 8 * MIB
const MAX_PARTS = 10_000

/** Loads the SDK and returns a store for `settings`. */
export async function createS3Store(
  settings: S3Settings,
  options: S3StoreOptions = {},
): Promise<S3Store> {
  const [sdk, storage] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('@aws-sdk/lib-storage'),
  ])
  return new S3Store(settings, sdk, storage.Upload, options)
}

type Client = InstanceType<S3Sdk['S3Client']>

export class S3Store {
  readonly client: Client
  /** s3://bucket/prefix/, for messages. */
  readonly location: string
  private readonly now: () => Date

  constructor(
    readonly settings: S3Settings,
    private readonly sdk: S3Sdk,
    private readonly Upload: UploadClass,
    private readonly options: S3StoreOptions = {},
  ) {
    this.location = `s3://${settings.bucket}/${settings.prefix}`
    this.now = options.now ?? (() => new Date())
    this.client = new sdk.S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
      // Many S3-compatible servers (Ceph, older MinIO) ignore or refuse the newer checksum
      // headers. They are not needed: every part and the manifest are in memory when sent, so
      // SigV4 signs their sha256 and the server refuses a body damaged on the way.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      followRegionRedirects: settings.endpoint === null,
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 },
    })
    // AWS requires Content-MD5 (or a flexible checksum) on writes under Object Lock. Only then:
    // MD5 costs as much CPU as the transfer's other hashes together.
    if (settings.objectLock) {
      // Typed loosely: the SDK's middleware types come from a package this one does not depend on.
      this.client.middlewareStack.add(contentMd5 as never, {
        step: 'build',
        name: 'omniaiContentMd5',
        override: true,
      })
    }
  }

  /** The key of a name in the store's prefix. */
  keyOf(name: string): string {
    return this.settings.prefix + name
  }

  urlOf(key: string): string {
    return `s3://${this.settings.bucket}/${key}`
  }

  /**
   * Checks the bucket can be reached with these credentials before any work, and, with
   * s3-object-lock, that the bucket has Object Lock enabled.
   */
  async check(): Promise<void> {
    // A listing, not HeadBucket: its errors have a body saying what is wrong (HeadBucket's have
    // only a status), and listing is what every mode does first anyway.
    await this.call('list', null, () =>
      this.client.send(
        new this.sdk.ListObjectsV2Command({
          Bucket: this.settings.bucket,
          Prefix: this.settings.prefix,
          MaxKeys: 1,
        }),
      ),
    )
    if (!this.settings.objectLock) return
    const config = await this.call('read the Object Lock configuration of', null, () =>
      this.client.send(
        new this.sdk.GetObjectLockConfigurationCommand({ Bucket: this.settings.bucket }),
      ),
    ).catch((err: unknown) => {
      if (err instanceof UserError && /ObjectLockConfigurationNotFound/.test(err.message))
        return null
      throw err
    })
    if (config?.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled') {
      throw new UserError(
        `${S3Inputs.ObjectLock}: set to ${this.settings.objectLock.toLowerCase()}, but bucket "${this.settings.bucket}" does not have Object Lock enabled. Fix: use a bucket created with Object Lock (it cannot be turned on for every provider later), or set ${S3Inputs.ObjectLock}: off.`,
      )
    }
  }

  /** Every object and sub-folder directly under `prefix`, through as many pages as there are. */
  private async listPrefix(
    prefix: string,
  ): Promise<{ objects: Map<string, { size: number }>; folders: Set<string> }> {
    const objects = new Map<string, { size: number }>()
    const folders = new Set<string>()
    let token: string | undefined
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(
          new this.sdk.ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: prefix,
            Delimiter: '/',
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      )
      for (const o of page.Contents ?? []) if (o.Key) objects.set(o.Key, { size: o.Size ?? 0 })
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) folders.add(p.Prefix.slice(0, -1))
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new UserError(
          `${S3Inputs.Endpoint}: the server said the listing of ${this.urlOf(prefix)} goes on but gave no continuation token. Fix: check that s3-endpoint is an S3-compatible server.`,
        )
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return { objects, folders }
  }

  /** Every file of a directory backup, with sizes, through as many pages as there are. */
  private async filesOf(key: string): Promise<Map<string, { size: number }>> {
    return (await this.listPrefix(`${key}/`)).objects
  }

  async list(): Promise<S3Listing> {
    const { objects, folders } = await this.listPrefix(this.settings.prefix)
    const backups: S3Entry[] = []
    const damaged: string[] = []
    const described = new Set<string>()
    const manifests = [...objects.keys()].filter((k) => k.endsWith(MANIFEST_SUFFIX))
    const read = await mapLimit(manifests, 8, async (manifestKey) => {
      const key = manifestKey.slice(0, -MANIFEST_SUFFIX.length)
      const directory = !objects.has(key) && folders.has(key)
      if (!objects.has(key) && !directory) {
        return {
          key,
          error: `manifest ${this.urlOf(manifestKey)} describes ${path.posix.basename(key)}, which is not in the bucket; this backup cannot be used.`,
        }
      }
      try {
        return { key, entry: await this.readEntry(key, directory) }
      } catch (err) {
        // Only a manifest that does not parse is "damaged": a server or network failure while
        // reading one fails the listing, rather than quietly choosing an older backup.
        if (err instanceof DamagedManifest) return { key, error: err.message }
        // Deleted since it was listed (retention in another job): not there any more.
        if (
          (err as Error).cause &&
          (err as { cause: { name?: string } }).cause.name === 'NoSuchKey'
        )
          return { key }
        throw err
      }
    })
    for (const r of read) {
      described.add(r.key)
      if (r.entry) backups.push(r.entry)
      else if (r.error) damaged.push(r.error)
    }
    backups.sort(
      (a, b) =>
        Date.parse(b.manifest.createdAt) - Date.parse(a.manifest.createdAt) ||
        b.key.localeCompare(a.key),
    )
    const orphans = [...objects.keys(), ...folders]
      .filter(
        (k) => BACKUP_FILE.test(k) && !path.posix.basename(k).startsWith('.') && !described.has(k),
      )
      .sort()
      .map((k) => this.urlOf(k))
    return { backups, orphans, damaged }
  }

  /** The entry of the backup at `key`, from its manifest (which must be there and valid). */
  private async readEntry(key: string, directory: boolean): Promise<S3Entry> {
    const manifestKey = key + MANIFEST_SUFFIX
    const object = await this.call('read', manifestKey, () =>
      this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: manifestKey }),
      ),
    )
    const manifestText = await object.Body!.transformToString('utf8')
    const manifest = parseManifest(manifestText, this.urlOf(manifestKey))
    return {
      path: this.urlOf(key),
      manifestPath: this.urlOf(manifestKey),
      manifest,
      key,
      manifestKey,
      directory,
      manifestText,
      lock: lockOf(object),
    }
  }

  /**
   * `name` resolved to a key: `s3://bucket/key`, a key with a '/' in it (from the bucket's
   * root), or a name in the store's prefix.
   */
  resolve(name: string): string {
    const n = name.trim()
    if (isS3Location(n)) {
      const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(n)
      if (!m || m[1] !== this.settings.bucket) {
        throw new UserError(
          `${Inputs.BackupFile}: ${n} is not in bucket "${this.settings.bucket}" (${S3Inputs.Storage}). Fix: name a backup in ${this.location}, e.g. its file name.`,
        )
      }
      return m[2]!
    }
    return n.includes('/') ? n.replace(/^\/+/, '') : this.keyOf(n)
  }

  /** The entry for a backup in the bucket, with its manifest. */
  async entry(name: string): Promise<S3Entry> {
    const key = this.resolve(name).replace(/\/+$/, '')
    const manifestKey = key + MANIFEST_SUFFIX
    const head = await this.head(manifestKey)
    if (!head) {
      throw new UserError(
        `${Inputs.BackupFile}: ${this.urlOf(key)} has no manifest (${path.posix.basename(manifestKey)} is not in the bucket), so nothing can prove what it should contain. Fix: name a backup that mode backup uploaded, or run mode backup again.`,
      )
    }
    let directory = false
    if (!(await this.head(key))) {
      directory = (await this.filesOf(key)).size > 0
      if (!directory) {
        throw new UserError(
          `${Inputs.BackupFile}: ${this.urlOf(key)} is not in the bucket, though its manifest is. Fix: name another backup; run mode backup again.`,
        )
      }
    }
    return this.readEntry(key, directory)
  }

  /**
   * The backup to verify or restore: `name` when given (it must have a manifest), otherwise the
   * newest by its manifest's createdAt, never one taken from a damaged database.
   */
  async select(name: string | null, log: Log): Promise<{ entry: S3Entry; listing: S3Listing }> {
    const listing = await this.list()
    for (const d of listing.damaged) log.warning(d)
    if (name) return { entry: await this.entry(name), listing }
    const newest = listing.backups.find((b) => !b.manifest.damaged)
    for (const b of listing.backups) {
      if (newest && b === newest) break
      log.warning(
        `${b.path} was taken from a damaged database and is not chosen; name it in backup-file to use it anyway.`,
      )
    }
    if (!newest) {
      const orphans = listing.orphans.length
        ? ` It holds ${listing.orphans.length} backup(s) without a manifest (${listing.orphans.slice(0, 5).join(', ')}${listing.orphans.length > 5 ? ', ...' : ''}), which cannot be verified.`
        : ''
      if (listing.backups.length) {
        throw new UserError(
          `${S3Inputs.Storage}: every backup in ${this.location} was taken from a damaged database (${listing.backups.map((b) => path.posix.basename(b.key)).join(', ')}), so none is chosen on its own. Fix: set backup-file to one of them to use it anyway.`,
        )
      }
      throw new UserError(
        `${S3Inputs.Storage}: no backups with a manifest in ${this.location}.${orphans} Fix: run mode backup with this storage first, or set storage to where your backup job uploads.`,
      )
    }
    return { entry: newest, listing }
  }

  /**
   * Downloads a backup into `dir` and proves it: its size and sha256 must be the manifest's.
   * Then writes its signature (when there is one) and its manifest beside it, the manifest last,
   * byte for byte as stored. Returns the local entry, for the checks that follow. On any failure
   * nothing of it is left in `dir`.
   */
  async fetch(entry: S3Entry, dir: string, log?: Log): Promise<BackupEntry> {
    await makeDirs(dir, 0o700)
    const name = path.posix.basename(entry.key)
    const target = path.join(dir, name)
    const tmp = tempName(dir, name)
    const forget = cleanups.add(`partial download ${tmp}`, () =>
      fs.rm(tmp, { recursive: true, force: true }),
    )
    // Once renamed into place, a failure (the signature or manifest not written) removes it too:
    // a backup without its manifest is not something to leave for the checks.
    let placed = false
    try {
      const expected = entry.manifest.backup
      if (entry.directory) {
        await fs.mkdir(tmp, { mode: 0o700 })
        const files = await this.filesOf(entry.key)
        const total = [...files.values()].reduce((sum, f) => sum + f.size, 0)
        if (total !== expected.bytes) throw this.sizeMismatch(entry, total)
        for (const key of [...files.keys()].sort()) {
          const file = path.posix.basename(key)
          if (file.startsWith('.') || key !== `${entry.key}/${file}`) continue
          await this.download(key, path.join(tmp, file), null, entry)
        }
        const got = await digestPath(tmp)
        if (got.bytes !== expected.bytes) throw this.sizeMismatch(entry, got.bytes)
        if (got.sha256 !== expected.sha256) throw this.digestMismatch(entry, got.sha256)
      } else {
        await this.download(entry.key, tmp, expected, entry)
      }
      const signature = await this.getText(entry.manifestKey + SIGNATURE_SUFFIX)
      await restrictPath(tmp)
      await fsyncPath(tmp)
      await fs.rm(target, { recursive: true, force: true })
      await fs.rename(tmp, target)
      placed = true
      await fsyncDir(dir)
      const manifestPath = manifestPathFor(target)
      if (signature !== null) await writeFileAtomic(signaturePathFor(manifestPath), signature)
      await writeFileAtomic(manifestPath, entry.manifestText)
      log?.info(`downloaded ${entry.path} (${expected.bytes} bytes, sha256 ${expected.sha256})`)
      return { path: target, manifestPath, manifest: entry.manifest }
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true })
      if (placed) {
        await fs.rm(target, { recursive: true, force: true })
        await fs.rm(signaturePathFor(manifestPathFor(target)), { force: true })
      }
      throw err
    } finally {
      forget()
    }
  }

  /**
   * Streams one object to `file`, counting and hashing; with `expected`, the size is checked
   * before the first byte is written and the sha256 after the last.
   */
  private async download(
    key: string,
    file: string,
    expected: { sha256: string; bytes: number } | null,
    entry: S3Entry,
  ): Promise<void> {
    const object = await this.call('download', key, () =>
      this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: key })),
    )
    const body = object.Body as Readable
    if (expected && object.ContentLength !== undefined && object.ContentLength !== expected.bytes) {
      body.destroy()
      throw this.sizeMismatch(entry, object.ContentLength)
    }
    const digest = new Digesting(null)
    try {
      await pipeline(body, digest, createWriteStream(file, { mode: 0o600 }))
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.syscall && e.path) {
        throw new UserError(
          `${Inputs.ScratchDir}: cannot write ${e.path} while downloading ${this.urlOf(key)} (${e.code}); nothing of it was kept. Fix: free space there, or set scratch-dir to a folder with room for the backup.`,
        )
      }
      throw new UserError(
        `${S3Inputs.Storage}: the download of ${this.urlOf(key)} broke off after ${digest.bytes} bytes (${describeError(err)}); nothing of it was kept. Fix: run again; if it keeps failing, check the network to ${endpointName(this.settings)}.`,
      )
    }
    if (object.ContentLength !== undefined && digest.bytes !== object.ContentLength) {
      throw new UserError(
        `${S3Inputs.Storage}: the download of ${this.urlOf(key)} ended after ${digest.bytes} of ${object.ContentLength} bytes; nothing of it was kept. Fix: run again.`,
      )
    }
    if (!expected) return
    if (digest.bytes !== expected.bytes) throw this.sizeMismatch(entry, digest.bytes)
    const sha256 = digest.hex()
    if (sha256 !== expected.sha256) throw this.digestMismatch(entry, sha256)
  }

  private sizeMismatch(entry: S3Entry, bytes: number): UserError {
    return new UserError(
      `${S3Inputs.Storage}: ${entry.path} is ${bytes} bytes, but its manifest says ${entry.manifest.backup.bytes}: the object is truncated or was replaced, and nothing of it was kept. Fix: choose another backup (backup-file), or run mode backup again.`,
    )
  }

  private digestMismatch(entry: S3Entry, sha256: string): UserError {
    return new UserError(
      `${S3Inputs.Storage}: ${entry.path} has sha256 ${sha256}, but its manifest says ${entry.manifest.backup.sha256}: the object was changed or damaged in the bucket, and nothing of it was kept. Fix: choose another backup (backup-file), or run mode backup again.`,
    )
  }

  /**
   * Uploads a finished local backup and its manifest (and signature), under the local name or
   * the first free `<name>-N` in the bucket, never replacing a backup there. The backup goes
   * first, streamed as a multipart upload and hashed as it goes (it must match the manifest);
   * the manifest goes last. With s3-object-lock, each object is kept under that mode until
   * `retentionDays` from now. On failure the multipart upload is aborted and what was written
   * is deleted, and the error says what (if anything) Object Lock kept.
   */
  async upload(
    local: BackupEntry,
    options: { retentionDays?: number; log: Log; onProgress?: (bytes: number) => void },
  ): Promise<S3Entry> {
    const { log } = options
    await this.abortAbandonedUploads(log)
    const stat = await fs.stat(local.path)
    const directory = stat.isDirectory()
    const manifestText = await fs.readFile(local.manifestPath, 'utf8')
    const signature = await fs
      .readFile(signaturePathFor(local.manifestPath), 'utf8')
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null
        throw err
      })
    const name = await this.freeName(path.basename(local.path))
    const key = this.keyOf(name)
    const manifestKey = key + MANIFEST_SUFFIX
    const lock = this.lockFor(options.retentionDays)
    const written: { key: string; versionId?: string }[] = []
    try {
      if (directory) {
        const listing = createHash('sha256')
        let bytes = 0
        for (const file of (await fs.readdir(local.path)).sort()) {
          const size = (await fs.stat(path.join(local.path, file))).size
          const sent = await this.uploadFile(
            path.join(local.path, file),
            `${key}/${file}`,
            size,
            null,
            lock,
            written,
            options.onProgress,
          )
          listing.update(`${sent}  ${size}  ${file}\n`)
          bytes += size
        }
        const sha256 = listing.digest('hex')
        if (sha256 !== local.manifest.backup.sha256 || bytes !== local.manifest.backup.bytes) {
          throw new Error(
            `${local.path} changed after its manifest was written (sha256 ${sha256}, manifest ${local.manifest.backup.sha256})`,
          )
        }
      } else {
        await this.uploadFile(
          local.path,
          key,
          stat.size,
          local.manifest.backup,
          lock,
          written,
          options.onProgress,
        )
      }
      if (signature !== null) {
        await this.putText(manifestKey + SIGNATURE_SUFFIX, signature, lock, written)
      }
      // Last: the manifest is what makes the backup visible to list() and select().
      await this.putText(manifestKey, manifestText, lock, written)
    } catch (err) {
      throw await this.undo(written, err, key)
    }
    log.info(
      `uploaded ${local.path} to ${this.urlOf(key)}${lock ? `, under Object Lock (${lock.mode}) until ${lock.until.toISOString()}` : ''}`,
    )
    return {
      path: this.urlOf(key),
      manifestPath: this.urlOf(manifestKey),
      manifest: local.manifest,
      key,
      manifestKey,
      directory,
      manifestText,
      lock,
    }
  }

  private lockFor(retentionDays: number | undefined): ObjectLock | null {
    if (!this.settings.objectLock || !retentionDays) return null
    return {
      mode: this.settings.objectLock,
      until: new Date(this.now().getTime() + Math.max(1, retentionDays) * DAY_MS),
    }
  }

  /** `name`, or the first `<stem>-N<suffix>` that no object, folder or manifest in the prefix has. */
  private async freeName(name: string): Promise<string> {
    const { objects, folders } = await this.listPrefix(this.settings.prefix)
    const taken = (n: string) => {
      const k = this.keyOf(n)
      return objects.has(k) || folders.has(k) || objects.has(k + MANIFEST_SUFFIX)
    }
    if (!taken(name)) return name
    const m = BACKUP_FILE.exec(name)
    const stem = m ? name.slice(0, m.index) : name
    const suffix = m ? m[0] : ''
    for (let n = 2; n < 10_000; n++) {
      const candidate = `${stem}-${n}${suffix}`
      if (!taken(candidate)) return candidate
    }
    throw new Error(`no free name for ${name} in ${this.location}`)
  }

  /**
   * One file, streamed: a single PUT when it fits one part, else a multipart upload whose parts
   * are read as they are sent (so memory holds at most queueSize + 1 parts). Returns its sha256.
   */
  private async uploadFile(
    file: string,
    key: string,
    bytes: number,
    expected: { sha256: string; bytes: number } | null,
    lock: ObjectLock | null,
    written: { key: string; versionId?: string }[],
    onProgress?: (bytes: number) => void,
  ): Promise<string> {
    const partSize = Math.max(
      this.options.partSize ?? DEFAULT_PART,
      Math.ceil(bytes / (MAX_PARTS - 1) / MIB) * MIB,
    )
    const digest = new Digesting(expected, file)
    const source = createReadStream(file, { highWaterMark: MIB })
    source.on('error', (err) => digest.destroy(err))
    source.pipe(digest)
    const upload = new this.Upload({
      client: this.client,
      params: {
        Bucket: this.settings.bucket,
        Key: key,
        Body: digest,
        ContentLength: bytes,
        ContentType: 'application/octet-stream',
        ...(lock
          ? { ObjectLockMode: lock.mode as ObjectLockMode, ObjectLockRetainUntilDate: lock.until }
          : {}),
      },
      partSize,
      queueSize: this.options.queueSize ?? 4,
      // Aborted here, not by lib-storage: its abort error would hide the upload's own.
      leavePartsOnError: true,
    })
    if (onProgress) upload.on('httpUploadProgress', (p) => onProgress(p.loaded ?? 0))
    const forget = cleanups.add(`incomplete upload ${this.urlOf(key)}`, async () => {
      await upload.abort()
      if (upload.uploadId) await this.abortUpload(key, upload.uploadId)
    })
    let result: { VersionId?: string }
    try {
      result = await upload.done()
    } catch (err) {
      source.destroy()
      const uploadId = upload.uploadId
      if (uploadId) {
        const aborted = await this.abortUpload(key, uploadId).then(
          () => null,
          (abortErr: unknown) => abortErr,
        )
        if (aborted) {
          const why = describeError(s3Error(this.settings, aborted, 'abort', key))
          throw s3Error(
            this.settings,
            err,
            'upload',
            key,
            `; aborting the multipart upload failed too (${why}), so its parts stay until the next backup aborts uploads older than ${Math.round(this.abandonedMs() / 3_600_000)} h, or a lifecycle rule (AbortIncompleteMultipartUpload) removes them; no object was written under that name`,
          )
        }
      }
      throw s3Error(this.settings, err, 'upload', key)
    } finally {
      forget()
    }
    written.push({ key, ...(result.VersionId ? { versionId: result.VersionId } : {}) })
    // CompleteMultipartUpload's answer is not enough on every server (Ceph gives no ETag): the
    // object is read back as stored.
    const head = await this.head(key)
    if (!head || head.ContentLength !== bytes) {
      throw new Error(
        `${this.urlOf(key)} reads back as ${head ? `${head.ContentLength} bytes` : 'missing'} after uploading ${bytes}`,
      )
    }
    if (!written.at(-1)!.versionId && head.VersionId && head.VersionId !== 'null')
      written.at(-1)!.versionId = head.VersionId
    if (lock) await this.ensureLock(key, head, lock)
    return digest.hex()
  }

  /**
   * Servers that ignore Object Lock headers on a multipart upload (Ceph before Reef) get the
   * retention set on the finished object; where the headers took, this only reads it back.
   */
  private async ensureLock(
    key: string,
    head: { ObjectLockRetainUntilDate?: Date; VersionId?: string },
    lock: ObjectLock,
  ): Promise<void> {
    const until = head.ObjectLockRetainUntilDate?.getTime() ?? 0
    if (until >= lock.until.getTime() - 1000) return
    await this.call('set Object Lock retention on', key, () =>
      this.client.send(
        new this.sdk.PutObjectRetentionCommand({
          Bucket: this.settings.bucket,
          Key: key,
          ...(head.VersionId && head.VersionId !== 'null' ? { VersionId: head.VersionId } : {}),
          Retention: { Mode: lock.mode as ObjectLockMode, RetainUntilDate: lock.until },
        }),
      ),
    )
  }

  private async putText(
    key: string,
    text: string,
    lock: ObjectLock | null,
    written: { key: string; versionId?: string }[],
  ): Promise<void> {
    const result = await this.call('upload', key, () =>
      this.client.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: key,
          Body: text,
          ContentType: 'application/json',
          ...(lock
            ? { ObjectLockMode: lock.mode as ObjectLockMode, ObjectLockRetainUntilDate: lock.until }
            : {}),
        }),
      ),
    )
    written.push({ key, ...(result.VersionId ? { versionId: result.VersionId } : {}) })
  }

  /**
   * After a failed upload: deletes what was written, newest first (the manifest, if it got
   * there, goes first), each version exactly, so a versioned bucket keeps no copy either.
   * Returns the error to throw, saying what Object Lock kept.
   */
  private async undo(
    written: { key: string; versionId?: string }[],
    err: unknown,
    key: string,
  ): Promise<Error> {
    const kept: string[] = []
    for (const w of [...written].reverse()) {
      try {
        await this.client.send(
          new this.sdk.DeleteObjectCommand({
            Bucket: this.settings.bucket,
            Key: w.key,
            ...(w.versionId ? { VersionId: w.versionId } : {}),
          }),
        )
      } catch (deleteErr) {
        kept.push(
          `${this.urlOf(w.key)} (${describeError(s3Error(this.settings, deleteErr, 'delete', w.key))})`,
        )
      }
    }
    const mapped = s3Error(this.settings, err, 'upload', key)
    if (!kept.length) return mapped
    return new UserError(
      `${mapped.message} These could not be deleted and stay in the bucket without a manifest, so nothing chooses them: ${kept.join(', ')}.`,
    )
  }

  private abandonedMs(): number {
    return this.options.abandonedUploadMs ?? DAY_MS
  }

  /**
   * Aborts incomplete multipart uploads of backups under the prefix older than
   * abandonedUploadMs (a backup killed mid-upload, whose own abort could not reach the server).
   * Optional housekeeping: a failure only warns. Returns how many were aborted.
   */
  async abortAbandonedUploads(log: Log): Promise<number> {
    const cutoff = this.now().getTime() - this.abandonedMs()
    let aborted = 0
    try {
      let keyMarker: string | undefined
      let uploadIdMarker: string | undefined
      do {
        const page = await this.client.send(
          new this.sdk.ListMultipartUploadsCommand({
            Bucket: this.settings.bucket,
            Prefix: this.settings.prefix,
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        )
        for (const u of page.Uploads ?? []) {
          if (!u.Key || !u.UploadId || (u.Initiated?.getTime() ?? 0) > cutoff) continue
          const rest = u.Key.slice(this.settings.prefix.length)
          const backupName = rest.split('/')[0]!
          if (!BACKUP_FILE.test(backupName) || rest.split('/').length > 2) continue
          await this.abortUpload(u.Key, u.UploadId)
          log.info(
            `aborted an incomplete upload of ${this.urlOf(u.Key)} from ${u.Initiated?.toISOString()}`,
          )
          aborted++
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined
      } while (keyMarker)
    } catch (err) {
      log.warning(
        `could not clean up incomplete uploads in ${this.location}: ${describeError(s3Error(this.settings, err, 'list the incomplete uploads of', this.settings.prefix))}`,
      )
    }
    return aborted
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new this.sdk.AbortMultipartUploadCommand({
          Bucket: this.settings.bucket,
          Key: key,
          UploadId: uploadId,
        }),
      )
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload') return
      throw err
    }
  }

  /**
   * Deletes a backup, its manifest first (interrupted in between, what is left is a backup
   * without a manifest, which list() reports and nothing chooses). A backup with any object
   * under Object Lock (a retain-until date still to come, or a legal hold) is not touched at all,
   * and the result says why. In a versioned bucket each delete adds a delete marker; earlier
   * versions stay until the bucket's lifecycle rules expire them.
   */
  async remove(entry: S3Entry, log?: Log): Promise<RemoveResult> {
    const backupKeys = entry.directory ? [...(await this.filesOf(entry.key)).keys()] : [entry.key]
    const signatureKey = entry.manifestKey + SIGNATURE_SUFFIX
    const now = this.now().getTime()
    const present: string[] = []
    for (const key of [entry.manifestKey, signatureKey, ...backupKeys]) {
      const head = await this.head(key)
      if (!head) continue
      present.push(key)
      const lock = lockOf(head)
      if (lock && (lock.legalHold || lock.until.getTime() > now)) {
        const reason = lock.legalHold
          ? `${this.urlOf(key)} is under an Object Lock legal hold`
          : `${this.urlOf(key)} is under Object Lock (${lock.mode}) until ${lock.until.toISOString()}`
        log?.info(`kept ${entry.path}: ${reason}`)
        return { removed: false, reason }
      }
    }
    // Only what is there: in a versioned bucket, deleting a missing key adds a delete marker.
    for (const key of present) {
      await this.call('delete', key, () =>
        this.client.send(
          new this.sdk.DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key }),
        ),
      )
    }
    return { removed: true }
  }

  /** HeadObject, or null when there is no such object. */
  private async head(key: string) {
    try {
      return await this.client.send(
        new this.sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }),
      )
    } catch (err) {
      const name = (err as { name?: string }).name
      if (name === 'NotFound' || name === 'NoSuchKey') return null
      throw s3Error(this.settings, err, 'read', key)
    }
  }

  /** A small object's text, or null when there is no such object. */
  private async getText(key: string): Promise<string | null> {
    try {
      const object = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: key }),
      )
      return await object.Body!.transformToString('utf8')
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return null
      throw s3Error(this.settings, err, 'read', key)
    }
  }

  private async call<T>(what: string, key: string | null, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw s3Error(this.settings, err, what, key)
    }
  }
}

/**
 * Retention's plan with Object Lock applied: a backup the plan would delete while its manifest
 * is still locked is kept, with the date as its reason, so retention never tries to delete it
 * before then (remove() checks every object again before deleting).
 */
export function keepLocked(decisions: Decision[], now: Date): Decision[] {
  return decisions.map((d) => {
    const lock = (d.entry as Partial<S3Entry>).lock
    if (d.keep || !lock || (!lock.legalHold && lock.until.getTime() <= now.getTime())) return d
    const reason = lock.legalHold
      ? 'Object Lock legal hold'
      : `Object Lock (${lock.mode}) until ${lock.until.toISOString().slice(0, 10)}`
    return { ...d, keep: true, reasons: [reason] }
  })
}

function lockOf(o: {
  ObjectLockMode?: string
  ObjectLockRetainUntilDate?: Date
  ObjectLockLegalHoldStatus?: string
}): ObjectLock | null {
  const legalHold = o.ObjectLockLegalHoldStatus === 'ON'
  if (!o.ObjectLockRetainUntilDate && !legalHold) return null
  return {
    mode: o.ObjectLockMode ?? 'legal hold',
    until: o.ObjectLockRetainUntilDate ?? new Date(0),
    ...(legalHold ? { legalHold } : {}),
  }
}
