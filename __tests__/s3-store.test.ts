/**
 * The S3 store against a real S3 server: Ceph's RADOS Gateway, started by the global setup
 * (s3-server.ts). Without Ceph installed these tests are skipped after one line saying what to
 * install; under CI=true that fails the run instead.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { cleanups } from '../src/util/cleanup.js'
import { UserError } from '../src/util/errors.js'
import { digestPath } from '../src/util/fs.js'
import type { Manifest } from '../src/manifest/manifest.js'
import { applyRetention, planRetention } from '../src/store/retention.js'
import { LocalStore, type BackupEntry } from '../src/store/local.js'
import type { BackupStore } from '../src/store/store.js'
import {
  createS3Store,
  keepLocked,
  parseS3Settings,
  S3Store,
  type S3Entry,
  type S3InputValues,
  type S3StoreOptions,
} from '../src/store/s3.js'
import { demoWorkspace, failed, memoryLog, run, tempDir } from './helpers.js'
import {
  createBucket,
  rawClient,
  setBucketQuota,
  startGateway,
  type S3Server,
} from './s3-server.js'

const server = inject('s3Server')
const MIB = 1 << 20
const PART = 5 * MIB

const NO_INPUTS: S3InputValues = {
  Storage: '',
  Endpoint: '',
  Region: '',
  PathStyle: '',
  AccessKeyId: '',
  SecretAccessKey: '',
  SessionToken: '',
  ObjectLock: '',
}

function inputsFor(s: S3Server, bucket: string, more: Partial<S3InputValues> = {}): S3InputValues {
  return {
    ...NO_INPUTS,
    Storage: `s3://${bucket}/nightly`,
    Endpoint: s.endpoint,
    AccessKeyId: s.accessKeyId,
    SecretAccessKey: s.secretAccessKey,
    ...more,
  }
}

async function storeFor(
  bucket: string,
  more: Partial<S3InputValues> = {},
  options: S3StoreOptions = {},
): Promise<S3Store> {
  return createS3Store(parseS3Settings(inputsFor(server!, bucket, more), {}), {
    partSize: PART,
    ...options,
  })
}

/** A backup file of `bytes` random bytes in `dir`, with a manifest beside it, as LocalStore has it. */
async function localBackup(
  dir: string,
  bytes: number,
  opts: { name?: string; createdAt?: string; damaged?: boolean; sha256?: string } = {},
): Promise<BackupEntry> {
  const name = opts.name ?? 'omniai-2026-11-26.db'
  const file = path.join(dir, name)
  const data = randomBytes(bytes)
  await fs.writeFile(file, data)
  const manifest = {
    format: 1,
    tool: 'omniai-backups@test',
    engine: 'sqlite',
    engineVersion: '3.46.0',
    createdAt: opts.createdAt ?? '2026-11-26T02:00:00.000Z',
    backup: {
      file: name,
      sha256: opts.sha256 ?? createHash('sha256').update(data).digest('hex'),
      bytes,
    },
    source: { description: 'omniai.db', bytes },
    inventory: { schema: {}, rowCounts: {}, audit: null, conversations: null },
    ...(opts.damaged ? { damaged: ['page 3: btree corrupt'] } : {}),
    durations: { snapshotMs: 1, checksumMs: 1 },
  } as unknown as Manifest
  await fs.writeFile(`${file}.manifest.json`, JSON.stringify(manifest, null, 2) + '\n')
  return { path: file, manifestPath: `${file}.manifest.json`, manifest }
}

/** Every key in the bucket (current versions). */
async function keysOf(client: S3Client, bucket: string): Promise<string[]> {
  const { Versions = [], DeleteMarkers = [] } = await client.send(
    new ListObjectVersionsCommand({ Bucket: bucket }),
  )
  const markers = new Set(DeleteMarkers.filter((m) => m.IsLatest).map((m) => m.Key))
  return Versions.filter((v) => v.IsLatest && !markers.has(v.Key))
    .map((v) => v.Key!)
    .sort()
}

async function incompleteUploads(client: S3Client, bucket: string) {
  return (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []
}

/** The error a promise rejects with (the test fails when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

/** A one-line UserError whose message starts with the input it names. */
function expectUserError(err: Error, input: string, pattern: RegExp) {
  expect(err).toBeInstanceOf(UserError)
  expect(err.message).not.toContain('\n')
  expect(err.message.startsWith(`${input}: `), err.message).toBe(true)
  expect(err.message).toMatch(pattern)
}

const describeS3 = server ? describe : describe.skip

describeS3('S3 store on a real S3 server (Ceph RGW)', () => {
  let client: S3Client
  beforeAll(() => {
    client = rawClient(server!)
  })
  afterAll(() => client?.destroy())

  it('round-trips backups of sizes around the part size, proved by sha256, and leaves no upload behind', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const sizes = [0, 1, PART - 1, PART, PART + 1, 2 * PART + 3]
    for (const [i, bytes] of sizes.entries()) {
      const dir = await tempDir()
      const local = await localBackup(dir, bytes, { name: `omniai-size-${i}.db` })
      const uploaded = await store.upload(local, { log: memoryLog() })
      expect(uploaded.key).toBe(`nightly/omniai-size-${i}.db`)
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: uploaded.key }))
      expect(head.ContentLength).toBe(bytes)

      const into = await tempDir()
      const fetched = await store.fetch(uploaded, into)
      expect(fetched.path).toBe(path.join(into, `omniai-size-${i}.db`))
      expect(await digestPath(fetched.path)).toEqual({
        sha256: local.manifest.backup.sha256,
        bytes,
      })
      // The manifest arrives byte for byte (a signature is over exactly these bytes).
      expect(await fs.readFile(fetched.manifestPath, 'utf8')).toBe(
        await fs.readFile(local.manifestPath, 'utf8'),
      )
      expect((await fs.readdir(into)).sort()).toEqual([
        `omniai-size-${i}.db`,
        `omniai-size-${i}.db.manifest.json`,
      ])
    }
    expect(await incompleteUploads(client, bucket)).toEqual([])
    expect((await store.list()).backups).toHaveLength(sizes.length)
  })

  it('lists through more than 1000 objects, page by page', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const dir = await tempDir()
    await store.upload(
      await localBackup(dir, 10, {
        name: 'omniai-2026-11-01.db',
        createdAt: '2026-11-01T02:00:00Z',
      }),
      { log: memoryLog() },
    )
    // 1100 backup-named objects without manifests, before and after the real one in key order.
    const names = Array.from(
      { length: 1100 },
      (_, i) => `omniai-2026-${i < 550 ? '10' : '12'}-${String(i).padStart(4, '0')}.db`,
    )
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names
          .slice(i, i + 50)
          .map((n) =>
            client.send(new PutObjectCommand({ Bucket: bucket, Key: `nightly/${n}`, Body: 'x' })),
          ),
      )
    }
    await store.upload(
      await localBackup(dir, 10, {
        name: 'omniai-2026-12-31.db',
        createdAt: '2026-12-31T02:00:00Z',
      }),
      { log: memoryLog() },
    )
    let pages = 0
    store.client.middlewareStack.add(
      ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          if (context.commandName === 'ListObjectsV2Command') pages++
          return next(args)
        }) as never,
      { step: 'initialize', name: 'countPages' },
    )
    const listing = await store.list()
    expect(pages).toBeGreaterThanOrEqual(2)
    expect(listing.backups.map((b) => b.key)).toEqual([
      'nightly/omniai-2026-12-31.db',
      'nightly/omniai-2026-11-01.db',
    ])
    expect(listing.orphans).toHaveLength(1100)
    expect(listing.orphans[0]).toBe(`s3://${bucket}/nightly/omniai-2026-10-0000.db`)
  })

  it('writes the manifest last, and a backup without one is never chosen', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const writes: string[] = []
    store.client.middlewareStack.add(
      ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: { input: { Key?: string } }) => {
          const result = await next(args)
          if (/^(PutObject|CompleteMultipartUpload)Command$/.test(context.commandName ?? ''))
            writes.push(args.input.Key!)
          return result
        }) as never,
      { step: 'initialize', name: 'recordWrites' },
    )
    const dir = await tempDir()
    const local = await localBackup(dir, PART * 2 + 10)
    await fs.writeFile(`${local.manifestPath}.sig`, '{"signature":"test"}\n')
    await store.upload(local, { log: memoryLog() })
    expect(writes).toEqual([
      'nightly/omniai-2026-11-26.db',
      'nightly/omniai-2026-11-26.db.manifest.json.sig',
      'nightly/omniai-2026-11-26.db.manifest.json',
    ])
    // The signature comes down with the backup.
    const into = await tempDir()
    const fetched = await store.fetch((await store.select(null, memoryLog())).entry, into)
    expect(await fs.readFile(`${fetched.manifestPath}.sig`, 'utf8')).toBe('{"signature":"test"}\n')

    // A newer backup whose manifest never arrived: listed as an orphan, never selected.
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'nightly/omniai-2026-11-27.db', Body: 'half' }),
    )
    const log = memoryLog()
    const { entry, listing } = await store.select(null, log)
    expect(entry.key).toBe('nightly/omniai-2026-11-26.db')
    expect(listing.orphans).toEqual([`s3://${bucket}/nightly/omniai-2026-11-27.db`])
  })

  it('selects the newest by manifest time, not by name; by name, key or URL; never a damaged one by default', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const dir = await tempDir()
    for (const [name, createdAt, damaged] of [
      ['omniai-b.db', '2026-11-20T02:00:00Z', false],
      ['omniai-a.db', '2026-11-25T02:00:00Z', false],
      ['omniai-c.db', '2026-11-10T02:00:00Z', false],
      ['omniai-z-damaged.db', '2026-11-26T02:00:00Z', true],
    ] as const) {
      await store.upload(await localBackup(dir, 100, { name, createdAt, damaged }), {
        log: memoryLog(),
      })
    }
    const log = memoryLog()
    const { entry, listing } = await store.select(null, log)
    expect(entry.key).toBe('nightly/omniai-a.db')
    expect(listing.backups.map((b) => b.key)).toEqual([
      'nightly/omniai-z-damaged.db',
      'nightly/omniai-a.db',
      'nightly/omniai-b.db',
      'nightly/omniai-c.db',
    ])
    expect(log.warnings.join('\n')).toMatch(
      /omniai-z-damaged\.db was taken from a damaged database/,
    )
    for (const name of [
      'omniai-c.db',
      'nightly/omniai-c.db',
      `s3://${bucket}/nightly/omniai-c.db`,
    ]) {
      expect((await store.select(name, memoryLog())).entry.key).toBe('nightly/omniai-c.db')
    }
    expectUserError(
      await rejection(store.select('omniai-none.db', memoryLog())),
      'backup-file',
      /omniai-none\.db has no manifest/,
    )
    expectUserError(
      await rejection(store.select('s3://another-bucket/x.db', memoryLog())),
      'backup-file',
      /is not in bucket/,
    )
    // An empty prefix: what to do about it.
    const empty = await storeFor(bucket, { Storage: `s3://${bucket}/elsewhere` })
    expectUserError(
      await rejection(empty.select(null, memoryLog())),
      'storage',
      /no backups with a manifest in s3:\/\/.*\/elsewhere\/\. Fix: run mode backup/,
    )
  })

  it('never replaces a backup in the bucket: a second one of the same name gets -2', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const first = await store.upload(await localBackup(await tempDir(), 50), { log: memoryLog() })
    const second = await store.upload(await localBackup(await tempDir(), 60), { log: memoryLog() })
    expect([first.key, second.key]).toEqual([
      'nightly/omniai-2026-11-26.db',
      'nightly/omniai-2026-11-26-2.db',
    ])
    const into = await tempDir()
    expect((await digestPath((await store.fetch(first, into)).path)).bytes).toBe(50)
  })

  it('a server error mid-upload (quota) fails with one line, aborts the upload, and leaves older backups alone', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const older = await store.upload(
      await localBackup(await tempDir(), 1000, {
        name: 'omniai-2026-11-25.db',
        createdAt: '2026-11-25T02:00:00Z',
      }),
      { log: memoryLog() },
    )
    await setBucketQuota(server!, bucket, 12 * MIB)
    const err = await rejection(
      store.upload(await localBackup(await tempDir(), 4 * PART), { log: memoryLog() }),
    )
    // Ceph's quota figures lag the writes a little: the refusal may land on the backup or on its
    // manifest. Either way nothing of the new backup may be left (checked below).
    expectUserError(
      err,
      'storage',
      /refused to upload s3:\/\/.*omniai-2026-11-26\.db(\.manifest\.json)?: it is over its quota \(QuotaExceeded 403\)/,
    )
    expect(await keysOf(client, bucket)).toEqual([
      'nightly/omniai-2026-11-25.db',
      'nightly/omniai-2026-11-25.db.manifest.json',
    ])
    expect(await incompleteUploads(client, bucket)).toEqual([])
    const { entry } = await store.select(null, memoryLog())
    expect(entry.key).toBe(older.key)
    await store.fetch(entry, await tempDir())

    // Positive control: room again, the same upload goes through.
    await setBucketQuota(server!, bucket, 0)
    await store.upload(await localBackup(await tempDir(), 4 * PART), { log: memoryLog() })
  })

  it('a manifest that cannot be written takes the uploaded backup with it, every version', async () => {
    const bucket = await createBucket(server!, 'versioned')
    const store = await storeFor(bucket)
    const local = await localBackup(await tempDir(), PART + 100)
    // Room for the backup, not for its manifest (the server counts sizes in 4 KiB blocks).
    await setBucketQuota(server!, bucket, PART + 4096 + 200)
    const err = await rejection(store.upload(local, { log: memoryLog() }))
    expectUserError(
      err,
      'storage',
      /refused to upload .*omniai-2026-11-26\.db\.manifest\.json: it is over its quota/,
    )
    const { Versions = [], DeleteMarkers = [] } = await client.send(
      new ListObjectVersionsCommand({ Bucket: bucket }),
    )
    expect([...Versions, ...DeleteMarkers]).toEqual([])
    expect(await incompleteUploads(client, bucket)).toEqual([])
  })

  it('a backup file that no longer matches its manifest is not uploaded', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const local = await localBackup(await tempDir(), 3 * PART, { sha256: 'f'.repeat(64) })
    const err = await rejection(store.upload(local, { log: memoryLog() }))
    expectUserError(err, 'storage', /changed after its manifest was written/)
    expect(await keysOf(client, bucket)).toEqual([])
    expect(await incompleteUploads(client, bucket)).toEqual([])
  })

  it('a gateway killed mid-upload: one line naming s3-endpoint, no object under the name; the next backup aborts the stale upload', async () => {
    const bucket = await createBucket(server!)
    const gateway = await startGateway(server!, `rgw-kill-${process.pid}`)
    try {
      const store = await storeFor(bucket, { Endpoint: gateway.endpoint }, { queueSize: 1 })
      let killed: Promise<void> | null = null
      const err = await rejection(
        store.upload(await localBackup(await tempDir(), 8 * PART), {
          log: memoryLog(),
          onProgress: (bytes) => {
            if (bytes >= 2 * PART && !killed) killed = gateway.stop('SIGKILL')
          },
        }),
      )
      await killed
      expectUserError(
        err,
        's3-endpoint',
        /cannot upload .*omniai-2026-11-26\.db: .* does not answer \(ECONNREFUSED\); aborting the multipart upload failed too/,
      )
      expect(await keysOf(client, bucket)).toEqual([])
      expect(await incompleteUploads(client, bucket)).toHaveLength(1)

      // The next backup, through the gateway that is up, aborts what was abandoned.
      const store2 = await storeFor(bucket, {}, { abandonedUploadMs: 0 })
      const log = memoryLog()
      await store2.upload(
        await localBackup(await tempDir(), 100, { name: 'omniai-2026-11-27.db' }),
        { log },
      )
      expect(log.lines.join('\n')).toMatch(
        /aborted an incomplete upload of s3:\/\/.*omniai-2026-11-26\.db/,
      )
      expect(await incompleteUploads(client, bucket)).toEqual([])
      expect(await keysOf(client, bucket)).toEqual([
        'nightly/omniai-2026-11-27.db',
        'nightly/omniai-2026-11-27.db.manifest.json',
      ])
    } finally {
      await gateway.stop('SIGKILL')
    }
  })

  it('interrupted (SIGINT/SIGTERM) mid-upload: the cleanup aborts the multipart upload', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket, {}, { queueSize: 1 })
    let cleaning: Promise<unknown> | null = null
    const err = await rejection(
      store.upload(await localBackup(await tempDir(), 6 * PART), {
        log: memoryLog(),
        onProgress: (bytes) => {
          // What exitOnSignals runs on a signal, before the process exits.
          if (bytes >= PART && !cleaning) cleaning = cleanups.runAll()
        },
      }),
    )
    expect(await cleaning).toMatchObject({
      cleaned: [expect.stringMatching(/^incomplete upload s3:/)],
      failed: [],
    })
    expectUserError(err, 'storage', /cannot upload .*omniai-2026-11-26\.db \(AbortError/)
    expect(await keysOf(client, bucket)).toEqual([])
    expect(await incompleteUploads(client, bucket)).toEqual([])
  })

  it('names the input to fix: wrong keys, missing bucket, unreachable endpoint', async () => {
    const bucket = await createBucket(server!)
    const wrongSecret = await storeFor(bucket, { SecretAccessKey: 'not-the-secret' })
    expectUserError(
      await rejection(wrongSecret.check()),
      's3-secret-access-key',
      /refused the credentials from s3-access-key-id \/ s3-secret-access-key \(SignatureDoesNotMatch 403\)/,
    )
    const unknownKey = await storeFor(bucket, { AccessKeyId: 'AKIANOBODY' })
    expectUserError(await rejection(unknownKey.list()), 's3-access-key-id', /InvalidAccessKeyId/)
    const missing = await storeFor('no-such-bucket-here')
    expectUserError(
      await rejection(missing.check()),
      'storage',
      /bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+/,
    )
    expectUserError(
      await rejection(missing.list()),
      'storage',
      /bucket "no-such-bucket-here" does not exist/,
    )
    const closed = await storeFor(bucket, { Endpoint: 'http://127.0.0.1:9' })
    expectUserError(
      await rejection(closed.check()),
      's3-endpoint',
      /http:\/\/127\.0\.0\.1:9 does not answer \(ECONNREFUSED\)/,
    )
    const lockless = await storeFor(bucket, { ObjectLock: 'governance' })
    expectUserError(
      await rejection(lockless.check()),
      's3-object-lock',
      /does not have Object Lock enabled/,
    )
    // Positive control: the right keys reach the bucket.
    await (await storeFor(bucket)).check()
  })

  it('a truncated or replaced object is refused and nothing of it is kept', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const local = await localBackup(await tempDir(), PART + 7)
    const good = await store.upload(local, { log: memoryLog() })
    // The manifest claims more bytes than the object has.
    const claims = { ...local.manifest, backup: { ...local.manifest.backup, bytes: PART + 1000 } }
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: good.manifestKey, Body: JSON.stringify(claims) }),
    )
    const into = await tempDir()
    const truncated = (await store.select(null, memoryLog())).entry
    expectUserError(
      await rejection(store.fetch(truncated, into)),
      'storage',
      new RegExp(
        `omniai-2026-11-26\\.db is ${PART + 7} bytes, but its manifest says ${PART + 1000}: the object is truncated`,
      ),
    )
    expect(await fs.readdir(into)).toEqual([])

    // Same size, other bytes.
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: good.manifestKey, Body: good.manifestText }),
    )
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: good.key, Body: randomBytes(PART + 7) }),
    )
    expectUserError(
      await rejection(store.fetch((await store.select(null, memoryLog())).entry, into)),
      'storage',
      /has sha256 [0-9a-f]{64}, but its manifest says/,
    )
    expect(await fs.readdir(into)).toEqual([])

    // Positive control: the original bytes back, and it downloads.
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: good.key, Body: await fs.readFile(local.path) }),
    )
    await store.fetch((await store.select(null, memoryLog())).entry, into)
    expect(await fs.readdir(into)).toHaveLength(2)
  })

  it('a manifest that does not parse, or that names a missing object, is reported and not chosen', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    await store.upload(
      await localBackup(await tempDir(), 10, {
        createdAt: '2026-11-01T00:00:00Z',
        name: 'omniai-old.db',
      }),
      { log: memoryLog() },
    )
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'nightly/omniai-x.db', Body: 'x' }),
    )
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'nightly/omniai-x.db.manifest.json',
        Body: '{not json',
      }),
    )
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'nightly/omniai-y.db.manifest.json',
        Body: '{}',
      }),
    )
    const log = memoryLog()
    const { entry, listing } = await store.select(null, log)
    expect(entry.key).toBe('nightly/omniai-old.db')
    expect(listing.damaged).toHaveLength(2)
    expect(log.warnings.join('\n')).toMatch(/omniai-x\.db\.manifest\.json is not valid JSON/)
    expect(log.warnings.join('\n')).toMatch(/describes omniai-y\.db, which is not in the bucket/)
  })

  it('pg_dump directory backups: each file under the name, proved as a whole', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const dir = await tempDir()
    const backup = path.join(dir, 'omniai-2026-11-26.dumpdir')
    await fs.mkdir(backup)
    for (const [f, n] of [
      ['toc.dat', 2000],
      ['3001.dat.gz', PART + 5],
      ['3002.dat.gz', 0],
    ] as const)
      await fs.writeFile(path.join(backup, f), randomBytes(n))
    const digest = await digestPath(backup)
    const local = await localBackup(dir, 1, { name: 'placeholder.db' })
    const manifest = { ...local.manifest, backup: { file: 'omniai-2026-11-26.dumpdir', ...digest } }
    await fs.writeFile(`${backup}.manifest.json`, JSON.stringify(manifest))
    const uploaded = await store.upload(
      { path: backup, manifestPath: `${backup}.manifest.json`, manifest },
      { log: memoryLog() },
    )
    expect(uploaded.directory).toBe(true)
    const listing = await store.list()
    expect(listing.backups.map((b) => [b.key, b.directory])).toEqual([
      ['nightly/omniai-2026-11-26.dumpdir', true],
    ])
    const into = await tempDir()
    const fetched = await store.fetch(listing.backups[0]!, into)
    expect(await digestPath(fetched.path)).toEqual(digest)
    expect(await store.remove(listing.backups[0]!)).toEqual({ removed: true })
    expect(
      (await keysOf(client, bucket)).filter((k) => !k.startsWith('nightly/placeholder')),
    ).toEqual([])
  })

  it('Object Lock: each object is locked for its tier, and retention keeps a locked backup and says why', async () => {
    const bucket = await createBucket(server!, 'object-lock')
    const log = memoryLog()
    const locked = await storeFor(bucket, { ObjectLock: 'governance' })
    await locked.check()
    const plain = await storeFor(bucket)
    const dir = await tempDir()
    // An old backup without a lock, and one locked for 1 day (a multipart upload: servers
    // that ignore lock headers on those get the retention set afterwards).
    await plain.upload(
      await localBackup(dir, 10, {
        name: 'omniai-2026-10-01.db',
        createdAt: '2026-10-01T02:00:00Z',
      }),
      { log },
    )
    const held = await locked.upload(
      await localBackup(dir, 2 * PART + 1, {
        name: 'omniai-2026-10-02.db',
        createdAt: '2026-10-02T02:00:00Z',
      }),
      { retentionDays: 1, log },
    )
    for (const key of [held.key, held.manifestKey]) {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
      expect(head.ObjectLockMode).toBe('GOVERNANCE')
      const until = head.ObjectLockRetainUntilDate!.getTime()
      expect(Math.abs(until - (Date.now() + 86_400_000))).toBeLessThan(120_000)
    }
    const newest = await plain.upload(
      await localBackup(dir, 10, {
        name: 'omniai-2026-11-26.db',
        createdAt: '2026-11-26T02:00:00Z',
      }),
      { log },
    )

    // keep-daily 1: only the newest is due to stay; the locked one is kept anyway, with its date.
    const listing = await locked.list()
    const decisions = keepLocked(
      planRetention(
        listing.backups,
        { keepDaily: 1, keepWeekly: 0, timeZone: 'UTC' },
        { protect: [newest.path] },
      ),
      new Date(),
    )
    const why = Object.fromEntries(
      decisions.map((d) => [path.basename(d.entry.path), d.keep ? d.reasons.join(', ') : 'delete']),
    )
    expect(why['omniai-2026-10-01.db']).toBe('delete')
    expect(why['omniai-2026-10-02.db']).toMatch(
      /^Object Lock \(GOVERNANCE\) until \d{4}-\d\d-\d\d$/,
    )
    const dry = await applyRetention(decisions, {
      dryRun: true,
      remove: (e) => locked.remove(e as S3Entry).then(() => {}),
    })
    expect(dry.deleted).toBe(0)
    expect(await locked.list().then((l) => l.backups.length)).toBe(3)
    const summary = await applyRetention(decisions, {
      dryRun: false,
      remove: (e) => locked.remove(e as S3Entry).then(() => {}),
    })
    expect(summary).toMatchObject({ kept: 2, deleted: 1 })
    expect((await locked.list()).backups.map((b) => b.key)).toEqual([newest.key, held.key])

    // remove() itself refuses too, and says why; the objects stay.
    const removeLog = memoryLog()
    const result = await locked.remove(held, removeLog)
    expect(result).toMatchObject({
      removed: false,
      reason: expect.stringMatching(/under Object Lock \(GOVERNANCE\) until/),
    })
    expect(removeLog.lines.join('\n')).toMatch(
      /kept s3:\/\/.*omniai-2026-10-02\.db: .* under Object Lock/,
    )
    expect((await locked.list()).backups).toHaveLength(2)

    // COMPLIANCE is set as asked.
    const compliance = await storeFor(bucket, { ObjectLock: 'compliance' })
    const c = await compliance.upload(
      await localBackup(dir, 10, { name: 'omniai-2026-11-27.db' }),
      { retentionDays: 1, log },
    )
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: c.manifestKey }))
    expect(head.ObjectLockMode).toBe('COMPLIANCE')
    expect((await compliance.remove(c)).removed).toBe(false)
  })

  it('versioned buckets: remove() leaves a delete marker, and the old versions stay until a lifecycle rule expires them', async () => {
    const bucket = await createBucket(server!, 'versioned')
    const store = await storeFor(bucket)
    const uploaded = await store.upload(await localBackup(await tempDir(), 100), {
      log: memoryLog(),
    })
    expect(await store.remove(uploaded)).toEqual({ removed: true })
    expect((await store.list()).backups).toEqual([])
    const { Versions = [], DeleteMarkers = [] } = await client.send(
      new ListObjectVersionsCommand({ Bucket: bucket }),
    )
    expect(Versions.map((v) => [v.Key, v.IsLatest]).sort()).toEqual([
      ['nightly/omniai-2026-11-26.db', false],
      ['nightly/omniai-2026-11-26.db.manifest.json', false],
    ])
    expect(DeleteMarkers.length).toBeGreaterThanOrEqual(2)
    // The data is still readable by version: what an administrator recovers from.
    const v = Versions.find((x) => x.Key === uploaded.key)!
    const got = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: uploaded.key, VersionId: v.VersionId }),
    )
    expect(got.ContentLength).toBe(100)
  })

  it('a real backup from mode backup goes up and comes back as a folder verify accepts', async () => {
    const bucket = await createBucket(server!)
    const store = await storeFor(bucket)
    const ws = await demoWorkspace()
    const { report } = await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups },
      ws.dir,
    )
    expect(failed(report)).toEqual({})
    const localStore = new LocalStore(ws.backups)
    // Either store where a mode reads backups (a compile-time check as much as a runtime one).
    const stores: BackupStore[] = [localStore, store]
    expect(stores).toHaveLength(2)
    const local = await localStore.entry(report.backup!.path)
    await store.upload(local, { log: memoryLog() })
    const into = path.join(ws.dir, 'downloaded')
    await store.fetch((await store.select(null, memoryLog())).entry, into)
    const verified = await run('verify', { 'backup-dir': into }, ws.dir)
    expect(failed(verified.report)).toEqual({})
    expect(verified.report.backup!.sha256).toBe(report.backup!.sha256)
  })
})

describe('S3 settings', () => {
  const env = {}
  it('parses the location, endpoint, path style, region and lock mode', () => {
    const s = parseS3Settings(
      {
        ...NO_INPUTS,
        Storage: 's3://my-bucket/omniai/nightly/',
        Endpoint: 'https://acc.r2.cloudflarestorage.com/',
        Region: 'auto',
      },
      env,
    )
    expect(s).toMatchObject({
      bucket: 'my-bucket',
      prefix: 'omniai/nightly/',
      endpoint: 'https://acc.r2.cloudflarestorage.com',
      region: 'auto',
      forcePathStyle: true,
      objectLock: null,
      credentials: null,
    })
    const aws = parseS3Settings(
      { ...NO_INPUTS, Storage: 's3://my-bucket', ObjectLock: 'Compliance' },
      { AWS_REGION: 'eu-central-1' },
    )
    expect(aws).toMatchObject({
      prefix: '',
      endpoint: null,
      region: 'eu-central-1',
      forcePathStyle: false,
      objectLock: 'COMPLIANCE',
    })
  })

  it('takes credentials from the inputs, else the environment, and masks the secrets', () => {
    const masked: string[] = []
    const fromInputs = parseS3Settings(
      {
        ...NO_INPUTS,
        Storage: 's3://b-1',
        AccessKeyId: 'AKIA1',
        SecretAccessKey: 'sekrit',
        SessionToken: 'tok',
      },
      { AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'envsecret' },
      (s) => masked.push(s),
    )
    expect(fromInputs.credentials).toEqual({
      accessKeyId: 'AKIA1',
      secretAccessKey: 'sekrit',
      sessionToken: 'tok',
    })
    expect(masked).toEqual(expect.arrayContaining(['sekrit', 'tok', 'envsecret']))
    const fromEnv = parseS3Settings(
      { ...NO_INPUTS, Storage: 's3://b-1' },
      {
        AWS_ACCESS_KEY_ID: 'AKIAENV',
        AWS_SECRET_ACCESS_KEY: 'envsecret',
        AWS_SESSION_TOKEN: 'oidc',
      },
    )
    expect(fromEnv.credentials).toEqual({
      accessKeyId: 'AKIAENV',
      secretAccessKey: 'envsecret',
      sessionToken: 'oidc',
    })
    expect(fromEnv.credentialsFrom).toMatch(/environment/)
  })

  it.each([
    [{ Storage: 'https://bucket/x' }, 'storage', /is not an S3 location/],
    [{ Storage: 's3://B' }, 'storage', /is not a bucket name/],
    [{ Storage: 's3://bucket/a//b' }, 'storage', /empty, "\." or "\.\." part/],
    [{ Storage: 's3://bucket', Endpoint: 'ftp://x' }, 's3-endpoint', /is not an http\(s\) URL/],
    [{ Storage: 's3://bucket', PathStyle: 'yes' }, 's3-path-style', /is not auto, true or false/],
    [
      { Storage: 's3://bucket', ObjectLock: 'forever' },
      's3-object-lock',
      /is not off, governance or compliance/,
    ],
    [{ Storage: 's3://bucket', Region: 'EU West' }, 's3-region', /is not a region name/],
    [
      { Storage: 's3://bucket', AccessKeyId: 'AKIA1' },
      's3-secret-access-key',
      /empty while s3-access-key-id is set/,
    ],
  ])('refuses %j naming %s', (inputs, input, pattern) => {
    let err: Error | null = null
    try {
      parseS3Settings({ ...NO_INPUTS, ...inputs }, env)
    } catch (e) {
      err = e as Error
    }
    expectUserError(err!, input, pattern)
  })

  it('the store module does not load the AWS SDK until a store is made', async () => {
    const source = await fs.readFile(
      path.join(import.meta.dirname, '..', 'src', 'store', 's3.ts'),
      'utf8',
    )
    const staticImports = source.match(/^import (?!type ).* from '@aws-sdk\/[^']+'/gm) ?? []
    expect(staticImports).toEqual([])
  })
})
