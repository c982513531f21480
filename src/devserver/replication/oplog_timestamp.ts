/**
 * Oplog timestamps: `secs` is Unix seconds, `inc` counts up within a second, as
 * mongod's LogicalClock hands them out (src/mongo/db/logical_clock.cpp,
 * reserveTicks): never backwards, even when the wall clock steps back, and on
 * from the newest entry after a restart.
 */
import { Timestamp } from 'bson';

export type Clock = () => number;

export class TimestampClock {
  private secs = 0;
  private inc = 0;

  constructor(private readonly now: Clock = Date.now) {}

  /** Continue strictly after ts (the newest entry found at open). */
  advancePast(ts: Timestamp): void {
    if (ts.t > this.secs || (ts.t === this.secs && ts.i > this.inc)) {
      this.secs = ts.t;
      this.inc = ts.i;
    }
  }

  next(): Timestamp {
    const wall = Math.floor(this.now() / 1000);
    if (wall > this.secs) {
      this.secs = wall;
      this.inc = 1;
    } else {
      // Same second, or a clock that stepped back: count on from the last one.
      this.inc += 1;
      if (this.inc > 0xffffffff) {
        this.secs += 1;
        this.inc = 1;
      }
    }
    return new Timestamp({ t: this.secs, i: this.inc });
  }
}

/** The record key: the Timestamp as an unsigned 64-bit big-endian integer. */
export function timestampKey(ts: Timestamp): Buffer {
  const key = Buffer.alloc(8);
  key.writeUInt32BE(ts.t, 0);
  key.writeUInt32BE(ts.i, 4);
  return key;
}

export function keyTimestamp(key: Buffer): Timestamp {
  return new Timestamp({ t: key.readUInt32BE(0), i: key.readUInt32BE(4) });
}

/** secs << 32 | inc, as mongod prints an oplog RecordId. */
export function timestampRecordId(ts: Timestamp): string {
  return ((BigInt(ts.t) << 32n) | BigInt(ts.i)).toString();
}
