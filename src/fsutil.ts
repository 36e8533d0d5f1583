import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk)
  return hash.digest('hex')
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
 * Moves a finished, fsynced temporary file to the first free name that `nameFor(n)` gives
 * (n = 1, 2, ...), never replacing an existing file: link() fails with EEXIST where rename()
 * would silently overwrite. Returns the final path.
 */
export async function commitNoClobber(
  tmp: string,
  dir: string,
  nameFor: (n: number) => string,
): Promise<string> {
  for (let n = 1; n < 10_000; n++) {
    const final = path.join(dir, nameFor(n))
    try {
      await fs.link(tmp, final)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw err
    }
    await fs.unlink(tmp)
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

export async function fileSize(file: string): Promise<number> {
  return (await fs.stat(file)).size
}
