/**
 * Backups kept as GitHub artifacts: the nightly job uploads the backup and its manifest with a
 * retention period from its tier, so GitHub enforces the retention policy on stored artifacts;
 * the drill, usually another workflow, finds the newest unexpired artifact of that name that the
 * backup job made (provenance.ts: this repository, the default branch, no pull request) through
 * the REST API, downloads the zip as it is, and extracts it itself (unzip.ts), refusing any entry
 * that would land outside the folder. The drill's checksum check then proves the download
 * against the manifest before anything is restored.
 */
import { Inputs } from '../options/inputs.js'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { RunnerContext } from '../options/context.js'
import { UserError } from '../util/errors.js'
import { githubRequest, type GitHubResponse, type Refusal } from '../github/api.js'
import type { Log } from '../util/log.js'
import { signaturePathFor } from '../manifest/signature.js'
import type { BackupEntry } from './local.js'
import {
  artifactRunRefusal,
  provenanceFor,
  readWorkflowRun,
  workflowRunRefusal,
  type ArtifactRun,
  type Provenance,
  type WorkflowRun,
} from '../github/provenance.js'
import { extractZip, UnsafeZipError } from './unzip.js'
import { makeDirs } from '../util/fs.js'

/** Loaded only when an artifact is uploaded or downloaded: it is a large share of the bundle. */
async function artifactClient() {
  const { DefaultArtifactClient } = await import('@actions/artifact')
  return new DefaultArtifactClient()
}

export interface ArtifactSettings {
  name: string
  token: string
  owner: string
  repo: string
  apiUrl: string
  /** GITHUB_REPOSITORY_ID and GITHUB_EVENT_PATH, when the runner sets them. */
  repositoryId?: string
  eventPath?: string
}

/** What the REST API says of an artifact (the fields used here). */
export interface RestArtifact {
  id: number
  name: string
  size_in_bytes: number
  expired: boolean
  created_at: string
  expires_at: string | null
  /** `sha256:<hex>` of the zip, for artifacts uploaded since GitHub records it. */
  digest?: string | null
  workflow_run?: ArtifactRun | null
}

/**
 * Whether GITHUB_SERVER_URL is GitHub Enterprise Server: any host but github.com, GHE.com's
 * `*.ghe.com` and `*.localhost`, the rule @actions/artifact applies (`isGhes`) before it refuses.
 */
export function isEnterpriseServer(serverUrl: string): boolean {
  let host: string
  try {
    host = new URL(serverUrl).hostname.toLowerCase()
  } catch {
    return false
  }
  return host !== 'github.com' && !host.endsWith('.ghe.com') && !host.endsWith('.localhost')
}

/** The settings from the runner's environment; a missing piece names the input that supplies it. */
export function artifactSettings(
  name: string,
  token: string,
  runner: RunnerContext,
): ArtifactSettings {
  if (!token) {
    throw new UserError(
      `${Inputs.GithubToken}: empty. Fix: leave github-token at its default ($\{{ github.token }}) or pass a token with actions: read (and write, to upload).`,
    )
  }
  if (!runner.repository) {
    throw new UserError(
      `${Inputs.UploadArtifact} / download-artifact: GITHUB_REPOSITORY is not set, so this is not a GitHub Actions run. Fix: use backup-dir for local backups outside Actions.`,
    )
  }
  const server = runner.serverUrl
  if (isEnterpriseServer(server)) {
    throw new UserError(
      `${Inputs.UploadArtifact} / download-artifact: ${server} is GitHub Enterprise Server, where GitHub's artifact service that this action uses (the one of upload-artifact@v4 and download-artifact@v4) is not supported. Fix: keep the backups in backup-dir (a folder on a self-hosted runner) or in an S3-compatible bucket (storage: s3://bucket/prefix), and remove upload-artifact / download-artifact.`,
    )
  }
  return {
    name,
    token,
    ...runner.repository,
    apiUrl: runner.apiUrl,
    ...(runner.repositoryId ? { repositoryId: runner.repositoryId } : {}),
    ...(runner.eventPath ? { eventPath: runner.eventPath } : {}),
  }
}

/** The files of a backup (a file, or a pg_dump directory's files), its manifest and signature. */
async function backupFiles(entry: BackupEntry): Promise<string[]> {
  const stat = await fs.stat(entry.path)
  const files = stat.isDirectory()
    ? (await fs.readdir(entry.path)).sort().map((f) => path.join(entry.path, f))
    : [entry.path]
  const signature = signaturePathFor(entry.manifestPath)
  const signed = await fs.access(signature).then(
    () => true,
    () => false,
  )
  return [...files, entry.manifestPath, ...(signed ? [signature] : [])]
}

export async function uploadBackup(
  entry: BackupEntry,
  retentionDays: number,
  settings: ArtifactSettings,
  log: Log,
): Promise<{ id: number; size: number }> {
  const client = await artifactClient()
  const files = await backupFiles(entry)
  log.info(
    `uploading ${files.length} file(s) as artifact "${settings.name}", kept ${retentionDays} days`,
  )
  const result = await client.uploadArtifact(settings.name, files, path.dirname(entry.path), {
    retentionDays,
  })
  if (result.id === undefined) throw new Error(`artifact upload of ${entry.path} returned no id`)
  return { id: result.id, size: result.size ?? 0 }
}

const PER_PAGE = 100
/** A repository rarely holds more; past this the list is cut rather than exhaust the rate limit. */
const MAX_PAGES = 20

const cannotList =
  (settings: ArtifactSettings): Refusal =>
  (status, message) =>
    `${Inputs.GithubToken}: cannot list the artifacts of ${settings.owner}/${settings.repo} (${status} ${message}). Fix: give the job "permissions: actions: read".`

/** Every artifact of `settings.name` in the repository, expired ones included. */
export async function listArtifacts(settings: ArtifactSettings, log: Log): Promise<RestArtifact[]> {
  const all: RestArtifact[] = []
  let url: string | null =
    `${settings.apiUrl}/repos/${settings.owner}/${settings.repo}/actions/artifacts?name=${encodeURIComponent(settings.name)}&per_page=${PER_PAGE}`
  for (let page = 0; url && page < MAX_PAGES; page++) {
    const { body, next }: GitHubResponse = await githubRequest(
      url,
      settings,
      log,
      cannotList(settings),
    )
    const artifacts = (body as { artifacts?: RestArtifact[] }).artifacts ?? []
    all.push(...artifacts.filter((a) => a.name === settings.name))
    url = artifacts.length === 0 ? null : next
  }
  return all
}

/** One artifact, by id. */
async function getArtifact(
  settings: ArtifactSettings,
  id: number,
  log: Log,
): Promise<RestArtifact> {
  const { body } = await githubRequest(
    `${settings.apiUrl}/repos/${settings.owner}/${settings.repo}/actions/artifacts/${id}`,
    settings,
    log,
    (status, message) =>
      status === 404
        ? `${Inputs.ArtifactId}: no artifact ${id} in ${settings.owner}/${settings.repo} (404 ${message}). Fix: copy the id from the backup run's summary ("Artifact ${settings.name} (id N)"); a deleted artifact cannot be used.`
        : cannotList(settings)(status, message),
  )
  return body as RestArtifact
}

/** An artifact the provenance rules passed over, and why. */
export interface SkippedArtifact {
  id: number
  createdAt: string
  reason: string
}

export interface DownloadedBackup {
  artifact: RestArtifact
  /** The folder the artifact was extracted into: the backup, its manifest and signature. */
  dir: string
  /** Newer artifacts of the name that the backup job did not make. */
  skipped: SkippedArtifact[]
}

/** At most this many workflow runs are read while looking for one the backup job made. */
const MAX_RUN_LOOKUPS = 50

const describeArtifact = (a: RestArtifact) =>
  `artifact "${a.name}" id ${a.id} (created ${a.created_at})`

/** Why an artifact does not count, or null when the backup job made it. */
async function refusal(
  a: RestArtifact,
  provenance: Provenance,
  runs: Map<number, WorkflowRun | null>,
  settings: ArtifactSettings,
  log: Log,
): Promise<string | null> {
  const cheap = artifactRunRefusal(a.workflow_run, provenance)
  if (cheap) return cheap
  const runId = a.workflow_run!.id!
  if (!runs.has(runId)) runs.set(runId, await readWorkflowRun(settings, runId, log))
  const run = runs.get(runId)
  return run
    ? workflowRunRefusal(run, provenance)
    : `its run ${runId} no longer exists, so nothing shows who made it`
}

/**
 * Downloads a backup artifact the backup job made, and extracts it into a new folder under
 * `dest`: the artifact `artifactId` names, or else the newest unexpired one of `settings.name`
 * whose workflow run passes the provenance rules (each one passed over is logged, with why).
 */
export async function downloadBackup(
  settings: ArtifactSettings,
  dest: string,
  log: Log,
  options: { artifactId: number | null; workflow: string | null },
): Promise<DownloadedBackup> {
  const provenance = await provenanceFor(settings, options.workflow, settings, log)
  const where = `${settings.owner}/${settings.repo}`
  const rule = `a ${['schedule', 'workflow_dispatch', 'push'].join(', ')} run of ${where}'s default branch "${provenance.defaultBranch}"${provenance.workflow ? ` from backup-workflow ${provenance.workflow}` : ''}`
  const runs = new Map<number, WorkflowRun | null>()
  const skipped: SkippedArtifact[] = []
  let chosen: RestArtifact | null = null
  if (options.artifactId !== null) {
    const a = await getArtifact(settings, options.artifactId, log)
    if (a.name !== settings.name) {
      throw new UserError(
        `${Inputs.ArtifactId}: artifact ${a.id} is named "${a.name}", not "${settings.name}" (artifact-name). Fix: give the id of a backup artifact, or set artifact-name to "${a.name}".`,
      )
    }
    if (a.expired) {
      throw new UserError(
        `${Inputs.ArtifactId}: ${describeArtifact(a)} has expired. Fix: choose an unexpired backup artifact.`,
      )
    }
    const why = await refusal(a, provenance, runs, settings, log)
    if (why) {
      throw new UserError(
        `${Inputs.ArtifactId}: ${describeArtifact(a)} was not made by the backup job: ${why}. Only ${rule} counts. Fix: choose the id of an artifact the backup workflow uploaded (its run's summary names it).`,
      )
    }
    chosen = a
  } else {
    const candidates = (await listArtifacts(settings, log))
      .filter((a) => !a.expired)
      .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id)
    if (!candidates.length) {
      throw new UserError(
        `${Inputs.ArtifactName}: no unexpired artifact named "${settings.name}" in ${where}. Fix: run the backup workflow with upload-artifact: true first, or set artifact-name to the name it uploads.`,
      )
    }
    for (const a of candidates) {
      // A flood of artifacts from pull requests costs no requests (artifactRunRefusal); this
      // bounds the rest.
      if (runs.size >= MAX_RUN_LOOKUPS) break
      const why = await refusal(a, provenance, runs, settings, log)
      if (!why) {
        chosen = a
        break
      }
      skipped.push({ id: a.id, createdAt: a.created_at, reason: why })
      log.warning(`skipped ${describeArtifact(a)}: ${why}`)
    }
    if (!chosen) {
      const reasons = skipped
        .slice(0, 5)
        .map((s) => `id ${s.id}: ${s.reason}`)
        .join('; ')
      throw new UserError(
        `${Inputs.ArtifactName}: none of the ${candidates.length} unexpired artifacts named "${settings.name}" in ${where} was made by the backup job (${rule}): ${reasons}${skipped.length > 5 ? `; and ${skipped.length - 5} more` : ''}. Fix: run the backup workflow on "${provenance.defaultBranch}" (workflow_dispatch or its schedule)${provenance.workflow ? ', and check that backup-workflow names its file' : ''}.`,
      )
    }
  }
  const runId = chosen.workflow_run!.id!
  const input = options.artifactId !== null ? Inputs.ArtifactId : Inputs.ArtifactName
  log.info(
    `downloading ${describeArtifact(chosen)}, ${chosen.size_in_bytes} bytes, from run ${runId} (${rule})`,
  )
  const zipDir = path.join(dest, 'zip')
  const dir = path.join(dest, 'backup')
  await makeDirs(zipDir)
  // The zip is kept as it is and extracted here, so that every path in it is checked first.
  const client = await artifactClient()
  const { digestMismatch } = await client.downloadArtifact(chosen.id, {
    path: zipDir,
    skipDecompress: true,
    ...(chosen.digest ? { expectedHash: chosen.digest } : {}),
    findBy: {
      token: settings.token,
      workflowRunId: runId,
      repositoryOwner: settings.owner,
      repositoryName: settings.repo,
    },
  })
  if (digestMismatch) {
    throw new UserError(
      `${input}: ${describeArtifact(chosen)} downloaded with another sha256 than GitHub recorded for it (${chosen.digest}), so it was not used. Fix: run again; if it happens again, delete the artifact and run the backup workflow.`,
    )
  }
  const [zip] = await fs.readdir(zipDir)
  if (!zip) throw new Error(`the download of artifact ${chosen.id} left no file`)
  try {
    await extractZip(path.join(zipDir, zip), dir)
  } catch (err) {
    if (!(err instanceof UnsafeZipError)) throw err
    throw new UserError(
      `${input}: ${describeArtifact(chosen)} from run ${runId} was refused: ${err.message}, and nothing of it is used. Fix: delete that artifact, and find out what run ${runId} ran.`,
    )
  }
  await fs.rm(zipDir, { recursive: true, force: true })
  return { artifact: chosen, dir, skipped }
}

/**
 * The artifact's retention tier: the backup of the week's first day (Monday, UTC) is weekly and
 * kept keep-weekly weeks; the others are daily and kept keep-daily days. GitHub fixes an
 * artifact's retention when it is uploaded, so the tier is decided then.
 */
export function artifactTier(
  createdAt: Date,
  keepDaily: number,
  keepWeekly: number,
): { tier: 'daily' | 'weekly'; retentionDays: number } {
  const weekly = createdAt.getUTCDay() === 1 && keepWeekly > 0
  return weekly
    ? { tier: 'weekly', retentionDays: Math.max(1, keepWeekly * 7) }
    : { tier: 'daily', retentionDays: Math.max(1, keepDaily) }
}
