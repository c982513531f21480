/**
 * Issue 7, item 1: the backup cursor dies mid-copy (killCursors from another client,
 * or an operator's killSessions / killAllSessions). From then on WiredTiger may reuse
 * the pinned checkpoint's blocks, so the copy is worthless: the backup must fail with
 * an error saying the cursor was lost, and leave no manifest.
 *
 * With a keepalive slower than the copy (the default is 30 s; an hour here, so that none
 * comes during the test however slow the machine) the loss is found at release, by
 * killCursors not listing the id in cursorsKilled. With a short keepalive (200 ms) it is
 * found during the copy, which stops at once: the throttle is never lifted, and the
 * backup ends with fewer bytes copied than listed. The error says which of the two
 * found it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document, type Long } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { startBackupCursorSpy, type BackupCursorSpy } from '../helpers/backup_cursor_spy.js';
import { until, untilBackupEnds, untilCopying } from '../helpers/poll.js';

const MiB = 1024 * 1024;

type Kill = 'killCursors' | 'killSessions' | 'killAllSessions';

function killCommand(kill: Kill, id: Long): Document {
  if (kill === 'killCursors') return { killCursors: '$cmd.aggregate', cursors: [id] };
  // Without authentication, an empty list means every session (patternsForLoggedInUser).
  return { [kill]: [] };
}

/** A keepalive that never comes during a test: only release() can find the loss. */
const NO_KEEPALIVE_MS = 3_600_000;

const cases: Array<{ kill: Kill; keepaliveMs: number }> = [
  { kill: 'killCursors', keepaliveMs: NO_KEEPALIVE_MS },
  { kill: 'killAllSessions', keepaliveMs: NO_KEEPALIVE_MS },
  { kill: 'killCursors', keepaliveMs: 200 },
  { kill: 'killSessions', keepaliveMs: 200 },
];

describe('a backup whose $backupCursor is killed mid-copy', () => {
  let server: RunningDevServer;
  let spy: BackupCursorSpy;
  let direct: MongoClient;
  const scratch = tempDir('cursor-lost');

  before(async () => {
    server = await startDevServer();
    spy = await startBackupCursorSpy(server.port);
    direct = new MongoClient(server.uri);
    // A 30 MB collection, besides the journal's preallocated 100 MiB file.
    const pad = 'x'.repeat(10_000);
    for (let batch = 0; batch < 6; batch++) {
      await direct.db('app').collection('big').insertMany(Array.from({ length: 500 }, (_, i) => ({ n: batch * 500 + i, pad })));
    }
    await direct.db('admin').command({ fsync: 1 });
  });

  after(async () => {
    await direct?.close();
    await spy?.close();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('keeps a live cursor alive in its own session: frequent keepalives, and the backup succeeds', async () => {
    const proxy = await startProxy({ ...server, uri: `mongodb://127.0.0.1:${spy.port}/?directConnection=true` }, ['--backup-cursor-keepalive-ms', '20']);
    const client = new MongoClient(proxy.uri);
    const admin = client.db('admin');
    try {
      // Answers, not requests: mongod counts a getMore in opcounters before it checks the
      // cursor and its session, so a refused keepalive would count there too.
      const before = spy.accepted('getMore');
      await admin.command({ backupThrottle: 64 * MiB });
      const dest = path.join(scratch.dir, 'healthy');
      assert.deepEqual(await admin.command({ backupStart: dest }), { ok: 1 });
      // The drain takes a couple of getMores; the rest are keepalives mongod accepted.
      assert.ok(spy.accepted('getMore') - before > 5, `keepalive getMores that mongod accepted ran during the copy: ${spy.accepted('getMore') - before}`);
      assert.ok(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')));
    } finally {
      await admin.command({ backupThrottle: 0 }).catch(() => undefined);
      await client.close();
      await proxy.stop();
    }
  });

  it('survives a keepalive lost to a network failure: the next one keeps the cursor', async () => {
    const proxy = await startProxy({ ...server, uri: `mongodb://127.0.0.1:${spy.port}/?directConnection=true` }, ['--backup-cursor-keepalive-ms', '20']);
    const client = new MongoClient(proxy.uri);
    const admin = client.db('admin');
    try {
      await admin.command({ backupThrottle: 16 * MiB });
      const dest = path.join(scratch.dir, 'network-blip');
      await admin.command({ backupStart: dest, async: true });
      // Once copying, so that the dropped getMore is a keepalive, not part of the drain.
      await untilCopying(admin);
      await spy.failNext('getMore', 'cut');
      const done = await untilBackupEnds(admin);
      assert.equal((done['last'] as Document)['ok'], true, JSON.stringify(done['last']));
      assert.ok(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')));
      assert.ok(
        proxy.logs.some((l) => l['msg'] === 'backup cursor keepalive failed; retrying at the next tick'),
        'the failed keepalive was logged as a warning',
      );
    } finally {
      await admin.command({ backupThrottle: 0 }).catch(() => undefined);
      await client.close();
      await proxy.stop();
    }
  });

  for (const { kill, keepaliveMs } of cases) {
    const atRelease = keepaliveMs === NO_KEEPALIVE_MS;
    const caughtBy = atRelease ? 'at release (no keepalive during the copy)' : `by the keepalive (${keepaliveMs} ms), during the copy`;
    it(`fails, with no manifest, after ${kill}: caught ${caughtBy}`, async () => {
      const args = ['--backup-cursor-keepalive-ms', String(keepaliveMs)];
      // The proxy reaches mongod through the spy, which tells the test the cursor's id.
      const proxy = await startProxy({ ...server, uri: `mongodb://127.0.0.1:${spy.port}/?directConnection=true` }, args);
      const client = new MongoClient(proxy.uri);
      const admin = client.db('admin');
      const dest = path.join(scratch.dir, `${kill}-${keepaliveMs}`);
      try {
        const opened = spy.cursorIds.length;
        await admin.command({ backupThrottle: MiB });
        await admin.command({ backupStart: dest, async: true });
        await until(() => spy.cursorIds.length > opened);
        await untilCopying(admin);
        const id = spy.cursorIds[opened] as Long;

        // Another client kills it, while the copy runs.
        const operator = new MongoClient(server.uri);
        try {
          const reply = await operator.db('admin').command(killCommand(kill, id));
          if (kill === 'killCursors') assert.deepEqual((reply['cursorsKilled'] as unknown[]).map(String), [id.toString()]);
          const engine = (await operator.db('admin').command({ serverStatus: 1 }))['storageEngine'] as Document;
          assert.equal(engine['backupCursorOpen'], false, 'the kill closed the WiredTiger backup cursor');
          // Writes and a checkpoint that the dead cursor no longer keeps out of the copy.
          const big = operator.db('app').collection('big');
          await big.updateMany({ n: { $lt: 500 } }, { $set: { pad: 'y'.repeat(12_000) } });
          await big.insertMany(Array.from({ length: 200 }, (_, i) => ({ n: 10_000 + i, pad: 'z'.repeat(10_000) })));
          await operator.db('admin').command({ fsync: 1 });
        } finally {
          await operator.close();
        }
        // Only the release check can catch it without a keepalive: let the copy finish.
        if (atRelease) await admin.command({ backupThrottle: 0 });

        const done = await untilBackupEnds(admin);
        const last = done['last'] as Document;
        assert.equal(last['ok'], false, `the backup must fail: ${JSON.stringify(last)}`);
        assert.equal(last['code'], 43);
        assert.match(String(last['errmsg']), new RegExp(`^The backup cursor ${id.toString()} was lost .*the copy is not consistent\\.$`));
        const foundBy = atRelease ? /\): killCursors did not kill it / : /\): the keepalive getMore failed: /;
        assert.match(String(last['errmsg']), foundBy);
        assert.equal(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')), false, 'a failed backup has no manifest');
        if (!atRelease) {
          assert.ok(Number(done['bytesCopied']) < Number(done['bytesTotal']), `stopped during the copy: ${done['bytesCopied']} of ${done['bytesTotal']} bytes`);
        }
      } finally {
        await admin.command({ backupThrottle: 0 }).catch(() => undefined);
        await client.close();
        await proxy.stop();
      }
    });
  }
});
