/** find, getMore, killCursors, count and distinct. */
import { Long } from 'bson';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { ArraySource, MAX_BATCH_BYTES, type CursorSource, type ServerCursor } from '../cursors.js';
import { namespaceOf, cursorNamespaceOf, optionalCount, optionalDocument, findMatching, bsonSize } from './common.js';
import { compileSort } from '../query/sort.js';
import { compileProjection } from '../query/projection.js';
import { distinctValues } from '../query/aggregate.js';
import { isNumeric, toNumber } from '../query/values.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { checkCapped, checkTailableOptions, findOnOplog } from '../replication/oplog_find.js';
import { parseMaxTimeMS } from '../max_time.js';

/** mongod's default size of a first batch. */
const DEFAULT_FIRST_BATCH = 101;

const UNSUPPORTED_FIND_OPTIONS = ['min', 'max', 'returnKey', 'showRecordId', 'let'];
/** What an awaitData getMore waits without a maxTimeMS: mongod's default (getmore_cmd.cpp). */
const DEFAULT_AWAIT_DATA_MS = 1000;

export interface CursorReply {
  ns: string;
  source: CursorSource;
  batchSize: number | undefined;
  singleBatch?: boolean;
  tailable?: boolean;
}

/** Registers a cursor when more remains, and builds mongod's `{cursor: {firstBatch, id, ns}}`. */
export function firstBatchReply(ctx: CommandContext, reply: CursorReply): Document {
  const batch = reply.source.next(reply.batchSize ?? DEFAULT_FIRST_BATCH, MAX_BATCH_BYTES);
  let id = Long.fromNumber(0);
  if (reply.singleBatch === true || (reply.source.exhausted && reply.tailable !== true)) {
    reply.source.close();
  } else {
    id = ctx.state.cursors.register(reply.ns, reply.source, reply.tailable === true, ctx.lsid).id;
  }
  return { cursor: { firstBatch: batch, id, ns: reply.ns }, ok: 1 };
}

function find(cmd: Document, ctx: CommandContext): Document {
  ctx.state.opcounters.query += 1;
  const ns = namespaceOf(ctx.db, cmd['find']);
  for (const option of UNSUPPORTED_FIND_OPTIONS) {
    if (cmd[option] !== undefined && cmd[option] !== false) {
      throw new DevServerError(DevServerCodes.NotImplemented, `find option '${option}' is not supported by the hotbackup dev server`);
    }
  }
  const filter = optionalDocument(cmd, 'filter') ?? {};
  const sortSpec = optionalDocument(cmd, 'sort');
  const projectionSpec = optionalDocument(cmd, 'projection');
  const skip = optionalCount(cmd, 'skip') ?? 0;
  const rawLimit = cmd['limit'];
  // Legacy negative limits mean "this many, in one batch".
  const negativeLimit = isNumeric(rawLimit) && toNumber(rawLimit) < 0;
  const limit = negativeLimit ? Math.abs(toNumber(rawLimit)) : optionalCount(cmd, 'limit') ?? 0;
  const batchSize = optionalCount(cmd, 'batchSize');

  checkTailableOptions(cmd);
  const tailable = cmd['tailable'] === true;
  const project = projectionSpec !== undefined && Object.keys(projectionSpec).length > 0 ? compileProjection(projectionSpec) : undefined;
  // oplogReplay is accepted and ignored, as since 4.4: the ts bound is used regardless.
  const onOplog = findOnOplog(ctx, ns, {
    filter, sortSpec, project, skip, limit,
    batchSize: negativeLimit ? limit : batchSize,
    singleBatch: cmd['singleBatch'] === true || negativeLimit,
    tailable, awaitData: cmd['awaitData'] === true,
  });
  if (onOplog !== undefined) return onOplog;
  checkCapped(ctx, ns, tailable);
  const sort = sortSpec !== undefined && Object.keys(sortSpec).length > 0 ? compileSort(sortSpec) : undefined;
  // Without a sort, scanning can stop as soon as skip + limit documents matched.
  const wanted = sort === undefined && limit > 0 ? skip + limit : Infinity;
  let docs = findMatching(ctx.state.engine, ns, filter, wanted).map((m) => m.doc);
  if (sort !== undefined) docs.sort(sort);
  docs = docs.slice(skip, limit > 0 ? skip + limit : undefined);
  if (project !== undefined) docs = docs.map(project);

  return firstBatchReply(ctx, {
    ns,
    source: new ArraySource(docs, bsonSize),
    batchSize: negativeLimit ? limit : batchSize,
    singleBatch: cmd['singleBatch'] === true || negativeLimit,
  });
}

/**
 * An awaitData cursor with nothing new waits, woken by commits, up to maxTimeMS (or
 * mongod's default 1 s), then answers an empty batch and stays open. A kill of the
 * cursor meanwhile (`pinned` aborts) fails the getMore with the kill's CursorKilled.
 */
async function awaitBatch(cursor: ServerCursor, cmd: Document, ctx: CommandContext, pinned: AbortSignal, next: () => Document[]): Promise<Document[]> {
  const source = cursor.source as CursorSource & { awaitData?: boolean; waitForData?: (signal: AbortSignal) => Promise<void> };
  let batch = next();
  if (batch.length > 0 || source.awaitData !== true || source.waitForData === undefined) return batch;
  // At most INT_MAX, which a Node timer takes: the dispatcher refused anything above.
  const maxTimeMS = cmd['maxTimeMS'] === undefined ? DEFAULT_AWAIT_DATA_MS : parseMaxTimeMS(cmd);
  const timeout = AbortSignal.timeout(Math.max(1, maxTimeMS));
  const signal = AbortSignal.any([timeout, ctx.signal, pinned]);
  while (batch.length === 0 && !source.exhausted) {
    try {
      await source.waitForData(signal);
    } catch {
      if (pinned.aborted) throw pinned.reason;
      return batch;
    }
    if (pinned.aborted) throw pinned.reason;
    batch = next();
  }
  return batch;
}

async function getMore(cmd: Document, ctx: CommandContext): Promise<Document> {
  ctx.state.opcounters.getmore += 1;
  const rawId = cmd['getMore'];
  if (!(rawId instanceof Long)) {
    throw new DevServerError(DevServerCodes.TypeMismatch, "BSON field 'getMore.getMore' is the wrong type, expected type 'long'");
  }
  const ns = cursorNamespaceOf(ctx.db, cmd['collection']);
  const cursor = ctx.state.cursors.get(rawId, ns, ctx.lsid);
  const batchSize = optionalCount(cmd, 'batchSize') ?? Infinity;
  let batch: Document[];
  const pinned = ctx.state.cursors.pin(cursor);
  try {
    batch = await awaitBatch(cursor, cmd, ctx, pinned, () => cursor.source.next(batchSize === 0 ? Infinity : batchSize, MAX_BATCH_BYTES));
  } catch (err) {
    // A getMore that fails kills its cursor, as mongod's (getmore_cmd.cpp, cursorFreer).
    ctx.state.cursors.unpin(cursor, pinned);
    ctx.state.cursors.kill(cursor.id);
    throw err;
  }
  ctx.state.cursors.unpin(cursor, pinned);
  let id = cursor.id;
  if (cursor.source.exhausted && !cursor.tailable) {
    ctx.state.cursors.kill(cursor.id);
    id = Long.fromNumber(0);
  }
  return { cursor: { nextBatch: batch, id, ns }, ok: 1 };
}

/**
 * Any session (or none) may kill any cursor: mongod checks only authorization here
 * (killcursors_common.h, checkAuthForKillCursors), never the lsid. An id that is already
 * gone is not an error: it is listed in cursorsNotFound.
 */
function killCursors(cmd: Document, ctx: CommandContext): Document {
  cursorNamespaceOf(ctx.db, cmd['killCursors']);
  const ids = cmd['cursors'];
  if (!Array.isArray(ids)) {
    throw new DevServerError(DevServerCodes.FailedToParse, "BSON field 'killCursors.cursors' is missing but a required field");
  }
  const cursorsKilled: Long[] = [];
  const cursorsNotFound: Long[] = [];
  for (const id of ids) {
    const long = id instanceof Long ? id : Long.fromNumber(toNumber(id));
    (ctx.state.cursors.kill(long) ? cursorsKilled : cursorsNotFound).push(long);
  }
  return { cursorsKilled, cursorsNotFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
}

function count(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['count']);
  const query = optionalDocument(cmd, 'query') ?? {};
  const skip = optionalCount(cmd, 'skip') ?? 0;
  const limit = optionalCount(cmd, 'limit') ?? 0;
  let n: number;
  if (Object.keys(query).length === 0 && ctx.state.engine.getCollection(ns) !== undefined) {
    n = ctx.state.engine.countRecords(ns);
  } else {
    n = findMatching(ctx.state.engine, ns, query).length;
  }
  n = Math.max(0, n - skip);
  if (limit > 0) n = Math.min(n, limit);
  return { n, ok: 1 };
}

function distinct(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['distinct']);
  const key = cmd['key'];
  if (typeof key !== 'string') {
    throw new DevServerError(DevServerCodes.TypeMismatch, "BSON field 'distinct.key' is the wrong type, expected type 'string'");
  }
  const query = optionalDocument(cmd, 'query') ?? {};
  const docs = findMatching(ctx.state.engine, ns, query).map((m) => m.doc);
  return { values: distinctValues(docs, key), ok: 1 };
}

export const readCommands: Command[] = [
  { names: ['find'], run: find },
  { names: ['getMore'], run: getMore },
  { names: ['killCursors'], run: killCursors },
  { names: ['count'], run: count },
  { names: ['distinct'], run: distinct },
];
