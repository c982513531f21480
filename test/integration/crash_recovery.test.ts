/**
 * Issue 10, crash recovery: the proxy is killed with kill -9 in the middle of a backup and
 * started again on the same state dir. The restart must release what the dead backup held,
 * exactly once, and say so in backupStatus.last:
 * - a $backupCursor: killed, so that a new backupStart succeeds at once instead of getting
 *   50886 for the 10 minutes mongod keeps an idle cursor;
 * - an fsync lock: released by the unlock watchdog, or by the restart when the watchdog was
 *   killed too; with a lock of the test's own held throughout, the count ends at 1, not 0;
 * - staged clones: removed, with any other leftover <stagingRoot>/hotbackup-staging-<uuid>, and
 *   nothing else (a bare UUID-named directory is not ours);
 * - mongod away at the restart: backupStart is refused, with why, until the cleanup is done.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { MongoClient, type Document, type Db } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { processAlive, until, untilCopying, untilGone } from '../helpers/poll.js';
import { drainLockCount } from '../helpers/fsync_lock.js';
import { startTcpForwarder } from '../helpers/tcp_forwarder.js';
import { writeStateFile, STATE_FORMAT, STATE_VERSION } from '../../src/backup/run_state_file.js';

const MANIFEST = 'hotbackup-manifest.json';

function readState(stateDir: string): Document {
  return JSON.parse(fs.readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as Document;
}

/** About 1.5 MB of documents, so that a throttled copy is still under way when the proxy is killed. */
async function seed(client: MongoClient): Promise<void> {
  await client
    .db('app')
    .collection('c')
    .insertMany(Array.from({ length: 3000 }, (_, i) => ({ i, pad: 'x'.repeat(500) })), { writeConcern: { j: true } });
}

async function lastBackup(admin: Db): Promise<Document> {
  const status = await admin.command({ backupStatus: 1 });
  assert.equal(status['inProgress'], false);
  return status['last'] as Document;
}

/** What a user sees of the interrupted backup; checks what every such report says. */
function assertInterrupted(last: Document, backupId: unknown, deadPid: number | undefined, destination: string): string {
  assert.equal(last['ok'], false);
  assert.equal(last['backupId'], backupId);
  assert.equal(last['destination'], destination);
  assert.equal(last['code'], 11600);
  assert.equal(last['codeName'], 'InterruptedAtShutdown');
  const errmsg = String(last['errmsg']);
  assert.match(errmsg, new RegExp(`^backup interrupted: the proxy \\(pid ${deadPid}\\) died during this backup`));
  assert.ok(errmsg.endsWith(`${destination} has no manifest, so the backup there is incomplete: remove it and start a new backup.`), errmsg);
  return errmsg;
}

/** What a test here may have started, torn down whatever failed: no lock, process or directory is left behind. */
async function tearDown(parts: {
  server: RunningDevServer;
  dirs: Array<{ remove(): void }>;
  direct?: MongoClient;
  proxy?: RunningProxy | undefined;
  viaProxy?: MongoClient | undefined;
  beforeServerStops?: () => void;
}): Promise<void> {
  await parts.viaProxy?.close().catch(() => undefined);
  if (parts.direct !== undefined) {
    await drainLockCount(parts.direct.db('admin')).catch(() => undefined);
    await parts.direct.close();
  }
  await parts.proxy?.stop();
  parts.beforeServerStops?.();
  await parts.server.stop();
  parts.server.cleanup();
  for (const dir of parts.dirs) dir.remove();
}

describe('a proxy killed during a backup, then started again', () => {
  it('kills the $backupCursor it left open: a new backupStart succeeds at once, without 50886', async () => {
    const server = await startDevServer();
    const state = tempDir('state');
    const scratch = tempDir('dest');
    const direct = new MongoClient(server.uri);
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    try {
      await seed(direct);
      proxy = await startProxy(server, ['--state-dir', state.dir]);
      viaProxy = new MongoClient(proxy.uri);
      const first = path.join(scratch.dir, 'first');
      await viaProxy.db('admin').command({ backupThrottle: '256KB' });
      const started = await viaProxy.db('admin').command({ backupStart: first, async: true });
      await untilCopying(viaProxy.db('admin'));
      const recorded = readState(state.dir);
      assert.equal(recorded['backupId'], started['backupId']);
      assert.equal(recorded['strategy'], 'backupCursor');
      const cursorId = String((recorded['backupCursor'] as Document)['cursorId']);
      assert.match(cursorId, /^-?\d+$/);

      const deadPid = proxy.child.pid;
      await viaProxy.close(true);
      await proxy.kill9();
      // What the restart is for: the dead proxy's cursor is still open, and refuses every other.
      await assert.rejects(direct.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} }), { code: 50886 });

      proxy = await startProxy(server, ['--state-dir', state.dir]);
      viaProxy = new MongoClient(proxy.uri);
      const errmsg = assertInterrupted(await lastBackup(viaProxy.db('admin')), started['backupId'], deadPid, first);
      assert.match(errmsg, new RegExp(`the restarted proxy killed the backup cursor ${cursorId} \\(and its session\\)`));
      assert.equal(fs.existsSync(path.join(state.dir, 'state.json')), false, 'the state file is gone');

      const second = path.join(scratch.dir, 'second');
      const reply = await viaProxy.db('admin').command({ backupStart: second });
      assert.equal(reply['ok'], 1);
      assert.ok(fs.existsSync(path.join(second, MANIFEST)));
      assert.equal(fs.existsSync(path.join(first, MANIFEST)), false, 'the interrupted backup has no manifest');
    } finally {
      await tearDown({ server, dirs: [state, scratch], direct, proxy, viaProxy });
    }
  });

  /** Starts an fsyncLock backup through a fresh proxy over a lock of the test's own; returns once it copies. */
  async function lockedBackup(server: RunningDevServer, stateDir: string, destination: string, args: string[] = []) {
    const proxy = await startProxy(server, ['--state-dir', stateDir, '--allow-write-blocking', ...args]);
    const viaProxy = new MongoClient(proxy.uri);
    await viaProxy.db('admin').command({ backupThrottle: '256KB' });
    const started = await viaProxy.db('admin').command({ backupStart: destination, async: true });
    await untilCopying(viaProxy.db('admin'));
    const recorded = readState(stateDir);
    const lock = recorded['fsyncLock'] as Document;
    assert.equal(recorded['strategy'], 'fsyncLock');
    assert.equal(lock['phase'], 'locked');
    assert.equal(lock['lockCountBefore'], 1, "the test's own lock was there before");
    await viaProxy.close(true);
    return { proxy, backupId: started['backupId'] as string, watchdogPid: lock['watchdogPid'] as number };
  }

  for (const watchdog of ['alive', 'killed too'] as const) {
    it(`releases the fsync lock exactly once, the watchdog being ${watchdog}`, async () => {
      const server = await startDevServer({ args: ['--no-backup-cursor'] });
      const state = tempDir('state');
      const scratch = tempDir('dest');
      const direct = new MongoClient(server.uri);
      let proxy: RunningProxy | undefined;
      let viaProxy: MongoClient | undefined;
      try {
        await seed(direct);
        // A DBA's lock, held throughout: only the backup's lock may be released.
        assert.equal(Number((await direct.db('admin').command({ fsync: 1, lock: true }))['lockCount']), 1);
        const destination = path.join(scratch.dir, 'b');
        const backup = await lockedBackup(server, state.dir, destination);
        proxy = backup.proxy;
        const deadPid = proxy.child.pid;
        if (watchdog === 'killed too') {
          process.kill(backup.watchdogPid, 'SIGKILL');
          await untilGone(backup.watchdogPid);
        }
        await proxy.kill9();

        proxy = await startProxy(server, ['--state-dir', state.dir]);
        viaProxy = new MongoClient(proxy.uri);
        const errmsg = assertInterrupted(await lastBackup(viaProxy.db('admin')), backup.backupId, deadPid, destination);
        assert.equal((await lastBackup(viaProxy.db('admin')))['strategy'], 'fsyncLock');
        const released = "sent fsyncUnlock and released the backup's fsync lock (lock count now 1)";
        if (watchdog === 'alive') {
          assert.ok(errmsg.includes(`its unlock watchdog (pid ${backup.watchdogPid}) ${released}`), errmsg);
        } else {
          assert.ok(errmsg.includes(`its unlock watchdog (pid ${backup.watchdogPid}) was gone without having acted; the restarted proxy ${released}`), errmsg);
        }

        // Exactly one unlock was applied: the DBA's lock is the one left.
        assert.equal(await drainLockCount(direct.db('admin')), 1);
        assert.equal((await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'], undefined);
        await direct.db('app').collection('c').insertOne({ after: 'recovery' }, { writeConcern: { j: true } });
        assert.equal(fs.existsSync(path.join(destination, MANIFEST)), false);
      } finally {
        await tearDown({ server, dirs: [state, scratch], direct, proxy, viaProxy });
      }
    });
  }

  it('waits for a watchdog still at work, refusing backupStart (saying why) meanwhile; then sends nothing more', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const state = tempDir('state');
    const scratch = tempDir('dest');
    const direct = new MongoClient(server.uri);
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    let watchdogPid: number | undefined;
    try {
      await seed(direct);
      await direct.db('admin').command({ fsync: 1, lock: true });
      const destination = path.join(scratch.dir, 'b');
      const backup = await lockedBackup(server, state.dir, destination);
      proxy = backup.proxy;
      watchdogPid = backup.watchdogPid;
      const deadPid = proxy.child.pid;
      // Stopped, the watchdog stands for one that is slow to reach mongod: alive, not done.
      process.kill(watchdogPid, 'SIGSTOP');
      await proxy.kill9();

      proxy = await startProxy(server, ['--state-dir', state.dir, '--recovery-wait', '0.2']);
      viaProxy = new MongoClient(proxy.uri);
      const admin = viaProxy.db('admin');
      await assert.rejects(admin.command({ backupStart: path.join(scratch.dir, 'refused') }), (err: { code?: number; message?: string }) => {
        assert.equal(err.code, 268);
        assert.match(
          err.message ?? '',
          new RegExp(`^The proxy is still cleaning up after backup ${backup.backupId}, which the previous proxy \\(pid ${deadPid}\\) left unfinished when it died: its unlock watchdog \\(pid ${watchdogPid}\\) is still at work`),
        );
        return true;
      });
      assert.equal(fs.existsSync(path.join(scratch.dir, 'refused')), false);
      assert.equal((await admin.command({ backupStatus: 1 }))['last'], undefined);
      assert.equal((await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'], true, 'nobody unlocked behind the watchdog\'s back');

      process.kill(watchdogPid, 'SIGCONT');
      const last = await until(async () => (await admin.command({ backupStatus: 1 }))['last'] as Document | undefined);
      const errmsg = assertInterrupted(last, backup.backupId, deadPid, destination);
      assert.ok(errmsg.includes(`its unlock watchdog (pid ${watchdogPid}) sent fsyncUnlock and released the backup's fsync lock (lock count now 1)`), errmsg);
      assert.equal(await drainLockCount(direct.db('admin')), 1, 'one unlock only: the watchdog\'s');
      assert.equal((await admin.command({ backupStart: path.join(scratch.dir, 'after'), allowWriteBlocking: true }))['ok'], 1);
    } finally {
      // Resumed in case the test failed while it was stopped; it may have finished and exited since.
      if (watchdogPid !== undefined && processAlive(watchdogPid)) {
        try {
          process.kill(watchdogPid, 'SIGCONT');
        } catch {
          // Exited between the look and the signal.
        }
      }
      await tearDown({ server, dirs: [state, scratch], direct, proxy, viaProxy });
    }
  });

  it('with mongod unreachable at the restart, starts anyway and finishes the cleanup once mongod is back', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const forwarder = await startTcpForwarder(server.port);
    const state = tempDir('state');
    const scratch = tempDir('dest');
    const direct = new MongoClient(server.uri);
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    // Through the forwarder, so that mongod can vanish for the proxy alone.
    const upstream = { ...server, uri: forwarder.uri(1000) };
    const args = ['--dbpath', server.dbpath];
    try {
      await seed(direct);
      await direct.db('admin').command({ fsync: 1, lock: true });
      const destination = path.join(scratch.dir, 'b');
      const backup = await lockedBackup(upstream, state.dir, destination, args);
      proxy = backup.proxy;
      const deadPid = proxy.child.pid;
      process.kill(backup.watchdogPid, 'SIGKILL');
      await untilGone(backup.watchdogPid);
      await proxy.kill9();
      forwarder.goDown();

      proxy = await startProxy(upstream, ['--state-dir', state.dir, ...args]);
      const retrying = proxy.logs.find((entry) => entry['msg'] === 'recovery: could not finish; retrying in the background; backupStart is refused until then');
      assert.match(String(retrying?.['reason']), /^mongod could not be reached to release the dead proxy's fsync lock/);

      forwarder.comeUp(server.port);
      viaProxy = new MongoClient(proxy.uri);
      const admin = viaProxy.db('admin');
      const last = await until(async () => (await admin.command({ backupStatus: 1 }))['last'] as Document | undefined);
      const errmsg = assertInterrupted(last, backup.backupId, deadPid, destination);
      assert.match(errmsg, /the restarted proxy sent fsyncUnlock and released the backup's fsync lock \(lock count now 1\)/);
      assert.equal(await drainLockCount(direct.db('admin')), 1);
    } finally {
      await tearDown({ server, dirs: [state, scratch], direct, proxy, viaProxy, beforeServerStops: () => forwarder.close() });
    }
  });

  it('removes the staging it recorded and any other <stagingRoot>/hotbackup-staging-<uuid>, and nothing else', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const state = tempDir('state');
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    try {
      const stagingRoot = path.join(state.dir, 'staging');
      const backupId = '5f0c9a3e-2b7d-4e1f-8c6a-9d3b2e7f1a40';
      const recorded = path.join(stagingRoot, `hotbackup-staging-${backupId}`);
      const leftover = path.join(stagingRoot, 'hotbackup-staging-a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d');
      const keep = path.join(stagingRoot, 'keep-me');
      // Named by a UUID but not marked as staging: an operator's, say a --directoryperdb database.
      const notOurs = path.join(stagingRoot, '0f1e2d3c-4b5a-4697-8877-665544332211');
      for (const dir of [path.join(recorded, 'journal'), leftover, keep, notOurs]) fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(recorded, 'collection-0.wt'), 'clone');
      fs.writeFileSync(path.join(recorded, 'journal', 'WiredTigerLog.0000000001'), 'clone');
      fs.writeFileSync(path.join(keep, 'mine'), 'not a clone');
      // A proxy that has since exited; its reflink backup had unlocked and was copying from staging.
      const deadPid = spawnSync('true').pid;
      await writeStateFile(path.join(state.dir, 'state.json'), {
        format: STATE_FORMAT,
        version: STATE_VERSION,
        pid: deadPid,
        backupId,
        startedAt: new Date(Date.now() - 60_000).toISOString(),
        destination: '/backups/nightly',
        strategy: 'reflink',
        fsyncLock: { phase: 'unlocked', lockCountBefore: 0 },
        staging: recorded,
        cleanup: [],
      });

      proxy = await startProxy(server, ['--state-dir', state.dir]);
      viaProxy = new MongoClient(proxy.uri);
      const last = await lastBackup(viaProxy.db('admin'));
      const errmsg = assertInterrupted(last, backupId, deadPid, '/backups/nightly');
      assert.equal(last['strategy'], 'reflink');
      assert.match(errmsg, new RegExp(`cleaning up after it, the restarted proxy removed the staging directory ${recorded}\\.`));
      assert.deepEqual(fs.readdirSync(stagingRoot).sort(), ['0f1e2d3c-4b5a-4697-8877-665544332211', 'keep-me']);
      assert.equal(fs.readFileSync(path.join(keep, 'mine'), 'utf8'), 'not a clone');
      assert.deepEqual(fs.readdirSync(state.dir).sort(), ['staging']);
    } finally {
      await tearDown({ server, dirs: [state], proxy, viaProxy });
    }
  });

  it('moves a corrupt state file aside, says so, and starts', async () => {
    const server = await startDevServer();
    const state = tempDir('state');
    const scratch = tempDir('dest');
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    try {
      fs.writeFileSync(path.join(state.dir, 'state.json'), '{"format": "mongo-hotbackup-proxy-state", "version": 1, "pid": 12');
      proxy = await startProxy(server, ['--state-dir', state.dir]);
      const logged = proxy.logs.find((entry) => String(entry['msg']).startsWith('recovery: the state file is not valid'));
      assert.ok(logged, 'an error says the state file was not trusted');
      assert.match(String(logged['reason']), /not valid JSON/);
      assert.match(path.basename(String(logged['movedTo'])), /^state\.json\.corrupt-/);
      assert.ok(fs.existsSync(String(logged['movedTo'])));
      assert.equal(fs.existsSync(path.join(state.dir, 'state.json')), false);
      viaProxy = new MongoClient(proxy.uri);
      assert.equal((await viaProxy.db('admin').command({ backupStatus: 1 }))['last'], undefined);
      assert.equal((await viaProxy.db('admin').command({ backupStart: path.join(scratch.dir, 'b') }))['ok'], 1);
    } finally {
      await tearDown({ server, dirs: [state, scratch], proxy, viaProxy });
    }
  });
});
