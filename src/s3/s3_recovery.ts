/**
 * The S3 cleanups a backup still owed when its proxy stopped or died (s3_cleanup_records.ts
 * keeps them in the state dir; recovery.ts does the rest: the lock, the cursor, the
 * staging). The marker is read first: only when it is this backup's are the multipart
 * uploads under the prefix aborted (each bills for its parts until then) and the marker,
 * still `running`, rewritten with the outcome (`interrupted`, or the failure recorded when
 * the backup ended), as markInterrupted does for a directory; beside this backup's own
 * manifest (only the marker's removal failed) the marker is deleted instead. Under a
 * prefix whose marker is not ours (a begin that never owned it), only our claim object is
 * removed: the uploads there are another backup's. Only then is the record removed. When
 * S3 cannot be reached, or the marker cannot be read, that goes on in the background with
 * backoff until it succeeds or the proxy closes, and the record stays for the next start;
 * backups are not held up for it, since it holds nothing of mongod's.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { endedMarker, INCOMPLETE_MARKER_FILENAME } from '../backup/backup_marker.js';
import type { BackupFailure } from '../backup/engine_status.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { failureOf } from '../backup/engine_status.js';
import type { Logger } from '../log.js';
import { createS3Client, type S3Settings } from './s3_client.js';
import { readS3Manifest, readS3Marker, recordUrl, writeS3Marker } from './s3_backup_records.js';
import { ManifestError } from '../backup/manifest.js';
import { abortMultipartUploads, deleteObjects } from './s3_objects.js';
import { s3CommandError } from './s3_errors.js';
import { objectKey, parseS3Url, s3Url, type S3Location } from './s3_location.js';
import { claimName } from './s3_target.js';
import type { S3CleanupRecord, S3CleanupRecords } from './s3_cleanup_records.js';
import { DEFAULT_CLEANUP_BACKOFF, retryInBackground, type Backoff } from './s3_retry.js';

export interface S3RecoveryOptions {
  settings: S3Settings;
  backoff?: Backoff | undefined;
  /** The cleanups owed, in the state dir; undefined: only the one markInterrupted names is done, and not kept. */
  records?: S3CleanupRecords | undefined;
  log: Logger;
}

export class S3Recovery {
  private readonly closing = new AbortController();
  private readonly background = new Set<Promise<unknown>>();
  /** Backups whose cleanup this start has taken up already. */
  private readonly taken = new Set<string>();
  private client: S3Client | undefined;

  constructor(private readonly options: S3RecoveryOptions) {}

  /** The backup the dead proxy's state file names: its marker is to say `failure`. Resolves as resume() does. */
  async markInterrupted(destination: string, backupId: string, failure: BackupFailure): Promise<void> {
    const record: S3CleanupRecord = { backupId, destination, ended: { state: 'interrupted', failure: { ...failure, extra: { ...failure.extra } } } };
    await this.options.records?.write(record);
    await this.settle(record);
  }

  /**
   * Every cleanup recorded and not yet taken up: resolves once each has been tried once
   * (the rest go to the background), so a proxy that listens has tried them all.
   */
  async resume(): Promise<void> {
    const { records, log } = this.options;
    if (records === undefined) return;
    const pending = await records.list((file, reason) =>
      log.error({ file, reason }, 'recovery: a record of an S3 cleanup owed cannot be read; it is left for you to check (and remove)'),
    );
    for (const record of pending) await this.settle(record);
  }

  /** Stops the background attempts: their records stay, and the next start tries again. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all([...this.background]);
    this.client?.destroy();
  }

  private async settle(record: S3CleanupRecord): Promise<void> {
    if (this.taken.has(record.backupId)) return;
    this.taken.add(record.backupId);
    const { backupId, destination } = record;
    const { log } = this.options;
    const attempt = async () => {
      const done = await this.sweep(record);
      await this.options.records?.remove(backupId);
      return done;
    };
    try {
      log.warn({ backupId, destination, done: await attempt() }, 'recovery: S3 cleaned up after the interrupted backup');
    } catch (err) {
      log.error({ backupId, destination, err: s3CommandError(err, 'cleanup', destination).message }, 'recovery: S3 could not be cleaned up after the interrupted backup; retrying in the background');
      const settled = retryInBackground(attempt, {
        backoff: this.options.backoff ?? DEFAULT_CLEANUP_BACKOFF,
        signal: this.closing.signal,
        onRetry: (retryErr, inMs) => log.warn({ backupId, destination, err: s3CommandError(retryErr, 'cleanup', destination).message, retryInMs: inMs }, 'recovery: S3 still failing; retrying'),
      }).then((outcome) => {
        if (outcome.state === 'done') log.warn({ backupId, destination, done: outcome.value }, 'recovery: S3 cleaned up after the interrupted backup');
        else log.error({ backupId, destination, records: this.options.records?.dir }, 'recovery: the proxy is closing before S3 could be cleaned up; the next start tries again');
      });
      this.background.add(settled);
      void settled.finally(() => this.background.delete(settled));
    }
  }

  private async sweep(record: S3CleanupRecord): Promise<string> {
    const location = parseS3Url(record.destination);
    const client = (this.client ??= createS3Client(this.options.settings));
    const signal = this.closing.signal;
    const claim = objectKey(location, claimName(record.backupId));
    const read = await readS3Marker(client, location, signal);
    // A GET that failed: whether it is ours is not known, so tried again, never counted done.
    if (read.kind === 'invalid' && read.reason.startsWith('cannot be read')) throw new Error(`${recordUrl(location, INCOMPLETE_MARKER_FILENAME)} ${read.reason}`);
    if (read.kind !== 'present' || read.marker.backupId !== record.backupId) {
      // Our uploads start only after our marker is written: under a prefix whose marker is
      // not ours (another backup's, or none: a begin that never got the prefix) nothing is
      // ours but the claim. The uploads there are whoever's owns the prefix now.
      await deleteObjects(client, location.bucket, [claim], signal);
      return `the claim under ${s3Url(location)} removed (its marker is not this backup's)`;
    }
    if (await hasManifestOf(client, location, record.backupId, signal)) {
      // The backup completed and only the marker's removal failed: the manifest decides.
      await deleteObjects(client, location.bucket, [claim, objectKey(location, INCOMPLETE_MARKER_FILENAME)], signal);
      return `the marker left beside the complete backup at ${s3Url(location)} removed`;
    }
    const aborted = await abortMultipartUploads(client, location, signal);
    await deleteObjects(client, location.bucket, [claim], signal);
    // An outcome already written is left alone, as on disk.
    if (read.marker.state !== 'running') return `${aborted} multipart upload(s) aborted under ${s3Url(location)}`;
    const ended = record.ended ?? { state: 'interrupted' as const, failure: interruptedFailure() };
    await writeS3Marker(client, location, endedMarker(read.marker, ended.failure, new Date(), ended.state), signal);
    return `${aborted} multipart upload(s) aborted under ${s3Url(location)}, and its marker says ${ended.state}`;
  }
}

/** Whether the prefix holds this backup's manifest; one that cannot be read is retried (MISSING and a foreign or invalid one are not). */
async function hasManifestOf(client: S3Client, location: S3Location, backupId: string, signal: AbortSignal): Promise<boolean> {
  try {
    return (await readS3Manifest(client, location, signal)).manifest.backupId === backupId;
  } catch (err) {
    if (err instanceof ManifestError && err.code !== 'UNREADABLE') return false;
    throw err;
  }
}

/** For a backup whose proxy stopped before it could say more (no state file left to tell). */
function interruptedFailure(): BackupFailure {
  return failureOf(new CommandError(ErrorCodes.InterruptedAtShutdown, 'backup interrupted: the proxy stopped or died during this backup before its S3 cleanup was done'));
}
