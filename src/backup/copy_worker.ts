/**
 * A copy worker: a worker thread that copies the files the copier sends it, one at a
 * time, with its own buffer (file_copy.ts), or only hashes them (verify: hash_files.ts),
 * or uploads them to S3 (src/s3/upload_job.ts). It runs no JavaScript of the proxy's, so
 * reading, hashing, writing and sending never hold up the event loop that forwards
 * clients' messages. Started and ended by copy_pool.ts; copy_messages.ts is the protocol.
 *
 * The S3 SDK is loaded on the first upload job only: a local copy does not pay for it.
 */
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { DIRECT_IO_ALIGNMENT, findDirectBuffer } from './direct_io.js';
import { CopyStopped, SourceTooShortError, hashOneFile } from './file_copy.js';
import { copyOrReuse } from './file_reuse.js';
import { lowerThreadPriority } from './thread_priority.js';
import { Flag, type CopyWorkerData, type FromWorker, type ToWorker, type WireError } from './copy_messages.js';
import type { FileOutcome } from './file_copy.js';
import type { UploadWorker } from '../s3/upload_job.js';
import { CommandError } from '../errors.js';

const port = parentPort;
if (port === null) throw new Error('copy_worker.js runs only as a worker thread');
const data = workerData as CopyWorkerData;
const flags = new Int32Array(data.flags);
const raw = Buffer.allocUnsafeSlow(data.chunkSize + DIRECT_IO_ALIGNMENT);
let buffer: Buffer = raw.subarray(0, data.chunkSize);
/** Decided at the first file, from its destination's filesystem (direct_io.ts). */
let direct: boolean | undefined = data.writes === 'direct' ? undefined : false;
lowerThreadPriority(data.niceness, data.ioClass);

const send = (message: FromWorker): void => port.postMessage(message);

/** The answer to the throttle request in flight, if any. */
let answer: ((granted: boolean) => void) | undefined;
/** Aborted by the pool's 'stop': what an upload waits on (S3's replies) is not a read that checks STOP. */
const stop = new AbortController();
/** Made at the first upload job: the SDK, an S3 client and the part buffers of this thread. */
let uploader: Promise<UploadWorker> | undefined;

function stopped(): boolean {
  return Atomics.load(flags, Flag.STOP) !== 0;
}

async function beforeRead(bytes: number): Promise<void> {
  if (stopped()) throw new CopyStopped();
  if (Atomics.load(flags, Flag.UNLIMITED) !== 0) return;
  const granted = await new Promise<boolean>((resolve) => {
    answer = resolve;
    send({ type: 'take', bytes });
  });
  if (!granted || stopped()) throw new CopyStopped();
}

async function run(message: Extract<ToWorker, { type: 'copy' | 'hash' | 'upload' }>): Promise<void> {
  const { index } = message;
  if (stopped()) {
    send({ type: 'stopped', index });
    return;
  }
  send({ type: 'started', index });
  const hooks = {
    beforeRead,
    chunkCopied: (bytes: number) => send({ type: 'chunk', index, bytes }),
    chunkCompared: (bytes: number) => send({ type: 'compared', index, bytes }),
  };
  try {
    let outcome: FileOutcome;
    if (message.type === 'hash') {
      send({ type: 'hashed', index, hashed: await hashOneFile(message.file, buffer, hooks) });
      return;
    } else if (message.type === 'upload') {
      if (data.upload === undefined) throw new Error('an upload job reached a copy thread started without S3 settings');
      const settings = data.upload;
      uploader ??= import('../s3/upload_job.js').then(({ UploadWorker }) => new UploadWorker(settings, data.chunkSize));
      const target = { bucket: message.bucket, key: message.key };
      outcome = await (await uploader).upload(message.file, target, { ...hooks, uploadLeft: (upload) => send({ type: 'uploadLeft', index, upload }) }, stop.signal);
    } else {
      if (direct === undefined) {
        const aligned = findDirectBuffer(path.dirname(message.target), raw, data.chunkSize);
        direct = aligned !== undefined;
        if (aligned !== undefined) buffer = aligned;
      }
      // A file of an incremental backup may be taken from its base instead (file_reuse.ts).
      outcome = await copyOrReuse(message.file, message.target, buffer, data.fileMode, hooks, direct);
    }
    if ('copied' in outcome) send({ type: 'finished', index, copied: outcome.copied });
    else send({ type: 'skipped', index, skipped: outcome.skipped, bytesReported: outcome.bytesReported });
  } catch (err) {
    if (err instanceof CopyStopped) send({ type: 'stopped', index });
    else send({ type: 'failed', index, error: toWireError(err) });
  }
}

function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const fields = err as NodeJS.ErrnoException & { dest?: unknown };
  const wire: WireError = { name: err.name, message: err.message };
  if (err.stack !== undefined) wire.stack = err.stack;
  if (typeof fields.code === 'string') wire.code = fields.code;
  if (typeof fields.errno === 'number') wire.errno = fields.errno;
  if (typeof fields.syscall === 'string') wire.syscall = fields.syscall;
  if (typeof fields.path === 'string') wire.path = fields.path;
  if (typeof fields.dest === 'string') wire.dest = fields.dest;
  if (err instanceof SourceTooShortError) {
    wire.expectedSize = err.expectedSize;
    wire.actualSize = err.actualSize;
  }
  // Its extra is plain data (S3's code and status): it survives the structured clone.
  if (err instanceof CommandError) wire.command = { code: err.code, codeName: err.codeName, extra: { ...err.extra } };
  return wire;
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'copy':
    case 'hash':
    case 'upload':
      void run(message);
      return;
    case 'stop':
      stop.abort();
      return;
    case 'grant':
    case 'deny': {
      const resolve = answer;
      answer = undefined;
      resolve?.(message.type === 'grant');
      return;
    }
    case 'exit':
      // The S3 client's idle keep-alive sockets go with it.
      void (uploader ?? Promise.resolve(undefined)).then(
        (upload) => upload?.close(),
        () => undefined,
      ).finally(() => port.close());
      return;
  }
});
