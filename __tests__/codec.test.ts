/**
 * The codec (src/codec) against the real tools: files it writes must open with the age and gpg
 * CLIs, files they write must open with it, and every failure must be one line with no
 * plaintext left on disk. Needs `age` (apt-get install -y age), `gpg`, `gzip` and `script`
 * (util-linux, to give `age -p` the terminal it insists on).
 */
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import * as zlib from 'node:zlib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  ageRecipientOf,
  checkDecryption,
  checkEncryption,
  decodeFile,
  detectFileFormat,
  detectFormat,
  encodedExtension,
  encodeFile,
  encodeStream,
  generateAgeIdentity,
  splitKeyLines,
  verifyEncodedFile,
  type Compression,
  type Decryption,
  type DecodeOptions,
  type Encryption,
} from '../src/codec/index.js'
import { ageEncryptStart } from '../src/codec/age.js'
import { bech32Decode, bech32Encode } from '../src/codec/bech32.js'
import { UserError } from '../src/util/errors.js'
import { HAS_AGE_CLI, HAS_GPG } from './tools.js'

const execFileAsync = promisify(execFile)
const CHUNK = 64 * 1024
const ENC_CHUNK = CHUNK + 16

const made: string[] = []
afterEach(async () => {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true })
})

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-codec-'))
  made.push(dir)
  return dir
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

async function writeRandom(file: string, bytes: number): Promise<Buffer> {
  const data = randomBytes(bytes)
  await fs.writeFile(file, data)
  return data
}

/** Text that compresses well, like a SQL dump. */
function sqlLike(rows: number): Buffer {
  const lines: string[] = []
  for (let i = 0; i < rows; i++) {
    lines.push(`INSERT INTO messages VALUES (${i}, 'conversation ${i % 97}', 'hello world ${i}');`)
  }
  return Buffer.from(lines.join('\n'))
}

/** Runs a command and returns stdout as bytes; throws with stderr on failure. */
async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Buffer> {
  const { stdout } = await execFileAsync(cmd, args, {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
    env: { ...process.env, ...env },
  })
  return stdout
}

/** Runs `command` on a pseudo-terminal fed with `input`: age reads passphrases only from a TTY. */
async function onTerminal(command: string, input: string): Promise<void> {
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  child.stdin.end(input)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  if (code !== 0) throw new Error(`${command} exited ${code}: ${output}`)
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** Expects `promise` to fail with a one-line UserError matching `pattern`. */
async function expectUserError(promise: Promise<unknown>, pattern: RegExp, secrets: string[] = []) {
  const err = await promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(UserError)
  const message = (err as Error).message
  expect(message).toMatch(pattern)
  expect(message).not.toContain('\n')
  for (const secret of secrets) expect(message).not.toContain(secret)
  return message
}

/** Byte equality; vitest's deep equality crawls a Buffer byte by byte and takes seconds. */
function expectBytes(actual: Buffer, expected: Buffer) {
  expect(actual.length).toBe(expected.length)
  expect(sha256(actual)).toBe(sha256(expected))
}

/** Nothing at `dest`, and no temporary file beside it. */
async function expectNoOutput(dest: string) {
  await expect(fs.stat(dest)).rejects.toThrow(/ENOENT/)
  const left = await fs.readdir(path.dirname(dest))
  expect(left.filter((n) => n.endsWith('.tmp'))).toEqual([])
}

/** Where an age file's payload starts: after the `--- ` line. */
function ageHeaderLength(file: Buffer): number {
  const mark = file.indexOf('\n--- ')
  return file.indexOf(0x0a, mark + 1) + 1
}

const none: Encryption = { kind: 'none' }
const plainOpts = (compression: Compression = 'none'): DecodeOptions => ({
  compression,
  decryption: { kind: 'none' },
})

describe('age keys', () => {
  it.skipIf(!HAS_AGE_CLI)('generates identities the age CLI agrees with', async () => {
    const dir = await tempDir()
    const key = generateAgeIdentity()
    expect(key.identity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/)
    expect(key.recipient).toMatch(/^age1[0-9a-z]{58}$/)
    expect(ageRecipientOf(key.identity)).toBe(key.recipient)
    await fs.writeFile(path.join(dir, 'key.txt'), `${key.identity}\n`)
    const derived = await run('age-keygen', ['-y', path.join(dir, 'key.txt')])
    expect(derived.toString().trim()).toBe(key.recipient)
  })

  it.skipIf(!HAS_AGE_CLI)('reads age-keygen key files, comments and all', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'key.txt')
    await run('age-keygen', ['-o', file])
    const text = await fs.readFile(file, 'utf8')
    const [identity] = splitKeyLines(text)
    expect(identity).toMatch(/^AGE-SECRET-KEY-1/)
    expect(text).toContain(`# public key: ${ageRecipientOf(identity!)}`)
  })

  it('round-trips Bech32 and rejects a one-character typo', () => {
    const data = randomBytes(32)
    const text = bech32Encode('age', data)
    expect(bech32Decode(text)).toEqual({ hrp: 'age', data })
    expect(bech32Decode(text.toUpperCase())).toEqual({ hrp: 'age', data })
    const typo = text.slice(0, 10) + (text[10] === 'q' ? 'p' : 'q') + text.slice(11)
    expect(bech32Decode(typo)).toBeNull()
    expect(bech32Decode(text.slice(0, 10) + text.slice(10).toUpperCase())).toBeNull()
  })

  it('names the input for a bad recipient, and never echoes an identity', () => {
    const { recipient, identity } = generateAgeIdentity()
    const typo = recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q')
    expect(() => checkEncryption({ kind: 'age', recipients: [recipient, typo] })).toThrow(
      /^age-recipients: entry 2 .* is not an age recipient/,
    )
    expect(() => checkEncryption({ kind: 'age', recipients: ['ssh-ed25519 AAAA'] })).toThrow(
      /^age-recipients: .*SSH key/,
    )
    expect(() => checkEncryption({ kind: 'age', recipients: [] })).toThrow(/^age-recipients:/)
    expect(() =>
      checkEncryption({ kind: 'age', recipients: [recipient], passphrase: 'x' }),
    ).toThrow(/not both/)
    const broken = identity.slice(0, -1) + (identity.endsWith('Q') ? 'P' : 'Q')
    let message = ''
    try {
      checkDecryption({ kind: 'age', identities: [broken] })
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toMatch(/^age-identity: entry 1 is not an age identity/)
    expect(message).not.toContain(broken.slice(16, 40))
    expect(() => checkDecryption({ kind: 'age' })).toThrow(/^age-identity:/)
    expect(() => checkEncryption({ kind: 'gpg' })).toThrow(/^gpg-recipient:/)
    const secretKey = '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQVYBGZsecret\n'
    expect(() => checkEncryption({ kind: 'gpg', recipient: secretKey })).toThrow(
      /^gpg-recipient: this is a private key, which the backup job must not hold; give/,
    )
    expect(() => checkEncryption({ kind: 'rot13' } as unknown as Encryption)).toThrow(
      /^encryption: "rot13" is not one of none, age, gpg/,
    )
  })
})

describe('age headers the decrypter reads back', () => {
  // Each X25519 stanza is 98 bytes; with the version line and the MAC line, 10,699 recipients
  // make a header just under 1 MiB, 10,700 one just over, which the decrypter refuses as damaged.
  const recipients = (n: number, first: string) => [
    first,
    ...Array.from({ length: n - 1 }, () => bech32Encode('age', randomBytes(32))),
  ]

  it('refuses, before writing, more recipients than a readable header holds', async () => {
    const dir = await tempDir()
    const plain = path.join(dir, 'db')
    await fs.writeFile(plain, 'rows')
    const key = generateAgeIdentity()
    const opts = (n: number) => ({
      compression: 'none' as const,
      encryption: { kind: 'age' as const, recipients: recipients(n, key.recipient) },
    })
    // Positive control: the most that fit are written, and read back with the first identity.
    const fits = path.join(dir, 'fits.age')
    await encodeFile(plain, fits, opts(10_699))
    expect((await fs.stat(fits)).size).toBeGreaterThan(1_048_000)
    const out = path.join(dir, 'out')
    await decodeFile(fits, out, {
      compression: 'none',
      decryption: { kind: 'age', identities: [key.identity] },
    })
    expect(await fs.readFile(out, 'utf8')).toBe('rows')

    const over = path.join(dir, 'over.age')
    const err = await encodeFile(plain, over, opts(10_700)).then(
      () => null,
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(UserError)
    expect(err!.message).toMatch(
      /^age-recipients: 10700 recipients make an age header longer than the 1 MiB .*; give at most 10699 recipients$/,
    )
    // The encrypter itself, whoever calls it, measures the header it would write.
    await expect(ageEncryptStart(opts(10_700).encryption)).rejects.toThrow(
      /^age-recipients: 10700 recipients make an age header of 1048670 bytes, more than the 1048576 .*; give at most 10699 recipients$/,
    )
    expect(await fs.readdir(dir)).toEqual(['db', 'fits.age', 'out'])
    // The inputs' check, before any backup is taken, draws the same line.
    expect(() => checkEncryption(opts(10_699).encryption)).not.toThrow()
    expect(() => checkEncryption(opts(10_700).encryption)).toThrow(
      /^age-recipients: 10700 recipients .*; give at most 10699 recipients$/,
    )
  })
})

// Where the age CLI is installed (CI installs it); age-interop.test.ts checks the same against
// the age-encryption npm package everywhere.
describe.skipIf(!HAS_AGE_CLI)('age interop with the age CLI', () => {
  // Around the 64 KiB chunk, and past the 1 MiB reads so chunks straddle two of them.
  const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 200_000, (3 << 20) + 12_345]

  it.each(sizes)('a %i-byte file the action encrypts opens with age -d', async (size) => {
    const dir = await tempDir()
    const { identity, recipient } = generateAgeIdentity()
    const keyFile = path.join(dir, 'key.txt')
    await fs.writeFile(keyFile, `${identity}\n`)
    const plain = await writeRandom(path.join(dir, 'db'), size)
    const digests = await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [recipient] },
    })
    const stored = await fs.readFile(path.join(dir, 'db.age'))
    expect(digests).toEqual({
      sha256: sha256(stored),
      bytes: stored.length,
      plainSha256: sha256(plain),
      plainBytes: size,
    })
    // 16 bytes of tag per 64 KiB chunk, and one (empty) chunk for an empty file.
    const chunks = Math.max(1, Math.ceil(size / CHUNK))
    expect(stored.length).toBe(ageHeaderLength(stored) + 16 + size + 16 * chunks)
    expectBytes(await run('age', ['-d', '-i', keyFile, path.join(dir, 'db.age')]), plain)
  })

  it.each(sizes)('a %i-byte file age -r encrypts opens with the action', async (size) => {
    const dir = await tempDir()
    const { identity, recipient } = generateAgeIdentity()
    const plain = await writeRandom(path.join(dir, 'db'), size)
    await run('age', ['-e', '-r', recipient, '-o', path.join(dir, 'db.age'), path.join(dir, 'db')])
    const stored = await fs.readFile(path.join(dir, 'db.age'))
    const digests = await decodeFile(path.join(dir, 'db.age'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'age', identities: [identity] },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
    expect(digests).toEqual({
      sha256: sha256(stored),
      bytes: stored.length,
      plainSha256: sha256(plain),
      plainBytes: size,
    })
  })

  it('encrypts to several recipients; each identity opens the file alone', async () => {
    const dir = await tempDir()
    const a = generateAgeIdentity()
    const b = generateAgeIdentity()
    const plain = await writeRandom(path.join(dir, 'db'), 100_000)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [`# ops team\n${a.recipient}\n\n${b.recipient}`] },
    })
    await fs.writeFile(path.join(dir, 'a.txt'), a.identity)
    expectBytes(
      await run('age', ['-d', '-i', path.join(dir, 'a.txt'), path.join(dir, 'db.age')]),
      plain,
    )
    const other = generateAgeIdentity()
    await decodeFile(path.join(dir, 'db.age'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'age', identities: [other.identity, b.identity] },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
  })

  it('reads a file age-keygen wrote the key for, with the key file as is', async () => {
    const dir = await tempDir()
    const keyFile = path.join(dir, 'key.txt')
    await run('age-keygen', ['-o', keyFile])
    const plain = await writeRandom(path.join(dir, 'db'), 70_000)
    await run('age', ['-e', '-i', keyFile, '-o', path.join(dir, 'db.age'), path.join(dir, 'db')])
    await decodeFile(path.join(dir, 'db.age'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'age', identities: [await fs.readFile(keyFile, 'utf8')] },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
  })

  it('a passphrase file the action writes opens with age -d (scrypt)', async () => {
    const dir = await tempDir()
    const plain = await writeRandom(path.join(dir, 'db'), 150_000)
    const passphrase = 'correct horse battery staple'
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', passphrase, scryptWorkFactor: 12 },
    })
    const head = (await fs.readFile(path.join(dir, 'db.age'))).subarray(0, 100).toString('latin1')
    expect(head).toMatch(/^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 12\n/)
    const out = path.join(dir, 'out')
    await onTerminal(`age -d -o ${q(out)} ${q(path.join(dir, 'db.age'))}`, `${passphrase}\n`)
    expectBytes(await fs.readFile(out), plain)
  })

  it('a file age -p encrypts opens with the passphrase', async () => {
    const dir = await tempDir()
    const plain = await writeRandom(path.join(dir, 'db'), 150_000)
    const passphrase = 'another passphrase, with spaces'
    const stored = path.join(dir, 'db.age')
    await onTerminal(
      `age -p -o ${q(stored)} ${q(path.join(dir, 'db'))}`,
      `${passphrase}\n${passphrase}\n`,
    )
    await decodeFile(stored, path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'age', passphrase },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
    await expectUserError(
      decodeFile(stored, path.join(dir, 'out2'), {
        compression: 'none',
        decryption: { kind: 'age', passphrase: 'not it' },
      }),
      /^age-passphrase: the passphrase does not decrypt/,
      ['not it'],
    )
    await expectNoOutput(path.join(dir, 'out2'))
  })
})

describe('age failures: one line, and no plaintext left behind', () => {
  let dir: string
  let key: { identity: string; recipient: string }
  let good: Buffer
  const decryption = (): Decryption => ({ kind: 'age', identities: [key.identity] })

  /** Decodes `bytes` as a backup and expects it to fail with `pattern`. */
  async function expectRefused(bytes: Buffer, pattern: RegExp, d: Decryption = decryption()) {
    const file = path.join(dir, 'bad.age')
    await fs.writeFile(file, bytes)
    const dest = path.join(dir, 'restored.db')
    const message = await expectUserError(
      decodeFile(file, dest, { compression: 'none', decryption: d }),
      pattern,
      [key.identity],
    )
    await expectNoOutput(dest)
    return message
  }

  const setup = async (size = 3 * CHUNK + 100) => {
    dir = await tempDir()
    key = generateAgeIdentity()
    await writeRandom(path.join(dir, 'db'), size)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    good = await fs.readFile(path.join(dir, 'db.age'))
  }

  it('a wrong identity', async () => {
    await setup()
    const other = generateAgeIdentity()
    await expectRefused(good, /^age-identity: the identity does not match any recipient/, {
      kind: 'age',
      identities: [other.identity],
    })
  })

  it('a wrong passphrase, and an identity for a passphrase file', async () => {
    dir = await tempDir()
    key = generateAgeIdentity()
    await writeRandom(path.join(dir, 'db'), 1000)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.age'), {
      compression: 'none',
      encryption: { kind: 'age', passphrase: 'right one', scryptWorkFactor: 10 },
    })
    const bytes = await fs.readFile(path.join(dir, 'db.age'))
    await expectRefused(bytes, /^age-passphrase: the passphrase does not decrypt/, {
      kind: 'age',
      passphrase: 'wrong one',
    })
    await expectRefused(bytes, /^age-passphrase: .* is encrypted with a passphrase/)
  })

  it('a passphrase for a file encrypted to recipients', async () => {
    await setup(10)
    await expectRefused(good, /^age-identity: .* is encrypted to age recipients/, {
      kind: 'age',
      passphrase: 'anything',
    })
  })

  it('a flipped byte in the header MAC', async () => {
    await setup()
    const bad = Buffer.from(good)
    // Another valid base64 character, so the MAC still parses and only fails to verify.
    const at = ageHeaderLength(good) - 10
    bad[at] = bad[at] === 0x41 ? 0x42 : 0x41
    await expectRefused(
      bad,
      /the age header failed authentication: the file is damaged or was tampered with/,
    )
  })

  it('a flipped byte in the recipient stanza', async () => {
    await setup()
    const bad = Buffer.from(good)
    bad[good.indexOf('\n') + 20]! ^= 0x02
    await expectRefused(bad, /age-identity|age header is malformed/)
  })

  it('a changed version line', async () => {
    await setup()
    const bad = Buffer.concat([Buffer.from('age-encryption.org/v2'), good.subarray(21)])
    await expectRefused(bad, /unsupported version/)
  })

  it('a flipped byte in the payload, after a chunk that did decrypt', async () => {
    await setup()
    const bad = Buffer.from(good)
    bad[ageHeaderLength(good) + 16 + ENC_CHUNK + 1000]! ^= 0x80
    await expectRefused(
      bad,
      /age payload chunk 1 failed authentication: the file is damaged or was tampered with/,
    )
  })

  it('a flipped byte in the last chunk', async () => {
    await setup()
    const bad = Buffer.from(good)
    bad[bad.length - 5]! ^= 0x01
    await expectRefused(bad, /the last age chunk \(3\) failed authentication/)
  })

  it('a file cut at a chunk boundary: only the last-chunk flag tells', async () => {
    await setup()
    const cut = good.subarray(0, ageHeaderLength(good) + 16 + 2 * ENC_CHUNK)
    await expectRefused(
      cut,
      /the age payload ends after chunk 1 without a final chunk: the file is truncated/,
    )
  })

  it('a file cut at a chunk boundary when the plaintext is whole chunks', async () => {
    await setup(2 * CHUNK)
    const cut = good.subarray(0, ageHeaderLength(good) + 16 + ENC_CHUNK)
    await expectRefused(cut, /ends after chunk 0 without a final chunk/)
  })

  it('a file cut inside a chunk, inside the header, and right after it', async () => {
    await setup()
    await expectRefused(
      good.subarray(0, good.length - 50),
      /failed authentication; the file may also be truncated/,
    )
    await expectRefused(good.subarray(0, 60), /ends inside the age header: the file is truncated/)
    await expectRefused(
      good.subarray(0, ageHeaderLength(good) + 16),
      /ends right after the age header/,
    )
    await expectRefused(
      good.subarray(0, ageHeaderLength(good) + 5),
      /before the age payload starts/,
    )
  })

  it('data appended after the final chunk', async () => {
    await setup(2 * CHUNK)
    await expectRefused(
      Buffer.concat([good, Buffer.from('x')]),
      /data follows the final age chunk 1/,
    )
  })

  it('an empty file', async () => {
    await setup(10)
    await expectRefused(Buffer.alloc(0), /is empty \(0 bytes\): the backup was cut off/)
  })

  it('leaves an existing file at the destination untouched', async () => {
    await setup()
    const dest = path.join(dir, 'restored.db')
    await fs.writeFile(dest, 'the last good restore')
    const bad = Buffer.from(good)
    bad[bad.length - 5]! ^= 0x01
    await fs.writeFile(path.join(dir, 'bad.age'), bad)
    await expectUserError(
      decodeFile(path.join(dir, 'bad.age'), dest, {
        compression: 'none',
        decryption: decryption(),
      }),
      /failed authentication/,
    )
    expect(await fs.readFile(dest, 'utf8')).toBe('the last good restore')
    expect((await fs.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('refuses a file that is not what encryption says', async () => {
    await setup(10)
    await fs.writeFile(path.join(dir, 'plain.db'), 'SQLite format 3\0')
    await expectUserError(
      decodeFile(path.join(dir, 'plain.db'), path.join(dir, 'out'), {
        compression: 'none',
        decryption: decryption(),
      }),
      /^encryption: .* is neither encrypted nor compressed data, not an age file/,
    )
    await expectUserError(
      decodeFile(path.join(dir, 'db.age'), path.join(dir, 'out'), plainOpts()),
      /^encryption: .* is an age file, but encryption is none; set encryption: age/,
    )
    await expectUserError(
      decodeFile(path.join(dir, 'db.age'), path.join(dir, 'out'), {
        compression: 'none',
        decryption: { kind: 'gpg', passphrase: 'x' },
      }),
      /^encryption: .* is an age file, not an OpenPGP message/,
    )
    await expectNoOutput(path.join(dir, 'out'))
  })
})

describe.skipIf(!HAS_GPG)('gpg', () => {
  let home: string
  let fingerprint: string
  let publicKey: string
  const homes: string[] = []

  beforeAll(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-gpg-'))
    homes.push(home)
    await fs.chmod(home, 0o700)
    await run('gpg', [
      '--homedir',
      home,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      '--quick-gen-key',
      'OmniAI Backup Test <backup@example.invalid>',
      'future-default',
      'default',
      'never',
    ])
    const listing = (
      await run('gpg', ['--homedir', home, '--with-colons', '--list-keys'])
    ).toString()
    fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listing)![1]!
    publicKey = (
      await run('gpg', ['--homedir', home, '--armor', '--export', fingerprint])
    ).toString()
  })

  afterAll(async () => {
    for (const h of homes) {
      await execFileAsync('gpgconf', ['--homedir', h, '--kill', 'all']).catch(() => {})
      await fs.rm(h, { recursive: true, force: true })
    }
  })

  /** An empty keyring of its own. */
  async function emptyHome(): Promise<string> {
    const h = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-gpg-'))
    homes.push(h)
    await fs.chmod(h, 0o700)
    return h
  }

  it('a symmetric file the action writes opens with gpg, and the other way round', async () => {
    const dir = await tempDir()
    const passphrase = 'gpg pass phrase'
    await fs.writeFile(path.join(dir, 'pass'), passphrase)
    const plain = await writeRandom(path.join(dir, 'db'), 300_000)
    const digests = await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
      compression: 'none',
      encryption: { kind: 'gpg', passphrase, homedir: home },
    })
    const stored = await fs.readFile(path.join(dir, 'db.gpg'))
    expect(digests.sha256).toBe(sha256(stored))
    expect(digests.plainSha256).toBe(sha256(plain))
    expect(detectFormat(stored)).toBe('gpg')
    const cliArgs = [
      '--homedir',
      home,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--no-symkey-cache',
    ]
    const pass = ['--passphrase-file', path.join(dir, 'pass')]
    expectBytes(await run('gpg', [...cliArgs, ...pass, '-d', path.join(dir, 'db.gpg')]), plain)

    await run('gpg', [
      ...cliArgs,
      ...pass,
      '-c',
      '-o',
      path.join(dir, 'cli.gpg'),
      path.join(dir, 'db'),
    ])
    const back = await decodeFile(path.join(dir, 'cli.gpg'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'gpg', passphrase, homedir: home },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
    expect(back.plainSha256).toBe(sha256(plain))
  })

  it('encrypts to a recipient in the keyring; gpg and the action decrypt it', async () => {
    const dir = await tempDir()
    const plain = await writeRandom(path.join(dir, 'db'), 200_000)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
      compression: 'none',
      encryption: { kind: 'gpg', recipient: fingerprint, homedir: home },
    })
    expectBytes(
      await run('gpg', ['--homedir', home, '--batch', '-d', path.join(dir, 'db.gpg')]),
      plain,
    )
    await decodeFile(path.join(dir, 'db.gpg'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'gpg', homedir: home },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
  })

  it('encrypts to an armored public key without a keyring holding it', async () => {
    const dir = await tempDir()
    const plain = await writeRandom(path.join(dir, 'db'), 50_000)
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
      compression: 'gzip',
      encryption: { kind: 'gpg', recipient: publicKey, homedir: await emptyHome() },
    })
    const back = await decodeFile(path.join(dir, 'db.gpg'), path.join(dir, 'out'), {
      compression: 'gzip',
      decryption: { kind: 'gpg', homedir: home },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
    expect(back.plainBytes).toBe(plain.length)
  })

  it('decrypts a file gpg -e -r wrote', async () => {
    const dir = await tempDir()
    const plain = await writeRandom(path.join(dir, 'db'), 80_000)
    await run('gpg', [
      '--homedir',
      home,
      '--batch',
      '--trust-model',
      'always',
      '-e',
      '-r',
      fingerprint,
      '-o',
      path.join(dir, 'db.gpg'),
      path.join(dir, 'db'),
    ])
    await decodeFile(path.join(dir, 'db.gpg'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'gpg', homedir: home },
    })
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
  })

  describe('failures', () => {
    let dir: string
    let sym: Buffer
    const passphrase = 'the right passphrase'

    beforeAll(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-codec-gpg-'))
      await writeRandom(path.join(dir, 'db'), 400_000)
      await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
        compression: 'none',
        encryption: { kind: 'gpg', passphrase, homedir: home },
      })
      sym = await fs.readFile(path.join(dir, 'db.gpg'))
    })
    afterAll(() => fs.rm(dir, { recursive: true, force: true }))

    async function expectRefused(bytes: Buffer, pattern: RegExp, d: Decryption) {
      await fs.writeFile(path.join(dir, 'bad.gpg'), bytes)
      const dest = path.join(dir, 'restored.db')
      await expectUserError(
        decodeFile(path.join(dir, 'bad.gpg'), dest, { compression: 'none', decryption: d }),
        pattern,
        [passphrase, 'wrong passphrase!'],
      )
      await expectNoOutput(dest)
    }

    it('a wrong passphrase', async () => {
      await expectRefused(
        sym,
        /^gpg-passphrase: gpg could not decrypt .* with the passphrase given/,
        {
          kind: 'gpg',
          passphrase: 'wrong passphrase!',
          homedir: home,
        },
      )
    })

    it('a flipped byte in the payload (gpg had already written plaintext)', async () => {
      const bad = Buffer.from(sym)
      bad[200_000]! ^= 0x01
      await expectRefused(
        bad,
        /the gpg message is damaged, truncated or was tampered with \(MDC check failed\)/,
        {
          kind: 'gpg',
          passphrase,
          homedir: home,
        },
      )
    })

    it('a truncated file', async () => {
      await expectRefused(
        sym.subarray(0, 250_000),
        /the gpg message is damaged, truncated or was tampered with/,
        {
          kind: 'gpg',
          passphrase,
          homedir: home,
        },
      )
    })

    it('an empty file', async () => {
      await expectRefused(Buffer.alloc(0), /is empty \(0 bytes\)/, {
        kind: 'gpg',
        passphrase,
        homedir: home,
      })
    })

    it('a key file without the secret key', async () => {
      await encodeFile(path.join(dir, 'db'), path.join(dir, 'key.gpg'), {
        compression: 'none',
        encryption: { kind: 'gpg', recipient: fingerprint, homedir: home },
      })
      await expectRefused(
        await fs.readFile(path.join(dir, 'key.gpg')),
        /^gpg-homedir: .* whose secret key is not in the keyring/,
        { kind: 'gpg', homedir: await emptyHome() },
      )
    })

    it('an unknown recipient', async () => {
      await expectUserError(
        encodeFile(path.join(dir, 'db'), path.join(dir, 'x.gpg'), {
          compression: 'none',
          encryption: {
            kind: 'gpg',
            recipient: 'nobody@example.invalid',
            homedir: await emptyHome(),
          },
        }),
        /^gpg-recipient: gpg cannot encrypt to this recipient/,
      )
      await expectNoOutput(path.join(dir, 'x.gpg'))
    })
  })
})

describe('compression', () => {
  const compressions: Compression[] = ['none', 'gzip', 'zstd']
  const encryptions = (): Array<[string, Encryption, Decryption]> => {
    const key = generateAgeIdentity()
    return [
      ['none', none, { kind: 'none' }],
      [
        'age',
        { kind: 'age', recipients: [key.recipient] },
        { kind: 'age', identities: [key.identity] },
      ],
    ]
  }

  for (const compression of compressions) {
    it(`${compression}: round trip, plain and under age, with both checksums`, async () => {
      const dir = await tempDir()
      const plain = sqlLike(20_000)
      await fs.writeFile(path.join(dir, 'dump.sql'), plain)
      for (const [name, encryption, decryption] of encryptions()) {
        const stored = path.join(
          dir,
          `stored-${name}${encodedExtension(compression, encryption.kind)}`,
        )
        const enc = await encodeFile(path.join(dir, 'dump.sql'), stored, {
          compression,
          encryption,
        })
        const bytes = await fs.readFile(stored)
        expect(enc.sha256).toBe(sha256(bytes))
        expect(enc.plainSha256).toBe(sha256(plain))
        if (compression !== 'none') expect(enc.bytes, name).toBeLessThan(plain.length / 4)
        if (encryption.kind === 'none') {
          const inflated =
            compression === 'gzip'
              ? zlib.gunzipSync(bytes)
              : compression === 'zstd'
                ? zlib.zstdDecompressSync(bytes)
                : bytes
          expectBytes(inflated, plain)
          expect(await detectFileFormat(stored)).toBe(
            compression === 'none' ? 'unknown' : compression,
          )
        }
        const out = path.join(dir, `out-${name}`)
        const dec = await decodeFile(stored, out, { compression, decryption })
        expectBytes(await fs.readFile(out), plain)
        expect(dec).toEqual(enc)
      }
    })
  }

  it('gzip output opens with the gzip CLI', async () => {
    const dir = await tempDir()
    const plain = sqlLike(5000)
    await fs.writeFile(path.join(dir, 'dump.sql'), plain)
    await encodeFile(path.join(dir, 'dump.sql'), path.join(dir, 'dump.sql.gz'), {
      compression: 'gzip',
      encryption: none,
    })
    expectBytes(await run('gzip', ['-dc', path.join(dir, 'dump.sql.gz')]), plain)
  })

  it('a wrong compression setting names the input', async () => {
    const dir = await tempDir()
    const key = generateAgeIdentity()
    await fs.writeFile(path.join(dir, 'dump.sql'), sqlLike(100))
    await encodeFile(path.join(dir, 'dump.sql'), path.join(dir, 'dump.zst.age'), {
      compression: 'zstd',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    const decryption: Decryption = { kind: 'age', identities: [key.identity] }
    await expectUserError(
      decodeFile(path.join(dir, 'dump.zst.age'), path.join(dir, 'out'), {
        compression: 'gzip',
        decryption,
      }),
      /^compression: .* holds zstd-compressed data, not gzip data; set compression/,
    )
    await expectNoOutput(path.join(dir, 'out'))
    await encodeFile(path.join(dir, 'dump.sql'), path.join(dir, 'dump.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    await expectUserError(
      decodeFile(path.join(dir, 'dump.age'), path.join(dir, 'out'), {
        compression: 'zstd',
        decryption,
      }),
      /^compression: .* holds uncompressed data, not zstd data/,
    )
    await expectNoOutput(path.join(dir, 'out'))
    expect(() => checkEncryption({ kind: 'none' })).not.toThrow()
    await expectUserError(
      encodeFile(path.join(dir, 'dump.sql'), path.join(dir, 'x'), {
        compression: 'brotli' as Compression,
        encryption: none,
      }),
      /^compression: "brotli" is not one of none, gzip, zstd/,
    )
  })

  it('damaged gzip data is reported as damage, not as a setting', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'dump.sql'), sqlLike(2000))
    await encodeFile(path.join(dir, 'dump.sql'), path.join(dir, 'dump.sql.gz'), {
      compression: 'gzip',
      encryption: none,
    })
    const bytes = await fs.readFile(path.join(dir, 'dump.sql.gz'))
    await fs.writeFile(path.join(dir, 'cut.gz'), bytes.subarray(0, bytes.length - 100))
    await expectUserError(
      decodeFile(path.join(dir, 'cut.gz'), path.join(dir, 'out'), plainOpts('gzip')),
      /cut\.gz: the gzip data is damaged \(unexpected end of file\); restore from another backup/,
    )
    await expectNoOutput(path.join(dir, 'out'))
  })

  // zlib stops at the last whole gzip member or zstd frame and drops what follows it in the same
  // read: zeros after gzip, anything after zstd. The decoder refuses a file with such a tail.
  // (A further gzip member, or a zstd frame that starts exactly where a read starts, is decoded
  // instead: the plaintext's sha256 then differs from the manifest's.)
  const skippable = (data: Buffer) => {
    const head = Buffer.alloc(8)
    head.writeUInt32LE(0x184d2a50, 0)
    head.writeUInt32LE(data.length, 4)
    return Buffer.concat([head, data])
  }
  const empty = Buffer.from('28b52ffd2000010000', 'hex')
  const tails: [Exclude<Compression, 'none'>, string, Buffer][] = [
    ['gzip', 'zero bytes', Buffer.alloc(4096)],
    ['zstd', 'a SQL statement', Buffer.from('DROP TABLE users;\n')],
    ['zstd', 'a further frame of data', zlib.zstdCompressSync(Buffer.from('DROP TABLE users;\n'))],
    // Decodes to nothing, like an empty frame, but carries anything.
    ['zstd', 'a skippable frame', skippable(Buffer.from('DROP TABLE users;\n'))],
    // Empty frames, after more bytes than are kept to compare with them.
    [
      'zstd',
      'bytes, then empty frames',
      Buffer.concat([Buffer.alloc(64, 7), empty, empty, empty, empty]),
    ],
  ]
  for (const [compression, what, tail] of tails) {
    it(`${compression}: ${what} after the end of the compressed data`, async () => {
      const dir = await tempDir()
      const plain = sqlLike(2000)
      await fs.writeFile(path.join(dir, 'dump.sql'), plain)
      const key = generateAgeIdentity()
      const ways: [string, Encryption, Decryption][] = [
        ['plain', none, { kind: 'none' }],
        [
          'age',
          { kind: 'age', recipients: [key.recipient] },
          { kind: 'age', identities: [key.identity] },
        ],
      ]
      for (const [name, encryption, decryption] of ways) {
        // The tail goes where the compressed data ends: under age, inside the payload.
        const packed = path.join(dir, `dump-${name}`)
        await encodeFile(path.join(dir, 'dump.sql'), packed, { compression, encryption: none })
        const bytes = await fs.readFile(packed)
        // Positive control: zlib alone reads the file with its tail as the plaintext.
        const inflate = compression === 'gzip' ? zlib.gunzipSync : zlib.zstdDecompressSync
        expectBytes(inflate(Buffer.concat([bytes, tail])), plain)
        await fs.writeFile(packed, Buffer.concat([bytes, tail]))
        const stored = path.join(dir, `stored-${name}`)
        await encodeFile(packed, stored, { compression: 'none', encryption })
        const opts = { compression, decryption }
        const refused = new RegExp(
          `stored-${name}: ${tail.length} bytes follow the end of the ${compression} data \\(the file was appended to or damaged\\); restore from another backup$`,
        )
        await expectUserError(decodeFile(stored, path.join(dir, `out-${name}`), opts), refused)
        await expectNoOutput(path.join(dir, `out-${name}`))
        await expectUserError(verifyEncodedFile(stored, opts), refused)
        // The same file without the tail decodes (positive control).
        await fs.writeFile(packed, bytes)
        await fs.rm(stored)
        await encodeFile(packed, stored, { compression: 'none', encryption })
        await decodeFile(stored, path.join(dir, `out-${name}`), opts)
        expectBytes(await fs.readFile(path.join(dir, `out-${name}`)), plain)
      }
    })
  }

  it('zstd: a frame that follows an empty frame ending exactly where a read ends is refused in words', async () => {
    const dir = await tempDir()
    // Random bytes compress to themselves plus 33 bytes here: the data frame and the empty one
    // fill the first 1 MiB read exactly, and the next read starts with a further frame.
    const data = randomBytes(1048534)
    const frame = zlib.zstdCompressSync(data)
    expect(frame.length + empty.length).toBe(1 << 20)
    const file = path.join(dir, 'boundary.zst')
    await fs.writeFile(file, Buffer.concat([frame, empty, zlib.zstdCompressSync(Buffer.from('x'))]))
    await expectUserError(
      decodeFile(file, path.join(dir, 'out'), plainOpts('zstd')),
      // Which of the two depends on whether Node's decoder is given the next read at all.
      /boundary\.zst: (data follows|19 bytes follow) the end of the zstd data \(the file was appended to or damaged\); restore from another backup$/,
    )
    await expectNoOutput(path.join(dir, 'out'))
    // Positive control: without the further frame it decodes.
    await fs.writeFile(file, Buffer.concat([frame, empty]))
    await decodeFile(file, path.join(dir, 'out'), plainOpts('zstd'))
    expectBytes(await fs.readFile(path.join(dir, 'out')), data)
  })

  it('zstd is written as one frame, whatever the timing of its input', async () => {
    const dir = await tempDir()
    // Input in several writes, ending while the last is still queued: Node's compressor alone
    // then ends the frame on that chunk and writes a second, empty one when it is flushed.
    const parts = () => [randomBytes(100_000), randomBytes(5), randomBytes(CHUNK * 2)]
    const frames = async (file: string) =>
      Number(/# Zstandard Frames: (\d+)/.exec(String(await run('zstd', ['-lv', file])))![1])
    const raw = path.join(dir, 'raw.zst')
    // Positive control: that is what Node's compressor does by itself, given every part in one
    // tick and then ended (the first is still being compressed when the last is queued).
    const z = zlib.createZstdCompress()
    const written = pipeline(z, createWriteStream(raw))
    const [first, ...rest] = parts()
    z.write(first!)
    for (const part of rest.slice(0, -1)) z.write(part)
    z.end(rest.at(-1))
    await written
    expect(await frames(raw)).toBe(2)
    const ours = path.join(dir, 'ours.zst')
    const plain = parts()
    await encodeStream(Readable.from(plain), ours, { compression: 'zstd', encryption: none })
    expect(await frames(ours)).toBe(1)
    expectBytes(await run('zstd', ['-dc', ours]), Buffer.concat(plain))
  })

  it('zstd: empty frames after the data are read, as Node’s own encoder could end with one', async () => {
    const dir = await tempDir()
    const plain = sqlLike(2000)
    await fs.writeFile(path.join(dir, 'dump.sql'), plain)
    await encodeFile(path.join(dir, 'dump.sql'), path.join(dir, 'dump.zst'), {
      compression: 'zstd',
      encryption: none,
    })
    const bytes = await fs.readFile(path.join(dir, 'dump.zst'))
    const empty = zlib.zstdCompressSync(Buffer.alloc(0))
    await fs.writeFile(path.join(dir, 'more.zst'), Buffer.concat([bytes, empty, empty]))
    await decodeFile(path.join(dir, 'more.zst'), path.join(dir, 'out'), plainOpts('zstd'))
    expectBytes(await fs.readFile(path.join(dir, 'out')), plain)
    // A frame cut short after them is not empty, and is refused.
    await fs.writeFile(path.join(dir, 'cut.zst'), Buffer.concat([bytes, empty.subarray(0, 8)]))
    await expectUserError(
      decodeFile(path.join(dir, 'cut.zst'), path.join(dir, 'out2'), plainOpts('zstd')),
      /cut\.zst: 8 bytes follow the end of the zstd data/,
    )
  })
})

describe('streams and checksums', () => {
  it('never replaces a file already at the destination, on either path', async () => {
    const dir = await tempDir()
    const src = path.join(dir, 'db')
    await writeRandom(src, 3 * CHUNK + 7)
    const key = generateAgeIdentity()
    const ways: [string, Compression, Encryption][] = [
      ['age (blocks)', 'none', { kind: 'age', recipients: [key.recipient] }],
      ['gzip + age (streams)', 'gzip', { kind: 'age', recipients: [key.recipient] }],
      ['gzip (streams)', 'gzip', none],
    ]
    for (const [way, compression, encryption] of ways) {
      const dest = path.join(dir, `taken-${compression}-${encryption.kind}`)
      await fs.writeFile(dest, `someone else's ${way}`)
      const err = await encodeFile(src, dest, { compression, encryption }).then(
        () => null,
        (e: NodeJS.ErrnoException) => e,
      )
      expect([way, err?.code]).toEqual([way, 'EEXIST'])
      expect(await fs.readFile(dest, 'utf8')).toBe(`someone else's ${way}`)
    }
    // No temporary file is left, and a free name is written as before (positive control).
    expect((await fs.readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([])
    const ok = await encodeFile(src, path.join(dir, 'free.age'), {
      compression: 'none',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    expect((await fs.stat(path.join(dir, 'free.age'))).size).toBe(ok.bytes)
  })

  it('encodes a stream with no plaintext file, and verifies without writing one', async () => {
    const dir = await tempDir()
    const key = generateAgeIdentity()
    const parts = [randomBytes(100_000), randomBytes(5), randomBytes(CHUNK * 2)]
    const plain = Buffer.concat(parts)
    const enc = await encodeStream(Readable.from(parts), path.join(dir, 'db.zst.age'), {
      compression: 'zstd',
      encryption: { kind: 'age', recipients: [key.recipient] },
    })
    expect(enc.plainSha256).toBe(sha256(plain))
    expect(enc.plainBytes).toBe(plain.length)
    const before = await fs.readdir(dir)
    const checked = await verifyEncodedFile(path.join(dir, 'db.zst.age'), {
      compression: 'zstd',
      decryption: { kind: 'age', identities: [key.identity] },
    })
    expect(checked).toEqual(enc)
    expect(await fs.readdir(dir)).toEqual(before)
  })

  it('with no codec at all, both checksums are the file', async () => {
    const dir = await tempDir()
    const plain = await writeRandom(path.join(dir, 'db'), 12345)
    const enc = await encodeFile(path.join(dir, 'db'), path.join(dir, 'copy'), {
      compression: 'none',
      encryption: none,
    })
    expect(enc).toEqual({
      sha256: sha256(plain),
      bytes: 12345,
      plainSha256: sha256(plain),
      plainBytes: 12345,
    })
  })

  it('names a missing source, a missing folder, and refuses to overwrite its own input', async () => {
    const dir = await tempDir()
    await fs.writeFile(path.join(dir, 'db'), 'x')
    await expectUserError(
      encodeFile(path.join(dir, 'nope'), path.join(dir, 'out'), {
        compression: 'none',
        encryption: none,
      }),
      /nope: no such file; check the path/,
    )
    await expectUserError(
      encodeFile(path.join(dir, 'db'), path.join(dir, 'no', 'such', 'out'), {
        compression: 'none',
        encryption: none,
      }),
      /its folder .* does not exist; create it first/,
    )
    await expectUserError(
      decodeFile(path.join(dir, 'db'), path.join(dir, 'db'), plainOpts()),
      /cannot decode a file onto itself/,
    )
  })
})

describe('detectFormat', () => {
  it.each([
    ['age-encryption.org/v1\n-> X25519', 'age'],
    ['-----BEGIN AGE ENCRYPTED FILE-----\n', 'age-armor'],
    ['-----BEGIN PGP MESSAGE-----\n', 'gpg-armor'],
    ['\x8c\x0d\x04\x09\x03\x02', 'gpg'],
    ['\x85\x01\x0c\x03', 'gpg'],
    ['\xc1\xc0\x4c\x03', 'gpg'],
    ['\x1f\x8b\x08\x00', 'gzip'],
    ['\x28\xb5\x2f\xfd\x04', 'zstd'],
    ['SQLite format 3\0', 'unknown'],
    ['PGDMP\x01\x0e', 'unknown'],
    ['', 'empty'],
  ])('%j is %s', (head, format) => {
    expect(detectFormat(Buffer.from(head, 'latin1'))).toBe(format)
  })
})
