/**
 * What mongod says about its fsync lock, and how to release one lock of it exactly once.
 * Shared by the fsyncLock strategy and its unlock watchdog.
 *
 * mongod's fsync lock is a bare count shared by every client (fsync.cpp `_lockCount`).
 * currentOp shows only `fsyncLock: true`; the count itself appears only in the replies
 * to `{fsync: 1, lock: true}` (the count after locking) and `{fsyncUnlock: 1}` (the
 * count after unlocking). So the count is measured with a probe: a lock followed at once
 * by an unlock answers N+1, then N. While the node is already locked the probe is cheap:
 * mongod flushes only when the count goes from 0 to 1 (fsync.cpp: the FSyncLockThread
 * is started only when `lockCountAtStart == 0`); a nested lock only increments.
 *
 * Why measure: a reply lost on the network hides whether the command was applied. With
 * someone else's lock nested in ours, a second fsyncUnlock "just in case" would release
 * theirs. So an ambiguous fsyncUnlock is resent only once a probe shows the count did
 * not move; if it moved by one, ours went through; anything else fails loudly.
 */
import { MongoClient, MongoServerError as DriverServerError, type Db } from 'mongodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoServerError, ErrorCodes } from '../../errors.js';

const DEFAULT_ATTEMPTS = 5;
const DEFAULT_BACKOFF_MS = 200;

const CHECK_BY_HAND =
  'Check by hand: `db.currentOp().fsyncLock` says whether mongod is still locked, and each `db.fsyncUnlock()` answers the lock ' +
  'count that remains; release only the locks that nobody else (another backup, a DBA) still needs.';

/** A failure that leaves the fsync lock count unknown or wrong: the backup must fail with this message. */
export class FsyncLockCountUnknown extends MongoServerError {
  constructor(
    /** What went wrong, without the advice. */
    readonly detail: string,
    cause?: unknown,
  ) {
    super(ErrorCodes.CannotBackup, `${detail} ${CHECK_BY_HAND}`, cause === undefined ? {} : { cause });
  }
}

/** An answer from mongod (the command was not applied), as opposed to a lost reply. */
export function isServerAnswer(err: unknown): boolean {
  return err instanceof DriverServerError;
}

export async function isFsyncLocked(admin: Db): Promise<boolean> {
  const reply = await admin.command({ currentOp: 1 });
  return reply['fsyncLock'] === true;
}

/**
 * The current lock count: 0 when currentOp says unlocked (no probe, so no flush),
 * otherwise measured with a lock/unlock probe. Throws FsyncLockCountUnknown when a reply
 * of the probe is lost or refused (the probe's own lock may then be left behind), and
 * when the two replies disagree (someone else locked or unlocked in between).
 */
export async function readLockCount(admin: Db): Promise<number> {
  if (!(await isFsyncLocked(admin))) return 0;
  let afterLock: number;
  try {
    afterLock = Number((await admin.command({ fsync: 1, lock: true }))['lockCount']);
  } catch (err) {
    // Refused: nothing was applied, the count is just unknown; the caller may look again.
    if (isServerAnswer(err)) throw err;
    throw new FsyncLockCountUnknown(
      `The reply to the lock of an fsync lock count probe was lost (${String(err)}): mongod may hold one extra fsync lock, taken by the probe.`,
      err,
    );
  }
  let afterUnlock: number;
  try {
    afterUnlock = Number((await admin.command({ fsyncUnlock: 1 }))['lockCount']);
  } catch (err) {
    throw new FsyncLockCountUnknown(
      `The fsyncUnlock of an fsync lock count probe failed (${String(err)}) after its lock was applied (lock count ${afterLock}): ` +
        'mongod may hold one extra fsync lock, taken by the probe.',
      err,
    );
  }
  if (afterUnlock !== afterLock - 1) {
    throw new FsyncLockCountUnknown(
      `The fsync lock count moved during a probe (lock answered ${afterLock}, the unlock right after it ${afterUnlock}): ` +
        'another client locked or unlocked at the same moment.',
    );
  }
  return afterUnlock;
}

/**
 * A connection to mongod's admin database that can be swapped for a fresh one: after a
 * lost reply the old connection is in an unknown state (a late reply may still arrive).
 */
export class AdminConnection {
  private constructor(
    private readonly uri: string,
    private client: MongoClient,
  ) {}

  static async open(uri: string): Promise<AdminConnection> {
    return new AdminConnection(uri, await AdminConnection.connect(uri));
  }

  private static async connect(uri: string): Promise<MongoClient> {
    const client = new MongoClient(uri, { maxPoolSize: 1, minPoolSize: 1, directConnection: true });
    await client.connect();
    return client;
  }

  get admin(): Db {
    return this.client.db('admin');
  }

  async reconnect(): Promise<void> {
    const old = this.client;
    this.client = await AdminConnection.connect(this.uri);
    await old.close(true).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }
}

export type UnlockOutcome =
  /** Our fsyncUnlock was applied; `lockCount` locks of others remain. */
  | { kind: 'released'; lockCount: number; replyLost: boolean }
  /** mongod was not locked (or said so to our unlock): someone else released our lock. */
  | { kind: 'notLocked' };

export interface UnlockOptions {
  /** Attempts at fsyncUnlock (and at reading the count before it). Default 5. */
  attempts?: number;
  /** Backoff unit between attempts, multiplied by the attempt number. Default 200 ms. */
  backoffMs?: number;
  /** Told about each failed attempt, for logs. */
  onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * Sends the one fsyncUnlock that is ours, never a second one unless a probe shows the
 * first was not applied. Throws FsyncLockCountUnknown when that cannot be shown.
 */
export async function releaseOneLock(conn: AdminConnection, options: UnlockOptions = {}): Promise<UnlockOutcome> {
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const retry = async (err: unknown, attempt: number, reconnect: boolean): Promise<void> => {
    options.onRetry?.(err, attempt);
    await sleep(backoffMs * attempt);
    if (reconnect) await conn.reconnect();
  };

  let before: number | undefined;
  for (let attempt = 1; before === undefined; attempt++) {
    try {
      before = await readLockCount(conn.admin);
    } catch (err) {
      // A lost probe reply leaves the count wrong: no guessing from here on.
      if (err instanceof FsyncLockCountUnknown) {
        throw new FsyncLockCountUnknown(`The fsync lock count could not be read before unlocking, so the lock was not released: ${err.detail}`, err);
      }
      if (attempt >= attempts) throw err;
      await retry(err, attempt, !isServerAnswer(err));
    }
  }
  if (before === 0) return { kind: 'notLocked' };

  for (let attempt = 1; ; attempt++) {
    try {
      const reply = await conn.admin.command({ fsyncUnlock: 1 });
      return { kind: 'released', lockCount: Number(reply['lockCount'] ?? before - 1), replyLost: attempt > 1 };
    } catch (err) {
      if (isServerAnswer(err)) {
        // Answered, so not applied. "not locked": someone released our lock first.
        if ((err as DriverServerError).code === ErrorCodes.IllegalOperation || /not locked/.test(String(err))) return { kind: 'notLocked' };
        if (attempt >= attempts) throw err;
        await retry(err, attempt, false);
        continue;
      }
      // The reply is lost: applied or not, only the count can tell.
      await retry(err, attempt, true);
      let after: number;
      try {
        after = await readLockCount(conn.admin);
      } catch (probeErr) {
        if (probeErr instanceof FsyncLockCountUnknown) throw probeErr;
        throw new FsyncLockCountUnknown(
          `The reply to the proxy's fsyncUnlock was lost (${String(err)}), and the lock count could not be read again ` +
            `(${String(probeErr)}); it was ${before} before that fsyncUnlock, so mongod may still hold the backup's lock.`,
          probeErr,
        );
      }
      if (after === before - 1) return { kind: 'released', lockCount: after, replyLost: true };
      if (after === before && attempt < attempts) continue;
      throw new FsyncLockCountUnknown(
        `The reply to the proxy's fsyncUnlock was lost (${String(err)}): the fsync lock count was ${before} before it and is ${after} now, ` +
          (after === before
            ? `after ${attempt} attempts that were not applied; mongod still holds the backup's lock.`
            : 'so other clients locked or unlocked meanwhile and it is unknown whether the backup\'s lock was released.'),
        err,
      );
    }
  }
}
