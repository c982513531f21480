/**
 * Checks a backupStart destination with Percona's error texts, and creates it
 * when absent. It must be absolute, outside the dbpath, and empty: a backup never
 * mixes with other files, and the finished directory is itself a usable dbpath.
 *
 * A created destination is made durable: the parent of every level that mkdir -p
 * created is fsync'ed, so a crash cannot lose the directory (and with it a backup
 * whose files and manifest were each fsync'ed).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { CommandError, ErrorCodes } from '../errors.js';
import { toCommandError } from './io_error.js';
import { fsyncDirectory } from './durable.js';

/** The directory operations prepareDestination needs; tests wrap them to watch them. */
export interface DestinationFs {
  /** mkdir -p; resolves to the first directory it created, as fs.mkdir({recursive}) does. */
  mkdirs(dir: string): Promise<string | undefined>;
  fsyncDirectory(dir: string): Promise<void>;
}

export const nodeDestinationFs: DestinationFs = {
  mkdirs: (dir) => fs.mkdir(dir, { recursive: true }),
  fsyncDirectory,
};

function badValue(message: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, message);
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** The directories from `first` down to `last` (both created by one mkdir -p). */
function createdLevels(first: string, last: string): string[] {
  const levels = [last];
  for (let dir = last; dir !== first && path.dirname(dir) !== dir; ) {
    dir = path.dirname(dir);
    levels.unshift(dir);
  }
  return levels;
}

export async function prepareDestination(requested: unknown, dbpath: string, dirs: DestinationFs = nodeDestinationFs): Promise<string> {
  if (typeof requested !== 'string') throw badValue(`invalid destination directory: '${String(requested)}'`);
  if (requested === '') throw badValue("invalid destination directory: ''");
  if (!path.isAbsolute(requested)) throw badValue('Destination path must be absolute');
  const destination = path.resolve(requested);
  const source = path.resolve(dbpath);
  if (isInside(destination, source) || isInside(source, destination)) {
    throw badValue(`Backup destination ${destination} must be outside the dbpath ${source}`);
  }
  let stat;
  try {
    stat = await fs.stat(destination);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw toCommandError(err, 'checking the backup destination');
    try {
      const first = await dirs.mkdirs(destination);
      // Top-down: each new entry is durable in a parent that is itself durable.
      for (const level of first === undefined ? [] : createdLevels(first, destination)) {
        await dirs.fsyncDirectory(path.dirname(level));
      }
    } catch (mkdirErr) {
      throw toCommandError(mkdirErr, 'creating the backup destination');
    }
    return destination;
  }
  if (!stat.isDirectory()) throw badValue(`Backup destination ${destination} is not a directory`);
  const entries = await fs.readdir(destination).catch((err: unknown) => {
    throw toCommandError(err, 'reading the backup destination');
  });
  if (entries.length > 0) throw badValue(`Backup directory ${destination} is not empty`);
  return destination;
}
