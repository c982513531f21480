/**
 * The second copy of a backup extended to a cluster time (`backupStart` with
 * `extendTo`): once the snapshot's own files are copied, the snapshot is extended
 * (Snapshot.extend: the majority commit point reached, `$backupCursorExtend` run), and
 * the journal files it lists replace their earlier copies, through the same
 * throttle and counters. What the manifest lists of those files is their extended copy.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { CopyResult, SourceFile } from './copy_types.js';
import type { Snapshot } from './strategies/snapshot.js';
import type { BackupRun } from './backup_run.js';
import { describeTimestamp, type OplogTimestamp } from './oplog_bounds.js';
import { fsyncDirectory } from './durable.js';
import type { Logger } from '../log.js';

/** Where an extended copy is written before it replaces the earlier one. */
const STAGING_SUFFIX = '.hotbackup-extending';

export interface Copied {
  files: SourceFile[];
  result: CopyResult;
}

export async function copyExtension(
  extend: NonNullable<Snapshot['extend']>,
  run: BackupRun,
  { to, lost, log }: { to: OplogTimestamp; lost: AbortSignal; log: Logger },
  earlier: Copied,
  copy: (files: SourceFile[], signal: AbortSignal) => Promise<CopyResult>,
): Promise<Copied> {
  const signal = AbortSignal.any([run.signal, lost]);
  run.phase = 'extending';
  const extra = await extend({ to, signal, waiting: (what) => (run.waitingFor = what) });
  run.waitingFor = undefined;
  log.info({ backupId: run.backupId, extendTo: describeTimestamp(to), files: extra.length }, 'backup extended: copying the journal files it lists');
  // The copier creates every file anew (it refuses to overwrite), so the extended copies
  // are written beside the earlier ones and renamed over them once all are whole: an
  // extension that fails leaves the earlier copies in place, never fewer files.
  const staged = extra.map((file) => ({ ...file, relativePath: file.relativePath + STAGING_SUFFIX }));
  run.counters.add(staged);
  let result: CopyResult;
  try {
    result = await copy(staged, signal);
  } catch (err) {
    await Promise.all(staged.map((file) => fs.rm(path.join(run.destination, file.relativePath), { force: true }).catch(() => undefined)));
    throw err;
  }
  const unstaged = <T extends { relativePath: string }>(file: T): T => ({ ...file, relativePath: file.relativePath.slice(0, -STAGING_SUFFIX.length) });
  const directories = new Set<string>();
  for (const file of result.copied) {
    const rel = unstaged(file).relativePath;
    await fs.rename(path.join(run.destination, file.relativePath), path.join(run.destination, rel));
    directories.add(path.dirname(path.join(run.destination, rel)));
  }
  for (const dir of directories) await fsyncDirectory(dir);
  // A listed file skipped (gone, shrunk) leaves its earlier copy, and that copy's entry, as they were.
  const replaced = new Set(result.copied.map((file) => unstaged(file).relativePath));
  const kept = <T extends { relativePath: string }>(list: readonly T[]): T[] => list.filter((file) => !replaced.has(file.relativePath));
  return {
    files: [...kept(earlier.files), ...extra.filter((file) => replaced.has(file.relativePath))],
    result: { copied: [...kept(earlier.result.copied), ...result.copied.map(unstaged)], skipped: [...kept(earlier.result.skipped), ...result.skipped.map(unstaged)] },
  };
}
