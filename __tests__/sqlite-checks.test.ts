import * as fs from 'node:fs/promises'
import { writeFile } from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { checkWorkerJobs, SqliteEngine } from '../src/engines/sqlite/engine.js'
import { openSqlite } from '../src/engines/sqlite/driver.js'
import { damageIndexes } from './fixtures/omniai-shaped.js'
import { tempDir } from './helpers.js'

// The real worker_threads, with a record of the jobs each check worker was started with and of
// the workers that answered, so a test can tell the workers did the checking (integrityProblems
// checks in-thread where a worker cannot start or fails, with the same findings).
const started = vi.hoisted(() => [] as unknown[])
const answered = vi.hoisted(() => [] as unknown[])
const exited = vi.hoisted(() => [] as unknown[])
/** Jobs whose worker a test makes fail to start (its constructor throws). */
const refuse = vi.hoisted(() => ({ jobs: null as string | null }))
vi.mock('node:worker_threads', async (importOriginal) => {
  const { recordWorkers } = await import('./recorded-workers.js')
  return recordWorkers(await importOriginal<typeof import('node:worker_threads')>(), {
    started: (worker, data) => {
      const jobs = (data as { jobs?: unknown } | undefined)?.jobs
      if (jobs) {
        if (refuse.jobs === JSON.stringify(jobs)) {
          void worker.terminate()
          throw new Error('this worker may not start')
        }
        started.push(jobs)
        worker.once('message', () => answered.push(jobs))
        worker.once('exit', () => exited.push(jobs))
      }
    },
  })
})

// The cores the layout follows (checkWorkerJobs), set by a test; this machine's otherwise.
const cores = vi.hoisted(() => ({ n: undefined as number | undefined }))
vi.mock('node:os', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:os')>()
  const availableParallelism = () => cores.n ?? real.availableParallelism()
  return { ...real, default: { ...real, availableParallelism }, availableParallelism }
})

/** A one-row database in a folder of its own. */
async function smallDatabase(): Promise<{ dir: string; file: string }> {
  const dir = await tempDir()
  const file = path.join(dir, 'small.db')
  await writeFile(file, '')
  const db = await openSqlite(file, { readonly: false })
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)')
  db.close()
  return { dir, file }
}

// The foreign-key check counts violations with an anti-join where that gives the pragma's exact
// answer, and runs PRAGMA foreign_key_check elsewhere: on every shape here the counts per table
// pair must be the pragma's own.
describe('SQLite foreign-key check', () => {
  it('counts the same violations per table pair as PRAGMA foreign_key_check, whichever way it counts', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'shapes.db')
    const db = await openSqlite(file, { readonly: false }).catch(async () => {
      const { writeFile } = await import('node:fs/promises')
      await writeFile(file, '')
      return openSqlite(file, { readonly: false })
    })
    db.exec(`
      PRAGMA foreign_keys = OFF;
      CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
      CREATE TABLE convs (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users(id));
      CREATE TABLE msgs (id INTEGER PRIMARY KEY, conv_id TEXT NOT NULL REFERENCES convs(id), body TEXT);
      CREATE INDEX msgs_conv ON msgs(conv_id);
      CREATE TABLE loose (id INTEGER PRIMARY KEY, user_ref TEXT REFERENCES users(id));
      CREATE TABLE nocase_parent (code TEXT COLLATE NOCASE UNIQUE);
      CREATE TABLE nocase_child (code TEXT REFERENCES nocase_parent(code));
      CREATE TABLE pair_parent (a INTEGER, b INTEGER, PRIMARY KEY (a, b));
      CREATE TABLE pair_child (a INTEGER, b INTEGER, FOREIGN KEY (a, b) REFERENCES pair_parent(a, b));
      CREATE TABLE orphaned (id INTEGER PRIMARY KEY, gone_id INTEGER REFERENCES gone(id));
      CREATE TABLE two_keys (id INTEGER PRIMARY KEY, u1 INTEGER REFERENCES users(id), u2 INTEGER REFERENCES users);
      INSERT INTO users VALUES (1, 'a'), (2, 'b');
      INSERT INTO convs VALUES ('c1', 1), ('c2', 9), ('c3', NULL);
      INSERT INTO msgs (conv_id, body) VALUES ('c1', 'x'), ('c2', 'y'), ('cX', 'z'), ('cY', 'z'), ('cY', 'w');
      INSERT INTO loose VALUES (1, '1'), (2, '01'), (3, 'x'), (4, NULL);
      INSERT INTO nocase_parent VALUES ('abc');
      INSERT INTO nocase_child VALUES ('ABC'), ('zzz');
      INSERT INTO pair_parent VALUES (1, 1);
      INSERT INTO pair_child VALUES (1, 1), (1, 2), (NULL, 5);
      INSERT INTO orphaned VALUES (1, 1), (2, NULL);
      INSERT INTO two_keys VALUES (1, 1, 2), (2, 7, 8), (3, 1, 9);
    `)
    const expected = new Map<string, number>()
    for (const r of db.objects('PRAGMA foreign_key_check')) {
      const id = `${String(r.table)} -> ${String(r.parent)}`
      expected.set(id, (expected.get(id) ?? 0) + 1)
    }
    db.close()
    const backup = await new SqliteEngine(file).openBackup(file)
    try {
      const { damage, foreignKeys } = await backup.integrityProblems()
      expect(damage).toEqual([])
      const got = new Map(foreignKeys.map((v) => [`${v.table} -> ${v.parent}`, v.rows]))
      expect(got).toEqual(expected)
      // The shapes above do produce violations of each kind.
      expect(got.get('msgs -> convs')).toBe(3)
      expect(got.get('two_keys -> users')).toBe(3)
      expect(got.get('loose -> users')).toBeGreaterThan(0)
    } finally {
      await backup.close()
    }
  })
})

// integrity_check and the foreign-key check run in one worker or in two (checkWorkerJobs: by
// the cores, and whether they check a restored copy); both layouts find the same damage and the
// same violations.
describe('SQLite check workers, one or two', () => {
  for (const layout of ['1', '2'] as const) {
    it(`OMNIAI_CHECK_WORKERS=${layout}: a damaged index and orphaned rows are both found`, async () => {
      const saved = process.env.OMNIAI_CHECK_WORKERS
      process.env.OMNIAI_CHECK_WORKERS = layout
      try {
        expect(checkWorkerJobs()).toEqual(
          layout === '1' ? [['integrity', 'foreign-keys']] : [['integrity'], ['foreign-keys']],
        )
        const file = path.join(await tempDir(), 'damaged.db')
        await writeFile(file, '')
        const db = await openSqlite(file, { readonly: false })
        db.exec(`
          PRAGMA foreign_keys = OFF;
          CREATE TABLE parents (id INTEGER PRIMARY KEY);
          CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT, parent_id INTEGER REFERENCES parents(id));
          CREATE INDEX items_label ON items(label);
          INSERT INTO parents VALUES (1);
        `)
        for (let i = 0; i < 500; i++) {
          db.run(
            'INSERT INTO items (label, parent_id) VALUES (?, ?)',
            `needle-${i}`,
            i < 4 ? 7n : 1n,
          )
        }
        db.close()
        expect(await damageIndexes(file, 'needle-')).toBeGreaterThan(0)
        started.length = 0
        answered.length = 0
        const backup = await new SqliteEngine(file).openBackup(file)
        try {
          const { damage, foreignKeys } = await backup.integrityProblems()
          expect(started).toEqual(checkWorkerJobs())
          expect(answered.toSorted()).toEqual(checkWorkerJobs().toSorted())
          expect(damage.join('\n')).toMatch(/items_label/)
          expect(foreignKeys).toEqual([{ table: 'items', parent: 'parents', rows: 4 }])
        } finally {
          await backup.close()
        }
      } finally {
        if (saved === undefined) delete process.env.OMNIAI_CHECK_WORKERS
        else process.env.OMNIAI_CHECK_WORKERS = saved
      }
    })
  }

  it("a restored copy's checks take the restored layout, a backup's the other", async () => {
    const saved = process.env.OMNIAI_CHECK_WORKERS
    delete process.env.OMNIAI_CHECK_WORKERS
    try {
      const { dir, file } = await smallDatabase()
      const engine = new SqliteEngine(file)
      const split = [['integrity'], ['foreign-keys']]
      const one = [['integrity', 'foreign-keys']]
      for (const [n, restoredLayout, backupLayout] of [
        [2, split, one],
        [3, split, one],
        [4, split, split],
      ] as const) {
        cores.n = n
        const layouts: unknown[][] = []
        for (const open of [
          () => engine.restoreFile(file, dir, { info: () => undefined } as never),
          () => engine.openBackup(file),
        ]) {
          started.length = 0
          answered.length = 0
          const opened = await open()
          try {
            expect((await opened.integrityProblems()).damage).toEqual([])
          } finally {
            await opened.close()
          }
          // The workers did the checking (not the in-thread fallback).
          expect(answered.toSorted()).toEqual(started.toSorted())
          layouts.push([...started])
          await fs.rm(path.join(dir, 'restored.db'), { force: true })
        }
        expect(layouts).toEqual([restoredLayout, backupLayout])
      }
    } finally {
      cores.n = undefined
      if (saved !== undefined) process.env.OMNIAI_CHECK_WORKERS = saved
    }
  })

  it('a second check worker that cannot start ends the first; the checks find workers again when run', async () => {
    const { dir, file } = await smallDatabase()
    cores.n = 2
    refuse.jobs = JSON.stringify(['foreign-keys'])
    started.length = 0
    answered.length = 0
    exited.length = 0
    try {
      const restored = await new SqliteEngine(file).restoreFile(file, dir, {
        info: () => undefined,
      } as never)
      try {
        expect(await restored.integrityProblems()).toEqual({ damage: [], foreignKeys: [] })
      } finally {
        await restored.close()
      }
      // The first of the pair, ended unused; then one worker for both, which answered.
      expect(started).toEqual([['integrity'], ['integrity', 'foreign-keys']])
      expect(answered).toEqual([['integrity', 'foreign-keys']])
      await vi.waitFor(() => expect(exited).toContainEqual(['integrity']))
    } finally {
      cores.n = undefined
      refuse.jobs = null
    }
  })

  it("without a choice, the layout follows the cores: two workers from 4 cores, from 2 for a restored copy's checks", () => {
    const saved = process.env.OMNIAI_CHECK_WORKERS
    delete process.env.OMNIAI_CHECK_WORKERS
    try {
      const workers = (cores: number) => checkWorkerJobs(cores).length
      expect([1, 2, 3, 4, 8].map(workers)).toEqual([1, 1, 1, 2, 2])
      const restored = (cores: number) => checkWorkerJobs(cores, true).length
      expect([1, 2, 3, 4, 8].map(restored)).toEqual([1, 2, 2, 2, 2])
      expect(checkWorkerJobs()).toEqual(checkWorkerJobs(os.availableParallelism()))
    } finally {
      if (saved !== undefined) process.env.OMNIAI_CHECK_WORKERS = saved
    }
  })
})
