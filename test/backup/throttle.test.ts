/**
 * TokenBucket on a fake clock: every grant time below is exact, in milliseconds of
 * fake time. How closely the real timers follow is measured by `bench/throttle.ts`.
 *
 * At RATE, 1000 bytes/s, a byte accrues every millisecond and the bucket (100 ms by
 * default) holds at most 100 bytes, so the expected times can be read off the sizes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/backup/throttle.js';
import { FakeClock, settle } from '../helpers/fake_clock.js';

const RATE = 1000;
const MiB = 1024 * 1024;

interface Outcome {
  /** Fake time at which the take resolved; undefined while it waits. */
  at: number | undefined;
  /** Fake time at which it rejected, and why. */
  rejected: { at: number; reason: unknown } | undefined;
}

/** Starts watching a take: records the fake time at which it settles. */
function watch(clock: FakeClock, take: Promise<void>): Outcome {
  const outcome: Outcome = { at: undefined, rejected: undefined };
  take.then(
    () => (outcome.at = clock.now()),
    (reason: unknown) => (outcome.rejected = { at: clock.now(), reason }),
  );
  return outcome;
}

function bucketOnFakeClock(rate = RATE, refillIntervalMs?: number): { clock: FakeClock; bucket: TokenBucket } {
  const clock = new FakeClock();
  return { clock, bucket: new TokenBucket(rate, { clock, refillIntervalMs }) };
}

/** `workers` loops each taking `chunk` bytes until `stop` aborts; returns the fake times of every grant. */
function takers(clock: FakeClock, bucket: TokenBucket, workers: number, chunk: number, stop: AbortSignal): number[] {
  const grants: number[] = [];
  const loop = async (): Promise<void> => {
    while (!stop.aborted) {
      try {
        await bucket.take(chunk, stop);
      } catch {
        return;
      }
      grants.push(clock.now());
    }
  };
  for (let i = 0; i < workers; i++) void loop();
  return grants;
}

describe('TokenBucket', () => {
  it('is instant when unlimited: every take resolves without the clock moving, and no timer is armed', async () => {
    const { clock, bucket } = bucketOnFakeClock(0);
    const takes = Array.from({ length: 10_000 }, () => watch(clock, bucket.take(MiB)));
    await settle();
    assert.deepEqual(new Set(takes.map((t) => t.at)), new Set([0]));
    assert.deepEqual(clock.pending, []);
    assert.equal(bucket.rate, 0);
    // A take of nothing is free at any rate.
    const limited = bucketOnFakeClock();
    const nothing = watch(limited.clock, limited.bucket.take(0));
    await settle();
    assert.equal(nothing.at, 0);
  });

  it('starts empty: the first take waits until its bytes have accrued', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const first = watch(clock, bucket.take(50));
    await clock.advance(49);
    assert.equal(first.at, undefined);
    await clock.advance(1);
    assert.equal(first.at, 50);
    // It took everything there was.
    const second = watch(clock, bucket.take(1));
    await clock.advance(10);
    assert.equal(second.at, 51);
  });

  it('serves waiters first in, first out, with one timer for the head only', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const takes = [watch(clock, bucket.take(80))];
    await clock.advance(50);
    // 50 bytes are there, but the 10 bytes wait behind the 80.
    takes.push(...[10, 50, 100].map((bytes) => watch(clock, bucket.take(bytes))));
    assert.equal(bucket.waiting, 4);
    await settle();
    assert.deepEqual(clock.pending, [80]);
    await clock.advance(1000);
    assert.deepEqual(takes.map((t) => t.at), [80, 90, 140, 240]);
    assert.equal(bucket.waiting, 0);
    assert.deepEqual(clock.pending, []);
  });

  it('holds at most refillIntervalMs worth of tokens after an idle spell', async () => {
    for (const intervalMs of [100, 500]) {
      const { clock, bucket } = bucketOnFakeClock(RATE, intervalMs);
      await clock.advance(10_000);
      const capacity = (RATE * intervalMs) / 1000;
      const burst = watch(clock, bucket.take(capacity));
      const next = watch(clock, bucket.take(1));
      await settle();
      assert.equal(burst.at, 10_000, `the full bucket of ${capacity} bytes is there at once`);
      assert.equal(next.at, undefined, 'but not a byte more');
      await clock.advance(1);
      assert.equal(next.at, 10_001);
    }
  });

  it('grants a request larger than the bucket once it is full, and the debt delays the next', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const large = watch(clock, bucket.take(1000));
    const after = watch(clock, bucket.take(100));
    await clock.advance(1099);
    assert.equal(large.at, 100);
    assert.equal(after.at, undefined);
    await clock.advance(1);
    // 900 bytes of debt and 100 for itself: 1000 ms after the large one.
    assert.equal(after.at, 1100);
  });

  for (const [chunk, workers, grantsAt] of [
    [64, 4, (i: number) => 64 * (i + 1)],
    // Chunks ten times the bucket: granted when it is full, then 1000 bytes of debt each time.
    [1000, 2, (i: number) => 100 + 1000 * i],
  ] as const) {
    it(`holds the rate exactly over a long run (${workers} takers of ${chunk} B)`, async () => {
      const { clock, bucket } = bucketOnFakeClock();
      const stop = new AbortController();
      const grants = takers(clock, bucket, workers, chunk, stop.signal);
      await clock.advance(10_000);
      stop.abort();
      await settle();
      const expected = Array.from({ length: 10 }, (_, i) => grantsAt(i));
      assert.deepEqual(grants.slice(0, 10), expected);
      // Never more than the rate allows, and nothing lost either.
      assert.ok(grants.length * chunk <= 10_000 + Math.max(0, chunk - 100));
      assert.ok(grants.length * chunk > 10_000 - chunk);
      assert.equal(bucket.waiting, 0);
      assert.deepEqual(clock.pending, []);
    });
  }

  it('applies a raised rate to waiters already blocked, with the tokens earned so far', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const waiting = watch(clock, bucket.take(150));
    await clock.advance(50);
    bucket.setRate(10 * RATE);
    assert.equal(bucket.rate, 10 * RATE);
    // 50 bytes earned at the old rate; the other 100 at 10 bytes/ms. Not at 100 ms, when
    // the old rate's full (100-byte) bucket would have let it through.
    assert.deepEqual(clock.pending, [60]);
    await clock.advance(100);
    assert.equal(waiting.at, 60);
  });

  it('applies a raised rate to a waiter held back by debt', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const large = watch(clock, bucket.take(1000));
    const next = watch(clock, bucket.take(100));
    await clock.advance(100);
    assert.equal(large.at, 100);
    assert.deepEqual(clock.pending, [1100]);
    bucket.setRate(100 * RATE);
    // The 900 bytes of debt stand, but are repaid at 100 bytes/ms: 1000 bytes in 10 ms.
    assert.deepEqual(clock.pending, [110]);
    await clock.advance(1000);
    assert.equal(next.at, 110);
  });

  it('applies a lowered rate to waiters already blocked, and caps the saved tokens to the new bucket', async () => {
    const blocked = bucketOnFakeClock();
    const waiting = watch(blocked.clock, blocked.bucket.take(50));
    await blocked.clock.advance(10);
    blocked.bucket.setRate(RATE / 2);
    // 10 bytes earned at the old rate, 40 at half a byte per millisecond.
    await blocked.clock.advance(79);
    assert.equal(waiting.at, undefined);
    await blocked.clock.advance(1);
    assert.equal(waiting.at, 90);

    const saved = bucketOnFakeClock();
    await saved.clock.advance(1000);
    saved.bucket.setRate(RATE / 10); // holds 10 bytes now, not 100
    const burst = watch(saved.clock, saved.bucket.take(10));
    const next = watch(saved.clock, saved.bucket.take(1));
    await saved.clock.advance(9);
    assert.equal(burst.at, 1000);
    assert.equal(next.at, undefined);
    await saved.clock.advance(1);
    assert.equal(next.at, 1010);
  });

  it('rejects an aborted take before the clock moves, and it costs the queue nothing', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const first = new AbortController();
    const big = watch(clock, bucket.take(100, first.signal));
    const small = watch(clock, bucket.take(10));
    await settle();
    const reason = new Error('killOp');
    first.abort(reason);
    assert.equal(bucket.waiting, 1);
    await settle();
    assert.deepEqual(big.rejected, { at: 0, reason });
    // The head's timer was re-armed for the next waiter: 10 bytes, from an empty bucket.
    assert.deepEqual(clock.pending, [10]);
    await clock.advance(100);
    assert.equal(small.at, 10);
    assert.equal(bucket.waiting, 0);
  });

  it('drops an aborted waiter from the middle of the queue, and the timer with the last one', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const middle = new AbortController();
    const head = new AbortController();
    const takes = [
      watch(clock, bucket.take(100, head.signal)),
      watch(clock, bucket.take(10, middle.signal)),
      watch(clock, bucket.take(5)),
    ];
    middle.abort(new Error('middle'));
    await clock.advance(110);
    assert.deepEqual(takes.map((t) => t.at), [100, undefined, 105]);
    assert.equal(takes[1]?.rejected?.at, 0);

    const alone = new AbortController();
    const lone = watch(clock, bucket.take(100, alone.signal));
    await settle();
    assert.equal(clock.pending.length, 1);
    alone.abort(new Error('alone'));
    await settle();
    assert.equal(lone.rejected?.at, 110);
    assert.deepEqual(clock.pending, []);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const reason = new Error('gone');
    for (const rate of [0, 1]) {
      await assert.rejects(bucketOnFakeClock(rate).bucket.take(1, AbortSignal.abort(reason)), (err) => err === reason);
    }
  });

  it('never arms a timer longer than 60 s, re-arming until the tokens are there', async () => {
    const { clock, bucket } = bucketOnFakeClock();
    const huge = watch(clock, bucket.take(100_000));
    const next = watch(clock, bucket.take(100));
    await clock.advance(100);
    assert.equal(huge.at, 100);
    // 99,900 bytes of debt plus 100: 100 s at 1 byte/ms, waited for in steps of 60 s.
    assert.deepEqual(clock.pending, [60_100]);
    await clock.advanceTo(60_100);
    assert.equal(next.at, undefined);
    assert.deepEqual(clock.pending, [100_100]);
    await clock.advanceTo(100_099);
    assert.equal(next.at, undefined);
    await clock.advance(1);
    assert.equal(next.at, 100_100);
  });

  it('releases every waiter at once, in order, when set to unlimited; a later limit starts empty', async () => {
    const { clock, bucket } = bucketOnFakeClock(1); // one byte per second
    const order: number[] = [];
    const takes = [MiB, 1, 10].map((bytes, i) => bucket.take(bytes).then(() => order.push(i)));
    await clock.advance(50);
    assert.deepEqual(order, []);
    bucket.setRate(0);
    await Promise.all(takes);
    assert.deepEqual(order, [0, 1, 2]);
    assert.equal(clock.now(), 50);
    assert.deepEqual(clock.pending, []);

    await clock.advance(10_000);
    bucket.setRate(RATE);
    const limited = watch(clock, bucket.take(10));
    await clock.advance(9);
    assert.equal(limited.at, undefined);
    await clock.advance(1);
    assert.equal(limited.at, 10_060);
  });

  it('refuses nonsense rates and sizes', async () => {
    assert.throws(() => new TokenBucket(-1), RangeError);
    assert.throws(() => new TokenBucket(NaN), RangeError);
    assert.throws(() => new TokenBucket(1, { refillIntervalMs: 0 }), RangeError);
    assert.throws(() => new TokenBucket(1).setRate(Infinity), RangeError);
    await assert.rejects(new TokenBucket(1).take(-5), RangeError);
  });
});
