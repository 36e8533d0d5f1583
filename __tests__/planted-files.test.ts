// Files planted where the action reads or appends: a FIFO named like a manifest or a backup
// (reading one with no writer waits for ever, past SIGTERM), and a drill-log that is a symbolic
// link (appending through it writes any file the runner can). Each is refused at once, in words.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { demoWorkspace, failed, run, tempDir } from './helpers.js'

const linux = process.platform === 'linux'
const mkfifo = (p: string) => execFileSync('mkfifo', [p])

async function backedUp() {
  const ws = await demoWorkspace({ conversations: 5 })
  const { report } = await run(
    'backup',
    { 'connection-string': ws.db, 'backup-dir': ws.backups },
    ws.dir,
  )
  expect(failed(report)).toEqual({})
  return { ...ws, backup: report.backup!.path }
}

describe.runIf(linux)('planted FIFOs', () => {
  it('positive control: reading a FIFO with no writer never returns', () => {
    const dir = execFileSync('mktemp', ['-d']).toString().trim()
    const fifo = path.join(dir, 'x.manifest.json')
    mkfifo(fifo)
    const stuck = spawnSync(
      process.execPath,
      ['-e', `require('node:fs').readFileSync(${JSON.stringify(fifo)})`],
      { timeout: 2000 },
    )
    expect(stuck.signal).toBe('SIGTERM')
  })

  it('a FIFO named like a manifest is reported as damaged, and the real backup is used', async () => {
    const { dir, backups, backup } = await backedUp()
    await fs.writeFile(path.join(backups, 'omniai-2020-01-01.db'), 'x')
    mkfifo(path.join(backups, 'omniai-2020-01-01.db.manifest.json'))
    const { report, log } = await run('verify', { 'backup-dir': backups }, dir)
    expect(failed(report)).toEqual({})
    expect(report.backup?.path).toBe(backup)
    expect(log.warnings).toContainEqual(
      expect.stringMatching(/omniai-2020-01-01\.db\.manifest\.json cannot be read \(.* is a FIFO/),
    )
  })

  it('a FIFO in place of a backup file: left out of the listing, and refused as backup-file', async () => {
    const { dir, backups, backup } = await backedUp()
    await fs.rm(backup)
    mkfifo(backup)
    const listed = await run('verify', { 'backup-dir': backups }, dir)
    expect(listed.report.error).toMatch(/^backup-dir: /)
    expect(listed.log.warnings).toContainEqual(
      expect.stringMatching(/is a FIFO, not a regular file/),
    )
    const named = await run('verify', { 'backup-file': backup }, dir)
    expect(named.report.error).toMatch(
      /^backup-file: .* is a FIFO, not a regular file\. Fix: name a backup file\.$/,
    )
  })
})

describe('drill-log', () => {
  it('a symbolic link is refused, and the file it points at is left as it was', async () => {
    const { dir, backups } = await backedUp()
    const target = path.join(await tempDir(), 'elsewhere.txt')
    await fs.writeFile(target, 'original\n')
    const link = path.join(dir, 'drill.jsonl')
    await fs.symlink(target, link)
    const { report } = await run('drill', { 'backup-dir': backups, 'drill-log': link }, dir)
    expect(report.error).toMatch(
      /^drill-log: cannot append to .*drill\.jsonl: a symbolic link\. Fix: set drill-log to a writable file with room, or none\.$/,
    )
    expect(await fs.readFile(target, 'utf8')).toBe('original\n')
    // Positive control: a plain file there takes the record.
    await fs.rm(link)
    const ok = await run('drill', { 'backup-dir': backups, 'drill-log': link }, dir)
    expect(ok.report.error).toBeUndefined()
    expect((await fs.readFile(link, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1)
  })

  it.runIf(linux)('a FIFO is refused at once', async () => {
    const { dir, backups } = await backedUp()
    const fifo = path.join(dir, 'drill.jsonl')
    mkfifo(fifo)
    const { report } = await run('drill', { 'backup-dir': backups, 'drill-log': fifo }, dir)
    expect(report.error).toMatch(
      /^drill-log: cannot append to .*drill\.jsonl: a FIFO, not a regular file\. Fix: /,
    )
  })

  it.runIf(linux)(
    'read by verify (max-drill-age): a FIFO is no drill on record, at once',
    async () => {
      const { dir, backups } = await backedUp()
      const fifo = path.join(dir, 'drill.jsonl')
      mkfifo(fifo)
      const { report } = await run(
        'verify',
        { 'backup-dir': backups, 'drill-log': fifo, 'max-drill-age': '90' },
        dir,
      )
      // Positive control of the read: the same check passes once a drill is logged in a file.
      expect(report.checks.find((c) => c.name === 'drill-age')?.ok).toBe(false)
      await fs.rm(fifo)
      const drill = await run('drill', { 'backup-dir': backups, 'drill-log': fifo }, dir)
      expect(drill.report.error).toBeUndefined()
      const again = await run(
        'verify',
        { 'backup-dir': backups, 'drill-log': fifo, 'max-drill-age': '90' },
        dir,
      )
      expect(again.report.checks.find((c) => c.name === 'drill-age')?.ok).toBe(true)
    },
  )
})
