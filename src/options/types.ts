/**
 * The options each mode is given: every field once (Fields), the shared pieces the modes
 * compose, and one type per mode. config.ts parses inputs into them.
 */
import type { Compression, Encryption } from '../codec/index.js'
import type { EngineName } from '../engines/engine.js'
import type { SigningKey, VerifyKey } from '../manifest/signature.js'
import type { S3Settings } from '../store/s3-settings.js'
import type { RunnerContext } from './context.js'

/** Every option any mode has, one field each; each mode's options are a part of these. */
export interface Fields {
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
