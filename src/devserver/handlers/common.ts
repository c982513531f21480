/** Small pieces several command families share: namespaces, numeric options, matching. */
import { calculateObjectSize, type Document as BsonDocument } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument } from '../bson.js';
import type { StorageEngine, CollectionMeta } from '../storage/storage_engine.js';
import { compileFilter } from '../query/filter.js';
import { isNumeric, toNumber } from '../query/values.js';
import { CommandError, ErrorCodes } from '../../errors.js';

/** `<db>.<collection>` from the command's first value, checked as mongod checks it. */
export function namespaceOf(db: string, collection: unknown): string {
  if (typeof collection !== 'string') {
    throw new CommandError(
      ErrorCodes.InvalidNamespace,
      `collection name has invalid type ${collection === null ? 'null' : typeof collection}`,
    );
  }
  if (collection === '' || collection.includes('\0') || collection.startsWith('.') || collection.includes('$')) {
    throw new CommandError(ErrorCodes.InvalidNamespace, `Invalid namespace specified '${db}.${collection}'`);
  }
  return `${db}.${collection}`;
}

/** Like namespaceOf, but also accepts the `$cmd.` pseudo-collections that command cursors live in. */
export function cursorNamespaceOf(db: string, collection: unknown): string {
  if (typeof collection === 'string' && /^\$cmd\.(aggregate|listCollections|listIndexes)/.test(collection)) {
    return `${db}.${collection}`;
  }
  return namespaceOf(db, collection);
}

export function collectionName(ns: string): string {
  return ns.slice(ns.indexOf('.') + 1);
}

/** Writes create their collection on first use, as in mongod. */
export function ensureCollection(engine: StorageEngine, ns: string): CollectionMeta {
  return engine.getCollection(ns) ?? engine.createCollection(ns);
}

/** An optional non-negative integer option (skip, limit, batchSize). */
export function optionalCount(cmd: Document, field: string): number | undefined {
  const value = cmd[field];
  if (value === undefined || value === null) return undefined;
  if (!isNumeric(value)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `Field '${field}' should be a number, found ${typeof value}`);
  }
  const n = toNumber(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new CommandError(ErrorCodes.BadValue, `${field} must be a non-negative integer, got ${n}`);
  }
  return n;
}

export function optionalDocument(cmd: Document, field: string): Document | undefined {
  const value = cmd[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${field}' is the wrong type, expected an object`);
  }
  return value as Document;
}

/** `cursor: {batchSize}` of aggregate and the listings; undefined when absent. */
export function cursorBatchSize(cmd: Document): number | undefined {
  const cursor = optionalDocument(cmd, 'cursor');
  return cursor === undefined ? undefined : optionalCount(cursor, 'batchSize');
}

/** `{aggregate: 1}`: a pipeline that reads no collection. The 1 arrives as a BSON Int32 or Double. */
export function isCollectionless(cmd: Document): boolean {
  const target = cmd['aggregate'];
  return isNumeric(target) && toNumber(target) === 1;
}

/** `{writeConcern: {j: true}}` means: acknowledge only once the journal is on disk. */
export function wantsJournal(cmd: Document): boolean {
  const wc = cmd['writeConcern'];
  return wc !== null && typeof wc === 'object' && (wc as Document)['j'] === true;
}

export function bsonSize(doc: Document): number {
  return calculateObjectSize(doc as BsonDocument);
}

export interface MatchedRecord {
  rid: number;
  doc: Document;
}

/** A plain `_id` equality can use the real `_id` index instead of a scan. */
function idEquality(filter: Document): { id: unknown } | undefined {
  if (!('_id' in filter)) return undefined;
  const id = filter['_id'];
  // Operators, sub-documents and arrays go through the scan, which knows their semantics.
  const isScalar = id === null || typeof id !== 'object' || !isPlainObjectOrArray(id);
  return isScalar ? { id } : undefined;
}

function isPlainObjectOrArray(value: object): boolean {
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Every record matching `filter`, up to `limit`. Results are collected before any
 * write happens, because committing a WiredTiger transaction resets open cursors.
 */
export function findMatching(engine: StorageEngine, ns: string, filter: Document, limit = Infinity): MatchedRecord[] {
  const matches = compileFilter(filter);
  if (engine.getCollection(ns) === undefined || limit <= 0) return [];
  const byId = idEquality(filter);
  if (byId !== undefined) {
    const entry = engine.findRecordById(ns, byId.id);
    if (entry === undefined) return [];
    const doc = decodeDocument(entry.doc);
    return matches(doc) ? [{ rid: entry.rid, doc }] : [];
  }
  const out: MatchedRecord[] = [];
  for (const entry of engine.scanRecords(ns)) {
    const doc = decodeDocument(entry.doc);
    if (!matches(doc)) continue;
    out.push({ rid: entry.rid, doc });
    if (out.length >= limit) break;
  }
  return out;
}

/** How a per-document failure appears in a write reply's `writeErrors`. */
export function writeErrorEntry(index: number, err: unknown): Document {
  if (err instanceof CommandError) {
    return { index, code: err.code, codeName: err.codeName, errmsg: err.message, ...err.extra };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { index, code: ErrorCodes.InternalError, codeName: 'InternalError', errmsg: message };
}
