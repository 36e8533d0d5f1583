/**
 * Secrets: every way of giving a PostgreSQL password stays out of argv, manifests, reports, the
 * drill log, logs and the summary; child processes (pytest, pg tools, gpg, stop/start commands)
 * get none of the action's secrets; the CLI takes each secret from a file or an environment
 * variable; gpg runs with an agent of its own that caches nothing and is gone afterwards, and
 * refuses a message that was never encrypted. Each search for a secret has a positive control:
 * the same search finds something that is there.
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { cli, secretValue } from '../src/cli/cli.js'
import { decodeFile, encodeFile } from '../src/codec/index.js'
import { gpgDecryptStream, RUN_HOME_PREFIX } from '../src/codec/gpg.js'
import { generateAgeIdentity } from '../src/codec/age.js'
import { findTool, parsePgUrl, pgSecrets } from '../src/engines/postgres/tools.js'
import { generatePostgresDemo } from '../src/demo/postgres.js'
import { maskSecrets } from '../src/action/main.js'
import { renderSummary } from '../src/report/report.js'
import { childEnv } from '../src/util/secrets.js'
import { runServiceCommand } from '../src/modes/service.js'
import { demoWorkspace, execFileAsync, memoryLog, ROOT, run, tempDir } from './helpers.js'
import { HAS_GPG } from './tools.js'

const envBefore = { ...process.env }
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in envBefore)) delete process.env[name]
  Object.assign(process.env, envBefore)
  vi.restoreAllMocks()
})

/** What the runner puts in an action's environment that no child may see. */
const RUNNER_SECRETS = {
  'INPUT_AGE-IDENTITY': 'AGE-SECRET-KEY-1PLANTEDRECOVERYKEYQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ',
  'INPUT_GPG-PASSPHRASE': 'planted-gpg-passphrase-5d1c',
  'INPUT_GITHUB-TOKEN': 'ghs_plantedInputToken7a2b',
  GITHUB_TOKEN: 'ghs_plantedEnvToken93f0',
  ACTIONS_RUNTIME_TOKEN: 'planted-runtime-token-4e8a',
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'planted-oidc-token-c7d2',
  PGPASSWORD: 'planted-pgpassword-1b9e',
  OMNIAI_AGE_PASSPHRASE: 'planted-cli-age-passphrase-66aa',
}
const PLANTED = { OMNIAI_PROBE_PLANTED: 'a-planted-ordinary-value-0f3c' }

describe('childEnv: the one environment every child process gets', () => {
  it('drops the inputs, the tokens and the secrets; keeps the rest; adds what it is given', () => {
    const env = childEnv(
      { PGPASSWORD: 'given-on-purpose' },
      { PATH: '/usr/bin', HOME: '/home/x', ...RUNNER_SECRETS, ...PLANTED, INPUT_MODE: 'drill' },
    )
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/x',
      ...PLANTED,
      PGPASSWORD: 'given-on-purpose',
    })
  })

  it.skipIf(process.platform === 'win32')('a stop or start command sees none of them', async () => {
    const dir = await tempDir()
    Object.assign(process.env, RUNNER_SECRETS, PLANTED)
    const out = path.join(dir, 'env')
    await runServiceCommand(['sh', '-c', `env > ${out}`], 'stop-command', memoryLog())
    const seen = await fs.readFile(out, 'utf8')
    expect(seen).toContain(`OMNIAI_PROBE_PLANTED=${PLANTED.OMNIAI_PROBE_PLANTED}`)
    for (const [name, value] of Object.entries(RUNNER_SECRETS)) {
      expect(seen, name).not.toContain(value)
      expect(seen, name).not.toContain(`${name}=`)
    }
  })
})

describe('masking', () => {
  it('masks the password in the user info, ?password=, ?sslpassword= and PGPASSWORD', () => {
    const masked: string[] = []
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      const m = /^::add-mask::(.*)$/m.exec(String(chunk))
      // As the runner reads the command: %25 is %.
      if (m) masked.push(m[1]!.replace(/%25/g, '%'))
      return true
    })
    maskSecrets('postgres://u:info%2Fpw@db.example:5432/omniai', {})
    maskSecrets(
      'postgres://u@db.example/omniai?sslmode=require&password=q%26pw&sslpassword=ssl-pw',
      {},
    )
    maskSecrets('postgres://u@db.example/omniai', { PGPASSWORD: 'from-env' })
    // A SQLite path holds nothing secret (positive control: the spy sees masks at all).
    maskSecrets('/var/lib/omniai/omniai.db', { PGPASSWORD: 'unused' })
    expect(masked).toEqual(
      expect.arrayContaining(['info%2Fpw', 'info/pw', 'q%26pw', 'q&pw', 'ssl-pw', 'from-env']),
    )
    expect(masked).not.toContain('require')
    expect(masked).not.toContain('unused')
  })

  it('parsePgUrl: libpq decoding (no + for space), the query password wins, nothing secret in dbnameArg', () => {
    const t = parsePgUrl(
      'postgres://u:old@h:6543/db?application_name=a+b&password=new%2Bpw+x&sslpassword=s%20p&sslmode=prefer',
      'connection-string',
      {},
    )
    expect(t.env).toEqual({ PGPASSWORD: 'new+pw+x' })
    expect(t.sslPassword).toBe('s p')
    expect(t.dbnameArg).toBe('postgres://u@h:6543/db?application_name=a+b&sslmode=prefer')
    expect(t.redacted).toBe('postgres://u:***@h:6543/db')
    // The pg client reads the password from the user info, where it was moved.
    expect(new URL(t.url).password).toBe(encodeURIComponent('new+pw+x'))
    expect(t.url).not.toMatch(/[?&]password=/)
    expect(pgSecrets('postgres://u@h/db', { PGPASSWORD: 'env-pw' })).toEqual(['env-pw'])
  })
})

describe('CLI: secrets from a file or an environment variable', () => {
  it('takes --<input>-file and OMNIAI_<INPUT>; a flag works but warns; two at once are refused', async () => {
    const dir = await tempDir()
    const file = path.join(dir, 'key.txt')
    await fs.writeFile(file, '# created: today\nAGE-SECRET-KEY-1FILE\n')
    const warnings: string[] = []
    const warn = (m: string) => void warnings.push(m)
    const flags = (entries: [string, string][]) => new Map(entries)
    expect(await secretValue('age-identity', flags([['age-identity-file', file]]), {}, warn)).toBe(
      '# created: today\nAGE-SECRET-KEY-1FILE',
    )
    expect(
      await secretValue('age-identity', flags([]), { OMNIAI_AGE_IDENTITY: 'from-env' }, warn),
    ).toBe('from-env')
    expect(warnings).toEqual([])
    expect(await secretValue('age-identity', flags([['age-identity', 'on-argv']]), {}, warn)).toBe(
      'on-argv',
    )
    expect(warnings).toEqual([
      '--age-identity on the command line can be read by every user of this machine (ps, /proc/<pid>/cmdline). Use --age-identity-file <file> or OMNIAI_AGE_IDENTITY instead.',
    ])
    // A SQLite path is no secret; a URL with a password is.
    warnings.length = 0
    await secretValue('connection-string', flags([['connection-string', 'omniai.db']]), {}, warn)
    expect(warnings).toEqual([])
    await secretValue(
      'connection-string',
      flags([['connection-string', 'postgres://u@h/db?password=x']]),
      {},
      warn,
    )
    expect(warnings).toHaveLength(1)
    await expect(
      secretValue(
        'gpg-passphrase',
        flags([['gpg-passphrase-file', file]]),
        { OMNIAI_GPG_PASSPHRASE: 'x' },
        warn,
      ),
    ).rejects.toThrow(
      /^gpg-passphrase: given as --gpg-passphrase-file and OMNIAI_GPG_PASSPHRASE\. Fix: give it once/,
    )
    await expect(
      secretValue('smoke-login-body', flags([['smoke-login-body-file', path.join(dir, 'no')]]), {}),
    ).rejects.toThrow(/^--smoke-login-body-file: cannot read .* \(ENOENT\)/)
  })

  it('a drill decrypts with the key from --age-identity-file, and from OMNIAI_AGE_IDENTITY', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const key = generateAgeIdentity()
    const { report } = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        encryption: 'age',
        'age-recipients': key.recipient,
      },
      dir,
    )
    expect(report.ok).toBe(true)
    const keyFile = path.join(dir, 'key.txt')
    await fs.writeFile(keyFile, `${key.identity}\n`, { mode: 0o600 })
    vi.spyOn(console, 'log').mockImplementation(() => undefined)
    vi.spyOn(console, 'error').mockImplementation(() => undefined)
    const common = ['--backup-dir', backups, '--encryption', 'age', '--drill-log', 'none']
    const report1 = path.join(dir, 'r1.json')
    expect(
      await cli(['drill', ...common, '--report-file', report1, '--age-identity-file', keyFile]),
    ).toBe(0)
    process.env.OMNIAI_AGE_IDENTITY = key.identity
    expect(await cli(['drill', ...common, '--report-file', path.join(dir, 'r2.json')])).toBe(0)
    // Positive control: without the key the same drill fails.
    delete process.env.OMNIAI_AGE_IDENTITY
    expect(await cli(['drill', ...common, '--report-file', path.join(dir, 'r3.json')])).toBe(1)
    const r1 = JSON.parse(await fs.readFile(report1, 'utf8')) as { checks: { name: string }[] }
    expect(r1.checks.map((c) => c.name)).toContain('decrypt')
  })
})

/** Every file under `dir`, as text. */
async function allText(dir: string): Promise<string> {
  let text = ''
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) text += await fs.readFile(path.join(entry.parentPath, entry.name), 'latin1')
  }
  return text
}

/**
 * A stand-in for `tool` in `binDir` that records its argv, the secret-looking part of its
 * environment and any service file it is given, then runs the real tool.
 */
async function recordingWrapper(binDir: string, name: string, real: string, logDir: string) {
  const script = `#!/bin/sh
log=${JSON.stringify(path.join(logDir, `${name}.log`))}
{
  printf 'ARGV'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'
  env | grep -E '^(PG|INPUT_|GITHUB_TOKEN|GH_TOKEN|ACTIONS_|OMNIAI_)' | sed 's/^/ENV /'
  if [ -n "$PGSERVICEFILE" ]; then
    printf 'SERVICEFILE-MODE %s\\n' "$(stat -c %a "$PGSERVICEFILE")"
    sed 's/^/SERVICE /' "$PGSERVICEFILE"
  fi
} >> "$log"
exec ${JSON.stringify(real)} "$@"
`
  await fs.writeFile(path.join(binDir, name), script, { mode: 0o755 })
}

const source = inject('pgSource')
const restoreServer = inject('pgRestore')

describe.skipIf(!source || process.platform === 'win32')(
  'PostgreSQL passwords in every form libpq takes',
  () => {
    const PASSWORD = 'Pw-Planted-In-Userinfo-8c1d'
    const QUERY_PASSWORD = 'Pw-Planted-In-Query-2e7f'
    const SSL_PASSWORD = 'SslPw-Planted-In-Query-5a3b'
    const ENV_PASSWORD = 'Pw-Planted-In-PGPASSWORD-9d4c'
    const RESTORE_SSL_PASSWORD = 'SslPw-Planted-Restore-7b6e'
    let db: string
    const role = `omniai_probe_${process.pid}`

    async function sql(url: string, text: string) {
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        await client.query(text)
      } finally {
        await client.end()
      }
    }

    const at = (url: string, database: string) => {
      const u = new URL(url)
      u.pathname = `/${database}`
      return u
    }

    beforeAll(async () => {
      const name = `omniai_secrets_${process.pid}`
      await sql(source, `CREATE DATABASE ${name}`)
      await generatePostgresDemo(at(source, name).href, { conversations: 10, auditRows: 20 })
      db = name
    })

    afterAll(async () => {
      await sql(source, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined)
      await sql(source, `DROP ROLE IF EXISTS ${role}`).catch(() => undefined)
    })

    /** The server's major version: the wrappers must stand in for the tools the engine picks. */
    async function serverMajor(): Promise<number> {
      const client = new pg.Client({ connectionString: source })
      await client.connect()
      try {
        const { rows } = await client.query<{ n: string }>(
          "SELECT current_setting('server_version_num') AS n",
        )
        return Math.floor(Number(rows[0]!.n) / 10000)
      } finally {
        await client.end()
      }
    }

    /** The source as `role`, its password given one way. */
    async function sourceUrl(form: 'userinfo' | 'query' | 'env'): Promise<string> {
      const password = { userinfo: PASSWORD, query: QUERY_PASSWORD, env: ENV_PASSWORD }[form]
      await sql(
        source,
        `DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN SUPERUSER; END IF;
         END $$; ALTER ROLE ${role} PASSWORD '${password}'`,
      )
      const u = at(source, db)
      u.username = role
      u.password = ''
      if (form === 'userinfo') u.password = encodeURIComponent(PASSWORD)
      if (form === 'query') {
        u.search = `?application_name=probe&password=${encodeURIComponent(QUERY_PASSWORD)}&sslpassword=${encodeURIComponent(SSL_PASSWORD)}`
      }
      if (form === 'env') process.env.PGPASSWORD = ENV_PASSWORD
      return u.href
    }

    /** The restore server with its password and an sslpassword in the query. */
    function restoreUrl(): string {
      const u = new URL(restoreServer)
      const password = decodeURIComponent(u.password)
      u.password = ''
      u.search = `?password=${encodeURIComponent(password)}&sslpassword=${RESTORE_SSL_PASSWORD}`
      return u.href
    }

    for (const form of ['userinfo', 'query', 'env'] as const) {
      it(`${form}: backup, verify and drill; no password in argv, manifest, report, drill log, log or summary`, async () => {
        const dir = await tempDir()
        // The wrappers and what they record live outside the run's folder, searched below.
        const binDir = await tempDir()
        const logs = await tempDir()
        const major = await serverMajor()
        const dump = await findTool('pg_dump', major, major, null, 'the test')
        const restore = await findTool('pg_restore', major, major, null, 'the test')
        await recordingWrapper(binDir, 'pg_dump', dump.path, logs)
        await recordingWrapper(binDir, 'pg_restore', restore.path, logs)
        Object.assign(process.env, {
          'INPUT_AGE-IDENTITY': RUNNER_SECRETS['INPUT_AGE-IDENTITY'],
          GITHUB_TOKEN: RUNNER_SECRETS.GITHUB_TOKEN,
        })
        const url = await sourceUrl(form)
        const backups = path.join(dir, 'backups')
        const drillLog = path.join(dir, 'drills.jsonl')
        const outputs: string[] = []
        const common = { 'backup-dir': backups, 'pg-bin-dir': binDir, 'drill-log': drillLog }
        for (const [mode, inputs] of [
          ['backup', { 'connection-string': url }],
          ['verify', {}],
          ['drill', { 'restore-connection-string': restoreUrl() }],
        ] as const) {
          const { report, log } = await run(
            mode,
            { ...common, ...inputs, 'report-file': path.join(dir, `${mode}.json`) },
            dir,
          )
          expect(report.error, mode).toBeUndefined()
          expect(report.ok, JSON.stringify(report.checks)).toBe(true)
          outputs.push(JSON.stringify(report), renderSummary(report), ...log.lines, ...log.warnings)
        }
        const argv = await allText(logs)
        const argvLines = argv
          .split('\n')
          .filter((l) => l.startsWith('ARGV'))
          .join('\n')
        // Reports, summaries and log lines, and every file the run left in its folder: the
        // backups' manifests, the report files, the drill log.
        const everything = [outputs.join('\n'), await allText(dir)].join('\n')
        for (const secret of [
          PASSWORD,
          QUERY_PASSWORD,
          SSL_PASSWORD,
          ENV_PASSWORD,
          RESTORE_SSL_PASSWORD,
        ]) {
          expect(argvLines).not.toContain(secret)
          expect(everything).not.toContain(secret)
        }
        expect(everything).toContain('"drill"')
        // Positive control: the drill log is there to be searched.
        expect((await fs.readFile(drillLog, 'utf8')).trim()).not.toBe('')
        // Positive controls: the wrappers saw pg_dump and pg_restore connect, the password
        // arrived in their environment, sslpassword in a 0600 service file.
        const password = { userinfo: PASSWORD, query: QUERY_PASSWORD, env: ENV_PASSWORD }[form]
        expect(argv).toMatch(
          new RegExp(`ARGV .*--dbname=postgres://${role}@127\\.0\\.0\\.1:\\d+/${db}`),
        )
        expect(argv).toContain(`ENV PGPASSWORD=${password}`)
        if (form === 'query') {
          // The URL's other parameters go on, without the passwords; pg_dump's application_name
          // is the backup's own, so that its sessions can be told apart (engines/postgres).
          expect(argv).toMatch(
            /ARGV .*--dbname=\S*\?application_name=omniai-backups-pg_dump-[0-9a-f]+&service=omniai_backups\n/,
          )
          expect(argv).toContain('SERVICEFILE-MODE 600')
          expect(argv).toContain(`SERVICE sslpassword=${SSL_PASSWORD}`)
        }
        expect(argv).toContain(`SERVICE sslpassword=${RESTORE_SSL_PASSWORD}`)
        // The tools inherit none of the action's own secrets.
        expect(argv).not.toContain('ENV INPUT_')
        expect(argv).not.toContain('ENV GITHUB_TOKEN')
        // The manifest names the source without its secrets.
        expect(everything).toContain(`postgres://${role}:***@127.0.0.1:`)
        // No service file is left behind.
        const left = (await fs.readdir(os.tmpdir())).filter((n) =>
          n.startsWith('omniai-pgservice-'),
        )
        expect(left).toEqual([])
      })
    }

    it('a failed connection names host and database, never the query or its password', async () => {
      const dir = await tempDir()
      const u = at(source, db)
      u.username = role
      u.password = ''
      u.search = `?password=Wrong-Planted-Pw-3f8a&sslpassword=${SSL_PASSWORD}&application_name=Query-Marker`
      const wrong = await run('backup', { 'connection-string': u.href, 'backup-dir': dir }, dir)
      expect(wrong.report.error).toMatch(
        /^connection-string: password authentication failed at 127\.0\.0\.1:\d+\. Fix:/,
      )
      u.search = `?password=${encodeURIComponent(PASSWORD)}&sslmode=require&application_name=Query-Marker`
      const noSsl = await run('backup', { 'connection-string': u.href, 'backup-dir': dir }, dir)
      expect(noSsl.report.error).toMatch(
        /^connection-string: the server at 127\.0\.0\.1:\d+ does not accept SSL connections, and sslmode=require allows no other\. Fix: /,
      )
      for (const r of [wrong, noSsl]) {
        const text = JSON.stringify(r.report) + r.log.lines.join('\n') + renderSummary(r.report)
        expect(text).not.toContain('Query-Marker')
        expect(text).not.toContain('Wrong-Planted-Pw-3f8a')
        expect(text).not.toContain(PASSWORD)
        expect(text).not.toContain(SSL_PASSWORD)
      }
    })
  },
)

/** gpg-agent (and keyboxd) processes whose command line names a folder under `root`. */
async function agentsUnder(root: string): Promise<string[]> {
  const { stdout } = await execFileAsync('ps', ['-eo', 'stat=,args='])
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('Z') && /gpg-agent|keyboxd/.test(l) && l.includes(root))
}

async function eventually(probe: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await probe()) return true
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.skipIf(!HAS_GPG || process.platform === 'win32')('gpg: an agent of its own', () => {
  let root: string
  let home: string
  let fingerprint: string
  const KEY_PASSPHRASE = 'key passphrase 41f7'

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'omniai-gpg-secrets-'))
    home = path.join(root, 'operator-gnupg')
    await fs.mkdir(home, { mode: 0o700 })
    await execFileAsync('gpg', [
      '--homedir',
      home,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      KEY_PASSPHRASE,
      '--quick-gen-key',
      'OmniAI Secrets Test <secrets@example.invalid>',
      'future-default',
      'default',
      'never',
    ])
    const { stdout } = await execFileAsync('gpg', [
      '--homedir',
      home,
      '--with-colons',
      '--list-keys',
    ])
    fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(stdout)![1]!
    await execFileAsync('gpgconf', ['--homedir', home, '--kill', 'all'])
  })

  afterAll(async () => {
    await execFileAsync('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => undefined)
    await fs.rm(root, { recursive: true, force: true })
  })

  /** Runs `fn` with this run's temporary folder (where each gpg's GNUPGHOME goes) under `dir`. */
  async function inTemp<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    process.env.TMPDIR = dir
    try {
      return await fn()
    } finally {
      process.env.TMPDIR = envBefore.TMPDIR
      if (envBefore.TMPDIR === undefined) delete process.env.TMPDIR
    }
  }

  it('a message that is not encrypted (gpg --store, gpg --sign) is refused, though gpg -d exits 0', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'store-'))
    await fs.writeFile(path.join(dir, 'db'), 'CREATE TABLE planted_plaintext (x);\n')
    await execFileAsync('gpg', [
      '--homedir',
      home,
      '--batch',
      '--store',
      '-o',
      path.join(dir, 'lit.gpg'),
      path.join(dir, 'db'),
    ])
    await execFileAsync('gpg', [
      '--homedir',
      home,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      KEY_PASSPHRASE,
      '--sign',
      '-o',
      path.join(dir, 'signed.gpg'),
      path.join(dir, 'db'),
    ])
    // Positive control: gpg itself "decrypts" both, exit 0, plaintext out.
    for (const name of ['lit.gpg', 'signed.gpg']) {
      const { stdout } = await execFileAsync('gpg', [
        '--homedir',
        home,
        '--batch',
        '-d',
        path.join(dir, name),
      ])
      expect(stdout).toContain('planted_plaintext')
    }
    for (const name of ['lit.gpg', 'signed.gpg']) {
      const out = path.join(dir, `${name}.out`)
      await expect(
        decodeFile(path.join(dir, name), out, {
          compression: 'none',
          decryption: { kind: 'gpg', passphrase: 'anything', homedir: home },
        }),
      ).rejects.toThrow(/is an OpenPGP message with no encrypted data in it/)
      await expect(fs.stat(out)).rejects.toThrow(/ENOENT/)
    }
    // And an encrypted one still opens with the same options.
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'sym.gpg'), {
      compression: 'none',
      encryption: { kind: 'gpg', passphrase: 'sym pass', homedir: home },
    })
    await decodeFile(path.join(dir, 'sym.gpg'), path.join(dir, 'sym.out'), {
      compression: 'none',
      decryption: { kind: 'gpg', passphrase: 'sym pass', homedir: home },
    })
    expect(await fs.readFile(path.join(dir, 'sym.out'), 'utf8')).toContain('planted_plaintext')
  })

  it('its agent runs while gpg works and is gone afterwards, also after failures; the operator keyring gets no agent', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'agent-'))
    const runs = await fs.mkdtemp(path.join(root, 'tmp-'))
    await fs.writeFile(path.join(dir, 'db'), Buffer.alloc(2 << 20, 7))
    // To the operator's key: decrypting takes its secret key, which only an agent handles.
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
      compression: 'none',
      encryption: { kind: 'gpg', recipient: fingerprint, homedir: home },
    })
    const stored = await fs.readFile(path.join(dir, 'db.gpg'))
    // The keyring's own agent (the gpg commands of other tests start one) is stopped first.
    await execFileAsync('gpgconf', ['--homedir', home, '--kill', 'all'])
    expect(await eventually(async () => (await agentsUnder(home)).length === 0)).toBe(true)
    await inTemp(runs, async () => {
      // A source that stops half-way until the probe has seen the agent.
      let release!: () => void
      const held = new Promise<void>((r) => (release = r))
      const source = Readable.from(
        (async function* () {
          yield stored.subarray(0, 1 << 20)
          await held
          yield stored.subarray(1 << 20)
        })(),
      )
      let bytes = 0
      const decoding = pipeline(
        source,
        gpgDecryptStream({ passphrase: KEY_PASSPHRASE, homedir: home }, 'db.gpg'),
        async function (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) bytes += c.length
        },
      )
      // Positive control: the probe finds this run's agent while gpg is working.
      expect(await eventually(async () => (await agentsUnder(runs)).length > 0)).toBe(true)
      expect((await fs.readdir(runs)).filter((n) => n.startsWith(RUN_HOME_PREFIX))).toHaveLength(1)
      release()
      await decoding
      expect(bytes).toBe(2 << 20)
      expect(await eventually(async () => (await agentsUnder(runs)).length === 0)).toBe(true)
      expect(await fs.readdir(runs)).toEqual([])

      // Failures leave none either: a wrong passphrase, a message that is not encrypted.
      await expect(
        decodeFile(path.join(dir, 'db.gpg'), path.join(dir, 'x'), {
          compression: 'none',
          decryption: { kind: 'gpg', passphrase: 'wrong', homedir: home },
        }),
      ).rejects.toThrow(/^gpg-passphrase: /)
      expect(await eventually(async () => (await agentsUnder(runs)).length === 0)).toBe(true)
      expect(await fs.readdir(runs)).toEqual([])
      // A stream torn down half-way by the stage after it.
      await expect(
        pipeline(
          Readable.from([stored]),
          gpgDecryptStream({ passphrase: KEY_PASSPHRASE, homedir: home }, 'db.gpg'),
          async function (chunks: AsyncIterable<Buffer>) {
            for await (const c of chunks) if (c.length) throw new Error('the next stage failed')
          },
        ),
      ).rejects.toThrow('the next stage failed')
      expect(await eventually(async () => (await agentsUnder(runs)).length === 0)).toBe(true)
      expect(await eventually(async () => (await fs.readdir(runs)).length === 0)).toBe(true)
    })
    // Not one of the runs above asked the operator's own keyring for an agent.
    expect(await agentsUnder(home)).toEqual([])
  })

  it('no passphrase is cached: a second decrypt without it fails (positive control: a shared agent would have let it through)', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'cache-'))
    await fs.writeFile(path.join(dir, 'db'), 'rows')
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
      compression: 'none',
      encryption: { kind: 'gpg', recipient: fingerprint, homedir: home },
    })
    const decode = (passphrase?: string) =>
      decodeFile(path.join(dir, 'db.gpg'), path.join(dir, 'out'), {
        compression: 'none',
        decryption: { kind: 'gpg', homedir: home, ...(passphrase ? { passphrase } : {}) },
      }).finally(() => fs.rm(path.join(dir, 'out'), { force: true }))
    await decode(KEY_PASSPHRASE)
    await expect(decode()).rejects.toThrow(
      /^gpg-passphrase: gpg could not decrypt .*set gpg-passphrase/,
    )
    // The same two steps with gpg and the keyring's own agent: the second one succeeds.
    const gpg = ['--homedir', home, '--batch', '--pinentry-mode', 'loopback']
    await execFileAsync('gpg', [
      ...gpg,
      '--passphrase',
      KEY_PASSPHRASE,
      '-d',
      path.join(dir, 'db.gpg'),
    ])
    const { stdout } = await execFileAsync('gpg', [...gpg, '-d', path.join(dir, 'db.gpg')])
    expect(stdout).toBe('rows')
    expect(await agentsUnder(home)).not.toEqual([])
  })

  it('gpg gets no secret of the action, and the passphrase never on its argv', async () => {
    const dir = await fs.mkdtemp(path.join(root, 'env-'))
    const bin = path.join(dir, 'bin')
    await fs.mkdir(bin)
    const { stdout: real } = await execFileAsync('sh', ['-c', 'command -v gpg'])
    await recordingWrapper(bin, 'gpg', real.trim(), dir)
    Object.assign(process.env, RUNNER_SECRETS, PLANTED)
    process.env.PATH = `${bin}${path.delimiter}${process.env.PATH}`
    await fs.writeFile(path.join(dir, 'db'), 'rows')
    const passphrase = 'planted-argv-passphrase-19c3'
    await encodeFile(path.join(dir, 'db'), path.join(dir, 'db.gpg'), {
      compression: 'none',
      encryption: { kind: 'gpg', passphrase, homedir: home },
    })
    await decodeFile(path.join(dir, 'db.gpg'), path.join(dir, 'out'), {
      compression: 'none',
      decryption: { kind: 'gpg', passphrase, homedir: home },
    })
    const seen = await fs.readFile(path.join(dir, 'gpg.log'), 'utf8')
    // Positive controls: both runs were recorded, with the planted ordinary variable.
    expect(seen.match(/^ARGV /gm)).toHaveLength(2)
    expect(seen).toContain(`ENV OMNIAI_PROBE_PLANTED=${PLANTED.OMNIAI_PROBE_PLANTED}`)
    expect(seen).not.toContain(passphrase)
    for (const [name, value] of Object.entries(RUNNER_SECRETS)) {
      expect(seen, name).not.toContain(value)
    }
  })
})

/** A pytest project whose one security test looks for the secrets and for a planted variable. */
async function probeProject(dir: string, secrets: string[]): Promise<string> {
  const project = path.join(dir, 'probe')
  await fs.mkdir(project)
  const hashes = secrets.map((s) => createHash('sha256').update(s).digest('hex'))
  await fs.writeFile(
    path.join(project, 'pytest.ini'),
    '[pytest]\nmarkers =\n    security: security tests\n',
  )
  await fs.writeFile(
    path.join(project, 'test_probe.py'),
    `import hashlib, json, os
import pytest

SECRET_SHA256 = set(${JSON.stringify(hashes)})

def secret_names(env):
    found = []
    for name, value in env.items():
        for candidate in [value, *value.splitlines()]:
            if hashlib.sha256(candidate.encode()).hexdigest() in SECRET_SHA256:
                found.append(name)
    return found

@pytest.mark.security
def test_the_recovery_key_is_out_of_reach():
    own = dict(os.environ)
    parent = None
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as f:
            entries = f.read().decode("utf-8", "replace").split("\\0")
        parent = dict(e.split("=", 1) for e in entries if "=" in e)
    except OSError:
        pass
    with open(os.environ["OMNIAI_PROBE_OUT"], "w") as out:
        json.dump({"own": own, "parent": parent}, out)
    # Positive control: the probe does find what is there.
    assert own.get("OMNIAI_PROBE_PLANTED") == "${PLANTED.OMNIAI_PROBE_PLANTED}"
    if parent is not None:
        assert parent.get("OMNIAI_PROBE_PLANTED") == "${PLANTED.OMNIAI_PROBE_PLANTED}"
    assert secret_names(own) == []
    assert secret_names(parent or {}) == []
`,
  )
  return project
}

/** A module hook that lets Node run src/*.ts as they import each other (`./x.js` -> `./x.ts`). */
const RESOLVE_TS = `
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
export async function resolve(spec, context, next) {
  if (/^\\.{1,2}\\//.test(spec) && spec.endsWith('.js') && context.parentURL?.startsWith('file:')) {
    const js = new URL(spec, context.parentURL)
    const ts = new URL(js.href.slice(0, -3) + '.ts')
    if (!existsSync(fileURLToPath(js)) && existsSync(fileURLToPath(ts))) return next(ts.href, context)
  }
  return next(spec, context)
}`

describe.skipIf(process.platform !== 'linux')('the gate cannot read the recovery key', () => {
  it('drill with gate-after-drill, run as the runner runs the action: pytest finds neither the key nor a token, in its environment or its parent\u2019s', async () => {
    const { dir, db, backups } = await demoWorkspace({ conversations: 5, auditRows: 5 })
    const key = generateAgeIdentity()
    const backup = await run(
      'backup',
      {
        'connection-string': db,
        'backup-dir': backups,
        encryption: 'age',
        'age-recipients': key.recipient,
      },
      dir,
    )
    expect(backup.report.ok).toBe(true)
    const secrets = { ...RUNNER_SECRETS, 'INPUT_AGE-IDENTITY': key.identity }
    const project = await probeProject(dir, Object.values(secrets))
    const hook = path.join(dir, 'resolve-ts.mjs')
    await fs.writeFile(
      hook,
      `import { register } from 'node:module'\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(RESOLVE_TS)}`)})\n`,
    )
    const probeOut = path.join(dir, 'probe.json')
    const reportFile = path.join(dir, 'drill.json')
    for (const f of ['output', 'summary', 'state']) await fs.writeFile(path.join(dir, f), '')
    const inputs = {
      mode: 'drill',
      'backup-dir': backups,
      encryption: 'age',
      'gate-after-drill': 'true',
      'gate-command': 'python3 -m pytest',
      'gate-working-directory': project,
      'report-file': reportFile,
      'drill-log': 'none',
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: dir,
      GITHUB_OUTPUT: path.join(dir, 'output'),
      GITHUB_STEP_SUMMARY: path.join(dir, 'summary'),
      GITHUB_STATE: path.join(dir, 'state'),
      ...Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
      ),
      ...secrets,
      ...PLANTED,
      OMNIAI_PROBE_OUT: probeOut,
    }
    const child = await execFileAsync(
      process.execPath,
      [
        '--experimental-transform-types',
        '--no-warnings',
        '--import',
        hook,
        path.join(ROOT, 'src', 'index.ts'),
      ],
      { cwd: dir, env },
    ).catch((err: { code: number; stdout: string; stderr: string }) => err)
    const report = JSON.parse(await fs.readFile(reportFile, 'utf8')) as {
      ok: boolean
      checks: { name: string; ok: boolean; detail: string }[]
    }
    expect(
      report.checks.filter((c) => !c.ok),
      `${child.stdout}\n${child.stderr}`,
    ).toEqual([])
    // The drill did use the key, and the gate (the probe) ran and passed.
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['decrypt', 'security-gate']),
    )
    const probe = JSON.parse(await fs.readFile(probeOut, 'utf8')) as {
      own: Record<string, string>
      parent: Record<string, string> | null
    }
    // Positive control: the planted variable, in pytest's environment and in its parent's.
    expect(probe.own.OMNIAI_PROBE_PLANTED).toBe(PLANTED.OMNIAI_PROBE_PLANTED)
    expect(probe.parent?.OMNIAI_PROBE_PLANTED).toBe(PLANTED.OMNIAI_PROBE_PLANTED)
    const seen = JSON.stringify(probe)
    for (const [name, value] of Object.entries(secrets)) {
      expect(seen, name).not.toContain(value)
      expect(Object.keys(probe.own), name).not.toContain(name)
    }
    // The key never went anywhere else either.
    // (Besides the ::add-mask:: command that tells the runner to mask it.)
    const stdout = child.stdout
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'))
      .join('\n')
    expect(child.stdout).toContain(`::add-mask::${key.identity}`)
    const everything = [stdout, child.stderr, await allText(dir)].join('\n')
    expect(everything).not.toContain(key.identity)
  })
})
