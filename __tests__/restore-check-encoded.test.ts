// restore-check of an encoded backup. A backup this job can open (compressed only, or encrypted
// with a passphrase) is decoded back from the stored file, which must read as it was written
// and decode to its snapshot, and the decoded copy is what is restored and checked. (One
// encrypted to a public key is checked from its plaintext snapshot: restore-check.test.ts.)
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, inject, it, vi } from 'vitest'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { readManifest } from '../src/manifest/manifest.js'
import { demoWorkspace, failed, run, tempDir } from './helpers.js'
import { onDatabase, pgQuery } from './pg-cluster.js'

// The real codec; with `fault` set, encodeFile misbehaves as a faulty disk or encoder would.
const fault = vi.hoisted(() => ({
  kind: null as null | 'stored-changed' | 'wrong-plaintext' | 'scratch-eio' | 'scratch-flip',
}))
vi.mock('../src/codec/index.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/codec/index.js')>()
  const encodeFile: typeof real.encodeFile = async (src, dest, opts) => {
    if (fault.kind === 'wrong-plaintext') {
      // An encoder that reports the snapshot's digests but stores other bytes (a byte changed
      // in the middle of the plaintext it read).
      const copy = `${src}.other`
      const bytes = await fs.readFile(src)
      bytes[bytes.length >> 1] ^= 0x01
      await fs.writeFile(copy, bytes)
      const digests = await real.encodeFile(copy, dest, opts)
      await fs.rm(copy)
      const honest = await real.encodeFile(src, `${dest}.honest`, opts)
      await fs.rm(`${dest}.honest`)
      return { ...digests, plainSha256: honest.plainSha256, plainBytes: honest.plainBytes }
    }
    const digests = await real.encodeFile(src, dest, opts)
    if (fault.kind === 'stored-changed') {
      // A byte of the stored file changes after it was hashed (the disk, another process).
      const handle = await fs.open(dest, 'r+')
      const at = Math.floor(digests.bytes / 2)
      const b = Buffer.alloc(1)
      await handle.read(b, 0, 1, at)
      b[0]! ^= 0x01
      await handle.write(b, 0, 1, at)
      await handle.close()
    }
    return digests
  }
  // scratch-dir's disk failing while the stored file is decoded back into it: a write error, or
  // a byte it does not keep (after the decoder hashed what it wrote).
  const decodeFile: typeof real.decodeFile = async (src, dest, opts) => {
    if (fault.kind === 'scratch-eio') {
      throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO', syscall: 'write' })
    }
    const digests = await real.decodeFile(src, dest, opts)
    if (fault.kind === 'scratch-flip') {
      const bytes = await fs.readFile(dest)
      bytes[bytes.length >> 1]! ^= 0x01
      await fs.writeFile(dest, bytes)
    }
    return digests
  }
  return { ...real, encodeFile, decodeFile }
})

/** A zstd backup with restore-check into `backupDir`, with `kind` of fault while it runs. */
async function backupWith(
  kind: typeof fault.kind,
  ws: { dir: string; db: string },
  backupDir: string,
  restoreCheck = 'true',
) {
  fault.kind = kind
  try {
    const { report } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': backupDir,
        'restore-check': restoreCheck,
        compression: 'zstd',
      },
      ws.dir,
    )
    return report
  } finally {
    fault.kind = null
  }
}

const ways: [string, Record<string, string>, RegExp][] = [
  ['zstd', { compression: 'zstd' }, /\.db\.zst$/],
  ['gzip', { compression: 'gzip' }, /\.db\.gz$/],
  [
    'age with a passphrase',
    { encryption: 'age', 'age-passphrase': 'correct horse battery staple' },
    /\.db\.age$/,
  ],
]

describe('restore-check of an encoded backup', () => {
  for (const [name, inputs, file] of ways) {
    it(`${name}: the stored file is decoded back, and that is what is restored and checked`, async () => {
      const { dir, db, backups } = await demoWorkspace()
      const { report } = await run(
        'backup',
        { 'connection-string': db, 'backup-dir': backups, 'restore-check': 'true', ...inputs },
        dir,
      )
      expect(failed(report)).toEqual({})
      expect(report.backup!.path).toMatch(file)
      const check = report.checks.find((c) => c.name === 'restore-check')!
      expect(check.detail).toMatch(
        /^decoded back from the stored file \(sha256 and plaintext as written\), then restored into a scratch copy and checked: .*audit-log/,
      )
      const m = await readManifest(`${report.backup!.path}.manifest.json`)
      expect(m.restoreChecked).toMatchObject({ from: 'stored' })
      // Only the encoded file and its manifest are left; no plaintext anywhere.
      expect((await fs.readdir(backups)).sort()).toEqual(
        [
          path.basename(report.backup!.path),
          `${path.basename(report.backup!.path)}.manifest.json`,
        ].sort(),
      )
      expect((await fs.readdir(dir)).filter((f) => /^omniai-(drill|backup)-/.test(f))).toEqual([
        'omniai-backup-report.json',
      ])
    })
  }

  const faults: [NonNullable<typeof fault.kind>, RegExp][] = [
    [
      'stored-changed',
      /^restore-check failed: the stored file reads back as sha256 [0-9a-f]{12}… \(\d+ bytes\), written as [0-9a-f]{12}… \(\d+ bytes\)$/,
    ],
    [
      'wrong-plaintext',
      /^restore-check failed: the stored file decodes to sha256 [0-9a-f]{12}… \(\d+ bytes\), where its snapshot was [0-9a-f]{12}… \(\d+ bytes\)$/,
    ],
  ]
  for (const [kind, said] of faults) {
    it(`a stored file that does not decode to its snapshot (${kind}) is kept only as damaged, and the job fails`, async () => {
      const ws = await demoWorkspace()
      const report = await backupWith(kind, ws, ws.backups)
      expect(report.ok).toBe(false)
      expect(report.backup!.path).toMatch(/-damaged\.db\.zst$/)
      const m = await readManifest(`${report.backup!.path}.manifest.json`)
      expect(m.damaged).toEqual([expect.stringMatching(said)])
      expect(m.restoreChecked).toBeUndefined()
      // Positive control: without restore-check the same fault goes unseen tonight.
      const unchecked = await backupWith(kind, ws, path.join(ws.dir, 'b2'), 'false')
      expect(unchecked.ok).toBe(true)
    })
  }
})

describe('restore-check of an encoded backup when scratch-dir fails', () => {
  const faults: [NonNullable<typeof fault.kind>, RegExp][] = [
    [
      'scratch-eio',
      /^scratch-dir: the stored backup could not be decoded into .*: Error: EIO: i\/o error, write$/,
    ],
    [
      'scratch-flip',
      /^scratch-dir: the restored copy differs from the backup it was copied from .*the disk under scratch-dir did not keep it/,
    ],
  ]
  for (const [kind, said] of faults) {
    it(`${kind}: the check did not run; the sound stored backup is kept unproven, not damaged`, async () => {
      const { dir, db, backups } = await demoWorkspace()
      const report = await backupWith(kind, { dir, db }, backups)
      expect(report.ok).toBe(false)
      expect(failed(report)['restore-check']).toMatch(said)
      expect(report.backup!.path).toMatch(/\d\.db\.zst$/)
      const m = await readManifest(`${report.backup!.path}.manifest.json`)
      expect(m.damaged).toBeUndefined()
      expect(m.restoreChecked).toBeUndefined()
      expect(report.warnings.join('\n')).toMatch(/^restore-check: not run, scratch-dir: /m)
      // The stored backup is sound: verify reads it whole.
      const verify = await run('verify', { 'backup-dir': backups }, dir)
      expect(failed(verify.report)).toEqual({})
    })
  }
})

const source = inject('pgSource')
const restoreServer = inject('pgRestore')

describe.skipIf(!source)('restore-check of an encoded PostgreSQL backup', () => {
  it('zstd: the stored dump is decoded back and restored; a stored dump changed after it was hashed fails', async () => {
    const name = `omniai_rce${process.pid}`
    await pgQuery(source, `DROP DATABASE IF EXISTS ${name}`)
    await pgQuery(source, `CREATE DATABASE ${name}`)
    const url = onDatabase(source, name)
    await generatePostgresDemo(url, { conversations: 20, auditRows: 200 })
    const dir = await tempDir()
    const inputs = {
      'connection-string': url,
      'restore-check': 'true',
      'restore-connection-string': restoreServer,
      compression: 'zstd',
    }
    const { report } = await run('backup', { ...inputs, 'backup-dir': path.join(dir, 'good') }, dir)
    expect(failed(report)).toEqual({})
    expect(report.checks.find((c) => c.name === 'restore-check')!.detail).toMatch(
      /^decoded back from the stored file .*, then restored into a scratch copy and checked: .*audit-log/,
    )
    const m = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(m.restoreChecked).toMatchObject({ from: 'stored' })
    fault.kind = 'stored-changed'
    let bad
    try {
      ;({ report: bad } = await run(
        'backup',
        { ...inputs, 'backup-dir': path.join(dir, 'bad') },
        dir,
      ))
    } finally {
      fault.kind = null
    }
    expect(bad.ok).toBe(false)
    expect(bad.backup!.path).toMatch(/-damaged\.dump\.zst$/)
    expect(failed(bad)['restore-check']).toMatch(/^the stored file reads back as sha256 /)
  })
})
