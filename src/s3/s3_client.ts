/**
 * The S3 client, configured the way the AWS tools users already have are: credentials
 * from the SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the shared
 * credentials file with AWS_PROFILE, or an instance role), AWS_REGION, and
 * AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) for an S3-compatible server such as Ceph's
 * radosgw or MinIO, which is then addressed path-style (`http://host/bucket/key`): such
 * servers rarely have the wildcard DNS virtual-hosted buckets need.
 *
 * Two settings differ from the SDK's defaults, both for S3-compatible servers:
 * - checksums only WHEN_REQUIRED: the SDK's default adds CRC32 trailers to streamed
 *   bodies (aws-chunked encoding), which radosgw 16 answers with 411 MissingContentLength.
 *   Our integrity check per part is Content-MD5, which every S3 server verifies.
 * - timeouts: the SDK waits forever on a server that accepts a connection and then says
 *   nothing; a backup must fail instead, and its retry (the SDK's standard mode:
 *   exponential backoff with jitter on 5xx, throttling and reset connections) try again.
 *
 * The settings keep no credential: the chain resolves them inside the SDK, which
 * never logs them, and nothing of ours prints a client or its config.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { quietSdkNodeWarning } from './sdk_node_warning.js';

export interface S3Settings {
  /** AWS_REGION or AWS_DEFAULT_REGION; us-east-1 when neither is set (radosgw's default zonegroup answers to any). */
  readonly region: string;
  /** AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; undefined for AWS itself. */
  readonly endpoint: string | undefined;
  /** Path-style addressing: whenever an endpoint is set. */
  readonly forcePathStyle: boolean;
  /** AWS_MAX_ATTEMPTS: attempts per request, the first included. Default 5. */
  readonly maxAttempts: number;
  /** Milliseconds to wait for a connection, and for a socket to move a byte either way (idle) once it is open. */
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_MAX_ATTEMPTS = 5;
const CONNECTION_TIMEOUT_MS = 10_000;
/** Long enough for a part of 64 MiB on a slow link; a silent server still fails. */
const REQUEST_TIMEOUT_MS = 300_000;

/** The settings the environment gives (process.env by default). Throws a TypeError naming a bad value. */
export function s3SettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = nonEmpty(env['AWS_ENDPOINT_URL_S3']) ?? nonEmpty(env['AWS_ENDPOINT_URL']);
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new TypeError(`AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL is not a URL: ${endpoint}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`the S3 endpoint must be http:// or https://, got ${url.protocol}`);
    // A user:password in the endpoint would end up in every log line that names it.
    if (url.username !== '' || url.password !== '') throw new TypeError('the S3 endpoint URL must not carry credentials: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  }
  const attempts = nonEmpty(env['AWS_MAX_ATTEMPTS']);
  const maxAttempts = attempts === undefined ? DEFAULT_MAX_ATTEMPTS : Number(attempts);
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw new TypeError(`AWS_MAX_ATTEMPTS must be a positive integer, got ${attempts}`);
  return Object.freeze({
    region: nonEmpty(env['AWS_REGION']) ?? nonEmpty(env['AWS_DEFAULT_REGION']) ?? 'us-east-1',
    endpoint,
    forcePathStyle: endpoint !== undefined,
    maxAttempts,
    connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
}

/** A client for `settings`. Each needs its own: its sockets are its own (one per worker thread, say). */
export function createS3Client(settings: S3Settings, options: { maxSockets?: number } = {}): S3Client {
  // Every command that makes a client (verify, restore, the proxy's backupVerify), not only list and purge.
  quietSdkNodeWarning();
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    forcePathStyle: settings.forcePathStyle,
    maxAttempts: settings.maxAttempts,
    retryMode: 'standard',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK sends `Expect: 100-continue` with bodies of 2 MiB and more, and
    // @smithy/node-http-handler then sends each on a new agent without keep-alive: a TCP
    // connection per part. A part's Content-MD5 is our integrity check, not the 100.
    expectContinueHeader: false,
    requestHandler: {
      connectionTimeout: settings.connectionTimeoutMs,
      // An idle socket, not `requestTimeout`: since @smithy/node-http-handler 4.x that one
      // only logs a warning (unless throwOnRequestTimeout), and a radosgw whose OSDs are
      // full stops reading a part's body and holds the request forever. Idle, rather than
      // a bound on the whole request, so a large part on a slow link is not cut short.
      socketTimeout: settings.requestTimeoutMs,
      ...(options.maxSockets === undefined ? {} : { httpAgent: { keepAlive: true, maxSockets: options.maxSockets }, httpsAgent: { keepAlive: true, maxSockets: options.maxSockets } }),
    },
  });
}

/** Where the settings point, for logs and messages: never a credential. */
export function describeS3Endpoint(settings: S3Settings): string {
  return settings.endpoint ?? `AWS S3 (${settings.region})`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
