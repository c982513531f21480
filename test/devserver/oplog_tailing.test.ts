/**
 * Tailable, awaitData cursors on local.oplog.rs, as a driver's oplog tailer uses them,
 * and the size cap that truncates the oldest entries under them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, Long, MongoClient, MongoServerError, Timestamp, type Document } from 'mongodb';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import type { RunningDevServer } from '../helpers/dev_server.js';
import { until, inBackground } from '../helpers/poll.js';

type Seq = { _id: number; pad?: string };

async function lastTs(client: MongoClient): Promise<Timestamp> {
  const [last] = await client.db('local').collection('oplog.rs').find().sort({ $natural: -1 }).limit(1).toArray();
  return (last as Document)['ts'] as Timestamp;
}

async function getMoreCount(client: MongoClient): Promise<number> {
  const status = await client.db('admin').command({ serverStatus: 1 });
  return Number((status['opcounters'] as Document)['getmore']);
}

async function openTail(client: MongoClient, after: Timestamp): Promise<{ id: Long; firstBatch: Document[] }> {
  const reply = await client.db('local').command({ find: 'oplog.rs', filter: { ts: { $gt: after } }, tailable: true, awaitData: true, oplogReplay: true });
  const cursor = reply['cursor'] as { id: Long | number; firstBatch: Document[] };
  return { id: Long.fromValue(cursor.id), firstBatch: cursor.firstBatch };
}

describe('tailing the oplog', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  let writer: MongoClient;

  before(async () => {
    server = await startReplDevServer();
    client = new MongoClient(server.uri);
    writer = new MongoClient(server.uri);
    await Promise.all([client.connect(), writer.connect()]);
  });

  after(async () => {
    await client.close();
    await writer.close();
    await server.stop();
    server.cleanup();
  });

  it('an awaitData getMore returns a new entry as soon as it commits, not at maxTimeMS', async () => {
    const tail = await openTail(client, await lastTs(client));
    assert.deepEqual(tail.firstBatch, []);
    assert.ok(!tail.id.isZero(), 'a tailable cursor stays open with nothing to return yet');
    const before = await getMoreCount(writer);
    // Five minutes: an answer without the insert's wake-up would come empty, and late.
    const waiting = client.db('local').command({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 300_000 });
    await until(async () => (await getMoreCount(writer)) > before);
    await writer.db('tail').collection<Seq>('c').insertOne({ _id: 1 });
    const reply = await waiting;
    const batch = (reply['cursor'] as Document)['nextBatch'] as Document[];
    assert.deepEqual(batch.map((e) => [e['op'], e['ns']]), [['c', 'tail.$cmd'], ['i', 'tail.c']]);
    await client.db('local').command({ killCursors: 'oplog.rs', cursors: [tail.id] });
  });

  it('an awaitData getMore with nothing new answers an empty batch at maxTimeMS, cursor alive', async () => {
    const tail = await openTail(client, await lastTs(client));
    const reply = await client.db('local').command({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 50 });
    const cursor = reply['cursor'] as Document;
    assert.deepEqual(cursor['nextBatch'], []);
    assert.equal(Long.fromValue(cursor['id'] as Long).toString(), tail.id.toString());
    await writer.db('tail').collection<Seq>('c').insertOne({ _id: 2 });
    const next = await client.db('local').command({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 50 });
    assert.deepEqual(((next['cursor'] as Document)['nextBatch'] as Document[]).map((e) => e['o']), [{ _id: 2 }]);
    await client.db('local').command({ killCursors: 'oplog.rs', cursors: [tail.id] });
  });

  it('refuses a maxTimeMS beyond INT_MAX, as mongod, rather than answering at once and leaving the tailer to spin', async () => {
    const tail = await openTail(client, await lastTs(client));
    const refused = async (command: Document, errmsg: string): Promise<void> => {
      await assert.rejects(client.db('local').command(command), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.deepEqual([err.code, err.codeName, err.message], [2, 'BadValue', errmsg]);
        return true;
      });
    };
    // max_time_ms_parser.cpp: what mongod answers for each.
    await refused({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 3e9 }, '3000000000 value for maxTimeMS is out of range');
    await refused({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 2 ** 31 }, '2147483648 value for maxTimeMS is out of range');
    await refused({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: -1 }, '-1 value for maxTimeMS is out of range');
    await refused({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 2.5 }, 'maxTimeMS has non-integral value');
    await refused({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 'soon' }, 'maxTimeMS must be a number');
    await refused({ find: 'oplog.rs', limit: 1, maxTimeMS: 3e9 }, '3000000000 value for maxTimeMS is out of range');
    // Refused before it ran: the cursor is still there, and INT_MAX itself is a wait it
    // takes (a commit ends it here).
    const before = await getMoreCount(writer);
    const waiting = client.db('local').command({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 2 ** 31 - 1 });
    await until(async () => (await getMoreCount(writer)) > before);
    await writer.db('tail').collection<Seq>('c').insertOne({ _id: 3 });
    const batch = ((await waiting)['cursor'] as Document)['nextBatch'] as Document[];
    assert.deepEqual(batch.map((e) => e['o']), [{ _id: 3 }]);
    await client.db('local').command({ killCursors: 'oplog.rs', cursors: [tail.id] });
  });

  it("works as the driver's tailable awaitData cursor and its async iterator", async () => {
    const since = await lastTs(client);
    const cursor = client.db('local').collection('oplog.rs').find({ ts: { $gt: since }, ns: 'tail.it' }, { tailable: true, awaitData: true, maxAwaitTimeMS: 100 });
    const writes = inBackground(async () => {
      for (let i = 0; i < 3; i++) await writer.db('tail').collection<Seq>('it').insertOne({ _id: i });
    });
    const seen: unknown[] = [];
    for await (const entry of cursor) {
      seen.push(entry['o']);
      if (seen.length === 3) break;
    }
    await writes.done;
    assert.deepEqual(seen, [{ _id: 0 }, { _id: 1 }, { _id: 2 }]);
  });

  it('refuses tailable on a collection that is not capped, and awaitData without tailable, as mongod', async () => {
    await writer.db('tail').collection<Seq>('plain').insertOne({ _id: 1 });
    await assert.rejects(client.db('tail').command({ find: 'plain', tailable: true }), (err: MongoServerError) => err.code === 2 && /tailable cursor requested on non capped collection/.test(err.message));
    await assert.rejects(client.db('local').command({ find: 'oplog.rs', awaitData: true }), (err: MongoServerError) => err.code === 9);
    await assert.rejects(client.db('local').command({ find: 'oplog.rs', tailable: true, sort: { $natural: -1 } }), (err: MongoServerError) => err.code === 2);
  });
});

describe('the oplog capped by size', () => {
  const OPLOG_MB = 1;
  const CAP = OPLOG_MB * 1024 * 1024;
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startReplDevServer({ oplogSizeMB: OPLOG_MB });
    client = new MongoClient(server.uri);
    await client.connect();
  });

  after(async () => {
    await client.close();
    await server.stop();
    server.cleanup();
  });

  it('keeps under its size, and keeps the newest entries', async () => {
    const coll = client.db('cap').collection<Seq>('c');
    for (let i = 0; i < 100; i++) await coll.insertOne({ _id: i, pad: 'p'.repeat(16_000) });
    const raw = await client.db('local').collection('oplog.rs').find({}, { raw: true }).toArray();
    const bytes = raw.reduce((sum, doc) => sum + (doc as unknown as Buffer).length, 0);
    assert.ok(bytes <= CAP, `${bytes} bytes in an oplog capped at ${CAP}`);
    const entries = raw.map((doc) => BSON.deserialize(doc as unknown as Buffer));
    const ids = entries.filter((e) => e['op'] === 'i').map((e) => (e['o'] as Seq)._id);
    assert.ok(ids.length >= 10, `${ids.length} entries kept`);
    assert.deepEqual(ids, Array.from({ length: ids.length }, (_, k) => 100 - ids.length + k), 'the newest entries, in order, without a gap');
    assert.notEqual(entries[0]?.['op'], 'n', 'the oldest entries are gone');
  });

  it('fails a tailable cursor whose position was truncated away with CappedPositionLost', async () => {
    const coll = client.db('cap').collection<Seq>('lost');
    await coll.insertOne({ _id: -1 });
    const [latest] = await client.db('local').collection('oplog.rs').find().sort({ $natural: -1 }).limit(1).toArray();
    const tail = await openTail(client, (latest as Document)['ts'] as Timestamp);
    await coll.insertOne({ _id: 0, pad: 'p'.repeat(100) });
    const first = await client.db('local').command({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 1 });
    const seen = ((first['cursor'] as Document)['nextBatch'] as Document[]).at(-1)?.['ts'] as Timestamp;
    assert.ok(seen instanceof Timestamp);
    // Write until the entry the cursor stands on is truncated.
    for (let i = 1; ; i++) {
      await coll.insertOne({ _id: i, pad: 'p'.repeat(16_000) });
      const [oldest] = await client.db('local').collection('oplog.rs').find().limit(1).toArray();
      if (((oldest as Document)['ts'] as Timestamp).gt(seen)) break;
    }
    await assert.rejects(
      client.db('local').command({ getMore: tail.id, collection: 'oplog.rs', maxTimeMS: 1 }),
      (err: MongoServerError) => err.code === 136 && err.codeName === 'CappedPositionLost',
    );
    await assert.rejects(client.db('local').command({ getMore: tail.id, collection: 'oplog.rs' }), (err: MongoServerError) => err.code === 43, 'the cursor died');
  });
});
