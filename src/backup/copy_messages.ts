/**
 * What the copier (main thread) and its copy workers (worker threads) say to each
 * other. Plain data only: it crosses threads by structured clone.
 *
 * Main to worker: a file to copy, to hash only (verify) or to upload to S3 (src/s3/), the
 * answer to a throttle request, "stop" (the run failed or was aborted: requests in flight
 * are aborted at once, not after they end), or "exit". Worker to main: per file, started, then one `chunk` per chunk
 * written (or hashed), then finished, hashed, skipped or failed; and `take` when the
 * throttle is on; `uploadLeft` when an S3 multipart upload could not be aborted. One file at a time
 * per worker, and messages from one worker arrive in order, so the main thread's
 * progress counters see each chunk after the grant that allowed it.
 *
 * Two words of shared memory need no message at all, because a worker copying without
 * a throttle never waits for one: STOP (set once, by the main thread, when the copy
 * must stop) and UNLIMITED (set while the throttle would grant everything at once).
 */
import type { CopiedFile, HashedFile, SkippedFile, SourceFile } from './copy_types.js';
import type { S3Settings } from '../s3/s3_client.js';

/** Indexes into the Int32Array over `CopyWorkerData.flags`. */
export const Flag = { STOP: 0, UNLIMITED: 1 } as const;
export const FLAG_COUNT = 2;

/** How copy threads write: around the page cache where the filesystem allows it, or through it. */
export type CopyWrites = 'direct' | 'buffered';
/** The I/O scheduling class of the copy threads' reads and writes (ioprio_set(2)). */
export type CopyIoClass = 'idle' | 'best-effort';

export interface CopyWorkerData {
  chunkSize: number;
  fileMode: number;
  /** The worker lowers its own thread to this nice value. */
  niceness: number;
  writes: CopyWrites;
  ioClass: CopyIoClass;
  /** A SharedArrayBuffer of FLAG_COUNT int32s, indexed by Flag. */
  flags: SharedArrayBuffer;
  /** Set for a run with upload jobs: the worker then loads the S3 SDK (src/s3/upload_job.ts). */
  upload?: UploadWorkerSettings;
}

/** What a copy thread needs to upload to S3: never a credential (the SDK's chain finds them in the thread's env). */
export interface UploadWorkerSettings {
  settings: S3Settings;
  /** Parts of one file sent at once, each from its own buffer. */
  partsInFlight: number;
  /** The smallest part size (part_size.ts). */
  minPartSize: number;
  /** Above this, a server-side copy is made of UploadPartCopy parts instead of one CopyObject. */
  maxCopyObjectSize: number;
}

/** A multipart upload begun on S3 and neither completed nor aborted. */
export interface UploadLeft {
  bucket: string;
  key: string;
  uploadId: string;
}

export type ToWorker =
  | { type: 'copy'; index: number; file: SourceFile; target: string }
  | { type: 'hash'; index: number; file: SourceFile }
  | { type: 'upload'; index: number; file: SourceFile; bucket: string; key: string }
  | { type: 'grant' }
  | { type: 'deny' }
  | { type: 'stop' }
  | { type: 'exit' };

/** An Error flattened for structured clone, keeping what io_error.ts reads: code, errno, syscall, path. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  dest?: string;
  /** SourceTooShortError's fields. */
  expectedSize?: number;
  actualSize?: number;
  /** A CommandError's (an S3 failure, s3_errors.ts): rebuilt as one. */
  command?: { code: number; codeName: string; extra: Record<string, unknown> };
}

export type FromWorker =
  | { type: 'started'; index: number }
  | { type: 'chunk'; index: number; bytes: number }
  /** Bytes of the source hashed to compare it with an incremental backup's base (file_reuse.ts). */
  | { type: 'compared'; index: number; bytes: number }
  | { type: 'take'; bytes: number }
  | { type: 'finished'; index: number; copied: CopiedFile }
  | { type: 'hashed'; index: number; hashed: HashedFile }
  | { type: 'skipped'; index: number; skipped: SkippedFile; bytesReported: number }
  | { type: 'stopped'; index: number }
  | { type: 'failed'; index: number; error: WireError }
  | { type: 'uploadLeft'; index: number; upload: UploadLeft };
