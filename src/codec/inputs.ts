/**
 * The action inputs that hold the codec's settings and keys, from the input table
 * (src/options/inputs.ts). Errors name these so a user knows which input to fix.
 */
import { Inputs } from '../options/inputs.js'

export const CodecInputs = {
  Encryption: Inputs.Encryption,
  Compression: Inputs.Compression,
  AgeRecipients: Inputs.AgeRecipients,
  AgeIdentity: Inputs.AgeIdentity,
  AgePassphrase: Inputs.AgePassphrase,
  GpgPassphrase: Inputs.GpgPassphrase,
  GpgRecipient: Inputs.GpgRecipient,
  GpgHomedir: Inputs.GpgHomedir,
} as const
