/**
 * An abort while mongod is still taking the backup's fsync lock. mongod answers a first
 * `{fsync: 1, lock: true}` only once its checkpoint is done, which on a large dataset
 * takes seconds or minutes (here the dev server's --fsync-lock-delay-ms holds it 4 s).
 * The abort must not wait for it: backupAbort answers within the 1 s, and the
 * lock, which cannot be withdrawn, is released as soon as mongod answers it; until then
 * the state file keeps the lock on record (a proxy that died meanwhile would leave one
 * fsyncUnlock owed), and afterwards it says it is released.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { workDirs } from '../../src/backup/work_dirs.js';
import { readStateFile, stateFilePath } from '../../src/backup/run_state_file.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';

const ABORT_WITHIN_MS = 1000;
/** Long beside the 1 s an abort may take: the lock cannot land before backupAbort has answered. */
const LOCK_DELAY_MS = 4000;

describe('aborting a backup while mongod is taking its fsync lock', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  let direct: MongoClient;
  const scratch = tempDir('abort-fsync-lock');

  before(async () => {
    server = await startDevServer({ args: ['--fsync-lock-delay-ms', String(LOCK_DELAY_MS)] });
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    direct = new MongoClient(server.uri);
    await Promise.all([client.connect(), direct.connect()]);
    await direct.db('app').collection('docs').insertMany(Array.from({ length: 200 }, (_, i) => ({ i })));
  });

  after(async () => {
    // Never leave the server locked, whatever failed.
    const locked = async () => (await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'] === true;
    while (await locked().catch(() => false)) await direct.db('admin').command({ fsyncUnlock: 1 });
    await client?.close();
    await direct?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('answers backupAbort within 1 s, then releases the lock as soon as it lands, and keeps it on record until then', async (t) => {
    const admin = client.db('admin');
    const locked = async () => (await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'] === true;
    const stateFile = stateFilePath(workDirs(server.dbpath).stateDir);
    const recordedLock = async () => {
      const read = await readStateFile(stateFile);
      return read.kind === 'valid' ? read.state.fsyncLock : undefined;
    };
    const logged = (msg: string) => server.logs.some((entry) => entry['msg'] === msg);

    const dest = path.join(scratch.dir, 'b');
    const started = await admin.command({ backupStart: dest, strategy: 'fsyncLock', allowWriteBlocking: true, async: true });
    // mongod has the lock request and is flushing before it answers.
    await until(() => logged('fsyncLock: flushing before the lock is answered (delayed)'));

    const sent = performance.now();
    const reply = await admin.command({ backupAbort: 1 });
    const answered = performance.now() - sent;
    t.diagnostic(`backupAbort answered in ${answered.toFixed(0)} ms, with mongod still taking the lock`);
    assert.deepEqual(reply, { backupId: started['backupId'], state: 'aborted', info: `aborted; ${dest} has no manifest`, ok: 1 });
    assert.ok(answered < ABORT_WITHIN_MS, `answered ${answered.toFixed(0)} ms after it was sent`);
    assert.equal(logged('fsyncLock acquired'), false, 'mongod had not answered the lock when backupAbort answered');
    const last = (await admin.command({ backupStatus: 1 }))['last'] as Document;
    assert.equal(last['state'], 'aborted');
    assert.equal(last['code'], 11601);
    assert.equal(fs.existsSync(path.join(dest, MANIFEST_FILENAME)), false);
    // Until mongod answers, the lock stays on record (and its watchdog armed): a crash now still owes one fsyncUnlock.
    assert.equal((await recordedLock())?.phase, 'locking');

    // mongod answers the lock after all; the proxy releases it at once.
    await until(() => logged('fsyncLock acquired'));
    await until(() => server.logs.some((entry) => entry['msg'] === 'fsyncUnlock' && entry['lockCount'] === 0));
    assert.equal(await locked(), false, 'mongod ends unlocked');
    await until(async () => (await recordedLock())?.phase === 'unlocked');
    await direct.db('app').collection('docs').insertOne({ after: 'abort' });

    // Nothing is held: the next backup runs.
    assert.deepEqual(await admin.command({ backupStart: path.join(scratch.dir, 'next') }), { ok: 1 });
  });
});
