/**
 * A copy worker: a worker thread that copies the files the copier sends it, one at a
 * time, with its own buffer (file_copy.ts), or only hashes them (verify: hash_files.ts). It runs no JavaScript of the proxy's, so
 * reading, hashing and writing never hold up the event loop that forwards clients'
 * messages. Started and ended by copier.ts; copy_messages.ts is the protocol.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { CopyStopped, SourceTooShortError, copyOneFile, hashOneFile } from './file_copy.js';
import { Flag, type CopyWorkerData, type FromWorker, type ToWorker, type WireError } from './copy_messages.js';

const port = parentPort;
if (port === null) throw new Error('copy_worker.js runs only as a worker thread');
const data = workerData as CopyWorkerData;
const flags = new Int32Array(data.flags);
const buffer = Buffer.allocUnsafe(data.chunkSize);
lowerThreadPriority(data.niceness);

/**
 * The copy yields the CPU to the proxy's forwarding thread and to mongod: on Linux a
 * thread has its own nice value, and setpriority(PRIO_PROCESS, tid) sets it for that
 * thread alone (man 2 setpriority, "BUGS"). Node names no thread ids, but
 * /proc/thread-self links to "<pid>/task/<tid>". Best effort: elsewhere the copy runs
 * at the process's priority.
 */
function lowerThreadPriority(niceness: number): void {
  try {
    const tid = Number(path.basename(fs.readlinkSync('/proc/thread-self')));
    if (Number.isSafeInteger(tid) && tid !== process.pid) os.setPriority(tid, Math.max(os.getPriority(tid), niceness));
  } catch {
    // No /proc, or not Linux: nothing to lower.
  }
}

const send = (message: FromWorker): void => port.postMessage(message);

/** The answer to the throttle request in flight, if any. */
let answer: ((granted: boolean) => void) | undefined;

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

async function run(message: Extract<ToWorker, { type: 'copy' | 'hash' }>): Promise<void> {
  const { index } = message;
  if (stopped()) {
    send({ type: 'stopped', index });
    return;
  }
  send({ type: 'started', index });
  const hooks = { beforeRead, chunkCopied: (bytes: number) => send({ type: 'chunk', index, bytes }) };
  try {
    if (message.type === 'hash') {
      send({ type: 'hashed', index, hashed: await hashOneFile(message.file, buffer, hooks) });
      return;
    }
    const outcome = await copyOneFile(message.file, message.target, buffer, data.fileMode, hooks);
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
  return wire;
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'copy':
    case 'hash':
      void run(message);
      return;
    case 'grant':
    case 'deny': {
      const resolve = answer;
      answer = undefined;
      resolve?.(message.type === 'grant');
      return;
    }
    case 'exit':
      port.close();
      return;
  }
});
