/**
 * `backupStart: "s3://bucket/prefix"`: the destination checked before anything is
 * written, as a directory is (destination.ts), and its target opened (s3_target.ts):
 * - the URL parses (s3_location.ts), else BadValue;
 * - under an `s3://` --backup-root, it lies below that root;
 * - the bucket exists and the credentials work: one listing under the prefix, whose
 *   refusal is S3's code in a mongod-style error (s3_errors.ts: NoSuchBucket is 29,
 *   InvalidAccessKeyId, SignatureDoesNotMatch and AccessDenied 96, with `s3Code`);
 * - the prefix is empty: any object under `<prefix>/` refuses it with Percona's text for
 *   a directory that is not empty, and so does an unfinished multipart upload under it
 *   (a failed backup's parts, still billing, which would mix with this one's);
 * - it lies inside no backup: a prefix above it holding a manifest, a marker or a claim
 *   refuses it (two HEADs and one listing per level: a purge or a verify of that backup
 *   would take this one's objects for its own, and its cleanup would abort this one's
 *   uploads).
 * An `incrementalBase` on S3 is checked by s3_incremental.ts, before the destination.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { OpenedTarget, TargetContext, TargetOpener, TargetRequest } from '../backup/target_opener.js';
import type { Logger } from '../log.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { createS3Client, type S3Settings } from './s3_client.js';
import { firstKeyStartingWith, firstObject, listMultipartUploads, objectExists } from './s3_objects.js';
import { MANIFEST_FILENAME } from '../backup/manifest.js';
import { CLAIM_PREFIX, INCOMPLETE_MARKER_FILENAME } from '../backup/backup_marker.js';
import { s3CommandError } from './s3_errors.js';
import { objectKey, parseS3Url, s3Url, type S3Location } from './s3_location.js';
import { isBelow, openS3IncrementalBase } from './s3_incremental.js';
import { S3Target } from './s3_target.js';
import type { S3CleanupRecords } from './s3_cleanup_records.js';
import { DEFAULT_CLEANUP_BACKOFF, type Backoff } from './s3_retry.js';

export interface S3TargetsOptions {
  settings: S3Settings;
  /** `serve --backup-root s3://…`: destinations and bases must lie below it. */
  root?: S3Location | undefined;
  /** Between background cleanup attempts of a failed backup. Default 1 s doubling to 60 s. */
  cleanupBackoff?: Backoff | undefined;
  /** The proxy's record of the S3 cleanups owed (its state dir): a restart does not forget one. */
  records?: S3CleanupRecords | undefined;
  log: Logger;
}

export class S3Targets implements TargetOpener {
  /** For the checks, the records and the sweeps (small requests); the uploader builds its own. */
  private readonly client: S3Client;

  constructor(private readonly options: S3TargetsOptions) {
    this.client = createS3Client(options.settings);
  }

  async open(request: TargetRequest, context: TargetContext): Promise<OpenedTarget> {
    refuseUserInfo(String(request.destination), 'Backup destination');
    if (request.incrementalBase !== undefined) refuseUserInfo(request.incrementalBase, 'incrementalBase');
    const location = parseS3Url(String(request.destination), 'Backup destination');
    const url = s3Url(location);
    const { root } = this.options;
    if (root !== undefined && !isBelow(location, root)) {
      throw new CommandError(ErrorCodes.BadValue, `Backup destination ${url} must lie under the proxy's --backup-root ${s3Url(root)}`);
    }
    // The base first: it creates nothing, and a refused one leaves the destination untouched.
    const base =
      request.incrementalBase === undefined
        ? undefined
        : await openS3IncrementalBase(this.client, request.incrementalBase, location, { source: context.source, checksum: request.checksum === true, root, signal: context.closing });
    await this.checkEmpty(location, context.closing);
    await this.checkNotNested(location, context.closing);
    const target = new S3Target({
      location,
      settings: this.options.settings,
      client: this.client,
      backup: context,
      backoff: this.options.cleanupBackoff ?? DEFAULT_CLEANUP_BACKOFF,
      closing: context.closing,
      records: this.options.records,
      log: this.options.log,
    });
    return { target, base };
  }

  /** Refuses a prefix holding any object or unfinished multipart upload; the first listing also proves the bucket and the credentials. */
  private async checkEmpty(location: S3Location, signal: AbortSignal): Promise<void> {
    const url = s3Url(location);
    const first = await firstObject(this.client, location, signal).catch((err: unknown) => {
      throw s3CommandError(err, 'check', url);
    });
    // Percona's words for a directory (destination.ts).
    if (first !== undefined) throw new CommandError(ErrorCodes.BadValue, `Backup directory ${url} is not empty`);
    const uploads = await listMultipartUploads(this.client, location, signal).catch((err: unknown) => {
      throw s3CommandError(err, 'check', url);
    });
    if (uploads.length > 0) {
      throw new CommandError(
        ErrorCodes.BadValue,
        `Backup directory ${url} is not empty: it has ${uploads.length} unfinished multipart upload(s) (the first of ${s3Url({ bucket: location.bucket, prefix: uploads[0]?.key ?? '' })}), ` +
          'parts of an earlier upload that still take space; abort them (aws s3api abort-multipart-upload) or choose another prefix',
      );
    }
  }

  /**
   * Refuses a prefix below one that holds a backup's manifest, marker or claim (a backup
   * that claimed its prefix and has not yet written its marker may abort what is under it).
   */
  private async checkNotNested(location: S3Location, signal: AbortSignal): Promise<void> {
    const segments = location.prefix === '' ? [] : location.prefix.split('/');
    const above = segments.map((_, depth) => ({ bucket: location.bucket, prefix: segments.slice(0, depth).join('/') }));
    const found = await Promise.all(
      above.flatMap((parent) => [
        ...[MANIFEST_FILENAME, INCOMPLETE_MARKER_FILENAME].map(async (name) => ((await objectExists(this.client, parent.bucket, objectKey(parent, name), signal)) ? { parent, name } : undefined)),
        (async () => {
          const claim = await firstKeyStartingWith(this.client, parent.bucket, objectKey(parent, CLAIM_PREFIX), signal);
          return claim === undefined ? undefined : { parent, name: claim.slice(claim.lastIndexOf('/') + 1) };
        })(),
      ]),
    ).catch((err: unknown) => {
      throw s3CommandError(err, 'check', s3Url(location));
    });
    const hit = found.find((f) => f !== undefined);
    if (hit !== undefined) {
      throw new CommandError(
        ErrorCodes.BadValue,
        `Backup destination ${s3Url(location)} lies inside the backup ${s3Url(hit.parent)} (it holds ${hit.name}): choose a prefix beside it, not below it`,
      );
    }
  }

  /** Frees the client's sockets. */
  close(): void {
    this.client.destroy();
  }
}

/**
 * `s3://key:secret@bucket/…` is no S3 URL (a bucket name has no '@'), but it looks like
 * one that carries credentials: refused without repeating it, so that the secret reaches
 * neither the reply nor the log.
 */
function refuseUserInfo(url: string, what: string): void {
  const authority = url.slice('s3://'.length).split('/')[0] ?? '';
  if (authority.includes('@')) {
    throw new CommandError(
      ErrorCodes.BadValue,
      `${what} s3://…@… is not a valid S3 location: an s3:// URL carries no credentials (they come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`,
    );
  }
}
