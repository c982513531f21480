/**
 * Stopping a backup through the proxy, as a user does it: `{backupAbort: 1}`, or
 * `db.currentOp()` to find the backup and `db.killOp(opid)` to kill it (Percona's way),
 * with the real driver and the real mongosh, against the dev server. The 1 s bound on an
 * abort is the issue's own acceptance; nothing else here depends on the clock.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runMongosh } from '../helpers/mongosh.js';
import { startTapRelay } from '../helpers/tap_relay.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilBackupEnds, untilCopying } from '../helpers/poll.js';
import { RawClient, decodeReply, opMsg } from '../helpers/raw_client.js';

const MANIFEST = 'hotbackup-manifest.json';
/** The bound on an abort, from the request to a stopped backup. */
const ABORT_WITHIN_MS = 1000;
const OPID_BASE = 2 ** 32;
const OP_COMPRESSED = 2012;

async function rejection(promise: Promise<unknown>): Promise<MongoServerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MongoServerError, `a server error, not ${String(err)}`);
    return err;
  }
  assert.fail('expected the command to fail');
}

describe('aborting a backup through the proxy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  let direct: MongoClient;
  const scratch = tempDir('abort');
  const admin = () => client.db('admin');
  let serial = 0;
  const destination = (name: string) => path.join(scratch.dir, `${name}-${++serial}`);

  /** A backup that crawls at 1 MiB/s (the journal's 100 MiB file alone takes minutes), under way. */
  async function crawlingBackup(extra: Document = {}): Promise<{ dest: string; backupId: string }> {
    await admin().command({ backupThrottle: '1MB' });
    const dest = destination('crawl');
    const reply = await admin().command({ backupStart: dest, async: true, ...extra });
    await untilCopying(admin());
    return { dest, backupId: String(reply['backupId']) };
  }

  /** What every abort must leave: no backup running, `last` aborted, no manifest. */
  async function assertAborted(dest: string, backupId: string, by: RegExp): Promise<Document> {
    const status = await admin().command({ backupStatus: 1 });
    assert.equal(status['inProgress'], false);
    const last = status['last'] as Document;
    assert.equal(last['backupId'], backupId);
    assert.equal(last['ok'], false);
    assert.equal(last['state'], 'aborted');
    assert.equal(last['code'], 11601);
    assert.equal(last['codeName'], 'Interrupted');
    assert.match(String(last['errmsg']), /^operation was interrupted: backup [0-9a-f-]{36} was aborted by /);
    assert.match(String(last['errmsg']), by);
    assert.ok(fs.existsSync(dest), 'what was copied stays, to be removed by the user');
    assert.equal(fs.existsSync(path.join(dest, MANIFEST)), false, 'an aborted backup has no manifest');
    return last;
  }

  /** The next backup, at full speed, completes: nothing of the aborted one is left held (a cursor would refuse it with 50886). */
  async function assertNextBackupSucceeds(extra: Document = {}): Promise<void> {
    await admin().command({ backupThrottle: 0 });
    const dest = destination('next');
    assert.deepEqual(await admin().command({ backupStart: dest, ...extra }), { ok: 1 });
    assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
    assert.equal(((await admin().command({ backupStatus: 1 }))['last'] as Document)['state'], 'complete');
  }

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    direct = new MongoClient(server.uri);
    await Promise.all([client.connect(), direct.connect()]);
    await client.db('app').collection('docs').insertMany(Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'a'.repeat(1000) })));
    await admin().command({ fsync: 1 });
  });

  after(async () => {
    await client?.close();
    await direct?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('answers backupAbort with no backup running with an error that says so', async () => {
    const err = await rejection(admin().command({ backupAbort: 1 }));
    assert.equal(err.code, 20);
    assert.equal(err.codeName, 'IllegalOperation');
    assert.equal(err.message, 'backupAbort called when no backup is running');
    const other = await rejection(client.db('app').command({ backupAbort: 1 }));
    assert.equal(other.code, 13, 'admin only, as the other backup commands');
  });

  it('backupAbort stops a throttled backup within 1 s, and its blocked backupStart gets Interrupted', async (t) => {
    await admin().command({ backupThrottle: '1MB' });
    const dest = destination('blocking');
    // A second client blocks in backupStart, as Percona's users did.
    const blocker = new MongoClient(proxy.uri);
    await blocker.connect();
    try {
      const blocked = blocker.db('admin').command({ backupStart: dest }).then(
        () => assert.fail('the aborted backupStart must not succeed'),
        (err: unknown) => ({ err, at: performance.now() }),
      );
      const running = await untilCopying(admin());
      const sent = performance.now();
      const reply = await admin().command({ backupAbort: 1 });
      const answered = performance.now() - sent;
      assert.deepEqual(reply, { backupId: running['backupId'], state: 'aborted', info: `aborted; ${dest} has no manifest`, ok: 1 });
      assert.ok(answered < ABORT_WITHIN_MS, `backupAbort answered ${answered.toFixed(0)} ms after it was sent, the backup stopped`);

      const { err, at } = await blocked;
      t.diagnostic(`backupAbort answered in ${answered.toFixed(0)} ms; the blocked backupStart got its error ${(at - sent).toFixed(0)} ms after the abort was sent`);
      assert.ok(err instanceof MongoServerError, String(err));
      assert.equal(err.code, 11601);
      assert.equal(err.codeName, 'Interrupted');
      assert.match(err.message, /^operation was interrupted: backup [0-9a-f-]{36} was aborted by \{backupAbort: 1\} from 127\.0\.0\.1:\d+; /);
      assert.ok(at - sent < ABORT_WITHIN_MS, `the blocked backupStart was answered ${(at - sent).toFixed(0)} ms after the abort was sent`);
      await assertAborted(dest, String(running['backupId']), /\{backupAbort: 1\} from 127\.0\.0\.1:\d+/);
    } finally {
      await blocker.close();
    }
    await assertNextBackupSucceeds();
  });

  it('lists the running backup in currentOp beside mongod\'s own operations, and only where the filter holds', async () => {
    const { dest, backupId } = await crawlingBackup({ comment: 'nightly' });
    try {
      const reply = await admin().command({ currentOp: 1 });
      const inprog = reply['inprog'] as Document[];
      const ours = inprog.filter((op) => (op['command'] as Document | undefined)?.['backupStart'] === dest);
      assert.equal(ours.length, 1, JSON.stringify(inprog));
      const op = ours[0] as Document;
      assert.ok(typeof op['opid'] === 'number' && op['opid'] > OPID_BASE, `opid ${String(op['opid'])} is beyond every 32-bit opid of mongod`);
      assert.equal(op['active'], true);
      assert.equal(op['op'], 'command');
      assert.equal(op['desc'], 'hotbackup');
      assert.deepEqual(op['command'], { backupStart: dest, async: true, comment: 'nightly', lsid: op['command'] && (op['command'] as Document)['lsid'], $db: 'admin' });
      assert.ok(typeof op['secs_running'] === 'number' && op['secs_running'] >= 0);
      const progress = op['progress'] as { done: number; total: number };
      assert.ok(progress.done > 0 && progress.total >= progress.done, JSON.stringify(progress));
      assert.match(String(op['msg']), /^Hot Backup: copying: \d+\/\d+ \d+%$/);
      assert.equal((op['backup'] as Document)['backupId'], backupId);
      assert.match(String(op['client']), /^127\.0\.0\.1:\d+$/);
      // mongod's own list is still there: the dev server lists the currentOp itself, with its int32 opid.
      const own = inprog.find((o) => (o['command'] as Document | undefined)?.['currentOp'] === 1);
      assert.ok(own !== undefined && typeof own['opid'] === 'number' && own['opid'] < 2 ** 31, JSON.stringify(inprog));

      // The command's filter, and the $currentOp stage with $match (what mongosh sends).
      const filtered = (await admin().command({ currentOp: 1, 'command.backupStart': { $exists: true } }))['inprog'] as Document[];
      assert.deepEqual(filtered.map((o) => o['opid']), [op['opid']]);
      const none = (await admin().command({ currentOp: 1, desc: 'something else' }))['inprog'] as Document[];
      assert.deepEqual(none, []);
      const staged = await admin()
        .aggregate([{ $currentOp: { allUsers: true, idleConnections: false } }, { $match: { desc: 'hotbackup', secs_running: { $gte: 0 } } }])
        .toArray();
      assert.deepEqual(staged.map((o) => o['opid']), [op['opid']]);
      // Any other stage after $currentOp: mongod's answer, untouched.
      const counted = await admin().aggregate([{ $currentOp: {} }, { $count: 'n' }]).toArray();
      assert.deepEqual(counted, [{ n: 1 }], 'the dev server counts only the aggregate itself');
    } finally {
      await admin().command({ backupAbort: 1 });
    }
    await assertAborted(dest, backupId, /backupAbort/);
  });

  it('lists the backup for a currentOp pipelined right behind the async backupStart that started it', async () => {
    await admin().command({ backupThrottle: '1MB' });
    const dest = destination('pipelined');
    // In one write: the currentOp arrives while no backup runs, and is judged when its turn comes, after the start.
    const raw = await RawClient.connect(proxy.port);
    try {
      const start = opMsg({ backupStart: dest, async: true, $db: 'admin' });
      const current = opMsg({ currentOp: 1, 'command.backupStart': dest, $db: 'admin' });
      raw.send(Buffer.concat([start, current]));
      const [started, listed] = (await raw.waitForFrames(2)).map(decodeReply);
      assert.equal(started?.doc['ok'], 1, JSON.stringify(started?.doc));
      const inprog = listed?.doc['inprog'] as Document[];
      assert.deepEqual(inprog.map((op) => (op['backup'] as Document)['backupId']), [started?.doc['backupId']]);
      await admin().command({ backupAbort: 1 });
      await assertAborted(dest, String(started?.doc['backupId']), /backupAbort/);
    } finally {
      raw.close();
    }
  });

  it('killOp of the backup\'s opid stops it within 1 s; other killOps go to mongod untouched', async (t) => {
    const { dest, backupId } = await crawlingBackup();
    const inprog = (await admin().command({ currentOp: 1 }))['inprog'] as Document[];
    const op = inprog.find((o) => (o['command'] as Document | undefined)?.['backupStart'] === dest) as Document;
    const opid = op['opid'] as number;

    // Not ours: mongod's own opid, and an opid of ours that is not running. The replies are
    // mongod's (the same as sent to it directly), and the backup goes on.
    const mongodOp = (inprog.find((o) => o !== op) as Document)['opid'];
    for (const other of [mongodOp, opid + 1000]) {
      const viaProxy = await admin().command({ killOp: 1, op: other }).catch((err: MongoServerError) => ({ code: err.code, errmsg: err.message }));
      const toMongod = await direct.db('admin').command({ killOp: 1, op: other }).catch((err: MongoServerError) => ({ code: err.code, errmsg: err.message }));
      assert.deepEqual(viaProxy, toMongod, `killOp ${String(other)}`);
    }
    assert.equal((await admin().command({ backupStatus: 1 }))['inProgress'], true, 'still running');

    const sent = performance.now();
    assert.deepEqual(await admin().command({ killOp: 1, op: opid }), { info: 'attempting to kill op', ok: 1 });
    await until(async () => (await admin().command({ backupStatus: 1 }))['inProgress'] === false, 10);
    const stopped = performance.now() - sent;
    t.diagnostic(`backupStatus showed the backup ended ${stopped.toFixed(0)} ms after the killOp was sent`);
    assert.ok(stopped < ABORT_WITHIN_MS, `stopped ${stopped.toFixed(0)} ms after the killOp was sent`);
    await assertAborted(dest, backupId, new RegExp(`killOp \\(op ${opid}\\) from 127\\.0\\.0\\.1:\\d+`));
    await assertNextBackupSucceeds();
  });

  it('lists the backup for a client whose messages are compressed, in a reply compressed as mongod\'s', async () => {
    const { dest, backupId } = await crawlingBackup();
    // A tap between the client and the proxy sees what crosses the wire.
    const tap = await startTapRelay(proxy.port);
    const compressing = new MongoClient(`mongodb://127.0.0.1:${tap.port}/?directConnection=true&compressors=zlib`);
    await compressing.connect();
    try {
      const compressedBefore = tap.replyOpcodes.filter((opCode) => opCode === OP_COMPRESSED).length;
      const inprog = (await compressing.db('admin').command({ currentOp: 1 }))['inprog'] as Document[];
      const op = inprog.find((o) => (o['command'] as Document | undefined)?.['backupStart'] === dest);
      assert.ok(op !== undefined, JSON.stringify(inprog));
      assert.ok(inprog.length >= 2, 'with mongod\'s own operations');
      assert.deepEqual(await compressing.db('admin').command({ killOp: 1, op: op['opid'] }), { info: 'attempting to kill op', ok: 1 });
      assert.equal(tap.commands.find((c) => c.name === 'currentOp')?.compressorId, 2, 'sent with zlib');
      assert.equal(tap.replyOpcodes.filter((opCode) => opCode === OP_COMPRESSED).length - compressedBefore, 2, 'both replies came compressed');
    } finally {
      await compressing.close();
      await tap.close();
    }
    await untilBackupEnds(admin());
    await assertAborted(dest, backupId, /killOp/);
  });

  it('db.currentOp() in mongosh shows the backup, and db.killOp(opid) stops it', async () => {
    const { dest, backupId } = await crawlingBackup();
    const listed = await runMongosh(
      proxy.uri,
      `const ops = db.currentOp().inprog.filter((op) => op.command && op.command.backupStart === ${JSON.stringify(dest)});
       print(ops.length + ' ' + ops[0].opid + ' ' + ops[0].desc + ' ' + ops[0].msg);
       print(db.currentOp({ 'command.backupStart': { $exists: true } }).inprog.length);`,
    );
    assert.equal(listed.code, 0, listed.stderr);
    const [first, second] = listed.stdout.trim().split('\n');
    const match = /^1 (\d+) hotbackup Hot Backup: copying: \d+\/\d+ \d+%$/.exec(first ?? '');
    assert.ok(match !== null, listed.stdout);
    assert.equal(second, '1');
    // The opid as a user reads it and types it back.
    const opid = Number(match[1]);
    assert.ok(opid > OPID_BASE);
    const killed = await runMongosh(proxy.uri, `printjson(db.killOp(${opid}))`);
    assert.equal(killed.code, 0, killed.stderr);
    assert.match(killed.stdout, /info: 'attempting to kill op',\s+ok: 1/);
    await untilBackupEnds(admin());
    await assertAborted(dest, backupId, new RegExp(`killOp \\(op ${opid}\\)`));
  });

  it('an abort under the fsyncLock strategy leaves mongod unlocked', async () => {
    const { dest, backupId } = await crawlingBackup({ strategy: 'fsyncLock', allowWriteBlocking: true });
    const locked = async () => (await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'] === true;
    assert.equal(await locked(), true, 'mongod is fsync-locked during the copy');
    const reply = await admin().command({ backupAbort: 1 });
    assert.equal(reply['state'], 'aborted');
    // backupAbort answers once the snapshot is released: unlocked by then.
    assert.equal(await locked(), false, 'mongod is unlocked once backupAbort has answered');
    await client.db('app').collection('docs').insertOne({ after: 'abort' });
    const last = await assertAborted(dest, backupId, /backupAbort/);
    assert.equal(last['strategy'], 'fsyncLock');
    // With the default strategy: the dev server's fsync lock does not pin the journal as
    // mongod's does (WiredTigerKVEngine::beginBackup), so two fsyncLock backups in a row
    // can meet a log file WiredTiger removes after the lock's checkpoint.
    await assertNextBackupSucceeds();
  });

  it('a client that disconnects during a blocking backupStart does not abort it', async () => {
    await admin().command({ backupThrottle: '1MB' });
    const dest = destination('orphan');
    const leaver = new MongoClient(proxy.uri);
    await leaver.connect();
    const blocked = leaver.db('admin').command({ backupStart: dest }).catch((err: unknown) => err);
    const running = await untilCopying(admin());
    // Closes its sockets with the command in flight, as a killed shell would.
    await leaver.close(true);
    assert.ok((await blocked) instanceof Error, 'the departed client got no reply');
    const still = await admin().command({ backupStatus: 1 });
    assert.equal(still['inProgress'], true, 'backupStatus shows it running');
    assert.equal(still['backupId'], running['backupId']);
    await admin().command({ backupThrottle: 0 });
    const done = await untilBackupEnds(admin());
    const last = done['last'] as Document;
    assert.equal(last['backupId'], running['backupId']);
    assert.equal(last['state'], 'complete', String(last['errmsg']));
    assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
  });

  it('refuses unknown backupStart options with mongod\'s IDL error, and takes the generic ones', async () => {
    await admin().command({ backupThrottle: 0 });
    const lastBefore = (await admin().command({ backupStatus: 1 }))['last'];
    const dest = destination('strict');
    const misspelt = await rejection(admin().command({ backupStart: dest, allowWriteBlock: true }));
    assert.equal(misspelt.code, 40415);
    assert.equal(misspelt.codeName, 'IDLUnknownField');
    assert.equal(misspelt.message, "BSON field 'backupStart.allowWriteBlock' is an unknown field.");
    // A misspelt incrementalBase must never become a full backup.
    const misspeltBase = await rejection(admin().command({ backupStart: dest, incrementalbase: '/backups/monday' }));
    assert.equal(misspeltBase.code, 40415);
    assert.equal(misspeltBase.message, "BSON field 'backupStart.incrementalbase' is an unknown field.");
    assert.equal(fs.existsSync(dest), false, 'a refused request creates nothing');
    assert.deepEqual((await admin().command({ backupStatus: 1 }))['last'], lastBefore, 'and is no backup');
    // The fields every command may carry (generic_argument.idl) are not the command's business.
    const reply = await admin().command({ backupStart: dest, comment: 'nightly', maxTimeMS: 600000, readConcern: { level: 'local' } });
    assert.deepEqual(reply, { ok: 1 });
    assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
    const abortErr = await rejection(admin().command({ backupAbort: 1, force: true }));
    assert.equal(abortErr.message, "BSON field 'backupAbort.force' is an unknown field.");
  });
});
