/**
 * `hotbackup restore --root R --to-time T`, as a DBA runs it after a day of backups with the
 * oplog streamed into R/oplog: two backups through the proxy with writes between and after
 * them; a T between the two restores the first and replays up to T; a T after the second
 * restores the second; a T before the first, a root without oplog/, and a root holding two
 * sources' backups are refused with exit 4 and nothing written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import type { Timestamp } from 'bson';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli, startCli, type RunningCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { streamedEntries, timestampArg as tsArg } from '../helpers/oplog_entries.js';
import { entryTs, formatOplogTs, parsePointInTime } from '../../src/oplog/oplog_ts.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';

/** The ts of the newest entry in the streamed files, once there is one. */
function newestStreamed(dir: string): string | undefined {
  const newest = streamedEntries(dir).at(-1);
  return newest === undefined ? undefined : formatOplogTs(entryTs(newest));
}

describe('parsePointInTime', () => {
  it('takes secs,inc as --until does, and an ISO UTC second as every entry of that second', () => {
    assert.deepEqual(parsePointInTime('1466234959,7', '--to-time'), { secs: 1466234959, inc: 7 });
    assert.deepEqual(parsePointInTime('2026-11-30T14:06:59Z', '--to-time'), { secs: Date.UTC(2026, 10, 30, 14, 6, 59) / 1000, inc: 0xffff_ffff });
    for (const bad of ['2026-02-30T00:00:00Z', '2026-11-30T14:06:59', '2026-11-30T14:06:59.5Z', 'yesterday', '12']) {
      assert.throws(() => parsePointInTime(bad, '--to-time'), /--to-time/, bad);
    }
  });
});

describe('restore --root --to-time', () => {
  const scratch = tempDir('to-time');
  const root = path.join(scratch.dir, 'root');
  const oplogDir = path.join(root, 'oplog');
  let set: RunningReplicaSet;
  let proxy: RunningProxy;
  let client: MongoClient;
  let streamer: RunningCli | undefined;
  /** operationTime of each acknowledged insert, by _id. */
  const acked: Timestamp[] = [];

  const insert = async (count: number): Promise<void> => {
    for (let n = 0; n < count; n++) {
      const id = acked.length;
      const reply = await client.db('shop').command({ insert: 'orders', documents: [{ _id: id }], writeConcern: { w: 1, j: true } });
      assert.equal(reply['n'], 1);
      acked.push(reply['operationTime'] as Timestamp);
    }
  };
  const backup = async (name: string): Promise<void> => {
    const admin = new MongoClient(proxy.uri);
    try {
      const reply = await admin.db('admin').command({ backupStart: path.join(root, name) });
      assert.equal(reply['ok'], 1, JSON.stringify(reply));
    } finally {
      await admin.close();
    }
  };
  const restoredIds = async (dbpath: string): Promise<number[]> => {
    const copy = await startDevServer({ dbpath });
    const reader = new MongoClient(copy.uri);
    try {
      return (await reader.db('shop').collection('orders').find({}, { projection: { _id: 1 }, sort: { _id: 1 } }).toArray()).map((d) => d['_id'] as unknown as number);
    } finally {
      await reader.close();
      await copy.stop();
    }
  };
  const upTo = (id: number): number[] => Array.from({ length: id + 1 }, (_, i) => i);

  before(async () => {
    set = await startReplicaSet();
    proxy = await startProxy(set.server);
    client = await MongoClient.connect(set.uri);
    fs.mkdirSync(root);
    streamer = startCli(['oplog', '--upstream', set.uri, '--out', oplogDir]);
    await until(() => newestStreamed(oplogDir) !== undefined);
    await insert(10); // _id 0..9
    await backup('b1');
    await insert(10); // _id 10..19
    await backup('b2');
    await insert(10); // _id 20..29
    const last = tsArg(acked[29] as Timestamp);
    await until(() => newestStreamed(oplogDir) === last);
    streamer.child.kill('SIGINT');
    const stopped = await streamer.done;
    assert.equal(stopped.code, 0, stopped.stderr);
  });
  after(async () => {
    if (streamer !== undefined && streamer.child.exitCode === null) streamer.child.kill('SIGKILL');
    await client?.close();
    await proxy?.stop();
    await set?.server.stop();
    set?.server.cleanup();
    scratch.remove();
  });

  it('between the two backups: restores the first and replays exactly up to T', async () => {
    const to = path.join(scratch.dir, 'between');
    const run = await runCli(['restore', '--root', root, '--to-time', tsArg(acked[14] as Timestamp), '--to', to]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /^Chose backup b1 \(finished [^)]+\): the newest complete backup under .* whose copy ends at or before \d+,\d+ \(it holds writes up to \d+,\d+, its oplog end\); not verified/m);
    assert.deepEqual(await restoredIds(to), upTo(14));
  });

  it('after the second backup: restores the second', async () => {
    const to = path.join(scratch.dir, 'after');
    const run = await runCli(['restore', '--root', root, '--to-time', tsArg(acked[24] as Timestamp), '--to', to]);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /^Chose backup b2 /m);
    assert.deepEqual(await restoredIds(to), upTo(24));
  });

  it('before the first backup: refused with exit 4, nothing written', async () => {
    const to = path.join(scratch.dir, 'before');
    const run = await runCli(['restore', '--root', root, '--to-time', tsArg(acked[5] as Timestamp), '--to', to]);
    assert.equal(run.code, 4, run.stderr + run.stdout);
    assert.match(run.stderr, /^hotbackup restore: cannot restore to \d+,\d+: no backup under .* ends at or before \d+,\d+: the earliest copy among its complete backups ends at \d+,\d+; .*nothing was written\n$/);
    assert.equal(fs.existsSync(to), false);
  });

  it('a root without oplog/, or with two sources, is refused with exit 4 and names them', async () => {
    const bare = path.join(scratch.dir, 'bare');
    fs.mkdirSync(bare);
    const to = path.join(scratch.dir, 'refused');
    const noOplog = await runCli(['restore', '--root', bare, '--to-time', '2099-01-01T00:00:00Z', '--to', to]);
    assert.equal(noOplog.code, 4, noOplog.stderr);
    assert.match(noOplog.stderr, /has no oplog\/ directory/);

    // Two manifests of different dbpaths: the catalog reads manifests only.
    fs.mkdirSync(path.join(bare, 'oplog'));
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'b1', MANIFEST_FILENAME), 'utf8')) as { source: { dbpath: string } };
    for (const [name, dbpath] of [['x', manifest.source.dbpath], ['y', '/elsewhere/db']] as const) {
      fs.mkdirSync(path.join(bare, name));
      fs.writeFileSync(path.join(bare, name, MANIFEST_FILENAME), JSON.stringify({ ...manifest, source: { ...manifest.source, dbpath } }));
    }
    const mixed = await runCli(['restore', '--root', bare, '--to-time', '2099-01-01T00:00:00Z', '--to', to]);
    assert.equal(mixed.code, 4, mixed.stderr);
    assert.match(mixed.stderr, /holds the backups of 2 sources: .*\/elsewhere\/db/);
    assert.equal(fs.existsSync(to), false);
  });
});
