/**
 * What keeps mongod off a restore's target until the restore has finished: placeholders
 * for the files through which mongod and WiredTiger enter a dbpath, written before
 * anything else of the backup, and the real files held back until every other file is
 * in and matched its checksum.
 *
 * The placeholders, each a short text saying what the directory is:
 * - `storage.bson`: BSON naming the storage engine `hotbackup-restore-incomplete`.
 *   mongod reads this file before it opens any storage engine, --repair included
 *   (initializeStorageEngine in src/mongo/db/storage/storage_engine_init.cpp:
 *   StorageEngineMetadata::getStorageEngineForPath), and refuses an engine it does not
 *   have: 18656 "Cannot start server with an unknown storage engine", or, with
 *   --storageEngine given, 28662 "Detected data files in <dbpath> created by the
 *   '<engine>' storage engine, but the specified storage engine was 'wiredTiger'".
 * - `WiredTiger.turtle`: holds neither `WiredTiger version` nor `file:WiredTiger.wt`,
 *   which WiredTiger reads at every open (__wt_turtle_read, __wt_turtle_validate_version
 *   in src/meta/meta_turtle.c), so wiredtiger_open fails. Not enough alone: opened with
 *   `salvage=true` (what mongod --repair does), WiredTiger deletes a turtle file it
 *   cannot read and writes a default one (__wt_turtle_init), then salvages WiredTiger.wt.
 * - `WiredTiger.wt`: one allocation unit (4 KB) of text, so not a WiredTiger file.
 *   WiredTiger reads a file's first allocation unit as its descriptor block and refuses
 *   one whose magic number and checksum do not match, when salvaging too ("for salvage
 *   we don't overwrite files without some reason to believe they are WiredTiger files",
 *   __desc_read in src/block/block_open.c); a shorter file it would take for a missing
 *   one. Leaving WiredTiger.wt out would not do: under salvage it then finds no
 *   metadata file; without a turtle file it creates a new, empty database.
 *
 * The files held back (copied last under incomingName, renamed into place by
 * completeRestore): WiredTiger.backup ($backupCursor backups: at open, WiredTiger
 * rebuilds its metadata from it even beside a turtle file, "Both WiredTiger.turtle and
 * WiredTiger.backup exist; recreating metadata from backup", and creates empty stand-ins
 * for the files it lists that are missing, __metadata_load_bulk), WiredTiger.turtle,
 * WiredTiger.wt, storage.bson.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { serialize } from 'bson';
import { fsyncDirectory, writeFileDurably } from './durable.js';
import { RESTORE_MARKER_FILENAME, type RestoreMarker } from './restore_target.js';
import { failPointEnabled } from '../failpoints.js';

/** WiredTiger's metadata of its metadata (WT_METADATA_TURTLE). */
export const TURTLE = 'WiredTiger.turtle';
/** WiredTiger's metadata file (WT_METAFILE). */
export const WT_METAFILE = 'WiredTiger.wt';
/** WiredTiger's hot backup metadata (WT_METADATA_BACKUP): a $backupCursor backup's way into its files. */
export const WT_BACKUP = 'WiredTiger.backup';
/** mongod's record of the storage engine of a dbpath (storage_engine_metadata.cpp). */
export const STORAGE_BSON = 'storage.bson';
/** The placeholders, in the order they are written. */
export const FENCES: readonly string[] = [TURTLE, WT_METAFILE, STORAGE_BSON];
/** Copied last, under incomingName, and put in place by completeRestore. */
export const HELD_BACK: readonly string[] = [WT_BACKUP, TURTLE, WT_METAFILE, STORAGE_BSON];
/** The storage engine the storage.bson placeholder names: what mongod's refusal shows. */
export const PLACEHOLDER_ENGINE = 'hotbackup-restore-incomplete';
/** WiredTiger's allocation unit for its metadata file (the default, which mongod keeps). */
const WT_ALLOCATION_SIZE = 4096;

/**
 * Where a held-back file is copied before it is renamed into place: not `WiredTiger.turtle.set`
 * or `WiredTiger.backup.tmp`, which WiredTiger would act on itself.
 */
export function incomingName(name: string): string {
  return `hotbackup-restore.${name}`;
}

/** How far a restore got with its target: what its stop message says (describeStop). */
export interface TargetProgress {
  /** The placeholders written so far, of FENCES. */
  fenced: string[];
  /** The steps of completeRestore, once it has begun; each `done` as it is. */
  steps: Array<{ what: string; done: boolean }> | undefined;
}

export function newTargetProgress(): TargetProgress {
  return { fenced: [], steps: undefined };
}

function explanation(marker: RestoreMarker): string {
  return `A restore is writing this directory from the backup ${marker.backup}, or stopped before it was done; see ${RESTORE_MARKER_FILENAME}.`;
}

function placeholderOf(name: string, marker: RestoreMarker): Buffer {
  switch (name) {
    case TURTLE:
      return Buffer.from(['hotbackup restore: this is not a WiredTiger turtle file.', explanation(marker), 'Neither WiredTiger nor mongod can open the directory until `hotbackup restore` finishes.', ''].join('\n'));
    case WT_METAFILE: {
      const text = Buffer.from(['hotbackup restore: this is not WiredTiger\'s metadata file.', explanation(marker), ''].join('\n'));
      return Buffer.concat([text, Buffer.alloc(Math.max(0, WT_ALLOCATION_SIZE - text.length), '\n')]);
    }
    case STORAGE_BSON:
      return Buffer.from(serialize({ storage: { engine: PLACEHOLDER_ENGINE, options: {} }, hotbackup: explanation(marker) }));
    default:
      throw new Error(`no placeholder for ${name}`);
  }
}

/**
 * Writes the placeholders, durably, each over its namesake if the target (under --force)
 * still has one: from the turtle's on, a plain open of what the target held fails; from
 * WiredTiger.wt's on, a salvage too; from storage.bson's on, mongod does not try.
 */
export async function fenceTarget(target: string, marker: RestoreMarker, progress: TargetProgress): Promise<void> {
  for (const name of FENCES) {
    await writeFileDurably(path.join(target, name), placeholderOf(name, marker));
    progress.fenced.push(name);
  }
}

/**
 * The restore's last step, once every file is in and matched its checksum: each held-back
 * file renamed into place, each placeholder without a file to replace it removed, then the
 * marker; each step durable before the next. The order keeps a crash anywhere from
 * leaving a target that opens half-made:
 * 1. WiredTiger.backup ($backupCursor backups). From here WiredTiger opens the target
 *    (whole, every file in), rebuilding its metadata from it: it deletes WiredTiger.wt
 *    and the turtle file, placeholders included.
 * 2. WiredTiger.turtle over its placeholder (fsyncLock and reflink backups): WiredTiger
 *    still refuses the placeholder WiredTiger.wt, salvage or not.
 * 3. WiredTiger.wt over its placeholder (or the placeholder removed): from here
 *    WiredTiger opens an fsyncLock or reflink backup's target.
 * 4. The turtle placeholder removed, where the backup has no turtle file.
 * 5. storage.bson over its placeholder: from here mongod starts on the target.
 * 6. The marker removed.
 */
export async function completeRestore(target: string, held: readonly string[], progress: TargetProgress): Promise<void> {
  const place = (name: string) => ({ what: `${name} put in place`, run: () => fs.rename(path.join(target, incomingName(name)), path.join(target, name)) });
  const remove = (name: string, what: string) => ({ what, run: () => fs.rm(path.join(target, name)) });
  const steps = [
    ...(held.includes(WT_BACKUP) ? [place(WT_BACKUP)] : []),
    ...(held.includes(TURTLE) ? [place(TURTLE)] : []),
    held.includes(WT_METAFILE) ? place(WT_METAFILE) : remove(WT_METAFILE, `the placeholder ${WT_METAFILE} removed`),
    ...(held.includes(TURTLE) ? [] : [remove(TURTLE, `the placeholder ${TURTLE} removed`)]),
    held.includes(STORAGE_BSON) ? place(STORAGE_BSON) : remove(STORAGE_BSON, `the placeholder ${STORAGE_BSON} removed`),
    remove(RESTORE_MARKER_FILENAME, `${RESTORE_MARKER_FILENAME} removed`),
  ];
  progress.steps = steps.map(({ what }) => ({ what, done: false }));
  for (const [i, step] of steps.entries()) {
    if (i === 1 && failPointEnabled('failDuringRestoreCompletion')) throw new Error('failpoint failDuringRestoreCompletion: stopped after the first step');
    await step.run();
    await fsyncDirectory(target);
    (progress.steps[i] as { done: boolean }).done = true;
  }
}

/** Whether every step of the last one is done but the marker's removal: the target is complete. */
export function onlyMarkerLeft(progress: TargetProgress): boolean {
  const steps = progress.steps ?? [];
  return steps.length > 0 && steps.filter((step) => !step.done).length === 1;
}

/**
 * What a stopped restore left, for its message: the state of the target and what the
 * operator should do, true to how far it got.
 */
export function describeStop(target: string, progress: TargetProgress): string {
  const again = `Do not use it; restore a good backup into it with --force.`;
  if (progress.fenced.length < FENCES.length) {
    const written = progress.fenced.length === 0 ? 'none' : progress.fenced.join(', ');
    return `${target} is incomplete and marked so (${RESTORE_MARKER_FILENAME}), but the restore stopped before its placeholders were all written (${written} of ${FENCES.join(', ')}): do not start mongod on it. ${again}`;
  }
  const done = (progress.steps ?? []).filter((step) => step.done).map((step) => step.what);
  if (done.length === 0) {
    return `${target} is incomplete and marked so: its ${TURTLE}, ${WT_METAFILE} and ${STORAGE_BSON} are placeholders, on which mongod does not start, --repair included. ${again}`;
  }
  if (onlyMarkerLeft(progress)) {
    return `Every file of ${target} is in place and matched its checksum; only ${RESTORE_MARKER_FILENAME} is left, which says the restore did not finish. Remove that file, then start mongod on ${target}.`;
  }
  return (
    `Every file of ${target} was copied and matched its checksum, but the restore stopped in its last step, after: ${done.join(', ')}. ` +
    `It is marked incomplete, and its ${STORAGE_BSON} is still a placeholder, on which mongod does not start. Restore the backup into it again with --force.`
  );
}
