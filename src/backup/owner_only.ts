/**
 * The modes of what a backup creates: 0600 for files, 0700 for directories, set as such
 * whatever the proxy's umask. A backup holds every byte of the database, so only the
 * proxy's user may read it (root aside); and open(2)/mkdir(2) apply the umask to the
 * mode they are given, so a umask of 000 would leave 0666/0777 and one of 0277 a file
 * its owner cannot write, unless the mode is set again with fchmod(2)/chmod(2).
 */
import fs, { type FileHandle } from 'node:fs/promises';
import { errorCode } from './io_error.js';

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

/** chmod(2) of a directory this process just created, tolerating a filesystem without Unix modes. */
export async function setModeOfPath(target: string, mode: number): Promise<void> {
  try {
    await fs.chmod(target, mode);
  } catch (err) {
    if (!MODELESS.has(errorCode(err) ?? '')) throw err;
  }
}
