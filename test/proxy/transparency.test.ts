/**
 * Acceptance: the same mixed workload gives the same results directly against the dev
 * server and through the proxy: CRUD, a cursor with hundreds of getMores, the driver's
 * awaitable-hello monitoring, zlib compression, and a 40 MB insert batch.
 *
 * Topology: driver -> proxy -> tap relay -> dev server. The relay only watches, so the
 * test can prove that OP_COMPRESSED really crossed the proxy in both directions.
 *
 * What forwarding costs in time is measured by bench/proxy.ts (ping round trips direct
 * and through the proxy, among other workloads), not here.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Binary, MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startTapRelay, type TapRelay } from '../helpers/tap_relay.js';
import { until } from '../helpers/poll.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { OpCode } from '../../src/wire/constants.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { RawClient, startProxy, testInterceptor, uri } from './support.js';

/** Fixed numeric _ids, so both runs produce identical documents. */
interface NumberedDoc extends Document {
  _id: number;
}

interface Summary {
  crud: unknown[];
  cursor: { count: number; hash: string; getMores: number };
  big: { inserted: number; messages: number; count: number; hash: string; bytes: number };
  rawBig: { inserted: unknown; count: number; hash: string };
}

const CURSOR_DOCS = 3_000;
const BATCH_SIZE = 7;
const BIG_DOCS = 40;
const BIG_DOC_BYTES = 1_000_000;
// Random bytes, so the big batch's hash means something (and zlib cannot shrink it).
const BIG_PAYLOADS = Array.from({ length: BIG_DOCS }, () => randomBytes(BIG_DOC_BYTES));

function sha256(docs: Document[]): string {
  const hash = createHash('sha256');
  for (const doc of docs) hash.update(JSON.stringify(doc, (_k, v: unknown) => (v instanceof Binary ? Buffer.from(v.buffer).toString('base64') : v)));
  return hash.digest('hex');
}

async function workload(client: MongoClient, port: number, dbName: string): Promise<Summary> {
  const db = client.db(dbName);
  const crud: unknown[] = [];
  const people = db.collection<NumberedDoc>('people');
  crud.push((await people.insertMany([{ _id: 1, name: 'ada', age: 36 }, { _id: 2, name: 'bob', age: 25 }, { _id: 3, name: 'cy', age: 41 }])).insertedCount);
  crud.push(await people.find({ age: { $gte: 30 } }).sort({ age: -1 }).project({ _id: 0 }).toArray());
  crud.push((await people.updateOne({ _id: 2 }, { $inc: { age: 1 }, $set: { note: 'older' } })).modifiedCount);
  crud.push((await people.updateOne({ _id: 9 }, { $set: { name: 'zed' } }, { upsert: true })).upsertedId);
  crud.push((await people.updateMany({ age: { $gt: 30 } }, { $inc: { age: 5 }, $set: { tags: ['x'] } })).modifiedCount);
  crud.push(await people.findOne({ _id: 1 }));
  crud.push((await people.deleteOne({ _id: 3 })).deletedCount);
  crud.push(await people.aggregate([{ $group: { _id: null, total: { $sum: '$age' } } }]).toArray());
  crud.push(await people.countDocuments());
  crud.push(await people.distinct('name'));
  crud.push(await people.insertOne({ _id: 1, dup: true }).catch((err: { code?: number }) => err.code));

  const items = db.collection<NumberedDoc>('items');
  await items.insertMany(Array.from({ length: CURSOR_DOCS }, (_, i) => ({ _id: i, v: i * 2, s: 'y'.repeat(i % 50) })));
  let getMores = 0;
  let bigInserts = 0;
  const onStart = (event: { commandName: string; databaseName: string; command: Document }) => {
    if (event.databaseName !== dbName) return;
    if (event.commandName === 'getMore') getMores++;
    if (event.commandName === 'insert' && event.command['insert'] === 'big') bigInserts++;
  };
  client.on('commandStarted', onStart);
  const all = await items.find({}).sort({ _id: 1 }).batchSize(BATCH_SIZE).toArray();

  const big = db.collection<NumberedDoc>('big');
  const inserted = (await big.insertMany(BIG_PAYLOADS.map((data, i) => ({ _id: i, data: new Binary(data) })))).insertedCount;
  client.off('commandStarted', onStart);
  const back = await big.find({}).sort({ _id: 1 }).toArray();

  // One 40 MB OP_MSG (a kind-1 document sequence), which no driver call produces.
  const raw = await RawClient.connect(port);
  let rawBig: Summary['rawBig'];
  try {
    const documents = BIG_PAYLOADS.map((data, i) => encodeDocument({ _id: i, data: new Binary(data) }));
    const message = encodeOpMsg({ requestID: 1, responseTo: 0, flags: 0, sections: [{ kind: 0, body: encodeDocument({ insert: 'rawbig', $db: dbName }) }, { kind: 1, identifier: 'documents', documents }] });
    const reply = await raw.command(message);
    const back2 = await db.collection('rawbig').find({}).sort({ _id: 1 }).toArray();
    assert.ok(message.length > 40_000_000, `${message.length} bytes in one message`);
    rawBig = { inserted: reply.doc['n'], count: back2.length, hash: sha256(back2) };
  } finally {
    raw.close();
  }
  return {
    rawBig,
    crud,
    cursor: { count: all.length, hash: sha256(all), getMores },
    big: { inserted, messages: bigInserts, count: back.length, hash: sha256(back), bytes: back.reduce((n, d) => n + (d['data'] as Binary).length(), 0) },
  };
}

describe('proxy transparency', () => {
  let server: RunningDevServer;
  let relay: TapRelay;
  let proxy: ProxyServer;
  let direct: Summary;
  let directMs = 0;

  before(async () => {
    server = await startDevServer();
    relay = await startTapRelay(server.port);
    proxy = await startProxy(relay.port, testInterceptor());
    const client = new MongoClient(uri(server.port), { monitorCommands: true });
    try {
      const start = Date.now();
      direct = await workload(client, server.port, 'direct');
      directMs = Date.now() - start;
    } finally {
      await client.close();
    }
  });

  after(async () => {
    await proxy?.close();
    await relay?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('sanity: the direct run did what the workload says', () => {
    assert.equal(direct.cursor.count, CURSOR_DOCS);
    assert.ok(direct.cursor.getMores >= Math.floor(CURSOR_DOCS / BATCH_SIZE) - 1, `${direct.cursor.getMores} getMores`);
    assert.equal(direct.big.count, BIG_DOCS);
    // The driver cuts bulk writes at maxBsonObjectSize, so 40 MB takes 3 insert messages;
    // the single 40 MB message is the raw one (rawBig).
    assert.equal(direct.big.messages, 3);
    assert.equal(direct.rawBig.inserted, BIG_DOCS);
    assert.equal(direct.rawBig.count, BIG_DOCS);
    assert.equal(direct.rawBig.hash, direct.big.hash, 'the same documents as the driver inserted');
    assert.equal(direct.big.bytes, BIG_DOCS * BIG_DOC_BYTES);
    assert.equal(direct.crud.at(-1), 11000);
  });

  it('gives the same results through the proxy (CRUD, getMores, 40 MB batch)', async (t) => {
    const client = new MongoClient(uri(proxy.address.port), { monitorCommands: true });
    try {
      const forwarded = proxy.stats.forwarded;
      const start = Date.now();
      const proxied = await workload(client, proxy.address.port, 'proxied');
      t.diagnostic(`workload: direct ${directMs} ms, through the proxy ${Date.now() - start} ms`);
      assert.deepEqual(proxied, direct);
      assert.ok(proxy.stats.forwarded - forwarded > direct.cursor.getMores, 'every getMore crossed the proxy');
      assert.equal(proxy.stats.intercepted, 0);
    } finally {
      await client.close();
    }
  });

  it('gives the same results with compressors=zlib, and OP_COMPRESSED really crossed both ways', async () => {
    const before = { requests: relay.requestOpcodes.length, replies: relay.replyOpcodes.length };
    const client = new MongoClient(uri(proxy.address.port, '&compressors=zlib'), { monitorCommands: true });
    try {
      const zipped = await workload(client, proxy.address.port, 'zipped');
      assert.deepEqual(zipped, direct);
      const requests = relay.requestOpcodes.slice(before.requests);
      const replies = relay.replyOpcodes.slice(before.replies);
      assert.ok(requests.filter((op) => op === OpCode.Compressed).length > direct.cursor.getMores, 'compressed requests');
      assert.ok(replies.filter((op) => op === OpCode.Compressed).length > direct.cursor.getMores, 'compressed replies');
    } finally {
      await client.close();
    }
  });

  it('keeps the driver\'s awaitable-hello monitoring streaming, directly and through the proxy', async () => {
    const watch = (port: number) => {
      const client = new MongoClient(uri(port), { heartbeatFrequencyMS: 500 });
      const heartbeats: boolean[] = [];
      client.on('serverHeartbeatSucceeded', (event) => heartbeats.push(event.awaited));
      return { client, heartbeats };
    };
    const both = [watch(server.port), watch(proxy.address.port)];
    try {
      for (const { client } of both) await client.db('admin').command({ ping: 1 });
      // Six heartbeats each: after the monitor's first plain check, awaited (streamed) ones
      // if streaming works, polled ones if it does not.
      await until(() => (both.every(({ heartbeats }) => heartbeats.length >= 6) ? true : undefined));
      const [directBeats, proxiedBeats] = both.map((w) => w.heartbeats);
      assert.ok(directBeats?.includes(true), 'direct: awaited heartbeats');
      assert.ok(proxiedBeats?.includes(true), `proxied: awaited heartbeats (${JSON.stringify(proxiedBeats)})`);
      assert.ok((proxiedBeats?.filter((a) => a).length ?? 0) >= 3, 'a stream of them, not one');
      for (const { client } of both) {
        assert.equal(await client.db('app').collection('after').countDocuments(), 0);
        assert.deepEqual(await client.db('admin').command({ proxyEcho: 'after-idle' }).catch((err: { code?: number }) => err.code), client === both[0]?.client ? 59 : { ok: 1, echoed: { proxyEcho: 'after-idle', $db: 'admin' } });
      }
    } finally {
      for (const { client } of both) await client.close();
    }
  });
});
