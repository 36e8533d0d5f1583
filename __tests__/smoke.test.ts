import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { UserError } from '../src/util/errors.js'
import { renderSummary } from '../src/report/report.js'
import { CSRF_HEADER, smokeTest, type SmokeOptions } from '../src/smoke/smoke.js'
import { configFor, memoryLog, ROOT, run } from './helpers.js'

const EMAIL = 'drill@example.com'
const PASSWORD = `pw-${randomBytes(8).toString('hex')}`
const LOGIN_BODY = JSON.stringify({ email: EMAIL, password: PASSWORD })
const WRONG_PASSWORD = `wrong-${randomBytes(8).toString('hex')}`

interface BackendOptions {
  /** up: 200 at once; slow: 503 for 1.5 s, then 200; error: 500 always; hang: never answers. */
  health?: 'up' | 'slow' | 'error' | 'hang'
  /** What the conversations list needs: the login's session cookie, its bearer token, or nothing. */
  auth?: 'cookie' | 'bearer' | 'none'
  /** The conversations response body and its content type. */
  list?: { body: string; type?: string }
  /** Serve every route below this prefix too, e.g. /api. */
  prefix?: string
}

interface Seen {
  method: string
  path: string
  headers: http.IncomingHttpHeaders
}

const twelve = JSON.stringify({
  items: Array.from({ length: 12 }, (_, i) => ({ id: i + 1, title: `Conversation ${i + 1}` })),
  total: 12,
})

/** A stand-in for the OmniAI backend: real HTTP on 127.0.0.1, a random port. */
async function startBackend(opts: BackendOptions = {}) {
  const session = randomBytes(16).toString('hex')
  const token = randomBytes(24).toString('base64url')
  const started = Date.now()
  const seen: Seen[] = []
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const server = http.createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    let path = new URL(req.url ?? '/', 'http://x').pathname
    if (opts.prefix && path.startsWith(opts.prefix)) path = path.slice(opts.prefix.length)
    seen.push({ method: req.method ?? '', path, headers: req.headers })
    if (req.method === 'GET' && path === '/v1/health') {
      const health = opts.health ?? 'up'
      if (health === 'hang') return // never answers
      if (health === 'error') return json(res, 500, { detail: 'database is locked' })
      if (health === 'slow' && Date.now() - started < 1500)
        return json(res, 503, { detail: 'starting' })
      return json(res, 200, { status: 'ok' })
    }
    if (req.method === 'POST' && path === '/v1/auth/login') {
      const creds = JSON.parse(body) as { email: string; password: string }
      if (creds.email !== EMAIL || creds.password !== PASSWORD) {
        // Some servers echo what they were sent; the smoke test must not pass it on.
        return json(res, 401, { detail: `wrong password ${creds.password} for ${creds.email}` })
      }
      if ((opts.auth ?? 'cookie') === 'cookie') {
        res.setHeader('set-cookie', [
          `session=${session}; HttpOnly; Path=/; SameSite=Lax`,
          'csrftoken=; Max-Age=0; Path=/',
        ])
        return json(res, 200, { user: { email: EMAIL } })
      }
      return json(res, 200, { access_token: token, token_type: 'bearer' })
    }
    if (req.method === 'GET' && path === '/v1/conversations') {
      const auth = opts.auth ?? 'cookie'
      const allowed =
        auth === 'none' ||
        (auth === 'cookie' &&
          (req.headers.cookie ?? '').split('; ').includes(`session=${session}`)) ||
        (auth === 'bearer' && req.headers.authorization === `Bearer ${token}`)
      if (!allowed) return json(res, 401, { detail: 'Not authenticated' })
      res.writeHead(200, { 'content-type': opts.list?.type ?? 'application/json' })
      return res.end(opts.list?.body ?? twelve)
    }
    json(res, 404, { detail: 'Not Found' })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  servers.push(server)
  return { url: `http://127.0.0.1:${port}`, seen, session, token }
}

const servers: http.Server[] = []
const timers: NodeJS.Timeout[] = []
afterEach(async () => {
  for (const timer of timers.splice(0)) clearTimeout(timer)
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

/** A port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** OmniAI's cookie names (backend/config/settings.py at 2d5c13e). */
const SESSION_COOKIE = 'omni_session'
const CSRF_COOKIE = 'omni_csrf'
const USERNAME = 'drill'
const OMNI_LOGIN_BODY = JSON.stringify({ username: USERNAME, password: PASSWORD })
const WRONG_LOGIN_BODY = JSON.stringify({ username: USERNAME, password: WRONG_PASSWORD })

interface OmniOptions {
  /** Listen only after this long: until then every connection is refused, as while uvicorn starts. */
  listenAfterMs?: number
  /**
   * OmniAI at 2d5c13e drops Set-Cookie from its answer to any request that has an Origin header
   * (SecurityHeadersMiddleware: its same-site test compares an int port with a str). Default true.
   */
  stripCookiesWithOrigin?: boolean
  /** Hand out a session and its CSRF cookie on the first GET, before any login. */
  sessionBeforeLogin?: boolean
}

/**
 * A stand-in for OmniAI's own backend (backend/ at 2d5c13e): health on /health, /healthz,
 * /readyz and /v1/status but not the runbook's /v1/health; POST /api/auth/login with
 * {username, password} answering {user, csrf_token} and the cookies omni_session (HttpOnly) and
 * omni_csrf; ChatCSRFMiddleware's rules for a state-changing request under /api/ or /v1/ that
 * carries the session cookie (Origin or Referer required: 403 E2004; Origin allowed: 403 E2003;
 * X-CSRF-Token equal to the CSRF cookie and the session's token: 403 E2002); GET
 * /v1/conversations and /api/chat/conversations (a bare JSON array) only with a session.
 */
async function startOmniAI(opts: OmniOptions = {}) {
  const port = await closedPort()
  const url = `http://127.0.0.1:${port}`
  const sessions = new Map<string, { csrf: string; user: string | null }>()
  /** Every session and CSRF token handed out: none may reach a log or report. */
  const secrets: string[] = []
  const seen: Seen[] = []
  const server = http.createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    const path = new URL(req.url ?? '/', 'http://x').pathname
    seen.push({ method: req.method ?? '', path, headers: req.headers })
    const cookies = Object.fromEntries(
      (req.headers.cookie ?? '')
        .split(/;\s*/)
        .filter(Boolean)
        .map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)]),
    ) as Record<string, string | undefined>
    const session = sessions.get(cookies[SESSION_COOKIE] ?? '')
    const send = (status: number, json: unknown, setCookies: string[] = []) => {
      if (setCookies.length && !((opts.stripCookiesWithOrigin ?? true) && req.headers.origin))
        res.setHeader('set-cookie', setCookies)
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(json))
    }
    const issue = (user: string | null) => {
      const token = randomBytes(32).toString('base64url')
      const csrf = randomBytes(32).toString('base64url')
      sessions.set(token, { csrf, user })
      secrets.push(token, csrf)
      return {
        csrf,
        cookies: [
          `${SESSION_COOKIE}=${token}; HttpOnly; Max-Age=604800; Path=/; SameSite=lax`,
          `${CSRF_COOKIE}=${csrf}; Max-Age=604800; Path=/; SameSite=lax`,
        ],
      }
    }
    const refuse = (code: string, detail: string) => send(403, { detail, error: { code } })
    if (req.method !== 'GET' && /^\/(api|v1)\//.test(path) && cookies[SESSION_COOKIE]) {
      const origin = req.headers.origin
      if (!origin && !req.headers.referer) return refuse('E2004', 'Origin validation failed')
      if (origin && origin !== url) return refuse('E2003', 'Origin not allowed')
      const csrf = cookies[CSRF_COOKIE]
      if (session && (!csrf || req.headers['x-csrf-token'] !== csrf || csrf !== session.csrf))
        return refuse('E2002', 'CSRF validation failed')
    }
    if (req.method === 'GET' && ['/health', '/healthz', '/readyz', '/v1/status'].includes(path)) {
      const anonymous = opts.sessionBeforeLogin && !session ? issue(null).cookies : []
      return send(200, { status: path === '/readyz' ? 'ready' : 'ok' }, anonymous)
    }
    if (req.method === 'POST' && path === '/api/auth/login') {
      const creds = JSON.parse(body) as { username?: string; password?: string }
      if (creds.username !== USERNAME || creds.password !== PASSWORD)
        return send(401, { detail: 'Invalid username or password' })
      const issued = issue(USERNAME)
      return send(
        200,
        { user: { id: 'u1', username: USERNAME }, csrf_token: issued.csrf },
        issued.cookies,
      )
    }
    if (path === '/v1/conversations' || path === '/api/chat/conversations') {
      if (!session?.user) return send(401, { detail: 'Not authenticated' })
      if (req.method === 'POST') return send(200, { id: 'c4', title: 'New' })
      return send(
        200,
        [1, 2, 3].map((i) => ({ id: `c${i}`, title: `Conversation ${i}` })),
      )
    }
    send(404, { detail: 'Not Found' })
  })
  servers.push(server)
  const listening = new Promise<void>((resolve) =>
    timers.push(
      setTimeout(() => server.listen(port, '127.0.0.1', resolve), opts.listenAfterMs ?? 0),
    ),
  )
  if (!opts.listenAfterMs) await listening
  return { url, seen, secrets, listening, sessions }
}

/** What a browser page on the backend's origin would do, by hand: for the positive controls. */
async function rawLogin(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: OMNI_LOGIN_BODY,
  })
  const json = (await res.json()) as { csrf_token: string }
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ')
  return { status: res.status, cookie, csrf: json.csrf_token }
}

/** A fetch that changes every request's headers: a deliberately broken client. */
function brokenFetch(change: (headers: Headers) => void): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers)
    change(headers)
    return fetch(input, { ...init, headers })
  }
}

function options(baseUrl: string, more: Partial<SmokeOptions> = {}) {
  const log = memoryLog()
  const opts: SmokeOptions = {
    baseUrl,
    healthPath: '/v1/health',
    timeoutSeconds: 10,
    requireConversations: false,
    log,
    ...more,
  }
  return { opts, log }
}

const cookieLogin = { path: '/v1/auth/login', body: LOGIN_BODY }
const tokenLogin = { ...cookieLogin, tokenField: 'access_token' }

describe('smokeTest', () => {
  it('passes a backend that is healthy from the start', async () => {
    const backend = await startBackend()
    const { opts, log } = options(backend.url)
    const r = await smokeTest(opts)
    expect(r.check).toEqual({
      name: 'smoke-test',
      ok: true,
      detail: expect.stringMatching(/^health 200 from \/v1\/health after 1 try \(\d+\.\d s\)$/),
    })
    expect(r.steps).toEqual([
      { name: 'health', ok: true, status: 200, ms: expect.any(Number), detail: r.check.detail },
    ])
    expect(backend.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /v1/health'])
    expect(log.lines).toEqual([
      expect.stringMatching(/^smoke: GET http:\/\/127\.0\.0\.1:\d+\/v1\/health → 200/),
    ])
  })

  it('waits for a backend that is still starting (503 for 1.5 s)', async () => {
    const backend = await startBackend({ health: 'slow' })
    const { opts, log } = options(backend.url)
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(true)
    const health = r.steps[0]!
    expect(health.status).toBe(200)
    expect(health.ms).toBeGreaterThanOrEqual(1400)
    expect(health.ms).toBeLessThan(6000)
    const tries = Number(/after (\d+) tries/.exec(health.detail)?.[1])
    expect(tries).toBeGreaterThanOrEqual(2)
    expect(backend.seen).toHaveLength(tries)
    expect(log.lines.filter((l) => / → 503 \(try \d+/.test(l))).toHaveLength(tries - 1)
  })

  it('fails after the timeout when nothing is listening, and says so', async () => {
    const port = await closedPort()
    const { opts } = options(`http://127.0.0.1:${port}`, {
      timeoutSeconds: 1.5,
      login: cookieLogin,
      conversationsPath: '/v1/conversations',
    })
    const t0 = performance.now()
    const r = await smokeTest(opts)
    const took = performance.now() - t0
    expect(r.check.ok).toBe(false)
    expect(took).toBeGreaterThanOrEqual(1500)
    expect(took).toBeLessThan(4000)
    expect(r.check.detail).toMatch(
      new RegExp(
        `^health: no 2xx from http://127\\.0\\.0\\.1:${port}/v1/health within 1\\.5 s \\(\\d+ tries, last: connection refused \\(ECONNREFUSED\\)\\); is the backend running at http://127\\.0\\.0\\.1:${port}\\?; login and conversations not run$`,
      ),
    )
    expect(r.steps).toEqual([
      {
        name: 'health',
        ok: false,
        status: null,
        ms: expect.any(Number),
        detail: expect.any(String),
      },
    ])
  })

  it('gives up on a request that never answers, and keeps trying until the timeout', async () => {
    const backend = await startBackend({ health: 'hang' })
    const { opts } = options(backend.url, { timeoutSeconds: 1.2, requestTimeoutSeconds: 0.3 })
    const t0 = performance.now()
    const r = await smokeTest(opts)
    expect(performance.now() - t0).toBeLessThan(4000)
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(/\(\d+ tries, last: no answer within 0\.3 s\)/)
    expect(backend.seen.length).toBeGreaterThanOrEqual(2)
  })

  it('fails when health answers 500 throughout', async () => {
    const backend = await startBackend({ health: 'error' })
    const { opts } = options(backend.url, { timeoutSeconds: 1.5 })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.steps[0]).toMatchObject({ name: 'health', ok: false, status: 500 })
    expect(r.check.detail).toMatch(
      /^health: no 2xx from .* within 1\.5 s \(\d+ tries, last: 500\)$/,
    )
    expect(backend.seen.length).toBeGreaterThanOrEqual(3)
  })

  it('logs in and sends the session cookie on to the conversations list', async () => {
    const backend = await startBackend({ auth: 'cookie' })
    const { opts } = options(backend.url, {
      login: cookieLogin,
      conversationsPath: '/v1/conversations',
      requireConversations: true,
    })
    const r = await smokeTest(opts)
    expect(r.check.detail).toMatch(
      /^health 200 from \/v1\/health after 1 try \(\d+\.\d s\); login 200 \(cookie session\); conversations 200, 12 items$/,
    )
    expect(r.check.ok).toBe(true)
    expect(r.steps.map((s) => [s.name, s.ok, s.status])).toEqual([
      ['health', true, 200],
      ['login', true, 200],
      ['conversations', true, 200],
    ])
    const list = backend.seen.find((s) => s.path === '/v1/conversations')!
    // The expired csrftoken cookie is dropped, as a browser would.
    expect(list.headers.cookie).toBe(`session=${backend.session}`)
    expect(backend.seen.find((s) => s.method === 'POST')?.headers['content-type']).toBe(
      'application/json',
    )
  })

  it('fails the list with 401 without the login (the stand-in really checks the cookie)', async () => {
    const backend = await startBackend({ auth: 'cookie' })
    const { opts } = options(backend.url, { conversationsPath: '/v1/conversations' })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.steps[1]).toMatchObject({ name: 'conversations', ok: false, status: 401 })
    expect(r.check.detail).toMatch(/; conversations 401 \(expected 2xx: not logged in/)
  })

  it('sends the bearer token from tokenField and masks it', async () => {
    const backend = await startBackend({ auth: 'bearer' })
    const { opts, log } = options(backend.url, {
      login: tokenLogin,
      conversationsPath: '/v1/conversations',
    })
    const r = await smokeTest(opts)
    expect(r.check.detail).toMatch(/; login 200 \(bearer token\); conversations 200, 12 items$/)
    expect(r.check.ok).toBe(true)
    const list = backend.seen.find((s) => s.path === '/v1/conversations')!
    expect(list.headers.authorization).toBe(`Bearer ${backend.token}`)
    expect(log.masked).toContain(backend.token)
  })

  it('fails the login step when tokenField is not in the response, naming the fields there', async () => {
    const backend = await startBackend({ auth: 'bearer' })
    const { opts } = options(backend.url, {
      login: { ...cookieLogin, tokenField: 'data.token' },
      conversationsPath: '/v1/conversations',
    })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(
      /; login 200 but the response has no token at data\.token \(its fields: access_token, token_type\): check smoke-token-field; conversations not run$/,
    )
  })

  it('fails an empty conversation list when conversations are required', async () => {
    const backend = await startBackend({
      auth: 'none',
      list: { body: '{"items": [], "total": 0}' },
    })
    const { opts } = options(backend.url, {
      conversationsPath: '/v1/conversations',
      requireConversations: true,
    })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.steps[1]).toMatchObject({ name: 'conversations', ok: false, status: 200 })
    expect(r.check.detail).toMatch(/; conversations 200 but the list is empty/)
  })

  it('passes an empty conversation list when conversations are not required', async () => {
    const backend = await startBackend({ auth: 'none', list: { body: '[]' } })
    const { opts } = options(backend.url, {
      conversationsPath: '/v1/conversations',
      requireConversations: false,
    })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(true)
    expect(r.check.detail).toMatch(/; conversations 200, 0 items$/)
  })

  it('counts a list under data, and fails a 200 that is the front end’s HTML page', async () => {
    const data = await startBackend({ auth: 'none', list: { body: '{"data": [{"id": 1}]}' } })
    const listed = await smokeTest(
      options(data.url, { conversationsPath: '/v1/conversations', requireConversations: true })
        .opts,
    )
    expect(listed.check.detail).toMatch(/; conversations 200, 1 item$/)
    const spa = await startBackend({
      auth: 'none',
      list: { body: '<!doctype html><div id="root"></div>', type: 'text/html; charset=utf-8' },
    })
    const r = await smokeTest(options(spa.url, { conversationsPath: '/v1/conversations' }).opts)
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(/; conversations 200 but the response is text\/html, not JSON/)
  })

  it('keeps a path prefix in smoke-url', async () => {
    const backend = await startBackend({ prefix: '/api', auth: 'none' })
    const { opts } = options(`${backend.url}/api`, { conversationsPath: 'v1/conversations' })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(true)
    expect(backend.seen.map((s) => s.path)).toEqual(['/v1/health', '/v1/conversations'])
  })

  it('never logs or reports the login body, the token or the session cookie', async () => {
    const cookie = await startBackend({ auth: 'cookie' })
    const bearer = await startBackend({ auth: 'bearer' })
    const wrongBody = JSON.stringify({ email: EMAIL, password: WRONG_PASSWORD })
    const runs = [
      options(cookie.url, { login: cookieLogin, conversationsPath: '/v1/conversations' }),
      options(bearer.url, { login: tokenLogin, conversationsPath: '/v1/conversations' }),
      // The server echoes a wrong password in its 401 body.
      options(cookie.url, {
        login: { path: '/v1/auth/login', body: wrongBody },
        conversationsPath: '/v1/conversations',
      }),
    ]
    const results: boolean[] = []
    const details: (string | undefined)[] = []
    for (const { opts, log } of runs) {
      const r = await smokeTest(opts)
      results.push(r.check.ok)
      details.push(r.steps[1]?.detail)
      const said = JSON.stringify([r, log.lines, log.warnings, log.groups, log.annotations])
      for (const secret of [
        PASSWORD,
        WRONG_PASSWORD,
        LOGIN_BODY,
        wrongBody,
        cookie.session,
        bearer.token,
      ])
        expect(said).not.toContain(secret)
      expect(log.masked).toContain(opts.login!.body)
    }
    expect(results).toEqual([true, true, false])
    expect(details[2]).toBe('login 401 (expected 2xx: check the credentials in smoke-login-body)')
    expect(runs[0]!.log.masked).toContain(cookie.session)
  })

  it('names smoke-url when the base URL is bad, without echoing a password in it', async () => {
    const run = (baseUrl: string) =>
      smokeTest(options(baseUrl).opts).then(
        () => null,
        (e: unknown) => e as Error,
      )
    for (const [url, message] of [
      ['not a url', /^smoke-url: "not a url" is not a URL\. Fix: /],
      ['localhost:8000', /^smoke-url: "localhost:" is not http: or https:\. Fix: /],
      ['ftp://backup.example.com', /^smoke-url: "ftp:" is not http: or https:\. Fix: /],
      ['http://127.0.0.1:8000/?x=1', /^smoke-url: .* has a query or fragment\. Fix: /],
      [`http://admin:${PASSWORD}@127.0.0.1:8000`, /^smoke-url: holds a user name or password/],
    ] as const) {
      const err = await run(url)
      expect(err, url).toBeInstanceOf(UserError)
      expect(err!.message).toMatch(message)
      expect(err!.message).not.toContain(PASSWORD)
    }
  })

  it('rejects a login body that is not JSON without quoting it', async () => {
    const { opts } = options('http://127.0.0.1:1', {
      login: { path: '/v1/auth/login', body: `email=${EMAIL}&password=${PASSWORD}` },
    })
    const err = (await smokeTest(opts).catch((e: unknown) => e)) as Error
    expect(err).toBeInstanceOf(UserError)
    expect(err.message).toMatch(/^smoke-login-body: is not valid JSON\. Fix: /)
    expect(err.message).not.toContain(PASSWORD)
  })
})

describe('smokeTest against OmniAI’s own shape (backend/ at 2d5c13e)', () => {
  const omniLogin = { path: '/api/auth/login', body: OMNI_LOGIN_BODY }

  it('falls back from the runbook’s /v1/health to /health on a backend still starting, logs in with cookies and lists conversations', async () => {
    const omni = await startOmniAI({ listenAfterMs: 1000 })
    const { opts, log } = options(omni.url, {
      healthPath: undefined,
      login: omniLogin,
      conversationsPath: '/v1/conversations',
      requireConversations: true,
    })
    const r = await smokeTest(opts)
    expect(r.check.detail).toMatch(
      /^health 200 from \/health after \d+ tries \(\d+\.\d s; not served: \/v1\/health 404\); login 200 \(cookies omni_session, omni_csrf; CSRF token\); conversations 200, 3 items$/,
    )
    expect(r.check.ok).toBe(true)
    const health = r.steps[0]!
    expect(health.ms).toBeGreaterThanOrEqual(900)
    expect(health.ms).toBeLessThan(5000)
    // Refused while it started, then /v1/health 404 and /health 200 in one go.
    expect(log.lines.filter((l) => / → connection refused \(ECONNREFUSED\)/.test(l)).length).toBe(
      Number(/after (\d+) tries/.exec(health.detail)![1]) - 2,
    )
    expect(omni.seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'GET /v1/health',
      'GET /health',
      'POST /api/auth/login',
      'GET /v1/conversations',
    ])
    const [, , loginRequest, list] = omni.seen
    // No cookies yet: no Origin (OmniAI would drop the session cookie) and no CSRF token.
    expect(loginRequest!.headers.origin).toBeUndefined()
    expect(loginRequest!.headers['x-csrf-token']).toBeUndefined()
    const [session] = [...omni.sessions.keys()]
    expect(list!.headers.cookie).toBe(
      `omni_session=${session}; omni_csrf=${omni.sessions.get(session!)!.csrf}`,
    )
  })

  it('lists /api/chat/conversations too, the other list OmniAI serves', async () => {
    const omni = await startOmniAI()
    const { opts } = options(omni.url, {
      healthPath: undefined,
      login: omniLogin,
      conversationsPath: '/api/chat/conversations',
      requireConversations: true,
    })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(true)
    expect(r.check.detail).toMatch(/; conversations 200, 3 items$/)
  })

  it('uses an explicit /v1/health exactly as given, and fails on OmniAI (positive control)', async () => {
    const omni = await startOmniAI()
    const { opts } = options(omni.url, { healthPath: '/v1/health', timeoutSeconds: 1.5 })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.steps[0]).toMatchObject({ name: 'health', ok: false, status: 404 })
    expect(r.check.detail).toMatch(
      /^health: no 2xx from http:\/\/127\.0\.0\.1:\d+\/v1\/health within 1\.5 s \(\d+ tries, last: 404\); check smoke-health-path$/,
    )
    expect(new Set(omni.seen.map((s) => s.path))).toEqual(new Set(['/v1/health']))
  })

  it('names every path and the fix when none of the default paths is served', async () => {
    const backend = await startBackend({ health: 'up', prefix: '/elsewhere' })
    const { opts } = options(`${backend.url}/nothing-here`, {
      healthPath: undefined,
      timeoutSeconds: 1,
    })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.check.detail).toMatch(
      /^health: no 2xx from \/v1\/health, \/health, \/healthz, \/readyz or \/v1\/status at http:\/\/127\.0\.0\.1:\d+\/nothing-here\/ within 1\.0 s \(\d+ tries, last: 404; answers: \/v1\/health 404, \/health 404, \/healthz 404, \/readyz 404, \/v1\/status 404\); none of them is served: set smoke-health-path to the backend's health endpoint$/,
    )
  })

  it('waits on the runbook’s /v1/health while it answers 503, rather than skipping to a shallower path', async () => {
    const backend = await startBackend({ health: 'slow' })
    const { opts } = options(backend.url, { healthPath: undefined })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(true)
    expect(r.check.detail).toMatch(/^health 200 from \/v1\/health after \d+ tries/)
    expect(new Set(backend.seen.map((s) => s.path))).toEqual(new Set(['/v1/health']))
  })

  it('the stand-in enforces OmniAI’s CSRF and Origin rules (positive controls by hand)', async () => {
    const omni = await startOmniAI()
    const login = await rawLogin(omni.url)
    expect(login.status).toBe(200)
    expect(login.cookie).toMatch(/^omni_session=[\w-]+; omni_csrf=[\w-]+$/)
    const post = (headers: Record<string, string>) =>
      fetch(`${omni.url}/v1/conversations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: login.cookie, ...headers },
        body: '{"title": "New"}',
      }).then(async (res) => [
        res.status,
        ((await res.json()) as { error?: { code: string } }).error?.code,
      ])
    expect(await post({ origin: omni.url })).toEqual([403, 'E2002'])
    expect(await post({ origin: omni.url, [CSRF_HEADER]: 'not-the-token' })).toEqual([403, 'E2002'])
    expect(await post({ [CSRF_HEADER]: login.csrf })).toEqual([403, 'E2004'])
    expect(await post({ origin: 'https://evil.example', [CSRF_HEADER]: login.csrf })).toEqual([
      403,
      'E2003',
    ])
    expect(await post({ origin: omni.url, [CSRF_HEADER]: login.csrf })).toEqual([200, undefined])
    // The list needs the session cookie.
    expect((await fetch(`${omni.url}/v1/conversations`)).status).toBe(401)
    // OmniAI's quirk: a login sent with Origin gets 200 and no cookies.
    const withOrigin = await rawLogin(omni.url, { origin: omni.url })
    expect([withOrigin.status, withOrigin.cookie]).toEqual([200, ''])
  })

  it('fails a client that sends Origin on the login: OmniAI then sets no session cookie', async () => {
    const omni = await startOmniAI()
    const { opts } = options(omni.url, {
      healthPath: undefined,
      login: omniLogin,
      conversationsPath: '/v1/conversations',
      fetchImpl: brokenFetch((h) => h.set('origin', omni.url)),
    })
    const r = await smokeTest(opts)
    expect(r.check.ok).toBe(false)
    expect(r.steps[1]!.detail).toBe(
      'login 200 but it set no cookie, and smoke-token-field is not set: nothing carries the session to the next request',
    )
  })

  it('sends the CSRF token and Origin when the login carries a session cookie, and fails a client that drops the header', async () => {
    const shape = { sessionBeforeLogin: true, stripCookiesWithOrigin: false }
    const good = await startOmniAI(shape)
    const { opts } = options(good.url, {
      healthPath: undefined,
      login: omniLogin,
      conversationsPath: '/v1/conversations',
      requireConversations: true,
    })
    const r = await smokeTest(opts)
    expect(r.check.detail).toMatch(
      /; login 200 \(cookies omni_session, omni_csrf; CSRF token\); conversations 200, 3 items$/,
    )
    expect(r.check.ok).toBe(true)
    const sent = good.seen.find((s) => s.method === 'POST')!
    const [anonymous] = [...good.sessions]
    expect(sent.headers['x-csrf-token']).toBe(anonymous![1].csrf)
    expect(sent.headers.origin).toBe(good.url)

    for (const [change, code] of [
      [(h: Headers) => h.delete(CSRF_HEADER), 'X-CSRF-Token dropped'],
      [(h: Headers) => h.set('origin', 'https://evil.example'), 'a foreign Origin'],
    ] as const) {
      const omni = await startOmniAI(shape)
      const broken = options(omni.url, {
        healthPath: undefined,
        login: omniLogin,
        conversationsPath: '/v1/conversations',
        fetchImpl: brokenFetch((h) => {
          if (h.has('content-type')) change(h)
        }),
      })
      const failed = await smokeTest(broken.opts)
      expect(failed.check.ok, code).toBe(false)
      expect(failed.steps[1], code).toMatchObject({ name: 'login', ok: false, status: 403 })
      expect(failed.steps[1]!.detail, code).toMatch(
        /^login 403 \(expected 2xx: check the credentials in smoke-login-body, or the server's CSRF check \(sent X-CSRF-Token and Origin http:\/\/127\.0\.0\.1:\d+\)\)$/,
      )
    }
  })

  it('never lets the password, a session cookie or a CSRF token reach the report, the summary or the log', async () => {
    const omni = await startOmniAI()
    const anon = await startOmniAI({ sessionBeforeLogin: true, stripCookiesWithOrigin: false })
    const bearer = await startBackend({ auth: 'bearer' })
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'smoke-secrets-'))
    const runs = [
      { url: omni.url, body: OMNI_LOGIN_BODY, path: '/api/auth/login', ok: true },
      { url: omni.url, body: WRONG_LOGIN_BODY, path: '/api/auth/login', ok: false },
      { url: anon.url, body: OMNI_LOGIN_BODY, path: '/api/auth/login', ok: true },
      { url: bearer.url, body: LOGIN_BODY, path: '/v1/auth/login', ok: true, token: true },
    ]
    try {
      for (const one of runs) {
        const { report, log } = await run(
          'smoke',
          {
            'smoke-url': one.url,
            'smoke-timeout': '10',
            'smoke-login-path': one.path,
            'smoke-login-body': one.body,
            ...(one.token ? { 'smoke-token-field': 'access_token' } : {}),
            'smoke-conversations-path': '/v1/conversations',
            'report-file': path.join(dir, 'report.json'),
          },
          dir,
        )
        expect(report.ok, one.body === WRONG_LOGIN_BODY ? 'wrong password' : one.url).toBe(one.ok)
        const said = [
          JSON.stringify(report),
          renderSummary(report),
          await fs.readFile(path.join(dir, 'report.json'), 'utf8'),
          ...log.lines,
          ...log.warnings,
          ...log.groups,
          JSON.stringify(log.annotations),
        ].join('\n')
        const planted = [
          PASSWORD,
          WRONG_PASSWORD,
          OMNI_LOGIN_BODY,
          WRONG_LOGIN_BODY,
          LOGIN_BODY,
          ...omni.secrets,
          ...anon.secrets,
          bearer.token,
        ]
        expect(planted.filter((secret) => said.includes(secret))).toEqual([])
        // The search reads what was said: the smoke test's detail is in it.
        expect(said).toContain(report.checks.find((c) => c.name === 'smoke-test')!.detail)
        // And each one that this run saw went to the log's mask, for the Actions log.
        expect(log.masked).toContain(one.body)
        expect(log.masked).toContain(JSON.parse(one.body).password)
      }
      expect(omni.secrets.length).toBe(2)
      expect(anon.secrets.length).toBe(4)
      expect(runs.length).toBe(4)
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})

describe('smoke-health-path', () => {
  it('left unset, as the runner passes action.yml’s default, means the fallback list', async () => {
    // The runner sets INPUT_SMOKE-HEALTH-PATH to action.yml's default when the workflow does not:
    // the default must be empty for "not set" to be told from an explicit /v1/health.
    const yml = await fs.readFile(path.join(ROOT, 'action.yml'), 'utf8')
    const declared = /^ {2}smoke-health-path:\n(?: {4}.*\n)*? {4}default: (.*)$/m.exec(yml)![1]
    expect(declared).toBe("''")
    const url = 'http://localhost:8000'
    expect(
      configFor('smoke', { 'smoke-url': url, 'smoke-health-path': '' }, '/t').smoke,
    ).toMatchObject({ healthPath: null })
    expect(
      configFor('smoke', { 'smoke-url': url, 'smoke-health-path': ' /v1/health ' }, '/t').smoke,
    ).toMatchObject({ healthPath: '/v1/health' })
  })
})
