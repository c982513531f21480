/**
 * The files hotbackup itself writes at the top of a backup directory or of a restore's
 * target. A dbpath may hold them too: mongod started on a backup directory (which the
 * docs warn against) or on a copy of one, a restore that crashed after its target became
 * openable but before its marker was removed. No backup may copy them: in the new
 * backup they would speak of another one (a manifest listing other files, a marker or a
 * verification record of another backup), and a restore marker copied along would make
 * the restore of that backup collide with its own.
 */
import path from 'node:path';
import { isTempFileOf } from './durable.js';
import { MANIFEST_FILENAME } from './manifest.js';
import { INCOMPLETE_MARKER_FILENAME } from './backup_marker.js';
import { VERIFICATION_FILENAME } from './verification_record.js';
import { RESTORE_MARKER_FILENAME } from './restore_target.js';
import { HELD_BACK, incomingName } from './restore_fences.js';

/** Written durably, so possibly with a temp file of theirs left by a crash (durable.ts). */
const RECORDS = [MANIFEST_FILENAME, INCOMPLETE_MARKER_FILENAME, VERIFICATION_FILENAME, RESTORE_MARKER_FILENAME];

/** Whether `relativePath` (relative to a dbpath or a backup) names one of hotbackup's own files at its top. */
export function isHotbackupFile(relativePath: string): boolean {
  const normalized = path.normalize(relativePath);
  if (normalized.includes(path.sep)) return false;
  return RECORDS.some((name) => normalized === name || isTempFileOf(normalized, name)) || HELD_BACK.some((name) => normalized === incomingName(name));
}
