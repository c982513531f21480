import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MIN_PART_SIZE, MAX_PARTS, MIB, partCount, partSizeFor } from '../../src/s3/part_size.js';
import { PartBuffers } from '../../src/s3/part_buffers.js';

test('parts are 8 MiB until a file would need more than 10,000, then just large enough, in whole MiB', () => {
  assert.equal(partSizeFor(0), 8 * MIB);
  assert.equal(partSizeFor(1), 8 * MIB);
  assert.equal(partSizeFor(10_000 * 8 * MIB), 8 * MIB, '78.125 GiB is exactly 10,000 parts of 8 MiB');
  assert.equal(partSizeFor(10_000 * 8 * MIB + 1), 9 * MIB, 'one byte more takes the next whole MiB');
  for (const size of [1, 8 * MIB + 1, 100 * 1024 * MIB, 1024 * 1024 * MIB, 5 * 1024 * 1024 * MIB - 1]) {
    const part = partSizeFor(size);
    assert.ok(partCount(size, part) <= MAX_PARTS, `${size} in ${part}`);
    assert.equal(part % MIB, 0);
    assert.ok(part >= DEFAULT_MIN_PART_SIZE);
  }
  assert.equal(partSizeFor(20 * MIB, 16 * MIB), 16 * MIB);
  assert.throws(() => partSizeFor(1, 4 * MIB), /between 5 MiB and 5 GiB/);
  assert.throws(() => partSizeFor(-1), /byte count/);
  assert.throws(() => partSizeFor(5 * 1024 * 1024 * MIB + 1), /larger than S3's largest object/);
});

test('part buffers: at most `limit`, reused, replaced only by a larger one, waiting when all are lent', async () => {
  const buffers = new PartBuffers(2);
  const a = await buffers.acquire(8 * MIB);
  const b = await buffers.acquire(8 * MIB);
  assert.equal(buffers.allocatedBytes, 16 * MIB);
  let third: Buffer | undefined;
  const waiting = buffers.acquire(8 * MIB).then((buffer) => (third = buffer));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(third, undefined, 'a third buffer waits for one to come back');
  buffers.release(a);
  await waiting;
  assert.equal(third, a, 'the buffer given back is lent again, not a new one');
  buffers.release(b);
  buffers.release(third as Buffer);
  // A smaller part takes a buffer as it is; a larger one replaces a free buffer.
  const small = await buffers.acquire(MIB);
  assert.ok(small === a || small === b);
  const large = await buffers.acquire(12 * MIB);
  assert.equal(large.length, 12 * MIB);
  assert.equal(buffers.allocatedBytes, 20 * MIB, 'the 8 MiB buffer replaced is no longer counted');
  assert.ok(buffers.peakBytes <= 2 * 12 * MIB);
  buffers.release(small);
  buffers.release(large);
  // Many files of all sizes, one after another: the bound is limit × the largest part.
  for (let round = 0; round < 50; round += 1) {
    const size = (round % 7) * MIB + 1;
    const lent = [await buffers.acquire(size), await buffers.acquire(size)];
    for (const buffer of lent) buffers.release(buffer);
  }
  assert.ok(buffers.peakBytes <= 2 * 12 * MIB, `peak ${buffers.peakBytes}`);
  assert.equal(buffers.lent, 0);
});
