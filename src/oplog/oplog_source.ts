/**
 * What the streamer needs from a server's oplog, and no more (restic's callers declare
 * their narrow interfaces the same way): its bounds, and a tail from a timestamp on.
 * driver_oplog_source.ts builds it on the npm driver; tests build fakes.
 */
import type { OplogTs } from './oplog_ts.js';

export interface OplogBounds {
  readonly oldest: OplogTs;
  readonly newest: OplogTs;
}

export interface OplogSource {
  /** The oldest and newest entries' ts; undefined when the server has no oplog (a standalone) or an empty one. */
  bounds(): Promise<OplogBounds | undefined>;
  /** Entries with ts >= `from`, in order: a tailable cursor that waits for more. */
  tail(from: OplogTs): OplogTail;
  /** Closes every connection; a pending `next` rejects. */
  close(): Promise<void>;
}

export interface OplogTail {
  /**
   * The next entries, as the raw bytes the server sent, in order; an empty array when
   * none came within the server's wait (getMore's maxTimeMS). Rejects on an error, and
   * when the cursor has ended (the server killed it, or found nothing to tail).
   */
  next(): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

/** The source's verdict on an error: worth reconnecting and resuming, or not. */
export interface ErrorJudge {
  isTransient(err: unknown): boolean;
}
