/**
 * One file of an incremental backup, in a copy worker: taken from the base backup when
 * it may be, copied from the source (file_copy.ts) otherwise. Synchronous calls on the
 * worker's own thread, as the copy's: hashing a source to compare it never runs on the
 * proxy's forwarding loop.
 *
 * Taking the base's copy, in order of preference:
 * 1. a clone (FICLONE, as the reflink strategy clones: clone_files.ts): a new inode
 *    sharing the base's extents, so a later write to either copy goes to new blocks;
 * 2. a hard link: the same inode under a second name; a write through either name
 *    changes both backups.
 * Either way both names end up read-only (0400): with a hard link there is one inode, and
 * a backup is never written to in place (restore copies); making clones read-only too
 * keeps one rule for every reused file. 0400 rather than 0444: the copier writes 0600,
 * because a backup holds every byte of the database, and read-only must not mean
 * world-readable. Neither stops root (mongod started by root on the backup itself
 * writes through a hard link into every backup that shares it: docs/backups.md).
 *
 * The base's copy must still be the bytes its manifest lists, since the new manifest
 * records the base's checksum for it. It is not taken, and the file is copied from the
 * source instead, when its mtime is later than the base's manifest's (it was written
 * after that backup was: mongod started on the base, a hand edit, a restore into it).
 * mtime, not ctime: a clone or a link of it, and the chmod to 0400 above, move the
 * ctime of the base's copy but not its mtime, and every backup taken against it does
 * that. Both readings come from the clock of the filesystem the base is on, so no clock
 * of this host takes part. What keeps the mtime (bit rot; `touch -d` after an edit) is
 * caught by the hash alone: a file taken on the evidence of its hash (`compare`) has the
 * base's copy hashed too, after it was taken, and must match on both sides.
 *
 * The base's copy is taken only as the regular file it is (opened O_NOFOLLOW): a
 * symbolic link in its place, made by whoever may write in the base, is not followed,
 * so no other file is cloned or linked into the backup or made read-only.
 *
 * Whatever keeps the base's copy from being taken (gone, another size, changed since,
 * a filesystem that neither clones nor links, EMLINK after 65000 links on ext4) falls
 * back to a copy from the source, which the snapshot protects: the backup stays whole,
 * and the result says why (`notReused`).
 */
import fs from 'node:fs';
import { constants } from 'node:fs';
import { startChecksum } from './checksum.js';
import { CopyStopped, copyOneFile, SourceTooShortError, type FileCopyHooks, type FileOutcome } from './file_copy.js';
import { errorCode } from './io_error.js';
import { mtimeNs, mtimeText } from './source_stamp.js';
import type { Reused, ReuseFrom, SourceFile } from './copy_types.js';

/** Read-only for the owner alone: see the module comment. */
export const REUSED_FILE_MODE = 0o400;

export interface ReuseHooks extends FileCopyHooks {
  /** `bytes` more of the source were read and hashed to compare it with the base's checksum. */
  chunkCompared(bytes: number): void;
}

/** Copies `file` to `target`, or takes it from the base its `reuse` names. */
export async function copyOrReuse(file: SourceFile, target: string, buffer: Buffer, fileMode: number, hooks: ReuseHooks, direct = false): Promise<FileOutcome> {
  const reuse = file.reuse;
  if (reuse === undefined) return copyOneFile(file, target, buffer, fileMode, hooks, direct);
  if (reuse.compare && (await checksumOf(file.path, file.size, buffer, hooks)) !== reuse.checksum) {
    // Changed since the base: an ordinary copy, not a failure to reuse.
    return copyOneFile(file, target, buffer, fileMode, hooks, direct);
  }
  const taken = takeFromBase(file, reuse, target);
  let why = 'why' in taken ? taken.why : undefined;
  if (why === undefined && reuse.compare) {
    // What was taken (with a hard link, the base's file itself) must be what the manifest says.
    const actual = await checksumOf(target, file.size, buffer, hooks);
    if (actual !== reuse.checksum) {
      fs.rmSync(target, { force: true });
      const found = actual === undefined ? 'cannot be read in full' : `hashes to ${actual}`;
      why = `the base's copy ${reuse.from} ${found}, and that backup's manifest says ${reuse.checksum}: the base is damaged (run hotbackup verify on it)`;
    }
  }
  // ('why' in taken implies why !== undefined: said again so that `taken.method` below type-checks.)
  if (why !== undefined || 'why' in taken) {
    const outcome = await copyOneFile(file, target, buffer, fileMode, hooks, direct);
    return 'copied' in outcome ? { copied: { ...outcome.copied, notReused: why } } : outcome;
  }
  const reused: Reused = { method: taken.method, check: reuse.compare ? 'checksum' : 'sizeMtime' };
  return { copied: { relativePath: file.relativePath, size: file.size, checksum: reuse.checksum, reused } };
}

/**
 * The checksum of the first `size` bytes of `file` (the source, on mongod's disk, or the
 * base's copy), read through the throttle as a copy reads; undefined when it cannot be
 * read or ends early. A source that fails so is not the same, and the copy then meets
 * the same error and reports it as it always does (skipping an optional file, say).
 * Read `buffer.length` bytes at a time. The S3 uploader compares a source with an S3 base
 * with it too (src/s3/server_copy.ts).
 */
export async function checksumOf(file: string, size: number, buffer: Buffer, hooks: Pick<ReuseHooks, 'beforeRead' | 'chunkCompared'>): Promise<string | undefined> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const checksum = startChecksum();
    for (let offset = 0; offset < size; ) {
      const want = Math.min(buffer.length, size - offset);
      await hooks.beforeRead(want);
      const bytesRead = fs.readSync(fd, buffer, 0, want, offset);
      if (bytesRead === 0) throw new SourceTooShortError(file, size, offset);
      checksum.update(buffer.subarray(0, bytesRead));
      offset += bytesRead;
      hooks.chunkCompared(bytesRead);
    }
    return checksum.hex();
  } catch (err) {
    // A stop (abort, another worker's failure) is not an answer: it must end this file.
    if (err instanceof CopyStopped) throw err;
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

type Taken = { method: Reused['method'] } | { why: string };

/**
 * Opens the base's copy itself, never a symbolic link in its place (O_NOFOLLOW): it is
 * cloned, linked and made read-only through this descriptor, so a link in the base
 * cannot get another file cloned into the backup, or chmodded to 0400.
 */
function openBaseCopy(from: string): { fd: number; stats: fs.BigIntStats } | { why: string } {
  let fd: number;
  try {
    fd = fs.openSync(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ELOOP') return { why: `the base's copy ${from} is a symbolic link: files are taken from a base only as the regular files its backup wrote` };
    return { why: `the base's copy ${from} cannot be read (${code ?? String(err)})` };
  }
  const stats = fs.fstatSync(fd, { bigint: true });
  if (!stats.isFile()) {
    fs.closeSync(fd);
    return { why: `the base's copy ${from} is not a regular file` };
  }
  return { fd, stats };
}

/** Clones or links the base's copy to `target` and makes both read-only; or says why it could not. */
function takeFromBase(file: SourceFile, reuse: ReuseFrom, target: string): Taken {
  const base = openBaseCopy(reuse.from);
  if ('why' in base) return base;
  try {
    return takeOpened(file, reuse, target, base.fd, base.stats);
  } finally {
    fs.closeSync(base.fd);
  }
}

function takeOpened(file: SourceFile, reuse: ReuseFrom, target: string, baseFd: number, stats: fs.BigIntStats): Taken {
  if (stats.size !== BigInt(file.size)) return { why: `the base's copy ${reuse.from} is ${stats.size} bytes, not the ${file.size} its manifest lists` };
  if (stats.mtimeNs > mtimeNs(reuse.baseWrittenAt)) {
    return {
      why: `the base's copy ${reuse.from} was modified (mtime ${mtimeText(stats) ?? String(stats.mtimeNs)}) after that backup's manifest was written (${reuse.baseWrittenAt}), ` +
        'so it may no longer hold the bytes its manifest lists: mongod started on the base, or an edit? (run hotbackup verify on it)',
    };
  }
  let method: Reused['method'];
  try {
    // EXCL: never replace a file, as the copier never does ('wx'). FORCE: a clone or an
    // error, never a silent byte copy. The source is the open descriptor (Linux reopens
    // /proc/self/fd/<fd> as the file it has open, not by the name it was opened by).
    fs.copyFileSync(`/proc/self/fd/${baseFd}`, target, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
    method = 'reflink';
  } catch (cloneErr) {
    if (!cannotClone(cloneErr)) return { why: `cloning ${reuse.from} failed (${describe(cloneErr)})` };
    try {
      // link(2) takes a name, and on Linux does not follow a symbolic link given as the
      // old path: a link swapped in since the open is linked as a link, and found below.
      fs.linkSync(reuse.from, target);
      method = 'hardlink';
    } catch (linkErr) {
      return { why: `${reuse.from} can be neither cloned (${describe(cloneErr)}) nor hard-linked (${describe(linkErr)})` };
    }
    const linked = fs.lstatSync(target, { bigint: true });
    if (linked.dev !== stats.dev || linked.ino !== stats.ino) {
      fs.rmSync(target, { force: true });
      return { why: `the base's copy ${reuse.from} was replaced while it was taken` };
    }
  }
  try {
    // The base's copy (with a hard link, the target too: one inode) through its descriptor.
    fs.fchmodSync(baseFd, REUSED_FILE_MODE);
    if (method === 'reflink') {
      // The clone's extents are metadata of the new inode: durable only once it is synced.
      // A hard link is a directory entry, made durable by the copier's fsync of the directory.
      const fd = fs.openSync(target, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        fs.fchmodSync(fd, REUSED_FILE_MODE);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (err) {
    fs.rmSync(target, { force: true });
    return { why: `${method === 'reflink' ? 'the clone' : 'the hard link'} of ${reuse.from} could not be made read-only (${describe(err)})` };
  }
  return { method };
}

/**
 * Errors that mean "this filesystem (pair) does not clone": ext4, tmpfs, two filesystems.
 * libuv has already removed the empty target it created (uv__fs_copyfile).
 */
function cannotClone(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'EINVAL' || code === 'EXDEV' || code === 'ENOSYS' || code === 'ENOTTY';
}

function describe(err: unknown): string {
  return errorCode(err) ?? (err instanceof Error ? err.message : String(err));
}
