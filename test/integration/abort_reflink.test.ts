/**
 * An abort while the reflink strategy holds mongod fsync-locked, before its clones are
 * made (the fail point hangWhileWritesBlocked holds it there; the window is milliseconds
 * otherwise): within the 1 s the backup ends aborted, mongod is unlocked and takes
 * writes, the staging directory is gone, and the state file holds nothing any more.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';
import { STATE_FILE_NAME, workDirs } from '../../src/backup/work_dirs.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';

const xfsUnavailable = loopFsUnavailable('xfs');
const ABORT_WITHIN_MS = 1000;

describe('aborting a reflink backup while it holds mongod fsync-locked', () => {
  it('unlocks mongod, removes the staging directory and ends aborted, within 1 s', { skip: xfsUnavailable }, async (t) => {
    let fsys: LoopFs | undefined;
    let server: RunningDevServer | undefined;
    let proxy: RunningProxy | undefined;
    let direct: MongoClient | undefined;
    let client: MongoClient | undefined;
    const scratch = tempDir('abort-reflink');
    try {
      fsys = await mountLoopFs('xfs', 400);
      const dbpath = path.join(fsys.dir, 'db');
      fs.mkdirSync(dbpath);
      server = await startDevServer({ dbpath, args: ['--no-backup-cursor'] });
      direct = new MongoClient(server.uri);
      await direct.db('app').collection('c').insertMany(Array.from({ length: 500 }, (_, i) => ({ i, pad: 'x'.repeat(200) })));
      const { stateDir, stagingRoot } = workDirs(dbpath);
      proxy = await startProxy(server, [], { HOTBACKUP_TEST_FAILPOINTS: 'hangWhileWritesBlocked' });
      client = new MongoClient(proxy.uri);
      const admin = client.db('admin');
      const destination = path.join(scratch.dir, 'b');
      await admin.command({ backupStart: destination, async: true });
      const hanging = proxy;
      await until(() => hanging.logs.some((entry) => String(entry['msg']).startsWith('fail point hangWhileWritesBlocked')));
      const locked = async () => (await direct?.db('admin').command({ currentOp: 1 }))?.['fsyncLock'] === true;
      assert.equal(await locked(), true, 'mongod is fsync-locked by the reflink strategy');
      const stagings = () => (fs.existsSync(stagingRoot) ? fs.readdirSync(stagingRoot).filter((name) => name.startsWith('hotbackup-staging-')) : []);
      assert.equal(stagings().length, 1, 'its staging directory exists');
      assert.equal((await admin.command({ backupStatus: 1 }))['strategy'], 'reflink');

      const sent = performance.now();
      const reply = await admin.command({ backupAbort: 1 });
      const answered = performance.now() - sent;
      t.diagnostic(`backupAbort answered in ${answered.toFixed(0)} ms, mongod unlocked`);
      assert.equal(reply['state'], 'aborted');
      assert.ok(answered < ABORT_WITHIN_MS, `answered ${answered.toFixed(0)} ms after it was sent`);
      assert.equal(await locked(), false, 'unlocked once backupAbort has answered');
      await direct.db('app').collection('c').insertOne({ after: 'abort' });
      assert.deepEqual(stagings(), [], 'the staging directory is removed');
      assert.equal(fs.existsSync(path.join(stateDir, STATE_FILE_NAME)), false, 'nothing is left on record for a restart to clean up');
      assert.equal(fs.existsSync(path.join(destination, MANIFEST_FILENAME)), false);
      const last = (await admin.command({ backupStatus: 1 }))['last'] as Document;
      assert.equal(last['state'], 'aborted');
      assert.equal(last['code'], 11601);
      assert.equal(last['strategy'], 'reflink');
    } finally {
      await client?.close();
      await direct?.close();
      await proxy?.stop();
      await server?.stop();
      await fsys?.remove();
      scratch.remove();
    }
  });
});
