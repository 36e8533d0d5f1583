/**
 * PostgreSQL sessions for the engine and the inspected databases: connecting (TLS as libpq does
 * it, errors in one line naming the input), the server's facts, and the settings every query
 * shares.
 */
import pg from 'pg'
import { UserError } from '../../util/errors.js'
import { type PgTarget } from './tools.js'
import { openPgClient } from './ssl.js'

/** Every value as the server's own text: exact (no float or timestamp rounding in JavaScript). */
export const RAW_TYPES = { getTypeParser: () => (value: string) => value }

/** Rows fetched per round trip when streaming the audit log. */
export const FETCH_ROWS = 10_000

export const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`

/**
 * One line for a failed connection, naming the input, host and database; never the URL, whose
 * user info and query may hold a password.
 */
export function connectionError(err: unknown, target: PgTarget, input: string): UserError {
  // TLS problems (openPgClient) already say which setting and how to fix it.
  if (err instanceof UserError) return err
  const e = err as { code?: string; message?: string }
  const where = `${target.host}:${target.port}`
  // The driver's own words, with any secret it might repeat taken out.
  const said = target.secrets.reduce(
    (text, secret) => text.split(secret).join('***'),
    e.message ?? String(err),
  )
  switch (e.code) {
    case 'ECONNREFUSED':
      return new UserError(
        `${input}: cannot connect to ${where} (connection refused). Fix: check host and port, and that the server is running (in a workflow: a services: postgres container with its port mapped).`,
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(
        `${input}: host ${target.host} not found. Fix: check the host name in the URL.`,
      )
    case '28P01':
      return new UserError(
        `${input}: password authentication failed at ${where}. Fix: check the user and password in the secret.`,
      )
    case '3D000':
      return new UserError(
        `${input}: database "${target.database}" does not exist at ${where}. Fix: check the database name at the end of the URL.`,
      )
    case '28000':
      return new UserError(
        `${input}: ${said} (at ${where}). Fix: check the user name and the server's pg_hba.conf.`,
      )
    default:
      return new UserError(
        `${input}: cannot connect to database "${target.database}" at ${where}: ${said}`,
      )
  }
}

export async function connect(target: PgTarget, input: string): Promise<pg.Client> {
  try {
    // TLS as libpq makes it for pg_dump from the same URL: one connects where the other does.
    return await openPgClient(target, input, {
      types: RAW_TYPES,
      connectionTimeoutMillis: 15_000,
      application_name: 'omniai-backups',
      // Values are compared as the server prints them: pin every setting that changes how a
      // value prints, so a restore server in another time zone or with other defaults prints
      // the same.
      options:
        '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex',
    })
  } catch (err) {
    throw connectionError(err, target, input)
  }
}

export async function serverFacts(client: pg.Client) {
  const { rows } = await client.query<{ v: string; n: string }>(
    "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
  )
  let systemIdentifier: string | undefined
  try {
    const r = await client.query<{ id: string }>(
      'SELECT system_identifier AS id FROM pg_control_system()',
    )
    systemIdentifier = r.rows[0]?.id
  } catch {
    // Not allowed for this role on some managed servers; host and port are compared instead.
  }
  return {
    version: rows[0]!.v,
    versionNum: Number(rows[0]!.n),
    major: Math.floor(Number(rows[0]!.n) / 10000),
    systemIdentifier,
  }
}

/** How inputs, manifests and reports name a table: bare in public, schema-qualified elsewhere. */
export const displayName = (schema: string, name: string) =>
  schema === 'public' ? name : `${schema}.${name}`

export const majorOf = (version: string | undefined) =>
  Number(/(\d+)/.exec(version ?? '')?.[1] ?? 0)
