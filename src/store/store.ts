import type { Log } from '../util/log.js'
import type { BackupEntry, Listing } from './local.js'

/**
 * What verify, drill, restore and retention need of a store; LocalStore and S3Store both have it
 * (README.md). An entry's `path` is a local path or an s3:// URL: retention plans on it, and a
 * remote one is fetched into the scratch folder before any check reads it.
 */
export interface BackupStore {
  /** Backups with a readable manifest (newest first by createdAt), orphans, damaged manifests. */
  list(): Promise<Listing>
  /** `name` when given (it must have a manifest), else the newest one not taken from a damaged database. */
  select(name: string | null, log: Log): Promise<{ entry: BackupEntry; listing: Listing }>
  entry(name: string): Promise<BackupEntry>
  /** Deletes a backup, manifest first; S3 answers `{ removed: false, reason }` under Object Lock. */
  remove(entry: BackupEntry): Promise<unknown>
}
