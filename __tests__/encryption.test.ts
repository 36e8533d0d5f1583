/**
 * Encryption at rest through the modes: the nightly backup holds only the public key, the
 * drill decrypts with the recovery key and says so, nothing plaintext lands in backup-dir, and
 * no key reaches a report or log.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateAgeIdentity } from '../src/codec/index.js'
import { readManifest } from '../src/manifest/manifest.js'
import { renderSummary } from '../src/report/report.js'
import { configFor, demoWorkspace, failed, query, run } from './helpers.js'

async function encryptedBackup(compression = 'zstd') {
  const ws = await demoWorkspace({ conversations: 30, auditRows: 200 })
  const key = generateAgeIdentity()
  const { report, log } = await run(
    'backup',
    {
      'connection-string': ws.db,
      'backup-dir': ws.backups,
      encryption: 'age',
      compression,
      'age-recipients': key.recipient,
    },
    ws.dir,
  )
  expect(report.error).toBeUndefined()
  expect(report.ok).toBe(true)
  return { ...ws, key, report, log }
}

describe('encrypted backups', () => {
  it('backup writes only the encrypted file, and the manifest proves both it and the plaintext', async () => {
    const { backups, key, report } = await encryptedBackup()
    expect(report.backup!.path).toMatch(/omniai-\d{4}-\d\d-\d\d\.db\.zst\.age$/)
    expect((await fs.readFile(report.backup!.path)).subarray(0, 21).toString()).toBe(
      'age-encryption.org/v1',
    )
    expect((await fs.readdir(backups)).sort()).toEqual([
      path.basename(report.backup!.path),
      `${path.basename(report.backup!.path)}.manifest.json`,
    ])
    const m = await readManifest(`${report.backup!.path}.manifest.json`)
    expect(m.backup).toMatchObject({
      encryption: 'age',
      compression: 'zstd',
      recipients: [key.recipient],
      sha256: report.backup!.sha256,
    })
    expect(m.backup.plain!.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(m.backup.plain!.sha256).not.toBe(m.backup.sha256)
  })

  it('verify without the recovery key proves the stored file and says what it could not do', async () => {
    const { dir, backups } = await encryptedBackup()
    const { report } = await run('verify', { 'backup-dir': backups }, dir)
    expect(report.ok).toBe(true)
    expect(report.checks.map((c) => c.name)).toEqual(['checksum', 'backup-age'])
    expect(report.warnings.join()).toMatch(
      /not decrypted: age-identity: .* is age-encrypted \(to age1/,
    )
  })

  it('the drill decrypts with the recovery key, restores, and records that the key works', async () => {
    const { dir, backups, key } = await encryptedBackup()
    const drillLog = path.join(dir, 'drills.jsonl')
    const { report, log } = await run(
      'drill',
      { 'backup-dir': backups, 'age-identity': key.identity, 'drill-log': drillLog },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.checks.map((c) => c.name)).toEqual([
      'checksum',
      'encryption',
      'decrypt',
      'integrity',
      'foreign-keys',
      'schema',
      'row-counts',
      'spot-check',
      'audit-log',
      'restore-time',
      'backup-age',
    ])
    expect(report.checks[2]!.detail).toMatch(
      /^decrypted with the recovery key \(age, zstd\); plaintext sha256 .* match the manifest/,
    )
    expect(JSON.parse((await fs.readFile(drillLog, 'utf8')).trim())).toMatchObject({
      ok: true,
      decrypted: true,
    })
    const everything =
      JSON.stringify(report) +
      renderSummary(report) +
      log.lines.join('\n') +
      log.warnings.join('\n')
    expect(everything).not.toContain(key.identity)
  })

  it('a wrong recovery key fails the drill on decrypt, and leaves no plaintext behind', async () => {
    const { dir, backups } = await encryptedBackup('none')
    const scratch = path.join(dir, 'scratch')
    const { report } = await run(
      'drill',
      {
        'backup-dir': backups,
        'age-identity': generateAgeIdentity().identity,
        'scratch-dir': scratch,
        'drill-log': 'none',
      },
      dir,
    )
    expect(report.ok).toBe(false)
    expect(failed(report).decrypt).toMatch(/^age-identity: /)
    expect(failed(report).restore).toMatch(/could not be decoded/)
    expect(report.decrypted).toBe(false)
    expect(await fs.readdir(scratch)).toEqual([])
  })

  it('a drill without the key says which key it needs', async () => {
    const { dir, backups, key } = await encryptedBackup('none')
    const { report } = await run('drill', { 'backup-dir': backups, 'drill-log': 'none' }, dir)
    expect(failed(report).decrypt).toContain(
      `is age-encrypted (to ${key.recipient}); reading it needs the recovery key. Fix: pass the AGE-SECRET-KEY-1... key from a secret as age-identity`,
    )
  })

  it('restore decrypts, verifies and puts the backup back', async () => {
    const { dir, db, backups, key } = await encryptedBackup('gzip')
    await fs.rm(db)
    const { report } = await run(
      'restore',
      {
        'connection-string': db,
        'backup-dir': backups,
        'age-identity': key.identity,
        confirm: 'omniai.db',
      },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(await query(db, 'SELECT count(*) AS n FROM audit_logs')).toEqual([{ n: 200n }])
  })

  it('an unencrypted artifact upload is refused before anything runs, unless allowed', async () => {
    expect(() => configFor('backup', { 'upload-artifact': 'true' }, '/tmp')).toThrow(
      /^upload-artifact: the backup is not encrypted, and anyone who can read this repository could download every user's conversations\. Fix: set encryption: age/,
    )
    expect(
      configFor(
        'backup',
        { 'upload-artifact': 'true', 'allow-unencrypted-artifact': 'true' },
        '/tmp',
      ).allowUnencryptedArtifact,
    ).toBe(true)
  })

  it('a bad recipient stops the backup before the snapshot', () => {
    expect(() =>
      configFor('backup', { encryption: 'age', 'age-recipients': 'age1notakey' }, '/tmp'),
    ).toThrow(/^age-recipients: /)
    expect(() =>
      configFor(
        'backup',
        { encryption: 'age', jobs: '2', 'age-recipients': generateAgeIdentity().recipient },
        '/tmp',
      ),
    ).toThrow(/^jobs: above 1, pg_dump writes a folder/)
  })
})
