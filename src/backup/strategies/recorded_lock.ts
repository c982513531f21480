/**
 * Releasing an fsync lock that a dead proxy's state file says it may hold, exactly once:
 * by its unlock watchdog (unlock_watchdog.ts) as soon as the proxy is gone, or by the next
 * `serve` (recovery.ts) when the watchdog could not.
 *
 * What the record tells (the strategy writes it outside the write-block window):
 * - no fsync lock naming this watchdog: the proxy died before it sent `{fsync: 1, lock: true}`
 *   (the record is written first), so there is nothing to release;
 * - 'locking': the lock was sent, its reply unknown; or, for the reflink strategy, which
 *   writes no 'locked' inside its window of milliseconds (lock_record.ts), acknowledged and
 *   held for the clones, or already released by an unlock whose record had not landed. The
 *   count before it was recorded, and the lock was held for moments only, so the count now
 *   tells as it does after a lost reply (fsync_lock_state.ts): one more, ours is held; the
 *   same, it was never applied or is released already; anything else, nobody can tell and
 *   nothing is sent. What no count can tell: another client that unlocked exactly once in
 *   those moments looks like a lock of ours never applied, and ours then stays held (the
 *   bare count again: fsync_lock_strategy.ts). Without a count, the proxy died while it
 *   measured it, whose probe may have left a lock of its own: one fsyncUnlock if mongod is
 *   locked, as the watchdog always did;
 * - 'locked': mongod acknowledged it: one fsyncUnlock (releaseOneLock), to the same
 *   mongod process only;
 * - 'unlocked': the proxy's own fsyncUnlock was acknowledged (or the lock was lost), and
 *   it wrote that down before disarming the watchdog: nothing to send.
 */
import {
  FsyncLockCountUnknown,
  releaseOneLock,
  UnexpectedLockCount,
  type AdminConnection,
  type UnlockOptions,
  type UnlockOutcome,
} from './fsync_lock_state.js';
import { readStateFile, writeStateFile, type RunState, type WatchdogMark, type WatchdogOutcome } from '../run_state_file.js';

export type RecordedLockOutcome = UnlockOutcome | { kind: 'notApplied'; lockCount: number };

type RecordedLock = NonNullable<RunState['fsyncLock']>;

/**
 * Sends the one fsyncUnlock the record may owe, on `conn` (opened expecting the recorded
 * mongod process). Throws FsyncLockCountUnknown when the count cannot tell, and
 * MongodUnreachable when mongod could not be reached.
 */
export async function releaseRecordedLock(conn: AdminConnection, lock: Pick<RecordedLock, 'phase' | 'lockCountBefore'>, options: UnlockOptions = {}): Promise<RecordedLockOutcome> {
  if (lock.phase === 'unlocked') return { kind: 'notLocked' };
  const before = lock.lockCountBefore;
  if (lock.phase === 'locked' || before === undefined) return releaseOneLock(conn, options);
  try {
    return await releaseOneLock(conn, { ...options, expectCount: before + 1 });
  } catch (err) {
    if (!(err instanceof UnexpectedLockCount)) throw err;
    if (err.lockCount === before) return { kind: 'notApplied', lockCount: before };
    throw new FsyncLockCountUnknown(
      `The proxy died while its fsyncLock was on its way: the fsync lock count was ${before} before it and is ${err.lockCount} now, ` +
        "so other clients locked or unlocked meanwhile and it is unknown whether the backup's lock was applied; nothing was sent.",
    );
  }
}

/** What happened to the lock, as one clause of the interrupted backup's errmsg; `who` sent any unlock. */
export function describeLockOutcome(outcome: RecordedLockOutcome, who: string): string {
  switch (outcome.kind) {
    case 'released':
      return `${who} sent fsyncUnlock and released the backup's fsync lock (lock count now ${outcome.lockCount})`;
    case 'notLocked':
      return 'mongod was no longer fsync-locked, so there was nothing to unlock';
    case 'restarted':
      return "mongod had restarted since the backup locked it (the lock died with the old process), so nothing was sent to it";
    case 'notApplied':
      return `the fsync lock count was ${outcome.lockCount}, as before the backup's fsyncLock: it was never applied, or was released already, so nothing was sent`;
  }
}

/** The watchdog's mark for a failure: an unreachable mongod may be retried; an unknown count must not be guessed at. */
export function failureOutcome(err: unknown): WatchdogOutcome {
  return err instanceof FsyncLockCountUnknown ? 'unknown' : 'unreachable';
}

/** What a watchdog whose proxy died should do, per the proxy's state file. */
export type WatchdogVerdict =
  /** Send nothing: the record says why. */
  | { act: false; why: string }
  /** Release per `lock` (the record), or, without one, as before state files (one fsyncUnlock if locked). */
  | { act: true; lock?: RecordedLock | undefined };

/**
 * Reads the record for watchdog `pid`. Without a readable, valid file (deleted, corrupt),
 * the watchdog acts as it always did: a lock left held hangs every writer, so doubt unlocks.
 */
export async function watchdogVerdict(stateFile: string, pid: number): Promise<WatchdogVerdict> {
  const read = await readStateFile(stateFile).catch(() => undefined);
  if (read?.kind !== 'valid') return { act: true };
  const lock = read.state.fsyncLock;
  if (lock?.watchdogPid !== pid) return { act: false, why: 'its state file shows it never sent fsyncLock under this watchdog' };
  if (lock.phase === 'unlocked') return { act: false, why: 'its state file shows it had released its fsync lock itself' };
  return { act: true, lock };
}

/**
 * Marks in the state file what watchdog `pid` did, so that the next `serve` knows and
 * sends nothing more; a settled outcome also marks the lock 'unlocked'. Only the record
 * naming this watchdog is touched; a missing or invalid file is left alone.
 */
export async function markWatchdogOutcome(stateFile: string, pid: number, outcome: WatchdogOutcome, detail: string): Promise<void> {
  const read = await readStateFile(stateFile);
  if (read.kind !== 'valid' || read.state.fsyncLock?.watchdogPid !== pid) return;
  const mark: WatchdogMark = { outcome, detail, at: new Date().toISOString() };
  const settled = outcome !== 'unreachable' && outcome !== 'unknown';
  const state: RunState = {
    ...read.state,
    fsyncLock: { ...read.state.fsyncLock, ...(settled ? { phase: 'unlocked' as const } : {}), watchdog: mark },
    cleanup: settled ? [...read.state.cleanup, detail] : read.state.cleanup,
  };
  await writeStateFile(stateFile, state);
}
