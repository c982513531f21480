/**
 * The oplog bounds of a snapshot, read from mongod: from `$backupCursor`'s metadata
 * (`oplogStart`, `oplogEnd`, `checkpointTimestamp`: PSMDB's
 * src/mongo/db/storage/backup_cursor_hooks.h, BackupCursorState), or, while writes are
 * blocked (fsyncLock, reflink), from `local.oplog.rs` itself: its oldest and newest entry
 * in natural (insertion) order, as mongod's own `getLatestOplogTimestamp` reads the newest
 * (`sort({$natural: -1}).limit(1)`, src/mongo/db/repl/oplog.cpp). A standalone has no
 * oplog: then there are no bounds.
 */
import { Long, Timestamp, type Db, type Document } from 'mongodb';
import type { OpTime, OplogBounds, OplogTimestamp } from '../oplog_bounds.js';

/** A BSON Timestamp as plain numbers; undefined for anything else. */
export function plainTimestamp(value: unknown): OplogTimestamp | undefined {
  // By its BSON type, not its class: the driver's bson and ours may be two copies.
  if ((value as { _bsontype?: unknown } | null)?._bsontype !== 'Timestamp') return undefined;
  const ts = value as Timestamp;
  return { t: ts.high >>> 0, i: ts.low >>> 0 };
}

export function bsonTimestamp(ts: OplogTimestamp): Timestamp {
  return new Timestamp({ t: ts.t, i: ts.i });
}

/** `{ts: Timestamp, t: NumberLong}` (an oplog entry, or an OpTime in metadata) as plain numbers. */
export function plainOpTime(value: unknown): OpTime | undefined {
  const doc = value as Document | null | undefined;
  const ts = plainTimestamp(doc?.['ts']);
  if (ts === undefined) return undefined;
  const term = doc?.['t'];
  // -1 is mongod's "uninitialized term"; a missing one reads the same.
  const t = term instanceof Long ? term.toNumber() : typeof term === 'number' ? term : -1;
  return { ts, t };
}

/** The bounds in a `$backupCursor` metadata document; undefined on a standalone (no oplog fields). */
export function boundsFromMetadata(metadata: Document | undefined): OplogBounds | undefined {
  const start = plainOpTime(metadata?.['oplogStart']);
  const end = plainOpTime(metadata?.['oplogEnd']);
  if (start === undefined || end === undefined) return undefined;
  const checkpointTimestamp = plainTimestamp(metadata?.['checkpointTimestamp']);
  return { start, end, ...(checkpointTimestamp === undefined ? {} : { checkpointTimestamp }) };
}

/** The oldest and newest entries of `local.oplog.rs`; undefined when it has none (a standalone). */
export async function readOplogBounds(local: Db): Promise<OplogBounds | undefined> {
  // A standalone has no local.oplog.rs: nothing to ask (and no query that a server could refuse).
  if ((await local.listCollections({ name: 'oplog.rs' }, { nameOnly: true }).toArray()).length === 0) return undefined;
  const oplog = local.collection('oplog.rs');
  const edge = (direction: 1 | -1) => oplog.find({}, { sort: { $natural: direction }, limit: 1, projection: { ts: 1, t: 1 } }).toArray();
  const [[oldest], [newest]] = await Promise.all([edge(1), edge(-1)]);
  const start = plainOpTime(oldest);
  const end = plainOpTime(newest);
  return start === undefined || end === undefined ? undefined : { start, end };
}
