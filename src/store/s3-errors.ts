/**
 * SDK errors as one-line UserErrors naming the input to fix. S3-compatible servers differ in
 * what they put in an error (Ceph gives codes without messages; HeadObject errors have no body),
 * so the code and HTTP status decide, and the server's message is added when there is one.
 */
import { UserError, describeError } from '../util/errors.js'
import { S3Inputs, type S3Settings } from './s3-settings.js'

/** The endpoint as a person knows it: the URL, or AWS and the region. */
export function endpointName(settings: S3Settings): string {
  return settings.endpoint ?? `AWS S3 in ${settings.region}`
}

/**
 * One line for an SDK error, naming the input to fix: storage (bucket), s3-endpoint, s3-region,
 * the credentials' inputs, s3-object-lock. `what` is the operation ("upload", "list"), `key` the
 * object (null: the bucket), `after` a clause added before "Fix:". A UserError passes through.
 */
export function s3Error(
  settings: S3Settings,
  err: unknown,
  what: string,
  key: string | null,
  after = '',
): UserError {
  if (err instanceof UserError) return err
  const e = err as {
    name?: string
    Code?: string
    code?: string
    message?: string
    $metadata?: { httpStatusCode?: number }
    cause?: { code?: string }
  }
  const name = e.Code ?? e.name ?? 'Error'
  const status = e.$metadata?.httpStatusCode
  const where = key === null ? `bucket "${settings.bucket}"` : `s3://${settings.bucket}/${key}`
  const detail = [
    name,
    status,
    e.message && e.message !== 'UnknownError' && e.message !== name ? e.message : '',
  ]
    .filter(Boolean)
    .join(' ')
  const network = e.code ?? e.cause?.code ?? ''
  let message: string
  if (
    /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|EPIPE)$/.test(
      network,
    ) ||
    name === 'TimeoutError' ||
    name === 'RequestTimeout'
  ) {
    message = `${S3Inputs.Endpoint}: cannot ${what} ${where}: ${endpointName(settings)} does not answer (${network || name})${after}. Fix: check s3-endpoint (scheme, host and port) and that the server is up and reachable from the runner.`
  } else if (name === 'NoSuchBucket' || (name === 'NotFound' && key === null)) {
    message = `${S3Inputs.Storage}: bucket "${settings.bucket}" does not exist at ${endpointName(settings)}${after}. Fix: create it, or correct the bucket in storage (and s3-endpoint / s3-region).`
  } else if (
    /^(InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|TokenRefreshRequired|CredentialsProviderError)$/.test(
      name,
    )
  ) {
    message = `${credentialsInput(settings, detail)}: ${endpointName(settings)} refused the credentials from ${settings.credentialsFrom} (${detail}) while trying to ${what} ${where}${after}. Fix: set ${S3Inputs.AccessKeyId} and ${S3Inputs.SecretAccessKey} from secrets, or run aws-actions/configure-aws-credentials first; check the key is active and its session not expired.`
  } else if (/^(QuotaExceeded|EntityTooLarge)$/.test(name)) {
    message = `${S3Inputs.Storage}: bucket "${settings.bucket}" refused to ${what} ${where}: it is over its quota (${detail})${after}. Fix: make room (lower keep-daily / keep-weekly, or delete old backups) or raise the bucket's quota.`
  } else if (name === 'AccessDenied' || status === 403) {
    message = `${credentialsInput(settings, detail)}: the credentials from ${settings.credentialsFrom} may not ${what} ${where} (${detail})${after}. Fix: grant them s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on the bucket and prefix${settings.objectLock ? ', and s3:PutObjectRetention / s3:GetObjectRetention' : ''}.`
  } else if (
    /^(PermanentRedirect|AuthorizationHeaderMalformed|IllegalLocationConstraintException)$/.test(
      name,
    ) ||
    status === 301
  ) {
    message = `${S3Inputs.Region}: bucket "${settings.bucket}" is not in ${settings.region} (${detail})${after}. Fix: set s3-region to the bucket's region.`
  } else if (name === 'InvalidRequest' && settings.objectLock) {
    message = `${S3Inputs.ObjectLock}: ${endpointName(settings)} refused to ${what} ${where} with Object Lock (${detail})${after}. Fix: use a bucket with Object Lock enabled, or set s3-object-lock: off.`
  } else {
    message = `${S3Inputs.Storage}: cannot ${what} ${where} (${detail || describeError(err)})${after}. Fix: run again; if it keeps failing, check the server's status${status && status >= 500 ? ` (it answered ${status})` : ''}.`
  }
  const mapped = new UserError(message)
  mapped.cause = err
  return mapped
}

/** The input a credentials problem is fixed in: the secret given, or the key id to give. */
function credentialsInput(settings: S3Settings, detail: string): string {
  return settings.credentialsFrom.startsWith(S3Inputs.AccessKeyId) &&
    !/InvalidAccessKeyId/.test(detail)
    ? S3Inputs.SecretAccessKey
    : S3Inputs.AccessKeyId
}
