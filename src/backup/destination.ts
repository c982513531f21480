/**
 * Checks a backupStart destination with Percona's error texts, and creates it when
 * absent. It must be absolute, outside the dbpath (and the proxy's state dir and
 * staging), and empty: a backup never mixes with other files, and the finished
 * directory is itself a usable dbpath. Under `--backup-root` it must also lie in that
 * tree, reached through no `..` and no symbolic link (backup_root.ts), and it is
 * created relative to its parent's open directory, so that a link swapped in meanwhile
 * cannot send the mkdir elsewhere.
 *
 * Only the last level is created, and only under an existing directory, as PSMDB's
 * hot backup does (`fs::create_directory` in WiredTigerKVEngine::hotBackup;
 * jstests/backup/dest_path.js expects `backupDir: "/non-existent/path"` to fail).
 * `mkdir -p` would turn a typo such as `/bakups/2026` into a new tree at `/`. A
 * directory created gets mode 0700 whatever the umask (owner_only.ts), and so does an
 * empty one that existed: the backup's files are the database, and whoever may write
 * in their directory may swap them. Under a backup root, one that existed must also be
 * the proxy's user's (trusted_dir.ts).
 *
 * A created destination is made durable by an fsync of its parent, so a crash cannot
 * lose the directory (and with it a backup whose files and manifest were each fsync'ed).
 */
import { constants, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CommandError, ErrorCodes } from '../errors.js';
import { errorCode, toCommandError } from './io_error.js';
import { fsyncDirectory } from './durable.js';
import { BACKUP_DIR_MODE, setModeOf } from './owner_only.js';
import { NOFOLLOW_DIRECTORY, type BackupRoot } from './backup_root.js';
import { prepareBeneath } from './destination_beneath.js';
import { isWithin } from './path_within.js';

/**
 * The directory operations prepareDestination needs; tests wrap them to watch them or
 * make them fail. Under a backup root the paths are `/proc/self/fd/<parent>/<name>`
 * (backup_root.ts).
 */
export interface DestinationFs {
  /** Creates `dir` itself, one level, as mkdir(2): EEXIST if it exists, ENOENT if its parent does not. */
  mkdir(dir: string): Promise<void>;
  fsyncDirectory(dir: string): Promise<void>;
}

export const nodeDestinationFs: DestinationFs = {
  mkdir: (dir) => fs.mkdir(dir, { mode: BACKUP_DIR_MODE }),
  fsyncDirectory,
};

function badValue(message: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, message);
}

/** Whether one of two absolute paths is the other or inside it. */
export function pathsOverlap(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** A path that does not resolve: missing, or below something that is not a directory. */
function isMissing(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** stat(2), following symbolic links; undefined when nothing is there. */
async function statIfPresent(target: string, doing: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(target);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw toCommandError(err, doing);
  }
}

/**
 * `target` with every symbolic link resolved, as far as it exists: a destination that
 * does not exist yet resolves through its parent. Unresolvable paths stay as given;
 * the checks after this one report them.
 */
async function realPath(target: string): Promise<string> {
  try {
    return await fs.realpath(target);
  } catch (err) {
    if (!isMissing(err)) return target;
    const parent = await fs.realpath(path.dirname(target)).catch(() => undefined);
    return parent === undefined ? target : path.join(parent, path.basename(target));
  }
}

function missingParent(destination: string, parent: string): CommandError {
  return badValue(`Backup destination ${destination} cannot be created: its parent directory ${parent} does not exist`);
}

async function checkEmptyDirectory(destination: string, stat: Stats): Promise<void> {
  if (!stat.isDirectory()) throw badValue(`Backup destination ${destination} is not a directory`);
  const entries = await fs.readdir(destination).catch((err: unknown) => {
    throw toCommandError(err, 'reading the backup destination');
  });
  if (entries.length > 0) throw badValue(`Backup directory ${destination} is not empty`);
}

/** Sets a directory just made to 0700, through a descriptor opened without following a link. */
async function sealCreated(dir: string): Promise<void> {
  const handle = await fs.open(dir, NOFOLLOW_DIRECTORY);
  try {
    await setModeOf(handle, BACKUP_DIR_MODE);
  } finally {
    await handle.close();
  }
}

/**
 * Sets an existing empty destination to 0700 like one made, through a descriptor: a
 * backup directory that others may write in lets them add or swap its files. Followed
 * if it is a symbolic link: without a backup root, links are the operator's.
 */
async function sealExisting(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY).catch((err: unknown) => {
    throw toCommandError(err, 'opening the backup destination');
  });
  try {
    await setModeOf(handle, BACKUP_DIR_MODE);
  } catch (err) {
    throw toCommandError(err, 'setting the mode of the backup destination');
  } finally {
    await handle.close();
  }
}

async function createLastLevel(destination: string, dirs: DestinationFs): Promise<void> {
  const parent = path.dirname(destination);
  const parentStat = await statIfPresent(parent, 'checking the parent of the backup destination');
  if (parentStat === undefined) throw missingParent(destination, parent);
  if (!parentStat.isDirectory()) {
    throw badValue(`Backup destination ${destination} cannot be created: its parent ${parent} is not a directory`);
  }
  try {
    await dirs.mkdir(destination);
    await sealCreated(destination);
  } catch (err) {
    // The parent was removed or replaced since we looked at it.
    if (isMissing(err)) throw missingParent(destination, parent);
    if (errorCode(err) !== 'EEXIST') throw toCommandError(err, 'creating the backup destination');
    // Something else created it since our stat: it must still be an empty directory.
    // Missing again means a dangling symbolic link (mkdir does not follow it), which
    // we report as the EEXIST it is, as PSMDB's create_directory would.
    const raced = await statIfPresent(destination, 'checking the backup destination');
    if (raced === undefined) throw toCommandError(err, 'creating the backup destination');
    await checkEmptyDirectory(destination, raced);
    // Fsync'ed below all the same: an entry this fresh may not be on disk yet.
  }
  try {
    await dirs.fsyncDirectory(parent);
  } catch (err) {
    throw toCommandError(err, 'making the backup destination durable');
  }
}

/** What a destination must respect besides the dbpath: `serve --backup-root` and the proxy's own directories. */
export interface DestinationPolicy {
  /** Destinations must lie in this tree; undefined: any absolute path the proxy can write. */
  root?: BackupRoot | undefined;
  /** Directories a destination must neither be, nor be in, nor hold: the state dir, the staging root. */
  protectedDirs?: ReadonlyArray<{ readonly name: string; readonly dir: string }>;
}

/** Refuses a destination that overlaps the dbpath or a protected directory, by the path as written, then through symbolic links. */
async function checkOverlaps(destination: string, dbpath: string, policy: DestinationPolicy): Promise<void> {
  const source = path.resolve(dbpath);
  // /backups/x where /backups -> dbpath would otherwise put the backup inside the files it copies.
  const realDestination = await realPath(destination);
  if (pathsOverlap(destination, source) || pathsOverlap(realDestination, await realPath(source))) {
    throw badValue(`Backup destination ${destination} must be outside the dbpath ${source}`);
  }
  for (const { name, dir } of policy.protectedDirs ?? []) {
    const resolved = path.resolve(dir);
    if (pathsOverlap(destination, resolved) || pathsOverlap(realDestination, await realPath(resolved))) {
      throw badValue(`Backup destination ${destination} must be outside ${name} ${resolved}`);
    }
  }
}

export async function prepareDestination(requested: unknown, dbpath: string, dirs: DestinationFs = nodeDestinationFs, policy: DestinationPolicy = {}): Promise<string> {
  if (typeof requested !== 'string') throw badValue(`invalid destination directory: '${String(requested)}'`);
  if (requested === '') throw badValue("invalid destination directory: ''");
  if (!path.isAbsolute(requested)) throw badValue('Destination path must be absolute');
  const { root } = policy;
  if (root !== undefined) {
    const components = root.componentsOf(requested, 'Backup destination');
    const destination = root.pathOf(components);
    await checkOverlaps(destination, dbpath, policy);
    await prepareBeneath(root, components, requested, dirs);
    return destination;
  }
  const destination = path.resolve(requested);
  await checkOverlaps(destination, dbpath, policy);
  const existing = await statIfPresent(destination, 'checking the backup destination');
  if (existing === undefined) {
    await createLastLevel(destination, dirs);
  } else {
    await checkEmptyDirectory(destination, existing);
    await sealExisting(destination);
  }
  return destination;
}
