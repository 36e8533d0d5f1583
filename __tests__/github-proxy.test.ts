/**
 * GitHub REST calls through a proxy, as a self-hosted runner behind a corporate proxy makes them
 * (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), and their retries of server errors and dropped connections.
 * Node's global fetch ignores those variables; src/github/api.ts goes through @actions/http-client's
 * proxy dispatcher. A real proxy written here (node:http: CONNECT tunnels and absolute-form
 * requests) sits between the action and the stand-in for GitHub, and records what it carries.
 *
 * The stand-in's own URL is http://127.0.0.1:<port>, and @actions/http-client never sends a
 * loopback host (localhost, 127.x, [::1]) through a proxy (`checkBypass` in its proxy.js),
 * whatever the environment says. So the action addresses the stand-in by another name for the same
 * address: this machine's host name when it resolves to 127.0.0.1, else the IPv4-mapped IPv6 form
 * [::ffff:127.0.0.1], which the bypass does not recognise and which still reaches the IPv4 socket.
 */
import { readRunnerContext } from '../src/options/context.js'
import { spawnSync } from 'node:child_process'
import dns from 'node:dns/promises'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Log } from '../src/util/log.js'
import { startGitHubStandIn } from './github-standin.js'

const s = await startGitHubStandIn()
const saved = { ...process.env }
Object.assign(process.env, s.env)
const { githubRequest } = await import('../src/github/api.js')
const evidence = await import('../src/github/evidence.js')

const PROXY_VARIABLES = [
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'https_proxy',
  'http_proxy',
  'no_proxy',
]

/** A name for 127.0.0.1 that is not a loopback literal (see the file's comment). */
async function loopbackName(): Promise<string> {
  const host = os.hostname()
  const found = await dns.lookup(host, { all: true }).catch(() => [])
  return found.some((a) => a.address === '127.0.0.1') ? host : '[::ffff:7f00:1]'
}
const host = await loopbackName()
const port = Number(new URL(s.url).port)
/** The stand-in's REST API by that name. */
const apiUrl = `http://${host}:${port}`

/** What the proxy carried: `CONNECT host:port` for a tunnel, `GET http://…` for a forwarded request. */
const carried: string[] = []
/** Where a tunnel to port 443 goes: the TLS front of the stand-in (the HTTPS case). */
let tlsPort = 0

const proxy = http.createServer((req, res) => {
  // Absolute-form: a plain HTTP request forwarded as is.
  carried.push(`${req.method} ${req.url}`)
  const target = new URL(req.url ?? '')
  const upstream = http.request(
    {
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port,
      method: req.method,
      path: target.pathname + target.search,
      headers: req.headers,
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers)
      up.pipe(res)
    },
  )
  upstream.on('error', () => res.writeHead(502).end())
  req.pipe(upstream)
})
proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
  carried.push(`CONNECT ${req.url}`)
  const m = /^(.*):(\d+)$/.exec(req.url ?? '')
  if (!m) {
    client.end('HTTP/1.1 400 Bad Request\r\n\r\n')
    return
  }
  const name = m[1]!.replace(/^\[|\]$/g, '')
  const to =
    Number(m[2]) === 443 ? { host: '127.0.0.1', port: tlsPort } : { host: name, port: Number(m[2]) }
  const upstream = net.connect(to.port, to.host, () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
  })
  upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'))
  client.on('error', () => upstream.destroy())
})
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`

afterAll(async () => {
  process.env = saved
  proxy.closeAllConnections()
  await new Promise((r) => proxy.close(r))
  await s.close()
})

beforeEach(() => {
  for (const v of PROXY_VARIABLES) delete process.env[v]
  carried.length = 0
  s.requests.length = 0
})
afterEach(() => {
  for (const v of PROXY_VARIABLES) delete process.env[v]
})

function memoryLog(): Log & { lines: string[]; warnings: string[] } {
  const lines: string[] = []
  const warnings: string[] = []
  return {
    lines,
    warnings,
    info: (m) => void lines.push(m),
    warning: (m) => void warnings.push(m),
    group: (_name, fn) => fn(),
  }
}

const repo = (api = apiUrl) => ({ token: s.token, owner: s.owner, repo: s.repo, apiUrl: api })
const getRepository = (api = apiUrl, log = memoryLog()) =>
  githubRequest(`${api}/repos/${s.owner}/${s.repo}`, repo(api), log, () => 'refused')

describe('GitHub REST calls and the proxy variables', () => {
  it('with no proxy variable, requests go straight to GitHub: the proxy sees nothing (positive control)', async () => {
    const res = await getRepository()
    expect(res.status).toBe(200)
    expect((res.body as { default_branch: string }).default_branch).toBe('main')
    expect(s.requests.map((r) => r.path)).toEqual([`/repos/${s.owner}/${s.repo}`])
    expect(carried).toEqual([])
  })

  it('HTTP_PROXY: every request goes through the proxy', async () => {
    process.env.HTTP_PROXY = proxyUrl
    const res = await getRepository()
    expect(res.status).toBe(200)
    expect(carried).toEqual([`CONNECT ${host}:${port}`])
    expect(s.requests.map((r) => r.path)).toEqual([`/repos/${s.owner}/${s.repo}`])
  })

  it('http_proxy in lower case counts too, and a whole drill record goes through it', async () => {
    process.env.http_proxy = proxyUrl
    const settings = {
      ...evidence.evidenceSettings(
        { token: s.token, title: 'OmniAI restore drills', author: 'github-actions[bot]' },
        readRunnerContext(s.env),
      ),
      apiUrl,
    }
    const record = {
      date: new Date().toISOString(),
      ok: true,
      engine: 'sqlite',
      backup: null,
      backupAgeSeconds: null,
      restoreSeconds: null,
      databaseBytes: null,
      backupCount: 1,
      checks: { checksum: true },
      failed: [],
      decrypted: null,
      run: `https://github.com/${s.owner}/${s.repo}/actions/runs/${s.runId}`,
    }
    const r = await evidence.recordDrill(record, settings, memoryLog())
    expect(r.commentUrl).toMatch(/#issuecomment-\d+$/)
    // One tunnel per request: the issue list, the new issue, the comment.
    expect(carried).toEqual(Array(3).fill(`CONNECT ${host}:${port}`))
    expect(s.requests.map((q) => `${q.method} ${q.path.split('?')[0]}`)).toEqual([
      `GET /repos/${s.owner}/${s.repo}/issues`,
      `POST /repos/${s.owner}/${s.repo}/issues`,
      `POST /repos/${s.owner}/${s.repo}/issues/1/comments`,
    ])
  })

  it('NO_PROXY naming the API host: straight to GitHub, the proxy sees nothing', async () => {
    process.env.HTTP_PROXY = proxyUrl
    process.env.NO_PROXY = `example.com,${host}`
    expect((await getRepository()).status).toBe(200)
    expect(carried).toEqual([])
    expect(s.requests).toHaveLength(1)
  })

  it('NO_PROXY naming another host only: still through the proxy', async () => {
    process.env.HTTP_PROXY = proxyUrl
    process.env.NO_PROXY = 'example.com,.internal'
    expect((await getRepository()).status).toBe(200)
    expect(carried).toEqual([`CONNECT ${host}:${port}`])
  })

  it('HTTP_PROXY is not used for https, HTTPS_PROXY is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-proxy-tls-'))
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=api.github.test',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    )
    expect(made.status, made.stderr).toBe(0)
    // The TLS front: decrypts and passes the bytes on to the stand-in.
    const front = tls.createServer(
      {
        key: fs.readFileSync(path.join(dir, 'key.pem')),
        cert: fs.readFileSync(path.join(dir, 'cert.pem')),
      },
      (socket) => {
        const up = net.connect(port, '127.0.0.1')
        socket.pipe(up).pipe(socket)
        up.on('error', () => socket.destroy())
        socket.on('error', () => up.destroy())
      },
    )
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
    tlsPort = (front.address() as AddressInfo).port
    // The certificate is this test's own: the client is told not to check it.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
    try {
      // HTTP_PROXY only: an https URL goes straight to the TLS front.
      process.env.HTTP_PROXY = proxyUrl
      const direct = `https://${host}:${tlsPort}`
      expect((await getRepository(direct)).status).toBe(200)
      expect(carried).toEqual([])

      // HTTPS_PROXY: through the proxy. The name resolves nowhere, so only the proxy, which
      // sends port 443 to the TLS front, can have reached GitHub with it.
      delete process.env.HTTP_PROXY
      process.env.HTTPS_PROXY = proxyUrl
      const res = await getRepository('https://api.github.test')
      expect(res.status).toBe(200)
      expect(carried).toEqual(['CONNECT api.github.test:443'])
      expect(s.requests).toHaveLength(2)
    } finally {
      delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
      front.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('server errors and dropped connections are tried again', () => {
  it('a 502, then 200: the call succeeds on its second attempt, and the log says so', async () => {
    process.env.HTTP_PROXY = proxyUrl
    s.fail(new RegExp(`^/repos/${s.owner}/${s.repo}$`), 'server-error', 1)
    const log = memoryLog()
    const started = Date.now()
    const res = await getRepository(apiUrl, log)
    expect(res.status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    expect(s.requests).toHaveLength(2)
    expect(carried).toHaveLength(2)
    expect(log.lines).toEqual([
      `GitHub API GET /repos/${s.owner}/${s.repo}: 502 (Server Error), attempt 1 of 4; trying again`,
    ])
    expect(log.warnings).toEqual([])
  })

  it('a connection dropped without an answer, then 200: tried again', async () => {
    s.fail(new RegExp(`^/repos/${s.owner}/${s.repo}$`), 'reset', 1)
    const log = memoryLog()
    const res = await getRepository(apiUrl, log)
    expect(res.status).toBe(200)
    expect(s.requests).toHaveLength(2)
    expect(log.lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^GitHub API GET /repos/${s.owner}/${s.repo}: no response \\(.+\\), attempt 1 of 4; trying again$`,
        ),
      ),
    ])
  })

  it('a refusal (403) is not tried again: one request, the caller’s message', async () => {
    s.fail(new RegExp(`^/repos/${s.owner}/${s.repo}$`), '403-permission', 1)
    const err = await getRepository().catch((e: Error) => e)
    expect((err as Error).message).toBe('refused')
    expect(s.requests).toHaveLength(1)
  })
})
