/**
 * Disk space, the commonest reason a backup fails: what a job will need, checked before it
 * writes anything, and a write that still fails said in words (which input, which path, what
 * happened), never as a library's class name or a misleading errno.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { UserError } from './errors.js'

export interface Space {
  /** Bytes an unprivileged writer may still use. */
  free: number
  /** The filesystem's device, to tell when two folders share one. */
  device: number
}

/** Free space where `dir` is, or would be (its nearest existing parent); null when unknown. */
export async function spaceAt(dir: string): Promise<Space | null> {
  let at = path.resolve(dir)
  for (;;) {
    try {
      const [s, st] = await Promise.all([fs.statfs(at), fs.stat(at)])
      return { free: Number(s.bavail) * Number(s.bsize), device: Number(st.dev) }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const parent = path.dirname(at)
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== at) at = parent
      else return null
    }
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

/** Room kept free beyond the estimate: filesystems misbehave when full, and estimates are estimates. */
export const HEADROOM = 0.05

export interface Need {
  /** The input that names the folder, for the message and its fix. */
  input: string
  dir: string
  bytes: number
  /** What needs it, e.g. "the snapshot of omniai.db (42 MiB)". */
  what: string
}

/**
 * Fails early, before anything is written, when the folders cannot hold what the job will
 * write there. Needs on the same filesystem add up. Where free space cannot be read, nothing
 * is refused: the write itself will say.
 */
export async function requireSpace(
  needs: Need[],
  /** What not going on means, said before the fix. */
  consequence = 'Nothing was written.',
): Promise<void> {
  const byDevice = new Map<number, { space: Space; needs: Need[] }>()
  for (const need of needs) {
    if (need.bytes <= 0) continue
    const space = await spaceAt(need.dir)
    if (!space) continue
    const entry = byDevice.get(space.device) ?? { space, needs: [] }
    entry.needs.push(need)
    byDevice.set(space.device, entry)
  }
  for (const { space, needs: here } of byDevice.values()) {
    const total = here.reduce((n, x) => n + x.bytes, 0)
    const wanted = Math.ceil(total * (1 + HEADROOM))
    if (space.free >= wanted) continue
    const first = here[0]!
    const parts = here.map((n) => `${n.what} in ${n.dir} (${n.input})`).join(' and ')
    throw new UserError(
      `${first.input}: not enough space: ${parts} need${here.length === 1 ? 's' : ''} about ${formatBytes(wanted)}, and only ${formatBytes(space.free)} is free there. ${consequence} Fix: free ${formatBytes(wanted - space.free)} on that filesystem, or set ${here
        .map((n) => n.input)
        .filter((v, i, a) => a.indexOf(v) === i)
        .join(' / ')} to a folder with room.`,
    )
  }
}

const CAUSES: Record<string, string> = {
  ENOSPC: 'out of space',
  EDQUOT: 'over the disk quota',
  EROFS: 'read-only filesystem',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on this machine',
}

const FIXES: Record<string, string> = {
  'out of space': 'free space there, or point the input at a folder with room',
  'over the disk quota': 'free space within the quota, or point the input at another folder',
  'read-only filesystem': 'point the input at a writable folder',
  'permission denied': 'make the folder writable by the runner, or point the input elsewhere',
  'too many open files': 'raise the open-file limit (ulimit -n) and run again',
  'too many open files on this machine': 'close other programs, or raise fs.file-max',
}

/**
 * What a failed write means, in words, from any layer's error: a Node errno, SQLite's
 * "database or disk is full" / SQLITE_FULL, PostgreSQL's "could not extend file" / "No space
 * left on device". Null when the error is not about writing.
 */
export function writeFailureCause(err: unknown): string | null {
  const e = err as { code?: string; errcode?: number; message?: string }
  if (e?.code && CAUSES[e.code]) return CAUSES[e.code]!
  const text = `${e?.code ?? ''} ${e?.message ?? String(err)}`
  if (
    /SQLITE_FULL|database or disk is full|could not extend file|No space left on device/i.test(text)
  )
    return 'out of space'
  if (/SQLITE_READONLY|attempt to write a readonly database|Read-only file system/i.test(text))
    return 'read-only filesystem'
  if (/Disk quota exceeded/i.test(text)) return 'over the disk quota'
  if (/SQLITE_CANTOPEN|unable to open database file/i.test(text) && /EACCES|permission/i.test(text))
    return 'permission denied'
  return null
}

/**
 * A failed write as one line naming the input, the path and the cause in words, with what it
 * means (`consequence`, e.g. "no backup was written"); any other error as it was.
 */
export async function asWriteFailure(
  err: unknown,
  input: string,
  target: string,
  consequence: string,
): Promise<unknown> {
  // Already one line naming an input (a check of this tool's own): leave it, unless it carries
  // a tool's own report of a full disk (pg_restore's "could not extend file").
  if (
    err instanceof UserError &&
    !/could not extend file|No space left on device/i.test(err.message)
  )
    return err
  // SQLite says only "unable to open database file", and some layers ENOENT: ask the folder.
  const cause =
    writeFailureCause(err) ??
    (/unable to open database file|ENOENT|SQLITE_CANTOPEN/.test(
      String((err as Error)?.message ?? err),
    )
      ? await whyNotWritable(target)
      : null)
  if (!cause) return err
  const space = cause === 'out of space' ? await spaceAt(target) : null
  return new UserError(
    `${input}: cannot write in ${target}: ${cause}${space ? ` (${formatBytes(space.free)} free)` : ''}; ${consequence}. Fix: ${FIXES[cause]}.`,
  )
}

/** What a drill or restore writes in scratch-dir: the decoded backup, and SQLite's restored copy. */
export function scratchNeed(
  manifest: {
    engine: string
    backup: { bytes: number; plain?: { bytes: number }; encryption?: string; compression?: string }
  },
  scratchDir: string,
  restoredThere: boolean,
): Need {
  const plain = manifest.backup.plain?.bytes ?? manifest.backup.bytes
  const encoded =
    (manifest.backup.encryption ?? 'none') !== 'none' ||
    (manifest.backup.compression ?? 'none') !== 'none'
  // A decoded backup restored there is moved into place (SQLite), not copied: one file.
  // At most one plaintext copy either way.
  let what: string | null = restoredThere ? 'the restored copy' : null
  if (encoded) what = restoredThere ? 'the decoded backup, restored in place' : 'the decoded backup'
  return {
    input: 'scratch-dir',
    dir: scratchDir,
    bytes: what ? plain : 0,
    what: what ? `${what} (${formatBytes(plain)})` : '',
  }
}

/** Why a folder cannot be written (read-only filesystem, permission), or null when it can. */
export async function whyNotWritable(dir: string): Promise<string | null> {
  try {
    await fs.access(dir, fs.constants.W_OK)
    return null
  } catch (err) {
    return CAUSES[(err as NodeJS.ErrnoException).code ?? ''] ?? null
  }
}

/** What a SQLite database takes on disk now: its file and its WAL (0 for what is not there). */
export async function sqliteBytes(file: string): Promise<number> {
  const size = async (f: string) => (await fs.stat(f).catch(() => null))?.size ?? 0
  return (await size(file)) + (await size(`${file}-wal`))
}
