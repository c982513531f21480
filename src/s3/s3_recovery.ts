/**
 * The S3 part of cleaning up after a proxy that died during a backup to S3 (recovery.ts
 * does the rest: the lock, the cursor, the staging): its multipart uploads under the
 * prefix are aborted (each bills for its parts until then), and its marker, still
 * `running`, is rewritten `interrupted`, as markInterrupted does for a directory. When S3
 * cannot be reached, that goes on in the background with backoff until it succeeds or
 * the proxy closes; backups are not held up for it, since it holds nothing of mongod's.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { endedMarker } from '../backup/backup_marker.js';
import type { BackupFailure } from '../backup/engine_status.js';
import type { Logger } from '../log.js';
import { createS3Client, type S3Settings } from './s3_client.js';
import { readS3Marker, writeS3Marker } from './s3_backup_records.js';
import { abortMultipartUploads } from './s3_objects.js';
import { s3CommandError } from './s3_errors.js';
import { parseS3Url, s3Url, type S3Location } from './s3_location.js';
import { DEFAULT_CLEANUP_BACKOFF, retryInBackground, type Backoff } from './s3_retry.js';

export class S3Recovery {
  private readonly closing = new AbortController();
  private readonly background = new Set<Promise<unknown>>();
  private client: S3Client | undefined;

  constructor(private readonly options: { settings: S3Settings; backoff?: Backoff | undefined; log: Logger }) {}

  /** Resolves once done, or once the first attempt failed and the rest went to the background. */
  async markInterrupted(destination: string, backupId: string, failure: BackupFailure): Promise<void> {
    const location = parseS3Url(destination);
    const { log } = this.options;
    const attempt = () => this.sweep(location, backupId, failure);
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
      });
      this.background.add(settled);
      void settled.finally(() => this.background.delete(settled));
    }
  }

  /** Stops the background attempts: the next start tries again (its state file is gone, so only by hand). */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all([...this.background]);
    this.client?.destroy();
  }

  private async sweep(location: S3Location, backupId: string, failure: BackupFailure): Promise<string> {
    this.client ??= createS3Client(this.options.settings);
    const signal = this.closing.signal;
    const aborted = await abortMultipartUploads(this.client, location, signal);
    const read = await readS3Marker(this.client, location, signal);
    // Another backup's marker, or an outcome already written: left alone, as on disk.
    if (read.kind !== 'present' || read.marker.backupId !== backupId || read.marker.state !== 'running') return `${aborted} multipart upload(s) aborted under ${s3Url(location)}`;
    await writeS3Marker(this.client, location, endedMarker(read.marker, failure, new Date(), 'interrupted'), signal);
    return `${aborted} multipart upload(s) aborted under ${s3Url(location)}, and its marker says interrupted`;
  }
}
