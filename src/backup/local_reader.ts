/** A backup directory on this machine as a BackupReader: backup_dir.ts, checker.ts and the copier. */
import path from 'node:path';
import { openBackup } from './backup_dir.js';
import { checkChecksums, compareListing } from './checker.js';
import { copyFiles } from './copier.js';
import type { BackupReader } from './backup_reader.js';

export function localBackupReader(dir: string): BackupReader {
  const directory = path.resolve(dir);
  return {
    where: directory,
    localDirectory: directory,
    open: () => openBackup(directory),
    compareListing: (backup) => compareListing(backup),
    checkChecksums: (backup, toHash, options) => checkChecksums(backup, toHash, options),
    copyFiles: async (files, target, options) => {
      await copyFiles(files, target, options);
    },
  };
}
