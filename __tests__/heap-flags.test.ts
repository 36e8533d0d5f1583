// The bundle runs with a small V8 young generation (util/secrets.ts HEAP_FLAGS): a runner starts
// actions with no Node flags, so the process re-executes itself with them, in the same execve
// that hides the secrets, or for them alone. A probe loaded through NODE_OPTIONS records every
// image the process runs as, with its command-line flags.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { HEAP_FLAGS, missingHeapFlags } from '../src/util/secrets.js'
import { DIST, tempDir } from './helpers.js'

const execFileAsync = promisify(execFile)
const FLAG = HEAP_FLAGS[0]!

/** Runs `node [nodeArgs] dist/index.js --help`; returns each image's pid and flags, in order. */
async function images(nodeArgs: string[], env: Record<string, string> = {}, nodeOptions = '') {
  const dir = await tempDir()
  const out = path.join(dir, 'images.jsonl')
  const probe = path.join(dir, 'probe.cjs')
  await fs.writeFile(
    probe,
    `require('node:fs').appendFileSync(${JSON.stringify(out)}, JSON.stringify({ pid: process.pid, execArgv: process.execArgv }) + '\\n')\n`,
  )
  const { PATH, HOME } = process.env
  await execFileAsync(process.execPath, [...nodeArgs, DIST, '--help'], {
    env: { PATH: PATH!, HOME: HOME!, NODE_OPTIONS: `--require ${probe} ${nodeOptions}`, ...env },
  })
  return (await fs.readFile(out, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { pid: number; execArgv: string[] })
}

describe.skipIf(process.platform === 'win32')('V8 heap flags', () => {
  it('with nothing to hide: re-executed once, in place, with the flags', async () => {
    const seen = await images([])
    expect(seen).toHaveLength(2)
    expect(seen[1]!.pid).toBe(seen[0]!.pid)
    // Positive control: the probe reads the flags the image has; the first has none.
    expect(seen[0]!.execArgv).not.toContain(FLAG)
    expect(seen[1]!.execArgv).toContain(FLAG)
  })

  it('with secrets to hide: the same one re-execution carries the flags', async () => {
    const seen = await images([], { 'INPUT_AGE-IDENTITY': 'AGE-SECRET-KEY-1PROBE' })
    expect(seen).toHaveLength(2)
    expect(seen[1]!.execArgv).toContain(FLAG)
  })

  it('a value the user gave, on the command line or in NODE_OPTIONS, is kept: no re-execution for it', async () => {
    for (const seen of [
      await images(['--max-semi-space-size=16']),
      await images([], {}, '--max-semi-space-size=16'),
    ]) {
      expect(seen).toHaveLength(1)
      expect(seen[0]!.execArgv).not.toContain(FLAG)
    }
    expect(missingHeapFlags(['--max-semi-space-size=32'], '')).toEqual([])
    expect(missingHeapFlags([], '--max-semi-space-size=32 --no-warnings')).toEqual([])
    expect(missingHeapFlags(['--max_semi_space_size=32'], '')).toEqual([])
    expect(missingHeapFlags(['--no-warnings'], '--max-old-space-size=100')).toEqual([FLAG])
  })
})
