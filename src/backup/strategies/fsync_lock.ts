/**
 * fsyncLock for the whole copy: mongod flushes and blocks every writer until the
 * unlock. Allowed only when the operator says so (--allow-write-blocking or
 * `allowWriteBlocking: true`), because writers wait for the full copy.
 *
 * Lock, watch and unlock go over one dedicated connection (a pool of one). A watchdog
 * process unlocks if the proxy itself dies while locked (unlock_watchdog.ts).
 *
 * We release only what we took. mongod's fsync lock is a bare count shared by every
 * client (fsync.cpp: `_lockCount`; currentOp shows only `fsyncLock: true`), so anyone
 * with the `unlock` privilege can take our lock away, for instance a DBA who runs
 * `db.fsyncUnlock()` by hand. From then on writes run, the copy is not consistent,
 * and an fsyncUnlock from us would release someone else's lock. So during the copy we
 * poll currentOp: once the node is no longer locked, the snapshot is lost (the copy
 * stops at once with FSYNC_LOCK_LOST), the watchdog is disarmed, and we never send
 * fsyncUnlock again. release() looks once more before it unlocks.
 *
 * What cannot be told apart: an unlock and a new lock by someone else, both between
 * two polls (or between the last poll and our unlock). The count is then back where
 * it was, and nothing in mongod says whose lock is whose. That window is one poll
 * interval wide (`lockCheckIntervalMs`); docs/commands.md says so too.
 */
import { MongoClient, MongoServerError as DriverServerError, type Db } from 'mongodb';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Snapshot, SnapshotStrategy } from './types.js';
import { listDbpath } from './files.js';
import { onceAsync } from './backup_cursor.js';
import { startUnlockWatchdog, type UnlockWatchdog } from './unlock_watchdog.js';
import { MongoServerError, ErrorCodes } from '../../errors.js';
import type { Logger } from '../../log.js';

const UNLOCK_ATTEMPTS = 5;
const DEFAULT_LOCK_CHECK_INTERVAL_MS = 1000;

export const FSYNC_LOCK_LOST =
  "the backup's fsync lock was released by another client during the copy (currentOp no longer reports fsyncLock): " +
  'writes resumed, so the copied files are not consistent. The proxy will not send fsyncUnlock, which would release ' +
  "someone else's lock.";

export interface FsyncLockOptions {
  /** How often the lock is checked during the copy (currentOp's `fsyncLock` flag). Default 1000 ms. */
  lockCheckIntervalMs?: number;
}

type LockState = 'none' | 'held' | 'lost' | 'released';

export class FsyncLockStrategy implements SnapshotStrategy {
  readonly name = 'fsyncLock' as const;

  constructor(
    private readonly upstreamUri: string,
    private readonly dbpath: string,
    private readonly log: Logger,
    private readonly options: FsyncLockOptions = {},
  ) {}

  async open(): Promise<Snapshot> {
    const client = new MongoClient(this.upstreamUri, { maxPoolSize: 1, minPoolSize: 1, directConnection: true });
    await client.connect();
    const admin = client.db('admin');
    const lost = new AbortController();
    let state: LockState = 'none';
    let watchdog: UnlockWatchdog | undefined;
    let stopWatching: (() => Promise<void>) | undefined;

    const markLost = () => {
      if (state !== 'held') return;
      state = 'lost';
      this.log.error('fsyncLock lost: another client released it during the copy; the backup fails and the proxy will not unlock');
      // Disarm at once: should the proxy die now, the watchdog must not release a lock that is not ours.
      void watchdog?.disarm();
      lost.abort(new MongoServerError(ErrorCodes.CannotBackup, FSYNC_LOCK_LOST));
    };

    const release = onceAsync(async () => {
      try {
        await stopWatching?.();
        if (state === 'held') await this.unlockIfStillOurs(admin, markLost);
        if (state === 'held') state = 'released';
      } finally {
        // Success or failure, the watchdog's job ends with release(): a failed unlock is
        // reported as the backup's error, and a lost lock is not ours to release.
        await watchdog?.disarm();
        await client.close().catch(() => undefined);
      }
      lost.signal.throwIfAborted();
    });

    try {
      watchdog = await startUnlockWatchdog(this.upstreamUri);
      this.log.info({ watchdogPid: watchdog.pid }, 'fsyncUnlock watchdog armed');
      const reply = await admin.command({ fsync: 1, lock: true });
      state = 'held';
      // Above 1, someone else held a lock already: writes were blocked before us and stay
      // blocked after our unlock, until they release theirs.
      const lockCount = Number(reply['lockCount'] ?? 1);
      this.log.info({ dbpath: this.dbpath, lockCount }, 'fsyncLock held: writes are blocked until the copy ends');
      stopWatching = this.watchLock(admin, markLost);
      const files = await listDbpath(this.dbpath);
      return { strategy: this.name, backupId: undefined, files, lost: lost.signal, release };
    } catch (err) {
      await release().catch(() => undefined);
      throw err;
    }
  }

  /** Polls currentOp until stopped; calls onLost once the node is no longer fsync-locked. */
  private watchLock(admin: Db, onLost: () => void): () => Promise<void> {
    const interval = this.options.lockCheckIntervalMs ?? DEFAULT_LOCK_CHECK_INTERVAL_MS;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let checking: Promise<void> = Promise.resolve();
    const schedule = () => {
      timer = setTimeout(() => {
        checking = this.isLocked(admin).then(
          (locked) => {
            if (stopped) return;
            if (!locked) {
              onLost();
              return;
            }
            schedule();
          },
          (err: unknown) => {
            // Unknown is not lost: the lock lives in mongod, not in our connection. Look again later.
            this.log.warn({ err: String(err) }, 'could not check the fsync lock (currentOp)');
            if (!stopped) schedule();
          },
        );
      }, interval);
      timer.unref();
    };
    schedule();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await checking;
    };
  }

  private async isLocked(admin: Db): Promise<boolean> {
    const reply = await admin.command({ currentOp: 1 });
    return reply['fsyncLock'] === true;
  }

  /**
   * Sends the one fsyncUnlock that is ours, unless the lock is gone. A failed attempt is
   * retried only after looking again: a reply lost on the network may hide an unlock
   * that was applied, and a second one would release someone else's lock.
   */
  private async unlockIfStillOurs(admin: Db, onLost: () => void): Promise<void> {
    if (!(await this.isLocked(admin).catch(() => true))) {
      onLost();
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await admin.command({ fsyncUnlock: 1 });
        this.log.info({ lockCount: Number(reply['lockCount'] ?? 0) }, 'fsyncUnlock: our lock is released');
        return;
      } catch (err) {
        this.log.error({ err: String(err), attempt }, 'fsyncUnlock failed');
        if (attempt >= UNLOCK_ATTEMPTS) throw err;
        await sleep(200 * attempt);
        let locked: boolean;
        try {
          locked = await this.isLocked(admin);
        } catch {
          continue;
        }
        if (locked) continue;
        // mongod answered the unlock and refused it ("fsyncUnlock called when not locked"):
        // someone else released our lock first. Otherwise our unlock went through unanswered.
        if (err instanceof DriverServerError) onLost();
        else this.log.info('fsyncUnlock: mongod is unlocked; the failed attempt had gone through');
        return;
      }
    }
  }
}
