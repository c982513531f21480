/**
 * Records of collections: the record table (`q` rid -> `u` BSON) and the real
 * `_id` index (`u` keystring -> `q` rid), kept in step inside one transaction.
 *
 * Writes and findById go through the write session, so they see the current
 * transaction's own writes. Scans, counts and sizes read committed data through
 * a separate read session, a batch at a time, holding no WiredTiger cursor
 * between batches: a scan survives commits on the write session, never pins a
 * page while its consumer is elsewhere, and never blocks a drop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, CommandError } from '../../errors.js';
import { duplicateKeyError } from './dupkey.js';
import { encodeKeyString } from './keystring.js';
import type { CollectionMeta, RecordEntry } from './storage_types.js';
import { isWtError, WtCode, type WtSession } from './wiredtiger.js';
import type { WriteSession } from './write_session.js';

export const recordUri = (meta: CollectionMeta): string => `table:${meta.ident}`;
export const idIndexUri = (meta: CollectionMeta): string => `table:${meta.idIndexIdent}`;

/** Batches grow from small (a findOne reads few records) to large (a full scan). */
const FIRST_BATCH = 16;
const MAX_BATCH = 1024;

interface CollectionState {
  nextRid?: number;
  stats?: { count: number; size: number };
}

export class RecordStore {
  /** Keyed by ident: a dropped and re-created namespace starts afresh. */
  private readonly state = new Map<string, CollectionState>();

  constructor(
    private readonly writer: WriteSession,
    private readonly reader: WtSession,
    private readonly dbpath: string,
  ) {}

  insert(meta: CollectionMeta, doc: Buffer, id: unknown): number {
    const key = idKey(id);
    return this.writer.run(() => {
      const rid = this.allocateRid(meta);
      // The index entry first: a duplicate then leaves nothing behind.
      try {
        this.writer.cursor(idIndexUri(meta)).insert(key, rid);
      } catch (err) {
        if (isWtError(err, WtCode.WT_DUPLICATE_KEY)) throw duplicateKeyError(meta.ns, id);
        throw err;
      }
      this.writer.cursor(recordUri(meta)).insert(rid, doc);
      this.adjustStats(meta, 1, doc.length);
      return rid;
    });
  }

  update(meta: CollectionMeta, rid: number, doc: Buffer): void {
    this.writer.run(() => {
      const cursor = this.writer.cursor(recordUri(meta));
      const old = cursor.search(rid);
      if (old === null) throw noSuchRecord(meta, rid);
      cursor.update(rid, doc);
      this.adjustStats(meta, 0, doc.length - (old as Buffer).length);
    });
  }

  /** Deleting a record that is already gone does nothing. */
  delete(meta: CollectionMeta, rid: number, id: unknown): void {
    const key = idKey(id);
    this.writer.run(() => {
      const records = this.writer.cursor(recordUri(meta));
      const old = records.search(rid);
      if (old === null) return;
      const index = this.writer.cursor(idIndexUri(meta));
      // A caller passing the wrong _id would otherwise orphan an index entry.
      if (index.search(key) !== rid) {
        throw new CommandError(ErrorCodes.InternalError, `_id does not match record ${rid} in ${meta.ns}`);
      }
      index.remove(key);
      records.remove(rid);
      this.adjustStats(meta, -1, -(old as Buffer).length);
    });
  }

  findById(meta: CollectionMeta, id: unknown): RecordEntry | undefined {
    if (Array.isArray(id)) return undefined; // no _id can be an array
    const index = this.writer.cursor(idIndexUri(meta));
    const records = this.writer.cursor(recordUri(meta));
    try {
      const rid = index.search(encodeKeyString(id));
      if (rid === null) return undefined;
      const doc = records.search(rid);
      return doc === null ? undefined : { rid: rid as number, doc: doc as Buffer };
    } finally {
      // Positioned cursors pin pages; release them once the answer is copied out.
      index.reset();
      records.reset();
    }
  }

  /**
   * Records in rid order, after afterRid. isLive() is asked before each batch:
   * once the collection is dropped the scan fails as mongod's would.
   */
  *scan(meta: CollectionMeta, afterRid: number | undefined, isLive: () => boolean): Generator<RecordEntry> {
    let after = afterRid;
    for (let size = FIRST_BATCH; ; size = Math.min(size * 4, MAX_BATCH)) {
      if (!isLive()) {
        throw new CommandError(175, `collection dropped: ${meta.ns}`, { codeName: 'QueryPlanKilled' });
      }
      const batch = this.readBatch(meta, after, size);
      for (const entry of batch) yield entry;
      const last = batch.at(-1);
      if (batch.length < size || last === undefined) return;
      after = last.rid;
    }
  }

  count(meta: CollectionMeta): number {
    return this.stats(meta).count;
  }

  /** size: total BSON bytes; storageSize: the record table's file size. */
  collectionStats(meta: CollectionMeta): { count: number; size: number; storageSize: number } {
    const { count, size } = this.stats(meta);
    let storageSize = 0;
    try {
      storageSize = fs.statSync(path.join(this.dbpath, `${meta.ident}.wt`)).size;
    } catch {
      // Not on disk yet: WT creates the file lazily on some platforms.
    }
    return { count, size, storageSize };
  }

  forget(meta: CollectionMeta): void {
    this.state.delete(meta.ident);
  }

  private stateOf(meta: CollectionMeta): CollectionState {
    let state = this.state.get(meta.ident);
    if (state === undefined) this.state.set(meta.ident, (state = {}));
    return state;
  }

  /** Rids grow from the largest one present; rids of rolled-back inserts are skipped. */
  private allocateRid(meta: CollectionMeta): number {
    const state = this.stateOf(meta);
    if (state.nextRid === undefined) {
      const cursor = this.writer.cursor(recordUri(meta));
      cursor.reset();
      state.nextRid = cursor.prev() ? (cursor.getKey() as number) + 1 : 1;
      cursor.reset();
    }
    return state.nextRid++;
  }

  /** Counts are computed once by a scan, then kept by committed deltas. */
  private stats(meta: CollectionMeta): { count: number; size: number } {
    const state = this.stateOf(meta);
    if (state.stats === undefined) {
      let count = 0;
      let size = 0;
      for (const { doc } of this.scan(meta, undefined, () => true)) {
        count++;
        size += doc.length;
      }
      state.stats = { count, size };
    }
    return state.stats;
  }

  // Uncounted collections are skipped: their first count scans committed data.
  private adjustStats(meta: CollectionMeta, count: number, size: number): void {
    const state = this.stateOf(meta);
    this.writer.afterCommit(() => {
      if (state.stats === undefined) return;
      state.stats.count += count;
      state.stats.size += size;
    });
  }

  private readBatch(meta: CollectionMeta, after: number | undefined, size: number): RecordEntry[] {
    const cursor = this.reader.openCursor(recordUri(meta));
    try {
      const out: RecordEntry[] = [];
      if (after !== undefined) {
        const near = cursor.searchNear(after);
        if (near === null) return out;
        // Positioned on the first rid > after: take it before reading on.
        if (near.exact > 0) out.push({ rid: cursor.getKey() as number, doc: cursor.getValue() as Buffer });
      }
      for (const [rid, doc] of cursor.nextBatch(size - out.length)) {
        out.push({ rid: rid as number, doc: doc as Buffer });
      }
      return out;
    } finally {
      cursor.close();
    }
  }
}

function idKey(id: unknown): Buffer {
  if (Array.isArray(id)) {
    throw new CommandError(ErrorCodes.InvalidIdField, "The '_id' value cannot be of type array");
  }
  return encodeKeyString(id);
}

function noSuchRecord(meta: CollectionMeta, rid: number): CommandError {
  return new CommandError(ErrorCodes.InternalError, `no record ${rid} in ${meta.ns}`);
}
