/**
 * A backup that verify, drill or restore takes from an artifact must be one the backup job made.
 * Each attack is a real backup (made by mode backup from a demo database) uploaded as an artifact
 * by a workflow run an attacker could cause; GitHub's side is the stand-in (workflow runs, the
 * repository, artifacts, token permissions). Every attack has a control: the same artifact, from
 * a run the backup job could be, is taken and passes, so the test fails if the defence goes.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { buildZip, readZip, startGitHubStandIn, type StoredWorkflowRun } from './github-standin.js'

const standIn = await startGitHubStandIn()
const saved = { ...process.env }
Object.assign(process.env, standIn.env)
const { configFor, demoWorkspace, run, tempDir, failed, query } = await import('./helpers.js')
const { generateKeyPair } = await import('../src/manifest/signature.js')

afterAll(async () => {
  process.env = saved
  await standIn.close()
})

const token = { 'github-token': standIn.token }
let counter = 0
/** Each test looks at artifacts of its own name. */
const freshName = () => `omniai-trust-${++counter}`

/** A real backup, made by mode backup, as the files its artifact holds. */
async function realBackup(conversations: number, inputs: Record<string, string> = {}) {
  const { dir, db, backups } = await demoWorkspace({ conversations, auditRows: 10 })
  const { report } = await run(
    'backup',
    { 'connection-string': db, 'backup-dir': backups, retention: 'off', ...inputs },
    dir,
  )
  expect(report.error).toBeUndefined()
  const file = path.basename(report.backup!.path)
  const files: Record<string, Buffer> = {}
  for (const f of await fs.readdir(backups)) {
    if (f.startsWith(file)) files[f] = await fs.readFile(path.join(backups, f))
  }
  return { file, files, sha256: report.backup!.sha256, db }
}

/** The nightly backup workflow: scheduled, on the default branch, in this repository. */
const NIGHTLY: Partial<StoredWorkflowRun> = {
  name: 'Nightly backup',
  event: 'schedule',
  headBranch: 'main',
  path: '.github/workflows/nightly.yml@main',
}

/** An artifact `name` uploaded `minutesAgo` by a run with these facts. */
function seed(
  name: string,
  files: Record<string, Buffer>,
  runFacts: Partial<StoredWorkflowRun>,
  minutesAgo: number,
) {
  const r = standIn.addWorkflowRun(runFacts)
  return standIn.addArtifact({
    name,
    runId: r.id,
    files,
    createdAt: new Date(Date.now() - minutesAgo * 60_000),
  })
}

async function fromArtifacts(
  mode: 'verify' | 'drill' | 'restore',
  name: string,
  inputs: Record<string, string> = {},
) {
  const dir = await tempDir()
  const scratch = path.join(dir, 'scratch')
  const result = await run(
    mode,
    {
      'download-artifact': 'true',
      'artifact-name': name,
      'scratch-dir': scratch,
      'backup-dir': path.join(dir, 'backups'),
      'allow-active-sessions': 'true',
      'drill-log': 'none',
      'drill-evidence': 'none',
      ...token,
      ...inputs,
    },
    dir,
  )
  return { ...result, dir, scratch }
}

// One legitimate nightly backup and one an attacker made (another database: 3 conversations).
const nightly = await realBackup(12)
const planted = await realBackup(3)

describe('only artifacts the backup job made count', () => {
  const attacks: [string, Partial<StoredWorkflowRun>, RegExp][] = [
    [
      "a fork's pull request (the fork's own workflow file, on a branch the fork named main)",
      {
        event: 'pull_request',
        headBranch: 'main',
        headRepository: { id: 424242, fullName: 'mallory/omniai-backups' },
        path: '.github/workflows/nightly.yml@main',
      },
      /ran another repository's code \(head repository id 424242, a fork's pull request\)/,
    ],
    [
      'a pull_request run of this repository (a pull request from main into a release branch)',
      { event: 'pull_request', headBranch: 'main', path: '.github/workflows/nightly.yml@main' },
      /was a pull_request run; only schedule, workflow_dispatch, push runs of the default branch count/,
    ],
    [
      'a push to another branch (whose workflow file anyone with push access can change)',
      { event: 'push', headBranch: 'feature/x', path: '.github/workflows/nightly.yml@feature/x' },
      /ran branch "feature\/x", not the default branch "main"/,
    ],
  ]

  it.each(attacks)(
    'a newer artifact from %s is skipped and named; the nightly one is used',
    async (_what, attacker, reason) => {
      const name = freshName()
      const good = seed(name, nightly.files, NIGHTLY, 60)
      const bad = seed(name, planted.files, attacker, 1)
      const { report, log } = await fromArtifacts('drill', name)
      expect(report.error).toBeUndefined()
      expect(failed(report)).toEqual({})
      expect(report.artifact!.id).toBe(good.id)
      expect(report.backup!.sha256).toBe(nightly.sha256)
      const skipped = log.warnings.find((w) => w.includes(`id ${bad.id} `))!
      expect(skipped).toMatch(new RegExp(`^skipped artifact "${name}" id ${bad.id} `))
      expect(skipped).toMatch(reason)
      expect(report.warnings.join('\n')).toMatch(new RegExp(`artifact ${bad.id} .*skipped: `))
    },
  )

  it('control: the planted backup, uploaded by the nightly run, is a backup a drill would take and pass', async () => {
    // Without the provenance rules nothing else stops the attacks above: the planted file is a
    // whole backup with a matching manifest.
    const name = freshName()
    seed(name, nightly.files, NIGHTLY, 60)
    const newer = seed(name, planted.files, NIGHTLY, 1)
    const { report } = await fromArtifacts('drill', name)
    expect(failed(report)).toEqual({})
    expect(report.artifact!.id).toBe(newer.id)
    expect(report.backup!.sha256).toBe(planted.sha256)
  })

  it('with backup-workflow, another workflow of the default branch is skipped; without it, taken', async () => {
    const name = freshName()
    const good = seed(name, nightly.files, NIGHTLY, 60)
    const other = seed(
      name,
      planted.files,
      { name: 'CI', event: 'push', headBranch: 'main', path: '.github/workflows/ci.yml@main' },
      1,
    )
    const strict = await fromArtifacts('verify', name, { 'backup-workflow': 'nightly.yml' })
    expect(failed(strict.report)).toEqual({})
    expect(strict.report.artifact!.id).toBe(good.id)
    expect(strict.log.warnings.join('\n')).toMatch(
      new RegExp(
        `skipped artifact "${name}" id ${other.id} .*made by \\.github/workflows/ci\\.yml@main, not by backup-workflow nightly\\.yml`,
      ),
    )
    // Control: the same artifacts, any workflow of the default branch.
    const loose = await fromArtifacts('verify', name)
    expect(loose.report.artifact!.id).toBe(other.id)
  })

  it('backup-workflow also accepts the path form GitHub documents for another repository', async () => {
    const name = freshName()
    const a = seed(
      name,
      nightly.files,
      { ...NIGHTLY, path: `${standIn.owner}/${standIn.repo}/.github/workflows/nightly.yml@main` },
      5,
    )
    const { report } = await fromArtifacts('verify', name, {
      'backup-workflow': '.github/workflows/nightly.yml',
    })
    expect(failed(report)).toEqual({})
    expect(report.artifact!.id).toBe(a.id)
  })

  it('when no artifact qualifies, the error says why each was passed over and how to get one', async () => {
    const name = freshName()
    const pr = seed(name, planted.files, { event: 'pull_request', headBranch: 'main' }, 1)
    // A run GitHub no longer has (deleted): nothing shows who made its artifact.
    const orphan = standIn.addArtifact({ name, runId: 987_654, files: nightly.files })
    const { report, scratch } = await fromArtifacts('drill', name)
    expect(report.error).toMatch(
      new RegExp(
        `^artifact-name: none of the 2 unexpired artifacts named "${name}" in ${standIn.owner}/${standIn.repo} was made by the backup job \\(a schedule, workflow_dispatch, push run of .*'s default branch "main"\\): `,
      ),
    )
    expect(report.error).toMatch(new RegExp(`id ${pr.id}: its run \\d+ was a pull_request run`))
    expect(report.error).toMatch(
      new RegExp(`id ${orphan.id}: its run 987654 no longer exists, so nothing shows who made it`),
    )
    expect(report.error).toMatch(/Fix: run the backup workflow on "main"/)
    expect(await fs.readdir(scratch)).toEqual([])
  })

  it('the default branch is whatever the repository says, not "main"', async () => {
    standIn.repoSettings.defaultBranch = 'trunk'
    try {
      const name = freshName()
      seed(name, nightly.files, NIGHTLY, 1)
      const { report } = await fromArtifacts('verify', name)
      expect(report.error).toMatch(/ran branch "main", not the default branch "trunk"/)
    } finally {
      standIn.repoSettings.defaultBranch = 'main'
    }
  })

  it('the event payload, when it names the repository, saves the repository lookup', async () => {
    const dir = await tempDir()
    const event = path.join(dir, 'event.json')
    await fs.writeFile(
      event,
      JSON.stringify({ repository: { id: standIn.repositoryId, default_branch: 'main' } }),
    )
    process.env.GITHUB_EVENT_PATH = event
    try {
      const name = freshName()
      const good = seed(name, nightly.files, NIGHTLY, 1)
      const before = standIn.requests.length
      const { report } = await fromArtifacts('verify', name)
      expect(report.artifact!.id).toBe(good.id)
      const repoPath = `/repos/${standIn.owner}/${standIn.repo}`
      expect(standIn.requests.slice(before).some((r) => r.path === repoPath)).toBe(false)
    } finally {
      delete process.env.GITHUB_EVENT_PATH
    }
  })

  it('a token without actions: read cannot list or trace artifacts, and the error names the permission', async () => {
    const name = freshName()
    seed(name, nightly.files, NIGHTLY, 1)
    standIn.permissions.actions = 'none'
    try {
      const { report } = await fromArtifacts('drill', name)
      expect(report.error).toMatch(
        /^github-token: cannot list the artifacts of .* \(403 Resource not accessible by integration\)\. Fix: give the job "permissions: actions: read"\./,
      )
    } finally {
      standIn.permissions.actions = 'write'
    }
    // Control: with the permission back, the same drill passes.
    const { report } = await fromArtifacts('drill', name)
    expect(failed(report)).toEqual({})
  })
})

describe('restore takes only the artifact it is told to', () => {
  async function liveDatabase() {
    const { dir, db } = await demoWorkspace({ conversations: 7, auditRows: 5 })
    return { dir, db, rows: await query(db, 'SELECT count(*) AS n FROM conversations') }
  }

  it('download-artifact without artifact-id is refused as the inputs are read', async () => {
    const live = await liveDatabase()
    const inputs = {
      'download-artifact': 'true',
      'connection-string': live.db,
      confirm: 'omniai.db',
      ...token,
    } as const
    expect(() => configFor('restore', inputs, live.dir)).toThrow(
      /^artifact-id: restore replaces the live database, so with download-artifact it does not take the newest artifact on its own\. Fix: set artifact-id/,
    )
    // Control: the same inputs with an id are accepted; verify and drill still take the newest.
    expect(configFor('restore', { ...inputs, 'artifact-id': '12' }, live.dir).artifactId).toBe(12)
    expect(configFor('drill', { 'download-artifact': 'true' }, live.dir).artifactId).toBeNull()
  })

  it("artifact-id naming a fork's artifact is refused, naming why; the live database is untouched", async () => {
    const name = freshName()
    const bad = seed(
      name,
      planted.files,
      {
        event: 'pull_request',
        headBranch: 'main',
        headRepository: { id: 424242, fullName: 'mallory/omniai-backups' },
      },
      1,
    )
    const live = await liveDatabase()
    const { report } = await fromArtifacts('restore', name, {
      'connection-string': live.db,
      confirm: 'omniai.db',
      'artifact-id': String(bad.id),
    })
    expect(report.error).toMatch(
      new RegExp(
        `^artifact-id: artifact "${name}" id ${bad.id} \\(created .*\\) was not made by the backup job: its run \\d+ ran another repository's code`,
      ),
    )
    expect(await query(live.db, 'SELECT count(*) AS n FROM conversations')).toEqual(live.rows)
  })

  it('control: artifact-id naming the nightly artifact restores it', async () => {
    const name = freshName()
    const good = seed(name, nightly.files, NIGHTLY, 60)
    seed(name, planted.files, NIGHTLY, 1) // newer, and not chosen: the id decides
    const live = await liveDatabase()
    const { report } = await fromArtifacts('restore', name, {
      'connection-string': live.db,
      confirm: 'omniai.db',
      'artifact-id': String(good.id),
    })
    expect(report.error).toBeUndefined()
    expect(report.artifact!.id).toBe(good.id)
    expect(report.backup!.sha256).toBe(nightly.sha256)
    expect(await query(live.db, 'SELECT count(*) AS n FROM conversations')).toEqual([{ n: 12n }])
  })

  it('artifact-id of an artifact with another name, or none at all, is refused', async () => {
    const name = freshName()
    const other = seed(freshName(), nightly.files, NIGHTLY, 1)
    const wrongName = await fromArtifacts('verify', name, { 'artifact-id': String(other.id) })
    expect(wrongName.report.error).toMatch(
      new RegExp(`^artifact-id: artifact ${other.id} is named "omniai-trust-\\d+", not "${name}"`),
    )
    const missing = await fromArtifacts('verify', name, { 'artifact-id': '99999999999' })
    expect(missing.report.error).toMatch(
      /^artifact-id: no artifact 99999999999 in .* \(404 Not Found\)\. Fix: copy the id/,
    )
  })
})

describe('an artifact zip is extracted only inside its folder', () => {
  const escapes: [string, (tag: string, dir: string) => string][] = [
    ['a "../" path', (tag) => `../../escaped-${tag}.txt`],
    ['an absolute path', (tag, dir) => path.join(dir, `absolute-${tag}.txt`)],
    ['a "../" path after a folder', (tag) => `omniai/../../../escaped-${tag}.txt`],
  ]

  it.each(escapes)(
    'an entry with %s is refused and nothing is written outside',
    async (_what, entryFor) => {
      const name = freshName()
      const dir = await tempDir()
      const tag = String(Date.now())
      const entry = entryFor(tag, dir)
      const a = standIn.addArtifact({
        name,
        runId: standIn.addWorkflowRun(NIGHTLY).id,
        files: { ...nightly.files, [entry]: Buffer.from('written by the artifact\n') },
      })
      const { report, scratch } = await fromArtifacts('drill', name)
      expect(report.error).toMatch(
        new RegExp(
          `^artifact-name: artifact "${name}" id ${a.id} \\(created .*\\) from run \\d+ was refused: entry ".*${tag}\\.txt" has (a "\\.\\." segment|an absolute path)`,
        ),
      )
      // Where a naive extraction into scratch/omniai-artifact-*/backup would have put it.
      for (const where of [
        path.join(scratch, `escaped-${tag}.txt`),
        path.join(path.dirname(scratch), `escaped-${tag}.txt`),
        path.join(dir, `absolute-${tag}.txt`),
      ]) {
        await expect(fs.access(where)).rejects.toThrow()
      }
      expect(await fs.readdir(scratch)).toEqual([])
    },
  )

  it('control: the same artifact without the stray entry is extracted and drilled', async () => {
    const name = freshName()
    const a = standIn.addArtifact({
      name,
      runId: standIn.addWorkflowRun(NIGHTLY).id,
      files: { ...nightly.files, 'notes/readme.txt': Buffer.from('inside the folder\n') },
    })
    const { report } = await fromArtifacts('drill', name)
    expect(failed(report)).toEqual({})
    expect(report.artifact!.id).toBe(a.id)
  })

  it('a zip whose bytes differ from the digest GitHub recorded is not used', async () => {
    const name = freshName()
    standIn.addArtifact({
      name,
      runId: standIn.addWorkflowRun(NIGHTLY).id,
      files: nightly.files,
      digest: `sha256:${'0'.repeat(64)}`,
    })
    const { report } = await fromArtifacts('verify', name)
    expect(report.error).toMatch(
      /^artifact-name: artifact .* downloaded with another sha256 than GitHub recorded for it/,
    )
  })
})

describe('signed manifests travel with the artifact', () => {
  it('the backup job uploads the signature; verify-key then proves it, and refuses another key', async () => {
    const keys = generateKeyPair()
    const { dir, db, backups } = await demoWorkspace({ conversations: 6, auditRows: 5 })
    const name = freshName()
    const { report: b } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        'upload-artifact': 'true',
        'allow-unencrypted-artifact': 'true',
        'artifact-name': name,
        'signing-key': keys.privatePem,
        retention: 'off',
        ...token,
      },
      dir,
    )
    expect(b.error).toBeUndefined()
    const stored = standIn.artifacts.find((a) => a.id === b.artifact!.id)!
    const file = path.basename(b.backup!.path)
    expect(Object.keys(readZip(stored.zip)).sort()).toEqual(
      [file, `${file}.manifest.json`, `${file}.manifest.json.sig`].sort(),
    )
    const ok = await fromArtifacts('drill', name, { 'verify-key': keys.publicPem })
    expect(failed(ok.report)).toEqual({})
    expect(ok.report.checks.find((c) => c.name === 'signature')!.detail).toMatch(
      new RegExp(`^manifest signed by key ${keys.keyId} \\(verify-key\\)`),
    )
    const other = generateKeyPair()
    const refused = await fromArtifacts('drill', name, { 'verify-key': other.publicBase64 })
    expect(failed(refused.report).signature).toMatch(
      new RegExp(
        `^verify-key: ${file}'s manifest is signed by another key \\(${keys.keyId}\\), not by verify-key \\(${other.keyId}\\)`,
      ),
    )
    // Nothing of a refused backup was restored.
    expect(refused.report.checks.map((c) => c.name)).not.toContain('restore')
  })
})

it('the stand-in serves the crafted zips as they are (no library in between)', () => {
  const zip = buildZip({ '../x': Buffer.from('x') })
  expect(Object.keys(readZip(zip))).toEqual(['../x'])
})
