/**
 * TLS for the action's own PostgreSQL connections (node-postgres), made as libpq makes it for
 * pg_dump and pg_restore from the same URL and environment: one URL connects both or neither.
 * node-postgres on its own reads sslmode=require as verify-full, never falls back for prefer,
 * knows no allow, and ignores libpq's environment variables and ~/.postgresql files.
 *
 * What libpq does, and so what this does (PostgreSQL's libpq-ssl documentation, and
 * fe-connect.c / fe-secure-openssl.c):
 * - sslmode from the URL, else PGSSLMODE, else PGREQUIRESSL=1 (require), else prefer; `ssl=true`
 *   in a URL is sslmode=require; sslrootcert=system makes the default verify-full.
 * - disable: plain. allow: plain, and SSL when the server turns plain down. prefer: SSL, and
 *   plain when SSL fails (the server offers none, the handshake or a check fails, or the server
 *   turns the SSL login down). require, verify-ca, verify-full: SSL or nothing.
 * - The server's certificate is checked against the root certificate file (sslrootcert, else
 *   ~/.postgresql/root.crt) whenever that file exists, in every mode; require without one
 *   checks nothing. verify-ca and verify-full refuse to run without one; verify-full also
 *   matches the host name against the certificate's names as libpq does.
 * - The client certificate (sslcert, else ~/.postgresql/postgresql.crt) is sent when the file
 *   exists; its key (sslkey, else ~/.postgresql/postgresql.key) must then exist, be readable by
 *   its owner only (0640 if root owns it), match the certificate, and open with sslpassword.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import * as tls from 'node:tls'
import type pg from 'pg'
import { UserError } from '../../util/errors.js'

/** What TLS needs of a connection target (tools.ts PgTarget has it): the URL, where, sslmode and its files. */
export interface SslTarget {
  url: string
  host: string
  port: string
  sslPassword: string | null
  ssl: PgSsl
}

export const SSL_MODES = [
  'disable',
  'allow',
  'prefer',
  'require',
  'verify-ca',
  'verify-full',
] as const
export type SslMode = (typeof SSL_MODES)[number]

const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const

/** The TLS settings of one connection string with its environment, resolved as libpq does. */
export interface PgSsl {
  mode: SslMode
  /** How the mode was set, for messages: `sslmode=require`, `PGSSLMODE=require`, ... */
  modeFrom: string
  /** The CA file (or `system`); each file below may not exist, which libpq allows. */
  rootcert: string
  cert: string
  key: string
  crl: string
  crlDir: string | null
  minVersion: tls.SecureVersion | null
  maxVersion: tls.SecureVersion | null
  negotiation: 'postgres' | 'direct'
}

/** Query parameters read here; node-postgres never sees them (its own reading differs). */
const isSslParam = (key: string) => /^(ssl|requiressl$)/.test(key)

/**
 * The TLS settings of a URL's query (its decoded pairs, in order) and the environment, as
 * libpq resolves them. Throws a one-line error naming `input` for what libpq would refuse.
 */
export function sslSettings(
  query: [key: string, value: string][],
  env: NodeJS.ProcessEnv,
  input: string,
): PgSsl {
  const params = new Map(query)
  // HOME first, as libpq 18 reads it (older libpq reads the passwd entry: the same on runners).
  const home = path.join(env.HOME || os.userInfo().homedir, '.postgresql')
  const setting = (param: string, variable: string) => {
    const v = params.get(param)
    if (v !== undefined && v !== '') return { value: v, from: `${param}=${v}` }
    const e = env[variable]
    if (e) return { value: e, from: `${variable}=${e}` }
    return null
  }
  const ssl = params.get('ssl')
  if (ssl !== undefined && ssl !== 'true') {
    throw new UserError(
      `${input}: ssl=${ssl} is node-postgres's own parameter, which pg_dump refuses ("invalid URI query parameter"). Fix: sslmode=disable for no encryption, sslmode=require to encrypt, sslmode=verify-full&sslrootcert=/path/to/ca.pem to encrypt and check the server.`,
    )
  }
  if (params.has('uselibpqcompat')) {
    throw new UserError(
      `${input}: uselibpqcompat is node-postgres's own parameter, which pg_dump refuses ("invalid URI query parameter"); the action already reads sslmode as libpq does. Fix: remove it from the URL.`,
    )
  }
  const rootcert = setting('sslrootcert', 'PGSSLROOTCERT')
  // libpq stores ssl=true and the old requiressl as sslmode where they stand: the last wins.
  let mode: { value: string; from: string } | null = null
  for (const [key, value] of query) {
    if (key === 'sslmode' && value !== '') mode = { value, from: `sslmode=${value}` }
    if (key === 'ssl') mode = { value: 'require', from: 'ssl=true (sslmode=require)' }
    if (key === 'requiressl') {
      mode = value.startsWith('1')
        ? { value: 'require', from: `requiressl=${value} (sslmode=require)` }
        : { value: 'prefer', from: `requiressl=${value} (sslmode=prefer)` }
    }
  }
  if (!mode && env.PGSSLMODE) mode = { value: env.PGSSLMODE, from: `PGSSLMODE=${env.PGSSLMODE}` }
  if (!mode && env.PGREQUIRESSL?.startsWith('1')) {
    mode = { value: 'require', from: 'PGREQUIRESSL=1 (sslmode=require)' }
  }
  mode ??=
    rootcert?.value === 'system'
      ? { value: 'verify-full', from: "sslrootcert=system (libpq's default sslmode then)" }
      : { value: 'prefer', from: "sslmode=prefer (libpq's default)" }
  if (!(SSL_MODES as readonly string[]).includes(mode.value)) {
    const hint =
      mode.value === 'no-verify'
        ? ' (no-verify is node-postgres\'s own; libpq\'s "encrypt, check nothing" is require)'
        : ''
    throw new UserError(
      `${input}: ${mode.from} is not an sslmode pg_dump knows${hint}. Fix: use one of ${SSL_MODES.join(', ')}.`,
    )
  }
  const sslMode = mode.value as SslMode
  if (rootcert?.value === 'system' && sslMode !== 'verify-full') {
    throw new UserError(
      `${input}: ${mode.from} with sslrootcert=system: trusting every CA of the system checks nothing unless the server's name is checked too, and libpq refuses it. Fix: sslmode=verify-full.`,
    )
  }
  const version = (param: string, variable: string): tls.SecureVersion | null => {
    const v = setting(param, variable)
    if (!v) return null
    if (!(TLS_VERSIONS as readonly string[]).includes(v.value)) {
      throw new UserError(
        `${input}: ${v.from} is not a TLS version. Fix: one of ${TLS_VERSIONS.join(', ')}.`,
      )
    }
    return v.value as tls.SecureVersion
  }
  const negotiation = setting('sslnegotiation', 'PGSSLNEGOTIATION')
  if (negotiation && !['postgres', 'direct'].includes(negotiation.value)) {
    throw new UserError(
      `${input}: ${negotiation.from} is not an SSL negotiation. Fix: sslnegotiation=postgres (the default) or direct.`,
    )
  }
  if (negotiation?.value === 'direct' && ['disable', 'allow', 'prefer'].includes(sslMode)) {
    throw new UserError(
      `${input}: ${negotiation.from} needs an sslmode that always encrypts, and ${mode.from} does not. Fix: sslmode=require, verify-ca or verify-full.`,
    )
  }
  return {
    mode: sslMode,
    modeFrom: mode.from,
    rootcert: rootcert?.value ?? path.join(home, 'root.crt'),
    cert: setting('sslcert', 'PGSSLCERT')?.value ?? path.join(home, 'postgresql.crt'),
    key: setting('sslkey', 'PGSSLKEY')?.value ?? path.join(home, 'postgresql.key'),
    crl: setting('sslcrl', 'PGSSLCRL')?.value ?? path.join(home, 'root.crl'),
    crlDir: setting('sslcrldir', 'PGSSLCRLDIR')?.value ?? null,
    minVersion: version('ssl_min_protocol_version', 'PGSSLMINPROTOCOLVERSION'),
    maxVersion: version('ssl_max_protocol_version', 'PGSSLMAXPROTOCOLVERSION'),
    negotiation: (negotiation?.value as 'postgres' | 'direct' | undefined) ?? 'postgres',
  }
}

/** A file's contents, or null when it does not exist (libpq then goes on without it). */
async function readIfThere(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return null
    throw err
  }
}

/** How a connection was secured, for the log. */
interface Security {
  /** What was checked of the server's certificate. */
  checked: 'nothing' | 'ca' | 'ca-and-name'
  rootcert: string
  clientCert: string | null
}

/** The server's name is not one the certificate names (libpq's verify-full check failed). */
class NameMismatch extends Error {
  readonly code = 'ERR_TLS_CERT_ALTNAME_INVALID'
}

/** Lower-case, and IPv6 written one way, so addresses compare as addresses. */
function canonicalIp(ip: string): string {
  try {
    return new URL(`http://${net.isIPv6(ip) ? `[${ip}]` : ip}`).hostname.replace(/^\[|\]$/g, '')
  } catch {
    return ip.toLowerCase()
  }
}

/** libpq's wildcard rule: `*.example.com` matches one more label, never a dot. */
function nameMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase()
  const h = host.toLowerCase()
  if (p === h) return true
  if (p.length < 3 || !p.startsWith('*.') || p.length > h.length) return false
  if (!h.endsWith(p.slice(1))) return false
  return !h.slice(0, h.length - p.length + 1).includes('.')
}

/**
 * verify-full's name check, as libpq makes it: the host against every DNS name (and, for an
 * address, every IP address) of the subjectAltName; the Common Name only when there is no
 * subjectAltName of the host's kind. Node's own check never reads the Common Name for an
 * address, so libpq and Node would disagree on such a certificate.
 */
export function libpqNameCheck(host: string, cert: tls.PeerCertificate): Error | undefined {
  const isIp = net.isIP(host) !== 0
  const names: string[] = []
  let checkCn = true
  for (const entry of (cert.subjectaltname ?? '').split(/,\s*/).filter(Boolean)) {
    const colon = entry.indexOf(':')
    const kind = entry.slice(0, colon)
    const value = entry.slice(colon + 1).replace(/^"|"$/g, '')
    if (kind === 'DNS') {
      if (!isIp) checkCn = false
      names.push(value)
      if (nameMatches(value, host)) return undefined
    } else if (kind === 'IP Address') {
      if (isIp) checkCn = false
      names.push(value)
      if (isIp && canonicalIp(value) === canonicalIp(host)) return undefined
    }
  }
  const cn = [cert.subject?.CN ?? []].flat()[0]
  if (checkCn && cn) {
    names.push(cn)
    if (nameMatches(cn, host)) return undefined
  }
  if (names.length === 0) {
    return new NameMismatch(`the server's certificate names no host, so it cannot be ${host}`)
  }
  const others =
    names.length > 1
      ? ` (and ${names.length - 1} other name${names.length > 2 ? 's' : ''}: ${names.slice(1).join(', ')})`
      : ''
  return new NameMismatch(
    `server certificate for "${names[0]}"${others} does not match host name "${host}"`,
  )
}

/**
 * Node's TLS options for the SSL attempt, with what will be checked. File problems are one
 * line naming `input`, as libpq names them.
 */
async function tlsOptions(
  target: SslTarget,
  input: string,
): Promise<{ options: tls.ConnectionOptions; security: Security }> {
  const s = target.ssl
  const options: tls.ConnectionOptions = {}
  const security: Security = { checked: 'nothing', rootcert: s.rootcert, clientCert: null }
  const fileError = (what: string, file: string, err: unknown, fix: string) =>
    new UserError(
      `${input}: ${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). Fix: ${fix}`,
    )

  let ca: string[] | string | null
  if (s.rootcert === 'system') {
    ca = tls.getCACertificates('system')
  } else {
    try {
      ca = await readIfThere(s.rootcert)
    } catch (err) {
      throw fileError(
        'the root certificate file',
        s.rootcert,
        err,
        'make it readable by the runner, or set sslrootcert to the CA file that signed the server certificate.',
      )
    }
  }
  if (ca === null && s.mode.startsWith('verify-')) {
    throw new UserError(
      `${input}: sslmode=${s.mode} checks the server's certificate against a CA certificate, and there is none: root certificate file ${s.rootcert} does not exist. Fix: add sslrootcert=/path/to/ca.pem to the URL (the CA that signed the server's certificate: your provider's CA bundle, or the one you made), or sslmode=require to encrypt without checking the server.`,
    )
  }
  if (ca !== null) {
    options.ca = ca
    options.rejectUnauthorized = true
    security.checked = s.mode === 'verify-full' ? 'ca-and-name' : 'ca'
    // Revocation lists count only with a CA to check against; one that cannot be read is
    // passed over, as libpq passes it over.
    const crls: string[] = []
    const crl = await readIfThere(s.crl).catch(() => null)
    if (crl) crls.push(crl)
    if (s.crlDir) {
      const names = await fs.readdir(s.crlDir).catch(() => [] as string[])
      for (const name of names.filter((n) => /^[0-9a-f]{8}\.r\d+$/.test(n))) {
        const text = await readIfThere(path.join(s.crlDir, name)).catch(() => null)
        if (text) crls.push(text)
      }
    }
    if (crls.length) options.crl = crls
    options.checkServerIdentity = s.mode === 'verify-full' ? libpqNameCheck : () => undefined
  } else {
    options.rejectUnauthorized = false
  }
  if (s.minVersion) options.minVersion = s.minVersion
  if (s.maxVersion) options.maxVersion = s.maxVersion

  let cert: string | null
  try {
    cert = await readIfThere(s.cert)
  } catch (err) {
    throw fileError(
      'the client certificate file',
      s.cert,
      err,
      'make it readable by the runner, or remove sslcert from the URL.',
    )
  }
  if (cert !== null) {
    const key = await clientKey(s.key, target.sslPassword, input)
    let matches: boolean
    try {
      matches = new X509Certificate(cert).checkPrivateKey(key.object)
    } catch (err) {
      throw new UserError(
        `${input}: the client certificate file ${s.cert} is not a PEM certificate (${(err as Error).message}). Fix: set sslcert to the client certificate in PEM form (-----BEGIN CERTIFICATE-----).`,
      )
    }
    if (!matches) {
      throw new UserError(
        `${input}: certificate ${s.cert} does not match private key file ${s.key}. Fix: set sslkey to the key the client certificate was made for.`,
      )
    }
    options.cert = cert
    options.key = key.pem
    if (target.sslPassword !== null) options.passphrase = target.sslPassword
    security.clientCert = s.cert
  }
  return { options, security }
}

/** The client key, checked as libpq checks it before it is used. */
async function clientKey(file: string, passphrase: string | null, input: string) {
  let stat
  try {
    stat = await fs.stat(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new UserError(
      code === 'ENOENT'
        ? `${input}: certificate present, but not private key file ${file}. Fix: set sslkey to the client certificate's key (or remove sslcert).`
        : `${input}: the private key file ${file} cannot be read (${code}). Fix: make it readable by the runner.`,
    )
  }
  if (!stat.isFile()) {
    throw new UserError(
      `${input}: private key file ${file} is not a regular file. Fix: set sslkey to the key file itself.`,
    )
  }
  // libpq refuses a key others can read: 0600 or less for its owner, 0640 if root owns it.
  if (process.platform !== 'win32' && (stat.uid === 0 ? stat.mode & 0o037 : stat.mode & 0o077)) {
    throw new UserError(
      `${input}: private key file ${file} has group or world access (mode ${(stat.mode & 0o777).toString(8)}), which pg_dump refuses. Fix: chmod 600 ${file} (0640 or less if root owns it).`,
    )
  }
  let pem: string
  try {
    pem = await fs.readFile(file, 'utf8')
  } catch (err) {
    throw new UserError(
      `${input}: the private key file ${file} cannot be read (${(err as NodeJS.ErrnoException).code}). Fix: make it readable by the runner.`,
    )
  }
  try {
    return {
      pem,
      object: createPrivateKey({ key: pem, format: 'pem', passphrase: passphrase ?? '' }),
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    const encrypted = /ENCRYPTED/.test(pem)
    if (encrypted && passphrase === null) {
      throw new UserError(
        `${input}: private key file ${file} is encrypted, and the URL has no sslpassword. Fix: add sslpassword=PASSPHRASE to the URL (it is masked, and reaches pg_dump through a 0600 service file), or give a key without a passphrase.`,
      )
    }
    if (encrypted) {
      throw new UserError(
        `${input}: private key file ${file} does not open with the sslpassword in the URL (${code || (err as Error).message}). Fix: put the key's passphrase in sslpassword.`,
      )
    }
    throw new UserError(
      `${input}: could not load private key file ${file} (${code || (err as Error).message}). Fix: set sslkey to the client key in PEM form.`,
    )
  }
}

/**
 * node-postgres, loaded by the first connection: pg-tools.ts (and so every mode's start-up)
 * imports this file, and a SQLite run never needs the client.
 */
let pgModule: typeof pg | null = null
const loadPg = async () => (pgModule ??= (await import('pg')).default)

/** The server's own error (its SQLSTATE in `code`). Only a loaded client can have raised one. */
const isDatabaseError = (err: unknown): err is pg.DatabaseError =>
  pgModule !== null && err instanceof pgModule.DatabaseError

/** What the action checked of each client's SSL connection, for connectionSecurity. */
const securities = new WeakMap<pg.Client, Security>()
/** Why a client of allow or prefer is connected without SSL, for connectionSecurity. */
const plainReasons = new WeakMap<pg.Client, string>()

/** A system error before anything was said with the server: trying again without SSL (or with) changes nothing. */
function unreachable(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? ''
  return (
    ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(
      code,
    ) || /timeout/i.test((err as Error).message ?? '')
  )
}

const wantsEncryption = (err: unknown) =>
  isDatabaseError(err) && err.code === '28000' && /no encryption/.test(err.message)

/**
 * Opens a node-postgres client to `target` as libpq would open pg_dump's connection: the
 * attempts sslmode makes, the files it reads, the checks it runs. A TLS problem is a one-line
 * UserError naming `input` and the fix; other failures are node-postgres's own errors.
 */
export async function openPgClient(
  target: SslTarget,
  input: string,
  config: Omit<pg.ClientConfig, 'connectionString' | 'ssl'> = {},
): Promise<pg.Client> {
  const mode = target.ssl.mode
  const order: ('ssl' | 'plain')[] =
    mode === 'disable'
      ? ['plain']
      : mode === 'allow'
        ? ['plain', 'ssl']
        : mode === 'prefer'
          ? ['ssl', 'plain']
          : ['ssl']
  // The URL without what this file reads: node-postgres's own reading of them differs.
  const u = new URL(target.url)
  for (const key of [...u.searchParams.keys()]) if (isSslParam(key)) u.searchParams.delete(key)
  const failures: { how: 'ssl' | 'plain'; err: unknown; sent?: string | null }[] = []
  for (const how of order) {
    let security: Security | null = null
    try {
      let ssl: tls.ConnectionOptions | false = false
      if (how === 'ssl') ({ options: ssl, security } = await tlsOptions(target, input))
      const client = new (await loadPg()).Client({
        ...config,
        connectionString: u.href,
        ssl,
        sslnegotiation: target.ssl.negotiation,
      })
      // A dropped connection is reported by the query that meets it; this keeps it from also
      // crashing the process as an unhandled 'error' event.
      client.on('error', () => undefined)
      try {
        await client.connect()
      } catch (err) {
        await client.end().catch(() => undefined)
        throw err
      }
      if (security) securities.set(client, security)
      const sslFailure = failures.find((f) => f.how === 'ssl')
      if (how === 'plain' && mode === 'allow') {
        plainReasons.set(client, 'the server took the plain connection allow tries first')
      } else if (how === 'plain' && sslFailure) {
        plainReasons.set(client, whySslFailed(sslFailure, target, input))
      }
      return client
    } catch (err) {
      failures.push({ how, err, sent: security ? security.clientCert : undefined })
      if (unreachable(err)) break
      // allow tries SSL only when the server turned the plain login down.
      if (how === 'plain' && !isDatabaseError(err)) break
    }
  }
  // When plain was turned down for want of encryption, the SSL attempt's failure says why
  // there was none.
  const last = failures[failures.length - 1]!
  const ssl = failures.find((f) => f.how === 'ssl')
  const shown = wantsEncryption(last.err) && ssl ? ssl : last
  throw sslProblem(shown.err, target, input, shown) ?? shown.err
}

/** Why prefer's SSL attempt failed, in words for the log line of the plain connection. */
function whySslFailed(
  failure: { how: 'ssl' | 'plain'; err: unknown; sent?: string | null },
  target: SslTarget,
  input: string,
): string {
  const { err } = failure
  if ((err as Error).message === 'The server does not support SSL connections') {
    return 'the server offers no SSL'
  }
  const said = sslProblem(err, target, input, failure)?.message ?? (err as Error).message
  return `the SSL attempt failed, and prefer then tries plain: ${said.replace(/^[^:]*: /, '').split('. Fix:')[0]}`
}

/**
 * One line for a failure that TLS settings explain, naming the input, the server and the fix;
 * null for any other failure.
 */
function sslProblem(
  err: unknown,
  target: SslTarget,
  input: string,
  /** The attempt that failed: SSL or plain, and the client certificate the SSL one sent. */
  attempt?: { how: 'ssl' | 'plain'; sent?: string | null },
): UserError | null {
  const sentCert = attempt?.sent
  if (err instanceof UserError) return err
  const e = err as { code?: string; message?: string }
  const message = e.message ?? String(err)
  const where = `the server at ${target.host}:${target.port}`
  const mode = target.ssl.modeFrom
  const code = e.code ?? ''
  if (err instanceof NameMismatch) {
    return new UserError(
      `${input}: ${mode} refused ${where}: ${message}. Fix: write the host name the server's certificate holds in the URL, or give the server a certificate that names ${target.host}; sslmode=verify-ca checks the CA without the name.`,
    )
  }
  if (
    /CERT|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|CRL|INVALID_CA|PATH_LENGTH/.test(code) &&
    !code.startsWith('ERR_SSL_')
  ) {
    const why =
      code === 'CERT_HAS_EXPIRED'
        ? "the server's certificate has expired. Fix: renew the server's certificate."
        : code === 'CERT_REVOKED'
          ? `the server's certificate is revoked in the revocation list. Fix: give the server a new certificate.`
          : `its certificate is not signed by the CA in ${target.ssl.rootcert} (${code}: ${message}). Fix: set sslrootcert to the CA certificate that signed the server's (your provider's CA bundle, or the CA you made its certificate with)${target.ssl.mode === 'require' ? '; sslmode=require checks the CA whenever sslrootcert (or ~/.postgresql/root.crt) exists' : ''}.`
    return new UserError(`${input}: ${mode} refused ${where}: ${why}`)
  }
  if (message === 'The server does not support SSL connections') {
    return new UserError(
      `${input}: ${where} does not accept SSL connections, and ${mode} allows no other. Fix: turn ssl on in the server's postgresql.conf, or (on a network you trust) set sslmode=prefer in the URL.`,
    )
  }
  if (isDatabaseError(err) && err.code === '28000') {
    if (/no encryption/.test(message)) {
      return new UserError(
        `${input}: ${where} accepts this user and database only over SSL (${message}), and ${mode} does not encrypt. Fix: remove sslmode=disable from the URL, or set sslmode=verify-full&sslrootcert=/path/to/ca.pem (or sslmode=require).`,
      )
    }
    if (/SSL encryption/.test(message)) {
      return new UserError(
        `${input}: ${where} accepts this user and database only without SSL (${message}), and ${mode} allows only SSL. Fix: add a hostssl line for this user to the server's pg_hba.conf, or set sslmode=prefer.`,
      )
    }
    if (/certificate/i.test(message)) {
      const sent =
        sentCert === undefined
          ? ''
          : sentCert
            ? `; the runner sent ${sentCert}`
            : `; the runner sent none: ${target.ssl.cert} does not exist`
      return new UserError(
        `${input}: ${where} requires a client certificate it accepts (${message}${sent}). Fix: set sslcert and sslkey in the URL to a certificate signed by the CA in the server's ssl_ca_file, whose CN is the user name.`,
      )
    }
  }
  if (
    /^ERR_SSL_/.test(code) ||
    (attempt?.how === 'ssl' && ['EPROTO', 'ECONNRESET'].includes(code))
  ) {
    const client =
      /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|ACCESS_DENIED)/.test(
        code,
      )
    const version = /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS/.test(code)
    return new UserError(
      `${input}: the TLS handshake with ${where} failed (${code}: ${(err as { reason?: string }).reason ?? message}). Fix: ${
        client
          ? "the server turned the client certificate down: set sslcert and sslkey to a certificate signed by the CA in the server's ssl_ca_file."
          : version
            ? 'the server and the runner share no TLS version: set ssl_min_protocol_version / ssl_max_protocol_version to one the server accepts.'
            : `check that ${target.host}:${target.port} is a PostgreSQL server with ssl on.`
      }`,
    )
  }
  return null
}

/**
 * How `client` is connected, in one line for the log: what the server says of its TLS
 * (pg_stat_ssl) and what the action checked of the server's certificate.
 */
export async function connectionSecurity(client: pg.Client, target: SslTarget): Promise<string> {
  type Row = { ssl: unknown; version: string | null; cipher: string | null }
  let row: Row | undefined
  try {
    const { rows } = await client.query<Row>(
      'SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    )
    row = rows[0]
  } catch (err) {
    // Only a log line: a server (or pooler) without the view still backs up.
    return `(TLS not known: pg_stat_ssl gave ${(err as Error).message}; ${target.ssl.modeFrom})`
  }
  const mode = target.ssl.modeFrom
  if (!row || !(row.ssl === true || row.ssl === 't')) {
    const why = plainReasons.get(client)
    return `not encrypted (${mode}${why ? `: ${why}` : ''})`
  }
  const s = securities.get(client)
  const checked =
    s?.checked === 'ca-and-name'
      ? `the server's certificate checked against ${s.rootcert} and its name against ${target.host}`
      : s?.checked === 'ca'
        ? `the server's certificate checked against ${s.rootcert}, its name not checked`
        : `the server's certificate not checked (no root certificate file ${target.ssl.rootcert}: anyone on the path could stand in for the server)`
  const clientCert = s?.clientCert ? `; client certificate ${s.clientCert}` : ''
  return `encrypted (${row.version}, ${row.cipher}; ${mode}: ${checked}${clientCert})`
}
