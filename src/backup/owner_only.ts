/**
 * The modes of what a backup creates: 0600 for files, 0700 for directories, set as such
 * whatever the proxy's umask. A backup holds every byte of the database, so only the
 * proxy's user may read it (root aside); and open(2)/mkdir(2) apply the umask to the
 * mode they are given, so a umask of 000 would leave 0666/0777 and one of 0277 a file
 * its owner cannot write, unless the mode is set again with fchmod(2)/chmod(2).
 */
import fs, { type FileHandle } from 'node:fs/promises';
import { errorCode } from './io_error.js';
import { NOFOLLOW_DIRECTORY } from './backup_root.js';

export const BACKUP_FILE_MODE = 0o600;
export const BACKUP_DIR_MODE = 0o700;

/** What fchmod(2) says on a filesystem without Unix modes (vfat, some FUSE ones): the mount's modes stay. */
export const MODELESS: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP']);

/** fchmod(2) of what `handle` has open, tolerating a filesystem without Unix modes. */
export async function setModeOf(handle: FileHandle, mode: number): Promise<void> {
  try {
    await handle.chmod(mode);
  } catch (err) {
    if (!MODELESS.has(errorCode(err) ?? '')) throw err;
  }
}

/**
 * Makes the directory `dir` (its parent must exist) with `mode` whatever the umask, and
 * says whether it made it. One already there is taken as it is, or given `mode` too with
 * `existing: 'chmod'`; a symbolic link or anything else there is refused, since files
 * written below it would land wherever it points. The mode is set through a descriptor
 * opened O_NOFOLLOW|O_DIRECTORY: chmod(2) by name would follow a link swapped in for
 * the directory after the mkdir, and set the mode of whatever it points to.
 */
export async function makeOwnDirectory(dir: string, mode: number, existing: 'keep' | 'chmod'): Promise<boolean> {
  let made = true;
  try {
    await fs.mkdir(dir, { mode });
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') throw err;
    made = false;
    const stats = await fs.lstat(dir);
    if (stats.isSymbolicLink()) throw new Error(`refusing to write below ${dir}: it is a symbolic link, and the proxy follows none into a backup`);
    if (!stats.isDirectory()) throw new Error(`refusing to write below ${dir}: it is not a directory`);
    if (existing === 'keep') return false;
  }
  const handle = await fs.open(dir, NOFOLLOW_DIRECTORY);
  try {
    await setModeOf(handle, mode);
  } finally {
    await handle.close();
  }
  return made;
}
