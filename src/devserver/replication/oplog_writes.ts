/**
 * The write paths' oplog hooks (mongod's OpObserver for data writes,
 * src/mongo/db/op_observer/op_observer_impl.cpp): each call appends one entry inside
 * the caller's writeTransaction, so the write and its entry commit together. Without
 * an oplog (a standalone) or for the `local` database they do nothing.
 */
import type { Document } from '../bson.js';
import type { ServerState } from '../state.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { deleteEntry, dropDatabaseEntry, insertEntry, updateEntry, type EntryBody } from './oplog_entries.js';
import { updateDiffObject } from './diff_compute.js';
import { isLogged, OPLOG_NS } from './oplog.js';

function log(state: ServerState, ns: string, build: (ui: NonNullable<ReturnType<ServerState['engine']['getCollection']>>['uuid']) => EntryBody): void {
  const { oplog } = state;
  if (oplog === undefined || !isLogged(ns)) return;
  const meta = state.engine.getCollection(ns);
  if (meta === undefined) return;
  oplog.append(build(meta.uuid));
}

export function logInsert(state: ServerState, ns: string, doc: Document): void {
  log(state, ns, (ui) => insertEntry(ns, ui, doc));
}

/** A replacement logs the whole new document; an operator update its `$v: 2` diff. */
export function logUpdate(state: ServerState, ns: string, pre: Document, post: Document, isReplacement: boolean): void {
  log(state, ns, (ui) => updateEntry(ns, ui, post['_id'], isReplacement ? post : updateDiffObject(pre, post)));
}

export function logDelete(state: ServerState, ns: string, id: unknown): void {
  log(state, ns, (ui) => deleteEntry(ns, ui, id));
}

/**
 * After the collections' own drop entries, as mongod 7.0's dropDatabase; synced, as the
 * drops before it were. A database that did not exist logs nothing.
 */
export function logDropDatabase(state: ServerState, db: string, droppedCollections: number): void {
  const { oplog } = state;
  if (oplog === undefined || db === 'local' || droppedCollections === 0) return;
  state.engine.writeTransaction(() => oplog.append(dropDatabaseEntry(db)), { sync: true });
}

/**
 * Users may not write to the oplog of a replica-set member: mongod answers
 * InvalidNamespace (src/mongo/db/ops/insert.cpp, userAllowedWriteNS; the jstest
 * replsets/oplog_writes_only_permitted_on_standalone.js). A standalone may.
 */
export function checkUserWritable(state: ServerState, ns: string): void {
  if (ns === OPLOG_NS && state.oplog !== undefined) {
    throw new DevServerError(DevServerCodes.InvalidNamespace, `cannot write to '${ns}'`);
  }
}
