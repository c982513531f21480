/**
 * Opens a backup on S3 for reading (verify, restore), as backup_dir.ts opens a directory:
 * its manifest object, or why there is none, decided by backup_refusal.ts in the same
 * states and words, from the marker object and the names under the prefix. A prefix
 * with no object under it is `absent`, as a missing directory is (S3 has no empty
 * directories); a bucket that does not exist is `absent` too, in S3's words; any other
 * S3 error (credentials refused, a server that cannot be reached) is `unreadable`, naming
 * S3's code.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ManifestError } from '../backup/manifest.js';
import { isPurgeMarker } from '../backup/backup_marker.js';
import { BackupRefusal, refusalOfManifestError, refusalWithoutManifest } from '../backup/backup_refusal.js';
import type { OpenedBackup } from '../backup/backup_dir.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { readS3Manifest, readS3Marker } from './s3_backup_records.js';
import { s3CommandError, s3ErrorFacts } from './s3_errors.js';
import { listChildren } from './s3_objects.js';
import { s3Url, type S3Location } from './s3_location.js';

export interface OpenedS3Backup extends OpenedBackup {
  /** `directory` is the backup's s3:// URL; this is where it is. */
  location: S3Location;
}

/** The manifest of the backup at `location`, or a BackupRefusal saying why not. */
export async function openS3Backup(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<OpenedS3Backup> {
  const url = s3Url(location);
  try {
    const { manifest, fileChecksum } = await readS3Manifest(client, location, signal);
    const marker = await readS3Marker(client, location, signal);
    return { directory: url, location, manifest, manifestChecksum: fileChecksum, markerLeft: marker.kind !== 'absent', markerFromPurge: isPurgeMarker(marker) };
  } catch (err) {
    signal?.throwIfAborted();
    if (!(err instanceof ManifestError)) throw s3Refusal(err, 'read', url);
    if (err.code === 'UNREADABLE') throw s3Refusal(err.cause, 'read', url);
    if (err.code !== 'MISSING') throw refusalOfManifestError(url, err, (cause) => s3CommandError(cause, 'read', url));
  }
  let names: string[];
  try {
    const { prefixes, objects } = await listChildren(client, location, signal);
    names = [...prefixes, ...objects.map((object) => object.key.slice(object.key.lastIndexOf('/') + 1))];
  } catch (err) {
    signal?.throwIfAborted();
    throw s3Refusal(err, 'list', url);
  }
  if (names.length === 0) throw new BackupRefusal('absent', url, new CommandError(ErrorCodes.NonExistentPath, `${url} does not exist: there is no object under it`));
  throw refusalWithoutManifest(url, await readS3Marker(client, location, signal), names);
}

/** An S3 error met while opening: `absent` when the bucket is not there, `unreadable` otherwise, in S3's words. */
export function s3Refusal(err: unknown, action: string, url: string): BackupRefusal {
  if (err instanceof BackupRefusal) return err;
  const error = s3CommandError(err, action, url);
  return new BackupRefusal(s3ErrorFacts(err).code === 'NoSuchBucket' ? 'absent' : 'unreadable', url, error);
}
