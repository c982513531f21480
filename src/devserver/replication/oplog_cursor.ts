/**
 * Reading local.oplog.rs: a cursor source that walks the Timestamp-keyed table from
 * a search (a `ts` bound in the filter), forwards or backwards (`$natural`), applies
 * the whole filter, skip, limit and projection, and, when tailable, stays open at its
 * position, later reading on from it. awaitData cursors wait for the next commit.
 */
import { Timestamp } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument } from '../bson.js';
import type { CursorSource } from '../cursors.js';
import type { KeyedTable } from '../storage/storage_engine.js';
import { compileFilter } from '../query/filter.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { keyTimestamp, timestampKey, timestampRecordId } from './oplog_timestamp.js';
import type { Oplog } from './oplog.js';
import { calculateObjectSize, type Document as BsonDocument } from 'bson';

const READ_BATCH = 256;
/** What one document costs inside a batch array besides its bytes (cursors.ts). */
const ARRAY_ELEMENT_OVERHEAD = 16;

export interface OplogScan {
  filter: Document;
  reverse: boolean;
  skip: number;
  /** 0: none. */
  limit: number;
  project: ((doc: Document) => Document) | undefined;
  tailable: boolean;
  awaitData: boolean;
}

/** Exclusive start and stop keys from a top-level `ts` condition (and `$and` of them). */
interface Bounds {
  /** Read after this key (forward) or before it (reverse). */
  lower?: Buffer;
  upper?: Buffer;
}

function shift(key: Buffer, by: bigint): Buffer | undefined {
  const n = key.readBigUInt64BE(0) + by;
  if (n < 0n || n > 0xffffffffffffffffn) return undefined;
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(n, 0);
  return out;
}

function tighten(bounds: Bounds, condition: unknown): void {
  if (condition instanceof Timestamp) {
    tighten(bounds, { $gte: condition, $lte: condition });
    return;
  }
  if (condition === null || typeof condition !== 'object') return;
  for (const [op, value] of Object.entries(condition as Document)) {
    if (!(value instanceof Timestamp)) continue;
    const key = timestampKey(value);
    // Exclusive bounds: $gte X reads after X - 1, $lte X stops after X.
    const lower = op === '$gt' ? key : op === '$gte' || op === '$eq' ? shift(key, -1n) : undefined;
    const upper = op === '$lt' ? key : op === '$lte' || op === '$eq' ? shift(key, 1n) : undefined;
    if (lower !== undefined && (bounds.lower === undefined || Buffer.compare(lower, bounds.lower) > 0)) bounds.lower = lower;
    if (upper !== undefined && (bounds.upper === undefined || Buffer.compare(upper, bounds.upper) < 0)) bounds.upper = upper;
  }
}

export function tsBounds(filter: Document): Bounds {
  const bounds: Bounds = {};
  if ('ts' in filter) tighten(bounds, filter['ts']);
  const and = filter['$and'];
  if (Array.isArray(and)) {
    for (const clause of and) {
      const sub = tsBounds(clause as Document);
      if (sub.lower !== undefined) tighten(bounds, { $gt: keyTimestamp(sub.lower) });
      if (sub.upper !== undefined) tighten(bounds, { $lt: keyTimestamp(sub.upper) });
    }
  }
  return bounds;
}

export class OplogSource implements CursorSource {
  private readonly matches: (doc: Document) => boolean;
  private readonly start: Buffer | undefined;
  private readonly stop: Buffer | undefined;
  /** The last key read: where the next read starts, and what must still exist (tailable). */
  private position: Buffer | undefined;
  /** Everything up to here has been read: a newer commit is new data. */
  private horizon: Timestamp | undefined;
  private readonly buffered: Document[] = [];
  private toSkip: number;
  private returned = 0;
  private reachedEnd = false;
  private closed = false;

  constructor(
    private readonly oplog: Oplog,
    private readonly table: KeyedTable,
    private readonly scan: OplogScan,
  ) {
    this.matches = compileFilter(scan.filter);
    const bounds = tsBounds(scan.filter);
    this.start = scan.reverse ? bounds.upper : bounds.lower;
    this.stop = scan.reverse ? bounds.lower : bounds.upper;
    this.toSkip = scan.skip;
  }

  get exhausted(): boolean {
    if (this.closed) return true;
    if (this.scan.limit > 0 && this.returned >= this.scan.limit) return true;
    return !this.scan.tailable && this.reachedEnd && this.buffered.length === 0;
  }

  next(max: number, maxBytes: number): Document[] {
    if (this.closed) return [];
    this.checkPosition();
    const out: Document[] = [];
    let bytes = 0;
    while (out.length < max && !this.exhausted) {
      if (this.buffered.length === 0 && !this.readMore()) break;
      const doc = this.buffered[0] as Document;
      const size = calculateObjectSize(doc as BsonDocument) + ARRAY_ELEMENT_OVERHEAD;
      if (out.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      out.push(doc);
      this.buffered.shift();
      this.returned += 1;
    }
    return out;
  }

  /** For awaitData getMores: resolves once an entry newer than what was read commits. */
  waitForData(signal: AbortSignal): Promise<void> {
    const horizon = this.horizon ?? new Timestamp({ t: 0, i: 0 });
    return this.oplog.waitForNewer(horizon, signal);
  }

  get awaitData(): boolean {
    return this.scan.awaitData;
  }

  close(): void {
    this.closed = true;
    this.buffered.length = 0;
  }

  /**
   * A tailable cursor whose last entry was truncated away may have missed the entries
   * after it: mongod fails it with CappedPositionLost (src/mongo/db/exec/collection_scan.cpp).
   */
  private checkPosition(): void {
    if (!this.scan.tailable || this.position === undefined || this.table.has(this.position)) return;
    throw new DevServerError(
      DevServerCodes.CappedPositionLost,
      `CollectionScan died due to position in capped collection being deleted. Last seen record id: RecordId(${timestampRecordId(keyTimestamp(this.position))})`,
    );
  }

  /** Reads into `buffered` until something matched; false when nothing (more) is there for now. */
  private readMore(): boolean {
    for (;;) {
      if (this.reachedEnd && !this.scan.tailable) return false;
      const full = this.readBatch();
      if (this.buffered.length > 0) return true;
      // A batch of entries that did not match: read on; at the end, nothing for now.
      if (!full || this.reachedEnd) return false;
    }
  }

  /** One batch from the table; true when it was full (more may follow at once). */
  private readBatch(): boolean {
    const last = this.oplog.lastApplied()?.ts;
    const batch = this.table.read(this.position ?? this.start, READ_BATCH, this.scan.reverse);
    for (const { key, value } of batch) {
      if (this.stop !== undefined && (this.scan.reverse ? Buffer.compare(key, this.stop) <= 0 : Buffer.compare(key, this.stop) >= 0)) {
        this.reachedEnd = true;
        break;
      }
      this.position = key;
      const doc = decodeDocument(value);
      if (!this.matches(doc)) continue;
      if (this.toSkip > 0) {
        this.toSkip -= 1;
        continue;
      }
      this.buffered.push(this.scan.project === undefined ? doc : this.scan.project(doc));
    }
    const full = batch.length === READ_BATCH;
    if (!full) {
      this.reachedEnd = true;
      // Read to the end: anything committed after `last` is new.
      if (last !== undefined && (this.horizon === undefined || last.gt(this.horizon))) this.horizon = last;
    }
    if (this.position !== undefined) {
      const at = keyTimestamp(this.position);
      if (this.horizon === undefined || at.gt(this.horizon)) this.horizon = at;
    }
    return full;
  }
}
