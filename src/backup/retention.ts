/**
 * Retention: which backups of a catalog (backup_catalog.ts) to delete to keep the newest N
 * complete ones of each source (RocksDB's PurgeOldBackups(n)), and the deletion itself.
 *
 * N counts per source, the dbpath and the mongod a manifest names (`source.dbpath`,
 * `source.host`, compared as incremental.ts compares a base): a root may hold the backups
 * of several databases, and the newest N of them all could be one database's alone,
 * leaving another without any backup. Newest is by `finishedAt`, the moment the backup
 * was whole; a backup dated in the future (the clock was ahead when it was taken) stays
 * the newest until then, and the plan says so.
 *
 * A base that a kept incremental backup was taken against is no reason to keep it: the
 * incremental holds every file in its own directory, reused ones as clones or hard links
 * (file_reuse.ts), and the filesystem counts the references, so deleting the base frees
 * only what nothing else shares (rsnapshot relies on the same property of hard links).
 * What the plan does guard is the bytes themselves: a base (and, transitively, its own
 * base) stays while a kept backup lists a file as taken from it that is missing from the
 * kept backup's directory (or has another size there), since the base may then hold its
 * only copy.
 *
 * On S3 the same rule holds for the same reason: an incremental's unchanged files are
 * server-side copies (CopyObject), objects of its own, so deleting its base frees the
 * base's objects only, and the guard still keeps a base whose kept incremental lacks an
 * object it lists as reused. Where the backups are (a directory, an S3 root) is a
 * PurgeStore: what the plan checks a file with, and what deletes a backup.
 *
 * Directories without a manifest are left alone, unless asked (`removeIncomplete`), and
 * then only those whose marker (backup_marker.ts) says the backup ended without one:
 * aborted, failed, interrupted, or running with its writer gone. Never one still being
 * written, nor one whose writer cannot be checked from here, nor anything without our
 * marker (lost+found, a nested catalog, another tool's files). Symbolic links are never
 * deleted through.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, MANIFEST_FILENAME, readManifest, type Manifest } from './manifest.js';
import { fsyncDirectory } from './durable.js';
import { withoutManifest, type CatalogEntry } from './backup_catalog.js';
import { INCOMPLETE_MARKER_FILENAME, writePurgeMarker, type MarkerVerdict } from './backup_marker.js';
import { failPointEnabled } from '../failpoints.js';

export interface PurgeOptions {
  /** Complete backups to keep of each source, newest first; at least 1. */
  keep: number;
  /** Also delete unfinished backups whose marker says they ended. Default false. */
  removeIncomplete?: boolean;
  /** Where the backups are; default: directories (directoryStore). */
  store?: PurgeStore;
}

/** What purge needs of the place the backups are kept. */
export interface PurgeStore {
  /** Whether `backup` holds its own copy of `file` (a manifest path) at `size` bytes. */
  holds(backup: CatalogEntry, file: string, size: number): Promise<boolean>;
  /** How a backup holds the files it took from its base, for the plan's reasons ("clones or hard links"). */
  readonly reusedCopies: string;
  /** Deletes a backup the plan removes: its manifest first. Throws, deleting nothing, when it changed since it was listed. */
  remove(entry: CatalogEntry): Promise<void>;
}

/** Backups in directories (readCatalog's). */
export const directoryStore: PurgeStore = {
  holds: async (backup, file, size) => {
    const stats = await fs.lstat(path.join(backup.path, file)).catch(() => undefined);
    return stats?.isFile() === true && stats.size === size;
  },
  reusedCopies: 'clones or hard links',
  remove: (entry) => removeBackup(entry),
};

export type PurgeAction = 'keep' | 'remove' | 'leave';

export interface PurgeItem {
  readonly entry: CatalogEntry;
  readonly action: PurgeAction;
  /** Why, in a few words, for the operator. */
  readonly reason: string;
}

/** The complete backups of one source: what --keep counts. */
export interface SourceGroup {
  readonly source: Manifest['source'];
  /** Its complete backups, oldest first. */
  readonly entries: readonly CatalogEntry[];
}

/** Unfinished backups that ended without a manifest: theirs may be deleted with removeIncomplete. */
const ENDED: ReadonlySet<MarkerVerdict | undefined> = new Set<MarkerVerdict>(['aborted', 'failed', 'interrupted']);

/** Whether a marker's verdict says the backup ended without a manifest (what --remove-incomplete may delete). */
export function endedWithoutManifest(verdict: MarkerVerdict | undefined): boolean {
  return ENDED.has(verdict);
}

/**
 * The key of a manifest's source: its dbpath, how the proxy reached mongod, and the
 * machine the proxy ran on when the manifest says (sidecars on several machines reach
 * 127.0.0.1:27017 alike). A manifest without a hostname keeps the key it always had.
 */
export function sourceKey(source: Manifest['source']): string {
  const key = [path.resolve(source.dbpath), source.host];
  return JSON.stringify(source.hostname === undefined ? key : [...key, source.hostname]);
}

/** The backups of a source, as the operator reads them. */
export function describeSource(source: Manifest['source']): string {
  return `${source.dbpath} (mongod at ${source.host}${source.hostname === undefined ? '' : ` from ${source.hostname}`})`;
}

/** The catalog's entries, oldest first, each with what purge does to it. */
export async function planPurge(catalog: readonly CatalogEntry[], options: PurgeOptions): Promise<PurgeItem[]> {
  if (!Number.isSafeInteger(options.keep) || options.keep < 1) throw new RangeError(`keep must be a whole number of at least 1, got ${options.keep}`);
  const complete = catalog.filter((entry) => entry.manifest !== undefined);
  const kept = new Set<CatalogEntry>();
  for (const group of sourceGroups(catalog)) {
    const newestFirst = [...group.entries].sort((a, b) => b.time.getTime() - a.time.getTime());
    for (const entry of newestFirst.slice(0, options.keep)) kept.add(entry);
  }
  const store = options.store ?? directoryStore;
  const needed = await neededBases([...kept], complete, store);
  return catalog.map((entry): PurgeItem => {
    if (entry.manifest === undefined) return incompleteItem(entry, options.removeIncomplete === true);
    const of = `of the backups of ${describeSource(entry.manifest.source)}`;
    if (kept.has(entry)) return { entry, action: 'keep', reason: `within --keep ${options.keep} ${of}` };
    const need = needed.get(entry);
    if (need !== undefined) return { entry, action: 'keep', reason: need };
    return { entry, action: 'remove', reason: `beyond --keep ${options.keep} ${of}${sharedNote(entry, kept, store.reusedCopies)}` };
  });
}

/**
 * The complete backups of `catalog` by source, in the order of each source's oldest backup.
 * Backups whose manifest names no machine (taken before manifests recorded one) join the
 * one source of that dbpath and mongod that does name one, as isSameSource lets them be
 * its base; with several such machines, which one took them is unknown, so they stay a
 * source of their own.
 */
export function sourceGroups(catalog: readonly CatalogEntry[]): SourceGroup[] {
  const groups = new Map<string, { source: Manifest['source']; entries: CatalogEntry[] }>();
  for (const entry of catalog) {
    if (entry.manifest === undefined) continue;
    const { source } = entry.manifest;
    const key = sourceKey(source);
    const group = groups.get(key) ?? { source, entries: [] };
    group.entries.push(entry);
    groups.set(key, group);
  }
  for (const [key, group] of groups) {
    if (group.source.hostname !== undefined) continue;
    const named = [...groups.values()].filter((other) => other.source.hostname !== undefined && sourceKey({ ...other.source, hostname: undefined }) === key);
    const [only] = named;
    if (named.length !== 1 || only === undefined) continue;
    only.entries.push(...group.entries);
    only.entries.sort((a, b) => a.time.getTime() - b.time.getTime());
    groups.delete(key);
  }
  return [...groups.values()];
}

/** A source whose newest backup is this much older than the root's newest is named in purge's plan. */
export const ABANDONED_AFTER_MS = 7 * 24 * 3600 * 1000;

/**
 * Sources whose newest backup is much older than the root's newest, each in a sentence:
 * --keep keeps N backups of every source, so one no longer backed up (a container
 * recreated under a new --source-name, a machine retired) keeps its N forever unless the
 * operator deletes them.
 */
export function abandonedSourceWarnings(catalog: readonly CatalogEntry[]): string[] {
  const groups = sourceGroups(catalog);
  const newestOf = (group: SourceGroup) => Math.max(...group.entries.map((entry) => entry.time.getTime()));
  const newest = Math.max(...groups.map(newestOf));
  return groups
    .filter((group) => newest - newestOf(group) > ABANDONED_AFTER_MS)
    .map((group) => {
      const days = Math.floor((newest - newestOf(group)) / (24 * 3600 * 1000));
      return `the newest backup of ${describeSource(group.source)} is ${days} days older than the newest under this root: if that source is no longer backed up (a container recreated under another --source-name, a machine retired), purge keeps its last backups until they are deleted by hand`;
    });
}

/**
 * Backups dated in the future, each in a sentence: one taken while the clock was ahead
 * counts as the newest of its source until that time comes, which the operator should know.
 */
export function futureWarnings(catalog: readonly CatalogEntry[], now: Date = new Date()): string[] {
  return catalog
    .filter((entry) => entry.manifest !== undefined && entry.time.getTime() > now.getTime())
    .map((entry) => `${entry.name} finished at ${entry.manifest?.finishedAt}, which is in the future (was the clock ahead when it was taken?): it counts as the newest backup of its source until then`);
}

/** What becomes of a directory without a manifest, or a symbolic link. */
function incompleteItem(entry: CatalogEntry, removeIncomplete: boolean): PurgeItem {
  if (entry.symlink !== undefined) return { entry, action: 'leave', reason: `a symbolic link to ${entry.symlink}: purge never deletes through one; left alone` };
  const why = entry.incomplete ?? 'no manifest';
  if (entry.unfinished === 'running') return { entry, action: 'leave', reason: `${why}: never removed` };
  if (ENDED.has(entry.unfinished)) {
    return removeIncomplete ? { entry, action: 'remove', reason: why } : { entry, action: 'leave', reason: `${why}; left alone (--remove-incomplete deletes it)` };
  }
  return { entry, action: 'leave', reason: `${why}; left alone, even with --remove-incomplete` };
}

/** ", the base of x, which holds its own copies of the 12 files they share", when a kept backup was taken against it. */
function sharedNote(entry: CatalogEntry, kept: ReadonlySet<CatalogEntry>, copies: string): string {
  const id = entry.manifest?.backupId;
  const dependants = [...kept].filter((k) => k.manifest?.base?.backupId === id);
  if (dependants.length === 0) return '';
  return dependants
    .map((k) => `; the base of ${k.name}, which holds its own copies (${copies}) of the ${k.manifest?.files.filter((f) => f.reusedFrom?.backupId === id).length ?? 0} files it took from it`)
    .join('');
}

/**
 * The complete backups a kept one still needs, each with the reason: a base holding a
 * file that the backup taken against it lists as reused but lacks. Followed down the chain.
 */
async function neededBases(kept: readonly CatalogEntry[], complete: readonly CatalogEntry[], store: PurgeStore): Promise<Map<CatalogEntry, string>> {
  const byId = new Map(complete.map((entry) => [entry.manifest?.backupId, entry]));
  const needed = new Map<CatalogEntry, string>();
  const visit = async (backup: CatalogEntry, wanted: readonly string[], keptName: string): Promise<void> => {
    const base = byId.get(backup.manifest?.base?.backupId);
    if (base === undefined || wanted.length === 0) return;
    const lacking: string[] = [];
    for (const file of wanted) {
      const listed = backup.manifest?.files.find((f) => f.path === file);
      if (listed === undefined || !(await store.holds(backup, file, listed.size))) lacking.push(file);
    }
    if (lacking.length === 0) return;
    if (!needed.has(base)) needed.set(base, `needed by ${keptName}: it lists ${lacking[0]} as taken from here, and its own copy is missing`);
    // The base may have taken it from its own base in turn.
    const alsoReused = lacking.filter((file) => base.manifest?.files.some((f) => f.path === file && f.reusedFrom !== undefined) === true);
    await visit(base, alsoReused, keptName);
  };
  for (const backup of kept) {
    const reused = backup.manifest?.files.filter((file) => file.reusedFrom !== undefined).map((file) => file.path) ?? [];
    await visit(backup, reused, backup.name);
  }
  return needed;
}

/**
 * Deletes one backup directory. A complete one loses its manifest first (made durable),
 * as RocksDB deletes a backup's meta file before its files ("Don't delete other files if
 * we can't delete the meta file": BackupEngineImpl::DeleteBackupNoGC,
 * utilities/backupable/backupable_db.cc): a deletion cut short leaves
 * an incomplete directory, never one that looks complete and is not. Reused files are
 * read-only (0400), which does not stop their deletion (unlinking needs write permission
 * on the directory, not the file); a directory someone made read-only is made writable
 * for its owner first.
 *
 * Looks again just before, and refuses when the path is no longer a real directory (a
 * symbolic link now), holds another backup than the one planned, or, for an unfinished
 * backup, when its marker no longer says that it ended.
 */
export async function removeBackup(entry: CatalogEntry): Promise<void> {
  const stats = await fs.lstat(entry.path);
  if (!stats.isDirectory()) throw new Error(`${entry.path} is not a directory (${stats.isSymbolicLink() ? 'a symbolic link' : 'a file'}) any more; left alone`);
  if (entry.manifest !== undefined) {
    const now = await readManifest(entry.path);
    if (now.backupId !== entry.manifest.backupId) {
      throw new Error(`${entry.path} now holds backup ${now.backupId}, not ${entry.manifest.backupId} as when purge listed it; left alone`);
    }
  } else {
    await stillEnded(entry.path);
  }
  // Before any unlink: the manifest's own directory may be the read-only one.
  await makeDirectoriesWritable(entry.path);
  if (entry.manifest !== undefined) {
    // A deletion cut short must leave an unfinished backup that ended, which the next
    // purge --remove-incomplete deletes, not files without a manifest or marker.
    await writePurgeMarker(entry.path, entry.manifest);
    try {
      if (failPointEnabled('failPurgeManifestDeletion')) throw new Error(`failPurgeManifestDeletion: the deletion of the manifest of ${entry.path} failed`);
      await fs.rm(path.join(entry.path, MANIFEST_FILENAME));
    } catch (err) {
      // The backup is still complete: its marker would say forever that it is being deleted.
      await fs.rm(path.join(entry.path, INCOMPLETE_MARKER_FILENAME), { force: true }).catch(() => undefined);
      throw err;
    }
    await fsyncDirectory(entry.path);
    if (failPointEnabled('failPurgeAfterManifestDeletion')) throw new Error(`failPurgeAfterManifestDeletion: stopped after deleting the manifest of ${entry.path}`);
  }
  await fs.rm(entry.path, { recursive: true, force: true });
  await fsyncDirectory(path.dirname(entry.path));
}

/** Throws unless `dir` has no manifest and a marker saying its backup ended (aborted, failed, interrupted). */
async function stillEnded(dir: string): Promise<void> {
  const missing = await readManifest(dir).then(
    () => undefined,
    (err: unknown) => {
      if (err instanceof ManifestError) return err;
      throw err;
    },
  );
  if (missing === undefined) throw new Error(`${dir} now holds a complete backup; left alone`);
  const state = await withoutManifest(dir, missing);
  if (!ENDED.has(state.unfinished)) throw new Error(`${dir} is not an unfinished backup that ended: ${state.incomplete}; left alone`);
}

/** Adds owner rwx to `dir` and every directory under it (not following links). */
async function makeDirectoriesWritable(dir: string): Promise<void> {
  const stats = await fs.lstat(dir);
  if (!stats.isDirectory()) return;
  if ((stats.mode & 0o700) !== 0o700) await fs.chmod(dir, (stats.mode & 0o7777) | 0o700);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await makeDirectoriesWritable(path.join(dir, entry.name));
  }
}
