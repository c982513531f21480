/**
 * Clones a list of dbpath files into a directory with FICLONE (ioctl_ficlone(2), through
 * `fs.copyFile(..., COPYFILE_FICLONE_FORCE)`, which never falls back to a byte copy).
 * A clone shares the source's extents: it costs a metadata update, whatever the
 * file's size, and later writes by mongod to the source go to new blocks (copy on
 * write), so the clone keeps the bytes as they were at the clone.
 *
 * This runs while mongod's writes are blocked, so it is as parallel as the host
 * allows: each clone is a blocking ioctl on libuv's thread pool (4 threads unless
 * UV_THREADPOOL_SIZE says otherwise), and XFS takes per-inode locks only, so
 * different files clone side by side.
 */
import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import type { SourceFile } from '../copy_types.js';
import { errorCode, strerror } from '../io_error.js';
import { describeErrno } from './reflink_probe.js';
import { makeOwnDirectory } from '../owner_only.js';
import { CommandError, ErrorCodes } from '../../errors.js';

export const DEFAULT_CLONE_CONCURRENCY = 16;

export interface CloneOptions {
  /** Clones in flight at once. Default 16. */
  concurrency?: number;
  /** Mode of the directories created under `into`. Default 0o700: the clones are the database. */
  dirMode?: number;
  /** Aborting stops it between two clones (it runs under the fsync lock): it then fails with the signal's reason. */
  signal?: AbortSignal;
}

export interface CloneResult {
  /** One per file cloned, in the order given: the clone's path, the same relativePath, size, optional flag and link. */
  files: SourceFile[];
  /** Optional files that were gone (or unreadable) at the clone, and why; left out. */
  dropped: Array<{ relativePath: string; detail: string }>;
  /** Every directory created under `into` (parents first), `into` excluded. */
  directories: string[];
}

/** Optional files may vanish or be unreadable, as the copier allows them to be (file_copy.ts). */
const OPTIONAL_GONE: ReadonlySet<string> = new Set(['ENOENT', 'EACCES', 'EPERM']);

/**
 * Clones every file into `into` (which must exist) under its relativePath. Fails with
 * CannotBackup naming the first file that could not be cloned and why; the clones made
 * so far stay, for the caller to remove with the directory.
 */
export async function cloneFiles(files: readonly SourceFile[], into: string, options: CloneOptions = {}): Promise<CloneResult> {
  const concurrency = options.concurrency ?? DEFAULT_CLONE_CONCURRENCY;
  const targets = files.map((file) => cloneTarget(file, into));
  const directories = await makeDirectories(into, targets, options.dirMode ?? 0o700);
  const outcomes: Array<SourceFile | { dropped: string } | undefined> = new Array(files.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < files.length) {
      if (options.signal?.aborted === true) {
        failure = { err: options.signal.reason };
        break;
      }
      const index = next++;
      const file = files[index] as SourceFile;
      const target = targets[index] as string;
      try {
        await fs.copyFile(file.path, target, constants.COPYFILE_FICLONE_FORCE);
        outcomes[index] = { ...file, path: target };
      } catch (err) {
        if (file.optional === true && OPTIONAL_GONE.has(errorCode(err) ?? '')) {
          outcomes[index] = { dropped: `could not be cloned: ${describeErrno(err)}` };
        } else {
          failure ??= { err: cloneFailed(file, into, err) };
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, worker));
  if (failure !== undefined) throw failure.err;
  const result: CloneResult = { files: [], dropped: [], directories };
  outcomes.forEach((outcome, index) => {
    const file = files[index] as SourceFile;
    if (outcome === undefined) throw new Error(`the clone of ${file.path} never ended, yet none failed`);
    if ('dropped' in outcome) result.dropped.push({ relativePath: file.relativePath, detail: outcome.dropped });
    else result.files.push(outcome);
  });
  return result;
}

/** Where `file`'s clone goes; refuses a relativePath that would leave `into`. */
function cloneTarget(file: SourceFile, into: string): string {
  const relative = path.normalize(file.relativePath);
  if (relative === '.' || path.isAbsolute(relative) || relative.split(path.sep).includes('..')) {
    throw new Error(`refusing to clone ${file.path} to '${file.relativePath}': the path must be relative, without ..`);
  }
  return path.join(into, relative);
}

async function makeDirectories(into: string, targets: readonly string[], mode: number): Promise<string[]> {
  const root = path.resolve(into);
  const needed = new Set<string>();
  for (const target of targets) {
    for (let dir = path.dirname(target); dir !== root && dir.startsWith(root + path.sep); dir = path.dirname(dir)) needed.add(dir);
  }
  const ordered = [...needed].sort((a, b) => a.length - b.length);
  // Parents first: each mkdir has its parent.
  for (const dir of ordered) {
    // mkdir(2) applies the umask (owner_only.ts); made ahead of the lock, they get it again.
    await makeOwnDirectory(dir, mode, 'chmod');
  }
  return ordered;
}

/**
 * Makes, ahead of time, the directories `files` will be cloned into: done before the
 * fsync lock from a listing taken then, it leaves that much less to do under the lock.
 */
export async function prepareDirectories(files: readonly SourceFile[], into: string, options: Pick<CloneOptions, 'dirMode'> = {}): Promise<void> {
  await makeDirectories(into, files.map((file) => cloneTarget(file, into)), options.dirMode ?? 0o700);
}

function cloneFailed(file: SourceFile, into: string, err: unknown): CommandError {
  const code = errorCode(err) ?? '';
  const errno = Math.abs(Number((err as { errno?: unknown }).errno ?? 0));
  let why: string;
  if (code === 'EXDEV') {
    why =
      `it is on another filesystem than ${into}, and a clone cannot cross filesystems (${describeErrno(err)}); ` +
      'a symbolic link in the dbpath to another disk does this. Back up with strategy fsyncLock or backupCursor, ' +
      "or keep every file of the dbpath on the dbpath's filesystem";
  } else if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EINVAL') {
    why = `its filesystem cannot clone files (FICLONE: ${describeErrno(err)})`;
  } else {
    why = describeErrno(err);
  }
  return new CommandError(ErrorCodes.CannotBackup, `reflink: cannot clone ${file.relativePath} (${file.path}) into ${into}: ${why}`, {
    ...(errno === 0 ? {} : { extra: { errno, strerror: strerror(errno) } }),
    cause: err,
  });
}
