/**
 * Inputs into each mode's options (types.ts), once: a mode's parser reads only the inputs the
 * table (inputs.ts) says it uses, through the value parsers (values.ts). The rest of the code
 * reads the typed options and never the raw inputs.
 */
import * as path from 'node:path'
import type { EngineName } from '../engines/engine.js'
import {
  checkEncryption,
  COMPRESSIONS,
  ENCRYPTIONS,
  splitKeyLines,
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

export type * from './types.js'
import type {
  CommonOptions,
  CspOptions,
  EncodeOptions,
  Fields,
  GateOptions,
  InventoryOptions,
  Options,
  RetentionOptions,
  SelectionOptions,
  SourceOptions,
  StoreOptions,
} from './types.js'
import {
  artifactName,
  bool,
  botLogin,
  integer,
  oneOf,
  parseDuration,
  seconds,
  serviceCommand,
  splitCommand,
  tableName,
  timeZone,
} from './values.js'
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
  /** What the modes that read a backup share: the database, the stores, which backup. */
  const reading = <M extends 'verify' | 'drill' | 'restore'>(mode: M) => {
    const selection = selectionOptions(read, mode)
    return {
      mode,
      ...common,
      ...sourceOptions(read, mode),
      ...storeOptions(read, env, mode, selection.downloadArtifact),
      ...selection,
    }
  }
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
    case 'verify':
      return reading(mode)
    case 'drill':
      return {
        ...reading(mode),
        ...gateOptions(read),
        smoke: smokeConfig(read),
        maxRestoreSeconds: optional(read(Inputs.MaxRestoreSeconds), (t) =>
          seconds(t, Inputs.MaxRestoreSeconds),
        ),
        gateAfterDrill: bool(read(Inputs.GateAfterDrill), Inputs.GateAfterDrill),
      }
    case 'restore':
      return {
        ...reading(mode),
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
