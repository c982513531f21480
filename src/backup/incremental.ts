/**
 * Incremental backups: `{backupStart: dir, incrementalBase: "<previous backup dir>"}`.
 * This module checks the base before anything is written, and decides, file by file,
 * which may be taken from it instead of being copied; the copy workers take them
 * (file_reuse.ts), and the manifest says which and how.
 *
 * A file is taken from the base when (rsync's quick check, rsync(1) --checksum):
 * - it is not the journal (WiredTiger's log is always copied);
 * - the base lists it at the same size;
 * - its mtime, read before and after the strategy captured it, equals the one the base
 *   recorded, and that one was not "racy": written within RACY_WINDOW_NS before the base
 *   began, when a later write in the same clock tick could have left it unchanged (git's
 *   racily clean entries, Documentation/technical/racy-git.txt). A racy or missing mtime
 *   is not a reason to copy but to compare: the source is hashed and the base's copy
 *   taken only if the checksums are equal, as git re-reads racily clean files;
 * - or, with `checksum: true`, whatever the mtimes, when its hash equals the base's.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ManifestError, readManifest, type Manifest, type ManifestFile } from './manifest.js';
import { pathsOverlap } from './destination.js';
import { isJournalFile } from './strategies/files.js';
import { settledBefore } from './source_stamp.js';
import type { CopiedFile, SourceFile } from './copy_types.js';
import { CommandError, ErrorCodes } from '../errors.js';

/** A checked base: a complete backup of this very dbpath and mongod. */
export interface IncrementalBase {
  /** Absolute. */
  readonly dir: string;
  readonly manifest: Manifest;
  /** `checksum: true`: compare every candidate file by content. */
  readonly checksum: boolean;
}

/** Who the backup is of: what a base's manifest must name (Manifest.source). */
export interface SourceIdentity {
  dbpath: string;
  /** How the proxy reaches mongod (UpstreamAdmin.host). */
  host: string;
}

function refused(base: string, why: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, `incrementalBase ${base} cannot be used: ${why}`);
}

/**
 * Checks `requested` as the base of a backup into `destination` (not yet checked itself:
 * prepareDestination does that after this), and reads its manifest. Rejects with
 * BadValue and the reason: not an absolute path, no complete backup there (no manifest,
 * or one that is not valid), a backup of another dbpath or another mongod, the
 * destination inside it, or on another filesystem than the destination (its files
 * could then be neither cloned nor hard-linked, and everything would be copied).
 */
export async function openIncrementalBase(requested: string, destination: unknown, source: SourceIdentity, checksum: boolean): Promise<IncrementalBase> {
  if (requested === '' || !path.isAbsolute(requested)) throw refused(`'${requested}'`, 'it must be an absolute path');
  const dir = path.resolve(requested);
  let manifest: Manifest;
  try {
    manifest = await readManifest(dir);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    const why = err.code === 'MISSING' ? `it has no manifest, so it is not a complete backup (an aborted or unfinished backup, or not a backup directory)` : err.message;
    throw refused(dir, why);
  }
  if (path.resolve(manifest.source.dbpath) !== path.resolve(source.dbpath)) {
    throw refused(dir, `it is a backup of the dbpath ${manifest.source.dbpath}, and this proxy backs up ${source.dbpath}; take a full backup (no incrementalBase) first`);
  }
  if (manifest.source.host !== source.host) {
    throw refused(dir, `it is a backup of the mongod at ${manifest.source.host}, and this proxy backs up the one at ${source.host}; take a full backup (no incrementalBase) first`);
  }
  if (typeof destination === 'string' && path.isAbsolute(destination)) {
    const target = path.resolve(destination);
    if (pathsOverlap(target, dir)) throw refused(dir, `the destination ${target} must be outside it`);
    const [baseDevice, targetDevice] = await Promise.all([deviceOf(dir), deviceOf(target, path.dirname(target))]);
    if (baseDevice !== undefined && targetDevice !== undefined && baseDevice !== targetDevice) {
      throw refused(dir, `it is on another filesystem than the destination ${target}, so its files can be neither cloned nor hard-linked; put the backups under one directory`);
    }
  }
  return { dir, manifest, checksum };
}

/** st_dev of the first of `candidates` that exists. */
async function deviceOf(...candidates: string[]): Promise<number | undefined> {
  for (const candidate of candidates) {
    const stats: Stats | undefined = await fs.stat(candidate).catch(() => undefined);
    if (stats !== undefined) return stats.dev;
  }
  return undefined;
}

/** What to do with one file: copy it, or take it from the base, checked by size and mtime or by content. */
export type ReuseDecision = 'copy' | 'sizeMtime' | 'compare';

export function decide(file: SourceFile, entry: ManifestFile | undefined, base: Pick<IncrementalBase, 'manifest' | 'checksum'>): ReuseDecision {
  if (entry === undefined || isJournalFile(file.relativePath) || entry.size !== file.size) return 'copy';
  if (base.checksum) return 'compare';
  const { stamp } = file;
  // Nothing to compare by time (a base from before mtimes were recorded): by content then.
  if (entry.mtime === undefined || stamp === undefined) return 'compare';
  // Written between the readings around its capture (the reflink strategy's): changed.
  if (stamp.before !== stamp.after || stamp.after !== entry.mtime) return 'copy';
  return settledBefore(entry.mtime, new Date(base.manifest.startedAt)) ? 'sizeMtime' : 'compare';
}

/** `files`, each that may be taken from `base` saying so (SourceFile.reuse). */
export function planReuse(files: readonly SourceFile[], base: IncrementalBase): SourceFile[] {
  const entries = new Map(base.manifest.files.map((entry) => [path.normalize(entry.path), entry]));
  return files.map((file) => {
    const entry = entries.get(path.normalize(file.relativePath));
    const decision = decide(file, entry, base);
    if (entry === undefined || decision === 'copy') return file;
    return { ...file, reuse: { from: path.join(base.dir, entry.path), backupId: base.manifest.backupId, checksum: entry.checksum, compare: decision === 'compare' } };
  });
}

/** The backup's warnings for files that were to be taken from the base but had to be copied: at most a few lines. */
export function reuseWarnings(copied: readonly CopiedFile[], base: IncrementalBase): string[] {
  const missed = copied.filter((file) => file.notReused !== undefined);
  if (missed.length === 0) return [];
  const shown = missed.slice(0, 3).map((file) => `${file.relativePath} could not be taken from the base ${base.dir} and was copied instead: ${file.notReused}`);
  const more = missed.length - shown.length;
  return more > 0 ? [...shown, `and ${more} more files could not be taken from the base ${base.dir}, and were copied`] : shown;
}
