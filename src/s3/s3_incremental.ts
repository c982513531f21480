/**
 * An incremental backup's base on S3 (`incrementalBase: "s3://…"` for an `s3://`
 * destination): checked as a directory base is (incremental.ts: a complete backup, by its
 * manifest, of this very dbpath and mongod, not overlapping the destination), and planned
 * the same way, by the same quick check. A file it may take is named by its object's
 * s3:// URL: the uploader has the server copy it (CopyObject, UploadPartCopy), so its
 * bytes never cross this host.
 *
 * `writtenAt` is the manifest object's LastModified, by the S3 server's clock, the clock
 * the base's file objects were stamped by: every one of them was uploaded before it. An
 * object modified later (overwritten by hand) then no longer holds the bytes its manifest
 * lists, and is uploaded instead. Without a LastModified, the manifest's `finishedAt`.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { MANIFEST_FILENAME, ManifestError } from '../backup/manifest.js';
import { baseManifestRefused, baseRefused, checkBaseSource, type IncrementalBase, type SourceIdentity } from '../backup/incremental.js';
import { readS3Manifest } from './s3_backup_records.js';
import { s3CommandError } from './s3_errors.js';
import { objectKey, parseS3Url, s3Url, type S3Location } from './s3_location.js';

/** Whether one location is the other or below it. */
export function locationsOverlap(a: S3Location, b: S3Location): boolean {
  if (a.bucket !== b.bucket) return false;
  const within = (inner: string, outer: string) => outer === '' || inner === outer || inner.startsWith(`${outer}/`);
  return within(a.prefix, b.prefix) || within(b.prefix, a.prefix);
}

/** Whether `location` lies strictly below `root`. */
export function isBelow(location: S3Location, root: S3Location): boolean {
  if (location.bucket !== root.bucket || location.prefix === root.prefix) return false;
  return root.prefix === '' || location.prefix.startsWith(`${root.prefix}/`);
}

export async function openS3IncrementalBase(
  client: S3Client,
  requested: string,
  destination: S3Location,
  options: { source: SourceIdentity; checksum: boolean; root?: S3Location | undefined; signal?: AbortSignal },
): Promise<IncrementalBase> {
  const location = parseS3Url(requested, 'incrementalBase');
  const url = s3Url(location);
  if (options.root !== undefined && !isBelow(location, options.root)) {
    throw baseRefused(url, `it is not under the proxy's --backup-root ${s3Url(options.root)}`);
  }
  if (locationsOverlap(location, destination)) throw baseRefused(url, `the destination ${s3Url(destination)} must be outside it, and it outside the destination`);
  let read;
  try {
    read = await readS3Manifest(client, location, options.signal);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    // S3 refused the read (no bucket, credentials): name S3's code, as for a destination.
    if (err.code === 'UNREADABLE') throw s3CommandError(err.cause, 'read', `${url}/${MANIFEST_FILENAME}`);
    throw baseManifestRefused(url, err);
  }
  const { manifest } = read;
  checkBaseSource(url, manifest, options.source);
  const writtenAt = (await manifestModified(client, location, options.signal)) ?? manifest.finishedAt;
  return {
    dir: url,
    manifest,
    writtenAt: stampOf(new Date(writtenAt)),
    checksum: options.checksum,
    locate: (relativePath) => s3Url({ bucket: location.bucket, prefix: objectKey(location, relativePath) }),
  };
}

/** The manifest object's LastModified, or undefined when the server gives none. */
async function manifestModified(client: S3Client, location: S3Location, signal: AbortSignal | undefined): Promise<string | undefined> {
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: objectKey(location, MANIFEST_FILENAME) }), ...(signal === undefined ? [] : [{ abortSignal: signal }]));
    return head.LastModified?.toISOString();
  } catch (err) {
    throw s3CommandError(err, 'read', `${s3Url(location)}/${MANIFEST_FILENAME}`);
  }
}

/** A time as source_stamp.ts writes an mtime (nine fractional digits): what ReuseFrom.baseWrittenAt holds. */
function stampOf(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 23)}000000Z`;
}
