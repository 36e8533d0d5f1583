/**
 * sha256 on a worker thread, for the age fast path (age-file.ts): each of the two hashes a
 * codec run keeps (stored file, plaintext) costs about as much CPU as the encryption itself, so
 * running them beside it instead of after it on the main thread uses the second core. The bytes
 * are never copied: they sit in SharedArrayBuffers that the caller leaves untouched until the
 * update's promise resolves.
 */
import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'

// eval: the bundle (ncc) has no separate file to start a worker from.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const hash = createHash('sha256')
const buffers = workerData.map((b) => new Uint8Array(b))
parentPort.on('message', (m) => {
  if (m === null) {
    parentPort.postMessage(hash.digest('hex'))
    parentPort.close()
    return
  }
  hash.update(buffers[m[1]].subarray(m[2], m[2] + m[3]))
  parentPort.postMessage(m[0])
})
`

const DONE = Promise.resolve()

export interface Sha256 {
  /** Off-thread, `view` must lie in one of the worker's buffers, unchanged until this resolves. */
  update(view: Uint8Array): Promise<void>
  digest(): Promise<string>
  /** Stops the worker, if any; for error paths. */
  destroy(): void
}

/** A sha256 on this thread: for small inputs, where starting a worker costs more than it saves. */
export function inlineSha256(): Sha256 {
  const hash = createHash('sha256')
  return {
    update(view) {
      hash.update(view)
      return DONE
    },
    digest: () => Promise.resolve(hash.digest('hex')),
    destroy() {},
  }
}

/**
 * A sha256 on its own worker thread, over bytes in `buffers` only: they are shared with the
 * worker once, when it starts (measured: a SharedArrayBuffer in every message cost more main
 * thread time than the encryption).
 */
export function workerSha256(buffers: readonly SharedArrayBuffer[]): Sha256 {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: buffers,
    // It allocates only its small messages: a small young generation keeps its RSS small.
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
  })
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()
  let digested: { resolve: (hex: string) => void; reject: (err: Error) => void } | null = null
  let failure: Error | null = null
  let next = 0
  const fail = (err: Error) => {
    failure ??= err
    for (const p of pending.values()) p.reject(failure)
    pending.clear()
    digested?.reject(failure)
    digested = null
  }
  worker.on('message', (m: number | string) => {
    if (typeof m === 'string') {
      digested?.resolve(m)
      digested = null
      return
    }
    pending.get(m)?.resolve()
    pending.delete(m)
  })
  worker.on('error', fail)
  worker.on('exit', (code) => {
    if (pending.size > 0 || digested) fail(new Error(`the sha256 worker stopped (exit ${code})`))
  })
  return {
    update(view) {
      if (failure) return Promise.reject(failure)
      const index = buffers.indexOf(view.buffer as SharedArrayBuffer)
      if (index < 0) throw new Error('workerSha256: the bytes are not in a buffer it was given')
      const id = next++
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        worker.postMessage([id, index, view.byteOffset, view.length])
      })
    },
    digest() {
      if (failure) return Promise.reject(failure)
      return new Promise<string>((resolve, reject) => {
        digested = { resolve, reject }
        worker.postMessage(null)
      })
    },
    destroy() {
      fail(new Error('the sha256 worker was stopped'))
      void worker.terminate()
    },
  }
}

/** A Buffer over new shared memory (zero-filled), which a worker can read without a copy. */
export function sharedBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes))
}
