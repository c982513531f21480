/**
 * The fsync lock through an outage or a restart of mongod (issue 7, review 2): the
 * watchdog and the proxy keep trying to release the backup's lock for as long as mongod
 * is away, and send nothing to a mongod that restarted since it was locked (the lock
 * died with the old process; any lock now is someone else's).
 *
 * mongod goes away behind a TCP forwarder; a restart is the forwarder coming back in
 * front of another dev server. Where an outage must outlast several reconnects, the URI
 * carries a short serverSelectionTimeoutMS (OUTAGE_SELECTION_MS), so that it lasts
 * seconds, not the driver's default 30 s each; that bound also covers the first connect,
 * so it is kept off every other URI.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import readline from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { CLI, tempDir } from '../helpers/paths.js';
import { processAlive, until, untilGone } from '../helpers/poll.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp_forwarder.js';
import { drainLockCount } from '../helpers/fsync_lock.js';
import { FsyncLockStrategy, FSYNC_LOCK_RESTARTED } from '../../src/backup/strategies/fsync_lock_strategy.js';
import { createLogger } from '../../src/log.js';
import { ErrorCodes } from '../../src/errors.js';

const DIST_SRC = path.dirname(CLI);
const moduleUrl = (relative: string) => pathToFileURL(path.join(DIST_SRC, relative)).href;

/** How long one reconnect waits during an outage under test. */
const OUTAGE_SELECTION_MS = 2_000;

/**
 * A "proxy" that arms the watchdog as the strategy does (with the mongod process it
 * talks to), prints the watchdog's pid, and dies (exits without disarming) once its stdin
 * ends. It connects with its first argument, the watchdog with its second.
 */
const ARMS_THEN_DIES = `
import { startUnlockWatchdog } from '${moduleUrl('backup/strategies/unlock_watchdog.js')}';
import { AdminConnection } from '${moduleUrl('backup/strategies/fsync_lock_state.js')}';
const conn = await AdminConnection.open(process.argv[2]);
const watchdog = await startUnlockWatchdog(process.argv[3], conn.processId);
await conn.close();
console.log(JSON.stringify({ watchdogPid: watchdog.pid }));
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
process.exit(0);
`;

interface DyingProxy {
  child: ChildProcess;
  watchdogPid: number;
  /** The watchdog's stderr lines so far (it inherits the proxy's stderr). */
  stderr: string[];
  die(): void;
}

async function armThenDie(dir: string, uri: string, watchdogUri: string = uri): Promise<DyingProxy> {
  const file = path.join(dir, 'arms_then_dies.mjs');
  fs.writeFileSync(file, ARMS_THEN_DIES);
  const child = spawn(process.execPath, [file, uri, watchdogUri], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const first = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('error', reject);
    // 'close', not 'exit': by then stderr has been read to its end.
    child.once('close', (code, signal) => reject(new Error(`the proxy exited (${code ?? signal}) before it armed the watchdog:\n${stderr.join('\n')}`)));
  });
  const watchdogPid = (JSON.parse(first) as { watchdogPid: number }).watchdogPid;
  return { child, watchdogPid, stderr, die: () => child.stdin!.end() };
}

async function locked(client: MongoClient): Promise<boolean> {
  return (await client.db('admin').command({ currentOp: 1 }))['fsyncLock'] === true;
}

describe('the fsync lock while mongod is away or restarted', () => {
  let a: RunningDevServer;
  let b: RunningDevServer;
  let ca: MongoClient;
  let cb: MongoClient;
  let fwd: TcpForwarder;
  let scratch: { dir: string; remove: () => void };
  const log = createLogger({ name: 'fsync-outage-test', format: 'json', level: 'silent' });

  before(async () => {
    a = await startDevServer({ args: ['--no-backup-cursor'] });
    b = await startDevServer({ args: ['--no-backup-cursor'] });
    ca = new MongoClient(a.uri);
    cb = new MongoClient(b.uri);
    await ca.connect();
    await cb.connect();
    scratch = tempDir('fsync-outage');
  });
  after(async () => {
    await ca?.close();
    await cb?.close();
    for (const server of [a, b]) {
      await server?.stop();
      server?.cleanup();
    }
    scratch?.remove();
  });

  async function cleanUp(): Promise<void> {
    fwd?.close();
    await drainLockCount(ca.db('admin'));
    await drainLockCount(cb.db('admin'));
  }

  it("the watchdog keeps trying through an outage longer than its reconnects, then releases the dead proxy's lock", async () => {
    fwd = await startTcpForwarder(a.port);
    try {
      await ca.db('admin').command({ fsync: 1, lock: true }); // the proxy's lock
      const proxy = await armThenDie(scratch.dir, fwd.uri(), fwd.uri(OUTAGE_SELECTION_MS));
      fwd.goDown();
      proxy.die();
      // Three failed attempts, each with a failed reconnect (a server selection of its own), or the end of the watchdog.
      await Promise.race([until(() => (proxy.stderr.some((line) => /attempt 3 failed/.test(line)) ? true : undefined)), untilGone(proxy.watchdogPid)]);
      assert.equal(processAlive(proxy.watchdogPid), true, `the watchdog gave up while mongod was away: ${proxy.stderr.join('\n')}`);
      fwd.comeUp(a.port);
      await untilGone(proxy.watchdogPid);
      assert.equal(await locked(ca), false, `mongod stays fsync-locked: ${proxy.stderr.join('\n')}`);
    } finally {
      await cleanUp();
    }
  });

  it("the watchdog sends nothing to a mongod that restarted since, and keeps a DBA's new lock", async () => {
    fwd = await startTcpForwarder(a.port);
    try {
      await ca.db('admin').command({ fsync: 1, lock: true }); // the proxy's lock, on the old mongod process
      const proxy = await armThenDie(scratch.dir, fwd.uri());
      fwd.goDown(); // mongod restarts...
      proxy.die(); // ...and the proxy is killed meanwhile
      await cb.db('admin').command({ fsync: 1, lock: true }); // a DBA locks the new mongod process
      fwd.comeUp(b.port);
      await untilGone(proxy.watchdogPid);
      assert.equal(await drainLockCount(cb.db('admin')), 1, "the watchdog released the DBA's lock on the restarted mongod");
      assert.match(proxy.stderr.join('\n'), /mongod restarted since it locked/);
    } finally {
      await cleanUp();
    }
  });

  it('the watchdog exits on SIGUSR1 without touching mongod, for an operator who takes over', async () => {
    try {
      await ca.db('admin').command({ fsync: 1, lock: true }); // the proxy's lock
      const proxy = await armThenDie(scratch.dir, a.uri);
      process.kill(proxy.watchdogPid, 'SIGUSR1');
      await untilGone(proxy.watchdogPid);
      proxy.die();
      await new Promise((resolve) => proxy.child.once('exit', resolve));
      assert.equal(await drainLockCount(ca.db('admin')), 1, 'the disarmed watchdog released the lock the operator took over');
      assert.match(proxy.stderr.join('\n'), /disarmed by SIGUSR1/);
    } finally {
      await drainLockCount(ca.db('admin'));
    }
  });

  it('the proxy whose release cannot reach mongod fails with 268, keeps the watchdog armed, and releases once mongod is back', async () => {
    fwd = await startTcpForwarder(a.port);
    const dbpath = tempDir('fsync-outage-db');
    try {
      // The release's reconnects are what the outage must outlast.
      const strategy = new FsyncLockStrategy(fwd.uri(OUTAGE_SELECTION_MS), dbpath.dir, log, { lockCheckIntervalMs: 3_600_000, unlockBackoffMs: 10 });
      const snapshot = await strategy.open();
      assert.equal(await locked(ca), true);
      fwd.goDown();
      const err = await snapshot.release().then(
        () => assert.fail('release() succeeded while mongod was unreachable'),
        (e: unknown) => e as { code?: number; message: string },
      );
      assert.equal(err.code, ErrorCodes.CannotBackup, `release() failed with: ${String(err)}`);
      assert.match(err.message, /may still be held/);
      assert.match(err.message, /keeps retrying/);
      const watchdogPid = Number(/watchdog \(pid (\d+)\)/.exec(err.message)?.[1]);
      assert.equal(processAlive(watchdogPid), true, 'the watchdog was disarmed while the lock may still be held');
      assert.equal(await locked(ca), true);
      fwd.comeUp(a.port);
      // The background retry releases the lock, then disarms the watchdog.
      await until(async () => ((await locked(ca)) ? undefined : true));
      await untilGone(watchdogPid);
    } finally {
      await cleanUp();
      dbpath.remove();
    }
  });

  it("the proxy sends nothing to a mongod that restarted during the backup, and keeps a DBA's new lock", async () => {
    fwd = await startTcpForwarder(a.port);
    const dbpath = tempDir('fsync-restart-db');
    try {
      const strategy = new FsyncLockStrategy(fwd.uri(), dbpath.dir, log, { lockCheckIntervalMs: 3_600_000, unlockBackoffMs: 10 });
      const snapshot = await strategy.open();
      fwd.goDown(); // mongod restarts during the copy
      await cb.db('admin').command({ fsync: 1, lock: true }); // and a DBA locks the new process
      fwd.comeUp(b.port);
      await assert.rejects(snapshot.release(), (err: Error) => err.message === FSYNC_LOCK_RESTARTED);
      assert.equal(await drainLockCount(cb.db('admin')), 1, "the proxy released the DBA's lock on the restarted mongod");
    } finally {
      await cleanUp();
      dbpath.remove();
    }
  });

  it('the proxy fails the copy at once when mongod restarts during it, even if the new process is fsync-locked', async () => {
    fwd = await startTcpForwarder(a.port);
    const dbpath = tempDir('fsync-restart-copy-db');
    try {
      const strategy = new FsyncLockStrategy(fwd.uri(), dbpath.dir, log, { lockCheckIntervalMs: 50, unlockBackoffMs: 10 });
      const snapshot = await strategy.open();
      fwd.goDown(); // mongod restarts during the copy
      await cb.db('admin').command({ fsync: 1, lock: true }); // and a DBA locks the new process: currentOp says locked
      fwd.comeUp(b.port);
      await until(() => (snapshot.lost.aborted ? true : undefined));
      assert.equal((snapshot.lost.reason as Error).message, FSYNC_LOCK_RESTARTED);
      await assert.rejects(snapshot.release(), (err: Error) => err.message === FSYNC_LOCK_RESTARTED);
      assert.equal(await drainLockCount(cb.db('admin')), 1, "the proxy released the DBA's lock on the restarted mongod");
    } finally {
      await cleanUp();
      dbpath.remove();
    }
  });
});
