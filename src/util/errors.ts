/**
 * An error the user can fix: bad input, a missing file, a backup that fails its checks.
 * Its message is one line that names the input or file and says how to fix it; it is shown
 * without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, ' '))
    this.name = 'UserError'
  }
}

/** One line for any error: UserError as is, anything else with its class name. */
export function describeError(err: unknown): string {
  if (err instanceof UserError) return err.message
  if (err instanceof Error) return `${err.name}: ${err.message}`.replace(/\s*\n\s*/g, ' ')
  return String(err)
}
