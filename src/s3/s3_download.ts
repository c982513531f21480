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
 *
 * A transfer cut short (a connection reset, a body that ends early, a 5xx or a server
 * that cannot be reached on a later request) is resumed where it stopped: a ranged GET
 * (RFC 9110 §14.2) from the bytes already hashed and handed over, conditional on the
 * first reply's ETag (If-Match, RFC 9110 §13.1.1) so that an object replaced meanwhile
 * fails (412) instead of splicing two objects. The SDK retries a request that fails
 * before its reply; once a body is streaming, only this resumes it. A resumed reply must
 * be the part asked for (206 with a Content-Range from the byte asked, RFC 9110 §15.3.7):
 * a server that ignores Range answers 200 with the whole object, which must not be
 * hashed after the bytes already received; that read fails, as a transfer, not as
 * damage. After `attempts` tries in a row that received nothing (or `total` tries in
 * all) the last error stands: the object could not be read, which says nothing about the
 * object itself.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startChecksum } from '../backup/checksum.js';
import type { Limiter } from '../backup/copy_pool.js';
import { s3ErrorFacts } from './s3_errors.js';

export interface ReadObjectOptions {
  /** The process's throttle: every byte received is taken from it before the next is read. */
  limiter: Limiter;
  /** The size the manifest lists: reading stops once an object proves longer. */
  expectedSize: number;
  /** Each chunk, in order, once hashed; the next is read once it resolves. */
  sink?: (chunk: Buffer) => Promise<void> | void;
  /** Aborting destroys the stream; readObject then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** How often a transfer cut short is resumed; default DEFAULT_READ_RETRIES. */
  retry?: ReadRetry;
}

export interface ReadRetry {
  /** GETs in a row that received nothing before failing, the first included: a resume that made progress starts the count again. */
  readonly attempts: number;
  /** GETs in all, however much each received: a bound on a link that keeps cutting. */
  readonly total: number;
  /** The wait before the first resume, doubled before each next one. */
  readonly firstDelayMs: number;
}

export const DEFAULT_READ_RETRIES: ReadRetry = Object.freeze({ attempts: 5, total: 50, firstDelayMs: 200 });

/** An error of the sink (the restore's disk): the caller's, never retried nor said as S3's. */
export class SinkError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
    this.name = 'SinkError';
  }
}

export interface ObjectRead {
  /** The object's length, as the reply said it (or as counted, without a Content-Length). */
  size: number;
  /** XXH3-64 of its bytes; meaningful only when `size` is the expected one. */
  checksum: string;
}

export async function readObject(client: S3Client, bucket: string, key: string, options: ReadObjectOptions): Promise<ObjectRead> {
  const { signal } = options;
  const retry = options.retry ?? DEFAULT_READ_RETRIES;
  const checksum = startChecksum();
  const state: ReadState = { received: 0, announced: undefined, etag: undefined };
  let attempt = 0;
  for (let total = 1; ; total++) {
    signal?.throwIfAborted();
    const before = state.received;
    try {
      const done = await readFrom(client, bucket, key, options, checksum, state);
      if (done) return { size: Math.max(state.received, state.announced ?? 0), checksum: checksum.hex() };
      return { size: state.received, checksum: checksum.hex() };
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      if (err instanceof SinkError) throw err.original;
      // A GET that received bytes before it was cut made progress: the count starts again with it.
      attempt = state.received > before ? 1 : attempt + 1;
      if (attempt >= retry.attempts || total >= retry.total || !isTransient(err)) throw err;
      await sleep(retry.firstDelayMs * 2 ** (attempt - 1), undefined, signal === undefined ? {} : { signal }).catch(() => {
        throw signal?.reason;
      });
    }
  }
}

interface ReadState {
  /** Bytes hashed and handed to the sink so far: where a resumed GET starts. */
  received: number;
  /** The object's whole length, from the first reply. */
  announced: number | undefined;
  /** The first reply's ETag: a resumed GET must read the same object. */
  etag: string | undefined;
}

/**
 * One GET, from `state.received` on. Resolves true when the object proved longer than
 * expected (reading stopped), false when it ended at its announced length.
 */
async function readFrom(client: S3Client, bucket: string, key: string, options: ReadObjectOptions, checksum: ReturnType<typeof startChecksum>, state: ReadState): Promise<boolean> {
  const { signal } = options;
  const resumed = state.received > 0;
  const input = {
    Bucket: bucket,
    Key: key,
    ...(resumed ? { Range: `bytes=${state.received}-`, ...(state.etag === undefined ? {} : { IfMatch: state.etag }) } : {}),
  };
  const reply = await client.send(new GetObjectCommand(input), ...(signal === undefined ? [] : [{ abortSignal: signal }]));
  const body = reply.Body as Readable | undefined;
  if (!resumed) {
    state.announced = reply.ContentLength;
    state.etag = reply.ETag;
  } else if (reply.$metadata.httpStatusCode !== 206 || reply.ContentRange?.startsWith(`bytes ${state.received}-`) !== true) {
    body?.destroy();
    throw new RangeIgnoredError(bucket, key, state.received, reply.$metadata.httpStatusCode, reply.ContentRange);
  }
  if (body === undefined) {
    if (state.announced !== undefined && state.received < state.announced) throw new TruncatedError(bucket, key, state.received, state.announced);
    return false;
  }
  const onAbort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const data of body) {
      const chunk = data as Buffer;
      await options.limiter.take(chunk.length, signal);
      state.received += chunk.length;
      if (state.received > options.expectedSize) return true;
      checksum.update(chunk);
      if (options.sink !== undefined) {
        try {
          await options.sink(chunk);
        } catch (err) {
          throw new SinkError(err);
        }
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    body.destroy();
  }
  // A body cut short with no error from the socket: a transfer that failed, not an object of that size.
  if (state.announced !== undefined && state.received < state.announced) throw new TruncatedError(bucket, key, state.received, state.announced);
  return false;
}

class TruncatedError extends Error {
  constructor(bucket: string, key: string, received: number, announced: number) {
    super(`the download of s3://${bucket}/${key} ended after ${received} of its ${announced} bytes`);
    this.name = 'TruncatedError';
  }
}

/** A resumed GET answered with other bytes than those asked for: not resumable, never spliced. */
class RangeIgnoredError extends Error {
  constructor(bucket: string, key: string, from: number, status: number | undefined, range: string | undefined) {
    super(
      `the download of s3://${bucket}/${key} was cut after ${from} bytes and could not be resumed: ` +
        `the server answered the request for the rest with HTTP ${status ?? '?'}${range === undefined ? ' and no Content-Range' : `, Content-Range ${range}`}, not the part asked for`,
    );
    this.name = 'RangeIgnoredError';
  }
}

/**
 * Whether a failed GET may succeed when tried again: the transfer's fault (a socket
 * error, a body cut short, no reply, a 5xx, throttling), not the object's (missing, 412:
 * replaced meanwhile) nor the caller's (refused credentials, 4xx).
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof TruncatedError) return true;
  if (err instanceof RangeIgnoredError) return false;
  const facts = s3ErrorFacts(err);
  if (facts.status !== undefined) return facts.status >= 500 || facts.status === 429 || facts.code === 'SlowDown' || facts.code === 'RequestTimeout';
  return true;
}
