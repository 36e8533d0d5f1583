/**
 * The checks: each compares what a backup or restored copy holds with what its manifest says it
 * must hold, and returns a named result whose detail says what differs. They see only
 * engine-neutral inventories, never an engine.
 */
import { describeChunkDifference } from './audit.js'
import type {
  AuditDigest,
  Conversations,
  ForeignKeyViolation,
  IntegrityFindings,
  Schema,
} from './inventory.js'

export interface Check {
  name: string
  ok: boolean
  detail: string
}

/** Detail lists at most this many differences, then says how many more. */
const MAX_LISTED = 5

function listDifferences(name: string, differences: string[], pass: string): Check {
  if (differences.length === 0) return { name, ok: true, detail: pass }
  const shown = differences.slice(0, MAX_LISTED).join('; ')
  const more =
    differences.length > MAX_LISTED ? `; and ${differences.length - MAX_LISTED} more` : ''
  return { name, ok: false, detail: shown + more }
}

const short = (sha: string) => sha.slice(0, 12)

export function checksum(
  actual: { sha256: string; bytes: number },
  expected: { sha256: string; bytes: number },
): Check {
  if (actual.bytes !== expected.bytes) {
    return {
      name: 'checksum',
      ok: false,
      detail: `${actual.bytes} bytes where the manifest says ${expected.bytes} (truncated or appended to)`,
    }
  }
  if (actual.sha256 !== expected.sha256) {
    return {
      name: 'checksum',
      ok: false,
      detail: `sha256 ${short(actual.sha256)}… where the manifest says ${short(expected.sha256)}… (the file was altered)`,
    }
  }
  return {
    name: 'checksum',
    ok: true,
    detail: `sha256 ${short(actual.sha256)}… and ${actual.bytes} bytes match the manifest`,
  }
}

export function integrity(damage: string[]): Check {
  return listDifferences('integrity', damage, 'integrity_check ok')
}

const pairKey = (v: ForeignKeyViolation) =>
  `${v.table} → ${v.parent}${v.constraint ? ` (${v.constraint})` : ''}`

function listViolations(found: ForeignKeyViolation[]): string {
  const rows = found.reduce((n, v) => n + v.rows, 0)
  return `${rows} ${rows === 1 ? 'row points' : 'rows point'} at missing rows: ${found
    .slice(0, MAX_LISTED)
    .map((v) => `${pairKey(v)}: ${v.rows}`)
    .join(
      ', ',
    )}${found.length > MAX_LISTED ? `, and ${found.length - MAX_LISTED} more table pairs` : ''}`
}

/** What a snapshot's integrity checks found, in one line for the report. */
export function describeFindings(findings: IntegrityFindings): string {
  if (findings.damage.length)
    return `integrity_check FAILED: ${findings.damage.slice(0, 3).join('; ')}`
  const parts = ['integrity_check ok']
  if (findings.foreignKeys.length)
    parts.push(`foreign keys: ${listViolations(findings.foreignKeys)} (recorded in the manifest)`)
  else parts.push('no foreign-key violations')
  if (findings.notValid?.length)
    parts.push(`NOT VALID constraints: ${findings.notValid.join(', ')}`)
  return parts.join('; ')
}

/**
 * Foreign-key violations and NOT VALID constraints are data-quality findings: a faithful copy
 * has exactly those the source had when the backup was taken. The same ones pass (and are
 * reported); new ones, or a different count, fail naming the table pair.
 */
export function foreignKeys(
  actual: { foreignKeys: ForeignKeyViolation[]; notValid?: string[] },
  expected: { foreignKeys: ForeignKeyViolation[]; notValid?: string[] },
): Check {
  const differences: string[] = []
  const want = new Map(expected.foreignKeys.map((v) => [pairKey(v), v.rows]))
  const have = new Map(actual.foreignKeys.map((v) => [pairKey(v), v.rows]))
  for (const [pair, rows] of have) {
    const wanted = want.get(pair)
    if (wanted === undefined)
      differences.push(
        `${pair}: ${rows} rows point at missing rows, and the manifest has none (new violations)`,
      )
    else if (wanted !== rows)
      differences.push(
        `${pair}: ${rows} rows point at missing rows where the manifest has ${wanted}`,
      )
  }
  for (const [pair, rows] of want)
    if (!have.has(pair))
      differences.push(
        `${pair}: no violations where the manifest has ${rows} (rows differ from the backup)`,
      )
  // A constraint whose rows the source violated can only be restored NOT VALID.
  const notValidWant = new Set([
    ...(expected.notValid ?? []),
    ...expected.foreignKeys.filter((v) => v.constraint).map((v) => `${v.table}.${v.constraint}`),
  ])
  for (const c of actual.notValid ?? [])
    if (!notValidWant.has(c))
      differences.push(`constraint ${c} is not validated, and was valid in the source`)
  if (expected.foreignKeys.length === 0 && !expected.notValid?.length)
    return listDifferences('foreign-keys', differences, 'no foreign-key violations')
  const same: string[] = []
  if (expected.foreignKeys.length) same.push(listViolations(expected.foreignKeys))
  if (expected.notValid?.length) same.push(`NOT VALID constraints ${expected.notValid.join(', ')}`)
  return listDifferences(
    'foreign-keys',
    differences,
    `as in the source when the backup was taken (data quality, not damage): ${same.join('; ')}`,
  )
}

function byName<T extends { name: string }>(items: T[]): Map<string, T> {
  return new Map(items.map((i) => [i.name, i]))
}

/** Names of items missing from or added to `actual`, and those whose `same` test fails. */
function diffNamed<T extends { name: string }>(
  kind: string,
  actual: T[],
  expected: T[],
  same: (a: T, e: T) => string | null,
): string[] {
  const out: string[] = []
  const have = byName(actual)
  const want = byName(expected)
  for (const [name, e] of want) {
    const a = have.get(name)
    if (!a) out.push(`${kind} ${name} is missing`)
    else {
      const why = same(a, e)
      if (why) out.push(`${kind} ${name} ${why}`)
    }
  }
  for (const name of have.keys())
    if (!want.has(name)) out.push(`${kind} ${name} is not in the manifest`)
  return out
}

const json = (v: unknown) => JSON.stringify(v)

export function schema(actual: Schema, expected: Schema): Check {
  const differences = [
    ...diffNamed('table', actual.tables, expected.tables, (a, e) => {
      const cols = diffNamed('column', a.columns, e.columns, (ac, ec) =>
        json(ac) === json(ec) ? null : `changed (${json(ac)} where the manifest has ${json(ec)})`,
      )
      return cols.length ? cols.join(', ') : null
    }),
    ...diffNamed('index', actual.indexes, expected.indexes, (a, e) =>
      json(a) === json(e)
        ? null
        : `differs (${a.table}(${a.columns.join(', ')})${a.unique ? ' unique' : ''} where the manifest has ${e.table}(${e.columns.join(', ')})${e.unique ? ' unique' : ''})`,
    ),
    ...diffNamed('trigger', actual.triggers, expected.triggers, (a, e) =>
      a.sql === e.sql ? null : 'has a different definition',
    ),
    ...diffNamed('view', actual.views, expected.views, (a, e) =>
      a.sql === e.sql ? null : 'has a different definition',
    ),
    ...diffNamed('constraint', actual.constraints ?? [], expected.constraints ?? [], (a, e) =>
      a.sql === e.sql ? null : `differs (${a.sql} where the manifest has ${e.sql})`,
    ),
    ...diffNamed('sequence', actual.sequences ?? [], expected.sequences ?? [], () => null),
  ]
  const s = actual
  return listDifferences(
    'schema',
    differences,
    `${s.tables.length} tables, ${s.indexes.length} indexes, ${s.triggers.length} triggers, ${s.views.length} views match the manifest`,
  )
}

/**
 * Schema check by names only, for a backup that can be listed but not queried (a pg_dump
 * archive's table of contents). Indexes that back a constraint are listed as the constraint.
 */
export function schemaNames(
  actual: {
    tables: string[]
    indexes: string[]
    constraints: string[]
    triggers: string[]
    views: string[]
    sequences: string[]
  },
  expected: Schema,
): Check {
  // CHECK and NOT NULL constraints live inside their table's entry; the others are entries.
  const listed = (expected.constraints ?? []).filter((c) =>
    /^(PRIMARY KEY|UNIQUE|FOREIGN KEY|EXCLUDE)/.test(c.sql),
  )
  const constraintNames = new Set(listed.map((c) => c.name.split('.').pop()))
  const want = {
    tables: expected.tables.map((t) => t.name),
    indexes: expected.indexes
      .filter((i) => !constraintNames.has(i.name.split('.').pop()))
      .map((i) => i.name),
    constraints: listed.map((c) => c.name),
    triggers: expected.triggers.map((t) => t.name),
    views: expected.views.map((v) => v.name),
    sequences: (expected.sequences ?? []).map((s) => s.name),
  }
  const differences: string[] = []
  for (const kind of Object.keys(want) as (keyof typeof want)[]) {
    const have = new Set(actual[kind])
    const wanted = new Set(want[kind])
    const singular = kind === 'indexes' ? 'index' : kind.slice(0, -1)
    for (const name of wanted)
      if (!have.has(name)) differences.push(`${singular} ${name} is missing`)
    for (const name of have)
      if (!wanted.has(name)) differences.push(`${singular} ${name} is not in the manifest`)
  }
  return listDifferences(
    'schema',
    differences,
    `${want.tables.length} tables, ${want.indexes.length} indexes, ${want.constraints.length} constraints, ${want.sequences.length} sequences, ${want.triggers.length} triggers, ${want.views.length} views in the archive match the manifest`,
  )
}

export function rowCounts(actual: Record<string, number>, expected: Record<string, number>): Check {
  const differences: string[] = []
  for (const [table, want] of Object.entries(expected)) {
    const have = actual[table]
    if (have === undefined) differences.push(`table ${table} is missing`)
    else if (have !== want)
      differences.push(`${table} has ${have} rows where the manifest has ${want}`)
  }
  const total = Object.values(actual).reduce((sum, n) => sum + n, 0)
  return listDifferences(
    'row-counts',
    differences,
    `${total} rows in ${Object.keys(expected).length} tables match the manifest`,
  )
}

export function spotCheck(actual: Conversations, expected: Conversations): Check {
  if (expected.items.length === 0) {
    return {
      name: 'spot-check',
      ok: actual.items.length === 0,
      detail: `${expected.table} was empty when the backup was taken; nothing to spot-check`,
    }
  }
  const differences: string[] = []
  let related = 0
  const tables = new Set<string>()
  for (const want of expected.items) {
    const have = actual.items.find((i) => i.id === want.id)
    const who = `conversation ${want.id}`
    if (!have || have.sha256 === 'missing') {
      differences.push(`${who} is missing`)
      continue
    }
    if (have.sha256 !== want.sha256) differences.push(`${who}: its ${expected.table} row differs`)
    for (const w of want.related) {
      const h = have.related.find((r) => r.via === w.via)
      related += w.rows
      tables.add(w.table)
      if (!h) differences.push(`${who}: ${w.table} (via ${w.via}) is missing`)
      else if (h.rows !== w.rows) {
        differences.push(`${who}: ${h.rows} ${w.table} rows where the manifest has ${w.rows}`)
      } else if (h.sha256 !== w.sha256) {
        differences.push(`${who}: its ${w.rows} ${w.table} rows differ in content`)
      }
    }
  }
  const ids = expected.items.map((i) => i.id).join(', ')
  return listDifferences(
    'spot-check',
    differences,
    `${expected.items.length} most recent conversations (${ids}) and their ${related} related rows in ${tables.size} tables match`,
  )
}

export function auditLog(actual: AuditDigest, expected: AuditDigest): Check {
  const key = expected.key.join(',')
  if (actual.sha256 === expected.sha256 && actual.rows === expected.rows) {
    return {
      name: 'audit-log',
      ok: true,
      detail: `${expected.table}: ${expected.rows} rows, last ${key} ${expected.lastKey ?? '-'}, sha256 ${short(expected.sha256)}… match`,
    }
  }
  const differences: string[] = []
  const have = new Map(actual.chunks.map((c) => [c.firstKey, c]))
  const firstKeys = new Set(expected.chunks.map((c) => c.firstKey))
  for (const want of expected.chunks) {
    const got = have.get(want.firstKey)
    if (!got) {
      differences.push(
        `${expected.table} rows ${key} ${want.firstKey}..${want.lastKey} (${want.rows} rows) are missing`,
      )
    } else if (got.sha256 !== want.sha256 || got.rows !== want.rows) {
      differences.push(describeChunkDifference(expected.table, key, want, got))
    }
  }
  for (const got of actual.chunks) {
    if (!firstKeys.has(got.firstKey)) {
      differences.push(
        `${expected.table} rows ${key} ${got.firstKey}..${got.lastKey} (${got.rows} rows) are not in the manifest`,
      )
    }
  }
  if (differences.length === 0)
    differences.push(`${expected.table}: ${actual.rows} rows, hash differs from the manifest`)
  return listDifferences('audit-log', differences, '')
}

/** RPO: how old the data in the backup is. */
export function backupAge(ageSeconds: number, maxSeconds: number | null): Check {
  const age = formatSeconds(ageSeconds)
  if (maxSeconds === null)
    return { name: 'backup-age', ok: true, detail: `${age} old (no limit set)` }
  return ageSeconds <= maxSeconds
    ? {
        name: 'backup-age',
        ok: true,
        detail: `${age} old, within max-backup-age ${formatSeconds(maxSeconds)}`,
      }
    : {
        name: 'backup-age',
        ok: false,
        detail: `${age} old, over max-backup-age ${formatSeconds(maxSeconds)}: backups are not being taken or not reaching this job`,
      }
}

/** RTO: how long the restore took. */
export function restoreTime(seconds: number, maxSeconds: number | null): Check {
  const took = `${seconds.toFixed(2)} s`
  if (maxSeconds === null)
    return { name: 'restore-time', ok: true, detail: `restored in ${took} (no limit set)` }
  return seconds <= maxSeconds
    ? {
        name: 'restore-time',
        ok: true,
        detail: `restored in ${took}, within max-restore-seconds ${maxSeconds}`,
      }
    : {
        name: 'restore-time',
        ok: false,
        detail: `restored in ${took}, over max-restore-seconds ${maxSeconds}`,
      }
}

export function formatSeconds(s: number): string {
  if (s < 120) return `${Math.round(s)} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86400).toFixed(1)} d`
}
