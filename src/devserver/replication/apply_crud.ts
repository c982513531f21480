/**
 * One insert, update or delete oplog entry applied as mongod's applyOps command applies
 * it (src/mongo/db/repl/oplog.cpp, applyOperation_inlock, in kApplyOpsCmd mode, without
 * a wrapping write unit of work):
 *   - insert: an insert; when the `_id` exists (DuplicateKey), retried as an upsert that
 *     replaces the document: re-applying an insert is therefore harmless;
 *   - update (by `o2._id`): a `$v: 2` diff, a classic modifier update, or a replacement;
 *     an upsert when the entry says `b: true` or applyOps' alwaysUpsert is true (its
 *     default). Otherwise an update matching nothing is a failed status,
 *     UpdateOperationFailed: "Failed to apply update" for a diff or modifiers, "Update of
 *     non-mod failed" for a replacement;
 *   - delete (by `o._id`): deleting a missing document succeeds.
 *
 * A failed status is returned (applyOps records `false` and goes on to the next entry);
 * an exception is thrown (applyOps stops there). Writes go through write.ts's document
 * writes, those of the write commands.
 */
import { EJSON } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument, encodeDocument } from '../bson.js';
import type { ServerState } from '../state.js';
import { insertOne, replaceOne, deleteOne, withId } from '../handlers/write.js';
import { compileUpdate } from '../query/update.js';
import { valuesEqual } from '../query/values.js';
import { CommandError } from '../../errors.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { applyDiff, isPlainDocument } from './diff_apply.js';

/** How mongod prints an entry in these messages (redact(op.toBSONForLogging())), near enough. */
export function describeEntry(op: Document): string {
  return EJSON.stringify(op, { relaxed: true });
}

function objectField(op: Document, field: 'o' | 'o2'): Document {
  const value = op[field];
  if (!isPlainDocument(value)) {
    throw new DevServerError(DevServerCodes.FailedToParse, `BSON field 'applyOps.${field}' is ${value === undefined ? 'missing but a required field' : 'the wrong type, expected an object'}`);
  }
  return value;
}

function requireId(doc: Document, op: Document, what: 'insert' | 'update' | 'delete'): unknown {
  if (!('_id' in doc)) throw new DevServerError(DevServerCodes.NoSuchKey, `Failed to apply ${what} due to missing _id: ${describeEntry(op)}`);
  return doc['_id'];
}

function findById(state: ServerState, ns: string, id: unknown): { rid: number; doc: Document } | undefined {
  const entry = state.engine.findRecordById(ns, id);
  return entry === undefined ? undefined : { rid: entry.rid, doc: decodeDocument(entry.doc) };
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof CommandError && err.code === DevServerCodes.DuplicateKey;
}

function applyInsert(state: ServerState, ns: string, op: Document): void {
  const o = objectField(op, 'o');
  const id = requireId(o, op, 'insert');
  state.opcounters.insert += 1;
  try {
    insertOne(state, ns, o);
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    // "Continue to the next block to retry the operation as an upsert": the entry's
    // document replaces the one already there (oplog.cpp, kInsert).
    const existing = findById(state, ns, id);
    if (existing === undefined) throw err;
    replaceOne(state, ns, existing, withId(o), true);
  }
}

type UpdateKind = 'diff' | 'modifier' | 'replacement';

function updateKind(o: Document): UpdateKind {
  if ('$v' in o) return Number((o['$v'] as { valueOf(): unknown }).valueOf()) === 2 ? 'diff' : 'modifier';
  return Object.keys(o).some((key) => key.startsWith('$')) ? 'modifier' : 'replacement';
}

/** The document `o` makes of `pre` (mongod's UpdateModification::parseFromOplogEntry, then the executor). */
function updated(pre: Document, o: Document, kind: UpdateKind, isInsert: boolean): Document {
  if (kind === 'diff') {
    const diff = o['diff'];
    if (!isPlainDocument(diff)) throw new DevServerError(DevServerCodes.FailedToParse, "the 'diff' field of a $v: 2 update must be an object");
    return applyDiff(pre, diff);
  }
  if (kind === 'replacement') return withId({ _id: pre['_id'], ...o });
  const { $v: _version, ...modifiers } = o;
  return compileUpdate(modifiers).apply(pre, { isInsert }).doc;
}

function applyUpdate(state: ServerState, ns: string, op: Document, alwaysUpsert: boolean): DevServerError | undefined {
  const o = objectField(op, 'o');
  const id = requireId(objectField(op, 'o2'), op, 'update');
  const kind = updateKind(o);
  state.opcounters.update += 1;
  const target = findById(state, ns, id);
  if (target !== undefined) {
    const after = updated(target.doc, o, kind, false);
    if (!valuesEqual(after['_id'], id)) {
      throw new DevServerError(DevServerCodes.ImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'");
    }
    // Unchanged bytes, no write (mongod's update is a no-op then); 1 and 1.0 differ here.
    if (!encodeDocument(after).equals(encodeDocument(target.doc))) replaceOne(state, ns, target, after, kind === 'replacement');
    return undefined;
  }
  if (op['b'] === true || alwaysUpsert) {
    insertOne(state, ns, updated({ _id: id }, o, kind, true));
    return undefined;
  }
  const message = kind === 'replacement' ? 'Update of non-mod failed' : 'Failed to apply update';
  return new DevServerError(DevServerCodes.UpdateOperationFailed, `${message}: ${describeEntry(op)}`);
}

function applyDelete(state: ServerState, ns: string, op: Document): void {
  const id = requireId(objectField(op, 'o'), op, 'delete');
  state.opcounters.delete += 1;
  const target = findById(state, ns, id);
  if (target !== undefined) deleteOne(state, ns, target);
}

/** Applies one CRUD entry to the existing collection `ns`; returns a failed status, or throws. */
export function applyCrudEntry(state: ServerState, ns: string, op: Document, alwaysUpsert: boolean): DevServerError | undefined {
  switch (op['op']) {
    case 'i':
      applyInsert(state, ns, op);
      return undefined;
    case 'u':
      return applyUpdate(state, ns, op, alwaysUpsert);
    case 'd':
      applyDelete(state, ns, op);
      return undefined;
    default:
      // OplogEntry::parse refuses an op type it does not know (an IDL enum).
      throw new DevServerError(DevServerCodes.BadValue, `Enumeration value '${String(op['op'])}' for field 'op' is not a valid value.`);
  }
}
