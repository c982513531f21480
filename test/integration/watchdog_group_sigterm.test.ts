/**
 * A SIGTERM to the proxy's whole process group (systemd's default KillMode=control-group
 * signals every process of the unit, `kill -TERM -<pgid>`, tini -g) during an fsyncLock
 * backup, with mongod too slow to answer the proxy's unlock within --shutdown-timeout:
 * the unlock watchdog must survive that signal and unlock once mongod answers again,
 * or every writer hangs. The proxy runs under setsid so that its process group is not
 * the test runner's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { once } from 'node:events';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { spawnCli } from '../helpers/cli_process.js';
import { tempDir } from '../helpers/paths.js';
import { untilCopying, untilGone } from '../helpers/poll.js';

async function isLocked(uri: string): Promise<boolean> {
  const client = new MongoClient(uri);
  try {
    return (await client.db('admin').command({ currentOp: 1 }))['fsyncLock'] === true;
  } finally {
    await client.close();
  }
}

describe("SIGTERM to the proxy's process group during an fsyncLock backup, mongod slow to answer", () => {
  // The timeout is the hang detector: a dead watchdog leaves mongod locked for good.
  it('still unlocks mongod: the watchdog survives the group signal', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const scratch = tempDir('group-term');
    const cli = await spawnCli(
      ['serve', '--upstream', server.uri, '--port', '0', '--allow-write-blocking', '--shutdown-timeout', '1'],
      'proxy listening',
      ['setsid'],
    );
    const client = new MongoClient(`mongodb://127.0.0.1:${cli.port}/?directConnection=true`);
    try {
      const admin = client.db('admin');
      await admin.command({ backupThrottle: '1MB' });
      await admin.command({ backupStart: path.join(scratch.dir, 'b'), async: true });
      await untilCopying(admin);
      await client.close();
      assert.equal(await isLocked(server.uri), true);
      const armed = cli.logs.find((entry) => typeof entry['watchdogPid'] === 'number');
      const watchdogPid = armed?.['watchdogPid'] as number;
      assert.equal(typeof watchdogPid, 'number', 'the proxy logs its watchdog\'s pid');
      server.child.kill('SIGSTOP');
      const exited = once(cli.child, 'exit');
      process.kill(-(cli.child.pid as number), 'SIGTERM');
      await exited;
      server.child.kill('SIGCONT');
      // The watchdog exits once it has done its job (or at once, if the signal killed it).
      await untilGone(watchdogPid);
      assert.equal(await isLocked(server.uri), false, 'mongod is still fsync-locked: the watchdog died with the process group');
    } finally {
      server.child.kill('SIGCONT');
      await client.close().catch(() => undefined);
      const direct = new MongoClient(server.uri);
      await direct.db('admin').command({ fsyncUnlock: 1 }).catch(() => undefined);
      await direct.close();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
