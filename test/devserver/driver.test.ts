/**
 * The npm `mongodb` driver, default options, against the dev server: what an
 * application would do, checked by what it reads back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, MongoServerError, type Db } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startTapRelay, type TapRelay } from '../helpers/tap_relay.js';
import { OpCode } from '../../src/wire/constants.js';

for (const compressors of [undefined, 'zlib'] as const) {
  describe(`mongodb driver against the dev server${compressors === undefined ? '' : ` with compressors=${compressors}`}`, () => {
    let server: RunningDevServer;
    let relay: TapRelay;
    let client: MongoClient;
    let db: Db;

    before(async () => {
      server = await startDevServer();
      // The relay only watches, so the test can prove compression really happened.
      relay = await startTapRelay(server.port);
      const query = compressors === undefined ? '' : `&compressors=${compressors}`;
      client = new MongoClient(`mongodb://127.0.0.1:${relay.port}/?directConnection=true${query}`);
      await client.connect();
      db = client.db('app');
    });

    after(async () => {
      await client?.close();
      await relay?.close();
      await server?.stop();
      server?.cleanup();
    });

    it('inserts, then finds with sort, skip, limit and projection', async () => {
      const people = db.collection('people');
      const result = await people.insertMany([
        { _id: 1 as never, name: 'ada', age: 36 },
        { _id: 2 as never, name: 'bob', age: 25 },
        { _id: 3 as never, name: 'cy', age: 41 },
        { _id: 4 as never, name: 'di', age: 30 },
      ]);
      assert.equal(result.insertedCount, 4);
      const oldest = await people.find({ age: { $gte: 30 } }).sort({ age: -1 }).limit(2).project({ _id: 0, name: 1 }).toArray();
      assert.deepEqual(oldest, [{ name: 'cy' }, { name: 'ada' }]);
      const skipped = await people.find({}).sort({ name: 1 }).skip(1).limit(2).toArray();
      assert.deepEqual(skipped.map((p) => p['name']), ['bob', 'cy']);
      const generated = await people.insertOne({ name: 'eve', age: 22 });
      assert.ok(generated.insertedId, 'the driver generated an ObjectId');
      const found = await people.findOne({ _id: generated.insertedId });
      assert.equal(found?.['name'], 'eve');
    });

    it('updates with operators, upserts and multi-updates', async () => {
      const items = db.collection('items');
      await items.insertMany([
        { sku: 'a', qty: 1, tags: ['x'] },
        { sku: 'b', qty: 2 },
        { sku: 'c', qty: 3 },
      ]);
      const one = await items.updateOne({ sku: 'a' }, { $inc: { qty: 10 }, $set: { note: 'restocked' } });
      assert.equal(one.matchedCount, 1);
      assert.equal(one.modifiedCount, 1);
      assert.deepEqual(await items.findOne({ sku: 'a' }, { projection: { _id: 0 } }), { sku: 'a', qty: 11, tags: ['x'], note: 'restocked' });

      const many = await items.updateMany({ qty: { $lt: 5 } }, { $set: { low: true } });
      assert.equal(many.matchedCount, 2);
      const unset = await items.updateOne({ sku: 'a' }, { $unset: { note: '' } });
      assert.equal(unset.modifiedCount, 1);
      assert.equal((await items.findOne({ sku: 'a' }))?.['note'], undefined);

      const upsert = await items.updateOne({ sku: 'z' }, { $set: { qty: 0 } }, { upsert: true });
      assert.equal(upsert.upsertedCount, 1);
      assert.deepEqual(await items.findOne({ _id: upsert.upsertedId! }, { projection: { _id: 0 } }), { sku: 'z', qty: 0 });

      const replaced = await items.replaceOne({ sku: 'b' }, { sku: 'b', qty: 99 });
      assert.equal(replaced.modifiedCount, 1);
      assert.equal((await items.findOne({ sku: 'b' }))?.['low'], undefined);
    });

    it('finds and modifies: findOneAndUpdate, findOneAndReplace, findOneAndDelete', async () => {
      const jobs = db.collection('jobs');
      await jobs.insertMany([
        { name: 'a', state: 'queued', pri: 2 },
        { name: 'b', state: 'queued', pri: 9 },
      ]);
      const claimed = await jobs.findOneAndUpdate({ state: 'queued' }, { $set: { state: 'running' } }, { sort: { pri: -1 }, returnDocument: 'after', projection: { _id: 0 } });
      assert.deepEqual(claimed, { name: 'b', state: 'running', pri: 9 });
      const before = await jobs.findOneAndReplace({ name: 'a' }, { name: 'a', state: 'done' }, { returnDocument: 'before', projection: { _id: 0, state: 1 } });
      assert.deepEqual(before, { state: 'queued' });
      const upserted = await jobs.findOneAndUpdate({ name: 'c' }, { $set: { state: 'new' } }, { upsert: true, returnDocument: 'after', projection: { _id: 0 } });
      assert.deepEqual(upserted, { name: 'c', state: 'new' });
      const missing = await jobs.findOneAndUpdate({ name: 'zz' }, { $set: { x: 1 } });
      assert.equal(missing, null);
      const deleted = await jobs.findOneAndDelete({ name: 'b' }, { projection: { _id: 0, name: 1 } });
      assert.deepEqual(deleted, { name: 'b' });
      assert.deepEqual((await jobs.find({}, { projection: { _id: 0, name: 1 } }).sort({ name: 1 }).toArray()).map((j) => j['name']), ['a', 'c']);
    });

    it('deletes one and many', async () => {
      const logs = db.collection('logs');
      await logs.insertMany(Array.from({ length: 10 }, (_, i) => ({ i, level: i % 2 === 0 ? 'info' : 'warn' })));
      assert.equal((await logs.deleteOne({ level: 'warn' })).deletedCount, 1);
      assert.equal((await logs.deleteMany({ level: 'info' })).deletedCount, 5);
      assert.equal(await logs.countDocuments(), 4);
    });

    it('counts, lists and drops collections', async () => {
      const events = db.collection('events');
      await events.insertMany(Array.from({ length: 25 }, (_, i) => ({ i })));
      assert.equal(await events.countDocuments(), 25);
      assert.equal(await events.countDocuments({ i: { $gte: 20 } }), 5);
      assert.equal(await events.countDocuments({}, { skip: 5, limit: 10 }), 10);
      assert.equal(await events.estimatedDocumentCount(), 25);
      const names = (await db.listCollections().toArray()).map((c) => c.name);
      assert.ok(names.includes('events'), `listCollections: ${names.join(',')}`);
      assert.equal(await events.drop(), true);
      const after = (await db.listCollections().toArray()).map((c) => c.name);
      assert.ok(!after.includes('events'));
      assert.equal(await events.countDocuments(), 0);
    });

    it('reads a large result through many getMores', async () => {
      const big = db.collection('big');
      await big.insertMany(Array.from({ length: 2500 }, (_, i) => ({ _id: i as never, pad: 'x'.repeat(100) })));
      const ids: number[] = [];
      for await (const doc of big.find({}, { batchSize: 100 }).sort({ _id: 1 })) ids.push(Number(doc['_id']));
      assert.equal(ids.length, 2500);
      assert.deepEqual(ids.slice(0, 3), [0, 1, 2]);
      assert.equal(ids[2499], 2499);
      assert.ok(relay.commands.filter((c) => c.name === 'getMore').length >= 24);
    });

    if (compressors === undefined) {
      it('reads back more than 16 MB of small documents (batches stay under the reply limit)', async () => {
        const small = db.collection('small');
        const pad = 's'.repeat(1000);
        for (let batch = 0; batch < 20; batch++) {
          await small.insertMany(Array.from({ length: 1000 }, (_, i) => ({ n: batch * 1000 + i, pad })));
        }
        let count = 0;
        for await (const doc of small.find({}, { projection: { n: 1 } })) count += doc['n'] >= 0 ? 1 : 0;
        assert.equal(count, 20_000);
        assert.equal((await small.find({}).toArray()).length, 20_000);
      });
    }

    it('reports a duplicate _id as E11000', async () => {
      const users = db.collection('users');
      await users.insertOne({ _id: 'u1' as never });
      await assert.rejects(users.insertOne({ _id: 'u1' as never }), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 11000);
        assert.match(err.message, /E11000 duplicate key error collection: app.users index: _id_ dup key/);
        return true;
      });
    });

    it('answers unknown commands and misplaced admin commands as mongod does', async () => {
      await assert.rejects(db.command({ noSuchThing: 1 }), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 59);
        assert.equal(err.codeName, 'CommandNotFound');
        assert.equal(err.message, "no such command: 'noSuchThing'");
        return true;
      });
      await assert.rejects(db.command({ getCmdLineOpts: 1 }), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 13);
        assert.equal(err.message, 'getCmdLineOpts may only be run against the admin database.');
        return true;
      });
    });

    it('refuses an unsupported query operator instead of answering wrongly', async () => {
      await assert.rejects(db.collection('people').find({ name: { $regex: '^a' } }).toArray(), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.match(err.message, /\$regex/);
        return true;
      });
    });

    if (compressors === 'zlib') {
      it('really compressed the traffic', () => {
        assert.ok(relay.requestOpcodes.includes(OpCode.Compressed), 'client sent OP_COMPRESSED');
        assert.ok(relay.replyOpcodes.includes(OpCode.Compressed), 'server replied with OP_COMPRESSED');
      });
    } else {
      it('sent no compressed traffic when none was asked for', () => {
        assert.ok(!relay.requestOpcodes.includes(OpCode.Compressed));
      });
    }
  });
}
