/**
 * The inputs and outputs of the action and its sub-actions: one table each, the single source.
 * action.yml (the root's and each sub-action's), the README's tables and the CLI's flags are
 * made from these (src/options/action-yml.ts, scripts/actions.mjs), and a test holds each of
 * them to this file. Error messages name inputs through `Inputs`, never by a string of their own.
 */
export enum Inputs {
  Mode = 'mode',
  Engine = 'engine',
  ConnectionString = 'connection-string',
  BackupDir = 'backup-dir',
  BackupFile = 'backup-file',
  Prefix = 'prefix',
  ConversationsTable = 'conversations-table',
  AuditTable = 'audit-table',
  SpotCheckCount = 'spot-check-count',
  DrillLog = 'drill-log',
  MaxBackupAge = 'max-backup-age',
  MaxRestoreSeconds = 'max-restore-seconds',
  ReportFile = 'report-file',
  ScratchDir = 'scratch-dir',
  GateMarkers = 'gate-markers',
  GateCommand = 'gate-command',
  GateWorkingDirectory = 'gate-working-directory',
  GateMinTests = 'gate-min-tests',
  GateAfterDrill = 'gate-after-drill',
  RestoreConnectionString = 'restore-connection-string',
  PgBinDir = 'pg-bin-dir',
  Jobs = 'jobs',
  Retention = 'retention',
  KeepDaily = 'keep-daily',
  KeepWeekly = 'keep-weekly',
  RetentionTimeZone = 'retention-time-zone',
  UploadArtifact = 'upload-artifact',
  DownloadArtifact = 'download-artifact',
  ArtifactName = 'artifact-name',
  GithubToken = 'github-token',
  Confirm = 'confirm',
  DrillEvidence = 'drill-evidence',
  DrillIssueTitle = 'drill-issue-title',
  DrillEvidenceAuthor = 'drill-evidence-author',
  MaxDrillAge = 'max-drill-age',
  Encryption = 'encryption',
  Compression = 'compression',
  AgeRecipients = 'age-recipients',
  AgeIdentity = 'age-identity',
  AgePassphrase = 'age-passphrase',
  GpgRecipient = 'gpg-recipient',
  GpgPassphrase = 'gpg-passphrase',
  GpgHomedir = 'gpg-homedir',
  AllowUnencryptedArtifact = 'allow-unencrypted-artifact',
  CspFile = 'csp-file',
  CspStrict = 'csp-strict',
  SmokeUrl = 'smoke-url',
  SmokeHealthPath = 'smoke-health-path',
  SmokeTimeout = 'smoke-timeout',
  SmokeLoginPath = 'smoke-login-path',
  SmokeLoginBody = 'smoke-login-body',
  SmokeTokenField = 'smoke-token-field',
  SmokeConversationsPath = 'smoke-conversations-path',
  SmokeRequireConversations = 'smoke-require-conversations',
  DryRun = 'dry-run',
  StopCommand = 'stop-command',
  StartCommand = 'start-command',
  AllowActiveSessions = 'allow-active-sessions',
  AllowUnencryptedSafetyBackup = 'allow-unencrypted-safety-backup',
  BackupWorkflow = 'backup-workflow',
  ArtifactId = 'artifact-id',
  SigningKey = 'signing-key',
  VerifyKey = 'verify-key',
  Storage = 'storage',
  S3Endpoint = 's3-endpoint',
  S3Region = 's3-region',
  S3PathStyle = 's3-path-style',
  S3AccessKeyId = 's3-access-key-id',
  S3SecretAccessKey = 's3-secret-access-key',
  S3SessionToken = 's3-session-token',
  S3ObjectLock = 's3-object-lock',
  RestoreCheck = 'restore-check',
}

export const MODES = ['backup', 'verify', 'drill', 'gate', 'restore', 'smoke'] as const
export type Mode = (typeof MODES)[number]

/**
 * What the code knows of an input besides its name (the name is the Inputs member; its
 * description is in action.yml, whose defaults __tests__/docs.test.ts holds to these).
 */
export interface InputSpec {
  /** As action.yml declares it: the runner passes it for every input the step does not set. */
  default: string
  /** The modes that read it. Set (not empty, not the default) in any other mode, it is warned about. */
  modes: readonly Mode[]
  /** Read by every mode as well when this input is set (max-drill-age reads the drill records). */
  also?: Inputs
  /**
   * Masked in logs, never on argv, never inherited by a child. src/util/secrets.ts keeps the list
   * itself (the entry needs it before it loads this file); a test holds the two equal.
   */
  secret?: true
  /** One line for the README's table and the CLI's help. */
  summary: string
  /** The full description action.yml shows (the root's and each sub-action's). */
  description: string
  /** The Default column of the README's table (what an empty default means, e.g. "inferred"). */
  readmeDefault: string
}

const ALL = MODES
/** Modes that read or write backups. */
const STORED = ['backup', 'verify', 'drill', 'restore'] as const
/** Modes that read a backup. */
const READS = ['verify', 'drill', 'restore'] as const
/** The gate runs on its own and after a drill (gate-after-drill). */
const GATE = ['gate', 'drill'] as const
const SMOKE = ['drill', 'restore', 'smoke'] as const

/** Every input: one row each. */

/** Every input: one row each. */
export const INPUTS: Record<Inputs, InputSpec> = {
  [Inputs.Mode]: {
    default: '',
    modes: ALL,
    summary: '`backup`, `verify`, `drill`, `gate`, `restore` or `smoke` (root action only)',
    description:
      'The job, in the root action only (each sub-action is one job: omniai/omniai-backups/backup ' +
      'and so on). `backup` (snapshot the database and write a manifest beside it), `verify` ' +
      '(prove a backup is whole and readable against its manifest), `drill` (restore a backup ' +
      'into a scratch copy and check schema, recent conversations and audit log against its ' +
      'manifest), `restore` (put a verified backup back as the live database, after a safety ' +
      'backup of the current one; needs `confirm`), `gate` (the pytest security gate, ' +
      '`pytest -m "security or csrf"`, and the CSP check) or `smoke` (the HTTP smoke test alone).',
    readmeDefault: '(required)',
  },
  [Inputs.Engine]: {
    default: '',
    modes: STORED,
    summary:
      '`sqlite` or `postgres`; a `postgres://` URL means postgres, anything else a SQLite file. ' +
      'verify and drill use the engine the manifest names.',
    description:
      '`sqlite` or `postgres`. Default: inferred from `connection-string` (a `postgres://` or ' +
      '`postgresql://` URL means postgres, anything else is a SQLite file path).',
    readmeDefault: 'inferred',
  },
  [Inputs.ConnectionString]: {
    default: 'omniai.db',
    modes: ['backup', 'drill', 'restore'],
    secret: true,
    summary:
      'backup: the database. SQLite: a file path. PostgreSQL: a URL (keep it in a secret; its ' +
      'password is masked).',
    description:
      'The database to back up. SQLite: a file path. PostgreSQL: a URL; put it in a secret, its ' +
      'password is masked and never logged. Not needed by `verify` and `drill`, which read only ' +
      'the backup and its manifest.',
    readmeDefault: '`omniai.db`',
  },
  [Inputs.BackupDir]: {
    default: 'backups',
    modes: STORED,
    also: Inputs.MaxDrillAge,
    summary: 'Folder of backups and their manifests',
    description: 'Folder that holds the backups and their manifests (`<backup>.manifest.json`).',
    readmeDefault: '`backups`',
  },
  [Inputs.BackupFile]: {
    default: '',
    modes: READS,
    summary: 'verify, drill: the backup to use (it must have its manifest)',
    description:
      'verify and drill: the backup to use. Default: the newest backup in `backup-dir`, by the ' +
      'creation time recorded in its manifest (never by file name).',
    readmeDefault: 'newest',
  },
  [Inputs.Prefix]: {
    default: 'omniai',
    modes: ['backup', 'restore'],
    summary: 'backup: file name prefix, `<prefix>-YYYY-MM-DD.db`',
    description:
      'backup: file name prefix. Backups are named `<prefix>-YYYY-MM-DD.db` (UTC) as in the ' +
      'runbook; a second backup on the same day gets `-2`, `-3`, ... and never replaces the ' +
      'first.',
    readmeDefault: '`omniai`',
  },
  [Inputs.ConversationsTable]: {
    default: 'conversations',
    modes: ['backup', 'restore'],
    summary: 'Table spot-checked; `none` to skip',
    description:
      'Table of conversations whose most recent rows (and every row referencing them by foreign ' +
      'key) are spot-checked.',
    readmeDefault: '`conversations`',
  },
  [Inputs.AuditTable]: {
    default: 'audit_logs',
    modes: ['backup', 'restore'],
    summary: 'Audit table, hashed row by row; `none` to skip',
    description:
      'Audit log table; every row is hashed in key order, so a deleted, added or altered row is ' +
      'caught.',
    readmeDefault: '`audit_logs`',
  },
  [Inputs.SpotCheckCount]: {
    default: '5',
    modes: ['backup', 'restore'],
    summary: 'How many recent conversations to spot-check (1-100)',
    description: 'How many of the most recent conversations to spot-check (1 to 100).',
    readmeDefault: '`5`',
  },
  [Inputs.DrillLog]: {
    default: '',
    modes: ['drill'],
    also: Inputs.MaxDrillAge,
    summary: 'JSON Lines file each drill appends to; `none` to skip',
    description:
      'drill: a JSON Lines file each drill appends one record to (date, backup, checks, RTO, ' +
      'RPO). Default: `drill-log.jsonl` in `backup-dir`. Set to `none` to skip.',
    readmeDefault: '`<backup-dir>/drill-log.jsonl`',
  },
  [Inputs.MaxBackupAge]: {
    default: '',
    modes: ['verify', 'drill'],
    summary: 'verify, drill: fail when the backup is older, e.g. `26h`, `2d` (RPO)',
    description:
      'drill (and verify): fail when the backup is older than this (RPO gate), e.g. `26h`, ' +
      '`2d`, `90m`, `3600s`. Empty: no gate, the age is still reported.',
    readmeDefault: 'none',
  },
  [Inputs.MaxRestoreSeconds]: {
    default: '',
    modes: ['drill'],
    summary: 'drill: fail when the restore takes longer (RTO)',
    description:
      'drill: fail when restoring the backup takes longer than this many seconds (RTO gate). ' +
      'Empty: no gate.',
    readmeDefault: 'none',
  },
  [Inputs.ReportFile]: {
    default: '',
    modes: ALL,
    summary: 'Where the JSON report goes (CLI: the working directory)',
    description:
      'Where to write the JSON report. Default: `omniai-backup-report.json` in `$RUNNER_TEMP` ' +
      '(in a workflow) or in the working directory (CLI).',
    readmeDefault: '`$RUNNER_TEMP/omniai-backup-report.json`',
  },
  [Inputs.ScratchDir]: {
    default: '',
    modes: [...STORED, 'gate'],
    summary: 'drill: parent of the scratch folder, which is deleted afterwards',
    description:
      'drill: parent folder for the isolated scratch copy, deleted afterwards. Default: ' +
      '`$RUNNER_TEMP` or the system temp folder.',
    readmeDefault: '`$RUNNER_TEMP`',
  },
  [Inputs.GateMarkers]: {
    default: 'security or csrf',
    modes: GATE,
    summary: 'gate: the pytest `-m` expression',
    description:
      'gate (and `gate-after-drill`): the pytest `-m` expression that selects the security ' +
      "gate's tests.",
    readmeDefault: '`security or csrf`',
  },
  [Inputs.GateCommand]: {
    default: 'pytest',
    modes: GATE,
    summary:
      'gate: how to start pytest, e.g. `python -m pytest`, `poetry run pytest`; split at ' +
      'spaces, no shell',
    description:
      'gate: how to start pytest, e.g. `python -m pytest` or `poetry run pytest`. Split into ' +
      'words at spaces (quote a word that holds spaces) and run without a shell; the action ' +
      'adds `-m`, `--junitxml` and its own options.',
    readmeDefault: '`pytest`',
  },
  [Inputs.GateWorkingDirectory]: {
    default: '.',
    modes: GATE,
    summary: 'gate: where pytest runs (its `pytest.ini` or `pyproject.toml`)',
    description: 'gate: the folder pytest runs in, where its `pytest.ini` or `pyproject.toml` is.',
    readmeDefault: '`.`',
  },
  [Inputs.GateMinTests]: {
    default: '1',
    modes: GATE,
    summary: 'gate: fail when fewer selected tests ran (skipped ones do not count)',
    description:
      'gate: fail when fewer than this many selected tests ran (skipped ones do not count), so ' +
      'a marker typo or a moved test folder cannot pass the gate on zero tests.',
    readmeDefault: '`1`',
  },
  [Inputs.GateAfterDrill]: {
    default: 'false',
    modes: ['drill'],
    summary: 'drill: run the gate against the restored copy (`DATABASE_URL`) before it is deleted',
    description:
      'drill: after every check passed, run the gate against the restored copy (`DATABASE_URL` ' +
      'points at it; SQLite also gets `OMNIAI_DB_PATH`) before it is deleted.',
    readmeDefault: '`false`',
  },
  [Inputs.RestoreConnectionString]: {
    default: '',
    modes: ['drill', 'backup'],
    secret: true,
    summary: 'postgres drill: the server to restore into (a service container), never the source',
    description:
      'postgres drill: a URL of the server to restore into, typically a `services: postgres` ' +
      'container in the drill job. The action creates a scratch database with a unique name ' +
      'there, restores into it with `pg_restore --no-owner --no-acl`, checks it, and drops it ' +
      'afterwards. It restores and checks as a role it creates for the drill (no superuser ' +
      "rights; dropped afterwards), so this URL's role needs CREATEROLE and CREATEDB (the " +
      "container's `postgres` user has both). Never the server the backup came from. Keep it in " +
      'a secret.',
    readmeDefault: 'none',
  },
  [Inputs.PgBinDir]: {
    default: '',
    modes: STORED,
    summary: 'postgres: folder with pg_dump and pg_restore, searched first',
    description:
      'postgres: a folder holding `pg_dump` and `pg_restore`, searched before ' +
      '`/usr/lib/postgresql/*/bin` and PATH. The action picks a client at least as new as the ' +
      'server (or the dump) and fails before dumping when none is.',
    readmeDefault: 'none',
  },
  [Inputs.Jobs]: {
    default: '1',
    modes: STORED,
    summary: 'postgres: parallel jobs; above 1, directory-format backups and `pg_restore --jobs`',
    description:
      "postgres: parallel jobs. Above 1, backups use pg_dump's directory format with `--jobs` " +
      '(the backup is a folder `<prefix>-YYYY-MM-DD.dumpdir`) and drills run `pg_restore ' +
      '--jobs`.',
    readmeDefault: '`1`',
  },
  [Inputs.Retention]: {
    default: 'apply',
    modes: ['backup'],
    summary: 'backup: `apply` deletes older backups no rule keeps, `dry-run` only reports, `off`',
    description:
      'backup: after the new backup is written and verified, `apply` deletes older backups in ' +
      '`backup-dir` that no rule keeps (each backup with its manifest), `dry-run` only reports ' +
      'what it would delete, `off` leaves them all. The newest verified backup is never ' +
      'deleted.',
    readmeDefault: '`apply`',
  },
  [Inputs.KeepDaily]: {
    default: '14',
    modes: ['backup'],
    summary:
      'Newest backup of each of the last N days that have one; with artifacts, daily artifacts ' +
      'are kept N days',
    description:
      "Keep the newest backup of each of the last N days that have one (restic's --keep-daily); " +
      '0 turns the rule off. With upload-artifact, daily artifacts are kept N days.',
    readmeDefault: '`14`',
  },
  [Inputs.KeepWeekly]: {
    default: '12',
    modes: ['backup'],
    summary:
      "Newest backup of each of the last N ISO weeks that have one; with artifacts, Monday's is " +
      'kept N weeks',
    description:
      "Keep the newest backup of each of the last N ISO weeks that have one (restic's " +
      "--keep-weekly); rules are ORed. With upload-artifact, Monday's artifact is weekly and " +
      'kept N weeks.',
    readmeDefault: '`12`',
  },
  [Inputs.RetentionTimeZone]: {
    default: 'UTC',
    modes: ['backup'],
    summary: 'Time zone in which retention days and weeks begin',
    description: 'IANA time zone in which days and weeks begin for the retention rules.',
    readmeDefault: '`UTC`',
  },
  [Inputs.UploadArtifact]: {
    default: 'false',
    modes: ['backup'],
    summary: 'backup: also upload the backup and manifest as an artifact',
    description:
      'backup: also upload the backup and its manifest as a GitHub artifact named ' +
      "`artifact-name`, kept for its tier's retention (needs no token permission: the upload " +
      "uses the runner's own artifact token).",
    readmeDefault: '`false`',
  },
  [Inputs.DownloadArtifact]: {
    default: 'false',
    modes: READS,
    summary:
      'verify, drill, restore: use an artifact the backup job made instead of `backup-dir` (the ' +
      'newest; restore: `artifact-id`)',
    description:
      'verify, drill, restore: instead of `backup-dir`, use an artifact named `artifact-name` ' +
      'that the backup job made: uploaded by a `schedule`, `workflow_dispatch` or `push` run of ' +
      "this repository's default branch (never a pull request, a fork or another branch; with " +
      "`backup-workflow`, only that workflow's runs). verify and drill take the newest such " +
      'artifact; restore takes only the one `artifact-id` names. Needs `actions: read`.',
    readmeDefault: '`false`',
  },
  [Inputs.ArtifactName]: {
    default: 'omniai-backup',
    modes: STORED,
    summary: 'Name of the backup artifacts',
    description: 'Name of the backup artifacts, to upload and to look up.',
    readmeDefault: '`omniai-backup`',
  },
  [Inputs.GithubToken]: {
    default: '${{ github.token }}',
    modes: ALL,
    secret: true,
    summary: 'Token for the artifact lookup (needs `actions: read`)',
    description:
      "Token for finding and downloading backup artifacts through the REST API: the job's own " +
      'token by default, which needs `permissions: actions: read`.',
    readmeDefault: '`${{ github.token }}`',
  },
  [Inputs.Confirm]: {
    default: '',
    modes: ['restore'],
    summary: "restore: must repeat the live database's name",
    description:
      "restore: the name of the live database being replaced (the SQLite file's name, e.g. " +
      '`omniai.db`, or the PostgreSQL database name). A restore destroys the current data, so ' +
      "it runs only when this repeats the target's name.",
    readmeDefault: 'none',
  },
  [Inputs.DrillEvidence]: {
    default: 'auto',
    modes: ['drill'],
    also: Inputs.MaxDrillAge,
    summary:
      'drill: record each drill on a tracking issue (`issues: write`); `auto` warns without the ' +
      'permission, `issue` fails, `none` turns it off',
    description:
      'drill: records every drill as a comment on a tracking issue the action opens on first ' +
      'use (title drill-issue-title), readable by auditors without tools, with the ' +
      'machine-readable record embedded; a failed drill reopens it. Needs `permissions: issues: ' +
      'write`. `auto`: record when the token may, otherwise one warning naming the permission, ' +
      "and the drill's own checks decide the job. `issue`: the record is required, a drill that " +
      'cannot write it fails (for auditors). `none`: no record on the issue (the drill log ' +
      'still holds it).',
    readmeDefault: '`auto`',
  },
  [Inputs.DrillIssueTitle]: {
    default: 'OmniAI restore drills',
    modes: ['drill'],
    also: Inputs.MaxDrillAge,
    summary: 'Title of the tracking issue',
    description: 'Title of the tracking issue that holds the drill records.',
    readmeDefault: '`OmniAI restore drills`',
  },
  [Inputs.DrillEvidenceAuthor]: {
    default: 'github-actions[bot]',
    modes: ['drill'],
    also: Inputs.MaxDrillAge,
    summary:
      "The bot whose comments hold drill records (`<app-slug>[bot]` for a GitHub App's token); " +
      "nobody else's count",
    description:
      "The bot that writes the drill records: `github-actions[bot]` for the job's GITHUB_TOKEN, " +
      "`<app-slug>[bot]` when github-token is a GitHub App's token. Records in comments by " +
      'anyone else (people, whatever their role, and other bots) never count; a drill whose ' +
      'comment GitHub shows under another author fails, naming it.',
    readmeDefault: '`github-actions[bot]`',
  },
  [Inputs.MaxDrillAge]: {
    default: '',
    modes: ALL,
    summary: 'Any mode: fail when the last successful drill on record is older than N days',
    description:
      'Any mode (PR checks included): fail when the last successful drill on record (the ' +
      'tracking issue in a workflow, else the drill log) is older than this many days, e.g. 100 ' +
      'for a quarterly drill. Needs `issues: read`; with `actions: read` a record also counts ' +
      'only when its workflow run succeeded on the default branch. Without `issues: read`, ' +
      'drill-evidence `auto` warns and reads the drill log when there is one (never in a pull ' +
      "request's run), else fails naming the permission; `issue` fails.",
    readmeDefault: 'none',
  },
  [Inputs.Encryption]: {
    default: 'none',
    modes: ['backup', ...READS],
    summary:
      'backup: `age`, `gpg` or `none`; verify, drill, restore: when set (or a key is given), an ' +
      'unencrypted backup is refused',
    description:
      'backup: encrypt backups at rest with `age` (public recipients in age-recipients, so the ' +
      'nightly job never holds the key that decrypts) or `gpg` (gpg-recipient or ' +
      'gpg-passphrase), or `none`. Streams: memory does not grow with the database. verify, ' +
      'drill and restore read the kind from the manifest.',
    readmeDefault: '`none`',
  },
  [Inputs.Compression]: {
    default: 'none',
    modes: ['backup'],
    summary: 'backup: `zstd`, `gzip` or `none`, before encryption',
    description:
      'backup: `zstd`, `gzip` or `none`, applied before encryption (useful for SQLite; pg_dump ' +
      '-Fc is compressed already).',
    readmeDefault: '`none`',
  },
  [Inputs.AgeRecipients]: {
    default: '',
    modes: ['backup'],
    summary: 'backup: age public keys (age1...), one per line',
    description:
      'backup with encryption: age: one or more age1... public keys, one per line (an age ' +
      'recipients file works as is).',
    readmeDefault: 'none',
  },
  [Inputs.AgeIdentity]: {
    default: '',
    modes: READS,
    secret: true,
    summary: 'verify, drill, restore: the age recovery key (a secret)',
    description:
      'verify, drill, restore: the AGE-SECRET-KEY-1... recovery key (from a secret) that ' +
      'decrypts age backups; the drill proves it still works and says so in the drill record.',
    readmeDefault: 'none',
  },
  [Inputs.AgePassphrase]: {
    default: '',
    modes: STORED,
    secret: true,
    summary: 'age with a passphrase instead of keys (a secret)',
    description:
      'age with a passphrase instead of keys (scrypt), for backup and for reading. A secret.',
    readmeDefault: 'none',
  },
  [Inputs.GpgRecipient]: {
    default: '',
    modes: ['backup'],
    summary: 'backup: gpg key id, fingerprint, e-mail or armored public key',
    description:
      'backup with encryption: gpg: a key id, fingerprint or e-mail in the keyring, or an ' +
      'armored public key.',
    readmeDefault: 'none',
  },
  [Inputs.GpgPassphrase]: {
    default: '',
    modes: STORED,
    secret: true,
    summary: "gpg symmetric passphrase, or the secret key's passphrase (a secret)",
    description:
      "gpg symmetric passphrase (backup and reading), or the secret key's passphrase (reading). " +
      'A secret.',
    readmeDefault: 'none',
  },
  [Inputs.GpgHomedir]: {
    default: '',
    modes: STORED,
    summary: 'GNUPGHOME with the keyring',
    description: "GNUPGHOME holding the keyring for gpg; gpg's default when empty.",
    readmeDefault: 'none',
  },
  [Inputs.AllowUnencryptedArtifact]: {
    default: 'false',
    modes: ['backup'],
    summary: 'backup: permit uploading an unencrypted backup as an artifact',
    description:
      'backup: permit upload-artifact with encryption none. Off by default: an artifact can be ' +
      'downloaded by anyone who can read the repository. The summary says loudly when it was ' +
      'allowed.',
    readmeDefault: '`false`',
  },
  [Inputs.CspFile]: {
    default: '',
    modes: ['gate'],
    summary:
      'gate: the page whose Content-Security-Policy meta is checked; unset: ' +
      '`frontend/index.html`, only warning when missing; `none` to skip',
    description:
      'gate: the HTML page whose Content-Security-Policy `<meta http-equiv>` is checked (the ' +
      "runbook's CSP hardening): missing fails; no default-src, unsafe-inline or unsafe-eval in " +
      "script-src, wildcard sources and object-src other than 'none' warn (fail with " +
      'csp-strict). `none` skips it. Empty: frontend/index.html when it exists (a warning says ' +
      'how to point the check at the right page when it does not); a page named here that is ' +
      'missing fails.',
    readmeDefault: 'none',
  },
  [Inputs.CspStrict]: {
    default: 'false',
    modes: ['gate'],
    summary: 'gate: CSP weaknesses fail instead of warning',
    description:
      'gate: weaknesses in the Content-Security-Policy fail the gate instead of warning.',
    readmeDefault: '`false`',
  },
  [Inputs.SmokeUrl]: {
    default: '',
    modes: SMOKE,
    summary: 'drill, restore, smoke: base URL of the running backend for the smoke test',
    description:
      "drill, restore: base URL of a running OmniAI backend for the runbook's smoke test " +
      '(health, login, list conversations), e.g. http://localhost:8000. Empty: no smoke test.',
    readmeDefault: 'none',
  },
  [Inputs.SmokeHealthPath]: {
    default: '',
    modes: SMOKE,
    summary:
      'Health endpoint, polled until 2xx, used as given; unset: `/v1/health`, then `/health`, ' +
      '`/healthz`, `/readyz`, `/v1/status`',
    description:
      'Health endpoint, polled until it answers 2xx or smoke-timeout passes, used exactly as ' +
      "given. Empty: the runbook's /v1/health, then OmniAI's /health, /healthz, /readyz and " +
      '/v1/status, each tried while the one before answers 404 (the detail names the path that ' +
      'answered).',
    readmeDefault: 'none',
  },
  [Inputs.SmokeTimeout]: {
    default: '120',
    modes: SMOKE,
    summary: 'Seconds the backend may take to become healthy',
    description: 'Seconds the backend may take to become healthy.',
    readmeDefault: '`120`',
  },
  [Inputs.SmokeLoginPath]: {
    default: '',
    modes: SMOKE,
    summary: "Login endpoint (POST JSON), e.g. OmniAI's `/api/auth/login`; its cookies are kept",
    description:
      "Login endpoint (POST, JSON body from smoke-login-body), e.g. OmniAI's /api/auth/login. " +
      'Its cookies (session, CSRF) are kept and sent back; the CSRF token goes in X-CSRF-Token ' +
      'on state-changing requests. Empty skips the login.',
    readmeDefault: 'none',
  },
  [Inputs.SmokeLoginBody]: {
    default: '',
    modes: SMOKE,
    secret: true,
    summary: 'Login JSON body (a secret, never logged)',
    description:
      'JSON body of the login request, for OmniAI {"username": ..., "password": ...}; put it in ' +
      'a secret. Never logged.',
    readmeDefault: 'none',
  },
  [Inputs.SmokeTokenField]: {
    default: '',
    modes: SMOKE,
    summary: 'Bearer token field in the login response; unset: the login must set a cookie',
    description:
      'Where the login response holds a bearer token (e.g. access_token); cookies are kept ' +
      "either way. Empty: the login must set a cookie (OmniAI's session cookie).",
    readmeDefault: 'none',
  },
  [Inputs.SmokeConversationsPath]: {
    default: '',
    modes: SMOKE,
    summary: "Conversations list endpoint (GET), e.g. OmniAI's `/v1/conversations`",
    description:
      "Conversations list endpoint (GET) checked for 2xx JSON, e.g. OmniAI's /v1/conversations " +
      'or /api/chat/conversations. Empty skips it.',
    readmeDefault: 'none',
  },
  [Inputs.SmokeRequireConversations]: {
    default: 'false',
    modes: SMOKE,
    summary: 'The list must not be empty',
    description: 'The conversations list must not be empty.',
    readmeDefault: '`false`',
  },
  [Inputs.DryRun]: {
    default: 'false',
    modes: ['restore'],
    summary: 'restore: verify the backup and print the plan, change nothing',
    description: 'restore: verify the backup and say exactly what would happen, changing nothing.',
    readmeDefault: '`false`',
  },
  [Inputs.StopCommand]: {
    default: '',
    modes: ['restore'],
    summary:
      'restore: stops the backend before the replacement (no shell), e.g. `systemctl stop ' +
      'omniai`',
    description:
      'restore: the command that stops the OmniAI backend before the database is replaced (the ' +
      "runbook's step 1), e.g. `systemctl stop omniai` or `docker compose stop backend`. Run " +
      'without a shell, its output in a log group; if it fails, nothing is changed. Empty: the ' +
      'backend must already be stopped.',
    readmeDefault: 'none',
  },
  [Inputs.StartCommand]: {
    default: '',
    modes: ['restore'],
    summary:
      'restore: starts the backend after the replacement and its checks, before the smoke test',
    description:
      'restore: the command that starts the backend again after the replacement and its checks, ' +
      'before the smoke test (which waits up to smoke-timeout for health). Also run if the ' +
      'restore fails after stop-command, so the backend comes back on the old data.',
    readmeDefault: 'none',
  },
  [Inputs.AllowActiveSessions]: {
    default: 'false',
    modes: ['restore'],
    summary: 'restore: go ahead while the live database holds unexpired user sessions',
    description:
      'restore: go ahead although the live database holds unexpired user sessions (the ' +
      'runbook\'s "ensure no active user sessions"; OmniAI\'s sessions table). Dry runs report ' +
      'the count.',
    readmeDefault: '`false`',
  },
  [Inputs.AllowUnencryptedSafetyBackup]: {
    default: 'false',
    modes: ['restore'],
    summary:
      'restore: permit an unencrypted safety backup when the restored backup is encrypted and ' +
      'no key to encrypt it to is known',
    description:
      'restore: the safety backup of the live database is encrypted like the backup being ' +
      'restored (to the recipients its manifest records, else the public key of age-identity, ' +
      'or the age or gpg passphrase); when none of those exists the restore is refused, unless ' +
      'this permits an unencrypted safety backup in backup-dir/pre-restore.',
    readmeDefault: '`false`',
  },
  [Inputs.BackupWorkflow]: {
    default: '',
    modes: READS,
    summary:
      "download-artifact: only artifacts of this workflow file's runs count, e.g. `nightly.yml`",
    description:
      'download-artifact: the file name of the workflow that makes the backups (e.g. ' +
      "`nightly.yml`, under .github/workflows); only its runs' artifacts count. Unset: any " +
      '`schedule`, `workflow_dispatch` or `push` run of the default branch.',
    readmeDefault: 'none',
  },
  [Inputs.ArtifactId]: {
    default: '',
    modes: READS,
    summary: 'download-artifact: this artifact instead of the newest; required by restore',
    description:
      "download-artifact: the artifact to use (the backup run's summary shows its id) instead " +
      'of the newest; required by restore, which never takes "the newest" on its own. It must ' +
      'still be one the backup job made.',
    readmeDefault: 'none',
  },
  [Inputs.SigningKey]: {
    default: '',
    modes: ['backup', 'restore'],
    secret: true,
    summary:
      'backup: Ed25519 private key that signs each manifest (a secret; `omniai-backup keygen` ' +
      'makes one)',
    description:
      'backup: an Ed25519 private key (PEM "BEGIN PRIVATE KEY", or 32 bytes in base64) that ' +
      'signs each manifest; the signature goes beside it as `<backup>.manifest.json.sig` and ' +
      'into the artifact. A secret: masked, never logged. Make one with `npx omniai-backup ' +
      'keygen --out key.pem` or `openssl genpkey -algorithm ed25519`.',
    readmeDefault: 'none',
  },
  [Inputs.VerifyKey]: {
    default: '',
    modes: ['backup', ...READS],
    summary:
      'verify, drill, restore: Ed25519 public key(s); an unsigned, altered or otherwise-signed ' +
      'manifest is refused',
    description:
      'verify, drill, restore: the Ed25519 public key(s) of signing-key (PEM or 32 bytes in ' +
      'base64, one per line for a rotation). A backup whose manifest is unsigned, altered after ' +
      'signing, or signed by another key is then refused before anything of it is read.',
    readmeDefault: 'none',
  },
  [Inputs.Storage]: {
    default: '',
    modes: STORED,
    summary:
      'backup, verify, drill, restore: an S3-compatible bucket, `s3://bucket/prefix`, beside ' +
      'backup-dir',
    description:
      'backup, verify, drill, restore: also keep backups off-site in an S3-compatible bucket, ' +
      '`s3://bucket/prefix` (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Ceph). backup uploads ' +
      'each backup, signature and manifest (last) after its read-back check, streamed in parts, ' +
      'and applies retention there; verify, drill and restore read the newest by manifest time, ' +
      'or backup-file (a file name in the prefix, a key, or an s3:// URL). Empty: backup-dir ' +
      'only.',
    readmeDefault: 'none',
  },
  [Inputs.S3Endpoint]: {
    default: '',
    modes: STORED,
    summary: 'S3 endpoint for R2, B2, MinIO, Ceph; empty: AWS',
    description:
      'S3 API endpoint for providers other than AWS, e.g. ' +
      '`https://<account>.r2.cloudflarestorage.com`, `https://s3.<region>.backblazeb2.com`, ' +
      '`http://minio:9000`. Empty: AWS.',
    readmeDefault: 'none',
  },
  [Inputs.S3Region]: {
    default: '',
    modes: STORED,
    summary: 'bucket region; empty: AWS_REGION, else us-east-1',
    description:
      'Bucket region. Empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1 (R2: auto).',
    readmeDefault: 'none',
  },
  [Inputs.S3PathStyle]: {
    default: 'auto',
    modes: STORED,
    summary: 'path-style addressing: auto, true, false',
    description: 'auto (path-style with s3-endpoint, virtual-hosted on AWS), true or false.',
    readmeDefault: '`auto`',
  },
  [Inputs.S3AccessKeyId]: {
    default: '',
    modes: STORED,
    summary: 'from a secret; empty: AWS_* environment (OIDC) or the SDK chain',
    description:
      'From a secret. Empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from ' +
      'the environment (aws-actions/configure-aws-credentials, also through OIDC), else the ' +
      "SDK's default chain.",
    readmeDefault: 'none',
  },
  [Inputs.S3SecretAccessKey]: {
    default: '',
    modes: STORED,
    secret: true,
    summary: 'from a secret (masked)',
    description: 'The secret key for s3-access-key-id, from a secret (masked).',
    readmeDefault: 'none',
  },
  [Inputs.S3SessionToken]: {
    default: '',
    modes: STORED,
    secret: true,
    summary: 'from a secret (masked)',
    description: 'A session token for temporary credentials, from a secret (masked).',
    readmeDefault: 'none',
  },
  [Inputs.S3ObjectLock]: {
    default: 'off',
    modes: ['backup'],
    summary: 'off, governance, compliance: lock each backup for its tier',
    description:
      'off, governance or compliance: each backup, signature and manifest is put under Object ' +
      'Lock for its tier (daily: keep-daily days; weekly: keep-weekly × 7 days). The bucket ' +
      'must have Object Lock enabled. Retention never tries to delete a locked backup before ' +
      'its date.',
    readmeDefault: '`off`',
  },
  [Inputs.RestoreCheck]: {
    default: 'false',
    modes: ['backup'],
    summary:
      'true: the new backup is restored into a scratch copy and checked as a drill checks it before ' +
      'it is accepted (PostgreSQL: into `restore-connection-string`); its manifest records it',
    description:
      "backup: `true` restores the new backup into a scratch copy and runs the drill's checks on it " +
      '(integrity, foreign keys, schema, row counts, spot-check, audit log) before it is accepted, ' +
      "so every night's backup is known to restore. SQLite restores into scratch-dir; PostgreSQL " +
      'into a scratch database on `restore-connection-string` (a service container, never the ' +
      'source). The manifest records the check; a backup that fails it is kept only as damaged, ' +
      'retention deletes nothing, and the job fails. A compressed backup, or one encrypted with ' +
      'a passphrase, is first decoded back from the stored file, which must read and decode as ' +
      'it was written; one encrypted to a public key is checked from the plaintext snapshot it ' +
      'was encrypted from (the nightly job holds only the public key).',
    readmeDefault: '`false`',
  },
}

export const DEFAULTS = Object.fromEntries(
  Object.entries(INPUTS).map(([input, spec]) => [input, spec.default]),
) as Record<Inputs, string>

/**
 * The inputs set in this step that `mode` does not read, each as a warning: a misplaced input
 * or a wrong mode must not pass silently. The runner passes every input action.yml declares,
 * with its default when the step does not set it, so an input counts as set only when it is
 * neither empty nor its default. An expression default (the token's) reaches the action
 * expanded, so whether it was set cannot be told: it is never warned about.
 */
export function ignoredInputs(get: (input: Inputs) => string, mode: Mode): string[] {
  const isSet = (input: Inputs) => {
    const value = get(input).trim()
    return value !== '' && value !== INPUTS[input].default
  }
  const warnings: string[] = []
  for (const input of Object.values(Inputs)) {
    const { modes, also, default: initial } = INPUTS[input]
    if (modes.includes(mode) || initial.startsWith('${{')) continue
    if (!isSet(input) || (also && isSet(also))) continue
    const users = `${modes.join(', ')}${also ? `, and by any mode with ${also}` : ''}`
    warnings.push(
      `${input}: set, but mode ${mode} does not use it (used by ${users}). Fix: remove ${input} from this step, or check the input's name and the mode.`,
    )
  }
  return warnings
}

/** An output: which modes set it, and its words for action.yml and the README. */
export interface OutputSpec {
  modes: readonly Mode[]
  summary: string
  description: string
}

/** Every output: the root action declares all, a sub-action those its mode sets. */
export const OUTPUTS = {
  ok: {
    modes: ALL,
    summary: '`true` when every check passed',
    description: '`true` when every check passed.',
  },
  'backup-path': {
    modes: STORED,
    summary: 'The backup written (backup) or used (verify, drill)',
    description: 'Path of the backup written (backup) or used (verify, drill).',
  },
  sha256: {
    modes: STORED,
    summary: 'SHA-256 of the backup file',
    description: 'SHA-256 of the backup file.',
  },
  'size-bytes': {
    modes: STORED,
    summary: 'Size of the backup file',
    description: 'Size of the backup file in bytes.',
  },
  report: {
    modes: ALL,
    summary: 'Path of the JSON report',
    description:
      'Path of the JSON report (mode, engine, ok, backup, checks, database, backupCount, ' +
      'durations).',
  },
  'backup-count': {
    modes: STORED,
    summary: 'Backups with a manifest in `backup-dir`',
    description:
      'Number of backups with a manifest in `backup-dir`; empty where the job stopped before it looked.',
  },
  'backup-age-seconds': {
    modes: READS,
    summary: 'verify, drill: age of the backup (RPO)',
    description: 'verify, drill: age of the backup used, in seconds (the RPO actually achieved).',
  },
  'restore-seconds': {
    modes: ['drill'],
    summary: 'drill: restore time (RTO)',
    description: 'drill: seconds the restore took (the RTO measured).',
  },
  'failed-checks': {
    modes: ALL,
    summary: 'Comma-separated names of failed checks',
    description: 'Comma-separated names of the checks that failed; empty when all passed.',
  },
  'tests-passed': {
    modes: GATE,
    summary: 'gate: security tests that passed (empty when the gate did not run)',
    description: 'gate: security gate tests that passed. Empty when the gate did not run.',
  },
  'tests-failed': {
    modes: GATE,
    summary: 'gate: security tests that failed',
    description: 'gate: security gate tests that failed.',
  },
  'tests-errors': {
    modes: GATE,
    summary: 'gate: tests that errored in setup or teardown, plus uncollectable files',
    description:
      'gate: tests that errored in setup or teardown, plus files pytest could not collect.',
  },
  'tests-skipped': {
    modes: GATE,
    summary: 'gate: selected tests skipped or xfailed',
    description: 'gate: selected tests that were skipped or xfailed (each one weakens the gate).',
  },
  'artifact-id': {
    modes: STORED,
    summary: 'backup: the artifact uploaded; verify, drill, restore: the one used',
    description:
      'backup with upload-artifact: the id of the artifact uploaded; verify, drill, restore ' +
      'with download-artifact: the id of the artifact used. Empty otherwise.',
  },
  'drill-issue-number': {
    modes: ['drill'],
    summary: 'drill: the tracking issue it was recorded on (empty when not recorded)',
    description:
      'drill: the number of the tracking issue the drill was recorded on. Empty when it was not ' +
      'recorded.',
  },
  'drill-comment-url': {
    modes: ['drill'],
    summary: 'drill: the comment that holds its record (empty when not recorded)',
    description:
      "drill: the URL of the tracking issue's comment that holds this drill's record. Empty " +
      'when it was not recorded.',
  },
} satisfies Record<string, OutputSpec>

export type Output = keyof typeof OUTPUTS
