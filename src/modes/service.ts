/**
 * The backend's stop and start commands, run around a restore as the runbook orders it: stop
 * the backend, replace the database, start the backend. Each runs without a shell (argv from
 * the input), its output in a log group, and a failure is an error naming the input.
 */
import { spawn } from 'node:child_process'
import { UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'
import { childEnv } from '../util/secrets.js'

/** How long a stop or start command may take before it counts as failed. */
export const SERVICE_COMMAND_TIMEOUT_MS = 10 * 60 * 1000

/**
 * Runs `argv` (e.g. ['systemctl', 'stop', 'omniai']) to completion, its output line by line in
 * the log. Throws a UserError naming `input` when it cannot start, exits non-zero, or times out.
 */
export async function runServiceCommand(
  argv: string[],
  input: string,
  log: Log,
  timeoutMs = SERVICE_COMMAND_TIMEOUT_MS,
): Promise<void> {
  const shown = argv.join(' ')
  await log.group(`${input}: ${shown}`, async () => {
    const outcome = await new Promise<{
      code: number | null
      signal: string | null
      error?: NodeJS.ErrnoException
      timedOut: boolean
      tail: string[]
    }>((resolve) => {
      const tail: string[] = []
      let timedOut = false
      const child = spawn(argv[0]!, argv.slice(1), {
        // systemctl and docker compose need PATH, HOME and their own settings, never the
        // recovery key or the GitHub token.
        env: childEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, timeoutMs)
      const onLines = (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split(/\r?\n/)) {
          if (!line.trim()) continue
          log.info(line)
          // One line of plain text in an error message, whatever the command printed.
          tail.push(
            [...line]
              .map((ch) => (ch < ' ' || ch === '\u007f' ? ' ' : ch))
              .join('')
              .slice(0, 200),
          )
          if (tail.length > 3) tail.shift()
        }
      }
      child.stdout.on('data', onLines)
      child.stderr.on('data', onLines)
      child.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        resolve({ code: null, signal: null, error, timedOut, tail })
      })
      child.once('close', (code, signal) => {
        clearTimeout(timer)
        resolve({ code, signal, timedOut, tail })
      })
    })
    if (outcome.error) {
      throw new UserError(
        outcome.error.code === 'ENOENT'
          ? `${input}: "${argv[0]}" was not found. Fix: give the command as it runs on this runner (e.g. ${input}: systemctl ${input === 'stop-command' ? 'stop' : 'start'} omniai), with its full path if it is not on PATH.`
          : `${input}: "${shown}" could not start (${outcome.error.code}). Fix: check the command and the runner's permissions.`,
      )
    }
    if (outcome.timedOut) {
      throw new UserError(
        `${input}: "${shown}" did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped. Fix: make the command return once the backend has ${input === 'stop-command' ? 'stopped' : 'started'} (e.g. systemctl without --no-block, docker compose without attach).`,
      )
    }
    if (outcome.code !== 0) {
      const said = outcome.tail.length ? `: ${outcome.tail.join(' / ')}` : ''
      throw new UserError(
        `${input}: "${shown}" failed (${outcome.signal ? `killed by ${outcome.signal}` : `exit code ${outcome.code}`})${said}. Fix: run it by hand on the runner to see why.`,
      )
    }
    log.info(`${input}: done`)
  })
}
