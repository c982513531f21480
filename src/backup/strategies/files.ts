/**
 * mongod's dbpath as files to copy: the strategies' absolute names made relative,
 * the fsyncLock strategy's own listing of the dbpath (what a restore needs, what it
 * must not get, what is nice to have: docs/what-is-copied.md), and the symbolic
 * links a file was reached through, for the manifest.
 */
import path from 'node:path';
import fs from 'node:fs/promises';
import type { BigIntStats, Dirent, Stats } from 'node:fs';
import type { FileLink, SourceFile } from '../copy_types.js';
import { strerror } from '../io_error.js';
import { CommandError, ErrorCodes } from '../../errors.js';
import { mtimeText, statStamp } from '../source_stamp.js';
import { isHotbackupFile } from '../own_files.js';
import { mapFiles } from '../file_walk.js';
import { leavesParent } from '../path_within.js';

/** Relative to the dbpath, so that the backup directory is itself a usable dbpath. */
export function sourceFile(dbpath: string, absolute: string, size: number): SourceFile {
  const relativePath = path.relative(dbpath, absolute);
  if (relativePath === '' || leavesParent(relativePath)) {
    throw new CommandError(ErrorCodes.CannotBackup, `mongod listed ${absolute}, which is outside the dbpath ${dbpath}`);
  }
  return { path: absolute, relativePath, size };
}

/**
 * - required: what a restore needs; if one vanishes or shrinks mid-copy, the backup fails;
 * - optional: anything else (a mongod.log kept in the dbpath, a keyfile): copied best-effort;
 * - excluded: never copied: scratch, lock files, and hotbackup's own files at the top
 *   (own_files.ts).
 */
export type DbpathRole = 'required' | 'optional' | 'excluded';

/**
 * Directories mongod rewrites even while fsync-locked, or that hold only scratch:
 * FTDC replaces diagnostic.data/metrics.interim by temp file and rename, and deletes
 * it when it archives a chunk (mongo src/mongo/db/ftdc/file_writer.cpp,
 * writeInterimFileBuffer and flush), lock or no lock; `_tmp`
 * holds external sorts' and index builds' spill files, useless to a restore.
 */
const EXCLUDED_DIRECTORIES = new Set(['diagnostic.data', '_tmp']);
/** Lock files mongod and WiredTiger hold open for exclusive use; a restore makes its own. */
const LOCK_FILES = new Set(['mongod.lock', 'WiredTiger.lock']);
/** WiredTiger's preallocated and temporary log files (100 MB, unused); it makes new ones. */
const SPARE_LOG = /^WiredTiger(Preplog|Tmplog)\.\d+$/;
const LOG = /^WiredTigerLog\.\d+$/;
const JOURNAL = 'journal';

/** WiredTiger's log (mongod's journal): always copied, never taken from an incremental backup's base. */
export function isJournalFile(relativePath: string): boolean {
  const parts = path.normalize(relativePath).split(path.sep);
  return parts.length === 2 && parts[0] === JOURNAL && LOG.test(parts[1] ?? '');
}

/**
 * `files` (live files under the dbpath) each with a stamp from one stat now; for a strategy
 * whose window is already open (a pinned $backupCursor checkpoint), where that one stat is
 * a reading both before and after the capture (source_stamp.ts). A file gone meanwhile
 * goes unstamped: the copy reports it.
 */
export async function stampFiles(files: readonly SourceFile[]): Promise<SourceFile[]> {
  return mapFiles(files, async (file) => {
    const stamp = await statStamp(file.path).catch(() => undefined);
    return stamp === undefined ? file : { ...file, stamp };
  });
}

/** The role of a file (or, for excluded directories, a directory) by its path relative to the dbpath. */
export function dbpathRole(relativePath: string): DbpathRole {
  const parts = path.normalize(relativePath).split(path.sep);
  const [top = '', second] = parts;
  const name = parts[parts.length - 1] ?? '';
  if (EXCLUDED_DIRECTORIES.has(top)) return 'excluded';
  if (parts.length === 1) {
    if (LOCK_FILES.has(name)) return 'excluded';
    // A manifest, marker or record of hotbackup's own, in a dbpath that was once a backup or a restore's target.
    if (isHotbackupFile(name)) return 'excluded';
    // WiredTiger, WiredTiger.turtle, WiredTiger.wt, WiredTiger.basecfg, WiredTigerHS.wt...
    if (name.startsWith('WiredTiger') || name === 'storage.bson') return 'required';
  }
  if (parts.length === 2 && top === JOURNAL && second !== undefined) {
    if (SPARE_LOG.test(second)) return 'excluded';
    if (LOG.test(second)) return 'required';
  }
  // Every table at any depth: the --directoryperdb and --wiredTigerDirectoryForIndexes layouts.
  if (name.endsWith('.wt')) return 'required';
  return 'optional';
}

export interface ListOptions {
  /**
   * Skip whatever vanishes between a directory's readdir and the look at an entry (a file,
   * a directory, a link), instead of failing. For a listing taken while mongod still
   * writes (the reflink strategy's, ahead of its lock): WiredTiger removes old journal
   * files after each checkpoint, and a drop deletes its tables' files. A link that is
   * there but leads nowhere still fails the listing. Default false: the listing is
   * taken under a lock, and a required file gone then fails the backup.
   */
  tolerateVanishing?: boolean;
}

/** One listing under way: where, how strict, and the files found so far. */
interface Listing {
  root: string;
  tolerant: boolean;
  files: SourceFile[];
}

/**
 * Every file under the dbpath that a backup copies, with its size now (used while
 * writes are blocked), following symbolic links: a database directory or `journal/`
 * on another disk is copied under the link's name. A link that cannot be followed,
 * or that leads back into a directory it is inside of, fails the listing.
 */
export async function listDbpath(dbpath: string, options: ListOptions = {}): Promise<SourceFile[]> {
  const listing: Listing = { root: path.resolve(dbpath), tolerant: options.tolerateVanishing === true, files: [] };
  const rootStats = await fs.stat(listing.root);
  await listDirectory(listing, '', [{ id: directoryId(rootStats), relativePath: '' }]);
  return sorted(listing.files);
}

/**
 * The dbpath as it is now, for a caller that listed it moments ago (`previous`) and
 * needs only the names, not the sizes: the reflink strategy, under the fsync lock, where
 * every millisecond is a writer waiting. One readdir per directory; a name listed before
 * as a file, and a file still, keeps its old size (the caller must take the real size
 * from its clone); a name listed before as a directory, and a directory still, is read
 * again the same way. Everything else (new since, a file that became a directory or the
 * other way round, a symbolic link) gets the full look listDbpath takes, sizes included.
 * What vanished since is left out; what vanishes during it fails as listDbpath does.
 */
export async function relistDbpath(dbpath: string, previous: readonly SourceFile[]): Promise<SourceFile[]> {
  const listing: Listing = { root: path.resolve(dbpath), tolerant: false, files: [] };
  const known = new Map(previous.map((file) => [path.normalize(file.relativePath), file]));
  const knownDirs = new Set<string>();
  for (const file of previous) {
    for (let dir = path.dirname(path.normalize(file.relativePath)); dir !== '.'; dir = path.dirname(dir)) knownDirs.add(dir);
  }
  const rootStats = await fs.stat(listing.root);
  const ancestors: Ancestor[] = [{ id: directoryId(rootStats), relativePath: '' }];
  const relist = async (relativeDir: string): Promise<void> => {
    const entries = await fs.readdir(path.join(listing.root, relativeDir), { withFileTypes: true });
    await mapFiles(entries, async (entry) => {
      const relativePath = path.join(relativeDir, entry.name);
      const file = known.get(relativePath);
      if (file !== undefined && entry.isFile()) {
        listing.files.push(file);
      } else if (knownDirs.has(relativePath) && entry.isDirectory()) {
        await relist(relativePath);
      } else {
        await listEntry(listing, relativeDir, entry, ancestors);
      }
    });
  };
  await relist('');
  return sorted(listing.files);
}

function sorted(files: SourceFile[]): SourceFile[] {
  return files.sort((a, b) => a.relativePath.localeCompare(b.relativePath));
}

interface Ancestor {
  id: string;
  relativePath: string;
}

/**
 * The entries of a directory are looked at in parallel: the reflink strategy lists
 * the dbpath while mongod's writes are blocked, and one stat after another costs a
 * thread-pool round trip each (about 15 ms for 200 files on a loop-mounted XFS, a
 * quarter of that in parallel). A bounded window (file_walk.ts): the thread pool has
 * 4 threads, and every request in flight holds memory.
 */
async function listDirectory(listing: Listing, relativeDir: string, ancestors: readonly Ancestor[]): Promise<void> {
  const dir = path.join(listing.root, relativeDir);
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    // Removed (or replaced by a file) since it was seen as a directory.
    if (listing.tolerant && relativeDir !== '' && isVanished(err)) return;
    throw err;
  }
  await mapFiles(entries, (entry) => listEntry(listing, relativeDir, entry, ancestors));
}

async function listEntry(listing: Listing, relativeDir: string, entry: Dirent, ancestors: readonly Ancestor[]): Promise<void> {
  const { root } = listing;
  const relativePath = path.join(relativeDir, entry.name);
  const role = dbpathRole(relativePath);
  if (role === 'excluded') return;
  const absolute = path.join(root, relativePath);
  let stats: BigIntStats;
  try {
    // With nanoseconds: the mtime is recorded for the next incremental backup (source_stamp.ts).
    stats = await fs.stat(absolute, { bigint: true });
  } catch (err) {
    const vanished = listing.tolerant && isVanished(err);
    if (entry.isSymbolicLink()) {
      // A link removed since readdir is as gone as a file; one still there leads nowhere.
      if (vanished && !(await exists(absolute))) return;
      throw await unfollowableLink(root, relativePath, err);
    }
    // Gone since readdir: only a file mongod does not need may do that, unless mongod still writes.
    if (vanished || ((err as NodeJS.ErrnoException).code === 'ENOENT' && role === 'optional')) return;
    throw err;
  }
  if (stats.isDirectory()) {
    const id = directoryId(stats);
    const loop = ancestors.find((a) => a.id === id);
    if (loop !== undefined) throw await cycle(root, relativePath, loop.relativePath, entry.isSymbolicLink());
    await listDirectory(listing, relativePath, [...ancestors, { id, relativePath }]);
  } else if (stats.isFile()) {
    const mtime = mtimeText(stats);
    listing.files.push({
      ...sourceFile(root, absolute, Number(stats.size)),
      ...(role === 'optional' ? { optional: true } : {}),
      // Read while the listing's caller protects the files (under the fsync lock), or,
      // for the reflink strategy's listing ahead of the lock, before the clone: a
      // reading at or before the capture either way.
      ...(mtime === undefined ? {} : { stamp: { before: mtime, after: mtime } }),
    });
  }
  // Sockets, FIFOs and devices hold no data to copy.
}

function isVanished(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Whether the name itself is there (a link is not followed). */
async function exists(absolute: string): Promise<boolean> {
  return fs.lstat(absolute).then(
    () => true,
    () => false,
  );
}

function directoryId(stats: Stats | BigIntStats): string {
  return `${stats.dev}:${stats.ino}`;
}

async function readLink(absolute: string): Promise<string> {
  return fs.readlink(absolute).catch(() => '?');
}

/** A dangling link, or a loop of links: the error names the link and what it points to. */
async function unfollowableLink(root: string, relativePath: string, err: unknown): Promise<CommandError> {
  const absolute = path.join(root, relativePath);
  const errno = Math.abs((err as NodeJS.ErrnoException).errno ?? 0);
  const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is dangling' : 'cannot be followed';
  return new CommandError(
    ErrorCodes.CannotBackup,
    `cannot back up ${root}: the symbolic link ${relativePath} (${absolute} -> ${await readLink(absolute)}) ${why}: ${strerror(errno)}`,
    { extra: { errno, strerror: strerror(errno) }, cause: err },
  );
}

async function cycle(root: string, relativePath: string, ancestor: string, isLink: boolean): Promise<CommandError> {
  const absolute = path.join(root, relativePath);
  const where = ancestor === '' ? 'the dbpath itself' : `${ancestor}, a directory it is inside of`;
  // Not a link: a bind mount of a directory above it.
  const what = isLink ? `the symbolic link ${relativePath} (${absolute} -> ${await readLink(absolute)})` : `the directory ${relativePath} (${absolute})`;
  return new CommandError(ErrorCodes.CannotBackup, `cannot back up ${root}: ${what} leads back to ${where}: a cycle`);
}

/**
 * The first symbolic link on `file`'s path below its dbpath (the file itself, or a
 * directory above it), with where it leads; undefined when there is none, or when
 * the file is not there at all (the copier reports that). Works for any strategy's
 * list: the dbpath is what `path` has above `relativePath`.
 * `seen` caches the answer per prefix across the files of one list.
 */
export async function linkOf(file: SourceFile, seen = new Map<string, Promise<FileLink | undefined>>()): Promise<FileLink | undefined> {
  const parts = path.normalize(file.relativePath).split(path.sep);
  let root = path.resolve(file.path);
  for (let i = 0; i < parts.length; i++) root = path.dirname(root);
  let relativePath = '';
  for (const part of parts) {
    relativePath = path.join(relativePath, part);
    const key = path.join(root, relativePath);
    let found = seen.get(key);
    if (found === undefined) {
      found = linkAt(root, relativePath);
      seen.set(key, found);
    }
    const link = await found;
    if (link !== undefined) return link;
  }
  return undefined;
}

async function linkAt(root: string, relativePath: string): Promise<FileLink | undefined> {
  const absolute = path.join(root, relativePath);
  const stats = await fs.lstat(absolute).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (stats?.isSymbolicLink() !== true) return undefined;
  try {
    return { path: relativePath, target: await fs.realpath(absolute) };
  } catch (err) {
    throw await unfollowableLink(root, relativePath, err);
  }
}

/** `files`, each with the link it is reached through (if any) filled in. */
export async function withLinks(files: readonly SourceFile[]): Promise<SourceFile[]> {
  const seen = new Map<string, Promise<FileLink | undefined>>();
  return mapFiles(files, async (file) => {
    const link = await linkOf(file, seen);
    return link === undefined ? file : { ...file, link };
  });
}
