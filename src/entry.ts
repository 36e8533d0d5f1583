import { exitOnSignals } from './util/cleanup.js'
import { describeError } from './util/errors.js'
import { hideSecretEnvironment } from './util/secrets.js'

/**
 * Owner-only from the first byte: a snapshot, a decrypted copy or a report is never group- or
 * world-readable while it is being written (children such as pg_dump inherit it).
 */
export const UMASK = 0o077

/**
 * The job a sub-action's entry fixes (`dist/drill.js` for drill/action.yml), from the name of the
 * script node was started with; null for `dist/index.js` (the root action, `mode` chooses).
 */
export function subActionOf(script = process.argv[1] ?? ''): string | null {
  const m = /[\\/](backup|verify|drill|restore|gate|smoke)\.js$/.exec(script)
  return m ? m[1]! : null
}

/**
 * The runner starts `node dist/index.js` (or a sub-action's `dist/<mode>.js`, which loads it)
 * with no arguments; anything else is the CLI.
 *
 * Everything else is loaded after hideSecretEnvironment: that re-executes this process, and
 * whatever the first image loaded (@actions/core alone is a fifth of the start-up) would be
 * loaded twice. Only these few small files are in the bundle's entry chunk.
 */
export async function main(args: string[]): Promise<void> {
  process.umask(UMASK)
  const action = args.length === 0
  // First, before anything async: the secrets leave this process's start-up environment,
  // where pytest or a stop command running as the same user could read them (util/secrets.ts).
  let hidden: string
  try {
    hidden = hideSecretEnvironment()
  } catch (err) {
    // The secrets were moved out and cannot be put back: every mode needing one would fail
    // later with a misleading "not set".
    const message = `secret inputs could not be read back after hiding them: ${describeError(err)}`
    if (action) (await import('./action/step.js')).fail(message)
    else console.error(`Error: ${message}`)
    process.exitCode = action ? 1 : 2
    return
  }
  if (hidden !== 'restored' && hidden !== 'nothing' && process.platform !== 'win32') {
    const warning = `secrets stay readable in this process's start-up environment by other processes of the same user: ${hidden}`
    if (action) (await import('./action/step.js')).warn(warning)
    else console.error(`warning: ${warning}`)
  }
  // SIGINT/SIGTERM (a cancelled run, a timeout, Ctrl-C): scratch data removed, then exit 128+n.
  exitOnSignals()
  if (!action) {
    const { cli } = await import('./cli/cli.js')
    process.exitCode = await cli(args)
    return
  }
  await (await import('./action/step.js')).step(subActionOf())
}
