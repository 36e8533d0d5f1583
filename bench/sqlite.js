#!/usr/bin/env node
/**
 * SQLite benchmark: the action's backup and drill next to the bare commands of the runbook
 * (sqlite3 ".backup", sqlite3 ".restore" + PRAGMA integrity_check) and next to a plain `cp`,
 * side by side on the same generated OmniAI database, at a small size and then at BENCH_MB, so
 * both the time overhead and how memory grows with the database can be seen in one run.
 *
 *   npm run bench                         # 128 MiB, then ~1 GiB (BENCH_MB=1024)
 *   npm run bench -- --gib 1              # the issue's table at 1 GiB (every row, one run)
 *   npm run bench -- --gib 0.25,1,2       # the same, and the growth rows and chart across sizes
 *   BENCH_MB=64 node bench/sqlite.js      # quick check that everything works (8, then 64 MiB)
 *
 * "now" is the working tree, compiled (tsc) and bundled (ncc) into bench/.work/sqlite/build;
 * "before" is dist/ as it is on disk, or the bundle folder BENCH_BEFORE_DIST names (BENCH_BEFORE=0
 * leaves it out). With two sizes or more,
 * bench/sqlite-growth.svg charts seconds and peak RSS against database size. At 1 GiB (or the
 * largest size) the working tree's age codec is timed next to the age CLI on the backup file
 * (BENCH_AGE=0 skips it; needs `age` and `age-keygen`). Then bench/postgres.js runs at each size
 * with the same "now" bundle, and its rows join the issue's table and the growth rows
 * (BENCH_PG=0 skips it, BENCH_PG=table runs it at the table's size only; needs a PostgreSQL
 * server install).
 *
 * Environment:
 *   BENCH_MB            size of the big database in MiB (default 1024)
 *   BENCH_SMALL_MB      size of the small database run first, to compare peak RSS against
 *                       (default BENCH_MB / 8, at most 128, at least 8; 0 skips it)
 *   BENCH_RUNS          timed runs per command, median reported (default 3)
 *   BENCH_WARMUP        untimed runs per command before those (default 1)
 *   BENCH_MESSAGE_CHARS characters per message (default 4000: ~49 KiB per conversation)
 *   BENCH_AUDIT_ROWS_PER_MB  audit_logs rows per MiB of database (default 250: 256,000 rows at
 *                       1 GiB, about one per message; the audit digest is per-row JavaScript)
 *   BENCH_AUDIT_ROWS    a fixed audit_logs row count instead
 *   BENCH_RSS           how peak RSS is read: gnu-time (default when /usr/bin/time -v works),
 *                       python (getrusage(RUSAGE_CHILDREN) in a python3 wrapper) or none
 *   BENCH_PROFILE=0     skip the extra --cpu-prof run of the action's backup and drill (big size)
 *   BENCH_KEEP=1        keep bench/.work/sqlite (databases, reports, logs) afterwards
 *
 * Every timed command starts after an untimed `sync`, so no command pays for writing back the
 * previous one's dirty pages. The page cache is not dropped (that needs root): the warm-up run
 * reads everything once, so every timed run reads from a warm cache.
 * Scratch files go to bench/.work/sqlite, removed at the end (also on failure or Ctrl-C).
 * Exits non-zero only when a command fails; slow ratios are printed, never fatal.
 *
 * `node bench/sqlite.js --probe FILE` (used internally) times the parts of the action's
 * inspection one by one on FILE, with the same driver the action uses.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { log, median, mib, num, sha256Short, timeGroup } from './lib.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const WORK_PARENT = path.join(ROOT, 'bench', '.work')
const WORK = path.join(WORK_PARENT, 'sqlite')
const NODE = process.execPath
const SQLITE3 = 'sqlite3'
const GNU_TIME = '/usr/bin/time'
// The working tree compiled here (inside the repository, so node_modules resolves).
const LIB = path.join(WORK, 'build', 'lib')

// ---------------------------------------------------------------------------------------------
// Probe mode: the action's post-snapshot reads, one at a time, with the action's driver.

async function openReadonly(file) {
  if (process.env.OMNIAI_SQLITE_DRIVER !== 'node') {
    try {
      const { default: Database } = await import('better-sqlite3')
      const db = new Database(file, { readonly: true, fileMustExist: true })
      db.defaultSafeIntegers(true)
      return {
        driver: 'better-sqlite3',
        version: String(db.prepare('SELECT sqlite_version()').pluck().get()),
        all: (sql) => db.prepare(sql).raw(true).all(),
        close: () => db.close(),
      }
    } catch {
      // fall through to node:sqlite, as the action does when no prebuild loads
    }
  }
  const { DatabaseSync } = await import('node:sqlite')
  const db = new DatabaseSync(file, { readOnly: true })
  const all = (sql) => {
    const s = db.prepare(sql)
    s.setReturnArrays(true)
    s.setReadBigInts(true)
    return s.all()
  }
  return {
    driver: 'node:sqlite',
    version: String(all('SELECT sqlite_version()')[0][0]),
    all,
    close: () => db.close(),
  }
}

async function probe(file) {
  const db = await openReadonly(file)
  const ms = async (fn) => {
    const t0 = performance.now()
    const r = await fn()
    return [performance.now() - t0, r]
  }
  const [integrityMs, ic] = await ms(() => db.all('PRAGMA integrity_check'))
  if (ic.length !== 1 || ic[0][0] !== 'ok') throw new Error(`integrity_check: ${ic.join('; ')}`)
  const [foreignKeyMs] = await ms(() => db.all('PRAGMA foreign_key_check'))
  db.close()
  // As src/util/fs.ts sha256File: a stream of 1 MiB chunks into one hash.
  const [sha256Ms] = await ms(async () => {
    const hash = createHash('sha256')
    for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(c)
    return hash.digest('hex')
  })
  log(
    JSON.stringify({ driver: db.driver, version: db.version, integrityMs, foreignKeyMs, sha256Ms }),
  )
}

if (process.argv[2] === '--probe') {
  await probe(process.argv[3])
  process.exit(0)
}

// Codec mode: one age encode or decode with the working tree's codec, in its own process (like
// the age CLI), so its peak RSS is its own: --codec encode|decode LIB SRC DEST KEY
if (process.argv[2] === '--codec') {
  const [op, lib, src, dest, key] = process.argv.slice(3)
  const codec = await import(pathToFileURL(path.join(lib, 'codec', 'index.js')).href)
  const digests =
    op === 'encode'
      ? await codec.encodeFile(src, dest, {
          compression: 'none',
          encryption: { kind: 'age', recipients: [key] },
        })
      : await codec.decodeFile(src, dest, {
          compression: 'none',
          decryption: { kind: 'age', identities: [await fs.readFile(key, 'utf8')] },
          // As every mode decodes: into scratch, which is not fsynced (modes/plain.ts).
          scratch: true,
        })
  log(JSON.stringify(digests))
  process.exit(0)
}

/** `--gib 0.25,1,2`: the sizes to run, in GiB; the issue's table is printed at 1 GiB (or the largest). */
function gibArgument() {
  const i = process.argv.indexOf('--gib')
  if (i < 0) return null
  const sizes = String(process.argv[i + 1] ?? '')
    .split(',')
    .map(Number)
  if (sizes.length === 0 || sizes.some((g) => !Number.isFinite(g) || g <= 0))
    throw new Error(
      `--gib ${process.argv[i + 1]}: give sizes in GiB, e.g. --gib 1 or --gib 0.25,1,2`,
    )
  return sizes.map((g) => Math.round(g * 1024))
}
const GIB_SIZES = gibArgument()

// ---------------------------------------------------------------------------------------------
// Settings

const BENCH_MB = GIB_SIZES
  ? GIB_SIZES.includes(1024)
    ? 1024
    : Math.max(...GIB_SIZES)
  : Math.max(1, num('BENCH_MB', 1024))
const SMALL_MB = Math.round(
  num('BENCH_SMALL_MB', Math.min(128, Math.max(8, Math.round(BENCH_MB / 8)))),
)
const RUNS = Math.max(1, Math.round(num('BENCH_RUNS', 3)))
const WARMUP = Math.round(num('BENCH_WARMUP', 1))
const measureGroup = (title, entries) =>
  timeGroup(title, entries, { warmup: WARMUP, runs: RUNS, labelWidth: 44 })
const MESSAGE_CHARS = Math.max(1, Math.round(num('BENCH_MESSAGE_CHARS', 4000)))
// A fixed count when BENCH_AUDIT_ROWS is set, else BENCH_AUDIT_ROWS_PER_MB rows per MiB.
const AUDIT_ROWS = Math.round(num('BENCH_AUDIT_ROWS', 0))
const AUDIT_ROWS_PER_MB = process.env.BENCH_AUDIT_ROWS ? null : num('BENCH_AUDIT_ROWS_PER_MB', 250)
const KEEP = process.env.BENCH_KEEP === '1'
// The action as committed in dist/ ("before") next to the working tree compiled by this script.
const BEFORE = process.env.BENCH_BEFORE !== '0'
// "before" is dist/ unless BENCH_BEFORE_DIST names another bundle folder (e.g. one built from a
// commit: when dist/ was rebuilt from the working tree, it is not "before" any more).
const BEFORE_DIST = path.resolve(process.env.BENCH_BEFORE_DIST || path.join(ROOT, 'dist'))
const AGE = process.env.BENCH_AGE !== '0'
const PG = process.env.BENCH_PG ?? 'all'
const SVG_FILE = path.join(ROOT, 'bench', 'sqlite-growth.svg')
const PROFILE = process.env.BENCH_PROFILE !== '0'

function rssMethod() {
  const wanted = process.env.BENCH_RSS || ''
  const works = (cmd, args) => {
    try {
      return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0
    } catch {
      return false
    }
  }
  if ((wanted === '' || wanted === 'gnu-time') && works(GNU_TIME, ['-v', 'true'])) return 'gnu-time'
  if ((wanted === '' || wanted === 'python') && works('python3', ['-c', 'import resource'])) {
    return 'python'
  }
  return 'none'
}
const RSS = rssMethod()
const RSS_TEXT = {
  'gnu-time':
    'GNU time -v "Maximum resident set size" (the kernel\'s ru_maxrss of the command, from wait4)',
  python:
    'python3 wrapper: getrusage(RUSAGE_CHILDREN).ru_maxrss (floor ~13 MiB: the forked child counts python until exec)',
  none: 'n/a (install GNU time: apt-get install -y time)',
}[RSS]
const PY_WRAPPER =
  'import resource,subprocess,sys\n' +
  'r=subprocess.call(sys.argv[2:])\n' +
  'open(sys.argv[1],"w").write("Maximum resident set size (kbytes): %d\\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n' +
  'sys.exit(r)'

/** The child environment: nothing that would make the action think it runs in a workflow. */
const CHILD_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(GITHUB_|INPUT_|RUNNER_)/.test(k)),
)

// ---------------------------------------------------------------------------------------------
// Cleanup

let cleanedUp = false
function cleanup() {
  if (cleanedUp) return
  cleanedUp = true
  if (KEEP) return
  rmSync(WORK, { recursive: true, force: true })
  // bench/.work is shared with the other benchmarks: remove it only when nothing else is left.
  try {
    if (readdirSync(WORK_PARENT).length === 0) rmdirSync(WORK_PARENT)
  } catch {
    // already gone, or in use
  }
}
process.on('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n${sig}: removing ${path.relative(ROOT, WORK)}`)
    cleanup()
    process.exit(128 + (os.constants.signals[sig] ?? 1))
  })
}

// ---------------------------------------------------------------------------------------------
// Running and measuring commands

/** Runs a command to completion and returns its output; throws with the tail when it fails. */
function run(file, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const keep = (d) => {
      out += d
      if (out.length > 1 << 20) out = out.slice(-(1 << 19))
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out)
      else {
        const tail = out.trim().split('\n').slice(-15).join('\n')
        reject(
          new Error(
            `command failed (${signal ?? `exit ${code}`}): ${[file, ...args].join(' ')}\n${tail}`,
          ),
        )
      }
    })
  })
}

const flush = () => run('sync', [])

/**
 * One timed command: wall seconds measured here around the child (the wrapper's own start-up,
 * a millisecond or two, included) and its peak RSS in MiB. Flushes dirty pages first, untimed.
 */
async function measured(file, args) {
  await flush()
  const rssFile = path.join(WORK, 'rss.txt')
  await fs.rm(rssFile, { force: true })
  const t0 = performance.now()
  let out
  if (RSS === 'gnu-time') out = await run(GNU_TIME, ['-v', '-o', rssFile, file, ...args])
  else if (RSS === 'python') out = await run('python3', ['-c', PY_WRAPPER, rssFile, file, ...args])
  else out = await run(file, args)
  const seconds = (performance.now() - t0) / 1000
  let rss = NaN
  let cpu = NaN
  if (RSS !== 'none') {
    const text = await fs.readFile(rssFile, 'utf8')
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(text)
    if (m) rss = Number(m[1]) / 1024
    // CPU seconds of the command's process tree (GNU time only): with fewer cores than busy
    // threads, wall time follows them.
    const user = /User time \(seconds\): ([\d.]+)/.exec(text)
    const system = /System time \(seconds\): ([\d.]+)/.exec(text)
    if (user && system) cpu = Number(user[1]) + Number(system[1])
  }
  return { seconds, rss, cpu, out }
}

/**
 * Entries are measured interleaved: warm-up runs first, then RUNS rounds, alternating the
 * order, so drift on a noisy machine hits every entry alike. `prepare` (untimed) runs before
 * each sample, `after` (untimed) reads the action's report.
 */

async function readReport(reportFile) {
  const report = JSON.parse(await fs.readFile(reportFile, 'utf8'))
  if (!report.ok) {
    const failed = (report.checks ?? []).filter((c) => !c.ok)
    throw new Error(
      `${reportFile}: the action reported ok=false: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`,
    )
  }
  return report
}

// ---------------------------------------------------------------------------------------------
// The databases

async function demoDb(action, file, conversations, auditRows) {
  await fs.rm(file, { force: true })
  const t0 = performance.now()
  await run(NODE, [
    action,
    'demo-db',
    '--out',
    file,
    '--conversations',
    String(conversations),
    '--message-chars',
    String(MESSAGE_CHARS),
    '--audit-rows',
    String(auditRows),
  ])
  const seconds = (performance.now() - t0) / 1000
  // demo-db closes its connection, which checkpoints; a leftover WAL would make cp unfair.
  if (existsSync(`${file}-wal`) && (await fs.stat(`${file}-wal`)).size > 0) {
    await run(SQLITE3, [file, 'PRAGMA wal_checkpoint(TRUNCATE)'])
  }
  return { seconds, bytes: (await fs.stat(file)).size }
}

/**
 * Bytes per conversation (12 messages with attachments and a tag), per audit row, and the fixed
 * rest, from three small databases; returns what demo-db needs for a size in MiB.
 */
async function calibrate(action) {
  const gen = async (n, c, a) => {
    const file = path.join(WORK, `calibrate-${n}.db`)
    const { bytes } = await demoDb(action, file, c, a)
    await fs.rm(file, { force: true })
    return bytes
  }
  const [c1, c2, a1, a2] = [200, 1000, 1000, 20000]
  const base = await gen(1, c1, a1)
  const perConversation = ((await gen(2, c2, a1)) - base) / (c2 - c1)
  const perAudit = ((await gen(3, c1, a2)) - base) / (a2 - a1)
  const fixed = base - perConversation * c1 - perAudit * a1
  log(
    `calibration: ${(perConversation / 1024).toFixed(1)} KiB per conversation (12 messages of ${MESSAGE_CHARS} chars), ${perAudit.toFixed(0)} B per audit row, ${(Math.max(0, fixed) / 1024).toFixed(0)} KiB fixed`,
  )
  return (mb) => {
    const auditRows = AUDIT_ROWS_PER_MB === null ? AUDIT_ROWS : Math.round(AUDIT_ROWS_PER_MB * mb)
    const rest = mb * (1 << 20) - fixed - auditRows * perAudit
    return { conversations: Math.max(10, Math.round(rest / perConversation)), auditRows }
  }
}

// ---------------------------------------------------------------------------------------------
// One size: generate, then backups, drills and the probe of the action's inspection

async function benchSize({ action, before }, demoOptionsFor, mb) {
  const dir = path.join(WORK, `${mb}mb`)
  await fs.mkdir(dir, { recursive: true })
  const src = path.join(dir, 'omniai.db')
  const { conversations, auditRows } = demoOptionsFor(mb)
  log(
    `\n#### ${mb} MiB: demo-db --conversations ${conversations} --message-chars ${MESSAGE_CHARS} --audit-rows ${auditRows}`,
  )
  const gen = await demoDb(action, src, conversations, auditRows)
  log(
    `generated in ${gen.seconds.toFixed(1)} s: ${mib(gen.bytes).toFixed(0)} MiB (${gen.bytes} bytes, target ${mb} MiB)`,
  )

  let seq = 0
  const fresh = (name) => path.join(dir, `${name}-${++seq}`)

  // ---- Backups
  const cliDest = path.join(dir, 'sqlite3-backup.db')
  const cpDest = path.join(dir, 'cp-copy.db')
  const rmDb = async (file) => {
    for (const s of ['', '-journal', '-wal', '-shm']) await fs.rm(file + s, { force: true })
  }
  let lastBackupDir = null
  let backupFile = null
  const entries = [
    {
      label: 'sqlite3 SRC ".backup DEST"',
      prepare: () => rmDb(cliDest),
      sample: () => measured(SQLITE3, [src, `.backup ${cliDest}`]),
      after: () => rmDb(cliDest),
    },
    {
      label: 'cp SRC DEST (not a safe backup)',
      prepare: () => rmDb(cpDest),
      sample: () => measured('cp', [src, cpDest]),
      after: () => rmDb(cpDest),
    },
    actionBackup('action backup', action, true),
    ...(before ? [actionBackup('action backup, before (dist/)', before, false)] : []),
    // Issue 13's "verified every night": the backup restored into a scratch copy and checked.
    actionBackup('action backup, restore-check: true', action, false, ['--restore-check', 'true']),
  ]
  function actionBackup(label, bundle, keep, extra = []) {
    let out = null
    return {
      label,
      prepare: async () => {
        out = fresh('backups')
      },
      sample: () =>
        measured(NODE, [
          bundle,
          'backup',
          '--connection-string',
          src,
          '--backup-dir',
          out,
          '--report-file',
          `${out}.json`,
          ...extra,
        ]),
      after: async () => {
        const report = await readReport(`${out}.json`)
        if (!keep) {
          await fs.rm(out, { recursive: true, force: true })
          return report.durations
        }
        // Only the newest backup of the working tree is kept: it is what the drills restore.
        if (lastBackupDir) await fs.rm(lastBackupDir, { recursive: true, force: true })
        lastBackupDir = out
        backupFile = report.backup.path
        return report.durations
      },
    }
  }
  const backups = await measureGroup(`${mb} MiB: backups`, entries)
  const [cliBackup, cpBackup, actBackup] = backups
  const beforeBackup = before ? backups[3] : undefined
  const checkedBackup = backups.at(-1)

  // ---- Drills, both restoring the action's newest backup
  const restored = path.join(dir, 'manual-restored.db')
  const scratch = path.join(dir, 'scratch')
  const [manualDrill, cpDrill, actDrill, beforeDrill] = await measureGroup(`${mb} MiB: drills`, [
    {
      label: 'sqlite3 ".restore" + PRAGMA integrity_check',
      prepare: () => rmDb(restored),
      sample: async () => {
        const r1 = await measured(SQLITE3, [restored, `.restore ${backupFile}`])
        const r2 = await measured(SQLITE3, [restored, 'PRAGMA integrity_check'])
        if (r2.out.trim() !== 'ok') {
          throw new Error(`integrity_check of ${restored}: ${r2.out.trim().slice(0, 500)}`)
        }
        return {
          seconds: r1.seconds + r2.seconds,
          rss: Math.max(r1.rss, r2.rss),
          cpu: r1.cpu + r2.cpu,
          parts: [r1.seconds, r2.seconds],
        }
      },
      after: async (r) => {
        await rmDb(restored)
        return { restoreMs: r.parts[0] * 1000, integrityMs: r.parts[1] * 1000 }
      },
    },
    {
      label: 'cp + sqlite3 PRAGMA integrity_check',
      prepare: () => rmDb(restored),
      sample: async () => {
        const r1 = await measured('cp', [backupFile, restored])
        const r2 = await measured(SQLITE3, [restored, 'PRAGMA integrity_check'])
        if (r2.out.trim() !== 'ok') throw new Error(`integrity_check of ${restored}: ${r2.out}`)
        return {
          seconds: r1.seconds + r2.seconds,
          rss: Math.max(r1.rss, r2.rss),
          cpu: r1.cpu + r2.cpu,
        }
      },
      after: () => rmDb(restored),
    },
    actionDrill('action drill', action),
    ...(before ? [actionDrill('action drill, before (dist/)', before)] : []),
  ])
  function actionDrill(label, bundle) {
    let report = null
    return {
      label,
      prepare: async () => {
        report = path.join(dir, `drill-${++seq}.json`)
      },
      sample: () =>
        measured(NODE, [
          bundle,
          'drill',
          '--backup-dir',
          lastBackupDir,
          '--scratch-dir',
          scratch,
          '--report-file',
          report,
          '--drill-log',
          'none',
        ]),
      after: async () => (await readReport(report)).durations,
    }
  }

  // ---- age: the working tree's codec next to the age CLI, on the backup file, at one size
  const age = AGE && mb === BENCH_MB ? await benchAge(dir, backupFile, mb) : null

  // ---- The action's inspection, part by part, on the same backup file
  log(`\n== ${mb} MiB: the action's post-copy reads, one at a time (same driver)`)
  const probes = []
  for (let i = 0; i < WARMUP + RUNS; i++) {
    await flush()
    const out = await run(NODE, [fileURLToPath(import.meta.url), '--probe', backupFile])
    const p = JSON.parse(out.trim().split('\n').pop())
    log(
      `   ${i < WARMUP ? 'warmup' : 'run   '} integrity_check ${(p.integrityMs / 1000).toFixed(2)} s, foreign_key_check ${(p.foreignKeyMs / 1000).toFixed(2)} s, sha256 ${(p.sha256Ms / 1000).toFixed(2)} s (${p.driver} ${p.version})`,
    )
    if (i >= WARMUP) probes.push(p)
  }

  // ---- One profiled run of each action command, at the big size only
  let profile = null
  if (PROFILE && mb === BENCH_MB) {
    log(`\n== ${mb} MiB: one run of each action command under node --cpu-prof`)
    const pdir = path.join(dir, 'profile')
    const backup = await profiled(path.join(pdir, 'backup'), [
      action,
      'backup',
      '--connection-string',
      src,
      '--backup-dir',
      path.join(pdir, 'backups'),
      '--report-file',
      path.join(pdir, 'backup.json'),
    ])
    const drill = await profiled(path.join(pdir, 'drill'), [
      action,
      'drill',
      '--backup-dir',
      lastBackupDir,
      '--scratch-dir',
      scratch,
      '--report-file',
      path.join(pdir, 'drill.json'),
      '--drill-log',
      'none',
    ])
    profile = { backup, drill }
  }
  await fs.rm(dir, { recursive: true, force: true })

  cpBackup.bare = cliBackup
  actBackup.bare = cliBackup
  checkedBackup.bare = cliBackup
  actDrill.bare = manualDrill
  if (beforeBackup) beforeBackup.bare = cliBackup
  if (beforeDrill) beforeDrill.bare = manualDrill
  cpDrill.bare = manualDrill
  if (age) {
    age.codecEnc.bare = age.cliEnc
    age.codecDec.bare = age.cliDec
  }
  return {
    cpDrill,
    beforeBackup,
    checkedBackup,
    beforeDrill,
    age,
    mb,
    bytes: gen.bytes,
    conversations,
    auditRows,
    genSeconds: gen.seconds,
    cliBackup,
    cpBackup,
    actBackup,
    manualDrill,
    actDrill,
    probes,
    profile,
  }
}

/**
 * age encrypt and decrypt of the backup file: the CLI (`age -e -r`, `age -d -i`) next to the
 * working tree's codec (`--codec`, a fresh Node process each), alternating; throughput ratio =
 * CLI seconds / codec seconds (1.00x = as fast as the CLI).
 */
async function benchAge(dir, file, mb) {
  const key = path.join(dir, 'age-key.txt')
  await run('age-keygen', ['-o', key])
  const recipient = (await run('age-keygen', ['-y', key])).trim()
  const cliOut = path.join(dir, 'cli.age')
  const codecOut = path.join(dir, 'codec.age')
  const plainOut = path.join(dir, 'plain.out')
  const rm = (f) => fs.rm(f, { force: true })
  const codec = (op, src, dest) => [
    fileURLToPath(import.meta.url),
    '--codec',
    op,
    LIB,
    src,
    dest,
    op === 'encode' ? recipient : key,
  ]
  const [cliEnc, codecEnc] = await measureGroup(`${mb} MiB: age encrypt`, [
    {
      label: 'age -e (CLI)',
      prepare: () => rm(cliOut),
      sample: () => measured('age', ['-e', '-r', recipient, '-o', cliOut, file]),
    },
    {
      label: 'codec encode (working tree)',
      prepare: () => rm(codecOut),
      sample: () => measured(NODE, codec('encode', file, codecOut)),
      after: () => rm(codecOut),
    },
  ])
  const [cliDec, codecDec] = await measureGroup(`${mb} MiB: age decrypt`, [
    {
      label: 'age -d (CLI)',
      prepare: () => rm(plainOut),
      sample: () => measured('age', ['-d', '-i', key, '-o', plainOut, cliOut]),
      after: () => rm(plainOut),
    },
    {
      label: 'codec decode (working tree)',
      prepare: () => rm(plainOut),
      sample: () => measured(NODE, codec('decode', cliOut, plainOut)),
      after: () => rm(plainOut),
    },
  ])
  await rm(cliOut)
  return { cliEnc, codecEnc, cliDec, codecDec }
}

/**
 * What each sample of a CPU profile was doing, by the functions on its stack (the bundle keeps
 * the source's function names). SQLite's work shows under the JS call that ran the statement;
 * waits for I/O (fsync, file reads on the thread pool) show as idle.
 */
const PROFILE_CATEGORIES = [
  [(f) => f.has('integrityProblems') && f.has('objects'), 'PRAGMA foreign_key_check'],
  [(f) => f.has('integrityProblems'), 'PRAGMA integrity_check'],
  [(f) => f.has('sha256File'), 'sha256 of the file'],
  [(f) => f.has('digestAudit'), 'audit-log digest (every audit row)'],
  [(f) => f.has('recentConversations') || f.has('conversations'), 'spot-check digests'],
  [(f) => f.has('rowCounts'), 'row counts'],
  [(f) => f.has('schema'), 'schema'],
  // better-sqlite3's backup loop (lib/methods/backup.js); node:sqlite's runs off the JS stack.
  [(f) => f.has('step'), 'backup API copy (snapshot / restore)'],
  [(f) => f.has('(idle)'), 'idle (waiting on fsync and file I/O)'],
  [(f) => f.has('(garbage collector)'), 'garbage collection'],
  [() => true, 'other (node start-up, module loading, manifest, report)'],
]

async function profiled(dir, args) {
  await flush()
  const t0 = performance.now()
  await run(NODE, ['--cpu-prof', '--cpu-prof-dir', dir, ...args])
  const seconds = (performance.now() - t0) / 1000
  const file = (await fs.readdir(dir)).find((f) => f.endsWith('.cpuprofile'))
  const prof = JSON.parse(await fs.readFile(path.join(dir, file), 'utf8'))
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const names = new Map()
  const stackOf = (id) => {
    if (!names.has(id)) {
      const set = new Set()
      for (let x = id; x !== undefined; x = parent.get(x))
        set.add(nodes.get(x).callFrame.functionName)
      names.set(id, set)
    }
    return names.get(id)
  }
  const ms = new Map(PROFILE_CATEGORIES.map(([, label]) => [label, 0]))
  prof.samples.forEach((id, i) => {
    const f = stackOf(id)
    const label = PROFILE_CATEGORIES.find(([test]) => test(f))[1]
    ms.set(label, ms.get(label) + prof.timeDeltas[i] / 1000)
  })
  const total = [...ms.values()].reduce((a, b) => a + b, 0)
  log(
    `   ${path.basename(dir).padEnd(8)} ${seconds.toFixed(2)} s wall, ${(total / 1000).toFixed(2)} s profiled`,
  )
  return { seconds, total, ms }
}

// ---------------------------------------------------------------------------------------------
// Output

/** A plain-text table; the first `left` columns are left-aligned, the others right-aligned. */
function table(head, body, left = 1) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells) =>
    cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
const sec = (ms) => (ms / 1000).toFixed(2)
const ratio = (r) => (r.bare ? `${(r.seconds / r.bare.seconds).toFixed(2)}x` : '1.00x')

function resultTable(res) {
  const rows = [
    ['backup', res.cliBackup],
    ['backup', res.cpBackup],
    ['backup', res.actBackup],
    ...(res.beforeBackup ? [['backup', res.beforeBackup]] : []),
    ['backup', res.checkedBackup],
    ['drill', res.manualDrill],
    ['drill', res.cpDrill],
    ['drill', res.actDrill],
    ...(res.beforeDrill ? [['drill', res.beforeDrill]] : []),
    ...(res.age
      ? [
          ['age', res.age.cliEnc],
          ['age', res.age.codecEnc],
          ['age', res.age.cliDec],
          ['age', res.age.codecDec],
        ]
      : []),
  ]
  return table(
    ['', 'command', 'median s', 'runs s', 'CPU s', 'peak RSS MiB', 'vs bare'],
    rows.map(([kind, r]) => [
      kind,
      r.label,
      r.seconds.toFixed(2),
      r.samples.map((s) => s.seconds.toFixed(2)).join(' / '),
      Number.isNaN(r.cpu ?? NaN) ? 'n/a' : r.cpu.toFixed(2),
      Number.isNaN(r.rss) ? 'n/a' : r.rss.toFixed(1),
      ratio(r),
    ]),
    2,
  )
}

const PHASE_NAMES = {
  snapshotMs: 'snapshot',
  inspectMs: 'inspect',
  checksumMs: 'checksum',
  restoreMs: 'restore',
  checksMs: 'checks',
}

/** `wall = phase + phase + ... + other`, from whatever durations the action's report has. */
function phaseSum(e) {
  const keys = [...new Set(e.phases.flatMap((p) => Object.keys(p)))].filter(
    (k) => k !== 'totalMs' && k.endsWith('Ms'),
  )
  const med = (k) => median(e.phases.map((p) => p[k] ?? 0))
  const other = e.seconds * 1000 - keys.reduce((a, k) => a + med(k), 0)
  const parts = keys.map((k) => `${PHASE_NAMES[k] ?? k.replace(/Ms$/, '')} ${sec(med(k))}`)
  return `${e.seconds.toFixed(2)} s = ${[...parts, `other ${sec(other)}`].join(' + ')}`
}

function phaseLines(res) {
  const b = res.actBackup
  const d = res.actDrill
  const m = res.manualDrill
  const p = (k) => median(res.probes.map((x) => x[k])) / 1000
  const [ic, fk, sha] = [p('integrityMs'), p('foreignKeyMs'), p('sha256Ms')]
  const restore = median(m.phases.map((x) => x.restoreMs)) / 1000
  const bareIc = median(m.phases.map((x) => x.integrityMs)) / 1000
  const s2 = (x) => x.toFixed(2)
  const estimate = (e, parts, rest) => {
    const sum = parts.reduce((a, [, x]) => a + x, 0)
    return [
      `      estimate ~ ${parts.map(([n, x]) => `${n} ${s2(x)}`).join(' + ')} = ${s2(sum)} s;`,
      `        remainder ${s2(e.seconds - sum)} s: ${rest}`,
    ]
  }
  return [
    `  action backup ${phaseSum(b)}   (phases from its report)`,
    ...estimate(
      b,
      [
        ['copy (= sqlite3 .backup)', res.cliBackup.seconds],
        ['integrity_check', ic],
        ['foreign_key_check', fk],
        ['sha256', sha],
      ],
      'node start-up, input checks, the inventory (schema, row counts, audit and spot-check digests), journal_mode=DELETE, fsync, manifest, report',
    ),
    `  action drill  ${phaseSum(d)}`,
    ...estimate(
      d,
      [
        ['sha256', sha],
        ['restore (= sqlite3 .restore)', restore],
        ['integrity_check', ic],
        ['foreign_key_check', fk],
      ],
      'node start-up, reading the manifest, schema, row counts, spot-check and audit-log digests on the restored copy, deleting it, report',
    ),
    `  bare drill    ${m.seconds.toFixed(2)} s = sqlite3 .restore ${s2(restore)} + sqlite3 PRAGMA integrity_check ${s2(bareIc)}`,
    `  probe, each alone on the backup file with the action's driver: integrity_check ${s2(ic)}, foreign_key_check ${s2(fk)}, sha256 (1 MiB stream) ${s2(sha)} s`,
  ]
}

function profileLines(res) {
  if (!res.profile) return []
  const out = [
    '',
    'where the time goes inside the action (one run each under node --cpu-prof):',
    '',
  ]
  const { backup, drill } = res.profile
  const labels = PROFILE_CATEGORIES.map(([, l]) => l).filter(
    (l) => backup.ms.get(l) >= 5 || drill.ms.get(l) >= 5,
  )
  const cell = (p, l) =>
    `${(p.ms.get(l) / 1000).toFixed(2)} s ${((100 * p.ms.get(l)) / p.total).toFixed(0).padStart(3)}%`
  out.push(
    table(
      [
        '',
        `action backup (${backup.seconds.toFixed(2)} s)`,
        `action drill (${drill.seconds.toFixed(2)} s)`,
      ],
      labels.map((l) => [l, cell(backup, l), cell(drill, l)]),
    ),
  )
  return out
}

/** Seconds per further GiB between neighbouring sizes. */
function marginal(results, k) {
  return results
    .slice(1)
    .map(
      (r, i) => (r[k].seconds - results[i][k].seconds) / ((r.bytes - results[i].bytes) / 2 ** 30),
    )
}

/** The issue's table: every figure a ratio against the bare command, before and now. */
function issueTable(results) {
  const res = results.find((r) => r.mb === BENCH_MB) ?? results.at(-1)
  // The median runs' ratio, and in brackets the fastest runs' (noise on this kind of machine
  // only adds time: see "Memory the machine has not touched lately" in bench/README.md).
  const x = (a, b) =>
    a && b
      ? `${(a.seconds / b.seconds).toFixed(2)}x` +
        (a.fastest && b.fastest ? ` (${(a.fastest / b.fastest).toFixed(2)}x)` : '')
      : 'n/a'
  const speed = (cli, codec) =>
    cli && codec ? `${(cli.seconds / codec.seconds).toFixed(2)}x` : 'n/a'
  // Peak RSS at each size, and the cost of each further GiB (the slope between neighbouring
  // sizes): linear time keeps it the same, and start-up and other fixed costs drop out of it.
  const growth = (runs, k) => {
    if (runs.length < 2 || !runs[0][k]) return ['n/a', 'n/a']
    const rss = runs.map((r) => r[k].rss.toFixed(0)).join(' / ')
    const slopes = marginal(runs, k)
    const spread = (100 * (Math.max(...slopes) - Math.min(...slopes))) / median(slopes)
    return [rss, `${slopes.map((x) => x.toFixed(2)).join(' / ')} s (${spread.toFixed(0)}% apart)`]
  }
  const [rssNow, spreadNow] = growth(results, 'actBackup')
  const [rssBefore, spreadBefore] = growth(results, 'beforeBackup')
  const [drillRssNow] = growth(results, 'actDrill')
  const [drillRssBefore] = growth(results, 'beforeDrill')
  const sizes = results.map((r) => `${(r.bytes / 2 ** 30).toFixed(2)}`).join(' / ')
  // PostgreSQL: the same, from bench/postgres.js at each size (its own database sizes).
  const pgRuns = results.filter((r) => r.pg).map((r) => r.pg)
  const pg = res.pg ?? null
  const pgSizes = pgRuns.map((r) => (r.bytes / 2 ** 30).toFixed(2)).join(' / ')
  const [pgBackupRss, pgBackupSpread] = growth(pgRuns, 'actC')
  const [pgDrillRss] = growth(pgRuns, 'actR')
  const pgRows = pg
    ? [
        ['PostgreSQL backup / pg_dump -Fc', 'see POSTGRES.md', x(pg.actC, pg.bareC), '<= 1.10x'],
        [
          'PostgreSQL backup + restore-check / pg_dump -Fc',
          'n/a (new)',
          x(pg.checkedC, pg.bareC),
          '<= 2.0x',
        ],
        [
          'PostgreSQL drill / (createdb + pg_restore + dropdb)',
          'see POSTGRES.md',
          x(pg.actR, pg.bareR),
          '<= 1.25x',
        ],
        [
          'PostgreSQL backup jobs: 2 / single-job pg_dump -Fc',
          'see POSTGRES.md',
          x(pg.actD, pg.bareC),
          '< 1.0x',
        ],
        ...(pgRuns.length >= 2
          ? [
              [`PostgreSQL backup peak RSS MiB at ${pgSizes} GiB`, '', pgBackupRss, '<= 200, flat'],
              [`PostgreSQL drill peak RSS MiB at ${pgSizes} GiB`, '', pgDrillRss, '<= 200, flat'],
              ['PostgreSQL backup s per further GiB', '', pgBackupSpread, 'within 10%'],
            ]
          : [
              [
                'PostgreSQL peak RSS MiB: backup / jobs 2 / drill',
                '',
                [pg.actC, pg.actD, pg.actR].map((e) => e.rss.toFixed(0)).join(' / '),
                '<= 200',
              ],
            ]),
      ]
    : [['PostgreSQL rows', '', 'not run (BENCH_PG=0, or no PostgreSQL install)', '']]
  return [
    '',
    `THE ISSUE'S TABLE at ${mib(res.bytes).toFixed(0)} MiB (median of ${RUNS}, alternating rounds; load average now ${loadavg()}):`,
    `(a ratio of medians; in brackets, of the fastest runs)`,
    '',
    table(
      ['', 'before (dist/)', 'now (working tree)', 'target'],
      [
        [
          'SQLite backup / sqlite3 .backup',
          x(res.beforeBackup, res.cliBackup),
          x(res.actBackup, res.cliBackup),
          '<= 1.3x (stretch 1.0x)',
        ],
        [
          'SQLite backup + restore-check / sqlite3 .backup',
          'n/a (new)',
          x(res.checkedBackup, res.cliBackup),
          '<= 1.5x',
        ],
        [
          'SQLite drill / (cp + integrity_check)',
          x(res.beforeDrill, res.cpDrill),
          x(res.actDrill, res.cpDrill),
          '<= 1.3x',
        ],
        [
          'SQLite drill / (.restore + integrity_check)',
          x(res.beforeDrill, res.manualDrill),
          x(res.actDrill, res.manualDrill),
          '',
        ],
        [
          'age encrypt throughput / age CLI',
          'see ENCRYPTION.md',
          speed(res.age?.cliEnc, res.age?.codecEnc),
          '>= 0.7x',
        ],
        [
          'age decrypt throughput / age CLI',
          'see ENCRYPTION.md',
          speed(res.age?.cliDec, res.age?.codecDec),
          '>= 0.7x',
        ],
        [`SQLite backup peak RSS MiB at ${sizes} GiB`, rssBefore, rssNow, '<= 200, flat'],
        [`SQLite drill peak RSS MiB at ${sizes} GiB`, drillRssBefore, drillRssNow, '<= 200, flat'],
        ['SQLite backup s per further GiB, between sizes', spreadBefore, spreadNow, 'within 10%'],
        ...pgRows,
      ],
    ),
    '',
    `CPU seconds of each command's process tree (PostgreSQL: and the server backends it used),`,
    `median run. With ${os.cpus().length} cores no command takes less wall time than CPU s / ${os.cpus().length}; that floor, as a ratio:`,
    ...[
      ['SQLite backup', res.actBackup, res.cliBackup],
      ['SQLite backup + restore-check', res.checkedBackup, res.cliBackup],
      ['SQLite drill', res.actDrill, res.cpDrill],
      ...(pg
        ? [
            ['PostgreSQL backup', pg.actC, pg.bareC],
            ['PostgreSQL backup + restore-check', pg.checkedC, pg.bareC],
            ['PostgreSQL backup jobs: 2', pg.actD, pg.bareC],
            ['PostgreSQL drill', pg.actR, pg.bareR],
          ]
        : []),
    ]
      .filter(([, a, b]) => a && b && Number.isFinite(a.cpu))
      .map(
        ([label, a, b]) =>
          `  ${label.padEnd(34)} ${a.cpu.toFixed(1)} CPU s (bare ${Number.isFinite(b.cpu) ? b.cpu.toFixed(1) : 'n/a'}): floor ${(a.cpu / os.cpus().length / b.seconds).toFixed(2)}x, measured ${(a.seconds / b.seconds).toFixed(2)}x`,
      ),
  ]
}

/** One row's figure: `pg.x` is bench/postgres.js's at that size (its own database's size). */
function figure(r, k) {
  return k.startsWith('pg.') ? r.pg?.[k.slice(3)] : r[k]
}

/** A small SVG: seconds (left) and peak RSS (right) of the backup and drill against database size. */
function writeSvg(results) {
  if (results.length < 2) return null
  const W = 640
  const H = 300
  const pad = { l: 50, r: 20, t: 30, b: 40 }
  const series = [
    ['cliBackup', 'sqlite3 .backup', '#888', '4 3'],
    ['actBackup', 'action backup', '#1f6feb', ''],
    ['beforeBackup', 'backup before', '#1f6feb', '2 4'],
    ['cpDrill', 'cp + integrity_check', '#aaa', '4 3'],
    ['actDrill', 'action drill', '#d2691e', ''],
    ['beforeDrill', 'drill before', '#d2691e', '2 4'],
    ['pg.bareC', 'pg_dump -Fc', '#6a6', '4 3'],
    ['pg.actC', 'action backup (PostgreSQL)', '#2a2', ''],
    ['pg.actR', 'action drill (PostgreSQL)', '#a2a', ''],
  ].filter(([k]) => results.every((r) => figure(r, k)))
  const xs = results.map((r) => r.bytes / 2 ** 30)
  const maxX = Math.max(...xs)
  const panel = (x0, w, key, unit, title) => {
    const maxY = Math.max(...series.flatMap(([k]) => results.map((r) => figure(r, k)[key]))) * 1.1
    const px = (x) => x0 + (x / maxX) * (w - 10)
    const py = (y) => H - pad.b - (y / maxY) * (H - pad.t - pad.b)
    const lines = series.map(([k, , color, dash]) => {
      const pts = results.map(
        (r, i) => `${px(xs[i]).toFixed(1)},${py(figure(r, k)[key]).toFixed(1)}`,
      )
      return `<polyline fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}" points="${pts.join(' ')}"/>`
    })
    const ticks = xs.map(
      (x) =>
        `<text x="${px(x).toFixed(1)}" y="${H - pad.b + 15}" text-anchor="middle">${x.toFixed(2)}</text>`,
    )
    return [
      `<text x="${x0}" y="${pad.t - 10}" font-weight="bold">${title}</text>`,
      `<line x1="${x0}" y1="${H - pad.b}" x2="${x0 + w - 10}" y2="${H - pad.b}" stroke="#000"/>`,
      `<line x1="${x0}" y1="${pad.t}" x2="${x0}" y2="${H - pad.b}" stroke="#000"/>`,
      `<text x="${x0 - 5}" y="${pad.t + 5}" text-anchor="end">${maxY.toFixed(unit === 's' ? 1 : 0)}</text>`,
      `<text x="${x0 - 5}" y="${H - pad.b}" text-anchor="end">0</text>`,
      `<text x="${x0 + w / 2}" y="${H - 8}" text-anchor="middle">database GiB</text>`,
      ...ticks,
      ...lines,
    ].join('\n')
  }
  const legend = series.map(
    ([, label, color, dash], i) =>
      `<line x1="${pad.l + 10 + (i % 3) * 200}" y1="${H + 12 + Math.floor(i / 3) * 16}" x2="${pad.l + 40 + (i % 3) * 200}" y2="${H + 12 + Math.floor(i / 3) * 16}" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}"/><text x="${pad.l + 45 + (i % 3) * 200}" y="${H + 16 + Math.floor(i / 3) * 16}">${label}</text>`,
  )
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 20 + 16 * Math.ceil(series.length / 3)}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    panel(pad.l, W - pad.l - pad.r, 'seconds', 's', 'median seconds'),
    panel(W + pad.l, W - pad.l - pad.r, 'rss', 'MiB', 'peak RSS MiB'),
    ...legend,
    '</svg>',
    '',
  ].join('\n')
  return svg
}

function report(results, summary = true) {
  const out = []
  for (const res of results) {
    out.push(
      '',
      `${mib(res.bytes).toFixed(0)} MiB database (${res.bytes} bytes, ${res.conversations} conversations, ${res.auditRows} audit rows, WAL mode): ${WARMUP} warm-up + ${RUNS} timed runs each, median`,
      `"vs bare" = median / median of sqlite3 .backup (backups) or of sqlite3 .restore + integrity_check (drills)`,
      '',
      resultTable(res),
      '',
      "where the action's time goes (medians):",
      ...phaseLines(res),
      ...profileLines(res),
    )
  }
  if (results.length >= 2) {
    const rows = [
      ['cliBackup', 'sqlite3 .backup'],
      ['actBackup', 'action backup'],
      ['beforeBackup', 'action backup, before (dist/)'],
      ['manualDrill', 'sqlite3 .restore + integrity_check'],
      ['cpDrill', 'cp + integrity_check'],
      ['actDrill', 'action drill'],
      ['beforeDrill', 'action drill, before (dist/)'],
    ].filter(([k]) => results[0][k])
    const f = (x) => (Number.isNaN(x) ? 'n/a' : x.toFixed(1))
    out.push(
      '',
      'as the database grows: peak RSS MiB (should stay flat) and seconds per GiB (should stay level: linear time)',
      '',
      table(
        [
          'command',
          ...results.map((r) => `${mib(r.bytes).toFixed(0)} MiB: RSS, s/GiB`),
          'RSS max/min',
          's/GiB spread',
        ],
        rows.map(([k, label]) => {
          const perGib = results.map((r) => r[k].seconds / (r.bytes / 2 ** 30))
          const rss = results.map((r) => r[k].rss)
          return [
            label,
            ...results.map((r, i) => `${f(r[k].rss)}, ${perGib[i].toFixed(2)}`),
            `${(Math.max(...rss) / Math.min(...rss)).toFixed(2)}x`,
            `${((100 * (Math.max(...perGib) - Math.min(...perGib))) / median(perGib)).toFixed(0)}%`,
          ]
        }),
      ),
    )
  }
  if (summary) out.push(...issueTable(results))
  return out.join('\n')
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const t00 = performance.now()
  rmSync(WORK, { recursive: true, force: true })
  await fs.mkdir(WORK, { recursive: true })

  const sqliteVersion = spawnSync(SQLITE3, ['--version'], { encoding: 'utf8' })
  if (sqliteVersion.status !== 0) {
    throw new Error('the sqlite3 command-line shell is not installed (apt-get install -y sqlite3)')
  }
  if (!existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    throw new Error('dist/index.js is missing: npm run bundle')
  }
  const sizes = GIB_SIZES
    ? [...GIB_SIZES].sort((a, b) => a - b)
    : SMALL_MB > 0 && SMALL_MB < BENCH_MB
      ? [SMALL_MB, BENCH_MB]
      : [BENCH_MB]
  // Room for the source, the kept backup and one copy or restored database at a time.
  const { bavail, bsize } = await fs.statfs(WORK)
  const need = 4 * Math.max(...sizes) * (1 << 20)
  if (bavail * bsize < need) {
    throw new Error(
      `${path.relative(ROOT, WORK)} has ${mib(bavail * bsize).toFixed(0)} MiB free; this benchmark needs about ${mib(need).toFixed(0)} MiB`,
    )
  }
  // "before": a private copy of the bundle as committed in dist/ (others rebuild it meanwhile);
  // "now": the working tree, compiled with the project's TypeScript (errors in files others are
  // editing do not stop the emit).
  const distCopy = path.join(WORK, 'dist')
  await fs.cp(BEFORE_DIST, distCopy, { recursive: true })
  const before = BEFORE ? path.join(distCopy, 'index.js') : null
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  await run(NODE, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', LIB]).catch(
    (err) => {
      if (!existsSync(path.join(LIB, 'index.js'))) throw err
      log(
        `tsc reported errors (emitted anyway): ${String(err.message).split('\n').slice(1, 4).join(' | ')}`,
      )
    },
  )
  // Bundled as dist/ is (ncc), into bench/.work: module loading costs what it costs the action.
  const bundleDir = path.join(WORK, 'build', 'dist')
  const ncc = path.join(ROOT, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js')
  await run(NODE, [
    ncc,
    'build',
    path.join(LIB, 'index.js'),
    '-o',
    bundleDir,
    '--target',
    'es2022',
    '-q',
  ])
  const action = path.join(bundleDir, 'index.js')

  log('OmniAI Backups SQLite benchmark')
  log(
    `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; sqlite3 ${sqliteVersion.stdout.split(' ')[0]}; node ${process.version}; before: ${path.relative(ROOT, BEFORE_DIST) || '.'}/index.js sha256 ${before ? await sha256Short(before) : '(BENCH_BEFORE=0)'}; now: the working tree at ${spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()} plus its uncommitted changes`,
  )
  log(`sizes: ${sizes.map((s) => `${s} MiB`).join(', then ')}`)
  log(
    `runs: ${WARMUP} warm-up + ${RUNS} timed per command (median), interleaved, order alternating; untimed sync before each; page cache warm, not dropped`,
  )
  log(`peak RSS: ${RSS_TEXT}`)
  log(`load average at start: ${loadavg()} (the machine is shared: other work skews the figures)`)

  const demoOptionsFor = await calibrate(action)
  const results = []
  for (const mb of sizes) {
    results.push(await benchSize({ action, before }, demoOptionsFor, mb))
    log(report(results.slice(-1), false))
  }
  // PostgreSQL: bench/postgres.js, one size at a time, measuring the same bundle.
  const pgSizes = PG === '0' ? [] : PG === 'table' ? [BENCH_MB] : sizes
  for (const mb of pgSizes) {
    const file = path.join(WORK, `postgres-${mb}.json`)
    log(`\n==================== PostgreSQL at ${mb} MiB (bench/postgres.js) ====================`)
    await new Promise((resolve, reject) => {
      const child = spawn(NODE, [path.join(ROOT, 'bench', 'postgres.js')], {
        stdio: 'inherit',
        env: {
          ...process.env,
          BENCH_MB: String(mb),
          BENCH_BUNDLE: bundleDir,
          BENCH_JSON: file,
          BENCH_BREAKDOWN: process.env.BENCH_BREAKDOWN ?? '0',
        },
      })
      child.on('error', reject)
      child.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`bench/postgres.js exited ${code}`)),
      )
    })
    const pg = JSON.parse(await fs.readFile(file, 'utf8'))
    const res = results.find((r) => r.mb === mb)
    if (res) res.pg = pg
  }
  log('\n==================== SUMMARY ====================')
  log(report(results))
  const svg = writeSvg(results)
  if (svg) {
    await fs.writeFile(SVG_FILE, svg)
    log(`\nchart of seconds and peak RSS against database size: ${path.relative(ROOT, SVG_FILE)}`)
  }
  log(
    `\nwhole benchmark: ${((performance.now() - t00) / 60000).toFixed(1)} min; load average at end: ${loadavg()}`,
  )
}

main()
  .then(() => cleanup())
  .catch((err) => {
    console.error(`\nbench/sqlite.js failed: ${err.stack ?? err}`)
    cleanup()
    process.exit(1)
  })
