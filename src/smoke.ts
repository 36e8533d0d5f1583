/**
 * The HTTP smoke test after a restore (runbook, Restore step 4): the health endpoint answers,
 * a login works, and the conversations list comes back. The backend is usually still starting
 * when this runs, so the health endpoint is polled until it answers 2xx or the time runs out.
 *
 * The login body and whatever the login returns (cookies, a bearer token) are credentials from
 * secrets: they are sent on and never written to a log line, a detail or an error message;
 * response bodies are never quoted either, since a server may echo what it was sent.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Check } from './checks.js'
import { UserError } from './errors.js'
import type { Log } from './log.js'

/**
 * Input names assumed for the error messages; action.yml and config.ts do not have them yet.
 * Rename here when they are wired in.
 */
export const SMOKE_INPUTS = {
  url: 'smoke-url',
  healthPath: 'smoke-health-path',
  timeout: 'smoke-timeout',
  loginPath: 'smoke-login-path',
  loginBody: 'smoke-login-body',
  tokenField: 'smoke-token-field',
  conversationsPath: 'smoke-conversations-path',
} as const

export const DEFAULT_HEALTH_PATH = '/v1/health'

export interface SmokeOptions {
  /** The backend's address, e.g. http://localhost:8000; may end in a path prefix (/api). */
  baseUrl: string
  /** Relative to baseUrl; default /v1/health. */
  healthPath?: string
  /** How long the health endpoint may take to answer 2xx, in all. */
  timeoutSeconds: number
  /** The limit for each single request; default 10 s (less when timeoutSeconds has less left). */
  requestTimeoutSeconds?: number
  login?: {
    path: string
    /** JSON, sent as is with POST. A secret: never logged. */
    body: string
    /** Where the bearer token is in the response JSON: `access_token`, or a dotted path `data.token`. */
    tokenField?: string
  }
  /** Skipped when not set. */
  conversationsPath?: string
  /** The conversations list must be a non-empty array (or hold one under items, data or conversations). */
  requireConversations: boolean
  log: Log
  fetchImpl?: typeof fetch
}

export interface SmokeStep {
  name: 'health' | 'login' | 'conversations'
  ok: boolean
  /** The last HTTP status; null when nothing answered. */
  status: number | null
  ms: number
  detail: string
}

export interface SmokeResult {
  check: Check
  /** The steps that ran, in order; the first failed one is the last. */
  steps: SmokeStep[]
}

const DEFAULT_REQUEST_TIMEOUT_SECONDS = 10
const FIRST_DELAY_MS = 250
const MAX_DELAY_MS = 5000
/** A try made once the time is up still gets this long to answer. */
const LAST_TRY_MS = 500

function parseBaseUrl(text: string): URL {
  const input = SMOKE_INPUTS.url
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new UserError(
      `${input}: "${text}" is not a URL. Fix: give the backend's address, e.g. ${input}: http://localhost:8000.`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserError(
      `${input}: "${url.protocol}" is not http: or https:. Fix: e.g. ${input}: http://localhost:8000.`,
    )
  }
  if (url.username || url.password) {
    // Not quoted: the URL holds a password.
    throw new UserError(
      `${input}: holds a user name or password, which fetch refuses. Fix: remove them from the URL and log in with ${SMOKE_INPUTS.loginPath} and ${SMOKE_INPUTS.loginBody}.`,
    )
  }
  if (url.search || url.hash) {
    throw new UserError(
      `${input}: "${text}" has a query or fragment. Fix: give only the address and path prefix, e.g. ${input}: http://localhost:8000.`,
    )
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/'
  return url
}

/** `path` below `base` (keeping a path prefix such as /api); it may not leave the base's origin. */
function endpoint(base: URL, path: string, input: string): URL {
  const url = new URL(path.replace(/^\/+/, ''), base)
  if (url.origin !== base.origin || /^[a-z][a-z0-9+.-]*:/i.test(path)) {
    throw new UserError(
      `${input}: "${path}" is not a path. Fix: give a path on ${SMOKE_INPUTS.url}, e.g. ${DEFAULT_HEALTH_PATH}.`,
    )
  }
  return url
}

/** Cookies by name, as a browser would send them back to the same server. */
class CookieJar {
  private cookies = new Map<string, string>()

  constructor(private readonly log: Log) {}

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => {
        const [key = '', v = ''] = a.split('=').map((s) => s.trim())
        if (/^max-age$/i.test(key)) return Number(v) <= 0
        if (/^expires$/i.test(key)) return Date.parse(v) <= Date.now()
        return false
      })
      if (expired) this.cookies.delete(name)
      else {
        // Short values (flags like "1") would mask every such string in the Actions log.
        if (value.length >= 8) this.log.mask?.(value)
        this.cookies.set(name, value)
      }
    }
  }

  get size(): number {
    return this.cookies.size
  }

  header(): Record<string, string> {
    if (this.cookies.size === 0) return {}
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
  }
}

/** Why a request got no answer, without the request itself. */
function whyNoAnswer(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
    return `no answer within ${seconds(timeoutMs)}`
  const code = e?.cause?.code
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host not found (DNS)',
    EHOSTUNREACH: 'host unreachable',
    UND_ERR_SOCKET: 'connection closed',
  }
  if (code) return known[code] ? `${known[code]} (${code})` : code
  return (e?.cause?.message ?? e?.message ?? String(err)).replace(/\s*\n\s*/g, ' ')
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** The value at a dotted path in parsed JSON. */
function at(json: unknown, path: string): unknown {
  let v = json
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[key]
  }
  return v
}

const LIST_KEYS = ['items', 'data', 'conversations'] as const

/** The conversations in a list response: the array itself, or one under a usual key. */
function conversationsIn(json: unknown): unknown[] | null {
  if (Array.isArray(json)) return json
  if (json && typeof json === 'object') {
    for (const key of LIST_KEYS) {
      const v = (json as Record<string, unknown>)[key]
      if (Array.isArray(v)) return v
    }
  }
  return null
}

async function readJson(res: Response): Promise<{ json: unknown } | { notJson: string }> {
  const text = await res.text()
  try {
    return { json: JSON.parse(text) }
  } catch {
    const type = res.headers.get('content-type')?.split(';')[0] || 'no content-type'
    return { notJson: text.trim() === '' ? 'an empty body' : type }
  }
}

/** Polls the backend, logs in and lists conversations; see SmokeOptions. */
export async function smokeTest(opts: SmokeOptions): Promise<SmokeResult> {
  const base = parseBaseUrl(opts.baseUrl)
  if (!(opts.timeoutSeconds > 0) || !Number.isFinite(opts.timeoutSeconds)) {
    throw new UserError(
      `${SMOKE_INPUTS.timeout}: "${opts.timeoutSeconds}" is not a number of seconds above 0. Fix: e.g. ${SMOKE_INPUTS.timeout}: 120.`,
    )
  }
  const healthUrl = endpoint(base, opts.healthPath || DEFAULT_HEALTH_PATH, SMOKE_INPUTS.healthPath)
  const loginUrl = opts.login && endpoint(base, opts.login.path, SMOKE_INPUTS.loginPath)
  const listUrl =
    opts.conversationsPath && endpoint(base, opts.conversationsPath, SMOKE_INPUTS.conversationsPath)
  if (opts.login) {
    try {
      JSON.parse(opts.login.body)
    } catch {
      // JSON.parse's message quotes the text, which holds the password: not passed on.
      throw new UserError(
        `${SMOKE_INPUTS.loginBody}: is not valid JSON. Fix: e.g. ${SMOKE_INPUTS.loginBody}: '{"email": "\${{ secrets.SMOKE_EMAIL }}", "password": "\${{ secrets.SMOKE_PASSWORD }}"}'.`,
      )
    }
    opts.log.mask?.(opts.login.body)
  }
  const fetchImpl = opts.fetchImpl ?? fetch
  const requestSeconds = opts.requestTimeoutSeconds ?? DEFAULT_REQUEST_TIMEOUT_SECONDS
  const requestMs = Math.ceil(
    (requestSeconds > 0 ? requestSeconds : DEFAULT_REQUEST_TIMEOUT_SECONDS) * 1000,
  )
  const jar = new CookieJar(opts.log)
  const steps: SmokeStep[] = []

  const health = await pollHealth(
    healthUrl,
    opts.timeoutSeconds * 1000,
    requestMs,
    jar,
    opts,
    fetchImpl,
  )
  steps.push(health)
  let token: string | null = null
  if (health.ok && opts.login && loginUrl) {
    const result = await login(loginUrl, opts.login, requestMs, jar, opts.log, fetchImpl)
    steps.push(result.step)
    token = result.token
  }
  if (steps.every((s) => s.ok) && listUrl) {
    steps.push(
      await conversations(
        listUrl,
        opts.requireConversations,
        requestMs,
        jar,
        token,
        opts.log,
        fetchImpl,
      ),
    )
  }

  const planned = ['health', opts.login && 'login', listUrl && 'conversations'].filter(
    (s): s is string => Boolean(s),
  )
  const skipped = planned.slice(steps.length)
  const ok = steps.every((s) => s.ok)
  const detail =
    steps.map((s) => s.detail).join('; ') +
    (skipped.length ? `; ${skipped.join(' and ')} not run` : '')
  return { check: { name: 'smoke-test', ok, detail }, steps }
}

async function pollHealth(
  url: URL,
  timeoutMs: number,
  requestMs: number,
  jar: CookieJar,
  opts: SmokeOptions,
  fetchImpl: typeof fetch,
): Promise<SmokeStep> {
  const started = performance.now()
  const deadline = started + timeoutMs
  let delay = FIRST_DELAY_MS
  let tries = 0
  let status: number | null
  let why: string
  for (;;) {
    tries++
    // AbortSignal.timeout takes whole milliseconds only.
    const limit = Math.ceil(
      Math.min(requestMs, Math.max(deadline - performance.now(), LAST_TRY_MS)),
    )
    try {
      const res = await fetchImpl(url, {
        headers: { accept: 'application/json', ...jar.header() },
        signal: AbortSignal.timeout(limit),
      })
      // Read to the end so the connection can be reused; the body itself is not shown.
      await res.arrayBuffer()
      jar.store(res)
      status = res.status
      why = `${res.status}`
      if (res.ok) {
        const ms = performance.now() - started
        const detail = `health ${res.status} after ${plural(tries, 'try', 'tries')} (${seconds(ms)})`
        opts.log.info(`smoke: GET ${url.href} → ${res.status}: ${detail}`)
        return { name: 'health', ok: true, status, ms, detail }
      }
    } catch (err) {
      status = null
      why = whyNoAnswer(err, limit)
    }
    const left = deadline - performance.now()
    if (left <= 0) break
    const wait = Math.min(delay, left)
    opts.log.info(
      `smoke: GET ${url.href} → ${why} (try ${tries}, ${seconds(performance.now() - started)}); trying again in ${seconds(wait)}`,
    )
    await sleep(wait)
    delay = Math.min(delay * 2, MAX_DELAY_MS)
  }
  const ms = performance.now() - started
  const hint =
    status === 404 || status === 405
      ? `; check ${SMOKE_INPUTS.healthPath}`
      : status === null
        ? `; is the backend running at ${url.origin}?`
        : ''
  const detail = `health: no 2xx from ${url.href} within ${seconds(timeoutMs)} (${plural(tries, 'try', 'tries')}, last: ${why})${hint}`
  opts.log.info(`smoke: ${detail}`)
  return { name: 'health', ok: false, status, ms, detail }
}

async function login(
  url: URL,
  login: NonNullable<SmokeOptions['login']>,
  requestMs: number,
  jar: CookieJar,
  log: Log,
  fetchImpl: typeof fetch,
): Promise<{ step: SmokeStep; token: string | null }> {
  const started = performance.now()
  const done = (
    ok: boolean,
    status: number | null,
    detail: string,
    token: string | null = null,
  ) => {
    log.info(`smoke: POST ${url.href} → ${detail}`)
    return {
      step: { name: 'login' as const, ok, status, ms: performance.now() - started, detail },
      token,
    }
  }
  let res: Response
  try {
    res = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...jar.header() },
      body: login.body,
      // A form-style login answers 302/303 with the session cookie: keep it, do not follow.
      redirect: 'manual',
      signal: AbortSignal.timeout(requestMs),
    })
  } catch (err) {
    return done(false, null, `login: ${whyNoAnswer(err, requestMs)}`)
  }
  jar.store(res)
  const redirected = res.status >= 300 && res.status < 400
  if (!res.ok && !redirected) {
    await res.arrayBuffer().catch(() => undefined)
    const hint =
      res.status === 401 || res.status === 403
        ? `: check the credentials in ${SMOKE_INPUTS.loginBody}`
        : res.status === 404 || res.status === 405
          ? `: check ${SMOKE_INPUTS.loginPath}`
          : res.status === 422 || res.status === 400
            ? `: check the fields in ${SMOKE_INPUTS.loginBody}`
            : ''
    return done(false, res.status, `login ${res.status} (expected 2xx${hint})`)
  }
  const got = jar.size ? [plural(jar.size, 'cookie')] : []
  if (!login.tokenField) {
    await res.arrayBuffer().catch(() => undefined)
    return done(true, res.status, `login ${res.status}${got.length ? ` (${got.join(', ')})` : ''}`)
  }
  const field = login.tokenField
  const body = redirected ? { notJson: `a ${res.status} redirect` } : await readJson(res)
  if ('notJson' in body) {
    return done(
      false,
      res.status,
      `login ${res.status} but the response is ${body.notJson}, not JSON with ${field}`,
    )
  }
  const token = at(body.json, field)
  if (typeof token !== 'string' || token === '') {
    // Field names are not secret and show where the token is instead.
    const fields =
      body.json && typeof body.json === 'object' && !Array.isArray(body.json)
        ? Object.keys(body.json).slice(0, 10).join(', ')
        : ''
    return done(
      false,
      res.status,
      `login ${res.status} but the response has no token at ${field}${fields ? ` (its fields: ${fields})` : ''}: check ${SMOKE_INPUTS.tokenField}`,
    )
  }
  log.mask?.(token)
  return done(
    true,
    res.status,
    `login ${res.status} (${[...got, 'bearer token'].join(', ')})`,
    token,
  )
}

async function conversations(
  url: URL,
  require: boolean,
  requestMs: number,
  jar: CookieJar,
  token: string | null,
  log: Log,
  fetchImpl: typeof fetch,
): Promise<SmokeStep> {
  const started = performance.now()
  const done = (ok: boolean, status: number | null, detail: string): SmokeStep => {
    log.info(`smoke: GET ${url.href} → ${detail}`)
    return { name: 'conversations', ok, status, ms: performance.now() - started, detail }
  }
  let res: Response
  try {
    res = await fetchImpl(url, {
      headers: {
        accept: 'application/json',
        ...jar.header(),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      signal: AbortSignal.timeout(requestMs),
    })
  } catch (err) {
    return done(false, null, `conversations: ${whyNoAnswer(err, requestMs)}`)
  }
  if (!res.ok) {
    await res.arrayBuffer().catch(() => undefined)
    const hint =
      res.status === 401 || res.status === 403
        ? ': not logged in (the login gave no session cookie or token it accepts)'
        : ''
    return done(false, res.status, `conversations ${res.status} (expected 2xx${hint})`)
  }
  const body = await readJson(res)
  if ('notJson' in body) {
    // A single-page app's server answers every path with index.html: a 200 that proves nothing.
    return done(
      false,
      res.status,
      `conversations ${res.status} but the response is ${body.notJson}, not JSON: check ${SMOKE_INPUTS.conversationsPath}`,
    )
  }
  const list = conversationsIn(body.json)
  if (require && list === null) {
    return done(
      false,
      res.status,
      `conversations ${res.status} but the JSON is not a list, nor holds one under ${LIST_KEYS.join(', ')}`,
    )
  }
  if (require && list!.length === 0) {
    return done(
      false,
      res.status,
      `conversations ${res.status} but the list is empty, and conversations are required: the restored database holds none this user can see`,
    )
  }
  return done(
    true,
    res.status,
    `conversations ${res.status}${list ? `, ${plural(list.length, 'item')}` : ''}`,
  )
}
