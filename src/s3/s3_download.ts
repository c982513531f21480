/**
 * Reads one object as a stream (one GetObject), never whole in memory: each chunk the
 * socket gives is first paid for to the throttle, then fed to the XXH3 checksum the
 * manifest lists (checksum.ts), then handed to `sink` (a restore's file) before the next
 * is read. While the throttle or the sink makes it wait, the stream is not read, so TCP's
 * flow control slows the server down: what is in flight is the socket's buffers, not the
 * object.
 *
 * An object longer than expected is not read past `expectedSize` plus one chunk: its
 * length is what the reply said (Content-Length).
 */
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startChecksum } from '../backup/checksum.js';
import type { Limiter } from '../backup/copy_pool.js';

export interface ReadObjectOptions {
  /** The process's throttle: every byte received is taken from it before the next is read. */
  limiter: Limiter;
  /** The size the manifest lists: reading stops once an object proves longer. */
  expectedSize: number;
  /** Each chunk, in order, once hashed; the next is read once it resolves. */
  sink?: (chunk: Buffer) => Promise<void> | void;
  /** Aborting destroys the stream; readObject then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

export interface ObjectRead {
  /** The object's length, as the reply said it (or as counted, without a Content-Length). */
  size: number;
  /** XXH3-64 of its bytes; meaningful only when `size` is the expected one. */
  checksum: string;
}

export async function readObject(client: S3Client, bucket: string, key: string, options: ReadObjectOptions): Promise<ObjectRead> {
  const { signal } = options;
  signal?.throwIfAborted();
  const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), ...(signal === undefined ? [] : [{ abortSignal: signal }]));
  const body = reply.Body as Readable | undefined;
  const announced = reply.ContentLength;
  if (body === undefined) return { size: announced ?? 0, checksum: startChecksum().hex() };
  const onAbort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const checksum = startChecksum();
  let received = 0;
  try {
    for await (const data of body) {
      const chunk = data as Buffer;
      await options.limiter.take(chunk.length, signal);
      received += chunk.length;
      if (received > options.expectedSize) break;
      checksum.update(chunk);
      if (options.sink !== undefined) await options.sink(chunk);
    }
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason;
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    body.destroy();
  }
  if (received > options.expectedSize) return { size: Math.max(received, announced ?? 0), checksum: checksum.hex() };
  // A body cut short with no error from the socket: a transfer that failed, not an object of that size.
  if (announced !== undefined && received < announced) throw new Error(`the download of s3://${bucket}/${key} ended after ${received} of its ${announced} bytes`);
  return { size: received, checksum: checksum.hex() };
}
