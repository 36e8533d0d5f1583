/**
 * Whether a backup may be read at all, decided from this job's inputs and never from the backup's
 * own manifest, which whoever made the backup wrote: its signature (`verify-key`) and its
 * encryption (a job that holds a key reads only backups encrypted to it). verify, drill and
 * restore run these first; when one fails, nothing of the backup is decoded or restored.
 */
import * as path from 'node:path'
import type { Check } from '../checks/checks.js'
import type { EncryptionKind } from '../codec/index.js'
import { type SelectionOptions } from '../options/config.js'
import { Inputs } from '../options/inputs.js'
import { checkSignature } from '../manifest/signature.js'
import type { BackupEntry } from '../store/local.js'

/**
 * The encryption kinds this job's inputs expect, with the inputs that say so. A job holding the
 * age recovery key expects age-encrypted backups; a plaintext one in their place must not be
 * believed because its manifest says "encryption: none".
 */
export function expectedEncryption(config: SelectionOptions): Map<EncryptionKind, Inputs[]> {
  const expected = new Map<EncryptionKind, Inputs[]>()
  const add = (kind: EncryptionKind, input: Inputs) =>
    expected.set(kind, [...(expected.get(kind) ?? []), input])
  if (config.keys.ageIdentities.length) add('age', Inputs.AgeIdentity)
  if (config.keys.agePassphrase) add('age', Inputs.AgePassphrase)
  if (config.keys.gpgPassphrase) add('gpg', Inputs.GpgPassphrase)
  if (config.keys.gpgHomedir) add('gpg', Inputs.GpgHomedir)
  if (config.encryption.kind !== 'none') add(config.encryption.kind, Inputs.Encryption)
  return expected
}

/** The `encryption` check, or null when this job expects no particular encryption. */
export function encryptionPolicy(entry: BackupEntry, config: SelectionOptions): Check | null {
  const expected = expectedEncryption(config)
  if (!expected.size) return null
  const kind = entry.manifest.backup.encryption ?? 'none'
  const inputs = [...new Set([...expected.values()].flat())].join(', ')
  const kinds = [...expected.keys()].join(' or ')
  const name = path.basename(entry.path)
  if (expected.has(kind)) {
    return {
      name: 'encryption',
      ok: true,
      detail: `${name} is ${kind}-encrypted, as this job's ${inputs} expects`,
    }
  }
  return {
    name: 'encryption',
    ok: false,
    detail:
      kind === 'none'
        ? `${inputs}: ${name} is not encrypted (its manifest says encryption: none), and this job holds ${inputs}, so it reads only ${kinds}-encrypted backups: a plaintext file may have been put in place of the real backup, and it was not read. Fix: use a backup the backup job encrypted; to read plaintext backups, remove ${inputs} from this job.`
        : `${inputs}: ${name} is ${kind}-encrypted, and this job holds ${inputs}, so it reads only ${kinds}-encrypted backups; it was not read. Fix: use a backup the backup job encrypted with ${kinds}, or give this job the ${kind} key.`,
  }
}

/** The checks that decide whether the backup may be read; empty when no input asks for any. */
export async function trustChecks(entry: BackupEntry, config: SelectionOptions): Promise<Check[]> {
  const checks: Check[] = []
  if (config.verifyKeys.length)
    checks.push(await checkSignature(entry, config.verifyKeys, Inputs.VerifyKey))
  const encryption = encryptionPolicy(entry, config)
  if (encryption) checks.push(encryption)
  return checks
}
