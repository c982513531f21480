/**
 * Which destinations the proxy's backups may go to, by `--backup-root`:
 * - none: any absolute local directory (destination.ts's checks), or any `s3://` prefix
 *   (s3_targets.ts's), with the credentials of the proxy's AWS environment;
 * - a local directory: only directories in it; `s3://` destinations are refused, saying so;
 * - an `s3://` URL: only prefixes below it; local directories are refused.
 * An incrementalBase must be of the destination's kind (target_opener.ts).
 */
import { DirectoryTargets, TargetsByKind, type TargetOpener } from '../backup/target_opener.js';
import type { DestinationPolicy } from '../backup/destination.js';
import type { CopyIoClass, CopyWrites } from '../backup/copy_messages.js';
import { S3Targets } from '../s3/s3_targets.js';
import { s3Url, type S3Location } from '../s3/s3_location.js';
import type { S3Settings } from '../s3/s3_client.js';
import type { Backoff } from '../s3/s3_retry.js';
import type { S3CleanupRecords } from '../s3/s3_cleanup_records.js';
import type { Logger } from '../log.js';

export interface BackupTargetsOptions {
  dbpath: string;
  policy: DestinationPolicy;
  /** A local --backup-root, as given; undefined when there is none or it is on S3. */
  localRoot: string | undefined;
  s3Root: S3Location | undefined;
  s3: S3Settings;
  s3CleanupBackoff?: Backoff | undefined;
  /** The S3 cleanups owed, kept in the state dir (s3_cleanup_records.ts). */
  s3CleanupRecords?: S3CleanupRecords | undefined;
  copyWrites?: CopyWrites | undefined;
  copyIoClass?: CopyIoClass | undefined;
  log: Logger;
}

/** The opener, and a close() that frees the S3 client's sockets once no backup runs. */
export function backupTargets(options: BackupTargetsOptions): { targets: TargetOpener; close: () => void } {
  const { s3Root, localRoot } = options;
  const s3 = new S3Targets({ settings: options.s3, root: s3Root, cleanupBackoff: options.s3CleanupBackoff, records: options.s3CleanupRecords, log: options.log });
  const targets = new TargetsByKind({
    directories: new DirectoryTargets({ dbpath: options.dbpath, policy: options.policy, writes: options.copyWrites, ioClass: options.copyIoClass }),
    s3,
    refuseS3:
      localRoot === undefined
        ? undefined
        : `the proxy's --backup-root is the local directory ${localRoot}, so backups go only there; start the proxy with --backup-root s3://bucket/prefix to back up to S3`,
    refuseLocal:
      s3Root === undefined ? undefined : `the proxy's --backup-root is ${s3Url(s3Root)}, so backups go only to S3 below it (backupStart: "${s3Url(s3Root)}/<name>")`,
  });
  return { targets, close: () => s3.close() };
}
