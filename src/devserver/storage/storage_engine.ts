/**
 * The dev server's storage engine: collections and records in real WiredTiger
 * tables, in a dbpath laid out like mongod's.
 *
 * Sessions, one job each (WiredTiger sessions are single-threaded, and so is Node):
 *   - write: every record write, inside writeTransaction; also findRecordById,
 *     which therefore sees the current transaction's own writes;
 *   - read: scans, counts and sizes, which see committed data only;
 *   - admin: catalog changes (each its own synced transaction, committed even
 *     while a writeTransaction is open), table create/drop, checkpoints, log flushes;
 *   - one more per open backup cursor.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { UUID } from 'bson';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { backupCursorAlreadyOpen, openBackupCursor } from './wt_backup_cursor.js';
import { Catalog, splitNamespace } from './catalog.js';
import { markCleanShutdown, openDbpath } from './dbpath.js';
import { DEFAULT_LAYOUT, ensureIdentDirectory, identFor, isDataIdent, removeEmptyIdentDirectories, type IdentKind, type StorageLayout } from './ident_layout.js';
import { addIndexSpecs, dropIndexSpec, idIndexSpec } from './index_specs.js';
import { idIndexUri, RecordStore, recordUri } from './record_store.js';
import type { BackupCursorHandle, CollectionMeta, EngineOptions, IndexSpec, RecordEntry } from './storage_types.js';
import { isWtError, WtCode, type WtConnection, type WtSession } from './wiredtiger.js';
import { WriteSession } from './write_session.js';

export type { StorageLayout } from './ident_layout.js';
export type { BackupCursorHandle, BackupFile, CollectionMeta, EngineOptions, IndexSpec, RecordEntry } from './storage_types.js';

export class StorageEngine {
  private readonly writer: WriteSession;
  private readonly reader: WtSession;
  private readonly admin: WtSession;
  private readonly catalog: Catalog;
  private readonly records: RecordStore;
  /** Tables whose drop WiredTiger refused (EBUSY, e.g. during a backup); retried later. */
  private readonly pendingDrops = new Set<string>();
  /** mongod's ident scheme: `<kind>-<counter>-<random per process>`. */
  private readonly identSuffix = (randomBytes(8).readBigUInt64BE() >> 1n).toString();
  private identCounter = 0;
  private backup: BackupCursorHandle | undefined;
  private closed = false;
  private checkpointMarker: (() => unknown) | undefined;
  /** What the marker said just before the last checkpoint; see setCheckpointMarker. */
  private checkpointMark: unknown;

  private constructor(
    readonly dbpath: string,
    private readonly conn: WtConnection,
    readonly layout: StorageLayout,
  ) {
    this.writer = new WriteSession(conn.openSession());
    this.reader = conn.openSession();
    this.admin = conn.openSession();
    this.catalog = Catalog.open(this.admin);
    this.records = new RecordStore(this.writer, this.reader, dbpath);
    this.dropOrphanTables();
  }

  /** Opens (creating if needed) the dbpath; DBPathInUse when another engine has it. */
  static open(opts: EngineOptions): StorageEngine {
    const dbpath = path.resolve(opts.dbpath);
    const layout = opts.layout ?? DEFAULT_LAYOUT;
    const conn = openDbpath(dbpath, opts.cacheSizeMB, opts.engineConfig, layout);
    try {
      return new StorageEngine(dbpath, conn, layout);
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  // ---- catalog ---------------------------------------------------------------

  listCollections(db?: string): CollectionMeta[] {
    this.assertOpen();
    return this.catalog.list()
      .filter((meta) => db === undefined || meta.db === db)
      .sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  }

  listDatabaseNames(): string[] {
    this.assertOpen();
    return [...new Set(this.catalog.list().map((meta) => meta.db))].sort();
  }

  /** The returned object is a snapshot: later catalog changes replace it, never mutate it. */
  getCollection(ns: string): CollectionMeta | undefined {
    this.assertOpen();
    return this.catalog.get(ns);
  }

  createCollection(ns: string, options: Record<string, unknown> = {}): CollectionMeta {
    this.assertOpen();
    const { db, name } = splitNamespace(ns);
    if (db === '' || name === '') {
      throw new DevServerError(DevServerCodes.InvalidNamespace, `Invalid namespace specified '${ns}'`);
    }
    if (this.catalog.get(ns) !== undefined) {
      throw new DevServerError(DevServerCodes.NamespaceExists, `Collection ${ns} already exists.`);
    }
    const meta: CollectionMeta = {
      ns, db, name,
      uuid: new UUID(),
      ident: this.newIdent('collection', db),
      idIndexIdent: this.newIdent('index', db),
      options,
      indexes: [idIndexSpec()],
    };
    ensureIdentDirectory(this.dbpath, meta.ident);
    ensureIdentDirectory(this.dbpath, meta.idIndexIdent);
    this.admin.create(recordUri(meta), 'key_format=q,value_format=u');
    this.admin.create(idIndexUri(meta), 'key_format=u,value_format=q');
    try {
      this.catalog.save(meta);
    } catch (err) {
      this.dropTable(recordUri(meta));
      this.dropTable(idIndexUri(meta));
      throw err;
    }
    return meta;
  }

  /** False when there was no such collection. Not allowed inside writeTransaction. */
  dropCollection(ns: string): boolean {
    this.assertOpen();
    const meta = this.catalog.get(ns);
    if (meta === undefined) return false;
    if (this.writer.inTransaction) {
      // The open transaction may hold uncommitted writes to the tables being dropped.
      throw new DevServerError(DevServerCodes.IllegalOperation, `cannot drop ${ns} inside a write transaction`);
    }
    this.catalog.remove(ns);
    this.records.forget(meta);
    for (const uri of [recordUri(meta), idIndexUri(meta)]) {
      this.writer.closeCursor(uri);
      this.dropTable(uri);
    }
    this.retryPendingDrops();
    return true;
  }

  dropDatabase(db: string): void {
    for (const meta of this.listCollections(db)) this.dropCollection(meta.ns);
  }

  /** Secondary indexes are metadata only; the `_id_` index is always real. Returns how many were new. */
  addIndexes(ns: string, specs: IndexSpec[]): number {
    const meta = this.requireCollection(ns);
    const indexes = addIndexSpecs(meta.indexes, specs);
    const added = indexes.length - meta.indexes.length;
    if (added > 0) this.catalog.save({ ...meta, indexes });
    return added;
  }

  /** IndexNotFound (27); `_id_` cannot be dropped (InvalidOptions 72). */
  dropIndex(ns: string, name: string): void {
    const meta = this.requireCollection(ns);
    this.catalog.save({ ...meta, indexes: dropIndexSpec(meta.indexes, name) });
  }

  // ---- records ---------------------------------------------------------------

  /** begin; fn; commit (synced to the journal when opts.sync); rollback and rethrow on throw. Nested calls join. */
  writeTransaction<T>(fn: () => T, opts?: { sync?: boolean }): T {
    this.assertOpen();
    return this.writer.run(fn, opts);
  }

  /** Returns the new record's rid; DuplicateKey when the `_id` exists. */
  insertRecord(ns: string, doc: Buffer, id: unknown): number {
    return this.records.insert(this.requireCollection(ns), doc, id);
  }

  updateRecord(ns: string, rid: number, doc: Buffer): void {
    this.records.update(this.requireCollection(ns), rid, doc);
  }

  deleteRecord(ns: string, rid: number, id: unknown): void {
    this.records.delete(this.requireCollection(ns), rid, id);
  }

  findRecordById(ns: string, id: unknown): RecordEntry | undefined {
    this.assertOpen();
    const meta = this.catalog.get(ns);
    return meta === undefined ? undefined : this.records.findById(meta, id);
  }

  /**
   * Committed records in rid order. Safe to keep open across writeTransaction:
   * it reads ahead a batch at a time (16, then 64, up to 1024 records) on its own
   * session, so each record is as it was committed when its batch was fetched.
   * Throws QueryPlanKilled if the collection is dropped (or the engine closed)
   * while it is consumed.
   */
  scanRecords(ns: string, afterRid?: number): Generator<RecordEntry> {
    this.assertOpen();
    const meta = this.catalog.get(ns);
    if (meta === undefined) return noRecords();
    const isLive = (): boolean => !this.closed && this.catalog.get(ns)?.ident === meta.ident;
    return this.records.scan(meta, afterRid, isLive);
  }

  /** Committed records; 0 for a missing collection. */
  countRecords(ns: string): number {
    this.assertOpen();
    const meta = this.catalog.get(ns);
    return meta === undefined ? 0 : this.records.count(meta);
  }

  /** Zeros for a missing collection. */
  collectionStats(ns: string): { count: number; size: number; storageSize: number } {
    this.assertOpen();
    const meta = this.catalog.get(ns);
    return meta === undefined ? { count: 0, size: 0, storageSize: 0 } : this.records.collectionStats(meta);
  }

  // ---- durability and backup ---------------------------------------------------

  checkpoint(): void {
    this.assertOpen();
    // Writes are synchronous and so is this: the checkpoint holds exactly what was
    // committed when the marker was read.
    const mark = this.checkpointMarker?.();
    this.admin.checkpoint();
    this.checkpointMark = mark;
    this.retryPendingDrops();
  }

  /**
   * Something to remember with each checkpoint, read just before it is taken: the replica
   * set's last applied optime, so that a backup cursor can say which oplog entry its
   * checkpoint holds (PSMDB's `checkpointTimestamp`). Read once now too: what the engine
   * opened on was checkpointed (a clean close, or recovery's own checkpoint).
   */
  setCheckpointMarker(marker: () => unknown): void {
    this.checkpointMarker = marker;
    this.checkpointMark = marker();
  }

  /** Writes buffered journal records to the file system; sync also fsyncs them. */
  logFlush(sync: boolean): void {
    this.assertOpen();
    this.admin.logFlush(sync ? 'sync=on' : 'sync=off');
  }

  /** BackupCursorAlreadyOpen (50886) while another one is open. */
  openBackupCursor(): BackupCursorHandle {
    this.assertOpen();
    if (this.backup !== undefined) throw backupCursorAlreadyOpen();
    this.backup = openBackupCursor(this.conn, this.dbpath, this.checkpointMark, () => {
      this.backup = undefined;
      if (!this.closed) this.retryPendingDrops();
    });
    return this.backup;
  }

  /** Ends any backup, checkpoints, closes WiredTiger and empties mongod.lock. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.writer.inTransaction) {
      throw new DevServerError(DevServerCodes.IllegalOperation, 'cannot close the storage engine inside a write transaction');
    }
    this.backup?.close();
    this.retryPendingDrops();
    this.admin.checkpoint();
    this.closed = true;
    this.conn.close();
    markCleanShutdown(this.dbpath);
  }

  // ---- internals ---------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new DevServerError(DevServerCodes.ShutdownInProgress, 'the storage engine is closed');
  }

  private requireCollection(ns: string): CollectionMeta {
    this.assertOpen();
    const meta = this.catalog.get(ns);
    if (meta === undefined) throw new DevServerError(DevServerCodes.NamespaceNotFound, `ns does not exist: ${ns}`);
    return meta;
  }

  private newIdent(kind: IdentKind, db: string): string {
    const taken = this.catalog.idents();
    let ident: string;
    do ident = identFor(this.layout, kind, db, `${this.identCounter++}-${this.identSuffix}`);
    while (taken.has(ident));
    return ident;
  }

  private dropTable(uri: string): void {
    try {
      this.admin.drop(uri, 'force=true');
      this.pendingDrops.delete(uri);
      removeEmptyIdentDirectories(this.dbpath, uri.slice('table:'.length));
    } catch (err) {
      if (!isWtError(err, WtCode.EBUSY)) throw err;
      this.pendingDrops.add(uri);
    }
  }

  private retryPendingDrops(): void {
    for (const uri of [...this.pendingDrops]) this.dropTable(uri);
  }

  /** Tables no catalog entry names: left by a crash between a drop's steps, or a refused drop. */
  private dropOrphanTables(): void {
    const known = this.catalog.idents();
    const orphans: string[] = [];
    const cursor = this.admin.openCursor('metadata:');
    try {
      while (cursor.next()) {
        const match = /^table:(.+)$/.exec(cursor.getKey() as string);
        if (match?.[1] !== undefined && isDataIdent(match[1]) && !known.has(match[1])) orphans.push(cursor.getKey() as string);
      }
    } finally {
      cursor.close();
    }
    for (const uri of orphans) this.dropTable(uri);
  }
}

function* noRecords(): Generator<RecordEntry> {
  // A missing collection scans as empty, as mongod's find does.
}
