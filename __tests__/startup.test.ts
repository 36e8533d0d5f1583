// Start-up cost, guarded where it is decided: the static imports. Everything a static import
// reaches is in the bundle's chunk for that file and is loaded before the first log line, so
// the large packages only some modes use are imported with `await import()` where they are
// used (ncc puts them in chunks of their own). bench/startup.js measures the built bundle.

import * as fs from 'node:fs'
import * as path from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

const SRC = path.join(ROOT, 'src')

/**
 * Every module `entry` reaches through static imports that stay in the JavaScript (not
 * `import type`, not imports whose every name is a type), each with the chain that reaches it.
 */
function staticGraph(entry: string): Map<string, string[]> {
  const reached = new Map<string, string[]>()
  const queue: [string, string[]][] = [[path.join(SRC, entry), []]]
  while (queue.length) {
    const [file, chain] = queue.shift()!
    const name = path.relative(SRC, file)
    if (reached.has(name)) continue
    reached.set(name, chain)
    const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest)
    for (const st of source.statements) {
      let specifier: ts.Expression | undefined
      if (ts.isImportDeclaration(st)) {
        const clause = st.importClause
        const bindings = clause?.namedBindings
        const onlyTypes =
          clause?.isTypeOnly ||
          (clause &&
            !clause.name &&
            bindings &&
            ts.isNamedImports(bindings) &&
            bindings.elements.length > 0 &&
            bindings.elements.every((e) => e.isTypeOnly))
        if (!onlyTypes) specifier = st.moduleSpecifier
      } else if (ts.isExportDeclaration(st) && !st.isTypeOnly) specifier = st.moduleSpecifier
      if (!specifier || !ts.isStringLiteral(specifier)) continue
      const next = [...chain, name]
      if (specifier.text.startsWith('.')) {
        queue.push([path.resolve(path.dirname(file), specifier.text.replace(/\.js$/, '.ts')), next])
      } else if (!reached.has(specifier.text)) reached.set(specifier.text, next)
    }
  }
  return reached
}

const packages = (graph: Map<string, string[]>) =>
  [...graph.keys()].filter((m) => !m.endsWith('.ts') && !m.startsWith('node:'))

const chainTo = (graph: Map<string, string[]>, module: string) =>
  [...graph.get(module)!, module].join(' -> ')

/** Large, and used by some modes only: loaded where they are used. */
const LAZY = ['@actions/artifact', '@actions/cache', 'pg', 'parse5', 'fast-xml-parser']

describe('start-up: what is loaded before the first log line', () => {
  it('the entry loads no package before it hides the secrets and re-executes itself', () => {
    // Whatever the first image loads is loaded twice (src/util/secrets.ts, hideSecretEnvironment).
    const graph = staticGraph('index.ts')
    expect(packages(graph)).toEqual([])
    expect([...graph.keys()].filter((m) => m.endsWith('.ts')).sort()).toEqual([
      'entry.ts',
      'index.ts',
      'util/cleanup.ts',
      'util/errors.ts',
      'util/secrets.ts',
    ])
  })

  it.each(['action/main.ts', 'cli/cli.ts'])(
    '%s reaches none of the packages only some modes use',
    (entry) => {
      const graph = staticGraph(entry)
      for (const name of LAZY) {
        expect(
          graph.has(name) ? chainTo(graph, name) : null,
          `${name} is imported statically; use await import() where it is needed`,
        ).toBeNull()
      }
    },
  )

  it('positive control: the walk finds a static chain where there is one', () => {
    const graph = staticGraph('action/main.ts')
    expect(chainTo(graph, '@actions/core')).toBe('action/main.ts -> @actions/core')
    expect(graph.get('modes/gate.ts')).toEqual(['action/main.ts', 'modes/index.ts'])
    // gate/csp.ts is static (its constants), parse5 inside it is not.
    expect(graph.has('gate/csp.ts')).toBe(true)
  })
})
