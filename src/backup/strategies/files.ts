/** Turning a strategy's absolute file names into the copier's relative ones. */
import path from 'node:path';
import fs from 'node:fs/promises';
import type { SourceFile } from '../types.js';
import { MongoServerError, ErrorCodes } from '../../errors.js';

/** Relative to the dbpath, so that the backup directory is itself a usable dbpath. */
export function sourceFile(dbpath: string, absolute: string, size: number): SourceFile {
  const relativePath = path.relative(dbpath, absolute);
  if (relativePath === '' || relativePath.startsWith('..') || path.isAbsolute(relativePath)) {
    throw new MongoServerError(ErrorCodes.CannotBackup, `mongod listed ${absolute}, which is outside the dbpath ${dbpath}`);
  }
  return { path: absolute, relativePath, size };
}

/** Files mongod holds open for its own exclusive use, never part of a backup. */
const NEVER_COPIED = new Set(['mongod.lock', 'WiredTiger.lock']);
/** WiredTiger's preallocated, not-yet-used log files (100 MB of zeros each); it makes new ones. */
const PREALLOCATED_LOG = /^WiredTigerPreplog\.\d+$/;

/** Every regular file under the dbpath, with its size now (used while writes are blocked). */
export async function listDbpath(dbpath: string): Promise<SourceFile[]> {
  const entries = await fs.readdir(dbpath, { recursive: true, withFileTypes: true });
  const files: SourceFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || NEVER_COPIED.has(entry.name) || PREALLOCATED_LOG.test(entry.name)) continue;
    const absolute = path.join(entry.parentPath, entry.name);
    const { size } = await fs.stat(absolute);
    files.push(sourceFile(dbpath, absolute, size));
  }
  return files.sort((a, b) => a.relativePath.localeCompare(b.relativePath));
}
