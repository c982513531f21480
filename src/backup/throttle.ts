/**
 * The process-wide backup throttle: a token bucket shared by every copy worker.
 *
 * Hand-written rather than taken from npm because no package fits both needs at once:
 * - the rate must change while a backup runs (backupThrottle on a running backup;
 *   Percona's copier re-read it after every 1 MiB chunk), and a raised rate must
 *   reach waiters that are already blocked, at once. The `throttle` package fixes its
 *   rate at construction and has not changed since 2013.
 * - one limit is shared by N workers and applies to reads only, so it cannot be a
 *   per-stream Transform (`throttle`, `stream-throttle`) sitting in one pipe.
 *
 * Design, after RocksDB's GenericRateLimiter:
 * - Tokens accrue continuously at `rate` bytes/s, computed from the clock when
 *   needed, so late timers lose nothing.
 * - The bucket holds at most `refillIntervalMs` worth of tokens (100 ms by default).
 *   That caps the burst after an idle spell. It starts empty, as RocksDB's does, so
 *   a fresh backup does not begin with a burst.
 * - Waiters are served strictly first in, first out; only the head waits on a timer.
 * - A request larger than the bucket's capacity is granted once the bucket is full
 *   and leaves it in debt (negative tokens), so 1 MiB chunks still make progress at
 *   1 KiB/s and the long-run rate stays exact.
 * - Time comes from an injected clock, so tests can step it and assert exact token
 *   arithmetic instead of measuring a busy machine's timers.
 */
import type { Limiter } from './copy_pool.js';

/** The time source and timer the bucket needs; handles are opaque to the bucket. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's monotonic clock and Node's timers. */
const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface TokenBucketOptions {
  /** The bucket holds at most this many milliseconds' worth of tokens. Default 100. */
  refillIntervalMs?: number;
  /** Default: `systemClock`. */
  clock?: Clock;
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Timers may fire a hair before the clock says the tokens are there; don't re-arm for that. */
const EPSILON_BYTES = 1e-6;
/** Longest single timer: a huge debt at a tiny rate would overflow setTimeout (2³¹ ms) and fire at once. */
const MAX_WAIT_MS = 60_000;

function checkRate(bytesPerSec: number): number {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec < 0) {
    throw new RangeError(`rate must be a finite number of bytes per second >= 0, got ${bytesPerSec}`);
  }
  return bytesPerSec;
}

export class TokenBucket implements Limiter {
  #rate: number;
  readonly #intervalMs: number;
  readonly #clock: Clock;
  /** May be negative: the debt left by a request larger than the capacity. */
  #tokens = 0;
  #lastRefill: number;
  readonly #queue: Waiter[] = [];
  /** Set while the head waiter waits on a timer; `undefined` otherwise. */
  #timer: { handle: unknown } | undefined;
  /** Told at every rate change whether the bucket is unlimited (copy workers then stop asking). */
  readonly #watchers = new Set<(unlimited: boolean) => void>();

  /** `bytesPerSec` 0 means unlimited. */
  constructor(bytesPerSec: number, options: TokenBucketOptions = {}) {
    this.#rate = checkRate(bytesPerSec);
    const interval = options.refillIntervalMs ?? 100;
    if (!Number.isFinite(interval) || interval <= 0) {
      throw new RangeError(`refillIntervalMs must be a positive number, got ${interval}`);
    }
    this.#intervalMs = interval;
    this.#clock = options.clock ?? systemClock;
    this.#lastRefill = this.#clock.now();
  }

  /** Bytes per second; 0 means unlimited. */
  get rate(): number {
    return this.#rate;
  }

  /** Requests waiting for tokens (for status output and tests). */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Changes the rate now. Tokens earned so far are kept at the old rate, then every
   * waiter is re-evaluated under the new one, so a raised rate is seen immediately.
   */
  setRate(bytesPerSec: number): void {
    const rate = checkRate(bytesPerSec);
    this.#refill();
    this.#rate = rate;
    // Unlimited keeps no balance; a later limit then starts from an empty bucket.
    this.#tokens = rate === 0 ? 0 : Math.min(this.#tokens, this.#capacity());
    for (const watcher of this.#watchers) watcher(rate === 0);
    this.#pump();
  }

  /** Calls `listener` now and at every rate change with whether the bucket is unlimited. Returns an unsubscribe. */
  watchUnlimited(listener: (unlimited: boolean) => void): () => void {
    this.#watchers.add(listener);
    listener(this.#rate === 0);
    return () => this.#watchers.delete(listener);
  }

  /**
   * Resolves when `bytes` may be read. Requests are served in order. Rejects with the
   * signal's reason if it aborts first (the request then costs nothing).
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isFinite(bytes) || bytes < 0) {
      return Promise.reject(new RangeError(`bytes must be a finite number >= 0, got ${bytes}`));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#rate === 0 || bytes === 0) return Promise.resolve();
    // Fast path: nobody queued ahead and the tokens are there.
    if (this.#queue.length === 0) {
      this.#refill();
      if (this.#tokens + EPSILON_BYTES >= this.#need(bytes)) {
        this.#tokens -= bytes;
        return Promise.resolve();
      }
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => this.#cancel(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
      if (this.#queue.length === 1) this.#pump();
    });
  }

  #capacity(): number {
    return (this.#rate * this.#intervalMs) / 1000;
  }

  /** Tokens the bucket must hold before `bytes` is granted: all of them, or a full bucket. */
  #need(bytes: number): number {
    return Math.min(bytes, this.#capacity());
  }

  #refill(): void {
    const now = this.#clock.now();
    if (this.#rate > 0) {
      const earned = ((now - this.#lastRefill) / 1000) * this.#rate;
      this.#tokens = Math.min(this.#capacity(), this.#tokens + earned);
    }
    this.#lastRefill = now;
  }

  /** Grants what can be granted now, in order, and arms one timer for the head if it must wait. */
  #pump(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer.handle);
      this.#timer = undefined;
    }
    if (this.#rate === 0) {
      while (this.#queue.length > 0) this.#grant();
      return;
    }
    this.#refill();
    for (;;) {
      const head = this.#queue[0];
      if (head === undefined) return;
      const need = this.#need(head.bytes);
      if (this.#tokens + EPSILON_BYTES >= need) {
        this.#tokens -= head.bytes;
        this.#grant();
        continue;
      }
      const waitMs = Math.min(MAX_WAIT_MS, Math.max(1, Math.ceil(((need - this.#tokens) / this.#rate) * 1000)));
      const handle = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#pump();
      }, waitMs);
      this.#timer = { handle };
      return;
    }
  }

  /** Resolves the head waiter; its tokens have already been taken. */
  #grant(): void {
    const waiter = this.#queue.shift();
    if (waiter === undefined) return;
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve();
  }

  #cancel(waiter: Waiter): void {
    const index = this.#queue.indexOf(waiter);
    if (index < 0) return;
    this.#queue.splice(index, 1);
    waiter.reject(waiter.signal?.reason);
    // The head may have changed, or the queue emptied: re-arm or drop the timer.
    if (index === 0) this.#pump();
  }
}
