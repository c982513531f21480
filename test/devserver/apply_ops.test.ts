/**
 * applyOps on the dev server (a standalone, as a restored backup runs), through the npm
 * driver: each entry kind in mongod 7.0's shapes, applied twice to the same result; the
 * reply's `applied`/`results`; mongod's errors; and who may run it under --auth.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Binary, Int32, Long, MongoClient, MongoServerError, Timestamp, UUID, type Db, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';

let tsCounter = 0;
/** The fields every mongod 7.0 entry carries around `op`, `ns`, `o`. */
function entry(fields: Document): Document {
  tsCounter += 1;
  return { ts: new Timestamp({ t: 1_700_000_000, i: tsCounter }), t: Long.fromNumber(1), v: Long.fromNumber(2), wall: new Date(), ...fields };
}

async function uuidOf(db: Db, name: string): Promise<UUID> {
  const [info] = await db.listCollections({ name }).toArray();
  assert.ok(info, `collection ${name} exists`);
  return (info as unknown as { info: { uuid: UUID } }).info.uuid;
}

async function apply(client: MongoClient, ops: Document[], options: Document = {}): Promise<Document> {
  return client.db('admin').command({ applyOps: ops, ...options });
}

async function rejection(promise: Promise<unknown>): Promise<MongoServerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MongoServerError, String(err));
    return err;
  }
  assert.fail('expected the command to fail');
}

describe('applyOps on the dev server', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  let db: Db;

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
    await client.connect();
    db = client.db('app');
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('applies create, inserts, a $v: 2 diff, a replacement, a delete and createIndexes; twice gives the same data', async () => {
    const ui = new UUID();
    const ops = [
      entry({ op: 'c', ns: 'app.$cmd', ui, o: { create: 'kinds', idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } } }),
      entry({ op: 'i', ns: 'app.kinds', ui, o: { _id: 1, a: 1, arr: [1, 2, 3], sub: { x: 1 } }, o2: { _id: 1 } }),
      entry({ op: 'i', ns: 'app.kinds', ui, o: { _id: 2, gone: true }, o2: { _id: 2 } }),
      entry({ op: 'i', ns: 'app.kinds', ui, o: { _id: 3, keep: 'me' }, o2: { _id: 3 } }),
      entry({ op: 'u', ns: 'app.kinds', ui, o: { $v: new Int32(2), diff: { d: { a: false }, i: { b: 2 }, sarr: { a: true, l: new Int32(2), u1: 20 }, ssub: { u: { x: 5 } } } }, o2: { _id: 1 } }),
      entry({ op: 'u', ns: 'app.kinds', ui, o: { _id: 3, replaced: true }, o2: { _id: 3 } }),
      entry({ op: 'd', ns: 'app.kinds', ui, o: { _id: 2 } }),
      entry({ op: 'n', ns: '', o: { msg: 'periodic noop' } }),
      entry({ op: 'c', ns: 'app.$cmd', ui, o: { createIndexes: 'kinds', v: 2, key: { b: 1 }, name: 'b_1' } }),
    ];
    const expected = [
      { _id: 1, arr: [1, 20], sub: { x: 5 }, b: 2 },
      { _id: 3, replaced: true },
    ];
    for (const round of [1, 2]) {
      const reply = await apply(client, ops);
      // The no-op is neither applied nor in results (apply_ops.cpp skips 'n').
      assert.deepEqual({ applied: reply['applied'], results: reply['results'], ok: reply['ok'] }, { applied: 8, results: Array(8).fill(true), ok: 1 }, `round ${round}`);
      assert.deepEqual(await db.collection('kinds').find().sort({ _id: 1 }).toArray(), expected, `round ${round}`);
    }
    assert.ok((await uuidOf(db, 'kinds')).equals(ui), 'create takes the entry\'s ui as the collection\'s UUID');
    const indexes = await db.collection('kinds').listIndexes().toArray();
    assert.deepEqual(indexes.map((i) => i['name']), ['_id_', 'b_1']);
  });

  it('an insert of an existing _id replaces the document; a delete of a missing one succeeds', async () => {
    await db.collection('dups').insertOne({ _id: 7 as never, old: true });
    const ui = await uuidOf(db, 'dups');
    const reply = await apply(client, [
      entry({ op: 'i', ns: 'app.dups', ui, o: { _id: 7, fresh: 1 } }),
      entry({ op: 'd', ns: 'app.dups', ui, o: { _id: 'missing' } }),
      entry({ op: 'd', ns: 'app.nosuchcoll', o: { _id: 1 } }),
    ]);
    assert.deepEqual(reply['results'], [true, true, true]);
    assert.deepEqual(await db.collection('dups').find().toArray(), [{ _id: 7, fresh: 1 }]);
  });

  it('an update of a missing document upserts by default (alwaysUpsert), as mongod 7.0', async () => {
    await db.collection('ups').insertOne({ _id: 1 as never, n: 1 });
    const ui = await uuidOf(db, 'ups');
    // jstests/noPassthrough/apply_ops_mode.js: "Test default succeeds", for a diff and a replacement.
    await apply(client, [
      entry({ op: 'u', ns: 'app.ups', ui, o: { $v: new Int32(2), diff: { u: { x: 1 } } }, o2: { _id: 2 } }),
      entry({ op: 'u', ns: 'app.ups', ui, o: { _id: 3, x: 1 }, o2: { _id: 3 } }),
    ]);
    assert.deepEqual(await db.collection('ups').find().sort({ _id: 1 }).toArray(), [{ _id: 1, n: 1 }, { _id: 2, x: 1 }, { _id: 3, x: 1 }]);
    const wrong = await rejection(apply(client, [], { alwaysUpsert: 1 }));
    assert.equal(wrong.code, 14);
  });

  it('with alwaysUpsert: false, an update of a missing document fails that entry only: UnknownError, with results', async () => {
    await db.collection('upd').insertOne({ _id: 1 as never, n: 1 });
    const ui = await uuidOf(db, 'upd');
    const err = await rejection(apply(client, [
      entry({ op: 'u', ns: 'app.upd', ui, o: { $v: new Int32(2), diff: { u: { n: 9 } } }, o2: { _id: 'missing' } }),
      entry({ op: 'u', ns: 'app.upd', ui, o: { $v: new Int32(2), diff: { u: { n: 2 } } }, o2: { _id: 1 } }),
    ], { alwaysUpsert: false }));
    assert.equal(err.code, 8);
    assert.equal(err.codeName, 'UnknownError');
    assert.equal(err.message, 'applyOps had one or more errors applying ops');
    assert.equal(err.errorResponse['applied'], 2);
    assert.deepEqual(err.errorResponse['results'], [false, true]);
    assert.deepEqual(await db.collection('upd').find().toArray(), [{ _id: 1, n: 2 }]);
    // With b: true (an upsert entry) the missing document is created.
    await apply(client, [entry({ op: 'u', ns: 'app.upd', ui, b: true, o: { $v: new Int32(2), diff: { i: { made: true } } }, o2: { _id: 2 } })], { alwaysUpsert: false });
    assert.deepEqual(await db.collection('upd').findOne({ _id: 2 as never }), { _id: 2, made: true });
  });

  it('an insert into a missing collection stops there: NamespaceNotFound with applied and results', async () => {
    const err = await rejection(apply(client, [
      entry({ op: 'c', ns: 'app.$cmd', o: { create: 'first' } }),
      entry({ op: 'i', ns: 'app.nowhere', o: { _id: 1 } }),
      entry({ op: 'c', ns: 'app.$cmd', o: { create: 'never' } }),
    ]));
    assert.equal(err.code, 26);
    assert.equal(err.codeName, 'NamespaceNotFound');
    assert.match(err.message, /^cannot apply insert or update operation on a non-existent namespace app\.nowhere/);
    assert.equal(err.errorResponse['applied'], 2);
    assert.deepEqual(err.errorResponse['results'], [true, false]);
    const names = (await db.listCollections().toArray()).map((c) => c['name']);
    assert.ok(names.includes('first') && !names.includes('never'), names.join(','));
  });

  it('a ui that names another collection, or none, fails the entry (3318200)', async () => {
    await db.collection('real').insertOne({ _id: 1 as never });
    const err = await rejection(apply(client, [entry({ op: 'i', ns: 'app.real', ui: new UUID(), o: { _id: 2 } })]));
    assert.equal(err.code, 8);
    assert.deepEqual(err.errorResponse['results'], [false]);
    assert.equal(await db.collection('real').countDocuments(), 1);
  });

  it('create of an existing collection, drop and dropDatabase of missing ones succeed', async () => {
    await db.collection('exists').insertOne({ _id: 1 as never });
    const reply = await apply(client, [
      entry({ op: 'c', ns: 'app.$cmd', o: { create: 'exists' } }),
      entry({ op: 'c', ns: 'app.$cmd', o: { drop: 'neverthere' } }),
      entry({ op: 'c', ns: 'app.$cmd', ui: new UUID(), o: { drop: 'unknownuuid' } }),
    ]);
    assert.deepEqual(reply['results'], [true, true, true]);
    assert.equal(await db.collection('exists').countDocuments(), 1);
    assert.deepEqual((await apply(client, [entry({ op: 'c', ns: 'gone.$cmd', o: { dropDatabase: 1 } })]))['results'], [true]);
  });

  it('drop and dropDatabase remove what they name', async () => {
    await client.db('scratch').collection('a').insertOne({ _id: 1 as never });
    await db.collection('todrop').insertOne({ _id: 1 as never });
    const ui = await uuidOf(db, 'todrop');
    await apply(client, [entry({ op: 'c', ns: 'app.$cmd', ui, o: { drop: 'todrop' }, o2: { numRecords: 1 } })]);
    await apply(client, [entry({ op: 'c', ns: 'scratch.$cmd', o: { dropDatabase: 1 } })]);
    assert.deepEqual(await db.listCollections({ name: 'todrop' }).toArray(), []);
    assert.deepEqual(await client.db('scratch').listCollections().toArray(), []);
  });

  it('refuses what mongod refuses, in its words', async () => {
    const cases: Array<[Document, number, RegExp]> = [
      [{ applyOps: 'x' }, 14, /wrong type for field \(applyOps\)/],
      [{ applyOps: [1] }, 9, /^op not an object: 0$/],
      [{ applyOps: [{ ns: 'a.b' }] }, 20, /^op does not contain required "op" field: 0$/],
      [{ applyOps: [{ op: 'i', o: {} }] }, 20, /^op does not contain required "ns" field: 0$/],
      [{ applyOps: [{ op: 'i', ns: '', o: {} }] }, 20, /"ns" field value cannot be empty when op type is not 'n'/],
      [{ applyOps: [{ op: 'i', ns: 'nodot', o: { _id: 1 } }] }, 73, /^invalid ns: nodot$/],
      [{ applyOps: [], oplogApplicationMode: 'Sideways' }, 9, /Invalid oplog application mode provided: Sideways/],
      [{ applyOps: [{ op: 'c', ns: 'x.$cmd', o: { dropDatabase: 1 } }, { op: 'n', ns: '', o: {} }] }, 6275900, /dropDatabase in an applyOps must be the only entry/],
      [{ applyOps: [{ op: 'i', ns: 'app.dups', o: { noId: 1 } }] }, 4, /^Failed to apply insert due to missing _id/],
    ];
    for (const [command, code, message] of cases) {
      const err = await rejection(client.db('admin').command(command));
      assert.equal(err.code, code, JSON.stringify(command));
      assert.match(err.message, message);
    }
  });
});

describe('applyOps under --auth', () => {
  let server: RunningDevServer;
  const uri = (user: string, pwd: string, port: number) => `mongodb://${user}:${pwd}@127.0.0.1:${port}/?directConnection=true&authSource=admin`;

  before(async () => {
    server = await startDevServer({ args: ['--auth'] });
    const local = new MongoClient(server.uri);
    await local.db('admin').command({ createUser: 'root', pwd: 'rootpw', roles: ['root'] });
    await local.close();
    const root = new MongoClient(uri('root', 'rootpw', server.port));
    await root.db('admin').command({ createUser: 'rw', pwd: 'rwpw', roles: [{ role: 'readWrite', db: 'app' }] });
    await root.db('admin').command({ createUser: 'restorer', pwd: 'rpw', roles: ['restore'] });
    await root.close();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('root may; readWrite may not (applyOps on the cluster); restore may insert, not update', async () => {
    const op = { op: 'i', ns: 'app.c', o: { _id: 1 } };
    const root = new MongoClient(uri('root', 'rootpw', server.port));
    const rw = new MongoClient(uri('rw', 'rwpw', server.port));
    const restorer = new MongoClient(uri('restorer', 'rpw', server.port));
    try {
      await root.db('app').createCollection('c');
      assert.equal((await root.db('admin').command({ applyOps: [op] }))['ok'], 1);
      const denied = await rejection(rw.db('admin').command({ applyOps: [op] }));
      assert.equal(denied.code, 13);
      assert.match(denied.message, /^not authorized on admin to execute command \{ applyOps: /);
      assert.equal((await restorer.db('admin').command({ applyOps: [{ ...op, o: { _id: 2 } }] }))['ok'], 1);
      const update = { op: 'u', ns: 'app.c', o: { $v: 2, diff: { u: { a: 1 } } }, o2: { _id: 1 } };
      assert.equal((await rejection(restorer.db('admin').command({ applyOps: [update] }))).code, 13);
      // A create in a batch of several needs every privilege there is: root has not.
      const batch = [{ op: 'c', ns: 'app.$cmd', o: { create: 'z' } }, op];
      assert.equal((await rejection(root.db('admin').command({ applyOps: batch }))).code, 13);
      const binaryUi = { ...op, ui: new Binary(Buffer.alloc(16), 4) };
      assert.equal((await rejection(rw.db('admin').command({ applyOps: [binaryUi] }))).code, 13);
    } finally {
      await Promise.all([root.close(), rw.close(), restorer.close()]);
    }
  });
});
