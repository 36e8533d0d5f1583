// The input and output tables (src/options/inputs.ts) are the single source: every action.yml
// (the root's and each sub-action's), the sub-actions' entries in dist/, the README's tables and
// the CLI's flags are held to them here. `npm run bundle` remakes the files from the tables.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CLI_FLAGS } from '../src/cli/cli.js'
import {
  actionInputs,
  actionOutputs,
  renderActionYml,
  renderEntry,
  renderReadme,
} from '../src/options/action-yml.js'
import { INPUTS, Inputs, MODES, OUTPUTS, type Mode } from '../src/options/inputs.js'
import { SECRET_INPUTS } from '../src/util/secrets.js'
import { ROOT } from './helpers.js'

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8')

/** The names under a top-level key of an action.yml (`inputs:` or `outputs:`), in order. */
function declared(text: string, section: 'inputs' | 'outputs'): string[] {
  const block = text.split(new RegExp(`^${section}:\\n`, 'm'))[1]!.split(/^\S/m)[0]!
  return [...block.matchAll(/^ {2}([a-z0-9-]+):/gm)].map((m) => m[1]!)
}

/** What is wrong with a sub-action's action.yml against the table: one line per problem. */
function problems(mode: Mode, text: string): string[] {
  const inputs = declared(text, 'inputs')
  const out: string[] = []
  for (const input of Object.values(Inputs)) {
    const { modes, also } = INPUTS[input]
    const wanted = input !== Inputs.Mode && (modes.includes(mode) || also !== undefined)
    if (wanted && !inputs.includes(input)) out.push(`${input}: ${mode} reads it, not declared`)
    if (!wanted && inputs.includes(input)) out.push(`${input}: declared, ${mode} does not read it`)
  }
  for (const name of inputs)
    if (!(Object.values(Inputs) as string[]).includes(name)) out.push(`${name}: not in the table`)
  return out
}

describe('the input table is the single source', () => {
  it('the root action.yml is made from the table: every input, every output', () => {
    const text = read('action.yml')
    expect(text).toBe(renderActionYml(null))
    expect(declared(text, 'inputs')).toEqual(Object.values(Inputs))
    expect(declared(text, 'outputs')).toEqual(Object.keys(OUTPUTS))
    expect(text).toMatch(/^ {2}main: dist\/index\.js$/m)
  })

  it.each(MODES)(
    '%s/action.yml declares only what %s reads and sets, and runs the one bundle',
    (mode) => {
      const text = read(`${mode}/action.yml`)
      expect(text).toBe(renderActionYml(mode))
      expect(problems(mode, text)).toEqual([])
      expect(declared(text, 'inputs')).not.toContain('mode')
      expect(declared(text, 'outputs')).toEqual(actionOutputs(mode))
      expect(text).toMatch(new RegExp(`^ {2}main: \\.\\./dist/${mode}\\.js$`, 'm'))
      expect(read(`dist/${mode}.js`)).toBe(renderEntry(mode))
    },
  )

  it('positive control: a sub-action with an input its job does not read, or missing one, is caught', () => {
    const drill = renderActionYml('drill')
    const extra = drill.replace(
      '\noutputs:\n',
      "  keep-daily:\n    description: >-\n      x\n    required: false\n    default: '14'\n\noutputs:\n",
    )
    expect(problems('drill', extra)).toEqual(['keep-daily: declared, drill does not read it'])
    const missing = drill.replace(/^ {2}max-restore-seconds:\n(?: {4}.*\n)+/m, '')
    expect(problems('drill', missing)).toEqual([
      'max-restore-seconds: drill reads it, not declared',
    ])
    expect(extra).not.toBe(renderActionYml('drill'))
  })

  it('the sub-actions together take every input but mode, and set every output', () => {
    const taken = new Set(MODES.flatMap((m) => actionInputs(m)))
    expect([...taken].sort()).toEqual(
      Object.values(Inputs)
        .filter((i) => i !== Inputs.Mode)
        .sort(),
    )
    expect(new Set(MODES.flatMap((m) => actionOutputs(m)))).toEqual(new Set(Object.keys(OUTPUTS)))
  })

  it("the README's input and output tables are made from the table", () => {
    const readme = read('README.md')
    expect(readme).toBe(renderReadme(readme))
    for (const input of Object.values(Inputs))
      expect(readme, input).toMatch(new RegExp(`^\\| \`${input}\` +\\|`, 'm'))
    // Positive control: a row edited by hand is caught.
    const edited = readme.replace(/^(\| `prefix` +\| )`omniai`/m, '$1`other` ')
    expect(edited).not.toBe(readme)
    expect(renderReadme(edited)).not.toBe(edited)
  })

  it("the CLI's flags are the table's inputs (mode is the command), and a -file twin per secret", () => {
    expect([...CLI_FLAGS].sort()).toEqual(
      [
        ...Object.values(Inputs).filter((i) => i !== Inputs.Mode),
        ...SECRET_INPUTS.map((i) => `${i}-file`),
      ].sort(),
    )
    for (const input of SECRET_INPUTS) expect(INPUTS[input].secret, input).toBe(true)
  })

  it('every input and output has words for action.yml and the README', () => {
    for (const [name, spec] of [...Object.entries(INPUTS), ...Object.entries(OUTPUTS)]) {
      expect(spec.description.length, name).toBeGreaterThan(10)
      expect(spec.summary.length, name).toBeGreaterThan(5)
      expect(spec.modes.length, name).toBeGreaterThan(0)
    }
  })
})
