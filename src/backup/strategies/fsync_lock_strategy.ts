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
 * A reply lost on the network hides whether a lock or unlock was applied. The count
 * before it, measured (fsync_lock_state.ts; lock_request.ts for our lock), and the count after it, measured again on
 * a fresh connection, tell: moved by one, applied; unchanged, not applied. Anything else
 * fails the backup loudly instead of guessing, since a guess releases someone's lock
 * or leaves mongod locked.
 *
 * What cannot be told apart: an unlock and a new lock by someone else, both between
 * two polls (or between the last poll and our unlock). The count is then back where
 * it was, and nothing in mongod says whose lock is whose. That window is one poll
 * interval wide (`lockCheckIntervalMs`); docs/commands.md says so too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Snapshot, SnapshotStrategy, StrategyName } from './snapshot.js';
import { WritesBlockedWindow } from './writes_blocked.js';
import { listDbpath } from './files.js';
import { readOplogBounds } from './oplog_read.js';
import type { SourceFile } from '../copy_types.js';
import { startUnlockWatchdog, type UnlockWatchdog } from './unlock_watchdog.js';
import { LockRecord } from './lock_record.js';
import { NO_JOURNAL } from '../run_journal.js';
import { SnapshotReleaseFailed } from '../release_failed.js';
import { requestLock } from './lock_request.js';
import { unlessAborted } from './unless_aborted.js';
import type { SnapshotRequest } from '../backup_engine.js';
import {
  AdminConnection,
  FsyncLockCountUnknown,
  MongodUnreachable,
  watchdogArmedAdvice,
  isFsyncLocked,
  readLockCount,
  releaseOneLock,
  type UnlockOptions,
} from './fsync_lock_state.js';
import { CommandError, ErrorCodes } from '../../errors.js';
import type { Logger } from '../../log.js';

const DEFAULT_LOCK_CHECK_INTERVAL_MS = 1000;

export const FSYNC_LOCK_LOST =
  "the backup's fsync lock was released by another client during the copy (currentOp no longer reports fsyncLock): " +
  'writes resumed, so the copied files are not consistent. The proxy will not send fsyncUnlock, which would release ' +
  "someone else's lock.";

export const FSYNC_LOCK_RESTARTED =
  "mongod restarted during the backup (hello's topologyVersion.processId changed): the backup's fsync lock died with the old " +
  'process, so writes may have run during the copy and the copied files are not consistent. The proxy sends no fsyncUnlock ' +
  "to the new process, which would release someone else's lock.";

/** How long the proxy keeps retrying, in the background, a release that could not reach mongod. */
const BACKGROUND_RELEASE_FOR_MS = 15 * 60_000;

export interface FsyncLockOptions {
  /**
   * The strategy the state file names for this lock: 'reflink' when the lock only covers
   * the cloning (reflink_strategy.ts). Default 'fsyncLock'.
   */
  recordAs?: StrategyName;
  /**
   * Unlock without reading the lock count first: the count our own lock answered stands
   * for it (UnlockOptions.knownCount). For a lock held milliseconds only (reflink), where
   * each round trip is a writer waiting longer. Default false.
   */
  releaseWithKnownCount?: boolean;
  /** How the dbpath is listed under the lock. Default listDbpath (names and sizes). */
  list?: (dbpath: string) => Promise<SourceFile[]>;
  /** How often the lock is checked during the copy (currentOp's `fsyncLock` flag). Default 1000 ms. */
  lockCheckIntervalMs?: number;
  /** Backoff unit between fsyncUnlock attempts (times the attempt number). Default 200 ms. */
  unlockBackoffMs?: number;
  /** How long to keep retrying in the background a release that could not reach mongod. Default 15 min. */
  backgroundReleaseForMs?: number;
}

type LockState = 'none' | 'held' | 'lost' | 'released';

/** Runs `fn` once; every call returns that one run's promise. */
function onceAsync(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

export class FsyncLockStrategy implements SnapshotStrategy {
  readonly name = 'fsyncLock' as const;

  constructor(
    private readonly upstreamUri: string,
    private readonly dbpath: string,
    private readonly log: Logger,
    private readonly options: FsyncLockOptions = {},
  ) {}

  /**
   * `journal` gets the lock's record (lock_record.ts), so that a crash leaves exactly one
   * fsyncUnlock to send; `onWritesBlocked` hears of the window as the lock is sent.
   *
   * `signal` (the backup's abort) is looked at up to the moment the lock is sent, and
   * raced against mongod's answer to it: mongod may take minutes to answer (its lock
   * waits for a checkpoint), and a lock request cannot be withdrawn. An abort then
   * answers at once, and the lock, if it lands, is released as soon as it does, in the
   * background (releaseOnceSettled). Until then the record stays 'locking' and the
   * watchdog armed, so a proxy that dies meanwhile still leaves exactly one fsyncUnlock
   * owed, and the next backup waits (RunStateFile.begin refuses while a lock may be held).
   */
  async open({ journal = NO_JOURNAL, onWritesBlocked, signal }: Partial<Pick<SnapshotRequest, 'journal' | 'onWritesBlocked' | 'signal'>> = {}): Promise<Snapshot> {
    signal?.throwIfAborted();
    const conn = await AdminConnection.open(this.upstreamUri);
    const lost = new AbortController();
    const writesBlocked = new WritesBlockedWindow();
    const record = new LockRecord(journal, this.options.recordAs ?? this.name, this.log);
    let state: LockState = 'none';
    // The count our lock answered, for a release that does not read it again.
    let heldCount: number | undefined;
    let watchdog: UnlockWatchdog | undefined;
    // Set when it is unknown whether mongod holds a lock of ours: the watchdog then stays
    // armed, so that a proxy that goes away still leaves one fsyncUnlock behind.
    let keepWatchdogArmed = false;
    let stopWatching: (() => Promise<void>) | undefined;
    /** Our lock request, once sent: the count mongod answered. */
    let locking: Promise<number> | undefined;

    const markLost = (reason: string = FSYNC_LOCK_LOST) => {
      if (state !== 'held') return;
      state = 'lost';
      this.log.error({ reason }, 'fsyncLock lost: the backup fails and the proxy will not unlock');
      // Disarm at once (once the record says so): should the proxy die now, the watchdog must
      // not release a lock that is not ours.
      void record.unlocked().then(() => watchdog?.disarm());
      lost.abort(new CommandError(ErrorCodes.CannotBackup, reason));
    };
    // mongod could not be reached to unlock: the watchdog stays armed, and the release goes
    // on in the background until it succeeds (then the watchdog is disarmed) or gives up.
    const releaseInBackground = () => {
      keepWatchdogArmed = true;
      void this.releaseLater(conn.processId, watchdog, record).catch(() => undefined);
    };

    const release = onceAsync(async () => {
      try {
        await stopWatching?.();
        if (state === 'held') await this.unlockOurs(conn, markLost, releaseInBackground, () => watchdog?.pid, heldCount);
        if (state === 'held') state = 'released';
        // Unlocked by us, or not ours to unlock any more; an unlock that failed leaves it open.
        writesBlocked.end();
      } finally {
        // Success or failure, the watchdog's job ends with release(): a failed unlock is
        // reported as the backup's error, and a lost lock is not ours to release.
        if (keepWatchdogArmed) {
          // The watchdog sends its one fsyncUnlock at exit: the record says one is owed.
          await record.locked().catch((err: unknown) => this.log.error({ err: String(err) }, 'could not record the fsync lock as held'));
          this.log.error({ watchdogPid: watchdog?.pid }, 'fsyncUnlock watchdog left armed: it unlocks once when the proxy exits');
        } else {
          await record.unlocked();
          await watchdog?.disarm();
        }
        await conn.close();
      }
      lost.signal.throwIfAborted();
    });

    try {
      // The watchdog is told which mongod process holds the lock: after a restart it sends nothing.
      watchdog = await startUnlockWatchdog(this.upstreamUri, conn.processId, journal.stateFile);
      this.log.info({ watchdogPid: watchdog.pid }, 'fsyncUnlock watchdog armed');
      // Twice: the count probe takes a lock of its own for a moment when mongod is locked
      // already, so the record must name the watchdog before it, and give the count after.
      await record.locking({ processId: conn.processId, watchdogPid: watchdog.pid });
      const before = await readLockCount(conn.admin);
      await record.locking({ processId: conn.processId, lockCountBefore: before, watchdogPid: watchdog.pid });
      // The last moment an abort costs mongod nothing: from here on, a lock may land.
      signal?.throwIfAborted();
      writesBlocked.begin();
      onWritesBlocked?.(this.options.recordAs ?? this.name, writesBlocked);
      locking = requestLock(conn, before, { writesBlocked, log: this.log, backoffMs: this.options.unlockBackoffMs ?? 200, keepArmed: () => (keepWatchdogArmed = true) });
      const lockCount = await unlessAborted(locking, signal);
      state = 'held';
      if (this.options.releaseWithKnownCount === true && Number.isInteger(lockCount) && lockCount > 0) heldCount = lockCount;
      // Above 1, someone else held a lock already: writes were blocked before us and stay
      // blocked after our unlock, until they release theirs.
      this.log.info(
        { dbpath: this.dbpath, lockCount },
        this.options.recordAs === 'reflink' ? 'fsyncLock held: writes are blocked while the files are cloned' : 'fsyncLock held: writes are blocked until the copy ends',
      );
      stopWatching = this.watchLock(conn, markLost);
      const list = (this.options.list ?? listDbpath)(this.dbpath);
      // Beside the listing, so that the record costs the window no time of its own. Not for a
      // window of milliseconds (reflink): two fsyncs and a rename on the dbpath's filesystem
      // would be most of it. 'locking' with the count before stays the record until
      // 'unlocked', and tells a crash what to send (recorded_lock.ts): one up, ours is held.
      // The oplog's ends while no write can move them: the copy holds exactly that range.
      const warnings: string[] = [];
      const oplog = readOplogBounds(conn.local).catch((err: unknown) => {
        const warning = `the manifest records no oplog bounds: reading local.oplog.rs under the lock failed (${err instanceof Error ? err.message : String(err)})`;
        this.log.warn({ err: String(err) }, warning);
        warnings.push(warning);
        return undefined;
      });
      const [files, bounds] = await Promise.all([list, oplog, this.options.recordAs === 'reflink' ? undefined : record.locked()]);
      return {
        strategy: this.name,
        reason: 'fsyncLock for the whole copy, as allowed: writes wait until the copy ends',
        files,
        writesBlocked,
        lost: lost.signal,
        release,
        warnings,
        ...(bounds === undefined ? {} : { oplog: bounds }),
      };
    } catch (err) {
      if (locking !== undefined && state === 'none' && signal !== undefined && err === signal.reason) {
        // Aborted while mongod takes the lock (not a lock that failed): the abort does not wait for it.
        this.releaseOnceSettled(locking, release, (lockCount) => {
          state = 'held';
          if (this.options.releaseWithKnownCount === true && Number.isInteger(lockCount) && lockCount > 0) heldCount = lockCount;
        });
        throw err;
      }
      const held = state === 'held';
      const releaseError = await release().then(
        () => undefined,
        (releaseErr: unknown) => releaseErr,
      );
      // A lock we held and could not release may still block every writer: that is the backup's error too.
      if (held && releaseError !== undefined && !lost.signal.aborted) throw SnapshotReleaseFailed.of(err, releaseError);
      // The watchdog stays armed, so the advice is its, not "unlock by hand": both would release a later, unrelated lock.
      if (keepWatchdogArmed && err instanceof FsyncLockCountUnknown) throw new FsyncLockCountUnknown(err.detail, err, watchdogArmedAdvice(watchdog?.pid));
      throw err;
    }
  }

  /**
   * For a backup aborted while mongod was still taking its lock: once mongod answers,
   * `landed` marks the lock held, and `release` (the snapshot's, as after any failure)
   * unlocks it at once, updates the record and disarms the watchdog; a lock that was
   * never applied is only tidied up after. Its outcome is logged: the backup has ended.
   */
  private releaseOnceSettled(locking: Promise<number>, release: () => Promise<void>, landed: (lockCount: number) => void): void {
    this.log.warn('backup aborted while mongod was taking its fsync lock: the lock is released as soon as it lands');
    void locking
      .then(
        (lockCount) => {
          landed(lockCount);
          this.log.warn({ lockCount }, 'the fsync lock of an aborted backup landed: releasing it at once');
        },
        (err: unknown) => this.log.info({ err: String(err) }, 'the fsync lock of an aborted backup was not taken'),
      )
      .then(release)
      .then(
        () => this.log.info('the fsync lock of an aborted backup is released (or was never taken): nothing of it is held'),
        (err: unknown) => this.log.error({ err: String(err) }, 'could not release the fsync lock of an aborted backup'),
      );
  }

  /**
   * Polls currentOp until stopped; calls onLost once the node is no longer fsync-locked,
   * or is another mongod process (the driver reconnects by itself after a restart, and
   * a lock on the new process, if any, is someone else's).
   */
  private watchLock(conn: AdminConnection, onLost: (reason?: string) => void): () => Promise<void> {
    const interval = this.options.lockCheckIntervalMs ?? DEFAULT_LOCK_CHECK_INTERVAL_MS;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let checking: Promise<void> = Promise.resolve();
    const schedule = () => {
      timer = setTimeout(() => {
        checking = Promise.all([conn.sameProcess(), isFsyncLocked(conn.admin)]).then(
          ([sameProcess, locked]) => {
            if (stopped) return;
            if (!sameProcess || !locked) {
              onLost(sameProcess ? FSYNC_LOCK_LOST : FSYNC_LOCK_RESTARTED);
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

  /** Sends the one fsyncUnlock that is ours (fsync_lock_state.ts), unless the lock is gone. */
  private async unlockOurs(
    conn: AdminConnection,
    onLost: (reason?: string) => void,
    releaseInBackground: () => void,
    watchdogPid: () => number | undefined,
    knownCount: number | undefined,
  ): Promise<void> {
    try {
      const outcome = await releaseOneLock(conn, {
        ...this.backoff(),
        ...(knownCount === undefined ? {} : { knownCount }),
        onRetry: (err, attempt) => this.log.error({ err: String(err), attempt }, 'fsyncUnlock failed'),
      });
      if (outcome.kind === 'notLocked') onLost();
      else if (outcome.kind === 'restarted') onLost(FSYNC_LOCK_RESTARTED);
      else this.log.info({ lockCount: outcome.lockCount, replyLost: outcome.replyLost }, 'fsyncUnlock: our lock is released');
    } catch (err) {
      this.log.error({ err: String(err) }, "fsyncUnlock: could not release the backup's lock");
      if (!(err instanceof MongodUnreachable)) throw err;
      // Never give up on a lock we hold just because mongod is away: writers would hang for good.
      releaseInBackground();
      const pid = watchdogPid();
      throw new MongodUnreachable(
        `${err.detail} The proxy keeps retrying the fsyncUnlock in the background (log lines "fsyncUnlock retry in the background"). ` +
          watchdogArmedAdvice(pid),
        err,
      );
    }
  }

  private backoff(): Pick<UnlockOptions, 'backoffMs'> {
    return this.options.unlockBackoffMs === undefined ? {} : { backoffMs: this.options.unlockBackoffMs };
  }

  /** The release that could not reach mongod, retried for a span of time on a fresh connection. */
  private async releaseLater(processId: string | undefined, watchdog: UnlockWatchdog | undefined, record: LockRecord): Promise<void> {
    const log = this.log.child({ watchdogPid: watchdog?.pid });
    let conn: AdminConnection | undefined;
    const retryForMs = this.options.backgroundReleaseForMs ?? BACKGROUND_RELEASE_FOR_MS;
    const giveUpAt = Date.now() + retryForMs;
    try {
      // Opened expecting the process that holds the lock: a restarted mongod gets nothing.
      for (let attempt = 1; conn === undefined; attempt++) {
        try {
          conn = await AdminConnection.open(this.upstreamUri, processId);
        } catch (err) {
          if (Date.now() >= giveUpAt) throw err;
          log.error({ err: String(err), attempt }, 'fsyncUnlock retry in the background: mongod is still unreachable');
          await sleep(Math.min((this.options.unlockBackoffMs ?? 200) * attempt, 5000));
        }
      }
      const outcome = await releaseOneLock(conn, {
        ...this.backoff(),
        retryForMs: Math.max(0, giveUpAt - Date.now()),
        onRetry: (err, attempt) => log.error({ err: String(err), attempt }, 'fsyncUnlock retry in the background failed'),
      });
      log.warn({ outcome }, 'fsyncUnlock retry in the background: done; the watchdog is disarmed');
      await record.unlocked();
      await watchdog?.disarm();
    } catch (err) {
      log.error({ err: String(err) }, 'fsyncUnlock retry in the background: gave up; the unlock watchdog stays armed and acts when the proxy exits');
    } finally {
      await conn?.close();
    }
  }
}
