/**
 * `find` on local.oplog.rs and the tailable-cursor rules of mongod's find for every
 * collection (src/mongo/db/query/query_request_helper.cpp validateFindCommandRequest,
 * src/mongo/db/query/get_executor.cpp; find.cpp shouldSaveCursor).
 */
import type { Document } from '../bson.js';
import type { CommandContext } from '../handlers/handler.js';
import { firstBatchReply } from '../handlers/read.js';
import { ArraySource } from '../cursors.js';
import { bsonSize } from '../handlers/common.js';
import { compileSort } from '../query/sort.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import type { StorageEngine } from '../storage/storage_engine.js';
import { Oplog, OPLOG_NS } from './oplog.js';
import { OplogSource } from './oplog_cursor.js';

export interface FindOptions {
  filter: Document;
  sortSpec: Document | undefined;
  project: ((doc: Document) => Document) | undefined;
  skip: number;
  limit: number;
  batchSize: number | undefined;
  singleBatch: boolean;
  tailable: boolean;
  awaitData: boolean;
}

/** The option checks mongod makes before planning. */
export function checkTailableOptions(cmd: Document): void {
  const tailable = cmd['tailable'] === true;
  if (cmd['awaitData'] === true && !tailable) {
    throw new DevServerError(DevServerCodes.FailedToParse, "Cannot set 'awaitData' without also setting 'tailable'");
  }
  if (!tailable) return;
  const sort = cmd['sort'] as Document | undefined;
  const keys = sort === undefined || sort === null ? [] : Object.keys(sort);
  if (keys.length > 0 && !(keys.length === 1 && keys[0] === '$natural' && Number(sort?.['$natural']?.valueOf()) === 1)) {
    throw new DevServerError(DevServerCodes.BadValue, 'cannot use tailable option with a sort other than {$natural: 1}');
  }
  if (cmd['singleBatch'] === true) {
    throw new DevServerError(DevServerCodes.BadValue, "cannot use tailable option with the 'singleBatch' option");
  }
}

/** Tailable on a collection that is not capped: BadValue, as get_executor.cpp. */
export function checkCapped(ctx: CommandContext, ns: string, tailable: boolean): void {
  if (!tailable) return;
  const meta = ctx.state.engine.getCollection(ns);
  if (meta !== undefined && meta.options['capped'] !== true) {
    throw new DevServerError(DevServerCodes.BadValue, `error processing query: ns=${ns} tailable cursor requested on non capped collection`);
  }
}

/** The natural direction a sort asks for, when it asks for one the key order gives. */
function direction(sortSpec: Document | undefined): 1 | -1 | undefined {
  if (sortSpec === undefined) return 1;
  const keys = Object.keys(sortSpec);
  if (keys.length === 0) return 1;
  if (keys.length !== 1 || (keys[0] !== '$natural' && keys[0] !== 'ts')) return undefined;
  return Number((sortSpec[keys[0] as string] as { valueOf(): unknown }).valueOf()) < 0 ? -1 : 1;
}

/** Undefined when ns is not the oplog (or this dbpath has none): the caller's find goes on. */
export function findOnOplog(ctx: CommandContext, ns: string, opts: FindOptions): Document | undefined {
  if (ns !== OPLOG_NS) return undefined;
  const table = ctx.state.engine.keyedTable(ns);
  const oplog = ctx.state.oplog ?? readOnlyOplog(ctx.state.engine);
  if (table === undefined || oplog === undefined) return undefined;
  const dir = direction(opts.sortSpec);
  const source = new OplogSource(oplog, table, {
    filter: opts.filter,
    reverse: dir === -1,
    skip: dir === undefined ? 0 : opts.skip,
    limit: dir === undefined ? 0 : opts.limit,
    project: dir === undefined ? undefined : opts.project,
    tailable: opts.tailable,
    awaitData: opts.awaitData,
  });
  if (dir !== undefined) {
    // mongod keeps a tailable cursor unless the collection is empty (find.cpp shouldSaveCursor).
    const empty = oplog.lastApplied() === undefined;
    return firstBatchReply(ctx, { ns, source, batchSize: opts.batchSize, singleBatch: opts.singleBatch || (opts.tailable && empty) });
  }
  // Any other sort: read it all, then sort as any collection's find does.
  let docs = source.next(Infinity, Infinity);
  source.close();
  docs.sort(compileSort(opts.sortSpec as Document));
  docs = docs.slice(opts.skip, opts.limit > 0 ? opts.skip + opts.limit : undefined);
  if (opts.project !== undefined) docs = docs.map(opts.project);
  return firstBatchReply(ctx, { ns, source: new ArraySource(docs, bsonSize), batchSize: opts.batchSize, singleBatch: opts.singleBatch });
}

/**
 * A standalone (a restored copy, say) still reads its oplog, but writes none: its
 * Oplog is opened without becoming the engine's catalog observer.
 */
const readers = new WeakMap<StorageEngine, Oplog>();

function readOnlyOplog(engine: StorageEngine): Oplog | undefined {
  let oplog = readers.get(engine);
  if (oplog === undefined) {
    oplog = Oplog.open(engine, { readOnly: true });
    if (oplog !== undefined) readers.set(engine, oplog);
  }
  return oplog;
}
