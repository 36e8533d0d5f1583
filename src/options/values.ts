/**
 * Input values into typed values: durations, whole numbers, booleans as the runner spells them,
 * commands without a shell, names GitHub and SQLite accept. Each failure is one UserError that
 * names the input and the fix.
 */
import { UserError } from '../util/errors.js'
import { DEFAULTS, Inputs } from './inputs.js'

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }

/** `26h`, `2d`, `90m`, `3600s`, `1w` to seconds. */
export function parseDuration(text: string, input: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(text.trim())
  if (!m) {
    throw new UserError(
      `${input}: "${text}" is not a duration. Fix: give a number and a unit (s, m, h, d, w), e.g. 26h, 2d, 90m.`,
    )
  }
  const seconds = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!
  if (seconds <= 0) throw new UserError(`${input}: must be more than 0. Fix: e.g. 26h.`)
  return seconds
}

export function oneOf<T extends string>(value: string, allowed: readonly T[], input: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new UserError(
    `${input}: "${value}" is not one of ${allowed.join(', ')}. Fix: set ${input} to one of them.`,
  )
}

export function integer(text: string, input: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw new UserError(
      `${input}: "${text}" is not a whole number from ${min} to ${max}. Fix: e.g. ${input}: ${DEFAULTS[input as Inputs] || min}.`,
    )
  }
  return Number(text)
}

export function seconds(text: string, input: string): number {
  const n = Number(text)
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
    throw new UserError(
      `${input}: "${text}" is not a number of seconds above 0. Fix: e.g. ${input}: 600.`,
    )
  }
  return n
}

export function timeZone(text: string, input: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: text })
    return text
  } catch {
    throw new UserError(
      `${input}: "${text}" is not a time zone. Fix: an IANA name such as UTC, Europe/Berlin or America/New_York.`,
    )
  }
}

export function artifactName(text: string, input: string): string {
  // GitHub refuses these characters in artifact names.
  if (/[":<>|*?\\/\r\n]/.test(text)) {
    throw new UserError(
      `${input}: "${text}" holds a character GitHub refuses in artifact names (" : < > | * ? \\ /). Fix: e.g. artifact-name: omniai-backup.`,
    )
  }
  return text
}

export function tableName(text: string, input: string): string | null {
  if (text === 'none') return null
  if (text.trim() === '' || [...text].some((ch) => ch.charCodeAt(0) < 0x20)) {
    throw new UserError(
      `${input}: "${text}" is not a table name. Fix: name a table, or none to skip this check.`,
    )
  }
  return text
}

/** `true` or `false` as YAML 1.2 and core.getBooleanInput spell them. */
/** A bot's login (`github-actions[bot]`, `my-app[bot]`): people cannot hold one. */
export function botLogin(text: string, input: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\[bot\]$/.test(text)) {
    throw new UserError(
      `${input}: "${text}" is not a bot's login. Fix: github-actions[bot] for the job's GITHUB_TOKEN, or <app-slug>[bot] for a GitHub App's token; a person's comments never count as drill records.`,
    )
  }
  return text
}

export function bool(text: string, input: string): boolean {
  if (['true', 'True', 'TRUE'].includes(text)) return true
  if (['false', 'False', 'FALSE'].includes(text)) return false
  throw new UserError(`${input}: "${text}" is not true or false. Fix: ${input}: true.`)
}

/** What a shell would do with these words; the gate runs its command without one. */
const SHELL_OPERATORS = new Set(['&&', '||', '|', ';', '&', '>', '>>', '<', '2>&1'])

/**
 * A command line into argv, with no shell: words split at whitespace, '...' and "..." keep
 * spaces inside a word, and in "..." a backslash escapes " or \. A backslash anywhere else is
 * kept, so Windows paths work as written.
 */
export function splitCommand(
  text: string,
  input: string,
  fix = 'give only the command that starts pytest (e.g. poetry run pytest), use gate-working-directory instead of cd, and run other commands in an earlier step',
): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quoted = false
  let quote: string | null = null
  const end = () => {
    if (!inWord) return
    if (!quoted && SHELL_OPERATORS.has(word)) {
      throw new UserError(
        `${input}: "${word}" needs a shell, and the command runs without one. Fix: ${fix}.`,
      )
    }
    words.push(word)
    word = ''
    inWord = quoted = false
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quote === "'") {
      if (ch === "'") quote = null
      else word += ch
    } else if (quote === '"') {
      if (ch === '"') quote = null
      else if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i]
      else word += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      inWord = quoted = true
    } else if (/\s/.test(ch)) end()
    else {
      word += ch
      inWord = true
    }
  }
  if (quote) {
    throw new UserError(
      `${input}: the ${quote} in "${text}" is not closed. Fix: close the quote, e.g. ${input}: python -m pytest "tests/security suite".`,
    )
  }
  end()
  if (words.length === 0 || words[0] === '') {
    throw new UserError(`${input}: no command in "${text}". Fix: e.g. ${input}: python -m pytest.`)
  }
  return words
}

export function serviceCommand(text: string, input: string): string[] | null {
  if (!text) return null
  return splitCommand(
    text,
    input,
    `give one command (e.g. ${input}: systemctl ${input === Inputs.StopCommand ? 'stop' : 'start'} omniai, or docker compose ${input === Inputs.StopCommand ? 'stop' : 'start'} backend), or a script that does the rest`,
  )
}
