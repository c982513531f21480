/**
 * backupThrottle governs a real copy: a throttled backup takes bytes/rate seconds,
 * and raising the throttle mid-backup shows in the measured rate within 0.5 s.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { untilBackupEnds } from '../helpers/poll.js';

const MiB = 1024 * 1024;

describe('backupThrottle on a running copy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('throttle');
  const status = () => client.db('admin').command({ backupStatus: 1 });

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    await client.connect();
    // Some real data besides the journal's preallocated 100 MiB file.
    const docs = Array.from({ length: 8000 }, (_, i) => ({ i, pad: 't'.repeat(1000) }));
    await client.db('app').collection('bulk').insertMany(docs);
    await client.db('admin').command({ fsync: 1 });
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('copies at the throttled rate (16 MiB/s, within ±10%)', async () => {
    await client.db('admin').command({ backupThrottle: 16 * MiB });
    const startedAt = Date.now();
    await client.db('admin').command({ backupStart: path.join(scratch.dir, 'steady'), async: true });
    const done = (await untilBackupEnds(client.db('admin'))) as Document;
    const seconds = (Date.now() - startedAt) / 1000;
    const bytes = Number(done['bytesTotal']);
    assert.ok(bytes >= 64 * MiB, `backup of ${bytes} bytes is at least 64 MiB`);
    assert.equal((done['last'] as Document)['ok'], true);
    const expected = bytes / (16 * MiB);
    assert.ok(Math.abs(seconds - expected) <= expected * 0.1, `took ${seconds.toFixed(2)} s, expected ${expected.toFixed(2)} s`);
  });

  it('applies a raised throttle to the running copy within 0.5 s', async () => {
    await client.db('admin').command({ backupThrottle: 8 * MiB });
    await client.db('admin').command({ backupStart: path.join(scratch.dir, 'raised'), async: true });
    const samples: Array<{ t: number; bytes: number }> = [];
    const sample = async () => samples.push({ t: Date.now(), bytes: Number((await status())['bytesCopied']) });
    const begin = Date.now();
    while (Date.now() - begin < 2000) {
      await sample();
      await sleep(50);
    }
    const raisedAt = Date.now();
    await client.db('admin').command({ backupThrottle: 32 * MiB });
    while (Date.now() - raisedAt < 1500) {
      await sample();
      await sleep(50);
    }
    await client.db('admin').command({ backupThrottle: 0 });
    assert.equal(((await untilBackupEnds(client.db('admin'))) as Document)['inProgress'], false);

    const rate = (from: number, to: number) => {
      const a = samples.find((s) => s.t >= from);
      const b = [...samples].reverse().find((s) => s.t <= to);
      if (a === undefined || b === undefined || b.t <= a.t) return NaN;
      return (b.bytes - a.bytes) / ((b.t - a.t) / 1000);
    };
    const before = rate(begin + 500, raisedAt);
    assert.ok(Math.abs(before - 8 * MiB) < 8 * MiB * 0.2, `rate before: ${(before / MiB).toFixed(1)} MiB/s`);
    const after = rate(raisedAt + 500, raisedAt + 1000);
    assert.ok(Math.abs(after - 32 * MiB) < 32 * MiB * 0.2, `rate from 0.5 s after the raise: ${(after / MiB).toFixed(1)} MiB/s`);
  });
});
