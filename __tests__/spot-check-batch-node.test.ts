import { vi } from 'vitest'

// Node's built-in node:sqlite, the driver used where no better-sqlite3 prebuild loads.
vi.hoisted(() => {
  process.env.OMNIAI_SQLITE_DRIVER = 'node'
})

const { spotCheckBatchTests } = await import('./spot-check-batch.js')
spotCheckBatchTests('node:sqlite')
