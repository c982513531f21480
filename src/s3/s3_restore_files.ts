/**
 * A restore's downloads: each object of the backup streamed into its file in the target
 * (s3_download.ts), several at once (s3_pool.ts), written as the copier writes a restore's
 * files (copier.ts): the same path checks and directories (mode 0700 whatever the umask),
 * each file opened `wx` and given its mode (0600) whatever the umask, every byte hashed
 * on its way and compared with the manifest's checksum once the object ends (a
 * ChecksumMismatchError naming the file otherwise), the file fsynced before it counts as
 * done, and every directory that gained a name fsynced at the end. The first error stops
 * every download. A transfer cut short is resumed by readObject from the bytes the file
 * already has (written at their positions), so nothing is rewound; an error writing the
 * file (a full disk) is the target's, never said as S3's.
 *
 * Writes go through the page cache in runs of up to 1 MiB (the socket hands over 16-64 KiB
 * at a time): at the network's speed the copier's O_DIRECT writes would buy nothing.
 */
import fs from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { ChecksumMismatchError } from '../backup/checksum.js';
import { createDirectories, destinationPaths } from '../backup/copier.js';
import { fsyncDirectory } from '../backup/durable.js';
import { setModeOf } from '../backup/owner_only.js';
import { noProgress } from '../backup/progress.js';
import type { ReaderCopyOptions } from '../backup/backup_reader.js';
import type { SourceFile } from '../backup/copy_types.js';
import { readObject } from './s3_download.js';
import { runConcurrently } from './s3_pool.js';
import { s3CommandError } from './s3_errors.js';

/** Bytes gathered before each write(2). */
const WRITE_RUN = 1024 * 1024;

export async function restoreObjects(
  client: S3Client,
  bucket: string,
  files: readonly SourceFile[],
  target: string,
  options: ReaderCopyOptions & { concurrency: number },
  keyOf: (file: SourceFile) => string,
): Promise<void> {
  options.signal?.throwIfAborted();
  const targets = destinationPaths(files, target);
  const directories = await createDirectories(target, targets, options.directoryMode);
  options.signal?.throwIfAborted();
  const progress = options.progress ?? noProgress;
  await runConcurrently(
    files.map((file, index) => ({ file, path: targets[index] as string, size: file.size })),
    options.concurrency,
    async ({ file, path }, signal) => {
      progress.fileStarted(file);
      const handle = await fs.open(path, 'wx', options.fileMode);
      let position = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        const run = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        for (let done = 0; done < run.length; ) {
          const { bytesWritten } = await handle.write(run, done, run.length - done, position + done);
          done += bytesWritten;
        }
        position += run.length;
      };
      let writeFailure: unknown;
      const failedWrite = (err: unknown): never => {
        writeFailure = err;
        throw err;
      };
      try {
        await setModeOf(handle, options.fileMode);
        const read = await readObject(client, bucket, keyOf(file), {
          limiter: options.limiter,
          expectedSize: file.size,
          signal,
          sink: async (chunk) => {
            pending.push(chunk);
            pendingBytes += chunk.length;
            progress.chunkCopied(file, chunk.length);
            if (pendingBytes >= WRITE_RUN) await flush().catch(failedWrite);
          },
        }).catch((err: unknown) => {
          // The target's own error (a full disk) is said as the disk's, never as S3's.
          if (signal.aborted || err === writeFailure) throw err;
          throw s3CommandError(err, 'download', file.path);
        });
        await flush();
        if (read.size !== file.size) throw new Error(`${file.relativePath} is ${read.size} bytes on S3 now, the manifest says ${file.size}: the backup changed while it was restored`);
        if (file.expectedChecksum !== undefined && read.checksum !== file.expectedChecksum) throw new ChecksumMismatchError(file.relativePath, file.path, file.expectedChecksum, read.checksum);
        await handle.sync();
        progress.fileFinished(file, { relativePath: file.relativePath, size: read.size, checksum: read.checksum });
      } finally {
        await handle.close();
      }
    },
    { signal: options.signal },
  );
  // The files' data is synced; now make their names (and the new directories) durable.
  for (const dir of directories) await fsyncDirectory(dir);
}
