/**
 * Sending the backup's `{fsync: 1, lock: true}` and knowing whether mongod applied it.
 *
 * An answer settles it: the count it reports, or an error from mongod (not applied). A
 * reply lost on the network does not: the lock count is read again on a fresh connection
 * (fsync_lock_state.ts) and compared with the count measured before the lock. The same:
 * not applied. One more: ours. Anything else (others locked or unlocked meanwhile), or a
 * count that cannot be read: unknown, and the unlock watchdog must stay armed to send its
 * one fsyncUnlock (`keepArmed`), since guessing either way releases someone's lock or
 * leaves mongod locked.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { WritesBlockedWindow } from './writes_blocked.js';
import { AdminConnection, FsyncLockCountUnknown, isServerAnswer, readLockCount } from './fsync_lock_state.js';
import type { Logger } from '../../log.js';

export interface LockRequestOptions {
  /** Ended when the lock is known not to be in force. */
  writesBlocked: WritesBlockedWindow;
  /** Called when nobody can tell whether the lock is ours: the watchdog stays armed. */
  keepArmed: () => void;
  /** Wait before the count is read again after a lost reply. */
  backoffMs: number;
  log: Logger;
}

/** Sends our lock on `conn` and resolves with the lock count once it holds; `before` is the count measured before it. */
export async function requestLock(conn: AdminConnection, before: number, options: LockRequestOptions): Promise<number> {
  const { writesBlocked, keepArmed, log } = options;
  try {
    return Number((await conn.admin.command({ fsync: 1, lock: true }))['lockCount'] ?? before + 1);
  } catch (err) {
    if (isServerAnswer(err)) {
      writesBlocked.end();
      throw err;
    }
    const after = await countAfterLostReply(conn, before, err, options).catch((probeErr: unknown) => {
      keepArmed();
      throw probeErr;
    });
    if (after === before) {
      writesBlocked.end();
      throw err;
    }
    if (after !== before + 1) {
      keepArmed();
      throw new FsyncLockCountUnknown(
        `The reply to the backup's fsyncLock was lost (${String(err)}): the fsync lock count was ${before} before it and is ` +
          `${after} now, so other clients locked or unlocked meanwhile and it is unknown whether the backup holds a lock.`,
        err,
      );
    }
    log.warn({ err: String(err), lockCount: after }, 'the reply to fsyncLock was lost, but the lock count shows it was applied');
    return after;
  }
}

/** The lock count after a lost reply to our lock, read on a fresh connection. */
async function countAfterLostReply(conn: AdminConnection, before: number, err: unknown, options: LockRequestOptions): Promise<number> {
  options.log.error({ err: String(err), lockCountBefore: before }, 'the reply to fsyncLock was lost: reading the lock count again');
  try {
    await sleep(options.backoffMs);
    await conn.reconnect();
    // A restarted mongod holds no lock of ours: the lock was not applied, or died with the old process.
    if (!(await conn.sameProcess())) return before;
    return await readLockCount(conn.admin);
  } catch (probeErr) {
    if (probeErr instanceof FsyncLockCountUnknown) throw probeErr;
    throw new FsyncLockCountUnknown(
      `The reply to the backup's fsyncLock was lost (${String(err)}), and the lock count could not be read again ` +
        `(${String(probeErr)}); it was ${before} before, so mongod may hold a lock of the backup's.`,
      probeErr,
    );
  }
}
