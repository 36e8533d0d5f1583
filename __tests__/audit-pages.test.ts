import { auditPageTests } from './audit-pages.js'

auditPageTests('better-sqlite3')
