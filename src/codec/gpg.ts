/**
 * OpenPGP through the `gpg` binary on the runner, as a transform stream: bytes in on gpg's
 * stdin, bytes out of its stdout. A passphrase goes in on its own pipe (fd 3), never on argv
 * where `ps` would show it; gpg's status lines come back on another (fd 4). gpg writes plaintext
 * before it has checked the MDC at the end of the message, so callers must treat the output as
 * unauthenticated until the stream ends cleanly, and it ends cleanly only on DECRYPTION_OKAY.
 *
 * Each gpg runs in a GNUPGHOME of its own (a copy of the keyring's folder) with its own agent,
 * which caches no passphrase and is stopped when gpg is done: no passphrase outlives the run in
 * an agent, and no agent of the operator's is asked for one.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Duplex, type Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { UserError } from '../util/errors.js'
import { childEnv } from '../util/secrets.js'
import { CodecInputs } from './inputs.js'

export interface GpgEncryptOptions {
  /** A key id, fingerprint or e-mail in the keyring, or an armored public key block. */
  recipient?: string
  passphrase?: string
  /** The keyring's folder, copied for each run; GNUPGHOME or ~/.gnupg when unset. */
  homedir?: string
}

export interface GpgDecryptOptions {
  /** The symmetric passphrase, or the passphrase of the secret key in the keyring. */
  passphrase?: string
  homedir?: string
}

/** How each run's GNUPGHOME is named in the temporary folder (tests look for its agent). */
export const RUN_HOME_PREFIX = 'omniai-gnupg-'

/**
 * The run's agent: nothing cached (a passphrase counts only for the operation it was given
 * for), loopback so the passphrase comes from our pipe and never a pinentry.
 */
const AGENT_CONF = 'default-cache-ttl 0\nmax-cache-ttl 0\nallow-loopback-pinentry\n'

/** Files of a GNUPGHOME that belong to its running daemons, not to its keyring. */
const isDaemonFile = (name: string) =>
  name.startsWith('S.') ||
  name.startsWith('.#lk') ||
  name.endsWith('.lock') ||
  name === 'gpg-agent.conf'

/**
 * A fresh GNUPGHOME (0700) holding a copy of `source`'s keyring and configuration, without its
 * sockets and its agent's settings.
 */
async function runHome(source: string | undefined): Promise<string> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), RUN_HOME_PREFIX))
  try {
    const from = source ?? process.env.GNUPGHOME ?? path.join(os.homedir(), '.gnupg')
    const stat = await fs.stat(from).catch(() => null)
    if (!stat?.isDirectory() && source !== undefined) {
      throw new UserError(
        `${CodecInputs.GpgHomedir}: ${source} is not a folder; give the folder that holds the keyring (what gpg --homedir takes), or leave it unset for ~/.gnupg`,
      )
    }
    if (stat?.isDirectory()) {
      await fs.cp(from, home, {
        recursive: true,
        filter: async (file) => {
          if (isDaemonFile(path.basename(file))) return false
          const s = await fs.lstat(file)
          return s.isFile() || s.isDirectory()
        },
      })
    }
    await fs.writeFile(path.join(home, 'gpg-agent.conf'), AGENT_CONF, { mode: 0o600 })
    return home
  } catch (err) {
    await fs.rm(home, { recursive: true, force: true })
    throw err
  }
}

/** Stops every daemon gpg started for `home` (its agent, a keyboxd), then deletes `home`. */
async function removeRunHome(home: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const child = spawn('gpgconf', ['--homedir', home, '--kill', 'all'], {
      stdio: 'ignore',
      env: childEnv(),
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    child.on('error', done)
    child.on('close', done)
  })
  await fs.rm(home, { recursive: true, force: true })
}

const ARMORED_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----'
const STDERR_LIMIT = 64 * 1024

/** A transform that encrypts with gpg; `close()` removes the temporary key file, if any. */
export async function gpgEncryptStream(
  opts: GpgEncryptOptions,
): Promise<{ stream: Duplex; close: () => Promise<void> }> {
  const args = baseArgs()
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
    stream: gpgDuplex(
      args,
      opts.homedir,
      opts.recipient === undefined ? opts.passphrase : undefined,
      (s) => encryptError(s, opts),
    ),
    close,
  }
}

/** A transform that decrypts with gpg; `file` only names the backup in errors. */
export function gpgDecryptStream(opts: GpgDecryptOptions, file: string): Duplex {
  const args = baseArgs()
  args.push('--decrypt', '--output', '-')
  return gpgDuplex(args, opts.homedir, opts.passphrase, (s) => decryptError(s, opts, file), {
    // Exit 0 is not enough: gpg --decrypt also prints a message that was never encrypted
    // (gpg --store, gpg --sign), and that is not a backup this action wrote.
    success: 'DECRYPTION_OKAY',
    missing: () =>
      new UserError(
        `${file}: is an OpenPGP message with no encrypted data in it (gpg reports no successful decryption): it was not written by encryption: gpg, or was replaced; restore from another backup`,
      ),
  })
}

function baseArgs(): string[] {
  const args = ['--batch', '--no-tty', '--yes', '--quiet', '--status-fd', '4']
  // The agent would otherwise remember a symmetric passphrase, and a later run with a wrong one
  // would still decrypt: the passphrase given is the only one that may count.
  args.push('--no-symkey-cache', '--pinentry-mode', 'loopback')
  return args
}

interface GpgFailure {
  code: number | null
  stderr: string
  status: string
  spawnError: NodeJS.ErrnoException | null
  /** Long key ids of the secret keys in the run's keyring, when the message names recipients. */
  secretKeys: Set<string>
}

/**
 * The secret (sub)keys in `home`: gpg says "No secret key" both when there is none and when
 * one did not unlock (a wrong passphrase), and only the keyring tells the two apart.
 */
async function secretKeyIds(home: string): Promise<Set<string>> {
  const listing = await new Promise<string>((resolve) => {
    let out = ''
    const child = spawn(
      'gpg',
      ['--homedir', home, '--batch', '--with-colons', '--list-secret-keys'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
        env: childEnv({ LC_ALL: 'C' }),
      },
    )
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.on('error', () => resolve(''))
    child.on('close', () => resolve(out))
  })
  return new Set(
    listing
      .split('\n')
      .filter((l) => /^(sec|ssb):/.test(l))
      .map((l) => l.split(':')[4]!),
  )
}

function gpgDuplex(
  args: string[],
  homedir: string | undefined,
  passphrase: string | undefined,
  describe: (failure: GpgFailure) => Error,
  required?: { success: string; missing: () => Error },
): Duplex {
  if (passphrase !== undefined) args.splice(args.indexOf('--output'), 0, '--passphrase-fd', '3')
  return Duplex.from(async function* (source: AsyncIterable<Buffer>, { signal }) {
    const home = await runHome(homedir)
    let child: ChildProcess
    try {
      child = spawn('gpg', ['--homedir', home, ...args], {
        stdio: ['pipe', 'pipe', 'pipe', passphrase !== undefined ? 'pipe' : 'ignore', 'pipe'],
        // Status keywords are stable; the human-readable lines we fall back on should be English.
        env: childEnv({ LC_ALL: 'C', LANGUAGE: 'C' }),
      })
    } catch (err) {
      await removeRunHome(home)
      throw err
    }
    // A stream torn down from outside (the next stage failed) stops gpg, so the cleanup below runs.
    const abort = () => child.kill()
    signal?.addEventListener('abort', abort)
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
    let status = ''
    const statusStream = child.stdio[4] as Readable
    statusStream.setEncoding('utf8')
    statusStream.on('data', (text: string) => {
      status = (status + text).slice(-STDERR_LIMIT)
    })
    const statusDone = new Promise<void>((resolve) => {
      statusStream.on('close', resolve)
      statusStream.on('error', () => resolve())
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
      await statusDone
      const feedError = await feeding
      if (code !== 0 || spawnError) {
        const secretKeys = /^\[GNUPG:\] ENC_TO /m.test(status)
          ? await secretKeyIds(home)
          : new Set<string>()
        throw describe({ code, stderr, status, spawnError, secretKeys })
      }
      if (feedError) throw feedError
      if (required && !statuses(status).has(required.success)) throw required.missing()
      finished = true
    } finally {
      signal?.removeEventListener('abort', abort)
      if (!finished && child.exitCode === null && child.signalCode === null) {
        child.kill()
        await closed
      }
      await removeRunHome(home)
    }
  })
}

/** gpg's status keywords, from its status pipe (never from stderr, which quotes the message). */
function statuses(status: string): Set<string> {
  const found = new Set<string>()
  for (const m of status.matchAll(/^\[GNUPG:\] (\S+)(?: (.*))?$/gm)) {
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
  const status = statuses(f.status)
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
  const status = statuses(f.status)
  const damaged = `${file}: the gpg message is damaged, truncated or was tampered with`
  if (status.has('NODATA')) {
    return new UserError(
      `${file}: is not an OpenPGP message; check that encryption: gpg was used for it`,
    )
  }
  if (status.has('BADMDC'))
    return new UserError(`${damaged} (MDC check failed); restore from another backup`)
  // Without a passphrase, gpg in batch mode asks for one (NEED_PASSPHRASE) and gives up; with
  // a wrong one, it says "No secret key" about a key the keyring does hold.
  const unanswered =
    opts.passphrase === undefined &&
    (status.has('NEED_PASSPHRASE') || status.has('NEED_PASSPHRASE_SYM'))
  const locked =
    /No secret key/.test(f.stderr) &&
    [...f.status.matchAll(/^\[GNUPG:\] ENC_TO (\S+)/gm)].some((m) => f.secretKeys.has(m[1]!))
  if (
    [...status].some((s) => s.endsWith('BAD_PASSPHRASE')) ||
    status.has('MISSING_PASSPHRASE') ||
    unanswered ||
    locked
  ) {
    const hint =
      opts.passphrase === undefined
        ? 'set gpg-passphrase'
        : 'wrong passphrase, or the file is damaged'
    return new UserError(
      `${CodecInputs.GpgPassphrase}: gpg could not decrypt ${file} with the passphrase given (${hint})`,
    )
  }
  // After the passphrase: a secret key that would not unlock is reported as missing too.
  if (status.has('NO_SECKEY') || /No secret key/.test(f.stderr)) {
    const keyring = opts.homedir ? `the keyring in ${opts.homedir}` : 'the default keyring'
    return new UserError(
      `${CodecInputs.GpgHomedir}: ${file} is encrypted to a public key whose secret key is not in ${keyring}; import the secret key there`,
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
