/**
 * Warnings that anyone who can reach the port can cause (garbage instead of a
 * ClientHello, a plain client where TLS is required), at most one per message per
 * interval: 300 garbage connections must not be 300 warnings. The first of a burst is
 * logged at once, with its details; the others are logged at debug, and counted in one
 * more warning (`suppressed: N`) when the interval ends, or at close().
 */
import type { Logger } from 'pino';

export const DEFAULT_WARN_INTERVAL_MS = 10_000;

interface Burst {
  suppressed: number;
  timer: NodeJS.Timeout;
}

export class WarnLimiter {
  readonly #log: Logger;
  readonly #intervalMS: number;
  readonly #bursts = new Map<string, Burst>();

  constructor(log: Logger, intervalMS = DEFAULT_WARN_INTERVAL_MS) {
    this.#log = log;
    this.#intervalMS = intervalMS;
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    const burst = this.#bursts.get(msg);
    if (burst !== undefined) {
      burst.suppressed++;
      this.#log.debug(fields, msg);
      return;
    }
    this.#log.warn(fields, msg);
    // unref: a quiet listener must not keep the process alive for a summary.
    const timer = setTimeout(() => this.#end(msg), this.#intervalMS).unref();
    this.#bursts.set(msg, { suppressed: 0, timer });
  }

  /** Logs what is still counted (the listener is closing). */
  close(): void {
    for (const msg of [...this.#bursts.keys()]) this.#end(msg);
  }

  #end(msg: string): void {
    const burst = this.#bursts.get(msg);
    if (burst === undefined) return;
    clearTimeout(burst.timer);
    this.#bursts.delete(msg);
    if (burst.suppressed > 0) this.#log.warn({ suppressed: burst.suppressed, intervalMS: this.#intervalMS }, msg);
  }
}
