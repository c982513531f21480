/**
 * One command (`op: 'c'`) oplog entry applied as mongod applies it
 * (src/mongo/db/repl/oplog.cpp, applyCommand_inlock and its kOpsMap): each command has
 * errors it may meet on re-application, and those count as success, which is what makes
 * replaying commands idempotent:
 *   - create: NamespaceExists (the collection gets the entry's `ui` as its UUID);
 *   - drop: NamespaceNotFound;
 *   - createIndexes: IndexAlreadyExists (an identical index), NamespaceNotFound;
 *   - dropIndexes: NamespaceNotFound, IndexNotFound;
 *   - dropDatabase: NamespaceNotFound.
 * Any other error is thrown, and stops applyOps there.
 *
 * Where mongod 7.0 differs: its applyOps command refuses a createIndexes entry in its
 * default mode ("The createIndexes operation is not supported in applyOps mode"), which
 * is why mongorestore turns those entries into createIndexes commands
 * (mongo-tools mongorestore/oplog.go). The dev server applies them, in every mode.
 */
import { UUID } from 'bson';
import type { Document } from '../bson.js';
import type { ServerState } from '../state.js';
import type { CollectionMeta, IndexSpec } from '../storage/storage_engine.js';
import { CommandError } from '../../errors.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { namespaceOf } from '../handlers/common.js';
import { isPlainDocument } from './diff_apply.js';
import { logDropDatabase } from './oplog_writes.js';

/** The hex of a UUID binary (`ui`), or undefined for anything else. */
export function uuidHex(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || (value as { _bsontype?: string })._bsontype !== 'Binary') return undefined;
  const binary = value as { sub_type: number; buffer: Uint8Array };
  return binary.sub_type === 4 && binary.buffer.length === 16 ? Buffer.from(binary.buffer).toString('hex') : undefined;
}

export function collectionByUuid(state: ServerState, hex: string): CollectionMeta | undefined {
  return state.engine.listCollections().find((meta) => Buffer.from(meta.uuid.buffer).toString('hex') === hex);
}

/** `db` of an entry's `db.$cmd` namespace. */
function databaseOf(op: Document): string {
  const ns = String(op['ns']);
  const dot = ns.indexOf('.');
  return dot < 0 ? ns : ns.slice(0, dot);
}

/** extractNsFromUUIDorNs: the collection the `ui` names when there is one, else `<db>.<o's value>`. */
function targetNamespace(state: ServerState, op: Document, o: Document, name: string): string {
  const hex = uuidHex(op['ui']);
  if (hex !== undefined) {
    const meta = collectionByUuid(state, hex);
    if (meta === undefined) throw new DevServerError(DevServerCodes.NamespaceNotFound, `No namespace with UUID ${new UUID(hex).toHexString()}`);
    return meta.ns;
  }
  return namespaceOf(databaseOf(op), o[name]);
}

const UNSUPPORTED_CREATE_OPTIONS = ['capped', 'viewOn', 'timeseries', 'clusteredIndex', 'validator'];

function create(state: ServerState, op: Document, o: Document): void {
  const ns = namespaceOf(databaseOf(op), o['create']);
  const options: Document = {};
  for (const [key, value] of Object.entries(o)) {
    if (key === 'create' || key === 'idIndex') continue;
    if (UNSUPPORTED_CREATE_OPTIONS.includes(key) && value !== false) {
      throw new DevServerError(DevServerCodes.NotImplemented, `create option '${key}' is not supported by the hotbackup dev server`);
    }
    options[key] = value;
  }
  if (state.engine.getCollection(ns) !== undefined) throw new DevServerError(DevServerCodes.NamespaceExists, `Collection ${ns} already exists.`);
  const hex = uuidHex(op['ui']);
  state.engine.createCollection(ns, options, hex === undefined ? undefined : new UUID(hex));
}

function drop(state: ServerState, op: Document, o: Document): void {
  const ns = targetNamespace(state, op, o, 'drop');
  if (!state.engine.dropCollection(ns)) throw new DevServerError(DevServerCodes.NamespaceNotFound, `ns not found: ${ns}`);
}

function createIndexes(state: ServerState, op: Document, o: Document): void {
  const ns = targetNamespace(state, op, o, 'createIndexes');
  if (state.engine.getCollection(ns) === undefined) throw new DevServerError(DevServerCodes.NamespaceNotFound, `ns does not exist: ${ns}`);
  // The entry holds one index spec beside the collection name (mongod's createIndexes oplog entry).
  const { createIndexes: _collection, ...spec } = o;
  if (!isPlainDocument(spec['key']) || typeof spec['name'] !== 'string') {
    throw new DevServerError(DevServerCodes.CannotCreateIndex, "The 'key' and 'name' fields of the index spec are required");
  }
  const added = state.engine.addIndexes(ns, [{ v: 2, ...spec } as IndexSpec]);
  if (added === 0) throw new DevServerError(DevServerCodes.IndexAlreadyExists, `index already exists: ${spec['name']}`);
}

function dropIndexes(state: ServerState, op: Document, o: Document): void {
  const ns = targetNamespace(state, op, o, 'dropIndexes');
  const index = o['index'];
  if (typeof index !== 'string') throw new DevServerError(DevServerCodes.NotImplemented, 'applyOps dropIndexes by key pattern is not supported by the hotbackup dev server');
  state.engine.dropIndex(ns, index);
}

function dropDatabase(state: ServerState, op: Document): void {
  const db = databaseOf(op);
  const collections = state.engine.listCollections(db).length;
  if (collections === 0) throw new DevServerError(DevServerCodes.NamespaceNotFound, `database ${db} not found`);
  state.engine.dropDatabase(db);
  // On a replica set the drop is logged as the dropDatabase command logs it: mongod logs
  // what applyOps applies (apply_ops.cpp runs each op with replication on).
  logDropDatabase(state, db, collections);
}

interface CommandRule {
  apply(state: ServerState, op: Document, o: Document): void;
  acceptable: readonly number[];
}

const RULES: Readonly<Record<string, CommandRule>> = {
  create: { apply: create, acceptable: [DevServerCodes.NamespaceExists] },
  drop: { apply: drop, acceptable: [DevServerCodes.NamespaceNotFound] },
  createIndexes: { apply: createIndexes, acceptable: [DevServerCodes.IndexAlreadyExists, DevServerCodes.NamespaceNotFound] },
  dropIndexes: { apply: dropIndexes, acceptable: [DevServerCodes.NamespaceNotFound, DevServerCodes.IndexNotFound] },
  deleteIndexes: { apply: dropIndexes, acceptable: [DevServerCodes.NamespaceNotFound, DevServerCodes.IndexNotFound] },
  dropDatabase: { apply: dropDatabase, acceptable: [DevServerCodes.NamespaceNotFound] },
};

/** Commands mongod's kOpsMap knows and the dev server does not apply. */
const KNOWN_ELSEWHERE = new Set([
  'renameCollection', 'collMod', 'convertToCapped', 'emptycapped', 'applyOps', 'startIndexBuild', 'commitIndexBuild',
  'abortIndexBuild', 'commitTransaction', 'abortTransaction', 'dbCheck', 'importCollection',
]);

/** The command names the dev server applies, for the privilege check. */
export const APPLIED_COMMANDS: readonly string[] = Object.keys(RULES);

export function applyCommandEntry(state: ServerState, op: Document): void {
  const o = op['o'];
  if (!isPlainDocument(o) || Object.keys(o).length === 0) {
    throw new DevServerError(DevServerCodes.FailedToParse, "BSON field 'applyOps.o' is missing but a required field");
  }
  const name = Object.keys(o)[0] as string;
  const rule = Object.hasOwn(RULES, name) ? RULES[name] : undefined;
  if (rule === undefined) {
    if (KNOWN_ELSEWHERE.has(name)) throw new DevServerError(DevServerCodes.NotImplemented, `applyOps of a '${name}' entry is not supported by the hotbackup dev server`);
    throw new DevServerError(DevServerCodes.BadValue, `Invalid key '${name}' found in field 'o'`);
  }
  try {
    rule.apply(state, op, o);
  } catch (err) {
    if (err instanceof CommandError && rule.acceptable.includes(err.code)) return;
    throw err;
  }
}
