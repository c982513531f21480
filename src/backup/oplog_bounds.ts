/**
 * Where a backup stands in the replica set's oplog, as plain numbers (the engine imports
 * neither bson nor the driver): what the manifest records, and what `extendTo` asks for.
 * The strategies read them from mongod (strategies/oplog_read.ts).
 */

/** A BSON Timestamp: `t` seconds since the epoch, `i` the increment within that second (both uint32). */
export interface OplogTimestamp {
  readonly t: number;
  readonly i: number;
}

/** mongod's OpTime: an oplog entry's `ts` and the election term `t` it was written in. */
export interface OpTime {
  readonly ts: OplogTimestamp;
  readonly t: number;
}

/**
 * The oplog a backup's copy holds: its oldest (`start`) and newest (`end`) entry, and for
 * a `$backupCursor` the checkpoint it pinned, which lies between them (PSMDB's metadata
 * invariants, backup_cursor_hooks / wiredtiger_kv_engine.cpp). A restore replays oplog
 * from `end` on; a stream that does not reach back to `end` leaves a gap.
 */
export interface OplogBounds {
  readonly start: OpTime;
  readonly end: OpTime;
  readonly checkpointTimestamp?: OplogTimestamp;
}

export function compareTimestamps(a: OplogTimestamp, b: OplogTimestamp): number {
  return a.t === b.t ? a.i - b.i : a.t - b.t;
}

/** `secs,inc`, as mongobackup's `-s` and `hotbackup oplog --from` take a timestamp. */
export function formatTimestamp(ts: OplogTimestamp): string {
  return `${ts.t},${ts.i}`;
}

/** `Timestamp(secs, inc)`, as mongosh prints one. */
export function describeTimestamp(ts: OplogTimestamp): string {
  return `Timestamp(${ts.t}, ${ts.i})`;
}
