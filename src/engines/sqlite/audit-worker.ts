/**
 * The audit log's rows read and encoded on a worker thread, while this thread hashes them: a
 * two-stage pipeline for the audit digest of a SQLite file that nothing writes while it is read
 * (a backup's snapshot; never the live database, whose rows this thread reads inside its own
 * read transaction).
 *
 * On one thread a row cost 1.8 µs here (1M audit rows: 1.78-1.84 s): about half reading it out of
 * SQLite and encoding it (encodeRow), half its own sha256 and the chunk's sums. The worker takes
 * the first half, with Node's built-in SQLite (no native module to locate from inside a bundle,
 * as the check workers), and hands over the encoded lines in batches: the digest is the same,
 * byte for byte, as the rows read here would give (the same encodeRow, as source text).
 *
 * At most BATCHES_AHEAD batches wait for this thread, so memory stays flat whatever the table's
 * size. A worker that cannot start, or fails on the way (out of memory, say), leaves the rows
 * it has not sent to this thread: the file does not change, so the rows after the last key taken
 * are the rest of the same reading.
 */
import { Worker } from 'node:worker_threads'
import type { AuditRow, EncodedRows } from '../../checks/audit.js'
import { ENCODE_ROW_NAME, ENCODE_ROW_SOURCE } from '../../checks/digest.js'

/**
 * Characters of text per batch, about (a batch ends on a whole row). Measured on 1M audit rows
 * (110 MB of lines), the digest alone, 3 runs each: 256 Ki 1.16-1.30 s and 168-252 MB peak RSS
 * (batches that big outlive the young generation), 64 Ki 1.11-1.17 s and 99 MB, 32 Ki 1.05-1.08
 * s and 99 MB, 16 Ki 1.06-1.07 s and 98 MB; on this thread alone, 1.78-1.84 s and 76 MB.
 */
const BATCH_CHARS = 32 << 10
/** Batches the worker may be ahead of this thread. */
export const BATCHES_AHEAD = 4
/**
 * Rows from which the worker is worth its start-up (60 to 90 ms), its 20 MiB and a third busy
 * thread beside the check and hash workers: below, this thread reads them. Measured, a SQLite
 * backup at 1 GiB on 2 cores: with 1M audit rows 2.15-2.24 s against 2.47-2.60 s (bench, the
 * same rounds); with 256k, 1.33-1.40 s against 1.27-1.69 s (4 pairs by hand), no gain. The
 * table's rowid span stands for its row count (max - min + 1, read from the b-tree's ends).
 */
export const AUDIT_WORKER_FROM_ROWS = 500_000

const AUDIT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { DatabaseSync } = require('node:sqlite')
${ENCODE_ROW_SOURCE}
const encode = ${ENCODE_ROW_NAME}
const { file, select, rowid, at, page, batchChars, credits } = workerData
const ahead = new Int32Array(credits)
let db
try {
  db = new DatabaseSync(file, { readOnly: true, readBigInts: true })
  db.exec('BEGIN')
  const first = db.prepare(select + ' ORDER BY ' + rowid + ' LIMIT ' + page)
  const next = db.prepare(select + ' WHERE ' + rowid + ' > ? ORDER BY ' + rowid + ' LIMIT ' + page)
  first.setReturnArrays(true)
  next.setReturnArrays(true)
  let keys = []
  let text = ''
  const send = () => {
    // One batch more in flight: wait while this thread has BATCHES_AHEAD to take already.
    while (Atomics.sub(ahead, 0, 1) <= 0) {
      Atomics.add(ahead, 0, 1)
      Atomics.wait(ahead, 0, 0)
    }
    parentPort.postMessage({ keys, text })
    keys = []
    text = ''
  }
  for (let rows = first.all(); rows.length > 0; ) {
    for (const row of rows) {
      const key = row[at]
      keys.push(key instanceof Uint8Array ? Buffer.from(key).toString('hex') : String(key))
      text += encode(row)
      if (text.length >= batchChars) send()
    }
    if (rows.length < page) break
    rows = next.all(rows[rows.length - 1][at])
  }
  if (keys.length > 0) send()
  db.exec('COMMIT')
  parentPort.postMessage({ done: true })
} catch (err) {
  parentPort.postMessage({ error: String(err && err.message || err) })
} finally {
  try { db && db.close() } catch {}
}
`

export interface AuditWorkerJob {
  file: string
  /** `SELECT rowid, * FROM t` or `SELECT * FROM t`: what this thread's pages select. */
  select: string
  /** The key, quoted: the rowid or the column that stands for it. */
  rowid: string
  /** The key's place in a selected row. */
  at: number
  /** Rows per page, as this thread reads them. */
  page: number
}

type Message = EncodedRows | { done: true } | { error: string }

/** Workers started and not yet ended: for the tests, which check that none is left behind. */
let running = 0
export const runningAuditWorkers = () => running

/**
 * The rows of `job`, encoded on a worker, in key order. The worker starts at the first read, so
 * an iteration never begun leaves nothing running; ending one early ends the worker. When the
 * worker cannot start or fails, `fallback(after, why)` gives the rest of the rows read here:
 * those after the key `after`, the last one taken from the worker (null: all of them). Without
 * a fallback, that failure is the iteration's.
 */
export async function* encodedInWorker(
  job: AuditWorkerJob,
  fallback: ((after: string | null, why: unknown) => AsyncIterable<AuditRow[]>) | null,
): AsyncIterable<EncodedRows | AuditRow[]> {
  const credits = new SharedArrayBuffer(4)
  const ahead = new Int32Array(credits)
  ahead[0] = BATCHES_AHEAD
  const queue: Message[] = []
  let wake: (() => void) | null = null
  let failure: Error | null = null
  let worker: Worker | null = null
  // The key of the last row taken by the caller.
  let after: string | null = null
  try {
    worker = new Worker(AUDIT_WORKER, {
      eval: true,
      workerData: { ...job, batchChars: BATCH_CHARS, credits },
      execArgv: ['--no-warnings'],
    })
    running++
    worker.on('message', (m: Message) => {
      queue.push(m)
      wake?.()
    })
    worker.once('error', (err) => {
      failure ??= err
      wake?.()
    })
    worker.once('exit', (code) => {
      running--
      failure ??= new Error(`the audit-log worker stopped (exit ${code})`)
      wake?.()
    })
    for (;;) {
      const m = queue.shift()
      if (!m) {
        if (failure) throw failure
        await new Promise<void>((resolve) => (wake = resolve))
        wake = null
        continue
      }
      if ('done' in m) return
      if ('error' in m) throw new Error(`audit-log worker: ${m.error}`)
      // Room for one more batch on the worker's side.
      Atomics.add(ahead, 0, 1)
      Atomics.notify(ahead, 0)
      after = m.keys[m.keys.length - 1] ?? after
      yield m
    }
  } catch (err) {
    if (!fallback) throw err
    // The rest of the rows are read here instead (a worker that cannot start or load SQLite, or
    // ran out of memory on the way), and an error of the file's own comes again from there.
    // A worker that reported an error may still be running: it ends before the rows are read.
    void worker?.terminate()
    worker = null
    yield* fallback(after, err)
  } finally {
    void worker?.terminate()
  }
}
