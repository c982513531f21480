/**
 * `hotbackup serve` stops on the first SIGTERM, even in the middle of an fsyncLock
 * backup: it releases the lock and exits; when mongod does not answer, it exits after
 * --shutdown-timeout and leaves the lock to its watchdog; a second signal exits at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { once } from 'node:events';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { processAlive, until, untilCopying } from '../helpers/poll.js';

/** Starts a throttled fsyncLock backup through the proxy and waits until it is copying. */
async function backupUnderway(proxy: RunningProxy, destination: string): Promise<void> {
  const client = new MongoClient(proxy.uri);
  try {
    const admin = client.db('admin');
    await admin.command({ backupThrottle: '1MB' });
    await admin.command({ backupStart: destination, async: true });
    await untilCopying(admin);
  } finally {
    await client.close();
  }
}

async function isLocked(server: RunningDevServer): Promise<boolean> {
  const client = new MongoClient(server.uri);
  try {
    return (await client.db('admin').command({ currentOp: 1 }))['fsyncLock'] === true;
  } finally {
    await client.close();
  }
}

/** A dev server without $backupCursor, a proxy allowed to fsyncLock, a scratch dir; all cleaned up. */
async function withFsyncLockProxy(
  proxyArgs: string[],
  body: (server: RunningDevServer, proxy: RunningProxy, scratch: string) => Promise<void>,
): Promise<void> {
  const server = await startDevServer({ args: ['--no-backup-cursor'] });
  const scratch = tempDir('shutdown');
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy(server, ['--allow-write-blocking', ...proxyArgs]);
    await body(server, proxy, scratch.dir);
  } finally {
    server.child.kill('SIGCONT');
    await proxy?.kill9();
    await server.stop();
    server.cleanup();
    scratch.remove();
  }
}

function exitOf(proxy: RunningProxy): Promise<[number | null, NodeJS.Signals | null]> {
  if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) return Promise.resolve([proxy.child.exitCode, proxy.child.signalCode]);
  return once(proxy.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
}

describe('hotbackup serve on SIGTERM during an fsyncLock backup', () => {
  it('releases the lock and exits on the first signal', async () => {
    await withFsyncLockProxy([], async (server, proxy, scratch) => {
      const destination = path.join(scratch, 'b');
      await backupUnderway(proxy, destination);
      assert.equal(await isLocked(server), true);
      assert.equal(await proxy.stop(), 0);
      assert.equal(await isLocked(server), false, 'the lock was released on the way out');
      // The last lines may still be in the pipe when the exit is seen.
      const failed = await until(() => proxy.logs.find((entry) => entry['msg'] === 'backup failed'));
      assert.equal(failed['code'], 11600, 'the backup was interrupted at shutdown');
      assert.equal(fs.existsSync(path.join(destination, 'hotbackup-manifest.json')), false);
      const watchdogPid = proxy.logs.find((entry) => entry['msg'] === 'fsyncUnlock watchdog armed')?.['watchdogPid'];
      await until(() => (processAlive(watchdogPid as number) ? undefined : true));
    });
  });

  it('exits after --shutdown-timeout when mongod does not answer, and the watchdog unlocks', async () => {
    await withFsyncLockProxy(['--shutdown-timeout', '1'], async (server, proxy, scratch) => {
      await backupUnderway(proxy, path.join(scratch, 'b'));
      // mongod hangs: the unlock on the way out cannot get an answer.
      server.child.kill('SIGSTOP');
      assert.equal(await proxy.stop(), 1, 'a shutdown that ran out of time exits 1');
      const timedOut = await until(() => proxy.logs.find((entry) => entry['msg'] === 'shutdown did not finish in time; exiting anyway'));
      assert.equal((timedOut['left'] as { backup?: { strategy?: string } } | undefined)?.backup?.strategy, 'fsyncLock');
      server.child.kill('SIGCONT');
      // The proxy is gone with its lock held: that is the watchdog's case.
      await until(async () => ((await isLocked(server)) ? undefined : true));
    });
  });

  it('exits at once on a second signal', async () => {
    await withFsyncLockProxy(['--shutdown-timeout', '3600'], async (server, proxy, scratch) => {
      await backupUnderway(proxy, path.join(scratch, 'b'));
      server.child.kill('SIGSTOP');
      const exited = exitOf(proxy);
      proxy.child.kill('SIGTERM');
      await until(() => (proxy.logs.some((entry) => entry['msg'] === 'signal received: shutting down') ? true : undefined));
      proxy.child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 143, 'exited on the second SIGTERM, as a shell reports a SIGTERM death');
      server.child.kill('SIGCONT');
      await until(async () => ((await isLocked(server)) ? undefined : true));
    });
  });
});
