import * as core from '@actions/core'
import { cli } from './cli.js'
import { describeError } from './errors.js'
import { run } from './main.js'

/** The runner starts `node dist/index.js` with no arguments; anything else is the CLI. */
export async function main(args: string[]): Promise<void> {
  if (args.length > 0) {
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
