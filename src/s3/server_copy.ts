/**
 * A file of an incremental backup whose base is on S3, on a copy thread: copied from the
 * base's object to the new backup's on the server (CopyObject, or UploadPartCopy parts
 * above 5 GiB), so none of its bytes crosses the network twice, when the quick check or
 * the comparison says it is unchanged; uploaded from the source otherwise. This is
 * file_reuse.ts for S3: the same rules, other means.
 *
 * - With `compare`, the source is hashed first (through the throttle, counted as
 *   compared) and copied on the server only if its XXH3 is the base manifest's.
 * - The base's object must still be the bytes its manifest lists: it is copied only if
 *   it has the listed size and was not modified (LastModified) after the base's manifest
 *   was written. LastModified has whole seconds: an object rewritten within the second
 *   the manifest was written goes unseen, as an mtime equal to the base's would on disk.
 *   The copy is conditional on the ETag HeadObject saw (x-amz-copy-source-if-match), so
 *   an object replaced between the check and the copy is not taken either.
 * - Unlike a clone on disk, the copy cannot be hashed afterwards without downloading it:
 *   the base's object is trusted as S3 stored it (S3 checks its own storage).
 * - Whatever keeps the base's object from being copied (gone, another size, changed
 *   since, refused) falls back to an upload from the source, which the snapshot
 *   protects, and the result says why (`notReused`). Only a stop, or a server that
 *   cannot be reached (the upload would fail the same way), fails the file.
 * - Progress: a file copied on the server is reused, as a clone is (progress.ts counts
 *   it in bytesReused and filesReused when it finishes); none of its bytes is "copied".
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { CopyStopped, type FileOutcome } from '../backup/file_copy.js';
import { checksumOf } from '../backup/file_reuse.js';
import type { Reused, ReuseFrom, SourceFile } from '../backup/copy_types.js';
import { mtimeNs } from '../backup/source_stamp.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { parseS3Url, s3Url } from './s3_location.js';
import { s3ErrorFacts } from './s3_errors.js';
import { COPY_PART_SIZE, partSizeFor } from './part_size.js';
import { objectUrl, Parts, requestError, uploadOneFile, type ObjectTarget, type UploadContext, type UploadHooks } from './object_upload.js';

export interface ServerCopySettings {
  /** Above this size, UploadPartCopy parts instead of one CopyObject (S3: 5 GiB). */
  readonly maxCopyObjectSize: number;
  /** Part copies sent at once. */
  readonly partsInFlight: number;
}

/** Copies `file` from its base on S3 on the server, or uploads it; the outcome as a copy's. */
export async function copyOnServerOrUpload(file: SourceFile, target: ObjectTarget, ctx: UploadContext, hooks: UploadHooks, settings: ServerCopySettings): Promise<FileOutcome> {
  const reuse = file.reuse as ReuseFrom;
  if (reuse.compare && (await hashSource(file, ctx, hooks)) !== reuse.checksum) {
    // Changed since the base: an ordinary upload, not a failure to reuse.
    return uploadOneFile(file, target, ctx, hooks);
  }
  const why = await copyOnServer(file, reuse, target, ctx, hooks, settings);
  if (why === undefined) {
    const reused: Reused = { method: 'serverCopy', check: reuse.compare ? 'checksum' : 'sizeMtime' };
    return { copied: { relativePath: file.relativePath, size: file.size, checksum: reuse.checksum, reused } };
  }
  const outcome = await uploadOneFile(file, target, ctx, hooks);
  return 'copied' in outcome ? { copied: { ...outcome.copied, notReused: why } } : outcome;
}

/**
 * The XXH3 of the source's first `size` bytes, read through the throttle as an upload
 * reads; undefined when it cannot be read in full (the upload then meets the same error
 * and reports it as it always does: skipping an optional file, say).
 */
async function hashSource(file: SourceFile, ctx: UploadContext, hooks: UploadHooks): Promise<string | undefined> {
  const buffer = await ctx.buffers.acquire(partSizeFor(file.size, ctx.minPartSize));
  try {
    return await checksumOf(file.path, file.size, buffer.subarray(0, Math.min(ctx.chunkSize, buffer.length)), hooks);
  } finally {
    ctx.buffers.release(buffer);
  }
}

/** Makes the server-side copy; undefined when done, or why it was not made. Throws on a stop or an unreachable server. */
async function copyOnServer(file: SourceFile, reuse: ReuseFrom, target: ObjectTarget, ctx: UploadContext, hooks: UploadHooks, settings: ServerCopySettings): Promise<string | undefined> {
  let base: { bucket: string; key: string };
  try {
    const location = parseS3Url(reuse.from, "The base's copy");
    if (location.prefix === '') return `the base's copy ${reuse.from} names no object`;
    base = { bucket: location.bucket, key: location.prefix };
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  const baseUrl = s3Url({ bucket: base.bucket, prefix: base.key });
  let etag: string;
  try {
    const head = await ctx.client.send(new HeadObjectCommand({ Bucket: base.bucket, Key: base.key }), { abortSignal: ctx.stop });
    if (head.ContentLength !== file.size) return `the base's copy ${baseUrl} is ${head.ContentLength ?? 'of unknown size'} bytes, not the ${file.size} its manifest lists`;
    const modified = head.LastModified;
    if (modified === undefined || head.ETag === undefined) return `S3 gave no ${modified === undefined ? 'LastModified' : 'ETag'} for the base's copy ${baseUrl}`;
    if (BigInt(modified.getTime()) * 1_000_000n > writtenAtNs(reuse.baseWrittenAt)) {
      return `the base's copy ${baseUrl} was modified (${modified.toISOString()}) after that backup's manifest was written (${reuse.baseWrittenAt}), so it may no longer hold the bytes its manifest lists`;
    }
    etag = head.ETag;
  } catch (err) {
    return refusal(requestError(err, ctx, 'read', base), `the base's copy ${baseUrl} cannot be read`);
  }
  const source = copySource(base);
  if (file.size <= settings.maxCopyObjectSize) {
    try {
      await ctx.client.send(
        new CopyObjectCommand({ Bucket: target.bucket, Key: target.key, CopySource: source, CopySourceIfMatch: etag }),
        { abortSignal: ctx.stop },
      );
      return undefined;
    } catch (err) {
      return refusal(requestError(err, ctx, 'copy', target), `the base's copy ${baseUrl} could not be copied on the server`);
    }
  }
  return copyInParts(file, source, etag, baseUrl, target, ctx, hooks, settings);
}

/** A copy above CopyObject's limit: a multipart upload of UploadPartCopy parts, several at a time. */
async function copyInParts(
  file: SourceFile,
  source: string,
  etag: string,
  baseUrl: string,
  target: ObjectTarget,
  ctx: UploadContext,
  hooks: UploadHooks,
  settings: ServerCopySettings,
): Promise<string | undefined> {
  const why = `the base's copy ${baseUrl} could not be copied on the server`;
  let uploadId: string | undefined;
  try {
    uploadId = (await ctx.client.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: target.key }), { abortSignal: ctx.stop })).UploadId;
  } catch (err) {
    return refusal(requestError(err, ctx, 'copy', target), why);
  }
  if (uploadId === undefined) return `S3 began a multipart copy to ${objectUrl(target)} without an UploadId`;
  const id = uploadId;
  // No byte of it passes through this thread: parts as large as S3 takes well, and no buffer.
  const partSize = partSizeFor(file.size, Math.max(ctx.minPartSize, Math.min(COPY_PART_SIZE, settings.maxCopyObjectSize)));
  // Reused bytes are not copied ones: progress counts the file as reused once it is done.
  const parts = new Parts(ctx, target, id, { ...hooks, chunkCopied: () => undefined });
  try {
    for (let number = 1, offset = 0; offset < file.size; number += 1, offset += partSize) {
      await parts.room(settings.partsInFlight);
      parts.throwIfFailed();
      const range = `bytes=${offset}-${Math.min(offset + partSize, file.size) - 1}`;
      const partNumber = number;
      parts.track(async () => {
        const reply = await ctx.client.send(
          new UploadPartCopyCommand({ Bucket: target.bucket, Key: target.key, UploadId: id, PartNumber: partNumber, CopySource: source, CopySourceRange: range, CopySourceIfMatch: etag }),
          { abortSignal: parts.signal },
        );
        const partEtag = reply.CopyPartResult?.ETag;
        if (partEtag === undefined || partEtag === '') throw new Error(`S3 copied part ${partNumber} to ${objectUrl(target)} without an ETag`);
        return partEtag;
      }, partNumber, 0);
    }
    await parts.completed();
    try {
      await ctx.client.send(
        new CompleteMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: id, MultipartUpload: { Parts: parts.list() } }),
        { abortSignal: ctx.stop },
      );
    } catch (err) {
      throw requestError(err, ctx, 'copy', target);
    }
    return undefined;
  } catch (err) {
    await parts.abandon();
    return refusal(err, why);
  }
}

/**
 * Why a server-side copy was refused, from its error: a reason to upload instead. A stop,
 * or a server that cannot be reached, is no reason: it is thrown, and ends the file.
 */
function refusal(err: unknown, why: string): string {
  if (err instanceof CopyStopped) throw err;
  if (err instanceof CommandError) {
    if (err.code === ErrorCodes.HostUnreachable) throw err;
    const { s3Code, s3Status } = err.extra;
    if (typeof s3Code === 'string') return `${why} (${s3Code}${typeof s3Status === 'number' ? `, HTTP ${s3Status}` : ''})`;
  }
  const facts = s3ErrorFacts(err);
  return `${why} (${facts.code}${facts.status === undefined ? '' : `, HTTP ${facts.status}`})`;
}

/** x-amz-copy-source: `bucket/key`, the key URL-encoded but for its slashes. */
function copySource(base: { bucket: string; key: string }): string {
  return `${base.bucket}/${encodeURIComponent(base.key).replace(/%2F/g, '/')}`;
}

/** The base's manifest time in ns; a malformed one (not ours) makes every object look modified since. */
function writtenAtNs(text: string): bigint {
  try {
    return mtimeNs(text);
  } catch {
    return -1n;
  }
}
