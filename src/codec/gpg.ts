/**
 * OpenPGP through the `gpg` binary on the runner, as a transform stream: bytes in on gpg's
 * stdin, bytes out of its stdout. A passphrase goes in on its own pipe (fd 3), never on argv
 * where `ps` would show it. gpg writes plaintext before it has checked the MDC at the end of the
 * message, so callers must treat the output as unauthenticated until the stream ends cleanly.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Duplex, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { UserError } from '../errors.js'
import { CodecInputs } from './inputs.js'

export interface GpgEncryptOptions {
  /** A key id, fingerprint or e-mail in the keyring, or an armored public key block. */
  recipient?: string
  passphrase?: string
  /** GNUPGHOME; gpg's default (~/.gnupg) when unset. */
  homedir?: string
}

export interface GpgDecryptOptions {
  /** The symmetric passphrase, or the passphrase of the secret key in the keyring. */
  passphrase?: string
  homedir?: string
}

const ARMORED_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----'
const STDERR_LIMIT = 64 * 1024

/** A transform that encrypts with gpg; `close()` removes the temporary key file, if any. */
export async function gpgEncryptStream(
  opts: GpgEncryptOptions,
): Promise<{ stream: Duplex; close: () => Promise<void> }> {
  const args = baseArgs(opts.homedir)
  // The `compression` input is the one place compression is chosen; gpg's own would compress
  // twice, or compress when the user asked for none.
  args.push('--compress-algo', 'none')
  let keyDir: string | null = null
  if (opts.recipient !== undefined) {
    const recipient = opts.recipient.trim()
    if (recipient.startsWith(ARMORED_KEY)) {
      // A key pasted into a secret is used as is, without importing it into anyone's keyring.
      keyDir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-gpg-key-'))
      const keyFile = path.join(keyDir, 'recipient.asc')
      await fs.writeFile(keyFile, recipient + '\n', { mode: 0o600 })
      args.push('--recipient-file', keyFile)
    } else {
      args.push('--recipient', recipient)
    }
    // The operator named this key in the workflow; that is the trust decision. Without this,
    // gpg --batch refuses any key not signed into its web of trust.
    args.push('--trust-model', 'always', '--encrypt')
  } else {
    args.push('--symmetric', '--cipher-algo', 'AES256')
  }
  args.push('--output', '-')
  const close = async () => {
    if (keyDir) await fs.rm(keyDir, { recursive: true, force: true })
  }
  return {
    stream: gpgDuplex(args, opts.recipient === undefined ? opts.passphrase : undefined, (s) =>
      encryptError(s, opts),
    ),
    close,
  }
}

/** A transform that decrypts with gpg; `file` only names the backup in errors. */
export function gpgDecryptStream(opts: GpgDecryptOptions, file: string): Duplex {
  const args = baseArgs(opts.homedir)
  args.push('--decrypt', '--output', '-')
  return gpgDuplex(args, opts.passphrase, (s) => decryptError(s, opts, file))
}

function baseArgs(homedir: string | undefined): string[] {
  const args = ['--batch', '--no-tty', '--yes', '--quiet', '--status-fd', '2']
  if (homedir) args.push('--homedir', homedir)
  // The agent would otherwise remember a symmetric passphrase, and a later run with a wrong one
  // would still decrypt: the passphrase given is the only one that may count.
  args.push('--no-symkey-cache', '--pinentry-mode', 'loopback')
  return args
}

interface GpgFailure {
  code: number | null
  stderr: string
  spawnError: NodeJS.ErrnoException | null
}

function gpgDuplex(
  args: string[],
  passphrase: string | undefined,
  describe: (failure: GpgFailure) => Error,
): Duplex {
  if (passphrase !== undefined) args.splice(args.indexOf('--output'), 0, '--passphrase-fd', '3')
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const child = spawn('gpg', args, {
      stdio: ['pipe', 'pipe', 'pipe', passphrase !== undefined ? 'pipe' : 'ignore'],
      // Status keywords are stable; the human-readable lines we fall back on should be English.
      env: { ...process.env, LC_ALL: 'C', LANGUAGE: 'C' },
    })
    let spawnError: NodeJS.ErrnoException | null = null
    const closed = new Promise<number | null>((resolve) => {
      child.on('error', (err) => {
        spawnError = err
        resolve(null)
      })
      child.on('close', (code) => resolve(code))
    })
    let stderr = ''
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_LIMIT)
    })
    if (passphrase !== undefined) {
      const fd3 = child.stdio[3] as Writable
      // gpg closes fd 3 unread when it needs no passphrase (an unprotected secret key).
      fd3.on('error', () => {})
      fd3.end(passphrase + '\n')
    }
    // gpg exits early on a wrong key; then the write side fails with EPIPE, and the reason is
    // in gpg's stderr, not in that error.
    const feeding = pipeline(source, child.stdin!).then(
      () => null,
      (err: unknown) => err,
    )
    child.stdin!.on('error', () => {})
    let finished = false
    try {
      for await (const chunk of child.stdout!) yield chunk as Buffer
      const code = await closed
      const feedError = await feeding
      if (code !== 0 || spawnError) throw describe({ code, stderr, spawnError })
      if (feedError) throw feedError
      finished = true
    } finally {
      if (!finished && child.exitCode === null && child.signalCode === null) child.kill()
    }
  })
}

function statuses(stderr: string): Set<string> {
  const found = new Set<string>()
  for (const m of stderr.matchAll(/^\[GNUPG:\] (\S+)(?: (.*))?$/gm)) {
    found.add(m[1]!)
    if (m[1] === 'ERROR' && m[2]) found.add(`ERROR ${m[2]}`)
  }
  return found
}

/** The last human-readable gpg line, for failures this code does not recognise. */
function lastGpgLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('gpg: '))
  return lines.at(-1) ?? 'no message'
}

/** The reason at the end of gpg's last line, without the key name it starts with. */
function lastReason(stderr: string): string {
  return lastGpgLine(stderr).split(': ').at(-1)!
}

function notInstalled(f: GpgFailure): Error | null {
  if (f.spawnError?.code !== 'ENOENT') return null
  return new UserError(
    `${CodecInputs.Encryption}: gpg was not found on PATH; install GnuPG (apt-get install gnupg) or use encryption: age`,
  )
}

function encryptError(f: GpgFailure, opts: GpgEncryptOptions): Error {
  const missing = notInstalled(f)
  if (missing) return missing
  const status = statuses(f.stderr)
  const keyring = opts.homedir ? `the keyring in ${opts.homedir}` : 'the default keyring'
  if (status.has('INV_RECP') || /No public key/i.test(f.stderr)) {
    return new UserError(
      `${CodecInputs.GpgRecipient}: gpg cannot encrypt to this recipient (${lastReason(f.stderr)}); give a key id or fingerprint in ${keyring}, or the armored public key itself`,
    )
  }
  if (f.spawnError) return f.spawnError
  return new Error(`gpg encryption failed (exit ${f.code}): ${lastReason(f.stderr)}`)
}

function decryptError(f: GpgFailure, opts: GpgDecryptOptions, file: string): Error {
  const missing = notInstalled(f)
  if (missing) return missing
  if (f.spawnError) return f.spawnError
  const status = statuses(f.stderr)
  const damaged = `${file}: the gpg message is damaged, truncated or was tampered with`
  if (status.has('NODATA')) {
    return new UserError(
      `${file}: is not an OpenPGP message; check that encryption: gpg was used for it`,
    )
  }
  if (status.has('NO_SECKEY') || /No secret key/.test(f.stderr)) {
    const keyring = opts.homedir ? `the keyring in ${opts.homedir}` : 'the default keyring'
    return new UserError(
      `${CodecInputs.GpgHomedir}: ${file} is encrypted to a public key whose secret key is not in ${keyring}; import the secret key there`,
    )
  }
  if (status.has('BADMDC'))
    return new UserError(`${damaged} (MDC check failed); restore from another backup`)
  if ([...status].some((s) => s.endsWith('BAD_PASSPHRASE')) || status.has('MISSING_PASSPHRASE')) {
    const hint =
      opts.passphrase === undefined
        ? 'set gpg-passphrase'
        : 'wrong passphrase, or the file is damaged'
    return new UserError(
      `${CodecInputs.GpgPassphrase}: gpg could not decrypt ${file} with the passphrase given (${hint})`,
    )
  }
  if (
    status.has('DECRYPTION_FAILED') ||
    /invalid packet|unexpected EOF|problem reading source/i.test(f.stderr)
  ) {
    return new UserError(
      `${damaged} (${lastGpgLine(f.stderr).slice(5)}); restore from another backup`,
    )
  }
  return new UserError(
    `${file}: gpg decryption failed (exit ${f.code}): ${lastGpgLine(f.stderr).slice(5)}`,
  )
}
