/**
 * A backup on S3 as a BackupReader (src/backup/backup_reader.ts), so verify and restore
 * read it as they read a directory:
 * - open: the manifest object, or why there is none (s3_backup_open.ts);
 * - compareListing: the objects under the prefix (one ListObjectsV2 per 1000) against
 *   the manifest by name and size: missing, extra, resized;
 * - checkChecksums: every object downloaded as a stream and hashed (s3_download.ts),
 *   several at once (s3_pool.ts), through the caller's throttle;
 * - copyFiles: the same downloads, written into the restore's target (s3_restore_files.ts).
 * S3 errors name S3's code (s3_errors.ts). Only a missing object, a wrong size or a wrong
 * checksum is damage; an object S3 would not give (refused, unreachable, cut short past
 * readObject's resumes) makes the backup one that could not be checked.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupReader, ListedFile } from '../backup/backup_reader.js';
import type { OpenedBackup } from '../backup/backup_dir.js';
import { hashProblem, type Problem, type VerifyOptions } from '../backup/checker.js';
import { INCOMPLETE_MARKER_FILENAME, isClaimName } from '../backup/backup_marker.js';
import { MANIFEST_FILENAME } from '../backup/manifest.js';
import { isVerificationFile } from '../backup/verification_record.js';
import { noProgress } from '../backup/progress.js';
import type { SourceFile } from '../backup/copy_types.js';
import { createS3Client, type S3Settings } from './s3_client.js';
import { openS3Backup, s3Refusal } from './s3_backup_open.js';
import { readObject } from './s3_download.js';
import { DEFAULT_S3_CONCURRENCY, runConcurrently } from './s3_pool.js';
import { restoreObjects } from './s3_restore_files.js';
import { isS3Missing } from './s3_errors.js';
import { listObjects } from './s3_objects.js';
import { objectKey, relativeKey, s3Url, type S3Location } from './s3_location.js';

export interface S3ReaderOptions {
  /** Default: the environment's (s3SettingsFromEnvironment). */
  settings: S3Settings;
  /** A client to use instead of one made from the settings (tests). */
  client?: S3Client;
}

export function s3BackupReader(location: S3Location, options: S3ReaderOptions): BackupReader {
  const url = s3Url(location);
  let client: S3Client | undefined = options.client;
  // One client, its sockets enough for the most objects read at once the CLI allows.
  const s3 = (): S3Client => (client ??= createS3Client(options.settings, { maxSockets: 64 }));
  const bucketPrefix = `s3://${location.bucket}/`;
  const keyOf = (file: SourceFile): string => file.path.slice(bucketPrefix.length);
  return {
    close: () => {
      // Only a client of its own: one given belongs to the caller.
      if (options.client === undefined) client?.destroy();
      client = undefined;
    },
    where: url,
    localDirectory: undefined,
    open: (signal) => openS3Backup(s3(), location, signal),
    compareListing: (backup, signal) => compareObjects(s3(), location, backup, signal),
    checkChecksums: (backup, toHash, verifyOptions) => checkObjects(s3(), location, backup, toHash, verifyOptions, keyOf),
    copyFiles: async (files, target, copyOptions) => {
      await restoreObjects(s3(), location.bucket, files, target, { ...copyOptions, concurrency: copyOptions.concurrency ?? DEFAULT_S3_CONCURRENCY }, keyOf);
    },
  };
}

/** Keys that are no file of a backup: a console's zero-byte "folder" objects (`dir/`). */
function isFolderObject(key: string, size: number): boolean {
  return key.endsWith('/') && size === 0;
}

async function compareObjects(client: S3Client, location: S3Location, backup: OpenedBackup, signal?: AbortSignal): Promise<{ problems: Problem[]; toHash: ListedFile[] }> {
  const found = new Map<string, number>();
  try {
    for await (const object of listObjects(client, location, signal)) {
      const name = relativeKey(location, object.key);
      if (name === undefined || isFolderObject(object.key, object.size)) continue;
      found.set(name, object.size);
    }
  } catch (err) {
    signal?.throwIfAborted();
    throw s3Refusal(err, 'list', s3Url(location));
  }
  found.delete(MANIFEST_FILENAME);
  // Left beside a valid manifest only when its removal failed: the manifest decides.
  found.delete(INCOMPLETE_MARKER_FILENAME);
  // The record of an earlier verify, and a claim whose removal failed: about the backup, not of it.
  for (const name of [...found.keys()]) if (isVerificationFile(name) || isClaimName(name)) found.delete(name);
  const problems: Problem[] = [];
  const toHash: ListedFile[] = [];
  for (const listed of backup.manifest.files) {
    const file = listed.path;
    const size = found.get(file);
    found.delete(file);
    if (size === undefined) {
      problems.push({ file, problem: 'missing', detail: `listed in the manifest (${listed.size} bytes) but not in the backup` });
    } else if (size !== listed.size) {
      problems.push({ file, problem: 'resized', expectedSize: listed.size, actualSize: size, detail: `${size} bytes, the manifest says ${listed.size}` });
    } else {
      toHash.push({ listed, source: { path: s3Url({ bucket: location.bucket, prefix: objectKey(location, file) }), relativePath: file, size: listed.size } });
    }
  }
  for (const [file, size] of found) problems.push({ file, problem: 'extra', size, detail: `an object of ${size} bytes that the manifest does not list` });
  return { problems, toHash };
}

async function checkObjects(
  client: S3Client,
  location: S3Location,
  backup: OpenedBackup,
  toHash: readonly ListedFile[],
  options: VerifyOptions,
  keyOf: (file: SourceFile) => string,
): Promise<{ problems: Problem[]; bytesHashed: number }> {
  const progress = options.progress ?? noProgress;
  const results = await runConcurrently(
    toHash.map((item) => ({ ...item, size: item.listed.size })),
    options.concurrency ?? DEFAULT_S3_CONCURRENCY,
    async ({ source }, signal) => {
      progress.fileStarted(source);
      const read = await readObject(client, location.bucket, keyOf(source), {
        limiter: options.limiter,
        expectedSize: source.size,
        sink: (chunk) => progress.chunkCopied(source, chunk.length),
        signal,
      });
      progress.fileFinished(source, { relativePath: source.relativePath, size: read.size, checksum: read.checksum });
      return read;
    },
    { signal: options.signal, keepGoing: true },
  );
  // An object S3 would not give (after readObject's resumes) says nothing of the backup:
  // the verify could not be done, it did not find damage (exit 5, no record written).
  const unread = results.findIndex((result) => 'error' in result && !isS3Missing(result.error));
  if (unread !== -1) {
    const failed = results[unread] as { error: unknown };
    throw s3Refusal(failed.error, 'download', (toHash[unread] as ListedFile).source.path);
  }
  const problems: Problem[] = [];
  let bytesHashed = 0;
  results.forEach((result, i) => {
    const { listed } = toHash[i] as ListedFile;
    const file = listed.path;
    if ('error' in result) {
      problems.push({ file, problem: 'missing', detail: `listed in the manifest (${listed.size} bytes), but its object was deleted while the backup was verified` });
      return;
    }
    const { value: read } = result;
    bytesHashed += Math.min(read.size, listed.size);
    const problem = hashProblem(listed, read.size, read.checksum, backup.manifest.checksum.algorithm, ' when it was read');
    if (problem !== undefined) problems.push(problem);
  });
  return { problems, bytesHashed };
}
