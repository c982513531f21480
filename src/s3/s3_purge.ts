/**
 * Purge's deletions on an S3 root (retention.ts plans them, the same plan as for a
 * directory). A complete backup first gets an incomplete marker saying it ended (aborted:
 * "being deleted by hotbackup purge"), then loses its manifest object, as RocksDB deletes
 * a backup's meta file before its files (BackupEngineImpl::DeleteBackupNoGC,
 * utilities/backupable/backupable_db.cc): a deletion cut short leaves a prefix without a
 * manifest, which every reader takes for incomplete, never one that looks complete and
 * lacks objects, and whose marker lets the next `purge --remove-incomplete` finish (if the
 * manifest's DELETE fails, the marker is deleted again: the backup is still complete). Then its other objects (DeleteObjects, 1000 keys a request), then every
 * multipart upload begun under the prefix (each bills for its parts until aborted), and
 * the incomplete marker last: an unfinished backup cut short in its deletion still says
 * that it ended, so that the next `purge --remove-incomplete` finishes the job.
 *
 * Before deleting, it looks again, as the directory purge does: a prefix that now holds
 * another backup, or (unfinished) whose marker no longer says it ended, is left alone.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { judgeWithoutManifest, type CatalogEntry } from '../backup/backup_catalog.js';
import { INCOMPLETE_MARKER_FILENAME, purgeMarker } from '../backup/backup_marker.js';
import { MANIFEST_FILENAME, ManifestError, type Manifest } from '../backup/manifest.js';
import { endedWithoutManifest, type PurgeStore } from '../backup/retention.js';
import { failPointEnabled } from '../failpoints.js';
import { readS3Marker, writeS3Marker } from './s3_backup_records.js';
import { readS3ManifestOrFail } from './s3_catalog.js';
import { s3CommandError } from './s3_errors.js';
import { abortMultipartUploads, deleteObjects, listObjects } from './s3_objects.js';
import { objectKey, parseS3Url, relativeKey, s3Url, type S3Location } from './s3_location.js';

/** Backups under an S3 root (s3CatalogSource's entries). */
export function s3PurgeStore(client: S3Client, signal?: AbortSignal): PurgeStore {
  // One listing per backup the plan asks about, not one request per file.
  const listings = new Map<string, Promise<Map<string, number>>>();
  return {
    async holds(backup, file, size) {
      let listing = listings.get(backup.path);
      if (listing === undefined) {
        listing = objectSizes(client, locationOf(backup), signal);
        listings.set(backup.path, listing);
      }
      return (await listing).get(file) === size;
    },
    reusedCopies: 'server-side copies',
    remove: (entry) => removeS3Backup(client, entry, signal),
  };
}

/** Each object's size under `location`, by its path relative to it. */
async function objectSizes(client: S3Client, location: S3Location, signal: AbortSignal | undefined): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  try {
    for await (const object of listObjects(client, location, signal)) {
      const relative = relativeKey(location, object.key);
      if (relative !== undefined) sizes.set(relative, object.size);
    }
  } catch (err) {
    throw s3CommandError(err, 'list', s3Url(location));
  }
  return sizes;
}

/** Deletes the backup of `entry` (a catalog entry of an S3 root), manifest first. */
export async function removeS3Backup(client: S3Client, entry: CatalogEntry, signal?: AbortSignal): Promise<void> {
  const location = locationOf(entry);
  await checkUnchanged(client, location, entry, signal);
  const url = s3Url(location);
  const markerKey = objectKey(location, INCOMPLETE_MARKER_FILENAME);
  if (entry.manifest !== undefined) {
    // Said before the manifest goes: a deletion cut short leaves an unfinished backup that
    // ended, which the next purge --remove-incomplete deletes, not objects no purge touches.
    await s3Step(url, () => writeS3Marker(client, location, purgeMarker(entry.manifest as Manifest), signal));
    try {
      await s3Step(url, async () => {
        if (failPointEnabled('failPurgeManifestDeletion')) throw new Error(`failPurgeManifestDeletion: the deletion of the manifest object of ${url} failed`);
        await deleteObjects(client, location.bucket, [objectKey(location, MANIFEST_FILENAME)], signal);
      });
    } catch (err) {
      // The backup is still complete: its marker would say forever that it is being deleted.
      await deleteObjects(client, location.bucket, [markerKey], signal).catch(() => undefined);
      throw err;
    }
    if (failPointEnabled('failPurgeAfterManifestDeletion')) throw new Error(`failPurgeAfterManifestDeletion: stopped after deleting the manifest object of ${url}`);
  }
  await s3Step(url, async () => {
    const keys: string[] = [];
    let marker = false;
    for await (const object of listObjects(client, location, signal)) {
      if (object.key === markerKey) marker = true;
      else keys.push(object.key);
    }
    await deleteObjects(client, location.bucket, keys, signal);
    await abortMultipartUploads(client, location, signal);
    if (marker) await deleteObjects(client, location.bucket, [markerKey], signal);
  });
}

/** The entry's prefix as the catalog listed it (a name made by hand may be one parseS3Url refuses). */
function locationOf(entry: CatalogEntry): S3Location {
  return entry.s3Location ?? parseS3Url(entry.path);
}

/** Runs S3 requests for the deletion of `url`, their failure as S3's error. */
async function s3Step(url: string, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (err) {
    throw s3CommandError(err, 'delete', url);
  }
}

/**
 * Throws, deleting nothing, unless the prefix still holds what purge listed: the same
 * backup (by its id), or, for an unfinished one, still no manifest and a marker saying
 * the backup ended.
 */
async function checkUnchanged(client: S3Client, location: S3Location, entry: CatalogEntry, signal: AbortSignal | undefined): Promise<void> {
  const url = s3Url(location);
  let missing: ManifestError | undefined;
  try {
    const { manifest } = await readS3ManifestOrFail(client, location, signal);
    if (entry.manifest === undefined) throw new Error(`${url} now holds a complete backup; left alone`);
    if (manifest.backupId !== entry.manifest.backupId) throw new Error(`${url} now holds backup ${manifest.backupId}, not ${entry.manifest.backupId} as when purge listed it; left alone`);
    return;
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    missing = err;
  }
  if (entry.manifest !== undefined) throw new Error(`${url} has no usable manifest any more (${missing.message}); left alone`);
  const state = await judgeWithoutManifest(missing, () => readS3Marker(client, location, signal));
  if (!endedWithoutManifest(state.unfinished)) throw new Error(`${url} is not an unfinished backup that ended: ${state.incomplete}; left alone`);
}

