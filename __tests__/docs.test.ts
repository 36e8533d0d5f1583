import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEFAULTS, Inputs } from '../src/options/inputs.js'
import { VERSION } from '../src/util/version.js'
import { ROOT } from './helpers.js'

/** Names declared under a top-level key of action.yml (`inputs:` or `outputs:`). */
async function declared(section: 'inputs' | 'outputs'): Promise<string[]> {
  const text = await fs.readFile(path.join(ROOT, 'action.yml'), 'utf8')
  const block = text.split(new RegExp(`^${section}:\\n`, 'm'))[1]!.split(/^\S/m)[0]!
  return [...block.matchAll(/^ {2}([a-z0-9-]+):/gm)].map((m) => m[1]!)
}

describe('docs and declarations agree', () => {
  it('action.yml declares exactly the inputs the code reads, with the same defaults', async () => {
    const inputs = await declared('inputs')
    expect(inputs.sort()).toEqual(Object.values(Inputs).sort())
    const text = await fs.readFile(path.join(ROOT, 'action.yml'), 'utf8')
    for (const input of Object.values(Inputs)) {
      const m = new RegExp(`^ {2}${input}:\\n(?: {4}.*\\n)*? {4}default: (.*)$`, 'm').exec(text)
      const yamlDefault = m ? m[1]!.replace(/^'(.*)'$/, '$1') : ''
      expect([input, yamlDefault]).toEqual([input, DEFAULTS[input]])
    }
  })

  it('the README documents every input and output', async () => {
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8')
    for (const name of [...(await declared('inputs')), ...(await declared('outputs'))]) {
      expect(readme, name).toMatch(new RegExp(`^\\| \`${name}\` +\\|`, 'm'))
    }
  })

  it('src/util/version.ts matches package.json', async () => {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8'))
    expect(VERSION).toBe(pkg.version)
  })
})
