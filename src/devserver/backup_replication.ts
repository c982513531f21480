/**
 * What the backup stages read of the replica set: whether replication is enabled
 * (`--replSet`) and the oplog's bounds. Typed by the slice of the Oplog contract they use
 * (src/devserver/replication/oplog.ts: lastApplied, firstEntry, waitForNewer), so the
 * backup code needs nothing else of replication.
 */
import type { Long, Timestamp } from 'bson';
import type { ServerState } from './state.js';

export interface OpTimeView {
  readonly ts: Timestamp;
  readonly t: Long;
}

export interface BackupOplog {
  lastApplied(): OpTimeView | undefined;
  firstEntry(): OpTimeView | undefined;
  /** Resolves once an entry with ts > `after` is committed; rejects when signal aborts. */
  waitForNewer(after: Timestamp, signal: AbortSignal): Promise<void>;
  /** Keeps entries at or after ts from truncation until the release is called (absent in stand-ins). */
  pin?(ts: Timestamp): () => void;
}

export interface ReplicationView {
  /** `--replSet` given: mongod's ReplSettings::isReplSet(). */
  readonly enabled: boolean;
  /** Undefined until replSetInitiate (or without --replSet). */
  readonly oplog: BackupOplog | undefined;
}

/** ServerState's `options.replSet` and `oplog`, as the replica-set slice defines them. */
export function replicationOf(state: ServerState): ReplicationView {
  const view = state as unknown as { options: { replSet?: unknown }; oplog?: BackupOplog };
  return { enabled: view.options.replSet !== undefined, oplog: view.oplog };
}
