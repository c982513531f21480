/**
 * A getMore pins its cursor while it runs, as mongod's does: the idle reaper passes a
 * tailer's waiting cursor by however short cursorTimeoutMillis is, and killCursors
 * interrupts the wait with CursorKilled instead of leaving it to answer for a dead id.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Long, MongoClient, MongoServerError, Timestamp, type Document } from 'mongodb';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { until } from '../helpers/poll.js';

async function lastTs(client: MongoClient): Promise<Timestamp> {
  const [last] = await client.db('local').collection('oplog.rs').find().sort({ $natural: -1 }).limit(1).toArray();
  return (last as Document)['ts'] as Timestamp;
}

async function openTail(client: MongoClient): Promise<Long> {
  const after = await lastTs(client);
  const reply = await client.db('local').command({ find: 'oplog.rs', filter: { ts: { $gt: after } }, tailable: true, awaitData: true });
  return Long.fromValue((reply['cursor'] as { id: Long | number }).id);
}

async function getMoreCount(client: MongoClient): Promise<number> {
  const status = await client.db('admin').command({ serverStatus: 1 });
  return Number((status['opcounters'] as Document)['getmore']);
}

/** The server error code `promise` rejects with. */
async function failureOf(promise: Promise<unknown>): Promise<{ code: unknown; codeName: unknown; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MongoServerError, String(err));
    return { code: err.code, codeName: err.codeName, message: err.message };
  }
  assert.fail('expected the command to fail');
}

describe('a getMore pins its cursor', () => {
  let set: RunningReplicaSet;
  let tailer: MongoClient;
  let other: MongoClient;

  before(async () => {
    set = await startReplicaSet();
    tailer = new MongoClient(set.server.uri);
    other = new MongoClient(set.server.uri);
    await Promise.all([tailer.connect(), other.connect()]);
  });

  after(async () => {
    await tailer?.close();
    await other?.close();
    await set?.server.stop();
    set?.server.cleanup();
  });

  it('keeps a waiting tailable cursor from the idle reaper, however short cursorTimeoutMillis', async () => {
    const admin = other.db('admin');
    await admin.command({ setParameter: 1, cursorTimeoutMillis: 100 });
    try {
      const waiting = await openTail(tailer);
      const idle = await openTail(other);
      const before = await getMoreCount(other);
      // Ten minutes: only the insert below ends this wait.
      const reply = tailer.db('local').command({ getMore: waiting, collection: 'oplog.rs', maxTimeMS: 600_000 });
      await until(async () => (await getMoreCount(other)) > before);
      // The reaper has run past both cursors' idle deadline once the idle one is gone. A
      // getMore naming another collection finds the cursor without using it (getmore_cmd.cpp
      // checks the namespace before it touches the cursor): 13 while it lives, 43 once reaped.
      await until(async () => (await failureOf(other.db('local').command({ getMore: idle, collection: 'elsewhere' }))).code === 43);
      // Back to mongod's default while the getMore still waits, so that nothing after it
      // races the reaper.
      await admin.command({ setParameter: 1, cursorTimeoutMillis: 600_000 });
      await other.db('pin').collection<{ _id: number }>('c').insertOne({ _id: 1 });
      const cursor = (await reply)['cursor'] as Document;
      assert.deepEqual((cursor['nextBatch'] as Document[]).map((e) => [e['op'], e['ns']]), [['c', 'pin.$cmd'], ['i', 'pin.c']]);
      assert.equal(Long.fromValue(cursor['id'] as Long).toString(), waiting.toString());
      const next = await tailer.db('local').command({ getMore: waiting, collection: 'oplog.rs', maxTimeMS: 1 });
      assert.deepEqual((next['cursor'] as Document)['nextBatch'], []);
      await tailer.db('local').command({ killCursors: 'oplog.rs', cursors: [waiting] });
    } finally {
      await admin.command({ setParameter: 1, cursorTimeoutMillis: 600_000 });
    }
  });

  it('killCursors during a wait fails the getMore with CursorKilled, and the cursor is gone', async () => {
    const waiting = await openTail(tailer);
    const before = await getMoreCount(other);
    const reply = failureOf(tailer.db('local').command({ getMore: waiting, collection: 'oplog.rs', maxTimeMS: 600_000 }));
    await until(async () => (await getMoreCount(other)) > before);
    const killed = await other.db('local').command({ killCursors: 'oplog.rs', cursors: [waiting] });
    assert.deepEqual((killed['cursorsKilled'] as Long[]).map(String), [waiting.toString()]);
    // cursor_manager.cpp: killCursor kills the operation using a pinned cursor with CursorKilled.
    assert.deepEqual(await reply, { code: 237, codeName: 'CursorKilled', message: 'operation was interrupted' });
    const again = await failureOf(tailer.db('local').command({ getMore: waiting, collection: 'oplog.rs', maxTimeMS: 1 }));
    assert.deepEqual([again.code, again.message], [43, `cursor id ${waiting.toString()} not found`]);
  });
});
