/**
 * A reply lost on the network hides whether mongod applied the command. The fsyncLock
 * strategy must then neither release someone else's lock (a second fsyncUnlock "just in
 * case") nor leave mongod locked (a lock applied, its reply lost, and no unlock sent).
 * The relay in front of the dev server loses exactly one chosen reply.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, MongoNetworkTimeoutError } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startFaultRelay, type FaultRelay } from '../helpers/relay.js';
import { drainLockCount, fsyncLockMatch, fsyncUnlockMatch } from '../helpers/fsync_lock.js';
import { FsyncLockStrategy } from '../../src/backup/strategies/fsync_lock_strategy.js';
import { pino } from 'pino';

async function settle(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (err: unknown) => `rejected: ${err instanceof Error ? err.message : String(err)}`,
  );
}

describe('fsyncLock strategy, a reply lost on the network', () => {
  let server: RunningDevServer;
  let relay: FaultRelay;
  let dba: MongoClient;
  let strategy: FsyncLockStrategy;

  const lockCount = () => drainLockCount(dba.db('admin'));

  beforeEach(async () => {
    server = await startDevServer({ args: ['--no-backup-cursor'] });
    relay = await startFaultRelay(server.port);
    dba = new MongoClient(server.uri);
    strategy = new FsyncLockStrategy(`mongodb://127.0.0.1:${relay.port}/?directConnection=true`, server.dbpath, pino({ level: 'silent' }), {
      unlockBackoffMs: 10,
    });
  });

  afterEach(async () => {
    await dba.close();
    await relay.close();
    await server.stop();
    server.cleanup();
  });

  it("to our fsyncUnlock while a DBA holds a lock too: keeps the DBA's lock, and release() succeeds", async () => {
    const snapshot = await strategy.open();
    // The DBA takes their own lock for an LVM snapshot while the copy runs.
    assert.equal(Number((await dba.db('admin').command({ fsync: 1, lock: true }))['lockCount']), 2);
    const lost = relay.loseReplyTo(fsyncUnlockMatch(false));
    const released = await settle(snapshot.release());
    await lost;
    assert.equal(released, 'resolved', 'our unlock was applied, only its reply was lost');
    assert.equal(await lockCount(), 1, "exactly the DBA's lock is left");
  });

  it("to our fsyncUnlock, released with the count our lock answered (reflink's short lock): keeps the DBA's lock", async () => {
    // The DBA's lock comes first; ours answers 2, and that count stands for the unlock.
    assert.equal(Number((await dba.db('admin').command({ fsync: 1, lock: true }))['lockCount']), 1);
    const quick = new FsyncLockStrategy(`mongodb://127.0.0.1:${relay.port}/?directConnection=true`, server.dbpath, pino({ level: 'silent' }), {
      unlockBackoffMs: 10,
      releaseWithKnownCount: true,
    });
    const snapshot = await quick.open();
    const lost = relay.loseReplyTo(fsyncUnlockMatch(false));
    const released = await settle(snapshot.release());
    await lost;
    assert.equal(released, 'resolved', 'our unlock was applied, only its reply was lost: the count after it shows so');
    assert.equal(await lockCount(), 1, "exactly the DBA's lock is left");
  });

  it('to a lock count probe: fails the backup loudly and releases nothing of the DBA', async () => {
    const snapshot = await strategy.open();
    assert.equal(Number((await dba.db('admin').command({ fsync: 1, lock: true }))['lockCount']), 2);
    const lost = relay.loseReplyTo(fsyncUnlockMatch(true));
    const released = await settle(snapshot.release());
    await lost;
    assert.match(released, /^rejected: .*could not be read before unlocking, so the lock was not released.*fsync lock count probe.*Check by hand/);
    // The probe's unlock was applied: the count is back at 2, the backup's lock and the DBA's.
    assert.equal(await lockCount(), 2);
  });

  it('to {fsync: 1, lock: true}: the lock is known to be ours, the backup goes on, and release() unlocks', async () => {
    const lost = relay.loseReplyTo(fsyncLockMatch);
    const snapshot = await strategy.open();
    await lost;
    assert.equal((await dba.db('admin').command({ currentOp: 1 }))['fsyncLock'], true, 'the copy runs under the lock');
    assert.equal(await settle(snapshot.release()), 'resolved');
    assert.equal((await dba.db('admin').command({ currentOp: 1 }))['fsyncLock'], undefined, 'mongod is not left fsync-locked');
  });

  it('to {fsync: 1, lock: true} that was never applied: fails open() and locks nothing', async () => {
    const swallowed = relay.swallow(fsyncLockMatch);
    // The swallowed lock is never answered: the driver gives up on its socket after
    // socketTimeoutMS. That bound covers every command on the strategy's connections
    // too (its connect, the watchdog's, the lock count probes), so it is one that a busy
    // machine does not reach.
    const timed = new FsyncLockStrategy(`mongodb://127.0.0.1:${relay.port}/?directConnection=true&socketTimeoutMS=5000`, server.dbpath, pino({ level: 'silent' }), {
      unlockBackoffMs: 10,
    });
    const opened = timed.open().then(
      // Released, so that a wrong success fails the test without leaving mongod locked.
      async (snapshot) => {
        await snapshot.release().catch(() => undefined);
        return 'resolved';
      },
      (err: unknown) => err,
    );
    // An open that fails before it sends its lock fails the test, instead of leaving it waiting for the swallow.
    const first = await Promise.race([swallowed.then(() => 'swallowed'), opened]);
    assert.equal(first, 'swallowed', `open() ended before it sent its fsync lock: ${String(first)}`);
    const err = await opened;
    assert.ok(err instanceof MongoNetworkTimeoutError, `open() ${String(err)}`);
    assert.match(err.message, new RegExp(`^connection \\d+ to 127\\.0\\.0\\.1:${relay.port} timed out$`));
    assert.equal((await dba.db('admin').command({ currentOp: 1 }))['fsyncLock'], undefined);
  });
});
