import { createHash } from 'node:crypto'
import * as fsSync from 'node:fs'
import { createReadStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'
import { removeOnInterrupt } from './cleanup.js'
import { describeError } from './errors.js'

/**
 * `mkdir -p`: makes `dir` and any folders missing above it (new ones with `mode`). Not Node's
 * `fs.mkdir(dir, { recursive: true })`, which loops for ever where a parent that exists answers
 * mkdir with ENOENT (under /proc: a job that never ends); here that is an error like any other.
 * A path that exists but is not a folder fails with ENOTDIR.
 */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  for (const folder of missingFolders(dir)) {
    await fs
      .mkdir(folder, mode === undefined ? {} : { mode })
      .catch(async (err: NodeJS.ErrnoException) => {
        // Made meanwhile by someone else: fine if it is a folder.
        if (err.code !== 'EEXIST' || !(await fs.stat(folder)).isDirectory()) throw err
      })
  }
}

/** makeDirs, synchronously. */
export function makeDirsSync(dir: string, mode?: number): void {
  for (const folder of missingFolders(dir)) {
    try {
      fsSync.mkdirSync(folder, mode === undefined ? {} : { mode })
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code !== 'EEXIST' ||
        !fsSync.statSync(folder).isDirectory()
      )
        throw err
    }
  }
}

/**
 * The folders makeDirs must make for `dir`, outermost first: those up to the nearest that exists
 * (a few stat calls, made synchronously). ENOTDIR where what exists there is not a folder.
 */
function missingFolders(dir: string): string[] {
  const missing: string[] = []
  for (let at = path.resolve(dir); ;) {
    const found = fsSync.statSync(at, { throwIfNoEntry: false })
    if (found) {
      if (!found.isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), {
          code: 'ENOTDIR',
          syscall: 'mkdir',
          path: at,
        })
      }
      break
    }
    missing.push(at)
    const up = path.dirname(at)
    if (up === at) break
    at = up
  }
  return missing.reverse()
}

/**
 * The contents of `file`, which must be a regular file: a FIFO, a device or a socket planted
 * under its name is refused (ENOTREG below) instead of read. It is opened without blocking, so
 * a FIFO with no writer cannot stall the job (reading one would wait for ever, past SIGTERM).
 * `follow: false`: not through a symbolic link either (ELOOP).
 */
export async function readRegularFile(file: string, { follow = true } = {}): Promise<Buffer> {
  const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW } = fsSync.constants
  const handle = await fs.open(
    file,
    O_RDONLY | (O_NONBLOCK ?? 0) | (follow ? 0 : (O_NOFOLLOW ?? 0)),
  )
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw notRegular(file, stat)
    return await handle.readFile()
  } finally {
    await handle.close()
  }
}

/** A file that is not a regular one where one belongs: `what` says what it is instead. */
export class NotRegularFile extends Error {
  readonly code = 'ENOTREG'
  constructor(
    readonly path: string,
    readonly kind: 'a FIFO' | 'a socket' | 'a device' | 'a folder' | 'something else',
  ) {
    super(`${path} is ${kind}, not a regular file`)
  }

  /** "a FIFO, not a regular file". */
  get what(): string {
    return `${this.kind}, not a regular file`
  }
}

/** What `file` is, where a regular file (or a folder, for pg_dump's directory format) belongs. */
export function notRegular(file: string, stat: fsSync.Stats): NotRegularFile {
  const kind = stat.isFIFO()
    ? 'a FIFO'
    : stat.isSocket()
      ? 'a socket'
      : stat.isCharacterDevice() || stat.isBlockDevice()
        ? 'a device'
        : stat.isDirectory()
          ? 'a folder'
          : 'something else'
  return new NotRegularFile(file, kind)
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk)
  return hash.digest('hex')
}

// Runs in a worker thread: reads with one reused buffer, so memory stays flat however large
// the file is.
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const hash = createHash('sha256')
const fd = fs.openSync(workerData, 'r')
const buf = Buffer.allocUnsafe(1 << 20)
let bytes = 0
try {
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) hash.update(buf.subarray(0, n))
} finally {
  fs.closeSync(fd)
}
parentPort.postMessage({ sha256: hash.digest('hex'), bytes })
`

/**
 * digestPath on another thread: the SQLite checks block this one, so hashing alongside them in
 * a worker uses the second core instead of adding a full read of the file afterwards.
 */
export async function digestInWorker(p: string): Promise<{ sha256: string; bytes: number }> {
  if ((await fs.stat(p)).isDirectory()) return digestPath(p)
  return new Promise((resolve, reject) => {
    const worker = new Worker(HASH_WORKER, { eval: true, workerData: p })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once(
      'exit',
      (code) => code !== 0 && reject(new Error(`hashing ${p} stopped (exit ${code})`)),
    )
  })
}

/**
 * sha256 and size of a backup: a file's own sha256, or for a directory (pg_dump's directory
 * format) the sha256 of its listing, one line per file in name order: `<sha256>  <bytes>  <name>`.
 */
export async function digestPath(p: string): Promise<{ sha256: string; bytes: number }> {
  const stat = await fs.stat(p)
  if (!stat.isDirectory()) return { sha256: await sha256File(p), bytes: stat.size }
  const names = (await fs.readdir(p)).sort()
  const listing = createHash('sha256')
  let bytes = 0
  for (const name of names) {
    const file = path.join(p, name)
    const { size } = await fs.stat(file)
    bytes += size
    listing.update(`${await sha256File(file)}  ${size}  ${name}\n`)
  }
  return { sha256: listing.digest('hex'), bytes }
}

/**
 * Owner-only permissions: a backup holds every user's conversations. Files 0600, folders 0700
 * (pg_dump and SQLite create files by the umask, typically world-readable).
 */
export async function restrictPath(p: string): Promise<void> {
  if (!(await fs.stat(p)).isDirectory()) return fs.chmod(p, 0o600)
  await fs.chmod(p, 0o700)
  for (const name of await fs.readdir(p)) await fs.chmod(path.join(p, name), 0o600)
}

/**
 * Gives `file` the owner, group and permission bits of `like` (the file it is about to replace),
 * so whoever could open the old one opens the new one. Throws EPERM when this process may not
 * give that owner (only root may give a file away).
 */
export async function takeOwnership(
  file: string,
  like: { uid: number; gid: number; mode: number },
): Promise<void> {
  if (process.platform === 'win32') return
  const mine = await fs.stat(file)
  // chown first: it may clear set-id bits that the chmod then puts back.
  if (mine.uid !== like.uid || mine.gid !== like.gid) await fs.chown(file, like.uid, like.gid)
  await fs.chmod(file, like.mode & 0o7777)
}

/** Size of a backup: a file's, or the sum of a directory's files (as digestPath counts it). */
export async function pathBytes(p: string): Promise<number> {
  const stat = await fs.stat(p)
  if (!stat.isDirectory()) return stat.size
  let bytes = 0
  for (const name of await fs.readdir(p)) bytes += (await fs.stat(path.join(p, name))).size
  return bytes
}

/** fsync a file, or every file of a directory and the directory itself. */
export async function fsyncPath(p: string): Promise<void> {
  if (!(await fs.stat(p)).isDirectory()) return fsyncFile(p)
  for (const name of await fs.readdir(p)) await fsyncFile(path.join(p, name))
  await fsyncDir(p)
}

export async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r+')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Makes a rename durable. Windows cannot open a directory for fsync; NTFS journals renames. */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** A name in `dir` for work in progress; listing skips it, and nothing else ever has it. */
export function tempName(dir: string, final: string): string {
  const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
  return path.join(dir, `.${final}.${tag}.tmp`)
}

/**
 * What link() says on a file system without hard links: FUSE mounts and vfat on Linux (EPERM,
 * ENOSYS), network shares (ENOTSUP, EOPNOTSUPP), FAT and exFAT drives on Windows (libuv maps
 * ERROR_INVALID_FUNCTION to EISDIR).
 */
const NO_HARD_LINKS = new Set([
  'EPERM',
  'ENOTSUP',
  'EOPNOTSUPP',
  'ENOSYS',
  ...(process.platform === 'win32' ? ['EISDIR'] : []),
])

/**
 * Gives the file `tmp` the name `final`, failing with EEXIST when a file of that name exists,
 * never replacing it: link() fails with EEXIST where rename() would silently overwrite. Where
 * the file system has no hard links, the name is first taken with an exclusive create, so no
 * other file can be under it, and `tmp` is renamed over that empty placeholder (removed if the
 * rename fails or the job is interrupted first). On a FUSE mount of a bucket, the exclusive
 * create is only as exclusive as the mount's view of the bucket. `tmp` is gone afterwards; on a
 * failure `final` is not taken.
 */
export async function moveNoClobber(tmp: string, final: string): Promise<void> {
  try {
    await fs.link(tmp, final)
  } catch (err) {
    if (!NO_HARD_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err
    await (await fs.open(final, 'wx', 0o600)).close()
    const forget = removeOnInterrupt(final, 'placeholder')
    try {
      await fs.rename(tmp, final)
    } catch (renameErr) {
      await fs.rm(final, { force: true }).catch(() => undefined)
      throw renameErr
    } finally {
      forget()
    }
    return
  }
  try {
    await fs.unlink(tmp)
  } catch (err) {
    // Gone all the same (an unlink a network file system retried, or one that removed the name
    // and still reported an error): the move is done, and `final` is the only name left.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    if (!(await exists(tmp))) return
    // Both names hold the file: taking the new one back leaves things as before the move, so a
    // caller that reports the move failed (and removes `tmp`) leaves no file behind.
    await fs.unlink(final).catch((undo: NodeJS.ErrnoException) => {
      if (undo.code === 'ENOENT') return
      const e = err as Error
      e.message += `; ${final} stays, as it could not be removed either (${describeError(undo)})`
    })
    throw err
  }
}

/**
 * Moves a finished, fsynced temporary file to the first free name that `nameFor(n)` gives
 * (n = 1, 2, ...), never replacing an existing file (moveNoClobber). Returns the final path.
 */
export async function commitNoClobber(
  tmp: string,
  dir: string,
  nameFor: (n: number) => string,
): Promise<string> {
  const isDir = (await fs.stat(tmp)).isDirectory()
  for (let n = 1; n < 10_000; n++) {
    const final = path.join(dir, nameFor(n))
    try {
      if (isDir) {
        // Directories cannot be hard-linked; rename() refuses a non-empty target, and an
        // existing target of any kind is skipped first.
        if (await exists(final)) continue
        await fs.rename(tmp, final)
      } else {
        await moveNoClobber(tmp, final)
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST' || code === 'ENOTEMPTY') continue
      throw err
    }
    await fsyncDir(dir)
    return final
  }
  throw new Error(`no free file name in ${dir}`)
}

/** Writes text so that readers see the old file or the new one, never a partial one. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file)
  const tmp = tempName(dir, path.basename(file))
  try {
    await fs.writeFile(tmp, text, { mode: 0o600 })
    await fsyncFile(tmp)
    await fs.rename(tmp, file)
  } catch (err) {
    await fs.rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dir)
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p)
    return true
  } catch {
    return false
  }
}
