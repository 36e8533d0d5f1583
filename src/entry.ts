import { cli } from './cli.js'
import { run } from './main.js'

/** The runner starts `node dist/index.js` with no arguments; anything else is the CLI. */
export async function main(args: string[]): Promise<void> {
  if (args.length === 0) await run()
  else process.exitCode = await cli(args)
}
