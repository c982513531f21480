/**
 * A backup written to an S3 prefix (backup_target.ts's seam, its S3 kind), with the
 * layout of one on disk: the marker object first, then every file uploaded
 * (upload_files.ts), then the manifest object LAST, then the marker deleted. S3 writes
 * an object whole or not at all, so a record is never torn, and an extension's journal
 * files replace their earlier objects in one step each.
 *
 * On a failure or an abort, every multipart upload under the prefix is aborted (the
 * uploader aborts its own; the sweep catches those whose abort did not reach the server)
 * so that no parts are left billing, and the marker is rewritten with the outcome. When
 * S3 cannot be reached for that (the server died, which may be why the backup failed),
 * the cleanup goes on in the background with backoff until it succeeds or the proxy
 * closes; the proxy's next start (recovery) sweeps what is left then.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupTarget, TargetCleanup, TargetCopyOptions } from '../backup/backup_target.js';
import { MANIFEST_FILENAME, type Manifest } from '../backup/manifest.js';
import { endedMarker, INCOMPLETE_MARKER_FILENAME, runningMarker, type BackupMarker, type MarkerState } from '../backup/backup_marker.js';
import type { BackupFailure } from '../backup/engine_status.js';
import type { CopyResult, SourceFile } from '../backup/copy_types.js';
import type { Logger } from '../log.js';
import { uploadFiles } from './upload_files.js';
import { recordUrl, removeS3Marker, writeS3Manifest, writeS3Marker } from './s3_backup_records.js';
import { abortMultipartUploads } from './s3_objects.js';
import { s3CommandError } from './s3_errors.js';
import { s3Url, type S3Location } from './s3_location.js';
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
  log: Logger;
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
    const marker = runningMarker(this.options.backup);
    await writeS3Marker(this.options.client, this.options.location, marker).catch((err: unknown) => {
      throw s3CommandError(err, 'write', this.markerName);
    });
    this.marker = marker;
  }

  async copy(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult> {
    try {
      return await uploadFiles(files, this.options.location, { settings: this.options.settings, ...options });
    } catch (err) {
      // An abort's own error passes through unchanged (a CommandError).
      throw s3CommandError(err, 'upload', this.destination);
    }
  }

  /** S3 replaces an object in one step: the new upload is the replacement. */
  replace(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult> {
    return this.copy(files, options);
  }

  async writeManifest(manifest: Manifest): Promise<void> {
    await writeS3Manifest(this.options.client, this.options.location, manifest).catch((err: unknown) => {
      throw s3CommandError(err, 'write', recordUrl(this.options.location, MANIFEST_FILENAME));
    });
  }

  async complete(): Promise<void> {
    if (this.marker === undefined) return;
    await removeS3Marker(this.options.client, this.options.location).catch((err: unknown) => {
      throw s3CommandError(err, 'delete', this.markerName);
    });
    this.marker = undefined;
  }

  async fail(failure: BackupFailure, at: Date, state: Exclude<MarkerState, 'running'>): Promise<TargetCleanup> {
    const running = this.marker;
    if (running === undefined) return { state: 'done' };
    const { client, location, log, backup } = this.options;
    const ended = endedMarker(running, failure, at, state);
    const attempt = async (signal?: AbortSignal): Promise<string> => {
      const aborted = await abortMultipartUploads(client, location, signal);
      await writeS3Marker(client, location, ended, signal);
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
}
