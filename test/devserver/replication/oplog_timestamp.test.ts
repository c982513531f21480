/** Oplog timestamps: seconds from the clock, inc within a second, never backwards. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Timestamp } from 'bson';
import { TimestampClock, keyTimestamp, timestampKey, timestampRecordId } from '../../../src/devserver/replication/oplog_timestamp.js';

const pairs = (list: Timestamp[]): Array<[number, number]> => list.map((ts) => [ts.t, ts.i]);

describe('oplog timestamps', () => {
  it('counts inc within a second and restarts it at 1 in the next', () => {
    let now = 1_700_000_000_000;
    const clock = new TimestampClock(() => now);
    const first = [clock.next(), clock.next()];
    now += 1000;
    assert.deepEqual(pairs([...first, clock.next()]), [[1_700_000_000, 1], [1_700_000_000, 2], [1_700_000_001, 1]]);
  });

  it('never goes backwards when the wall clock steps back', () => {
    let now = 1_700_000_010_000;
    const clock = new TimestampClock(() => now);
    const a = clock.next();
    now -= 60_000;
    const b = clock.next();
    assert.deepEqual(pairs([a, b]), [[1_700_000_010, 1], [1_700_000_010, 2]]);
  });

  it('continues after the newest entry found at open, even from a clock behind it', () => {
    const clock = new TimestampClock(() => 1_000_000);
    clock.advancePast(new Timestamp({ t: 2_000_000_000, i: 7 }));
    assert.deepEqual(pairs([clock.next()]), [[2_000_000_000, 8]]);
  });

  it('keys sort as timestamps do, and print as mongod prints the RecordId', () => {
    const small = new Timestamp({ t: 5, i: 0xffffffff });
    const big = new Timestamp({ t: 6, i: 1 });
    assert.ok(Buffer.compare(timestampKey(small), timestampKey(big)) < 0);
    assert.deepEqual(pairs([keyTimestamp(timestampKey(big))]), [[6, 1]]);
    assert.equal(timestampRecordId(big), String(6n * 2n ** 32n + 1n));
  });
});
