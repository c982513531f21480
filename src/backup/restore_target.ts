/**
 * The dbpath a restore writes: checked before anything is written, and marked
 * incomplete for as long as the restore has not finished, in a way mongod itself
 * honours, not only our own tools.
 *
 * - Refused: a target inside the backup (or holding it); a non-empty target without
 *   --force; with --force too, a target whose mongod.lock names a live process (a
 *   mongod running there: mongod writes its pid into it while it runs and empties it
 *   at a clean shutdown, storage_engine_lock_file_posix.cpp).
 * - --force empties the target first: everything in it is deleted.
 * - While the restore runs, and after one that failed, the target holds
 *   `hotbackup-restore-incomplete.json` (what, from where, and why it stopped) and, as
 *   its `WiredTiger.turtle`, a placeholder: a text that says the same, and that holds
 *   no `WiredTiger version` and no `file:WiredTiger.wt` line. WiredTiger reads those two
 *   keys from the turtle file at every open (__wt_turtle_read in meta_turtle.c;
 *   __wt_turtle_validate_version checks the first), so wiredtiger_open fails ("Unable
 *   to read version string from turtle file") and mongod does not start on the target.
 *   A missing turtle would not do: WiredTiger then takes the directory for a new
 *   database, moves WiredTiger.wt aside, and opens it empty (__wt_turtle_init,
 *   __wt_block_manager_create).
 * - The files through which WiredTiger finds everything else are held back until every
 *   other file is in and checked, then copied under other names and renamed into place:
 *   `WiredTiger.turtle` (fsyncLock and reflink backups), and `WiredTiger.backup` (a
 *   $backupCursor backup has no turtle: WiredTiger rebuilds its metadata from this file
 *   at the first open, and does so even beside a turtle file, so a placeholder turtle
 *   would not stop it). With WiredTiger.backup present, WiredTiger would also create
 *   empty stand-ins for the files it lists that are not there yet (__metadata_load_bulk):
 *   a half-restored target would open with collections silently empty.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDirectory, writeFileDurably } from './durable.js';
import { pathsOverlap } from './destination.js';
import { errorCode } from './io_error.js';
import { selfIdentity } from './process_identity.js';

export const RESTORE_MARKER_FILENAME = 'hotbackup-restore-incomplete.json';
/** WiredTiger's metadata of its metadata (WT_METADATA_TURTLE): the file that makes a directory a database. */
export const TURTLE = 'WiredTiger.turtle';
/** WiredTiger's hot backup metadata (WT_METADATA_BACKUP): a $backupCursor backup's way into its files. */
export const WT_BACKUP = 'WiredTiger.backup';
/** Held back, in the order they are put in place: WiredTiger.backup first, the turtle last. */
export const HELD_BACK: readonly string[] = [WT_BACKUP, TURTLE];
/**
 * Where a held-back file is copied before it is renamed into place: not `WiredTiger.turtle.set`
 * or `WiredTiger.backup.tmp`, which WiredTiger would act on itself.
 */
export function incomingName(name: string): string {
  return `hotbackup-restore.${name}`;
}

/** A restore the target refuses (the CLI's exit code 3). */
export class TargetRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetRefusal';
  }
}

/** What the target holds before the restore: nothing, or these entries (then --force was given). */
export interface CheckedTarget {
  target: string;
  /** Whether it must be created. */
  absent: boolean;
  /** Its entries, deleted first under --force. */
  entries: string[];
}

/** Checks `target` for a restore of `backupDir`; refuses with a TargetRefusal saying why and what to do. */
export async function checkTarget(requested: string, backupDir: string, force: boolean): Promise<CheckedTarget> {
  const target = path.resolve(requested);
  if (pathsOverlap(target, backupDir)) throw new TargetRefusal(`cannot restore ${backupDir} into ${target}: one is inside the other`);
  let stat;
  try {
    stat = await fs.stat(target);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
    const parent = path.dirname(target);
    const parentStat = await fs.stat(parent).catch(() => undefined);
    if (parentStat?.isDirectory() !== true) throw new TargetRefusal(`cannot restore into ${target}: its parent directory ${parent} does not exist`);
    return { target, absent: true, entries: [] };
  }
  if (!stat.isDirectory()) throw new TargetRefusal(`cannot restore into ${target}: it is not a directory`);
  const entries = (await fs.readdir(target)).sort();
  if (entries.length === 0) return { target, absent: false, entries };
  const mongod = await runningMongod(target);
  if (mongod !== undefined) {
    throw new TargetRefusal(`cannot restore into ${target}: a mongod (pid ${mongod}) is running on it (its mongod.lock names that live process). Stop it first.`);
  }
  if (!force) {
    const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, and ${entries.length - 5} more` : '');
    throw new TargetRefusal(
      `cannot restore into ${target}: it is not empty (${shown}). Restore into an empty or new directory, ` +
        `or pass --force to DELETE everything in ${target} first.`,
    );
  }
  return { target, absent: false, entries };
}

/** The pid in `<dir>/mongod.lock`, when it names a live process. */
async function runningMongod(dir: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(dir, 'mongod.lock'), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return errorCode(err) === 'EPERM' ? pid : undefined;
  }
}

/** Creates the target (one level), or deletes what it holds (--force), and makes that durable. */
export async function prepareTarget(checked: CheckedTarget): Promise<void> {
  const { target } = checked;
  if (checked.absent) {
    await fs.mkdir(target);
    await fsyncDirectory(path.dirname(target));
    return;
  }
  for (const entry of checked.entries) await fs.rm(path.join(target, entry), { recursive: true, force: true });
  if (checked.entries.length > 0) await fsyncDirectory(target);
}

const isoTime = z.iso.datetime({ offset: true });
const RestoreMarkerSchema = z.object({
  kind: z.literal('incomplete-restore'),
  version: z.literal(1),
  state: z.enum(['running', 'failed']),
  backup: z.string(),
  backupId: z.string(),
  startedAt: isoTime,
  writer: z.object({ pid: z.int(), hostname: z.string(), start: z.string().optional() }),
  finishedAt: isoTime.optional(),
  error: z.string().optional(),
});
export type RestoreMarker = z.infer<typeof RestoreMarkerSchema>;

function placeholder(marker: RestoreMarker): string {
  return [
    'hotbackup restore: this is not a WiredTiger turtle file.',
    `A restore is writing this directory from the backup ${marker.backup}, or stopped before it was done.`,
    `WiredTiger, and so mongod, cannot open it until \`hotbackup restore\` finishes; see ${RESTORE_MARKER_FILENAME}.`,
    '',
  ].join('\n');
}

/** Marks the target incomplete (the marker, then the placeholder turtle), durably, before any file is copied. */
export async function markRestoring(target: string, backup: { directory: string; backupId: string }): Promise<RestoreMarker> {
  const marker: RestoreMarker = {
    kind: 'incomplete-restore',
    version: 1,
    state: 'running',
    backup: backup.directory,
    backupId: backup.backupId,
    startedAt: new Date().toISOString(),
    writer: selfIdentity(),
  };
  await writeFileDurably(path.join(target, RESTORE_MARKER_FILENAME), `${JSON.stringify(marker, null, 2)}\n`);
  await writeFileDurably(path.join(target, TURTLE), placeholder(marker));
  return marker;
}

/** Records why the restore stopped; the placeholder turtle stays, so mongod still refuses the target. */
export async function markRestoreFailed(target: string, marker: RestoreMarker, errmsg: string): Promise<void> {
  const failed: RestoreMarker = { ...marker, state: 'failed', finishedAt: new Date().toISOString(), error: errmsg };
  await writeFileDurably(path.join(target, RESTORE_MARKER_FILENAME), `${JSON.stringify(failed, null, 2)}\n`);
}

/**
 * The restore's last step, once every file is in and matched its checksum: the held-back
 * files (copied under incomingName) are renamed into place, WiredTiger.backup first (from
 * then on WiredTiger can open the target: beside a turtle file, it rebuilds its metadata
 * from it), then the turtle over the placeholder, or, where the backup had none, the
 * placeholder removed; then the marker goes. Each step is durable before the next, so a
 * crash leaves either a target mongod refuses, or an openable one with a marker that says
 * the restore did not see its end.
 */
export async function completeRestore(target: string, held: readonly string[]): Promise<void> {
  for (const name of HELD_BACK) {
    if (!held.includes(name)) continue;
    await fs.rename(path.join(target, incomingName(name)), path.join(target, name));
    await fsyncDirectory(target);
  }
  if (!held.includes(TURTLE)) {
    await fs.rm(path.join(target, TURTLE), { force: true });
    await fsyncDirectory(target);
  }
  await fs.rm(path.join(target, RESTORE_MARKER_FILENAME));
  await fsyncDirectory(target);
}
