/**
 * The safety backup taken before a restore holds the live database, the same users' data as
 * the backups it protects: it is encrypted as they are, or the restore refuses.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectFileFormat, generateAgeIdentity } from '../src/codec/index.js'
import { readManifest } from '../src/manifest/manifest.js'
import { demoWorkspace, failed, query, run, sql } from './helpers.js'

const execFileAsync = promisify(execFile)

/** A live demo database, a backup of it made with `backupInputs`, then one more audit row. */
async function liveWithBackup(backupInputs: Record<string, string>) {
  const ws = await demoWorkspace({ conversations: 20, auditRows: 50 })
  const inputs = { 'connection-string': ws.db, 'backup-dir': ws.backups }
  const { report } = await run('backup', { ...inputs, ...backupInputs }, ws.dir)
  expect(report.error).toBeUndefined()
  await sql(ws.db, "INSERT INTO audit_logs (ts, action) VALUES ('2026-11-27T00:00:00Z', 'live')")
  return { ...ws, inputs, backup: report.backup!.path }
}

const auditRows = async (db: string) =>
  Number(((await query(db, 'SELECT count(*) AS n FROM audit_logs'))[0] as { n: bigint }).n)

describe('safety backup before a restore', () => {
  it('of an age backup: encrypted to the recipients its manifest records, and the undo reads it', async () => {
    const key = generateAgeIdentity()
    // A second recipient (an escrow key) the restoring job does not hold.
    const escrow = generateAgeIdentity()
    const ws = await liveWithBackup({
      encryption: 'age',
      compression: 'zstd',
      'age-recipients': `${key.recipient}\n${escrow.recipient}`,
    })
    const { report } = await run(
      'restore',
      { ...ws.inputs, confirm: 'omniai.db', 'age-identity': key.identity },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.restore!.plan.join('\n')).toContain(
      `, encrypted with age to ${key.recipient}, ${escrow.recipient}, as the backup restored (manifest included`,
    )
    const safety = report.restore!.safetyBackup!
    expect(safety).toMatch(/pre-restore\/omniai-pre-restore-\d{4}-\d\d-\d\d\.db\.zst\.age$/)
    expect(await detectFileFormat(safety)).toBe('age')
    expect((await readManifest(`${safety}.manifest.json`)).backup).toMatchObject({
      encryption: 'age',
      compression: 'zstd',
      recipients: [key.recipient, escrow.recipient],
    })
    // No plaintext copy of the live database anywhere in backup-dir.
    const files = await fs.readdir(path.dirname(safety))
    for (const f of files.filter((f) => !f.endsWith('.manifest.json'))) {
      expect([f, await detectFileFormat(path.join(path.dirname(safety), f))]).toEqual([f, 'age'])
    }
    expect(await auditRows(ws.db)).toBe(50)
    const undo = await run(
      'restore',
      {
        ...ws.inputs,
        'backup-dir': path.dirname(safety),
        'backup-file': safety,
        confirm: 'omniai.db',
        'age-identity': key.identity,
      },
      ws.dir,
    )
    expect(failed(undo.report)).toEqual({})
    expect(await auditRows(ws.db)).toBe(51)
  })

  it('of a passphrase age backup: encrypted with the same passphrase', async () => {
    const ws = await liveWithBackup({ encryption: 'age', 'age-passphrase': 'correct horse' })
    const { report } = await run(
      'restore',
      { ...ws.inputs, confirm: 'omniai.db', 'age-passphrase': 'correct horse' },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.restore!.plan.join('\n')).toContain('encrypted with age to age-passphrase')
    expect(await detectFileFormat(report.restore!.safetyBackup!)).toBe('age')
  })

  it('of an unencrypted backup: unencrypted, as it was', async () => {
    const ws = await liveWithBackup({})
    const { report } = await run('restore', { ...ws.inputs, confirm: 'omniai.db' }, ws.dir)
    expect(failed(report)).toEqual({})
    expect(report.restore!.plan.join('\n')).toMatch(
      /\nback up the current omniai\.db into .*pre-restore \(manifest included/,
    )
    expect(report.restore!.safetyBackup).toMatch(/\.db$/)
    expect(report.warnings).toEqual([])
  })

  describe('gpg', () => {
    let home: string
    let fingerprint: string

    beforeAll(async () => {
      home = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-gpg-'))
      await execFileAsync('gpg', [
        '--homedir',
        home,
        '--batch',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--quick-gen-key',
        'OmniAI Safety Test <safety@example.invalid>',
        'future-default',
        'default',
        'never',
      ])
      const { stdout } = await execFileAsync('gpg', [
        '--homedir',
        home,
        '--with-colons',
        '--list-keys',
      ])
      fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(stdout)![1]!
    })

    afterAll(async () => {
      await execFileAsync('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => {})
      await fs.rm(home, { recursive: true, force: true })
    })

    it('encrypted to the gpg recipient its manifest records', async () => {
      const ws = await liveWithBackup({
        encryption: 'gpg',
        'gpg-recipient': fingerprint,
        'gpg-homedir': home,
      })
      expect((await readManifest(`${ws.backup}.manifest.json`)).backup.gpgRecipient).toBe(
        fingerprint,
      )
      const { report } = await run(
        'restore',
        { ...ws.inputs, confirm: 'omniai.db', 'gpg-homedir': home },
        ws.dir,
      )
      expect(failed(report)).toEqual({})
      const safety = report.restore!.safetyBackup!
      expect(safety).toMatch(/\.db\.gpg$/)
      expect(await detectFileFormat(safety)).toBe('gpg')
      expect((await readManifest(`${safety}.manifest.json`)).backup.gpgRecipient).toBe(fingerprint)
    })

    it('with no recipient recorded and no key to encrypt with: refused, saying how to allow it; allowed, it warns', async () => {
      const ws = await liveWithBackup({
        encryption: 'gpg',
        'gpg-recipient': fingerprint,
        'gpg-homedir': home,
      })
      // A manifest from before recipients were recorded.
      const manifestFile = `${ws.backup}.manifest.json`
      const manifest = JSON.parse(await fs.readFile(manifestFile, 'utf8'))
      delete manifest.backup.gpgRecipient
      await fs.writeFile(manifestFile, JSON.stringify(manifest))
      const before = await fs.readFile(ws.db)
      const marker = path.join(ws.dir, 'stopped')
      const restore = (extra: Record<string, string>) =>
        run(
          'restore',
          {
            ...ws.inputs,
            confirm: 'omniai.db',
            'gpg-homedir': home,
            'stop-command': `touch ${marker}`,
            ...extra,
          },
          ws.dir,
        )

      const dry = await restore({ 'dry-run': 'true' })
      expect(dry.report.warnings.join('\n')).toMatch(/^allow-unencrypted-safety-backup: /m)

      const { report } = await restore({})
      expect(report.error).toMatch(
        /^allow-unencrypted-safety-backup: omniai-.*\.db\.gpg is gpg-encrypted, but its manifest records no gpg recipient .* in plaintext\. Fix: set gpg-passphrase .*, or set allow-unencrypted-safety-backup: true; nothing was changed\.$/,
      )
      expect((await fs.readFile(ws.db)).equals(before)).toBe(true)
      await expect(fs.access(marker)).rejects.toThrow()
      await expect(fs.access(path.join(ws.backups, 'pre-restore'))).rejects.toThrow()

      const allowed = await restore({ 'allow-unencrypted-safety-backup': 'true' })
      expect(failed(allowed.report)).toEqual({})
      expect(allowed.report.restore!.plan.join('\n')).toContain(
        'UNENCRYPTED (allow-unencrypted-safety-backup: true)',
      )
      expect(allowed.report.warnings.join('\n')).toMatch(
        /the safety backup of the live database is UNENCRYPTED \(allow-unencrypted-safety-backup: true\)/,
      )
      expect(await detectFileFormat(allowed.report.restore!.safetyBackup!)).toBe('unknown')
    })

    it('with no recipient recorded but gpg-passphrase: encrypted symmetrically with it', async () => {
      const ws = await liveWithBackup({
        encryption: 'gpg',
        'gpg-passphrase': 's3cret',
        'gpg-homedir': home,
      })
      const { report } = await run(
        'restore',
        { ...ws.inputs, confirm: 'omniai.db', 'gpg-passphrase': 's3cret', 'gpg-homedir': home },
        ws.dir,
      )
      expect(failed(report)).toEqual({})
      expect(await detectFileFormat(report.restore!.safetyBackup!)).toBe('gpg')
    })
  })

  it('a live file the backup cannot open is copied byte for byte, encrypted, with an undo that decrypts it', async () => {
    const key = generateAgeIdentity()
    const ws = await liveWithBackup({
      encryption: 'age',
      compression: 'gzip',
      'age-recipients': key.recipient,
    })
    await fs.writeFile(ws.db, 'not a database at all')
    await fs.rm(`${ws.db}-wal`, { force: true })
    await fs.rm(`${ws.db}-shm`, { force: true })
    const { report } = await run(
      'restore',
      { ...ws.inputs, confirm: 'omniai.db', 'age-identity': key.identity },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    const safety = report.restore!.safetyBackup!
    expect(safety).toMatch(/-raw\.db\.gz\.age$/)
    expect(await detectFileFormat(safety)).toBe('age')
    expect(report.restore!.undo).toBe(
      `stop the backend, then age -d -i <recovery key file> ${safety} | gunzip > ${ws.db} (and age -d -i <recovery key file> ${safety.replace(/\.db\.gz\.age$/, '.db-wal.gz.age')} | gunzip > ${ws.db}-wal if that file exists)`,
    )
    // The undo works with the standard tools.
    const keyFile = path.join(ws.dir, 'key.txt')
    await fs.writeFile(keyFile, key.identity)
    const { stdout } = await execFileAsync('sh', ['-c', `age -d -i ${keyFile} ${safety} | gunzip`])
    expect(stdout).toBe('not a database at all')
  })
})
