/**
 * STAND-IN for slice B1's uploader (issue 14), with the contract's exact signature, so
 * that the engine can be built and tested end to end before B1 lands; replaced by B1's
 * multipart uploader on its copy threads when that branch is merged.
 *
 * Each file is one streamed PutObject on the main thread (reads throttled by the
 * process-wide limiter, hashed with XXH3 as they pass, reported chunk by chunk); a file
 * whose `reuse.from` is an s3:// URL is copied server-side (CopyObject) unless it must be
 * compared by content, when it is uploaded.
 */
import fs from 'node:fs';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { CopyObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startChecksum } from '../backup/checksum.js';
import { DEFAULT_CONCURRENCY, type Limiter } from '../backup/copy_pool.js';
import { noProgress, type CopyProgress } from '../backup/progress.js';
import type { CopiedFile, CopyResult, SkippedFile, SourceFile } from '../backup/copy_types.js';
import { createS3Client, type S3Settings } from './s3_client.js';
import { objectKey, parseS3Url, type S3Location } from './s3_location.js';
import { errorCode } from '../backup/io_error.js';

export interface UploadOptions {
  /** s3_client.ts; each copy thread builds its own client from it. */
  settings: S3Settings;
  /** copy_pool.ts: the process-wide TokenBucket; reads are throttled. */
  limiter: Limiter;
  /** Files at once (copy threads); default DEFAULT_CONCURRENCY. */
  concurrency?: number;
  /** progress.ts: same calls as copyFiles makes. */
  progress?: CopyProgress;
  /** Abort: every in-flight multipart upload is aborted before it rejects. */
  signal?: AbortSignal;
}

const CHUNK = 1024 * 1024;

/** Uploads `files` to `<destination>/<relativePath>`; same result shape as copyFiles. */
export async function uploadFiles(files: readonly SourceFile[], destination: S3Location, options: UploadOptions): Promise<CopyResult> {
  const client = createS3Client(options.settings);
  const progress = options.progress ?? noProgress;
  const outcomes = new Map<SourceFile, CopiedFile | SkippedFile>();
  const queue = [...files].sort((a, b) => b.size - a.size);
  const inner = new AbortController();
  const signal = options.signal === undefined ? inner.signal : AbortSignal.any([options.signal, inner.signal]);
  const worker = async (): Promise<void> => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      signal.throwIfAborted();
      outcomes.set(file, await uploadOne(client, file, destination, options.limiter, progress, signal));
    }
  };
  try {
    const workers = Array.from({ length: Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY) }, () => worker());
    const settled = await Promise.allSettled(workers.map((w) => w.catch((err: unknown) => {
      inner.abort(err);
      throw err;
    })));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw options.signal?.aborted === true ? options.signal.reason : failed.reason;
  } finally {
    client.destroy();
  }
  const copied: CopiedFile[] = [];
  const skipped: SkippedFile[] = [];
  for (const file of files) {
    const outcome = outcomes.get(file);
    if (outcome === undefined) continue;
    if ('reason' in outcome) skipped.push(outcome);
    else copied.push(outcome);
  }
  return { copied, skipped };
}

async function uploadOne(client: S3Client, file: SourceFile, destination: S3Location, limiter: Limiter, progress: CopyProgress, signal: AbortSignal): Promise<CopiedFile | SkippedFile> {
  const key = objectKey(destination, file.relativePath);
  const reuse = file.reuse;
  if (reuse !== undefined && !reuse.compare && reuse.from.startsWith('s3://')) {
    const from = parseS3Url(reuse.from);
    progress.fileStarted(file);
    await client.send(new CopyObjectCommand({ Bucket: destination.bucket, Key: key, CopySource: `${from.bucket}/${encodeURIComponent(from.prefix).replace(/%2F/g, '/')}` }), { abortSignal: signal });
    const copied: CopiedFile = { relativePath: file.relativePath, size: file.size, checksum: reuse.checksum, reused: { method: 'serverCopy', check: 'sizeMtime' } };
    progress.fileFinished(file, copied);
    return copied;
  }
  let stream: fs.ReadStream;
  try {
    await fs.promises.access(file.path, fs.constants.R_OK);
  } catch (err) {
    if (file.optional === true && errorCode(err) === 'ENOENT') {
      return { relativePath: file.relativePath, path: file.path, reason: 'vanished', detail: 'vanished before it could be copied (ENOENT)' };
    }
    throw err;
  }
  progress.fileStarted(file);
  const checksum = startChecksum();
  let seen = 0;
  stream = fs.createReadStream(file.path, { start: 0, end: Math.max(0, file.size - 1), highWaterMark: CHUNK });
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      limiter.take(chunk.length, signal).then(
        () => {
          checksum.update(chunk);
          seen += chunk.length;
          progress.chunkCopied(file, chunk.length);
          done(null, chunk);
        },
        (err: unknown) => done(err as Error),
      );
    },
  });
  // pipeline: an error on either side (an abort in the limiter) is handled; the SDK's send rejects with it.
  const body = file.size === 0 ? Buffer.alloc(0) : pipeline(stream, meter, () => undefined);
  if (file.size === 0) stream.destroy();
  try {
    await client.send(new PutObjectCommand({ Bucket: destination.bucket, Key: key, Body: body, ContentLength: file.size }), { abortSignal: signal });
  } finally {
    stream.destroy();
  }
  if (seen !== file.size) throw new Error(`${file.path} ended after ${seen} of its ${file.size} bytes`);
  const copied: CopiedFile = { relativePath: file.relativePath, size: file.size, checksum: checksum.hex() };
  progress.fileFinished(file, copied);
  return copied;
}
