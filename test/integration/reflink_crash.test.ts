/**
 * Issue 10, crash recovery for reflink: the proxy is killed with kill -9 while the reflink
 * strategy holds mongod fsync-locked (the fail point hangWhileWritesBlocked holds it there;
 * the window is milliseconds otherwise), then started again. After the restart mongod is
 * unlocked by exactly one fsyncUnlock (a lock of the test's own, held throughout, is the
 * one left), the staging directory is gone, and backupStatus.last reports the interruption.
 * Twice: with the unlock watchdog alive (it unlocks as the proxy dies), and killed too (the
 * restart unlocks from the state file).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilGone } from '../helpers/poll.js';
import { drainLockCount } from '../helpers/fsync_lock.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';
import { STATE_FILE_NAME, workDirs } from '../../src/backup/work_dirs.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';

const xfsUnavailable = loopFsUnavailable('xfs');
const HANG = { HOTBACKUP_TEST_FAILPOINTS: 'hangWhileWritesBlocked' };

describe('a proxy killed while the reflink strategy blocks writes, then started again', () => {
  for (const watchdog of ['alive', 'killed too'] as const) {
    it(`unlocks mongod exactly once, removes the staging directory and reports the interruption (watchdog ${watchdog})`, { skip: xfsUnavailable }, async () => {
      let fsys: LoopFs | undefined;
      let server: RunningDevServer | undefined;
      let proxy: RunningProxy | undefined;
      let direct: MongoClient | undefined;
      let viaProxy: MongoClient | undefined;
      const scratch = tempDir('reflink-crash');
      try {
        fsys = await mountLoopFs('xfs', 400);
        const dbpath = path.join(fsys.dir, 'db');
        fs.mkdirSync(dbpath);
        server = await startDevServer({ dbpath, args: ['--no-backup-cursor'] });
        direct = new MongoClient(server.uri);
        const app = direct.db('app').collection<{ _id: number | string; pad?: string }>('c');
        await app.insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, pad: 'x'.repeat(200) })), { writeConcern: { j: true } });
        // A DBA's lock, held throughout: only the backup's lock may be released.
        assert.equal(Number((await direct.db('admin').command({ fsync: 1, lock: true }))['lockCount']), 1);

        // The default state dir, next to the dbpath on the same XFS.
        const { stateDir, stagingRoot } = workDirs(dbpath);
        proxy = await startProxy(server, [], HANG);
        viaProxy = new MongoClient(proxy.uri);
        const destination = path.join(scratch.dir, 'b');
        const started = await viaProxy.db('admin').command({ backupStart: destination, async: true });
        const dying = proxy;
        await until(() => dying.logs.some((entry) => String(entry['msg']).startsWith('fail point hangWhileWritesBlocked')));
        const recorded = JSON.parse(fs.readFileSync(path.join(stateDir, STATE_FILE_NAME), 'utf8')) as Document;
        assert.equal(recorded['backupId'], started['backupId']);
        assert.equal(recorded['strategy'], 'reflink');
        const lock = recorded['fsyncLock'] as Document;
        assert.equal(lock['lockCountBefore'], 1, "the test's own lock was there before");
        // No durable write inside a window of milliseconds: the count before tells a crash what to send.
        assert.equal(lock['phase'], 'locking', "no 'locked' record while writes are blocked");
        const staging = String(recorded['staging']);
        assert.equal(path.dirname(staging), stagingRoot);
        assert.ok(fs.existsSync(staging), 'the staging directory exists while writes are blocked');
        const running = await viaProxy.db('admin').command({ backupStatus: 1 });
        assert.equal(running['inProgress'], true);
        assert.equal(running['phase'], 'snapshot');
        await viaProxy.close(true);
        viaProxy = undefined;

        const watchdogPid = Number(lock['watchdogPid']);
        if (watchdog === 'killed too') {
          process.kill(watchdogPid, 'SIGKILL');
          await untilGone(watchdogPid);
        }
        const deadPid = dying.child.pid;
        await dying.kill9();

        proxy = await startProxy(server);
        viaProxy = new MongoClient(proxy.uri);
        const admin = viaProxy.db('admin');
        const last = await until(async () => (await admin.command({ backupStatus: 1 }))['last'] as Document | undefined);
        assert.equal(last['ok'], false);
        assert.equal(last['backupId'], started['backupId']);
        assert.equal(last['strategy'], 'reflink');
        assert.equal(last['code'], 11600);
        const errmsg = String(last['errmsg']);
        assert.match(errmsg, new RegExp(`^backup interrupted: the proxy \\(pid ${deadPid}\\) died during this backup`));
        const released = "sent fsyncUnlock and released the backup's fsync lock (lock count now 1)";
        assert.ok(
          errmsg.includes(watchdog === 'alive' ? `its unlock watchdog (pid ${watchdogPid}) ${released}` : `the restarted proxy ${released}`),
          errmsg,
        );
        assert.ok(errmsg.includes(staging), `the errmsg names the staging directory it removed: ${errmsg}`);
        assert.equal(fs.existsSync(staging), false, 'the staging directory is gone');
        assert.equal(fs.existsSync(path.join(stateDir, STATE_FILE_NAME)), false, 'the state file is gone once the cleanup is done');
        assert.equal(fs.existsSync(path.join(destination, MANIFEST_FILENAME)), false);

        // Exactly one unlock was applied: the DBA's lock is the one left; then writes run.
        assert.equal(await drainLockCount(direct.db('admin')), 1);
        await app.insertOne({ _id: 'after recovery' }, { writeConcern: { j: true } });
        // And the next reflink backup runs.
        const next = path.join(scratch.dir, 'next');
        assert.equal((await admin.command({ backupStart: next }))['ok'], 1);
        assert.equal(((await admin.command({ backupStatus: 1 }))['last'] as Document)['strategy'], 'reflink');
      } finally {
        await viaProxy?.close().catch(() => undefined);
        if (direct !== undefined) await drainLockCount(direct.db('admin')).catch(() => undefined);
        await direct?.close();
        await proxy?.stop();
        await server?.stop();
        await fsys?.remove();
        scratch.remove();
      }
    });
  }
});
