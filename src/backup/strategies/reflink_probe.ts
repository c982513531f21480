/**
 * Whether the dbpath's files can be cloned into the staging root: asked with a real
 * clone (FICLONE, ioctl_ficlone(2)) of a small file of the dbpath, never guessed from
 * the filesystem's name. XFS clones only when made with `-m reflink=1` (mkfs.xfs's
 * default since xfsprogs 5.1); btrfs always does; ext4 never does; and a clone across
 * two filesystems fails with EXDEV, so a staging root elsewhere is caught here too.
 *
 * The clone only reads the dbpath's file (the kernel shares its extents; mongod's copy
 * is untouched) and is unlinked at once. The answer is cached per process for each
 * (dbpath, staging root); only a definite "cannot clone" or "can" is cached, not an
 * error that may pass (a staging root not yet writable, a full disk).
 */
import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errorCode, strerror } from '../io_error.js';

export interface ReflinkSupport {
  /** Whether a clone of a dbpath file into the staging root worked. */
  readonly ok: boolean;
  /** The dbpath's filesystem by name ("xfs", "ext4", ...), or its statfs magic in hex. */
  readonly fsType: string;
  /** One line: "dbpath on xfs supports reflink", or why it cannot clone and what to do. */
  readonly reason: string;
}

/** statfs(2) f_type magics (linux/magic.h) of the filesystems an operator is likely to meet. */
const FS_MAGIC: ReadonlyMap<number, string> = new Map([
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  // ext2, ext3 and ext4 share one magic; none of them clones.
  [0xef53, 'ext4'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x2fc12fc1, 'zfs'],
  [0xca451a4e, 'bcachefs'],
  [0xf2f52010, 'f2fs'],
  [0x7461636f, 'ocfs2'],
  [0x6969, 'nfs'],
  [0xff534d42, 'cifs'],
  [0x65735546, 'fuse'],
]);

/** The filesystem `dir` is on, by name where known; "unknown" when statfs fails. */
export async function filesystemType(dir: string): Promise<string> {
  try {
    const { type } = await fs.statfs(dir);
    return FS_MAGIC.get(type) ?? `0x${type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}

/** Errors meaning "this filesystem (pair) cannot clone": the answer will not change while the process runs. */
const CANNOT_CLONE: ReadonlySet<string> = new Set(['EOPNOTSUPP', 'ENOTSUP', 'EINVAL', 'EXDEV', 'ENOSYS', 'ENOTTY']);

/** Small files every WiredTiger dbpath has, written once: cloned read-only. */
const PROBE_FILES = ['WiredTiger', 'storage.bson', 'WiredTiger.turtle'];

const cache = new Map<string, Promise<ReflinkSupport>>();

/** Whether `dbpath`'s files can be cloned into `stagingRoot`; cached per process (see above). */
export function probeReflink(dbpath: string, stagingRoot: string): Promise<ReflinkSupport> {
  const key = `${path.resolve(dbpath)}\0${path.resolve(stagingRoot)}`;
  let answer = cache.get(key);
  if (answer === undefined) {
    answer = runProbe(path.resolve(dbpath), path.resolve(stagingRoot)).then((support) => {
      if (!support.cached) cache.delete(key);
      return { ok: support.ok, fsType: support.fsType, reason: support.reason };
    });
    cache.set(key, answer);
  }
  return answer;
}

/** Forgets every cached answer (tests that remount a filesystem under one path). */
export function forgetReflinkProbes(): void {
  cache.clear();
}

async function runProbe(dbpath: string, stagingRoot: string): Promise<ReflinkSupport & { cached: boolean }> {
  const fsType = await filesystemType(dbpath);
  const source = await firstPresent(dbpath);
  if (source === undefined) {
    return { ok: false, cached: false, fsType, reason: `dbpath ${dbpath} has none of ${PROBE_FILES.join(', ')} to test a clone with` };
  }
  // Whatever of the staging root the probe had to create goes again if nothing can be cloned.
  let created: string | undefined;
  try {
    created = await fs.mkdir(stagingRoot, { recursive: true, mode: 0o700 });
  } catch (err) {
    return { ok: false, cached: false, fsType, reason: `cannot create the staging directory ${stagingRoot}: ${describeErrno(err)}` };
  }
  const target = path.join(stagingRoot, `.reflink-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.copyFile(source, target, constants.COPYFILE_FICLONE_FORCE);
    await fs.rm(target, { force: true });
    return { ok: true, cached: true, fsType, reason: `dbpath on ${fsType} supports reflink` };
  } catch (err) {
    // libuv unlinks a failed clone's target itself; this is for a clone that worked but could not be removed.
    await fs.rm(target, { force: true }).catch(() => undefined);
    if (created !== undefined) await fs.rm(created, { recursive: true, force: true }).catch(() => undefined);
    const code = errorCode(err) ?? '';
    if (code === 'EXDEV') {
      const stagingType = await filesystemType(path.dirname(stagingRoot));
      return {
        ok: false,
        cached: true,
        fsType,
        reason:
          `the staging directory ${stagingRoot} (${stagingType}) is not on the dbpath's filesystem (${fsType}), and a clone cannot ` +
          `cross filesystems (FICLONE: ${describeErrno(err)}): set --staging-dir to a directory on the dbpath's filesystem`,
      };
    }
    return {
      ok: false,
      cached: CANNOT_CLONE.has(code),
      fsType,
      reason: CANNOT_CLONE.has(code)
        ? `dbpath on ${fsType} cannot clone files (FICLONE: ${describeErrno(err)})`
        : `a test clone of ${source} into ${stagingRoot} failed: ${describeErrno(err)}`,
    };
  }
}

async function firstPresent(dbpath: string): Promise<string | undefined> {
  for (const name of PROBE_FILES) {
    const file = path.join(dbpath, name);
    const stats = await fs.stat(file).catch(() => undefined);
    if (stats?.isFile() === true) return file;
  }
  return undefined;
}

/** "Operation not supported (EOPNOTSUPP)": C's wording, and the name to search for. */
export function describeErrno(err: unknown): string {
  const errno = (err as { errno?: unknown } | null)?.errno;
  const code = errorCode(err);
  if (typeof errno !== 'number') return err instanceof Error ? err.message : String(err);
  // Node names errno 95 ENOTSUP; Linux headers and man pages say EOPNOTSUPP, its other name.
  return `${strerror(errno)} (${code === 'ENOTSUP' ? 'EOPNOTSUPP' : (code ?? errno)})`;
}
