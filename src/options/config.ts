/**
 * Every input, parsed and validated once. The rest of the code reads this typed Config and
 * never the raw inputs. Names match action.yml; the CLI takes the same names as --flags.
 */
import * as path from 'node:path'
import type { EngineName } from '../engines/engine.js'
import {
  checkEncryption,
  COMPRESSIONS,
  ENCRYPTIONS,
  splitKeyLines,
  type Compression,
  type Encryption,
} from '../codec/index.js'
import { UserError } from '../util/errors.js'
import { parseS3Settings, type S3Settings } from '../store/s3-settings.js'
import {
  parseSigningKey,
  parseVerifyKeys,
  type SigningKey,
  type VerifyKey,
} from '../manifest/signature.js'

import { readRunnerContext, type RunnerContext } from './context.js'
import { DEFAULTS, ignoredInputs, INPUTS, Inputs, MODES, type Mode } from './inputs.js'

/** The page the gate's CSP check reads when csp-file is not set (OmniAI's front end). */
export const DEFAULT_CSP_FILE = 'frontend/index.html'

export const ENGINES: readonly EngineName[] = ['sqlite', 'postgres']

/** Every option any mode has, one field each; each mode's options are a part of these. */
interface Fields {
  /** The runner's environment, read once (options/context.ts). */
  runner: RunnerContext
  /** Inputs set that this mode does not read: one warning each (ignoredInputs). */
  ignoredInputs: string[]
  engine: EngineName
  /** True when `engine` was set rather than inferred. */
  engineExplicit: boolean
  connectionString: string
  backupDir: string
  backupFile: string | null
  prefix: string
  /** null when the input is `none`. */
  conversationsTable: string | null
  auditTable: string | null
  spotCheckCount: number
  drillLog: string | null
  maxBackupAgeSeconds: number | null
  maxRestoreSeconds: number | null
  reportFile: string
  scratchDir: string
  /** The pytest `-m` expression that selects the security gate's tests. */
  gateMarkers: string
  /** How to start pytest, as argv (no shell), e.g. ['python', '-m', 'pytest']. */
  gateCommand: string[]
  gateWorkingDirectory: string
  /** The gate fails when fewer selected tests than this ran (skipped ones do not count). */
  gateMinTests: number
  /** drill: run the gate against the restored copy before it is deleted. */
  gateAfterDrill: boolean
  /** postgres drill: the server to restore into (a service container), never the source. */
  restoreConnectionString: string | null
  /** postgres: a folder holding pg_dump and pg_restore, searched first. */
  pgBinDir: string | null
  /** postgres: parallel jobs for pg_dump (directory format) and pg_restore. */
  jobs: number
  /** backup: what to do with older backups in backup-dir once the new one is written and verified. */
  retention: 'apply' | 'dry-run' | 'off'
  keepDaily: number
  keepWeekly: number
  retentionTimeZone: string
  /** backup: upload the new backup and its manifest as a GitHub artifact. */
  uploadArtifact: boolean
  /** verify, drill: take the newest unexpired backup artifact instead of backup-dir. */
  downloadArtifact: boolean
  artifactName: string
  githubToken: string
  /** gate: the HTML file whose Content-Security-Policy meta is checked; null for none. */
  cspFile: string | null
  /** A csp-file that was set must exist; the default is checked only where the file is. */
  cspFileExplicit: boolean
  cspStrict: boolean
  /** drill, restore: the HTTP smoke test against a running backend; null when smoke-url is empty. */
  smoke: {
    url: string
    /** null when smoke-health-path is not set: the runbook's /v1/health, then OmniAI's own paths. */
    healthPath: string | null
    timeoutSeconds: number
    login: { path: string; body: string; tokenField?: string } | null
    conversationsPath: string | null
    requireConversations: boolean
  } | null
  /** backup: how the stored file is compressed and encrypted (public keys only). */
  compression: Compression
  encryption: Encryption
  /** verify, drill, restore: the keys that read an encrypted backup, whichever kind it is. */
  keys: {
    ageIdentities: string[]
    agePassphrase: string | null
    gpgPassphrase: string | null
    gpgHomedir: string | null
  }
  /** backup: restore the new backup into a scratch copy and check it before accepting it. */
  restoreCheck: boolean
  /** upload-artifact of an unencrypted backup: refused unless this is set. */
  allowUnencryptedArtifact: boolean
  /**
   * drill: `auto` records each drill on the tracking issue when the token may, and otherwise warns;
   * `issue` requires the record (a drill that cannot write it fails); `none` does not record.
   */
  drillEvidence: 'auto' | 'issue' | 'none'
  drillIssueTitle: string
  /** The bot that writes the drill records; records by anyone else do not count. */
  drillEvidenceAuthor: string
  /** Any mode: fail when the last successful drill on record is older than this many days. */
  maxDrillAgeDays: number | null
  /** restore: must repeat the live database's name; a restore replaces it. */
  confirm: string
  /** restore: say exactly what would happen, change nothing. */
  dryRun: boolean
  /** restore: stops the backend before the database is replaced (argv, no shell); null for none. */
  stopCommand: string[] | null
  /** restore: starts the backend again afterwards, before the smoke test. */
  startCommand: string[] | null
  /** restore: go ahead while the live database holds unexpired user sessions. */
  allowActiveSessions: boolean
  /** restore of an encrypted backup: permit a plaintext safety backup when it cannot be encrypted. */
  allowUnencryptedSafetyBackup: boolean
  /** download-artifact: only artifacts of this workflow file's runs count (`nightly.yml`); null: any. */
  backupWorkflow: string | null
  /** download-artifact: this artifact, not the newest; restore requires it. */
  artifactId: number | null
  /** backup: signs each manifest (Ed25519); null: unsigned. */
  signingKey: SigningKey | null
  /** verify, drill, restore: a manifest must be signed by one of these; empty: not required. */
  verifyKeys: VerifyKey[]
  /** backup, verify, drill, restore: an S3-compatible bucket, beside backup-dir; null when unset. */
  s3: S3Settings | null
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }

/** `26h`, `2d`, `90m`, `3600s`, `1w` to seconds. */
export function parseDuration(text: string, input: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(text.trim())
  if (!m) {
    throw new UserError(
      `${input}: "${text}" is not a duration. Fix: give a number and a unit (s, m, h, d, w), e.g. 26h, 2d, 90m.`,
    )
  }
  const seconds = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!
  if (seconds <= 0) throw new UserError(`${input}: must be more than 0. Fix: e.g. 26h.`)
  return seconds
}

function oneOf<T extends string>(value: string, allowed: readonly T[], input: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new UserError(
    `${input}: "${value}" is not one of ${allowed.join(', ')}. Fix: set ${input} to one of them.`,
  )
}

function integer(text: string, input: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) {
    throw new UserError(
      `${input}: "${text}" is not a whole number from ${min} to ${max}. Fix: e.g. ${input}: ${DEFAULTS[input as Inputs] || min}.`,
    )
  }
  return Number(text)
}

function seconds(text: string, input: string): number {
  const n = Number(text)
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
    throw new UserError(
      `${input}: "${text}" is not a number of seconds above 0. Fix: e.g. ${input}: 600.`,
    )
  }
  return n
}

/** backup: how the new backup is stored, checked before a snapshot is taken. */
function codecConfig(read: Read, upload: boolean, jobs: number) {
  const kind = oneOf(read(Inputs.Encryption), ENCRYPTIONS, Inputs.Encryption)
  const compression = oneOf(read(Inputs.Compression), COMPRESSIONS, Inputs.Compression)
  const optional = (input: Inputs) => read(input) || undefined
  const encryption: Encryption =
    kind === 'age'
      ? {
          kind,
          recipients: splitKeyLines(read(Inputs.AgeRecipients)),
          ...(optional(Inputs.AgePassphrase) ? { passphrase: read(Inputs.AgePassphrase) } : {}),
        }
      : kind === 'gpg'
        ? {
            kind,
            ...(optional(Inputs.GpgRecipient) ? { recipient: read(Inputs.GpgRecipient) } : {}),
            ...(optional(Inputs.GpgPassphrase) ? { passphrase: read(Inputs.GpgPassphrase) } : {}),
            ...(optional(Inputs.GpgHomedir) ? { homedir: read(Inputs.GpgHomedir) } : {}),
          }
        : { kind }
  // A bad key stops the job before it takes a snapshot.
  checkEncryption(encryption)
  if (jobs > 1 && (kind !== 'none' || compression !== 'none')) {
    throw new UserError(
      `jobs: above 1, pg_dump writes a folder, which is not encrypted or compressed as one file. Fix: jobs: 1 with encryption or compression (pg_dump's custom format is compressed already).`,
    )
  }
  const allowUnencryptedArtifact = bool(
    read(Inputs.AllowUnencryptedArtifact),
    Inputs.AllowUnencryptedArtifact,
  )
  if (upload && kind === 'none' && !allowUnencryptedArtifact) {
    throw new UserError(
      `upload-artifact: the backup is not encrypted, and anyone who can read this repository could download every user's conversations. Fix: set encryption: age with age-recipients (the nightly job needs only the public key), or allow-unencrypted-artifact: true for a repository only operators can read.`,
    )
  }
  return { compression, encryption, allowUnencryptedArtifact }
}

function smokeConfig(read: Read): Fields['smoke'] {
  const url = read(Inputs.SmokeUrl)
  if (!url) return null
  const loginPath = read(Inputs.SmokeLoginPath)
  const loginBody = read(Inputs.SmokeLoginBody)
  if (Boolean(loginPath) !== Boolean(loginBody)) {
    throw new UserError(
      `${loginPath ? Inputs.SmokeLoginBody : Inputs.SmokeLoginPath}: the smoke test's login needs both smoke-login-path and smoke-login-body. Fix: set both (the body from a secret), or neither.`,
    )
  }
  const tokenField = read(Inputs.SmokeTokenField)
  return {
    url,
    healthPath: read(Inputs.SmokeHealthPath) || null,
    timeoutSeconds: seconds(read(Inputs.SmokeTimeout), Inputs.SmokeTimeout),
    login: loginPath
      ? { path: loginPath, body: loginBody, ...(tokenField ? { tokenField } : {}) }
      : null,
    conversationsPath: read(Inputs.SmokeConversationsPath) || null,
    requireConversations: bool(
      read(Inputs.SmokeRequireConversations),
      Inputs.SmokeRequireConversations,
    ),
  }
}

function timeZone(text: string, input: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: text })
    return text
  } catch {
    throw new UserError(
      `${input}: "${text}" is not a time zone. Fix: an IANA name such as UTC, Europe/Berlin or America/New_York.`,
    )
  }
}

function artifactName(text: string, input: string): string {
  // GitHub refuses these characters in artifact names.
  if (/[":<>|*?\\/\r\n]/.test(text)) {
    throw new UserError(
      `${input}: "${text}" holds a character GitHub refuses in artifact names (" : < > | * ? \\ /). Fix: e.g. artifact-name: omniai-backup.`,
    )
  }
  return text
}

function tableName(text: string, input: string): string | null {
  if (text === 'none') return null
  if (text.trim() === '' || [...text].some((ch) => ch.charCodeAt(0) < 0x20)) {
    throw new UserError(
      `${input}: "${text}" is not a table name. Fix: name a table, or none to skip this check.`,
    )
  }
  return text
}

/** `true` or `false` as YAML 1.2 and core.getBooleanInput spell them. */
/** A bot's login (`github-actions[bot]`, `my-app[bot]`): people cannot hold one. */
function botLogin(text: string, input: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\[bot\]$/.test(text)) {
    throw new UserError(
      `${input}: "${text}" is not a bot's login. Fix: github-actions[bot] for the job's GITHUB_TOKEN, or <app-slug>[bot] for a GitHub App's token; a person's comments never count as drill records.`,
    )
  }
  return text
}

function bool(text: string, input: string): boolean {
  if (['true', 'True', 'TRUE'].includes(text)) return true
  if (['false', 'False', 'FALSE'].includes(text)) return false
  throw new UserError(`${input}: "${text}" is not true or false. Fix: ${input}: true.`)
}

/** What a shell would do with these words; the gate runs its command without one. */
const SHELL_OPERATORS = new Set(['&&', '||', '|', ';', '&', '>', '>>', '<', '2>&1'])

/**
 * A command line into argv, with no shell: words split at whitespace, '...' and "..." keep
 * spaces inside a word, and in "..." a backslash escapes " or \. A backslash anywhere else is
 * kept, so Windows paths work as written.
 */
export function splitCommand(
  text: string,
  input: string,
  fix = 'give only the command that starts pytest (e.g. poetry run pytest), use gate-working-directory instead of cd, and run other commands in an earlier step',
): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let quoted = false
  let quote: string | null = null
  const end = () => {
    if (!inWord) return
    if (!quoted && SHELL_OPERATORS.has(word)) {
      throw new UserError(
        `${input}: "${word}" needs a shell, and the command runs without one. Fix: ${fix}.`,
      )
    }
    words.push(word)
    word = ''
    inWord = quoted = false
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quote === "'") {
      if (ch === "'") quote = null
      else word += ch
    } else if (quote === '"') {
      if (ch === '"') quote = null
      else if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i]
      else word += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      inWord = quoted = true
    } else if (/\s/.test(ch)) end()
    else {
      word += ch
      inWord = true
    }
  }
  if (quote) {
    throw new UserError(
      `${input}: the ${quote} in "${text}" is not closed. Fix: close the quote, e.g. ${input}: python -m pytest "tests/security suite".`,
    )
  }
  end()
  if (words.length === 0 || words[0] === '') {
    throw new UserError(`${input}: no command in "${text}". Fix: e.g. ${input}: python -m pytest.`)
  }
  return words
}

function serviceCommand(text: string, input: string): string[] | null {
  if (!text) return null
  return splitCommand(
    text,
    input,
    `give one command (e.g. ${input}: systemctl ${input === Inputs.StopCommand ? 'stop' : 'start'} omniai, or docker compose ${input === Inputs.StopCommand ? 'stop' : 'start'} backend), or a script that does the rest`,
  )
}

/**
 * The engine a report names: the mode's, or for gate and smoke (which read no database) OmniAI's
 * default, SQLite, as the report format has always had one.
 */
export function engineOf(config: Options): EngineName {
  return 'engine' in config ? config.engine : 'sqlite'
}

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s)
}

/**
 * What every mode has: the runner's context, where the report goes, and what the drill-age gate
 * (max-drill-age, any mode) reads.
 */
export type CommonOptions = Pick<
  Fields,
  | 'runner'
  | 'ignoredInputs'
  | 'reportFile'
  | 'scratchDir'
  | 'githubToken'
  | 'maxDrillAgeDays'
  | 'drillEvidence'
  | 'drillIssueTitle'
  | 'drillEvidenceAuthor'
  | 'drillLog'
  | 'backupDir'
>
/** The database a mode reads or writes, and the engine's own settings (EngineOptions). */
export type SourceOptions = Pick<
  Fields,
  'engine' | 'engineExplicit' | 'connectionString' | 'restoreConnectionString' | 'pgBinDir' | 'jobs'
>
/** Where backups are kept besides backup-dir: an artifact, an S3 bucket. */
export type StoreOptions = Pick<Fields, 'prefix' | 'artifactName' | 's3'>
/** Which backup a reading mode takes, whose it must be, and the keys that open it. */
export type SelectionOptions = Pick<
  Fields,
  | 'encryption'
  | 'backupFile'
  | 'downloadArtifact'
  | 'backupWorkflow'
  | 'artifactId'
  | 'verifyKeys'
  | 'keys'
  | 'maxBackupAgeSeconds'
>
/** What a manifest records of the data: the conversations and audit tables, the spot-check. */
export type InventoryOptions = Pick<Fields, 'conversationsTable' | 'auditTable' | 'spotCheckCount'>
/** How a backup is stored: compression, encryption, signature, artifact upload. */
export type EncodeOptions = Pick<
  Fields,
  'compression' | 'encryption' | 'allowUnencryptedArtifact' | 'uploadArtifact' | 'signingKey'
>
export type RetentionOptions = Pick<
  Fields,
  'retention' | 'keepDaily' | 'keepWeekly' | 'retentionTimeZone'
>
/** The security gate's pytest run (mode gate, and a drill's gate-after-drill). */
export type GateOptions = Pick<
  Fields,
  'gateMarkers' | 'gateCommand' | 'gateWorkingDirectory' | 'gateMinTests'
>
/** The gate's Content-Security-Policy check (mode gate). */
export type CspOptions = Pick<Fields, 'cspFile' | 'cspFileExplicit' | 'cspStrict'>
export type SmokeOptions = Pick<Fields, 'smoke'>

export type BackupOptions = { mode: 'backup' } & CommonOptions &
  SourceOptions &
  StoreOptions &
  InventoryOptions &
  EncodeOptions &
  RetentionOptions &
  Pick<Fields, 'verifyKeys' | 'restoreCheck'>
export type VerifyOptions = { mode: 'verify' } & CommonOptions &
  SourceOptions &
  StoreOptions &
  SelectionOptions
export type DrillOptions = { mode: 'drill' } & CommonOptions &
  SourceOptions &
  StoreOptions &
  SelectionOptions &
  GateOptions &
  SmokeOptions &
  Pick<Fields, 'maxRestoreSeconds' | 'gateAfterDrill'>
export type RestoreOptions = { mode: 'restore' } & CommonOptions &
  SourceOptions &
  StoreOptions &
  SelectionOptions &
  InventoryOptions &
  SmokeOptions &
  Pick<
    Fields,
    | 'confirm'
    | 'dryRun'
    | 'stopCommand'
    | 'startCommand'
    | 'allowActiveSessions'
    | 'allowUnencryptedSafetyBackup'
    | 'signingKey'
  >
export type GateModeOptions = { mode: 'gate' } & CommonOptions & GateOptions & CspOptions
export type SmokeModeOptions = { mode: 'smoke' } & CommonOptions & SmokeOptions

/** The modes that read a backup: which one, whose, opened with which keys. */
export type ReadingOptions = VerifyOptions | DrillOptions | RestoreOptions
/** The modes that run the smoke test when smoke-url is set. */
export type SmokingOptions = DrillOptions | RestoreOptions | SmokeModeOptions

/** A mode's options: what `mode` reads, parsed and validated, and nothing else. */
export type Options =
  BackupOptions | VerifyOptions | DrillOptions | RestoreOptions | GateModeOptions | SmokeModeOptions
/** The options of any mode (the name the modes' shared code uses). */
export type Config = Options

/** An input's value, read only by a parser of a mode that uses it (the input table says which). */
type Read = (input: Inputs) => string

/**
 * Reads the inputs `mode` uses through `get` (which returns '' for unset) and validates them
 * into that mode's options. An input the mode does not use is never parsed, so a bad value
 * there cannot fail the job (it is warned about, see ignoredInputs).
 */
export function parseConfig(
  get: (input: Inputs) => string,
  env: NodeJS.ProcessEnv = process.env,
): Options {
  const modeText = get(Inputs.Mode).trim()
  if (modeText === '') {
    throw new UserError(`mode: not set. Fix: set mode to one of ${MODES.join(', ')}.`)
  }
  const mode = oneOf(modeText, MODES, Inputs.Mode)
  const read: Read = (input) => {
    const { modes, also } = INPUTS[input]
    // The table is the truth: a parser that reads an input its mode does not use is a bug here.
    if (!modes.includes(mode) && !also) {
      throw new Error(
        `${input} is read by mode ${mode}, which the input table says does not use it`,
      )
    }
    const v = get(input).trim()
    return v === '' ? DEFAULTS[input] : v
  }
  const runner = readRunnerContext(env)
  const common = commonOptions(read, get, mode, runner)
  switch (mode) {
    case 'backup':
      return {
        mode,
        ...common,
        ...sourceOptions(read, mode),
        ...storeOptions(read, env, mode, false),
        ...inventoryOptions(read),
        ...encodeOptions(read),
        ...retentionOptions(read),
        verifyKeys: verifyKeys(read),
        restoreCheck: restoreCheck(read),
      }
    case 'verify': {
      const selection = selectionOptions(read, mode)
      return {
        mode,
        ...common,
        ...sourceOptions(read, mode),
        ...storeOptions(read, env, mode, selection.downloadArtifact),
        ...selection,
      }
    }
    case 'drill': {
      const selection = selectionOptions(read, mode)
      return {
        mode,
        ...common,
        ...sourceOptions(read, mode),
        ...storeOptions(read, env, mode, selection.downloadArtifact),
        ...selection,
        ...gateOptions(read),
        smoke: smokeConfig(read),
        maxRestoreSeconds: optional(read(Inputs.MaxRestoreSeconds), (t) =>
          seconds(t, Inputs.MaxRestoreSeconds),
        ),
        gateAfterDrill: bool(read(Inputs.GateAfterDrill), Inputs.GateAfterDrill),
      }
    }
    case 'restore': {
      const selection = selectionOptions(read, mode)
      return {
        mode,
        ...common,
        ...sourceOptions(read, mode),
        ...storeOptions(read, env, mode, selection.downloadArtifact),
        ...selection,
        ...inventoryOptions(read),
        smoke: smokeConfig(read),
        confirm: read(Inputs.Confirm),
        dryRun: bool(read(Inputs.DryRun), Inputs.DryRun),
        stopCommand: serviceCommand(read(Inputs.StopCommand), Inputs.StopCommand),
        startCommand: serviceCommand(read(Inputs.StartCommand), Inputs.StartCommand),
        allowActiveSessions: bool(read(Inputs.AllowActiveSessions), Inputs.AllowActiveSessions),
        allowUnencryptedSafetyBackup: bool(
          read(Inputs.AllowUnencryptedSafetyBackup),
          Inputs.AllowUnencryptedSafetyBackup,
        ),
        signingKey: signingKey(read),
      }
    }
    case 'gate':
      return { mode, ...common, ...gateOptions(read), ...cspOptions(read) }
    case 'smoke':
      return { mode, ...common, smoke: smokeConfig(read) }
  }
}

const optional = <T>(text: string, parse: (text: string) => T): T | null =>
  text ? parse(text) : null

function commonOptions(
  read: Read,
  get: (input: Inputs) => string,
  mode: Mode,
  runner: RunnerContext,
): CommonOptions {
  const backupDir = read(Inputs.BackupDir)
  const drillLogText = read(Inputs.DrillLog)
  // Set in a mode that does not run a drill: a mistake to say, not to ignore.
  const gateAfterDrill = get(Inputs.GateAfterDrill).trim()
  if (mode !== 'drill' && gateAfterDrill && bool(gateAfterDrill, Inputs.GateAfterDrill)) {
    throw new UserError(
      `gate-after-drill: only a drill runs the gate afterwards, and mode is ${mode}. Fix: remove gate-after-drill${mode === 'gate' ? ' (mode gate runs the gate on its own)' : ', or set mode: drill'}.`,
    )
  }
  // A private key where it does not belong is an error, not a warning: it should not be there.
  if (get(Inputs.SigningKey).trim() && mode !== 'backup' && mode !== 'restore') {
    throw new UserError(
      `signing-key: ${mode} signs nothing, and the private key belongs only in the backup job. Fix: remove signing-key here; verify-key (the public key) checks signatures.`,
    )
  }
  return {
    runner,
    ignoredInputs: ignoredInputs(get, mode),
    backupDir,
    drillLog:
      drillLogText === 'none' ? null : drillLogText || path.join(backupDir, 'drill-log.jsonl'),
    reportFile:
      read(Inputs.ReportFile) ||
      (runner.runnerTemp
        ? path.join(runner.runnerTemp, 'omniai-backup-report.json')
        : 'omniai-backup-report.json'),
    scratchDir:
      (INPUTS[Inputs.ScratchDir].modes.includes(mode) && read(Inputs.ScratchDir)) || runner.temp,
    // Outside a workflow (the CLI) the default expression is not expanded: use GITHUB_TOKEN.
    githubToken: read(Inputs.GithubToken).startsWith('${{')
      ? runner.envToken
      : read(Inputs.GithubToken),
    drillEvidence: oneOf(
      read(Inputs.DrillEvidence),
      ['auto', 'issue', 'none'] as const,
      Inputs.DrillEvidence,
    ),
    drillIssueTitle: read(Inputs.DrillIssueTitle),
    drillEvidenceAuthor: botLogin(read(Inputs.DrillEvidenceAuthor), Inputs.DrillEvidenceAuthor),
    maxDrillAgeDays: optional(read(Inputs.MaxDrillAge), (t) =>
      integer(t, Inputs.MaxDrillAge, 1, 3660),
    ),
  }
}

function sourceOptions(read: Read, mode: Mode): SourceOptions {
  // verify reads no database: the engine is the one its manifest names.
  const connectionString = mode === 'verify' ? '' : read(Inputs.ConnectionString)
  const inferred: EngineName = isPostgresUrl(connectionString) ? 'postgres' : 'sqlite'
  const engineText = read(Inputs.Engine)
  const engine = engineText ? oneOf(engineText, ENGINES, Inputs.Engine) : inferred
  if (engineText && mode === 'backup' && engine !== inferred) {
    throw new UserError(
      engine === 'postgres'
        ? `connection-string: engine is postgres but connection-string is not a postgres:// URL. Fix: give the database URL, or set engine: sqlite.`
        : `connection-string: engine is sqlite but connection-string is a postgres:// URL. Fix: give the SQLite file path, or set engine: postgres.`,
    )
  }
  return {
    engine,
    engineExplicit: engineText !== '',
    connectionString,
    restoreConnectionString:
      mode === 'drill' || mode === 'backup' ? read(Inputs.RestoreConnectionString) || null : null,
    pgBinDir: read(Inputs.PgBinDir) || null,
    jobs: integer(read(Inputs.Jobs), Inputs.Jobs, 1, 64),
  }
}

function storeOptions(
  read: Read,
  env: NodeJS.ProcessEnv,
  mode: Mode,
  downloadArtifact: boolean,
): StoreOptions {
  const prefix = INPUTS[Inputs.Prefix].modes.includes(mode)
    ? read(Inputs.Prefix)
    : DEFAULTS[Inputs.Prefix]
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(prefix)) {
    throw new UserError(
      `prefix: "${prefix}" may only hold letters, digits, ".", "_" and "-". Fix: e.g. prefix: omniai.`,
    )
  }
  return {
    prefix,
    artifactName: artifactName(read(Inputs.ArtifactName), Inputs.ArtifactName),
    s3: storageConfig(read, env, mode, downloadArtifact),
  }
}

function selectionOptions(read: Read, mode: Mode): SelectionOptions {
  const downloadArtifact = bool(read(Inputs.DownloadArtifact), Inputs.DownloadArtifact)
  const maxAge = mode === 'restore' ? '' : read(Inputs.MaxBackupAge)
  return {
    // Only its kind: a job that says encryption: age reads only age-encrypted backups (trust.ts).
    encryption: { kind: oneOf(read(Inputs.Encryption), ENCRYPTIONS, Inputs.Encryption) },
    backupFile: read(Inputs.BackupFile) || null,
    downloadArtifact,
    ...trustConfig(read, mode, downloadArtifact),
    keys: {
      ageIdentities: splitKeyLines(read(Inputs.AgeIdentity)),
      agePassphrase: read(Inputs.AgePassphrase) || null,
      gpgPassphrase: read(Inputs.GpgPassphrase) || null,
      gpgHomedir: read(Inputs.GpgHomedir) || null,
    },
    maxBackupAgeSeconds: optional(maxAge, (t) => parseDuration(t, Inputs.MaxBackupAge)),
  }
}

function inventoryOptions(read: Read): InventoryOptions {
  return {
    conversationsTable: tableName(read(Inputs.ConversationsTable), Inputs.ConversationsTable),
    auditTable: tableName(read(Inputs.AuditTable), Inputs.AuditTable),
    spotCheckCount: integer(read(Inputs.SpotCheckCount), Inputs.SpotCheckCount, 1, 100),
  }
}

function encodeOptions(read: Read): EncodeOptions {
  const uploadArtifact = bool(read(Inputs.UploadArtifact), Inputs.UploadArtifact)
  const { compression, encryption, allowUnencryptedArtifact } = codecConfig(
    read,
    uploadArtifact,
    integer(read(Inputs.Jobs), Inputs.Jobs, 1, 64),
  )
  return {
    compression,
    encryption,
    allowUnencryptedArtifact,
    uploadArtifact,
    signingKey: signingKey(read),
  }
}

function retentionOptions(read: Read): RetentionOptions {
  return {
    retention: oneOf(
      read(Inputs.Retention),
      ['apply', 'dry-run', 'off'] as const,
      Inputs.Retention,
    ),
    keepDaily: integer(read(Inputs.KeepDaily), Inputs.KeepDaily, 0, 3660),
    keepWeekly: integer(read(Inputs.KeepWeekly), Inputs.KeepWeekly, 0, 520),
    retentionTimeZone: timeZone(read(Inputs.RetentionTimeZone), Inputs.RetentionTimeZone),
  }
}

function gateOptions(read: Read): GateOptions {
  return {
    gateMarkers: read(Inputs.GateMarkers),
    gateCommand: splitCommand(read(Inputs.GateCommand), Inputs.GateCommand),
    gateWorkingDirectory: read(Inputs.GateWorkingDirectory),
    gateMinTests: integer(read(Inputs.GateMinTests), Inputs.GateMinTests, 1, 100_000),
  }
}

function cspOptions(read: Read): CspOptions {
  return {
    // Empty in action.yml too: the runner passes an input's default as if it were set, and an
    // unset csp-file must stay distinguishable (its page missing is a warning, not a failure).
    cspFile: read(Inputs.CspFile) === 'none' ? null : read(Inputs.CspFile) || DEFAULT_CSP_FILE,
    cspFileExplicit: read(Inputs.CspFile) !== '',
    cspStrict: bool(read(Inputs.CspStrict), Inputs.CspStrict),
  }
}

/** backup with restore-check: a PostgreSQL backup needs a server to be restored into. */
function restoreCheck(read: Read): boolean {
  const on = bool(read(Inputs.RestoreCheck), Inputs.RestoreCheck)
  const postgres =
    read(Inputs.Engine) === 'postgres' || isPostgresUrl(read(Inputs.ConnectionString))
  if (on && postgres && !read(Inputs.RestoreConnectionString)) {
    throw new UserError(
      `${Inputs.RestoreCheck}: a PostgreSQL backup is checked by restoring it into a scratch database, and restore-connection-string is not set. Fix: set restore-connection-string to a separate server (a services: postgres container), or restore-check: false.`,
    )
  }
  return on
}

function verifyKeys(read: Read): VerifyKey[] {
  const text = read(Inputs.VerifyKey)
  return text ? parseVerifyKeys(text, Inputs.VerifyKey) : []
}

function signingKey(read: Read): SigningKey | null {
  const text = read(Inputs.SigningKey)
  return text ? parseSigningKey(text, Inputs.SigningKey) : null
}

/** The S3 store's settings when `storage` is set (the SDK is loaded only then, by the mode). */
function storageConfig(
  read: Read,
  env: NodeJS.ProcessEnv,
  mode: Mode,
  downloadArtifact: boolean,
): S3Settings | null {
  const storage = read(Inputs.Storage)
  if (!storage) return null
  // Restore replaces the live database: not with whatever a bucket's newest manifest claims to
  // be, unless a signature proves who made it (as with artifacts and artifact-id).
  if (mode === 'restore' && !read(Inputs.BackupFile) && !read(Inputs.VerifyKey)) {
    throw new UserError(
      'backup-file: restore replaces the live database, so from storage it does not take the newest backup on its own. Fix: set backup-file to the backup to restore (its file name in the prefix, or its s3:// URL), or set verify-key so only signed backups count.',
    )
  }
  if (downloadArtifact) {
    throw new UserError(
      'storage: verify, drill and restore read one place, and download-artifact is also true. Fix: remove one of them (storage reads the bucket; download-artifact reads the newest artifact).',
    )
  }
  return parseS3Settings(
    {
      Storage: storage,
      Endpoint: read(Inputs.S3Endpoint),
      Region: read(Inputs.S3Region),
      PathStyle: read(Inputs.S3PathStyle),
      AccessKeyId: read(Inputs.S3AccessKeyId),
      SecretAccessKey: read(Inputs.S3SecretAccessKey),
      SessionToken: read(Inputs.S3SessionToken),
      // Locking is the backup's to do: the modes that read backups do not read it.
      ObjectLock: mode === 'backup' ? read(Inputs.S3ObjectLock) : DEFAULTS[Inputs.S3ObjectLock],
    },
    env,
  )
}

/** Where backups may come from, and the keys that sign and check their manifests. */
function trustConfig(read: Read, mode: Mode, downloadArtifact: boolean) {
  const workflowText = read(Inputs.BackupWorkflow)
  const idText = read(Inputs.ArtifactId)
  for (const [input, text] of [
    [Inputs.BackupWorkflow, workflowText],
    [Inputs.ArtifactId, idText],
  ] as const) {
    if (text && !downloadArtifact) {
      throw new UserError(
        `${input}: only applies to artifacts, and download-artifact is not true. Fix: set download-artifact: true, or remove ${input}.`,
      )
    }
  }
  const workflow = workflowText.replace(/^\.?\/?\.github\/workflows\//, '')
  if (workflowText && !/^[^/\\@]+\.ya?ml$/.test(workflow)) {
    throw new UserError(
      `backup-workflow: "${workflowText}" is not a workflow file name. Fix: the name of the backup workflow's file under .github/workflows, e.g. backup-workflow: nightly.yml.`,
    )
  }
  if (idText && !/^[1-9]\d{0,15}$/.test(idText)) {
    throw new UserError(
      `artifact-id: "${idText}" is not an artifact id. Fix: the number the backup run's summary shows ("Artifact omniai-backup (id 1234567890)").`,
    )
  }
  // Restore replaces the live database: which backup must be a decision, not whatever is newest.
  if (mode === 'restore' && downloadArtifact && !idText) {
    throw new UserError(
      `artifact-id: restore replaces the live database, so with download-artifact it does not take the newest artifact on its own. Fix: set artifact-id to the artifact to restore (the backup run's summary shows "Artifact omniai-backup (id N)"; a drill's report too), or restore a local backup with backup-file.`,
    )
  }
  return {
    backupWorkflow: workflowText ? workflow : null,
    artifactId: idText ? Number(idText) : null,
    verifyKeys: verifyKeys(read),
  }
}
