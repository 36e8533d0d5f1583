/**
 * Ed25519 signatures over manifests, so that verify, drill and restore can tell a backup the
 * team's backup job made from one anybody else put in its place.
 *
 * The backup job holds the private key (`signing-key`, from a secret) and signs the manifest's
 * exact bytes; the signature goes in a small JSON file beside it, `<backup>.manifest.json.sig`.
 * The manifest holds the backup's sha256 (and the plaintext's, when encrypted), so the checksum
 * check carries the signature over to the backup itself. The reading side holds only public keys
 * (`verify-key`). Signing the stored bytes, not a re-serialised form, means nothing has to be
 * canonicalised and the signature can be checked with openssl alone (README, "Signed manifests").
 */
import * as crypto from 'node:crypto'
import { readRegularFile } from '../util/fs.js'
import * as path from 'node:path'
import type { Check } from '../checks/checks.js'
import { UserError } from '../util/errors.js'

export const SIGNATURE_SUFFIX = '.sig'
export const SIGNATURE_FORMAT = 1

export interface SigningKey {
  privateKey: crypto.KeyObject
  keyId: string
}

export interface VerifyKey {
  publicKey: crypto.KeyObject
  keyId: string
}

/** What `<manifest>.sig` holds. `keyId` only helps the message; the signature decides. */
export interface SignatureFile {
  format: typeof SIGNATURE_FORMAT
  algorithm: 'ed25519'
  keyId: string
  /** base64 of the 64-byte Ed25519 signature over the manifest file's bytes. */
  signature: string
}

// DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key (RFC 8410), before the 32 key bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export function signaturePathFor(manifestPath: string): string {
  return manifestPath + SIGNATURE_SUFFIX
}

/** The public key's raw 32 bytes. */
function rawPublicKey(key: crypto.KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(-32)
}

/** First 16 hex digits of the sha256 of the raw public key: short enough to read, and to compare. */
export function keyIdOf(publicKey: crypto.KeyObject): string {
  return crypto.createHash('sha256').update(rawPublicKey(publicKey)).digest('hex').slice(0, 16)
}

function base64Bytes(text: string): Buffer | null {
  const compact = text.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return null
  return Buffer.from(compact.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
}

const SIGNING_FIX =
  'Fix: generate a key pair with "npx omniai-backup keygen" (or openssl genpkey -algorithm ed25519) and pass the private key from a secret.'

/**
 * The backup job's private key: a PEM "PRIVATE KEY" block (PKCS#8, as openssl genpkey writes it),
 * or base64 of the 32-byte seed, of the 48-byte PKCS#8 DER, or of libsodium's 64-byte secret key.
 * Messages never echo the value.
 */
export function parseSigningKey(text: string, input: string): SigningKey {
  let privateKey: crypto.KeyObject | null = null
  if (text.includes('-----BEGIN')) {
    if (/ENCRYPTED PRIVATE KEY/.test(text)) {
      throw new UserError(
        `${input}: the private key is encrypted with a passphrase, which the action cannot ask for. Fix: export it without a passphrase (openssl pkey -in key.pem -out plain.pem) and keep it in a secret.`,
      )
    }
    try {
      privateKey = crypto.createPrivateKey({ key: text, format: 'pem' })
    } catch {
      throw new UserError(`${input}: not a readable PEM private key. ${SIGNING_FIX}`)
    }
  } else {
    const bytes = base64Bytes(text)
    let seed: Buffer | null = null
    if (bytes?.length === 32) seed = bytes
    else if (bytes?.length === 48 && bytes.subarray(0, 16).equals(PKCS8_PREFIX))
      seed = bytes.subarray(16)
    else if (bytes?.length === 64) seed = bytes.subarray(0, 32)
    if (seed) {
      privateKey = crypto.createPrivateKey({
        key: Buffer.concat([PKCS8_PREFIX, seed]),
        format: 'der',
        type: 'pkcs8',
      })
      // libsodium's form carries the public key too: it must be this seed's.
      if (
        bytes!.length === 64 &&
        !rawPublicKey(crypto.createPublicKey(privateKey)).equals(bytes!.subarray(32))
      ) {
        throw new UserError(
          `${input}: the 64-byte key's second half is not the public key of its first half. ${SIGNING_FIX}`,
        )
      }
    }
  }
  if (!privateKey || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new UserError(
      `${input}: not an Ed25519 private key (a PEM "BEGIN PRIVATE KEY" block, or 32 bytes in base64). ${SIGNING_FIX}`,
    )
  }
  return { privateKey, keyId: keyIdOf(crypto.createPublicKey(privateKey)) }
}

/**
 * The reading side's public keys, more than one during a key rotation: PEM "PUBLIC KEY" blocks,
 * or base64 of a raw 32-byte key or of the 44-byte SPKI DER, one per line.
 */
export function parseVerifyKeys(text: string, input: string): VerifyKey[] {
  if (/PRIVATE KEY/.test(text)) {
    throw new UserError(
      `${input}: holds a private key. Fix: give the public key (npx omniai-backup keygen prints it; openssl pkey -in signing-key.pem -pubout), and keep the private key only in the backup job's secret.`,
    )
  }
  const keys: crypto.KeyObject[] = []
  const bad = () =>
    new UserError(
      `${input}: not an Ed25519 public key (a PEM "BEGIN PUBLIC KEY" block, or 32 bytes in base64, one key per line). Fix: copy the public key "npx omniai-backup keygen" printed, or run openssl pkey -in signing-key.pem -pubout.`,
    )
  const rest = text.replace(
    /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g,
    (pem: string) => {
      try {
        keys.push(crypto.createPublicKey({ key: pem, format: 'pem' }))
      } catch {
        throw bad()
      }
      return '\n'
    },
  )
  for (const line of rest.split(/[\r\n,]+/).map((l) => l.trim())) {
    if (!line) continue
    const bytes = base64Bytes(line)
    const der =
      bytes?.length === 32
        ? Buffer.concat([SPKI_PREFIX, bytes])
        : bytes?.length === 44 && bytes.subarray(0, 12).equals(SPKI_PREFIX)
          ? bytes
          : null
    if (!der) throw bad()
    keys.push(crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }))
  }
  if (keys.some((k) => k.asymmetricKeyType !== 'ed25519')) throw bad()
  const byId = new Map(keys.map((k) => [keyIdOf(k), k]))
  return [...byId].map(([keyId, publicKey]) => ({ keyId, publicKey }))
}

/** The public half of a signing key, to check what it signed. */
export function verifyKeyOf(key: SigningKey): VerifyKey {
  return { publicKey: crypto.createPublicKey(key.privateKey), keyId: key.keyId }
}

/** The signature file's text for a manifest's exact bytes. */
export function signatureFor(manifestBytes: Buffer, key: SigningKey): string {
  const file: SignatureFile = {
    format: SIGNATURE_FORMAT,
    algorithm: 'ed25519',
    keyId: key.keyId,
    signature: crypto.sign(null, manifestBytes, key.privateKey).toString('base64'),
  }
  return JSON.stringify(file, null, 2) + '\n'
}

/** A new key pair: the private key as PKCS#8 PEM, the public key as PEM and as raw base64. */
export function generateKeyPair(): {
  privatePem: string
  publicPem: string
  publicBase64: string
  keyId: string
} {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicBase64: rawPublicKey(publicKey).toString('base64'),
    keyId: keyIdOf(publicKey),
  }
}

/**
 * The `signature` check: the manifest beside `backupPath`, as it is on disk now, must carry a
 * signature by one of `keys`, and must be the manifest the caller read (`manifest`).
 */
export async function checkSignature(
  entry: { path: string; manifestPath: string; manifest: unknown },
  keys: VerifyKey[],
  input: string,
): Promise<Check> {
  const name = path.basename(entry.path)
  const sigPath = signaturePathFor(entry.manifestPath)
  const trusted = keys.map((k) => k.keyId).join(', ')
  const fail = (detail: string): Check => ({ name: 'signature', ok: false, detail })
  let sig: Partial<SignatureFile>
  try {
    sig = JSON.parse((await readRegularFile(sigPath)).toString('utf8')) as Partial<SignatureFile>
  } catch (err) {
    return fail(
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? `${input}: ${name}'s manifest is not signed (no ${path.basename(sigPath)} beside it), and ${input} accepts only manifests signed by key ${trusted}. Fix: set signing-key in the backup job, or use a backup it signed.`
        : `${input}: ${name}'s signature file ${path.basename(sigPath)} is damaged, so the manifest cannot be trusted. Fix: use another backup.`,
    )
  }
  const bytes = await readRegularFile(entry.manifestPath)
  const signature = typeof sig.signature === 'string' ? Buffer.from(sig.signature, 'base64') : null
  const by =
    signature?.length === 64
      ? keys.find((k) => crypto.verify(null, bytes, k.publicKey, signature))
      : undefined
  if (!by) {
    const claimed = typeof sig.keyId === 'string' ? sig.keyId : 'unknown'
    return fail(
      keys.some((k) => k.keyId === claimed)
        ? `${input}: ${name}'s manifest was altered after it was signed (the signature by key ${claimed} does not match it). Fix: use another backup, and find out who changed this one.`
        : `${input}: ${name}'s manifest is signed by another key (${claimed}), not by ${input} (${trusted}). Fix: use a backup your backup job signed, or add that job's public key to ${input}.`,
    )
  }
  // The check is of what was read and is used from here on, not of a file swapped in between.
  if (JSON.stringify(JSON.parse(bytes.toString('utf8'))) !== JSON.stringify(entry.manifest)) {
    return fail(`${input}: ${name}'s manifest changed while it was being read. Fix: run again.`)
  }
  return {
    name: 'signature',
    ok: true,
    detail: `manifest signed by key ${by.keyId} (${input}); it names the backup's sha256, which the checksum check proves`,
  }
}
