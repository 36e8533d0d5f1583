/**
 * Drives the real `@actions/artifact` v6 client (and plain REST calls) against the local GitHub
 * stand-in: upload → zip held by the stand-in → REST list → download of the same bytes, pagination,
 * expired artifacts, and the 403 / rate-limit fault modes.
 *
 * `@actions/github` reads GITHUB_API_URL once, when it is first imported, so the client is imported
 * dynamically after the stand-in's environment is in place, and one stand-in serves every client test.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildZip, readZip, startGitHubStandIn, type GitHubStandIn } from './github-standin.js'

type ArtifactModule = typeof import('@actions/artifact')
type GitHubModule = typeof import('@actions/github')

const fixtureDir = path.join(import.meta.dirname, 'data', 'github')
const fixture = <T>(name: string) =>
  JSON.parse(fs.readFileSync(path.join(fixtureDir, name), 'utf8')) as T
const DAY_MS = 24 * 60 * 60 * 1000
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex')

let gh: GitHubStandIn
let client: InstanceType<ArtifactModule['DefaultArtifactClient']>
let github: GitHubModule
const savedEnv = new Map<string, string | undefined>()
const tmpDirs: string[] = []

function tmpDir(prefix: string) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tmpDirs.push(d)
  return d
}

/** Every file under `dir`, keyed by its `/`-separated path relative to `dir`. */
function readTree(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {}
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const full = path.join(entry.parentPath, entry.name)
    out[path.relative(dir, full).split(path.sep).join('/')] = fs.readFileSync(full)
  }
  return out
}

function writeTree(dir: string, files: Record<string, Buffer>): string[] {
  return Object.entries(files).map(([rel, data]) => {
    const full = path.join(dir, rel)
    fs.mkdirSync(path.dirname(full), { recursive: true })
    fs.writeFileSync(full, data)
    return full
  })
}

function rest(standIn: GitHubStandIn, target: string, init: RequestInit = {}) {
  return fetch(`${standIn.url}${target}`, {
    ...init,
    headers: {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${standIn.token}`,
      'x-github-api-version': '2022-11-28',
      ...(init.headers as Record<string, string> | undefined),
    },
  })
}

const findBy = (runId: number) => ({
  token: gh.token,
  workflowRunId: runId,
  repositoryOwner: gh.owner,
  repositoryName: gh.repo,
})

/** Same file names and bytes (vitest's deep equality is far too slow on multi-MB Buffers). */
function expectSameFiles(actual: Record<string, Buffer>, expected: Record<string, Buffer>) {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
  for (const [name, data] of Object.entries(expected)) {
    expect(actual[name]!.equals(data), `contents of ${name}`).toBe(true)
  }
}

/** The error a rejected promise carries (octokit's RequestError has status and response). */
async function rejection(
  p: Promise<unknown>,
): Promise<
  Error & { status?: number; response?: { data: unknown; headers: Record<string, string> } }
> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the promise to reject')
}

beforeAll(async () => {
  gh = await startGitHubStandIn()
  for (const [k, v] of Object.entries(gh.env)) {
    savedEnv.set(k, process.env[k])
    process.env[k] = v
  }
  const artifact: ArtifactModule = await import('@actions/artifact')
  github = await import('@actions/github')
  client = new artifact.DefaultArtifactClient()
})

afterAll(async () => {
  await gh?.close()
  for (const [k, v] of savedEnv) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true })
})

describe('the real @actions/artifact client against the stand-in', () => {
  const backupFiles = {
    'db.sqlite': crypto.randomBytes(64 * 1024),
    'manifest.json': Buffer.from(JSON.stringify({ database: 'omniai', tables: 12 }, null, 2)),
    'logs/drill.log': Buffer.from('restore drill: ok\n'.repeat(200)),
  }
  let uploadedId = 0

  it('uploadArtifact succeeds and the stand-in holds the zip with those files, retention-days honoured', async () => {
    const root = path.join(gh.env.GITHUB_WORKSPACE!, 'backup')
    const files = writeTree(root, backupFiles)
    const before = gh.requests.length

    const res = await client.uploadArtifact('omniai-backup', files, root, { retentionDays: 5 })

    const stored = gh.artifacts.find((a) => a.name === 'omniai-backup')!
    expect(stored).toBeDefined()
    uploadedId = stored.id
    expect(res.id).toBe(stored.id)
    expect(stored.id).toBeGreaterThan(2 ** 31) // real artifact ids no longer fit in an int32
    expect(res.size).toBe(stored.zip.length)
    expect(res.digest).toBe(sha256(stored.zip))
    expect(stored.digest).toBe(`sha256:${sha256(stored.zip)}`)
    expect(stored.runId).toBe(gh.runId)
    expectSameFiles(readZip(stored.zip), backupFiles)
    // The client sends expires_at = now + retentionDays (local calendar days: allow a DST hour).
    const retention = stored.expiresAt.getTime() - stored.createdAt.getTime()
    expect(Math.abs(retention - 5 * DAY_MS)).toBeLessThan(60 * 60 * 1000)
    expect(stored.expired).toBe(false)

    const calls = gh.requests
      .slice(before)
      .map(
        (r) =>
          `${r.method} ${r.path.split('?')[0]}${r.path.includes('comp=') ? ` comp=${new URL(r.path, gh.url).searchParams.get('comp')}` : ''}`,
      )
    expect(calls).toEqual([
      'POST /twirp/github.actions.results.api.v1.ArtifactService/CreateArtifact',
      `PUT ${stored.blobPath} comp=block`,
      `PUT ${stored.blobPath} comp=blocklist`,
      'POST /twirp/github.actions.results.api.v1.ArtifactService/FinalizeArtifact',
    ])
  })

  it('the REST list shows it, shaped like the documented example, with expires_at = created_at + retention', async () => {
    const resp = await rest(
      gh,
      `/repos/${gh.owner}/${gh.repo}/actions/artifacts?name=omniai-backup&per_page=100`,
    )
    expect(resp.status).toBe(200)
    expect(resp.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(resp.headers.get('link')).toBeNull() // one page only
    const body = (await resp.json()) as {
      total_count: number
      artifacts: Record<string, unknown>[]
    }
    const example = fixture<{ artifacts: Record<string, unknown>[] }>('rest-list-artifacts.json')
    expect(Object.keys(body)).toEqual(Object.keys(example))
    expect(body.total_count).toBe(1)
    const a = body.artifacts[0]!
    expect(Object.keys(a)).toEqual(Object.keys(example.artifacts[0]!))
    expect(Object.keys(a.workflow_run as object)).toEqual(
      Object.keys(example.artifacts[0]!.workflow_run as object),
    )
    const stored = gh.artifacts.find((x) => x.id === uploadedId)!
    expect(a).toMatchObject({
      id: uploadedId,
      name: 'omniai-backup',
      size_in_bytes: stored.zip.length,
      expired: false,
      digest: stored.digest,
      url: `${gh.url}/repos/${gh.owner}/${gh.repo}/actions/artifacts/${uploadedId}`,
      archive_download_url: `${gh.url}/repos/${gh.owner}/${gh.repo}/actions/artifacts/${uploadedId}/zip`,
      workflow_run: { id: gh.runId, repository_id: gh.repositoryId, head_branch: 'main' },
    })
    expect(a.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    const retention = Date.parse(a.expires_at as string) - Date.parse(a.created_at as string)
    expect(Math.abs(retention - 5 * DAY_MS)).toBeLessThanOrEqual(60 * 60 * 1000 + 1000)

    const single = await rest(gh, `/repos/${gh.owner}/${gh.repo}/actions/artifacts/${uploadedId}`)
    expect(await single.json()).toEqual(a)

    // The client's own listings: REST (findBy) and the results service (Twirp).
    const viaRest = await client.listArtifacts({ findBy: findBy(gh.runId) })
    expect(viaRest.artifacts.map((x) => [x.id, x.name, x.size, x.digest])).toContainEqual([
      uploadedId,
      'omniai-backup',
      stored.zip.length,
      stored.digest,
    ])
    const viaTwirp = await client.listArtifacts()
    expect(viaTwirp.artifacts.find((x) => x.id === uploadedId)).toMatchObject({
      name: 'omniai-backup',
      size: stored.zip.length,
      digest: stored.digest,
    })
    expect((await client.getArtifact('omniai-backup')).artifact.id).toBe(uploadedId)
  })

  it('downloadArtifact with findBy gets the same bytes back', async () => {
    const stored = gh.artifacts.find((x) => x.id === uploadedId)!
    const dest = tmpDir('gh-standin-download-')
    const before = gh.requests.length

    const res = await client.downloadArtifact(uploadedId, {
      path: dest,
      findBy: findBy(gh.runId),
      expectedHash: stored.digest,
    })

    expect(res.digestMismatch).toBe(false)
    expectSameFiles(readTree(dest), backupFiles)
    const calls = gh.requests.slice(before).map((r) => `${r.method} ${r.path.split('?')[0]}`)
    expect(calls).toEqual([
      `GET /repos/${gh.owner}/${gh.repo}/actions/artifacts/${uploadedId}/zip`,
      `GET ${stored.blobPath}`,
    ])

    // The same hop by hand: 302 to a short-lived read SAS URL serving the exact zip bytes.
    const redirect = await rest(
      gh,
      `/repos/${gh.owner}/${gh.repo}/actions/artifacts/${uploadedId}/zip`,
      { redirect: 'manual' },
    )
    expect(redirect.status).toBe(302)
    const location = new URL(redirect.headers.get('location')!)
    expect(location.searchParams.get('sp')).toBe('r')
    expect(Date.parse(location.searchParams.get('se')!) - Date.now()).toBeLessThanOrEqual(60_000)
    const blob = await fetch(location)
    expect(blob.status).toBe(200)
    expect(blob.headers.get('content-type')).toBe('application/zip')
    expect(blob.headers.get('x-ms-blob-type')).toBe('BlockBlob')
    expect(blob.headers.get('content-disposition')).toBe('attachment; filename="omniai-backup.zip"')
    expect(Buffer.from(await blob.arrayBuffer()).equals(stored.zip)).toBe(true)
  })

  it('downloadArtifact without findBy goes through the results service (ListArtifacts, GetSignedArtifactURL)', async () => {
    const dest = tmpDir('gh-standin-download-internal-')
    const before = gh.requests.length
    const res = await client.downloadArtifact(uploadedId, { path: dest })
    expect(res.digestMismatch).toBe(false)
    expectSameFiles(readTree(dest), backupFiles)
    expect(gh.requests.slice(before).map((r) => r.path.split('?')[0]!.split('/').pop())).toEqual([
      'ListArtifacts',
      'GetSignedArtifactURL',
      path.posix.basename(gh.artifacts.find((x) => x.id === uploadedId)!.blobPath),
    ])
  })

  it('a second upload under the same name in the run is refused with the service’s 409', async () => {
    const root = path.join(gh.env.GITHUB_WORKSPACE!, 'again')
    const files = writeTree(root, { 'x.txt': Buffer.from('x') })
    const err = await rejection(client.uploadArtifact('omniai-backup', files, root))
    expect(err.message).toBe(
      'Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: an artifact with this name already exists on the workflow run',
    )
  })

  it('an upload larger than one 8 MiB block is staged in order and committed as one blob', async () => {
    const big = { 'big.bin': crypto.randomBytes(9 * 1024 * 1024), 'small.txt': Buffer.from('tail') }
    const root = path.join(gh.env.GITHUB_WORKSPACE!, 'big')
    const files = writeTree(root, big)
    const before = gh.requests.length
    const res = await client.uploadArtifact('big-backup', files, root, { compressionLevel: 0 })
    const stored = gh.artifacts.find((a) => a.id === res.id)!
    const blocks = gh.requests
      .slice(before)
      .filter((r) => r.path.includes('comp=block&') || r.path.endsWith('comp=block'))
    expect(blocks.length).toBeGreaterThanOrEqual(2)
    expect(stored.zip.length).toBe(res.size)
    expectSameFiles(readZip(stored.zip), big)
  })

  it('an artifact seeded from another run (zip built by the stand-in) downloads through the real client', async () => {
    const files = {
      'dump.sql': Buffer.from('CREATE TABLE t (id int);\n'),
      'nested/dir/über.txt': Buffer.from('ünïcödé'),
    }
    const seeded = gh.addArtifact({
      name: 'older-backup',
      runId: 4242,
      files,
      createdAt: new Date(Date.now() - 10 * DAY_MS),
      retentionDays: 30,
    })
    expect(seeded.expiresAt.getTime() - seeded.createdAt.getTime()).toBe(30 * DAY_MS)

    const found = await client.getArtifact('older-backup', { findBy: findBy(4242) })
    expect(found.artifact).toMatchObject({
      id: seeded.id,
      name: 'older-backup',
      size: seeded.zip.length,
      digest: seeded.digest,
    })
    const dest = tmpDir('gh-standin-seeded-')
    const res = await client.downloadArtifact(seeded.id, {
      path: dest,
      findBy: findBy(4242),
      expectedHash: seeded.digest,
    })
    expect(res.digestMismatch).toBe(false)
    expectSameFiles(readTree(dest), files)
    // The results service only lists the current run's artifacts.
    expect((await client.listArtifacts()).artifacts.map((a) => a.name)).not.toContain(
      'older-backup',
    )
  })

  it('expired artifacts stay in the REST list with expired: true, and their zip answers 410', async () => {
    const expired = gh.addArtifact({
      name: 'expired-backup',
      runId: 4243,
      expired: true,
      files: { 'old.sql': Buffer.from('--') },
    })
    expect(expired.expiresAt.getTime()).toBeLessThan(Date.now())

    const list = (await (
      await rest(gh, `/repos/${gh.owner}/${gh.repo}/actions/artifacts?name=expired-backup`)
    ).json()) as {
      artifacts: { id: number; expired: boolean; expires_at: string }[]
    }
    expect(list.artifacts).toHaveLength(1)
    expect(list.artifacts[0]).toMatchObject({ id: expired.id, expired: true })
    expect(Date.parse(list.artifacts[0]!.expires_at)).toBeLessThan(Date.now())

    const zip = await rest(
      gh,
      `/repos/${gh.owner}/${gh.repo}/actions/artifacts/${expired.id}/zip`,
      { redirect: 'manual' },
    )
    expect(zip.status).toBe(410)
    expect(await zip.json()).toEqual(fixture('rest-error-410-expired.json'))

    const err = await rejection(
      client.downloadArtifact(expired.id, {
        path: tmpDir('gh-standin-expired-'),
        findBy: findBy(4243),
      }),
    )
    expect(err.status).toBe(410)
    expect(err.message).toContain('Artifact has expired')

    // An artifact whose expiry passes while the server runs turns expired on its own.
    const soon = gh.addArtifact({
      name: 'short-lived',
      runId: 4243,
      files: { a: Buffer.from('a') },
      expiresAt: new Date(Date.now() + 50),
    })
    await new Promise((r) => setTimeout(r, 100))
    const after = (await (
      await rest(gh, `/repos/${gh.owner}/${gh.repo}/actions/artifacts/${soon.id}`)
    ).json()) as { expired: boolean }
    expect(after.expired).toBe(true)
  })

  it('lists 150 artifacts of a run in two pages of 100 through the real client', async () => {
    for (let i = 0; i < 150; i++)
      gh.addArtifact({
        name: `page-${i}`,
        runId: 5150,
        files: { [`f${i}.txt`]: Buffer.from(String(i)) },
      })
    const before = gh.requests.length
    const res = await client.listArtifacts({ findBy: findBy(5150) })
    expect(res.artifacts).toHaveLength(150)
    expect(new Set(res.artifacts.map((a) => a.name)).size).toBe(150)
    expect(gh.requests.slice(before).map((r) => r.path)).toEqual([
      `/repos/${gh.owner}/${gh.repo}/actions/runs/5150/artifacts?per_page=100&page=1`,
      `/repos/${gh.owner}/${gh.repo}/actions/runs/5150/artifacts?per_page=100&page=2`,
    ])
  })

  // @actions/artifact passes `request: { retries: 5 }` to Octokit; @octokit/plugin-retry's limiter
  // then retries every failed request (at once, as no retry-after was set), its doNotRetry [403]
  // notwithstanding. So a 403 reaches the caller only after 1 + 5 requests.
  it('403 without actions: read reaches the client as GitHub’s error after its 5 retries', async () => {
    gh.fail(/\/actions\/runs\/6000\/artifacts/, '403-permission')
    const before = gh.requests.length
    const err = await rejection(client.listArtifacts({ findBy: findBy(6000) }))
    expect(err.status).toBe(403)
    expect(err.message).toBe(
      'Resource not accessible by integration - https://docs.github.com/rest/actions/artifacts#list-workflow-run-artifacts',
    )
    expect(err.response!.data).toEqual({
      ...fixture<object>('rest-error-403-permission.json'),
      documentation_url:
        'https://docs.github.com/rest/actions/artifacts#list-workflow-run-artifacts',
    })
    expect(err.response!.headers['x-accepted-github-permissions']).toBe('actions=read')
    expect(gh.requests.length - before).toBe(6)
  })

  it('a transient 403 (times: 1) is absorbed by those retries', async () => {
    const seeded = gh.addArtifact({
      name: 'after-403',
      runId: 6003,
      files: { x: Buffer.from('x') },
    })
    gh.fail(/\/actions\/runs\/6003\/artifacts/, '403-permission', 1)
    const before = gh.requests.length
    expect(
      (await client.listArtifacts({ findBy: findBy(6003) })).artifacts.map((a) => a.id),
    ).toEqual([seeded.id])
    expect(gh.requests.length - before).toBe(2)
  })

  it('a 403 primary rate limit reaches the client with the rate-limit headers', async () => {
    gh.fail(/\/actions\/runs\/6001\/artifacts/, 'rate-limit')
    const before = gh.requests.length
    const err = await rejection(client.listArtifacts({ findBy: findBy(6001) }))
    expect(err.status).toBe(403)
    expect(err.message).toMatch(/^API rate limit exceeded for installation ID \d+\./)
    expect(err.response!.headers['x-ratelimit-remaining']).toBe('0')
    expect(Number(err.response!.headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000)
    expect(err.response!.headers['retry-after']).toBe('60')
    expect(gh.requests.length - before).toBe(6)
  })

  it('a 429 rate limit is retried by the client’s octokit retry plugin, then succeeds', async () => {
    const seeded = gh.addArtifact({
      name: 'after-429',
      runId: 6002,
      files: { x: Buffer.from('x') },
    })
    gh.fail(/\/actions\/runs\/6002\/artifacts/, 'rate-limit', 1, {
      status: 429,
      retryAfterSeconds: 1,
    })
    const before = gh.requests.length
    const res = await client.getArtifact('after-429', { findBy: findBy(6002) })
    expect(res.artifact.id).toBe(seeded.id)
    expect(gh.requests.slice(before).map((r) => r.path.split('?')[0])).toEqual([
      `/repos/${gh.owner}/${gh.repo}/actions/runs/6002/artifacts`,
      `/repos/${gh.owner}/${gh.repo}/actions/runs/6002/artifacts`,
    ])
  })
})

describe('REST shapes, pagination and faults (a fresh stand-in, plain fetch and Octokit)', () => {
  let s: GitHubStandIn
  const base = () => `/repos/${s.owner}/${s.repo}/actions/artifacts`

  beforeAll(async () => {
    s = await startGitHubStandIn({ owner: 'octo-org', repo: 'octo-docs' })
    for (let i = 0; i < 150; i++)
      s.addArtifact({
        name: `nightly-${i}`,
        runId: 100 + (i % 3),
        files: { 'n.txt': Buffer.from(String(i)) },
      })
  })
  afterAll(async () => {
    await s?.close()
  })

  it('paginates 150 artifacts as two pages of 100 with GitHub’s Link header', async () => {
    const p1 = await rest(s, `${base()}?per_page=100`)
    const b1 = (await p1.json()) as { total_count: number; artifacts: { id: number }[] }
    expect(b1.total_count).toBe(150)
    expect(b1.artifacts).toHaveLength(100)
    const canonical = `${s.url}/repositories/${s.repositoryId}/actions/artifacts`
    expect(p1.headers.get('link')).toBe(
      `<${canonical}?per_page=100&page=2>; rel="next", <${canonical}?per_page=100&page=2>; rel="last"`,
    )

    const next = /<([^>]+)>; rel="next"/.exec(p1.headers.get('link')!)![1]!
    const p2 = await rest(s, next.slice(s.url.length))
    const b2 = (await p2.json()) as { total_count: number; artifacts: { id: number }[] }
    expect(b2.total_count).toBe(150)
    expect(b2.artifacts).toHaveLength(50)
    expect(p2.headers.get('link')).toBe(
      `<${canonical}?per_page=100&page=1>; rel="prev", <${canonical}?per_page=100&page=1>; rel="first"`,
    )
    const ids = [...b1.artifacts, ...b2.artifacts].map((a) => a.id)
    expect(new Set(ids).size).toBe(150)
    expect(ids).toEqual([...ids].sort((a, b) => b - a)) // newest first

    // Query parameters such as the name filter are kept in the Link URLs.
    for (let i = 0; i < 3; i++) s.addArtifact({ name: 'same name', files: { x: Buffer.from([i]) } })
    const named = await rest(s, `${base()}?name=same+name&per_page=2`)
    expect(((await named.json()) as { total_count: number }).total_count).toBe(3)
    const namedNext = /<([^>]+)>; rel="next"/.exec(named.headers.get('link')!)![1]!
    expect(new URL(namedNext).searchParams.get('name')).toBe('same name')
    const namedPage2 = (await (await rest(s, namedNext.slice(s.url.length))).json()) as {
      artifacts: { name: string }[]
    }
    expect(namedPage2.artifacts.map((a) => a.name)).toEqual(['same name'])

    // Octokit's paginate follows the Link header to the /repositories/{id} form.
    const octokit = github.getOctokit(s.token, { baseUrl: s.url })
    const all = await octokit.paginate(octokit.rest.actions.listArtifactsForRepo, {
      owner: s.owner,
      repo: s.repo,
      per_page: 100,
    })
    expect(all).toHaveLength(153)
    const run = await octokit.paginate(octokit.rest.actions.listWorkflowRunArtifacts, {
      owner: s.owner,
      repo: s.repo,
      run_id: 101,
      per_page: 20,
    })
    expect(run).toHaveLength(50)
    expect(run.every((a) => a.workflow_run?.id === 101)).toBe(true)
  })

  it('403-permission answers with GitHub’s body and headers, `times` times', async () => {
    s.fail(/\/actions\/artifacts/, '403-permission', 2)
    for (let i = 0; i < 2; i++) {
      const r = await rest(s, `${base()}?per_page=1`)
      expect(r.status).toBe(403)
      expect(await r.json()).toEqual(fixture('rest-error-403-permission.json'))
      expect(r.headers.get('x-accepted-github-permissions')).toBe('actions=read')
      expect(r.headers.get('x-ratelimit-remaining')).not.toBe('0') // not a rate limit
    }
    expect((await rest(s, `${base()}?per_page=1`)).status).toBe(200)
  })

  it('rate-limit answers 403 (default) or 429 with x-ratelimit-remaining 0, x-ratelimit-reset and retry-after', async () => {
    s.fail(/\/actions\/artifacts\/\d+$/, 'rate-limit', 1)
    const id = s.artifacts[0]!.id
    const r403 = await rest(s, `${base()}/${id}`)
    expect(r403.status).toBe(403)
    expect(r403.headers.get('x-ratelimit-remaining')).toBe('0')
    expect(r403.headers.get('x-ratelimit-used')).toBe(r403.headers.get('x-ratelimit-limit'))
    const reset = Number(r403.headers.get('x-ratelimit-reset'))
    expect(reset).toBeGreaterThan(Date.now() / 1000)
    expect(reset).toBeLessThanOrEqual(Date.now() / 1000 + 61)
    expect(r403.headers.get('retry-after')).toBe('60')
    expect(await r403.json()).toEqual(fixture('rest-error-rate-limit.json'))

    s.fail(/\/actions\/artifacts\/\d+$/, 'rate-limit', 1, { status: 429, retryAfterSeconds: 7 })
    const r429 = await rest(s, `${base()}/${id}`)
    expect(r429.status).toBe(429)
    expect(r429.headers.get('retry-after')).toBe('7')
    expect(await r429.json()).toMatchObject({
      message: expect.stringMatching(/^API rate limit exceeded/),
      status: '429',
    })

    expect((await rest(s, `${base()}/${id}`)).status).toBe(200)
  })

  it('a fault without `times` keeps failing', async () => {
    s.fail(/\/actions\/runs\/999\//, 'rate-limit')
    for (let i = 0; i < 3; i++)
      expect((await rest(s, `/repos/${s.owner}/${s.repo}/actions/runs/999/artifacts`)).status).toBe(
        403,
      )
  })

  it('answers like GitHub for a private repository: anonymous 404, bad token 401, other repository 404', async () => {
    const anon = await fetch(`${s.url}${base()}`)
    expect(anon.status).toBe(404)
    expect(await anon.json()).toMatchObject({ message: 'Not Found', status: '404' })
    const bad = await rest(s, base(), { headers: { authorization: 'token nope' } })
    expect(bad.status).toBe(401)
    expect(await bad.json()).toEqual(fixture('rest-error-401.json'))
    expect((await rest(s, `/repos/${s.owner}/elsewhere/actions/artifacts`)).status).toBe(404)
    expect((await rest(s, `${base()}/1`)).status).toBe(404)
  })

  it('the results service wants the runtime token, and Twirp-style errors', async () => {
    const twirp = (method: string, auth: string) =>
      fetch(`${s.url}/twirp/github.actions.results.api.v1.ArtifactService/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body: '{}',
      })
    const noAuth = await twirp('ListArtifacts', 'Bearer not-the-token')
    expect(noAuth.status).toBe(401)
    expect(await noAuth.json()).toMatchObject({ code: 'unauthenticated' })
    const unknown = await twirp('NoSuchMethod', `Bearer ${s.env.ACTIONS_RUNTIME_TOKEN}`)
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({
      code: 'bad_route',
      msg: 'no handler for path "/twirp/github.actions.results.api.v1.ArtifactService/NoSuchMethod"',
    })
  })

  it('blob URLs need the SAS signature the service issued, and answer in Azure’s XML error format', async () => {
    const a = s.artifacts[0]!
    const ok = await rest(s, `${base()}/${a.id}/zip`, { redirect: 'manual' })
    const signed = new URL(ok.headers.get('location')!)
    signed.searchParams.set('sig', 'forged')
    const forged = await fetch(signed)
    expect(forged.status).toBe(403)
    expect(forged.headers.get('x-ms-error-code')).toBe('AuthenticationFailed')
    expect(await forged.text()).toMatch(
      /<Error><Code>AuthenticationFailed<\/Code><Message>Server failed to authenticate/,
    )
    // A read-only SAS cannot write.
    const write = await fetch(
      `${ok.headers.get('location')!}&comp=block&blockid=${Buffer.from('b').toString('base64')}`,
      { method: 'PUT', body: 'x' },
    )
    expect(write.status).toBe(403)
    expect(write.headers.get('x-ms-error-code')).toBe('AuthorizationPermissionMismatch')
  })

  it('buildZip and readZip round-trip', () => {
    const files = {
      'a.txt': Buffer.from('a'),
      'd/e/f.bin': crypto.randomBytes(1000),
      empty: Buffer.alloc(0),
    }
    expect(readZip(buildZip(files))).toEqual(files)
  })
})
