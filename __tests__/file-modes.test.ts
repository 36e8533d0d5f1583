/**
 * Who can read what the action writes. The process runs with umask 077 (src/entry.ts), so a
 * snapshot, a decrypted copy or a restored scratch copy is never group- or world-readable, not
 * even while it is being written; and a restored live SQLite database keeps the owner and mode
 * of the file it replaces, so the backend can open it afterwards.
 */
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateAgeIdentity } from '../src/codec/index.js'
import { UMASK } from '../src/entry.js'
import type { Log } from '../src/util/log.js'
import { runMode } from '../src/modes/index.js'
import { buildCli, startCli } from './built-cli.js'
import {
  configFor,
  demoWorkspace,
  execFileAsync,
  failed,
  memoryLog,
  run,
  tempDir,
} from './helpers.js'

const isRoot = process.getuid?.() === 0

/** Every file and folder under `dir` with its permission bits, as they are right now. */
async function modes(dir: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>()
  for (const name of await fs.readdir(dir, { recursive: true })) {
    const p = path.join(dir, name)
    const stat = await fs.lstat(p).catch(() => null)
    if (stat) seen.set(path.relative(dir, p), stat.mode & 0o777)
  }
  return seen
}

/**
 * A Log that records the mode of everything under `dir` as each step begins and ends: after
 * the snapshot (before the backup restricts it), after encoding, before the drill's checks.
 */
function probe(dir: string): { log: Log; seen: Map<string, Set<number>> } {
  const seen = new Map<string, Set<number>>()
  const look = async () => {
    for (const [p, mode] of await modes(dir)) {
      if (!seen.has(p)) seen.set(p, new Set())
      seen.get(p)!.add(mode)
    }
  }
  const log: Log = {
    ...memoryLog(),
    group: async (_name, fn) => {
      await look()
      const result = await fn()
      await look()
      return result
    },
  }
  return { log, seen }
}

/** Paths seen with any group or other permission bit, with those modes. */
const readableByOthers = (seen: Map<string, Set<number>>) =>
  [...seen].filter(([, m]) => [...m].some((mode) => mode & 0o077)).map(([p, m]) => [p, [...m]])

const match = (seen: Map<string, Set<number>>, re: RegExp) =>
  [...seen.keys()].filter((p) => re.test(p))

describe('umask 077: nothing is readable by others while it is written', () => {
  let umask: number
  beforeAll(() => {
    umask = process.umask()
  })
  afterEach(() => {
    process.umask(umask)
  })

  async function backupAndDrill() {
    const ws = await demoWorkspace({ conversations: 30, auditRows: 100 })
    const key = generateAgeIdentity()
    const { log, seen } = probe(ws.dir)
    const common = { 'scratch-dir': path.join(ws.dir, 'scratch'), 'backup-dir': ws.backups }
    const backup = await runMode(
      configFor(
        'backup',
        {
          ...common,
          'connection-string': ws.db,
          encryption: 'age',
          compression: 'zstd',
          'age-recipients': key.recipient,
        },
        ws.dir,
      ),
      log,
    )
    expect(backup.error).toBeUndefined()
    const drill = await runMode(
      configFor(
        'drill',
        { ...common, 'age-identity': key.identity, 'drill-evidence': 'none' },
        ws.dir,
      ),
      log,
    )
    expect(failed(drill)).toEqual({})
    return seen
  }

  it('with the entry umask: temporary snapshot, encoded temp, final backup, manifest, decrypted and restored scratch copies', async () => {
    process.umask(UMASK)
    const seen = await backupAndDrill()
    const day = new Date().toISOString().slice(0, 10)
    // Each of them was looked at while it existed.
    expect(
      match(seen, new RegExp(`^scratch/omniai-backup-\\w{6}/omniai-${day}\\.db$`)),
    ).toHaveLength(1)
    expect(match(seen, /^backups\/\.omniai-.*\.db\.zst\.age\..*\.tmp$/)).toHaveLength(1)
    expect(match(seen, /^backups\/omniai-.*\.db\.zst\.age$/)).toHaveLength(1)
    expect(match(seen, /^backups\/omniai-.*\.db\.zst\.age\.manifest\.json$/)).toHaveLength(1)
    expect(match(seen, /^scratch\/omniai-drill-\w{6}\/plain\.db$/)).toHaveLength(1)
    expect(match(seen, /^scratch\/omniai-drill-\w{6}\/restored\.db$/)).toHaveLength(1)
    expect(readableByOthers(seen)).toEqual([])
  })

  it('positive control: under umask 022 what the action creates without a mode of its own is readable by others', async () => {
    process.umask(0o022)
    const seen = await backupAndDrill()
    const readable = new Map(readableByOthers(seen) as [string, number[]][])
    // The scratch folder is created without a mode: the umask is what keeps it private.
    expect(readable.get('scratch')).toContain(0o755)
    // The snapshot and the restored copy are written 0600 whatever the umask (a copy that took
    // the source's mode made a 0644 database's snapshot world-readable while it was written).
    const copies = [...seen.keys()].filter((p) =>
      /^scratch\/omniai-(backup|drill)-\w{6}\/(omniai-.*|restored)\.db$/.test(p),
    )
    expect(copies.length).toBeGreaterThanOrEqual(1)
    for (const p of copies) expect(readable.has(p)).toBe(false)
  })
})

/** The CLI compiled from src, once for this file, in a folder every user may read. */
let built: Promise<{ dir: string; cli: string }> | undefined
const compiled = () =>
  (built ??= (async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-modes-cli-'))
    await fs.chmod(dir, 0o755)
    return { dir, cli: await buildCli(dir) }
  })())
afterAll(async () => {
  if (built) await fs.rm((await built).dir, { recursive: true, force: true })
})

describe('the CLI sets the umask itself', () => {
  it('started under umask 000, its SQLite files are 0600 all the same', async () => {
    const { cli } = await compiled()
    const dir = await tempDir()
    const { exited } = startCli(
      cli,
      ['demo-db', '--out', 'demo.db', '--conversations', '3'],
      dir,
      {},
      ['sh', '-c', 'umask 000 && exec "$@"', 'sh'],
    )
    const result = await exited
    expect(result.code, result.stderr).toBe(0)
    expect((await fs.stat(path.join(dir, 'demo.db'))).mode & 0o777).toBe(0o600)
    // Positive control: the same shell gives a file it makes itself 0666.
    await execFileAsync('sh', ['-c', 'umask 000 && : > shell.txt'], { cwd: dir })
    expect((await fs.stat(path.join(dir, 'shell.txt'))).mode & 0o777).toBe(0o666)
  })
})

describe.runIf(isRoot)('restore keeps the live file’s owner and mode', () => {
  it('a live omniai.db owned by the backend user, 0640, is the same after the restore (run as root)', async () => {
    const umask = process.umask(UMASK)
    try {
      const ws = await demoWorkspace({ conversations: 20, auditRows: 50 })
      const inputs = { 'connection-string': ws.db, 'backup-dir': ws.backups }
      expect((await run('backup', inputs, ws.dir)).report.ok).toBe(true)
      // The backend runs as its own user and reads the file through its group.
      await fs.chown(ws.db, 1234, 2345)
      await fs.chmod(ws.db, 0o640)
      const { report } = await run('restore', { ...inputs, confirm: 'omniai.db' }, ws.dir)
      expect(failed(report)).toEqual({})
      const stat = await fs.stat(ws.db)
      expect([stat.uid, stat.gid, stat.mode & 0o7777]).toEqual([1234, 2345, 0o640])
      // The safety backup is this process's own, and private.
      const safety = await fs.stat(report.restore!.safetyBackup!)
      expect([safety.uid, safety.mode & 0o777]).toEqual([0, 0o600])
    } finally {
      process.umask(umask)
    }
  })

  it('a restore that may not give the file its owner refuses before replacing it', async () => {
    const dir = await tempDir()
    // A process that is not root (uid 1234), in a folder it may write, restoring a file that
    // belongs to another user: the restored file would be 1234's and 0600, the backend locked out.
    await fs.chmod(dir, 0o777)
    const ws = await demoWorkspace({ conversations: 20, auditRows: 50 })
    const live = path.join(dir, 'omniai.db')
    await fs.copyFile(ws.db, live)
    const backups = path.join(dir, 'backups')
    expect(
      (await run('backup', { 'connection-string': live, 'backup-dir': backups }, dir)).report.ok,
    ).toBe(true)
    await fs.chown(live, 2345, 2345)
    await fs.chmod(live, 0o666)
    for (const p of [backups, ...(await fs.readdir(backups)).map((f) => path.join(backups, f))]) {
      await fs.chown(p, 1234, 1234)
    }
    const before = await fs.readFile(live)
    const { cli } = await compiled()
    const { exited } = startCli(
      cli,
      [
        'restore',
        '--connection-string',
        live,
        '--backup-dir',
        backups,
        '--scratch-dir',
        path.join(dir, 'scratch'),
        '--report-file',
        path.join(dir, 'report.json'),
        '--confirm',
        'omniai.db',
      ],
      dir,
      {},
      ['setpriv', '--reuid=1234', '--regid=1234', '--clear-groups'],
    )
    const result = await exited
    expect(result.code, result.stderr).toBe(1)
    expect(result.stderr).toMatch(
      /connection-string: .*omniai\.db belongs to uid 2345 \(group 2345\), and this process \(uid 1234\) cannot give the restored file that owner.*the live database was not touched\. Fix: run the restore as root/,
    )
    expect((await fs.readFile(live)).equals(before)).toBe(true)
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })
})
