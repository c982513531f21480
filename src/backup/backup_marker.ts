/**
 * The marker an unfinished backup leaves in its destination, `hotbackup-incomplete.json`,
 * so that a directory without a manifest says WHY it has none:
 *
 * - written (durably) when the backup starts, before any file: state `running`, with the
 *   backup's id, its start, and the process writing it (process_identity.ts);
 * - rewritten (durably) with the outcome when the backup fails: `aborted` when the
 *   engine's outcome is (stopped by backupAbort or killOp, everything released: the same
 *   state backupStatus.last shows), `interrupted` when the failure is InterruptedAtShutdown
 *   (11600: the proxy stopped during the backup, or died and its next start cleaned up:
 *   recovery.ts), otherwise `failed`, each with the error. Not from the code alone: an
 *   Interrupted from mongod (an operator's killOp of the proxy's own getMore) is a failure;
 * - removed only after the manifest is durably written: a backup is complete when its
 *   manifest exists, whatever else the directory holds (manifest.ts).
 *
 * A marker still `running` whose writer is gone (kill -9, a crash, a power cut before the
 * next start rewrote it) reads as `interrupted`. RocksDB tells a partial backup by its
 * missing meta file only; this says which kind of partial.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDirectory, replaceFileOrRewriteInPlace, writeFileDurably } from './durable.js';
import { parseRecordText, readRecordFile } from './versioned_record.js';
import { MANIFEST_FORMAT } from './manifest.js';
import { processState, selfIdentity } from './process_identity.js';
import { ErrorCodes } from '../errors.js';
import type { BackupFailure, BackupState } from './engine_status.js';

export const INCOMPLETE_MARKER_FILENAME = 'hotbackup-incomplete.json';

/** What a backup to S3 names the object it claims its prefix with, before the marker (s3_target.ts). */
export const CLAIM_PREFIX = '.hotbackup-claim-';

/** A claim object's name: a left one is about the backup, not of it (verify ignores it, as it does the marker). */
export function isClaimName(name: string): boolean {
  return name.startsWith(CLAIM_PREFIX) && !name.includes('/');
}
const MARKER_VERSION = 1;
/** An errmsg is kept to this many characters: the marker stays one small block (see rewrite). */
const MAX_ERRMSG = 2000;

export const MARKER_STATES = ['running', 'failed', 'aborted', 'interrupted'] as const;
export type MarkerState = (typeof MARKER_STATES)[number];

const isoTime = z.iso.datetime({ offset: true });

const MarkerSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  kind: z.literal('incomplete-backup'),
  version: z.literal(MARKER_VERSION),
  backupId: z.uuid(),
  startedAt: isoTime,
  state: z.enum(MARKER_STATES),
  /** The process that writes (or wrote) the backup. */
  writer: z.object({ pid: z.int().positive(), hostname: z.string(), start: z.string().optional() }),
  finishedAt: isoTime.optional(),
  error: z.object({ code: z.int(), codeName: z.string(), errmsg: z.string() }).optional(),
});

export type BackupMarker = z.infer<typeof MarkerSchema>;

/** The marker's state for a backup that ended `state` (the engine's outcome) with a failure of `code`. */
export function markerStateOf(state: Exclude<BackupState, 'complete'>, code: number): Exclude<MarkerState, 'running'> {
  if (state === 'aborted') return 'aborted';
  return code === ErrorCodes.InterruptedAtShutdown ? 'interrupted' : 'failed';
}

/** The marker of one backup, as the engine writes it. */
export class IncompleteMarker {
  private marker: BackupMarker | undefined;
  readonly file: string;

  constructor(
    destination: string,
    private readonly backup: { backupId: string; startedAt: Date },
  ) {
    this.file = path.join(destination, INCOMPLETE_MARKER_FILENAME);
  }

  /** Writes the `running` marker, durably, before anything else goes into the destination. */
  async begin(): Promise<void> {
    const marker = runningMarker(this.backup);
    await writeFileDurably(this.file, serializeMarker(marker));
    this.marker = marker;
  }

  /** Rewrites a marker that begin() wrote with the failure and the state it ended in; does nothing when there is none. */
  async failed(failure: BackupFailure, at: Date, state: Exclude<MarkerState, 'running'>): Promise<void> {
    if (this.marker === undefined) return;
    await rewrite(this.file, endedMarker(this.marker, failure, at, state));
  }

  /** Removes the marker, durably: called only once the manifest is durably written. */
  async remove(): Promise<void> {
    if (this.marker === undefined) return;
    await fs.rm(this.file, { force: true });
    await fsyncDirectory(path.dirname(this.file));
    this.marker = undefined;
  }
}

/** The marker a backup starts with: `running`, by this process. */
export function runningMarker(backup: { backupId: string; startedAt: Date }): BackupMarker {
  return {
    format: MANIFEST_FORMAT,
    kind: 'incomplete-backup',
    version: MARKER_VERSION,
    backupId: backup.backupId,
    startedAt: backup.startedAt.toISOString(),
    state: 'running',
    writer: selfIdentity(),
  };
}

/** `marker` rewritten with how its backup ended. */
export function endedMarker(marker: BackupMarker, failure: BackupFailure, at: Date, state: Exclude<MarkerState, 'running'>): BackupMarker {
  const errmsg = failure.errmsg.length > MAX_ERRMSG ? `${failure.errmsg.slice(0, MAX_ERRMSG)}…` : failure.errmsg;
  return { ...marker, state, finishedAt: at.toISOString(), error: { code: failure.code, codeName: failure.codeName, errmsg } };
}

const PURGE_ERRMSG = 'being deleted by hotbackup purge';

/**
 * The marker purge writes over a complete backup before it deletes the manifest: `aborted`
 * (the backup is being taken away, as an aborted one is) with an error saying so, so that
 * a deletion cut short leaves a backup `purge --remove-incomplete` finishes deleting,
 * never files no purge will touch.
 */
export function purgeMarker(backup: { backupId: string; startedAt: string }, at: Date = new Date()): BackupMarker {
  const marker = runningMarker({ backupId: backup.backupId, startedAt: new Date(backup.startedAt) });
  const failure = { code: ErrorCodes.Interrupted, codeName: 'Interrupted', errmsg: PURGE_ERRMSG, extra: {} };
  return endedMarker(marker, failure, at, 'aborted');
}

/** Whether `read` is purge's marker (beside a manifest: a purge whose deletion of the manifest failed). */
export function isPurgeMarker(read: MarkerRead): boolean {
  return read.kind === 'present' && read.marker.state === 'aborted' && read.marker.error?.errmsg === PURGE_ERRMSG;
}

/** Writes purge's marker into `dir` durably (before its manifest goes). */
export async function writePurgeMarker(dir: string, backup: { backupId: string; startedAt: string }): Promise<void> {
  await rewrite(path.join(dir, INCOMPLETE_MARKER_FILENAME), purgeMarker(backup));
}

/** The marker's text as written to a file or an S3 object. */
export function serializeMarker(marker: BackupMarker): string {
  return `${JSON.stringify(marker, null, 2)}\n`;
}

/** A marker's text, as read from a file or an S3 object, validated. */
export function parseMarkerText(text: string): MarkerRead {
  const read = parseRecordText(text, MarkerSchema, 'marker');
  return read.kind === 'present' ? { kind: 'present', marker: read.value } : read;
}

/**
 * Durably, as a new file renamed into place; a destination too full for a new file (the
 * usual reason a backup fails) gets the outcome written over the running marker in
 * place: a marker that says "running" after its backup failed would mislead more than a
 * torn one, which reads as incomplete all the same.
 */
async function rewrite(file: string, marker: BackupMarker): Promise<void> {
  await replaceFileOrRewriteInPlace(file, serializeMarker(marker));
}

/**
 * What a marker says of its backup, read from here: its own state, except that a
 * `running` one whose writer is gone was interrupted, and one whose writer ran on another
 * host (or in another container) is `unknown`, since its pid means nothing here.
 */
export type MarkerVerdict = MarkerState | 'unknown';

export function markerVerdict(marker: BackupMarker): MarkerVerdict {
  if (marker.state !== 'running') return marker.state;
  switch (processState(marker.writer)) {
    case 'alive':
      return 'running';
    case 'gone':
      return 'interrupted';
    case 'unknown':
      return 'unknown';
  }
}

export type MarkerRead = { kind: 'absent' } | { kind: 'invalid'; reason: string } | { kind: 'present'; marker: BackupMarker };

/** The marker in `dir`, if any, validated. */
export async function readIncompleteMarker(dir: string): Promise<MarkerRead> {
  const read = await readRecordFile(path.join(dir, INCOMPLETE_MARKER_FILENAME), MarkerSchema, 'marker');
  return read.kind === 'present' ? { kind: 'present', marker: read.value } : read;
}

/**
 * For the start that cleans up after a dead proxy (recovery.ts): the marker of backup
 * `backupId` in `destination`, if it still says running, is rewritten as interrupted
 * with `failure`. Returns whether it was. Anything else there (no marker, another
 * backup's, an outcome already written) is left alone.
 */
export async function markInterrupted(destination: string, backupId: string, failure: BackupFailure, at: Date = new Date()): Promise<boolean> {
  const read = await readIncompleteMarker(destination);
  if (read.kind !== 'present' || read.marker.backupId !== backupId || read.marker.state !== 'running') return false;
  await rewrite(path.join(destination, INCOMPLETE_MARKER_FILENAME), {
    ...read.marker,
    state: 'interrupted',
    finishedAt: at.toISOString(),
    error: { code: failure.code, codeName: failure.codeName, errmsg: failure.errmsg.slice(0, MAX_ERRMSG) },
  });
  return true;
}
