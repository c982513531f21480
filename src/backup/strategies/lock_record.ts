/**
 * An fsync lock's entries in the run journal (run_journal.ts), in the order that lets the
 * unlock watchdog and the next `serve` send exactly one fsyncUnlock for it after a crash
 * (recorded_lock.ts reads them):
 * - locking(): before anything that may lock is sent (the count probe, then
 *   `{fsync: 1, lock: true}`), with the mongod process and the watchdog's pid, then again
 *   with the lock count measured before the lock; it must be on disk, or nothing is sent;
 * - locked(): once mongod acknowledged the lock (one fsyncUnlock is owed from then on);
 * - unlocked(): once nothing is owed any more (our unlock acknowledged, the lock lost or
 *   never applied), BEFORE the watchdog is disarmed: a proxy killed between the two leaves
 *   a watchdog that reads "unlocked" and sends nothing.
 *
 * The strategy writes them outside the write-block window (before WritesBlockedWindow.begin(),
 * after end()), except locked(), which the fsyncLock-for-the-whole-copy strategy writes
 * alongside its listing of the dbpath, while its window lasts the copy anyway. The reflink
 * strategy's lock, held for milliseconds, never writes locked() (unless its unlock failed and
 * the watchdog is kept): its record stays 'locking' until 'unlocked', and a crash in between
 * is judged by the lock count, as a lost reply is.
 */
import type { FsyncLockHolding, RunJournal } from '../run_journal.js';
import type { StrategyName } from './snapshot.js';
import type { Logger } from '../../log.js';

export class LockRecord {
  private holding: FsyncLockHolding | undefined;
  private unlocking: Promise<void> | undefined;

  constructor(
    private readonly journal: RunJournal,
    private readonly strategy: StrategyName,
    private readonly log: Logger,
  ) {}

  /** Before the lock is sent; rejects (and then no lock may be sent) when it cannot be written. */
  async locking(holding: Omit<FsyncLockHolding, 'phase'>): Promise<void> {
    const next: FsyncLockHolding = { ...holding, phase: 'locking' };
    await this.journal.record({ strategy: this.strategy, fsyncLock: next });
    this.holding = next;
  }

  /** Once mongod acknowledged the lock, or when nobody can tell and the watchdog is kept to send its one fsyncUnlock. */
  async locked(): Promise<void> {
    if (this.holding === undefined || this.unlocking !== undefined) return;
    const next: FsyncLockHolding = { ...this.holding, phase: 'locked' };
    await this.journal.record({ fsyncLock: next });
    this.holding = next;
  }

  /**
   * Nothing is owed any more. Never rejects: it runs on release paths, whose own outcome is
   * the one to report; a record left at 'locked' errs towards one unlock too many at the
   * next start, which the log line says. Idempotent.
   */
  unlocked(): Promise<void> {
    this.unlocking ??= (async () => {
      if (this.holding === undefined) return;
      try {
        await this.journal.record({ fsyncLock: { ...this.holding, phase: 'unlocked' } });
      } catch (err) {
        this.log.error(
          { err: String(err), stateFile: this.journal.stateFile },
          'could not record in the state file that the fsync lock is released: should the proxy be restarted before the next backup, its start may send one fsyncUnlock too many',
        );
      }
    })();
    return this.unlocking;
  }
}
