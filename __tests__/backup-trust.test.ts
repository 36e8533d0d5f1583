/**
 * Whether a backup may be read is decided by this job's inputs, never by the backup's own
 * manifest: signed manifests (signing-key in the backup job, verify-key where backups are read),
 * the encryption a key-holding job expects, and artifact zips extracted only inside their folder.
 * Real backups of real SQLite files; each attack has a control that passes, so a test fails when
 * its defence goes.
 */
import { SECRET_INPUTS } from '../src/util/secrets.js'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { cli } from '../src/cli/cli.js'
import { generateAgeIdentity } from '../src/codec/index.js'
import { generateKeyPair, parseSigningKey } from '../src/manifest/signature.js'
import { extractZip, UnsafeZipError } from '../src/store/unzip.js'
import { buildZip } from './github-standin.js'
import { configFor, demoWorkspace, failed, query, run, tempDir } from './helpers.js'

const exec = promisify(execFile)
const hasOpenssl = await exec('openssl', ['version']).then(
  () => true,
  () => false,
)

async function backup(conversations: number, inputs: Record<string, string> = {}) {
  const ws = await demoWorkspace({ conversations, auditRows: 20 })
  const { report, log } = await run(
    'backup',
    { 'connection-string': ws.db, 'backup-dir': ws.backups, retention: 'off', ...inputs },
    ws.dir,
  )
  expect(report.error).toBeUndefined()
  const file = report.backup!.path
  return { ...ws, report, log, file, name: path.basename(file) }
}

const conversations = (db: string) => query(db, 'SELECT count(*) AS n FROM conversations')

/** A restore of `backupFile` over a fresh live database; returns the report and the live rows. */
async function restoreOver(backupFile: string, inputs: Record<string, string>) {
  const live = await demoWorkspace({ conversations: 2, auditRows: 2 })
  const before = await conversations(live.db)
  const { report } = await run(
    'restore',
    {
      'connection-string': live.db,
      'backup-dir': path.dirname(backupFile),
      'backup-file': backupFile,
      confirm: 'omniai.db',
      'allow-active-sessions': 'true',
      'scratch-dir': path.join(live.dir, 'scratch'),
      ...inputs,
    },
    live.dir,
  )
  return { report, before, after: await conversations(live.db) }
}

describe('signed manifests', () => {
  const key = generateKeyPair()

  it('backup signs the manifest; verify, drill and restore accept it with verify-key', async () => {
    const b = await backup(9, { 'signing-key': key.privatePem })
    expect((await fs.readdir(b.backups)).sort()).toEqual(
      [b.name, `${b.name}.manifest.json`, `${b.name}.manifest.json.sig`].sort(),
    )
    const sig = JSON.parse(await fs.readFile(`${b.file}.manifest.json.sig`, 'utf8'))
    expect(sig).toMatchObject({ format: 1, algorithm: 'ed25519', keyId: key.keyId })
    expect(b.report.checks.find((c) => c.name === 'signature')).toMatchObject({ ok: true })

    const v = await run('verify', { 'backup-dir': b.backups, 'verify-key': key.publicPem }, b.dir)
    expect(failed(v.report)).toEqual({})
    expect(v.report.checks[0]).toMatchObject({ name: 'signature', ok: true })
    const d = await run(
      'drill',
      { 'backup-dir': b.backups, 'verify-key': key.publicBase64, 'drill-log': 'none' },
      b.dir,
    )
    expect(failed(d.report)).toEqual({})
    const r = await restoreOver(b.file, { 'verify-key': key.publicPem })
    expect(r.report.error).toBeUndefined()
    expect(r.after).toEqual([{ n: 9n }])
  })

  it('an unsigned manifest is refused by verify, drill and restore, naming the backup and verify-key', async () => {
    const b = await backup(5)
    const unsigned = new RegExp(
      `^verify-key: ${b.name.replace(/\./g, '\\.')}'s manifest is not signed \\(no ${b.name.replace(/\./g, '\\.')}\\.manifest\\.json\\.sig beside it\\), and verify-key accepts only manifests signed by key ${key.keyId}\\. Fix:`,
    )
    const v = await run('verify', { 'backup-dir': b.backups, 'verify-key': key.publicPem }, b.dir)
    expect(failed(v.report).signature).toMatch(unsigned)
    // Not read at all: no checksum, no integrity check.
    expect(v.report.checks.map((c) => c.name)).toEqual(['signature'])
    const d = await run(
      'drill',
      { 'backup-dir': b.backups, 'verify-key': key.publicPem, 'drill-log': 'none' },
      b.dir,
    )
    expect(failed(d.report).signature).toMatch(unsigned)
    expect(d.report.checks.map((c) => c.name)).not.toContain('restore')
    const r = await restoreOver(b.file, { 'verify-key': key.publicPem })
    expect(r.report.error).toMatch(/^verify-key: .* is not signed .* Nothing was changed\. Fix: /)
    expect(r.after).toEqual(r.before)
    // Control: without verify-key the same backup is read and passes.
    const plain = await run('verify', { 'backup-dir': b.backups }, b.dir)
    expect(failed(plain.report)).toEqual({})
  })

  it('a manifest altered after signing is refused (another database swapped in, its digests with it)', async () => {
    const signed = await backup(9, { 'signing-key': key.privatePem })
    const other = await backup(3)
    // The attacker's backup under the signed backup's name, with a manifest that matches it.
    await fs.copyFile(other.file, signed.file)
    const m = JSON.parse(await fs.readFile(`${other.file}.manifest.json`, 'utf8'))
    m.backup.file = signed.name
    await fs.writeFile(`${signed.file}.manifest.json`, JSON.stringify(m, null, 2) + '\n')
    // Control: a whole, consistent backup; without verify-key it passes as if it were the real one.
    const blind = await run(
      'drill',
      { 'backup-dir': signed.backups, 'drill-log': 'none' },
      signed.dir,
    )
    expect(failed(blind.report)).toEqual({})
    expect(blind.report.database!.rows).toBeLessThan(signed.report.database!.rows)
    const v = await run(
      'drill',
      { 'backup-dir': signed.backups, 'verify-key': key.publicPem, 'drill-log': 'none' },
      signed.dir,
    )
    expect(failed(v.report).signature).toMatch(
      new RegExp(
        `^verify-key: ${signed.name.replace(/\./g, '\\.')}'s manifest was altered after it was signed \\(the signature by key ${key.keyId} does not match it\\)`,
      ),
    )
    const r = await restoreOver(signed.file, { 'verify-key': key.publicPem })
    expect(r.report.error).toMatch(/^verify-key: .* was altered after it was signed/)
    expect(r.after).toEqual(r.before)
  })

  it('a manifest signed by another key is refused; with both keys (a rotation) it passes', async () => {
    const mallory = generateKeyPair()
    const b = await backup(4, { 'signing-key': mallory.privatePem })
    const v = await run('verify', { 'backup-dir': b.backups, 'verify-key': key.publicPem }, b.dir)
    expect(failed(v.report).signature).toMatch(
      new RegExp(
        `'s manifest is signed by another key \\(${mallory.keyId}\\), not by verify-key \\(${key.keyId}\\)\\. Fix:`,
      ),
    )
    const both = await run(
      'verify',
      { 'backup-dir': b.backups, 'verify-key': `${key.publicBase64}\n${mallory.publicPem}` },
      b.dir,
    )
    expect(failed(both.report)).toEqual({})
  })

  it('the backup job with both keys finds a key pair that does not match the night it is set up', async () => {
    const other = generateKeyPair()
    const b = await backup(3, { 'signing-key': key.privatePem, 'verify-key': other.publicPem })
    expect(failed(b.report).signature).toMatch(/signed by another key/)
    expect(b.report.ok).toBe(false)
  })

  it.skipIf(!hasOpenssl)(
    'openssl makes the key, and checks the signature without this action',
    async () => {
      const dir = await tempDir()
      const pem = path.join(dir, 'signing-key.pem')
      const pub = path.join(dir, 'verify-key.pem')
      await exec('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', pem])
      await exec('openssl', ['pkey', '-in', pem, '-pubout', '-out', pub])
      const b = await backup(4, { 'signing-key': await fs.readFile(pem, 'utf8') })
      const manifest = `${b.file}.manifest.json`
      const sig = JSON.parse(await fs.readFile(`${manifest}.sig`, 'utf8'))
      const sigBin = path.join(dir, 'sig.bin')
      await fs.writeFile(sigBin, Buffer.from(sig.signature, 'base64'))
      const verify = (file: string) =>
        exec('openssl', [
          'pkeyutl',
          '-verify',
          '-pubin',
          '-inkey',
          pub,
          '-rawin',
          '-in',
          file,
          '-sigfile',
          sigBin,
        ]).then(
          (r) => r.stdout,
          (e: { stdout: string }) => `failed: ${e.stdout}`,
        )
      expect(await verify(manifest)).toMatch(/Signature Verified Successfully/)
      // Control: one byte changed, and openssl says no.
      const altered = path.join(dir, 'altered.json')
      await fs.writeFile(
        altered,
        (await fs.readFile(manifest, 'utf8')).replace('"format": 1', '"format":  1'),
      )
      expect(await verify(altered)).toMatch(/^failed: /)
      const v = await run(
        'verify',
        { 'backup-dir': b.backups, 'verify-key': await fs.readFile(pub, 'utf8') },
        b.dir,
      )
      expect(failed(v.report)).toEqual({})
    },
  )

  it('keys: the raw forms are accepted, wrong ones refused with a one-line error that never shows them', async () => {
    const dir = await tempDir()
    const seed = Buffer.from(
      (await import('node:crypto'))
        .createPrivateKey(key.privatePem)
        .export({ format: 'der', type: 'pkcs8' })
        .subarray(-32),
    ).toString('base64')
    expect(parseSigningKey(seed, 'signing-key').keyId).toBe(key.keyId)
    const refusedWith = (mode: string, inputs: Record<string, string>) => {
      try {
        configFor(mode, inputs, dir)
      } catch (err) {
        return (err as Error).message
      }
      return 'accepted'
    }
    const secret = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=='
    const rsa = (await import('node:crypto'))
      .generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString()
    for (const bad of [secret, rsa, 'not a key']) {
      const message = refusedWith('backup', { 'signing-key': bad })
      expect(message).toMatch(
        /^signing-key: not an? .*Fix: generate a key pair with "npx omniai-backup keygen"/,
      )
      if (bad.length > 30) expect(message).not.toContain(bad.slice(10, 30))
      expect(message.split('\n')).toHaveLength(1)
    }
    expect(refusedWith('drill', { 'signing-key': key.privatePem })).toMatch(
      /^signing-key: drill signs nothing, and the private key belongs only in the backup job\. Fix:/,
    )
    expect(refusedWith('verify', { 'verify-key': key.privatePem })).toMatch(
      /^verify-key: holds a private key\. Fix:/,
    )
    expect(refusedWith('verify', { 'verify-key': 'AAAA' })).toMatch(
      /^verify-key: not an Ed25519 public key .*Fix:/,
    )
    expect(refusedWith('verify', { 'backup-workflow': 'nightly.yml' })).toMatch(
      /^backup-workflow: only applies to artifacts, and download-artifact is not true\. Fix:/,
    )
    expect(
      refusedWith('verify', { 'download-artifact': 'true', 'backup-workflow': '../x/nightly.yml' }),
    ).toMatch(/^backup-workflow: "\.\.\/x\/nightly\.yml" is not a workflow file name\. Fix:/)
    expect(refusedWith('verify', { 'download-artifact': 'true', 'artifact-id': 'latest' })).toMatch(
      /^artifact-id: "latest" is not an artifact id\. Fix:/,
    )
  })

  it('the private key is a secret input: masked, kept off the CLI command line, in no report or log', async () => {
    // secrets.ts names every secret input once (masking, the CLI's -file and OMNIAI_ variables,
    // children's environments).
    expect(SECRET_INPUTS).toContain('signing-key')
    const b = await backup(3, { 'signing-key': key.privatePem })
    const body = key.privatePem.split('\n')[1]!
    const everything = JSON.stringify(b.report) + b.log.lines.join('\n') + b.log.warnings.join('\n')
    expect(everything).not.toContain(body)
  })

  it('keygen writes the private key to a new 0600 file and prints only the public key', async () => {
    const dir = await tempDir()
    const out = path.join(dir, 'signing-key.pem')
    const printed: string[] = []
    const spy = vi.spyOn(console, 'log').mockImplementation((m: string) => void printed.push(m))
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      expect(await cli(['keygen', '--out', out])).toBe(0)
      expect(await cli(['keygen', '--out', out])).toBe(2) // never overwritten
    } finally {
      spy.mockRestore()
      errors.mockRestore()
    }
    const pem = await fs.readFile(out, 'utf8')
    expect((await fs.stat(out)).mode & 0o777).toBe(0o600)
    const signing = parseSigningKey(pem, 'signing-key')
    const text = printed.join('\n')
    expect(text).toContain(`key id ${signing.keyId}`)
    expect(text).toMatch(/-----BEGIN PUBLIC KEY-----/)
    expect(text).not.toContain(pem.split('\n')[1]!)
    // What it printed works as verify-key for what the private key signs.
    const publicPem = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/.exec(text)![0]
    const b = await backup(3, { 'signing-key': pem, 'verify-key': publicPem })
    expect(failed(b.report)).toEqual({})
  })
})

describe('encryption is what the job expects, not what the manifest says', () => {
  const age = generateAgeIdentity()

  it('a job holding age-identity refuses a plaintext backup put in place of the encrypted one', async () => {
    const ws = await demoWorkspace({ conversations: 8, auditRows: 20 })
    const common = { 'connection-string': ws.db, 'backup-dir': ws.backups, retention: 'off' }
    const { report: enc } = await run(
      'backup',
      { ...common, encryption: 'age', 'age-recipients': age.recipient },
      ws.dir,
    )
    // Control: the drill with the recovery key passes on the encrypted backup, and says why.
    const good = await run(
      'drill',
      { 'backup-dir': ws.backups, 'age-identity': age.identity, 'drill-log': 'none' },
      ws.dir,
    )
    expect(failed(good.report)).toEqual({})
    expect(good.report.checks.find((c) => c.name === 'encryption')!.detail).toMatch(
      /is age-encrypted, as this job's age-identity expects/,
    )
    // The attack: a newer plaintext backup whose manifest says "encryption: none".
    const later = () => new Date(Date.parse(enc.startedAt) + 60_000)
    const { report: plain } = await run('backup', common, ws.dir, later)
    expect(plain.backup!.path).not.toBe(enc.backup!.path)
    const name = path.basename(plain.backup!.path).replace(/\./g, '\\.')
    const refusal = new RegExp(
      `^age-identity: ${name} is not encrypted \\(its manifest says encryption: none\\), and this job holds age-identity, so it reads only age-encrypted backups: .*it was not read\\. Fix:`,
    )
    const d = await run(
      'drill',
      { 'backup-dir': ws.backups, 'age-identity': age.identity, 'drill-log': 'none' },
      ws.dir,
    )
    expect(failed(d.report).encryption).toMatch(refusal)
    expect(d.report.checks.map((c) => c.name)).toEqual(['encryption'])
    const v = await run(
      'verify',
      { 'backup-dir': ws.backups, 'age-identity': age.identity },
      ws.dir,
    )
    expect(failed(v.report).encryption).toMatch(refusal)
    const r = await restoreOver(plain.backup!.path, { 'age-identity': age.identity })
    expect(r.report.error).toMatch(
      /^age-identity: .* is not encrypted .* Nothing was changed\. Fix:/,
    )
    expect(r.after).toEqual(r.before)
    // Control: without a key, the same plaintext backup is read as before.
    const keyless = await run('verify', { 'backup-dir': ws.backups }, ws.dir)
    expect(failed(keyless.report)).toEqual({})
    expect(keyless.report.checks.map((c) => c.name)).not.toContain('encryption')
  })

  it('gpg-passphrase and age-passphrase set the same expectation', async () => {
    const b = await backup(3)
    for (const [input, value] of [
      ['gpg-passphrase', 'correct horse battery staple'],
      ['age-passphrase', 'correct horse battery staple'],
    ] as const) {
      const v = await run('verify', { 'backup-dir': b.backups, [input]: value }, b.dir)
      expect(failed(v.report).encryption).toMatch(new RegExp(`^${input}: .* is not encrypted`))
    }
  })
})

describe('extractZip: every entry stays inside its folder', () => {
  const data = Buffer.from('backup bytes\n')

  /** Replaces every occurrence of `from` in the zip by `to` (same length: names in both headers). */
  const patch = (zip: Buffer, from: string, to: string) => {
    const a = Buffer.from(from)
    for (let i = zip.indexOf(a); i >= 0; i = zip.indexOf(a, i + 1)) Buffer.from(to).copy(zip, i)
    return zip
  }
  /** Sets an entry's unix file type in the central directory (external attributes). */
  const withMode = (zip: Buffer, name: string, mode: number) => {
    const n = Buffer.from(name)
    for (let i = zip.indexOf(n); i >= 0; i = zip.indexOf(n, i + 1)) {
      if (i >= 46 && zip.readUInt32LE(i - 46) === 0x02014b50)
        zip.writeUInt32LE((mode << 16) >>> 0, i - 8)
    }
    return zip
  }

  const unsafe: [string, () => Buffer, RegExp][] = [
    [
      'a ".." path',
      () => buildZip({ '../x.txt': data }),
      /entry "\.\.\/x\.txt" has a "\.\." segment/,
    ],
    ['".." after a folder', () => buildZip({ 'a/../../x.txt': data }), /has a "\.\." segment/],
    ['an absolute path', () => buildZip({ '/tmp/x.txt': data }), /has an absolute path/],
    ['a drive letter', () => buildZip({ 'C:/x.txt': data }), /has a drive letter/],
    [
      'a backslash',
      () => patch(buildZip({ 'a|..|x.txt': data }), 'a|..|x.txt', 'a\\..\\x.txt'),
      /has a backslash/,
    ],
    [
      'a symbolic link',
      () => withMode(buildZip({ 'link.db': Buffer.from('/etc/passwd') }), 'link.db', 0o120777),
      /is a symbolic link/,
    ],
    [
      'names equal but for case',
      () => buildZip({ 'omniai.db': data, 'OMNIAI.db': data }),
      /appears twice/,
    ],
    [
      'another name in its local header',
      () => {
        // Only the local header gets the bad name: streaming readers (unzip-stream) go by it.
        const zip = buildZip({ 'okay.txt': data })
        Buffer.from('../k.txt').copy(zip, 30)
        return zip
      },
      /has another name in its header/,
    ],
  ]

  it.each(unsafe)(
    'an entry with %s is refused before anything is written',
    async (_what, make, why) => {
      const dir = await tempDir()
      const zipFile = path.join(dir, 'artifact.zip')
      await fs.writeFile(zipFile, make())
      const dest = path.join(dir, 'out', 'backup')
      await fs.mkdir(path.dirname(dest))
      const err = await extractZip(zipFile, dest).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnsafeZipError)
      expect((err as Error).message).toMatch(why)
      await expect(fs.access(dest)).rejects.toThrow()
      expect(await fs.readdir(path.dirname(dest))).toEqual([])
      await expect(fs.access(path.join(dir, 'x.txt'))).rejects.toThrow()
      await expect(fs.access(path.join(dir, 'out', 'x.txt'))).rejects.toThrow()
    },
  )

  it('an entry that inflates past its stated size is cut off', async () => {
    const dir = await tempDir()
    const zip = buildZip({ 'big.db': Buffer.alloc(100_000, 1) })
    // The central directory's uncompressed size says 10 bytes.
    const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]))
    zip.writeUInt32LE(10, cd + 24)
    await fs.writeFile(path.join(dir, 'a.zip'), zip)
    await expect(extractZip(path.join(dir, 'a.zip'), path.join(dir, 'out'))).rejects.toThrow(
      /inflates past its stated size/,
    )
  })

  it('control: a backup artifact (a file, a pg_dump folder, manifest, signature) extracts whole', async () => {
    const dir = await tempDir()
    const files = {
      'omniai-2026-11-29.db': Buffer.alloc(70_000, 7),
      'omniai-2026-11-29.db.manifest.json': Buffer.from('{}\n'),
      'omniai-2026-11-29.db.manifest.json.sig': Buffer.from('{}\n'),
      'omniai-2026-11-29.dumpdir/toc.dat': Buffer.from('toc'),
      'omniai-2026-11-29.dumpdir/3001.dat.gz': Buffer.alloc(0),
    }
    await fs.writeFile(path.join(dir, 'a.zip'), buildZip(files))
    const dest = path.join(dir, 'backup')
    await extractZip(path.join(dir, 'a.zip'), dest)
    for (const [name, bytes] of Object.entries(files)) {
      expect(await fs.readFile(path.join(dest, name))).toEqual(bytes)
    }
  })
})
