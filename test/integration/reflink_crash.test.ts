/**
 * Issue 10, crash recovery for reflink: the proxy is killed with kill -9 while the reflink
 * strategy holds mongod fsync-locked (the fail point hangWhileWritesBlocked holds it there;
 * the window is milliseconds otherwise), then started again. Meanwhile backupStatus shows
 * the strategy and a write-block window that grows. After the restart mongod is unlocked
 * by exactly one fsyncUnlock, the staging directory is gone, and backupStatus.last reports
 * the interruption. Three ways:
 * - a DBA's lock held throughout (it must be the one left), the unlock watchdog alive (it
 *   unlocks as the proxy dies);
 * - the same, the watchdog killed too (the restart unlocks, from the state file);
 * - the usual case, the backup's lock the only one (count 1, then 0), the watchdog killed
 *   too: the restart alone unlocks, and writes run again without anyone's help.
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

const VARIANTS = [
  { dbaLock: true, watchdog: 'alive' },
  { dbaLock: true, watchdog: 'killed too' },
  { dbaLock: false, watchdog: 'killed too' },
] as const;

describe('a proxy killed while the reflink strategy blocks writes, then started again', () => {
  for (const { dbaLock, watchdog } of VARIANTS) {
    const held = dbaLock ? "a DBA's lock held throughout" : "the backup's lock the only one";
    it(`unlocks mongod exactly once, removes the staging directory and reports the interruption (${held}; watchdog ${watchdog})`, { skip: xfsUnavailable }, async () => {
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
        if (dbaLock) assert.equal(Number((await direct.db('admin').command({ fsync: 1, lock: true }))['lockCount']), 1);
        const countBefore = dbaLock ? 1 : 0;

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
        assert.equal(lock['lockCountBefore'], countBefore);
        // No durable write inside a window of milliseconds: the count before tells a crash what to send.
        assert.equal(lock['phase'], 'locking', "no 'locked' record while writes are blocked");
        const staging = String(recorded['staging']);
        assert.equal(path.dirname(staging), stagingRoot);
        assert.ok(fs.existsSync(staging), 'the staging directory exists while writes are blocked');
        // Still in the strategy's open(), under its lock: the strategy and the window show already.
        const statusVia = viaProxy.db('admin');
        const running = await statusVia.command({ backupStatus: 1 });
        assert.equal(running['inProgress'], true);
        assert.equal(running['phase'], 'snapshot');
        assert.equal(running['strategy'], 'reflink');
        const blockedMs = Number(running['writesBlockedMs']);
        assert.ok(blockedMs > 0, `writesBlockedMs ${blockedMs} while locked`);
        await until(async () => Number((await statusVia.command({ backupStatus: 1 }))['writesBlockedMs']) > blockedMs);
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
        const released = `sent fsyncUnlock and released the backup's fsync lock (lock count now ${countBefore})`;
        assert.ok(
          errmsg.includes(watchdog === 'alive' ? `its unlock watchdog (pid ${watchdogPid}) ${released}` : `the restarted proxy ${released}`),
          errmsg,
        );
        assert.ok(errmsg.includes(staging), `the errmsg names the staging directory it removed: ${errmsg}`);
        assert.equal(fs.existsSync(staging), false, 'the staging directory is gone');
        assert.equal(fs.existsSync(path.join(stateDir, STATE_FILE_NAME)), false, 'the state file is gone once the cleanup is done');
        assert.equal(fs.existsSync(path.join(destination, MANIFEST_FILENAME)), false);

        if (dbaLock) {
          // Exactly one unlock was applied: the DBA's lock is the one left; then writes run.
          assert.equal(await drainLockCount(direct.db('admin')), 1);
        } else {
          // Nobody else unlocks here: the restart alone left mongod unlocked.
          assert.notEqual((await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'], true, 'mongod is not fsync-locked');
        }
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
