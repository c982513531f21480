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
import { MongoClient, MongoServerError, type Db } from 'mongodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandError, ErrorCodes } from '../../errors.js';

const DEFAULT_ATTEMPTS = 5;
const DEFAULT_BACKOFF_MS = 200;
const DEFAULT_MAX_BACKOFF_MS = 5000;

const CHECK_BY_HAND =
  'Check by hand: `db.currentOp().fsyncLock` says whether mongod is still locked, and each `db.fsyncUnlock()` answers the lock ' +
  'count that remains; release only the locks that nobody else (another backup, a DBA) still needs.';

/** A failure that leaves the fsync lock count unknown or wrong: the backup must fail with this message. */
export class FsyncLockCountUnknown extends CommandError {
  constructor(
    /** What went wrong, without the advice. */
    readonly detail: string,
    cause?: unknown,
    /** What the operator should do; "check by hand" unless the unlock watchdog stays armed. */
    advice: string = CHECK_BY_HAND,
  ) {
    super(ErrorCodes.CannotBackup, `${detail} ${advice}`, cause === undefined ? {} : { cause });
  }
}

/**
 * The advice while the unlock watchdog stays armed: it, not the operator, sends the
 * fsyncUnlock; an operator who unlocks too must disarm it first, or the two release a
 * later, unrelated lock between them.
 */
export function watchdogArmedAdvice(pid: number | undefined): string {
  const who = pid === undefined ? 'its unlock watchdog' : `its unlock watchdog (pid ${pid})`;
  const disarm = pid === undefined ? 'disarm the watchdog (SIGUSR1 to its pid, logged as watchdogPid)' : `disarm the watchdog with \`kill -USR1 ${pid}\``;
  return (
    `The proxy keeps ${who} armed: once the proxy exits, it sends one fsyncUnlock, unless mongod restarted meanwhile. ` +
    `Do not also unlock by hand: to take the release over, first ${disarm} (it then exits without touching mongod), ` +
    `then stop the proxy. ${CHECK_BY_HAND}`
  );
}

/** An answer from mongod (the command was not applied), as opposed to a lost reply. */
export function isServerAnswer(err: unknown): boolean {
  return err instanceof MongoServerError;
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
 * Which mongod process answers: `hello`'s `topologyVersion.processId`, new at every start
 * of mongod (topology_version.h; since 4.4). An fsync lock dies with the process that held
 * it, so after a restart an fsyncUnlock from us would release someone else's new lock.
 * Undefined when the server does not report it (then no restart can be seen).
 */
export async function mongodProcessId(admin: Db): Promise<string | undefined> {
  const reply = await admin.command({ hello: 1 });
  const version = reply['topologyVersion'] as { processId?: { toHexString?: () => string } } | undefined;
  return version?.processId?.toHexString?.();
}

/**
 * A connection to mongod's admin database that can be swapped for a fresh one: after a
 * lost reply the old connection is in an unknown state (a late reply may still arrive).
 * It remembers which mongod process it first talked to (or was told to expect), so that
 * callers can tell a restarted mongod from the one that holds their lock.
 */
export class AdminConnection {
  private constructor(
    private readonly uri: string,
    private client: MongoClient,
    /** The mongod process the lock belongs to. */
    readonly processId: string | undefined,
  ) {}

  /** Opens a connection; `processId` is the mongod process expected (default: the one that answers now). */
  static async open(uri: string, processId?: string): Promise<AdminConnection> {
    const client = await AdminConnection.connect(uri);
    try {
      return new AdminConnection(uri, client, processId ?? (await mongodProcessId(client.db('admin'))));
    } catch (err) {
      await client.close(true).catch(() => undefined);
      throw err;
    }
  }

  private static async connect(uri: string): Promise<MongoClient> {
    const client = new MongoClient(uri, { maxPoolSize: 1, minPoolSize: 1, directConnection: true });
    await client.connect();
    return client;
  }

  get admin(): Db {
    return this.client.db('admin');
  }

  /** The `local` database, where a replica set's oplog is. */
  get local(): Db {
    return this.client.db('local');
  }

  /** Whether the mongod answering now is the process this connection expects (true when unknown). */
  async sameProcess(): Promise<boolean> {
    if (this.processId === undefined) return true;
    return (await mongodProcessId(this.admin)) === this.processId;
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

/** mongod could not be reached (or kept refusing) for all the attempts: the lock may still be held. */
export class MongodUnreachable extends CommandError {
  constructor(
    readonly detail: string,
    cause: unknown,
  ) {
    super(ErrorCodes.CannotBackup, detail, { cause });
  }
}

export type UnlockOutcome =
  /** Our fsyncUnlock was applied; `lockCount` locks of others remain. */
  | { kind: 'released'; lockCount: number; replyLost: boolean }
  /** mongod was not locked (or said so to our unlock): someone else released our lock. */
  | { kind: 'notLocked' }
  /** mongod restarted since the lock was taken: our lock died with the old process; nothing was sent. */
  | { kind: 'restarted' };

export interface UnlockOptions {
  /** Attempts at each step (reading the count, fsyncUnlock, reading it again). Default 5. */
  attempts?: number;
  /**
   * Instead of a count of attempts, keep trying for this long (ms) from the first
   * failure: an outage of mongod (a restart, a failover of the host) outlasts any count,
   * since one reconnect alone may wait out the driver's 30 s server selection.
   */
  retryForMs?: number;
  /** Backoff unit between attempts, multiplied by the attempt number. Default 200 ms. */
  backoffMs?: number;
  /** Upper bound of one backoff. Default 5 s. */
  maxBackoffMs?: number;
  /** Told about each failed attempt, for logs. */
  onRetry?: (err: unknown, attempt: number) => void;
  /**
   * The lock count as the caller knows it, our lock included (the reply to its own lock,
   * moments ago): the count is then not read again before the unlock, which saves three
   * round trips while writers wait. It stands as the count before the unlock should that
   * reply be lost, so it is for a lock held a few milliseconds (the reflink strategy's),
   * not for one held for minutes, in which others may well lock and unlock.
   */
  knownCount?: number;
  /**
   * Release only when the count read first is this one (a lock that may not have been
   * applied: recorded_lock.ts); otherwise nothing is sent and UnexpectedLockCount is thrown.
   */
  expectCount?: number;
}

/** The lock count was not the one `expectCount` asked for: nothing was sent. */
export class UnexpectedLockCount extends Error {
  constructor(readonly lockCount: number) {
    super(`the fsync lock count is ${lockCount}`);
  }
}

class Restarted extends Error {}

/**
 * Sends the one fsyncUnlock that is ours, never a second one unless a probe shows the
 * first was not applied, and never to another mongod process than the one locked (checked
 * after every reconnect and before every probe and unlock). A failed reconnect is one
 * failed attempt like any other. Throws FsyncLockCountUnknown when the count cannot be
 * shown, MongodUnreachable when mongod could not be reached for all the attempts.
 */
export async function releaseOneLock(conn: AdminConnection, options: UnlockOptions = {}): Promise<UnlockOutcome> {
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  let giveUpAt: number | undefined;
  let reconnectNeeded = false;
  let attempt = 0;

  /** After a failed attempt: waits, or throws when the attempts (or the span) are spent. */
  const retry = async (err: unknown, stepAttempt: number, reconnect: boolean): Promise<void> => {
    attempt++;
    if (options.retryForMs !== undefined) {
      giveUpAt ??= Date.now() + options.retryForMs;
      if (Date.now() >= giveUpAt) throw giveUp(err);
    } else if (stepAttempt >= attempts) {
      throw giveUp(err);
    }
    options.onRetry?.(err, attempt);
    await sleep(Math.min(backoffMs * stepAttempt, maxBackoffMs));
    if (reconnect) reconnectNeeded = true;
  };
  const giveUp = (err: unknown): unknown =>
    isServerAnswer(err)
      ? err
      : new MongodUnreachable(`mongod could not be reached to release the backup's fsync lock (${String(err)}): the lock may still be held.`, err);
  /** Reconnects if a reply was lost, then checks that the same mongod answers. */
  const ready = async (): Promise<void> => {
    if (reconnectNeeded) {
      await conn.reconnect();
      reconnectNeeded = false;
    }
    if (!(await conn.sameProcess())) throw new Restarted();
  };
  /** The lock count, read with retries; FsyncLockCountUnknown and Restarted pass through. */
  const readCount = async (): Promise<number> => {
    for (let stepAttempt = 1; ; stepAttempt++) {
      try {
        await ready();
        return await readLockCount(conn.admin);
      } catch (err) {
        if (err instanceof FsyncLockCountUnknown || err instanceof Restarted) throw err;
        await retry(err, stepAttempt, !isServerAnswer(err));
      }
    }
  };

  try {
    let before: number;
    try {
      before = options.knownCount ?? (await readCount());
    } catch (err) {
      // A lost probe reply leaves the count wrong: no guessing from here on.
      if (err instanceof FsyncLockCountUnknown) {
        throw new FsyncLockCountUnknown(`The fsync lock count could not be read before unlocking, so the lock was not released: ${err.detail}`, err);
      }
      throw err;
    }
    if (before === 0) return { kind: 'notLocked' };
    if (options.expectCount !== undefined && before !== options.expectCount) throw new UnexpectedLockCount(before);

    for (let stepAttempt = 1; ; stepAttempt++) {
      try {
        await ready();
      } catch (err) {
        if (err instanceof Restarted) throw err;
        // Nothing was sent yet: a plain failed attempt.
        await retry(err, stepAttempt, !isServerAnswer(err));
        continue;
      }
      try {
        const reply = await conn.admin.command({ fsyncUnlock: 1 });
        return { kind: 'released', lockCount: Number(reply['lockCount'] ?? before - 1), replyLost: stepAttempt > 1 };
      } catch (err) {
        if (isServerAnswer(err)) {
          // Answered, so not applied. "not locked": someone released our lock first.
          if ((err as MongoServerError).code === ErrorCodes.IllegalOperation || /not locked/.test(String(err))) return { kind: 'notLocked' };
          await retry(err, stepAttempt, false);
          continue;
        }
        // The reply is lost: applied or not, only the count can tell.
        await retry(err, stepAttempt, true);
        let after: number;
        try {
          after = await readCount();
        } catch (probeErr) {
          if (probeErr instanceof FsyncLockCountUnknown || probeErr instanceof Restarted) throw probeErr;
          // Whether ours went through is unknown: a later "release one" could take someone else's.
          throw new FsyncLockCountUnknown(
            `The reply to the proxy's fsyncUnlock was lost (${String(err)}), and the lock count could not be read again ` +
              `(${String(probeErr)}); it was ${before} before that fsyncUnlock, so mongod may still hold the backup's lock.`,
            probeErr,
          );
        }
        if (after === before - 1) return { kind: 'released', lockCount: after, replyLost: true };
        if (after === before && (options.retryForMs !== undefined || stepAttempt < attempts)) continue;
        throw new FsyncLockCountUnknown(
          `The reply to the proxy's fsyncUnlock was lost (${String(err)}): the fsync lock count was ${before} before it and is ${after} now, ` +
            (after === before
              ? `after ${stepAttempt} attempts that were not applied; mongod still holds the backup's lock.`
              : "so other clients locked or unlocked meanwhile and it is unknown whether the backup's lock was released."),
          err,
        );
      }
    }
  } catch (err) {
    if (err instanceof Restarted) return { kind: 'restarted' };
    throw err;
  }
}
