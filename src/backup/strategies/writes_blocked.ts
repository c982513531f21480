/**
 * The time a snapshot kept mongod's writers waiting: `writesBlockedMs` in backupStatus.
 * It runs from just before `{fsync: 1, lock: true}` is sent to just after
 * `{fsyncUnlock: 1}` is acknowledged, so it is the longest any writer can have waited
 * on our account, whatever mongod did inside it (the flush included).
 */
export class WritesBlockedWindow {
  private total = 0;
  private since: number | undefined;

  /** `now` is a monotonic clock in ms; tests pass their own. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Just before the lock is sent. */
  begin(): void {
    this.since ??= this.now();
  }

  /** Just after the unlock is acknowledged (or known to be applied). */
  end(): void {
    if (this.since === undefined) return;
    this.total += this.now() - this.since;
    this.since = undefined;
  }

  /** Whether a lock of ours may be in force now. */
  get open(): boolean {
    return this.since !== undefined;
  }

  /** Milliseconds blocked so far, rounded up: a window that opened at all is never 0. */
  ms(): number {
    const running = this.since === undefined ? 0 : this.now() - this.since;
    const total = this.total + running;
    return total === 0 && this.since === undefined ? 0 : Math.max(1, Math.ceil(total));
  }
}

/** The window of a strategy that never blocks writes ($backupCursor). */
export const NEVER_BLOCKED: WritesBlockedWindow = Object.freeze(new WritesBlockedWindow()) as WritesBlockedWindow;
