/**
 * Opens a backup directory for reading (verify, restore): its manifest, or why there is
 * none, in words an operator can act on. A backup is complete exactly when its manifest
 * exists and is valid (manifest.ts); without one, the marker the engine keeps while a
 * backup is unfinished (backup_marker.ts) says whether it is still being written, or was
 * aborted, failed or interrupted; with neither, the directory is no backup of ours.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, MANIFEST_FILENAME, readManifestFile, type Manifest } from './manifest.js';
import { INCOMPLETE_MARKER_FILENAME, readIncompleteMarker, type BackupMarker } from './backup_marker.js';
import { RESTORE_MARKER_FILENAME } from './restore_target.js';
import { processState } from './process_identity.js';
import { errorCode, toCommandError } from './io_error.js';
import { CommandError, ErrorCodes } from '../errors.js';

/**
 * Why a directory cannot be read as a backup. `state` is what verify reports:
 * - running: a backup is still being written into it;
 * - aborted, failed, interrupted: the backup ended without its manifest, its marker says how;
 * - incomplete: no manifest, and a marker that cannot be read;
 * - damaged: a manifest that is not valid (not JSON, or it fails its schema);
 * - notABackup: no manifest and no marker, or not a directory at all;
 * - absent: nothing at that path;
 * - unsupported: a manifest of another version;
 * - unreadable: an I/O error (permissions, a failing disk) kept us from looking.
 */
export type RefusalState = 'running' | 'aborted' | 'failed' | 'interrupted' | 'incomplete' | 'damaged' | 'notABackup' | 'absent' | 'unsupported' | 'unreadable';

export class BackupRefusal extends Error {
  constructor(
    readonly state: RefusalState,
    readonly directory: string,
    /** The mongod-style error a client gets (code from src/errors.ts). */
    readonly error: CommandError,
    /** The unfinished backup, when its marker said which. */
    readonly marker?: BackupMarker,
  ) {
    super(error.message);
    this.name = 'BackupRefusal';
  }
}

export interface OpenedBackup {
  /** Absolute. */
  directory: string;
  manifest: Manifest;
  /** XXH3-64 of the manifest file's bytes: a verification's record names the manifest it checked by it. */
  manifestChecksum: string;
  /** A marker left beside a valid manifest: its removal failed after the manifest was written. */
  markerLeft: boolean;
}

const NO_TRUST = 'It has no manifest, so none of its files can be trusted: remove it and take a new backup.';

/** The manifest of the backup in `dir` (absolute, or from the working directory), or a BackupRefusal saying why not. */
export async function openBackup(dir: string): Promise<OpenedBackup> {
  const directory = path.resolve(dir);
  const refuse = (state: RefusalState, code: number, message: string, marker?: BackupMarker) =>
    new BackupRefusal(state, directory, new CommandError(code, message), marker);
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
    return { directory, manifest, manifestChecksum: fileChecksum, markerLeft: marker.kind !== 'absent' };
  } catch (err) {
    if (!(err instanceof ManifestError)) throw new BackupRefusal('unreadable', directory, toCommandError(err, `reading ${directory}`));
    switch (err.code) {
      case 'MISSING':
        throw await withoutManifest(directory);
      case 'UNREADABLE':
        throw new BackupRefusal('unreadable', directory, toCommandError(err.cause, `reading the manifest of ${directory}`));
      case 'UNSUPPORTED_VERSION':
        throw refuse('unsupported', ErrorCodes.UnsupportedFormat, `${err.message}: use the hotbackup version that wrote it`);
      case 'INVALID':
        throw refuse('damaged', ErrorCodes.DataCorruptionDetected, `${directory} is damaged: ${err.message}`);
    }
  }
}

/** Why a directory has no manifest: its marker's word, or why it is no backup at all. */
async function withoutManifest(directory: string): Promise<BackupRefusal> {
  const refuse = (state: RefusalState, code: number, message: string, marker?: BackupMarker) =>
    new BackupRefusal(state, directory, new CommandError(code, message), marker);
  const read = await readIncompleteMarker(directory);
  if (read.kind === 'invalid') {
    return refuse('incomplete', ErrorCodes.OperationIncomplete, `${directory} is an incomplete backup: its ${INCOMPLETE_MARKER_FILENAME} ${read.reason}. ${NO_TRUST}`);
  }
  if (read.kind === 'present') return fromMarker(directory, read.marker);
  const entries = await fs.readdir(directory).catch(() => [] as string[]);
  let what: string;
  if (entries.includes(RESTORE_MARKER_FILENAME)) {
    what = `it is the target of a restore that did not finish (${RESTORE_MARKER_FILENAME} says why), not a backup`;
  } else if (entries.length === 0) {
    what = 'it is empty';
  } else if (entries.some((name) => name === 'WiredTiger' || name.endsWith('.wt'))) {
    what = `it has WiredTiger files but neither ${MANIFEST_FILENAME} nor ${INCOMPLETE_MARKER_FILENAME}: a dbpath, a copy made by another tool, or a backup left unfinished by a hotbackup older than that marker`;
  } else {
    what = `it has neither ${MANIFEST_FILENAME} nor ${INCOMPLETE_MARKER_FILENAME}`;
  }
  return refuse('notABackup', ErrorCodes.UnsupportedFormat, `${directory} is not a hotbackup backup: ${what}`);
}

function fromMarker(directory: string, marker: BackupMarker): BackupRefusal {
  const refuse = (state: RefusalState, code: number, message: string) => new BackupRefusal(state, directory, new CommandError(code, message), marker);
  const backup = `backup ${marker.backupId} (started ${marker.startedAt})`;
  // The engine's errmsg of an unexpected error starts "backup failed: ": said once is enough.
  const why = marker.error === undefined ? '' : `: ${marker.error.errmsg.replace(/^backup failed: /, '')}`;
  const writer = `pid ${marker.writer.pid} on ${marker.writer.hostname}`;
  switch (marker.state) {
    case 'aborted':
      return refuse('aborted', ErrorCodes.OperationIncomplete, `${directory} is not a complete backup: ${backup} was aborted (killOp or backupAbort) at ${marker.finishedAt ?? 'an unknown time'}. ${NO_TRUST}`);
    case 'failed':
      return refuse('failed', ErrorCodes.OperationIncomplete, `${directory} is not a complete backup: ${backup} failed${why}. ${NO_TRUST}`);
    case 'interrupted':
      return refuse('interrupted', ErrorCodes.OperationIncomplete, `${directory} is not a complete backup: ${backup} was interrupted${why}. ${NO_TRUST}`);
    case 'running':
      switch (processState(marker.writer)) {
        case 'alive':
          return refuse('running', ErrorCodes.ConflictingOperationInProgress, `${directory} is a backup still being written: ${backup}, by the proxy (${writer}). Verify it once backupStatus shows it finished.`);
        case 'gone':
          return refuse(
            'interrupted',
            ErrorCodes.OperationIncomplete,
            `${directory} is not a complete backup: ${backup} was interrupted: the proxy writing it (${writer}) is gone (killed, crashed, or the machine restarted) and never finished it. ${NO_TRUST}`,
          );
        case 'unknown':
          return refuse(
            'incomplete',
            ErrorCodes.OperationIncomplete,
            `${directory} is an incomplete backup: ${backup} is being written by ${writer}, which cannot be checked from this host; if no backup runs there any more, it was interrupted. ${NO_TRUST}`,
          );
      }
  }
}
