/**
 * A snapshot strategy makes mongod's files safe to copy for a while: it yields the
 * files (each with the size to copy up to) and a release that ends the window.
 * The copier never knows which strategy produced its list.
 */
import type { SourceFile } from '../copy_types.js';
import type { WritesBlockedWindow } from './writes_blocked.js';
import type { RunJournal } from '../run_journal.js';

export type StrategyName = 'backupCursor' | 'reflink' | 'fsyncLock';

/** What a request or `serve --strategy` may ask for: one strategy by name, or `auto`. */
export type StrategyChoice = 'auto' | StrategyName;

export const STRATEGY_CHOICES: readonly StrategyChoice[] = ['auto', 'backupCursor', 'reflink', 'fsyncLock'];

export interface Snapshot {
  readonly strategy: StrategyName;
  /** One line on why this strategy, e.g. "no $backupCursor; dbpath on xfs supports reflink". */
  readonly reason: string;
  readonly files: SourceFile[];
  /**
   * How long mongod's writes were blocked for this snapshot: from just before fsyncLock
   * was sent to just after fsyncUnlock was acknowledged. Still counting while locked.
   */
  readonly writesBlocked: WritesBlockedWindow;
  /**
   * Aborted, with the reason as a CommandError, when the snapshot stops protecting
   * the files before release() (a killed backup cursor, an fsync lock someone else
   * took away). From then on the copy is worthless: the engine stops it at once.
   */
  readonly lost: AbortSignal;
  /**
   * Ends the snapshot: closes the cursor, unlocks, or removes the staged clones. Safe to
   * call more than once. Rejects when it finds that the snapshot had already been lost.
   */
  release(): Promise<void>;
}

export interface SnapshotStrategy {
  readonly name: StrategyName;
  /**
   * `journal` (default NO_JOURNAL) gets what the snapshot holds before it is taken and
   * after it is released (run_journal.ts), so that a crash can be cleaned up after.
   */
  open(journal?: RunJournal): Promise<Snapshot>;
}
