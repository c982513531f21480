/**
 * hello's `topologyVersion`: the process id and a counter that goes up whenever what
 * hello says changes. An awaitable hello (the monitors' form) waits for the counter to
 * move; mongod wakes every waiter at once when it does (src/mongo/db/repl/
 * replication_coordinator_impl.cpp, _fulfillTopologyChangePromise), which is how a
 * driver's monitor sees a new primary without waiting out maxAwaitTimeMS.
 */
import { EventEmitter } from 'node:events';
import { Long, ObjectId } from 'bson';
import { setLongTimeout } from '../max_time.js';

export class TopologyVersion {
  readonly processId = new ObjectId();
  private count = 0;
  private readonly changes = new EventEmitter();

  constructor() {
    // One listener per awaitable hello: many monitors may wait at once.
    this.changes.setMaxListeners(0);
  }

  get counter(): Long {
    return Long.fromNumber(this.count);
  }

  toDocument(): { processId: ObjectId; counter: Long } {
    return { processId: this.processId, counter: this.counter };
  }

  /** Whether a client's `{processId, counter}` is the current one. */
  isCurrent(processId: unknown, counter: number): boolean {
    return processId instanceof ObjectId && processId.equals(this.processId) && counter === this.count;
  }

  /** What hello answers has changed: every waiting awaitable hello answers now. */
  bump(): void {
    this.count += 1;
    this.changes.emit('changed');
  }

  /**
   * Resolves after `ms`, at the next bump, or when `signal` aborts, whichever is first.
   * mongod waits out any non-negative maxAwaitTimeMS, a 64-bit count
   * (src/mongo/db/repl/replication_info.cpp, CmdHello), so `ms` may pass Node's timer limit.
   */
  waitForChange(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        cancelTimer();
        this.changes.off('changed', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const cancelTimer = setLongTimeout(done, ms);
      this.changes.on('changed', done);
      signal.addEventListener('abort', done);
      if (signal.aborted) done();
    });
  }
}
