import { randomBytes } from 'node:crypto'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { UserError } from '../src/errors.js'
import { smokeTest, type SmokeOptions } from '../src/smoke.js'
import { memoryLog } from './helpers.js'

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
afterEach(async () => {
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
      detail: expect.stringMatching(/^health 200 after 1 try \(\d+\.\d s\)$/),
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
      /^health 200 after 1 try \(\d+\.\d s\); login 200 \(1 cookie\); conversations 200, 12 items$/,
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
