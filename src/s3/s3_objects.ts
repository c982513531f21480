/**
 * The object operations every S3 reader and writer of ours needs, each over the SDK's
 * own commands and paginators: listing a location, reading and writing small objects
 * (manifests, markers), deleting many, and finding and aborting the multipart uploads
 * a failed backup may have left (each one bills for its parts until aborted).
 *
 * Errors are the SDK's, as thrown: callers turn them into command errors with what they
 * were doing (s3_errors.ts), except a missing object, which getObjectBytes reports as
 * undefined.
 */
import { createHash } from 'node:crypto';
import {
  HeadObjectCommand,
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isS3Missing } from './s3_errors.js';
import { listingPrefix, type S3Location } from './s3_location.js';

export interface S3Object {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date | undefined;
  readonly etag: string | undefined;
}

export interface S3Upload {
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: Date | undefined;
}

/** Every object below `location` (keys starting with `<prefix>/`), in key order. */
export async function* listObjects(client: S3Client, location: S3Location, signal?: AbortSignal): AsyncGenerator<S3Object> {
  const pages = paginateListObjectsV2({ client, pageSize: 1000 }, { Bucket: location.bucket, Prefix: listingPrefix(location) }, ...requestOptions(signal));
  for await (const page of pages) {
    for (const item of page.Contents ?? []) {
      if (item.Key === undefined) continue;
      yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified, etag: item.ETag };
    }
  }
}

/**
 * The names one level below `location` (`<prefix>/<name>/...`), and the objects directly
 * in it: a backup root's backups, and whatever else lies there.
 */
export async function listChildren(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<{ prefixes: string[]; objects: S3Object[] }> {
  const below = listingPrefix(location);
  const prefixes: string[] = [];
  const objects: S3Object[] = [];
  const pages = paginateListObjectsV2({ client, pageSize: 1000 }, { Bucket: location.bucket, Prefix: below, Delimiter: '/' }, ...requestOptions(signal));
  for await (const page of pages) {
    for (const common of page.CommonPrefixes ?? []) {
      if (common.Prefix !== undefined) prefixes.push(common.Prefix.slice(below.length, -1));
    }
    for (const item of page.Contents ?? []) {
      if (item.Key !== undefined) objects.push({ key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified, etag: item.ETag });
    }
  }
  return { prefixes, objects };
}

/** The first object below `location`, or undefined when there is none: an emptiness check costs one request. */
export async function firstObject(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<S3Object | undefined> {
  for await (const object of listObjects(client, location, signal)) return object;
  return undefined;
}

/**
 * A whole object's bytes, or undefined when it does not exist. Refuses one larger than
 * `maxBytes` (a manifest or a marker is small; anything else under that name is not ours).
 */
export async function getObjectBytes(client: S3Client, bucket: string, key: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer | undefined> {
  try {
    const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), ...requestOptions(signal));
    if (reply.ContentLength !== undefined && reply.ContentLength > maxBytes) {
      reply.Body?.transformToWebStream().cancel().catch(() => undefined);
      throw new RangeError(`s3://${bucket}/${key} is ${reply.ContentLength} bytes, more than the ${maxBytes} expected`);
    }
    const bytes = await reply.Body?.transformToByteArray();
    return Buffer.from(bytes ?? new Uint8Array());
  } catch (err) {
    if (isS3Missing(err) && !isBucketMissing(err)) return undefined;
    throw err;
  }
}

/** Writes a small object whole, with Content-MD5 so the server refuses it if a byte changed on the way. */
export async function putObjectBytes(client: S3Client, bucket: string, key: string, body: Buffer, contentType = 'application/octet-stream', signal?: AbortSignal): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length, ContentType: contentType, ContentMD5: contentMd5(body) }),
    ...requestOptions(signal),
  );
}

/**
 * putObjectBytes, but only if no object has the key (`If-None-Match: *`): S3 and radosgw
 * answer 412 PreconditionFailed otherwise. Some S3-compatible servers ignore the header
 * and write anyway, so a caller must not rely on it alone.
 */
export async function createObjectBytes(client: S3Client, bucket: string, key: string, body: Buffer, contentType = 'application/octet-stream', signal?: AbortSignal): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length, ContentType: contentType, ContentMD5: contentMd5(body), IfNoneMatch: '*' }),
    ...requestOptions(signal),
  );
}

/** The first key that starts with `keyPrefix` (a raw key prefix, not a folder), if any. */
export async function firstKeyStartingWith(client: S3Client, bucket: string, keyPrefix: string, signal?: AbortSignal): Promise<string | undefined> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix, MaxKeys: 1 }), ...requestOptions(signal));
  return page.Contents?.[0]?.Key;
}

/** Whether an object has this key (one HEAD). */
export async function objectExists(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), ...requestOptions(signal));
    return true;
  } catch (err) {
    if (isS3Missing(err)) return false;
    throw err;
  }
}

/** Deletes `keys`, 1000 per request (S3's limit). Throws naming the first key S3 would not delete. */
export async function deleteObjects(client: S3Client, bucket: string, keys: readonly string[], signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const reply = await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      ...requestOptions(signal),
    );
    const failed = reply.Errors?.find((error) => error.Code !== 'NoSuchKey');
    if (failed !== undefined) throw Object.assign(new Error(`S3 would not delete s3://${bucket}/${failed.Key}: ${failed.Code} ${failed.Message ?? ''}`.trim()), { Code: failed.Code });
  }
}

/** The multipart uploads begun and neither completed nor aborted below `location`. */
export async function listMultipartUploads(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<S3Upload[]> {
  const uploads: S3Upload[] = [];
  // The SDK has no paginator for this listing: S3's markers, by hand.
  let marker: { KeyMarker?: string; UploadIdMarker?: string } = {};
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: location.bucket, Prefix: listingPrefix(location), MaxUploads: 1000, ...marker }), ...requestOptions(signal));
    for (const upload of page.Uploads ?? []) {
      if (upload.Key !== undefined && upload.UploadId !== undefined) uploads.push({ key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated });
    }
    if (page.IsTruncated !== true || (page.NextKeyMarker === undefined && page.NextUploadIdMarker === undefined)) break;
    marker = { ...(page.NextKeyMarker === undefined ? {} : { KeyMarker: page.NextKeyMarker }), ...(page.NextUploadIdMarker === undefined ? {} : { UploadIdMarker: page.NextUploadIdMarker }) };
  }
  return uploads;
}

/** Aborts every multipart upload below `location` (their parts are then deleted by the server); returns how many. */
export async function abortMultipartUploads(client: S3Client, location: S3Location, signal?: AbortSignal): Promise<number> {
  const uploads = await listMultipartUploads(client, location, signal);
  for (const upload of uploads) await abortMultipartUpload(client, location.bucket, upload, signal);
  return uploads.length;
}

/** Aborts one multipart upload; one already gone (completed or aborted meanwhile) is no error. */
export async function abortMultipartUpload(client: S3Client, bucket: string, upload: Pick<S3Upload, 'key' | 'uploadId'>, signal?: AbortSignal): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId }), ...requestOptions(signal));
  } catch (err) {
    if (!isS3Missing(err) || isBucketMissing(err)) throw err;
  }
}

/** Content-MD5: base64 of the body's MD5 (RFC 1864), which S3 checks before it stores anything. */
export function contentMd5(body: Uint8Array): string {
  return createHash('md5').update(body).digest('base64');
}

function isBucketMissing(err: unknown): boolean {
  return err instanceof Error && (err.name === 'NoSuchBucket' || (err as { Code?: unknown }).Code === 'NoSuchBucket');
}

/** The SDK's per-request options: an abort signal, when there is one. */
function requestOptions(signal: AbortSignal | undefined): [] | [{ abortSignal: AbortSignal }] {
  return signal === undefined ? [] : [{ abortSignal: signal }];
}
