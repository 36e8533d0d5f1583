// The layout's rules, checked on the sources: no import cycle, @actions/core only in action/,
// the runner's environment read only in options/context.ts, input names only from the table.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { Inputs } from '../src/options/inputs.js'
import { ROOT } from './helpers.js'

const SRC = path.join(ROOT, 'src')

function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return sources(p)
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : []
  })
}

const rel = (file: string) => path.relative(SRC, file).split(path.sep).join('/')
const text = (file: string) => fs.readFileSync(file, 'utf8')
/** The source without comments, so that prose about a rule does not trip it. */
const code = (file: string) =>
  text(file)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')

/** Each file's relative imports (type-only ones too: a cycle of types is still a cycle). */
function importGraph(files: string[]): Map<string, string[]> {
  return new Map(
    files.map((f) => [
      rel(f),
      [...text(f).matchAll(/from '(\.[^']+)\.js'|import\('(\.[^']+)\.js'\)/g)].map((m) =>
        rel(path.resolve(path.dirname(f), `${m[1] ?? m[2]}.ts`)),
      ),
    ]),
  )
}

/** The cycles of a graph (Tarjan's strongly connected components of more than one node). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const found: string[][] = []
  const visit = (v: string) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1) found.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

describe('the layout of src/', () => {
  const files = sources()

  it('has no import cycle, types included', () => {
    expect(files.length).toBeGreaterThan(50)
    expect(cycles(importGraph(files))).toEqual([])
    // Positive control: a cycle of three is found.
    const ring = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ])
    expect(cycles(ring)).toEqual([['a.ts', 'b.ts', 'c.ts']])
  })

  it('imports @actions/core only in action/', () => {
    const users = (fs: string[]) =>
      fs.filter((f) => /from '@actions\/core'|import\('@actions\/core'\)/.test(code(f))).map(rel)
    expect(users(files).filter((f) => !f.startsWith('action/'))).toEqual([])
    expect(users(files).sort()).toEqual(['action/main.ts', 'action/post.ts', 'action/step.ts'])
  })

  it("reads the runner's environment only in options/context.ts", () => {
    const RUNNER = /\benv\.(GITHUB|RUNNER|ACTIONS)_[A-Z_]+|process\.env\.(GITHUB|RUNNER|ACTIONS)_/
    // util/secrets.ts runs first, before any options: it chooses where to hide the secrets.
    const readers = files.filter((f) => RUNNER.test(code(f))).map(rel)
    expect(readers.sort()).toEqual(['options/context.ts', 'util/secrets.ts'])
    // Positive control: the pattern finds both spellings.
    expect(RUNNER.test('const a = process.env.GITHUB_REPOSITORY')).toBe(true)
    expect(RUNNER.test('const b = env.RUNNER_TEMP')).toBe(true)
  })

  it('names inputs in engines/ and store/ through the table, never by a string of their own', () => {
    const names = Object.values(Inputs) as string[]
    const literal = new RegExp(`['\`](${names.join('|')})[:'\`]`)
    const offenders = files
      .filter((f) => /^(engines|store|checks|codec)\//.test(rel(f)))
      .filter((f) => literal.test(code(f)))
      .map((f) => `${rel(f)}: ${literal.exec(code(f))![0]}`)
    expect(offenders).toEqual([])
    // Positive control: a message starting with an input's name is caught.
    expect(literal.test("throw new UserError('restore-connection-string: not set')")).toBe(true)
  })
})
