/** insert, update and delete: the write commands, with mongod's per-document error reporting. */
import { ObjectId, BSONRegExp } from 'bson';
import type { Document } from '../bson.js';
import { encodeDocument } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import type { ServerState } from '../state.js';
import { namespaceOf, ensureCollection, wantsJournal, findMatching, writeErrorEntry } from './common.js';
import { compileUpdate, upsertSeed } from '../query/update.js';
import { valuesEqual } from '../query/values.js';
import { MAX_BSON_OBJECT_SIZE } from '../../wire/constants.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { checkUserWritable, logDelete, logInsert, logUpdate } from '../replication/oplog_writes.js';

function arrayField(cmd: Document, field: string): Document[] {
  const value = cmd[field];
  if (!Array.isArray(value)) {
    throw new DevServerError(DevServerCodes.FailedToParse, `BSON field '${field}' is missing but a required field`);
  }
  return value as Document[];
}

/** A stored document starts with `_id`; one is generated when the client sent none. */
export function withId(doc: Document): Document {
  if (!('_id' in doc)) return { _id: new ObjectId(), ...doc };
  const id = doc['_id'];
  if (Array.isArray(id)) {
    throw new DevServerError(DevServerCodes.InvalidIdField, "The '_id' value cannot be of type array");
  }
  if (id instanceof BSONRegExp || id === undefined) {
    throw new DevServerError(DevServerCodes.InvalidIdField, `The '_id' value cannot be of type ${id === undefined ? 'undefined' : 'regex'}`);
  }
  if (Object.keys(doc)[0] === '_id') return doc;
  const { _id, ...rest } = doc;
  return { _id, ...rest };
}

export function encodeForStorage(doc: Document): Buffer {
  const bytes = encodeDocument(doc);
  if (bytes.length > MAX_BSON_OBJECT_SIZE) {
    throw new DevServerError(
      DevServerCodes.BSONObjectTooLarge,
      `object to insert too large. size in bytes: ${bytes.length}, max size: ${MAX_BSON_OBJECT_SIZE}`,
    );
  }
  return bytes;
}

/** Acknowledge j:true only once the journal is synced; otherwise let the flusher do it. */
export function finishWrite(state: ServerState, cmd: Document): void {
  if (wantsJournal(cmd)) state.engine.logFlush(true);
  else state.unsyncedWrites = true;
}

/*
 * The three document writes: every write command's change to a document, and applyOps',
 * goes through one of these, so that whatever a write must also do (on a replica set,
 * its oplog entry in the same transaction) is done in one place for all of them.
 */

/** Inserts `doc` (given an `_id` if it has none); DuplicateKey when its `_id` exists. */
export function insertOne(state: ServerState, ns: string, doc: Document): void {
  const stored = withId(doc);
  const bytes = encodeForStorage(stored);
  state.engine.writeTransaction(() => {
    state.engine.insertRecord(ns, bytes, stored['_id']);
    logInsert(state, ns, stored);
  });
}

/**
 * Replaces the record `target.rid` (holding `target.doc`) with `after`, whose `_id` is the
 * same. `isReplacement`: a replacement-style update (a replica set logs the whole new
 * document), rather than operators or a diff (it logs the `$v: 2` diff).
 */
export function replaceOne(state: ServerState, ns: string, target: { rid: number; doc: Document }, after: Document, isReplacement: boolean): void {
  const bytes = encodeForStorage(after);
  state.engine.writeTransaction(() => {
    state.engine.updateRecord(ns, target.rid, bytes);
    logUpdate(state, ns, target.doc, after, isReplacement);
  });
}

/** Deletes the record `rid`, which holds `doc`. */
export function deleteOne(state: ServerState, ns: string, target: { rid: number; doc: Document }): void {
  state.engine.writeTransaction(() => {
    state.engine.deleteRecord(ns, target.rid, target.doc['_id']);
    logDelete(state, ns, target.doc['_id']);
  });
}

/**
 * Applies `apply` to each element of a write command's array in order, as mongod's
 * write path does (write_ops_exec.cpp): a failing element becomes a `writeErrors`
 * entry, and ends the batch when it is ordered. Returns those entries.
 */
function eachWrite(
  cmd: Document,
  ctx: CommandContext,
  counter: 'insert' | 'update' | 'delete',
  elements: Document[],
  apply: (element: Document, index: number) => void,
): Document[] {
  const { state } = ctx;
  const ordered = cmd['ordered'] !== false;
  const writeErrors: Document[] = [];
  for (const [index, element] of elements.entries()) {
    state.opcounters[counter] += 1;
    try {
      apply(element, index);
    } catch (err) {
      writeErrors.push(writeErrorEntry(index, err));
      if (ordered) break;
    }
  }
  finishWrite(state, cmd);
  return writeErrors;
}

function insert(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['insert']);
  const docs = arrayField(cmd, 'documents');
  checkUserWritable(ctx.state, ns);
  ensureCollection(ctx.state.engine, ns);
  let n = 0;
  const writeErrors = eachWrite(cmd, ctx, 'insert', docs, (doc) => {
    insertOne(ctx.state, ns, doc);
    n += 1;
  });
  return writeErrors.length > 0 ? { n, writeErrors, ok: 1 } : { n, ok: 1 };
}

interface UpdateOutcome {
  n: number;
  nModified: number;
  upsertedId?: unknown;
}

function updateOne(state: ServerState, ns: string, spec: Document): UpdateOutcome {
  if (spec['arrayFilters'] !== undefined) {
    throw new DevServerError(DevServerCodes.NotImplemented, 'arrayFilters are not supported by the hotbackup dev server');
  }
  const filter = (spec['q'] ?? {}) as Document;
  const update = compileUpdate(spec['u'] as Document | Document[]);
  const multi = spec['multi'] === true;
  if (multi && update.isReplacement) {
    throw new DevServerError(DevServerCodes.FailedToParse, 'multi update is not supported for replacement-style update');
  }
  const matches = findMatching(state.engine, ns, filter, multi ? Infinity : 1);
  let nModified = 0;
  for (const { rid, doc } of matches) {
    const result = update.apply(doc);
    if (!valuesEqual(result.doc['_id'], doc['_id'])) {
      throw new DevServerError(
        DevServerCodes.ImmutableField,
        "Performing an update on the path '_id' would modify the immutable field '_id'",
      );
    }
    if (!result.modified) continue;
    replaceOne(state, ns, { rid, doc }, result.doc, update.isReplacement);
    nModified += 1;
  }
  if (matches.length > 0 || spec['upsert'] !== true) return { n: matches.length, nModified };

  const seeded = update.apply(upsertSeed(filter, { idOnly: update.isReplacement }), { isInsert: true });
  const stored = withId(seeded.doc);
  ensureCollection(state.engine, ns);
  insertOne(state, ns, stored);
  return { n: 1, nModified: 0, upsertedId: stored['_id'] };
}

function update(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['update']);
  checkUserWritable(ctx.state, ns);
  const upserted: Document[] = [];
  let n = 0;
  let nModified = 0;
  const writeErrors = eachWrite(cmd, ctx, 'update', arrayField(cmd, 'updates'), (spec, index) => {
    const outcome = updateOne(ctx.state, ns, spec);
    n += outcome.n;
    nModified += outcome.nModified;
    if (outcome.upsertedId !== undefined) upserted.push({ index, _id: outcome.upsertedId });
  });
  const reply: Document = { n, nModified };
  if (upserted.length > 0) reply['upserted'] = upserted;
  if (writeErrors.length > 0) reply['writeErrors'] = writeErrors;
  reply['ok'] = 1;
  return reply;
}

function deleteMany(cmd: Document, ctx: CommandContext): Document {
  const { engine } = ctx.state;
  const ns = namespaceOf(ctx.db, cmd['delete']);
  checkUserWritable(ctx.state, ns);
  let n = 0;
  const writeErrors = eachWrite(cmd, ctx, 'delete', arrayField(cmd, 'deletes'), (spec) => {
    const limit = spec['limit'];
    const one = limit !== undefined && limit !== null && Number(limit.valueOf()) === 1;
    const matches = findMatching(engine, ns, (spec['q'] ?? {}) as Document, one ? 1 : Infinity);
    engine.writeTransaction(() => {
      for (const match of matches) deleteOne(ctx.state, ns, match);
    });
    n += matches.length;
  });
  return writeErrors.length > 0 ? { n, writeErrors, ok: 1 } : { n, ok: 1 };
}

export const writeCommands: Command[] = [
  { names: ['insert'], isWrite: true, run: insert },
  { names: ['update'], isWrite: true, run: update },
  { names: ['delete'], isWrite: true, run: deleteMany },
];
