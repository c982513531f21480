/**
 * runConcurrently, the S3 downloads' several-at-once (src/s3/s3_pool.ts): largest first, at
 * most N at once, results in the order given; the first error aborts the others and every
 * item has settled before it rejects; with keepGoing each error is its item's result; the
 * caller's abort stops them all with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runConcurrently } from '../../src/s3/s3_pool.js';

/** A job that waits until its `release` is called or its signal aborts. */
function gate() {
  const waiting = new Map<number, { release: (fail?: Error) => void }>();
  const started: number[] = [];
  const settled: number[] = [];
  const work = (item: { id: number; size: number }, signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      started.push(item.id);
      let over = false;
      const done = (fail?: Error) => {
        if (over) return;
        over = true;
        settled.push(item.id);
        if (fail === undefined) resolve(`done ${item.id}`);
        else reject(fail);
      };
      waiting.set(item.id, { release: done });
      signal.addEventListener('abort', () => done(new Error(`aborted ${item.id}`)), { once: true });
    });
  const release = (id: number, fail?: Error) => waiting.get(id)!.release(fail);
  return { work, started, settled, release, waiting };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('runs the largest first, at most N at once, and returns results in the order given', async () => {
  const g = gate();
  const items = [1, 5, 3, 4].map((size, id) => ({ id, size }));
  const run = runConcurrently(items, 2, g.work);
  await tick();
  assert.deepEqual(g.started, [1, 3], 'the two largest, and no more');
  g.release(3);
  await tick();
  assert.deepEqual(g.started, [1, 3, 2]);
  g.release(1);
  await tick();
  g.release(2);
  await tick();
  g.release(0);
  assert.deepEqual(await run, [{ value: 'done 0' }, { value: 'done 1' }, { value: 'done 2' }, { value: 'done 3' }]);
});

test('the first error aborts the others, which settle before it rejects with that error', async () => {
  const g = gate();
  const items = [3, 2, 1].map((size, id) => ({ id, size }));
  const run = runConcurrently(items, 2, g.work);
  await tick();
  g.release(1, new Error('bad object'));
  await assert.rejects(run, /bad object/);
  assert.deepEqual(g.started, [0, 1], 'nothing more was started');
  assert.deepEqual(g.settled.sort(), [0, 1]);
});

test('with keepGoing each error is its item\'s result, and the caller\'s abort still stops them all', async () => {
  const g = gate();
  const items = [2, 1].map((size, id) => ({ id, size }));
  const run = runConcurrently(items, 1, g.work, { keepGoing: true });
  await tick();
  g.release(0, new Error('unreadable'));
  await tick();
  g.release(1);
  const results = await run;
  assert.equal((results[0] as { error: Error }).error.message, 'unreadable');
  assert.deepEqual(results[1], { value: 'done 1' });

  const caller = new AbortController();
  const h = gate();
  const stopped = runConcurrently(items, 2, h.work, { keepGoing: true, signal: caller.signal });
  await tick();
  caller.abort(new Error('interrupted by SIGINT'));
  await assert.rejects(stopped, /interrupted by SIGINT/);
  assert.deepEqual(h.settled.sort(), [0, 1]);
});
