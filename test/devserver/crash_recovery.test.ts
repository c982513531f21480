/** kill -9 during a stream of j:true inserts loses no acknowledged write. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

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
      const writer = (async () => {
        for (let id = 0; !stop; id++) {
          try {
            await coll.insertOne({ _id: id, pad: 'p'.repeat(200) }, { writeConcern: { w: 1, j: true } });
            acknowledged.push(id);
          } catch {
            return;
          }
        }
      })();
      // Past the 1 s checkpoint interval, so that recovery starts from a checkpoint taken
      // mid-stream and replays the journal after it: the wait is the server's interval,
      // and the count of writes is waited for, not expected within it.
      await sleep(1500);
      await until(() => acknowledged.length > 50);
      await first.kill9();
      stop = true;
      await writer;
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
