/**
 * One file, copied by one copy worker (copy_worker.ts): read, hash, write, fsync, with
 * synchronous calls. They block only the worker's own thread, never the proxy's
 * forwarding loop, and they skip the libuv thread pool round trip that every
 * `fs.promises` call pays (two thread hops and a promise per chunk).
 *
 * - One buffer per worker, reused for every chunk: no allocation per chunk.
 * - Writes go around the page cache (O_DIRECT) where the destination allows it, and
 *   through it elsewhere (direct_io.ts, destination_file.ts).
 * - The checksum (XXH3-64, checksum.ts) is fed from the same buffer the write reads, so
 *   every byte is read once (docs/performance.md has the measurements behind both choices).
 * - A source with holes (st_blocks says fewer bytes are allocated than its size) keeps
 *   them: an all-zero chunk of it is not written, and the destination is extended to
 *   its size at the end, as `cp --sparse=auto` does. A dense source is written as is,
 *   zeros included, so the copy takes the same disk space as the original.
 * - The file is copied exactly up to its listed size; one that ends sooner is an
 *   error, or skipped when listed `optional` (see copier.ts for the rules).
 * - Every failure leaves both handles closed.
 * - hashOneFile is the same loop without the write, for verify (hash_files.ts): one
 *   reading of a file, one checksum, whichever the job.
 */
import fs from 'node:fs';
import { startChecksum } from './checksum.js';
import type { CopiedFile, HashedFile, SkippedFile, SourceFile } from './copy_types.js';
import { errorCode } from './io_error.js';
import { DestinationFile, withPath } from './destination_file.js';

/** A source ended before its listed size: it was truncated or replaced since it was listed. */
export class SourceTooShortError extends Error {
  constructor(
    readonly path: string,
    readonly expectedSize: number,
    readonly actualSize: number,
  ) {
    super(`source ${path} is shorter than its listed size ${expectedSize}`);
    this.name = 'SourceTooShortError';
  }
}

/** The copy was told to stop (another worker failed, or the backup was aborted). */
export class CopyStopped extends Error {
  constructor() {
    super('copy stopped');
    this.name = 'CopyStopped';
  }
}

/** What the file copy asks of the worker around it. */
export interface FileCopyHooks {
  /** Before each read of `bytes`: resolves when the throttle allows it; throws CopyStopped if told to stop. */
  beforeRead(bytes: number): Promise<void> | void;
  /** `bytes` more were read, hashed and written (only read and hashed by hashOneFile). */
  chunkCopied(bytes: number): void;
}

export type FileOutcome = { copied: CopiedFile } | { skipped: SkippedFile; bytesReported: number };

/** All zeros, as long as the longest chunk seen; one per worker thread. */
let zeros = Buffer.alloc(0);
function zerosOf(length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(length);
  return zeros.subarray(0, length);
}

export async function copyOneFile(file: SourceFile, target: string, buffer: Buffer, fileMode: number, hooks: FileCopyHooks, direct = false): Promise<FileOutcome> {
  const checksum = startChecksum();
  let source: number | undefined;
  let dest: DestinationFile | undefined;
  let offset = 0;
  try {
    source = fs.openSync(file.path, 'r');
    dest = DestinationFile.create(target, fileMode, direct);
    const stat = fs.fstatSync(source);
    const sparse = stat.blocks * 512 < stat.size;
    let holeAtEnd = false;
    while (offset < file.size) {
      const want = Math.min(buffer.length, file.size - offset);
      await hooks.beforeRead(want);
      const bytesRead = withPath(file.path, () => fs.readSync(source as number, buffer, 0, want, offset));
      if (bytesRead === 0) throw new SourceTooShortError(file.path, file.size, offset);
      const chunk = buffer.subarray(0, bytesRead);
      checksum.update(chunk);
      holeAtEnd = sparse && chunk.equals(zerosOf(bytesRead));
      if (!holeAtEnd) dest.write(chunk, offset);
      offset += bytesRead;
      hooks.chunkCopied(bytesRead);
    }
    // Skipped zeros at the end would leave the copy short: give it its size.
    if (holeAtEnd) dest.truncate(file.size);
    dest.fsync();
  } catch (err) {
    closeQuietly(source);
    dest?.closeQuietly();
    const reason = file.optional === true ? skipReason(err, source === undefined) : undefined;
    if (reason === undefined) throw err;
    // Only what this worker created: the destination was opened 'wx'.
    if (dest !== undefined) fs.unlinkSync(target);
    return { skipped: { relativePath: file.relativePath, path: file.path, ...reason }, bytesReported: offset };
  }
  closeQuietly(source);
  dest.close();
  return { copied: { relativePath: file.relativePath, size: file.size, checksum: checksum.hex() } };
}

/**
 * The hash-only pass of the same loop, for verify: reads `file.size` bytes of `file.path`
 * through the same throttle hook and buffer, and hashes them as the copy would have; a
 * file shorter than that is a SourceTooShortError, as in a copy. Its size at open is
 * returned too, so the caller sees a file that grew since it was listed.
 */
export async function hashOneFile(file: SourceFile, buffer: Buffer, hooks: FileCopyHooks): Promise<HashedFile> {
  const checksum = startChecksum();
  const source = fs.openSync(file.path, 'r');
  try {
    const actualSize = fs.fstatSync(source).size;
    for (let offset = 0; offset < file.size; ) {
      const want = Math.min(buffer.length, file.size - offset);
      await hooks.beforeRead(want);
      const bytesRead = withPath(file.path, () => fs.readSync(source, buffer, 0, want, offset));
      if (bytesRead === 0) throw new SourceTooShortError(file.path, file.size, offset);
      checksum.update(buffer.subarray(0, bytesRead));
      offset += bytesRead;
      hooks.chunkCopied(bytesRead);
    }
    return { relativePath: file.relativePath, size: file.size, actualSize, checksum: checksum.hex() };
  } finally {
    closeQuietly(source);
  }
}

/**
 * Why an optional file may be skipped after `err` (thrown opening its source when
 * `openingSource`); undefined when it may not. Shared with the S3 upload (src/s3/), which
 * skips as a copy does.
 */
export function skipReason(err: unknown, openingSource: boolean): Pick<SkippedFile, 'reason' | 'detail'> | undefined {
  if (err instanceof SourceTooShortError) {
    return { reason: 'shrank', detail: `ended after ${err.actualSize} bytes while being copied (listed at ${err.expectedSize})` };
  }
  const code = errorCode(err);
  if (openingSource && code === 'ENOENT') {
    return { reason: 'vanished', detail: 'vanished before it could be copied (ENOENT)' };
  }
  // A sidecar often runs as another user than mongod: a private log or keyfile of
  // mongod's is no reason to refuse a backup whose WiredTiger files are all readable.
  if (openingSource && (code === 'EACCES' || code === 'EPERM')) {
    return { reason: 'unreadable', detail: `could not be read by the proxy (${code})` };
  }
  return undefined;
}

export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    fs.closeSync(fd);
  } catch {
    // Already failing: the first error is the one to report.
  }
}
