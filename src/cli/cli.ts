/**
 * The local CLI: `omniai-backup backup|verify|drill|gate --flag value ...`, with the action's input
 * names as flags, plus `demo-db` (generate the demo database) and `demo` (generate it, then run
 * backup, verify and drill on it). Prints the same summary the job summary shows.
 */
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { parseConfig } from '../options/config.js'
import { DEFAULTS, INPUTS, Inputs, MODES } from '../options/inputs.js'
import { DEMO_DEFAULTS, generateDemoDatabase } from '../demo/sqlite.js'
import { parsePgUrl, pgSecrets } from '../engines/postgres/tools.js'
import { describeError, UserError } from '../util/errors.js'
import { consoleLog } from '../util/log.js'
import { runMode } from '../modes/index.js'
import { failureMessage, renderSummary } from '../report/report.js'
import { generateKeyPair } from '../manifest/signature.js'
import { SECRET_INPUTS, secretEnvName, type SecretInput } from '../util/secrets.js'
import { oneLine } from '../util/text.js'

const USAGE = `usage: omniai-backup <${MODES.join('|')}> [--<input> <value> ...]
       omniai-backup demo-db --out <file> | --postgres <url> [--conversations N] [--message-chars N] [--audit-rows N]
       omniai-backup demo [--dir <folder>]
       omniai-backup keygen --out <private key file>   (an Ed25519 pair for signing-key / verify-key)

inputs (as in action.yml):
${Object.values(Inputs)
  .filter((i) => i !== Inputs.Mode)
  .map((i) => `  --${i}${DEFAULTS[i] ? ` (default ${DEFAULTS[i]})` : ''}`)
  .join('\n')}

secrets (${SECRET_INPUTS.join(', ')}): every local user can read a command line
(ps, /proc/<pid>/cmdline), so give each from a file or an environment variable instead:
${SECRET_INPUTS.map((i) => `  --${i}-file <file>  or  ${secretEnvName(i)}=...`).join('\n')}`

/** The flags a mode takes: every input, and a -file twin for each secret. */
export const CLI_FLAGS = [
  ...Object.values(Inputs).filter((i) => i !== Inputs.Mode),
  ...SECRET_INPUTS.map((i) => `${i}-file`),
]

/**
 * A secret input's value: from --<input>-file, else the OMNIAI_ environment variable, else the
 * flag itself (with a warning: a command line is public on this machine). Two of them at once
 * are refused: which one counts would be a guess.
 */
export async function secretValue(
  input: SecretInput,
  flags: Map<string, string>,
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = (m) => console.error(oneLine(`warning: ${m}`)),
): Promise<string | undefined> {
  const envName = secretEnvName(input)
  const given = [
    flags.has(input) && `--${input}`,
    flags.has(`${input}-file`) && `--${input}-file`,
    env[envName] && envName,
  ].filter(Boolean)
  if (given.length > 1) {
    throw new UserError(
      `${input}: given as ${given.join(' and ')}. Fix: give it once, preferably as --${input}-file or ${envName}.`,
    )
  }
  const file = flags.get(`${input}-file`)
  if (file !== undefined) {
    try {
      // The file as written, without the line end an editor adds: a key file may hold several lines.
      return (await fs.readFile(file, 'utf8')).replace(/\r?\n$/, '')
    } catch (err) {
      throw new UserError(
        `--${input}-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code}). Fix: give a readable file that holds only the ${input}.`,
      )
    }
  }
  if (env[envName]) return env[envName]
  const value = flags.get(input)
  const secret =
    input === Inputs.ConnectionString || input === Inputs.RestoreConnectionString
      ? pgSecrets(value ?? '', {}).length > 0
      : Boolean(value)
  if (secret) {
    warn(
      `--${input} on the command line can be read by every user of this machine (ps, /proc/<pid>/cmdline). Use --${input}-file <file> or ${envName} instead.`,
    )
  }
  return value
}

/** `--name value` pairs into a map; every name must be one of `allowed`. */
export function parseFlags(args: string[], allowed: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg)
    if (!m) throw new UserError(`unexpected argument "${arg}". Fix: give options as --name value.`)
    const name = m[1]!
    if (!allowed.includes(name)) {
      throw new UserError(
        `unknown option --${name}. Fix: use one of ${allowed.map((a) => `--${a}`).join(', ')}.`,
      )
    }
    let value = m[2]
    if (value === undefined) {
      value = args[++i]
      if (value === undefined)
        throw new UserError(`--${name}: no value given. Fix: --${name} <value>.`)
    }
    flags.set(name, value)
  }
  return flags
}

async function runOne(mode: string, flags: Map<string, string>): Promise<boolean> {
  const secrets = new Map<string, string>()
  for (const input of SECRET_INPUTS) {
    const value = await secretValue(input, flags)
    if (value !== undefined) secrets.set(input, value)
  }
  const config = parseConfig((name) =>
    name === Inputs.Mode ? mode : (secrets.get(name) ?? flags.get(name) ?? ''),
  )
  const report = await runMode(config, consoleLog)
  console.log('\n' + renderSummary(report))
  console.log(`report: ${config.reportFile}`)
  if (!report.ok) console.error(oneLine(`Error: ${failureMessage(report)}`))
  return report.ok
}

const count = (flags: Map<string, string>, name: string, fallback: number) => {
  const v = flags.get(name)
  if (v === undefined) return fallback
  if (!/^\d+$/.test(v)) throw new UserError(`--${name}: "${v}" is not a whole number.`)
  return Number(v)
}

async function demoDb(flags: Map<string, string>): Promise<void> {
  const postgres = flags.get('postgres')
  if (postgres) {
    // Into an existing, empty PostgreSQL database (for benchmarks and trying the engine).
    const { generatePostgresDemo } = await import('../demo/postgres.js')
    await generatePostgresDemo(postgres, {
      conversations: count(flags, 'conversations', DEMO_DEFAULTS.conversations),
      messageChars: count(flags, 'message-chars', DEMO_DEFAULTS.messageChars),
      auditRows: count(flags, 'audit-rows', DEMO_DEFAULTS.auditRows),
    })
    console.log(`demo database written: ${parsePgUrl(postgres, '--postgres').redacted}`)
    return
  }
  const out = flags.get('out')
  if (!out)
    throw new UserError('--out: not set. Fix: demo-db --out demo/omniai.db (or --postgres URL)')
  await generateDemoDatabase(out, {
    conversations: count(flags, 'conversations', DEMO_DEFAULTS.conversations),
    messageChars: count(flags, 'message-chars', DEMO_DEFAULTS.messageChars),
    auditRows: count(flags, 'audit-rows', DEMO_DEFAULTS.auditRows),
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST')
      throw new UserError(`--out: ${out} already exists. Fix: remove it or choose another path.`)
    throw err
  })
  console.log(`demo database written: ${out}`)
}

/** The README's first command: a demo database, then backup, verify and drill on it. */
async function demo(flags: Map<string, string>): Promise<boolean> {
  const dir = flags.get('dir') ?? 'demo'
  const db = path.join(dir, 'omniai.db')
  await fs.rm(dir, { recursive: true, force: true })
  await generateDemoDatabase(db)
  console.log(`demo database written: ${db}`)
  const common = new Map([
    [Inputs.ConnectionString, db],
    [Inputs.BackupDir, path.join(dir, 'backups')],
    [Inputs.ScratchDir, path.join(dir, 'scratch')],
  ])
  // The demo database has no test suite: the gate is not part of the demo.
  for (const mode of ['backup', 'verify', 'drill'] as const) {
    console.log(`\n$ omniai-backup ${mode}`)
    // Only what this mode reads: verify would warn about connection-string.
    const flagsFor = new Map([
      ...[...common].filter(([input]) => INPUTS[input].modes.includes(mode)),
      [Inputs.ReportFile, path.join(dir, `report-${mode}.json`)],
    ])
    if (!(await runOne(mode, flagsFor))) return false
  }
  return true
}

/**
 * A key pair for signed manifests: the private key goes to a new 0600 file (never to the
 * terminal, whose scrollback and logs outlive it), the public key to stdout.
 */
async function keygen(flags: Map<string, string>): Promise<void> {
  const out = flags.get('out')
  if (!out) throw new UserError('--out: not set. Fix: keygen --out signing-key.pem')
  const pair = generateKeyPair()
  await fs.writeFile(out, pair.privatePem, { mode: 0o600, flag: 'wx' }).catch((err) => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new UserError(
        `--out: ${out} already exists. Fix: choose another file; keys are never overwritten.`,
      )
    throw err
  })
  console.log(`private key (signing-key, key id ${pair.keyId}) written to ${out}, readable only by you.
Store it as a secret of the backup job, then delete the file:
  gh secret set OMNIAI_BACKUP_SIGNING_KEY < ${out}

public key (verify-key for verify, drill and restore; not secret):
${pair.publicPem.trim()}

or on one line: ${pair.publicBase64}`)
}

/** Returns the process exit code: 0 ok, 1 failed, 2 bad usage. */
export async function cli(args: string[]): Promise<number> {
  const [command, ...rest] = args
  try {
    switch (command) {
      case 'demo-db':
        await demoDb(
          parseFlags(rest, ['out', 'postgres', 'conversations', 'message-chars', 'audit-rows']),
        )
        return 0
      case 'keygen':
        await keygen(parseFlags(rest, ['out']))
        return 0
      case 'demo':
        return (await demo(parseFlags(rest, ['dir']))) ? 0 : 1
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE)
        return 0
      default:
        if (!(MODES as readonly string[]).includes(command ?? '')) {
          console.error(`Error: unknown command "${command ?? ''}".\n${USAGE}`)
          return 2
        }
        return (await runOne(command!, parseFlags(rest, CLI_FLAGS))) ? 0 : 1
    }
  } catch (err) {
    console.error(oneLine(`Error: ${describeError(err)}`))
    return err instanceof UserError ? 2 : 1
  }
}
