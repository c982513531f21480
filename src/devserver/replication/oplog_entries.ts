/**
 * The shapes of mongod 7.0's oplog entries (src/mongo/db/repl/oplog_entry.idl and
 * src/mongo/db/op_observer/op_observer_impl.cpp), field order as mongod writes them:
 * op, ns, ui, o, o2, then ts, t, v, wall.
 *
 *   insert   {op: 'i', ns, ui, o: <document>, o2: {_id}}
 *   update   {op: 'u', ns, ui, o: {$v: 2, diff} | <replacement document>, o2: {_id}}
 *   delete   {op: 'd', ns, ui, o: {_id}}
 *   command  {op: 'c', ns: '<db>.$cmd', ui, o: {create | drop | createIndexes | dropIndexes | dropDatabase ...}, o2?}
 *   no-op    {op: 'n', ns: '', o: {msg}}
 */
import { Long, type Timestamp, type UUID } from 'bson';
import type { Document } from '../bson.js';
import type { CatalogChange } from '../storage/storage_engine.js';

/** Every entry's `t`: a single-node set stays in term 1. */
export const TERM = Long.fromNumber(1);
/** The oplog entry version mongod 4.4+ writes. */
const VERSION = Long.fromNumber(2);

/** An entry without ts, t, v and wall, which append() adds. */
export type EntryBody = Document & { op: 'i' | 'u' | 'd' | 'c' | 'n'; ns: string };

export function stamp(body: EntryBody, ts: Timestamp, wall: Date): Document {
  return { ...body, ts, t: TERM, v: VERSION, wall };
}

export function insertEntry(ns: string, ui: UUID, doc: Document): EntryBody {
  return { op: 'i', ns, ui, o: doc, o2: { _id: doc['_id'] } };
}

/** o: the `$v: 2` diff of an operator update, or the whole document of a replacement. */
export function updateEntry(ns: string, ui: UUID, id: unknown, o: Document): EntryBody {
  return { op: 'u', ns, ui, o, o2: { _id: id } };
}

export function deleteEntry(ns: string, ui: UUID, id: unknown): EntryBody {
  return { op: 'd', ns, ui, o: { _id: id } };
}

export function noopEntry(o: Document): EntryBody {
  return { op: 'n', ns: '', o };
}

export function dropDatabaseEntry(db: string): EntryBody {
  return { op: 'c', ns: `${db}.$cmd`, o: { dropDatabase: 1 } };
}

/**
 * One entry per catalog change; createIndexes one per index. Index builds here are
 * instant (secondary indexes are metadata), so every index is logged as the
 * single `createIndexes` entry mongod writes for an index on an empty collection,
 * never as startIndexBuild/commitIndexBuild.
 */
export function catalogEntries(change: CatalogChange): EntryBody[] {
  const { meta } = change;
  const ns = `${meta.db}.$cmd`;
  switch (change.kind) {
    case 'create': {
      const o: Document = { create: meta.name, ...meta.options };
      o['idIndex'] = { v: 2, key: { _id: 1 }, name: '_id_' };
      return [{ op: 'c', ns, ui: meta.uuid, o }];
    }
    case 'drop':
      return [{ op: 'c', ns, ui: meta.uuid, o: { drop: meta.name }, o2: { numRecords: change.numRecords } }];
    case 'createIndexes':
      // mongod's spec order: v, key, name, then the options.
      return change.specs.map(({ v, key, name, ...options }) => ({ op: 'c', ns, ui: meta.uuid, o: { createIndexes: meta.name, v, key, name, ...options } }));
    case 'dropIndexes':
      return [{ op: 'c', ns, ui: meta.uuid, o: { dropIndexes: meta.name, index: change.spec.name }, o2: { ...change.spec } }];
  }
}
