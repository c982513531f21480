/**
 * A backup written to an S3 prefix (backup_target.ts's seam, its S3 kind), with the
 * layout of one on disk: the marker object first, then every file uploaded
 * (upload_files.ts), then the manifest object LAST, then the marker deleted. S3 writes
 * an object whole or not at all, so a record is never torn, and an extension's journal
 * files replace their earlier objects in one step each.
 *
 * S3 has no mkdir: a plain PUT of the marker succeeds for two backups sent to one empty
 * prefix at once. The marker is written with If-None-Match: * (AWS S3 since 2024 and our
 * radosgw refuse it with 412 when one is there), but S3-compatible servers that ignore
 * the header exist, so it is not relied on: each backup first writes a claim object of
 * its own name, then lists the prefix, and goes on only if its claim is the only object
 * there: of two racing, at most one sees itself alone (S3 lists what it acknowledged).
 * Before the manifest, the marker is read back: it must still be this backup's.
 *
 * A complete backup leaves no multipart upload of its own and no claim: before the
 * manifest, every upload whose key is one of its files is aborted (a CreateMultipartUpload
 * whose reply was lost and retried by the SDK leaves one we never knew of; an upload of
 * another key may be a nested backup's), and the claim is deleted; a listing or a delete
 * that fails fails the backup.
 *
 * On a failure or an abort, the marker is read first: while it is still this backup's,
 * every multipart upload under the prefix is aborted (the uploader aborts its own; the
 * sweep catches those whose abort did not reach the server) so that no parts are left
 * billing, and the marker is rewritten with the outcome; once another backup holds the
 * prefix, its uploads and marker are left alone and only this backup's claim goes. When
 * S3 cannot be reached for that (the server died, which may be why the backup failed),
 * the cleanup goes on in the background with backoff until it succeeds or the proxy
 * closes. Its record in the state dir (s3_cleanup_records.ts), written before anything
 * reaches S3, is removed only once the backup completed or its cleanup succeeded: the
 * next start sweeps whatever a restart or a crash left (s3_recovery.ts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupTarget, TargetCleanup, TargetCopyOptions } from '../backup/backup_target.js';
import { MANIFEST_FILENAME, type Manifest } from '../backup/manifest.js';
import { CLAIM_PREFIX, endedMarker, INCOMPLETE_MARKER_FILENAME, runningMarker, type BackupMarker, type MarkerState } from '../backup/backup_marker.js';
import type { BackupFailure } from '../backup/engine_status.js';
import type { CopyResult, SourceFile } from '../backup/copy_types.js';
import type { Logger } from '../log.js';
import { uploadFiles } from './upload_files.js';
import { createS3Marker, readS3Marker, recordUrl, removeS3Marker, writeS3Manifest, writeS3Marker } from './s3_backup_records.js';
import { abortMultipartUpload, abortMultipartUploads, deleteObjects, listMultipartUploads, listObjects, putObjectBytes } from './s3_objects.js';
import { s3CommandError, s3ErrorFacts } from './s3_errors.js';
import { objectKey, s3Url, type S3Location } from './s3_location.js';
import type { S3CleanupRecords } from './s3_cleanup_records.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { toCommandError } from '../backup/io_error.js';
import type { S3Settings } from './s3_client.js';
import { retryInBackground, type Backoff } from './s3_retry.js';

export interface S3TargetOptions {
  location: S3Location;
  settings: S3Settings;
  /** For the records and the sweep; the uploader builds its own. */
  client: S3Client;
  backup: { backupId: string; startedAt: Date };
  /** Between background cleanup attempts. */
  backoff: Backoff;
  /** Aborted when the proxy closes: a background cleanup stops. */
  closing: AbortSignal;
  /** Where the cleanup this backup owes is kept until done; undefined: in memory only (tests, no state dir). */
  records?: S3CleanupRecords | undefined;
  log: Logger;
}

/** The object a backup claims its prefix with, before the marker; removed once the marker is written. */
export function claimName(backupId: string): string {
  return `${CLAIM_PREFIX}${backupId}`;
}

export class S3Target implements BackupTarget {
  readonly destination: string;
  readonly directory = undefined;
  readonly markerName: string;
  private marker: BackupMarker | undefined;

  constructor(private readonly options: S3TargetOptions) {
    this.destination = s3Url(options.location);
    this.markerName = recordUrl(options.location, INCOMPLETE_MARKER_FILENAME);
  }

  async begin(): Promise<void> {
    const { records, backup } = this.options;
    await records?.write({ backupId: backup.backupId, destination: this.destination }).catch((err: unknown) => {
      throw toCommandError(err, `recording the S3 cleanup this backup may owe in ${records.dir}`);
    });
    // A marker PUT that failed without S3's refusal (a lost reply) may have been written.
    let markerUnknown = false;
    try {
      await this.claim();
      const marker = runningMarker(backup);
      await createS3Marker(this.options.client, this.options.location, marker).catch((err: unknown) => {
        // Another backup's marker got there first (on a server that honours If-None-Match).
        if (s3ErrorFacts(err).status === 412) throw new CommandError(ErrorCodes.BadValue, `Backup directory ${this.destination} is not empty`);
        markerUnknown = true;
        throw s3CommandError(err, 'write', this.markerName);
      });
      this.marker = marker;
      // The marker holds the prefix now; a claim this fails to remove goes before the manifest (or in fail()).
      await this.removeClaim().catch(() => undefined);
    } catch (err) {
      if (this.marker === undefined) {
        // The record goes only when nothing of ours can be left under the prefix; else the next start sweeps it.
        const claimGone = await this.removeClaim().then(
          () => true,
          () => false,
        );
        if (claimGone && !markerUnknown) await records?.remove(backup.backupId).catch(() => undefined);
      }
      throw err;
    }
  }

  /** Writes this backup's claim and refuses the prefix unless the claim is alone there (see the module's comment). */
  private async claim(): Promise<void> {
    const { client, location, backup } = this.options;
    const key = objectKey(location, claimName(backup.backupId));
    await putObjectBytes(client, location.bucket, key, Buffer.alloc(0)).catch((err: unknown) => {
      throw s3CommandError(err, 'write', recordUrl(location, claimName(backup.backupId)));
    });
    let other: string | undefined;
    try {
      for await (const object of listObjects(client, location)) {
        if (object.key !== key) {
          other = object.key;
          break;
        }
      }
    } catch (err) {
      throw s3CommandError(err, 'check', this.destination);
    }
    // Percona's words for a directory that is not empty (destination.ts).
    if (other !== undefined) throw new CommandError(ErrorCodes.BadValue, `Backup directory ${this.destination} is not empty`);
  }

  private async removeClaim(): Promise<void> {
    const { client, location, backup } = this.options;
    await deleteObjects(client, location.bucket, [objectKey(location, claimName(backup.backupId))]);
  }

  async copy(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult> {
    try {
      return await uploadFiles(files, this.options.location, { settings: this.options.settings, ...options });
    } catch (err) {
      // An abort's own error passes through unchanged (a CommandError). A source file that
      // could not be read is the local backup's error, with its errno (io_error.ts).
      if (isLocalFileError(err)) throw toCommandError(err, 'backup');
      throw s3CommandError(err, 'upload', this.destination);
    }
  }

  /** S3 replaces an object in one step: the new upload is the replacement. */
  replace(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult> {
    return this.copy(files, options);
  }

  async writeManifest(manifest: Manifest): Promise<void> {
    const { client, location, backup } = this.options;
    // A complete backup has no unfinished upload of its own files (see the module's comment).
    await this.abortOwnUploads(manifest).catch((err: unknown) => {
      throw s3CommandError(err, 'cleanup', this.destination);
    });
    const read = await readS3Marker(client, location);
    if (read.kind !== 'present' || read.marker.backupId !== backup.backupId) {
      const found = read.kind === 'present' ? `says backup ${read.marker.backupId}` : read.kind === 'absent' ? 'is gone' : read.reason;
      throw new CommandError(ErrorCodes.OperationFailed, `${this.markerName} ${found}, not this backup (${backup.backupId}): another backup wrote to ${this.destination}, so no manifest is written`);
    }
    // A claim left beside the manifest would be an object the manifest does not list (verify would call the backup damaged).
    await this.removeClaim().catch((err: unknown) => {
      throw s3CommandError(err, 'delete', recordUrl(location, claimName(backup.backupId)));
    });
    await writeS3Manifest(this.options.client, this.options.location, manifest).catch((err: unknown) => {
      throw s3CommandError(err, 'write', recordUrl(this.options.location, MANIFEST_FILENAME));
    });
  }

  /**
   * Aborts the unfinished multipart uploads whose key is one of this backup's files (an
   * orphan of a lost CreateMultipartUpload reply has such a key); another key under the
   * prefix may be a nested backup's upload, not ours to abort.
   */
  private async abortOwnUploads(manifest: Manifest): Promise<void> {
    const { client, location } = this.options;
    const own = new Set(manifest.files.map((file) => objectKey(location, file.path)));
    for (const upload of await listMultipartUploads(client, location)) {
      if (own.has(upload.key)) await abortMultipartUpload(client, location.bucket, upload);
    }
  }

  async complete(): Promise<void> {
    if (this.marker === undefined) return;
    try {
      await removeS3Marker(this.options.client, this.options.location).catch((err: unknown) => {
        throw s3CommandError(err, 'delete', this.markerName);
      });
    } finally {
      // The manifest decides: a marker left beside it is no cleanup owed (a sweep must not rewrite it).
      this.marker = undefined;
      await this.forget();
    }
  }

  async fail(failure: BackupFailure, at: Date, state: Exclude<MarkerState, 'running'>): Promise<TargetCleanup> {
    const running = this.marker;
    if (running === undefined) return { state: 'done' };
    const { client, location, log, backup } = this.options;
    const ended = endedMarker(running, failure, at, state);
    // What the marker is to say, for a next start that finds the cleanup still owed.
    await this.options.records?.ended(backup.backupId, this.destination, state, failure).catch((err: unknown) =>
      log.error({ backupId: backup.backupId, err: String(err) }, 'could not record the failure with the S3 cleanup owed'),
    );
    const attempt = async (signal?: AbortSignal): Promise<string> => {
      const claim = objectKey(location, claimName(backup.backupId));
      const read = await readS3Marker(client, location, signal);
      // A GET that failed: whose the prefix is now is not known, so tried again.
      if (read.kind === 'invalid' && read.reason.startsWith('cannot be read')) throw new Error(`${this.markerName} ${read.reason}`);
      if (read.kind !== 'present' || read.marker.backupId !== backup.backupId) {
        // Another backup holds the prefix now (writeManifest refused for that): its uploads and marker are its own.
        await deleteObjects(client, location.bucket, [claim], signal);
        await this.forget();
        return `${this.markerName} is no longer this backup's: only its claim was removed`;
      }
      const aborted = await abortMultipartUploads(client, location, signal);
      await deleteObjects(client, location.bucket, [claim], signal);
      await writeS3Marker(client, location, ended, signal);
      await this.forget();
      return `${aborted} unfinished multipart upload(s) under ${this.destination} aborted, and ${this.markerName} says ${state}`;
    };
    try {
      // Not stopped by the proxy's closing: a backup interrupted by a shutdown is cleaned up
      // now (the shutdown timeout bounds it), since its state file goes and no next start
      // would know of its uploads. Only the background retries stop at close.
      const detail = await attempt();
      log.info({ backupId: backup.backupId, destination: this.destination }, `backup cleanup done: ${detail}`);
      return { state: 'done' };
    } catch (err) {
      const why = s3CommandError(err, 'cleanup', this.destination).message;
      const left = `the unfinished multipart uploads under ${this.destination} could not be aborted yet, nor ${this.markerName} rewritten (${why})`;
      const detail = `${left}; retrying in the background`;
      const settled = retryInBackground(() => attempt(this.options.closing), {
        backoff: this.options.backoff,
        signal: this.options.closing,
        onRetry: (retryErr, inMs) =>
          log.warn({ backupId: backup.backupId, destination: this.destination, err: s3CommandError(retryErr, 'cleanup', this.destination).message, retryInMs: inMs }, 'backup cleanup: S3 still failing; retrying'),
      });
      return {
        state: 'pending',
        detail,
        settled: settled.then((outcome) =>
          outcome.state === 'done'
            ? { state: 'done' as const, detail: outcome.value }
            : { state: 'stopped' as const, detail: `the proxy closed before S3 could be reached: ${left}` },
        ),
      };
    }
  }

  /** The cleanup owed is done, or the backup complete: its record goes. */
  private async forget(): Promise<void> {
    const { records, backup, log } = this.options;
    await records?.remove(backup.backupId).catch((err: unknown) => log.error({ backupId: backup.backupId, err: String(err) }, 'could not remove the record of a finished S3 cleanup'));
  }
}

/** An error of a source file (open, read, stat), not of S3: a system error naming a path. */
function isLocalFileError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).errno === 'number' && typeof (err as NodeJS.ErrnoException).path === 'string';
}
