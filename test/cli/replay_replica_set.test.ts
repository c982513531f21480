/**
 * The dev server's own oplog, replayed: a replica-set dev server takes everyday writes
 * (operators, replacements, findAndModify, deletes, catalog commands), its
 * `local.oplog.rs` is written to an oplog file as `hotbackup oplog` writes them, and
 * `hotbackup replay` applies it to an empty standalone, twice. Both must then hold the
 * same data: what the primary logged is what applyOps rebuilds (its `$v: 2` diffs
 * included).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { serialize } from 'bson';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';

/** Every document of every collection, as its BSON bytes (types and field order count). */
async function everything(client: MongoClient): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const db of ['app', 'shop']) {
    for (const info of await client.db(db).listCollections().toArray()) {
      const docs = await client.db(db).collection(info.name).find({}, { promoteValues: false }).sort({ _id: 1 }).toArray();
      out[`${db}.${info.name}`] = docs.map((d) => Buffer.from(serialize(d)).toString('base64'));
    }
  }
  return out;
}

interface Person {
  _id: number;
  name?: string;
  label?: string;
  tags?: string[];
  nested?: { n: number; deep: { x: number; y?: boolean } };
  replaced?: boolean;
  upserted?: number;
}

describe('hotbackup replay of a replica-set dev server\'s own oplog', () => {
  let source: RunningDevServer;
  let target: RunningDevServer;
  let sourceClient: MongoClient;
  let targetClient: MongoClient;
  const work = tempDir('replay-rs');

  before(async () => {
    source = await startReplDevServer();
    target = await startDevServer();
    sourceClient = await MongoClient.connect(source.uri);
    targetClient = await MongoClient.connect(target.uri);
  });

  after(async () => {
    await sourceClient?.close();
    await targetClient?.close();
    await source?.stop();
    await target?.stop();
    source?.cleanup();
    target?.cleanup();
    work.remove();
  });

  it('rebuilds the same data, twice', async () => {
    const app = sourceClient.db('app');
    const people = app.collection<Person>('people');
    await people.insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: i, name: `p${i}`, tags: ['a'], nested: { n: i, deep: { x: 1 } } })));
    await people.updateMany({ _id: { $lt: 20 } }, { $inc: { 'nested.n': 100 }, $push: { tags: 'b' }, $set: { 'nested.deep.y': true } });
    await people.updateOne({ _id: 3 }, { $unset: { name: '' }, $pop: { tags: 1 } });
    await people.replaceOne({ _id: 4 }, { replaced: true });
    await people.findOneAndUpdate({ _id: 5 }, { $rename: { name: 'label' } });
    await people.deleteMany({ _id: { $gte: 40 } });
    await people.createIndex({ name: 1 });
    await people.updateOne({ _id: 100 }, { $set: { upserted: 1 } }, { upsert: true });
    await app.createCollection('empty');
    await sourceClient.db('shop').collection('orders').insertOne({ _id: 1, total: 5 } as never);
    await app.collection('scratch').insertOne({ _id: 1 } as never);
    await app.collection('scratch').drop();

    const entries = await sourceClient.db('local').collection('oplog.rs').find({}, { promoteValues: false }).toArray();
    assert.ok(entries.length > 10, `${entries.length} entries`);
    const dir = path.join(work.dir, 'oplog');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), Buffer.concat(entries.map((e) => Buffer.from(serialize(e)))));
    const first = entries[0]?.['ts'] as { t: number; i: number };
    const last = entries[entries.length - 1]?.['ts'] as { t: number; i: number };

    const expected = await everything(sourceClient);
    for (const round of [1, 2]) {
      const run = await runCli(['replay', dir, '--to', target.uri, '--from', `${first.t},${first.i}`, '--until', `${last.t},${last.i}`]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await everything(targetClient), expected, `round ${round}`);
    }
    const indexes = await targetClient.db('app').collection('people').listIndexes().toArray();
    assert.deepEqual(indexes.map((i) => i['name']), ['_id_', 'name_1']);
  });
});
