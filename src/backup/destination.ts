/**
 * Checks a backupStart destination with Percona's error texts, and creates it
 * when absent. It must be absolute, outside the dbpath, and empty: a backup never
 * mixes with other files, and the finished directory is itself a usable dbpath.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MongoServerError, ErrorCodes } from '../errors.js';
import { toServerError } from './io_error.js';

function badValue(message: string): MongoServerError {
  return new MongoServerError(ErrorCodes.BadValue, message);
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

export async function prepareDestination(requested: unknown, dbpath: string): Promise<string> {
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
    if ((err as { code?: string }).code !== 'ENOENT') throw toServerError(err, 'checking the backup destination');
    try {
      await fs.mkdir(destination, { recursive: true });
    } catch (mkdirErr) {
      throw toServerError(mkdirErr, 'creating the backup destination');
    }
    return destination;
  }
  if (!stat.isDirectory()) throw badValue(`Backup destination ${destination} is not a directory`);
  const entries = await fs.readdir(destination).catch((err: unknown) => {
    throw toServerError(err, 'reading the backup destination');
  });
  if (entries.length > 0) throw badValue(`Backup directory ${destination} is not empty`);
  return destination;
}
