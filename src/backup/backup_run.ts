/**
 * One backup in the engine's single slot, from its claim to its outcome: what status()
 * shows of it while it runs, the signal every step of it watches, and its abort.
 *
 * An abort (backupAbort, killOp) is a kill, as mongod's killOp is one: the backup's
 * signal fires with an Interrupted (11601) error, whose errmsg names who asked; each step
 * stops where it is (a copy thread between two chunks, a throttle wait at once, an open
 * of `$backupCursor` by killing its session), and the engine then releases the snapshot
 * as after any failure: the cursor closed, the lock released, the staging removed, no
 * manifest. A release that fails then makes the backup failed, not aborted (failure()).
 * Once the manifest is being written it is too late: the backup is complete a few
 * milliseconds later, and abort() says so rather than leave a backup that is both.
 */
import { randomUUID } from 'node:crypto';
import { ProgressCounters } from './progress.js';
import type { StrategyName } from './strategies/snapshot.js';
import type { WritesBlockedWindow } from './strategies/writes_blocked.js';
import { failureOf, type BackupOutcome, type BackupPhase, type RunningStatus } from './engine_status.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { SnapshotReleaseFailed } from './release_failed.js';
import type { OplogTimestamp } from './oplog_bounds.js';

/**
 * mongod's text for an operation its killOp interrupted (operation_context.cpp,
 * checkForInterruptNoAssert: Status(ErrorCodes::Interrupted, "operation was interrupted")).
 */
export const INTERRUPTED = 'operation was interrupted';

export class BackupRun {
  readonly backupId = randomUUID();
  readonly startedAt = new Date();
  readonly counters = new ProgressCounters();
  /** As requested until checked, then the absolute path being written. */
  destination: string;
  phase: BackupPhase = 'starting';
  strategy: StrategyName | undefined;
  /** The snapshot's one line on why its strategy, once it is open. */
  strategyReason: string | undefined;
  /** The write-block window: the snapshot's, or, while it opens, the one its strategy told of (onWritesBlocked). */
  writesBlocked: WritesBlockedWindow | undefined;
  readonly warnings: string[] = [];
  /** `extendTo`, if asked for; and while the extension waits, what for. */
  extendTo: OplogTimestamp | undefined;
  waitingFor: string | undefined;
  /** Aborted when the engine closes or this backup is aborted: every step of the backup watches it. */
  readonly signal: AbortSignal;
  readonly #abort = new AbortController();
  #abortedBy: string | undefined;

  constructor(destination: string, closing: AbortSignal) {
    this.destination = destination;
    this.signal = AbortSignal.any([closing, this.#abort.signal]);
  }

  /** Who aborted it, once someone has. */
  get abortedBy(): string | undefined {
    return this.#abortedBy;
  }

  /**
   * Stops the backup on behalf of `by` (e.g. `{backupAbort: 1} from 127.0.0.1:51234`).
   * False when it is too late: the manifest is being written. A second abort keeps the
   * first one's reason.
   */
  abort(by: string): boolean {
    if (this.phase === 'manifest') return false;
    if (this.#abortedBy !== undefined) return true;
    this.#abortedBy = by;
    this.#abort.abort(
      new CommandError(
        ErrorCodes.Interrupted,
        `${INTERRUPTED}: backup ${this.backupId} was aborted by ${by}; ${this.destination} has no manifest, ` +
          'so the backup there is incomplete: remove it and start a new backup.',
      ),
    );
    return true;
  }

  /**
   * The error the backup ends with. An aborted backup ends with its abort, whatever the
   * steps it stopped threw on the way (a connection the abort closed, say), so that its
   * code is always Interrupted; what else went wrong is said after it. Except a release
   * that failed: mongod may still be fsync-locked, or a cursor open, which is no clean
   * abort. The backup then fails with the release's code, its errmsg saying both.
   */
  failure(error: CommandError): CommandError {
    const reason: unknown = this.#abort.signal.reason;
    if (!(reason instanceof CommandError)) return error;
    if (error instanceof SnapshotReleaseFailed) return error.afterAbort(reason);
    if (error.code === ErrorCodes.Interrupted) return error;
    return new CommandError(reason.code, `${reason.message} While it stopped: ${error.message}`, { extra: { ...error.extra }, cause: error });
  }

  status(): RunningStatus {
    return Object.freeze({
      backupId: this.backupId,
      destination: this.destination,
      startedAt: new Date(this.startedAt),
      phase: this.phase,
      abortedBy: this.#abortedBy,
      strategy: this.strategy,
      strategyReason: this.strategyReason,
      writesBlockedMs: this.writesBlocked?.ms() ?? 0,
      progress: this.counters.snapshot(),
      warnings: Object.freeze([...this.warnings]),
      extendTo: this.extendTo,
      waitingFor: this.waitingFor,
    });
  }

  /** How it ended: complete when `error` is undefined. */
  outcome(error: CommandError | undefined, finishedAt: Date = new Date()): BackupOutcome {
    const progress = this.counters.snapshot();
    const aborted = error !== undefined && this.#abortedBy !== undefined && error.code === ErrorCodes.Interrupted && !(error instanceof SnapshotReleaseFailed);
    return Object.freeze({
      ok: error === undefined,
      state: error === undefined ? 'complete' : aborted ? 'aborted' : 'failed',
      backupId: this.backupId,
      destination: this.destination,
      strategy: this.strategy,
      strategyReason: this.strategyReason,
      writesBlockedMs: this.writesBlocked?.ms() ?? 0,
      startedAt: new Date(this.startedAt),
      finishedAt,
      bytes: progress.bytesCopied,
      files: progress.filesCopied,
      seconds: (finishedAt.getTime() - this.startedAt.getTime()) / 1000,
      error: error === undefined ? undefined : failureOf(error),
      warnings: Object.freeze([...this.warnings]),
      progress,
    });
  }
}
