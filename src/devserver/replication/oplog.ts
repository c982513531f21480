/**
 * `local.oplog.rs`: a capped collection in the catalog (`{capped: true, size}`), so a
 * backup copies it as any table and a copy opened as a standalone still holds it.
 * Records are keyed by their Timestamp (storage/keyed_table.ts).
 *
 * Every data write appends its entries inside the write's own writeTransaction;
 * catalog changes commit their entries in the catalog's transaction (CatalogObserver).
 * Either way an entry exists exactly when its change does, after a crash too.
 *
 * Capped by size: each append deletes the oldest entries, in the same transaction,
 * until the entries' BSON bytes fit in `size` again (the newest entry always stays);
 * a catalog change's entries, committed in the catalog's transaction, are followed by
 * the same truncation.
 * mongod instead truncates whole chunks ("oplog truncate markers") from a background
 * thread (src/mongo/db/storage/oplog_cap_maintainer_thread.cpp), so its oplog runs over
 * by up to a chunk; one writer with no background thread makes the exact bound as
 * cheap here, and a reader can rely on it.
 *
 * Except while pinned: an open backup cursor keeps every entry from its oplogStart on,
 * and the oplog grows past its size meanwhile, as mongod's truncation stops at
 * `_oplogPinnedByBackup` until the backup ends
 * (src/mongo/db/storage/wiredtiger/wiredtiger_kv_engine.cpp, beginNonBlockingBackup,
 * getPinnedOplog).
 */
import { Timestamp, type Long } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument, encodeDocument } from '../bson.js';
import type { CatalogChange, CatalogObserver, KeyedRecord, KeyedTable, StorageEngine } from '../storage/storage_engine.js';
import { splitNamespace } from '../storage/catalog.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { TimestampClock, keyTimestamp, timestampKey, type Clock } from './oplog_timestamp.js';
import { catalogEntries, noopEntry, stamp, TERM, type EntryBody } from './oplog_entries.js';

export const OPLOG_NS = 'local.oplog.rs';

export interface OpTime {
  readonly ts: Timestamp;
  readonly t: Long;
}

const OPEN_SCAN_BATCH = 1024;

export class Oplog implements CatalogObserver {
  readonly ns = OPLOG_NS;
  private readonly clock: TimestampClock;
  private readonly waiters = new Set<() => void>();
  /** Committed state. */
  private first: Timestamp | undefined;
  private last: Timestamp | undefined;
  private used = 0;
  /** Entries at or after each of these stay (see pin). */
  private readonly pins = new Set<{ readonly ts: Timestamp }>();
  /** The open writeTransaction's view (undefined outside one). */
  private pending: { first: Timestamp | undefined; last: Timestamp | undefined; used: number } | undefined;

  private constructor(
    private readonly engine: StorageEngine,
    private readonly table: KeyedTable,
    readonly sizeBytes: number,
    now: Clock | undefined,
  ) {
    this.clock = new TimestampClock(now);
  }

  /** Creates local.oplog.rs (capped, sizeBytes), at replSetInitiate. */
  static create(engine: StorageEngine, opts: { sizeBytes: number; now?: Clock }): Oplog {
    if (!Number.isFinite(opts.sizeBytes) || opts.sizeBytes <= 0) {
      throw new DevServerError(DevServerCodes.BadValue, `oplog size must be positive, got ${opts.sizeBytes}`);
    }
    engine.createKeyedCollection(OPLOG_NS, { capped: true, size: opts.sizeBytes });
    return Oplog.attach(engine, opts.sizeBytes, opts.now) as Oplog;
  }

  /** The existing oplog after a restart (or in a restored copy); undefined when there is none. */
  static open(engine: StorageEngine, opts: { now?: Clock; readOnly?: boolean } = {}): Oplog | undefined {
    const meta = engine.getCollection(OPLOG_NS);
    if (meta === undefined) return undefined;
    return Oplog.attach(engine, Number(meta.options['size']), opts.now, opts.readOnly === true);
  }

  private static attach(engine: StorageEngine, sizeBytes: number, now: Clock | undefined, readOnly = false): Oplog | undefined {
    const table = engine.keyedTable(OPLOG_NS);
    if (table === undefined) return undefined;
    const oplog = new Oplog(engine, table, sizeBytes, now);
    oplog.load();
    if (!readOnly) engine.setCatalogObserver(oplog);
    return oplog;
  }

  /** A no-op entry {op: 'n', ns: '', o}, as replSetInitiate's {msg: 'initiating set'}. */
  appendNoop(o: Document): OpTime {
    return this.engine.writeTransaction(() => this.append(noopEntry(o)), { sync: true });
  }

  /**
   * Appends one entry inside the caller's writeTransaction (one is opened when there is
   * none): it commits or rolls back with the caller's writes.
   */
  append(body: EntryBody): OpTime {
    return this.engine.writeTransaction(() => {
      const ts = this.clock.next();
      const value = encodeDocument(stamp(body, ts, new Date()));
      const view = this.view();
      this.table.insert(timestampKey(ts), value);
      view.used += value.length;
      view.last = ts;
      view.first ??= ts;
      this.truncate(view);
      return { ts, t: TERM };
    });
  }

  lastApplied(): OpTime | undefined {
    return this.last === undefined ? undefined : { ts: this.last, t: TERM };
  }

  firstEntry(): OpTime | undefined {
    return this.first === undefined ? undefined : { ts: this.first, t: TERM };
  }

  /** Committed bytes of all entries (what the cap bounds). */
  get usedBytes(): number {
    return this.used;
  }

  /** Resolves once an entry with ts > `after` is committed; rejects when signal aborts. */
  waitForNewer(after: Timestamp, signal: AbortSignal): Promise<void> {
    if (this.last !== undefined && this.last.gt(after)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        this.waiters.delete(check);
        reject(signal.reason as Error);
      };
      const check = (): void => {
        if (this.last === undefined || !this.last.gt(after)) return;
        this.waiters.delete(check);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.add(check);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Keeps every entry at or after `ts` until the returned release is called: the cap is
   * exceeded rather than truncate them (an open backup cursor's oplogStart).
   */
  pin(ts: Timestamp): () => void {
    const pin = { ts };
    this.pins.add(pin);
    return () => {
      this.pins.delete(pin);
    };
  }

  /** The table, for readers (replication/oplog_cursor.ts). */
  get records(): KeyedTable {
    return this.table;
  }

  // ---- CatalogObserver -------------------------------------------------------

  entriesFor(change: CatalogChange): KeyedRecord[] {
    if (!isLogged(change.meta.ns)) return [];
    return catalogEntries(change).map((body) => {
      const ts = this.clock.next();
      return { key: timestampKey(ts), value: encodeDocument(stamp(body, ts, new Date())) };
    });
  }

  committed(entries: KeyedRecord[]): void {
    // An open writeTransaction's view counts them too, or its commit would forget them.
    for (const { key, value } of entries) {
      const ts = keyTimestamp(key);
      this.used += value.length;
      this.first ??= ts;
      this.last = ts;
      if (this.pending !== undefined) {
        this.pending.used += value.length;
        this.pending.first ??= ts;
        this.pending.last = ts;
      }
    }
    // The cap holds for catalog entries too; the truncation joins an open writeTransaction.
    if (this.used > this.sizeBytes) this.engine.writeTransaction(() => this.truncate(this.view()));
    this.notify();
  }

  // ---- internals ---------------------------------------------------------------

  /** The transaction's running state; committed state is replaced by it only on commit. */
  private view(): { first: Timestamp | undefined; last: Timestamp | undefined; used: number } {
    if (this.pending !== undefined) return this.pending;
    const pending = { first: this.first, last: this.last, used: this.used };
    this.pending = pending;
    this.engine.afterCommit(() => {
      this.pending = undefined;
      this.first = pending.first;
      this.last = pending.last;
      this.used = pending.used;
      this.notify();
    });
    this.engine.afterRollback(() => {
      this.pending = undefined;
    });
    return pending;
  }

  private truncate(view: { first: Timestamp | undefined; last: Timestamp | undefined; used: number }): void {
    while (view.used > this.sizeBytes) {
      const oldest = this.table.firstInTransaction();
      if (oldest === undefined || view.last === undefined || oldest.key.equals(timestampKey(view.last))) break;
      if (this.isPinned(keyTimestamp(oldest.key))) break;
      this.table.remove(oldest.key);
      view.used -= oldest.value.length;
      view.first = undefined;
    }
    if (view.first === undefined) {
      const oldest = this.table.firstInTransaction();
      view.first = oldest === undefined ? undefined : keyTimestamp(oldest.key);
    }
  }

  private isPinned(ts: Timestamp): boolean {
    for (const pin of this.pins) if (ts.gte(pin.ts)) return true;
    return false;
  }

  private load(): void {
    let after: Buffer | undefined;
    for (;;) {
      const batch = this.table.read(after, OPEN_SCAN_BATCH);
      for (const { key, value } of batch) {
        this.used += value.length;
        this.first ??= keyTimestamp(key);
        after = key;
      }
      if (batch.length < OPEN_SCAN_BATCH) break;
    }
    if (after !== undefined) {
      this.last = keyTimestamp(after);
      this.clock.advancePast(this.last);
    }
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** mongod logs no write to the `local` database (src/mongo/db/repl/oplog.cpp, logOp skips it). */
export function isLogged(ns: string): boolean {
  return splitNamespace(ns).db !== 'local';
}

/** The document an entry holds. */
export function decodeEntry(value: Buffer): Document {
  return decodeDocument(value);
}
