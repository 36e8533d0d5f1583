/**
 * Scratch folders: one helper for every mode. Each is a folder of its own under scratch-dir,
 * `omniai-<purpose>-XXXXXX` (the names the post step recognises), owner-only, removed when the
 * work ends, on SIGINT/SIGTERM (cleanup.ts), or by the post step after a kill.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { removeOnInterrupt } from './cleanup.js'
import { UserError } from './errors.js'
import { makeDirs } from './fs.js'

/** What scratch folders are for; the post step removes only folders named after one of these. */
export const SCRATCH_PURPOSES = [
  'backup',
  'drill',
  'restore',
  'verify',
  'artifact',
  'gate',
  's3',
] as const
export type ScratchPurpose = (typeof SCRATCH_PURPOSES)[number]

export interface Scratch {
  readonly path: string
  /** Removes the folder and what it holds; safe to call twice. */
  remove(): Promise<void>
}

/** scratch-dir itself, made when missing; one that cannot be made is said naming the input. */
export async function ensureScratchDir(parent: string): Promise<void> {
  await makeDirs(parent).catch((err: NodeJS.ErrnoException) => {
    throw new UserError(
      `scratch-dir: cannot create ${parent} (${err.code}). Fix: set scratch-dir to a writable folder.`,
    )
  })
}

/** A new scratch folder under `parent` (scratch-dir). */
export async function scratchFolder(parent: string, purpose: ScratchPurpose): Promise<Scratch> {
  await ensureScratchDir(parent)
  const dir = await fs.mkdtemp(path.join(parent, `omniai-${purpose}-`))
  const forget = removeOnInterrupt(dir)
  await fs.chmod(dir, 0o700)
  return {
    path: dir,
    remove: async () => {
      await fs.rm(dir, { recursive: true, force: true })
      forget()
    },
  }
}

/** Runs `fn` in a scratch folder of its own, removed afterwards whatever happens. */
export async function withScratch<T>(
  parent: string,
  purpose: ScratchPurpose,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const scratch = await scratchFolder(parent, purpose)
  try {
    return await fn(scratch.path)
  } finally {
    await scratch.remove()
  }
}
