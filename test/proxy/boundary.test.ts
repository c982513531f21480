/** The upstream boundary tracker, byte by byte. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageBoundaryTracker } from '../../src/proxy/boundary.js';
import { CommandError } from '../../src/errors.js';

/** A message of `length` bytes: a valid length prefix, then filler. */
function message(length: number, fill = 0xab): Buffer {
  const bytes = Buffer.alloc(length, fill);
  bytes.writeInt32LE(length, 0);
  return bytes;
}

/** A tracker, and how many message headers it has reported (whole messages, when at a boundary). */
function countingTracker(): { tracker: MessageBoundaryTracker; count: () => number } {
  let headers = 0;
  return { tracker: new MessageBoundaryTracker(undefined, () => void headers++), count: () => headers };
}

/** Feeds `bytes` one byte at a time and records where the tracker says a boundary is. */
function boundariesBytewise(bytes: Buffer): number[] {
  const tracker = new MessageBoundaryTracker();
  const at: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    tracker.push(bytes.subarray(i, i + 1));
    if (tracker.atBoundary) at.push(i + 1);
  }
  return at;
}

describe('MessageBoundaryTracker', () => {
  it('is at a boundary before anything arrives', () => {
    const tracker = new MessageBoundaryTracker();
    assert.equal(tracker.atBoundary, true);
    tracker.push(Buffer.alloc(0));
    assert.equal(tracker.atBoundary, true);
  });

  it('follows whole messages in one chunk', () => {
    const { tracker, count } = countingTracker();
    tracker.push(Buffer.concat([message(16), message(100), message(21)]));
    assert.equal(tracker.atBoundary, true);
    assert.equal(count(), 3);
  });

  it('finds every boundary when bytes arrive one at a time (length prefix split every way)', () => {
    const stream = Buffer.concat([message(16), message(17), message(40)]);
    assert.deepEqual(boundariesBytewise(stream), [16, 33, 73]);
  });

  it('is mid-message after 1, 2 and 3 bytes of a length prefix', () => {
    const m = message(20);
    for (const split of [1, 2, 3]) {
      const tracker = new MessageBoundaryTracker();
      tracker.push(m.subarray(0, split));
      assert.equal(tracker.atBoundary, false, `after ${split} prefix bytes`);
      tracker.push(m.subarray(split));
      assert.equal(tracker.atBoundary, true, `after the rest (split at ${split})`);
    }
  });

  it('assembles a prefix split across chunks with high bytes set (little-endian, no sign slip)', () => {
    // 0x00_01_00_80 = 65,664: byte 0 is 0x80, which a signed shift would get wrong.
    const m = message(0x00010080);
    assert.equal(m[0], 0x80);
    const tracker = new MessageBoundaryTracker();
    tracker.push(m.subarray(0, 1));
    tracker.push(m.subarray(1, 3));
    tracker.push(m.subarray(3, 0x00010080 - 1));
    assert.equal(tracker.atBoundary, false);
    tracker.push(m.subarray(0x00010080 - 1));
    assert.equal(tracker.atBoundary, true);
  });

  it('advanceToBoundary stops right after the message in flight', () => {
    const first = message(30, 1);
    const second = message(25, 2);
    const { tracker, count } = countingTracker();
    tracker.push(first.subarray(0, 2)); // mid-prefix
    const chunk = Buffer.concat([first.subarray(2), second.subarray(0, 10)]);
    const cut = tracker.advanceToBoundary(chunk);
    assert.equal(cut, 28);
    assert.equal(tracker.atBoundary, true);
    assert.equal(count(), 1);
    // The rest was not consumed: push it now.
    tracker.push(chunk.subarray(cut));
    assert.equal(tracker.atBoundary, false);
    tracker.push(second.subarray(10));
    assert.equal(tracker.atBoundary, true);
    assert.equal(count(), 2);
  });

  it('advanceToBoundary returns start when already between messages, and the end when the chunk ends mid-message', () => {
    const tracker = new MessageBoundaryTracker();
    const m = message(64);
    assert.equal(tracker.advanceToBoundary(m, 0), 0);
    tracker.push(m.subarray(0, 10));
    assert.equal(tracker.advanceToBoundary(m.subarray(10, 40)), 30);
    assert.equal(tracker.atBoundary, false);
    assert.equal(tracker.advanceToBoundary(Buffer.concat([m.subarray(40), message(16)]), 0), 24);
    assert.equal(tracker.atBoundary, true);
  });

  it('advanceToBoundary honours a start offset', () => {
    const tracker = new MessageBoundaryTracker();
    const chunk = Buffer.concat([Buffer.from([9, 9, 9]), message(20)]);
    tracker.push(chunk.subarray(3, 8));
    assert.equal(tracker.advanceToBoundary(chunk, 8), chunk.length);
    assert.equal(tracker.atBoundary, true);
  });

  for (const length of [0, 5, 15, -1, 48_000_001, 60_000_000]) {
    it(`refuses messageLength ${length}, and keeps refusing`, () => {
      const tracker = new MessageBoundaryTracker();
      const prefix = Buffer.alloc(4);
      prefix.writeInt32LE(length, 0);
      assert.throws(() => tracker.push(prefix), (err: unknown) => err instanceof CommandError && err.code === 17);
      assert.throws(() => tracker.push(message(16)), CommandError);
    });
  }

  it('refuses a bad length that arrives split across chunks', () => {
    const tracker = new MessageBoundaryTracker();
    const prefix = Buffer.alloc(4);
    prefix.writeInt32LE(5, 0);
    tracker.push(prefix.subarray(0, 3));
    assert.throws(() => tracker.push(prefix.subarray(3)), /msgLen 5 is invalid/);
  });

  it('accepts exactly 48,000,000 and a smaller cap when configured', () => {
    const big = Buffer.alloc(4);
    big.writeInt32LE(48_000_000, 0);
    const tracker = new MessageBoundaryTracker();
    tracker.push(big);
    assert.equal(tracker.atBoundary, false);
    const small = new MessageBoundaryTracker(100);
    assert.throws(() => small.push(message(101)), /Max: 100/);
  });

  it('agrees with random chunkings of a random stream', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const lengths = Array.from({ length: 200 }, () => 16 + random(300));
    const stream = Buffer.concat(lengths.map((n) => message(n)));
    const expected: number[] = [];
    lengths.reduce((sum, n) => (expected.push(sum + n), sum + n), 0);
    for (let round = 0; round < 50; round++) {
      const { tracker, count } = countingTracker();
      const seen: number[] = [];
      let offset = 0;
      while (offset < stream.length) {
        const end = Math.min(stream.length, offset + 1 + random(600));
        // Walk the chunk boundary by boundary, as the proxy does while a reply waits.
        let at = offset;
        while (at < end) {
          const chunk = stream.subarray(at, end);
          const cut = tracker.advanceToBoundary(chunk);
          if (tracker.atBoundary && cut > 0) seen.push(at + cut);
          if (cut === 0) {
            tracker.push(chunk.subarray(0, Math.min(chunk.length, 4)));
            at += Math.min(chunk.length, 4);
            if (tracker.atBoundary) seen.push(at);
          } else at += cut;
        }
        offset = end;
      }
      assert.deepEqual(seen, expected, `round ${round}`);
      assert.equal(count(), lengths.length);
    }
  });
});
