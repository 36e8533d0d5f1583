/**
 * Engine-neutral work on an open Database: taking the inventory a manifest records, and the
 * checks that compare a database with its manifest. Engines call these; modes call these; the
 * checks never know which engine they run on.
 */
import { digestAudit } from './audit.js'
import {
  auditLog,
  foreignKeys,
  integrity,
  rowCounts,
  schema,
  spotCheck,
  type Check,
} from './checks.js'
import type { Database } from '../engines/database.js'
import { describeError } from '../util/errors.js'
import type { DatabaseFacts, Inventory, InventoryOptions } from './inventory.js'
import type { Manifest } from '../manifest/manifest.js'

export async function takeInventory(db: Database, options: InventoryOptions): Promise<Inventory> {
  const schema = await db.schema()
  return {
    schema,
    rowCounts: await db.rowCounts(schema.tables.map((t) => t.name)),
    audit: options.auditTable
      ? await digestAudit(options.auditTable, db.auditRows(options.auditTable))
      : null,
    conversations: options.conversationsTable
      ? await db.recentConversations(options.conversationsTable, options.spotCheckCount)
      : null,
  }
}

/** Runs one check; an error while checking is that check failing, with the error as its detail. */
export async function runCheck(name: string, fn: () => Promise<Check> | Check): Promise<Check> {
  try {
    return await fn()
  } catch (err) {
    return { name, ok: false, detail: describeError(err) }
  }
}

export function databaseFacts(bytes: number, counts: Record<string, number>): DatabaseFacts {
  return {
    bytes,
    tables: Object.keys(counts).length,
    rows: Object.values(counts).reduce((a, b) => a + b, 0),
  }
}

/**
 * Integrity reads the whole database, and an engine may do it off this thread: start it first,
 * do other work, and await it last (checkDatabase takes the started findings). Damage fails the
 * integrity check; foreign-key violations are compared with those the manifest recorded.
 */
export function startIntegrity(
  db: Database,
  manifest: Pick<Manifest, 'inventory'> | Promise<Pick<Manifest, 'inventory'>>,
): Promise<Check[]> {
  return Promise.all([db.integrityProblems(), manifest]).then(
    ([found, { inventory }]) => [
      integrity(found.damage),
      foreignKeys(found, {
        foreignKeys: inventory.foreignKeyViolations ?? [],
        notValid: inventory.notValid ?? [],
      }),
    ],
    (err: unknown) => [{ name: 'integrity', ok: false, detail: describeError(err) }],
  )
}

/**
 * Integrity, schema and row counts against the manifest. A database too damaged to read fails
 * the check that tried, and the others still run.
 */
export async function checkDatabase(
  db: Database,
  manifest: Pick<Manifest, 'inventory'>,
  started: Promise<Check[]> = startIntegrity(db, manifest),
): Promise<{ checks: Check[]; database: DatabaseFacts | null }> {
  const checks = [
    await runCheck('schema', async () => schema(await db.schema(), manifest.inventory.schema)),
  ]
  let database: DatabaseFacts | null = null
  checks.push(
    await runCheck('row-counts', async () => {
      const counts = await db.rowCounts((await db.schema()).tables.map((t) => t.name))
      database = databaseFacts(await db.bytes(), counts)
      return rowCounts(counts, manifest.inventory.rowCounts)
    }),
  )
  checks.unshift(...(await started))
  return { checks, database }
}

/**
 * The runbook's post-restore checks, run on the restored copy against the manifest.
 * `findingsOf`: the manifest whose integrity findings (foreign-key violations, NOT VALID
 * constraints) the copy's are compared with, when it is completed after the rest of it (a
 * restore check that starts on the inventory before the snapshot's own checks are done).
 */
export async function checkRestored(
  db: Database,
  manifest: Pick<Manifest, 'inventory'>,
  findingsOf: Pick<Manifest, 'inventory'> | Promise<Pick<Manifest, 'inventory'>> = manifest,
) {
  const { inventory } = manifest
  // SQLite's integrity check runs on another thread meanwhile.
  const integrityCheck = startIntegrity(db, findingsOf)
  const checks: Check[] = []
  const conversations = inventory.conversations
  if (conversations) {
    checks.push(
      await runCheck('spot-check', async () =>
        spotCheck(
          await db.conversations(
            conversations.table,
            conversations.items.map((i) => i.id),
          ),
          conversations,
        ),
      ),
    )
  }
  const audit = inventory.audit
  if (audit) {
    checks.push(
      await runCheck('audit-log', async () =>
        auditLog(
          await digestAudit(
            audit.table,
            db.auditRows(audit.table),
            audit.chunks.map((c) => c.firstKey),
            audit.chunks,
          ),
          audit,
        ),
      ),
    )
  }
  const base = await checkDatabase(db, manifest, integrityCheck)
  return { checks: [...base.checks, ...checks], database: base.database }
}
