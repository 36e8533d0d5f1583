import * as path from 'node:path'
import { ageRecipientOf, type Compression, type Encryption } from '../codec/index.js'
import { type RestoreOptions } from '../options/config.js'
import { Inputs } from '../options/inputs.js'
import type { Manifest } from '../manifest/manifest.js'

/** How the safety backup before a restore is written, and how the plan and the undo describe it. */
export interface SafetyCodec {
  encryption: Encryption
  compression: Compression
  /** For the plan: "encrypted with age to age1..."; empty for an unencrypted backup's. */
  how: string
  /** Set when the live data goes into backup-dir unencrypted because the input allowed it. */
  warning?: string
}

/**
 * The safety backup holds the same users' data as the backup being restored, so it is protected
 * the same way: encrypted to the recipients the backup's manifest records (age public keys, the
 * gpg recipient), else to the keys the restore was given (an age identity's public key, the age
 * or gpg passphrase). When none of those exists, the restore is refused unless
 * allow-unencrypted-safety-backup says otherwise. An unencrypted backup gets an unencrypted
 * safety backup: it adds nothing that backup-dir did not hold already.
 */
export function safetyCodec(
  manifest: Manifest,
  file: string,
  config: RestoreOptions,
): SafetyCodec | { refusal: string } {
  const b = manifest.backup
  const compression = b.compression ?? 'none'
  const kind = b.encryption ?? 'none'
  const { keys } = config
  if (kind === 'none') {
    return { encryption: { kind }, compression, how: '' }
  }
  if (kind === 'age') {
    if (b.recipients?.length) {
      return {
        encryption: { kind, recipients: b.recipients },
        compression,
        how: `encrypted with age to ${b.recipients.join(', ')}, as the backup restored`,
      }
    }
    // A recipient can be had from each identity: whoever restores holds the key that reads it.
    const recipients = keys.ageIdentities.flatMap((identity) => {
      try {
        return [ageRecipientOf(identity)]
      } catch {
        return []
      }
    })
    if (recipients.length) {
      return {
        encryption: { kind, recipients },
        compression,
        how: `encrypted with age to ${recipients.join(', ')} (the public key of age-identity)`,
      }
    }
    if (keys.agePassphrase) {
      return {
        encryption: { kind, passphrase: keys.agePassphrase },
        compression,
        how: 'encrypted with age to age-passphrase, as the backup restored',
      }
    }
  }
  if (kind === 'gpg') {
    const homedir = keys.gpgHomedir ? { homedir: keys.gpgHomedir } : {}
    if (b.gpgRecipient) {
      return {
        encryption: { kind, recipient: b.gpgRecipient, ...homedir },
        compression,
        how: `encrypted with gpg to ${describeGpgRecipient(b.gpgRecipient)}, as the backup restored`,
      }
    }
    if (keys.gpgPassphrase) {
      return {
        encryption: { kind, passphrase: keys.gpgPassphrase, ...homedir },
        compression,
        how: 'encrypted with gpg to gpg-passphrase (symmetric)',
      }
    }
  }
  const input = Inputs.AllowUnencryptedSafetyBackup
  if (config.allowUnencryptedSafetyBackup) {
    return {
      encryption: { kind: 'none' },
      compression,
      how: `UNENCRYPTED (${input}: true)`,
      warning: `the safety backup of the live database is UNENCRYPTED (${input}: true), although ${path.basename(file)} is ${kind}-encrypted: delete it from ${path.join(config.backupDir, 'pre-restore')} once the restore is confirmed good.`,
    }
  }
  return {
    refusal: `${input}: ${path.basename(file)} is ${kind}-encrypted, but its manifest records no ${kind === 'gpg' ? 'gpg recipient' : 'age recipient'} and no key was given to encrypt the safety backup of the live database with, which would put every user's data into ${path.join(config.backupDir, 'pre-restore')} in plaintext. Fix: ${kind === 'gpg' ? 'set gpg-passphrase to encrypt it symmetrically' : 'set age-identity (its public key is used) or age-passphrase'}, or set ${input}: true; nothing was changed.`,
  }
}

/** A key id as is; an armored public key block by its first line only. */
function describeGpgRecipient(recipient: string): string {
  return recipient.includes('\n') ? 'the armored public key in the manifest' : recipient
}
