import { vi } from 'vitest'

// Node's built-in node:sqlite, the driver used where no better-sqlite3 prebuild loads.
vi.hoisted(() => {
  process.env.OMNIAI_SQLITE_DRIVER = 'node'
})

// Every worker recorded: a test ends the audit worker part way (workerEvents).
vi.mock('node:worker_threads', async (importOriginal) => {
  const { recordWorkers, workerEvents } = await import('./recorded-workers.js')
  return recordWorkers(await importOriginal<typeof import('node:worker_threads')>(), workerEvents)
})

const { auditPageTests } = await import('./audit-pages.js')
auditPageTests('node:sqlite')
