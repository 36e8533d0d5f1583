import { spotCheckBatchTests } from './spot-check-batch.js'

spotCheckBatchTests('better-sqlite3')
