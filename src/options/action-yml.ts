/**
 * The files made from the input and output tables (inputs.ts): the root action.yml (every input,
 * `mode` chooses the job), one action.yml per sub-action (only the inputs and outputs its job
 * uses), and the README's tables. scripts/actions.mjs writes them; __tests__/actions.test.ts
 * holds the committed files to what these functions return.
 */
import { INPUTS, Inputs, MODES, OUTPUTS, type Mode, type Output } from './inputs.js'

/** What the marketplace and `uses:` show for each action. */
const ACTIONS: Record<'root' | Mode, { name: string; description: string }> = {
  root: {
    name: 'OmniAI Backups',
    description:
      'Consistent online backups of an OmniAI database (SQLite or PostgreSQL), verified, and ' +
      'restore drills that prove the backup restores: schema, recent conversations and the audit ' +
      'log, with the evidence in the job summary. One action for every job, chosen by `mode`; ' +
      'the backup/, verify/, drill/, restore/, gate/ and smoke/ actions each take only their own inputs.',
  },
  backup: {
    name: 'OmniAI Backups: backup',
    description:
      'A consistent online backup of the OmniAI database (SQLite or PostgreSQL) with a manifest ' +
      'of what it must hold, checked, optionally encrypted, uploaded and signed, with retention.',
  },
  verify: {
    name: 'OmniAI Backups: verify',
    description:
      'Proves a backup is whole and readable against its manifest: checksum, signature, ' +
      'integrity, schema.',
  },
  drill: {
    name: 'OmniAI Backups: restore drill',
    description:
      'Restores a backup into a scratch copy and checks schema, recent conversations and the ' +
      'audit log against its manifest, with the restore time and backup age, recorded as evidence.',
  },
  restore: {
    name: 'OmniAI Backups: restore',
    description:
      'Puts a verified backup back as the live OmniAI database, after a safety backup of the ' +
      'current one, guarded by confirm; stops and starts the backend and smoke-tests it.',
  },
  gate: {
    name: 'OmniAI Backups: security gate',
    description:
      'The runbook security gate: pytest -m "security or csrf" (failing on any failed, errored or ' +
      'missing test) and the Content-Security-Policy check.',
  },
  smoke: {
    name: 'OmniAI Backups: smoke test',
    description:
      'The post-restore smoke test against a running OmniAI backend: health, login, conversations.',
  },
}

/**
 * The inputs an action declares: the root every one; a sub-action those its mode reads, and
 * those any mode reads with max-drill-age (the drill records), never `mode` (the action is the
 * mode).
 */
export function actionInputs(mode: Mode | null): Inputs[] {
  return Object.values(Inputs).filter((input) => {
    if (mode === null) return true
    if (input === Inputs.Mode) return false
    const { modes, also } = INPUTS[input]
    return modes.includes(mode) || also !== undefined
  })
}

/** The outputs an action declares: the root every one, a sub-action those its mode sets. */
export function actionOutputs(mode: Mode | null): Output[] {
  return (Object.keys(OUTPUTS) as Output[]).filter(
    (output) => mode === null || (OUTPUTS[output].modes as readonly Mode[]).includes(mode),
  )
}

/** Words into lines of at most `width` columns, each with `indent` spaces before it. */
function wrap(text: string, indent: number, width = 100): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines.map((l) => ' '.repeat(indent) + l)
}

/** A folded block scalar: the text as written, whatever characters it holds. */
const folded = (key: string, text: string, indent: number) =>
  [`${' '.repeat(indent)}${key}: >-`, ...wrap(text, indent + 2)].join('\n')

const quoted = (text: string) => `'${text.replaceAll("'", "''")}'`

/** The action.yml of the root action (`mode` null) or of a sub-action. */
export function renderActionYml(mode: Mode | null): string {
  const meta = ACTIONS[mode ?? 'root']
  const dist = mode === null ? 'dist/index.js' : `../dist/${mode}.js`
  const out = [
    '# Made from src/options/inputs.ts by `npm run bundle` (scripts/actions.mjs): edit that table,',
    '# not this file. __tests__/actions.test.ts fails when the two differ.',
    `name: ${quoted(meta.name)}`,
    folded('description', meta.description, 0),
    'author: OmniAI',
    'branding:',
    '  icon: database',
    '  color: green',
    '',
    'inputs:',
  ]
  for (const input of actionInputs(mode)) {
    const spec = INPUTS[input]
    out.push(`  ${input}:`, folded('description', spec.description, 4))
    if (input === Inputs.Mode) out.push('    required: true')
    else out.push('    required: false', `    default: ${quoted(spec.default)}`)
  }
  out.push('', 'outputs:')
  for (const output of actionOutputs(mode)) {
    out.push(`  ${output}:`, folded('description', OUTPUTS[output].description, 4))
  }
  out.push(
    '',
    'runs:',
    '  using: node24',
    `  main: ${dist}`,
    '  # The same bundle: it knows the post phase from the state the main step saved, and removes',
    '  # whatever a killed step left (scratch folders, scratch databases).',
    `  post: ${dist}`,
    '  post-if: always()',
    '',
  )
  return out.join('\n')
}

/** The sub-action entries in dist/: each loads the one bundle, which reads its mode from the name. */
export function renderEntry(mode: Mode): string {
  return [
    `// The ${mode} action (${mode}/action.yml): the one bundle, index.js, with its mode fixed by this`,
    "// file's name (src/entry.ts). Made by scripts/actions.mjs.",
    "import './index.js'",
    '',
  ].join('\n')
}

const cell = (text: string) => text.replaceAll('|', '\\|')

/** Pads a Markdown table's columns as prettier does, so the README stays formatted. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length), 3))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const usedBy = (modes: readonly Mode[]) =>
  modes.length === MODES.length ? 'all' : modes.map((m) => `\`${m}\``).join(', ')

/** The README's input table: every input, its default, the actions that take it, one line on it. */
export function renderReadmeInputs(): string {
  return table(
    ['Input', 'Default', 'Used by', 'Description'],
    Object.values(Inputs).map((input) => {
      const spec = INPUTS[input]
      const by =
        input === Inputs.Mode
          ? 'root action'
          : `${usedBy(spec.modes)}${spec.also ? ` (all, with \`${spec.also}\`)` : ''}`
      return [`\`${input}\``, cell(spec.readmeDefault), by, cell(spec.summary)]
    }),
  )
}

/** The README's output table. */
export function renderReadmeOutputs(): string {
  return table(
    ['Output', 'Set by', 'Description'],
    (Object.keys(OUTPUTS) as Output[]).map((output) => [
      `\`${output}\``,
      usedBy(OUTPUTS[output].modes),
      cell(OUTPUTS[output].summary),
    ]),
  )
}

/** The markers around a generated block in README.md. */
export const README_BLOCKS = {
  inputs: renderReadmeInputs,
  outputs: renderReadmeOutputs,
} as const

/** README.md with each generated block (between its markers) made anew from the tables. */
export function renderReadme(readme: string): string {
  let text = readme
  for (const [name, render] of Object.entries(README_BLOCKS)) {
    const start = `<!-- ${name}: made from src/options/inputs.ts by npm run bundle -->`
    const end = `<!-- /${name} -->`
    const from = text.indexOf(start)
    const to = text.indexOf(end)
    if (from < 0 || to < from) throw new Error(`README.md: the ${name} markers are missing`)
    text = text.slice(0, from + start.length) + '\n\n' + render() + '\n\n' + text.slice(to)
  }
  return text
}
