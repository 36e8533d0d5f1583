/**
 * node:worker_threads as it is, with each Worker reported when it starts (with its workerData)
 * and each message posted to it: for tests that must see which worker did what, in
 * `vi.mock('node:worker_threads', async (real) => recordWorkers(await real(), {...}))`.
 */
import type * as WorkerThreads from 'node:worker_threads'

export interface WorkerEvents {
  started?: (worker: WorkerThreads.Worker, workerData: unknown) => void
  posted?: (workerData: unknown, value: unknown) => void
}

export function recordWorkers(real: typeof WorkerThreads, on: WorkerEvents) {
  class Recorded extends real.Worker {
    private readonly data: unknown
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args)
      this.data = args[1]?.workerData
      on.started?.(this, this.data)
    }
    override postMessage(value: unknown, transfer?: readonly WorkerThreads.Transferable[]): void {
      on.posted?.(this.data, value)
      super.postMessage(value, transfer)
    }
  }
  return { ...real, Worker: Recorded, default: { ...real, Worker: Recorded } }
}

/**
 * Events read when they happen, so a test file that records every worker can set them per test:
 * `vi.mock('node:worker_threads', async (real) => recordWorkers(await real(), workerEvents))`.
 */
export const workerEvents: WorkerEvents = {}
