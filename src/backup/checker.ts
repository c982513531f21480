/**
 * The checker (restic's internal/checker; RocksDB's VerifyBackup with checksums): is a
 * backup directory what its manifest says, file by file?
 *
 * 1. The manifest, or why there is none (backup_refusal.ts): a BackupRefusal.
 * 2. The directory is listed and compared with the manifest by name and size: files
 *    missing, extra (in the directory, not in the manifest), resized, or not regular
 *    files. Cheap, and on the calling thread: names and stat(2) only.
 * 3. Every listed file of the right size is hashed on the copy threads (hash_files.ts),
 *    throttled by the given limiter, and compared with its manifest checksum: corrupted,
 *    or unreadable when it cannot be read.
 *
 * Every problem is reported, by file; nothing stops at the first. Steps 2 and 3 here
 * are a directory's; a backup on S3 has its own (src/s3/s3_reader.ts), verifyBackup
 * runs either through a BackupReader.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { OpenedBackup } from './backup_dir.js';
import type { BackupReader } from './backup_reader.js';
import { hashFiles } from './hash_files.js';
import { SourceTooShortError } from './file_copy.js';
import { INCOMPLETE_MARKER_FILENAME, isClaimName } from './backup_marker.js';
import { MANIFEST_FILENAME, type ManifestFile } from './manifest.js';
import { isVerificationFile } from './verification_record.js';
import type { Limiter } from './copy_pool.js';
import type { CopyProgress } from './progress.js';
import type { SourceFile } from './copy_types.js';

export type Problem =
  | { file: string; problem: 'missing'; detail: string }
  | { file: string; problem: 'extra'; size: number; detail: string }
  | { file: string; problem: 'resized'; expectedSize: number; actualSize: number; detail: string }
  | { file: string; problem: 'corrupted'; expectedChecksum: string; actualChecksum: string; detail: string }
  | { file: string; problem: 'unreadable'; detail: string };

/** Progress of the hashing: told the files before the first chunk (ProgressCounters fits). */
export interface VerifyProgress extends CopyProgress {
  begin(files: readonly SourceFile[]): void;
}

export interface VerifyOptions {
  /** The throttle the reads draw from; `new TokenBucket(0)` is unlimited. */
  limiter: Limiter;
  /** Hash threads. Default: the copier's (DEFAULT_CONCURRENCY). */
  concurrency?: number;
  progress?: VerifyProgress;
  signal?: AbortSignal;
}

export interface VerifyReport {
  backup: OpenedBackup;
  /** Sorted by file, then problem. Empty for a good backup. */
  problems: Problem[];
  /** Files and bytes the manifest lists. */
  files: number;
  bytes: number;
  /** Bytes read and hashed. */
  bytesHashed: number;
  seconds: number;
}

/** The files of a directory, relative, '/'-separated: regular files and anything else that is not a directory. */
interface Listing {
  /** Relative path → lstat(2) of it. */
  entries: Map<string, { size: number; regular: boolean; type: string }>;
}

async function list(root: string): Promise<Listing> {
  const entries: Listing['entries'] = new Map();
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(root, relative), { withFileTypes: true })) {
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        await walk(rel);
        continue;
      }
      const stat = await fs.lstat(path.join(root, rel));
      const type = stat.isFile() ? 'file' : stat.isSymbolicLink() ? 'symbolic link' : 'special file';
      entries.set(rel, { size: stat.size, regular: stat.isFile(), type });
    }
  };
  await walk('');
  return { entries };
}

/**
 * The directory against the manifest by name and size (step 2): the problems found, and
 * the files worth hashing. The restorer uses it too, to refuse a backup before it writes.
 */
export async function compareListing(backup: OpenedBackup): Promise<{ problems: Problem[]; toHash: Array<{ listed: ManifestFile; source: SourceFile }> }> {
  const { directory, manifest } = backup;
  const { entries } = await list(directory);
  entries.delete(MANIFEST_FILENAME);
  // Left beside a valid manifest only when its removal failed: the manifest decides (backup_dir.ts).
  entries.delete(INCOMPLETE_MARKER_FILENAME);
  // The record of an earlier verify (verification_record.ts), and an S3 claim copied down: about the backup, not of it.
  for (const name of [...entries.keys()]) if (isVerificationFile(name) || isClaimName(name)) entries.delete(name);
  const problems: Problem[] = [];
  const toHash: Array<{ listed: ManifestFile; source: SourceFile }> = [];
  for (const listed of manifest.files) {
    const file = listed.path;
    const found = entries.get(file);
    entries.delete(file);
    if (found === undefined) {
      problems.push({ file, problem: 'missing', detail: `listed in the manifest (${listed.size} bytes) but not in the backup` });
    } else if (!found.regular) {
      problems.push({ file, problem: 'missing', detail: `listed in the manifest as a file, but a ${found.type} is there instead` });
    } else if (found.size !== listed.size) {
      problems.push({ file, problem: 'resized', expectedSize: listed.size, actualSize: found.size, detail: `${found.size} bytes, the manifest says ${listed.size}` });
    } else {
      toHash.push({ listed, source: { path: path.join(directory, file), relativePath: file, size: listed.size } });
    }
  }
  for (const [file, found] of entries) {
    problems.push({ file, problem: 'extra', size: found.size, detail: `a ${found.type} of ${found.size} bytes that the manifest does not list` });
  }
  return { problems, toHash };
}

/**
 * Verifies the backup `reader` reads (a directory: local_reader.ts; an S3 prefix:
 * src/s3/s3_reader.ts). Rejects with a BackupRefusal when it has no valid manifest, and
 * with the signal's reason on abort.
 */
export async function verifyBackup(reader: BackupReader, options: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const backup = await reader.open(options.signal);
  const { problems, toHash } = await reader.compareListing(backup, options.signal);
  options.progress?.begin(toHash.map(({ source }) => source));
  const hashed = await reader.checkChecksums(backup, toHash, options);
  problems.push(...hashed.problems);
  problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.problem < b.problem ? -1 : 1));
  return {
    backup,
    problems,
    files: backup.manifest.totals.files,
    bytes: backup.manifest.totals.bytes,
    bytesHashed: hashed.bytesHashed,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Step 3: hashes the files compareListing found worth hashing, on the copy threads, and
 * compares each with its manifest checksum. The restorer uses it too, to check a backup
 * before --force deletes what the target holds. `options.progress` must have begun.
 */
export async function checkChecksums(
  backup: OpenedBackup,
  toHash: ReadonlyArray<{ listed: ManifestFile; source: SourceFile }>,
  options: VerifyOptions,
): Promise<{ problems: Problem[]; bytesHashed: number }> {
  const results = await hashFiles(
    toHash.map(({ source }) => source),
    {
      limiter: options.limiter,
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      ...(options.progress === undefined ? {} : { progress: options.progress }),
      signal: options.signal,
    },
  );
  const problems: Problem[] = [];
  let bytesHashed = 0;
  results.forEach((result, i) => {
    const { listed } = toHash[i] as { listed: ManifestFile };
    const file = listed.path;
    if ('error' in result) {
      const { error } = result;
      if (error instanceof SourceTooShortError) {
        problems.push({ file, problem: 'resized', expectedSize: listed.size, actualSize: error.actualSize, detail: `shrank to ${error.actualSize} bytes while it was read, the manifest says ${listed.size}` });
      } else {
        problems.push({ file, problem: 'unreadable', detail: error.message });
      }
      return;
    }
    const { hashed } = result;
    bytesHashed += hashed.size;
    const problem = hashProblem(listed, hashed.actualSize, hashed.checksum, backup.manifest.checksum.algorithm, '');
    if (problem !== undefined) problems.push(problem);
  });
  return { problems, bytesHashed };
}

/**
 * What is wrong with a file read at `actualSize` bytes hashing to `checksum`, against its
 * manifest entry, or undefined when nothing is: resized, else corrupted. `when` qualifies
 * the size in the wording (' when it was read', for an object that may change under us).
 */
export function hashProblem(listed: ManifestFile, actualSize: number, checksum: string, algorithm: string, when: string): Problem | undefined {
  const file = listed.path;
  if (actualSize !== listed.size) {
    return { file, problem: 'resized', expectedSize: listed.size, actualSize, detail: `${actualSize} bytes${when}, the manifest says ${listed.size}` };
  }
  if (checksum !== listed.checksum) {
    return { file, problem: 'corrupted', expectedChecksum: listed.checksum, actualChecksum: checksum, detail: `its ${algorithm} checksum is ${checksum}, the manifest says ${listed.checksum}` };
  }
  return undefined;
}
