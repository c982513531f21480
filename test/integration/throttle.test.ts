/**
 * backupThrottle governs a real copy. These tests assert what must never happen: more
 * bytes copied by a moment than the throttle allowed up to it. They check "not far too
 * slow" only with a wide margin. How closely the rate is held, and how soon a raise
 * shows, are measured by `bench/throttle.ts` (figures in docs/performance.md).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { DEFAULT_CHUNK_SIZE } from '../../src/backup/copier.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Rounding in the bucket and the clocks: far below one chunk at any rate used here. */
const SLACK_MS = 1;

/**
 * What the throttle may let through at once, on top of its rate: a full bucket (100 ms
 * of the rate, src/backup/throttle.ts) or, when a chunk is larger than that, the one
 * chunk it grants on credit.
 */
function burst(rate: number): number {
  return Math.max(rate / 10, DEFAULT_CHUNK_SIZE);
}

/** Bytes the throttle allows `ms` after a start with at most a full bucket. */
function allowed(rate: number, ms: number): number {
  return burst(rate) + (rate * (ms + SLACK_MS)) / 1000;
}

interface Sample {
  /** Milliseconds since the test's start, read when the reply arrived (so never early). */
  at: number;
  bytes: number;
}

describe('backupThrottle on a running copy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('throttle');
  const admin = () => client.db('admin');

  /** Polls backupStatus, recording bytesCopied against `start`, until `done` says stop; returns the last status. */
  function sampleUntil(start: number, samples: Sample[], done: (status: Document) => boolean): Promise<Document> {
    return until(async () => {
      const status = await admin().command({ backupStatus: 1 });
      samples.push({ at: performance.now() - start, bytes: Number(status['bytesCopied']) });
      return done(status) ? status : undefined;
    });
  }

  /**
   * A checkpoint that really happens (a write, then fsync): WiredTiger then archives the
   * log file the last backup cursor moved off, so each backup copies one 100 MiB log
   * file, not one more per earlier backup (see bench/backup.ts).
   */
  async function checkpoint(): Promise<void> {
    await client.db('app').collection<{ _id: number; n?: number }>('marker').updateOne({ _id: 1 }, { $inc: { n: 1 } }, { upsert: true });
    await admin().command({ fsync: 1 });
  }

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    await client.connect();
    // Some real data besides the journal's preallocated 100 MiB file.
    const docs = Array.from({ length: 8000 }, (_, i) => ({ i, pad: 't'.repeat(1000) }));
    await client.db('app').collection('bulk').insertMany(docs);
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('never copies faster than the throttle allows', async (t) => {
    const rate = 32 * MiB;
    await checkpoint();
    await admin().command({ backupThrottle: rate });
    const start = performance.now();
    await admin().command({ backupStart: path.join(scratch.dir, 'steady'), async: true });
    const samples: Sample[] = [];
    const done = await sampleUntil(start, samples, (status) => status['inProgress'] !== true);
    const seconds = (performance.now() - start) / 1000;
    const last = done['last'] as Document;
    assert.equal(last['ok'], true, String(last['errmsg']));
    const bytes = Number(last['bytes']);
    t.diagnostic(`${(bytes / MiB).toFixed(1)} MiB at ${rate / MiB} MiB/s in ${seconds.toFixed(2)} s, ${samples.length} samples`);
    assert.ok(bytes >= 64 * MiB, `a backup of ${bytes} bytes is at least 64 MiB`);
    assert.equal(samples.at(-1)?.bytes, bytes);

    for (const { at, bytes: copied } of samples) {
      assert.ok(copied <= allowed(rate, at), `${copied} bytes copied ${at.toFixed(0)} ms in; the throttle allows ${Math.floor(allowed(rate, at))}`);
    }
    // Not far too slow either; busy machines get a wide margin.
    assert.ok(seconds < (5 * bytes) / rate, `took ${seconds.toFixed(2)} s for ${(bytes / rate).toFixed(2)} s of bytes`);
  });

  it('applies a raised throttle to the running copy', async (t) => {
    // 1 KiB/s: the first 1 MiB chunk goes through on credit, and that debt holds the
    // copy for 17 minutes, past the suite's timeout, unless the raise reaches it.
    const low = KiB;
    const high = 32 * MiB;
    await checkpoint();
    await admin().command({ backupThrottle: low });
    const start = performance.now();
    await admin().command({ backupStart: path.join(scratch.dir, 'raised'), async: true });
    const held: Sample[] = [];
    // Watch the held copy for a few status replies after its first chunk.
    await sampleUntil(start, held, () => held.filter((s) => s.bytes > 0).length >= 5);
    const sentAt = performance.now() - start;
    const raise = await admin().command({ backupThrottle: high });
    const raisedAt = performance.now() - start;
    assert.equal(raise['ok'], 1);
    assert.equal((await admin().command({ backupStatus: 1 }))['inProgress'], true, 'still copying at the low rate');

    const after: Sample[] = [];
    const done = await sampleUntil(start, after, (status) => status['inProgress'] !== true);
    const last = done['last'] as Document;
    assert.equal(last['ok'], true, String(last['errmsg']));
    const bytes = Number(last['bytes']);
    const endedAt = performance.now() - start;
    t.diagnostic(`raised after ${(raisedAt / 1000).toFixed(2)} s at ${held.at(-1)?.bytes} bytes; ${(bytes / MiB).toFixed(1)} MiB done ${((endedAt - raisedAt) / 1000).toFixed(2)} s later`);

    for (const { at, bytes: copied } of held) {
      assert.ok(copied <= allowed(low, at), `${copied} bytes copied ${at.toFixed(0)} ms in, at ${low} bytes/s`);
    }
    // After the raise: what the low rate allowed until the raise, then the high rate.
    const allowedAfter = (at: number): number => allowed(low, raisedAt) + (high * (at - sentAt + SLACK_MS)) / 1000;
    for (const { at, bytes: copied } of after) {
      assert.ok(copied <= allowedAfter(at), `${copied} bytes copied ${at.toFixed(0)} ms in, raised at ${sentAt.toFixed(0)} ms`);
    }
    // A raise that reached the waiters only at the bucket's 60 s re-arm would fail this.
    assert.ok(endedAt - raisedAt < (5 * 1000 * bytes) / high, `finished ${((endedAt - raisedAt) / 1000).toFixed(2)} s after the raise`);
  });
});
