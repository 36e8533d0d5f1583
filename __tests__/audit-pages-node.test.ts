import { vi } from 'vitest'

// Node's built-in node:sqlite, the driver used where no better-sqlite3 prebuild loads.
vi.hoisted(() => {
  process.env.OMNIAI_SQLITE_DRIVER = 'node'
})

const { auditPageTests } = await import('./audit-pages.js')
auditPageTests('node:sqlite')
