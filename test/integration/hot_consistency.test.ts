/**
 * A hot backup through the proxy, for both strategies, while a writer inserts
 * sequential _ids with j:true throughout: the copy opens in the dev server as a
 * gap-free prefix holding every write acknowledged before backupStart, and
 * WiredTiger's own `wt verify` accepts every table.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient, type Collection } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { assertRestorablePrefix } from '../helpers/restorable.js';
import { inBackground, untilBackupEnds, untilCopying } from '../helpers/poll.js';

type Seq = { _id: number; pad: string };

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
        const coll: Collection<Seq> = writerClient.db('app').collection<Seq>('seq');
        let acked = -1;
        let stop = false;
        const writer = inBackground(async () => {
          for (let id = 0; !stop; id++) {
            await coll.insertOne({ _id: id, pad: 'h'.repeat(400) }, { writeConcern: { w: 1, j: true } });
            acked = id;
          }
        });
        await writer.until(() => acked >= 2000);

        const admin = adminClient.db('admin');
        const ackedBeforeStart = acked;
        // A crawl until the copy is under way (and, with the backup cursor, until the
        // writer has been seen to go on during it), so that this does not depend on how
        // fast the machine writes; then throttled, so that the copy overlaps writes and
        // checkpoints for a while.
        await admin.command({ backupThrottle: '1MB' });
        const dest = path.join(scratch.dir, 'backup');
        assert.equal((await admin.command({ backupStart: dest, async: true, ...start }))['ok'], 1);
        const copying = await untilCopying(admin);
        if (strategy === 'backupCursor') {
          const ackedWhileCopying = acked;
          await writer.until(async () => {
            if (acked > ackedWhileCopying + 50) return true;
            if ((await admin.command({ backupStatus: 1 }))['inProgress'] !== true) assert.fail('writes did not continue during the copy');
            return undefined;
          });
        }
        await admin.command({ backupThrottle: '96MB' });
        const done = await untilBackupEnds(admin);
        stop = true;
        await writer.done;
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
