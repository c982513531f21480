/**
 * A snapshot strategy makes mongod's files safe to copy for a while: it yields the
 * files (each with the size to copy up to) and a release that ends the window.
 * The copier never knows which strategy produced its list.
 */
import type { CopyResult, SourceFile } from '../copy_types.js';
import type { CopyProgress } from '../progress.js';
import type { WritesBlockedWindow } from './writes_blocked.js';
import type { SnapshotRequest } from '../backup_engine.js';
import type { OplogBounds, OplogTimestamp } from '../oplog_bounds.js';

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
  /**
   * What went wrong without harming the copy, one line each, for the backup's warnings:
   * optional files the strategy left out, a staging directory it could not remove. The
   * strategy may add to it until release() settles; the engine reads it after open() and
   * again after release().
   */
  readonly warnings?: readonly string[];
  /**
   * Set when the strategy has put the files in the destination itself (reflink clones
   * made straight into a destination on the dbpath's filesystem): `files` are then those
   * copies, and the engine calls this instead of copying them. It resolves with what a
   * copy would have returned (sizes, checksums), everything fsynced; the engine writes
   * the manifest after it, as after a copy.
   */
  readonly inDestination?: (options: InDestinationOptions) => Promise<CopyResult>;
  /**
   * On a replica set, the oplog the copy holds (oplog_bounds.ts): from `$backupCursor`'s
   * metadata, or read while writes were blocked. Undefined on a standalone (no oplog), or
   * when it could not be read (a warning says so).
   */
  readonly oplog?: OplogBounds;
  /**
   * `$backupCursor` only: brings the copy up to at least `to` (`backupStart` with
   * `extendTo`). Waits until the majority commit point reaches `to`, then runs
   * `$backupCursorExtend` in the cursor's session and resolves with the journal files it
   * lists, each to be copied up to its size over the earlier copy of the same file.
   */
  readonly extend?: (request: ExtendRequest) => Promise<SourceFile[]>;
}

export interface ExtendRequest {
  readonly to: OplogTimestamp;
  /** The backup's abort (and a lost snapshot): the wait stops at once. */
  readonly signal: AbortSignal;
  /** Told what the wait is for while it waits (for backupStatus), and undefined once it is over. */
  readonly waiting: (what: string | undefined) => void;
}

export interface InDestinationOptions {
  progress: CopyProgress;
  signal: AbortSignal;
  /** Files worked on at once: the engine's copy concurrency. */
  concurrency: number;
}

export interface SnapshotStrategy {
  readonly name: StrategyName;
  /** `request` says which backup (its id, its journal, the engine's abort); a strategy may ignore it. */
  open(request: SnapshotRequest): Promise<Snapshot>;
}
