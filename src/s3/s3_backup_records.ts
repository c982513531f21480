/**
 * A backup's small records on S3, in the same JSON as on disk: the manifest (manifest.ts),
 * written last, and the marker of an unfinished backup (backup_marker.ts). Each is one
 * object at `<prefix>/<name>`; S3 writes an object whole or not at all, so no torn
 * record can be read, and a rewrite replaces it in one step.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { MANIFEST_FILENAME, ManifestError, parseManifestText, serializeManifest, type Manifest, type ReadManifest } from '../backup/manifest.js';
import { INCOMPLETE_MARKER_FILENAME, parseMarkerText, serializeMarker, type BackupMarker, type MarkerRead } from '../backup/backup_marker.js';
import { startChecksum } from '../backup/checksum.js';
import { createObjectBytes, deleteObjects, getObjectBytes, putObjectBytes } from './s3_objects.js';
import { objectKey, s3Url, type S3Location } from './s3_location.js';

/** A manifest is a few hundred bytes per file; a million files would still fit. */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const MAX_MARKER_BYTES = 1024 * 1024;

/** The URL of a record of the backup at `location`, for messages. */
export function recordUrl(location: S3Location, name: string): string {
  return s3Url({ bucket: location.bucket, prefix: objectKey(location, name) });
}

/**
 * The manifest of the backup at `location`, with the checksum of its bytes; throws a
 * ManifestError as readManifestFile does: MISSING, UNREADABLE (the cause is S3's error),
 * INVALID, UNSUPPORTED_VERSION.
 */
export async function readS3Manifest(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<ReadManifest> {
  const url = recordUrl(location, MANIFEST_FILENAME);
  let bytes: Buffer | undefined;
  try {
    bytes = await getObjectBytes(client, location.bucket, objectKey(location, MANIFEST_FILENAME), MAX_RECORD_BYTES, signal);
  } catch (err) {
    throw new ManifestError('UNREADABLE', url, `cannot read ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (bytes === undefined) {
    throw new ManifestError('MISSING', url, `${s3Url(location)} has no ${MANIFEST_FILENAME}: the backup is incomplete, or this is not a backup`);
  }
  const checksum = startChecksum();
  checksum.update(bytes);
  return { manifest: parseManifestText(bytes.toString('utf8'), url), fileChecksum: checksum.hex() };
}

/** Writes the manifest object (validated first). Call it only once every file's upload has completed. */
export async function writeS3Manifest(client: S3Client, location: S3Location, manifest: Manifest, signal?: AbortSignal): Promise<void> {
  const text = serializeManifest(manifest, recordUrl(location, MANIFEST_FILENAME));
  await putObjectBytes(client, location.bucket, objectKey(location, MANIFEST_FILENAME), Buffer.from(text), 'application/json', signal);
}

/** The marker of the backup at `location`, if any; an object that cannot be read is `invalid`, with S3's reason. */
export async function readS3Marker(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<MarkerRead> {
  let bytes: Buffer | undefined;
  try {
    bytes = await getObjectBytes(client, location.bucket, objectKey(location, INCOMPLETE_MARKER_FILENAME), MAX_MARKER_BYTES, signal);
  } catch (err) {
    return { kind: 'invalid', reason: `cannot be read (${err instanceof Error ? err.message : String(err)})` };
  }
  return bytes === undefined ? { kind: 'absent' } : parseMarkerText(bytes.toString('utf8'));
}

/** Writes (or replaces) the marker object. */
export async function writeS3Marker(client: S3Client, location: S3Location, marker: BackupMarker, signal?: AbortSignal): Promise<void> {
  await putObjectBytes(client, location.bucket, objectKey(location, INCOMPLETE_MARKER_FILENAME), Buffer.from(serializeMarker(marker)), 'application/json', signal);
}

/** Writes the marker only if there is none (If-None-Match, where the server honours it: see createObjectBytes). */
export async function createS3Marker(client: S3Client, location: S3Location, marker: BackupMarker, signal?: AbortSignal): Promise<void> {
  await createObjectBytes(client, location.bucket, objectKey(location, INCOMPLETE_MARKER_FILENAME), Buffer.from(serializeMarker(marker)), 'application/json', signal);
}

/** Removes the marker object: only once the manifest is written. */
export async function removeS3Marker(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<void> {
  await deleteObjects(client, location.bucket, [objectKey(location, INCOMPLETE_MARKER_FILENAME)], signal);
}
