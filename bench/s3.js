#!/usr/bin/env node
/**
 * S3 benchmark: the S3 store's upload and download (src/store/s3.ts) next to a bare SDK transfer
 * of the same file (one PutObject from a file stream, one GetObject piped to a file), against a
 * real S3 server started here (Ceph's RADOS Gateway, as the tests use), printed as ratios.
 *
 *   node bench/s3.js                 # 256 MiB, then 32 MiB for the memory comparison
 *   node bench/s3.js --mib 64        # a quick check that everything works
 *
 * Flags:
 *   --mib N        size of the file in MiB (default 256)
 *   --small-mib N  a smaller file, to see whether peak RSS grows with the size (default mib/8;
 *                  0 skips it)
 *   --runs N       timed runs per command, median reported (default 3; one untimed warm-up)
 *   --part-mib N   multipart part size for the store and lib-storage (default 8, the store's)
 *   --keep         keep bench/.work/s3 afterwards
 *
 * What each side does:
 *   store upload    lists the prefix (abandoned uploads, a free name), streams the file as a
 *                   multipart upload (8 MiB parts, 4 in flight) with Content-MD5 on every part and
 *                   a sha256 of the bytes sent checked against the manifest, reads the object back
 *                   (HeadObject), then puts the manifest
 *   raw PutObject   one PUT of the file stream
 *   lib-storage     the SDK's own multipart Upload with the same part size and queue, nothing else
 *                   (the store's overhead over plain multipart)
 *   store download  reads the manifest, streams the object to a temporary file while hashing,
 *                   checks size and sha256, fsyncs, renames, writes the manifest beside it
 *   raw GetObject   one GET piped to a file (no hash, no fsync)
 * Each transfer runs in its own Node process, so its peak RSS (VmHWM) is its own, Node included;
 * the time is of the transfer alone (SDK loaded, client made). The server runs on this machine,
 * so the numbers are CPU and memory costs, not a network's.
 *
 * Needs Ceph (apt-get install radosgw ceph-mon ceph-osd). Compiles src/store/s3.ts and
 * __tests__/s3-server.ts with the project's TypeScript into bench/.work/s3/lib first, so it
 * measures the working tree and does not touch lib/ (which `npm run bundle` owns).
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, rmSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { log, sha256Short, timeGroup } from './lib.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const WORK = path.join(ROOT, 'bench', '.work', 's3')
const LIB = path.join(WORK, 'lib')
const NODE = process.execPath
const SELF = fileURLToPath(import.meta.url)
const DEFAULT_PART_MIB = 8

const lib = (file) => import(pathToFileURL(path.join(LIB, file)).href)

function flag(args, name, dflt) {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return dflt
  const n = Number(args[i + 1])
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${args[i + 1]}: not a number`)
  return n
}

// ---------------------------------------------------------------------------------------------
// Child mode: one transfer in its own process.

async function child([op, a, b]) {
  const server = JSON.parse(process.env.BENCH_S3)
  const { createS3Store, parseS3Settings } = await lib('src/store/s3.js')
  const sdk = await import('@aws-sdk/client-s3')
  const { Upload } = await import('@aws-sdk/lib-storage')
  const settings = parseS3Settings(
    {
      Storage: `s3://${server.bucket}/bench`,
      Endpoint: server.endpoint,
      Region: '',
      PathStyle: '',
      AccessKeyId: server.accessKeyId,
      SecretAccessKey: server.secretAccessKey,
      SessionToken: '',
      ObjectLock: '',
    },
    {},
  )
  const partSize = server.partMib << 20
  const store = await createS3Store(settings, { partSize })
  const raw = new sdk.S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const quiet = { info() {}, warning() {}, group: (_n, fn) => fn() }
  const t0 = performance.now()
  if (op === 'store-up') {
    const manifest = JSON.parse(await fs.readFile(`${a}.manifest.json`, 'utf8'))
    await store.upload({ path: a, manifestPath: `${a}.manifest.json`, manifest }, { log: quiet })
  } else if (op === 'raw-up') {
    const { size } = await fs.stat(a)
    await raw.send(
      new sdk.PutObjectCommand({
        Bucket: server.bucket,
        Key: 'bench/raw.bin',
        Body: createReadStream(a),
        ContentLength: size,
      }),
    )
  } else if (op === 'lib-up') {
    await new Upload({
      client: raw,
      params: { Bucket: server.bucket, Key: 'bench/lib.bin', Body: createReadStream(a) },
      partSize,
      queueSize: 4,
    }).done()
  } else if (op === 'store-down') {
    const entry = await store.entry(a)
    await store.fetch(entry, b)
  } else if (op === 'raw-down') {
    const object = await raw.send(new sdk.GetObjectCommand({ Bucket: server.bucket, Key: a }))
    await pipeline(object.Body, createWriteStream(b))
  } else {
    throw new Error(`unknown op ${op}`)
  }
  const seconds = (performance.now() - t0) / 1000
  // VmHWM, not getrusage's maxRSS: Linux carries that over from the parent across fork and exec.
  const status = await fs.readFile('/proc/self/status', 'utf8')
  const rss = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024
  process.stdout.write(JSON.stringify({ seconds, rss }))
}

// ---------------------------------------------------------------------------------------------
// Parent mode.

function run(file, args, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('error', reject)
    p.on('close', (code) => {
      if (code === 0) resolve(out)
      else reject(new Error(`${path.basename(file)} ${args.join(' ')} exited ${code}: ${err}`))
    })
  })
}

async function build() {
  // Only the store, the test server and what they import: the rest of src/ may be mid-edit.
  const tsconfig = path.join(WORK, 'tsconfig.json')
  await fs.writeFile(
    tsconfig,
    JSON.stringify({
      extends: path.join(ROOT, 'tsconfig.json'),
      compilerOptions: { noEmit: false, outDir: LIB, rootDir: ROOT, declaration: false },
      include: [],
      files: [
        path.join(ROOT, 'src', 'store', 's3.ts'),
        path.join(ROOT, '__tests__', 's3-server.ts'),
        path.join(ROOT, 'src', 'types', 'better-sqlite3-platforms.d.ts'),
      ],
    }),
  )
  await fs.rm(LIB, { recursive: true, force: true })
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  // Type errors elsewhere in the tree (work in progress) do not stop the emit.
  spawnSync(NODE, [tsc, '-p', tsconfig], { stdio: 'ignore' })
  await fs.access(path.join(LIB, 'src', 'store', 's3.js'))
  // The compiled files import the SDK: resolve it from the project's node_modules.
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(LIB, 'node_modules'))
}

async function randomFile(file, mebibytes) {
  const hash = createHash('sha256')
  const out = createWriteStream(file)
  for (let i = 0; i < mebibytes; i++) {
    const block = randomBytes(1 << 20)
    hash.update(block)
    if (!out.write(block)) await new Promise((resolve) => out.once('drain', resolve))
  }
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())))
  return hash.digest('hex')
}

async function main(args) {
  const big = flag(args, 'mib', 256)
  const small = flag(args, 'small-mib', Math.floor(big / 8))
  const runs = flag(args, 'runs', 3)
  const partMib = flag(args, 'part-mib', DEFAULT_PART_MIB)
  if (
    spawnSync('sh', ['-c', 'command -v radosgw && command -v ceph-mon && command -v ceph-osd'], {
      stdio: 'ignore',
    }).status !== 0
  ) {
    throw new Error('Ceph is missing: apt-get install radosgw ceph-mon ceph-osd')
  }
  await fs.mkdir(WORK, { recursive: true })
  log(`building src/store/s3.ts into ${path.relative(ROOT, LIB)} ...`)
  await build()
  const { startS3Server, stopS3Server, createBucket, rawClient } =
    await lib('__tests__/s3-server.js')
  const sdk = await import('@aws-sdk/client-s3')
  log('starting a Ceph cluster with a RADOS Gateway ...')
  const server = await startS3Server()
  const cleanup = async () => {
    await stopS3Server(server)
    if (!args.includes('--keep')) rmSync(WORK, { recursive: true, force: true })
  }
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)))
  try {
    const bucket = await createBucket(server)
    const client = rawClient(server)
    const env = { BENCH_S3: JSON.stringify({ ...server, bucket, partMib }) }
    const clear = async (keys) => {
      for (const Key of keys)
        await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key }))
    }
    const sample = async (op, ...rest) =>
      JSON.parse(await run(NODE, [SELF, '--child', op, ...rest], env))
    const results = []
    for (const size of small > 0 && small !== big ? [big, small] : [big]) {
      const dir = path.join(WORK, `${size}`)
      await fs.mkdir(dir, { recursive: true })
      const file = path.join(dir, 'omniai-bench.db')
      log(`\ngenerating ${size} MiB of random data ...`)
      const sha256 = await randomFile(file, size)
      const manifest = {
        format: 1,
        tool: 'bench',
        engine: 'sqlite',
        engineVersion: '',
        createdAt: new Date().toISOString(),
        backup: { file: 'omniai-bench.db', sha256, bytes: size << 20 },
        source: { description: 'bench', bytes: size << 20 },
        inventory: { schema: {}, rowCounts: {}, audit: null, conversations: null },
        durations: { snapshotMs: 0, checksumMs: 0 },
      }
      await fs.writeFile(`${file}.manifest.json`, JSON.stringify(manifest))
      const storeKeys = ['bench/omniai-bench.db', 'bench/omniai-bench.db.manifest.json']
      const up = await timeGroup(
        `upload, ${size} MiB`,
        [
          {
            label: 'store upload',
            prepare: () => clear(storeKeys),
            sample: () => sample('store-up', file),
          },
          { label: 'raw PutObject', sample: () => sample('raw-up', file) },
          { label: 'lib-storage Upload', sample: () => sample('lib-up', file) },
        ],
        { warmup: 1, runs, labelWidth: 20 },
      )
      // What the downloads read: the store's upload (left by its last run) and the raw one.
      const down = path.join(dir, 'down')
      const rawOut = path.join(dir, 'raw.out')
      const dn = await timeGroup(
        `download, ${size} MiB`,
        [
          {
            label: 'store download',
            prepare: () => fs.rm(down, { recursive: true, force: true }),
            sample: () => sample('store-down', 'omniai-bench.db', down),
          },
          {
            label: 'raw GetObject',
            prepare: () => fs.rm(rawOut, { force: true }),
            sample: () => sample('raw-down', 'bench/raw.bin', rawOut),
          },
        ],
        { warmup: 1, runs, labelWidth: 20 },
      )
      if ((await sha256Short(path.join(down, 'omniai-bench.db'))) !== sha256.slice(0, 12))
        throw new Error('the download differs from the file')
      await clear([...storeKeys, 'bench/raw.bin', 'bench/lib.bin'])
      await fs.rm(dir, { recursive: true, force: true })
      results.push({ size, up, dn })
    }
    client.destroy()

    log(`\n== results (median of ${runs}; the server on this machine: ${os.cpus().length} cores)`)
    for (const { size, up, dn } of results) {
      const rate = (e) => `${(size / e.seconds).toFixed(0).padStart(5)} MiB/s`
      const row = (e, base) =>
        `   ${e.label.padEnd(20)} ${e.seconds.toFixed(2).padStart(6)} s ${rate(e)}  ${e.rss.toFixed(0).padStart(4)} MiB peak RSS${base ? `   ${(e.seconds / base.seconds).toFixed(2)}x of ${base.label}` : ''}`
      log(`\n${size} MiB`)
      log(row(up[0], up[1]))
      log(row(up[1]))
      log(row(up[2], up[1]))
      log(
        `   store upload is ${(up[0].seconds / up[2].seconds).toFixed(2)}x of lib-storage Upload alone`,
      )
      log(row(dn[0], dn[1]))
      log(row(dn[1]))
    }
    if (results.length === 2) {
      const [b, s] = results
      log(
        `\npeak RSS, ${b.size} MiB vs ${s.size} MiB: store upload ${b.up[0].rss.toFixed(0)} vs ${s.up[0].rss.toFixed(0)} MiB, store download ${b.dn[0].rss.toFixed(0)} vs ${s.dn[0].rss.toFixed(0)} MiB, raw PutObject ${b.up[1].rss.toFixed(0)} vs ${s.up[1].rss.toFixed(0)} MiB`,
      )
    }
    log(`(${partMib} MiB parts, 4 in flight)`)
  } finally {
    await cleanup()
  }
}

const args = process.argv.slice(2)
if (args[0] === '--child') await child(args.slice(1))
else await main(args)
