/**
 * The restorer (restic's internal/restorer; RocksDB's RestoreDBFromBackup, which
 * re-checks every checksum as it copies): a backup directory, or a backup on S3 (read
 * through a BackupReader: backup_reader.ts), into a dbpath, always as
 * a copy (never the backup opened in place: mongod would write into it, and it would
 * no longer be a backup).
 *
 * 1. The backup must have a valid manifest (backup_dir.ts: verify's refusal otherwise),
 *    and every file it lists, at its listed size: a missing or resized file refuses the
 *    restore before anything is written. Files the manifest does not list are not copied.
 * 2. The target is checked (restore_target.ts). One that holds anything (--force) has
 *    the backup checked first, every checksum (checker.ts), unless `precheck: false`:
 *    a damaged backup must not cost the operator what the target held.
 * 3. The target is created, or marked incomplete, then fenced with placeholders mongod
 *    and WiredTiger refuse (restore_fences.ts); only then does --force delete what it held.
 * 4. Every file is copied on the copy threads with its manifest checksum as the expected
 *    one: the checksum the copy computes of the bytes it writes is compared as each file
 *    ends, and the first mismatch stops every thread (copy_pool.ts). The files through
 *    which mongod and WiredTiger enter a dbpath go last, under other names.
 * 5. They are put in place and the marker removed, each durably (completeRestore).
 * A restore that stops records why in the marker, and says how far it got: the
 * placeholders keep mongod off the target until a restore into it finishes.
 */
import path from 'node:path';
import { BackupRefusal, type OpenedBackup } from './backup_dir.js';
import type { Problem, VerifyProgress } from './checker.js';
import type { Limiter } from './copy_pool.js';
import type { BackupReader } from './backup_reader.js';
import { localBackupReader } from './local_reader.js';
import type { SourceFile } from './copy_types.js';
import { summarize } from './verify_verdict.js';
import { checkTarget, clearTarget, createTarget, markRestoreFailed, RESTORE_MARKER_FILENAME, RESTORED_DIR_MODE, TargetRefusal, writeRestoreMarker } from './restore_target.js';
import { completeRestore, describeStop, FENCES, fenceTarget, HELD_BACK, incomingName, newTargetProgress, onlyMarkerLeft } from './restore_fences.js';
import { toCommandError } from './io_error.js';
import { formatBytes } from './units.js';
import { CommandError, ErrorCodes } from '../errors.js';

/**
 * The mode of every restored file, whatever it had in the backup: mongod opens its files
 * read-write, and an incremental backup's files taken from its base are 0400 there
 * (file_reuse.ts). Only the owner: the files hold every byte of the database.
 */
export const RESTORED_FILE_MODE = 0o600;

export interface RestoreOptions {
  /** The backup directory. */
  backup: string;
  /** How the backup is read; default a directory's reader of `backup` (an S3 prefix's: src/s3/s3_reader.ts). */
  reader?: BackupReader;
  /** The dbpath to write. */
  target: string;
  /** Delete what the target holds first, instead of refusing a non-empty one. */
  force?: boolean;
  /**
   * Before --force deletes anything, read the whole backup and check every checksum
   * (then the copy reads it again). Default true; false deletes first and relies on the
   * copy's own checks, which stop the restore at the first bad file, the target lost.
   */
  precheck?: boolean;
  /** Told as each pass over the backup begins: the check (--force), then the copy. */
  onPhase?: (phase: 'checking' | 'restoring') => void;
  /** The throttle the reads draw from; `new TokenBucket(0)` is unlimited. */
  limiter: Limiter;
  /** Copy threads. Default: the copier's. */
  concurrency?: number;
  progress?: VerifyProgress;
  signal?: AbortSignal;
}

export interface RestoreResult {
  backup: OpenedBackup;
  target: string;
  files: number;
  bytes: number;
  /** Entries of the target deleted first (--force). */
  removed: string[];
  seconds: number;
  notes: string[];
}

/** A restore that stopped after it began writing: the target is marked incomplete (the CLI's exit code 1). */
export class RestoreStopped extends Error {
  constructor(
    message: string,
    readonly target: string,
    options: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'RestoreStopped';
  }
}

/**
 * Restores `options.backup` into `options.target`. Rejects with a BackupRefusal or a
 * TargetRefusal before anything is written, or with RestoreStopped once it has begun.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const reader = options.reader ?? localBackupReader(options.backup);
  const backup = await reader.open(options.signal);
  const checked = await checkTarget(options.target, reader.localDirectory, options.force === true).catch((err: unknown) => {
    throw err instanceof TargetRefusal ? err : new TargetRefusal(`cannot restore into ${options.target}: ${(err as Error).message}`);
  });
  const { target } = checked;
  const { problems, toHash } = await reader.compareListing(backup, options.signal).catch((err: unknown) => {
    throw err instanceof BackupRefusal ? err : new BackupRefusal('unreadable', backup.directory, toCommandError(err, `reading ${backup.directory}`));
  });
  const damaged = (found: Problem[], kept: string) =>
    new BackupRefusal('damaged', backup.directory, new CommandError(ErrorCodes.DataCorruptionDetected, `${backup.directory} is damaged: ${summarize(found)}. ${kept}; restore another backup.`));
  const blocking = problems.filter((p) => p.problem !== 'extra');
  if (blocking.length > 0) throw damaged(blocking, `Nothing was written to ${target}`);
  const notes = problems.map((p) => `${p.file} was not restored: ${p.detail}`);
  const copyOptions = {
    limiter: options.limiter,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.progress === undefined ? {} : { progress: options.progress }),
    signal: options.signal,
  };
  if (checked.entries.length > 0 && options.precheck !== false) {
    options.onPhase?.('checking');
    options.progress?.begin(toHash.map(({ source }) => source));
    const { problems: bad } = await reader.checkChecksums(backup, toHash, copyOptions);
    if (bad.length > 0) throw damaged(bad, `Nothing was deleted from ${target}`);
  }
  options.signal?.throwIfAborted();

  // The first write: until it is done, nothing of the target has changed.
  const marker = await (async () => {
    await createTarget(checked);
    return writeRestoreMarker(target, { directory: backup.directory, backupId: backup.manifest.backupId });
  })().catch((err: unknown) => {
    throw new TargetRefusal(`cannot prepare ${target} for the restore: ${(err as Error).message}`);
  });
  // Never a `reuse`: every file is copied into a new inode, also those an incremental backup
  // holds as hard links shared with other backups, which mongod's writes would otherwise reach.
  const files: SourceFile[] = toHash.map(({ source, listed }) => ({ ...source, expectedChecksum: listed.checksum }));
  const heldBack = files.filter((f) => HELD_BACK.includes(f.relativePath));
  const rest = files.filter((f) => !heldBack.includes(f));
  const progress = newTargetProgress();
  try {
    await fenceTarget(target, marker, progress);
    await clearTarget(checked, [RESTORE_MARKER_FILENAME, ...FENCES], options.signal);
    options.onPhase?.('restoring');
    options.progress?.begin(files);
    const copy = (list: SourceFile[]) => reader.copyFiles(list, target, { ...copyOptions, fileMode: RESTORED_FILE_MODE, directoryMode: RESTORED_DIR_MODE });
    await copy(rest);
    // Last, under other names: what makes the target a database goes in only once everything else is in and checked.
    if (heldBack.length > 0) await copy(heldBack.map((f) => ({ ...f, relativePath: incomingName(f.relativePath) })));
    await completeRestore(target, heldBack.map((f) => f.relativePath), progress);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // Only the marker's removal failed: it is to go, not to be rewritten.
    const recorded = onlyMarkerLeft(progress)
      ? ''
      : await markRestoreFailed(target, marker, why).then(
          () => '',
          (markErr: unknown) => ` (Recording that in ${RESTORE_MARKER_FILENAME} failed too: ${(markErr as Error).message}.)`,
        );
    throw new RestoreStopped(`restore stopped: ${why}. ${describeStop(target, progress)}${recorded}`, target, { cause: err });
  }
  return {
    backup,
    target,
    files: files.length,
    bytes: files.reduce((sum, f) => sum + f.size, 0),
    removed: checked.entries,
    seconds: (performance.now() - started) / 1000,
    notes,
  };
}

/** '12 files, 1.2 GiB': for the CLI's last line. */
export function describeRestore(result: RestoreResult): string {
  return `${result.files} files, ${formatBytes(result.bytes)}, from backup ${result.backup.manifest.backupId} (${path.basename(result.backup.directory)}, taken ${result.backup.manifest.finishedAt})`;
}
