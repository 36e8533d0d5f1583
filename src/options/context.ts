/**
 * What comes from the runner's environment, read once (by the action or the CLI, when the
 * options are parsed) into one object the modes receive. Nothing deeper reads `process.env`
 * for these, and `repository` is the one place that decides "are we in a workflow run".
 */
import * as os from 'node:os'

export interface RunnerContext {
  /** This workflow run's repository (GITHUB_REPOSITORY); null outside a workflow run. */
  repository: { owner: string; repo: string } | null
  /** The REST API (GITHUB_API_URL), without a trailing slash: api.github.com or a GHES /api/v3. */
  apiUrl: string
  /** The web server (GITHUB_SERVER_URL), without a trailing slash. */
  serverUrl: string
  /** This run's id (GITHUB_RUN_ID), when it is a positive whole number. */
  runId: number | null
  /** This run's page, for the drill log and the drill's record; null outside a workflow run. */
  runUrl: string | null
  /** What started the run (GITHUB_EVENT_NAME): `schedule`, `pull_request`, ...; '' outside one. */
  eventName: string
  /** The checkout (GITHUB_WORKSPACE), else the current folder. */
  workspace: string
  /** The job's temporary folder (RUNNER_TEMP), else the system's. */
  temp: string
  /** RUNNER_TEMP was set: reports and scratch folders go there by default. */
  runnerTemp: string | null
  /** The repository's id (GITHUB_REPOSITORY_ID), which a renamed repository keeps. */
  repositoryId: string | null
  /** The event's payload file (GITHUB_EVENT_PATH). */
  eventPath: string | null
  /** GITHUB_TOKEN from the environment: the CLI's token when github-token is not given. */
  envToken: string
  /** The Actions services (artifacts, cache) can be reached: a runtime token and a results URL. */
  actionsServices: boolean
}

export function readRunnerContext(env: NodeJS.ProcessEnv = process.env): RunnerContext {
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/')
  const repository = owner && repo ? { owner, repo } : null
  const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/$/, '')
  const id = Number(env.GITHUB_RUN_ID)
  const runId = Number.isSafeInteger(id) && id > 0 ? id : null
  return {
    repository,
    apiUrl: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/$/, ''),
    serverUrl,
    runId,
    runUrl:
      env.GITHUB_SERVER_URL && repository && env.GITHUB_RUN_ID
        ? `${env.GITHUB_SERVER_URL}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}`
        : null,
    eventName: env.GITHUB_EVENT_NAME ?? '',
    workspace: env.GITHUB_WORKSPACE || process.cwd(),
    temp: env.RUNNER_TEMP || os.tmpdir(),
    runnerTemp: env.RUNNER_TEMP || null,
    repositoryId: env.GITHUB_REPOSITORY_ID || null,
    eventPath: env.GITHUB_EVENT_PATH || null,
    envToken: env.GITHUB_TOKEN || '',
    actionsServices: Boolean(env.ACTIONS_RESULTS_URL && env.ACTIONS_RUNTIME_TOKEN),
  }
}
