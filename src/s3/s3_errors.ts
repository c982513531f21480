/**
 * An S3 failure as the command's error: S3's own error code and HTTP status in the
 * errmsg and in `s3Code`/`s3Status`, so a DBA can search for it, with a mongod code that
 * says what kind of failure it is:
 * - NoSuchBucket (and NoSuchKey where an object had to exist): NonExistentPath (29), as a
 *   destination whose parent directory is missing;
 * - a server that cannot be reached (refused, reset, timed out after the SDK's retries):
 *   HostUnreachable (6);
 * - anything else S3 refused (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
 *   a 5xx that outlived the retries): OperationFailed (96).
 * Only the SDK error's name, status and message are read: never its request, whose
 * headers carry the signature and the access key id.
 */
import { CommandError, ErrorCodes } from '../errors.js';

/** What an SDK or network error says of itself, read defensively: it crosses no type boundary we own. */
export interface S3ErrorFacts {
  /** S3's error code ('NoSuchBucket'), or Node's ('ECONNREFUSED'), or the error's name. */
  readonly code: string;
  /** The HTTP status, when a reply came. */
  readonly status: number | undefined;
  readonly message: string;
  /** No reply at all: the server could not be reached, or stopped answering. */
  readonly unreachable: boolean;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'TimeoutError', 'RequestTimeout']);
const MISSING = new Set(['NoSuchBucket', 'NoSuchKey', 'NotFound', 'NoSuchUpload']);

export function s3ErrorFacts(err: unknown): S3ErrorFacts {
  if (!(err instanceof Error)) return { code: 'Error', status: undefined, message: String(err), unreachable: false };
  const fields = err as Error & { code?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const s3Code = typeof fields.Code === 'string' ? fields.Code : undefined;
  const nodeCode = typeof fields.code === 'string' ? fields.code : undefined;
  const code = s3Code ?? nodeCode ?? err.name;
  const status = typeof fields.$metadata?.httpStatusCode === 'number' ? fields.$metadata.httpStatusCode : undefined;
  return { code, status, message: err.message, unreachable: status === undefined && (UNREACHABLE.has(code) || UNREACHABLE.has(err.name)) };
}

/** Whether the error is S3 saying that the bucket (or the object) is not there. */
export function isS3Missing(err: unknown): boolean {
  const facts = s3ErrorFacts(err);
  return MISSING.has(facts.code) || facts.status === 404;
}

/**
 * `err` from `action` (e.g. 'upload', 'list') on `url` as a CommandError. A CommandError
 * (ours, e.g. an abort's Interrupted) passes through unchanged.
 */
export function s3CommandError(err: unknown, action: string, url: string): CommandError {
  if (err instanceof CommandError) return err;
  const facts = s3ErrorFacts(err);
  const status = facts.status === undefined ? '' : ` (HTTP ${facts.status})`;
  // The SDK's message for an error without a body is the code itself, or "UnknownError".
  const said = facts.message !== '' && facts.message !== facts.code && facts.message !== 'UnknownError' ? `: ${facts.message}` : '';
  let code: number = ErrorCodes.OperationFailed;
  let hint = '';
  if (facts.code === 'NoSuchBucket' || (facts.status === 404 && action === 'check')) {
    code = ErrorCodes.NonExistentPath;
    hint = ': the bucket does not exist (create it first: this tool never creates buckets)';
  } else if (MISSING.has(facts.code) && facts.code !== 'NoSuchUpload') {
    // NoSuchUpload is our own upload gone under us (aborted by another's sweep): a failure, not a missing path.
    code = ErrorCodes.NonExistentPath;
  } else if (facts.unreachable) {
    code = ErrorCodes.HostUnreachable;
    hint = ': the S3 server could not be reached (AWS_ENDPOINT_URL_S3, network)';
  } else if (facts.code === 'InvalidAccessKeyId' || facts.code === 'SignatureDoesNotMatch') {
    hint = ': the credentials were refused (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or the AWS_PROFILE in use)';
  } else if (facts.code === 'AccessDenied') {
    hint = ': the credentials in use may not do this';
  } else if (facts.code === 'CredentialsProviderError') {
    hint = ': no credentials were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a shared credentials file)';
  }
  return new CommandError(code, `S3 ${action} of ${url} failed: ${facts.code}${status}${hint}${said}`, {
    extra: { s3Code: facts.code, ...(facts.status === undefined ? {} : { s3Status: facts.status }) },
    cause: err,
  });
}
