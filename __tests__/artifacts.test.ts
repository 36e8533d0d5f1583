/**
 * Backups kept as GitHub artifacts, against a local stand-in for GitHub's services (see
 * __tests__/data/github/README.md): the nightly run uploads, a drill in another run finds the
 * newest unexpired artifact through the REST API, downloads it and restores it.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startGitHubStandIn, buildZip } from './github-standin.js'

// @actions/github reads GITHUB_API_URL when first imported: the environment comes first, then
// the code under test.
const standIn = await startGitHubStandIn()
const saved = { ...process.env }
Object.assign(process.env, standIn.env)
const { demoWorkspace, run, tempDir, failed } = await import('./helpers.js')
const { artifactTier } = await import('../src/store/artifacts.js')

afterAll(async () => {
  process.env = saved
  await standIn.close()
})

const token = { 'github-token': standIn.token }

describe('backups as artifacts', () => {
  let uploadedId = 0
  let backupName = ''

  it('backup uploads the backup and its manifest, kept for its tier', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 30, auditRows: 100 })
    const { report } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        'upload-artifact': 'true',
        'allow-unencrypted-artifact': 'true',
        ...token,
      },
      dir,
    )
    expect(report.error).toBeUndefined()
    const tier = artifactTier(new Date(report.startedAt), 14, 12)
    expect(report.artifact).toMatchObject({
      name: 'omniai-backup',
      tier: tier.tier,
      retentionDays: tier.retentionDays,
    })
    const stored = standIn.artifacts.find((a) => a.id === report.artifact!.id)!
    expect(stored.name).toBe('omniai-backup')
    const days = (stored.expiresAt.getTime() - stored.createdAt.getTime()) / 86_400_000
    expect(Math.round(days)).toBe(tier.retentionDays)
    uploadedId = stored.id
    expect(report.warnings.join()).toMatch(
      /^UNENCRYPTED backup uploaded as artifact "omniai-backup"/,
    )
    backupName = path.basename(report.backup!.path)
  })

  it('a drill in another run downloads the newest unexpired artifact and restores it', async () => {
    // A newer artifact that has expired must be passed over.
    standIn.addArtifact({
      name: 'omniai-backup',
      expired: true,
      files: { 'omniai-2099-01-01.db': Buffer.from('gone') },
      createdAt: new Date(Date.now() + 60_000),
    })
    const dir = await tempDir()
    const scratch = path.join(dir, 'scratch')
    const { report } = await run(
      'drill',
      { 'download-artifact': 'true', 'scratch-dir': scratch, 'drill-log': 'none', ...token },
      dir,
    )
    expect(report.error).toBeUndefined()
    expect(failed(report)).toEqual({})
    expect(report.artifact).toMatchObject({ name: 'omniai-backup', id: uploadedId })
    expect(path.basename(report.backup!.path)).toBe(backupName)
    // The download and the restored copy are both gone.
    expect(await fs.readdir(scratch)).toEqual([])
  })

  it('a newest artifact whose backup does not match its manifest fails the drill on the checksum', async () => {
    const dir = await tempDir()
    const { dir: wsDir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const { report: b } = await run(
      'backup',
      { 'connection-string': db, 'backup-dir': backups, retention: 'off' },
      wsDir,
    )
    const file = path.basename(b.backup!.path)
    const bytes = await fs.readFile(b.backup!.path)
    bytes[bytes.length - 10]! ^= 1
    standIn.addArtifact({
      name: 'omniai-backup',
      createdAt: new Date(Date.now() + 120_000),
      files: {
        [file]: bytes,
        [`${file}.manifest.json`]: await fs.readFile(`${b.backup!.path}.manifest.json`),
      },
    })
    const { report } = await run(
      'drill',
      {
        'download-artifact': 'true',
        'scratch-dir': path.join(dir, 's'),
        'drill-log': 'none',
        ...token,
      },
      dir,
    )
    expect(failed(report).checksum).toMatch(/the file was altered/)
    standIn.artifacts.splice(standIn.artifacts.length - 1, 1)
  })

  it('missing permission: names the permission to add', async () => {
    const dir = await tempDir()
    standIn.fail(/\/actions\/artifacts\?name=/, '403-permission', 1)
    const { report } = await run(
      'verify',
      { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
      dir,
    )
    expect(report.error).toMatch(
      /^github-token: cannot list the artifacts of .* \(403 Resource not accessible by integration\)\. Fix: give the job "permissions: actions: read"\./,
    )
    expect(await fs.readdir(path.join(dir, 's'))).toEqual([])
  })

  it('rate limiting: waits as GitHub says, then goes on', async () => {
    const dir = await tempDir()
    standIn.fail(/\/actions\/artifacts\?name=/, 'rate-limit', 1, {
      status: 429,
      retryAfterSeconds: 1,
    })
    const { report, log } = await run(
      'verify',
      { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(log.warnings.join('\n')).toMatch(/rate limit reached; retrying in 1 s/)
  })

  it('no artifact of that name says how to get one', async () => {
    const dir = await tempDir()
    const { report } = await run(
      'drill',
      {
        'download-artifact': 'true',
        'artifact-name': 'nightly-db',
        'scratch-dir': path.join(dir, 's'),
        ...token,
      },
      dir,
    )
    expect(report.error).toMatch(
      /^artifact-name: no unexpired artifact named "nightly-db" in .*\. Fix: run the backup workflow with upload-artifact: true first/,
    )
  })

  it('pages through a repository with many artifacts', async () => {
    for (let i = 0; i < 120; i++) {
      standIn.addArtifact({
        name: 'omniai-backup',
        expired: true,
        createdAt: new Date(Date.now() - (i + 10) * 86_400_000),
        files: { 'x.db': buildZip({}) },
      })
    }
    const dir = await tempDir()
    const { report } = await run(
      'verify',
      { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
      dir,
    )
    expect(report.artifact!.id).toBe(uploadedId)
    const lists = standIn.requests.filter((r) => /\/actions\/artifacts\?/.test(r.path))
    expect(lists.some((r) => /[?&]page=2\b/.test(r.path))).toBe(true)
  })
})

describe('drill evidence on the tracking issue', () => {
  it('a drill records itself on the tracking issue, and max-drill-age reads it back', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 10, auditRows: 20 })
    await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'drill-log': 'none', ...token },
      dir,
    )
    expect(failed(report)).toEqual({})
    expect(report.checks.at(-1)!).toMatchObject({ name: 'evidence', ok: true })
    expect(report.evidence!.issueNumber).toBeGreaterThan(0)
    expect(report.checks.at(-1)!.detail).toMatch(/^recorded on issue #\d+/)
    const v = await run('verify', { 'backup-dir': backups, 'max-drill-age': '100', ...token }, dir)
    expect(v.report.checks.at(-1)!).toMatchObject({ name: 'drill-age', ok: true })
    expect(v.report.checks.at(-1)!.detail).toMatch(/within max-drill-age 100 days/)
  })

  it('drill-evidence: issue, without issues: write: the drill fails naming the permission', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    await run('backup', { 'connection-string': db, 'backup-dir': backups, retention: 'off' }, dir)
    standIn.fail(/\/issues\/\d+\/comments$/, '403-permission', 1, { method: 'POST' })
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'drill-log': 'none', 'drill-evidence': 'issue', ...token },
      dir,
    )
    expect(report.ok).toBe(false)
    expect(failed(report).evidence).toMatch(
      /^drill-evidence: the token cannot write issues in .*Fix: give the job "permissions: issues: write", or set drill-evidence: none\./,
    )
  })
})

describe('drill-evidence: auto (the default)', () => {
  const without = async (level: 'none' | 'read', fn: () => Promise<void>) => {
    standIn.permissions.issues = level
    try {
      await fn()
    } finally {
      standIn.permissions.issues = 'write'
    }
  }
  const backedUp = async () => {
    const ws = await demoWorkspace({ conversations: 5, auditRows: 5 })
    await run(
      'backup',
      { 'connection-string': ws.db, 'backup-dir': ws.backups, retention: 'off' },
      ws.dir,
    )
    return ws
  }

  it('records like issue when the token may', async () => {
    const { dir, backups } = await backedUp()
    const { report, log } = await run('drill', { 'backup-dir': backups, ...token }, dir)
    expect(failed(report)).toEqual({})
    expect(report.checks.at(-1)).toMatchObject({ name: 'evidence', ok: true })
    expect(log.warnings).toEqual([])
  })

  it.each(['none', 'read'] as const)(
    'issues: %s: one warning with the permissions fix, and the drill passes on its own checks',
    async (level) => {
      const { dir, backups } = await backedUp()
      await without(level, async () => {
        const { report, log } = await run('drill', { 'backup-dir': backups, ...token }, dir)
        expect(failed(report)).toEqual({})
        expect(report.ok).toBe(true)
        expect(report.checks.map((c) => c.name)).not.toContain('evidence')
        expect(report.evidence).toBeUndefined()
        const warning = `drill-evidence: the token cannot write issues in ${standIn.owner}/${standIn.repo} (403 Resource not accessible by integration). Fix: give the job "permissions: issues: write", or set drill-evidence: none. (drill-evidence: auto, so this drill is not on the tracking issue and its own checks decide the job)`
        expect(log.warnings).toEqual([warning])
        expect(report.warnings).toEqual([warning])
      })
    },
  )

  it('a failed drill without issues: write still fails, on its own checks', async () => {
    const { dir, backups } = await backedUp()
    await without('none', async () => {
      const { report, log } = await run(
        'drill',
        { 'backup-dir': backups, 'max-backup-age': '1s', ...token },
        dir,
        () => new Date(Date.now() + 60_000),
      )
      expect(Object.keys(failed(report))).toEqual(['backup-age'])
      expect(log.warnings).toHaveLength(1)
    })
  })

  it('any other failure to record fails the drill: a record that would not count (another author)', async () => {
    const { dir, backups } = await backedUp()
    const { report } = await run(
      'drill',
      { 'backup-dir': backups, 'drill-evidence-author': 'omniai-drills[bot]', ...token },
      dir,
    )
    expect(report.ok).toBe(false)
    expect(failed(report).evidence).toMatch(
      /^drill-evidence: this drill's record \(.*\) would not count for max-drill-age: written by github-actions\[bot\], not by omniai-drills\[bot\]\. Fix: set drill-evidence-author: github-actions\[bot\]/,
    )
  })

  describe('max-drill-age without issues: read', () => {
    const refusal = `max-drill-age: the token cannot read issues in ${standIn.owner}/${standIn.repo} (403 Resource not accessible by integration). Fix: give the job "permissions: issues: read", or remove max-drill-age.`
    const withEvent = async (event: string, fn: () => Promise<void>) => {
      const before = process.env.GITHUB_EVENT_NAME
      process.env.GITHUB_EVENT_NAME = event
      try {
        await fn()
      } finally {
        if (before === undefined) delete process.env.GITHUB_EVENT_NAME
        else process.env.GITHUB_EVENT_NAME = before
      }
    }

    it('reads the drill log instead, with one warning naming the fix', async () => {
      const { dir, backups } = await backedUp()
      const drillLog = path.join(dir, 'drill-log.jsonl')
      await without('none', async () => {
        const drilled = await run(
          'drill',
          { 'backup-dir': backups, 'drill-log': drillLog, ...token },
          dir,
        )
        expect(drilled.report.ok).toBe(true)
        await withEvent('schedule', async () => {
          const { report, log } = await run(
            'verify',
            { 'backup-dir': backups, 'drill-log': drillLog, 'max-drill-age': '100', ...token },
            dir,
          )
          expect(failed(report)).toEqual({})
          expect(report.checks.at(-1)!.detail).toMatch(
            /^last successful drill \S+ \(0 days ago\), within max-drill-age 100 days \(from the drill log .*drill-log\.jsonl: the tracking issue could not be read\)$/,
          )
          const warning = `${refusal} (drill-evidence: auto, so the drill log ${drillLog} decides instead)`
          expect(log.warnings).toEqual([warning])
          expect(report.warnings).toEqual([warning])
        })
      })
    })

    it('a drill and max-drill-age in one step: the missing permission is said once', async () => {
      const { dir, backups } = await backedUp()
      await without('none', async () => {
        await withEvent('schedule', async () => {
          const { report, log } = await run(
            'drill',
            { 'backup-dir': backups, 'max-drill-age': '100', ...token },
            dir,
          )
          expect(failed(report)).toEqual({})
          expect(log.warnings).toHaveLength(1)
          expect(log.warnings[0]).toMatch(/^drill-evidence: the token cannot write issues/)
          expect(log.lines).toContain(
            `${refusal} (drill-evidence: auto, so the drill log ${path.join(backups, 'drill-log.jsonl')} decides instead)`,
          )
        })
      })
    })

    it('no drill log: the gate fails with the fix', async () => {
      const { dir, backups } = await backedUp()
      await without('none', async () => {
        await withEvent('schedule', async () => {
          const { report } = await run(
            'verify',
            { 'backup-dir': backups, 'max-drill-age': '100', ...token },
            dir,
          )
          expect(failed(report)).toEqual({
            'drill-age': `${refusal} (drill-evidence: auto found no drill log to read instead at ${path.join(backups, 'drill-log.jsonl')})`,
          })
        })
      })
    })

    it("in a pull request's run a drill log is never read instead: the pull request could have written it", async () => {
      const { dir, backups } = await backedUp()
      const drillLog = path.join(dir, 'drill-log.jsonl')
      await fs.writeFile(
        drillLog,
        `${JSON.stringify({ date: new Date().toISOString(), ok: true })}\n`,
      )
      await without('none', async () => {
        await withEvent('pull_request', async () => {
          const { report } = await run(
            'verify',
            { 'backup-dir': backups, 'drill-log': drillLog, 'max-drill-age': '100', ...token },
            dir,
          )
          expect(failed(report)).toEqual({
            'drill-age': `${refusal} (drill-evidence: auto reads no drill log instead in a pull_request run, whose files a pull request can write)`,
          })
        })
      })
    })

    it('drill-evidence: issue fails, drill log or not', async () => {
      const { dir, backups } = await backedUp()
      const drillLog = path.join(dir, 'drill-log.jsonl')
      await fs.writeFile(
        drillLog,
        `${JSON.stringify({ date: new Date().toISOString(), ok: true })}\n`,
      )
      await without('none', async () => {
        const { report } = await run(
          'verify',
          {
            'backup-dir': backups,
            'drill-log': drillLog,
            'max-drill-age': '100',
            'drill-evidence': 'issue',
            ...token,
          },
          dir,
        )
        expect(failed(report)).toEqual({ 'drill-age': refusal })
      })
    })
  })
})

describe('GitHub Enterprise Server', () => {
  const onGhes = async (fn: () => Promise<void>) => {
    const before = process.env.GITHUB_SERVER_URL
    process.env.GITHUB_SERVER_URL = 'https://github.example.com'
    try {
      await fn()
    } finally {
      process.env.GITHUB_SERVER_URL = before
    }
  }
  const ghes =
    "upload-artifact / download-artifact: https://github.example.com is GitHub Enterprise Server, where GitHub's artifact service that this action uses (the one of upload-artifact@v4 and download-artifact@v4) is not supported. Fix: keep the backups in backup-dir (a folder on a self-hosted runner) or in an S3-compatible bucket (storage: s3://bucket/prefix), and remove upload-artifact / download-artifact."

  it('artifact modes say in one line that GHES has no artifact service for them, and what to use', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const before = standIn.requests.length
    await onGhes(async () => {
      const up = await run(
        'backup',
        {
          'connection-string': db,
          'backup-dir': backups,
          'upload-artifact': 'true',
          'allow-unencrypted-artifact': 'true',
          ...token,
        },
        dir,
      )
      expect(up.report.error).toBe(ghes)
      const down = await run(
        'verify',
        { 'download-artifact': 'true', 'scratch-dir': path.join(dir, 's'), ...token },
        dir,
      )
      expect(down.report.error).toBe(ghes)
    })
    expect(standIn.requests.length).toBe(before)
  })

  it('github.com, GHE.com (*.ghe.com) and *.localhost are not GHES', async () => {
    const { isEnterpriseServer } = await import('../src/store/artifacts.js')
    expect(isEnterpriseServer('https://github.com')).toBe(false)
    expect(isEnterpriseServer('https://octocorp.ghe.com')).toBe(false)
    expect(isEnterpriseServer('http://github.localhost')).toBe(false)
    expect(isEnterpriseServer('https://github.example.com')).toBe(true)
    expect(isEnterpriseServer('https://ghe.com.example.org')).toBe(true)
  })
})

describe('outputs: the artifact id, the tracking issue and its comment', () => {
  /** GITHUB_OUTPUT as @actions/core writes it: `name<<delimiter`, the value, the delimiter. */
  function readOutputs(file: string): Record<string, string> {
    const outputs: Record<string, string> = {}
    const lines = readFileSync(file, 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      const m = /^([^<]+)<<(.+)$/.exec(lines[i]!)
      if (m) outputs[m[1]!] = lines[i + 1] === m[2] ? '' : lines[++i]!
    }
    return outputs
  }

  /** The action's run() from the source, inputs as INPUT_* variables, outputs in a file. */
  async function action(dir: string, inputs: Record<string, string>) {
    const output = path.join(dir, `output-${inputs.mode}`)
    writeFileSync(output, '')
    const env: Record<string, string> = {
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: path.join(dir, 'summary'),
      RUNNER_TEMP: dir,
      ...Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
      ),
    }
    writeFileSync(env.GITHUB_STEP_SUMMARY!, '')
    const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
    const exitCode = process.exitCode
    Object.assign(process.env, env)
    try {
      const { run: runAction } = await import('../src/action/main.js')
      await runAction()
    } finally {
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      process.exitCode = exitCode
    }
    return readOutputs(output)
  }

  it('backup: artifact-id; drill: drill-issue-number and drill-comment-url; both empty where they do not apply', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const up = await action(dir, {
      mode: 'backup',
      'connection-string': db,
      'backup-dir': backups,
      'upload-artifact': 'true',
      'artifact-name': 'outputs-backup',
      'allow-unencrypted-artifact': 'true',
      ...token,
    })
    expect(up.ok).toBe('true')
    const uploaded = standIn.artifacts.at(-1)!
    expect(up['artifact-id']).toBe(String(uploaded.id))
    expect(up['drill-issue-number']).toBe('')
    expect(up['drill-comment-url']).toBe('')

    const drilled = await action(dir, {
      mode: 'drill',
      'download-artifact': 'true',
      'artifact-name': 'outputs-backup',
      'scratch-dir': path.join(dir, 's'),
      'drill-log': 'none',
      ...token,
    })
    expect(drilled.ok).toBe('true')
    expect(drilled['artifact-id']).toBe(String(uploaded.id))
    const issue = standIn.issues.find((i) => i.title === 'OmniAI restore drills')!
    expect(drilled['drill-issue-number']).toBe(String(issue.number))
    const comment = issue.comments.at(-1)!
    expect(drilled['drill-comment-url']).toBe(
      `https://github.com/${standIn.owner}/${standIn.repo}/issues/${issue.number}#issuecomment-${comment.id}`,
    )
  })
})
