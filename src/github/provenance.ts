/**
 * Which backup artifacts count: only those the team's backup job made. Any workflow run in the
 * repository can upload an artifact named `artifact-name`, including a pull request from a fork
 * (whose workflow file is the pull request's own) or a branch someone pushed. An artifact counts
 * only when its workflow run
 *
 * - ran in this repository (its head repository is this one, not a fork),
 * - on the default branch,
 * - for an event a pull request cannot cause: `schedule`, `workflow_dispatch` or `push`,
 * - and, with `backup-workflow`, from that workflow file.
 *
 * The artifact's own `workflow_run` (head repository id, head branch) rules out most others
 * without a request; the rest is read from the run (`GET /repos/{owner}/{repo}/actions/runs/{id}`:
 * `event`, `head_branch`, `path`, `head_repository.full_name`).
 */
import * as fs from 'node:fs/promises'
import { UserError } from '../util/errors.js'
import { githubRequest, type GitHubRepo } from './api.js'
import type { Log } from '../util/log.js'

/** Events only people with write access can cause; a pull request causes none of them. */
export const TRUSTED_EVENTS = ['schedule', 'workflow_dispatch', 'push'] as const

/** What the REST API says of the artifact's run, in the artifact itself (the fields used here). */
export interface ArtifactRun {
  id?: number
  repository_id?: number
  head_repository_id?: number
  head_branch?: string | null
  head_sha?: string
}

/** What `GET /repos/{owner}/{repo}/actions/runs/{run_id}` says (the fields used here). */
export interface WorkflowRun {
  id: number
  event: string
  head_branch: string | null
  path: string
  head_repository?: { id?: number; full_name?: string } | null
  repository?: { id?: number; full_name?: string } | null
}

/** The repository the backups must come from, and what counts there. */
export interface Provenance {
  fullName: string
  repositoryId: number
  defaultBranch: string
  /** The backup workflow's file name (`nightly.yml`), or null for any workflow. */
  workflow: string | null
}

/**
 * This repository's id and default branch: from the runner (GITHUB_REPOSITORY_ID, the event
 * payload's `repository`) when it says, otherwise from `GET /repos/{owner}/{repo}`, which any
 * token of the repository may call. A scheduled run's payload has no `repository`.
 */
export async function provenanceFor(
  repo: GitHubRepo,
  workflow: string | null,
  env: { repositoryId?: string; eventPath?: string },
  log: Log,
): Promise<Provenance> {
  let id = Number(env.repositoryId) || 0
  let defaultBranch = ''
  if (env.eventPath) {
    try {
      const payload = JSON.parse(await fs.readFile(env.eventPath, 'utf8')) as {
        repository?: { id?: number; default_branch?: string }
      }
      id ||= Number(payload.repository?.id) || 0
      defaultBranch = payload.repository?.default_branch ?? ''
    } catch {
      // No payload to read: ask the API.
    }
  }
  if (!id || !defaultBranch) {
    const { body } = await githubRequest(
      `${repo.apiUrl}/repos/${repo.owner}/${repo.repo}`,
      repo,
      log,
      (status, message) =>
        `github-token: cannot read the repository ${repo.owner}/${repo.repo} (${status} ${message}). Fix: leave github-token at its default, or pass a token of this repository.`,
    )
    const r = body as { id?: number; default_branch?: string }
    id ||= Number(r.id) || 0
    defaultBranch ||= r.default_branch ?? ''
  }
  if (!id || !defaultBranch) {
    throw new Error(`GitHub did not say the id and default branch of ${repo.owner}/${repo.repo}`)
  }
  return { fullName: `${repo.owner}/${repo.repo}`, repositoryId: id, defaultBranch, workflow }
}

const same = (a: string | undefined | null, b: string) =>
  (a ?? '').toLowerCase() === b.toLowerCase()

/**
 * Why the artifact's own record rules it out, or null when only its run can tell. Cheap: no
 * request, so a flood of pull-request artifacts costs nothing.
 */
export function artifactRunRefusal(run: ArtifactRun | null | undefined, p: Provenance) {
  if (!run?.id) return 'it belongs to no workflow run'
  if (run.head_repository_id !== undefined && run.head_repository_id !== p.repositoryId)
    return `its run ${run.id} ran another repository's code (head repository id ${run.head_repository_id}, a fork's pull request), not ${p.fullName}'s`
  if (run.head_branch != null && run.head_branch !== p.defaultBranch)
    return `its run ${run.id} ran branch "${run.head_branch}", not the default branch "${p.defaultBranch}"`
  return null
}

/**
 * The workflow file a run's `path` names. GitHub documents `.github/workflows/build.yml@main`
 * and, for workflows of another repository, `octocat/octo-repo/.github/workflows/ci.yml@main`.
 */
export function workflowOf(runPath: string): { repo: string | null; file: string } | null {
  const m = /^(?:([^/@]+\/[^/@]+)\/)?\.github\/workflows\/([^/@]+)(?:@.*)?$/.exec(runPath)
  return m ? { repo: m[1] ?? null, file: m[2]! } : null
}

/** Why the run rules its artifacts out, or null when it is one the backup job could be. */
export function workflowRunRefusal(run: WorkflowRun, p: Provenance): string | null {
  const head = run.head_repository?.full_name
  if (!same(head, p.fullName))
    return `its run ${run.id} ran ${head ?? 'an unknown repository'}'s code (a fork's pull request), not ${p.fullName}'s`
  if (!(TRUSTED_EVENTS as readonly string[]).includes(run.event))
    return `its run ${run.id} was a ${run.event} run; only ${TRUSTED_EVENTS.join(', ')} runs of the default branch count, which a pull request cannot start`
  if (run.head_branch !== p.defaultBranch)
    return `its run ${run.id} ran branch "${run.head_branch ?? '(none)'}", not the default branch "${p.defaultBranch}"`
  if (p.workflow) {
    const w = workflowOf(run.path)
    if (!w || w.file !== p.workflow || (w.repo !== null && !same(w.repo, p.fullName)))
      return `its run ${run.id} was made by ${run.path || 'an unknown workflow'}, not by backup-workflow ${p.workflow}`
  }
  return null
}

/**
 * The run behind an artifact, or null when GitHub no longer has it (a deleted run). A token
 * without `actions: read` is an error naming the permission.
 */
export async function readWorkflowRun(
  repo: GitHubRepo,
  runId: number,
  log: Log,
): Promise<WorkflowRun | null> {
  let refused = 0
  try {
    const { body } = await githubRequest(
      `${repo.apiUrl}/repos/${repo.owner}/${repo.repo}/actions/runs/${runId}?exclude_pull_requests=true`,
      repo,
      log,
      (status, message) => {
        refused = status
        return `github-token: cannot read workflow run ${runId} of ${repo.owner}/${repo.repo} (${status} ${message}), which is how a backup artifact is traced to the backup job. Fix: give the job "permissions: actions: read".`
      },
    )
    return body as WorkflowRun
  } catch (err) {
    if (err instanceof UserError && (refused === 404 || refused === 410)) return null
    throw err
  }
}
