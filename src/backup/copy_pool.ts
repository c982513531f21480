/**
 * The copy threads of one run: N workers (copy_worker.ts, a worker thread each), fed one
 * file at a time, largest first, their throttle requests answered from this thread's one
 * Limiter, their chunks counted, and all of them stopped at the first failure. The
 * copier (copier.ts) runs it to copy files; verify (hash_files.ts) runs it to hash files
 * where they are; src/s3/upload_files.ts runs it to upload files to S3. One machinery, so both read a file the same way: same buffer size,
 * same throttle, same thread priority, same checksum.
 *
 * - Files go out largest first, one at a time per worker, so one huge collection file
 *   started last cannot leave every other worker idle at the end.
 * - Only reads are throttled. A worker asks the limiter (a message) before each chunk,
 *   unless the limiter says it is unlimited (a word of shared memory, so an unthrottled
 *   run sends no requests). A rate change reaches a worker before its next chunk.
 * - The first error or abort stops every worker (those waiting on the limiter at once,
 *   the others after their current chunk; an upload's requests in flight at once, and its
 *   multipart upload is aborted), and every worker has closed its handles and
 *   exited before runPool settles. With `keepGoing` (verify, which reports every file), a
 *   file's own error is that file's outcome instead, and the others go on.
 * - A copied file whose source listed an `expectedChecksum` (restore) and hashed
 *   otherwise fails the run with a ChecksumMismatchError, as any copy error does.
 */
import { Worker } from 'node:worker_threads';
import { SourceTooShortError } from './file_copy.js';
import { CommandError } from '../errors.js';
import { ChecksumMismatchError } from './checksum.js';
import type { CopyProgress } from './progress.js';
import {
  FLAG_COUNT,
  Flag,
  type CopyIoClass,
  type CopyWorkerData,
  type CopyWrites,
  type FromWorker,
  type ToWorker,
  type UploadLeft,
  type UploadWorkerSettings,
  type WireError,
} from './copy_messages.js';
import type { CopiedFile, HashedFile, SkippedFile, SourceFile } from './copy_types.js';

/**
 * What the pool needs from a throttle (the engine passes its TokenBucket). Declared here,
 * by its one user, so copies and hashes can be tested with any limiter.
 */
export interface Limiter {
  /**
   * Resolves when `bytes` may be read; requests are served in the order made. Rejects
   * with the signal's reason as soon as it aborts, and the request then costs nothing.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  /**
   * Optional: calls `listener` now and at every rate change with whether take() would
   * grant anything at once. While it says so, workers do not ask. Returns an unsubscribe.
   */
  watchUnlimited?(listener: (unlimited: boolean) => void): () => void;
}

/**
 * Two copy threads: bench/impact.ts and bench/backup.ts on 2 cores, 1.2 GB: four copied
 * ~25% faster (966 against 781 MB/s) but cost a proxied writer twice as much of its
 * rate, and 24 MiB more RSS, past the proxy's 128 MiB budget (docs/performance.md).
 */
export const DEFAULT_CONCURRENCY = 2;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/**
 * When the CPU is contended, the proxy's forwarding and mongod come first, and the copy
 * still gets about a tenth of it (CFS weights 110 against 1024), so it never stops.
 */
export const DEFAULT_THREAD_NICENESS = 10;

/** A run's thread settings as callers may give them; undefined takes the default. */
export interface PoolSettingsInput {
  concurrency?: number;
  chunkSize?: number;
  threadNiceness?: number;
}

/** The settings checked, with the defaults filled in; throws a RangeError naming a bad one. */
export function poolSettings(input: PoolSettingsInput): { concurrency: number; chunkSize: number; niceness: number } {
  const concurrency = positiveInteger('concurrency', input.concurrency ?? DEFAULT_CONCURRENCY);
  const chunkSize = positiveInteger('chunkSize', input.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const niceness = input.threadNiceness ?? DEFAULT_THREAD_NICENESS;
  if (!Number.isInteger(niceness) || niceness < 0 || niceness > 19) throw new RangeError(`threadNiceness must be an integer 0-19, got ${niceness}`);
  return { concurrency, chunkSize, niceness };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** What a worker does with one file: copy it to `target`, only hash it, or upload it to S3 (as `key` in `bucket`). */
export type PoolJob = { type: 'copy'; target: string } | { type: 'hash' } | { type: 'upload'; bucket: string; key: string };

/** One file's end: copied, hashed, skipped (an optional file), or failed (only with keepGoing). */
export type PoolOutcome = { copied: CopiedFile } | { hashed: HashedFile } | { skipped: SkippedFile } | { failed: Error };

export interface PoolOptions {
  files: readonly SourceFile[];
  /** The job for files[index]. */
  job: (index: number) => PoolJob;
  limiter: Limiter;
  concurrency: number;
  chunkSize: number;
  /** The workers' nice value (copier.ts CopyOptions.threadNiceness). */
  niceness: number;
  /** Mode of the files a copy creates. */
  fileMode: number;
  /** How copies are written, and the workers' I/O class (copier.ts CopyOptions). Defaults 'direct' and 'best-effort'. */
  writes?: CopyWrites;
  ioClass?: CopyIoClass;
  progress: CopyProgress;
  signal?: AbortSignal;
  /** A file's own error is its outcome, and the run goes on. Default false: it stops the run. */
  keepGoing?: boolean;
  /** Required for upload jobs: how the workers reach S3. */
  upload?: UploadWorkerSettings;
  /** Told of each multipart upload a worker began and could not abort (the server was gone). */
  onUploadLeft?: (upload: UploadLeft) => void;
}

/**
 * Workers inherit the process's node flags (profiling, the semi-space size of the
 * CLI's shebang) when given none: Node accepts V8 flags only that way, and refuses
 * them listed in `execArgv` (ERR_WORKER_INVALID_EXEC_ARGV). But with `--input-type`
 * Node refuses any worker that is a file (ERR_INPUT_TYPE_NOT_ALLOWED): a proxy
 * embedded by `node --input-type=module -e` gives its workers no flags at all.
 */
function workerExecArgv(): string[] | undefined {
  return process.execArgv.some((flag) => flag === '--input-type' || flag.startsWith('--input-type=')) ? [] : undefined;
}

const WORKER_URL = new URL('./copy_worker.js', import.meta.url);

/**
 * Runs every file's job on min(concurrency, files) workers. Resolves with one outcome per
 * file, in the order of `files`; rejects with the first failure, or the signal's reason.
 */
export async function runPool(options: PoolOptions): Promise<PoolOutcome[]> {
  const { files, signal } = options;
  signal?.throwIfAborted();
  const flags = new Int32Array(new SharedArrayBuffer(FLAG_COUNT * Int32Array.BYTES_PER_ELEMENT));
  // One controller stops every worker, whether the caller aborted or a worker failed:
  // it releases their throttle requests, and STOP ends their loops.
  const stop = new AbortController();
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown): void => {
    if (failure !== undefined) return;
    failure = { error };
    Atomics.store(flags, Flag.STOP, 1);
    stop.abort(error);
  };
  const onAbort = (): void => fail(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const unwatch = options.limiter.watchUnlimited?.((unlimited) => Atomics.store(flags, Flag.UNLIMITED, unlimited ? 1 : 0));

  const results: PoolOutcome[] = new Array<PoolOutcome>(files.length);
  // Files an incremental backup may take from its base first: they cost a link or a clone
  // (and a hash of the source when compared), not a copy, so the progress shows the reuse
  // early instead of after the 100 MB journal files. Then largest first, so the last file
  // out is a small one.
  const rank = (file: SourceFile): number => (file.reuse !== undefined ? 0 : 1);
  const queue = files
    .map((_, i) => i)
    .sort((a, b) => {
      const [fa, fb] = [files[a] as SourceFile, files[b] as SourceFile];
      return rank(fa) - rank(fb) || fb.size - fa.size || a - b;
    });
  let next = 0;
  const pool: Pool = {
    options,
    stop: stop.signal,
    data: {
      chunkSize: options.chunkSize,
      fileMode: options.fileMode,
      niceness: options.niceness,
      writes: options.writes ?? 'direct',
      ioClass: options.ioClass ?? 'best-effort',
      flags: flags.buffer as SharedArrayBuffer,
      ...(options.upload === undefined ? {} : { upload: options.upload }),
    },
    nextFile: () => (failure === undefined ? queue[next++] : undefined),
    settle: (index, outcome) => (results[index] = outcome),
    fail,
  };
  try {
    // Workers never reject: they report through fail(), so this waits for every one
    // of them to close its handles and exit before runPool settles.
    await Promise.all(Array.from({ length: Math.min(options.concurrency, files.length) }, () => runWorker(pool)));
  } finally {
    signal?.removeEventListener('abort', onAbort);
    unwatch?.();
  }
  if (failure !== undefined) throw failure.error;
  for (const [index, outcome] of results.entries()) {
    // Never a run that looks complete without every file: say which one is missing.
    if (outcome === undefined) throw new Error(`the work on ${files[index]?.path} never ended, yet no copy thread failed`);
  }
  return results;
}

/** What every worker of one run shares. */
interface Pool {
  options: PoolOptions;
  /** Aborted at the first failure. */
  stop: AbortSignal;
  data: CopyWorkerData;
  /** The next file to hand out, or undefined when there is none or the run failed. */
  nextFile: () => number | undefined;
  settle: (index: number, outcome: PoolOutcome) => void;
  fail: (error: unknown) => void;
}

/** Starts one worker, feeds it files until none is left, and resolves once it has exited. */
function runWorker(pool: Pool): Promise<void> {
  const { files, progress, limiter } = pool.options;
  return new Promise((resolve) => {
    const worker = new Worker(WORKER_URL, { workerData: pool.data, execArgv: workerExecArgv() });
    /** The file the worker holds, if any, and the bytes of it reported so far. */
    let current: number | undefined;
    let reported = 0;
    const post = (message: ToWorker): void => worker.postMessage(message);
    const dispatch = (): void => {
      current = pool.nextFile();
      if (current === undefined) return post({ type: 'exit' });
      const file = files[current] as SourceFile;
      const job = pool.options.job(current);
      if (job.type === 'copy') post({ type: 'copy', index: current, file, target: job.target });
      else if (job.type === 'hash') post({ type: 'hash', index: current, file });
      else post({ type: 'upload', index: current, file, bucket: job.bucket, key: job.key });
    };
    // A worker waiting on S3 reads no STOP flag: it is told, and aborts its requests.
    let exited = false;
    const onStop = (): void => {
      if (!exited) post({ type: 'stop' });
    };
    pool.stop.addEventListener('abort', onStop, { once: true });
    const onMessage = (message: FromWorker): void => {
      const file = (index: number): SourceFile => files[index] as SourceFile;
      switch (message.type) {
        case 'started':
          reported = 0;
          return progress.fileStarted(file(message.index));
        case 'chunk':
          reported += message.bytes;
          return progress.chunkCopied(file(message.index), message.bytes);
        case 'compared':
          return progress.chunkCompared?.(file(message.index), message.bytes);
        case 'take':
          limiter.take(message.bytes, pool.stop).then(
            () => post({ type: 'grant' }),
            (err: unknown) => {
              // Denied because the run stops, or the limiter failed: then that fails the run.
              if (!pool.stop.aborted) pool.fail(err);
              post({ type: 'deny' });
            },
          );
          return;
        case 'finished': {
          const source = file(message.index);
          const expected = source.expectedChecksum;
          if (expected !== undefined && message.copied.checksum !== expected) {
            return pool.fail(new ChecksumMismatchError(source.relativePath, source.path, expected, message.copied.checksum));
          }
          pool.settle(message.index, { copied: message.copied });
          return progress.fileFinished(source, message.copied);
        }
        case 'hashed': {
          pool.settle(message.index, { hashed: message.hashed });
          const { relativePath, size, checksum } = message.hashed;
          return progress.fileFinished(file(message.index), { relativePath, size, checksum });
        }
        case 'skipped':
          pool.settle(message.index, { skipped: message.skipped });
          return progress.fileSkipped(file(message.index), message.skipped, message.bytesReported);
        case 'failed': {
          const error = fromWireError(message.error);
          if (pool.options.keepGoing !== true) return pool.fail(error);
          pool.settle(message.index, { failed: error });
          // Out of the totals, as a skipped file: the bar still ends at 100%.
          const source = file(message.index);
          return progress.fileSkipped(source, { relativePath: source.relativePath, path: source.path, reason: 'unreadable', detail: error.message }, reported);
        }
        case 'stopped':
          // Only ever after a failure; without one, a file would go missing unnoticed.
          if (!pool.stop.aborted) pool.fail(new Error(`a copy worker stopped ${files[message.index]?.path} for no reason`));
          return;
        case 'uploadLeft':
          return pool.options.onUploadLeft?.(message.upload);
      }
    };
    worker.on('message', (message: FromWorker) => {
      try {
        onMessage(message);
      } catch (err) {
        pool.fail(err);
      }
      // The worker is free after each of these, even if a progress reporter threw.
      if (message.type === 'finished' || message.type === 'hashed' || message.type === 'skipped' || message.type === 'failed' || message.type === 'stopped') {
        dispatch();
      }
    });
    // An uncaught error in the worker (it cannot start, runs out of memory): 'exit' follows.
    worker.on('error', (err) => pool.fail(err));
    worker.on('exit', (code) => {
      exited = true;
      pool.stop.removeEventListener('abort', onStop);
      if (current !== undefined || code !== 0) pool.fail(new Error(`a copy worker exited with code ${code} before its work was done`));
      resolve();
    });
    dispatch();
  });
}

/** The worker's error as the callers expect it: same class, same Node fields. */
function fromWireError(wire: WireError): Error {
  let err: Error;
  if (wire.command !== undefined) {
    err = new CommandError(wire.command.code, wire.message, { codeName: wire.command.codeName, extra: wire.command.extra });
  } else if (wire.name === 'SourceTooShortError' && wire.path !== undefined) {
    err = new SourceTooShortError(wire.path, wire.expectedSize ?? 0, wire.actualSize ?? 0);
  } else {
    err = new Error(wire.message);
    if (wire.name !== 'Error') err.name = wire.name;
    const fields: Partial<Record<'code' | 'errno' | 'syscall' | 'path' | 'dest', string | number>> = wire;
    for (const key of ['code', 'errno', 'syscall', 'path', 'dest'] as const) {
      if (fields[key] !== undefined) Object.assign(err, { [key]: fields[key] });
    }
  }
  // Where it was thrown, in the worker: more use in a log than where it was rebuilt.
  if (wire.stack !== undefined) err.stack = wire.stack;
  return err;
}
