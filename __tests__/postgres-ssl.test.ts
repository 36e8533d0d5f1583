/**
 * sslmode means what libpq says it means, for every connection the action opens: each case
 * runs the action (a backup, or a drill) and, as the control, the real pg_dump with the same
 * URL and environment, and both must agree. The server is a PostgreSQL cluster with ssl on,
 * a CA and certificates made here with openssl.
 */
import { execFile, spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { libpqNameCheck, openPgClient } from '../src/engines/postgres/ssl.js'
import { parsePgUrl } from '../src/engines/postgres/tools.js'
import { failed, run, tempDir } from './helpers.js'
import { clientTool, defaultBinDir, PG_PASSWORD, startCluster, type Cluster } from './pg-cluster.js'
import { hasCommand } from './tools.js'

const exec = promisify(execFile)
const plainServer = inject('pgSource')
const restoreServer = inject('pgRestore')
const KEY_PASSPHRASE = 'key-Passphrase-7c1e'

/**
 * Every warning the process emits while this file runs. node-postgres's sslmode warning is
 * recorded and not printed: the positive control below makes it on purpose.
 */
const warnings: string[] = []
const originalEmitWarning = process.emitWarning
const emitWarning = originalEmitWarning.bind(process)
afterAll(() => {
  process.emitWarning = originalEmitWarning
})
process.emitWarning = ((warning: string | Error, ...rest: never[]) => {
  warnings.push(String(warning instanceof Error ? warning.message : warning))
  if (!/SSL modes/.test(String(warning))) emitWarning(warning, ...rest)
}) as typeof process.emitWarning

/** A CA, a second CA, a server certificate for localhost and 127.0.0.1, client certificates. */
async function makeCertificates(dir: string) {
  const openssl = (...args: string[]) => exec('openssl', args, { cwd: dir })
  const key = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name)
  const ca = async (name: string, cn: string) => {
    await key(`${name}.key`)
    await openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '3',
      '-subj',
      `/CN=${cn}`,
    )
  }
  const signed = async (name: string, cn: string, by: string, ext: string | null) => {
    await key(`${name}.key`)
    await openssl('req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    if (ext) await fs.writeFile(path.join(dir, `${name}.ext`), `${ext}\n`)
    await openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${by}.crt`,
      '-CAkey',
      `${by}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '3',
      ...(ext ? ['-extfile', `${name}.ext`] : []),
    )
  }
  await ca('ca', 'OmniAI test CA')
  await ca('wrong-ca', 'Some other CA')
  await signed('server', 'localhost', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1')
  await signed('client', 'certuser', 'ca', null)
  await signed('stranger', 'certuser', 'wrong-ca', null)
  // The client key again, encrypted with a passphrase (PKCS#8, as openssl writes it).
  await openssl(
    'pkey',
    '-in',
    'client.key',
    '-aes256',
    '-passout',
    `pass:${KEY_PASSPHRASE}`,
    '-out',
    'client-encrypted.key',
  )
  await fs.copyFile(path.join(dir, 'client.key'), path.join(dir, 'client-open.key'))
  for (const name of await fs.readdir(dir)) {
    await fs.chmod(path.join(dir, name), name.endsWith('.key') ? 0o600 : 0o644)
  }
  // libpq refuses a key others may read; the action must refuse it too.
  await fs.chmod(path.join(dir, 'client-open.key'), 0o644)
}

/** The real pg_dump, with the URL and environment as given: the control. */
async function pgDump(url: string, env: NodeJS.ProcessEnv = {}) {
  const tool = (await clientTool('pg_dump'))!
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^PG/.test(k)),
  ) as NodeJS.ProcessEnv
  // No terminal and no input: OpenSSL would ask there for an encrypted key's passphrase.
  const child = spawn(
    tool,
    ['--schema-only', '--no-password', `--file=${os.devNull}`, `--dbname=${url}`],
    { env: { ...clean, ...env }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  return { ok: code === 0, stderr }
}

const haveParts = Boolean(plainServer) && hasCommand('openssl')

describe.skipIf(!haveParts)('sslmode as libpq reads it: the action agrees with pg_dump', () => {
  let certs: string
  let cluster: Cluster
  /** The SSL cluster's demo database at `host`, as `user`, with `query`. */
  let at: (query: string, host?: string, user?: string) => string
  /** A demo database on the test suite's source server, which has no SSL. */
  let plainDb: string
  const plainName = `omniai_ssl_${process.pid}`
  const onPlain = async (statement: string) => {
    const client = await openPgClient(parsePgUrl(plainServer, 'test'), 'test')
    try {
      await client.query(statement)
    } finally {
      await client.end()
    }
  }

  beforeAll(async () => {
    certs = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-ssl-'))
    await makeCertificates(certs)
    cluster = await startCluster((await defaultBinDir())!, {
      ssl: {
        cert: path.join(certs, 'server.crt'),
        key: path.join(certs, 'server.key'),
        ca: path.join(certs, 'ca.crt'),
      },
      // 127.0.0.2 is not in the server's certificate; ::1 is where localhost may resolve first.
      listen: '127.0.0.1,127.0.0.2,::1',
      // SSL only, but for plainok; certuser also needs a client certificate the CA signed,
      // naming it.
      hba: [
        'hostssl all certuser 127.0.0.1/32 scram-sha-256 clientcert=verify-full',
        // plainok may log in with or without SSL.
        'host all plainok 127.0.0.1/32 scram-sha-256',
        'hostssl all all 127.0.0.1/32 scram-sha-256',
        'hostssl all all 127.0.0.2/32 scram-sha-256',
        'hostssl all all ::1/128 scram-sha-256',
      ],
    })
    at = (query, host = '127.0.0.1', user = 'postgres') => {
      const u = new URL(cluster.url)
      u.hostname = host
      u.username = user
      u.pathname = '/omniai'
      u.search = query ? `?${query}` : ''
      return u.href
    }
    const admin = await openPgClient(
      parsePgUrl(at('sslmode=require').replace('/omniai', '/postgres'), 'test'),
      'test',
    )
    try {
      await admin.query('CREATE DATABASE omniai')
      for (const role of ['certuser', 'plainok']) {
        await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${PG_PASSWORD}'`)
      }
    } finally {
      await admin.end()
    }
    const small = { conversations: 20, messagesPerConversation: 2, auditRows: 50 }
    await generatePostgresDemo(at('sslmode=require'), small)
    await onPlain(`DROP DATABASE IF EXISTS ${plainName}`)
    await onPlain(`CREATE DATABASE ${plainName}`)
    const u = new URL(plainServer)
    u.pathname = `/${plainName}`
    plainDb = u.href
    await generatePostgresDemo(plainDb, small)
  })

  afterAll(async () => {
    if (plainDb) await onPlain(`DROP DATABASE IF EXISTS ${plainName}`)
    await cluster?.stop()
    if (certs) await fs.rm(certs, { recursive: true, force: true })
  })

  const file = (name: string) => path.join(certs, name)

  /** A backup by the action and pg_dump as the control, from the same URL and environment. */
  async function both(url: string, env: NodeJS.ProcessEnv = {}) {
    const dir = await tempDir()
    const saved = { ...process.env }
    Object.assign(process.env, env)
    try {
      const { report, log } = await run(
        'backup',
        { 'connection-string': url, 'backup-dir': path.join(dir, 'b') },
        dir,
      )
      const dump = await pgDump(url, env)
      const security = log.lines.find((l) => l.startsWith('connection-string: '))
      return { report, error: report.error ?? null, security, dump }
    } finally {
      for (const k of Object.keys(env)) {
        if (saved[k] === undefined) delete process.env[k]
        else process.env[k] = saved[k]
      }
    }
  }

  it('require without a CA: both connect, encrypted, the certificate unchecked', async () => {
    const r = await both(at('sslmode=require'))
    expect(r.error).toBeNull()
    expect(r.dump).toEqual({ ok: true, stderr: '' })
    // From pg_stat_ssl on the action's own connection.
    expect(r.security).toMatch(
      /^connection-string: 127\.0\.0\.1:\d+ encrypted \(TLSv1\.[23], .*sslmode=require: the server's certificate not checked/,
    )
    // A certificate no CA here signed is no obstacle to require without sslrootcert.
    const wrongHost = await both(at('sslmode=require', '127.0.0.2'))
    expect([wrongHost.error, wrongHost.dump.ok]).toEqual([null, true])
  })

  it('verify-full with the right CA: both connect, by address and by name', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const r = await both(at(`sslmode=verify-full&sslrootcert=${file('ca.crt')}`, host))
      expect(r.error, host).toBeNull()
      expect(r.dump.ok, r.dump.stderr).toBe(true)
      expect(r.security).toContain(
        `sslmode=verify-full: the server's certificate checked against ${file('ca.crt')} and its name against ${host}`,
      )
    }
  })

  it('verify-full with a wrong CA: both refuse; one line naming connection-string and the fix', async () => {
    const r = await both(at(`sslmode=verify-full&sslrootcert=${file('wrong-ca.crt')}`))
    expect(r.dump.ok).toBe(false)
    expect(r.dump.stderr).toMatch(/certificate verify failed/)
    expect(r.error).toMatch(
      /^connection-string: sslmode=verify-full refused the server at 127\.0\.0\.1:\d+: its certificate is not signed by the CA in \S+wrong-ca\.crt \(\w+: .*\)\. Fix: set sslrootcert to the CA certificate that signed the server's/,
    )
    expect(r.error).not.toContain('\n')
    expect(r.error).not.toContain(PG_PASSWORD)
    expect(r.error).not.toContain(encodeURIComponent(PG_PASSWORD))
  })

  it("libpq's require checks the CA when sslrootcert is given: a wrong CA is refused by both", async () => {
    const wrong = await both(at(`sslmode=require&sslrootcert=${file('wrong-ca.crt')}`))
    expect(wrong.dump.ok).toBe(false)
    expect(wrong.error).toMatch(
      /^connection-string: sslmode=require refused the server .*Fix: set sslrootcert.*sslmode=require checks the CA whenever sslrootcert/,
    )
    // The right CA, and a host name not in the certificate: require (like verify-ca) checks the CA only.
    const right = await both(at(`sslmode=require&sslrootcert=${file('ca.crt')}`, '127.0.0.2'))
    expect([right.error, right.dump.ok]).toEqual([null, true])
    expect(right.security).toContain('its name not checked')
  })

  it('verify-full against a host name the certificate does not hold: both refuse; verify-ca lets it through in both', async () => {
    const full = await both(at(`sslmode=verify-full&sslrootcert=${file('ca.crt')}`, '127.0.0.2'))
    expect(full.dump.ok).toBe(false)
    expect(full.dump.stderr).toMatch(/does not match host name "127\.0\.0\.2"/)
    expect(full.error).toMatch(
      /^connection-string: sslmode=verify-full refused the server at 127\.0\.0\.2:\d+: server certificate for "localhost" \(and 1 other name: 127\.0\.0\.1\) does not match host name "127\.0\.0\.2"\. Fix: /,
    )
    const ca = await both(at(`sslmode=verify-ca&sslrootcert=${file('ca.crt')}`, '127.0.0.2'))
    expect([ca.error, ca.dump.ok]).toEqual([null, true])
  })

  it('verify-full without any CA file: both refuse, the action saying which file it looked for', async () => {
    const home = await tempDir()
    const r = await both(at('sslmode=verify-full'), { HOME: home })
    expect(r.dump.ok).toBe(false)
    expect(r.dump.stderr).toMatch(/root certificate file .* does not exist/)
    expect(r.error).toBe(
      `connection-string: sslmode=verify-full checks the server's certificate against a CA certificate, and there is none: root certificate file ${path.join(home, '.postgresql', 'root.crt')} does not exist. Fix: add sslrootcert=/path/to/ca.pem to the URL (the CA that signed the server's certificate: your provider's CA bundle, or the one you made), or sslmode=require to encrypt without checking the server.`,
    )
  })

  it('disable against a server that takes only SSL: both refuse, said clearly', async () => {
    const r = await both(at('sslmode=disable'))
    expect(r.dump.ok).toBe(false)
    expect(r.dump.stderr).toMatch(/no encryption/)
    expect(r.error).toMatch(
      /^connection-string: the server at 127\.0\.0\.1:\d+ accepts this user and database only over SSL \(no pg_hba\.conf entry .*no encryption\), and sslmode=disable does not encrypt\. Fix: remove sslmode=disable from the URL/,
    )
  })

  it('prefer and allow: SSL where the server has it, plain where it has not, in both', async () => {
    // No sslmode is libpq's prefer: encrypted against the SSL server...
    const unset = await both(at(''))
    expect([unset.error, unset.dump.ok]).toEqual([null, true])
    expect(unset.security).toMatch(/ encrypted \(TLSv1\.[23].*sslmode=prefer \(libpq's default\)/)
    // ...and plain against one without SSL.
    const plain = new URL(plainDb)
    plain.search = '?sslmode=prefer'
    const fallback = await both(plain.href)
    expect([fallback.error, fallback.dump.ok]).toEqual([null, true])
    expect(fallback.security).toMatch(
      /^connection-string: 127\.0\.0\.1:\d+ not encrypted \(sslmode=prefer: the server offers no SSL\)$/,
    )
    // allow tries plain first, and SSL when the server turns plain down.
    const allow = await both(at('sslmode=allow'))
    expect([allow.error, allow.dump.ok]).toEqual([null, true])
    expect(allow.security).toMatch(/ encrypted \(TLSv1/)
    plain.search = '?sslmode=allow'
    const allowPlain = await both(plain.href)
    expect([allowPlain.error, allowPlain.dump.ok]).toEqual([null, true])
    expect(allowPlain.security).toMatch(
      / not encrypted \(sslmode=allow: the server took the plain connection allow tries first\)$/,
    )
    // require against the server without SSL: both refuse.
    plain.search = '?sslmode=require'
    const required = await both(plain.href)
    expect(required.dump.ok).toBe(false)
    expect(required.dump.stderr).toMatch(/server does not support SSL/)
    expect(required.error).toMatch(
      /^connection-string: the server at 127\.0\.0\.1:\d+ does not accept SSL connections, and sslmode=require allows no other\. Fix: /,
    )
  })

  it('prefer falls back to plain when the SSL attempt fails (a CA that did not sign the server), as libpq does; require does not', async () => {
    const wrongCa = `sslrootcert=${file('wrong-ca.crt')}`
    const prefer = await both(at(`sslmode=prefer&${wrongCa}`, '127.0.0.1', 'plainok'))
    expect([prefer.error, prefer.dump.ok]).toEqual([null, true])
    expect(prefer.security).toMatch(
      /^connection-string: 127\.0\.0\.1:\d+ not encrypted \(sslmode=prefer: the SSL attempt failed, and prefer then tries plain: sslmode=prefer refused the server at 127\.0\.0\.1:\d+: its certificate is not signed by the CA in \S+wrong-ca\.crt/,
    )
    const require = await both(at(`sslmode=require&${wrongCa}`, '127.0.0.1', 'plainok'))
    expect(require.dump.ok).toBe(false)
    expect(require.error).toMatch(/^connection-string: sslmode=require refused the server/)
    const disable = await both(at('sslmode=disable', '127.0.0.1', 'plainok'))
    expect([disable.error, disable.dump.ok]).toEqual([null, true])
    expect(disable.security).toMatch(/ not encrypted \(sslmode=disable\)$/)
  })

  it("libpq's environment: PGSSLMODE and PGSSLROOTCERT count for the action as for pg_dump; the URL wins", async () => {
    const good = await both(at(''), { PGSSLMODE: 'verify-full', PGSSLROOTCERT: file('ca.crt') })
    expect([good.error, good.dump.ok]).toEqual([null, true])
    expect(good.security).toContain(
      "PGSSLMODE=verify-full: the server's certificate checked against",
    )
    const bad = await both(at(''), {
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: file('wrong-ca.crt'),
    })
    expect(bad.dump.ok).toBe(false)
    expect(bad.error).toMatch(/^connection-string: PGSSLMODE=verify-full refused the server/)
    const urlWins = await both(at('sslmode=require'), { PGSSLMODE: 'disable' })
    expect([urlWins.error, urlWins.dump.ok]).toEqual([null, true])
  })

  it('a client certificate (clientcert=verify-full): with sslcert and sslkey both connect; without, both are refused', async () => {
    const ca = `sslmode=verify-full&sslrootcert=${file('ca.crt')}`
    const withCert = await both(
      at(
        `${ca}&sslcert=${file('client.crt')}&sslkey=${file('client.key')}`,
        '127.0.0.1',
        'certuser',
      ),
    )
    expect([withCert.error, withCert.dump.ok]).toEqual([null, true])
    expect(withCert.security).toContain(`client certificate ${file('client.crt')}`)

    const home = await tempDir()
    const without = await both(at(ca, '127.0.0.1', 'certuser'), { HOME: home })
    expect(without.dump.ok).toBe(false)
    expect(without.dump.stderr).toMatch(/certificate/)
    expect(without.error).toMatch(
      /^connection-string: the server at 127\.0\.0\.1:\d+ requires a client certificate it accepts \(.*; the runner sent none: \S+postgresql\.crt does not exist\)\. Fix: set sslcert and sslkey/,
    )

    // A certificate from a CA the server does not trust: the server ends the handshake.
    const stranger = await both(
      at(
        `${ca}&sslcert=${file('stranger.crt')}&sslkey=${file('stranger.key')}`,
        '127.0.0.1',
        'certuser',
      ),
    )
    expect(stranger.dump.ok).toBe(false)
    expect(stranger.error).toMatch(/^connection-string: .*Fix: .*sslcert and sslkey/)
  })

  it('an encrypted client key opens with sslpassword in both; a wrong or missing one, and a key others can read, are refused by both', async () => {
    const base = `sslmode=verify-full&sslrootcert=${file('ca.crt')}&sslcert=${file('client.crt')}`
    const enc = `${base}&sslkey=${file('client-encrypted.key')}`
    const ok = await both(at(`${enc}&sslpassword=${KEY_PASSPHRASE}`, '127.0.0.1', 'certuser'))
    expect([ok.error, ok.dump.ok]).toEqual([null, true])
    const wrong = await both(at(`${enc}&sslpassword=not-it`, '127.0.0.1', 'certuser'))
    expect(wrong.dump.ok).toBe(false)
    expect(wrong.error).toMatch(
      /^connection-string: private key file \S+client-encrypted\.key does not open with the sslpassword in the URL .*Fix: /,
    )
    expect(wrong.error).not.toContain('not-it')
    const none = await both(at(enc, '127.0.0.1', 'certuser'))
    expect(none.dump.ok).toBe(false)
    expect(none.error).toMatch(
      /is encrypted, and the URL has no sslpassword\. Fix: add sslpassword=/,
    )
    const open = await both(
      at(`${base}&sslkey=${file('client-open.key')}`, '127.0.0.1', 'certuser'),
    )
    expect(open.dump.ok).toBe(false)
    expect(open.dump.stderr).toMatch(/has group or world access/)
    expect(open.error).toMatch(
      /^connection-string: private key file \S+client-open\.key has group or world access \(mode 644\), which pg_dump refuses\. Fix: chmod 600/,
    )
  })

  it('restore-connection-string and the drill role: the same rules (verify-full into the SSL server)', async () => {
    const dir = await tempDir()
    const backups = path.join(dir, 'b')
    const backup = await run(
      'backup',
      { 'connection-string': at('sslmode=require'), 'backup-dir': backups },
      dir,
    )
    expect(backup.report.error).toBeUndefined()
    // The drill must restore into another server than the source: the SSL one's copy goes to
    // the plain restore server with prefer (plain there), and the plain source's backup below
    // into the SSL server with verify-full.
    const intoPlain = new URL(restoreServer)
    intoPlain.search = '?sslmode=prefer'
    const drill1 = await run(
      'drill',
      { 'backup-dir': backups, 'restore-connection-string': intoPlain.href, 'drill-log': 'none' },
      dir,
    )
    expect(drill1.report.error).toBeUndefined()
    expect(failed(drill1.report)).toEqual({})

    const plainBackups = path.join(dir, 'plain')
    const source = new URL(plainDb)
    const b2 = await run(
      'backup',
      { 'connection-string': source.href, 'backup-dir': plainBackups },
      dir,
    )
    expect(b2.report.error).toBeUndefined()
    const into = new URL(at(`sslmode=verify-full&sslrootcert=${file('ca.crt')}`, 'localhost'))
    into.pathname = '/postgres'
    const drill = await run(
      'drill',
      { 'backup-dir': plainBackups, 'restore-connection-string': into.href, 'drill-log': 'none' },
      dir,
    )
    expect(drill.report.error).toBeUndefined()
    expect(failed(drill.report)).toEqual({})
    expect(drill.log.lines.join('\n')).toMatch(
      /restore-connection-string: localhost:\d+ encrypted \(TLSv1\.[23], .*sslmode=verify-full: the server's certificate checked/,
    )
    // Control: the drill's pg_restore went through libpq with the same settings; a wrong CA
    // stops the drill before anything is made.
    const wrong = new URL(into.href)
    wrong.searchParams.set('sslrootcert', file('wrong-ca.crt'))
    const refused = await run(
      'drill',
      { 'backup-dir': plainBackups, 'restore-connection-string': wrong.href, 'drill-log': 'none' },
      dir,
    )
    // The server takes only SSL: pg_restore, as the drill's own role, logged in through libpq
    // with the URL's settings. pg_dump agrees on both URLs.
    expect((await pgDump(into.href)).ok).toBe(true)
    expect((await pgDump(wrong.href)).ok).toBe(false)
    // A drill's failure is its restore check's.
    expect(failed(refused.report).restore).toMatch(
      /^the backup did not restore: restore-connection-string: sslmode=verify-full refused the server at localhost:\d+: its certificate is not signed by the CA/,
    )
    const disabled = new URL(into.href)
    disabled.search = '?sslmode=disable'
    const noSsl = await run(
      'drill',
      {
        'backup-dir': plainBackups,
        'restore-connection-string': disabled.href,
        'drill-log': 'none',
      },
      dir,
    )
    expect((await pgDump(disabled.href)).ok).toBe(false)
    expect(failed(noSsl.report).restore).toMatch(
      /^the backup did not restore: restore-connection-string: the server at localhost:\d+ accepts this user and database only over SSL/,
    )
  })

  it("no node-postgres sslmode warning was emitted (positive control: node-postgres's own reading warns)", async () => {
    expect(warnings.filter((w) => /sslmode|SSL modes|libpq/i.test(w))).toEqual([])
    // node-postgres reading an sslmode itself warns once per process: the listener hears it.
    new pg.Client({ connectionString: 'postgres://u@127.0.0.1:1/db?sslmode=require' })
    expect(warnings.filter((w) => /SSL modes/.test(w))).toHaveLength(1)
  })
})

describe('sslmode and its files, read as libpq reads them (no server)', () => {
  const url = 'postgres://u:pw@db.example:5432/omniai'
  const control = async (query: string) =>
    (await pgDump(`postgres://u@127.0.0.1:1/db?${query}`)).stderr

  it('refuses what pg_dump refuses, naming the input and the fix', async () => {
    expect(() => parsePgUrl(`${url}?sslmode=no-verify`, 'connection-string')).toThrow(
      /^connection-string: sslmode=no-verify is not an sslmode pg_dump knows \(no-verify is node-postgres's own; .*\)\. Fix: use one of disable, allow, prefer, require, verify-ca, verify-full\.$/,
    )
    expect(() => parsePgUrl(`${url}?ssl=1`, 'restore-connection-string')).toThrow(
      /^restore-connection-string: ssl=1 is node-postgres's own parameter, which pg_dump refuses/,
    )
    expect(() =>
      parsePgUrl(`${url}?uselibpqcompat=true&sslmode=require`, 'connection-string'),
    ).toThrow(/uselibpqcompat is node-postgres's own parameter/)
    expect(() => parsePgUrl(url, 'connection-string', { PGSSLMODE: 'strict' })).toThrow(
      /^connection-string: PGSSLMODE=strict is not an sslmode/,
    )
    expect(() =>
      parsePgUrl(`${url}?ssl_min_protocol_version=TLSv1.4`, 'connection-string'),
    ).toThrow(/ssl_min_protocol_version=TLSv1\.4 is not a TLS version/)
    if (await clientTool('pg_dump')) {
      expect(await control('sslmode=no-verify')).toMatch(/invalid sslmode value/)
      expect(await control('ssl=1')).toMatch(/invalid URI query parameter: "ssl"/)
      expect(await control('uselibpqcompat=true')).toMatch(/invalid URI query parameter/)
      expect(await control('ssl_min_protocol_version=TLSv1.4')).toMatch(
        /invalid ssl_min_protocol_version/,
      )
    }
  })

  it('the mode: the URL, else PGSSLMODE, else PGREQUIRESSL, else prefer; ssl=true is require', () => {
    const mode = (q: string, env: NodeJS.ProcessEnv = {}) =>
      parsePgUrl(`${url}${q}`, 'connection-string', env).ssl.modeFrom
    expect(mode('')).toBe("sslmode=prefer (libpq's default)")
    expect(mode('', { PGSSLMODE: 'verify-ca' })).toBe('PGSSLMODE=verify-ca')
    expect(mode('?sslmode=disable', { PGSSLMODE: 'verify-ca' })).toBe('sslmode=disable')
    expect(mode('', { PGREQUIRESSL: '1' })).toBe('PGREQUIRESSL=1 (sslmode=require)')
    expect(mode('?ssl=true')).toBe('ssl=true (sslmode=require)')
    // libpq stores ssl=true and requiressl as sslmode where they stand: the last one wins.
    expect(mode('?sslmode=disable&requiressl=1')).toBe('requiressl=1 (sslmode=require)')
    expect(mode('?requiressl=1&sslmode=disable')).toBe('sslmode=disable')
    expect(mode('?sslmode=verify-full&ssl=true')).toBe('ssl=true (sslmode=require)')
    expect(mode('?sslrootcert=system')).toMatch(/^sslrootcert=system/)
    expect(parsePgUrl(`${url}?sslrootcert=system`, 'c', {}).ssl.mode).toBe('verify-full')
    expect(() => mode('?sslrootcert=system&sslmode=require')).toThrow(/Fix: sslmode=verify-full/)
    const files = parsePgUrl(url, 'c', { HOME: '/home/runner' }).ssl
    expect([files.rootcert, files.cert, files.key]).toEqual([
      '/home/runner/.postgresql/root.crt',
      '/home/runner/.postgresql/postgresql.crt',
      '/home/runner/.postgresql/postgresql.key',
    ])
  })

  it("verify-full's name check is libpq's: the Common Name counts only without a subjectAltName of the host's kind", () => {
    const cert = (subjectaltname: string | undefined, CN: string) =>
      ({ subjectaltname, subject: { CN } }) as unknown as import('node:tls').PeerCertificate
    expect(libpqNameCheck('127.0.0.1', cert('DNS:localhost', '127.0.0.1'))).toBeUndefined()
    expect(libpqNameCheck('127.0.0.1', cert('IP Address:10.0.0.1', '127.0.0.1'))).toBeInstanceOf(
      Error,
    )
    expect(libpqNameCheck('db.example.com', cert('DNS:*.example.com', 'x'))).toBeUndefined()
    expect(libpqNameCheck('a.db.example.com', cert('DNS:*.example.com', 'x'))).toBeInstanceOf(Error)
    expect(libpqNameCheck('DB.Example.COM', cert(undefined, 'db.example.com'))).toBeUndefined()
    expect(libpqNameCheck('::1', cert('IP Address:0:0:0:0:0:0:0:1', 'x'))).toBeUndefined()
  })
})
