/** fsyncLock holds writers back until fsyncUnlock, as mongod does. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { MongoClient, MongoServerError } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { until } from '../helpers/poll.js';

describe('fsyncLock on the dev server', () => {
  let server: RunningDevServer;
  let client: MongoClient;

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('completes an insert issued during the lock only after fsyncUnlock', async () => {
    const admin = client.db('admin');
    const locked = await admin.command({ fsync: 1, lock: true });
    assert.equal(Number(locked['lockCount']), 1);
    assert.equal((await admin.command({ currentOp: 1 }))['fsyncLock'], true);

    let insertDoneAt = 0;
    const insert = client.db('app').collection('t').insertOne({ during: 'lock' }).then(() => {
      insertDoneAt = Date.now();
    });
    // The server says the insert reached it and waits on the lock.
    await until(async () => {
      const inprog = (await admin.command({ currentOp: 1 }))['inprog'] as Array<{ waitingForLock?: boolean; numWaiting?: number }>;
      return inprog.some((op) => op.waitingForLock === true && op.numWaiting === 1);
    });
    assert.equal(insertDoneAt, 0, 'the insert must wait for the unlock');
    // Reads still work while locked.
    assert.equal(await client.db('app').collection('t').countDocuments(), 0);

    const unlockedAt = Date.now();
    const unlocked = await admin.command({ fsyncUnlock: 1 });
    assert.equal(Number(unlocked['lockCount']), 0);
    await insert;
    assert.ok(insertDoneAt >= unlockedAt);
    assert.equal(await client.db('app').collection('t').countDocuments(), 1);
    assert.equal((await admin.command({ currentOp: 1 }))['fsyncLock'], undefined);
  });

  it('nests locks and keeps them after the locking client disconnects', async () => {
    const locker = new MongoClient(server.uri);
    await locker.connect();
    await locker.db('admin').command({ fsync: 1, lock: true });
    const second = await locker.db('admin').command({ fsync: 1, lock: true });
    assert.equal(Number(second['lockCount']), 2);
    await locker.close();

    const admin = client.db('admin');
    assert.equal((await admin.command({ currentOp: 1 }))['fsyncLock'], true, 'the lock outlives its connection');
    assert.equal(Number((await admin.command({ fsyncUnlock: 1 }))['lockCount']), 1);
    assert.equal(Number((await admin.command({ fsyncUnlock: 1 }))['lockCount']), 0);
    await assert.rejects(admin.command({ fsyncUnlock: 1 }), (err: unknown) => {
      assert.ok(err instanceof MongoServerError);
      assert.equal(err.message, 'fsyncUnlock called when not locked');
      assert.equal(err.code, 20);
      assert.equal(err.codeName, 'IllegalOperation');
      return true;
    });
  });

  it('flushes only on the first lock: a nested lock leaves every file as it was', async () => {
    // mongod's fsync.cpp starts the flushing FSyncLockThread only when the count goes from
    // 0 to 1; a nested lock (another backup, a DBA, the proxy's lock count probe) only counts.
    await client.db('app').collection('nested').insertMany(Array.from({ length: 500 }, (_, i) => ({ i, pad: 'x'.repeat(200) })));
    const admin = client.db('admin');
    assert.equal(Number((await admin.command({ fsync: 1, lock: true }))['lockCount']), 1);
    try {
      const atFirstLock = contents(server.dbpath);
      assert.equal(Number((await admin.command({ fsync: 1, lock: true }))['lockCount']), 2);
      assert.deepEqual(changedFiles(atFirstLock, contents(server.dbpath)), [], 'files written by a nested fsyncLock');
      assert.equal(Number((await admin.command({ fsyncUnlock: 1 }))['lockCount']), 1);
    } finally {
      await admin.command({ fsyncUnlock: 1 });
    }
  });
});

/** Relative path → sha256 of every file under the dbpath. */
function contents(dbpath: string): Map<string, string> {
  return new Map(
    fs
      .readdirSync(dbpath, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => {
        const file = path.join(entry.parentPath, entry.name);
        return [path.relative(dbpath, file), createHash('sha256').update(fs.readFileSync(file)).digest('hex')];
      }),
  );
}

function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...new Set([...before.keys(), ...after.keys()])].filter((name) => before.get(name) !== after.get(name)).sort();
}
