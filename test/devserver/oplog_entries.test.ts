/**
 * local.oplog.rs on a --replSet dev server: every write's entry in mongod 7.0's shape,
 * through the real driver.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Long, MongoClient, MongoServerError, Timestamp, UUID, type Document } from 'mongodb';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import type { RunningDevServer } from '../helpers/dev_server.js';

/** What every entry carries besides its op-specific fields, in mongod's order. */
function assertCommonFields(entry: Document): void {
  const keys = Object.keys(entry);
  assert.deepEqual(keys.slice(-4), ['ts', 't', 'v', 'wall'], JSON.stringify(keys));
  assert.ok(entry['ts'] instanceof Timestamp);
  assert.deepEqual(entry['t'], Long.fromNumber(1));
  assert.deepEqual(entry['v'], Long.fromNumber(2));
  assert.ok(entry['wall'] instanceof Date);
}

/** The entries after `since`, without ts/t/v/wall, in order. */
async function entriesSince(client: MongoClient, since: Timestamp): Promise<Document[]> {
  const entries = await client.db('local').collection('oplog.rs').find({ ts: { $gt: since } }, { promoteLongs: false }).toArray();
  for (const entry of entries) assertCommonFields(entry);
  return entries.map(({ ts: _ts, t: _t, v: _v, wall: _wall, ...rest }) => rest);
}

async function uuidOf(client: MongoClient, db: string, name: string): Promise<UUID> {
  const [info] = await client.db(db).listCollections({ name }, { nameOnly: false }).toArray();
  const uuid = (info as Document | undefined)?.['info']?.['uuid'] as unknown;
  assert.ok(uuid instanceof UUID);
  return uuid;
}

async function lastTs(client: MongoClient): Promise<Timestamp> {
  const [last] = await client.db('local').collection('oplog.rs').find().sort({ $natural: -1 }).limit(1).toArray();
  return (last as Document)['ts'] as Timestamp;
}

describe('oplog entries', () => {
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startReplDevServer();
    client = new MongoClient(server.uri);
    await client.connect();
  });

  after(async () => {
    await client.close();
    await server.stop();
    server.cleanup();
  });

  it('starts with the initiating no-op', async () => {
    const [first] = await client.db('local').collection('oplog.rs').find().limit(1).toArray();
    assert.deepEqual({ op: first?.['op'], ns: first?.['ns'], o: first?.['o'] }, { op: 'n', ns: '', o: { msg: 'initiating set' } });
  });

  it('logs create, insert, update diffs, replacement, upserts, findAndModify, delete', async () => {
    const since = await lastTs(client);
    const coll = client.db('shapes').collection<{ _id: number; a?: number; r?: number; n?: string; u?: number; f?: number; sub?: { x: number }; arr?: number[] }>('c');
    await coll.insertMany([{ _id: 1, a: 1, sub: { x: 1 }, arr: [1, 2, 3] }, { _id: 2 }]);
    await coll.updateOne({ _id: 1 }, { $set: { 'sub.x': 2, n: 'new' }, $unset: { a: '' }, $push: { arr: 4 } });
    await coll.updateOne({ _id: 1 }, { $set: { n: 'new' } }); // a no-op: not logged
    await coll.replaceOne({ _id: 2 }, { r: 1 });
    await coll.updateOne({ _id: 3 }, { $set: { u: 1 } }, { upsert: true });
    await coll.findOneAndUpdate({ _id: 2 }, { $inc: { r: 1 } });
    await coll.findOneAndUpdate({ _id: 4 }, { $set: { f: 1 } }, { upsert: true });
    await coll.findOneAndDelete({ _id: 4 });
    await coll.deleteMany({ _id: { $in: [1, 2] } });
    const ui = await uuidOf(client, 'shapes', 'c');
    const ns = 'shapes.c';
    assert.deepEqual(await entriesSince(client, since), [
      { op: 'c', ns: 'shapes.$cmd', ui, o: { create: 'c', idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } } },
      { op: 'i', ns, ui, o: { _id: 1, a: 1, sub: { x: 1 }, arr: [1, 2, 3] }, o2: { _id: 1 } },
      { op: 'i', ns, ui, o: { _id: 2 }, o2: { _id: 2 } },
      { op: 'u', ns, ui, o: { $v: 2, diff: { d: { a: false }, i: { n: 'new' }, ssub: { u: { x: 2 } }, sarr: { a: true, u3: 4 } } }, o2: { _id: 1 } },
      { op: 'u', ns, ui, o: { _id: 2, r: 1 }, o2: { _id: 2 } },
      { op: 'i', ns, ui, o: { _id: 3, u: 1 }, o2: { _id: 3 } },
      { op: 'u', ns, ui, o: { $v: 2, diff: { u: { r: 2 } } }, o2: { _id: 2 } },
      { op: 'i', ns, ui, o: { _id: 4, f: 1 }, o2: { _id: 4 } },
      { op: 'd', ns, ui, o: { _id: 4 } },
      { op: 'd', ns, ui, o: { _id: 1 } },
      { op: 'd', ns, ui, o: { _id: 2 } },
    ]);
  });

  it('logs createIndexes, dropIndexes, drop and dropDatabase on <db>.$cmd', async () => {
    const db = client.db('ddl');
    await db.createCollection('k');
    const ui = await uuidOf(client, 'ddl', 'k');
    await db.collection<{ _id: number }>('k').insertOne({ _id: 1 });
    const since = await lastTs(client);
    await db.collection('k').createIndex({ a: 1 }, { name: 'a_1' });
    await db.collection('k').dropIndex('a_1');
    await db.collection('k').drop();
    await db.collection<{ _id: number }>('other').insertOne({ _id: 1 });
    const otherUi = await uuidOf(client, 'ddl', 'other');
    await db.dropDatabase();
    const entries = await entriesSince(client, since);
    assert.deepEqual(entries, [
      { op: 'c', ns: 'ddl.$cmd', ui, o: { createIndexes: 'k', v: 2, key: { a: 1 }, name: 'a_1' } },
      { op: 'c', ns: 'ddl.$cmd', ui, o: { dropIndexes: 'k', index: 'a_1' }, o2: { v: 2, key: { a: 1 }, name: 'a_1' } },
      { op: 'c', ns: 'ddl.$cmd', ui, o: { drop: 'k' }, o2: { numRecords: 1 } },
      { op: 'c', ns: 'ddl.$cmd', ui: otherUi, o: { create: 'other', idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } } },
      { op: 'i', ns: 'ddl.other', ui: otherUi, o: { _id: 1 }, o2: { _id: 1 } },
      { op: 'c', ns: 'ddl.$cmd', ui: otherUi, o: { drop: 'other' }, o2: { numRecords: 1 } },
      { op: 'c', ns: 'ddl.$cmd', o: { dropDatabase: 1 } },
    ]);
  });

  it('logs no write to the local database', async () => {
    const since = await lastTs(client);
    await client.db('local').collection<{ _id: number }>('scratch').insertOne({ _id: 1 });
    await client.db('local').collection<{ _id: number }>('scratch').deleteOne({ _id: 1 });
    assert.deepEqual(await entriesSince(client, since), []);
  });

  it('refuses user writes to the oplog as mongod does (InvalidNamespace)', async () => {
    const oplog = client.db('local').collection('oplog.rs');
    await assert.rejects(oplog.insertOne({ op: 'n' }), (err: MongoServerError) => err.code === 73);
    await assert.rejects(oplog.deleteMany({}), (err: MongoServerError) => err.code === 73);
    await assert.rejects(client.db('local').command({ drop: 'oplog.rs' }), (err: MongoServerError) => err.code === 20);
  });

  it('reads from a ts by search, forwards and backwards, with limit and projection', async () => {
    const coll = client.db('read').collection<{ _id: number }>('r');
    for (let i = 0; i < 5; i++) await coll.insertOne({ _id: i });
    const oplog = client.db('local').collection('oplog.rs');
    const mine = await oplog.find({ ns: 'read.r', op: 'i' }).toArray();
    const third = mine[2]?.['ts'] as Timestamp;
    const fromThird = await oplog.find({ ts: { $gte: third }, ns: 'read.r' }, { projection: { _id: 0, o: 1 } }).toArray();
    assert.deepEqual(fromThird, [{ o: { _id: 2 } }, { o: { _id: 3 } }, { o: { _id: 4 } }]);
    const backwards = await oplog.find({ ts: { $lte: third }, ns: 'read.r', op: 'i' }).sort({ $natural: -1 }).limit(2).toArray();
    assert.deepEqual(backwards.map((e) => e['o']), [{ _id: 2 }, { _id: 1 }]);
    const byTs = await oplog.find({ ns: 'read.r', op: 'i' }).sort({ ts: -1 }).limit(1).toArray();
    assert.deepEqual(byTs[0]?.['o'], { _id: 4 });
    const exact = await oplog.find({ ts: third }).toArray();
    assert.deepEqual(exact.map((e) => e['o']), [{ _id: 2 }]);
  });
});
