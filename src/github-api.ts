/**
 * Plain REST calls to GitHub with fetch, shared by the artifact store and the drill evidence:
 * GitHub's headers, JSON bodies, `Link` pagination, waiting out rate limits as GitHub asks (within
 * bounds), and turning refusals into a UserError that names the permission to add. The token goes
 * in the Authorization header only, never into a message.
 */
import { UserError } from './errors.js'
import type { Log } from './log.js'

export interface GitHubRepo {
  token: string
  owner: string
  repo: string
  /** GITHUB_API_URL, without a trailing slash. */
  apiUrl: string
}

/**
 * The one-line UserError message for a refusal (403 without a rate limit, 404, 410): callers know
 * which permission or input the request needed, so they word the fix.
 */
export type Refusal = (status: number, githubMessage: string) => string

export interface GitHubResponse {
  status: number
  body: unknown
  /** The `rel="next"` URL of a paginated list, or null on the last page. */
  next: string | null
}

const MAX_RATE_LIMIT_WAITS = 3
const MAX_WAIT_SECONDS = 60
/** GitHub asks to wait at least a minute after a secondary rate limit that names no time. */
const SECONDARY_WAIT_SECONDS = 60

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function errorMessage(res: Response): Promise<string> {
  const body = (await res.json().catch(() => ({}))) as { message?: unknown }
  return typeof body.message === 'string' ? body.message : res.statusText
}

/**
 * Seconds to wait before retrying, when the response is a rate limit; null when it is not one.
 * Primary limits: 403/429 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds).
 * Secondary limits: 403/429 with `retry-after`, or only the message saying so.
 */
function rateLimitWait(res: Response, message: string): number | null {
  if (res.status !== 403 && res.status !== 429) return null
  const retryAfter = res.headers.get('retry-after')
  if (retryAfter !== null && Number.isFinite(Number(retryAfter))) return Number(retryAfter)
  if (res.headers.get('x-ratelimit-remaining') === '0') {
    const reset = Number(res.headers.get('x-ratelimit-reset') ?? 0) * 1000 - Date.now()
    return Math.ceil(Math.max(reset, 1000) / 1000)
  }
  if (res.status === 429 || /rate limit/i.test(message)) return SECONDARY_WAIT_SECONDS
  return null
}

/**
 * One REST call. JSON in and out; retries after a rate limit when GitHub's wait is at most a
 * minute (three times at most), otherwise says when the limit resets.
 */
export async function githubRequest(
  url: string,
  repo: GitHubRepo,
  log: Log,
  refusal: Refusal,
  init: {
    method?: 'GET' | 'POST' | 'PATCH'
    body?: unknown
    /** Refusals (403, 404, 410) the caller handles: returned with GitHub's message as `body.message`. */
    handle?: number[]
  } = {},
): Promise<GitHubResponse> {
  const method = init.method ?? 'GET'
  const headers: Record<string, string> = {
    Authorization: `Bearer ${repo.token}`,
    Accept: 'application/vnd.github+json',
    'X-GitHub-Api-Version': '2022-11-28',
    'User-Agent': 'omniai-backups',
  }
  if (init.body !== undefined) headers['Content-Type'] = 'application/json'
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    if (res.ok) {
      const link = res.headers.get('link') ?? ''
      const next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] ?? null
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : null, next }
    }
    const message = await errorMessage(res)
    const wait = rateLimitWait(res, message)
    if (wait !== null) {
      if (attempt < MAX_RATE_LIMIT_WAITS && wait <= MAX_WAIT_SECONDS) {
        log.warning(`GitHub API rate limit reached; retrying in ${wait} s`)
        await sleep(wait * 1000)
        continue
      }
      throw new UserError(
        `github-token: GitHub's API rate limit is exhausted for this token (resets in ${wait} s). Fix: run the drill later, or less often alongside other API-heavy jobs.`,
      )
    }
    if (res.status === 401)
      throw new UserError(
        'github-token: GitHub rejected the token (401 Bad credentials). Fix: leave github-token at its default or pass a valid token.',
      )
    if (init.handle?.includes(res.status))
      return { status: res.status, body: { message }, next: null }
    if (res.status === 403 || res.status === 404 || res.status === 410)
      throw new UserError(refusal(res.status, message))
    throw new Error(`GitHub API ${method} ${new URL(url).pathname}: ${res.status} ${message}`)
  }
}
