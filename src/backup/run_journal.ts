/**
 * What a running backup holds outside the proxy's memory (an fsync lock in mongod, a
 * backup cursor, staged clones on disk), written down before it is taken, so that a
 * proxy killed mid-backup can be cleaned up after by the next `serve` (recovery.ts).
 *
 * The engine and the strategies speak to this interface only; run_state_file.ts keeps
 * it in a durable file. Every method resolves once the record is on disk.
 */
import type { StrategyName } from './strategies/snapshot.js';

export interface FsyncLockHolding {
  /**
   * 'locking': `{fsync: 1, lock: true}` is about to be sent or its reply is unknown;
   * 'locked': mongod acknowledged our lock; 'unlocked': our fsyncUnlock was acknowledged.
   */
  phase: 'locking' | 'locked' | 'unlocked';
  /** hello's topologyVersion.processId of the mongod locked: a restarted mongod holds no lock of ours. */
  processId?: string | undefined;
  /** The lock count before our lock, to tell after a crash whether ours was applied. */
  lockCountBefore?: number | undefined;
  /** The unlock watchdog guarding this lock (unlock_watchdog.ts). */
  watchdogPid?: number | undefined;
}

export interface BackupCursorHolding {
  /** The logical session the cursor lives in, as 32 hex digits: killSessions ends it. */
  lsid: string;
  /** The cursor id, as a decimal string, once mongod answered the open. */
  cursorId?: string | undefined;
}

/** What a running backup holds; each field replaces the one recorded before. */
export interface RunHoldings {
  strategy?: StrategyName | undefined;
  fsyncLock?: FsyncLockHolding | undefined;
  backupCursor?: BackupCursorHolding | undefined;
  /** The staging directory of cloned files; undefined once removed. */
  staging?: string | undefined;
}

export interface RunStart {
  backupId: string;
  startedAt: Date;
  destination: string;
}

export interface RunJournal {
  /** A backup starts: recorded before any lock, cursor or staging exists. */
  begin(run: RunStart): Promise<void>;
  /** What the running backup holds now, merged into the record (a field set to undefined is cleared). */
  record(holdings: RunHoldings): Promise<void>;
  /** The backup ended and holds nothing any more: the record is removed. */
  end(): Promise<void>;
  /**
   * The backup ended some other way (its snapshot never opened, or its release failed):
   * the record is removed only if it holds nothing any more; one that still holds a lock,
   * a cursor or staging stays, for the next start to clean up.
   */
  settle(): Promise<void>;
  /**
   * The file the record is kept in, when there is one: the unlock watchdog reads it to
   * learn whether the lock it guards was taken, and marks there what it did with it.
   */
  readonly stateFile?: string | undefined;
}

/** For engines that keep no record (unit tests, one-shot tools). */
export const NO_JOURNAL: RunJournal = Object.freeze({
  begin: async () => undefined,
  record: async () => undefined,
  end: async () => undefined,
  settle: async () => undefined,
});
