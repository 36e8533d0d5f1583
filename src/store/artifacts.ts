/**
 * Backups kept as GitHub artifacts: the nightly job uploads the backup and its manifest with a
 * retention period from its tier, so GitHub enforces the retention policy on stored artifacts;
 * the drill, usually another workflow, finds the newest unexpired artifact of that name in the
 * repository through the REST API and downloads it. The drill's checksum check then proves the
 * download against the manifest before anything is restored.
 */
import { DefaultArtifactClient } from '@actions/artifact'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { UserError } from '../errors.js'
import { githubRequest, type GitHubResponse, type Refusal } from '../github-api.js'
import type { Log } from '../log.js'
import type { BackupEntry } from './local.js'

export interface ArtifactSettings {
  name: string
  token: string
  owner: string
  repo: string
  apiUrl: string
}

/** What the REST API says of an artifact (the fields used here). */
export interface RestArtifact {
  id: number
  name: string
  size_in_bytes: number
  expired: boolean
  created_at: string
  expires_at: string | null
  workflow_run?: { id?: number } | null
}

/** The settings from the runner's environment; a missing piece names the input that supplies it. */
export function artifactSettings(
  name: string,
  token: string,
  env: NodeJS.ProcessEnv = process.env,
): ArtifactSettings {
  if (!token) {
    throw new UserError(
      'github-token: empty. Fix: leave github-token at its default (${{ github.token }}) or pass a token with actions: read (and write, to upload).',
    )
  }
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/')
  if (!owner || !repo) {
    throw new UserError(
      'upload-artifact / download-artifact: GITHUB_REPOSITORY is not set, so this is not a GitHub Actions run. Fix: use backup-dir for local backups outside Actions.',
    )
  }
  return {
    name,
    token,
    owner,
    repo,
    apiUrl: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/$/, ''),
  }
}

/** The files of a backup (a file, or a pg_dump directory's files) and its manifest. */
async function backupFiles(entry: BackupEntry): Promise<string[]> {
  const stat = await fs.stat(entry.path)
  const files = stat.isDirectory()
    ? (await fs.readdir(entry.path)).sort().map((f) => path.join(entry.path, f))
    : [entry.path]
  return [...files, entry.manifestPath]
}

export async function uploadBackup(
  entry: BackupEntry,
  retentionDays: number,
  settings: ArtifactSettings,
  log: Log,
): Promise<{ id: number; size: number }> {
  const client = new DefaultArtifactClient()
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
    `github-token: cannot list the artifacts of ${settings.owner}/${settings.repo} (${status} ${message}). Fix: give the job "permissions: actions: read".`

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

/**
 * Downloads the newest unexpired artifact of `settings.name` into `dest`, returning it. The
 * caller reads the backup from `dest` as a local backup folder.
 */
export async function downloadNewestBackup(
  settings: ArtifactSettings,
  dest: string,
  log: Log,
): Promise<RestArtifact> {
  const candidates = (await listArtifacts(settings, log))
    .filter((a) => !a.expired)
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at))
  const newest = candidates[0]
  if (!newest) {
    throw new UserError(
      `artifact-name: no unexpired artifact named "${settings.name}" in ${settings.owner}/${settings.repo}. Fix: run the backup workflow with upload-artifact: true first, or set artifact-name to the name it uploads.`,
    )
  }
  const runId = newest.workflow_run?.id
  if (!runId) throw new Error(`artifact ${newest.id} has no workflow run`)
  log.info(
    `downloading artifact "${newest.name}" (id ${newest.id}, ${newest.size_in_bytes} bytes, created ${newest.created_at}, run ${runId})`,
  )
  await fs.mkdir(dest, { recursive: true })
  await new DefaultArtifactClient().downloadArtifact(newest.id, {
    path: dest,
    findBy: {
      token: settings.token,
      workflowRunId: runId,
      repositoryOwner: settings.owner,
      repositoryName: settings.repo,
    },
  })
  return newest
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
