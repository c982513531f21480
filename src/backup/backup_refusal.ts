/**
 * Why a backup cannot be read (verify, restore), decided once for every place a backup
 * lives: a directory (backup_dir.ts) or an S3 prefix (src/s3/s3_backup_open.ts). A backup
 * is complete exactly when its manifest exists and is valid (manifest.ts); without one,
 * the marker the engine keeps while a backup is unfinished (backup_marker.ts) says
 * whether it is still being written, or was aborted, failed or interrupted; with neither,
 * the place is no backup of ours. Only how the manifest, the marker and the names beside
 * them are read differs by place; the verdict and its words are these.
 */
import { ManifestError, MANIFEST_FILENAME } from './manifest.js';
import { INCOMPLETE_MARKER_FILENAME, type BackupMarker, type MarkerRead } from './backup_marker.js';
import { processState } from './process_identity.js';
import { RESTORE_MARKER_FILENAME } from './restore_target.js';
import { CommandError, ErrorCodes } from '../errors.js';

/**
 * Why a backup cannot be read. `state` is what verify reports:
 * - running: a backup is still being written into it;
 * - aborted, failed, interrupted: the backup ended without its manifest, its marker says how;
 * - incomplete: no manifest, and a marker that cannot be read;
 * - damaged: a manifest that is not valid (not JSON, or it fails its schema);
 * - notABackup: no manifest and no marker, or not a directory at all;
 * - absent: nothing at that path (no object under that prefix, or no such bucket);
 * - unsupported: a manifest of another version;
 * - unreadable: an I/O error (permissions, a failing disk, S3 refusing) kept us from looking.
 */
export type RefusalState = 'running' | 'aborted' | 'failed' | 'interrupted' | 'incomplete' | 'damaged' | 'notABackup' | 'absent' | 'unsupported' | 'unreadable';

export class BackupRefusal extends Error {
  constructor(
    readonly state: RefusalState,
    /** The directory (absolute) or the s3:// URL. */
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

const NO_TRUST = 'It has no manifest, so none of its files can be trusted: remove it and take a new backup.';

function refuse(where: string, state: RefusalState, code: number, message: string, marker?: BackupMarker): BackupRefusal {
  return new BackupRefusal(state, where, new CommandError(code, message), marker);
}

/**
 * The refusal for a manifest that could not be used, but for MISSING (refusalWithoutManifest):
 * `unreadable` turns the cause of an UNREADABLE one into the place's own I/O error.
 */
export function refusalOfManifestError(where: string, err: ManifestError, unreadable: (cause: unknown) => CommandError): BackupRefusal {
  switch (err.code) {
    case 'MISSING':
    case 'UNREADABLE':
      return new BackupRefusal('unreadable', where, unreadable(err.cause ?? err));
    case 'UNSUPPORTED_VERSION':
      return refuse(where, 'unsupported', ErrorCodes.UnsupportedFormat, `${err.message}: use the hotbackup version that wrote it`);
    case 'INVALID':
      return refuse(where, 'damaged', ErrorCodes.DataCorruptionDetected, `${where} is damaged: ${err.message}`);
  }
}

/**
 * Why a place without a manifest is no backup to read: its marker's word, or, without a
 * marker, what `names` (the entries at its top) say it is.
 */
export function refusalWithoutManifest(where: string, marker: MarkerRead, names: readonly string[]): BackupRefusal {
  if (marker.kind === 'invalid') {
    return refuse(where, 'incomplete', ErrorCodes.OperationIncomplete, `${where} is an incomplete backup: its ${INCOMPLETE_MARKER_FILENAME} ${marker.reason}. ${NO_TRUST}`);
  }
  if (marker.kind === 'present') return refusalOfMarker(where, marker.marker);
  let what: string;
  if (names.includes(RESTORE_MARKER_FILENAME)) {
    what = `it is the target of a restore that did not finish (${RESTORE_MARKER_FILENAME} says why), not a backup`;
  } else if (names.length === 0) {
    what = 'it is empty';
  } else if (names.some((name) => name === 'WiredTiger' || name.endsWith('.wt'))) {
    what = `it has WiredTiger files but neither ${MANIFEST_FILENAME} nor ${INCOMPLETE_MARKER_FILENAME}: a dbpath, a copy made by another tool, or a backup left unfinished by a hotbackup older than that marker`;
  } else {
    what = `it has neither ${MANIFEST_FILENAME} nor ${INCOMPLETE_MARKER_FILENAME}`;
  }
  return refuse(where, 'notABackup', ErrorCodes.UnsupportedFormat, `${where} is not a hotbackup backup: ${what}`);
}

function refusalOfMarker(where: string, marker: BackupMarker): BackupRefusal {
  const backup = `backup ${marker.backupId} (started ${marker.startedAt})`;
  // The engine's errmsg of an unexpected error starts "backup failed: ": said once is enough.
  const why = marker.error === undefined ? '' : `: ${marker.error.errmsg.replace(/^backup failed: /, '')}`;
  const writer = `pid ${marker.writer.pid} on ${marker.writer.hostname}`;
  const incomplete = (state: RefusalState, message: string) => refuse(where, state, ErrorCodes.OperationIncomplete, message, marker);
  switch (marker.state) {
    case 'aborted':
      return incomplete('aborted', `${where} is not a complete backup: ${backup} was aborted (killOp or backupAbort) at ${marker.finishedAt ?? 'an unknown time'}. ${NO_TRUST}`);
    case 'failed':
      return incomplete('failed', `${where} is not a complete backup: ${backup} failed${why}. ${NO_TRUST}`);
    case 'interrupted':
      return incomplete('interrupted', `${where} is not a complete backup: ${backup} was interrupted${why}. ${NO_TRUST}`);
    case 'running':
      switch (processState(marker.writer)) {
        case 'alive':
          return refuse(where, 'running', ErrorCodes.ConflictingOperationInProgress, `${where} is a backup still being written: ${backup}, by the proxy (${writer}). Verify it once backupStatus shows it finished.`, marker);
        case 'gone':
          return incomplete(
            'interrupted',
            `${where} is not a complete backup: ${backup} was interrupted: the proxy writing it (${writer}) is gone (killed, crashed, or the machine restarted) and never finished it. ${NO_TRUST}`,
          );
        case 'unknown':
          return incomplete(
            'incomplete',
            `${where} is an incomplete backup: ${backup} is being written by ${writer}, which cannot be checked from this host; if no backup runs there any more, it was interrupted. ${NO_TRUST}`,
          );
      }
  }
}
