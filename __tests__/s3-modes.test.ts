/**
 * The modes with `storage: s3://...`, against the real S3 server the tests start (Ceph RGW):
 * backup uploads after its read-back check and applies retention in the bucket; verify, drill
 * and restore read from the bucket alone (a fresh machine with no backup-dir); Object Lock keeps
 * what retention would delete; bad credentials fail before any snapshot.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { describe, expect, inject, it } from 'vitest'
import { demoWorkspace, failed, run, tempDir } from './helpers.js'
import { createBucket, rawClient, type S3Server } from './s3-server.js'

const server = inject('s3Server') as S3Server | undefined
const describeS3 = server ? describe : describe.skip

describeS3('modes with storage: s3:// (Ceph RGW)', () => {
  const s = server!
  const inputs = (bucket: string, more: Record<string, string> = {}) => ({
    storage: `s3://${bucket}/omniai/nightly`,
    's3-endpoint': s.endpoint,
    's3-region': s.region,
    's3-access-key-id': s.accessKeyId,
    's3-secret-access-key': s.secretAccessKey,
    ...more,
  })
  const keys = async (bucket: string) =>
    ((await rawClient(s).send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map(
      (o) => o.Key!,
    )

  it('backup uploads backup and manifest; a drill on another machine reads the bucket alone', async () => {
    const bucket = await createBucket(s)
    const ws = await demoWorkspace({ conversations: 30, auditRows: 100 })
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups, ...inputs(bucket) },
      ws.dir,
    )
    expect(report.error).toBeUndefined()
    expect(failed(report)).toEqual({})
    const name = path.basename(report.backup!.path)
    // Monday's backup is the week's (store/artifacts.ts artifactTier), any other day's a daily.
    const monday = new Date(report.backup!.createdAt).getUTCDay() === 1
    expect(report.s3).toMatchObject({
      location: `s3://${bucket}/omniai/nightly/`,
      tier: monday ? 'weekly' : 'daily',
    })
    expect(await keys(bucket)).toEqual(
      expect.arrayContaining([`omniai/nightly/${name}`, `omniai/nightly/${name}.manifest.json`]),
    )

    // Another machine: no backup-dir, only the bucket.
    const elsewhere = await tempDir()
    const { report: drill } = await run(
      'drill',
      { 'backup-dir': path.join(elsewhere, 'none'), 'drill-log': 'none', ...inputs(bucket) },
      elsewhere,
    )
    expect(drill.error).toBeUndefined()
    expect(failed(drill)).toEqual({})
    expect(path.basename(drill.backup!.path)).toBe(name)
    // The download went into the scratch folder and was removed with it.
    expect((await fs.readdir(elsewhere)).filter((n) => n.startsWith('omniai-s3-'))).toEqual([])
  })

  it('a bucket object that differs from its manifest is refused by the drill', async () => {
    const bucket = await createBucket(s)
    const ws = await demoWorkspace({ conversations: 10, auditRows: 10 })
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups, ...inputs(bucket) },
      ws.dir,
    )
    const name = path.basename(report.backup!.path)
    const { PutObjectCommand } = await import('@aws-sdk/client-s3')
    await rawClient(s).send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `omniai/nightly/${name}`,
        Body: Buffer.from('SQLite format 3\0 but not the backup'),
      }),
    )
    const elsewhere = await tempDir()
    const { report: drill } = await run(
      'drill',
      { 'backup-dir': path.join(elsewhere, 'none'), 'drill-log': 'none', ...inputs(bucket) },
      elsewhere,
    )
    expect(drill.ok).toBe(false)
    expect(drill.error).toMatch(/^storage: /)
  })

  it('wrong credentials fail before any snapshot, naming the input; nothing is written', async () => {
    const bucket = await createBucket(s)
    const ws = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const { report } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        ...inputs(bucket, { 's3-secret-access-key': 'not-the-secret' }),
      },
      ws.dir,
    )
    expect(report.error).toMatch(/^s3-(secret-access-key|access-key-id): /)
    expect(report.error).not.toContain('not-the-secret')
    await expect(fs.readdir(ws.backups)).rejects.toThrow()
    expect(await keys(bucket)).toEqual([])
  })

  it('retention in the bucket keeps what Object Lock holds, and says why', async () => {
    const bucket = await createBucket(s, 'object-lock')
    const ws = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const locked = inputs(bucket, { 's3-object-lock': 'governance' })
    for (const day of ['2026-11-20', '2026-11-21']) {
      const { report } = await run(
        'backup',
        {
          'connection-string': ws.db,
          'backup-dir': ws.backups,
          'keep-daily': '14',
          'keep-weekly': '0',
          ...locked,
        },
        ws.dir,
        () => new Date(`${day}T03:00:00Z`),
      )
      expect(failed(report)).toEqual({})
      expect(Date.parse(report.s3!.lockedUntil!)).toBeGreaterThan(Date.now())
    }
    // Daily retention of one would delete the older backup, but its lock runs until December.
    const { report } = await run(
      'backup',
      {
        'connection-string': ws.db,
        'backup-dir': ws.backups,
        'keep-daily': '1',
        'keep-weekly': '0',
        ...locked,
      },
      ws.dir,
      () => new Date('2026-11-22T03:00:00Z'),
    )
    expect(failed(report)).toEqual({})
    expect(report.s3!.retention!.deleted).toBe(0)
    expect(JSON.stringify(report.s3!.retention!.decisions)).toMatch(/Object Lock/)
    // Positive control: locally, the same retention did delete them.
    expect(report.retention!.deleted).toBe(2)
  })

  it('a night whose restore check could not run uploads its backup and deletes nothing in the bucket', async () => {
    const bucket = await createBucket(s, 'plain')
    const ws = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const backup = (day: string, more: Record<string, string>) =>
      run(
        'backup',
        {
          'connection-string': ws.db,
          'backup-dir': ws.backups,
          'keep-weekly': '0',
          ...inputs(bucket),
          ...more,
        },
        ws.dir,
        () => new Date(`${day}T03:00:00Z`),
      )
    const stored = async () => (await keys(bucket)).filter((k) => k.endsWith('.db')).length
    for (const day of ['2026-11-20', '2026-11-21']) {
      expect(failed((await backup(day, { 'keep-daily': '14' })).report)).toEqual({})
    }
    // A file where scratch-dir should be: the check cannot run, and keep-daily: 1 would delete
    // the two older backups.
    const blocked = path.join(ws.dir, 'blocked')
    await fs.writeFile(blocked, '')
    const { report } = await backup('2026-11-22', {
      'keep-daily': '1',
      'restore-check': 'true',
      'scratch-dir': blocked,
    })
    expect(Object.keys(failed(report))).toEqual(['restore-check'])
    expect(report.s3!.key).toMatch(/omniai-2026-11-22\.db$/)
    expect(report.s3!.retention).toBeUndefined()
    expect(report.retention).toBeUndefined()
    expect(await stored()).toBe(3)
    expect(report.warnings.join('\n')).toMatch(/retention deleted nothing, here or off-site/)
    // Positive control: the next night's check runs, and the same retention deletes them.
    const next = await backup('2026-11-23', { 'keep-daily': '1', 'restore-check': 'true' })
    expect(failed(next.report)).toEqual({})
    expect(next.report.s3!.retention!.deleted).toBe(3)
    expect(await stored()).toBe(1)
  })
})

describe('restore from storage', () => {
  it('does not take the newest backup of a bucket on its own', async () => {
    const { configFor } = await import('./helpers.js')
    const dir = await tempDir()
    const inputs = { storage: 's3://omniai-backups/nightly', 'connection-string': 'omniai.db' }
    expect(() => configFor('restore', inputs, dir)).toThrow(
      /^backup-file: restore replaces the live database, so from storage it does not take the newest backup on its own\. Fix: /,
    )
    // Positive controls: a named backup, or signatures required, and the same inputs are taken.
    expect(
      configFor('restore', { ...inputs, 'backup-file': 'omniai-2026-11-29.db' }, dir).s3,
    ).not.toBeNull()
    expect(configFor('drill', inputs, dir).s3).not.toBeNull()
  })
})
