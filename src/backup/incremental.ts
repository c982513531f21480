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
 *
 * Whether the base's copy still holds the bytes its manifest lists is file_reuse.ts's
 * check, made as the file is taken (the copy's mtime against the manifest's own, and
 * with `compare` its hash): the new manifest records the base's checksum unread.
 */
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { ManifestError, MANIFEST_FILENAME, readManifest, type Manifest, type ManifestFile } from './manifest.js';
import { pathsOverlap } from './destination.js';
import { isJournalFile } from './strategies/files.js';
import { mtimeText, settledBefore } from './source_stamp.js';
import type { CopiedFile, SourceFile } from './copy_types.js';
import { CommandError, ErrorCodes } from '../errors.js';

/** A checked base: a complete backup of this very dbpath and mongod. */
export interface IncrementalBase {
  /** Absolute; or the base's s3:// URL (src/s3/s3_incremental.ts). */
  readonly dir: string;
  /** Where the base keeps the file it lists at `relativePath`; default: under `dir` on disk. */
  readonly locate?: (relativePath: string) => string;
  readonly manifest: Manifest;
  /**
   * The mtime of the base's manifest file (source_stamp.ts's text): when that backup was
   * written, by the clock of the filesystem its files are on. Every file of the base was
   * written (or cloned, or linked) before its manifest, so a copy modified later has
   * changed since (ReuseFrom.baseWrittenAt).
   */
  readonly writtenAt: string;
  /** `checksum: true`: compare every candidate file by content. */
  readonly checksum: boolean;
}

/** Who the backup is of: what a base's manifest must name (Manifest.source). */
export interface SourceIdentity {
  dbpath: string;
  /** How the proxy reaches mongod (UpstreamAdmin.host). */
  host: string;
  /**
   * The machine the proxy runs on (--source-name, else os.hostname()), as manifests record it: sidecars on
   * several machines all reach `127.0.0.1:27017` with the same dbpath, and one machine's
   * backup must not be another's base. Compared only when both sides have it.
   */
  hostname?: string;
}

/** Whether a manifest's source is `source`: the same dbpath, mongod, and machine where both say. */
export function isSameSource(manifestSource: Manifest['source'], source: SourceIdentity): boolean {
  return (
    path.resolve(manifestSource.dbpath) === path.resolve(source.dbpath) &&
    manifestSource.host === source.host &&
    (manifestSource.hostname === undefined || source.hostname === undefined || manifestSource.hostname === source.hostname)
  );
}

const EPOCH = '1970-01-01T00:00:00.000000000Z';

export function baseRefused(base: string, why: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, `incrementalBase ${base} cannot be used: ${why}`);
}

/**
 * Checks `requested` as the base of a backup into `destination` (not yet checked itself:
 * prepareDestination does that after this), and reads its manifest. Rejects with
 * BadValue and the reason: not an absolute path, the dbpath itself (or a directory
 * inside it or holding it, by the path as written or through symbolic links), no
 * complete backup there (no manifest, or one that is not valid), a backup of another
 * dbpath or another mongod, the destination inside it, or on another filesystem than
 * the destination (its files could then be neither cloned nor hard-linked, and
 * everything would be copied).
 */
export async function openIncrementalBase(requested: string, destination: unknown, source: SourceIdentity, checksum: boolean): Promise<IncrementalBase> {
  if (requested === '' || !path.isAbsolute(requested)) throw baseRefused(`'${requested}'`, 'it must be an absolute path');
  const dir = path.resolve(requested);
  // Before the manifest: a dbpath restored with `cp -a` from a backup holds a valid manifest
  // of itself, and taking "unchanged" files from it would hard-link mongod's live files into
  // the backup and make them read-only (file_reuse.ts).
  const overlap = await dbpathOverlap(dir, path.resolve(source.dbpath));
  if (overlap !== undefined) throw baseRefused(dir, overlap);
  let manifest: Manifest;
  try {
    manifest = await readManifest(dir);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw baseManifestRefused(dir, err);
  }
  checkBaseSource(dir, manifest, source);
  if (typeof destination === 'string' && path.isAbsolute(destination)) {
    const target = path.resolve(destination);
    if (pathsOverlap(target, dir)) throw baseRefused(dir, `the destination ${target} must be outside it`);
    const [baseDevice, targetDevice] = await Promise.all([deviceOf(dir), deviceOf(target, path.dirname(target))]);
    if (baseDevice !== undefined && targetDevice !== undefined && baseDevice !== targetDevice) {
      throw baseRefused(dir, `it is on another filesystem than the destination ${target}, so its files can be neither cloned nor hard-linked; put the backups under one directory`);
    }
  }
  // A manifest dated before 1970 vouches for no file: every one is then copied.
  const writtenAt = mtimeText(await fs.stat(path.join(dir, MANIFEST_FILENAME), { bigint: true })) ?? EPOCH;
  return { dir, manifest, writtenAt, checksum };
}

/** Refuses a base (`dir`, as the messages name it) that is a backup of another dbpath or another mongod. */
export function checkBaseSource(dir: string, manifest: Manifest, source: SourceIdentity): void {
  if (path.resolve(manifest.source.dbpath) !== path.resolve(source.dbpath)) {
    throw baseRefused(dir, `it is a backup of the dbpath ${manifest.source.dbpath}, and this proxy backs up ${source.dbpath}; take a full backup (no incrementalBase) first`);
  }
  if (manifest.source.host !== source.host) {
    throw baseRefused(dir, `it is a backup of the mongod at ${manifest.source.host}, and this proxy backs up the one at ${source.host}; take a full backup (no incrementalBase) first`);
  }
  if (!isSameSource(manifest.source, source)) {
    throw baseRefused(dir, `it was taken on the machine ${manifest.source.hostname ?? '?'}, and this proxy runs on ${source.hostname ?? '?'}; take a full backup (no incrementalBase) first`);
  }
}

/** The refusal of an incrementalBase whose manifest is missing or not valid (a ManifestError). */
export function baseManifestRefused(dir: string, err: ManifestError): CommandError {
  const why = err.code === 'MISSING' ? `it has no manifest, so it is not a complete backup (an aborted or unfinished backup, or not a backup directory)` : err.message;
  return baseRefused(dir, why);
}

/**
 * Why `base` cannot be a base because it overlaps `dbpath` (the same directory, one
 * inside the other), by the paths as written and then with every symbolic link resolved;
 * undefined when they are apart.
 */
async function dbpathOverlap(base: string, dbpath: string): Promise<string | undefined> {
  const [realBase, realDbpath] = await Promise.all([realOrSame(base), realOrSame(dbpath)]);
  for (const [b, d] of [[base, dbpath], [realBase, realDbpath]] as const) {
    if (!pathsOverlap(b, d)) continue;
    const how = b === d ? `is the dbpath ${dbpath}` : b.startsWith(`${d}${path.sep}`) ? `is inside the dbpath ${dbpath}` : `holds the dbpath ${dbpath}`;
    const through = b === base && d === dbpath ? '' : ` (${base} resolves to ${realBase}, the dbpath to ${realDbpath})`;
    return `it ${how} that this proxy backs up${through}: mongod's live files are never a base, since taking them would link them into the backup and make them read-only. Give the directory of an earlier backup`;
  }
  return undefined;
}

async function realOrSame(dir: string): Promise<string> {
  return fs.realpath(dir).catch(() => dir);
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
  return settledBefore(entry.mtime, new Date(base.manifest.startedAt), base.manifest.startedAtFs) ? 'sizeMtime' : 'compare';
}

/** `files`, each that may be taken from `base` saying so (SourceFile.reuse). */
export function planReuse(files: readonly SourceFile[], base: Pick<IncrementalBase, 'dir' | 'manifest' | 'writtenAt' | 'checksum' | 'locate'>): SourceFile[] {
  const entries = new Map(base.manifest.files.map((entry) => [path.normalize(entry.path), entry]));
  return files.map((file) => {
    const entry = entries.get(path.normalize(file.relativePath));
    const decision = decide(file, entry, base);
    if (entry === undefined || decision === 'copy') return file;
    const reuse = { from: base.locate?.(entry.path) ?? path.join(base.dir, entry.path), backupId: base.manifest.backupId, checksum: entry.checksum, baseWrittenAt: base.writtenAt, compare: decision === 'compare' };
    return { ...file, reuse };
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
