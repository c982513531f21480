/**
 * Uploads a backup's files to S3: the copier (copier.ts) for an `s3://` destination, on
 * the same copy threads (copy_pool.ts) through the same throttle, with the same progress
 * calls and the same result, so the engine and backupStatus do not tell them apart.
 *
 * Every byte is read, hashed (XXH3-64 for the manifest, MD5 for each request's
 * Content-MD5) and sent on a copy thread, never on the proxy's forwarding event loop:
 * each thread has its own S3 client (upload_job.ts) and its own part buffers.
 *
 * - Memory: each thread holds at most `partsInFlight` buffers of one part each (8 MiB,
 *   more for a file of over 78 GiB: part_size.ts), reused across parts and files: at most
 *   concurrency × partsInFlight × part size, whatever the database's size.
 * - Retries: the SDK's standard mode (s3_client.ts) retries transient failures (5xx,
 *   throttling, reset connections, timeouts) with backoff, resending the part's buffer;
 *   a permanent refusal (403, NoSuchBucket) fails at once, as a CommandError naming S3's
 *   code (s3_errors.ts).
 * - Failure and abort: the first failure, or the signal, stops every thread: each aborts
 *   its requests in flight, then its multipart upload, before uploadFiles rejects. An
 *   upload that could not be aborted (the server is gone) is listed on the error
 *   (`uploadsLeftOf`), for the caller to abort later: its parts bill until then.
 * - Objects stored before a failure stay: the caller owns the prefix, and a prefix
 *   without a manifest is an incomplete backup by definition.
 */
import { poolSettings, runPool, type Limiter, type PoolSettingsInput } from '../backup/copy_pool.js';
import type { CopyResult, SourceFile } from '../backup/copy_types.js';
import type { UploadLeft } from '../backup/copy_messages.js';
import { noProgress, type CopyProgress } from '../backup/progress.js';
import type { S3Settings } from './s3_client.js';
import { objectKey, s3Url, type S3Location } from './s3_location.js';
import { checkMinPartSize, DEFAULT_MIN_PART_SIZE, MAX_SINGLE_REQUEST_SIZE } from './part_size.js';

export type { UploadLeft } from '../backup/copy_messages.js';

/**
 * Part buffers per copy thread: one part is read while the other is sent, the least that
 * keeps reading and sending overlapped. Measured against radosgw on this project's 2-core
 * machine (2 copy threads, 2 × 256 MiB, 8 MiB parts, radosgw and its OSD on the same
 * cores, 3 runs each, medians): 1 part 141 MiB/s, 2: 123, 3: 124, 4: 143, within the
 * noise of a shared machine where the client, radosgw and the OSD share the CPU; peak
 * RSS 144, 164, 177, 197 MiB (idle 67): each more costs threads × part size. Against a
 * remote S3, where a part's round trip is not free, one buffer would leave the thread
 * idle while each part is acknowledged; more parallelism comes from the threads.
 */
export const DEFAULT_PARTS_IN_FLIGHT = 2;

export interface UploadOptions extends PoolSettingsInput {
  /** How to reach S3; each copy thread builds its own client from it. */
  settings: S3Settings;
  /** The process-wide throttle: reads are throttled, chunk by chunk, as in a copy. */
  limiter: Limiter;
  /** Told the same things copyFiles tells it. */
  progress?: CopyProgress;
  /** Aborting stops the upload: uploadFiles rejects with its reason once every multipart upload begun is aborted. */
  signal?: AbortSignal;
  /** Part buffers (and so parts in flight) per copy thread. Default DEFAULT_PARTS_IN_FLIGHT. */
  partsInFlight?: number;
  /** The smallest part (5 MiB to 5 GiB). Default 8 MiB. */
  minPartSize?: number;
  /**
   * Objects larger than this are copied on the server in UploadPartCopy parts instead of
   * one CopyObject. Default 5 GiB, S3's limit; lower for a server with a lower one.
   */
  maxCopyObjectSize?: number;
}

const UPLOADS_LEFT = Symbol('uploadsLeft');

/** The multipart uploads a failed uploadFiles began and could not abort; [] for any other error. */
export function uploadsLeftOf(err: unknown): UploadLeft[] {
  if (typeof err !== 'object' || err === null) return [];
  const left = (err as { [UPLOADS_LEFT]?: unknown })[UPLOADS_LEFT];
  return Array.isArray(left) ? (left as UploadLeft[]) : [];
}

/** Uploads `files` to `<destination>/<relativePath>`; same result shape as copyFiles. */
export async function uploadFiles(files: readonly SourceFile[], destination: S3Location, options: UploadOptions): Promise<CopyResult> {
  const pool = poolSettings(options);
  const partsInFlight = options.partsInFlight ?? DEFAULT_PARTS_IN_FLIGHT;
  if (!Number.isSafeInteger(partsInFlight) || partsInFlight < 1) throw new RangeError(`partsInFlight must be a positive integer, got ${partsInFlight}`);
  const minPartSize = checkMinPartSize(options.minPartSize ?? DEFAULT_MIN_PART_SIZE);
  const maxCopyObjectSize = options.maxCopyObjectSize ?? MAX_SINGLE_REQUEST_SIZE;
  if (!Number.isSafeInteger(maxCopyObjectSize) || maxCopyObjectSize < 0 || maxCopyObjectSize > MAX_SINGLE_REQUEST_SIZE) {
    throw new RangeError(`maxCopyObjectSize must be 0 to 5 GiB, got ${maxCopyObjectSize}`);
  }
  const keys = objectKeys(files, destination);
  options.signal?.throwIfAborted();
  const left: UploadLeft[] = [];
  let outcomes;
  try {
    outcomes = await runPool({
      files,
      job: (index) => ({ type: 'upload', bucket: destination.bucket, key: keys[index] as string }),
      limiter: options.limiter,
      ...pool,
      fileMode: 0o600,
      progress: options.progress ?? noProgress,
      signal: options.signal,
      upload: { settings: options.settings, partsInFlight, minPartSize, maxCopyObjectSize },
      onUploadLeft: (upload) => left.push(upload),
    });
  } catch (err) {
    if (left.length > 0 && typeof err === 'object' && err !== null) {
      // Not enumerable: it stays out of logs and of a reply built from the error's fields.
      Object.defineProperty(err, UPLOADS_LEFT, { value: left, enumerable: false, configurable: true });
    }
    throw err;
  }
  const result: CopyResult = { copied: [], skipped: [] };
  for (const outcome of outcomes) {
    if ('copied' in outcome) result.copied.push(outcome.copied);
    else if ('skipped' in outcome) result.skipped.push(outcome.skipped);
  }
  return result;
}

/**
 * Each file's key. Refuses, before any request, relative paths that would make keys
 * other than the backup's layout on disk: absolute, empty or '.'/'..' segments,
 * backslashes, and duplicates.
 */
function objectKeys(files: readonly SourceFile[], destination: S3Location): string[] {
  const seen = new Set<string>();
  return files.map((file) => {
    const { relativePath, size } = file;
    const refuse = (why: string): Error => new Error(`refusing to upload ${file.path} to '${relativePath}' in ${s3Url(destination)}: ${why}`);
    if (!Number.isSafeInteger(size) || size < 0) throw refuse(`invalid size ${size}`);
    if (relativePath.includes('\\')) throw refuse('the path must use / only');
    for (const segment of relativePath.split('/')) {
      if (segment === '' || segment === '.' || segment === '..') throw refuse('the path must be relative, without empty, . or .. segments');
    }
    if (seen.has(relativePath)) throw refuse('the path is listed twice');
    seen.add(relativePath);
    return objectKey(destination, relativePath);
  });
}
