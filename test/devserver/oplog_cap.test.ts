/**
 * What bounds the oplog, and what may hold it past its size: catalog changes are
 * truncated as data writes are, and an open backup cursor keeps its oplogStart readable
 * (the oplog then grows past its size) until it closes, as mongod pins the oplog for a
 * backup.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, MongoClient, Timestamp, type Document } from 'mongodb';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import type { RunningDevServer } from '../helpers/dev_server.js';

const OPLOG_MB = 1;
const CAP = OPLOG_MB * 1024 * 1024;
const show = (ts: Timestamp): string => `${ts.high},${ts.low}`;

async function oplogState(client: MongoClient): Promise<{ bytes: number; first: Timestamp }> {
  const raw = await client.db('local').collection('oplog.rs').find({}, { raw: true }).toArray();
  const bytes = raw.reduce((sum, doc) => sum + (doc as unknown as Buffer).length, 0);
  const first = BSON.deserialize(raw[0] as unknown as Buffer)['ts'] as Timestamp;
  return { bytes, first };
}

describe('the oplog at --oplogSize 1', () => {
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startReplDevServer({ oplogSizeMB: OPLOG_MB });
    client = new MongoClient(server.uri);
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('keeps the open backup cursor\'s oplogStart until the cursor closes, past its size', async () => {
    const coll = client.db('pin').collection<{ _id: number; pad: string }>('c');
    await coll.insertOne({ _id: -1, pad: '' });
    const cursor = client.db('admin').aggregate([{ $backupCursor: {} }]);
    const first = (await cursor.next()) as Document;
    const oplogStart = (first['metadata'] as Document)['oplogStart']['ts'] as Timestamp;
    try {
      for (let i = 0; i < 100; i++) await coll.insertOne({ _id: i, pad: 'p'.repeat(16_000) });
      const held = await oplogState(client);
      assert.ok(held.first.equals(oplogStart), `oplogStart ${show(oplogStart)} still first, not ${show(held.first)}`);
      assert.ok(held.bytes > CAP, `${held.bytes} bytes: over the cap while pinned`);
    } finally {
      await cursor.close();
    }
    await coll.insertOne({ _id: 100, pad: '' });
    const released = await oplogState(client);
    assert.ok(released.bytes <= CAP, `${released.bytes} bytes in an oplog capped at ${CAP} once the cursor closed`);
    assert.ok(released.first.gt(oplogStart), 'the pinned entries are truncated once released');
  });

  it('keeps under its size with catalog changes alone', async () => {
    const db = client.db('catalog');
    await db.collection('c').insertOne({ _id: 1 } as never);
    // Index names near mongod's limit make createIndexes entries of a few KB each.
    for (let i = 0; i < 400; i++) {
      await db.collection('c').createIndex({ [`f${i}`]: 1 }, { name: `${'n'.repeat(3000)}${i}` });
      await db.collection('c').dropIndex(`${'n'.repeat(3000)}${i}`);
    }
    const { bytes } = await oplogState(client);
    assert.ok(bytes <= CAP, `${bytes} bytes in an oplog capped at ${CAP}`);
  });
});
