/**
 * `hotbackup restore --oplog DIR --until TS`, the CLI as a child process: a backup taken
 * through the proxy, restored, brought forward by the oplog files from the backup's own
 * last oplog entry up to TS (through the dev server it starts on the restore and stops),
 * and opened afterwards.
 *
 * The server here is a standalone whose `local.oplog.rs` is written by the test, one
 * entry standing for the backup's last; the end-to-end test on a replica set, with the
 * files `hotbackup oplog` streams, belongs with those slices.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Int32, Long, MongoClient, Timestamp, UUID, type Document } from 'mongodb';
import { serialize } from 'bson';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';

const SECS = 1_700_000_100;
const ts = (i: number) => new Timestamp({ t: SECS, i });
const entry = (i: number, fields: Document): Document => ({ ts: ts(i), t: Long.fromNumber(1), ...fields, v: Long.fromNumber(2), wall: new Date() });

describe('hotbackup restore --oplog --until', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  const scratch = tempDir('restore-oplog');
  const backup = path.join(scratch.dir, 'backup');
  const oplogDir = path.join(scratch.dir, 'oplog');

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    const client = await MongoClient.connect(proxy.uri);
    try {
      await client.db('app').collection('seq').insertMany([0, 1, 2].map((i) => ({ _id: i })) as never[]);
      // The backup's last oplog entry: ts 3.
      await client.db('local').collection('oplog.rs').insertOne(entry(3, { op: 'i', ns: 'app.seq', o: { _id: 2 } }));
      const [info] = await client.db('app').listCollections({ name: 'seq' }).toArray();
      const ui = (info as unknown as { info: { uuid: UUID } }).info.uuid;
      assert.deepEqual(await client.db('admin').command({ backupStart: backup }), { ok: 1 });
      // The stream holds entries from before the backup on, as a streamer started earlier does.
      const entries = [
        entry(2, { op: 'i', ns: 'app.seq', ui, o: { _id: 1 } }),
        entry(3, { op: 'i', ns: 'app.seq', ui, o: { _id: 2 } }),
        ...[3, 4, 5, 6].map((id) => entry(id + 1, { op: 'i', ns: 'app.seq', ui, o: { _id: id } })),
        entry(8, { op: 'u', ns: 'app.seq', ui, o: { $v: new Int32(2), diff: { i: { last: true } } }, o2: { _id: 5 } }),
      ];
      fs.mkdirSync(oplogDir);
      fs.writeFileSync(path.join(oplogDir, 'oplog000000.bson'), Buffer.concat(entries.slice(0, 3).map((e) => Buffer.from(serialize(e)))));
      fs.writeFileSync(path.join(oplogDir, 'oplog000001.bson'), Buffer.concat(entries.slice(3).map((e) => Buffer.from(serialize(e)))));
    } finally {
      await client.close();
    }
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  async function idsIn(dbpath: string): Promise<Document[]> {
    const restored = await startDevServer({ dbpath });
    const client = await MongoClient.connect(restored.uri);
    try {
      return await client.db('app').collection('seq').find().sort({ _id: 1 }).toArray();
    } finally {
      await client.close();
      await restored.stop();
    }
  }

  it('restores, replays from the backup\'s last entry up to --until, stops the server: nothing after --until', async () => {
    const target = path.join(scratch.dir, 'restored');
    const run = await runCli(['restore', backup, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Replaying .* from the backup's last oplog entry, ts 1700000100,3, up to 1700000100,6\./);
    assert.match(run.stdout, /Replayed 3 oplog entries .*: 3 applied\./);
    assert.match(run.stdout, /holds the backup and the oplog up to 1700000100,6\. Start mongod with --dbpath/);
    assert.deepEqual(await idsIn(target), [0, 1, 2, 3, 4, 5].map((i) => ({ _id: i })));
  });

  it('exit 5 when the backup already holds entries past --until; the files are restored', async () => {
    const target = path.join(scratch.dir, 'too-early');
    const run = await runCli(['restore', backup, '--to', target, '--oplog', oplogDir, '--until', `${SECS},1`]);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, /the backup already holds entries up to ts 1700000100,3, after --until 1700000100,1: a restore cannot go back in time/);
    assert.deepEqual(await idsIn(target), [0, 1, 2].map((i) => ({ _id: i })));
  });

  it('--oplog without --until is a usage error', async () => {
    const run = await runCli(['restore', backup, '--to', path.join(scratch.dir, 'x'), '--oplog', oplogDir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--oplog <dir> and --until <secs,inc> go together/);
  });
});
