/**
 * REST calls to GitHub, shared by the artifact store and the drill evidence, through the Octokit
 * that `@actions/github` provides: GitHub's headers, JSON bodies, `Link` pagination, waiting out
 * rate limits as GitHub asks (within bounds), retrying server errors and dropped connections, and
 * turning refusals into a UserError that names the permission to add. The token goes in the
 * Authorization header only, never into a message.
 *
 * Proxies: Node's global fetch ignores HTTPS_PROXY, HTTP_PROXY and NO_PROXY, which a self-hosted
 * runner behind a corporate proxy relies on. Requests go through `@actions/http-client`'s proxy
 * dispatcher instead, the one `@actions/github` uses, with the same rules (NO_PROXY, and never a
 * proxy for localhost or 127.x). `@actions/github` decides that dispatcher once, when it is loaded,
 * for the GITHUB_API_URL of that moment; it is decided here when the client is made, for the API
 * URL actually called, so the decision always matches the request.
 */
import type { fetch as UndiciFetch } from 'undici'
import { UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'

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
/**
 * Server errors (5xx) and dropped connections (which Octokit reports as 500) are tried again this
 * many times, after 1, 4 and 9 s (@octokit/plugin-retry's backoff). Every 4xx is final here:
 * refusals name their fix, and rate limits are waited out below as GitHub asks. A retried POST
 * that did reach GitHub adds its comment or issue twice; the tracking issue is the oldest one of
 * its title, and a duplicate record of the same drill changes nothing.
 */
const SERVER_ERROR_RETRIES = 3
const CLIENT_ERRORS = Array.from({ length: 100 }, (_, i) => 400 + i)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Headers = Record<string, string | number | undefined>

/**
 * Seconds to wait before retrying, when the response is a rate limit; null when it is not one.
 * Primary limits: 403/429 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds).
 * Secondary limits: 403/429 with `retry-after`, or only the message saying so.
 */
function rateLimitWait(status: number, headers: Headers, message: string): number | null {
  if (status !== 403 && status !== 429) return null
  const retryAfter = headers['retry-after']
  if (retryAfter !== undefined && Number.isFinite(Number(retryAfter))) return Number(retryAfter)
  if (String(headers['x-ratelimit-remaining']) === '0') {
    const reset = Number(headers['x-ratelimit-reset'] ?? 0) * 1000 - Date.now()
    return Math.ceil(Math.max(reset, 1000) / 1000)
  }
  if (status === 429 || /rate limit/i.test(message)) return SECONDARY_WAIT_SECONDS
  return null
}

/** Loaded on the first request only: a run that makes none does not pay for them at start-up. */
const libraries = async () => {
  const [github, httpClient, retryPlugin, undici] = await Promise.all([
    import('@actions/github'),
    import('@actions/http-client'),
    import('@octokit/plugin-retry'),
    import('undici'),
  ])
  return {
    getOctokit: github.getOctokit,
    HttpClient: httpClient.HttpClient,
    retry: retryPlugin.retry,
    fetch: undici.fetch,
  }
}
type Libraries = Awaited<ReturnType<typeof libraries>>

/**
 * fetch through the proxy that HTTPS_PROXY / HTTP_PROXY name for `url`, unless NO_PROXY (or a
 * loopback host) says to go direct: `@actions/http-client`'s rules, read now.
 */
function proxyAwareFetch(lib: Libraries, url: string): typeof UndiciFetch {
  const dispatcher = new lib.HttpClient('omniai-backups').getAgentDispatcher(url)
  return dispatcher ? (input, init) => lib.fetch(input, { ...init, dispatcher }) : lib.fetch
}

/** What Octokit throws for a status >= 400 or a failed connection (status 500, no response). */
interface OctokitError {
  status: number
  message: string
  response?: { status: number; headers: Headers; data: unknown }
}

const isOctokitError = (err: unknown): err is OctokitError =>
  err instanceof Error && typeof (err as { status?: unknown }).status === 'number'

/**
 * A plugin that logs each failed attempt that @octokit/plugin-retry will try again: retries should
 * not be silent. Registered before the retry plugin, so that it sees every attempt, not the last.
 */
function logRetries(log: Log) {
  return (octokit: { hook: { error: (name: 'request', hook: RetryHook) => void } }) => {
    octokit.hook.error('request', (err, options) => {
      const attempt = (options.request?.retryCount ?? 0) + 1
      if (isOctokitError(err) && err.status >= 500 && attempt <= SERVER_ERROR_RETRIES) {
        const what = err.response ? String(err.status) : 'no response'
        log.info(
          `GitHub API ${options.method} ${new URL(options.url).pathname}: ${what} (${err.message}), attempt ${attempt} of ${SERVER_ERROR_RETRIES + 1}; trying again`,
        )
      }
      throw err
    })
  }
}
type RetryHook = (
  err: Error,
  options: { method: string; url: string; request?: { retryCount?: number } },
) => never

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
  const lib = await libraries()
  const octokit = lib.getOctokit(
    repo.token,
    {
      baseUrl: repo.apiUrl,
      userAgent: 'omniai-backups',
      request: { fetch: proxyAwareFetch(lib, url) },
      retry: { retries: SERVER_ERROR_RETRIES, doNotRetry: CLIENT_ERRORS },
      // Octokit's own notices (a deprecated endpoint) are for the log, not annotations.
      log: {
        debug: () => {},
        info: () => {},
        warn: (m: string) => log.info(m),
        error: (m: string) => log.info(m),
      },
    },
    logRetries(log) as Parameters<Libraries['getOctokit']>[2],
    lib.retry,
  )
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await octokit.request(`${method} ${url}`, {
        headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
        ...(init.body === undefined ? {} : { data: init.body }),
      })
      const link = String(res.headers.link ?? '')
      const next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] ?? null
      return { status: res.status, body: res.data === '' ? null : (res.data ?? null), next }
    } catch (err) {
      if (!isOctokitError(err)) throw err
      if (!err.response) {
        throw new Error(
          `GitHub API ${method} ${new URL(url).pathname}: no response (${err.message}) after ${SERVER_ERROR_RETRIES + 1} attempts`,
          { cause: err },
        )
      }
      const { status, headers, data } = err.response
      const body = data as { message?: unknown } | null
      const message =
        typeof body?.message === 'string'
          ? body.message
          : typeof data === 'string' && data
            ? data.slice(0, 200)
            : err.message
      const wait = rateLimitWait(status, headers, message)
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
      if (status === 401)
        throw new UserError(
          'github-token: GitHub rejected the token (401 Bad credentials). Fix: leave github-token at its default or pass a valid token.',
        )
      if (init.handle?.includes(status)) return { status, body: { message }, next: null }
      if (status === 403 || status === 404 || status === 410)
        throw new UserError(refusal(status, message))
      const tries = status >= 500 ? ` after ${SERVER_ERROR_RETRIES + 1} attempts` : ''
      throw new Error(
        `GitHub API ${method} ${new URL(url).pathname}: ${status} ${message}${tries}`,
        { cause: err },
      )
    }
  }
}
