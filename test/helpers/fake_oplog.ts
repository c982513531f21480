/** An oplog in memory, for the streamer's tests: capped by hand, tailed in batches, a cursor failing on demand. */
import type { OplogBounds, OplogSource, OplogTail } from '../../src/oplog/oplog_source.js';
import { compareOplogTs, entryTs, type OplogTs } from '../../src/oplog/oplog_ts.js';

/** An error the tests' judge calls transient. */
export class Transient extends Error {}

export class FakeOplog implements OplogSource {
  entries: Buffer[] = [];
  batchSize = 3;
  tails = 0;
  #failNext: Error | undefined;
  #waiters: Array<() => void> = [];

  push(...entries: Buffer[]): void {
    this.entries.push(...entries);
    for (const wake of this.#waiters.splice(0)) wake();
  }
  /** The capped collection rolling over: the oldest `count` entries go. */
  drop(count: number): void {
    this.entries.splice(0, count);
  }
  /** The open cursor's next call rejects with `err` (a dropped connection, a killed cursor). */
  failNext(err: Error): void {
    this.#failNext = err;
    for (const wake of this.#waiters.splice(0)) wake();
  }
  async bounds(): Promise<OplogBounds | undefined> {
    const [first, last] = [this.entries[0], this.entries[this.entries.length - 1]];
    return first === undefined || last === undefined ? undefined : { oldest: entryTs(first), newest: entryTs(last) };
  }
  tail(from: OplogTs): OplogTail {
    this.tails += 1;
    let next = this.entries.findIndex((e) => compareOplogTs(entryTs(e), from) >= 0);
    if (next === -1) next = this.entries.length;
    let nextTs: OplogTs | undefined = this.entries[next] === undefined ? undefined : entryTs(this.entries[next] as Buffer);
    return {
      next: async () => {
        for (;;) {
          if (this.#failNext !== undefined) {
            const err = this.#failNext;
            this.#failNext = undefined;
            throw err;
          }
          // Where the cursor stood, found again by ts (the capped collection may have shifted).
          const at = nextTs === undefined ? this.entries.length : this.entries.findIndex((e) => compareOplogTs(entryTs(e), nextTs as OplogTs) >= 0);
          const index = at === -1 ? this.entries.length : at;
          if (index < this.entries.length) {
            const batch = this.entries.slice(index, index + this.batchSize);
            const after = this.entries[index + batch.length];
            nextTs = after === undefined ? { ...entryTs(batch[batch.length - 1] as Buffer), inc: entryTs(batch[batch.length - 1] as Buffer).inc + 1 } : entryTs(after);
            return batch;
          }
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      },
      close: async () => undefined,
    };
  }
  async close(): Promise<void> {}
}

