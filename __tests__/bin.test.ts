// The CLI's entry, bin/omniai-backup.js, on a Node.js too old to run the bundle: one line and exit
// code 2 before anything is loaded (README "CLI"). Run with a real old Node where the machine has
// one (Debian's /usr/bin/node is 20), and always with Node 24 told it is Node 20, so the check is
// exercised everywhere; Node 24 itself runs the CLI (the positive control).

import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

const BIN = path.join(ROOT, 'bin', 'omniai-backup.js')
const REQUIRED_MAJOR = Number(/const REQUIRED_MAJOR = (\d+)/.exec(fs.readFileSync(BIN, 'utf8'))![1])
const NODE_24 = path.join(ROOT, 'node_modules', '.bin', 'node')

const majorOf = (node: string): number => {
  try {
    const version = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' })
    return Number(version.split('.')[0])
  } catch {
    return NaN
  }
}

/** A Node.js on this machine older than the CLI needs: /usr/bin/node, or any on PATH. */
function oldNode(): string | null {
  const onPath = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((dir) => path.join(dir, 'node'))
  for (const node of ['/usr/bin/node', ...onPath]) {
    if (fs.existsSync(node) && majorOf(node) < REQUIRED_MAJOR) return node
  }
  return null
}

/** Node 24 with process.versions.node set to 20.1.0 before bin/omniai-backup.js runs. */
const PRETEND_20 = `data:text/javascript,${encodeURIComponent(
  'Object.defineProperty(process, "versions", { value: { ...process.versions, node: "20.1.0" } })',
)}`

const scratch: string[] = []
afterAll(() => {
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true })
})

function run(node: string, args: string[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniai-bin-'))
  scratch.push(dir)
  const out = path.join(dir, 'demo.db')
  const r = spawnSync(node, [...args, BIN, 'demo-db', '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  })
  return { ...r, out }
}

function expectRefused(r: ReturnType<typeof run>, version: RegExp) {
  expect(r.status).toBe(2)
  expect(r.stdout).toBe('')
  const lines = r.stderr.split('\n').filter(Boolean)
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(
    new RegExp(
      `^Error: omniai-backup needs Node\\.js ${REQUIRED_MAJOR} or newer; this is Node\\.js `,
    ),
  )
  expect(lines[0]).toMatch(version)
  expect(lines[0]).toMatch(/ Fix: install Node\.js \d+/)
  // Refused before the bundle was loaded: nothing was written.
  expect(fs.existsSync(r.out)).toBe(false)
}

describe('bin/omniai-backup.js and the Node.js version', () => {
  it('requires the version package.json engines names', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.engines.node).toBe(`>=${REQUIRED_MAJOR}`)
  })

  const old = oldNode()
  it.skipIf(!old)(`refuses a real older Node.js (${old ?? 'none on this machine'})`, () => {
    expectRefused(run(old!, []), /this is Node\.js (1\d|2[0-3])\./)
  })

  it('refuses Node.js 20 (Node 24 told it is 20)', () => {
    expectRefused(run(NODE_24, ['--import', PRETEND_20]), /this is Node\.js 20\.1\.0 \(/)
  })

  it('runs on Node.js 24 (positive control)', () => {
    expect(majorOf(NODE_24)).toBeGreaterThanOrEqual(REQUIRED_MAJOR)
    const r = run(NODE_24, [])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/demo database written: /)
    expect(fs.statSync(r.out).size).toBeGreaterThan(0)
  })
})
