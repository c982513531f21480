/**
 * A snapshot strategy makes mongod's files safe to copy for a while: it yields the
 * files (each with the size to copy up to) and a release that ends the window.
 * The copier never knows which strategy produced its list.
 */
import type { SourceFile } from '../copy_types.js';

export type StrategyName = 'backupCursor' | 'fsyncLock';

export interface Snapshot {
  readonly strategy: StrategyName;
  /** mongod's own id for the backup, when it has one ($backupCursor). */
  readonly backupId: string | undefined;
  readonly files: SourceFile[];
  /**
   * Aborted, with the reason as a CommandError, when the snapshot stops protecting
   * the files before release() (a killed backup cursor, an fsync lock someone else
   * took away). From then on the copy is worthless: the engine stops it at once.
   */
  readonly lost: AbortSignal;
  /**
   * Ends the snapshot: closes the cursor or unlocks. Safe to call more than once.
   * Rejects when it finds that the snapshot had already been lost.
   */
  release(): Promise<void>;
}

export interface SnapshotStrategy {
  readonly name: StrategyName;
  open(): Promise<Snapshot>;
}
