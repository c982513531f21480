/**
 * Makes clones that were made straight in a backup's destination into what the copier
 * would have left there: each file exactly its listed size, mode 0600, its XXH3-64
 * checksum computed from its bytes, fsynced, and every directory that gained entries
 * fsynced; the engine then writes the manifest last, as after a copy.
 *
 * The clones' bytes are read back to be hashed: a checksum must say what the backup
 * holds, not what we believe it holds. Reads go through the thread pool (fs.promises);
 * the hash runs on the calling thread, one chunk at a time: XXH3 takes ~50 µs for a
 * 1 MiB chunk (manifest.ts: ~20 GiB/s), so the proxy's event loop is never held for
 * longer than that at once, and there is no throttle to answer between chunks.
 */
import fs from 'node:fs/promises';
import { startChecksum } from './checksum.js';
import { fsyncDirectory } from './durable.js';
import { SourceTooShortError } from './file_copy.js';
import type { CopyProgress } from './progress.js';
import type { CopiedFile, CopyResult, SkippedFile, SourceFile } from './copy_types.js';

export interface SealOptions {
  progress: CopyProgress;
  /** Aborting stops between chunks; sealClones then rejects with the signal's reason. */
  signal: AbortSignal;
  /** Files read at once. */
  concurrency: number;
  /** Bytes per read. Default 1 MiB. */
  chunkSize?: number;
}

type Outcome = { copied: CopiedFile } | { skipped: SkippedFile };

/**
 * Seals `files` (each `path` a clone in the destination, `size` the size to keep: the
 * reflink strategy reads it from the clone after the unlock), then fsyncs `directories`. Returns what a copy of them would have returned.
 */
export async function sealClones(files: readonly SourceFile[], directories: readonly string[], options: SealOptions): Promise<CopyResult> {
  const chunkSize = options.chunkSize ?? 1024 * 1024;
  const outcomes: Outcome[] = new Array<Outcome>(files.length);
  // Largest first, as the copier hands files out: one big file started last does not run alone.
  const queue = files.map((_, i) => i).sort((a, b) => (files[b] as SourceFile).size - (files[a] as SourceFile).size || a - b);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(chunkSize);
    while (failure === undefined && next < queue.length) {
      const index = queue[next++] as number;
      try {
        outcomes[index] = await sealOne(files[index] as SourceFile, buffer, options);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, files.length)) }, lane));
  if (failure !== undefined) throw failure.err;
  options.signal.throwIfAborted();
  for (const dir of directories) await fsyncDirectory(dir);
  const result: CopyResult = { copied: [], skipped: [] };
  for (const outcome of outcomes) {
    if ('copied' in outcome) result.copied.push(outcome.copied);
    else result.skipped.push(outcome.skipped);
  }
  return result;
}

async function sealOne(file: SourceFile, buffer: Buffer, options: SealOptions): Promise<Outcome> {
  options.signal.throwIfAborted();
  options.progress.fileStarted(file);
  const handle = await fs.open(file.path, 'r+');
  try {
    const { size: actual } = await handle.stat();
    if (actual < file.size) {
      // Written to under the lock (only a file mongod does not need may be): as the copier does.
      if (file.optional !== true) throw new SourceTooShortError(file.path, file.size, actual);
      await handle.close();
      await fs.rm(file.path, { force: true });
      const skipped: SkippedFile = { relativePath: file.relativePath, path: file.path, reason: 'shrank', detail: `shrank from ${file.size} to ${actual} bytes while it was cloned` };
      options.progress.fileSkipped(file, skipped, 0);
      return { skipped };
    }
    // Bytes past the listed size belong to no checkpoint: the copy would not have them either.
    if (actual > file.size) await handle.truncate(file.size);
    await handle.chmod(0o600);
    const checksum = startChecksum();
    for (let position = 0; position < file.size; ) {
      options.signal.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, file.size - position), position);
      if (bytesRead === 0) throw new SourceTooShortError(file.path, file.size, position);
      checksum.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
      options.progress.chunkCopied(file, bytesRead);
    }
    await handle.sync();
    const copied: CopiedFile = { relativePath: file.relativePath, size: file.size, checksum: checksum.hex() };
    options.progress.fileFinished(file, copied);
    return { copied };
  } finally {
    await handle.close().catch(() => undefined);
  }
}
