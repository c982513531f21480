/**
 * A scheduled job's backups under its root (backup_job.ts): where the next one goes,
 * which earlier one it is taken against, and the retention and deletion of the job's own
 * backups, over the catalog (backup_catalog.ts) and retention (retention.ts) that
 * `hotbackup list` and `purge` use.
 *
 * Only the backups the job took (its record names them, job_state_file.ts) are counted by
 * its retention and deleted by it: a backup someone else put in the root is the job's
 * base if it is the newest good one, but never the job's to delete.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readCatalog, type CatalogEntry } from './backup_catalog.js';
import { planPurge, removeBackup } from './retention.js';
import { MANIFEST_FILENAME } from './manifest.js';
import { isSameSource, type SourceIdentity } from './incremental.js';

/** `2026-11-21T02-00-00Z`: UTC to the second, sortable, no ':' (scp and Windows shares read it as a host or refuse it). */
export function backupNameAt(at: Date): string {
  return at.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z';
}

/**
 * `<root>/<time>`, or `<root>/<time>-2` and so on when that name is taken (a clock set
 * back, or someone else's directory): a backup never goes into a directory that exists.
 */
export async function freeDestination(root: string, at: Date): Promise<string> {
  const name = backupNameAt(at);
  for (let n = 1; ; n += 1) {
    const candidate = path.join(root, n === 1 ? name : `${name}-${n}`);
    const taken = await fs.lstat(candidate).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
    if (!taken) return candidate;
  }
}

/**
 * The newest complete backup under `root` of this very dbpath and mongod (what
 * incremental.ts accepts as a base), or undefined: then the next backup is full.
 */
export async function newestGoodBackup(root: string, source: SourceIdentity): Promise<CatalogEntry | undefined> {
  const catalog = await readCatalog(root);
  const good = catalog.filter((entry) => entry.manifest !== undefined && isSameSource(entry.manifest.source, source));
  return good.at(-1);
}

export interface RetentionResult {
  /** The job's backups still there, by name, oldest first. */
  kept: string[];
  removed: string[];
  /** A deletion that failed (the rest were not attempted); the next retention tries again. */
  warnings: string[];
}

/** Deletes the job's oldest complete backups beyond the newest `keep` (retention.ts's plan, over the job's backups only). */
export async function applyRetention(root: string, jobBackups: readonly string[], keep: number): Promise<RetentionResult> {
  const ours = await jobEntries(root, jobBackups);
  const plan = await planPurge(ours, { keep });
  const removed: string[] = [];
  const warnings: string[] = [];
  for (const item of plan.filter((i) => i.action === 'remove')) {
    try {
      await removeBackup(item.entry);
      removed.push(item.entry.name);
    } catch (err) {
      warnings.push(`retention could not delete ${item.entry.path}: ${(err as Error).message}; it is tried again after the next backup`);
      break;
    }
  }
  return { kept: ours.map((e) => e.name).filter((name) => !removed.includes(name)), removed, warnings };
}

/**
 * Deletes every backup of the job (deactivation), each as purge deletes one (manifest
 * first). Returns the names deleted, and those left with why: it goes on past a failure,
 * since each deletion stands alone.
 */
export async function removeJobBackups(root: string, jobBackups: readonly string[]): Promise<{ removed: string[]; failed: Array<{ name: string; why: string }> }> {
  const removed: string[] = [];
  const failed: Array<{ name: string; why: string }> = [];
  const present = await jobEntries(root, jobBackups);
  for (const name of jobBackups) {
    const entry = present.find((e) => e.name === name);
    if (entry === undefined) {
      // Gone already (deleted by hand, or by a deactivation cut short): nothing to do.
      removed.push(name);
      continue;
    }
    try {
      await removeBackup(entry);
      removed.push(name);
    } catch (err) {
      failed.push({ name, why: (err as Error).message });
    }
  }
  return { removed, failed };
}

/** The catalog entries of the job's backups that are still under the root. */
async function jobEntries(root: string, jobBackups: readonly string[]): Promise<CatalogEntry[]> {
  const names = new Set(jobBackups);
  return (await readCatalog(root)).filter((entry) => names.has(entry.name));
}

/**
 * Removes the directory a failed scheduled backup left (partial files, no manifest): an
 * unattended job would otherwise fill the disk with them, one per period, when a backup
 * keeps failing. A directory with a manifest is left alone, whatever happened.
 */
export async function removeFailedBackup(dir: string): Promise<void> {
  const manifest = await fs.lstat(path.join(dir, MANIFEST_FILENAME)).then(
    () => true,
    () => false,
  );
  if (manifest) return;
  const stats = await fs.lstat(dir).catch(() => undefined);
  if (stats?.isDirectory() !== true) return;
  // A run that failed before its marker was written left at most an empty directory;
  // removeBackup deletes only what a marker says is an ended backup.
  if ((await fs.readdir(dir)).length === 0) return fs.rmdir(dir);
  await removeBackup({ name: path.basename(dir), path: dir, manifest: undefined, incomplete: 'a failed scheduled backup', time: stats.mtime, bytesReused: 0, verification: undefined });
}
