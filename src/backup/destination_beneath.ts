/**
 * A backupStart destination under `--backup-root`, checked and created without
 * following a symbolic link anywhere below the root: its parent is opened component by
 * component (BackupRoot.openDirectory), and the destination is looked up, made and
 * opened relative to that open parent (`/proc/self/fd/<parent>/<name>`, the mkdirat(2)
 * Node lacks: backup_root.ts). A link swapped in for any directory on the path after its
 * open does not move what is already open, so the mkdir lands in the root or nowhere.
 *
 * Every directory on the way must be safe to write through (trusted_dir.ts); a
 * destination that exists already must be the proxy's user's, and is set to 0700 like
 * one made, through its descriptor, before it is checked to be empty.
 *
 * Then, before it is used by name, the path is checked to still lead to the very
 * directory made (device and inode, and no link on the way); if it does not, the
 * directory is removed again and the backup refused. What remains is the window after
 * that check (backup_root.ts, module comment).
 */
import fs, { type FileHandle } from 'node:fs/promises';
import { CommandError, ErrorCodes } from '../errors.js';
import { errorCode, toCommandError } from './io_error.js';
import { BACKUP_DIR_MODE, setModeOf } from './owner_only.js';
import { beneath, NOFOLLOW_DIRECTORY, type BackupRoot } from './backup_root.js';
import type { DestinationFs } from './destination.js';
import { distrustOfDestination } from './trusted_dir.js';

const WHAT = 'Backup destination';

function badValue(message: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, message);
}

/** Opens `name` in `parent` as a directory, not through a link; undefined when absent. */
async function openIfPresent(root: BackupRoot, parent: FileHandle, name: string, destination: string, requested: string): Promise<FileHandle | undefined> {
  try {
    return await fs.open(beneath(parent, name), NOFOLLOW_DIRECTORY);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return undefined;
    if (code !== 'ENOTDIR' && code !== 'ELOOP') throw toCommandError(err, 'checking the backup destination');
    const refusal = await root.notADirectory(parent, name, destination, requested, WHAT);
    // Percona's text for a destination that is a file.
    throw refusal.message.endsWith('is not a directory') ? badValue(`Backup destination ${destination} is not a directory`) : refusal;
  }
}

/** Whether `destination`, by name, still leads to the directory `held` without a link: the walk's result, still in place. */
async function stillThere(held: FileHandle, destination: string): Promise<boolean> {
  const [opened, named, real] = await Promise.all([held.stat(), fs.lstat(destination).catch(() => undefined), fs.realpath(destination).catch(() => undefined)]);
  return named !== undefined && real === destination && named.dev === opened.dev && named.ino === opened.ino;
}

async function checkEmpty(dir: FileHandle, destination: string): Promise<void> {
  const entries = await fs.readdir(beneath(dir)).catch((err: unknown) => {
    throw toCommandError(err, 'reading the backup destination');
  });
  if (entries.length > 0) throw badValue(`Backup directory ${destination} is not empty`);
}

/**
 * Makes `components` (below `root`, the last one the destination) an empty directory
 * ready for a backup: creates it when absent, under an existing parent only, and makes
 * it 0700; refuses one that is not empty, not a directory, another user's, or reached
 * through a symbolic link or a directory others may write in.
 */
export async function prepareBeneath(root: BackupRoot, components: readonly string[], requested: string, dirs: DestinationFs): Promise<void> {
  const name = components[components.length - 1];
  if (name === undefined) throw new Error('prepareBeneath needs the destination below the root');
  const destination = root.pathOf(components);
  const parentPath = root.pathOf(components.slice(0, -1));
  const parent = await root.openDirectory(components.slice(0, -1), requested, WHAT).catch((err: unknown) => {
    // Percona's wording for the usual case: a typo in the parent.
    if (err instanceof CommandError && err.message.includes('does not exist')) {
      throw badValue(`Backup destination ${destination} cannot be created: its parent directory ${parentPath} does not exist`);
    }
    throw err;
  });
  try {
    let created = false;
    let dir = await openIfPresent(root, parent, name, destination, requested);
    if (dir === undefined) {
      try {
        await dirs.mkdir(beneath(parent, name));
        created = true;
      } catch (err) {
        // EEXIST: made by someone else since the open above; looked at again below.
        if (errorCode(err) !== 'EEXIST') throw toCommandError(err, 'creating the backup destination');
      }
      dir = await openIfPresent(root, parent, name, destination, requested);
      if (dir === undefined) throw badValue(`Backup destination ${destination} was removed while it was created`);
    }
    try {
      if (!created) {
        const why = distrustOfDestination(await dir.stat());
        if (why !== undefined) throw root.untrusted(requested, WHAT, destination, why);
      }
      // Looked into before the chmod, so that a refused directory keeps its mode, and
      // again after it: once 0700, nobody else may add or swap entries in it.
      if (!created) await checkEmpty(dir, destination);
      await setModeOf(dir, BACKUP_DIR_MODE);
      if (!created) await checkEmpty(dir, destination);
      if (!(await stillThere(dir, destination))) {
        if (created) await fs.rmdir(beneath(parent, name)).catch(() => undefined);
        throw badValue(`Backup destination ${requested} changed while it was checked: ${destination} no longer leads to the directory made in the backup root; nothing was written`);
      }
      if (created) {
        await dirs.fsyncDirectory(beneath(parent)).catch((err: unknown) => {
          throw toCommandError(err, 'making the backup destination durable');
        });
      }
    } finally {
      await dir.close();
    }
  } finally {
    await parent.close();
  }
}
