/**
 * The action inputs that hold the codec's settings and keys. Errors name these so a user knows
 * which input to fix; keep them in step with action.yml (src/options/config.ts owns the parsing).
 */
export const CodecInputs = {
  Encryption: 'encryption',
  Compression: 'compression',
  AgeRecipients: 'age-recipients',
  AgeIdentity: 'age-identity',
  AgePassphrase: 'age-passphrase',
  GpgPassphrase: 'gpg-passphrase',
  GpgRecipient: 'gpg-recipient',
  GpgHomedir: 'gpg-homedir',
} as const
