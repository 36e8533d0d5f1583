/**
 * The S3 store's settings: its inputs (one table, S3Inputs), parsed and validated once, with the
 * environment read by the caller and secrets masked before anything can print them. No SDK here:
 * config parsing imports this without loading it.
 */
import { Inputs } from '../options/inputs.js'
import { UserError } from '../util/errors.js'

/** The inputs that configure the store, from the input table; errors name these. */
export const S3Inputs = {
  Storage: Inputs.Storage,
  Endpoint: Inputs.S3Endpoint,
  Region: Inputs.S3Region,
  PathStyle: Inputs.S3PathStyle,
  AccessKeyId: Inputs.S3AccessKeyId,
  SecretAccessKey: Inputs.S3SecretAccessKey,
  SessionToken: Inputs.S3SessionToken,
  ObjectLock: Inputs.S3ObjectLock,
} as const

/** The raw input values, as the runner gives them ('' when unset). */
export type S3InputValues = Record<keyof typeof S3Inputs, string>

export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE'

export interface S3Settings {
  bucket: string
  /** '' for the bucket's root, else ending in '/'. */
  prefix: string
  /** A custom endpoint (R2, B2, MinIO, Ceph), or null for AWS. */
  endpoint: string | null
  region: string
  forcePathStyle: boolean
  /** null: the SDK's default chain (instance roles, web identity files, profiles). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null
  /** Where the credentials came from, for messages: the inputs to fix. */
  credentialsFrom: string
  objectLock: ObjectLockMode | null
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

export function isS3Location(storage: string): boolean {
  return /^s3:\/\//i.test(storage.trim())
}

/**
 * The store's settings from its inputs and the environment (read once, by the caller). Secrets
 * are masked through `mask` before anything can print them. Credentials: the inputs when given
 * (both key and secret), else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (what
 * aws-actions/configure-aws-credentials sets, from OIDC or keys), else the SDK's default chain.
 */
export function parseS3Settings(
  inputs: S3InputValues,
  env: NodeJS.ProcessEnv,
  mask: (secret: string) => void = () => {},
): S3Settings {
  const storage = inputs.Storage.trim()
  const match = /^s3:\/\/([^/]*)\/?(.*)$/i.exec(storage)
  if (!match) {
    throw new UserError(
      `${S3Inputs.Storage}: "${storage}" is not an S3 location. Fix: write it as s3://bucket or s3://bucket/prefix.`,
    )
  }
  const bucket = match[1]!
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new UserError(
      `${S3Inputs.Storage}: "${bucket}" is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens). Fix: write storage as s3://bucket/prefix with the bucket's name.`,
    )
  }
  const trimmed = match[2]!.replace(/^\/+|\/+$/g, '')
  if (trimmed && trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new UserError(
      `${S3Inputs.Storage}: the prefix "${match[2]}" has an empty, "." or ".." part. Fix: e.g. storage: s3://${bucket}/omniai/nightly.`,
    )
  }
  const prefix = trimmed ? `${trimmed}/` : ''

  const endpointText = inputs.Endpoint.trim()
  let endpoint: string | null = null
  if (endpointText) {
    let url: URL
    try {
      url = new URL(endpointText)
    } catch {
      url = new URL('invalid:')
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UserError(
        `${S3Inputs.Endpoint}: "${endpointText}" is not an http(s) URL. Fix: e.g. https://<account>.r2.cloudflarestorage.com, https://s3.us-west-004.backblazeb2.com, or leave it empty for AWS.`,
      )
    }
    endpoint = endpointText.replace(/\/+$/, '')
  }

  const region = inputs.Region.trim() || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'
  if (!/^[a-z0-9-]{2,32}$/.test(region)) {
    throw new UserError(
      `${S3Inputs.Region}: "${region}" is not a region name. Fix: e.g. us-east-1, eu-central-1, or auto for R2.`,
    )
  }

  const pathStyle = inputs.PathStyle.trim().toLowerCase() || 'auto'
  if (!['auto', 'true', 'false'].includes(pathStyle)) {
    throw new UserError(
      `${S3Inputs.PathStyle}: "${inputs.PathStyle}" is not auto, true or false. Fix: leave it at auto (path-style with s3-endpoint, virtual-hosted on AWS).`,
    )
  }
  // Custom endpoints (MinIO, Ceph, an IP address) rarely have a DNS name per bucket.
  const forcePathStyle = pathStyle === 'auto' ? endpoint !== null : pathStyle === 'true'

  const lockText = inputs.ObjectLock.trim().toUpperCase() || 'OFF'
  if (!['OFF', 'GOVERNANCE', 'COMPLIANCE'].includes(lockText)) {
    throw new UserError(
      `${S3Inputs.ObjectLock}: "${inputs.ObjectLock}" is not off, governance or compliance. Fix: choose one; the bucket must have Object Lock enabled for the other two.`,
    )
  }
  const objectLock = lockText === 'OFF' ? null : (lockText as ObjectLockMode)

  const key = inputs.AccessKeyId.trim()
  const secret = inputs.SecretAccessKey.trim()
  const token = inputs.SessionToken.trim()
  for (const s of [secret, token, env.AWS_SECRET_ACCESS_KEY ?? '', env.AWS_SESSION_TOKEN ?? ''])
    if (s) mask(s)
  let credentials: S3Settings['credentials'] = null
  let credentialsFrom = 'the SDK default chain (no s3-access-key-id and no AWS_ACCESS_KEY_ID)'
  if (key || secret || token) {
    if (!key || !secret) {
      throw new UserError(
        `${key ? S3Inputs.SecretAccessKey : S3Inputs.AccessKeyId}: empty while ${key ? S3Inputs.AccessKeyId : S3Inputs.SecretAccessKey} is set. Fix: set both from secrets, or neither to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (aws-actions/configure-aws-credentials).`,
      )
    }
    credentials = {
      accessKeyId: key,
      secretAccessKey: secret,
      ...(token ? { sessionToken: token } : {}),
    }
    credentialsFrom = `${S3Inputs.AccessKeyId} / ${S3Inputs.SecretAccessKey}`
  } else if (env.AWS_ACCESS_KEY_ID || env.AWS_SECRET_ACCESS_KEY) {
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
      throw new UserError(
        `${S3Inputs.AccessKeyId}: not set, and only one of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY is in the environment. Fix: set both (aws-actions/configure-aws-credentials does), or set ${S3Inputs.AccessKeyId} and ${S3Inputs.SecretAccessKey} from secrets.`,
      )
    }
    credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    }
    credentialsFrom = 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment'
  }
  return {
    bucket,
    prefix,
    endpoint,
    region,
    forcePathStyle,
    credentials,
    credentialsFrom,
    objectLock,
  }
}
