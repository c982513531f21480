/**
 * An S3 root as a catalog (backup_catalog.ts): its backups are the prefixes one level
 * down (`s3://bucket/root/<name>/`), each read as a directory is: its manifest object, or
 * without one its marker object, and the verification record a verify wrote beside the
 * manifest. A prefix without a manifest is dated by its newest object and sized by the
 * listing, which has both for free.
 *
 * S3 has no symbolic links, so no entry is one. An S3 failure on the way (the listing,
 * a manifest that cannot be fetched) fails the whole catalog with S3's code
 * (s3_errors.ts), rather than passing a backup off as incomplete: purge plans on the
 * catalog, and a newest backup misread as incomplete would make it delete one too many.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { CatalogChild, CatalogSource } from '../backup/backup_catalog.js';
import { ManifestError } from '../backup/manifest.js';
import { VERIFICATION_FILENAME, parseVerificationRecordText, verificationFor } from '../backup/verification_record.js';
import { readS3Manifest, readS3Marker } from './s3_backup_records.js';
import { s3CommandError } from './s3_errors.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { getObjectBytes, listChildren, listObjects } from './s3_objects.js';
import { childLocation, objectKey, s3Url, type S3Location } from './s3_location.js';

/** A verification record is a few hundred bytes. */
const MAX_VERIFICATION_BYTES = 64 * 1024;

/** The backups one level below `root`. */
export function s3CatalogSource(client: S3Client, root: S3Location, signal?: AbortSignal): CatalogSource {
  const url = s3Url(root);
  return {
    root: url,
    async children() {
      let listed;
      try {
        listed = await listChildren(client, root, signal);
      } catch (err) {
        throw s3CommandError(err, 'list', url);
      }
      // S3 has no empty directories: a prefix exists while an object lies under it. One with
      // none is what a missing directory is to a local root (a mistyped root, most often),
      // and fails as one; a bucket's top with none is an empty bucket that exists.
      if (root.prefix !== '' && listed.prefixes.length === 0 && listed.objects.length === 0) {
        throw new CommandError(ErrorCodes.NonExistentPath, `${url} does not exist: there is no object under it (S3 has no empty directories: is the root mistyped?)`);
      }
      return listed.prefixes.filter((name) => name !== '').map((name) => s3Child(client, name, childLocation(root, name), signal));
    },
  };
}

function s3Child(client: S3Client, name: string, location: S3Location, signal: AbortSignal | undefined): CatalogChild {
  const url = s3Url(location);
  return {
    name,
    path: url,
    s3Location: location,
    readManifest: () => readS3ManifestOrFail(client, location, signal),
    readMarker: () => readS3Marker(client, location, signal),
    async readVerification(manifest, manifestChecksum) {
      // A record that cannot be fetched is no verification known: list shows '-', as for a local one it cannot read.
      const bytes = await getObjectBytes(client, location.bucket, objectKey(location, VERIFICATION_FILENAME), MAX_VERIFICATION_BYTES, signal).catch(() => undefined);
      if (bytes === undefined) return undefined;
      return verificationFor(parseVerificationRecordText(bytes.toString('utf8')), manifest, manifestChecksum, url);
    },
    async contents() {
      let newest: Date | undefined;
      let bytes = 0;
      let objects = 0;
      try {
        for await (const object of listObjects(client, location, signal)) {
          objects += 1;
          bytes += object.size;
          if (object.lastModified !== undefined && (newest === undefined || object.lastModified > newest)) newest = object.lastModified;
        }
      } catch (err) {
        throw s3CommandError(err, 'list', url);
      }
      // Gone since the root was listed (purged meanwhile): no entry.
      if (objects === 0) return undefined;
      return { time: newest ?? new Date(0), bytes };
    },
  };
}

/**
 * The manifest at `location`, as readS3Manifest reads it, except that S3 refusing to
 * hand it over (unreachable, access denied) is S3's error, not a backup without a usable
 * manifest. One too large to be ours stays an unusable manifest.
 */
export async function readS3ManifestOrFail(client: S3Client, location: S3Location, signal?: AbortSignal): ReturnType<typeof readS3Manifest> {
  try {
    return await readS3Manifest(client, location, signal);
  } catch (err) {
    if (err instanceof ManifestError && err.code === 'UNREADABLE' && !(err.cause instanceof RangeError)) throw s3CommandError(err.cause, 'read', err.file);
    throw err;
  }
}
