import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenBucket } from '../../src/backup/throttle.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Grant {
  at: number;
  bytes: number;
}

/** `workers` loops each taking `chunk` bytes until `stop` is aborted; returns when they all stop. */
async function takers(bucket: TokenBucket, workers: number, chunk: number, stop: AbortSignal, log: Grant[]): Promise<void> {
  const loop = async (): Promise<void> => {
    while (!stop.aborted) {
      try {
        await bucket.take(chunk, stop);
      } catch {
        return;
      }
      log.push({ at: performance.now(), bytes: chunk });
    }
  };
  await Promise.all(Array.from({ length: workers }, loop));
}

function bytesBetween(log: readonly Grant[], from: number, to: number): number {
  return log.filter((g) => g.at >= from && g.at < to).reduce((sum, g) => sum + g.bytes, 0);
}

describe('TokenBucket', () => {
  for (const [rate, chunk, workers] of [
    [8 * MiB, 256 * KiB, 4],
    [16 * MiB, MiB, 4],
  ] as const) {
    it(`holds ${rate / MiB} MiB/s within 5% over 2 s (${workers} takers of ${chunk / KiB} KiB)`, async () => {
      const bucket = new TokenBucket(rate);
      const total = 2 * rate;
      let taken = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (taken < total) {
            taken += chunk;
            await bucket.take(chunk);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const measured = total / seconds;
      assert.ok(Math.abs(measured / rate - 1) <= 0.05, `measured ${(measured / MiB).toFixed(2)} MiB/s for ${rate / MiB} MiB/s`);
    });
  }

  it('is instant when unlimited', async () => {
    const bucket = new TokenBucket(0);
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) await bucket.take(MiB);
    assert.ok(performance.now() - started < 200);
    assert.equal(bucket.rate, 0);
  });

  for (const [chunk, workers] of [
    [64 * KiB, 4],
    [MiB, 1],
  ] as const) {
    it(`shows a raise from 1 to 16 MiB/s within 0.5 s (${workers} takers of ${chunk / KiB} KiB)`, async () => {
      const bucket = new TokenBucket(MiB);
      const stop = new AbortController();
      const log: Grant[] = [];
      const running = takers(bucket, workers, chunk, stop.signal, log);
      const started = performance.now();
      await sleep(1000);
      const switchedAt = performance.now();
      bucket.setRate(16 * MiB);
      assert.equal(bucket.rate, 16 * MiB);
      await sleep(1000);
      stop.abort();
      await running;

      const before = bytesBetween(log, started, switchedAt) / ((switchedAt - started) / 1000);
      assert.ok(before <= 1.2 * MiB, `before the raise: ${(before / MiB).toFixed(2)} MiB/s`);
      if (chunk < MiB) {
        // In 100 ms windows after the switch, the first one running at >= 80% of the new rate.
        let reachedAfter = Infinity;
        for (let start = switchedAt; start + 100 <= switchedAt + 1000; start += 100) {
          if (bytesBetween(log, start, start + 100) * 10 >= 0.8 * 16 * MiB) {
            reachedAfter = start + 100 - switchedAt;
            break;
          }
        }
        assert.ok(reachedAfter <= 500, `new rate reached after ${reachedAfter} ms`);
      } else {
        // 1 MiB chunks under a 100 KiB bucket leave a debt; it must not hold the raise back.
        const inHalfSecond = bytesBetween(log, switchedAt, switchedAt + 500);
        assert.ok(inHalfSecond >= 6 * MiB, `${inHalfSecond / MiB} MiB in the 0.5 s after the raise`);
      }
      const after = bytesBetween(log, switchedAt + 500, switchedAt + 1000) * 2;
      assert.ok(Math.abs(after / (16 * MiB) - 1) <= 0.15, `after the raise: ${(after / MiB).toFixed(2)} MiB/s`);
    });
  }

  it('rejects an aborted take promptly with the reason, and serves the next waiter', async () => {
    const bucket = new TokenBucket(10 * KiB); // holds at most 1 KiB
    const order: string[] = [];
    const first = new AbortController();
    const big = bucket.take(MiB, first.signal);
    const small = bucket.take(KiB).then(() => order.push('small'));
    assert.equal(bucket.waiting, 2);
    await sleep(20);
    const reason = new Error('killOp');
    const abortedAt = performance.now();
    first.abort(reason);
    await assert.rejects(big, (err) => err === reason);
    assert.ok(performance.now() - abortedAt < 20);
    await small;
    // 1 KiB at 10 KiB/s from an empty bucket: ~100 ms after the start, not after the 1 MiB.
    assert.ok(performance.now() - abortedAt < 200);
    assert.deepEqual(order, ['small']);
    assert.equal(bucket.waiting, 0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const reason = new Error('gone');
    for (const rate of [0, 1]) {
      await assert.rejects(new TokenBucket(rate).take(1, AbortSignal.abort(reason)), (err) => err === reason);
    }
  });

  it('serves waiters in order and releases them all when set to unlimited', async () => {
    const bucket = new TokenBucket(1); // one byte per second
    const order: number[] = [];
    const waiters = [MiB, 1, 10].map((bytes, i) => bucket.take(bytes).then(() => order.push(i)));
    await sleep(30);
    assert.deepEqual(order, []);
    bucket.setRate(0);
    await Promise.all(waiters);
    assert.deepEqual(order, [0, 1, 2]);
  });

  it('refuses nonsense rates and sizes', async () => {
    assert.throws(() => new TokenBucket(-1), RangeError);
    assert.throws(() => new TokenBucket(NaN), RangeError);
    assert.throws(() => new TokenBucket(1, { refillIntervalMs: 0 }), RangeError);
    assert.throws(() => new TokenBucket(1).setRate(Infinity), RangeError);
    await assert.rejects(new TokenBucket(1).take(-5), RangeError);
  });
});
