/**
 * A clock that moves only when a test says so, for code that takes a `Clock`
 * (`src/backup/throttle.ts`). Timers fire in order of their due time (then of their
 * creation), each with `now()` reading exactly its due time, and the promise
 * callbacks they set off run before the next one fires, as they would between two
 * real timers. Delays are clamped as Node clamps them: below 1 ms, or above
 * 2³¹ − 1 ms, a timer fires after 1 ms.
 */
import type { Clock } from '../../src/backup/throttle.js';

/** Node's largest delay; a longer one fires after 1 ms (with a TimeoutOverflowWarning). */
const TIMEOUT_MAX = 2 ** 31 - 1;

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets every pending promise callback run: setImmediate comes after the microtask queue drains. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const delay = ms >= 1 && ms <= TIMEOUT_MAX ? ms : 1;
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + delay, seq: id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.#timers.delete(handle);
  }

  /** Due times of the timers still armed, soonest first. */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.at).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`cannot advance by ${ms} ms`);
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const next = this.#nextDue(end);
      if (next === undefined) break;
      this.#timers.delete(next.seq);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }

  /** Moves time forward to `at` (absolute), as `advance` does. */
  advanceTo(at: number): Promise<void> {
    return this.advance(at - this.#now);
  }

  #nextDue(end: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (timer.at > end) continue;
      if (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) next = timer;
    }
    return next;
  }
}
