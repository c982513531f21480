/**
 * mongod's fsyncLock: `{fsync: 1, lock: true}` flushes and then holds back every
 * writer until the lock count returns to zero. The lock belongs to the server, not to
 * a connection: it survives the locking client going away, exactly as in mongod, so
 * a backup tool that dies while locked leaves writers blocked. That is the hazard the
 * proxy guards against; this class reproduces it faithfully.
 */
export class FsyncLock {
  private count = 0;
  private waiters: Array<() => void> = [];
  private exclusive: Promise<unknown> = Promise.resolve();

  /**
   * Runs `command` once no other fsync lock or unlock command runs: mongod's
   * fsyncSingleCommandExclusionMutex (fsync.cpp), which an fsyncUnlock sent while a lock
   * is still flushing waits on.
   */
  exclusively<T>(command: () => Promise<T> | T): Promise<T> {
    const run = this.exclusive.then(command);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  get lockCount(): number {
    return this.count;
  }

  get locked(): boolean {
    return this.count > 0;
  }

  lock(): number {
    this.count += 1;
    return this.count;
  }

  /** Returns the remaining count; releases every waiting writer when it reaches zero. */
  unlock(): number {
    if (this.count === 0) return 0;
    this.count -= 1;
    if (this.count === 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const resume of waiters) resume();
    }
    return this.count;
  }

  /** Resolves at once when unlocked, otherwise when the last unlock happens. */
  waitUntilWritable(): Promise<void> | undefined {
    if (this.count === 0) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Writers currently held back, for currentOp. */
  get blockedWriters(): number {
    return this.waiters.length;
  }
}
