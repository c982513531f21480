/** Databases, collections and indexes: the catalog commands. */
import { Long } from 'bson';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import type { CollectionMeta, IndexSpec } from '../storage/storage_engine.js';
import { ArraySource } from '../cursors.js';
import { namespaceOf, optionalDocument, ensureCollection, bsonSize, cursorBatchSize } from './common.js';
import { firstBatchReply } from './read.js';
import { compileFilter } from '../query/filter.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { logDropDatabase } from '../replication/oplog_writes.js';
import { OPLOG_NS } from '../replication/oplog.js';

function databaseSizes(ctx: CommandContext): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const meta of ctx.state.engine.listCollections()) {
    const { storageSize } = ctx.state.engine.collectionStats(meta.ns);
    sizes.set(meta.db, (sizes.get(meta.db) ?? 0) + storageSize);
  }
  return sizes;
}

/** The databases that hold a collection, without reading any table's statistics. */
function databaseNames(ctx: CommandContext): Map<string, number> {
  return new Map(ctx.state.engine.listCollections().map((meta) => [meta.db, 0]));
}

function listDatabases(cmd: Document, ctx: CommandContext): Document {
  const nameOnly = cmd['nameOnly'] === true;
  // With nameOnly, mongod reads no size (src/mongo/db/commands/list_databases.cpp: the
  // sizeOnDisk of each database is computed only `if (!nameOnly)`), and so neither do
  // we: a statistics cursor per table, on a dbpath of hundreds, blocked this server for
  // a quarter of a second, a stall no mongod has (the proxy asks nameOnly at each
  // authorization, src/cli/auth_enforcement.ts).
  const sizes = nameOnly ? databaseNames(ctx) : databaseSizes(ctx);
  const filter = optionalDocument(cmd, 'filter');
  let databases: Document[] = [...sizes.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, size]) => (nameOnly ? { name } : { name, sizeOnDisk: Long.fromNumber(size), empty: size === 0 }));
  if (filter !== undefined) databases = databases.filter(compileFilter(filter));
  if (nameOnly) return { databases, ok: 1 };
  const totalSize = [...sizes.values()].reduce((a, b) => a + b, 0);
  return { databases, totalSize: Long.fromNumber(totalSize), totalSizeMb: Long.fromNumber(Math.floor(totalSize / 1048576)), ok: 1 };
}

function collectionInfo(meta: CollectionMeta): Document {
  return {
    name: meta.name,
    type: 'collection',
    options: meta.options,
    info: { readOnly: false, uuid: meta.uuid },
    idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
  };
}

function listCollections(cmd: Document, ctx: CommandContext): Document {
  const filter = optionalDocument(cmd, 'filter');
  let infos = ctx.state.engine.listCollections(ctx.db).map(collectionInfo);
  if (filter !== undefined) infos = infos.filter(compileFilter(filter));
  if (cmd['nameOnly'] === true) infos = infos.map((info) => ({ name: info['name'], type: info['type'] }));
  return firstBatchReply(ctx, {
    ns: `${ctx.db}.$cmd.listCollections`,
    source: new ArraySource(infos, bsonSize),
    batchSize: cursorBatchSize(cmd) ?? Infinity,
  });
}

function requireCollection(ctx: CommandContext, ns: string): CollectionMeta {
  const meta = ctx.state.engine.getCollection(ns);
  if (meta === undefined) throw new DevServerError(DevServerCodes.NamespaceNotFound, `ns does not exist: ${ns}`);
  return meta;
}

function listIndexes(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['listIndexes']);
  const meta = requireCollection(ctx, ns);
  return firstBatchReply(ctx, { ns, source: new ArraySource([...meta.indexes], bsonSize), batchSize: cursorBatchSize(cmd) ?? Infinity });
}

function create(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['create']);
  const options: Document = {};
  for (const [key, value] of Object.entries(cmd)) {
    if (key === 'create' || key.startsWith('$') || key === 'lsid' || key === 'writeConcern' || key === 'txnNumber') continue;
    options[key] = value;
  }
  for (const unsupported of ['capped', 'viewOn', 'timeseries', 'clusteredIndex', 'validator']) {
    if (options[unsupported] !== undefined && options[unsupported] !== false) {
      throw new DevServerError(DevServerCodes.NotImplemented, `create option '${unsupported}' is not supported by the hotbackup dev server`);
    }
  }
  ctx.state.engine.createCollection(ns, options);
  return { ok: 1 };
}

function drop(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['drop']);
  if (ns === OPLOG_NS && ctx.state.oplog !== undefined) {
    // src/mongo/db/catalog/drop_collection.cpp; jstests/replsets/drop_oplog.js
    throw new DevServerError(DevServerCodes.IllegalOperation, "can't drop live oplog while replicating");
  }
  const meta = ctx.state.engine.getCollection(ns);
  // Since MongoDB 7.0, dropping a missing collection succeeds.
  if (meta === undefined) return { ok: 1 };
  const nIndexesWas = meta.indexes.length;
  ctx.state.engine.dropCollection(ns);
  return { nIndexesWas, ns, ok: 1 };
}

function dropDatabase(_cmd: Document, ctx: CommandContext): Document {
  if (ctx.db === 'local' && ctx.state.oplog !== undefined) {
    // src/mongo/db/catalog/drop_database.cpp; jstests/replsets/drop_oplog.js
    throw new DevServerError(DevServerCodes.IllegalOperation, "Cannot drop 'local' database while replication is active");
  }
  const collections = ctx.state.engine.listCollections(ctx.db).length;
  ctx.state.engine.dropDatabase(ctx.db);
  logDropDatabase(ctx.state, ctx.db, collections);
  return { dropped: ctx.db, ok: 1 };
}

function parseIndexSpecs(cmd: Document): IndexSpec[] {
  const specs = cmd['indexes'];
  if (!Array.isArray(specs) || specs.length === 0) {
    throw new DevServerError(DevServerCodes.BadValue, 'Must specify at least one index to create');
  }
  return specs.map((raw: unknown) => {
    const spec = raw as Document;
    const key = spec['key'];
    if (key === null || typeof key !== 'object' || Object.keys(key).length === 0) {
      throw new DevServerError(DevServerCodes.CannotCreateIndex, "The 'key' field must be a non-empty object");
    }
    if (typeof spec['name'] !== 'string' || spec['name'] === '') {
      throw new DevServerError(DevServerCodes.CannotCreateIndex, "The 'name' field must be a non-empty string");
    }
    return { v: 2, ...spec, key: key as Document, name: spec['name'] } as IndexSpec;
  });
}

function createIndexes(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['createIndexes']);
  const specs = parseIndexSpecs(cmd);
  const existed = ctx.state.engine.getCollection(ns) !== undefined;
  const before = ensureCollection(ctx.state.engine, ns).indexes.length;
  const created = ctx.state.engine.addIndexes(ns, specs);
  const reply: Document = {
    numIndexesBefore: before,
    numIndexesAfter: before + created,
    createdCollectionAutomatically: !existed,
  };
  if (created === 0) reply['note'] = 'all indexes already exist';
  reply['ok'] = 1;
  return reply;
}

function dropIndexes(cmd: Document, ctx: CommandContext): Document {
  const ns = namespaceOf(ctx.db, cmd['dropIndexes']);
  const meta = requireCollection(ctx, ns);
  const nIndexesWas = meta.indexes.length;
  const which = cmd['index'];
  const names =
    which === '*'
      ? meta.indexes.map((i) => i.name).filter((name) => name !== '_id_')
      : Array.isArray(which)
        ? (which as string[])
        : typeof which === 'string'
          ? [which]
          : meta.indexes.filter((i) => JSON.stringify(i.key) === JSON.stringify(which)).map((i) => i.name);
  if (names.length === 0 && which !== '*') {
    throw new DevServerError(DevServerCodes.IndexNotFound, `can't find index with key: ${JSON.stringify(which)}`);
  }
  for (const name of names) ctx.state.engine.dropIndex(ns, name);
  return { nIndexesWas, ok: 1 };
}

function dbStats(_cmd: Document, ctx: CommandContext): Document {
  let objects = 0;
  let dataSize = 0;
  let storageSize = 0;
  let indexes = 0;
  const collections = ctx.state.engine.listCollections(ctx.db);
  for (const meta of collections) {
    const stats = ctx.state.engine.collectionStats(meta.ns);
    objects += stats.count;
    dataSize += stats.size;
    storageSize += stats.storageSize;
    indexes += meta.indexes.length;
  }
  return {
    db: ctx.db,
    collections: collections.length,
    views: 0,
    objects,
    avgObjSize: objects === 0 ? 0 : dataSize / objects,
    dataSize,
    storageSize,
    indexes,
    indexSize: 0,
    totalSize: storageSize,
    scaleFactor: 1,
    ok: 1,
  };
}

export const catalogCommands: Command[] = [
  { names: ['listDatabases'], adminOnly: true, run: listDatabases },
  { names: ['listCollections'], run: listCollections },
  { names: ['listIndexes'], run: listIndexes },
  { names: ['create'], isWrite: true, run: create },
  { names: ['drop'], isWrite: true, run: drop },
  { names: ['dropDatabase'], isWrite: true, run: dropDatabase },
  { names: ['createIndexes'], isWrite: true, run: createIndexes },
  { names: ['dropIndexes', 'deleteIndexes'], isWrite: true, run: dropIndexes },
  { names: ['dbStats', 'dbstats'], run: dbStats },
];

