/**
 * The manifest of a backup that copied everything: what the engine knows of the run,
 * its snapshot and its base, and the files as copied (manifest.ts has the format).
 */
import { MANIFEST_FORMAT, MANIFEST_VERSION, manifestFiles, type Manifest } from './manifest.js';
import type { BackupRun } from './backup_run.js';
import type { IncrementalBase } from './incremental.js';
import type { OplogTimestamp } from './oplog_bounds.js';
import type { Snapshot } from './strategies/snapshot.js';
import type { CopyResult, SourceFile } from './copy_types.js';

export interface RunFacts {
  run: BackupRun;
  snapshot: Snapshot;
  source: Manifest['source'];
  /** The filesystem's clock as the backup began (source_stamp.ts), when there was a state file to read it from. */
  startedAtFs: string | undefined;
  throttleBytesPerSec: number;
  base: IncrementalBase | undefined;
  extendTo: OplogTimestamp | undefined;
  files: readonly SourceFile[];
  result: CopyResult;
}

export function runManifest(facts: RunFacts, finishedAt: Date = new Date()): Manifest {
  const { run, snapshot, base, extendTo, startedAtFs } = facts;
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    backupId: run.backupId,
    strategy: snapshot.strategy,
    source: facts.source,
    startedAt: run.startedAt.toISOString(),
    ...(startedAtFs === undefined ? {} : { startedAtFs }),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - run.startedAt.getTime(),
    throttleBytesPerSec: facts.throttleBytesPerSec,
    ...(base === undefined ? {} : { base: { backupId: base.manifest.backupId, path: base.dir } }),
    ...(snapshot.oplog === undefined ? {} : { oplog: snapshot.oplog }),
    ...(extendTo === undefined ? {} : { extendedTo: extendTo }),
    ...manifestFiles(facts.result.copied, [...facts.files]),
  };
}
