/**
 * What the tests need from the operating system, beyond Node and npm. A part that is missing
 * makes the tests that need it report as skipped (never as passed), after one line that says
 * what is missing and the command that installs it; under CI=true a missing part fails the run
 * instead, because CI must run everything.
 */
import { spawnSync } from 'node:child_process'

export function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).error === undefined
}

export const HAS_GPG = hasCommand('gpg')
export const HAS_AGE_CLI = hasCommand('age')

export interface Missing {
  what: string
  tests: string
  install: string
}

/** One line per missing part; throws under CI=true. */
export function reportMissing(missing: Missing[], env: NodeJS.ProcessEnv = process.env): void {
  const lines = missing.map(
    (m) =>
      `not found: ${m.what}, so ${m.tests} will not run (reported as skipped). Install: ${m.install}`,
  )
  if (lines.length === 0) return
  if (env.CI === 'true') {
    throw new Error(`CI=true and a part the tests need is missing:\n${lines.join('\n')}`)
  }
  for (const line of lines) console.warn(line)
}
