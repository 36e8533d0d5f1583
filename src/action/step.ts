/**
 * The action's step as the runner starts it (entry.ts loads this file only for the action):
 * the post step when the main step saved `isPost`, else the job itself. With main.ts and post.ts,
 * the only files that import @actions/core.
 */
import * as core from '@actions/core'
import { describeError } from '../util/errors.js'

/** Fails the step in one line (an `::error::` annotation). */
export const fail = (message: string): void => core.setFailed(message)

/** A warning annotation. */
export const warn = (message: string): void => core.warning(message)

/** The main step (`subAction`: the job a sub-action's entry fixed) or, run again, the post step. */
export async function step(subAction: string | null): Promise<void> {
  const { actionsLog, run } = await import('./main.js')
  // The runner calls this same file again as the post step; main saved isPost for it.
  if (core.getState('isPost') === 'true') return (await import('./post.js')).runPost(actionsLog)
  try {
    await run(subAction)
  } catch (err) {
    // Whatever escaped run() (a runner file that cannot be written, a bug): one line, job failed.
    core.setFailed(describeError(err))
  }
}
