import * as path from 'node:path'
import { checkDecryption, decodeFile, type Decryption } from '../codec/index.js'
import type { Check } from '../checks/checks.js'
import { type SelectionOptions } from '../options/config.js'
import { asWriteFailure } from '../util/space.js'
import type { BackupRef } from '../engines/engine.js'
import { describeError, UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'
import type { BackupEntry } from '../store/local.js'

/** Whether a backup's stored file is compressed or encrypted, so it must be decoded to be read. */
export function isEncoded(entry: BackupEntry): boolean {
  const b = entry.manifest.backup
  return (b.encryption ?? 'none') !== 'none' || (b.compression ?? 'none') !== 'none'
}

function decryptionFor(entry: BackupEntry, keys: SelectionOptions['keys']): Decryption {
  const b = entry.manifest.backup
  const file = path.basename(entry.path)
  switch (b.encryption ?? 'none') {
    case 'age':
      if (!keys.ageIdentities.length && !keys.agePassphrase) {
        const to = b.recipients?.length ? ` (to ${b.recipients.join(', ')})` : ''
        throw new UserError(
          `age-identity: ${file} is age-encrypted${to}; reading it needs the recovery key. Fix: pass the AGE-SECRET-KEY-1... key from a secret as age-identity (or age-passphrase for a passphrase backup).`,
        )
      }
      return {
        kind: 'age',
        identities: keys.ageIdentities,
        ...(keys.agePassphrase ? { passphrase: keys.agePassphrase } : {}),
      }
    case 'gpg':
      return {
        kind: 'gpg',
        ...(keys.gpgPassphrase ? { passphrase: keys.gpgPassphrase } : {}),
        ...(keys.gpgHomedir ? { homedir: keys.gpgHomedir } : {}),
      }
    default:
      return { kind: 'none' }
  }
}

/** sha256 and size of a file as one pass read it, every byte of it. */
export interface Read {
  sha256: string
  bytes: number
}

/**
 * The backup as the engine reads it: the stored file itself, or for an encoded backup its
 * plaintext decoded into `scratch` (streamed; a wrong key or a tampered file leaves nothing),
 * with a `decrypt` check proving the plaintext against the manifest. `stored`: the stored
 * file's sha256 and size as the decoding read it, once it read to the end (null otherwise), so
 * that its checksum needs no second read (checksumOf). `live`: the plaintext is what a restore
 * puts live, and is fsynced (DecodeOptions.scratch); else it is scratch, and is not.
 */
export async function plaintextOf(
  entry: BackupEntry,
  config: Pick<SelectionOptions, 'keys'>,
  scratch: string,
  log: Log,
  { live = false } = {},
): Promise<{ ref: BackupRef | null; check: Check | null; stored: Read | null }> {
  if (!isEncoded(entry)) return { ref: entry, check: null, stored: null }
  const b = entry.manifest.backup
  const decryption = decryptionFor(entry, config.keys)
  checkDecryption(decryption)
  const dest = path.join(scratch, `plain${entry.manifest.engine === 'sqlite' ? '.db' : '.dump'}`)
  const how = `${b.encryption ?? 'none'}${b.compression && b.compression !== 'none' ? `, ${b.compression}` : ''}`
  try {
    const digests = await log.group(`Decode (${how})`, () =>
      decodeFile(entry.path, dest, {
        compression: b.compression ?? 'none',
        decryption,
        // Never more than the manifest says: a bomb in a replaced backup cannot fill the disk.
        ...(b.plain ? { maxPlainBytes: b.plain.bytes } : {}),
        // Read by this job and removed; a restore's is fsynced (a failed write must stop it).
        scratch: !live,
      }),
    )
    const want = b.plain
    const ok = !!want && digests.plainSha256 === want.sha256 && digests.plainBytes === want.bytes
    const key =
      b.encryption === 'age' ? 'the recovery key' : b.encryption === 'gpg' ? 'gpg' : 'no key'
    return {
      ref: ok ? { path: dest, manifest: entry.manifest } : null,
      stored: { sha256: digests.sha256, bytes: digests.bytes },
      check: {
        name: 'decrypt',
        ok,
        detail: ok
          ? `decrypted with ${key} (${how}); plaintext sha256 ${digests.plainSha256.slice(0, 12)}… and ${digests.plainBytes} bytes match the manifest`
          : `decoded (${how}), but the plaintext sha256 ${digests.plainSha256.slice(0, 12)}… does not match the manifest's ${want?.sha256.slice(0, 12) ?? '(none)'}…`,
      },
    }
  } catch (err) {
    const why = await asWriteFailure(err, 'scratch-dir', scratch, 'the partial copy was removed')
    return {
      ref: null,
      check: { name: 'decrypt', ok: false, detail: describeError(why) },
      stored: null,
    }
  }
}
