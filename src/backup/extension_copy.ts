/**
 * The second copy of a backup extended to a cluster time (`backupStart` with
 * `extendTo`): once the snapshot's own files are copied, the snapshot is extended
 * (Snapshot.extend: the majority commit point reached, `$backupCursorExtend` run), and
 * the journal files it lists replace their earlier copies (BackupTarget.replace: on
 * disk beside them, then renamed over them; on S3 an object replaced in one step),
 * through the same throttle and counters. What the manifest lists of those files is their extended copy.
 */
import type { CopyResult, SourceFile } from './copy_types.js';
import type { Snapshot } from './strategies/snapshot.js';
import type { BackupRun } from './backup_run.js';
import { describeTimestamp, type OplogTimestamp } from './oplog_bounds.js';
import type { Logger } from '../log.js';

export interface Copied {
  files: SourceFile[];
  result: CopyResult;
}

export async function copyExtension(
  extend: NonNullable<Snapshot['extend']>,
  run: BackupRun,
  { to, lost, log }: { to: OplogTimestamp; lost: AbortSignal; log: Logger },
  earlier: Copied,
  replace: (files: SourceFile[], signal: AbortSignal) => Promise<CopyResult>,
): Promise<Copied> {
  const signal = AbortSignal.any([run.signal, lost]);
  run.phase = 'extending';
  const extra = await extend({ to, signal, waiting: (what) => (run.waitingFor = what) });
  run.waitingFor = undefined;
  log.info({ backupId: run.backupId, extendTo: describeTimestamp(to), files: extra.length }, 'backup extended: copying the journal files it lists');
  run.counters.add(extra);
  // Each replaces its earlier copy whole, or leaves it as it was (BackupTarget.replace).
  const result = await replace(extra, signal);
  // A listed file skipped (gone, shrunk) leaves its earlier copy, and that copy's entry, as they were.
  const replaced = new Set(result.copied.map((file) => file.relativePath));
  const kept = <T extends { relativePath: string }>(list: readonly T[]): T[] => list.filter((file) => !replaced.has(file.relativePath));
  return {
    files: [...kept(earlier.files), ...extra.filter((file) => replaced.has(file.relativePath))],
    result: { copied: [...kept(earlier.result.copied), ...result.copied], skipped: [...kept(earlier.result.skipped), ...result.skipped] },
  };
}
