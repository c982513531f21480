/**
 * The dbpath a restore writes: checked before anything is written, then created or
 * cleared, and marked incomplete for as long as the restore has not finished.
 *
 * - Refused: a target inside the backup (or holding it); a non-empty target without
 *   --force; with --force too, a target whose mongod.lock names a live process (a
 *   mongod running there: mongod writes its pid into it while it runs and empties it
 *   at a clean shutdown, storage_engine_lock_file_posix.cpp).
 * - The first thing written is `hotbackup-restore-incomplete.json` (what, from where,
 *   and, once it stopped, why). Then the placeholders go in (restore_fences.ts), and
 *   only then, under --force, is what the target held deleted: a crash in the middle of
 *   that deletion leaves a target mongod refuses, not one whose WiredTiger.turtle is
 *   gone and which WiredTiger would take for a new, empty database.
 * - A target the restore creates is mode 0700 whatever the umask, as are the
 *   directories the copy creates in it: the owner must be able to write there.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fsyncDirectory, writeFileDurably } from './durable.js';
import { pathsOverlap } from './destination.js';
import { errorCode } from './io_error.js';
import { selfIdentity } from './process_identity.js';
import { hangIfEnabled } from '../failpoints.js';

export const RESTORE_MARKER_FILENAME = 'hotbackup-restore-incomplete.json';
/** The mode of the directories a restore creates: the owner's alone, and writable by it. */
export const RESTORED_DIR_MODE = 0o700;

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

/** Checks `target` for a restore of `backupDir` (undefined: a backup not on this machine); refuses with a TargetRefusal saying why and what to do. */
export async function checkTarget(requested: string, backupDir: string | undefined, force: boolean): Promise<CheckedTarget> {
  const target = path.resolve(requested);
  if (backupDir !== undefined && pathsOverlap(target, backupDir)) throw new TargetRefusal(`cannot restore ${backupDir} into ${target}: one is inside the other`);
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

/** Creates the target when it is absent (one level, mode 0700 whatever the umask), durably. */
export async function createTarget(checked: CheckedTarget): Promise<void> {
  if (!checked.absent) return;
  await fs.mkdir(checked.target, { mode: RESTORED_DIR_MODE });
  await fs.chmod(checked.target, RESTORED_DIR_MODE);
  await fsyncDirectory(path.dirname(checked.target));
}

/**
 * --force: deletes what the target held, but for `keep` (the marker and the placeholders,
 * already written over their namesakes), and makes that durable.
 */
export async function clearTarget(checked: CheckedTarget, keep: readonly string[], signal?: AbortSignal): Promise<void> {
  const doomed = checked.entries.filter((entry) => !keep.includes(entry));
  for (const [i, entry] of doomed.entries()) {
    if (i === doomed.length - 1) {
      await hangIfEnabled('hangDuringForceDelete', signal, () => process.stderr.write(`failpoint hangDuringForceDelete: hanging before deleting ${entry}\n`));
    }
    await fs.rm(path.join(checked.target, entry), { recursive: true, force: true });
  }
  if (doomed.length > 0) await fsyncDirectory(checked.target);
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

/** Marks the target incomplete, durably: the first thing a restore writes into it. */
export async function writeRestoreMarker(target: string, backup: { directory: string; backupId: string }): Promise<RestoreMarker> {
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
  return marker;
}

/** Records why the restore stopped, in the marker; the placeholders stay as they are. */
export async function markRestoreFailed(target: string, marker: RestoreMarker, errmsg: string): Promise<void> {
  const failed: RestoreMarker = { ...marker, state: 'failed', finishedAt: new Date().toISOString(), error: errmsg };
  await writeFileDurably(path.join(target, RESTORE_MARKER_FILENAME), `${JSON.stringify(failed, null, 2)}\n`);
}
