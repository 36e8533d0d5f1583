import * as fs from 'node:fs/promises'
import { Inputs } from '../options/inputs.js'
import * as path from 'node:path'
import { UserError, describeError } from '../util/errors.js'
import { commitNoClobber, makeDirs, notRegular, tempName, writeFileAtomic } from '../util/fs.js'
import type { Log } from '../util/log.js'
import {
  MANIFEST_SUFFIX,
  manifestPathFor,
  readManifest,
  type Manifest,
} from '../manifest/manifest.js'
import { signaturePathFor } from '../manifest/signature.js'

export interface BackupEntry {
  path: string
  manifestPath: string
  manifest: Manifest
}

export interface Listing {
  /** Backups with a readable manifest, newest first by the manifest's createdAt. */
  backups: BackupEntry[]
  /** Backup files with no manifest (an interrupted backup, or a file put there by hand). */
  orphans: string[]
  /** Manifests that could not be read, with the reason. */
  damaged: string[]
}

/** A backup's file name: the engine's extension, then compression and encryption. */
export const BACKUP_FILE = /\.(db|sqlite3?|dump|dumpdir)(\.(gz|zst))?(\.(age|gpg))?$/

/**
 * A folder of backups, each `<name>` with `<name>.manifest.json` beside it. The manifest is
 * written last, so its presence is what marks a backup as complete.
 */
export class LocalStore {
  constructor(readonly dir: string) {}

  async list(): Promise<Listing> {
    let names: string[]
    try {
      names = await fs.readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { backups: [], orphans: [], damaged: [] }
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new UserError(
          `${Inputs.BackupDir}: ${this.dir} is a file, not a folder. Fix: set backup-dir to a folder.`,
        )
      }
      throw err
    }
    const backups: BackupEntry[] = []
    const damaged: string[] = []
    const described = new Set<string>()
    for (const name of names.filter((n) => n.endsWith(MANIFEST_SUFFIX))) {
      const manifestPath = path.join(this.dir, name)
      try {
        const manifest = await readManifest(manifestPath)
        const backupPath = path.join(this.dir, name.slice(0, -MANIFEST_SUFFIX.length))
        // A FIFO or a device planted under a backup's name would stall the first read of it.
        await mustBeFileOrFolder(backupPath)
        backups.push({ path: backupPath, manifestPath, manifest })
        described.add(path.basename(backupPath))
      } catch (err) {
        damaged.push(describeError(err))
      }
    }
    backups.sort(
      (a, b) =>
        Date.parse(b.manifest.createdAt) - Date.parse(a.manifest.createdAt) ||
        b.path.localeCompare(a.path),
    )
    const orphans = names
      .filter((n) => BACKUP_FILE.test(n) && !n.startsWith('.') && !described.has(n))
      .map((n) => path.join(this.dir, n))
    return { backups, orphans, damaged }
  }

  /**
   * The backup to verify or restore: `file` when given (it must have a manifest), otherwise
   * the newest by manifest.
   */
  async select(file: string | null, log: Log): Promise<{ entry: BackupEntry; listing: Listing }> {
    const listing = await this.list()
    for (const d of listing.damaged) log.warning(d)
    if (file) {
      const manifestPath = manifestPathFor(file)
      // A name that is not there at all is said so, not taken for a backup without a manifest.
      const gone = await fs.lstat(file).then(
        () => false,
        (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
      )
      if (gone) {
        throw new UserError(
          `${Inputs.BackupFile}: ${file} does not exist. Fix: give the path of a backup file (its manifest, <name>.manifest.json, is beside it), or leave backup-file empty to use the newest in ${this.dir}.`,
        )
      }
      await mustBeFileOrFolder(file).catch((err: Error) => {
        throw new UserError(`${Inputs.BackupFile}: ${err.message}. Fix: name a backup file.`)
      })
      try {
        await fs.access(manifestPath)
      } catch {
        throw new UserError(
          `${Inputs.BackupFile}: ${file} has no manifest (${path.basename(manifestPath)} is missing), so nothing can prove what it should contain. Fix: use a backup written by mode backup, or run mode backup again.`,
        )
      }
      return {
        entry: { path: file, manifestPath, manifest: await readManifest(manifestPath) },
        listing,
      }
    }
    // A copy of a damaged source is kept for recovery by hand, never chosen on its own.
    const newest = listing.backups.find((b) => !b.manifest.damaged)
    for (const b of listing.backups) {
      if (newest && b === newest) break
      log.warning(
        `${path.basename(b.path)} was taken from a damaged database and is not chosen; name it in backup-file to use it anyway.`,
      )
    }
    if (!newest) {
      const orphans = listing.orphans.length
        ? ` It holds ${listing.orphans.length} backup file(s) without a manifest (${listing.orphans.map((o) => path.basename(o)).join(', ')}), which cannot be verified.`
        : ''
      if (listing.backups.length) {
        throw new UserError(
          `${Inputs.BackupDir}: every backup in ${this.dir} was taken from a damaged database (${listing.backups.map((b) => path.basename(b.path)).join(', ')}), so none is chosen on its own. Fix: set backup-file to one of them to use it anyway, or set backup-dir to a folder with good backups.`,
        )
      }
      throw new UserError(
        `${Inputs.BackupDir}: no backups with a manifest in ${this.dir}.${orphans} Fix: run mode backup first, or set backup-dir to the folder your backup job writes.`,
      )
    }
    return { entry: newest, listing }
  }

  /** The entry for a backup in this store, with its manifest. */
  async entry(backupPath: string): Promise<BackupEntry> {
    const manifestPath = manifestPathFor(backupPath)
    return { path: backupPath, manifestPath, manifest: await readManifest(manifestPath) }
  }

  /**
   * Deletes a backup and its manifest. The manifest goes first: interrupted in between, what is
   * left is a backup file without a manifest, which list() reports, never a manifest pointing
   * at nothing.
   */
  async remove(entry: BackupEntry): Promise<void> {
    await fs.rm(entry.manifestPath)
    await fs.rm(signaturePathFor(entry.manifestPath), { force: true })
    await fs.rm(entry.path, { recursive: true })
  }

  async prepare(): Promise<void> {
    try {
      await makeDirs(this.dir, 0o700)
    } catch (err) {
      throw new UserError(
        `${Inputs.BackupDir}: cannot create ${this.dir} (${(err as NodeJS.ErrnoException).code}). Fix: set backup-dir to a writable folder.`,
      )
    }
  }

  /** A temporary path in the store for a backup in progress; invisible to list(). */
  tempPath(name: string): string {
    return tempName(this.dir, name)
  }

  /**
   * Moves a finished backup to its final name (never replacing another backup) and writes its
   * manifest beside it, and before the manifest its signature when `sign` is given (so a
   * manifest never stands without the signature it was made with). Returns the final path.
   */
  async commit(
    tmp: string,
    nameFor: (n: number) => string,
    manifestFor: (file: string) => Manifest,
    sign?: (manifestBytes: Buffer) => string,
  ): Promise<string> {
    const final = await commitNoClobber(tmp, this.dir, nameFor)
    const text = JSON.stringify(manifestFor(path.basename(final)), null, 2) + '\n'
    if (sign) {
      await writeFileAtomic(signaturePathFor(manifestPathFor(final)), sign(Buffer.from(text)))
    }
    await writeFileAtomic(manifestPathFor(final), text)
    return final
  }
}

/**
 * Refuses a backup that is neither a regular file nor a folder (pg_dump's directory format):
 * reading a FIFO with no writer would wait for ever. A backup that is not there passes, for the
 * checks that say so.
 */
async function mustBeFileOrFolder(file: string): Promise<void> {
  const stat = await fs.stat(file).catch(() => null)
  if (stat && !stat.isFile() && !stat.isDirectory()) {
    throw notRegular(file, stat)
  }
}
