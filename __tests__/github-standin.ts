/**
 * A local stand-in for the GitHub services that `@actions/artifact` v6 and plain REST calls talk to,
 * for tests on a machine without internet. One node:http server on 127.0.0.1 (random port) answers:
 *
 * 1. The Actions results service (Twirp, JSON) at `/twirp/github.actions.results.api.v1.ArtifactService/*`:
 *    CreateArtifact, FinalizeArtifact, ListArtifacts, GetSignedArtifactURL, DeleteArtifact.
 *    Fields use the proto names (snake_case) as the real service does; requests are read in either
 *    proto or JSON (lowerCamel) naming, as protobuf-ts accepts both.
 * 2. Azure Blob storage, as `@azure/storage-blob`'s BlockBlobClient uses it: Put Block
 *    (`PUT ?comp=block&blockid=`), Put Block List (`PUT ?comp=blocklist`, XML body), Put Blob, and
 *    Get Blob. SAS-style URLs (`sig`, `sp`, `se`) are checked like the real service checks them.
 * 3. The REST API (`GITHUB_API_URL`): list artifacts for a repository / for a workflow run (paginated,
 *    `Link` header), get an artifact, download an artifact (302 to the blob), delete an artifact,
 *    under both `/repos/{owner}/{repo}` and `/repositories/{id}` (the form GitHub's `Link` URLs use).
 * 4. The REST API's issues: list a repository's issues (labels, state, sort, direction; paginated,
 *    pull requests included as GitHub includes them), create, get and update (close, reopen) an issue,
 *    list an issue's comments (oldest first, paginated) and create a comment. The token acts as
 *    `github-actions[bot]`; issues and comments by other users can be seeded. A repository can have
 *    issues disabled (410), and GitHub's silent dropping of labels can be imitated.
 * 5. The cache service v2 that `@actions/cache` v6 uses (Twirp, JSON) at
 *    `/twirp/github.actions.results.api.v1.CacheService/*`: GetCacheEntryDownloadURL (exact key, then
 *    each restore key as a prefix, newest entry first, within the same `version`), CreateCacheEntry
 *    (entries are immutable per key + version) and FinalizeCacheEntryUpload. The archive goes to and
 *    comes from the same blob store as artifacts.
 * 6. Fault modes per request path (and method): a 403 for a token without the permission
 *    (`actions: read`, `issues: read` / `issues: write`), and rate limiting.
 * 7. Tokens and what they may do: `token` acts as github-actions[bot] with every permission;
 *    `permissions` can take some away and `addToken` makes others (an app's bot, a person), and
 *    every REST route answers GitHub's 403 when the token lacks its permission. Get a repository
 *    (`default_branch`) and get a workflow run (`status`, `conclusion`, `head_branch`); this job's
 *    run is in progress. Comments get their author and times from the server; editing one
 *    (`PATCH …/issues/comments/{id}`) moves its `updated_at`.
 *
 * Response bodies and header sets come from the templates in `__tests__/data/github/` (see its
 * README for where each one comes from); ids, names, timestamps and URLs are filled in per request.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface StoredArtifact {
  /** REST `id` / Twirp `database_id`. */
  id: number
  name: string
  /** The workflow run (REST `workflow_run.id`, `GITHUB_RUN_ID`) the artifact belongs to. */
  runId: number
  /** The results service's ids for the run and job (the `Actions.Results:<run>:<job>` scope). */
  workflowRunBackendId: string
  workflowJobRunBackendId: string
  createdAt: Date
  updatedAt: Date
  /** `created_at` + retention days (from the client's `expires_at`, else the 90-day default). */
  expiresAt: Date
  /** Set when seeded as expired; kept up to date with `expiresAt` whenever the server reads it. */
  expired: boolean
  /** The committed blob: the zip the client uploaded (or the one built for a seed). */
  zip: Buffer
  /** `sha256:<hex>` of `zip`. */
  digest: string
  headBranch: string
  headSha: string
  /** Path of the blob on this server (`/<account>/actions-results/...zip`). */
  blobPath: string
}

/** A cache entry (`@actions/cache` v2 service); `finalized` once FinalizeCacheEntryUpload succeeded. */
export interface StoredCacheEntry {
  id: number
  key: string
  /** The client's hash of the paths and compression method; restores only match the same version. */
  version: string
  sizeBytes: number
  createdAt: Date
  finalized: boolean
  blobPath: string
}

/**
 * `server-error`: a 5xx (502 unless `status` says) with GitHub's `{"message": "Server Error"}`
 * body (not from a recording); `reset`: the connection is dropped before any response.
 */
export type FaultKind = '403-permission' | 'rate-limit' | 'server-error' | 'reset'

export interface FaultOptions {
  /** Only requests with this method fail (default: any). */
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
  /**
   * HTTP status for 'rate-limit': GitHub documents 403 or 429 for a primary rate limit. Default 403.
   * For 'server-error': default 502.
   */
  status?: 403 | 429 | 500 | 502 | 503 | 504
  /** Seconds until `x-ratelimit-reset`, also sent as `retry-after`. Default 60. */
  retryAfterSeconds?: number
}

export interface AddArtifactInput extends Partial<StoredArtifact> {
  name: string
  files: Record<string, Buffer>
  /** Used for `expiresAt` when that is not given. Default 90. */
  retentionDays?: number
}

/** Who wrote an issue or comment. */
export interface StandInUser {
  login: string
  id: number
  type: 'User' | 'Bot'
}

/** A repository permission as a workflow's `permissions:` (or an app installation) grants it. */
export type PermissionLevel = 'none' | 'read' | 'write'

/** What a token may do. Routes check these as GitHub does: 403 when the level is too low. */
export interface TokenPermissions {
  actions: PermissionLevel
  issues: PermissionLevel
  metadata: PermissionLevel
}

/** A workflow run, as `GET /repos/{owner}/{repo}/actions/runs/{run_id}` shows it. */
export interface StoredWorkflowRun {
  id: number
  name: string
  /** `.github/workflows/<file>@<ref>`, as GitHub reports it. */
  path: string
  event: string
  headBranch: string
  headSha: string
  /** The repository whose code ran: this one, or a fork (a fork's pull request). */
  headRepository: { id: number; fullName: string }
  status: 'requested' | 'queued' | 'pending' | 'waiting' | 'in_progress' | 'completed'
  /** null until the run completes. */
  conclusion:
    | 'success'
    | 'failure'
    | 'cancelled'
    | 'skipped'
    | 'timed_out'
    | 'neutral'
    | 'action_required'
    | 'stale'
    | 'startup_failure'
    | null
  runNumber: number
  runAttempt: number
  createdAt: Date
  /** When the latest attempt started (`run_started_at`): later than `createdAt` after a re-run. */
  runStartedAt: Date
  /** Last change; for a completed run, when it ended. */
  updatedAt: Date
}

export type AuthorAssociation =
  | 'OWNER'
  | 'MEMBER'
  | 'COLLABORATOR'
  | 'CONTRIBUTOR'
  | 'FIRST_TIME_CONTRIBUTOR'
  | 'FIRST_TIMER'
  | 'NONE'

export interface StoredComment {
  id: number
  body: string
  user: StandInUser
  authorAssociation: AuthorAssociation
  createdAt: Date
  updatedAt: Date
}

/** An issue, or a pull request (the issues endpoints list both, and number them together). */
export interface StoredIssue {
  id: number
  number: number
  title: string
  body: string | null
  state: 'open' | 'closed'
  stateReason: 'completed' | 'not_planned' | 'reopened' | null
  /** Label names, as given. */
  labels: string[]
  pullRequest: boolean
  user: StandInUser
  authorAssociation: AuthorAssociation
  createdAt: Date
  updatedAt: Date
  closedAt: Date | null
  closedBy: StandInUser | null
  /** Oldest first. */
  comments: StoredComment[]
}

export interface AddIssueInput extends Partial<Omit<StoredIssue, 'comments'>> {
  title: string
  comments?: AddCommentInput[]
}

export interface AddCommentInput extends Partial<StoredComment> {
  body: string
}

export interface GitHubStandIn {
  /** Base URL, for GITHUB_API_URL and ACTIONS_RESULTS_URL. */
  url: string
  /** Everything the artifact client reads from the environment. */
  env: Record<string, string>
  /** A fake GITHUB_TOKEN that the REST routes accept. */
  token: string
  owner: string
  repo: string
  repositoryId: number
  runId: number
  /** Finalized artifacts (uploaded through the client or seeded), oldest first. */
  artifacts: StoredArtifact[]
  addArtifact(a: AddArtifactInput): StoredArtifact
  /** Cache entries (created through `@actions/cache`), oldest first; unfinalized ones included. */
  caches: StoredCacheEntry[]
  /** The identity the token acts as (`github-actions[bot]`, as for GITHUB_TOKEN). */
  actor: StandInUser
  /** Issues and pull requests, in the order they were created. */
  issues: StoredIssue[]
  addIssue(i: AddIssueInput): StoredIssue
  addComment(issueNumber: number, c: AddCommentInput): StoredComment
  /**
   * `disabled`: issues are turned off in the repository's settings (every issues route answers 410).
   * `dropLabels`: GitHub silently drops the labels of a new issue (a token without push access).
   */
  issueSettings: { disabled: boolean; dropLabels: boolean }
  /** `default_branch` of `GET /repos/{owner}/{repo}`. Default `main`. */
  repoSettings: { defaultBranch: string }
  /**
   * What `token` may do; everything by default. Take a permission away (`permissions.actions =
   * 'none'`) to get GitHub's 403 for a job without it.
   */
  permissions: TokenPermissions
  /** Another token that acts as `user` (a GitHub App's bot, a person's PAT), with its own permissions. */
  addToken(user: StandInUser, permissions?: Partial<TokenPermissions>): string
  /** Workflow runs; this run (`runId`) is in progress on the default branch. */
  workflowRuns: StoredWorkflowRun[]
  addWorkflowRun(r: Partial<StoredWorkflowRun>): StoredWorkflowRun
  /** Make requests whose request-target (path + query) matches `path` fail; `times` defaults to every time. */
  fail(path: RegExp, kind: FaultKind, times?: number, opts?: FaultOptions): void
  /** Every request received, in order; `path` is the request-target (path + query). */
  requests: { method: string; path: string }[]
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const fixtureDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'data', 'github')

function fixture<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir, name), 'utf8')) as T
}

type RestArtifactJson = Record<string, unknown> & { workflow_run: Record<string, unknown> }
type RestError = { message: string; documentation_url: string; status: string }
type RestUserJson = Record<string, unknown>
type RestIssueJson = Record<string, unknown> & {
  user: RestUserJson
  labels: Record<string, unknown>[]
}
type RestCommentJson = Record<string, unknown> & { user: RestUserJson }
type RestValidationError = RestError & { errors: Record<string, unknown>[] }
type TwirpError = { status: number; body: { code: string; msg: string } }
type AzureError = { status: number; message: string }

const templates = {
  restArtifact: fixture<RestArtifactJson>('rest-get-artifact.json'),
  restList: fixture<{ total_count: number; artifacts: RestArtifactJson[] }>(
    'rest-list-artifacts.json',
  ),
  restHeaders: fixture<Record<string, string>>('rest-response-headers.json'),
  rest401: fixture<RestError>('rest-error-401.json'),
  rest403: fixture<RestError>('rest-error-403-permission.json'),
  rest404: fixture<RestError>('rest-error-404.json'),
  rest410: fixture<RestError>('rest-error-410-expired.json'),
  restRateLimit: fixture<RestError>('rest-error-rate-limit.json'),
  restIssue: fixture<RestIssueJson>('rest-get-issue.json'),
  restIssueList: fixture<RestIssueJson[]>('rest-list-issues.json'),
  restComment: fixture<RestCommentJson>('rest-create-issue-comment.json'),
  restCommentList: fixture<RestCommentJson[]>('rest-list-issue-comments.json'),
  rest410Issues: fixture<RestError>('rest-error-410-issues-disabled.json'),
  rest422: fixture<RestValidationError>('rest-error-422-validation.json'),
  restRepository: fixture<Record<string, unknown>>('rest-get-repository.json'),
  restWorkflowRun: fixture<Record<string, unknown>>('rest-get-workflow-run.json'),
  twirpCreate: fixture<Record<string, unknown>>('twirp-create-artifact.json'),
  twirpFinalize: fixture<Record<string, unknown>>('twirp-finalize-artifact.json'),
  twirpList: fixture<{ artifacts: Record<string, unknown>[] }>('twirp-list-artifacts.json'),
  twirpSignedUrl: fixture<Record<string, unknown>>('twirp-get-signed-artifact-url.json'),
  twirpDelete: fixture<Record<string, unknown>>('twirp-delete-artifact.json'),
  twirpCreateCache: fixture<Record<string, unknown>>('twirp-create-cache-entry.json'),
  twirpFinalizeCache: fixture<Record<string, unknown>>('twirp-finalize-cache-entry-upload.json'),
  twirpCacheUrl: fixture<Record<string, unknown>>('twirp-get-cache-entry-download-url.json'),
  twirpErrors: fixture<Record<string, TwirpError>>('twirp-errors.json'),
  azureStageBlock: fixture<Record<string, string>>('azure-stage-block-headers.json'),
  azureCommit: fixture<Record<string, string>>('azure-commit-block-list-headers.json'),
  azureGetBlob: fixture<Record<string, string>>('azure-get-blob-headers.json'),
  azureErrors: fixture<Record<string, AzureError>>('azure-errors.json'),
}

/** Fill a template: every key the template has must be supplied, and only those keys are sent. */
function fill<T extends Record<string, unknown>>(template: T, values: Record<string, unknown>): T {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(template)) {
    if (!(key in values)) throw new Error(`stand-in: no value for template field ${key}`)
    out[key] = values[key]
  }
  return out as T
}

// ---------------------------------------------------------------------------------------------
// Zip (sync, so that addArtifact can stay synchronous; read side is used to check uploads)
// ---------------------------------------------------------------------------------------------

function dosDateTime(d: Date): { time: number; date: number } {
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  }
}

/** Build a zip (deflate, UTF-8 names) from `files`; keys are the entry paths, `/`-separated. */
export function buildZip(files: Record<string, Buffer>, mtime = new Date()): Buffer {
  const { time, date } = dosDateTime(mtime)
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const [entryName, data] of Object.entries(files)) {
    const name = Buffer.from(entryName.replace(/\\/g, '/'), 'utf8')
    const compressed = zlib.deflateRawSync(data)
    const crc = zlib.crc32(data)
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4) // version needed
    local.writeUInt16LE(0x0800, 6) // UTF-8 names
    local.writeUInt16LE(8, 8) // deflate
    local.writeUInt16LE(time, 10)
    local.writeUInt16LE(date, 12)
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(compressed.length, 18)
    local.writeUInt32LE(data.length, 22)
    local.writeUInt16LE(name.length, 26)
    local.writeUInt16LE(0, 28)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE(0x031e, 4) // made by: unix, 3.0
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(0x0800, 8)
    central.writeUInt16LE(8, 10)
    central.writeUInt16LE(time, 12)
    central.writeUInt16LE(date, 14)
    central.writeUInt32LE(crc, 16)
    central.writeUInt32LE(compressed.length, 20)
    central.writeUInt32LE(data.length, 24)
    central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38) // external attrs: regular file, 0644
    central.writeUInt32LE(offset, 42)
    locals.push(local, name, compressed)
    centrals.push(central, name)
    offset += local.length + name.length + compressed.length
  }
  const cd = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(Object.keys(files).length, 8)
  end.writeUInt16LE(Object.keys(files).length, 10)
  end.writeUInt32LE(cd.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, cd, end])
}

/** Read a zip's files (directories skipped) through its central directory. No zip64. */
export function readZip(zip: Buffer): Record<string, Buffer> {
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i
      break
    }
  }
  if (eocd < 0) throw new Error('not a zip: no end of central directory record')
  const count = zip.readUInt16LE(eocd + 10)
  let p = zip.readUInt32LE(eocd + 16)
  const out: Record<string, Buffer> = {}
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory entry')
    const method = zip.readUInt16LE(p + 10)
    const crc = zip.readUInt32LE(p + 16)
    const csize = zip.readUInt32LE(p + 20)
    const usize = zip.readUInt32LE(p + 24)
    const nameLen = zip.readUInt16LE(p + 28)
    const extraLen = zip.readUInt16LE(p + 30)
    const commentLen = zip.readUInt16LE(p + 32)
    const localOffset = zip.readUInt32LE(p + 42)
    const name = zip.subarray(p + 46, p + 46 + nameLen).toString('utf8')
    p += 46 + nameLen + extraLen + commentLen
    if ([csize, usize, localOffset].includes(0xffffffff)) throw new Error('zip64 is not supported')
    if (name.endsWith('/')) continue
    const dataStart =
      localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28)
    const raw = zip.subarray(dataStart, dataStart + csize)
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? zlib.inflateRawSync(raw) : null
    if (!data) throw new Error(`unsupported compression method ${method} for ${name}`)
    if (data.length !== usize || zlib.crc32(data) !== crc)
      throw new Error(`corrupt zip entry ${name}`)
    out[name] = data
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const TWIRP_PREFIX = '/twirp/github.actions.results.api.v1.ArtifactService/'
const CACHE_TWIRP_PREFIX = '/twirp/github.actions.results.api.v1.CacheService/'
const BLOB_ACCOUNT = 'productionresultssa0'
const BLOB_CONTAINER = 'actions-results'
const AZURE_SERVICE_VERSION = '2025-05-05'
const DAY_MS = 24 * 60 * 60 * 1000

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex')
const md5b64 = (b: Buffer) => crypto.createHash('md5').update(b).digest('base64')
const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url')
/** GitHub's REST timestamps: ISO 8601 without milliseconds. */
const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z')
const etagFor = () => `"0x8D${crypto.randomBytes(7).toString('hex').toUpperCase()}"`
const nodeIdFor = (id: number) => Buffer.from(`08:Artifact${id}`).toString('base64')

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** A JWT shaped like ACTIONS_RUNTIME_TOKEN; the client only decodes its payload (`scp`). */
function runtimeToken(runBackendId: string, jobBackendId: string): string {
  const now = Math.floor(Date.now() / 1000)
  const header = { typ: 'JWT', alg: 'RS256', x5t: b64url(crypto.randomBytes(20)) }
  const payload = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: `Actions.ExampleScope Actions.Results:${runBackendId}:${jobBackendId}`,
    IdentityTypeClaim: 'System:ServiceIdentity',
    iss: 'vstoken.actions.githubusercontent.com',
    aud: 'vstoken.actions.githubusercontent.com',
    nbf: now - 60,
    exp: now + 6 * 60 * 60,
  }
  return [
    b64url(JSON.stringify(header)),
    b64url(JSON.stringify(payload)),
    b64url(crypto.randomBytes(64)),
  ].join('.')
}

interface Pending {
  id: number
  name: string
  runId: number
  workflowRunBackendId: string
  workflowJobRunBackendId: string
  createdAt: Date
  expiresAt: Date
  blobPath: string
}

interface Blob {
  data: Buffer
  contentType: string
  etag: string
  lastModified: Date
  createdAt: Date
}

interface Fault {
  path: RegExp
  kind: FaultKind
  remaining: number
  opts: FaultOptions
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`)
  }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

export async function startGitHubStandIn(
  opts: { owner?: string; repo?: string } = {},
): Promise<GitHubStandIn> {
  const owner = opts.owner ?? 'omniai'
  const repo = opts.repo ?? 'omniai-backups'
  const repositoryId = 700_000_000 + crypto.randomInt(100_000_000)
  const runId = 10_000_000_000 + crypto.randomInt(1_000_000_000)
  const token = `ghs_${crypto.randomBytes(18).toString('base64url')}`
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-standin-workspace-'))

  // Backend ids (the results service's UUIDs) per workflow run id.
  const runs = new Map<number, { runBackendId: string; jobBackendId: string; headSha: string }>()
  const runFor = (id: number) => {
    let r = runs.get(id)
    if (!r) {
      r = {
        runBackendId: crypto.randomUUID(),
        jobBackendId: crypto.randomUUID(),
        headSha: sha256(String(id)).slice(0, 40),
      }
      runs.set(id, r)
    }
    return r
  }
  const ownRun = runFor(runId)
  const actionsToken = runtimeToken(ownRun.runBackendId, ownRun.jobBackendId)

  const artifacts: StoredArtifact[] = []
  const pending: Pending[] = []
  const blobs = new Map<string, Blob>()
  const uncommitted = new Map<string, Map<string, Buffer>>()
  const sigs = new Map<string, string>() // blob path -> SAS signature issued for it
  const faults: Fault[] = []
  const requests: { method: string; path: string }[] = []
  let nextId = 3_400_000_000 + crypto.randomInt(1_000_000)

  let baseUrl = ''

  const refreshExpiry = (a: StoredArtifact) => {
    if (a.expiresAt.getTime() <= Date.now()) a.expired = true
    return a
  }
  const live = () => artifacts.map(refreshExpiry)

  const blobPathFor = (runBackendId: string, jobBackendId: string, name: string) =>
    `/${BLOB_ACCOUNT}/${BLOB_CONTAINER}/${runBackendId}/workflow-job-run-${jobBackendId}/artifacts/${sha256(`${name}:${crypto.randomUUID()}`)}.zip`

  /** A SAS-style URL to `blobPath` on this server, as the results service signs them. */
  function signedUrl(
    blobPath: string,
    permissions: string,
    ttlMs: number,
    fileName?: string,
  ): string {
    let sig = sigs.get(blobPath)
    if (!sig) {
      sig = crypto.randomBytes(32).toString('base64')
      sigs.set(blobPath, sig)
    }
    const now = Date.now()
    const q = new URLSearchParams()
    if (fileName) q.set('rscd', `attachment; filename="${fileName}"`)
    q.set('se', isoSeconds(new Date(now + ttlMs)))
    q.set('sig', sig)
    q.set('sp', permissions)
    q.set('spr', 'https')
    q.set('sr', 'b')
    q.set('st', isoSeconds(new Date(now - 5 * 60 * 1000)))
    q.set('sv', AZURE_SERVICE_VERSION)
    return `${baseUrl}${blobPath}?${q.toString()}`
  }

  function addArtifact(a: AddArtifactInput): StoredArtifact {
    const id = a.id ?? nextId++
    if (a.id !== undefined && a.id >= nextId) nextId = a.id + 1
    const retentionDays = a.retentionDays ?? 90
    const createdAt =
      a.createdAt ?? (a.expired ? new Date(Date.now() - (retentionDays + 1) * DAY_MS) : new Date())
    const expiresAt = a.expiresAt ?? new Date(createdAt.getTime() + retentionDays * DAY_MS)
    const artifactRunId = a.runId ?? runId
    const run = runFor(artifactRunId)
    const zip = a.zip ?? buildZip(a.files, createdAt)
    const blobPath = a.blobPath ?? blobPathFor(run.runBackendId, run.jobBackendId, a.name)
    blobs.set(blobPath, {
      data: zip,
      contentType: 'application/zip',
      etag: etagFor(),
      lastModified: createdAt,
      createdAt,
    })
    const stored: StoredArtifact = {
      id,
      name: a.name,
      runId: artifactRunId,
      workflowRunBackendId: a.workflowRunBackendId ?? run.runBackendId,
      workflowJobRunBackendId: a.workflowJobRunBackendId ?? run.jobBackendId,
      createdAt,
      updatedAt: a.updatedAt ?? createdAt,
      expiresAt,
      expired: a.expired ?? false,
      zip,
      digest: a.digest ?? `sha256:${sha256(zip)}`,
      headBranch: a.headBranch ?? runOf(artifactRunId)?.headBranch ?? 'main',
      headSha: a.headSha ?? run.headSha,
      blobPath,
    }
    artifacts.push(refreshExpiry(stored))
    return stored
  }

  // ------------------------------------------------------------------ REST

  function restArtifact(a: StoredArtifact): RestArtifactJson {
    const apiBase = `${baseUrl}/repos/${owner}/${repo}/actions/artifacts/${a.id}`
    return fill(templates.restArtifact, {
      id: a.id,
      node_id: nodeIdFor(a.id),
      name: a.name,
      size_in_bytes: a.zip.length,
      url: apiBase,
      archive_download_url: `${apiBase}/zip`,
      expired: a.expired,
      created_at: isoSeconds(a.createdAt),
      expires_at: isoSeconds(a.expiresAt),
      updated_at: isoSeconds(a.updatedAt),
      digest: a.digest,
      workflow_run: fill(templates.restArtifact.workflow_run, {
        id: a.runId,
        repository_id: repositoryId,
        // A fork's pull request runs the fork's code: GitHub names the fork here.
        head_repository_id: runOf(a.runId)?.headRepository.id ?? repositoryId,
        head_branch: a.headBranch,
        head_sha: a.headSha,
      }),
    })
  }

  const docs = {
    listRepo: 'https://docs.github.com/rest/actions/artifacts#list-artifacts-for-a-repository',
    listRun: 'https://docs.github.com/rest/actions/artifacts#list-workflow-run-artifacts',
    get: 'https://docs.github.com/rest/actions/artifacts#get-an-artifact',
    download: 'https://docs.github.com/rest/actions/artifacts#download-an-artifact',
    delete: 'https://docs.github.com/rest/actions/artifacts#delete-an-artifact',
    getRun: 'https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run',
  }

  /** GitHub puts the endpoint's documentation URL in its error bodies. */
  function docFor(method: string, actionsPath: string): string {
    if (/^\/actions\/runs\/\d+\/?$/.test(actionsPath)) return docs.getRun
    if (/^\/actions\/runs\/\d+\/artifacts\/?$/.test(actionsPath)) return docs.listRun
    if (/^\/actions\/artifacts\/?$/.test(actionsPath)) return docs.listRepo
    if (/^\/actions\/artifacts\/\d+\/[^/]+\/?$/.test(actionsPath)) return docs.download
    return method === 'DELETE' ? docs.delete : docs.get
  }

  const restError = (
    template: RestError,
    status: number,
    docUrl?: string,
    headers: Record<string, string> = {},
    message = template.message,
  ) =>
    new HttpError(
      status,
      fill(template, {
        message,
        documentation_url: docUrl ?? template.documentation_url,
        status: String(status),
      }),
      headers,
    )

  let rateUsed = 0
  function restHeaders(permission?: string): Record<string, string> {
    rateUsed++
    const limit = Number(templates.restHeaders['x-ratelimit-limit'])
    return {
      ...templates.restHeaders,
      ...(permission ? { 'x-accepted-github-permissions': permission } : {}),
      'x-ratelimit-remaining': String(Math.max(0, limit - rateUsed)),
      'x-ratelimit-used': String(rateUsed),
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-github-request-id': crypto
        .randomBytes(8)
        .toString('hex')
        .toUpperCase()
        .replace(/(.{4})(.{4})(.{4})(.{4})/, '$1:$2:$3:$4'),
    }
  }

  /** One page of `list` and GitHub's `Link` header for it (query parameters kept). */
  function pageOf<T>(list: T[], url: URL, canonicalPath: string): { slice: T[]; link: string } {
    const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30) || 30))
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1)
    const pages = Math.max(1, Math.ceil(list.length / perPage))
    const slice = list.slice((page - 1) * perPage, page * perPage)
    const link = (p: number, rel: string) => {
      const q = new URLSearchParams(url.searchParams)
      q.set('per_page', String(perPage))
      q.set('page', String(p))
      return `<${baseUrl}${canonicalPath}?${q.toString()}>; rel="${rel}"`
    }
    const links: string[] = []
    if (page > 1) links.push(link(Math.min(page - 1, pages), 'prev'))
    if (page < pages) links.push(link(page + 1, 'next'), link(pages, 'last'))
    if (page > 1) links.push(link(1, 'first'))
    return { slice, link: links.join(', ') }
  }

  function paginate(list: StoredArtifact[], url: URL, canonicalPath: string) {
    const { slice, link } = pageOf(list, url, canonicalPath)
    const body = fill(templates.restList, {
      total_count: list.length,
      artifacts: slice.map(restArtifact),
    })
    return { body, link }
  }

  /**
   * GitHub's answers before any route: a private repository answers 404 to anonymous requests, 401
   * to a wrong token, 404 for another repository, 403 to a token without the route's permission
   * (`permission` is what `x-accepted-github-permissions` says, e.g. `issues=write`). `m` is
   * [, owner or id, repo or '', rest]. Returns who the token acts as.
   */
  function authorize(
    req: http.IncomingMessage,
    m: RegExpExecArray,
    doc: string,
    permission?: string,
  ): StandInUser {
    const sameRepo = m[2]
      ? m[1]!.toLowerCase() === owner.toLowerCase() && m[2]!.toLowerCase() === repo.toLowerCase()
      : Number(m[1]) === repositoryId
    const auth = req.headers.authorization ?? ''
    const given = /^(?:token|bearer)\s+(.+)$/i.exec(auth)?.[1]
    const grant = given === undefined ? undefined : tokens.get(given)
    if (!auth) throw restError(templates.rest404, 404, doc, restHeaders(permission))
    if (!grant) throw restError(templates.rest401, 401, undefined, restHeaders(permission))
    if (!sameRepo) throw restError(templates.rest404, 404, doc, restHeaders(permission))
    const [scope, level] = (permission ?? '').split('=') as [
      keyof TokenPermissions,
      PermissionLevel,
    ]
    const rank = { none: 0, read: 1, write: 2 }
    if (permission && rank[grant.permissions[scope]] < rank[level])
      throw restError(templates.rest403, 403, doc, restHeaders(permission))
    return grant.user
  }

  async function handleRest(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<boolean> {
    const m =
      /^\/repos\/([^/]+)\/([^/]+)(\/actions\/.*)$/.exec(url.pathname) ??
      /^\/repositories\/(\d+)()(\/actions\/.*)$/.exec(url.pathname)
    if (!m) return false
    const rest = m[3]!
    const doc = docFor(req.method ?? 'GET', rest)
    authorize(req, m, doc, req.method === 'DELETE' ? 'actions=write' : 'actions=read')

    const canonical = (suffix: string) => `/repositories/${repositoryId}${suffix}`
    const byNewest = (list: StoredArtifact[]) => [...list].sort((a, b) => b.id - a.id)
    const nameFilter = url.searchParams.get('name')
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      const headers = { ...restHeaders(), ...extra }
      res.writeHead(status, headers)
      res.end(body === undefined ? undefined : JSON.stringify(body))
    }

    let mm: RegExpExecArray | null
    if (req.method === 'GET' && /^\/actions\/artifacts\/?$/.test(rest)) {
      const list = byNewest(live().filter((a) => !nameFilter || a.name === nameFilter))
      const { body, link } = paginate(list, url, canonical('/actions/artifacts'))
      send(200, body, link ? { link } : {})
      return true
    }
    if (req.method === 'GET' && (mm = /^\/actions\/runs\/(\d+)\/artifacts\/?$/.exec(rest))) {
      const run = Number(mm[1])
      const list = byNewest(
        live().filter((a) => a.runId === run && (!nameFilter || a.name === nameFilter)),
      )
      const { body, link } = paginate(list, url, canonical(`/actions/runs/${run}/artifacts`))
      send(200, body, link ? { link } : {})
      return true
    }
    if (req.method === 'GET' && (mm = /^\/actions\/runs\/(\d+)\/?$/.exec(rest))) {
      const run = workflowRuns.find((r) => r.id === Number(mm![1]))
      if (!run) throw restError(templates.rest404, 404, doc, restHeaders())
      send(200, restWorkflowRun(run))
      return true
    }
    if ((mm = /^\/actions\/artifacts\/(\d+)(?:\/([^/]+))?\/?$/.exec(rest))) {
      const a = live().find((x) => x.id === Number(mm![1]))
      const format = mm[2]
      if (!a) throw restError(templates.rest404, 404, doc, restHeaders())
      if (req.method === 'GET' && !format) {
        send(200, restArtifact(a))
        return true
      }
      if (req.method === 'GET' && format === 'zip') {
        if (a.expired) throw restError(templates.rest410, 410, docs.download, restHeaders())
        // "Gets a redirect URL to download an archive for a repository. This URL expires after 1 minute."
        send(302, undefined, {
          location: signedUrl(a.blobPath, 'r', 60_000, `${a.name}.zip`),
          'content-length': '0',
        })
        return true
      }
      if (req.method === 'DELETE' && !format) {
        artifacts.splice(artifacts.indexOf(a), 1)
        blobs.delete(a.blobPath)
        send(204, undefined)
        return true
      }
    }
    throw restError(templates.rest404, 404, doc, restHeaders())
  }

  // ------------------------------------------------------------------ REST: tokens, repository, runs

  /** GITHUB_TOKEN acts as this app bot; 41898282 is its user id on github.com. */
  const actor: StandInUser = { login: 'github-actions[bot]', id: 41898282, type: 'Bot' }
  const permissions: TokenPermissions = { actions: 'write', issues: 'write', metadata: 'read' }
  const tokens = new Map<string, { user: StandInUser; permissions: TokenPermissions }>([
    [token, { user: actor, permissions }],
  ])

  function addToken(user: StandInUser, granted: Partial<TokenPermissions> = {}): string {
    const t = `ghs_${crypto.randomBytes(18).toString('base64url')}`
    const all: TokenPermissions = { actions: 'none', issues: 'none', metadata: 'read', ...granted }
    tokens.set(t, { user, permissions: all })
    return t
  }

  const repoSettings = { defaultBranch: 'main' }
  const workflowRuns: StoredWorkflowRun[] = []
  /** The run an artifact belongs to, when the test made it (addWorkflowRun). */
  function runOf(id: number): StoredWorkflowRun | undefined {
    return workflowRuns.find((r) => r.id === id)
  }
  let nextRunId = runId - 1_000_000

  /** A run, completed with success unless told otherwise; one with the same id is replaced. */
  function addWorkflowRun(r: Partial<StoredWorkflowRun>): StoredWorkflowRun {
    const id = r.id ?? nextRunId++
    const status = r.status ?? 'completed'
    const headBranch = r.headBranch ?? repoSettings.defaultBranch
    const createdAt = r.createdAt ?? new Date()
    const run: StoredWorkflowRun = {
      id,
      name: r.name ?? 'OmniAI restore drill',
      path: r.path ?? `.github/workflows/drill.yml@${headBranch}`,
      event: r.event ?? 'schedule',
      headBranch,
      headSha: r.headSha ?? runFor(id).headSha,
      headRepository: r.headRepository ?? { id: repositoryId, fullName: `${owner}/${repo}` },
      status,
      conclusion:
        r.conclusion !== undefined ? r.conclusion : status === 'completed' ? 'success' : null,
      runNumber: r.runNumber ?? workflowRuns.length + 1,
      runAttempt: r.runAttempt ?? 1,
      createdAt,
      runStartedAt: r.runStartedAt ?? createdAt,
      updatedAt: r.updatedAt ?? createdAt,
    }
    const i = workflowRuns.findIndex((x) => x.id === id)
    if (i >= 0) workflowRuns.splice(i, 1, run)
    else workflowRuns.push(run)
    return run
  }
  // This job's own run: still in progress while the action runs in it.
  addWorkflowRun({ id: runId, status: 'in_progress', event: 'workflow_dispatch' })

  /**
   * A repository object of a template (the examples describe octocat/Hello-World or
   * octo-org/octo-repo), made to describe `fullName` on this server: its names, id and every URL.
   * Values the action never reads (counts, flags, the license) stay the example's.
   */
  function repositoryLike(
    template: Record<string, unknown>,
    fullName: string,
    id: number,
  ): Record<string, unknown> {
    const from = String(template.full_name)
    const fromOwner = String((template.owner as { login?: unknown } | null)?.login)
    const [toOwner, name] = fullName.split('/') as [string, string]
    const swap = (v: unknown): unknown => {
      if (typeof v === 'string')
        return v
          .split(from)
          .join(fullName)
          .replace(/^https?:\/\/api\.github\.com/, baseUrl)
          .replace(new RegExp(`(/users/|github\\.com/)${fromOwner}(?=$|[/{])`), `$1${toOwner}`)
      if (Array.isArray(v)) return v.map(swap)
      if (v && typeof v === 'object')
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swap(x)]))
      return v
    }
    const out = swap(template) as Record<string, unknown>
    const ownerJson = out.owner as Record<string, unknown>
    return {
      ...out,
      id,
      node_id: nodeId('010:Repository', id),
      name,
      full_name: fullName,
      owner: { ...ownerJson, login: toOwner },
    }
  }

  function restRepository(): Record<string, unknown> {
    const t = templates.restRepository
    return fill(t, {
      ...repositoryLike(t, `${owner}/${repo}`, repositoryId),
      default_branch: repoSettings.defaultBranch,
    })
  }

  function restWorkflowRun(r: StoredWorkflowRun): Record<string, unknown> {
    const t = templates.restWorkflowRun as Record<string, Record<string, unknown>>
    const repoApi = `${baseUrl}/repos/${owner}/${repo}`
    const api = `${repoApi}/actions/runs/${r.id}`
    // Who started the run: the example's user (the action never reads it).
    const person = restUser({
      login: String(t.actor!.login),
      id: Number(t.actor!.id),
      type: 'User',
    })
    return fill(t, {
      id: r.id,
      name: r.name,
      node_id: nodeId('012:Workflow Run', r.id),
      check_suite_id: r.id + 7,
      check_suite_node_id: nodeId('010:CheckSuite', r.id + 7),
      head_branch: r.headBranch,
      head_sha: r.headSha,
      path: r.path,
      run_number: r.runNumber,
      event: r.event,
      display_title: r.name,
      status: r.status,
      conclusion: r.conclusion,
      workflow_id: t.workflow_id,
      url: api,
      html_url: `https://github.com/${owner}/${repo}/actions/runs/${r.id}`,
      pull_requests: [],
      created_at: iso(r.createdAt),
      updated_at: iso(r.updatedAt),
      actor: person,
      run_attempt: r.runAttempt,
      referenced_workflows: [],
      run_started_at: iso(r.runStartedAt),
      triggering_actor: person,
      jobs_url: `${api}/jobs`,
      logs_url: `${api}/logs`,
      check_suite_url: `${repoApi}/check-suites/${r.id + 7}`,
      artifacts_url: `${api}/artifacts`,
      cancel_url: `${api}/cancel`,
      rerun_url: `${api}/rerun`,
      previous_attempt_url: r.runAttempt > 1 ? `${api}/attempts/${r.runAttempt - 1}` : null,
      workflow_url: `${repoApi}/actions/workflows/${String(t.workflow_id)}`,
      head_commit: fill(t.head_commit!, { ...t.head_commit, id: r.headSha }),
      repository: fill(
        t.repository!,
        repositoryLike(t.repository!, `${owner}/${repo}`, repositoryId),
      ),
      head_repository: fill(
        t.head_repository!,
        repositoryLike(t.head_repository!, r.headRepository.fullName, r.headRepository.id),
      ),
    })
  }

  /** `GET /repos/{owner}/{repo}`: any token of the repository may read it (`metadata: read`). */
  function handleRepository(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): boolean {
    const m =
      /^\/repos\/([^/]+)\/([^/]+)\/?$/.exec(url.pathname) ??
      /^\/repositories\/(\d+)()\/?$/.exec(url.pathname)
    if (!m || req.method !== 'GET') return false
    req.resume()
    authorize(req, m, 'https://docs.github.com/rest/repos/repos#get-a-repository', 'metadata=read')
    res.writeHead(200, restHeaders('metadata=read'))
    res.end(JSON.stringify(restRepository()))
    return true
  }

  // ------------------------------------------------------------------ REST: issues and comments

  const issues: StoredIssue[] = []
  const issueSettings = { disabled: false, dropLabels: false }
  const repoLabels = new Map<string, { id: number; name: string }>()
  let nextIssueId = 2_000_000_000 + crypto.randomInt(1_000_000)
  let nextCommentId = 2_500_000_000 + crypto.randomInt(1_000_000)
  let nextLabelId = 5_000_000_000 + crypto.randomInt(1_000_000)
  const nodeId = (kind: string, id: number) => Buffer.from(kind + id).toString('base64')
  const sameUser = (a: StandInUser, b: StandInUser) => a.login === b.login && a.id === b.id

  /** Labels are per repository and matched without regard to case; GitHub makes missing ones. */
  function ensureLabel(name: string) {
    let l = repoLabels.get(name.toLowerCase())
    if (!l) repoLabels.set(name.toLowerCase(), (l = { id: nextLabelId++, name }))
    return l
  }

  function addIssue(i: AddIssueInput): StoredIssue {
    const state = i.state ?? 'open'
    const user = i.user ?? actor
    const createdAt = i.createdAt ?? new Date()
    const issue: StoredIssue = {
      id: i.id ?? nextIssueId++,
      number: i.number ?? issues.reduce((n, x) => Math.max(n, x.number), 0) + 1,
      title: i.title,
      body: i.body ?? null,
      state,
      stateReason: i.stateReason ?? (state === 'closed' ? 'completed' : null),
      labels: (i.labels ?? []).map((l) => ensureLabel(l).name),
      pullRequest: i.pullRequest ?? false,
      user,
      authorAssociation: i.authorAssociation ?? (sameUser(user, actor) ? 'NONE' : 'OWNER'),
      createdAt,
      updatedAt: i.updatedAt ?? createdAt,
      closedAt: i.closedAt ?? (state === 'closed' ? createdAt : null),
      closedBy: i.closedBy ?? (state === 'closed' ? user : null),
      comments: [],
    }
    issues.push(issue)
    for (const c of i.comments ?? []) addComment(issue.number, c)
    return issue
  }

  function addComment(issueNumber: number, c: AddCommentInput): StoredComment {
    const issue = issues.find((x) => x.number === issueNumber)
    if (!issue) throw new Error(`stand-in: no issue #${issueNumber}`)
    const user = c.user ?? actor
    const createdAt = c.createdAt ?? new Date()
    const comment: StoredComment = {
      id: c.id ?? nextCommentId++,
      body: c.body,
      user,
      authorAssociation: c.authorAssociation ?? (sameUser(user, actor) ? 'NONE' : 'OWNER'),
      createdAt,
      updatedAt: c.updatedAt ?? createdAt,
    }
    if (c.id !== undefined && c.id >= nextCommentId) nextCommentId = c.id + 1
    issue.comments.push(comment)
    issue.comments.sort((a, b) => a.id - b.id) // GitHub lists them by ascending id
    if (createdAt > issue.updatedAt) issue.updatedAt = createdAt
    return comment
  }

  function restUser(u: StandInUser): RestUserJson {
    const api = `${baseUrl}/users/${encodeURIComponent(u.login)}`
    const bot = u.type === 'Bot'
    return fill(templates.restIssue.user, {
      login: u.login,
      id: u.id,
      node_id: nodeId(bot ? '03:Bot' : '04:User', u.id),
      avatar_url: `https://avatars.githubusercontent.com/u/${u.id}?v=4`,
      gravatar_id: '',
      url: api,
      html_url: bot
        ? `https://github.com/apps/${u.login.replace(/\[bot\]$/, '')}`
        : `https://github.com/${u.login}`,
      followers_url: `${api}/followers`,
      following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`,
      starred_url: `${api}/starred{/owner}{/repo}`,
      subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`,
      repos_url: `${api}/repos`,
      events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`,
      type: u.type,
      site_admin: false,
    })
  }

  function restLabel(name: string) {
    const l = ensureLabel(name)
    return fill(templates.restIssue.labels[0]!, {
      id: l.id,
      node_id: nodeId('05:Label', l.id),
      url: `${baseUrl}/repos/${owner}/${repo}/labels/${encodeURIComponent(l.name)}`,
      name: l.name,
      description: null,
      // The colour GitHub gives labels it makes on the fly (octokit/fixtures, add-labels-to-issue).
      color: 'ededed',
      default: false,
    })
  }

  const issueApi = (n: number) => `${baseUrl}/repos/${owner}/${repo}/issues/${n}`
  const iso = (d: Date | null) => (d ? isoSeconds(d) : null)

  function restIssue(i: StoredIssue, template: RestIssueJson): RestIssueJson {
    const api = issueApi(i.number)
    const html = `https://github.com/${owner}/${repo}/${i.pullRequest ? 'pull' : 'issues'}/${i.number}`
    const out = fill(template, {
      id: i.id,
      node_id: nodeId(i.pullRequest ? '011:PullRequest' : '05:Issue', i.id),
      url: api,
      repository_url: `${baseUrl}/repos/${owner}/${repo}`,
      labels_url: `${api}/labels{/name}`,
      comments_url: `${api}/comments`,
      events_url: `${api}/events`,
      html_url: html,
      number: i.number,
      state: i.state,
      title: i.title,
      body: i.body,
      user: restUser(i.user),
      pinned_comment: null,
      labels: i.labels.map(restLabel),
      assignee: null,
      assignees: [],
      milestone: null,
      locked: false,
      active_lock_reason: null,
      comments: i.comments.length,
      pull_request: fill(template.pull_request as Record<string, unknown>, {
        url: `${baseUrl}/repos/${owner}/${repo}/pulls/${i.number}`,
        html_url: html,
        diff_url: `${html}.diff`,
        patch_url: `${html}.patch`,
      }),
      closed_at: iso(i.closedAt),
      created_at: iso(i.createdAt),
      updated_at: iso(i.updatedAt),
      closed_by: i.closedBy ? restUser(i.closedBy) : null,
      author_association: i.authorAssociation,
      state_reason: i.stateReason,
    })
    // "You can identify pull requests by the pull_request key": plain issues do not have it.
    if (!i.pullRequest) delete out.pull_request
    return out
  }

  function restComment(c: StoredComment, issue: StoredIssue, template: RestCommentJson) {
    return fill(template, {
      id: c.id,
      node_id: nodeId('012:IssueComment', c.id),
      url: `${baseUrl}/repos/${owner}/${repo}/issues/comments/${c.id}`,
      html_url: `https://github.com/${owner}/${repo}/${issue.pullRequest ? 'pull' : 'issues'}/${issue.number}#issuecomment-${c.id}`,
      body: c.body,
      user: restUser(c.user),
      created_at: iso(c.createdAt),
      updated_at: iso(c.updatedAt),
      issue_url: issueApi(issue.number),
      author_association: c.authorAssociation,
      pin: null,
      minimized: null,
    })
  }

  const issueDocs = {
    list: 'https://docs.github.com/rest/issues/issues#list-repository-issues',
    create: 'https://docs.github.com/rest/issues/issues#create-an-issue',
    get: 'https://docs.github.com/rest/issues/issues#get-an-issue',
    update: 'https://docs.github.com/rest/issues/issues#update-an-issue',
    listComments: 'https://docs.github.com/rest/issues/comments#list-issue-comments',
    createComment: 'https://docs.github.com/rest/issues/comments#create-an-issue-comment',
    updateComment: 'https://docs.github.com/rest/issues/comments#update-an-issue-comment',
  }

  function issueDocFor(method: string, issuesPath: string): string {
    if (/^\/issues\/comments\/\d+\/?$/.test(issuesPath)) return issueDocs.updateComment
    if (/^\/issues\/?$/.test(issuesPath))
      return method === 'POST' ? issueDocs.create : issueDocs.list
    if (/^\/issues\/\d+\/comments\/?$/.test(issuesPath))
      return method === 'POST' ? issueDocs.createComment : issueDocs.listComments
    return method === 'PATCH' ? issueDocs.update : issueDocs.get
  }

  /** What `x-accepted-github-permissions` says for the issues endpoints (a fine-grained permission). */
  const issuePermission = (method: string) => (method === 'GET' ? 'issues=read' : 'issues=write')

  const ISSUES_PATH = [
    /^\/repos\/([^/]+)\/([^/]+)(\/issues(?:\/.*)?)$/,
    /^\/repositories\/(\d+)()(\/issues(?:\/.*)?)$/,
  ]

  async function handleIssues(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<boolean> {
    const m = ISSUES_PATH[0]!.exec(url.pathname) ?? ISSUES_PATH[1]!.exec(url.pathname)
    if (!m) return false
    const method = req.method ?? 'GET'
    const rest = m[3]!
    const doc = issueDocFor(method, rest)
    const permission = issuePermission(method)
    const raw = await readBody(req)
    const caller = authorize(req, m, doc, permission)
    if (issueSettings.disabled)
      throw restError(templates.rest410Issues, 410, doc, restHeaders(permission))

    const canonical = (suffix: string) => `/repositories/${repositoryId}${suffix}`
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      res.writeHead(status, { ...restHeaders(permission), ...extra })
      res.end(JSON.stringify(body))
    }
    const input = (): Record<string, unknown> => {
      try {
        const v: unknown = JSON.parse(raw.toString('utf8') || '{}')
        if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
      } catch {
        // answered below
      }
      throw restError(templates.rest404, 400, doc, restHeaders(), 'Problems parsing JSON')
    }
    const invalid = (resource: string, field: string, code = 'missing_field') => {
      const t = templates.rest422
      return new HttpError(
        422,
        fill(t, {
          message: t.message,
          errors: [{ resource, code, field }],
          documentation_url: doc,
          status: '422',
        }),
        restHeaders(permission),
      )
    }
    const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '')
    const labelNames = (v: unknown): string[] =>
      Array.isArray(v)
        ? v.map((l) => (typeof l === 'string' ? l : text((l as { name?: unknown })?.name)))
        : []

    let mm: RegExpExecArray | null
    if (method === 'PATCH' && (mm = /^\/issues\/comments\/(\d+)\/?$/.exec(rest))) {
      const id = Number(mm[1])
      const issue = issues.find((i) => i.comments.some((c) => c.id === id))
      const c = issue?.comments.find((x) => x.id === id)
      if (!issue || !c) throw restError(templates.rest404, 404, doc, restHeaders(permission))
      const body = input()
      if (typeof body.body !== 'string' || !body.body) throw invalid('IssueComment', 'body')
      c.body = body.body
      c.updatedAt = new Date()
      send(200, restComment(c, issue, templates.restComment))
      return true
    }
    if (/^\/issues\/?$/.test(rest)) {
      if (method === 'GET') {
        const q = url.searchParams
        const state = q.get('state') ?? 'open'
        const wanted = (q.get('labels') ?? '')
          .split(',')
          .map((l) => l.trim().toLowerCase())
          .filter(Boolean)
        const sort = q.get('sort') ?? 'created'
        const dir = q.get('direction') === 'asc' ? 1 : -1
        const key = (i: StoredIssue) =>
          sort === 'updated'
            ? i.updatedAt.getTime()
            : sort === 'comments'
              ? i.comments.length
              : i.createdAt.getTime()
        const list = issues
          .filter((i) => state === 'all' || i.state === state)
          .filter((i) => wanted.every((w) => i.labels.some((l) => l.toLowerCase() === w)))
          .sort((a, b) => dir * (key(a) - key(b) || a.number - b.number))
        const { slice, link } = pageOf(list, url, canonical('/issues'))
        const item = templates.restIssueList[0]!
        send(
          200,
          slice.map((i) => restIssue(i, item)),
          link ? { link } : {},
        )
        return true
      }
      if (method === 'POST') {
        const body = input()
        const title = text(body.title)
        if (!title) throw invalid('Issue', 'title')
        const issue = addIssue({
          title,
          body: typeof body.body === 'string' ? body.body : null,
          // Without push access GitHub drops the labels of a new issue without saying so.
          labels: issueSettings.dropLabels ? [] : labelNames(body.labels),
          user: caller,
        })
        send(201, restIssue(issue, templates.restIssue), { location: issueApi(issue.number) })
        return true
      }
    }
    if ((mm = /^\/issues\/(\d+)(\/comments)?\/?$/.exec(rest))) {
      const issue = issues.find((i) => i.number === Number(mm![1]))
      if (!issue) throw restError(templates.rest404, 404, doc, restHeaders(permission))
      if (!mm[2] && method === 'GET') {
        send(200, restIssue(issue, templates.restIssue))
        return true
      }
      if (!mm[2] && method === 'PATCH') {
        const body = input()
        const now = new Date()
        if (body.title !== undefined) {
          if (!text(body.title)) throw invalid('Issue', 'title')
          issue.title = text(body.title)
        }
        if (body.body !== undefined) issue.body = typeof body.body === 'string' ? body.body : null
        if (body.labels !== undefined)
          issue.labels = labelNames(body.labels).map((l) => ensureLabel(l).name)
        if (body.state !== undefined) {
          if (body.state !== 'open' && body.state !== 'closed')
            throw invalid('Issue', 'state', 'invalid')
          if (body.state === 'closed' && issue.state === 'open') {
            issue.state = 'closed'
            issue.closedAt = now
            issue.closedBy = caller
            issue.stateReason = body.state_reason === 'not_planned' ? 'not_planned' : 'completed'
          } else if (body.state === 'open' && issue.state === 'closed') {
            issue.state = 'open'
            issue.closedAt = null
            issue.stateReason = 'reopened'
          }
        }
        issue.updatedAt = now
        send(200, restIssue(issue, templates.restIssue))
        return true
      }
      if (mm[2] && method === 'GET') {
        const { slice, link } = pageOf(
          issue.comments,
          url,
          canonical(`/issues/${issue.number}/comments`),
        )
        const item = templates.restCommentList[0]!
        send(
          200,
          slice.map((c) => restComment(c, issue, item)),
          link ? { link } : {},
        )
        return true
      }
      if (mm[2] && method === 'POST') {
        const body = input()
        if (typeof body.body !== 'string' || !body.body) throw invalid('IssueComment', 'body')
        // GitHub sets the author and both times; a client cannot (other fields are ignored).
        const c = addComment(issue.number, { body: body.body, user: caller })
        send(201, restComment(c, issue, templates.restComment), {
          location: `${baseUrl}/repos/${owner}/${repo}/issues/comments/${c.id}`,
        })
        return true
      }
    }
    throw restError(templates.rest404, 404, doc, restHeaders(permission))
  }

  // ------------------------------------------------------------------ Twirp (results service)

  const twirpError = (kind: string, msg?: string) => {
    const t = templates.twirpErrors[kind]
    if (!t) throw new Error(`stand-in: no twirp error template ${kind}`)
    return new HttpError(t.status, fill(t.body, { code: t.body.code, msg: msg ?? t.body.msg }))
  }

  /** protobuf-ts sends proto field names; its JSON reader also accepts lowerCamel names. */
  const field = (body: Record<string, unknown>, protoName: string): unknown => {
    const camel = protoName.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
    return body[protoName] ?? body[camel]
  }
  /** google.protobuf wrappers (StringValue, Int64Value) are plain JSON values. */
  const unwrap = (v: unknown): string | undefined =>
    v === undefined || v === null
      ? undefined
      : typeof v === 'object'
        ? String((v as { value?: unknown }).value)
        : String(v)

  /** A Twirp call's JSON body, after the checks the results service makes of every call. */
  async function readTwirpRequest(req: http.IncomingMessage): Promise<Record<string, unknown>> {
    const raw = await readBody(req)
    if (req.headers.authorization !== `Bearer ${actionsToken}`) throw twirpError('unauthenticated')
    if (req.method !== 'POST')
      throw twirpError('bad_route', `unsupported method ${req.method} (only POST is allowed)`)
    let body: Record<string, unknown>
    try {
      body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>
    } catch {
      throw twirpError('invalid_argument', 'the json request could not be decoded')
    }
    return body
  }

  async function handleTwirp(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    const method = url.pathname.slice(TWIRP_PREFIX.length)
    const body = await readTwirpRequest(req)
    const runBackendId = String(field(body, 'workflow_run_backend_id') ?? '')
    const jobBackendId = String(field(body, 'workflow_job_run_backend_id') ?? '')
    const name = field(body, 'name') === undefined ? undefined : String(field(body, 'name'))
    const runEntry = [...runs.entries()].find(([, r]) => r.runBackendId === runBackendId)
    let out: Record<string, unknown>

    switch (method) {
      case 'CreateArtifact': {
        if (!runEntry || !jobBackendId)
          throw twirpError(
            'invalid_argument',
            'workflow run backend id or job backend id is invalid',
          )
        if (!name) throw twirpError('invalid_argument', 'name is required')
        const exists =
          pending.some((p) => p.workflowRunBackendId === runBackendId && p.name === name) ||
          artifacts.some((a) => a.workflowRunBackendId === runBackendId && a.name === name)
        if (exists) throw twirpError('already_exists')
        const createdAt = new Date()
        const expiresRaw = field(body, 'expires_at')
        const expiresAt =
          typeof expiresRaw === 'string'
            ? new Date(expiresRaw)
            : new Date(createdAt.getTime() + 90 * DAY_MS)
        const p: Pending = {
          id: nextId++,
          name,
          runId: runEntry[0],
          workflowRunBackendId: runBackendId,
          workflowJobRunBackendId: jobBackendId,
          createdAt,
          expiresAt,
          blobPath: blobPathFor(runBackendId, jobBackendId, name),
        }
        pending.push(p)
        out = fill(templates.twirpCreate, {
          ok: true,
          signed_upload_url: signedUrl(p.blobPath, 'cw', 6 * 60 * 60 * 1000),
        })
        break
      }
      case 'FinalizeArtifact': {
        const i = pending.findIndex(
          (p) => p.workflowRunBackendId === runBackendId && p.name === name,
        )
        if (i < 0) throw twirpError('not_found', 'artifact not found')
        const p = pending[i]!
        const blob = blobs.get(p.blobPath)
        if (!blob) throw twirpError('not_found', 'artifact upload not found in blob storage')
        const size = String(field(body, 'size') ?? '0')
        if (size !== String(blob.data.length)) {
          throw twirpError(
            'invalid_argument',
            `size ${size} does not match the uploaded blob (${blob.data.length} bytes)`,
          )
        }
        const hash = unwrap(field(body, 'hash'))
        const digest = `sha256:${sha256(blob.data)}`
        if (hash !== undefined && hash !== digest)
          throw twirpError('invalid_argument', `hash ${hash} does not match the uploaded blob`)
        pending.splice(i, 1)
        const a: StoredArtifact = {
          id: p.id,
          name: p.name,
          runId: p.runId,
          workflowRunBackendId: p.workflowRunBackendId,
          workflowJobRunBackendId: p.workflowJobRunBackendId,
          createdAt: p.createdAt,
          updatedAt: new Date(),
          expiresAt: p.expiresAt,
          expired: false,
          zip: blob.data,
          digest,
          headBranch: runOf(p.runId)?.headBranch ?? 'main',
          headSha: runFor(p.runId).headSha,
          blobPath: p.blobPath,
        }
        artifacts.push(refreshExpiry(a))
        out = fill(templates.twirpFinalize, { ok: true, artifact_id: String(a.id) })
        break
      }
      case 'ListArtifacts': {
        const nameFilter = unwrap(field(body, 'name_filter'))
        const idFilter = unwrap(field(body, 'id_filter'))
        const list = live().filter(
          (a) =>
            a.workflowRunBackendId === runBackendId &&
            !a.expired &&
            (nameFilter === undefined || a.name === nameFilter) &&
            (idFilter === undefined || String(a.id) === idFilter),
        )
        const item = templates.twirpList.artifacts[0]!
        out = fill(templates.twirpList, {
          artifacts: list.map((a) =>
            fill(item, {
              workflow_run_backend_id: a.workflowRunBackendId,
              workflow_job_run_backend_id: a.workflowJobRunBackendId,
              database_id: String(a.id),
              name: a.name,
              size: String(a.zip.length),
              created_at: a.createdAt.toISOString(),
              digest: a.digest,
            }),
          ),
        })
        break
      }
      case 'GetSignedArtifactURL': {
        const a = live().find(
          (x) => x.workflowRunBackendId === runBackendId && x.name === name && !x.expired,
        )
        if (!a) throw twirpError('not_found', 'artifact not found')
        out = fill(templates.twirpSignedUrl, {
          signed_url: signedUrl(a.blobPath, 'r', 60 * 60 * 1000, `${a.name}.zip`),
        })
        break
      }
      case 'DeleteArtifact': {
        const a = artifacts.find((x) => x.workflowRunBackendId === runBackendId && x.name === name)
        if (!a) throw twirpError('not_found', 'artifact not found')
        artifacts.splice(artifacts.indexOf(a), 1)
        blobs.delete(a.blobPath)
        out = fill(templates.twirpDelete, { ok: true, artifact_id: String(a.id) })
        break
      }
      default:
        throw twirpError('bad_route', `no handler for path "${url.pathname}"`)
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(out))
  }

  // ------------------------------------------------------------------ Twirp (cache service v2)

  const caches: StoredCacheEntry[] = []
  let nextCacheId = 1_000 + crypto.randomInt(1_000_000)

  async function handleCacheTwirp(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    const method = url.pathname.slice(CACHE_TWIRP_PREFIX.length)
    const body = await readTwirpRequest(req)
    const key = String(field(body, 'key') ?? '')
    const version = String(field(body, 'version') ?? '')
    if (!key || !version) throw twirpError('invalid_argument', 'key and version are required')
    let out: Record<string, unknown>
    switch (method) {
      case 'GetCacheEntryDownloadURL': {
        const restoreKeys = (field(body, 'restore_keys') as unknown[] | undefined) ?? []
        const usable = caches
          .filter((c) => c.finalized && c.version === version)
          .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id)
        const hit =
          usable.find((c) => c.key === key) ??
          restoreKeys
            .map(String)
            .map((prefix) => usable.find((c) => c.key.startsWith(prefix)))
            .find((c) => c !== undefined)
        out = fill(templates.twirpCacheUrl, {
          ok: Boolean(hit),
          signed_download_url: hit ? signedUrl(hit.blobPath, 'r', 10 * 60 * 1000) : '',
          matched_key: hit?.key ?? '',
        })
        break
      }
      case 'CreateCacheEntry': {
        if (caches.some((c) => c.key === key && c.version === version))
          throw twirpError(
            'already_exists',
            'cache entry with the same key, version, and scope already exists',
          )
        const entry: StoredCacheEntry = {
          id: nextCacheId++,
          key,
          version,
          sizeBytes: 0,
          createdAt: new Date(),
          finalized: false,
          blobPath: `/${BLOB_ACCOUNT}/actions-cache/${sha256(`${key}:${version}:${crypto.randomUUID()}`)}`,
        }
        caches.push(entry)
        out = fill(templates.twirpCreateCache, {
          ok: true,
          signed_upload_url: signedUrl(entry.blobPath, 'cw', 6 * 60 * 60 * 1000),
          message: '',
        })
        break
      }
      case 'FinalizeCacheEntryUpload': {
        const entry = caches.find((c) => c.key === key && c.version === version && !c.finalized)
        if (!entry) throw twirpError('not_found', 'cache entry not found')
        const blob = blobs.get(entry.blobPath)
        if (!blob) throw twirpError('not_found', 'cache entry upload not found in blob storage')
        const size = String(field(body, 'size_bytes') ?? '0')
        if (size !== String(blob.data.length))
          throw twirpError(
            'invalid_argument',
            `size ${size} does not match the uploaded blob (${blob.data.length} bytes)`,
          )
        entry.sizeBytes = blob.data.length
        entry.finalized = true
        out = fill(templates.twirpFinalizeCache, {
          ok: true,
          entry_id: String(entry.id),
          message: '',
        })
        break
      }
      default:
        throw twirpError('bad_route', `no handler for path "${url.pathname}"`)
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(out))
  }

  // ------------------------------------------------------------------ Azure Blob storage

  function azureError(code: string, req: http.IncomingMessage, requestId: string): HttpError {
    const t = templates.azureErrors[code]
    if (!t) throw new Error(`stand-in: no azure error template ${code}`)
    const xml =
      '\uFEFF<?xml version="1.0" encoding="utf-8"?>' +
      `<Error><Code>${code}</Code><Message>${t.message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`
    return new HttpError(t.status, Buffer.from(xml, 'utf8'), {
      'content-type': 'application/xml',
      'x-ms-error-code': code,
      'x-ms-request-id': requestId,
      'x-ms-version': String(req.headers['x-ms-version'] ?? AZURE_SERVICE_VERSION),
    })
  }

  /** Headers named by a template, with values for this response. */
  function azureHeaders(
    template: Record<string, string>,
    values: Record<string, string>,
  ): Record<string, string> {
    return fill(template, values) as Record<string, string>
  }

  async function handleBlob(req: http.IncomingMessage, res: http.ServerResponse, url: URL) {
    const requestId = crypto.randomUUID()
    const blobPath = decodeURIComponent(url.pathname)
    const common = {
      'x-ms-request-id': requestId,
      'x-ms-version': String(req.headers['x-ms-version'] ?? AZURE_SERVICE_VERSION),
      'x-ms-client-request-id': String(req.headers['x-ms-client-request-id'] ?? ''),
      date: new Date().toUTCString(),
      server: 'Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0',
    }
    const body = await readBody(req)

    // SAS checks: the signature issued for this blob, within its expiry, with the right permission.
    const sig = url.searchParams.get('sig')
    const se = url.searchParams.get('se')
    if (!sig || sigs.get(blobPath) !== sig || !se || Date.parse(se) < Date.now()) {
      throw azureError('AuthenticationFailed', req, requestId)
    }
    const sp = url.searchParams.get('sp') ?? ''
    const writing = req.method === 'PUT'
    if (writing ? !/[cw]/.test(sp) : !sp.includes('r'))
      throw azureError('AuthorizationPermissionMismatch', req, requestId)

    const comp = url.searchParams.get('comp')
    if (req.method === 'PUT' && comp === 'block') {
      const blockId = url.searchParams.get('blockid')
      if (!blockId) throw azureError('InvalidQueryParameterValue', req, requestId)
      let blocks = uncommitted.get(blobPath)
      if (!blocks) uncommitted.set(blobPath, (blocks = new Map()))
      blocks.set(blockId, body)
      res.writeHead(201, {
        ...azureHeaders(templates.azureStageBlock, {
          ...common,
          'content-md5': md5b64(body),
          'x-ms-request-server-encrypted': 'true',
        }),
        'content-length': '0',
      })
      res.end()
      return
    }
    if (req.method === 'PUT' && (comp === 'blocklist' || comp === null)) {
      let data: Buffer
      if (comp === 'blocklist') {
        // <BlockList><Latest>id</Latest><Committed>id</Committed><Uncommitted>id</Uncommitted></BlockList>
        const staged = uncommitted.get(blobPath) ?? new Map<string, Buffer>()
        const parts: Buffer[] = []
        for (const [, kind, id] of body
          .toString('utf8')
          .matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)) {
          // Re-committing already committed blocks is not modelled: only staged blocks count.
          const part = kind === 'Committed' ? undefined : staged.get(id!)
          if (!part) throw azureError('InvalidBlockList', req, requestId)
          parts.push(part)
        }
        data = Buffer.concat(parts)
        uncommitted.delete(blobPath)
      } else {
        if (req.headers['x-ms-blob-type'] !== 'BlockBlob')
          throw azureError('InvalidQueryParameterValue', req, requestId)
        data = body
      }
      const now = new Date()
      const blob: Blob = {
        data,
        contentType: String(
          req.headers['x-ms-blob-content-type'] ??
            req.headers['content-type'] ??
            'application/octet-stream',
        ),
        etag: etagFor(),
        lastModified: now,
        createdAt: blobs.get(blobPath)?.createdAt ?? now,
      }
      blobs.set(blobPath, blob)
      res.writeHead(201, {
        ...azureHeaders(templates.azureCommit, {
          ...common,
          etag: blob.etag,
          'last-modified': now.toUTCString(),
          'content-md5': md5b64(body),
          'x-ms-request-server-encrypted': 'true',
        }),
        'content-length': '0',
      })
      res.end()
      return
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && comp === null) {
      const blob = blobs.get(blobPath)
      if (!blob) throw azureError('BlobNotFound', req, requestId)
      const headers = azureHeaders(templates.azureGetBlob, {
        ...common,
        'content-type': blob.contentType,
        'content-length': String(blob.data.length),
        etag: blob.etag,
        'last-modified': blob.lastModified.toUTCString(),
        'accept-ranges': 'bytes',
        'x-ms-blob-type': 'BlockBlob',
        'x-ms-creation-time': blob.createdAt.toUTCString(),
        'x-ms-lease-status': 'unlocked',
        'x-ms-lease-state': 'available',
        'x-ms-server-encrypted': 'true',
      })
      const rscd = url.searchParams.get('rscd')
      res.writeHead(200, rscd ? { ...headers, 'content-disposition': rscd } : headers)
      res.end(req.method === 'HEAD' ? undefined : blob.data)
      return
    }
    throw azureError('InvalidQueryParameterValue', req, requestId)
  }

  // ------------------------------------------------------------------ faults and dispatch

  function injectedFault(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const target = req.url ?? '/'
    const method = req.method ?? 'GET'
    const f = faults.find(
      (x) => x.remaining > 0 && x.path.test(target) && (!x.opts.method || x.opts.method === method),
    )
    if (!f) return false
    f.remaining--
    req.resume()
    if (f.kind === 'reset') {
      req.socket.destroy()
      return true
    }
    if (f.kind === 'server-error') {
      res.writeHead(f.opts.status ?? 502, { 'content-type': 'application/json; charset=utf-8' })
      res.end(JSON.stringify({ message: 'Server Error' }))
      return true
    }
    const pathname = target.split('?')[0]!
    const actionsPath = /^\/(?:repos\/[^/]+\/[^/]+|repositories\/\d+)(\/actions\/.*)$/.exec(
      pathname,
    )?.[1]
    const issuesPath = (ISSUES_PATH[0]!.exec(pathname) ?? ISSUES_PATH[1]!.exec(pathname))?.[3]
    const headers = restHeaders(issuesPath ? issuePermission(method) : undefined)
    if (f.kind === '403-permission') {
      const t = templates.rest403
      const doc = actionsPath
        ? docFor(method, actionsPath)
        : issuesPath
          ? issueDocFor(method, issuesPath)
          : t.documentation_url
      res.writeHead(403, headers)
      res.end(
        JSON.stringify(fill(t, { message: t.message, documentation_url: doc, status: '403' })),
      )
      return true
    }
    const status = f.opts.status ?? 403
    const wait = f.opts.retryAfterSeconds ?? 60
    const t = templates.restRateLimit
    res.writeHead(status, {
      ...headers,
      'x-ratelimit-remaining': '0',
      'x-ratelimit-used': headers['x-ratelimit-limit']!,
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + wait),
      'retry-after': String(wait),
    })
    res.end(
      JSON.stringify(
        fill(t, {
          message: t.message,
          documentation_url: t.documentation_url,
          status: String(status),
        }),
      ),
    )
    return true
  }

  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/' })
    const url = new URL(req.url ?? '/', baseUrl)
    const handle = async () => {
      if (injectedFault(req, res)) return
      if (url.pathname.startsWith(TWIRP_PREFIX)) return handleTwirp(req, res, url)
      if (url.pathname.startsWith(CACHE_TWIRP_PREFIX)) return handleCacheTwirp(req, res, url)
      if (url.pathname.startsWith(`/${BLOB_ACCOUNT}/`)) return handleBlob(req, res, url)
      if (handleRepository(req, res, url)) return
      if (await handleIssues(req, res, url)) return
      req.resume() // the artifact routes take no request body
      if (await handleRest(req, res, url)) return
      throw restError(templates.rest404, 404, 'https://docs.github.com/rest', restHeaders())
    }
    handle().catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      if (err instanceof HttpError) {
        const isBuffer = Buffer.isBuffer(err.body)
        res.writeHead(err.status, {
          'content-type': 'application/json; charset=utf-8',
          ...err.headers,
        })
        res.end(isBuffer ? err.body : JSON.stringify(err.body))
        return
      }
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(`stand-in error: ${err instanceof Error ? err.stack : String(err)}`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  baseUrl = `http://127.0.0.1:${port}`

  return {
    url: baseUrl,
    token,
    owner,
    repo,
    repositoryId,
    runId,
    env: {
      GITHUB_API_URL: baseUrl,
      ACTIONS_RESULTS_URL: `${baseUrl}/`,
      ACTIONS_RUNTIME_TOKEN: actionsToken,
      // `@actions/cache` uses the v2 service (the Twirp routes above) only when this is set.
      ACTIONS_CACHE_SERVICE_V2: 'true',
      GITHUB_REPOSITORY: `${owner}/${repo}`,
      GITHUB_REPOSITORY_OWNER: owner,
      GITHUB_RUN_ID: String(runId),
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_WORKSPACE: workspace,
      // The artifact client treats any host but github.com / *.ghe.com / *.localhost as GHES and refuses.
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_RETENTION_DAYS: '90',
    },
    artifacts,
    addArtifact,
    caches,
    actor,
    issues,
    addIssue,
    addComment,
    issueSettings,
    repoSettings,
    permissions,
    addToken,
    workflowRuns,
    addWorkflowRun,
    fail(p: RegExp, kind: FaultKind, times = Number.POSITIVE_INFINITY, fopts: FaultOptions = {}) {
      faults.push({ path: p, kind, remaining: times, opts: fopts })
    },
    requests,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      fs.rmSync(workspace, { recursive: true, force: true })
    },
  }
}
