/**
 * A hot backup through the proxy, for both strategies, while a writer inserts
 * sequential _ids with j:true throughout: the copy opens in the dev server as a
 * gap-free prefix holding every write acknowledged before backupStart, and
 * WiredTiger's own `wt verify` accepts every table.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { assertRestorablePrefix, startSequentialWriter, type SequenceDoc } from '../helpers/restorable.js';
import { untilBackupEnds, untilCopying } from '../helpers/poll.js';

const cases = [
  { strategy: 'backupCursor', serverArgs: [] as string[], start: {} },
  { strategy: 'fsyncLock', serverArgs: ['--no-backup-cursor'], start: { allowWriteBlocking: true } },
] as const;

for (const { strategy, serverArgs, start } of cases) {
  describe(`hot backup with the ${strategy} strategy`, () => {
    it('restores to a consistent, gap-free prefix of acknowledged writes', async () => {
      const server = await startDevServer({ args: ['--checkpoint-interval', '1', ...serverArgs] });
      const proxy = await startProxy(server);
      const scratch = tempDir(`hot-${strategy}`);
      const writerClient = new MongoClient(proxy.uri);
      const adminClient = new MongoClient(proxy.uri);
      try {
        const writer = await startSequentialWriter(writerClient.db('app').collection<SequenceDoc>('seq'), 'h');
        const admin = adminClient.db('admin');
        const ackedBeforeStart = writer.acked();
        // A crawl until the copy is under way (and, with the backup cursor, until the
        // writer has been seen to go on during it), so that this does not depend on how
        // fast the machine writes; then throttled, so that the copy overlaps writes and
        // checkpoints for a while.
        await admin.command({ backupThrottle: '1MB' });
        const dest = path.join(scratch.dir, 'backup');
        assert.equal((await admin.command({ backupStart: dest, async: true, ...start }))['ok'], 1);
        const copying = await untilCopying(admin);
        if (strategy === 'backupCursor') {
          await writer.untilMoreDuring(50, async () => (await admin.command({ backupStatus: 1 }))['inProgress'] === true);
        }
        await admin.command({ backupThrottle: '96MB' });
        const done = await untilBackupEnds(admin);
        await writer.stop();
        const last = done['last'] as { ok: boolean; strategy: string; backupId: string };
        assert.equal(last.ok, true, JSON.stringify(last));
        assert.equal(last.backupId, copying['backupId']);
        assert.equal(last.strategy, strategy);

        await assertRestorablePrefix(dest, scratch.dir, ackedBeforeStart);
      } finally {
        await writerClient.close();
        await adminClient.close();
        await proxy.stop();
        await server.stop();
        server.cleanup();
        scratch.remove();
      }
    });
  });
}
