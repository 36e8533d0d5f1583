#!/usr/bin/env node
/**
 * Encryption benchmark: the codec's age encode/decode (src/codec) next to the age CLI, on the
 * same ~1 GiB random file: wall time, CPU time and peak RSS, median of BENCH_RUNS, printed side
 * by side as ratios. The codec does more than the CLI: it hashes both sides (sha256 of the
 * stored file and of the plaintext), and an encoded backup is fsynced before it is renamed into
 * place. So the CLI is also timed followed by `sync FILE`, and the codec with no encryption at
 * all (the same streams, a hash and the fsync), which is the floor under any encryption it
 * does. Decoding is timed as the drill, verify, restore and restore-check decode: into scratch
 * (`scratch: true`), read by the job and removed, so not fsynced, like the CLI's output.
 * A second, smaller file shows whether the codec's peak RSS grows with the file size.
 *
 *   node bench/encryption.js              # 1 GiB, then 256 MiB for the memory check
 *   BENCH_MB=64 node bench/encryption.js  # a quick check that everything works
 *
 * Environment:
 *   BENCH_MB        size of the file in MiB (default 1024)
 *   BENCH_SMALL_MB  the smaller file for the memory comparison (default BENCH_MB / 4; 0 skips)
 *   BENCH_RUNS      timed runs per command, median reported (default 3)
 *   BENCH_KEEP=1    keep bench/.work/encryption afterwards
 *
 * Needs the age CLI (apt-get install -y age) and GNU time (/usr/bin/time, apt-get install -y
 * time) for peak RSS. Compiles src/codec with the project's TypeScript into
 * bench/.work/encryption/lib first, so it measures the code as it is in the working tree and
 * does not touch lib/ (which `npm run bundle` owns). Each measured codec run is a fresh Node
 * process (`node bench/encryption.js --child encode|decode ...`), like the age CLI, so peak
 * RSS includes Node's own baseline. Every timed command starts after an untimed `sync`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, existsSync, rmSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const WORK = path.join(ROOT, 'bench', '.work', 'encryption')
const LIB = path.join(WORK, 'lib')
const NODE = process.execPath
const GNU_TIME = '/usr/bin/time'

const log = (...a) => console.log(...a)
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// ---------------------------------------------------------------------------------------------
// Child mode: one codec operation in its own process, so its peak RSS is its own.

async function child([op, src, dest, key]) {
  const codec = await import(pathToFileURL(path.join(LIB, 'codec', 'index.js')).href)
  let digests
  if (op === 'encode') {
    const encryption = { kind: 'age', recipients: [key] }
    digests = await codec.encodeFile(src, dest, { compression: 'none', encryption })
  } else if (op === 'decode') {
    const decryption = { kind: 'age', identities: [await fs.readFile(key, 'utf8')] }
    // As every mode decodes: into scratch, which is not fsynced (modes/plain.ts).
    digests = await codec.decodeFile(src, dest, { compression: 'none', decryption, scratch: true })
  } else {
    digests = await codec.encodeFile(src, dest, {
      compression: 'none',
      encryption: { kind: 'none' },
    })
  }
  process.stdout.write(JSON.stringify(digests))
}

// ---------------------------------------------------------------------------------------------
// Parent mode.

function run(file, args, { quiet = false } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('error', reject)
    p.on('close', (code) => {
      if (code === 0) resolve({ out, err })
      else reject(new Error(`${file} ${args.join(' ')} exited ${code}${quiet ? '' : `: ${err}`}`))
    })
  })
}

/** Wall seconds, CPU seconds (user + sys) and peak RSS (MiB) of one command. */
async function measured(file, args) {
  spawnSync('sync')
  const stats = path.join(WORK, 'time.txt')
  const t0 = performance.now()
  const { out } = await run(GNU_TIME, ['-o', stats, '-f', '%U %S %M', file, ...args])
  const wall = (performance.now() - t0) / 1000
  const [user, sys, kb] = (await fs.readFile(stats, 'utf8')).trim().split('\n').at(-1).split(' ')
  return { wall, cpu: Number(user) + Number(sys), rss: Number(kb) / 1024, out }
}

/** A file of `mib` MiB of random bytes (age's worst case: nothing to gain from the data), and its sha256. */
async function randomFile(file, mib) {
  const hash = createHash('sha256')
  const out = createWriteStream(file)
  for (let i = 0; i < mib; i++) {
    const block = randomBytes(1 << 20)
    hash.update(block)
    if (!out.write(block)) await new Promise((resolve) => out.once('drain', resolve))
  }
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())))
  return hash.digest('hex')
}

async function build() {
  // Only the codec and what it imports: the rest of src/ may be mid-edit.
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  await fs.rm(LIB, { recursive: true, force: true })
  await run(NODE, [
    tsc,
    '--outDir',
    LIB,
    '--rootDir',
    path.join(ROOT, 'src'),
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2022',
    '--types',
    'node',
    '--strict',
    '--skipLibCheck',
    '--resolveJsonModule',
    '--esModuleInterop',
    path.join(ROOT, 'src', 'codec', 'index.ts'),
    // Ambient declarations the import chain may need (src/types/*.d.ts).
    ...(await fs.readdir(path.join(ROOT, 'src', 'types')).catch(() => []))
      .filter((f) => f.endsWith('.d.ts'))
      .map((f) => path.join(ROOT, 'src', 'types', f)),
  ])
}

function fmt(n, digits = 2) {
  return n.toFixed(digits)
}

async function main() {
  const big = Number(process.env.BENCH_MB ?? 1024)
  const small = Number(process.env.BENCH_SMALL_MB ?? Math.floor(big / 4))
  const runs = Number(process.env.BENCH_RUNS ?? 3)
  for (const [cmd, args, hint] of [
    ['age', ['--version'], 'apt-get install -y age'],
    [GNU_TIME, ['-f', '%M', 'true'], 'apt-get install -y time'],
  ]) {
    if (spawnSync(cmd, args).status !== 0) throw new Error(`${cmd} is missing: ${hint}`)
  }
  const ageVersion = spawnSync('age', ['--version']).stdout.toString().trim()

  await fs.mkdir(WORK, { recursive: true })
  log(`building src/codec into ${path.relative(ROOT, LIB)} ...`)
  await build()
  const codec = await import(pathToFileURL(path.join(LIB, 'codec', 'index.js')).href)
  const { identity, recipient } = codec.generateAgeIdentity()
  const keyFile = path.join(WORK, 'key.txt')
  await fs.writeFile(keyFile, `${identity}\n`, { mode: 0o600 })
  const self = fileURLToPath(import.meta.url)

  const results = {}
  for (const mib of small > 0 ? [big, small] : [big]) {
    const input = path.join(WORK, `plain-${mib}.bin`)
    log(`generating ${mib} MiB of random data ...`)
    const inputSha = await randomFile(input, mib)
    const cliAge = path.join(WORK, 'cli.age')
    const codecAge = path.join(WORK, 'codec.age')
    const out = path.join(WORK, 'out.bin')
    const times = {
      cliEnc: [],
      cliEncSync: [],
      codecEnc: [],
      cliDec: [],
      cliDecSync: [],
      codecDec: [],
      codecCopy: [],
    }
    // The comparison runs only at the big size; the small one is for the codec's memory.
    const compare = mib === big
    const sh = (script, ...args) => measured('sh', ['-c', script, 'sh', ...args])
    for (let i = 0; i < runs; i++) {
      // Every output is removed before the run that writes it: overwriting a 1 GiB file costs
      // its truncation (about 1 s here for the CLI, which opens with O_TRUNC).
      if (compare) {
        await fs.rm(cliAge, { force: true })
        times.cliEnc.push(await measured('age', ['-e', '-r', recipient, '-o', cliAge, input]))
        // The codec fsyncs the backup it encodes before renaming it into place; age does not.
        await fs.rm(cliAge, { force: true })
        times.cliEncSync.push(
          await sh('age -e -r "$1" -o "$2" "$3" && sync "$2"', recipient, cliAge, input),
        )
      }
      await fs.rm(codecAge, { force: true })
      const enc = await measured(NODE, [self, '--child', 'encode', input, codecAge, recipient])
      times.codecEnc.push(enc)
      if (JSON.parse(enc.out).plainSha256 !== inputSha) throw new Error('encode: wrong sha256')
      if (compare) {
        times.cliDec.push(await measured('age', ['-d', '-i', keyFile, '-o', out, cliAge]))
        await fs.rm(out, { force: true })
        times.cliDecSync.push(
          await sh('age -d -i "$1" -o "$2" "$3" && sync "$2"', keyFile, out, cliAge),
        )
        await fs.rm(out, { force: true })
      }
      // At the big size the codec decrypts the CLI's file: the same bytes the CLI decrypted.
      const source = compare ? cliAge : codecAge
      const dec = await measured(NODE, [self, '--child', 'decode', source, out, keyFile])
      times.codecDec.push(dec)
      if (JSON.parse(dec.out).plainSha256 !== inputSha) throw new Error('decode: output differs')
      await fs.rm(out, { force: true })
      if (compare) {
        // The floor under both: the same streams, a sha256 and the fsync, no encryption.
        times.codecCopy.push(await measured(NODE, [self, '--child', 'copy', input, out]))
        await fs.rm(out, { force: true })
      }
      log(`  ${mib} MiB run ${i + 1}/${runs} done`)
    }
    const med = (list, key) => (list.length ? median(list.map((m) => m[key])) : NaN)
    results[mib] = Object.fromEntries(
      Object.entries(times).map(([k, list]) => [
        k,
        { wall: med(list, 'wall'), cpu: med(list, 'cpu'), rss: med(list, 'rss') },
      ]),
    )
    // Throughput ratios round by round (the CLI and the codec ran back to back, on the same
    // input), so a burst of load on the machine moves both sides of one ratio.
    const perRound = (cli, ours) => median(cli.map((c, i) => c.wall / ours[i].wall))
    if (compare) {
      results[mib].ratios = {
        encrypt: perRound(times.cliEnc, times.codecEnc),
        encryptSync: perRound(times.cliEncSync, times.codecEnc),
        decrypt: perRound(times.cliDec, times.codecDec),
        decryptSync: perRound(times.cliDecSync, times.codecDec),
      }
    }
    for (const f of [input, cliAge, codecAge]) await fs.rm(f, { force: true })
  }

  const r = results[big]
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU'
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')
  const row = (name, m) =>
    `${name.padEnd(34)}${fmt(m.wall).padStart(7)}${fmt(m.cpu).padStart(8)}${fmt(m.rss, 0).padStart(10)}`
  log('')
  log(`age encryption, ${big} MiB of random data, median of ${runs}`)
  log(`age ${ageVersion}, Node ${process.version}, ${os.cpus().length} x ${cpuModel}, load ${load}`)
  log('')
  log(`${''.padEnd(34)}${'wall s'.padStart(7)}${'CPU s'.padStart(8)}${'peak MiB'.padStart(10)}`)
  for (const [op, cli, synced, ours] of [
    ['encrypt', r.cliEnc, r.cliEncSync, r.codecEnc],
    ['decrypt', r.cliDec, r.cliDecSync, r.codecDec],
  ]) {
    log(row(`${op}: age CLI`, cli))
    log(row(`${op}: age CLI, then sync file`, synced))
    log(row(`${op}: codec`, ours))
    log(
      `${op}: codec / age CLI`.padEnd(34) +
        `${fmt(ours.wall / cli.wall)}x`.padStart(7) +
        `${fmt(ours.cpu / cli.cpu)}x`.padStart(8) +
        `${fmt(ours.rss / cli.rss, 1)}x`.padStart(10) +
        `   (wall ${fmt(ours.wall / synced.wall)}x against age CLI + sync)`,
    )
    log('')
  }
  log(
    row('copy: codec, no encryption', r.codecCopy) +
      '   (the floor: read, one sha256, write, fsync)',
  )
  log('')
  log(
    `age ratio: codec throughput / age CLI throughput (same ${big} MiB input, same run, median of ${runs} back-to-back rounds; 1.00x = as fast as the CLI)`,
  )
  for (const [op, plain, synced] of [
    ['encrypt', r.ratios.encrypt, r.ratios.encryptSync],
    ['decrypt', r.ratios.decrypt, r.ratios.decryptSync],
  ]) {
    log(
      `age ${op} ratio`.padEnd(34) +
        `${fmt(plain)}x`.padStart(7) +
        `   (${fmt(synced)}x against age CLI + sync)`,
    )
  }
  if (small > 0) {
    log('')
    const s = results[small]
    log(
      `codec peak RSS at ${small} vs ${big} MiB: encode ${fmt(s.codecEnc.rss, 0)} vs ${fmt(r.codecEnc.rss, 0)} MiB, ` +
        `decode ${fmt(s.codecDec.rss, 0)} vs ${fmt(r.codecDec.rss, 0)} MiB`,
    )
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv.slice(3))
} else {
  const cleanup = () => {
    if (process.env.BENCH_KEEP !== '1' && existsSync(WORK))
      rmSync(WORK, { recursive: true, force: true })
  }
  process.on('SIGINT', () => {
    cleanup()
    process.exit(130)
  })
  try {
    await main()
  } finally {
    cleanup()
  }
}
