/**
 * What the storage engine tells the oplog about catalog changes, so that each change
 * and its oplog entries commit in one transaction (mongod's OpObserver writes them in
 * the change's own WriteUnitOfWork: src/mongo/db/op_observer/op_observer_impl.cpp).
 */
import type { CollectionMeta, IndexSpec } from './storage_types.js';
import type { KeyedRecord } from './keyed_table.js';
import type { CatalogAlongside } from './catalog.js';

export type CatalogChange =
  | { kind: 'create'; meta: CollectionMeta }
  | { kind: 'drop'; meta: CollectionMeta; numRecords: number }
  | { kind: 'createIndexes'; meta: CollectionMeta; specs: IndexSpec[] }
  | { kind: 'dropIndexes'; meta: CollectionMeta; spec: IndexSpec };

export interface CatalogObserver {
  /** The keyed table the entries go to. */
  readonly ns: string;
  /** The entries for a change (none for an unlogged one), built before its transaction. */
  entriesFor(change: CatalogChange): KeyedRecord[];
  /** Called once the change and its entries committed. */
  committed(entries: KeyedRecord[]): void;
}

/** Writes entries into the table at uri, in the catalog change's transaction. */
export function insertAll(uri: string, entries: KeyedRecord[]): CatalogAlongside {
  return (session) => {
    const cursor = session.openCursor(uri, 'overwrite=false');
    try {
      for (const { key, value } of entries) cursor.insert(key, value);
    } finally {
      cursor.close();
    }
  };
}
