/**
 * Where a backup is written, behind one seam so that the engine's steps read the same
 * for every kind: a local directory (this module) or an S3 prefix (src/s3/s3_target.ts).
 * The engine calls, in this order:
 * - begin(): the `running` marker, before anything else goes in (backup_marker.ts);
 * - copy(), and with `extendTo` replace(): the snapshot's files, through the one throttle
 *   and the backup's counters;
 * - writeManifest(): LAST, once every file is whole; then complete(), which removes the
 *   marker;
 * - or, on a failure or an abort, fail(): the marker rewritten with the outcome, and
 *   whatever the target left half-made tidied (on S3, unfinished multipart uploads).
 *   No manifest is written then.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { copyFiles } from './copier.js';
import { fsyncDirectory } from './durable.js';
import { writeManifest, type Manifest } from './manifest.js';
import { IncompleteMarker, type MarkerState } from './backup_marker.js';
import type { CopyIoClass, CopyWrites } from './copy_messages.js';
import type { Limiter } from './copy_pool.js';
import type { CopyProgress } from './progress.js';
import type { CopyResult, SourceFile } from './copy_types.js';
import type { BackupFailure } from './engine_status.js';

export interface TargetCopyOptions {
  limiter: Limiter;
  concurrency: number;
  progress: CopyProgress;
  signal: AbortSignal;
}

/**
 * What fail() left: everything tidied (`done`), or a cleanup that could not finish now
 * (S3 unreachable) and goes on in the background until it does or the proxy closes.
 */
export type TargetCleanup =
  | { readonly state: 'done' }
  | { readonly state: 'pending'; readonly detail: string; readonly settled: Promise<{ state: 'done' | 'stopped'; detail: string }> };

export interface BackupTarget {
  /** What backupStatus and the log call it: the directory's absolute path, or the s3:// URL (never a credential). */
  readonly destination: string;
  /** The directory a strategy may put files in itself (the reflink strategy's clones); undefined for S3. */
  readonly directory: string | undefined;
  /** The marker's name as the messages say it (a file, or an object's URL). */
  readonly markerName: string;
  begin(): Promise<void>;
  copy(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult>;
  /**
   * Copies files over the earlier copies of the same names (an extension's journal
   * files): each replaced whole or left as it was, never torn.
   */
  replace(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult>;
  /** Call only once every file is whole. */
  writeManifest(manifest: Manifest): Promise<void>;
  /** Removes the marker: the manifest is written. */
  complete(): Promise<void>;
  fail(failure: BackupFailure, at: Date, state: Exclude<MarkerState, 'running'>): Promise<TargetCleanup>;
}

/** Where an extended copy is written before it replaces the earlier one. */
const STAGING_SUFFIX = '.hotbackup-extending';

/** A local directory, checked and created by prepareDestination (destination.ts). */
export class DirectoryTarget implements BackupTarget {
  readonly directory: string;
  private readonly marker: IncompleteMarker;

  constructor(
    readonly destination: string,
    backup: { backupId: string; startedAt: Date },
    private readonly writes: { writes?: CopyWrites | undefined; ioClass?: CopyIoClass | undefined } = {},
  ) {
    this.directory = destination;
    this.marker = new IncompleteMarker(destination, backup);
  }

  get markerName(): string {
    return this.marker.file;
  }

  begin(): Promise<void> {
    return this.marker.begin();
  }

  copy(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult> {
    return copyFiles([...files], this.destination, {
      ...options,
      ...(this.writes.writes === undefined ? {} : { writes: this.writes.writes }),
      ...(this.writes.ioClass === undefined ? {} : { ioClass: this.writes.ioClass }),
    });
  }

  /**
   * The copier creates every file anew (it refuses to overwrite), so the new copies are
   * written beside the earlier ones and renamed over them once all are whole: a copy
   * that fails leaves the earlier copies in place, never fewer files.
   */
  async replace(files: readonly SourceFile[], options: TargetCopyOptions): Promise<CopyResult> {
    const staged = files.map((file) => ({ ...file, relativePath: file.relativePath + STAGING_SUFFIX }));
    let result: CopyResult;
    try {
      result = await this.copy(staged, options);
    } catch (err) {
      await Promise.all(staged.map((file) => fs.rm(path.join(this.destination, file.relativePath), { force: true }).catch(() => undefined)));
      throw err;
    }
    const unstaged = <T extends { relativePath: string }>(file: T): T => ({ ...file, relativePath: file.relativePath.slice(0, -STAGING_SUFFIX.length) });
    const directories = new Set<string>();
    for (const file of result.copied) {
      const rel = unstaged(file).relativePath;
      await fs.rename(path.join(this.destination, file.relativePath), path.join(this.destination, rel));
      directories.add(path.dirname(path.join(this.destination, rel)));
    }
    for (const dir of directories) await fsyncDirectory(dir);
    return { copied: result.copied.map(unstaged), skipped: result.skipped.map(unstaged) };
  }

  writeManifest(manifest: Manifest): Promise<void> {
    return writeManifest(this.destination, manifest);
  }

  complete(): Promise<void> {
    return this.marker.remove();
  }

  async fail(failure: BackupFailure, at: Date, state: Exclude<MarkerState, 'running'>): Promise<TargetCleanup> {
    await this.marker.failed(failure, at, state);
    return { state: 'done' };
  }
}
