/**
 * Copies a list of files into a directory: throttled, hashed, fsynced, in parallel,
 * on worker threads. It knows nothing of mongod; a strategy says which files and how
 * many bytes of each, and the engine decides what the copy means.
 *
 * - The bytes never touch the proxy's event loop: the copy threads of copy_pool.ts
 *   (one worker thread each) read, hash and write with synchronous calls on their own
 *   threads; this side hands out files, answers throttle requests and keeps the
 *   progress counters. Why threads and not a child process: docs/performance.md.
 *   Files go out largest first; only reads are throttled, as Percona's were, by this
 *   process's one Limiter, and a rate change reaches a worker before its next chunk.
 * - Progress is exact: each worker reports every chunk after writing it.
 * - Each file is copied exactly up to its listed size: a file still growing is cut
 *   there (the bytes after belong to no checkpoint); a shorter one is an error.
 * - Except for a file listed `optional`: gone when opened (ENOENT), or shorter than
 *   listed, it is skipped: its partial copy is removed, progress forgets it, and the
 *   result says which and why. Any other error fails the copy as usual.
 * - Destinations are opened `wx` (never overwrite) and given their mode whatever the
 *   umask, fsynced, and every directory that gained entries is fsynced at the end.
 *   Holes in a sparse source stay holes.
 * - A file listed with an `expectedChecksum` (restore) that hashes otherwise fails the
 *   copy with a ChecksumMismatchError naming it.
 * - The first error or abort stops every worker (those waiting on the limiter at once,
 *   the others after their current chunk), every worker has closed its handles and
 *   exited before copyFiles settles, and that error is thrown as it came, with Node's
 *   code/errno/syscall/path for errno/strerror replies. Files written so far stay:
 *   the engine owns the directory, and a backup without its manifest is incomplete
 *   by definition.
 */
import path from 'node:path';
import { fsyncDirectory } from './durable.js';
import { BACKUP_DIR_MODE, BACKUP_FILE_MODE, makeOwnDirectory } from './owner_only.js';
import { type CopyProgress, noProgress } from './progress.js';
import { poolSettings, runPool, type Limiter } from './copy_pool.js';
import type { CopyResult, SourceFile } from './copy_types.js';
import type { CopyIoClass, CopyWrites } from './copy_messages.js';

export { SourceTooShortError } from './file_copy.js';
export { ChecksumMismatchError } from './checksum.js';
export { DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, DEFAULT_THREAD_NICENESS, type Limiter } from './copy_pool.js';

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
  /** Mode of the files created, set as such whatever the umask. Default 0o600: a backup holds every byte of the database. */
  fileMode?: number;
  /** Mode of the directories created, set as such whatever the umask. Default 0o700 (owner_only.ts). */
  directoryMode?: number;
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
   * 'best-effort' (the default): the copy threads' I/O competes with mongod's as an
   * equal. 'idle' (ioprio_set(2), IOPRIO_CLASS_IDLE) has it served only when no other
   * I/O waits, under mq-deadline and bfq (`none` and kyber ignore it): the application
   * notices the copy less, but on a disk mongod keeps busy each request may wait
   * mq-deadline's prio_aging_expire (10 s) and the backup crawls while it pins a
   * checkpoint; an idle thread holding a filesystem journal handle could also stall
   * mongod's fsync behind its own wait. So it is the operator's choice, not the default
   * (docs/performance.md, section 5).
   */
  ioClass?: CopyIoClass;
}

/**
 * Copies `files` into `destDir` (which must exist: the engine has checked it is an
 * empty directory) and returns what was written, in the order of `files`, and which
 * optional files were skipped.
 */
export async function copyFiles(files: readonly SourceFile[], destDir: string, options: CopyOptions): Promise<CopyResult> {
  const settings = poolSettings(options);
  options.signal?.throwIfAborted();
  const targets = destinationPaths(files, destDir);
  const directories = await createDirectories(destDir, targets, options.directoryMode ?? BACKUP_DIR_MODE);
  // An abort while the directories were made has fired already: the listener below would miss it.
  options.signal?.throwIfAborted();

  const outcomes = await runPool({
    files,
    job: (index) => ({ type: 'copy', target: targets[index] as string }),
    limiter: options.limiter,
    ...settings,
    fileMode: options.fileMode ?? BACKUP_FILE_MODE,
    ...(options.writes === undefined ? {} : { writes: options.writes }),
    ...(options.ioClass === undefined ? {} : { ioClass: options.ioClass }),
    progress: options.progress ?? noProgress,
    signal: options.signal,
  });

  // The files' data is synced; now make their names (and the new directories) durable.
  for (const dir of directories) await fsyncDirectory(dir);
  const result: CopyResult = { copied: [], skipped: [] };
  for (const outcome of outcomes) {
    if ('copied' in outcome) result.copied.push(outcome.copied);
    else if ('skipped' in outcome) result.skipped.push(outcome.skipped);
  }
  return result;
}

/**
 * Where each file goes. Refuses, before anything is written, paths that would land
 * outside `destDir` (absolute, any `..`), that name a directory, and duplicates.
 * Also for the S3 restore's downloads (src/s3/s3_restore_files.ts).
 */
export function destinationPaths(files: readonly SourceFile[], destDir: string): string[] {
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
 * Creates the directories the targets need, parents first (with `mode` set before
 * anything goes in), and returns every directory that gains an entry (destDir
 * included): those must be fsynced for the new names to survive a crash. Also for the
 * S3 restore's downloads.
 */
export async function createDirectories(destDir: string, targets: readonly string[], mode: number): Promise<string[]> {
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
    // mkdir(2) applies the umask; the mode is set before anything goes in. One that
    // exists already (made by another since the destination was found empty) must be a
    // directory, not a link out of the backup.
    await makeOwnDirectory(dir, mode, 'keep');
  }
  return ordered;
}
