/**
 * A snapshot strategy makes mongod's files safe to copy for a while: it yields the
 * files (each with the size to copy up to) and a release that ends the window.
 * The copier never knows which strategy produced its list.
 */
import type { SourceFile } from '../types.js';

export type StrategyName = 'backupCursor' | 'fsyncLock';

export interface Snapshot {
  readonly strategy: StrategyName;
  /** mongod's own id for the backup, when it has one ($backupCursor). */
  readonly backupId: string | undefined;
  readonly files: SourceFile[];
  /** Ends the snapshot: closes the cursor or unlocks. Safe to call more than once. */
  release(): Promise<void>;
}

export interface SnapshotStrategy {
  readonly name: StrategyName;
  open(): Promise<Snapshot>;
}
