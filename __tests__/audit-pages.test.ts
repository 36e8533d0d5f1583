import { vi } from 'vitest'
import { auditPageTests } from './audit-pages.js'

// Every worker recorded: a test ends the audit worker part way (workerEvents).
vi.mock('node:worker_threads', async (importOriginal) => {
  const { recordWorkers, workerEvents } = await import('./recorded-workers.js')
  return recordWorkers(await importOriginal<typeof import('node:worker_threads')>(), workerEvents)
})

auditPageTests('better-sqlite3')
