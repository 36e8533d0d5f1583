/**
 * The HTTP smoke test after a restore (runbook, Restore step 4): the health endpoint answers,
 * a login works, and the conversations list comes back. The backend is usually still starting
 * when this runs, so the health endpoint is polled until it answers 2xx or the time runs out.
 *
 * Unless a health path is given, the runbook's /v1/health is tried first and then the paths
 * OmniAI itself serves (/health, /healthz, /readyz, /v1/status; backend/api/health.py and
 * backend/api/v1/status.py): the runbook names an endpoint the real backend does not have.
 *
 * OmniAI logs in with cookies (backend/api/auth.py): POST /api/auth/login answers with a session
 * cookie (omni_session, HttpOnly) and a CSRF cookie (omni_csrf), and the CSRF token again as
 * csrf_token in the JSON. A state-changing request that carries the session cookie must echo the
 * token in X-CSRF-Token and carry an allowed Origin, or it gets 403 (backend/core/middleware.py,
 * ChatCSRFMiddleware). A bearer-token login (smoke-token-field) works as well.
 *
 * The login body and whatever the login returns (cookies, a bearer token) are credentials from
 * secrets: they are sent on and never written to a log line, a detail or an error message;
 * response bodies are never quoted either, since a server may echo what it was sent.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Check } from '../checks/checks.js'
import { UserError } from '../util/errors.js'
import type { Log } from '../util/log.js'

/** Input names for the error messages (as in action.yml and options/). */
export const SMOKE_INPUTS = {
  url: 'smoke-url',
  healthPath: 'smoke-health-path',
  timeout: 'smoke-timeout',
  loginPath: 'smoke-login-path',
  loginBody: 'smoke-login-body',
  tokenField: 'smoke-token-field',
  conversationsPath: 'smoke-conversations-path',
} as const

/** The runbook's health path first, then OmniAI's own, in the order tried when none is given. */
export const DEFAULT_HEALTH_PATHS = ['/v1/health', '/health', '/healthz', '/readyz', '/v1/status']

/** OmniAI's csrf_header_name (backend/config/settings.py). */
export const CSRF_HEADER = 'X-CSRF-Token'

/** A cookie whose value a CSRF check wants back in the header: omni_csrf, csrftoken, XSRF-TOKEN. */
const CSRF_COOKIE = /csrf|xsrf/i

export interface SmokeOptions {
  /** The backend's address, e.g. http://localhost:8000; may end in a path prefix (/api). */
  baseUrl: string
  /**
   * Relative to baseUrl and used exactly as given. Unset: DEFAULT_HEALTH_PATHS, each tried in turn
   * while the one before answers 404 or 405 (not served there).
   */
  healthPath?: string
  /** How long the health endpoint may take to answer 2xx, in all. */
  timeoutSeconds: number
  /** The limit for each single request; default 10 s (less when timeoutSeconds has less left). */
  requestTimeoutSeconds?: number
  login?: {
    path: string
    /** JSON, sent as is with POST. A secret: never logged. */
    body: string
    /**
     * Where the bearer token is in the response JSON: `access_token`, or a dotted path `data.token`.
     * Unset: the login must set a cookie (OmniAI's session cookie).
     */
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
      `${input}: "${path}" is not a path. Fix: give a path on ${SMOKE_INPUTS.url}, e.g. /health.`,
    )
  }
  return url
}

/** Short values (flags like "1") are not masked: that would hide every such string in the log. */
function maskLong(log: Log, value: string): void {
  if (value.length >= 8) log.mask?.(value)
}

/** Cookies by name, as a browser would send them back to the same server. */
class CookieJar {
  private cookies = new Map<string, string>()

  constructor(private readonly log: Log) {}

  /** Keeps the response's cookies; returns the names it set (names are not secret, values are). */
  store(res: Response): string[] {
    const set: string[] = []
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
        maskLong(this.log, value)
        this.cookies.set(name, value)
        set.push(name)
      }
    }
    return set
  }

  get size(): number {
    return this.cookies.size
  }

  /** The value of the CSRF cookie (OmniAI's omni_csrf), which the CSRF header must repeat. */
  csrfCookie(): string | null {
    for (const [name, value] of this.cookies) if (CSRF_COOKIE.test(name) && value) return value
    return null
  }

  header(): Record<string, string> {
    if (this.cookies.size === 0) return {}
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
  }
}

/** What the login leaves for the requests after it. */
interface Session {
  jar: CookieJar
  /** From the login's JSON (OmniAI: csrf_token), used when no CSRF cookie holds it. */
  csrfToken: string | null
  bearer: string | null
}

/**
 * The headers a page on the backend's own origin adds to a POST: the CSRF token in X-CSRF-Token
 * when one is known, and Origin when cookies go along. Origin only with cookies, because that is
 * when OmniAI checks it (ChatCSRFMiddleware: a request carrying the session cookie without Origin
 * gets 403), and because OmniAI drops Set-Cookie from its answer to any request that has an Origin
 * header (SecurityHeadersMiddleware compares an int port with a str and never finds a request
 * same-site): a login sent with Origin gets 200 and no session.
 */
function stateChangingHeaders(base: URL, session: Session): Record<string, string> {
  const headers: Record<string, string> = {}
  const csrf = session.jar.csrfCookie() ?? session.csrfToken
  if (csrf) headers[CSRF_HEADER] = csrf
  if (session.jar.size) headers.origin = base.origin
  return headers
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

/** "a, b or c" */
const either = (items: string[]) =>
  items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`

/** The value at a dotted path in parsed JSON. */
function at(json: unknown, path: string): unknown {
  let v = json
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[key]
  }
  return v
}

/** Every string in parsed JSON (the login body's password among them). */
function strings(json: unknown): string[] {
  if (typeof json === 'string') return [json]
  if (json && typeof json === 'object') return Object.values(json).flatMap(strings)
  return []
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
  const explicit = Boolean(opts.healthPath)
  const healthPaths = opts.healthPath ? [opts.healthPath] : DEFAULT_HEALTH_PATHS
  const candidates = healthPaths.map((path) => ({
    path,
    url: endpoint(base, path, SMOKE_INPUTS.healthPath),
  }))
  const loginUrl = opts.login && endpoint(base, opts.login.path, SMOKE_INPUTS.loginPath)
  const listUrl =
    opts.conversationsPath && endpoint(base, opts.conversationsPath, SMOKE_INPUTS.conversationsPath)
  if (opts.login) {
    let body: unknown
    try {
      body = JSON.parse(opts.login.body)
    } catch {
      // JSON.parse's message quotes the text, which holds the password: not passed on.
      throw new UserError(
        `${SMOKE_INPUTS.loginBody}: is not valid JSON. Fix: e.g. ${SMOKE_INPUTS.loginBody}: '{"username": "\${{ secrets.SMOKE_USERNAME }}", "password": "\${{ secrets.SMOKE_PASSWORD }}"}'.`,
      )
    }
    opts.log.mask?.(opts.login.body)
    // The password alone too: a server may answer with it, and an answer could reach a log some day.
    for (const value of strings(body)) maskLong(opts.log, value)
  }
  const fetchImpl = opts.fetchImpl ?? fetch
  const requestSeconds = opts.requestTimeoutSeconds ?? DEFAULT_REQUEST_TIMEOUT_SECONDS
  const requestMs = Math.ceil(
    (requestSeconds > 0 ? requestSeconds : DEFAULT_REQUEST_TIMEOUT_SECONDS) * 1000,
  )
  const session: Session = { jar: new CookieJar(opts.log), csrfToken: null, bearer: null }
  const steps: SmokeStep[] = []

  steps.push(
    await pollHealth(
      base,
      candidates,
      explicit,
      opts.timeoutSeconds * 1000,
      requestMs,
      session.jar,
      opts.log,
      fetchImpl,
    ),
  )
  if (steps[0]!.ok && opts.login && loginUrl) {
    steps.push(await login(base, loginUrl, opts.login, requestMs, session, opts.log, fetchImpl))
  }
  if (steps.every((s) => s.ok) && listUrl) {
    steps.push(
      await conversations(
        listUrl,
        opts.requireConversations,
        requestMs,
        session,
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

/** 404 and 405: the server is up and this path is not its health endpoint. */
const notServed = (status: number | null) => status === 404 || status === 405

/**
 * Polls the candidates until one answers 2xx. No answer (still starting) or an answer other than
 * 404/405 (a health endpoint that says "not yet") waits and asks the same path again; 404/405
 * moves on to the next path at once, and after the last one starts over after the wait.
 */
async function pollHealth(
  base: URL,
  candidates: { path: string; url: URL }[],
  explicit: boolean,
  timeoutMs: number,
  requestMs: number,
  jar: CookieJar,
  log: Log,
  fetchImpl: typeof fetch,
): Promise<SmokeStep> {
  const started = performance.now()
  const deadline = started + timeoutMs
  let delay = FIRST_DELAY_MS
  let tries = 0
  let i = 0
  let status: number | null
  let why: string
  /** The last answer of each path that was asked, for the detail. */
  const answers = new Map<string, string>()
  for (;;) {
    const { path, url } = candidates[i]!
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
      answers.set(path, why)
      if (res.ok) {
        const ms = performance.now() - started
        // The paths before this one, each of which answered 404 or 405 last.
        const skipped = candidates
          .slice(0, i)
          .map((c) => `${c.path} ${answers.get(c.path)}`)
          .join(', ')
        const detail = `health ${res.status} from ${path} after ${plural(tries, 'try', 'tries')} (${seconds(ms)}${skipped ? `; not served: ${skipped}` : ''})`
        log.info(`smoke: GET ${url.href} → ${res.status}: ${detail}`)
        return { name: 'health', ok: true, status, ms, detail }
      }
    } catch (err) {
      status = null
      why = whyNoAnswer(err, limit)
    }
    const next = candidates[i + 1]
    if (notServed(status) && next) {
      // The server is up: ask its next path now. A round of these ends even past the deadline,
      // so a backend that came up at the last moment still gets all its paths asked.
      log.info(`smoke: GET ${url.href} → ${why} (not served here); trying ${next.path}`)
      i++
      continue
    }
    if (notServed(status)) i = 0
    const left = deadline - performance.now()
    if (left <= 0) break
    const wait = Math.min(delay, left)
    log.info(
      `smoke: GET ${url.href} → ${why} (try ${tries}, ${seconds(performance.now() - started)}); trying ${candidates[i]!.url.href === url.href ? 'again' : candidates[i]!.path} in ${seconds(wait)}`,
    )
    await sleep(wait)
    delay = Math.min(delay * 2, MAX_DELAY_MS)
  }
  const ms = performance.now() - started
  const last = `${plural(tries, 'try', 'tries')}, last: ${why}`
  let detail: string
  if (explicit) {
    const hint = notServed(status)
      ? `; check ${SMOKE_INPUTS.healthPath}`
      : status === null
        ? `; is the backend running at ${base.origin}?`
        : ''
    detail = `health: no 2xx from ${candidates[0]!.url.href} within ${seconds(timeoutMs)} (${last})${hint}`
  } else {
    const asked = [...answers].map(([p, a]) => `${p} ${a}`).join(', ')
    const hint =
      status === null
        ? `; is the backend running at ${base.origin}?`
        : answers.size === candidates.length &&
            [...answers.values()].every((a) => /^40[45]$/.test(a))
          ? `; none of them is served: set ${SMOKE_INPUTS.healthPath} to the backend's health endpoint`
          : ''
    detail = `health: no 2xx from ${either(candidates.map((c) => c.path))} at ${base.href} within ${seconds(timeoutMs)} (${last}${asked ? `; answers: ${asked}` : ''})${hint}`
  }
  log.info(`smoke: ${detail}`)
  return { name: 'health', ok: false, status, ms, detail }
}

async function login(
  base: URL,
  url: URL,
  login: NonNullable<SmokeOptions['login']>,
  requestMs: number,
  session: Session,
  log: Log,
  fetchImpl: typeof fetch,
): Promise<SmokeStep> {
  const started = performance.now()
  const done = (ok: boolean, status: number | null, detail: string): SmokeStep => {
    log.info(`smoke: POST ${url.href} → ${detail}`)
    return { name: 'login', ok, status, ms: performance.now() - started, detail }
  }
  const extra = stateChangingHeaders(base, session)
  let res: Response
  try {
    res = await fetchImpl(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...session.jar.header(),
        ...extra,
      },
      body: login.body,
      // A form-style login answers 302/303 with the session cookie: keep it, do not follow.
      redirect: 'manual',
      signal: AbortSignal.timeout(requestMs),
    })
  } catch (err) {
    return done(false, null, `login: ${whyNoAnswer(err, requestMs)}`)
  }
  const set = session.jar.store(res)
  const redirected = res.status >= 300 && res.status < 400
  if (!res.ok && !redirected) {
    await res.arrayBuffer().catch(() => undefined)
    const sent = [CSRF_HEADER in extra && CSRF_HEADER, extra.origin && `Origin ${extra.origin}`]
      .filter(Boolean)
      .join(' and ')
    const hint =
      res.status === 401 || res.status === 403
        ? `: check the credentials in ${SMOKE_INPUTS.loginBody}${res.status === 403 && sent ? `, or the server's CSRF check (sent ${sent})` : ''}`
        : res.status === 404 || res.status === 405
          ? `: check ${SMOKE_INPUTS.loginPath}`
          : res.status === 422 || res.status === 400
            ? `: check the fields in ${SMOKE_INPUTS.loginBody}`
            : res.status === 429
              ? ': too many login attempts, the server refuses more for now'
              : ''
    return done(false, res.status, `login ${res.status} (expected 2xx${hint})`)
  }
  const body = redirected ? { notJson: `a ${res.status} redirect` } : await readJson(res)
  if ('json' in body) {
    const csrf = at(body.json, 'csrf_token')
    if (typeof csrf === 'string' && csrf !== '') {
      maskLong(log, csrf)
      session.csrfToken = csrf
    }
  }
  const got = [
    ...(set.length ? [`${set.length === 1 ? 'cookie' : 'cookies'} ${set.join(', ')}`] : []),
    ...(session.jar.csrfCookie() || session.csrfToken ? ['CSRF token'] : []),
  ]
  const field = login.tokenField
  if (!field) {
    if (session.jar.size === 0) {
      return done(
        false,
        res.status,
        `login ${res.status} but it set no cookie, and ${SMOKE_INPUTS.tokenField} is not set: nothing carries the session to the next request`,
      )
    }
    return done(true, res.status, `login ${res.status} (${got.join('; ')})`)
  }
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
  session.bearer = token
  return done(true, res.status, `login ${res.status} (${[...got, 'bearer token'].join('; ')})`)
}

async function conversations(
  url: URL,
  require: boolean,
  requestMs: number,
  session: Session,
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
    // A GET: no CSRF header or Origin, as OmniAI asks for neither on a read.
    res = await fetchImpl(url, {
      headers: {
        accept: 'application/json',
        ...session.jar.header(),
        ...(session.bearer ? { authorization: `Bearer ${session.bearer}` } : {}),
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
