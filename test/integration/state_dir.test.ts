/**
 * Two `hotbackup serve` in front of one mongod share its default state dir (it is derived
 * from the dbpath), and one state file cannot hold two proxies' backups: a crash of one
 * would leave its fsync lock unknown to both. So the second fails to start, saying who
 * holds the dir and what to do; with a state dir of its own, it starts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { defaultStateDir } from '../../src/backup/work_dirs.js';

describe('one proxy per state dir', () => {
  it('refuses to start a second proxy on the same state dir, naming the first', async () => {
    const server = await startDevServer();
    const own = tempDir('own-state');
    const first = await startProxy(server);
    try {
      await assert.rejects(startProxy(server), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`another hotbackup proxy \\(pid ${first.child.pid}\\) already uses the state dir ${defaultStateDir(server.dbpath)}: .*Give each proxy its own --state-dir\\.`),
        );
        return true;
      });
      const second = await startProxy(server, ['--state-dir', path.join(own.dir, 'state')]);
      await second.stop();
      // Once the first is gone, the dir is free again.
      await first.stop();
      const third = await startProxy(server);
      await third.stop();
    } finally {
      await first.stop();
      await server.stop();
      server.cleanup();
      own.remove();
    }
  });
});
