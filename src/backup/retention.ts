/**
 * Retention: which backups of a catalog (backup_catalog.ts) to delete to keep the newest N
 * complete ones (RocksDB's PurgeOldBackups(n)), and the deletion itself.
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
 * Incomplete directories (no manifest) are left alone unless asked: a backup still
 * running has no manifest until it ends, and nothing here can tell it from a failed one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_FILENAME, readManifest } from './manifest.js';
import { fsyncDirectory } from './durable.js';
import type { CatalogEntry } from './backup_catalog.js';

export interface PurgeOptions {
  /** Complete backups to keep, newest first; at least 1. */
  keep: number;
  /** Also delete incomplete directories. Only safe while no backup is being written under the root. Default false. */
  removeIncomplete?: boolean;
}

export type PurgeAction = 'keep' | 'remove' | 'leave';

export interface PurgeItem {
  readonly entry: CatalogEntry;
  readonly action: PurgeAction;
  /** Why, in a few words, for the operator. */
  readonly reason: string;
}

/** The catalog's entries, oldest first, each with what purge does to it. */
export async function planPurge(catalog: readonly CatalogEntry[], options: PurgeOptions): Promise<PurgeItem[]> {
  if (!Number.isSafeInteger(options.keep) || options.keep < 1) throw new RangeError(`keep must be a whole number of at least 1, got ${options.keep}`);
  const complete = catalog.filter((entry) => entry.manifest !== undefined);
  const newestFirst = [...complete].sort((a, b) => b.time.getTime() - a.time.getTime());
  const kept = new Set(newestFirst.slice(0, options.keep));
  const needed = await neededBases([...kept], complete);
  return catalog.map((entry): PurgeItem => {
    if (entry.manifest === undefined) {
      return options.removeIncomplete === true
        ? { entry, action: 'remove', reason: `incomplete: ${entry.incomplete}` }
        : { entry, action: 'leave', reason: `incomplete: ${entry.incomplete}; left alone` };
    }
    if (kept.has(entry)) return { entry, action: 'keep', reason: `within --keep ${options.keep}` };
    const need = needed.get(entry);
    if (need !== undefined) return { entry, action: 'keep', reason: need };
    return { entry, action: 'remove', reason: `beyond --keep ${options.keep}${sharedNote(entry, kept)}` };
  });
}

/** ", the base of x, which holds its own copies of the 12 files they share", when a kept backup was taken against it. */
function sharedNote(entry: CatalogEntry, kept: ReadonlySet<CatalogEntry>): string {
  const id = entry.manifest?.backupId;
  const dependants = [...kept].filter((k) => k.manifest?.base?.backupId === id);
  if (dependants.length === 0) return '';
  return dependants
    .map((k) => `; the base of ${k.name}, which holds its own copies (clones or hard links) of the ${k.manifest?.files.filter((f) => f.reusedFrom?.backupId === id).length ?? 0} files it took from it`)
    .join('');
}

/**
 * The complete backups a kept one still needs, each with the reason: a base holding a
 * file that the backup taken against it lists as reused but lacks. Followed down the chain.
 */
async function neededBases(kept: readonly CatalogEntry[], complete: readonly CatalogEntry[]): Promise<Map<CatalogEntry, string>> {
  const byId = new Map(complete.map((entry) => [entry.manifest?.backupId, entry]));
  const needed = new Map<CatalogEntry, string>();
  const visit = async (backup: CatalogEntry, wanted: readonly string[], keptName: string): Promise<void> => {
    const base = byId.get(backup.manifest?.base?.backupId);
    if (base === undefined || wanted.length === 0) return;
    const lacking: string[] = [];
    for (const file of wanted) if (!(await holds(backup, file))) lacking.push(file);
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

/** Whether `backup`'s directory holds `file` at the size its manifest lists. */
async function holds(backup: CatalogEntry, file: string): Promise<boolean> {
  const listed = backup.manifest?.files.find((f) => f.path === file);
  const stats = await fs.lstat(path.join(backup.path, file)).catch(() => undefined);
  return listed !== undefined && stats?.isFile() === true && stats.size === listed.size;
}

/**
 * Deletes one backup directory. A complete one loses its manifest first (made durable),
 * as RocksDB deletes a backup's meta file before its files ("Don't delete other files if
 * we can't delete the meta file": BackupEngineImpl::DeleteBackupNoGC,
 * utilities/backupable/backupable_db.cc): a deletion cut short leaves
 * an incomplete directory, never one that looks complete and is not. Reused files are
 * read-only (0400), which does not stop their deletion (unlinking needs write permission
 * on the directory, not the file); a directory someone made read-only is made writable
 * for its owner first. Refuses when the directory no longer holds the backup planned.
 */
export async function removeBackup(entry: CatalogEntry): Promise<void> {
  if (entry.manifest !== undefined) {
    const now = await readManifest(entry.path);
    if (now.backupId !== entry.manifest.backupId) {
      throw new Error(`${entry.path} now holds backup ${now.backupId}, not ${entry.manifest.backupId} as when purge listed it; left alone`);
    }
  }
  // Before any unlink: the manifest's own directory may be the read-only one.
  await makeDirectoriesWritable(entry.path);
  if (entry.manifest !== undefined) {
    await fs.rm(path.join(entry.path, MANIFEST_FILENAME));
    await fsyncDirectory(entry.path);
  }
  await fs.rm(entry.path, { recursive: true, force: true });
  await fsyncDirectory(path.dirname(entry.path));
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
