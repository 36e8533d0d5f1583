/**
 * What must not outlive the process: decrypted temporary files, scratch folders, scratch
 * databases, child processes writing them. Each is registered while it exists; on SIGINT or
 * SIGTERM (a cancelled workflow, a step timeout, Ctrl-C) every registered cleanup runs, and the
 * process exits with 128 + the signal's number, as a shell reports a process killed by it.
 *
 * What a SIGKILL leaves (the runner's last resort, seconds after SIGINT and SIGTERM) is removed
 * by the action's post step (src/action/post.ts).
 */
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import { describeError } from './errors.js'

/** The runner sends SIGTERM 7.5 s after SIGINT and kills 2.5 s later: finish well before. */
const CLEANUP_TIMEOUT_MS = 5000

interface Cleanup {
  label: string
  run: () => Promise<void> | void
}

export class CleanupRegistry {
  private readonly pending = new Set<Cleanup>()

  /** Registers `run` until the returned function is called (once the thing is gone anyway). */
  add(label: string, run: () => Promise<void> | void): () => void {
    const cleanup = { label, run }
    this.pending.add(cleanup)
    return () => void this.pending.delete(cleanup)
  }

  get size(): number {
    return this.pending.size
  }

  /**
   * Runs every registered cleanup once, all at once (they are independent), each given up after
   * `timeoutMs`; then whatever was registered meanwhile (work still under way may create a
   * folder while the first round runs). Returns what was cleaned and what failed.
   */
  async runAll(timeoutMs = CLEANUP_TIMEOUT_MS): Promise<{ cleaned: string[]; failed: string[] }> {
    const cleaned: string[] = []
    const failed: string[] = []
    for (let round = 0; round < 3 && this.pending.size > 0; round++) {
      const batch = [...this.pending]
      this.pending.clear()
      await Promise.all(
        batch.map(async ({ label, run }) => {
          let timer: NodeJS.Timeout | undefined
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`gave up after ${timeoutMs} ms`)), timeoutMs)
          })
          try {
            await Promise.race([Promise.resolve().then(run), timeout])
            cleaned.push(label)
          } catch (err) {
            failed.push(`${label} (${describeError(err)})`)
          } finally {
            clearTimeout(timer)
          }
        }),
      )
    }
    return { cleaned, failed }
  }
}

/** The process's registry: modes and engines register here, the signal handlers run it. */
export const cleanups = new CleanupRegistry()

/** Removes `p` (a file or a folder) if the process is interrupted; the returned function forgets it. */
export function removeOnInterrupt(p: string, what = 'scratch'): () => void {
  return cleanups.add(`${what} ${p}`, () => fs.rm(p, { recursive: true, force: true }))
}

export interface SignalOptions {
  registry?: CleanupRegistry
  /** process.exit, replaceable in tests. */
  exit?: (code: number) => void
  /** Where the one line about the interruption goes (stderr by default). */
  report?: (line: string) => void
  timeoutMs?: number
  /** Where the signals come from: the process, or an emitter in tests. */
  source?: Pick<NodeJS.EventEmitter, 'on' | 'off'>
}

/**
 * On SIGINT or SIGTERM: run the registry, say what was removed, exit with 128 + the signal's
 * number. A second signal while cleaning changes nothing: the cleanups are already under way
 * and bounded by their timeout. Returns a function that removes the handlers.
 */
export function exitOnSignals(options: SignalOptions = {}): () => void {
  const {
    registry = cleanups,
    exit = (code: number) => process.exit(code),
    report = (line: string) => void process.stderr.write(`${line}\n`),
    timeoutMs = CLEANUP_TIMEOUT_MS,
    source = process,
  } = options
  let interrupted = false
  const handler = (signal: NodeJS.Signals) => {
    if (interrupted) return
    interrupted = true
    const code = 128 + (os.constants.signals[signal] ?? 0)
    void registry.runAll(timeoutMs).then(({ cleaned, failed }) => {
      const done = cleaned.length ? `cleaned up: ${cleaned.join(', ')}` : 'nothing to clean up'
      report(
        `${signal}: stopped; ${done}${failed.length ? `; NOT cleaned up: ${failed.join(', ')}` : ''}.`,
      )
      exit(code)
    })
  }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']
  for (const s of signals) source.on(s, handler)
  return () => {
    for (const s of signals) source.off(s, handler)
  }
}
