/** What the engine's S3 tests read back of a backup on radosgw: its objects, manifest, marker and unfinished uploads. */
import assert from 'node:assert/strict';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listObjects, listMultipartUploads, type S3Object, type S3Upload } from '../../src/s3/s3_objects.js';
import { readS3Manifest, readS3Marker } from '../../src/s3/s3_backup_records.js';
import { objectKey, type S3Location } from '../../src/s3/s3_location.js';
import { MANIFEST_FILENAME, type Manifest } from '../../src/backup/manifest.js';
import { INCOMPLETE_MARKER_FILENAME, type BackupMarker } from '../../src/backup/backup_marker.js';
import { startChecksum } from '../../src/backup/checksum.js';

export async function objectsUnder(client: S3Client, location: S3Location): Promise<S3Object[]> {
  const objects: S3Object[] = [];
  for await (const object of listObjects(client, location)) objects.push(object);
  return objects;
}

export function uploadsUnder(client: S3Client, location: S3Location): Promise<S3Upload[]> {
  return listMultipartUploads(client, location);
}

export async function s3Manifest(client: S3Client, location: S3Location): Promise<Manifest> {
  return (await readS3Manifest(client, location)).manifest;
}

/** The marker object's content, or undefined when there is none. */
export async function s3Marker(client: S3Client, location: S3Location): Promise<BackupMarker | undefined> {
  const read = await readS3Marker(client, location);
  if (read.kind === 'invalid') assert.fail(`the marker is not valid: ${read.reason}`);
  return read.kind === 'present' ? read.marker : undefined;
}

/** XXH3 of an object's bytes, streamed. */
export async function objectChecksum(client: S3Client, bucket: string, key: string): Promise<string> {
  const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const checksum = startChecksum();
  for await (const chunk of reply.Body as AsyncIterable<Uint8Array>) checksum.update(chunk);
  return checksum.hex();
}

/**
 * Asserts that the objects under `location` are exactly the manifest's files (same sizes,
 * and the XXH3 of the bytes downloaded equals the manifest's) plus the manifest, no
 * marker, and that the manifest object is not older than any file object.
 */
export async function assertS3MatchesManifest(client: S3Client, location: S3Location): Promise<Manifest> {
  const manifest = await s3Manifest(client, location);
  const objects = await objectsUnder(client, location);
  const byKey = new Map(objects.map((object) => [object.key, object]));
  assert.equal(byKey.has(objectKey(location, INCOMPLETE_MARKER_FILENAME)), false, 'no marker is left');
  assert.deepEqual(
    [...byKey.keys()].sort(),
    [...manifest.files.map((file) => objectKey(location, file.path)), objectKey(location, MANIFEST_FILENAME)].sort(),
    'the objects are the manifest files and the manifest',
  );
  for (const file of manifest.files) {
    const key = objectKey(location, file.path);
    assert.equal(byKey.get(key)?.size, file.size, `${file.path}: size`);
    assert.equal(await objectChecksum(client, location.bucket, key), file.checksum, `${file.path}: XXH3 of the object`);
  }
  // From the listing, as the files' are: HeadObject's Last-Modified is an HTTP date, in whole seconds.
  const manifestAt = byKey.get(objectKey(location, MANIFEST_FILENAME))?.lastModified;
  assert.ok(manifestAt !== undefined, 'the manifest object has a LastModified');
  for (const object of objects) {
    assert.ok(object.lastModified !== undefined && object.lastModified.getTime() <= manifestAt.getTime(), `${object.key} (${object.lastModified?.toISOString()}) is not newer than the manifest (${manifestAt.toISOString()})`);
  }
  return manifest;
}
