/**
 * What verify and restore need of the place a backup lives, a directory or an S3 prefix
 * (restic's backend interface, narrowed to reading one backup): its manifest or why it has
 * none, its files compared with the manifest by name and size, every file hashed, and
 * every file copied out with its checksum checked. The checker (checker.ts), the recorder
 * of verdicts (verification.ts) and the restorer (restorer.ts) are written once against
 * it; local_reader.ts reads a directory, src/s3/s3_reader.ts a prefix.
 */
import type { OpenedBackup } from './backup_dir.js';
import type { Problem, VerifyOptions } from './checker.js';
import type { ManifestFile } from './manifest.js';
import type { CopyProgress } from './progress.js';
import type { Limiter } from './copy_pool.js';
import type { SourceFile } from './copy_types.js';

/** A file of the manifest found at its size: worth hashing, or restoring. */
export interface ListedFile {
  listed: ManifestFile;
  /** `path` says where the reader reads it from (a file, an s3:// URL of an object). */
  source: SourceFile;
}

/** How a restore has the files written: what copier.ts's CopyOptions say of the same. */
export interface ReaderCopyOptions {
  limiter: Limiter;
  concurrency?: number;
  progress?: CopyProgress;
  signal?: AbortSignal | undefined;
  fileMode: number;
  directoryMode: number;
}

export interface BackupReader {
  /** The backup as messages name it: the directory (absolute), or the s3:// URL. */
  readonly where: string;
  /** The backup's directory when it is on this machine: a restore's target must not overlap it. */
  readonly localDirectory: string | undefined;
  /** The manifest, or a BackupRefusal saying why there is none to use. */
  open(signal?: AbortSignal): Promise<OpenedBackup>;
  /** The backup's files against its manifest by name and size; `toHash` are those found at their size. */
  compareListing(backup: OpenedBackup, signal?: AbortSignal): Promise<{ problems: Problem[]; toHash: ListedFile[] }>;
  /** Hashes `toHash` and compares each with its manifest checksum; every file is reported, none stops the others. */
  checkChecksums(backup: OpenedBackup, toHash: readonly ListedFile[], options: VerifyOptions): Promise<{ problems: Problem[]; bytesHashed: number }>;
  /**
   * Copies `files` (whose `path` this reader gave) into `target` at their relativePath, each
   * checked against its `expectedChecksum` (a ChecksumMismatchError naming the first that
   * is not), written and made durable as copier.ts writes; the first error stops them all.
   */
  copyFiles(files: readonly SourceFile[], target: string, options: ReaderCopyOptions): Promise<void>;
  /** Lets go of what the reader holds (an S3 client's sockets), once its owner is done with it. */
  close?(): void;
}
