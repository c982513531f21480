/**
 * `hotbackup unlock` as an operator runs it against a locked dev server: one lock at a
 * time with the count that remains, `--all` until writes resume, nothing to do when
 * unlocked, and a refusal while a proxy's unlock watchdog is armed on the host (two
 * unlocks for one lock would release someone else's).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { CLI, CLI_NODE_FLAGS } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { drainLockCount } from '../helpers/fsync_lock.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { STATE_FORMAT, STATE_VERSION, writeStateFile } from '../../src/backup/run_state_file.js';

const execFileAsync = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function unlock(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [...CLI_NODE_FLAGS, CLI, 'unlock', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('hotbackup unlock', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  const admin = () => client.db('admin');
  const locked = async () => (await admin().command({ currentOp: 1 }))['fsyncLock'] === true;

  before(async () => {
    server = await startDevServer();
    client = await MongoClient.connect(server.uri);
  });
  after(async () => {
    while (await locked()) await admin().command({ fsyncUnlock: 1 });
    await client.close();
    await server.stop();
    server.cleanup();
  });

  it('releases one lock and says how many remain; --all releases the rest and writes resume', async () => {
    await admin().command({ fsync: 1, lock: true });
    await admin().command({ fsync: 1, lock: true });
    const one = await unlock('--upstream', server.uri);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /lock count is now 1; writes stay blocked until every lock is released/);
    assert.equal(await locked(), true);

    await admin().command({ fsync: 1, lock: true });
    const all = await unlock('--upstream', server.uri, '--all');
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      all.stdout.trim().split('\n'),
      [
        'fsyncUnlock applied: lock count is now 1; writes stay blocked until every lock is released (--all releases them all).',
        'fsyncUnlock applied: lock count is now 0, writes resume.',
        'If a hotbackup proxy was killed while it held this lock, run this with its --state-dir (or --dbpath), so that its next start does not release one lock more.',
      ],
    );
    assert.equal(await locked(), false);
    await client.db('app').collection('after').insertOne({ written: true });
  });

  it('says there is nothing to release when mongod is not locked', async () => {
    const run = await unlock('--upstream', server.uri);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'mongod is not fsync-locked: nothing to release.\n');
  });

  it('refuses while an unlock watchdog is armed on this host, and names the pid to disarm', async () => {
    await admin().command({ fsync: 1, lock: true });
    const watchdogScript = path.join(path.dirname(CLI), 'backup', 'strategies', 'unlock_watchdog.js');
    const watchdog = spawn(process.execPath, [watchdogScript], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, HOTBACKUP_WATCHDOG_URI: server.uri } });
    try {
      await once(watchdog.stdout, 'data');
      const refused = await unlock('--upstream', server.uri);
      assert.equal(refused.code, 3);
      assert.match(refused.stdout, new RegExp(`unlock watchdog is armed on this host \\(pid ${watchdog.pid}\\).*kill -USR1 ${watchdog.pid}`));
      assert.equal(await locked(), true, 'a refused unlock must not touch mongod');
      const forced = await unlock('--upstream', server.uri, '--force');
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /lock count is now 0, writes resume/);
    } finally {
      // SIGUSR1 disarms it: it exits without touching mongod.
      watchdog.kill('SIGUSR1');
      await until(() => watchdog.exitCode !== null || watchdog.signalCode !== null);
    }
    assert.equal(await locked(), false);
  });

  it("with a killed proxy's --state-dir, records the backup's lock as released, so the proxy's next start sends nothing", async () => {
    const state = tempDir('unlock-state');
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    try {
      // A DBA's lock, then the backup's, whose proxy and watchdog were both killed.
      await admin().command({ fsync: 1, lock: true });
      await admin().command({ fsync: 1, lock: true });
      const hello = await admin().command({ hello: 1 });
      const processId = (hello['topologyVersion'] as { processId: { toHexString(): string } }).processId.toHexString();
      const backupId = '0d4c2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d';
      await writeStateFile(path.join(state.dir, 'state.json'), {
        format: STATE_FORMAT,
        version: STATE_VERSION,
        pid: spawnSync('true').pid as number,
        backupId,
        startedAt: new Date().toISOString(),
        destination: '/backups/b',
        strategy: 'reflink',
        fsyncLock: { phase: 'locked', processId, lockCountBefore: 1 },
        cleanup: [],
      });
      const run = await unlock('--upstream', server.uri, '--state-dir', state.dir);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /lock count is now 1;/);
      assert.match(run.stdout, new RegExp(`Recorded in ${path.join(state.dir, 'state.json')} that backup ${backupId}'s fsync lock is released`));

      proxy = await startProxy(server, ['--state-dir', state.dir]);
      viaProxy = new MongoClient(proxy.uri);
      const last = (await viaProxy.db('admin').command({ backupStatus: 1 }))['last'] as { backupId: string; errmsg: string };
      assert.equal(last.backupId, backupId);
      assert.match(last.errmsg, /an operator released the backup's fsync lock with hotbackup unlock \(lock count now 1\)/);
      assert.equal(await drainLockCount(admin()), 1, "the restart sent nothing: the DBA's lock is the one left");
    } finally {
      await viaProxy?.close();
      await proxy?.stop();
      state.remove();
    }
  });

  it('refuses a --state-dir that a running proxy holds: that proxy releases its own lock', async () => {
    const state = tempDir('unlock-held');
    const proxy = await startProxy(server, ['--state-dir', state.dir]);
    try {
      await admin().command({ fsync: 1, lock: true });
      const run = await unlock('--upstream', server.uri, '--state-dir', state.dir);
      assert.equal(run.code, 3);
      assert.match(run.stdout, new RegExp(`another hotbackup proxy \\(pid ${proxy.child.pid}\\) already uses the state dir .* That proxy releases its own lock`));
      assert.equal(await locked(), true, 'a refused unlock must not touch mongod');
    } finally {
      await drainLockCount(admin());
      await proxy.stop();
      state.remove();
    }
  });

  it('requires --upstream', async () => {
    const run = await unlock();
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--upstream is required/);
  });
});

describe('hotbackup unlock against a mongod with --auth', () => {
  let server: RunningDevServer;
  let scratch: { dir: string; remove: () => void };
  const rootUri = () => `mongodb://root:root-Pw@127.0.0.1:${server.port}/?directConnection=true&authSource=admin`;

  before(async () => {
    scratch = tempDir('unlock-auth');
    server = await startDevServer({ args: ['--auth'] });
    // The localhost exception: the first user, then the rest as that user.
    const first = await MongoClient.connect(server.uri);
    try {
      await first.db('admin').command({ createUser: 'root', pwd: 'root-Pw', roles: ['root'] });
    } finally {
      await first.close();
    }
    const root = await MongoClient.connect(rootUri());
    try {
      // fsyncUnlock needs hostManager's `unlock`; whether mongod is locked, clusterMonitor's `inprog` (currentOp).
      await root.db('admin').command({ createUser: 'ops', pwd: 'ops-Pw', roles: ['hostManager', 'clusterMonitor'] });
    } finally {
      await root.close();
    }
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    scratch.remove();
  });

  it('takes the password from --upstream-password-file, as serve does, never from the command line', async () => {
    const root = await MongoClient.connect(rootUri());
    try {
      await root.db('admin').command({ fsync: 1, lock: true });
      const user = `mongodb://ops@127.0.0.1:${server.port}/?directConnection=true&authSource=admin`;
      const refused = await unlock('--upstream', user);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /Authentication failed|requires authentication/);

      const file = path.join(scratch.dir, 'ops.password');
      fs.writeFileSync(file, 'ops-Pw\n', { mode: 0o600 });
      const run = await unlock('--upstream', user, '--upstream-password-file', file);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /lock count is now 0, writes resume/);
      assert.doesNotMatch(run.stdout + run.stderr, /ops-Pw/);
      assert.equal((await root.db('admin').command({ currentOp: 1 }))['fsyncLock'], undefined);
    } finally {
      await root.close();
    }
  });
});
