/** kill -9 during a stream of j:true inserts loses no acknowledged write. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { tempDir } from '../helpers/paths.js';
import { inBackground } from '../helpers/poll.js';

/**
 * The order of WiredTiger's last checkpoint, 0 before the first: each checkpoint that
 * changed anything rewrites WiredTiger.turtle with the metadata file's new
 * `WiredTigerCheckpoint.<order>` (a rename, so a read sees the old file or the new one).
 */
function checkpointOrder(dbpath: string): number {
  const turtle = fs.readFileSync(path.join(dbpath, 'WiredTiger.turtle'), 'utf8');
  return Number(/WiredTigerCheckpoint\.(\d+)/.exec(turtle)?.[1] ?? 0);
}

describe('crash recovery', () => {
  it('recovers every acknowledged j:true insert after kill -9', async () => {
    const data = tempDir('crash');
    try {
      const first = await startDevServer({ dbpath: data.dir, args: ['--checkpoint-interval', '1'] });
      const client = new MongoClient(first.uri, { retryWrites: false, serverSelectionTimeoutMS: 2000 });
      await client.connect();
      const coll = client.db('crash').collection<{ _id: number; pad: string }>('stream');
      const acknowledged: number[] = [];
      let stop = false;
      const writer = inBackground(async () => {
        for (let id = 0; !stop; id++) {
          await coll.insertOne({ _id: id, pad: 'p'.repeat(200) }, { writeConcern: { w: 1, j: true } });
          acknowledged.push(id);
        }
      });
      // Recovery must start from a checkpoint taken mid-stream and replay the journal
      // after it: a checkpoint that completes after some inserts were acknowledged, then
      // more inserts after that checkpoint.
      await writer.until(() => acknowledged.length > 0);
      const before = checkpointOrder(first.dbpath);
      await writer.until(() => checkpointOrder(first.dbpath) > before);
      const atCheckpoint = acknowledged.length;
      await writer.until(() => acknowledged.length > atCheckpoint + 50);
      await first.kill9();
      stop = true;
      // The insert in flight at the kill fails: that is the crash, not a test failure.
      await writer.done.catch(() => undefined);
      await client.close(true);

      const second = await startDevServer({ dbpath: data.dir });
      const reader = new MongoClient(second.uri);
      try {
        const ids = (await reader.db('crash').collection('stream').find({}, { projection: { _id: 1 } }).toArray()).map((d) => Number(d['_id']));
        const present = new Set(ids);
        const lost = acknowledged.filter((id) => !present.has(id));
        assert.deepEqual(lost, [], `${lost.length} acknowledged writes lost`);
      } finally {
        await reader.close();
        await second.stop();
      }
    } finally {
      data.remove();
    }
  });

  it('refuses a dbpath that a running server holds', async () => {
    const running = await startDevServer();
    try {
      await assert.rejects(startDevServer({ dbpath: running.dbpath }), /exited/);
    } finally {
      await running.stop();
      running.cleanup();
    }
  });
});
