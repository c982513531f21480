/**
 * The `_mdb_catalog` table: one BSON entry per collection, keyed by an int64,
 * naming the WiredTiger idents that hold its records and `_id` index. Read into
 * memory at open; every change is committed (synced) before memory changes, so
 * memory never shows what the disk does not have.
 */
import { deserialize, serialize, UUID } from 'bson';
import type { CollectionMeta, IndexSpec } from './storage_types.js';
import type { WtCursor, WtSession } from './wiredtiger.js';

export const CATALOG_URI = 'table:_mdb_catalog';
const LOAD_BATCH = 256;

/** What one catalog value holds: mongod's _mdb_catalog entry, reduced to what the dev server uses. */
interface StoredEntry {
  ns: string;
  ident: string;
  idIndexIdent: string;
  uuid: UUID;
  options: Record<string, unknown>;
  indexes: IndexSpec[];
}

/** More writes for a catalog change's own transaction, on the catalog's session. */
export type CatalogAlongside = (session: WtSession) => void;

interface Entry {
  rid: number;
  meta: CollectionMeta;
}

export class Catalog {
  private readonly byNs = new Map<string, Entry>();
  private nextRid = 1;

  private constructor(private readonly session: WtSession) {}

  /** Creates the table if missing and loads every entry. The session must not be in a transaction. */
  static open(session: WtSession): Catalog {
    session.create(CATALOG_URI, 'key_format=q,value_format=u');
    const catalog = new Catalog(session);
    const cursor = session.openCursor(CATALOG_URI);
    try {
      // A short batch means the end: a further next() would start over from the first key.
      let batch: ReturnType<WtCursor['nextBatch']>;
      do {
        batch = cursor.nextBatch(LOAD_BATCH);
        for (const [rid, value] of batch) catalog.remember(rid as number, fromStored(value as Buffer));
      } while (batch.length === LOAD_BATCH);
    } finally {
      cursor.close();
    }
    return catalog;
  }

  list(): CollectionMeta[] {
    return [...this.byNs.values()].map((e) => e.meta);
  }

  get(ns: string): CollectionMeta | undefined {
    return this.byNs.get(ns)?.meta;
  }

  /** Every ident the catalog references, for telling orphan tables apart. */
  idents(): Set<string> {
    const idents = new Set<string>();
    for (const { meta } of this.byNs.values()) idents.add(meta.ident).add(meta.idIndexIdent);
    return idents;
  }

  /**
   * Inserts or replaces the entry for meta.ns. `alongside` writes in the same
   * transaction (the change's oplog entries), so both commit or neither does.
   */
  save(meta: CollectionMeta, alongside?: CatalogAlongside): void {
    const rid = this.byNs.get(meta.ns)?.rid ?? this.nextRid;
    this.commit((cursor) => cursor.insert(rid, toStored(meta)), alongside);
    this.remember(rid, meta);
  }

  remove(ns: string, alongside?: CatalogAlongside): void {
    const entry = this.byNs.get(ns);
    if (entry === undefined) return;
    this.commit((cursor) => cursor.remove(entry.rid), alongside);
    this.byNs.delete(ns);
  }

  private remember(rid: number, meta: CollectionMeta): void {
    this.byNs.set(meta.ns, { rid, meta });
    this.nextRid = Math.max(this.nextRid, rid + 1);
  }

  // Catalog changes are rare and must survive a crash as soon as they are visible.
  private commit(write: (cursor: WtCursor) => void, alongside?: CatalogAlongside): void {
    this.session.beginTransaction();
    try {
      const cursor = this.session.openCursor(CATALOG_URI);
      try {
        write(cursor);
      } finally {
        cursor.close();
      }
      alongside?.(this.session);
    } catch (err) {
      this.session.rollbackTransaction();
      throw err;
    }
    // A failed commit has already been rolled back by WiredTiger.
    this.session.commitTransaction('sync=on');
  }
}

/** `db.coll` splits at the first dot: collection names may contain dots, db names may not. */
export function splitNamespace(ns: string): { db: string; name: string } {
  const dot = ns.indexOf('.');
  return dot < 0 ? { db: ns, name: '' } : { db: ns.slice(0, dot), name: ns.slice(dot + 1) };
}

function toStored(meta: CollectionMeta): Buffer {
  const stored: StoredEntry = {
    ns: meta.ns,
    ident: meta.ident,
    idIndexIdent: meta.idIndexIdent,
    uuid: meta.uuid,
    options: meta.options,
    indexes: meta.indexes,
  };
  return Buffer.from(serialize(stored));
}

function fromStored(value: Buffer): CollectionMeta {
  const stored = deserialize(value) as StoredEntry;
  // bson returns subtype-4 binaries as UUID already; a plain Binary would be converted here.
  const uuid = stored.uuid instanceof UUID ? stored.uuid : new UUID((stored.uuid as { buffer: Uint8Array }).buffer);
  return {
    ...splitNamespace(stored.ns),
    ns: stored.ns,
    uuid,
    ident: stored.ident,
    idIndexIdent: stored.idIndexIdent,
    options: stored.options ?? {},
    indexes: stored.indexes ?? [],
  };
}
