import * as path from 'node:path'
import { Inputs } from '../options/inputs.js'
import { UserError, describeError } from '../util/errors.js'
import type { BackupEntry } from './local.js'

/**
 * Which backups to keep, with restic's `forget --keep-daily/--keep-weekly` semantics: each rule
 * keeps the newest backup of each of the last N days (ISO weeks) that have a backup, so days
 * without one do not use up the count. A backup kept by any rule is kept (the rules are ORed).
 */
export interface RetentionPolicy {
  /** keep-daily: days that have a backup, counted back from the newest; 0 turns the rule off. */
  keepDaily: number
  /** keep-weekly: ISO weeks (Monday to Sunday) that have a backup; 0 turns the rule off. */
  keepWeekly: number
  /** retention-time-zone: IANA name; days and weeks start at local midnight there. Empty is UTC. */
  timeZone: string
}

export interface Decision {
  entry: BackupEntry
  keep: boolean
  /** Every rule that keeps it, e.g. ['daily 2026-11-26', 'weekly 2026-W48', 'newest verified']. */
  reasons: string[]
}

export interface RetentionSummary {
  kept: number
  /** Backups actually removed: 0 in a dry run. */
  deleted: number
  /** Sum of the removed backups' sizes, from their manifests. */
  freedBytes: number
}

const DAY_MS = 86_400_000

/**
 * The decision for every entry, newest first by the manifests' createdAt (never the file names;
 * equal times fall back to the path, as LocalStore.list does, so the plan is repeatable).
 * Throws UserError on a bad policy and on a manifest whose createdAt is not a date.
 */
export function planRetention(
  entries: BackupEntry[],
  policy: RetentionPolicy,
  opts: { protect: string[] },
): Decision[] {
  checkCount(Inputs.KeepDaily, policy.keepDaily, 14)
  checkCount(Inputs.KeepWeekly, policy.keepWeekly, 12)
  const localDate = localDateIn(policy.timeZone || 'UTC')

  // A protected path that matches nothing would protect nothing: most likely the caller spelt
  // the path differently (relative vs absolute), and the backup it meant could be deleted.
  const protect = new Set(opts.protect.map((p) => path.resolve(p)))
  const known = new Set(entries.map((e) => path.resolve(e.path)))
  for (const p of protect) {
    if (!known.has(p)) {
      throw new Error(
        `${Inputs.Retention}: protected backup ${p} is not among the backups to plan.`,
      )
    }
  }

  const timed = entries.map((entry) => ({ entry, at: takenAt(entry) }))
  timed.sort((a, b) => b.at - a.at || b.entry.path.localeCompare(a.entry.path))

  const rules = [
    { name: 'daily', left: policy.keepDaily, period: (d: LocalDate) => d.day },
    { name: 'weekly', left: policy.keepWeekly, period: (d: LocalDate) => d.week },
  ].map((r) => ({ ...r, seen: new Set<string>() }))
  // restic refuses to act on an empty policy and keeps everything: with both rules at 0,
  // deleting all but the newest verified backup is far more likely a mistake than a wish.
  const empty = rules.every((r) => r.left === 0)

  return timed.map(({ entry, at }, i) => {
    const reasons: string[] = []
    const local = localDate(at)
    for (const rule of rules) {
      if (rule.left === 0) continue
      const period = rule.period(local)
      if (!rule.seen.has(period)) {
        rule.seen.add(period)
        rule.left--
        reasons.push(`${rule.name} ${period}`)
      } else if (i === timed.length - 1) {
        // restic (0.17+): while a rule still has periods to spare, it also keeps the oldest
        // backup, so a young history is not cut short to one backup per period.
        rule.left--
        reasons.push(`oldest ${rule.name} ${period}`)
      }
    }
    if (empty) reasons.push('policy is empty')
    if (protect.has(path.resolve(entry.path))) reasons.push('newest verified')
    return { entry, keep: reasons.length > 0, reasons }
  })
}

/**
 * Removes the backups not kept, oldest first, so an interrupted run leaves the newest ones.
 * `remove` deletes a backup and its manifest together. The first failure stops the run and is
 * thrown naming the file; the newer backups after it are not touched.
 */
export async function applyRetention(
  decisions: Decision[],
  opts: { dryRun: boolean; remove: (entry: BackupEntry) => Promise<void> },
): Promise<RetentionSummary> {
  const kept = decisions.filter((d) => d.keep).length
  const doomed = decisions
    .filter((d) => !d.keep)
    .map((d) => ({ entry: d.entry, at: takenAt(d.entry) }))
    .sort((a, b) => a.at - b.at || a.entry.path.localeCompare(b.entry.path))
  if (opts.dryRun) return { kept, deleted: 0, freedBytes: 0 }
  let deleted = 0
  let freedBytes = 0
  for (const [i, { entry }] of doomed.entries()) {
    try {
      await opts.remove(entry)
    } catch (err) {
      const error = new UserError(
        `${Inputs.Retention}: cannot delete ${entry.path} (${describeError(err)}). ${deleted} older backup(s) were deleted before it; ${doomed.length - i - 1} newer one(s) due for deletion were left in place. Fix: make sure the backup folder is writable, then run again.`,
      )
      error.cause = err
      throw error
    }
    deleted++
    freedBytes += entry.manifest.backup.bytes
  }
  return { kept, deleted, freedBytes }
}

/** A decision as the JSON report keeps it. */
export interface RetentionRow {
  file: string
  createdAt: string
  keep: boolean
  reasons: string[]
}

export function retentionRows(decisions: Decision[]): RetentionRow[] {
  return decisions.map((d) => ({
    file: path.basename(d.entry.path),
    createdAt: d.entry.manifest.createdAt,
    keep: d.keep,
    reasons: d.reasons,
  }))
}

/** The plan as a Markdown table for the job summary, in the order given (planRetention's: newest first). */
export function renderRetention(rows: RetentionRow[]): string {
  const lines = ['| Backup | Taken at | Kept | Why |', '| --- | --- | --- | --- |']
  for (const d of rows) {
    const why = d.reasons.length ? d.reasons.join(', ') : 'no rule keeps it'
    lines.push(
      `| \`${cell(d.file)}\` | ${cell(d.createdAt)} | ${d.keep ? '✅ yes' : '🗑️ no'} | ${cell(why)} |`,
    )
  }
  return lines.join('\n') + '\n'
}

/** One line in a table cell, no HTML (GitHub renders the summary's HTML). */
const cell = (s: string) =>
  s
    .replace(/\s+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\|/g, '\\|')
    .replace(/([[\]])/g, '\\$1')
    .replace(/`/g, "'")

function checkCount(input: string, n: number, example: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new UserError(
      `${input}: "${n}" is not a whole number of 0 or more. Fix: e.g. ${input}: ${example}, or 0 to turn this rule off.`,
    )
  }
}

function takenAt(entry: BackupEntry): number {
  const at = Date.parse(entry.manifest.createdAt)
  if (Number.isNaN(at)) {
    throw new UserError(
      `manifest ${entry.manifestPath}: createdAt "${entry.manifest.createdAt}" is not a date, so retention cannot tell how old ${path.basename(entry.path)} is. Fix: restore the manifest, or move the backup out of the folder.`,
    )
  }
  return at
}

interface LocalDate {
  /** 2026-11-26 */
  day: string
  /** 2026-W48: the ISO week-numbering year, which can differ from the calendar year. */
  week: string
}

function localDateIn(timeZone: string): (at: number) => LocalDate {
  let format: Intl.DateTimeFormat
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
    })
  } catch {
    throw new UserError(
      `${Inputs.RetentionTimeZone}: "${timeZone}" is not a time zone. Fix: give an IANA name, e.g. retention-time-zone: Europe/Berlin, or UTC.`,
    )
  }
  return (at) => {
    const parts: Record<string, number> = {}
    for (const p of format.formatToParts(at)) parts[p.type] = Number(p.value)
    const { year, month, day } = parts as { year: number; month: number; day: number }
    return {
      day: `${year}-${pad(month)}-${pad(day)}`,
      week: isoWeek(year, month, day),
    }
  }
}

/** ISO 8601 week: Monday to Sunday; week 1 is the one with the year's first Thursday. */
function isoWeek(year: number, month: number, day: number): string {
  const date = Date.UTC(year, month - 1, day)
  const weekday = (new Date(date).getUTCDay() + 6) % 7 // Monday 0 … Sunday 6
  // A week belongs to the year its Thursday falls in.
  const thursday = date + (3 - weekday) * DAY_MS
  const weekYear = new Date(thursday).getUTCFullYear()
  const week = Math.floor((thursday - Date.UTC(weekYear, 0, 1)) / DAY_MS / 7) + 1
  return `${weekYear}-W${pad(week)}`
}

const pad = (n: number) => String(n).padStart(2, '0')
