#!/usr/bin/env node
/**
 * SQLite benchmark: the action's backup and drill next to the bare commands of the runbook
 * (sqlite3 ".backup", sqlite3 ".restore" + PRAGMA integrity_check) and next to a plain `cp`,
 * side by side on the same generated OmniAI database, at a small size and then at BENCH_MB, so
 * both the time overhead and how memory grows with the database can be seen in one run.
 *
 *   npm run bench                         # 128 MiB, then ~1 GiB (BENCH_MB=1024)
 *   BENCH_MB=64 node bench/sqlite.js      # quick check that everything works (8, then 64 MiB)
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
import { fileURLToPath } from 'node:url'
import { log, median, mib, num, sha256Short, timeGroup } from './lib.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const WORK_PARENT = path.join(ROOT, 'bench', '.work')
const WORK = path.join(WORK_PARENT, 'sqlite')
const NODE = process.execPath
const SQLITE3 = 'sqlite3'
const GNU_TIME = '/usr/bin/time'

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
  // As src/fsutil.ts sha256File: a stream of 1 MiB chunks into one hash.
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

// ---------------------------------------------------------------------------------------------
// Settings

const BENCH_MB = Math.max(1, num('BENCH_MB', 1024))
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
  if (RSS !== 'none') {
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(await fs.readFile(rssFile, 'utf8'))
    if (m) rss = Number(m[1]) / 1024
  }
  return { seconds, rss, out }
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

async function benchSize(action, demoOptionsFor, mb) {
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
  let backupDir = null
  let backupReport = null
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
    {
      label: 'action backup',
      prepare: async () => {
        backupDir = fresh('backups')
        backupReport = `${backupDir}.json`
      },
      sample: () =>
        measured(NODE, [
          action,
          'backup',
          '--connection-string',
          src,
          '--backup-dir',
          backupDir,
          '--report-file',
          backupReport,
        ]),
      after: async () => {
        const report = await readReport(backupReport)
        // Only the newest backup is kept: it is what the drills restore.
        if (lastBackupDir) await fs.rm(lastBackupDir, { recursive: true, force: true })
        lastBackupDir = backupDir
        backupFile = report.backup.path
        return report.durations
      },
    },
  ]
  const [cliBackup, cpBackup, actBackup] = await measureGroup(`${mb} MiB: backups`, entries)

  // ---- Drills, both restoring the action's newest backup
  const restored = path.join(dir, 'manual-restored.db')
  const scratch = path.join(dir, 'scratch')
  let drillReport = null
  const [manualDrill, actDrill] = await measureGroup(`${mb} MiB: drills`, [
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
          parts: [r1.seconds, r2.seconds],
        }
      },
      after: async (r) => {
        await rmDb(restored)
        return { restoreMs: r.parts[0] * 1000, integrityMs: r.parts[1] * 1000 }
      },
    },
    {
      label: 'action drill',
      prepare: async () => {
        drillReport = path.join(dir, `drill-${++seq}.json`)
      },
      sample: () =>
        measured(NODE, [
          action,
          'drill',
          '--backup-dir',
          lastBackupDir,
          '--scratch-dir',
          scratch,
          '--report-file',
          drillReport,
          '--drill-log',
          'none',
        ]),
      after: async () => (await readReport(drillReport)).durations,
    },
  ])

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
  actDrill.bare = manualDrill
  return {
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
    ['drill', res.manualDrill],
    ['drill', res.actDrill],
  ]
  return table(
    ['', 'command', 'median s', 'runs s', 'peak RSS MiB', 'vs bare'],
    rows.map(([kind, r]) => [
      kind,
      r.label,
      r.seconds.toFixed(2),
      r.samples.map((s) => s.seconds.toFixed(2)).join(' / '),
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

function report(results) {
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
  if (results.length === 2) {
    const [small, big] = results
    const rows = [
      ['cliBackup', 'sqlite3 .backup'],
      ['cpBackup', 'cp'],
      ['actBackup', 'action backup'],
      ['manualDrill', 'sqlite3 .restore + integrity_check'],
      ['actDrill', 'action drill'],
    ]
    const f = (x) => (Number.isNaN(x) ? 'n/a' : x.toFixed(1))
    out.push(
      '',
      `peak RSS as the database grows ${(big.bytes / small.bytes).toFixed(1)}x (memory should stay flat):`,
      '',
      table(
        [
          'command',
          `${mib(small.bytes).toFixed(0)} MiB: RSS MiB`,
          `${mib(big.bytes).toFixed(0)} MiB: RSS MiB`,
          'RSS ratio',
          'time ratio',
        ],
        rows.map(([k, label]) => [
          label,
          f(small[k].rss),
          f(big[k].rss),
          Number.isNaN(big[k].rss) ? 'n/a' : `${(big[k].rss / small[k].rss).toFixed(2)}x`,
          `${(big[k].seconds / small[k].seconds).toFixed(2)}x`,
        ]),
      ),
    )
  }
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
  const sizes = SMALL_MB > 0 && SMALL_MB < BENCH_MB ? [SMALL_MB, BENCH_MB] : [BENCH_MB]
  // Room for the source, the kept backup and one copy or restored database at a time.
  const { bavail, bsize } = await fs.statfs(WORK)
  const need = 4 * BENCH_MB * (1 << 20)
  if (bavail * bsize < need) {
    throw new Error(
      `${path.relative(ROOT, WORK)} has ${mib(bavail * bsize).toFixed(0)} MiB free; this benchmark needs about ${mib(need).toFixed(0)} MiB`,
    )
  }
  // A private copy of the bundle: others rebuild dist/ while this runs.
  const distCopy = path.join(WORK, 'dist')
  await fs.cp(path.join(ROOT, 'dist'), distCopy, { recursive: true })
  const action = path.join(distCopy, 'index.js')

  log('OmniAI Backups SQLite benchmark')
  log(
    `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; sqlite3 ${sqliteVersion.stdout.split(' ')[0]}; node ${process.version}; dist/index.js sha256 ${await sha256Short(action)}`,
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
    results.push(await benchSize(action, demoOptionsFor, mb))
    log(report(results.slice(-1)))
  }
  log('\n==================== SUMMARY ====================')
  log(report(results))
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
