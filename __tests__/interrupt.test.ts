/**
 * Interrupted runs: SIGINT and SIGTERM (a cancelled workflow, a step timeout, Ctrl-C) remove
 * decrypted files, scratch folders and scratch databases before the process exits with
 * 128 + the signal; what a SIGKILL leaves, the post step removes.
 *
 * The end-to-end tests run the CLI compiled from src (tsc into a temporary folder, never dist/)
 * as a separate process, and signal it mid-drill.
 */
import type { ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CleanupRegistry, exitOnSignals } from '../src/util/cleanup.js'
import { generateAgeIdentity } from '../src/codec/index.js'
import { Inputs } from '../src/options/inputs.js'
import { generateDemoDatabase } from '../src/demo/sqlite.js'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { sha256File } from '../src/util/fs.js'
import { post, removeLeftovers } from '../src/action/post.js'
import { buildCli, startCli } from './built-cli.js'
import { memoryLog, run } from './helpers.js'
import { defaultBinDir, startCluster, type Cluster } from './pg-cluster.js'

describe('the cleanup registry', () => {
  it('runs every cleanup, also one registered while it runs, and reports what failed', async () => {
    const registry = new CleanupRegistry()
    const ran: string[] = []
    registry.add('a', () => void ran.push('a'))
    const forget = registry.add('forgotten', () => void ran.push('forgotten'))
    forget()
    registry.add('b', async () => {
      ran.push('b')
      // Work still under way makes a folder while the first round runs.
      registry.add('late', () => void ran.push('late'))
    })
    registry.add('broken', () => {
      throw new Error('EACCES')
    })
    registry.add('hangs', () => new Promise<void>(() => {}))
    const { cleaned, failed } = await registry.runAll(100)
    expect(ran.sort()).toEqual(['a', 'b', 'late'])
    expect(cleaned.sort()).toEqual(['a', 'b', 'late'])
    expect(failed.sort()).toEqual(['broken (Error: EACCES)', 'hangs (Error: gave up after 100 ms)'])
    expect(registry.size).toBe(0)
  })

  it('on SIGTERM or SIGINT: cleans up, says so, exits with 128 + the signal; a second signal changes nothing', async () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const registry = new CleanupRegistry()
      const source = new EventEmitter()
      const lines: string[] = []
      const exits: number[] = []
      let exited!: () => void
      const done = new Promise<void>((r) => (exited = r))
      let cleanups = 0
      registry.add('scratch /tmp/x', () => void cleanups++)
      const off = exitOnSignals({
        registry,
        source,
        report: (l) => void lines.push(l),
        exit: (c) => {
          exits.push(c)
          exited()
        },
      })
      source.emit(signal, signal)
      source.emit(signal, signal)
      await done
      off()
      expect(exits).toEqual([code])
      expect(cleanups).toBe(1)
      expect(lines).toEqual([`${signal}: stopped; cleaned up: scratch /tmp/x.`])
      expect(source.listenerCount('SIGINT') + source.listenerCount('SIGTERM')).toBe(0)
    }
  })
})

/** Polls until `found` returns something, or the child exits first (then it throws). */
async function waitFor<T>(
  child: ChildProcess,
  found: () => Promise<T | null>,
  what: string,
): Promise<T> {
  for (;;) {
    const value = await found()
    if (value !== null) return value
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the CLI exited (${child.exitCode ?? child.signalCode}) before ${what}`)
    }
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The first file named `name` in a scratch folder of the kind given, under `scratch`. */
async function scratchFile(scratch: string, kind: string, names: string[]) {
  for (const dir of await fs.readdir(scratch).catch(() => [] as string[])) {
    if (!dir.startsWith(`omniai-${kind}-`)) continue
    const inside = await fs.readdir(path.join(scratch, dir)).catch(() => [] as string[])
    const hit = inside.find((f) => names.includes(f))
    if (hit) return path.join(scratch, dir, hit)
  }
  return null
}

const scratchFolders = async (scratch: string) =>
  (await fs.readdir(scratch)).filter((n) => /^omniai-(drill|backup|restore|verify)-/.test(n))

describe('interrupted runs (the CLI compiled from src)', () => {
  let base: string
  let cli: string
  let key: ReturnType<typeof generateAgeIdentity>
  let db: string
  let backups: string

  beforeAll(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-interrupt-'))
    key = generateAgeIdentity()
    db = path.join(base, 'omniai.db')
    backups = path.join(base, 'backups')
    const [built] = await Promise.all([
      buildCli(base),
      // ~120 MB: a drill of it takes seconds, time enough to be interrupted half-way.
      generateDemoDatabase(db, { conversations: 500, messageChars: 20_000, auditRows: 2000 }),
    ])
    cli = built
    const { report } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        'scratch-dir': path.join(base, 'scratch-setup'),
        encryption: 'age',
        compression: 'zstd',
        'age-recipients': key.recipient,
      },
      base,
    )
    expect(report.error).toBeUndefined()
  }, 120_000)

  afterAll(async () => {
    if (base) await fs.rm(base, { recursive: true, force: true })
  })

  const drillArgs = (scratch: string) => [
    'drill',
    '--backup-dir',
    backups,
    '--scratch-dir',
    scratch,
    '--age-identity',
    key.identity,
    '--drill-log',
    'none',
    '--drill-evidence',
    'none',
    '--report-file',
    path.join(scratch, '..', `report-${path.basename(scratch)}.json`),
  ]

  it('SIGTERM mid-drill of an encrypted backup: the decrypted copy and the scratch folder are gone, exit 143', async () => {
    const scratch = path.join(base, 'scratch-term')
    const { child, exited } = startCli(cli, drillArgs(scratch), base)
    // The backup is decrypted and the restore from it under way.
    const plain = await waitFor(
      child,
      () => scratchFile(scratch, 'drill', ['restored.db']),
      'the restore started',
    )
    // The decrypted plaintext, moved into place as the restored copy (not copied beside it).
    await expect(fs.stat(path.join(path.dirname(plain), 'plain.db'))).rejects.toThrow(/ENOENT/)
    child.kill('SIGTERM')
    const result = await exited
    expect([result.code, result.signal], result.stderr).toEqual([143, null])
    expect(result.stderr).toContain(`SIGTERM: stopped; cleaned up: scratch ${path.dirname(plain)}`)
    expect(await scratchFolders(scratch)).toEqual([])
  })

  it('SIGINT mid-backup (encrypted): no plaintext snapshot in scratch, no partial file in backup-dir, exit 130', async () => {
    const scratch = path.join(base, 'scratch-int')
    const dir = path.join(base, 'backups-int')
    const { child, exited } = startCli(
      cli,
      [
        'backup',
        '--connection-string',
        db,
        '--backup-dir',
        dir,
        '--scratch-dir',
        scratch,
        '--encryption',
        'age',
        '--compression',
        'zstd',
        '--age-recipients',
        key.recipient,
        '--report-file',
        path.join(base, 'report-int.json'),
      ],
      base,
    )
    await waitFor(
      child,
      async () =>
        (await fs.readdir(dir).catch(() => [] as string[])).find((f) => f.endsWith('.tmp')) ?? null,
      'the encoded backup was being written',
    )
    // The plaintext snapshot it encrypts from sits in a scratch folder meanwhile.
    const day = new Date().toISOString().slice(0, 10)
    expect(await scratchFile(scratch, 'backup', [`omniai-${day}.db`])).not.toBeNull()
    child.kill('SIGINT')
    const result = await exited
    expect([result.code, result.signal], result.stderr).toEqual([130, null])
    expect(result.stderr).toMatch(/^SIGINT: stopped; cleaned up: .*partial backup /m)
    expect(await scratchFolders(scratch)).toEqual([])
    expect(await fs.readdir(dir)).toEqual([])
  })

  it('SIGKILL mid-drill leaves the decrypted copy; the post step removes it and nothing else', async () => {
    const scratch = path.join(base, 'scratch-kill')
    const { child, exited } = startCli(cli, drillArgs(scratch), base)
    const plain = await waitFor(
      child,
      () => scratchFile(scratch, 'drill', ['plain.db']),
      'the backup was decrypted',
    )
    child.kill('SIGKILL')
    expect((await exited).signal).toBe('SIGKILL')
    // What a killed step leaves: every user's data, decrypted, on the runner.
    expect((await fs.stat(plain)).size).toBeGreaterThan(100_000_000)
    // Beside it, things the post step must not touch.
    await fs.mkdir(path.join(scratch, 'omniai-notes'))
    await fs.writeFile(path.join(scratch, 'omniai-backup-report.json'), '{}')

    // The runner runs the same file again as the post step, with the step's inputs.
    const postRun = startCli(cli, [], base, {
      STATE_isPost: 'true',
      'INPUT_SCRATCH-DIR': scratch,
      'INPUT_RESTORE-CONNECTION-STRING': '',
      RUNNER_TEMP: base,
    })
    const result = await postRun.exited
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(result.stdout).toContain(`removed ${path.dirname(plain)}, left by an interrupted step`)
    expect((await fs.readdir(scratch)).sort()).toEqual([
      'omniai-backup-report.json',
      'omniai-notes',
    ])
  })

  it('SIGTERM mid-restore: the half-written replacement is removed, the live file untouched, the backend started again', async () => {
    const liveDir = path.join(base, 'live')
    const live = path.join(liveDir, 'omniai.db')
    await fs.mkdir(liveDir)
    await fs.copyFile(db, live)
    const before = await sha256File(live)
    const scratch = path.join(base, 'scratch-restore')
    const { child, exited } = startCli(
      cli,
      [
        'restore',
        '--connection-string',
        live,
        '--backup-dir',
        backups,
        '--scratch-dir',
        scratch,
        '--age-identity',
        key.identity,
        '--confirm',
        'omniai.db',
        '--stop-command',
        `touch ${path.join(liveDir, 'stopped')}`,
        '--start-command',
        `touch ${path.join(liveDir, 'started')}`,
        '--report-file',
        path.join(base, 'report-restore.json'),
      ],
      base,
    )
    // The backup is being written beside the live file, to be renamed over it.
    await waitFor(
      child,
      async () => (await fs.readdir(liveDir)).find((f) => f.endsWith('.tmp')) ?? null,
      'the replacement was being written',
    )
    child.kill('SIGTERM')
    const result = await exited
    expect([result.code, result.signal], result.stderr).toEqual([143, null])
    expect(result.stderr).toMatch(/^SIGTERM: stopped; cleaned up: .*partial restore /m)
    expect(result.stderr).toContain(`the backend started again (touch ${liveDir}/started)`)
    // (-wal and -shm, when there, are SQLite's own from reading the live file)
    expect((await fs.readdir(liveDir)).filter((f) => !/-(wal|shm)$/.test(f)).sort()).toEqual([
      'omniai.db',
      'started',
      'stopped',
    ])
    expect(await sha256File(live)).toBe(before)
    expect(await scratchFolders(scratch)).toEqual([])
  })

  describe('PostgreSQL scratch databases', () => {
    let cluster: Cluster
    let source: string

    beforeAll(async () => {
      cluster = await startCluster((await defaultBinDir())!)
      const name = `omniai_interrupt_${process.pid}`
      const admin = new pg.Client({ connectionString: inject('pgSource') })
      await admin.connect()
      await admin.query(`DROP DATABASE IF EXISTS ${name}`)
      await admin.query(`CREATE DATABASE ${name}`)
      await admin.end()
      source = Object.assign(new URL(inject('pgSource')), { pathname: `/${name}` }).href
      await generatePostgresDemo(source, {
        conversations: 300,
        messageChars: 4000,
        auditRows: 2000,
      })
    }, 120_000)

    afterAll(async () => {
      await cluster?.stop()
    })

    async function databases(): Promise<string[]> {
      const c = new pg.Client({ connectionString: cluster.url })
      await c.connect()
      try {
        const { rows } = await c.query<{ datname: string }>(
          "SELECT datname FROM pg_database WHERE datname LIKE 'omniai%' ORDER BY datname",
        )
        return rows.map((r) => r.datname)
      } finally {
        await c.end()
      }
    }

    it('SIGTERM mid-drill drops the scratch database on restore-connection-string', async () => {
      const dir = path.join(base, 'pg-backups')
      const b = await run('backup', { 'connection-string': source, 'backup-dir': dir }, base)
      expect(b.report.error).toBeUndefined()
      const scratch = path.join(base, 'scratch-pg')
      const { child, exited } = startCli(
        cli,
        [
          'drill',
          '--backup-dir',
          dir,
          '--scratch-dir',
          scratch,
          '--restore-connection-string',
          cluster.url,
          '--drill-log',
          'none',
          '--drill-evidence',
          'none',
          '--report-file',
          path.join(base, 'report-pg.json'),
        ],
        base,
      )
      const name = await waitFor(
        child,
        async () => (await databases()).find((d) => d.startsWith('omniai_drill_')) ?? null,
        'the scratch database was created',
      )
      child.kill('SIGTERM')
      const result = await exited
      expect([result.code, result.signal], result.stderr).toEqual([143, null])
      expect(result.stderr).toContain(`scratch database ${name}`)
      expect(await databases()).toEqual([])
      expect(await scratchFolders(scratch)).toEqual([])
    })

    it('the post step drops scratch databases a killed drill left, not one in use, nor any other', async () => {
      const admin = new pg.Client({ connectionString: cluster.url })
      await admin.connect()
      const left = 'omniai_drill_20261129183000_abc123'
      const busy = 'omniai_drill_20261129183001_def456'
      for (const d of [left, busy, 'omniai_live', 'omniai_drill_notes']) {
        await admin.query(`CREATE DATABASE ${d}`)
      }
      // The role a drill restores as, named as its database.
      await admin.query(`CREATE ROLE ${left} NOLOGIN`)
      await admin.query(`CREATE ROLE ${busy} NOLOGIN`)
      await admin.end()
      // A drill still running elsewhere (another job on a shared server) is connected to its own.
      const user = new pg.Client({
        connectionString: Object.assign(new URL(cluster.url), { pathname: `/${busy}` }).href,
      })
      await user.connect()
      const scratch = path.join(base, 'scratch-post')
      await fs.mkdir(path.join(scratch, 'omniai-drill-AbC123'), { recursive: true })
      await fs.writeFile(path.join(scratch, 'omniai-drill-AbC123', 'plain.db'), 'plaintext')
      try {
        const log = memoryLog()
        const inputs: Partial<Record<Inputs, string>> = {
          [Inputs.ScratchDir]: scratch,
          [Inputs.RestoreConnectionString]: cluster.url,
        }
        expect(await post((i) => inputs[i] ?? '', log)).toBe(true)
        expect(log.lines).toEqual([
          `removed ${path.join(scratch, 'omniai-drill-AbC123')}, left by an interrupted step`,
          `removed database ${left} on 127.0.0.1:${cluster.port}, left by an interrupted step`,
          `removed role ${left} on 127.0.0.1:${cluster.port}, left by an interrupted step`,
        ])
        expect(log.warnings).toEqual([
          `database ${busy} on 127.0.0.1:${cluster.port} is a scratch database in use by another session: left in place.`,
        ])
        expect(await databases()).toEqual([busy, 'omniai_drill_notes', 'omniai_live'])
      } finally {
        await user.end()
      }
      // Once that drill is over, its database goes too.
      expect((await removeLeftovers(scratch, cluster.url)).removed).toEqual([
        `database ${busy} on 127.0.0.1:${cluster.port}`,
        `role ${busy} on 127.0.0.1:${cluster.port}`,
      ])
    })

    it('a restore server that cannot be reached fails the post step, naming it', async () => {
      const log = memoryLog()
      const url = 'postgres://u:secret@127.0.0.1:1/postgres'
      // A scratch-dir of its own: the default (RUNNER_TEMP, else the system's temp folder) would
      // have this post step remove other runs' scratch folders there (a test S3 cluster's, once).
      const inputs: Partial<Record<Inputs, string>> = {
        [Inputs.ScratchDir]: path.join(base, 'scratch-unreached'),
        [Inputs.RestoreConnectionString]: url,
      }
      expect(await post((i) => inputs[i] ?? '', log)).toBe(false)
      expect(log.warnings.join('\n')).toMatch(
        /^could not remove scratch databases on 127\.0\.0\.1:1 \(cannot connect: .*ECONNREFUSED.*\)\. Fix: delete it by hand/,
      )
      expect(log.warnings.join('\n')).not.toContain('secret')
    })
  })
})
