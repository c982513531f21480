/**
 * Issue 7, item 4: a DBA runs fsyncUnlock by hand in the middle of an fsyncLock backup,
 * then takes their own fsync lock (say, for an LVM snapshot). The proxy must fail the
 * backup, never release the DBA's lock (neither itself nor through its watchdog), and
 * stop on the first SIGTERM.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { processAlive, until, untilBackupEnds, untilCopying } from '../helpers/poll.js';

describe('an fsync lock taken away during the copy', () => {
  // The timeout is the hang detector for the SIGTERM that once did not stop the proxy.
  it('fails the backup, keeps the DBA\'s lock, and stops on one SIGTERM', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const scratch = tempDir('lost-lock');
    const dba = new MongoClient(server.uri);
    let proxy: RunningProxy | undefined;
    let viaProxy: MongoClient | undefined;
    try {
      proxy = await startProxy(server, ['--allow-write-blocking']);
      viaProxy = new MongoClient(proxy.uri);
      await dba.db('app').collection('c').insertMany(Array.from({ length: 500 }, (_, i) => ({ i, pad: 'x'.repeat(200) })));
      const admin = viaProxy.db('admin');
      await admin.command({ backupThrottle: '1MB' });
      const destination = path.join(scratch.dir, 'b');
      await admin.command({ backupStart: destination, async: true });
      await untilCopying(admin);
      assert.equal((await dba.db('admin').command({ currentOp: 1 }))['fsyncLock'], true, 'the proxy holds the lock');

      // The DBA releases the proxy's lock by hand; lifting the throttle lets a proxy that
      // does not notice finish its (now inconsistent) copy.
      assert.equal(Number((await dba.db('admin').command({ fsyncUnlock: 1 }))['lockCount']), 0);
      await admin.command({ backupThrottle: 0 });
      const status = await untilBackupEnds(admin);
      const last = status['last'] as Document;
      assert.equal(last['ok'], false, 'the backup failed');
      assert.match(String(last['errmsg']), /fsync lock was released by another client during the copy/);
      assert.equal(last['codeName'], 'CannotBackup');
      assert.equal(fs.existsSync(path.join(destination, 'hotbackup-manifest.json')), false, 'no manifest');

      // Now the DBA takes their own lock.
      const locked = await dba.db('admin').command({ fsync: 1, lock: true });
      assert.equal(Number(locked['lockCount']), 1);

      await viaProxy.close();
      assert.equal(await proxy.stop(), 0, 'one SIGTERM stops the proxy, cleanly');
      const armed = proxy.logs.find((entry) => entry['msg'] === 'fsyncUnlock watchdog armed');
      const watchdogPid = armed?.['watchdogPid'];
      assert.equal(typeof watchdogPid, 'number', 'the proxy logs its watchdog\'s pid');
      await until(async () => (processAlive(watchdogPid as number) ? undefined : true));

      // With the proxy and its watchdog gone, the DBA's lock is still there.
      assert.equal((await dba.db('admin').command({ currentOp: 1 }))['fsyncLock'], true, "the DBA's lock is still held");
      assert.equal(Number((await dba.db('admin').command({ fsyncUnlock: 1 }))['lockCount']), 0);
      await dba.db('app').collection('c').insertOne({ after: 'the DBA unlocked' }, { writeConcern: { j: true } });
    } finally {
      await viaProxy?.close().catch(() => undefined);
      await dba.db('admin').command({ fsyncUnlock: 1 }).catch(() => undefined);
      await dba.close();
      await proxy?.kill9();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
