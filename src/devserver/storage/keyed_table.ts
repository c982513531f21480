/**
 * A collection whose records are keyed by byte strings instead of record ids: the
 * oplog, keyed by its 8-byte big-endian Timestamp (mongod keys oplog records by the
 * Timestamp as a RecordId, src/mongo/db/record_id_helpers.cpp keyForOptime). WiredTiger
 * compares `u` keys byte by byte, so key order is Timestamp order and a read from a
 * Timestamp is a search, not a scan. (The binding's `q` keys stop at 2^53, and a
 * Timestamp's seconds sit in the high 32 bits.)
 *
 * Writes go through the write session, inside the caller's writeTransaction; reads
 * see committed data only, on the read session, a batch at a time.
 */
import type { WtSession } from './wiredtiger.js';
import type { WriteSession } from './write_session.js';

export interface KeyedRecord {
  key: Buffer;
  value: Buffer;
}

export class KeyedTable {
  constructor(
    readonly uri: string,
    private readonly writer: WriteSession,
    private readonly reader: WtSession,
    private readonly isLive: () => boolean,
  ) {}

  /** Inside writeTransaction. WT_DUPLICATE_KEY when the key exists. */
  insert(key: Buffer, value: Buffer): void {
    this.writer.cursor(this.uri).insert(key, value);
  }

  /** Inside writeTransaction: the first record as this transaction sees it. */
  firstInTransaction(): KeyedRecord | undefined {
    const cursor = this.writer.cursor(this.uri);
    cursor.reset();
    try {
      return cursor.next() ? { key: cursor.getKey() as Buffer, value: cursor.getValue() as Buffer } : undefined;
    } finally {
      cursor.reset();
    }
  }

  /** Inside writeTransaction. */
  remove(key: Buffer): void {
    this.writer.cursor(this.uri).remove(key);
  }

  /** Committed: whether key is (still) there. */
  has(key: Buffer): boolean {
    return this.withReader((cursor) => cursor.search(key) !== null);
  }

  /**
   * Committed records after `after` (from the first when undefined), up to max, in key
   * order; with reverse, before `after` (from the last), in reverse order.
   */
  read(after: Buffer | undefined, max: number, reverse = false): KeyedRecord[] {
    return this.withReader((cursor) => {
      const out: KeyedRecord[] = [];
      const step = (): boolean => (reverse ? cursor.prev() : cursor.next());
      if (after !== undefined) {
        const near = cursor.searchNear(after);
        if (near === null) return out;
        const beyond = reverse ? near.exact < 0 : near.exact > 0;
        if (beyond) out.push({ key: cursor.getKey() as Buffer, value: cursor.getValue() as Buffer });
      }
      while (out.length < max && step()) out.push({ key: cursor.getKey() as Buffer, value: cursor.getValue() as Buffer });
      return out;
    });
  }

  private withReader<T>(fn: (cursor: ReturnType<WtSession['openCursor']>) => T): T {
    if (!this.isLive()) throw new Error(`${this.uri} is gone`);
    const cursor = this.reader.openCursor(this.uri);
    try {
      return fn(cursor);
    } finally {
      cursor.close();
    }
  }
}
