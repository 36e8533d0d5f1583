import { NotRegularFile, readRegularFile } from '../util/fs.js'
import type { Compression, EncryptionKind } from '../codec/index.js'
import type { EngineName } from '../engines/database.js'
import { UserError } from '../util/errors.js'
import type { Inventory } from '../checks/inventory.js'

export const MANIFEST_FORMAT = 1
/**
 * The formats this version reads. 2 is written when the manifest holds something a reader of
 * format 1 would misread (PostgreSQL's audit digest made by the server, inventory.audit.hashing):
 * an older, pinned drill then refuses the manifest in one line instead of reporting every audit
 * chunk as altered. Everything else is still written as format 1.
 */
export const MANIFEST_FORMATS = [1, 2] as const
export const MANIFEST_SUFFIX = '.manifest.json'

/**
 * Written beside each backup when it is made: what the backup must contain. Every later check
 * (verify, drill) compares against it, so the source database need not be reachable then.
 * It holds identifiers, counts and digests, never row contents.
 */
export interface Manifest {
  format: (typeof MANIFEST_FORMATS)[number]
  tool: string
  engine: EngineName
  engineVersion: string
  /** Version of the dump tool that wrote the backup (pg_dump), when there is one. */
  toolVersion?: string
  /** When the snapshot was taken (the moment the backup's data is from), ISO 8601 UTC. */
  createdAt: string
  /**
   * The stored file. When compressed or encrypted, sha256 and bytes are of the stored file and
   * `plain` of what the engine wrote, so verify can prove both.
   */
  backup: {
    file: string
    sha256: string
    bytes: number
    encryption?: EncryptionKind
    compression?: Compression
    /** age: the public keys it was encrypted to; which recovery key opens it. */
    recipients?: string[]
    /** gpg: the recipient it was encrypted to (key id, fingerprint, e-mail or armored public key). */
    gpgRecipient?: string
    plain?: { sha256: string; bytes: number }
  }
  source: { description: string; bytes: number; journalMode?: string; systemIdentifier?: string }
  inventory: Inventory
  /**
   * The source failed its integrity check when this copy was taken: the copy is kept for
   * recovery by hand, but verify, drill and restore never choose it unless backup-file names it,
   * and retention never counts it as a day's or week's backup.
   */
  damaged?: string[]
  /**
   * restore-check: the backup was restored into a scratch copy and every check passed before it
   * was accepted (when, how long, which checks). Absent: it was written and read back, not restored.
   */
  restoreChecked?: {
    at: string
    seconds: number
    checks: string[]
    /**
     * What was restored, for an encoded backup: `stored`, the stored file decoded back (its
     * sha256 and its plaintext's as written); `snapshot`, the plaintext snapshot it was encoded
     * from (a job that holds only a public key cannot decrypt it). Absent: not encoded.
     */
    from?: 'stored' | 'snapshot'
  }
  durations: { snapshotMs: number; checksumMs: number }
}

export function manifestPathFor(backupPath: string): string {
  return backupPath + MANIFEST_SUFFIX
}

/** A manifest that is there but does not parse: its backup cannot be verified. */
export class DamagedManifest extends UserError {}

/** Checks a manifest's text (from a file or a bucket); `where` names it in the error. */
export function parseManifest(text: string, where: string): Manifest {
  let m: Partial<Manifest>
  try {
    m = JSON.parse(text) as Partial<Manifest>
  } catch {
    throw new DamagedManifest(
      `manifest ${where} is not valid JSON: it is damaged; this backup cannot be verified.`,
    )
  }
  const valid =
    m !== null &&
    typeof m === 'object' &&
    (MANIFEST_FORMATS as readonly unknown[]).includes(m.format) &&
    (m.engine === 'sqlite' || m.engine === 'postgres') &&
    typeof m.createdAt === 'string' &&
    !Number.isNaN(Date.parse(m.createdAt)) &&
    typeof m.backup?.sha256 === 'string' &&
    typeof m.backup?.bytes === 'number' &&
    typeof m.inventory?.schema === 'object'
  if (!valid) {
    throw new DamagedManifest(
      `manifest ${where} is not an omniai-backups manifest of format ${MANIFEST_FORMATS.join(' or ')} (fields missing or wrong, or made by a newer version); this backup cannot be verified.`,
    )
  }
  return m as Manifest
}

/** Reads and checks a manifest; a damaged one is an error naming the file. */
export async function readManifest(file: string): Promise<Manifest> {
  let text: string
  try {
    text = (await readRegularFile(file)).toString('utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new UserError(
      `manifest ${file} cannot be read (${err instanceof NotRegularFile ? err.message : e.code}).`,
    )
  }
  return parseManifest(text, file)
}
