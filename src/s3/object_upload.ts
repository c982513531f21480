/**
 * One file to one S3 object, on a copy thread (upload_job.ts): read in order, hashed as
 * the copier hashes (XXH3-64 of exactly `size` bytes, checksum.ts), and sent with the
 * MD5 of each request's body as Content-MD5, which S3 and radosgw check before they
 * store anything (RFC 1864; radosgw 16 ignores the newer x-amz-checksum-* headers).
 *
 * - A file of at most one part goes up with one PutObject; a larger one as a multipart
 *   upload whose parts (part_size.ts) are sent several at a time, each from a buffer of
 *   the thread's PartBuffers, while the next is read: reads stay sequential, one throttle
 *   request per chunk as in a copy, and the XXH3 sees the bytes in file order.
 * - Progress counts bytes when S3 has acknowledged them (a part, or the object), not
 *   when read: the bar then never shows as done what a failure would lose, and the
 *   difference from the reads is at most the parts in flight.
 * - A file still growing is cut at its listed size; an `optional` file that vanished or
 *   shrank is skipped as the copier skips it (file_copy.ts skipReason), its multipart
 *   upload aborted.
 * - On any failure, or when the run stops, every part request in flight is aborted
 *   (the SDK's abortSignal) and has settled, then the multipart upload is aborted, so
 *   no part is left stored and billed; one that cannot be aborted (the server is gone)
 *   is reported through `uploadLeft`, for the caller to retry later.
 * - CompleteMultipartUpload's reply is not read for an ETag: radosgw 16 returns an
 *   empty one (a known radosgw bug; HeadObject has it right). Each part's own ETag, from
 *   its UploadPart reply, is what Complete needs.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { startChecksum, type RunningChecksum } from '../backup/checksum.js';
import { closeQuietly, CopyStopped, skipReason, SourceTooShortError, type FileOutcome } from '../backup/file_copy.js';
import { withPath } from '../backup/destination_file.js';
import type { SourceFile } from '../backup/copy_types.js';
import type { UploadLeft } from '../backup/copy_messages.js';
import { s3CommandError } from './s3_errors.js';
import { abortMultipartUpload } from './s3_objects.js';
import { partSizeFor } from './part_size.js';
import type { PartBuffers } from './part_buffers.js';

/** Where a file goes. */
export interface ObjectTarget {
  readonly bucket: string;
  readonly key: string;
}

/** What one copy thread uploads with. */
export interface UploadContext {
  readonly client: S3Client;
  readonly buffers: PartBuffers;
  /** Bytes per read, each one asked of the throttle first. */
  readonly chunkSize: number;
  readonly minPartSize: number;
  /** Aborted when the run stops: every request in flight is aborted. */
  readonly stop: AbortSignal;
}

/** What the upload tells the thread around it. */
export interface UploadHooks {
  /** Before each read of `bytes`: resolves when the throttle allows; throws CopyStopped when told to stop. */
  beforeRead(bytes: number): Promise<void> | void;
  /** `bytes` more are stored on S3: a part, or the whole object, acknowledged. */
  chunkCopied(bytes: number): void;
  /** `bytes` more of the source were hashed to compare it with an incremental base (server_copy.ts). */
  chunkCompared(bytes: number): void;
  /** A multipart upload was begun and could not be aborted. */
  uploadLeft(upload: UploadLeft): void;
}

export function objectUrl(target: ObjectTarget): string {
  return `s3://${target.bucket}/${target.key}`;
}

/**
 * An S3 request's failure as the error to report: CopyStopped when the run is stopping
 * (its abort is why it failed), else a CommandError naming S3's code (s3_errors.ts).
 */
export function requestError(err: unknown, ctx: UploadContext, action: string, target: ObjectTarget): Error {
  if (ctx.stop.aborted) return new CopyStopped();
  return s3CommandError(err, action, objectUrl(target));
}

/** Uploads `file` as `target`: its outcome, as a copy's (copied with its checksum, or skipped). */
export async function uploadOneFile(file: SourceFile, target: ObjectTarget, ctx: UploadContext, hooks: UploadHooks): Promise<FileOutcome> {
  let fd: number;
  try {
    fd = fs.openSync(file.path, 'r');
  } catch (err) {
    const reason = file.optional === true ? skipReason(err, true) : undefined;
    if (reason === undefined) throw err;
    return { skipped: { relativePath: file.relativePath, path: file.path, ...reason }, bytesReported: 0 };
  }
  const stored = { bytes: 0 };
  const counted: UploadHooks = {
    ...hooks,
    chunkCopied: (bytes) => {
      stored.bytes += bytes;
      hooks.chunkCopied(bytes);
    },
  };
  try {
    const checksum = startChecksum();
    const partSize = partSizeFor(file.size, ctx.minPartSize);
    if (file.size <= partSize) await putWhole(fd, file, target, ctx, counted, checksum, partSize);
    else await putInParts(fd, file, target, ctx, counted, checksum, partSize);
    return { copied: { relativePath: file.relativePath, size: file.size, checksum: checksum.hex() } };
  } catch (err) {
    const reason = file.optional === true ? skipReason(err, false) : undefined;
    if (reason === undefined) throw err;
    return { skipped: { relativePath: file.relativePath, path: file.path, ...reason }, bytesReported: stored.bytes };
  } finally {
    closeQuietly(fd);
  }
}

/** A file of at most one part: one PutObject. */
async function putWhole(fd: number, file: SourceFile, target: ObjectTarget, ctx: UploadContext, hooks: UploadHooks, checksum: RunningChecksum, partSize: number): Promise<void> {
  // An empty file needs no buffer: a thread that only ever meets those allocates none.
  const buffer = file.size === 0 ? Buffer.alloc(0) : await ctx.buffers.acquire(partSize);
  try {
    const md5 = await readPart(fd, file, buffer, 0, file.size, checksum, ctx, hooks);
    const body = buffer.subarray(0, file.size);
    try {
      await ctx.client.send(
        new PutObjectCommand({ Bucket: target.bucket, Key: target.key, Body: body, ContentLength: body.length, ContentMD5: md5 }),
        { abortSignal: ctx.stop },
      );
    } catch (err) {
      throw requestError(err, ctx, 'upload', target);
    }
    hooks.chunkCopied(file.size);
  } finally {
    if (file.size > 0) ctx.buffers.release(buffer);
  }
}

/** A larger file: a multipart upload, parts sent while the next is read. */
async function putInParts(fd: number, file: SourceFile, target: ObjectTarget, ctx: UploadContext, hooks: UploadHooks, checksum: RunningChecksum, partSize: number): Promise<void> {
  let uploadId: string | undefined;
  try {
    uploadId = (await ctx.client.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: target.key }), { abortSignal: ctx.stop })).UploadId;
  } catch (err) {
    throw requestError(err, ctx, 'upload', target);
  }
  if (uploadId === undefined) throw new Error(`S3 began a multipart upload of ${objectUrl(target)} without an UploadId`);
  const parts = new Parts(ctx, target, uploadId, hooks);
  try {
    for (let number = 1, offset = 0; offset < file.size; number += 1, offset += partSize) {
      const buffer = await ctx.buffers.acquire(partSize);
      const length = Math.min(partSize, file.size - offset);
      let md5: string;
      try {
        parts.throwIfFailed();
        md5 = await readPart(fd, file, buffer, offset, length, checksum, ctx, hooks, parts.failed);
        parts.throwIfFailed();
      } catch (err) {
        ctx.buffers.release(buffer);
        throw err;
      }
      parts.send(number, buffer, length, md5);
    }
    await parts.completed();
    try {
      await ctx.client.send(
        new CompleteMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId, MultipartUpload: { Parts: parts.list() } }),
        { abortSignal: ctx.stop },
      );
    } catch (err) {
      throw requestError(err, ctx, 'upload', target);
    }
  } catch (err) {
    await parts.abandon();
    throw err;
  }
}

/**
 * The parts of one multipart upload in flight: each holds its buffer until its request
 * has settled; the first failure aborts the others, and is what the upload fails with.
 */
export class Parts {
  readonly #done: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #signal: AbortSignal;
  #failure: { error: Error } | undefined;
  #rejectFailed: (error: Error) => void = () => undefined;
  /**
   * Rejects with the first failure: a read waiting on the throttle (a chunk may wait
   * long at a low rate) gives up at once instead of noticing only at its next part.
   */
  readonly failed = new Promise<never>((_, reject) => (this.#rejectFailed = reject));

  constructor(
    private readonly ctx: UploadContext,
    private readonly target: ObjectTarget,
    private readonly uploadId: string,
    private readonly hooks: UploadHooks,
  ) {
    this.#signal = AbortSignal.any([ctx.stop, this.#abort.signal]);
    // Nobody may be waiting on it when it rejects.
    this.failed.catch(() => undefined);
  }

  /** The signal every part request of this upload is sent with. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  /** Sends a part read into `buffer`; gives the buffer back once the request settled. */
  send(number: number, buffer: Buffer, length: number, md5: string): void {
    const { bucket, key } = this.target;
    const body = buffer.subarray(0, length);
    this.track(
      async () => {
        const reply = await this.ctx.client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: this.uploadId, PartNumber: number, Body: body, ContentLength: length, ContentMD5: md5 }),
          { abortSignal: this.#signal },
        );
        if (reply.ETag === undefined || reply.ETag === '') throw new Error(`S3 acknowledged part ${number} of ${objectUrl(this.target)} without an ETag`);
        return reply.ETag;
      },
      number,
      length,
      () => this.ctx.buffers.release(buffer),
    );
  }

  /** Runs one part's request (an upload or a server-side copy) and records its ETag. */
  track(request: () => Promise<string>, number: number, length: number, settled: () => void = () => undefined): void {
    const part = (async () => {
      try {
        const etag = await request();
        this.#done.push({ PartNumber: number, ETag: etag });
        this.hooks.chunkCopied(length);
      } catch (err) {
        this.fail(err instanceof CopyStopped ? err : requestError(err, this.ctx, 'upload', this.target));
      } finally {
        settled();
      }
    })();
    this.#inFlight.add(part);
    void part.finally(() => this.#inFlight.delete(part));
  }

  /** Waits until fewer than `limit` parts are in flight. */
  async room(limit: number): Promise<void> {
    while (this.#inFlight.size >= limit) await Promise.race([...this.#inFlight]);
  }

  /** The first failure fails the upload; the other parts' requests are aborted. */
  fail(error: Error): void {
    if (this.#failure === undefined) {
      this.#failure = { error };
      this.#rejectFailed(error);
    }
    this.#abort.abort();
  }

  /** Waits for every part in flight; throws the first failure. */
  async completed(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    this.throwIfFailed();
  }

  /** The parts stored, in order, for CompleteMultipartUpload. */
  list(): CompletedPart[] {
    return [...this.#done].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  }

  /**
   * Aborts the requests in flight, waits until they settled (their buffers are free and
   * no part can land after the abort), then aborts the multipart upload itself: sent
   * even when the run stops, within the client's timeouts and retries.
   */
  async abandon(): Promise<void> {
    this.#abort.abort();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    const upload = { bucket: this.target.bucket, key: this.target.key, uploadId: this.uploadId };
    try {
      await abortMultipartUpload(this.ctx.client, upload.bucket, upload);
    } catch {
      this.hooks.uploadLeft(upload);
    }
  }
}

/**
 * Reads `length` bytes of the file at `fileOffset` into `buffer`, one throttled chunk at
 * a time, feeding the file's XXH3 and returning the part's MD5 (base64, Content-MD5).
 * Both hashes read each chunk while it is in the cache.
 */
async function readPart(
  fd: number,
  file: SourceFile,
  buffer: Buffer,
  fileOffset: number,
  length: number,
  checksum: RunningChecksum,
  ctx: UploadContext,
  hooks: UploadHooks,
  interrupted?: Promise<never>,
): Promise<string> {
  const md5 = createHash('md5');
  for (let at = 0; at < length; ) {
    const want = Math.min(ctx.chunkSize, length - at);
    const allowed = hooks.beforeRead(want);
    // A throttle request given up on is answered later all the same (the failure stops
    // the run, and the pool denies it): the thread asks nothing more meanwhile.
    if (allowed !== undefined) await (interrupted === undefined ? allowed : Promise.race([allowed, interrupted]));
    const bytesRead = withPath(file.path, () => fs.readSync(fd, buffer, at, want, fileOffset + at));
    if (bytesRead === 0) throw new SourceTooShortError(file.path, file.size, fileOffset + at);
    const chunk = buffer.subarray(at, at + bytesRead);
    checksum.update(chunk);
    md5.update(chunk);
    at += bytesRead;
    // A turn of the event loop: the parts in flight go on being written to their
    // sockets while this one is read (a synchronous read loop would stall them).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return md5.digest('base64');
}
