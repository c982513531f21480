/**
 * kill -9 of the proxy in the middle of an fsyncLock backup: the watchdog releases
 * mongod's fsync lock, so writers do not hang behind a dead proxy.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilCopying } from '../helpers/poll.js';

describe('a proxy killed while holding the fsync lock', () => {
  it('does not leave mongod locked', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const proxy = await startProxy(server, ['--allow-write-blocking']);
    const scratch = tempDir('killed');
    const viaProxy = new MongoClient(proxy.uri);
    const direct = new MongoClient(server.uri);
    try {
      await viaProxy.db('admin').command({ backupThrottle: '4MB' });
      await viaProxy.db('admin').command({ backupStart: path.join(scratch.dir, 'b'), async: true });
      await untilCopying(viaProxy.db('admin'));
      assert.equal((await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'], true, 'locked during the copy');

      await viaProxy.close(true);
      await proxy.kill9();

      // The watchdog releases the lock after the proxy died, however long that takes it.
      await until(async () => (await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'] === undefined);
      await direct.db('app').collection('c').insertOne({ after: 'proxy death' }, { writeConcern: { j: true } });
    } finally {
      await viaProxy.close().catch(() => undefined);
      await direct.close();
      await proxy.stop();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
