/**
 * `$backupCursor` names files by mongod's own dbpath. A sidecar may see that directory
 * at another path (a volume mounted elsewhere), so the listed files are rebased onto
 * the dbpath configured here, after checking ONCE that the two paths are the same
 * directory. Copying another directory's files would give a backup of the wrong data,
 * or fail half-way with ENOENT.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { sourceFile } from './files.js';
import type { SourceFile } from '../copy_types.js';
import { CommandError, ErrorCodes } from '../../errors.js';

/** One file as the cursor lists it. */
export interface ListedFile {
  filename: string;
  fileSize: number;
}

/**
 * WiredTiger writes this when a backup cursor opens and removes it when it closes:
 * a file by this name, of the listed size, proves that the directory holds the
 * backup that is open right now.
 */
const BACKUP_METADATA = 'WiredTiger.backup';

/** Listed files as the copier's SourceFiles, read from under `localDbpath`. */
export function rebaseListedFiles(mongodDbpath: string, localDbpath: string, listed: readonly ListedFile[]): SourceFile[] {
  return listed.map((file) => {
    // Validates that mongod listed a file inside its own dbpath.
    const { relativePath } = sourceFile(mongodDbpath, file.filename, file.fileSize);
    return sourceFile(localDbpath, path.join(localDbpath, relativePath), file.fileSize);
  });
}

async function statOrUndefined(p: string): Promise<{ dev: number; ino: number; size: number } | undefined> {
  try {
    return await fs.stat(p);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Resolves when `localDbpath` is mongod's `mongodDbpath`, else rejects with CannotBackup
 * naming both. First by device and inode, when mongod's path is visible here (a bind
 * mount keeps both). Otherwise (the path is hidden, or it is some other directory, as
 * in a sidecar image that has its own empty /data/db) by content: the open backup's
 * WiredTiger.backup is there with its listed size, and every listed file is there and
 * at least as long as listed.
 */
export async function checkSameDbpath(mongodDbpath: string, localDbpath: string, files: readonly SourceFile[]): Promise<void> {
  const local = await statOrUndefined(localDbpath);
  if (local === undefined) throw mismatch(mongodDbpath, localDbpath, `${localDbpath} does not exist here`);
  const remote = await statOrUndefined(mongodDbpath);
  if (remote !== undefined && remote.dev === local.dev && remote.ino === local.ino) return;

  const marker = files.find((f) => f.relativePath === BACKUP_METADATA);
  if (marker === undefined) {
    throw mismatch(mongodDbpath, localDbpath, `mongod listed no ${BACKUP_METADATA} to recognize its dbpath by, and ${mongodDbpath} is not visible here`);
  }
  // The marker first: its absence is the plainest reason to give.
  for (const file of [marker, ...files.filter((f) => f !== marker)]) {
    const seen = await statOrUndefined(file.path);
    if (seen === undefined && file === marker) {
      throw mismatch(mongodDbpath, localDbpath, `there is no ${file.path}, which the open backup cursor keeps in mongod's dbpath`);
    }
    if (seen === undefined) throw mismatch(mongodDbpath, localDbpath, `${file.path} does not exist`);
    const sizeMatches = file === marker ? seen.size === file.size : seen.size >= file.size;
    if (!sizeMatches) {
      throw mismatch(mongodDbpath, localDbpath, `${file.path} is ${seen.size} bytes, but mongod listed ${file.relativePath} at ${file.size}`);
    }
  }
}

function mismatch(mongodDbpath: string, localDbpath: string, why: string): CommandError {
  return new CommandError(
    ErrorCodes.CannotBackup,
    `The proxy's dbpath ${localDbpath} is not mongod's dbpath ${mongodDbpath}: ${why}. ` +
      `Start the proxy with --dbpath set to where mongod's dbpath is mounted on this host.`,
  );
}
