/**
 * Issue 13's acceptance, end to end, as a DBA would run it against a replica set:
 * a writer inserts sequential `_id`s with j:true; `hotbackup oplog` streams the oplog;
 * a backup is taken through the proxy in the middle while the writer goes on; T is
 * the operationTime of an acknowledged write made after the backup finished; then
 * `hotbackup restore <backup> --to <dbpath> --oplog <dir> --until T` must give exactly
 * the documents acknowledged up to that write: no gap, nothing after T.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient, type Collection } from 'mongodb';
import type { Timestamp } from 'bson';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli, startCli, type RunningCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { inBackground, until } from '../helpers/poll.js';
import { streamedEntries, timestampArg as tsArg } from '../helpers/oplog_entries.js';
import { entryTs, formatOplogTs } from '../../src/oplog/oplog_ts.js';

interface Acknowledged {
  id: number;
  operationTime: Timestamp;
}

describe('point in time: stream, back up, restore to T', () => {
  const scratch = tempDir('pitr');
  let set: RunningReplicaSet;
  let proxy: RunningProxy;
  let client: MongoClient;
  let streamer: RunningCli | undefined;

  before(async () => {
    set = await startReplicaSet();
    proxy = await startProxy(set.server);
    client = await MongoClient.connect(set.uri);
  });
  after(async () => {
    if (streamer !== undefined && streamer.child.exitCode === null) streamer.child.kill('SIGKILL');
    await client?.close();
    await proxy?.stop();
    await set?.server.stop();
    set?.server.cleanup();
    scratch.remove();
  });

  it('gives exactly the documents acknowledged at or before T', async () => {
    const oplogDir = path.join(scratch.dir, 'oplog');
    const backupDir = path.join(scratch.dir, 'backup');
    const restored = path.join(scratch.dir, 'restored');
    const docs: Collection<{ _id: number; pad: string }> = client.db('shop').collection('orders');
    await docs.insertOne({ _id: -1, pad: 'before the streamer' }, { writeConcern: { j: true } });

    // Streaming from the newest entry now, so everything the writer does is in the files.
    streamer = startCli(['oplog', '--upstream', set.uri, '--out', oplogDir, '--rotate-size', '64KB']);
    await until(() => streamedEntries(oplogDir).length > 0);

    const acknowledged: Acknowledged[] = [];
    let nextId = 0;
    let stopWriting = false;
    const writing = inBackground(async () => {
      while (!stopWriting) {
        const id = nextId++;
        // The insert command itself, to read the reply's operationTime: the write's own ts.
        const reply = await client.db('shop').command({ insert: 'orders', documents: [{ _id: id, pad: 'x'.repeat(200) }], writeConcern: { w: 1, j: true } });
        assert.equal(reply['n'], 1);
        acknowledged.push({ id, operationTime: reply['operationTime'] as Timestamp });
      }
    });
    try {
      await writing.until(() => acknowledged.length >= 200);
      const admin = new MongoClient(proxy.uri);
      try {
        const reply = await admin.db('admin').command({ backupStart: backupDir });
        assert.equal(reply['ok'], 1, JSON.stringify(reply));
      } finally {
        await admin.close();
      }
      const afterBackup = acknowledged.length;
      // T: a write acknowledged well after the backup ended, with more writes after it.
      await writing.until(() => acknowledged.length >= afterBackup + 300);
      stopWriting = true;
      await writing.done;
    } finally {
      stopWriting = true;
    }
    const target = acknowledged[acknowledged.length - 150] as Acknowledged;
    const last = acknowledged[acknowledged.length - 1] as Acknowledged;
    assert.ok(acknowledged.length - 150 > 200 + 1, 'T is after the backup');

    // The streamer has every write once its files reach the last one; then stop it as an operator does.
    await until(() => {
      const entries = streamedEntries(oplogDir);
      const newest = entries[entries.length - 1];
      return newest !== undefined && formatOplogTs(entryTs(newest)) === tsArg(last.operationTime);
    });
    streamer.child.kill('SIGINT');
    const stopped = await streamer.done;
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /^Backed up to ts: Timestamp \d+000\|\d+\nUse --from \d+,\d+ to resume\.\n$/);

    const restore = await runCli(['restore', backupDir, '--to', restored, '--oplog', oplogDir, '--until', tsArg(target.operationTime)]);
    assert.equal(restore.code, 0, restore.stderr + restore.stdout);

    const copy = await startDevServer({ dbpath: restored });
    const reader = new MongoClient(copy.uri);
    try {
      const ids = (await reader.db('shop').collection('orders').find({}, { projection: { _id: 1 }, sort: { _id: 1 } }).toArray()).map((d) => d['_id'] as unknown as number);
      const expected = [-1, ...Array.from({ length: target.id + 1 }, (_, i) => i)];
      assert.equal(ids.length, expected.length, `documents up to _id ${target.id}, no more: got ${ids.length}, last ${ids[ids.length - 1]}`);
      assert.deepEqual(ids, expected, 'every document up to T and nothing after it');
    } finally {
      await reader.close();
      await copy.stop();
    }
  });
});
