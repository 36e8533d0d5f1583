import * as core from '@actions/core'
import { cli } from './cli.js'
import { describeError } from './errors.js'
import { run } from './main.js'
import { hideSecretEnvironment } from './secrets.js'

/** The runner starts `node dist/index.js` with no arguments; anything else is the CLI. */
export async function main(args: string[]): Promise<void> {
  const action = args.length === 0
  // First, before anything async: the secrets leave this process's start-up environment,
  // where pytest or a stop command running as the same user could read them (secrets.ts).
  let hidden: string
  try {
    hidden = hideSecretEnvironment()
  } catch (err) {
    // The secrets were moved out and cannot be put back: every mode needing one would fail
    // later with a misleading "not set".
    const message = `secret inputs could not be read back after hiding them: ${describeError(err)}`
    if (action) core.setFailed(message)
    else console.error(`Error: ${message}`)
    process.exitCode = action ? 1 : 2
    return
  }
  if (hidden !== 'restored' && hidden !== 'nothing' && process.platform !== 'win32') {
    const warning = `secrets stay readable in this process's start-up environment by other processes of the same user: ${hidden}`
    if (action) core.warning(warning)
    else console.error(`warning: ${warning}`)
  }
  if (!action) {
    process.exitCode = await cli(args)
    return
  }
  try {
    await run()
  } catch (err) {
    // Whatever escaped run() (a runner file that cannot be written, a bug): one line, job failed.
    core.setFailed(describeError(err))
  }
}
