/**
 * Opens a backup directory for reading (verify, restore): its manifest, or why there is
 * none, in words an operator can act on (backup_refusal.ts decides, for a directory as
 * for an S3 prefix).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, readManifestFile, type Manifest } from './manifest.js';
import { isPurgeMarker, readIncompleteMarker } from './backup_marker.js';
import { BackupRefusal, refusalOfManifestError, refusalWithoutManifest, type RefusalState } from './backup_refusal.js';
import { errorCode, toCommandError } from './io_error.js';
import { CommandError, ErrorCodes } from '../errors.js';

export { BackupRefusal, type RefusalState } from './backup_refusal.js';

export interface OpenedBackup {
  /** Absolute; for a backup on S3, its s3:// URL. */
  directory: string;
  manifest: Manifest;
  /** XXH3-64 of the manifest file's bytes: a verification's record names the manifest it checked by it. */
  manifestChecksum: string;
  /** A marker left beside a valid manifest: its removal failed after the manifest was written. */
  markerLeft: boolean;
  /** That marker is purge's: a purge wrote it, then could not delete the manifest. */
  markerFromPurge: boolean;
}

/** The manifest of the backup in `dir` (absolute, or from the working directory), or a BackupRefusal saying why not. */
export async function openBackup(dir: string): Promise<OpenedBackup> {
  const directory = path.resolve(dir);
  const refuse = (state: RefusalState, code: number, message: string) => new BackupRefusal(state, directory, new CommandError(code, message));
  let stat;
  try {
    stat = await fs.stat(directory);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw refuse('absent', ErrorCodes.NonExistentPath, `${directory} does not exist`);
    throw new BackupRefusal('unreadable', directory, toCommandError(err, `reading ${directory}`));
  }
  if (!stat.isDirectory()) throw refuse('notABackup', ErrorCodes.UnsupportedFormat, `${directory} is not a directory, so it is not a hotbackup backup`);
  try {
    const { manifest, fileChecksum } = await readManifestFile(directory);
    const marker = await readIncompleteMarker(directory);
    return { directory, manifest, manifestChecksum: fileChecksum, markerLeft: marker.kind !== 'absent', markerFromPurge: isPurgeMarker(marker) };
  } catch (err) {
    if (!(err instanceof ManifestError)) throw new BackupRefusal('unreadable', directory, toCommandError(err, `reading ${directory}`));
    if (err.code === 'MISSING') {
      const names = await fs.readdir(directory).catch(() => [] as string[]);
      throw refusalWithoutManifest(directory, await readIncompleteMarker(directory), names);
    }
    throw refusalOfManifestError(directory, err, (cause) => toCommandError(cause, `reading the manifest of ${directory}`));
  }
}
