/**
 * Copies a list of files into a directory: throttled, hashed, fsynced, in parallel,
 * on worker threads. It knows nothing of mongod; a strategy says which files and how
 * many bytes of each, and the engine decides what the copy means.
 *
 * - The bytes never touch the proxy's event loop. N copy workers (copy_worker.ts,
 *   one worker thread each) read, hash and write with synchronous calls on their own
 *   threads; this side hands out files, answers throttle requests and keeps the
 *   progress counters. Why threads and not a child process: docs/performance.md.
 * - Files go out largest first, one at a time per worker, so one huge collection
 *   file started last cannot leave every other worker idle at the end.
 * - Only reads are throttled, as Percona's were. The throttle is this process's one
 *   Limiter: a worker asks it (a message) before each chunk, unless the limiter says
 *   it is unlimited (a word of shared memory, so an unthrottled copy sends no
 *   requests). A rate change reaches a worker before its next chunk.
 * - Progress is exact: each worker reports every chunk after writing it.
 * - Each file is copied exactly up to its listed size: a file still growing is cut
 *   there (the bytes after belong to no checkpoint); a shorter one is an error.
 * - Except for a file listed `optional`: gone when opened (ENOENT), or shorter than
 *   listed, it is skipped: its partial copy is removed, progress forgets it, and the
 *   result says which and why. Any other error fails the copy as usual.
 * - Destinations are opened `wx` (never overwrite), fsynced, and every directory that
 *   gained entries is fsynced at the end. Holes in a sparse source stay holes.
 * - The first error or abort stops every worker (those waiting on the limiter at once,
 *   the others after their current chunk), every worker has closed its handles and
 *   exited before copyFiles settles, and that error is thrown as it came, with Node's
 *   code/errno/syscall/path for errno/strerror replies. Files written so far stay:
 *   the engine owns the directory, and a backup without its manifest is incomplete
 *   by definition.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fsyncDirectory } from './durable.js';
import { errorCode } from './io_error.js';
import { type CopyProgress, noProgress } from './progress.js';
import { SourceTooShortError } from './file_copy.js';
import { FLAG_COUNT, Flag, type CopyIoClass, type CopyWorkerData, type CopyWrites, type FromWorker, type ToWorker, type WireError } from './copy_messages.js';
import type { CopiedFile, CopyResult, SkippedFile, SourceFile } from './copy_types.js';

export { SourceTooShortError } from './file_copy.js';

/**
 * What the copier needs from a throttle (the engine passes its TokenBucket).
 * Declared here, by its one caller, so the copier can be tested with any limiter.
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

export interface CopyOptions {
  /** The process-wide throttle; `new TokenBucket(0)` is unlimited. */
  limiter: Limiter;
  /** Files copied at once, each by its own worker thread. Default DEFAULT_CONCURRENCY. */
  concurrency?: number;
  /** Bytes per read/write, and the size of each worker's buffer. Default 1 MiB. */
  chunkSize?: number;
  /** Told about every file and chunk. Default: nothing is told. */
  progress?: CopyProgress;
  /** Aborting stops the copy; copyFiles then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Mode of the files created. Default 0o600: a backup holds every byte of the database. */
  fileMode?: number;
  /**
   * The nice value of the copy threads (Linux; 0-19). Default 10: when the CPU is
   * contended, the proxy's forwarding and mongod come first, and the copy still gets
   * about a tenth of it (CFS weights 110 against 1024), so it never stops.
   */
  threadNiceness?: number;
  /**
   * 'direct' (the default) writes with O_DIRECT where the destination's filesystem takes
   * it, and through the page cache where it does not; 'buffered' always through the
   * page cache. Direct writes keep the disk busy all along instead of in a flood at
   * each fsync, and leave mongod's flushes no queue of dirty pages to wait behind
   * (direct_io.ts; docs/performance.md, section 5).
   */
  writes?: CopyWrites;
  /**
   * 'idle' (the default): the copy threads' I/O is served when no other process's is
   * waiting, under the mq-deadline and bfq schedulers (ioprio_set(2), IOPRIO_CLASS_IDLE;
   * mq-deadline still serves a request that waited prio_aging_expire, 10 s, so the copy
   * never starves). 'best-effort' competes with mongod's I/O as an equal.
   */
  ioClass?: CopyIoClass;
}

/**
 * Two copy threads: bench/impact.ts and bench/backup.ts on 2 cores, 1.2 GB: four copied
 * ~25% faster (966 against 781 MB/s) but cost a proxied writer twice as much of its
 * rate, and 24 MiB more RSS, past the proxy's 128 MiB budget (docs/performance.md).
 */
export const DEFAULT_CONCURRENCY = 2;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
export const DEFAULT_THREAD_NICENESS = 10;

const WORKER_URL = new URL('./copy_worker.js', import.meta.url);
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

type FileOutcome = { copied: CopiedFile } | { skipped: SkippedFile };

/**
 * Copies `files` into `destDir` (which must exist: the engine has checked it is an
 * empty directory) and returns what was written, in the order of `files`, and which
 * optional files were skipped.
 */
export async function copyFiles(files: readonly SourceFile[], destDir: string, options: CopyOptions): Promise<CopyResult> {
  const concurrency = positiveInteger('concurrency', options.concurrency ?? DEFAULT_CONCURRENCY);
  const chunkSize = positiveInteger('chunkSize', options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const niceness = options.threadNiceness ?? DEFAULT_THREAD_NICENESS;
  if (!Number.isInteger(niceness) || niceness < 0 || niceness > 19) throw new RangeError(`threadNiceness must be an integer 0-19, got ${niceness}`);
  options.signal?.throwIfAborted();
  const targets = destinationPaths(files, destDir);
  const directories = await createDirectories(destDir, targets);
  // An abort while the directories were made has fired already: the listener below would miss it.
  options.signal?.throwIfAborted();

  const flags = new Int32Array(new SharedArrayBuffer(FLAG_COUNT * Int32Array.BYTES_PER_ELEMENT));
  // One controller stops every worker, whether the caller aborted or a worker failed:
  // it releases their throttle requests, and STOP ends their copy loops.
  const stop = new AbortController();
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown): void => {
    if (failure !== undefined) return;
    failure = { error };
    Atomics.store(flags, Flag.STOP, 1);
    stop.abort(error);
  };
  const onAbort = (): void => fail(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const unwatch = options.limiter.watchUnlimited?.((unlimited) => Atomics.store(flags, Flag.UNLIMITED, unlimited ? 1 : 0));

  const results: FileOutcome[] = new Array<FileOutcome>(files.length);
  const queue = files.map((_, i) => i).sort((a, b) => (files[b] as SourceFile).size - (files[a] as SourceFile).size || a - b);
  let next = 0;
  const pool: CopyPool = {
    files,
    targets,
    limiter: options.limiter,
    progress: options.progress ?? noProgress,
    stop: stop.signal,
    data: {
      chunkSize,
      fileMode: options.fileMode ?? 0o600,
      niceness,
      writes: options.writes ?? 'direct',
      ioClass: options.ioClass ?? 'idle',
      flags: flags.buffer as SharedArrayBuffer,
    },
    nextFile: () => (failure === undefined ? queue[next++] : undefined),
    settle: (index, outcome) => (results[index] = outcome),
    fail,
  };
  try {
    // Workers never reject: they report through fail(), so this waits for every one
    // of them to close its handles and exit before copyFiles settles.
    await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, () => runWorker(pool)));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    unwatch?.();
  }
  if (failure !== undefined) throw failure.error;

  // The files' data is synced; now make their names (and the new directories) durable.
  for (const dir of directories) await fsyncDirectory(dir);
  const result: CopyResult = { copied: [], skipped: [] };
  for (const [index, outcome] of results.entries()) {
    // Never a copy that looks complete without every file: say which one is missing.
    if (outcome === undefined) throw new Error(`the copy of ${files[index]?.path} never ended, yet no copy thread failed`);
    if ('copied' in outcome) result.copied.push(outcome.copied);
    else result.skipped.push(outcome.skipped);
  }
  return result;
}

/** What every worker of one copy shares. */
interface CopyPool {
  files: readonly SourceFile[];
  targets: readonly string[];
  limiter: Limiter;
  progress: CopyProgress;
  /** Aborted at the first failure. */
  stop: AbortSignal;
  data: CopyWorkerData;
  /** The next file to hand out, or undefined when there is none or the copy failed. */
  nextFile: () => number | undefined;
  settle: (index: number, outcome: FileOutcome) => void;
  fail: (error: unknown) => void;
}

/** Starts one copy worker, feeds it files until none is left, and resolves once it has exited. */
function runWorker(pool: CopyPool): Promise<void> {
  return new Promise((resolve) => {
    const worker = new Worker(WORKER_URL, { workerData: pool.data, execArgv: workerExecArgv() });
    /** The file the worker holds, if any. */
    let current: number | undefined;
    const post = (message: ToWorker): void => worker.postMessage(message);
    const dispatch = (): void => {
      current = pool.nextFile();
      if (current === undefined) post({ type: 'exit' });
      else post({ type: 'copy', index: current, file: pool.files[current] as SourceFile, target: pool.targets[current] as string });
    };
    const onMessage = (message: FromWorker): void => {
      const file = (index: number): SourceFile => pool.files[index] as SourceFile;
      switch (message.type) {
        case 'started':
          return pool.progress.fileStarted(file(message.index));
        case 'chunk':
          return pool.progress.chunkCopied(file(message.index), message.bytes);
        case 'compared':
          return pool.progress.chunkCompared?.(file(message.index), message.bytes);
        case 'take':
          pool.limiter.take(message.bytes, pool.stop).then(
            () => post({ type: 'grant' }),
            (err: unknown) => {
              // Denied because the copy stops, or the limiter failed: then that fails the copy.
              if (!pool.stop.aborted) pool.fail(err);
              post({ type: 'deny' });
            },
          );
          return;
        case 'finished':
          pool.settle(message.index, { copied: message.copied });
          return pool.progress.fileFinished(file(message.index), message.copied);
        case 'skipped':
          pool.settle(message.index, { skipped: message.skipped });
          return pool.progress.fileSkipped(file(message.index), message.skipped, message.bytesReported);
        case 'failed':
          return pool.fail(fromWireError(message.error));
        case 'stopped':
          // Only ever after a failure; without one, a file would go missing unnoticed.
          if (!pool.stop.aborted) pool.fail(new Error(`a copy worker stopped ${pool.files[message.index]?.path} for no reason`));
          return;
      }
    };
    worker.on('message', (message: FromWorker) => {
      try {
        onMessage(message);
      } catch (err) {
        pool.fail(err);
      }
      // The worker is free after each of these, even if a progress reporter threw.
      if (message.type === 'finished' || message.type === 'skipped' || message.type === 'failed' || message.type === 'stopped') dispatch();
    });
    // An uncaught error in the worker (it cannot start, runs out of memory): 'exit' follows.
    worker.on('error', (err) => pool.fail(err));
    worker.on('exit', (code) => {
      if (current !== undefined || code !== 0) pool.fail(new Error(`a copy worker exited with code ${code} before its copy was done`));
      resolve();
    });
    dispatch();
  });
}

/** The worker's error as the copier's callers expect it: same class, same Node fields. */
function fromWireError(wire: WireError): Error {
  let err: Error;
  if (wire.name === 'SourceTooShortError' && wire.path !== undefined) {
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

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Where each file goes. Refuses, before anything is written, paths that would land
 * outside `destDir` (absolute, any `..`), that name a directory, and duplicates.
 */
function destinationPaths(files: readonly SourceFile[], destDir: string): string[] {
  const seen = new Set<string>();
  return files.map((file) => {
    const { relativePath, size } = file;
    const refuse = (why: string): Error => new Error(`refusing to copy ${file.path} to '${relativePath}': ${why}`);
    if (!Number.isSafeInteger(size) || size < 0) throw refuse(`invalid size ${size}`);
    if (relativePath === '' || path.isAbsolute(relativePath)) throw refuse('the path must be relative');
    const parts = relativePath.split(/[/\\]/);
    if (parts.includes('..')) throw refuse('the path must not contain ..');
    const normalized = path.normalize(relativePath);
    if (normalized === '.' || (parts[parts.length - 1] ?? '') === '') throw refuse('the path must name a file');
    if (seen.has(normalized)) throw refuse('the path is listed twice');
    seen.add(normalized);
    return path.join(destDir, normalized);
  });
}

/**
 * Creates the directories the targets need, parents first, and returns every
 * directory that gains an entry (destDir included): those must be fsynced for the
 * new names to survive a crash.
 */
async function createDirectories(destDir: string, targets: readonly string[]): Promise<string[]> {
  const root = path.resolve(destDir);
  const needed = new Set<string>([root]);
  for (const target of targets) {
    for (let dir = path.dirname(path.resolve(target)); dir !== root && dir.startsWith(root); dir = path.dirname(dir)) {
      needed.add(dir);
    }
  }
  // A parent's path is always shorter than its child's.
  const ordered = [...needed].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  for (const dir of ordered) {
    if (dir === root) continue;
    try {
      await fs.mkdir(dir);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
  }
  return ordered;
}
