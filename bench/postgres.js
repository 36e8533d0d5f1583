#!/usr/bin/env node
/**
 * PostgreSQL benchmark: the action's backup and drill against the bare pg_dump / pg_restore
 * commands they wrap, side by side on the same database, in one run.
 *
 *   node bench/postgres.js                 # ~1 GiB database (BENCH_MB=1024)
 *   BENCH_MB=64 node bench/postgres.js     # quick check that everything works
 *
 * Environment:
 *   BENCH_MB             target pg_database_size in MiB (default 1024)
 *   BENCH_RUNS           timed runs per command, median reported (default 3)
 *   BENCH_WARMUP         untimed runs per command before those (default 1)
 *   BENCH_MESSAGE_CHARS  characters per message (default 1000: below the TOAST threshold, so
 *                        the database size is the data size, not pglz's compression of it)
 *   BENCH_AUDIT_ROWS     audit_logs rows (default 1000 per MiB: about 1M rows at 1 GiB)
 *   PG_BIN               PostgreSQL server binaries (default: newest /usr/lib/postgresql/N/bin)
 *   BENCH_BREAKDOWN=0    skip the single-run breakdown of the action's overhead
 *   BENCH_KEEP=1         keep bench/.work/postgres (dumps, reports, logs) afterwards
 *   BENCH_SRC=1          measure src/ as it is now, bundled privately (tsc + ncc into
 *                        bench/.work/postgres), instead of dist/ (which others rebuild)
 *   BENCH_BASELINE=DIR   with BENCH_SRC=1: also time the bundle in DIR (`1`: dist/) as "before"
 *                        rows, interleaved with the same commands; e.g. a commit's bundle:
 *                        mkdir /tmp/b && git archive HEAD dist | tar -x -C /tmp/b; BENCH_BASELINE=/tmp/b/dist
 *   BENCH_BUNDLE=DIR     measure the bundle in DIR as "now" (bench/sqlite.js passes its own)
 *   BENCH_JSON=FILE      also write the medians and peak RSS of the main rows to FILE
 *
 * Two throwaway clusters (the action refuses to drill into the server it backs up) are
 * initdb'ed under /tmp, started on free loopback ports with trust auth, and stopped at the end,
 * also on failure or Ctrl-C. Scratch files go to bench/.work/postgres, removed at the end.
 * Exits non-zero only when a command fails; slow ratios are printed, never fatal.
 */
import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { fmtRss, log, median, mib, num, sha256Short, timeGroup } from './lib.js'

const execFileP = promisify(execFile)

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const WORK = path.join(ROOT, 'bench', '.work', 'postgres')
const NODE = process.execPath

const BENCH_MB = num('BENCH_MB', 1024)
const BREAKDOWN = process.env.BENCH_BREAKDOWN !== '0'
const RUNS = Math.max(1, Math.round(num('BENCH_RUNS', 3)))
const WARMUP = Math.round(num('BENCH_WARMUP', 1))
const measureGroup = (title, entries) =>
  timeGroup(title, entries, { warmup: WARMUP, runs: RUNS, labelWidth: 36 })
const MESSAGE_CHARS = Math.round(num('BENCH_MESSAGE_CHARS', 1000))
const AUDIT_ROWS = Math.round(num('BENCH_AUDIT_ROWS', BENCH_MB * 1000))
const KEEP = process.env.BENCH_KEEP === '1'
const FROM_SRC = process.env.BENCH_SRC === '1'
const BASELINE = (FROM_SRC && process.env.BENCH_BASELINE) || null
// Set by bench/sqlite.js, which runs this script for its one table of every figure: the bundle
// folder it measures as "now", and a file for this run's medians.
const BUNDLE = process.env.BENCH_BUNDLE || null
const JSON_OUT = process.env.BENCH_JSON || null
const GNU_TIME = '/usr/bin/time'
const HAVE_TIME =
  existsSync(GNU_TIME) && spawnSync(GNU_TIME, ['-v', 'true'], { stdio: 'ignore' }).status === 0
const IS_ROOT = process.getuid?.() === 0

function pgBinDir() {
  if (process.env.PG_BIN) return process.env.PG_BIN
  const base = '/usr/lib/postgresql'
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(path.join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (!versions.length) throw new Error('no PostgreSQL server found; set PG_BIN')
  return path.join(base, versions[0], 'bin')
}
const PG_BIN = pgBinDir()
const bin = (name) => path.join(PG_BIN, name)

/** The child environment: nothing that would make the action think it runs in a workflow. */
const CHILD_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(GITHUB_|INPUT_|RUNNER_|PG)/.test(k)),
)

// ---------------------------------------------------------------------------------------------
// Clusters

/** Started clusters, stopped by cleanup() whatever happens. */
const clusters = []
let cleanedUp = false

/** Commands running now, ended by cleanup() before the clusters stop. */
const running = new Set()

function cleanup() {
  if (cleanedUp) return
  cleanedUp = true
  for (const child of running) child.kill('SIGTERM')
  for (const c of clusters.splice(0)) {
    const args = ['-D', c.data, '-m', 'fast', '-w', 'stop']
    const r = IS_ROOT
      ? spawnSync('runuser', ['-u', 'postgres', '--', bin('pg_ctl'), ...args], { stdio: 'ignore' })
      : spawnSync(bin('pg_ctl'), args, { stdio: 'ignore' })
    if (r.status !== 0) console.error(`warning: pg_ctl stop for ${c.dir} exited ${r.status}`)
    rmSync(c.dir, { recursive: true, force: true })
  }
  if (!KEEP) rmSync(WORK, { recursive: true, force: true })
}
process.on('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping the clusters`)
    cleanup()
    process.exit(128 + (os.constants.signals[sig] ?? 1))
  })
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

async function asServer(tool, args) {
  return IS_ROOT
    ? execFileP('runuser', ['-u', 'postgres', '--', bin(tool), ...args])
    : execFileP(bin(tool), args)
}

async function startCluster(label) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `omniai-bench-pg-${label}-`))
  if (IS_ROOT) {
    const uid = Number((await execFileP('id', ['-u', 'postgres'])).stdout.trim())
    const gid = Number((await execFileP('id', ['-g', 'postgres'])).stdout.trim())
    await fs.chown(dir, uid, gid)
  }
  const data = path.join(dir, 'data')
  const cluster = { dir, data, port: 0, url: '', admin: '' }
  clusters.push(cluster)
  await asServer('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C',
  ])
  cluster.port = await freePort()
  await asServer('pg_ctl', [
    '-D',
    data,
    '-l',
    path.join(dir, 'log'),
    '-w',
    '-o',
    `-p ${cluster.port} -k ${dir} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB`,
    'start',
  ])
  cluster.admin = `postgres://postgres@127.0.0.1:${cluster.port}/postgres`
  cluster.url = `postgres://postgres@127.0.0.1:${cluster.port}/omniai`
  return cluster
}

async function psql(url, sql) {
  const { stdout } = await execFileP(
    bin('psql'),
    ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
    { env: CHILD_ENV, maxBuffer: 1 << 26 },
  )
  return stdout.trim()
}

// ---------------------------------------------------------------------------------------------
// Running and measuring commands

/** Runs a command to completion; throws with the tail of its output when it fails. */
function run(file, args, { quiet = true } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let out = ''
    const keep = (d) => {
      out += d
      if (out.length > 1 << 20) out = out.slice(-(1 << 19))
      if (!quiet) process.stdout.write(d)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      running.delete(child)
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

/**
 * CPU seconds the servers' finished backends used: their postmasters' reaped children's user +
 * system time (/proc/PID/stat fields 16 and 17, in clock ticks). Linux only; else NaN.
 */
async function serverCpu() {
  let ticks = 0
  for (const c of clusters) {
    try {
      const pid = (await fs.readFile(path.join(c.data, 'postmaster.pid'), 'utf8')).split('\n')[0]
      const fields = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
      // After "pid (comm) ", field 16 (cutime) is at index 13 and 17 (cstime) at 14.
      ticks += Number(fields[13]) + Number(fields[14])
    } catch {
      return NaN
    }
  }
  return ticks / CLOCK_TICKS
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100

/**
 * Wall seconds (measured here), peak RSS in MiB (GNU time, this process tree's largest) and CPU
 * seconds: the command's own tree (GNU time's user + system) plus the server backends it used.
 * On a machine with fewer cores than busy processes, wall time follows the CPU total.
 */
async function measured(file, args) {
  const rssFile = path.join(WORK, 'time.txt')
  const server0 = await serverCpu()
  const t0 = performance.now()
  if (HAVE_TIME) await run(GNU_TIME, ['-v', '-o', rssFile, file, ...args])
  else await run(file, args)
  const seconds = (performance.now() - t0) / 1000
  // A backend's time is counted once the postmaster has reaped it, just after it exits.
  await new Promise((resolve) => setTimeout(resolve, 100))
  const server = (await serverCpu()) - server0
  let rss = NaN
  let client = NaN
  if (HAVE_TIME) {
    const text = await fs.readFile(rssFile, 'utf8')
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(text)
    if (m) rss = Number(m[1]) / 1024
    const user = /User time \(seconds\): ([\d.]+)/.exec(text)
    const system = /System time \(seconds\): ([\d.]+)/.exec(text)
    if (user && system) client = Number(user[1]) + Number(system[1])
  }
  return { seconds, rss, cpu: client + server }
}

/** A sequence of commands as one sample: times and CPU add up, peak RSS is the largest. */
async function measuredSteps(steps) {
  let seconds = 0
  let rss = NaN
  let cpu = 0
  for (const [file, args] of steps) {
    const r = await measured(file, args)
    seconds += r.seconds
    cpu += r.cpu
    rss = Number.isNaN(rss) ? r.rss : Math.max(rss, r.rss)
  }
  return { seconds, rss, cpu }
}

/**
 * A benchmark entry: `prepare` (untimed) then `sample` (timed) per run; `after` (untimed) reads
 * the action's report. Pairs run interleaved, alternating which goes first, so drift on a noisy
 * machine hits both alike.
 */

async function readPhases(reportFile) {
  const report = JSON.parse(await fs.readFile(reportFile, 'utf8'))
  if (!report.ok) throw new Error(`${reportFile}: the action reported ok=false`)
  return report.durations ?? {}
}

async function sizeOf(p) {
  const st = await fs.stat(p)
  if (!st.isDirectory()) return st.size
  let total = 0
  for (const n of await fs.readdir(p)) total += (await fs.stat(path.join(p, n))).size
  return total
}

// ---------------------------------------------------------------------------------------------
// The database

async function dbBytes(url, name) {
  return Number(await psql(url, `SELECT pg_database_size('${name}')`))
}

/** demo-db into a fresh database `name`; returns its seconds. */
async function demoDb(cluster, action, name, conversations, auditRows) {
  await run(bin('createdb'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    name,
  ])
  const url = `postgres://postgres@127.0.0.1:${cluster.port}/${name}`
  const t0 = performance.now()
  await run(NODE, [
    action,
    'demo-db',
    '--postgres',
    url,
    '--conversations',
    String(conversations),
    '--message-chars',
    String(MESSAGE_CHARS),
    '--audit-rows',
    String(auditRows),
  ])
  return (performance.now() - t0) / 1000
}

/**
 * Fills `omniai` on the source to about BENCH_MB: a small calibration database gives the bytes
 * per conversation (12 messages and their attachments and tags) and per audit row, from which
 * the conversation count for the target follows.
 */
async function generate(source, action) {
  const empty = await dbBytes(source.admin, 'postgres')
  const c0 = 2000
  const a0 = 20000
  await demoDb(source, action, 'calibrate', c0, a0)
  const total = await dbBytes(source.admin, 'calibrate')
  const calUrl = `postgres://postgres@127.0.0.1:${source.port}/calibrate`
  const audit = Number(await psql(calUrl, "SELECT pg_total_relation_size('audit_logs')"))
  await psql(source.admin, 'DROP DATABASE calibrate')
  const perAudit = audit / a0
  const perConversation = (total - empty - audit) / c0
  const target = BENCH_MB * (1 << 20)
  const conversations = Math.max(
    100,
    Math.round((target - empty - AUDIT_ROWS * perAudit) / perConversation),
  )
  log(
    `calibration: ${(perConversation / 1024).toFixed(1)} KiB per conversation (12 messages of ${MESSAGE_CHARS} chars), ${perAudit.toFixed(0)} B per audit row`,
  )
  log(
    `generating: demo-db --conversations ${conversations} --message-chars ${MESSAGE_CHARS} --audit-rows ${AUDIT_ROWS}`,
  )
  const seconds = await demoDb(source, action, 'omniai', conversations, AUDIT_ROWS)
  // Steady state, as autovacuum would leave it: hint bits set, no autovacuum mid-benchmark.
  const t0 = performance.now()
  await psql(source.url, 'VACUUM (FREEZE, ANALYZE)')
  await psql(source.url, 'CHECKPOINT')
  const vacuum = (performance.now() - t0) / 1000
  const bytes = await dbBytes(source.admin, 'omniai')
  log(
    `generated in ${seconds.toFixed(1)} s (+ ${vacuum.toFixed(1)} s VACUUM FREEZE): pg_database_size = ${mib(bytes).toFixed(0)} MiB (target ${BENCH_MB} MiB)`,
  )
  const counts = await psql(
    source.url,
    `SELECT string_agg(relname || ' ' || n_live_tup, ', ' ORDER BY n_live_tup DESC) FROM pg_stat_user_tables`,
  )
  log(`rows: ${counts}`)
  return { bytes, conversations }
}

// ---------------------------------------------------------------------------------------------
// Output

function table(rows) {
  const head = ['command', 'median s', 'runs s', 'CPU s', 'peak RSS MiB', 'vs bare']
  const body = rows.map((r) => [
    r.label,
    r.seconds.toFixed(2),
    r.samples.map((s) => s.seconds.toFixed(1)).join(' / '),
    Number.isNaN(r.cpu ?? NaN) ? 'n/a' : r.cpu.toFixed(1),
    Number.isNaN(r.rss) ? 'n/a' : r.rss.toFixed(1),
    r.bare ? `${(r.seconds / r.bare.seconds).toFixed(3)} (${pct(r, r.bare)})` : '1.000',
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
  const line = (cells) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

const fmtCpu = (x) => (Number.isNaN(x ?? NaN) ? 'n/a' : x.toFixed(1))

const pct = (r, base) => {
  const p = ((r.seconds - base.seconds) / base.seconds) * 100
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`
}

/** The phases of the run with the median total, so that they add up. */
function phaseLine(e, names) {
  const byTotal = [...e.phases].sort((a, b) => (a.totalMs ?? 0) - (b.totalMs ?? 0))
  const p = byTotal[(byTotal.length - 1) >> 1]
  const sec = (ms) => ((ms ?? 0) / 1000).toFixed(2)
  const parts = names.map(([k, label]) => `${label} ${sec(p[k])}`)
  const other = p.totalMs - names.reduce((a, [k]) => a + (p[k] ?? 0), 0)
  return `${e.label}: ${parts.join(' + ')} + other ${sec(other)} = total ${sec(p.totalMs)} s`
}

// ---------------------------------------------------------------------------------------------
// Breakdown: the action with parts of its inventory switched off through its own inputs, and
// the server-side work of those parts run alone.

async function breakdownRuns({ source, target, action, runs, bareFc, bareC, bareR, actC, actR }) {
  log('\n== breakdown (single runs)')
  const s = (x) => `${x.toFixed(2)} s`
  const once = async (label, file, args) => {
    const r = await measured(file, args)
    log(`   ${label.padEnd(60)} ${r.seconds.toFixed(2).padStart(7)} s  ${fmtRss(r.rss)} MiB`)
    return r.seconds
  }
  const backupWith = async (label, extra) => {
    const dir = path.join(runs, `breakdown-${label.replace(/\W+/g, '-')}`)
    const seconds = await once(`action backup ${extra.join(' ')}`, NODE, [
      action,
      'backup',
      '--connection-string',
      source.url,
      '--backup-dir',
      dir,
      '--report-file',
      `${dir}.json`,
      ...extra,
    ])
    return { seconds, dir }
  }
  // The machine is noisy: the bare command again, right before, to compare with.
  await fs.rm(bareFc, { force: true })
  const bareNow = await once('pg_dump -Fc (again, to compare with the next line)', bin('pg_dump'), [
    '-Fc',
    '-f',
    bareFc,
    '-d',
    source.url,
  ])
  const none = await backupWith('none', ['--audit-table', 'none', '--conversations-table', 'none'])
  const countAll = await psql(
    source.url,
    "SELECT string_agg(format('SELECT count(*) FROM %I.%I;', schemaname, relname), ' ') FROM pg_stat_user_tables",
  )
  const list = await once('pg_restore --list (alone)', bin('pg_restore'), ['--list', bareFc])
  const counts = await once('SELECT count(*) of every table (alone)', bin('psql'), [
    '-X',
    '-q',
    '-A',
    '-t',
    '-o',
    os.devNull,
    '-d',
    source.url,
    '-c',
    countAll,
  ])
  const auditScan = await once(
    'audit_logs in key order to /dev/null (alone, no hashing)',
    bin('psql'),
    [
      '-X',
      '-q',
      '-d',
      source.url,
      '-c',
      `\\copy (SELECT * FROM audit_logs ORDER BY id) TO '${os.devNull}'`,
    ],
  )
  // What the audit-log digest would cost computed by the server: per 1000-row chunk, sha256 of
  // the rows' text in key order (not the action's encoding; for the estimate only).
  const serverHash = await once(
    'audit_logs chunk sha256 computed server-side (alone)',
    bin('psql'),
    [
      '-X',
      '-q',
      '-A',
      '-t',
      '-o',
      os.devNull,
      '-d',
      source.url,
      '-c',
      `SELECT count(*), md5(string_agg(h, '' ORDER BY c)) FROM (SELECT id / 1000 AS c, sha256(string_agg(a::text, E'\\n' ORDER BY id)::bytea)::text AS h FROM audit_logs a GROUP BY 1) s`,
    ],
  )
  const drillDir = none.dir
  const report = path.join(runs, 'breakdown-drill.json')
  const drillNone = await once('action drill of that backup (no audit-log, no spot-checks)', NODE, [
    action,
    'drill',
    '--backup-dir',
    drillDir,
    '--restore-connection-string',
    target.admin,
    '--report-file',
    report,
    '--drill-log',
    'none',
    '--scratch-dir',
    path.join(WORK, 'scratch'),
  ])
  const checksNone = (await readPhases(report)).checksMs / 1000
  const actChecks = median(actR.phases.map((p) => p.checksMs)) / 1000
  return [
    `  backup: pg_dump -Fc ${s(bareC.seconds)}; action ${s(actC.seconds)} (medians above)`,
    `    action backup --audit-table none --conversations-table none ${s(none.seconds)} vs pg_dump -Fc right before it ${s(bareNow)} (${pct({ seconds: none.seconds }, { seconds: bareNow })})`,
    `    => switching off the audit-log hash and spot-checks takes the action's backup from ${s(actC.seconds)} (median) to ${s(none.seconds)}`,
    `    alone: pg_restore --list ${s(list)}, count(*) of every table ${s(counts)}, reading audit_logs in key order without hashing ${s(auditScan)},`,
    `           per-chunk sha256 of audit_logs computed server-side ${s(serverHash)}`,
    `  drill: createdb + pg_restore + dropdb ${s(bareR.seconds)}; action ${s(actR.seconds)} (checks ${s(actChecks)})`,
    `    drill of a backup without audit-log and spot-checks: ${s(drillNone)} (checks ${s(checksNone)}) => audit-log hash + spot-checks on the restored copy about ${s(actChecks - checksNone)}`,
  ]
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const t00 = performance.now()
  rmSync(WORK, { recursive: true, force: true })
  await fs.mkdir(WORK, { recursive: true })
  // A private copy of the bundle: others rebuild dist/ while this runs.
  const distCopy = path.join(WORK, 'dist')
  await fs.cp(path.join(ROOT, 'dist'), distCopy, { recursive: true })
  let action = path.join(distCopy, 'index.js')
  let before = null
  if (BASELINE) {
    before = path.join(WORK, 'before', 'index.js')
    await fs.cp(
      BASELINE === '1' ? path.join(ROOT, 'dist') : path.resolve(BASELINE),
      path.dirname(before),
      {
        recursive: true,
      },
    )
  }
  if (FROM_SRC) {
    // src/ as it is now, bundled as `npm run bundle` does, but into bench/.work: dist/ untouched.
    const lib = path.join(WORK, 'lib')
    const bundle = path.join(WORK, 'src-bundle')
    const bins = path.join(ROOT, 'node_modules', '.bin')
    await run(path.join(bins, 'tsc'), [
      '-p',
      path.join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      lib,
    ])
    await run(path.join(bins, 'ncc'), [
      'build',
      path.join(lib, 'index.js'),
      '-o',
      bundle,
      '--target',
      'es2022',
      '-q',
    ])
    action = path.join(bundle, 'index.js')
  } else if (BUNDLE) {
    await fs.cp(BUNDLE, path.join(WORK, 'bundle'), { recursive: true })
    action = path.join(WORK, 'bundle', 'index.js')
  }

  const load0 = os.loadavg()[0]
  const pgVersion = (await execFileP(bin('postgres'), ['--version'])).stdout.trim()
  log(`OmniAI Backups PostgreSQL benchmark`)
  log(
    `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${pgVersion}; node ${process.version}; ${FROM_SRC ? 'src/ bundled now' : BUNDLE ? `${path.relative(ROOT, BUNDLE)}/index.js` : 'dist/index.js'} sha256 ${await sha256Short(action)}${before ? `; before: dist/index.js sha256 ${await sha256Short(before)}` : ''}`,
  )
  log(
    `runs: ${WARMUP} warm-up + ${RUNS} timed per command (median), pairs interleaved; peak RSS: ${HAVE_TIME ? 'GNU time -v (maximum resident set size of the largest process in the tree)' : 'n/a (install GNU time: apt-get install -y time)'}`,
  )

  const source = await startCluster('source')
  const target = await startCluster('restore')
  log(
    `clusters: source 127.0.0.1:${source.port}, restore 127.0.0.1:${target.port} (shared_buffers=256MB, otherwise defaults)`,
  )
  const { bytes } = await generate(source, action)

  const runs = path.join(WORK, 'runs')
  await fs.mkdir(runs)
  let seq = 0
  const fresh = (name) => path.join(runs, `${name}-${++seq}`)

  // ---- Backups
  const bareFc = path.join(WORK, 'bare.dump')
  const bareFd = path.join(WORK, 'bare.dumpdir')
  const lastBackup = {}
  const actionBackup = (jobs, bundle = action, tag = '', extra = []) => {
    let dir = null
    let report = null
    const slot = `${tag}${jobs}${extra.join('')}`
    return {
      label: `action backup${jobs > 1 ? ` --jobs ${jobs}` : ''}${extra.length ? ` ${extra.join(' ')}` : ''}${tag}`,
      prepare: async () => {
        // A fresh backup-dir per run; only the newest is kept, for the drill.
        if (lastBackup[slot]) await fs.rm(lastBackup[slot], { recursive: true, force: true })
        dir = fresh(`backup-j${jobs}${tag ? '-before' : ''}`)
        report = `${dir}.json`
      },
      sample: () =>
        measured(NODE, [
          bundle,
          'backup',
          '--connection-string',
          source.url,
          '--backup-dir',
          dir,
          '--report-file',
          report,
          ...(jobs > 1 ? ['--jobs', String(jobs)] : []),
          ...extra,
        ]),
      after: async () => {
        lastBackup[slot] = dir
        return readPhases(report)
      },
    }
  }
  const BEFORE = ' (before)'
  const backupsC = await measureGroup('backup, custom format (pg_dump -Fc)', [
    {
      label: 'pg_dump -Fc',
      prepare: () => fs.rm(bareFc, { force: true }),
      sample: () => measured(bin('pg_dump'), ['-Fc', '-f', bareFc, '-d', source.url]),
    },
    actionBackup(1),
    ...(before ? [actionBackup(1, before, BEFORE)] : []),
    // Issue 13's "verified every night": restored into a scratch database and checked.
    actionBackup(1, action, '', [
      '--restore-check',
      'true',
      '--restore-connection-string',
      `postgres://postgres@127.0.0.1:${target.port}/postgres`,
    ]),
  ])
  const [bareC, actC] = backupsC
  const oldC = before ? backupsC[2] : undefined
  const checkedC = backupsC.at(-1)
  const [bareD, actD, oldD] = await measureGroup(
    'backup, directory format, 2 jobs (pg_dump -Fd -j 2)',
    [
      {
        label: 'pg_dump -Fd -j 2',
        prepare: () => fs.rm(bareFd, { recursive: true, force: true }),
        sample: () => measured(bin('pg_dump'), ['-Fd', '-j', '2', '-f', bareFd, '-d', source.url]),
      },
      actionBackup(2),
      ...(before ? [actionBackup(2, before, BEFORE)] : []),
    ],
  )
  const dumpBytes = await sizeOf(bareFc)
  const dumpDirBytes = await sizeOf(bareFd)

  // ---- Drills
  const restoreDb = 'bench_restore'
  const conn = ['-h', '127.0.0.1', '-p', String(target.port), '-U', 'postgres']
  const restoreUrl = `postgres://postgres@127.0.0.1:${target.port}/${restoreDb}`
  const bareRestore = (archive, jobs) => ({
    label: `createdb + pg_restore${jobs > 1 ? ` -j ${jobs}` : ''} + dropdb`,
    prepare: () => psql(target.admin, `DROP DATABASE IF EXISTS ${restoreDb} WITH (FORCE)`),
    sample: () =>
      measuredSteps([
        [bin('createdb'), [...conn, restoreDb]],
        [
          bin('pg_restore'),
          [
            '--no-owner',
            '--no-acl',
            '--exit-on-error',
            ...(jobs > 1 ? ['-j', String(jobs)] : []),
            '-d',
            restoreUrl,
            archive,
          ],
        ],
        [bin('dropdb'), [...conn, restoreDb]],
      ]),
  })
  const actionDrill = (jobs, bundle = action, tag = '') => {
    let report = null
    return {
      label: `action drill${jobs > 1 ? ` --jobs ${jobs}` : ''}${tag}`,
      prepare: async () => {
        report = path.join(runs, `drill-j${jobs}-${++seq}.json`)
      },
      sample: () =>
        measured(NODE, [
          bundle,
          'drill',
          '--backup-dir',
          lastBackup[`${tag}${jobs}`],
          '--restore-connection-string',
          target.admin,
          '--report-file',
          report,
          '--drill-log',
          'none',
          '--scratch-dir',
          path.join(WORK, 'scratch'),
          ...(jobs > 1 ? ['--jobs', String(jobs)] : []),
        ]),
      after: () => readPhases(report),
    }
  }
  const [bareR, actR, oldR] = await measureGroup('drill, custom format (pg_restore)', [
    bareRestore(bareFc, 1),
    actionDrill(1),
    ...(before ? [actionDrill(1, before, BEFORE)] : []),
  ])
  const [bareRj, actRj, oldRj] = await measureGroup(
    'drill, directory format, 2 jobs (pg_restore -j 2)',
    [bareRestore(bareFd, 2), actionDrill(2), ...(before ? [actionDrill(2, before, BEFORE)] : [])],
  )
  const leftovers = await psql(
    target.admin,
    "SELECT count(*) FROM pg_database WHERE datname LIKE 'omniai_drill_%'",
  )
  if (leftovers !== '0') throw new Error(`${leftovers} drill databases were left behind`)

  const breakdown = BREAKDOWN
    ? await breakdownRuns({ source, target, action, runs, bareFc, bareC, bareR, actC, actR })
    : []

  // ---- Results
  actC.bare = bareC
  checkedC.bare = bareC
  actD.bare = bareD
  bareD.bare = bareC
  actR.bare = bareR
  actRj.bare = bareRj
  bareRj.bare = bareR
  if (before) {
    oldC.bare = bareC
    oldD.bare = bareD
    oldR.bare = bareR
    oldRj.bare = bareRj
  }
  const rows = [
    bareC,
    actC,
    oldC,
    checkedC,
    bareD,
    actD,
    oldD,
    bareR,
    actR,
    oldR,
    bareRj,
    actRj,
    oldRj,
  ].filter(Boolean)
  // The issue's targets, each as a ratio to the bare single-job command, from this one run.
  const ratio = (a, b) => a.seconds / b.seconds
  const rssOk = (a) => (Number.isNaN(a.rss) ? 'n/a' : a.rss <= 200 ? 'yes' : 'NO')
  const goal = (label, a, b, limit, strict = false) => {
    const r = ratio(a, b)
    const met = strict ? r < limit : r <= limit
    return `  ${label.padEnd(58)} ${r.toFixed(3)}  (target ${strict ? '<' : '<='} ${limit.toFixed(2)}: ${met ? 'met' : 'NOT met'})`
  }
  const targetLines = (tag, c, d, r, rj) => [
    goal(`backup${tag} / pg_dump -Fc`, c, bareC, 1.1),
    goal(`drill${tag} / (createdb + pg_restore + dropdb)`, r, bareR, 1.25),
    goal(`backup --jobs 2${tag} / pg_dump -Fc (single job)`, d, bareC, 1.0, true),
    goal(`drill --jobs 2${tag} / (createdb + pg_restore + dropdb)`, rj, bareR, 1.0, true),
    `  ${`peak RSS${tag} (MiB): backup, backup --jobs 2, drill, drill --jobs 2`.padEnd(58)} ${[c, d, r, rj].map((e) => fmtRss(e.rss).trim()).join(', ')}  (target <= 200: ${[c, d, r, rj].every((e) => rssOk(e) === 'yes') ? 'met' : 'NOT met'})`,
  ]
  const backupPhases = [
    ['snapshotMs', 'snapshot'],
    ['checksumMs', 'checksum'],
  ]
  const drillPhases = [
    ['checksumMs', 'checksum'],
    ['restoreMs', 'restore'],
    ['checksMs', 'checks'],
  ]
  const overhead = (a) => `${pct(a, a.bare)} (${(a.seconds - a.bare.seconds).toFixed(2)} s)`
  const ok = (a, b) => (a.seconds < b.seconds ? 'yes' : 'NO')
  const out = [
    `PostgreSQL benchmark: ${mib(bytes).toFixed(0)} MiB database (BENCH_MB=${BENCH_MB}), ${pgVersion.replace(/^postgres \(PostgreSQL\) /, 'PostgreSQL ')}, ${os.cpus().length} cores`,
    `load average (1 min) ${load0.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end (${os.cpus().length} cores: above that, other work shares the machine)`,
    `archives: -Fc ${mib(dumpBytes).toFixed(0)} MiB, -Fd ${mib(dumpDirBytes).toFixed(0)} MiB; ${WARMUP} warm-up + ${RUNS} timed runs each, median; "vs bare" = median / the bare command's median`,
    '',
    table(rows),
    '',
    'targets (issue 13), ratios to the bare single-job command of the same run:',
    ...targetLines('', actC, actD, actR, actRj),
    goal('backup + restore-check / pg_dump -Fc', checkedC, bareC, 2.0),
    ...(before ? targetLines(BEFORE, oldC, oldD, oldR, oldRj) : []),
    '',
    `CPU seconds (the command's process tree + the server backends it used), median run; with`,
    `${os.cpus().length} cores no command can take less wall time than its CPU seconds / ${os.cpus().length}:`,
    ...[
      [actC, 'action backup', bareC],
      [checkedC, 'action backup + restore-check', bareC],
      [actD, 'action backup --jobs 2', bareC],
      [actR, 'action drill', bareR],
    ].map(
      ([e, label, bare]) =>
        `  ${label.padEnd(32)} ${fmtCpu(e.cpu)} CPU s (${bare.label}: ${fmtCpu(bare.cpu)}): floor ${fmtCpu(e.cpu / os.cpus().length)} s = ${(e.cpu / os.cpus().length / bare.seconds).toFixed(2)}x of ${bare.label}'s ${bare.seconds.toFixed(2)} s`,
    ),
    '',
    `(pg_dump -Fd -j 2 and pg_restore -j 2 rows compare with the single-job bare command)`,
    '',
    'action overhead vs the bare command (target < 5%):',
    `  backup          ${overhead(actC)}`,
    `  backup --jobs 2 ${overhead(actD)}`,
    `  drill           ${overhead(actR)}`,
    `  drill --jobs 2  ${overhead(actRj)}`,
    'parallel mode faster than the bare single-job command:',
    `  action backup --jobs 2 ${actD.seconds.toFixed(2)} s vs pg_dump -Fc ${bareC.seconds.toFixed(2)} s: ${ok(actD, bareC)}`,
    `  action drill --jobs 2 ${actRj.seconds.toFixed(2)} s vs createdb + pg_restore + dropdb ${bareR.seconds.toFixed(2)} s: ${ok(actRj, bareR)}`,
    '',
    "the action's phases (median of its report's durations, seconds):",
    `  ${phaseLine(actC, backupPhases)}`,
    `  ${phaseLine(actD, backupPhases)}`,
    `  ${phaseLine(actR, drillPhases)}`,
    `  ${phaseLine(actRj, drillPhases)}`,
    '  backup snapshot = pg_dump with the inventory (schema, row counts, audit-log hash, spot-checks) in the same snapshot, then pg_restore --list and fsync;',
    '  checksum = sha256 of the archive; drill restore = CREATE DATABASE + pg_restore; checks = integrity, schema, row counts, spot-checks, audit-log hash on the restored copy;',
    '  other = node start-up, reading the backup folder, manifest, drop of the scratch database, report.',
    ...(breakdown.length
      ? [
          '',
          'where the overhead goes (single runs, so indicative; custom format, 1 job):',
          ...breakdown,
        ]
      : []),
  ]
  log('\n' + out.join('\n'))
  if (JSON_OUT) {
    const figure = (e) => ({ seconds: e.seconds, fastest: e.fastest, rss: e.rss, cpu: e.cpu })
    const figures = { bareC, actC, checkedC, bareD, actD, bareR, actR, bareRj, actRj }
    await fs.writeFile(
      JSON_OUT,
      JSON.stringify({
        mb: BENCH_MB,
        bytes,
        ...Object.fromEntries(Object.entries(figures).map(([k, e]) => [k, figure(e)])),
      }),
    )
  }
  log(`\nwhole benchmark: ${((performance.now() - t00) / 60000).toFixed(1)} min`)
}

main()
  .then(() => {
    cleanup()
  })
  .catch((err) => {
    console.error(`\nbench/postgres.js failed: ${err.stack ?? err}`)
    cleanup()
    process.exit(1)
  })
