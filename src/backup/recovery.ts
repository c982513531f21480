/**
 * What `serve` does at start when the previous proxy died in the middle of a backup: it
 * finds that backup's state file (run_state_file.ts) and releases what the backup held,
 * each thing exactly once (recovery_steps.ts):
 * - its fsync lock: normally the unlock watchdog released it moments after the proxy
 *   died and marked so in the file; we wait for a watchdog still at work, and unlock
 *   ourselves only when it is gone without having done so;
 * - its backup cursor: killed, so that a new backupStart is not refused with 50886 for
 *   the 10 minutes mongod would keep it;
 * - its staging directory, and any other leftover `<stagingRoot>/hotbackup-staging-<uuid>`;
 * then it removes the file and reports the backup as `backupStatus.last`, failed.
 *
 * Each step, once done, is written to the file at once (durably), so a restart that is
 * itself killed half-way repeats none of the steps it recorded; a kill in the moment
 * between an acknowledged fsyncUnlock and its record can repeat that one (docs/commands.md).
 *
 * When a step cannot finish (mongod unreachable, or a watchdog still retrying it), the
 * proxy starts all the same, since applications reach mongod through it, and retries in
 * the background; meanwhile backupStart is refused with a message that says why, since a
 * new backup would stack a second lock on one still held, or be refused by a cursor still
 * open. The start waits for the first attempt for `firstAttemptMs` only.
 *
 * The interrupted backup's error is InterruptedAtShutdown (11600), the code the engine
 * gives a backup that a stopping proxy interrupts: for a client both mean "the proxy went
 * away during the backup", whether it stopped cleanly or was killed; Interrupted (11601)
 * is what mongod answers for an operation killed by killOp, which is not what happened.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readStateFile, removeStateFile, writeStateFile, type RunState } from './run_state_file.js';
import { recoverCursor, recoverLock, recoverStaging, RecoveryPending } from './recovery_steps.js';
import { failureOf, type BackupFailure, type BackupOutcome } from './engine_status.js';
import { markInterrupted } from './backup_marker.js';
import { ProgressCounters } from './progress.js';
import type { BackupEngine, StartedBackup, StartRequest } from './backup_engine.js';
import { CommandError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';

const DEFAULT_FIRST_ATTEMPT_MS = 15_000;
const MAX_RETRY_BACKOFF_MS = 30_000;

export interface RecoveryOptions {
  stateFile: string;
  stagingRoot: string;
  upstreamUri: string;
  /** Gets the interrupted backup once it is cleaned up after. */
  engine: Pick<BackupEngine, 'recordInterrupted'>;
  log: Logger;
  /** How long the start waits for recovery before it goes on in the background. Default 15 s. */
  firstAttemptMs?: number;
  /** The first backoff between background attempts, doubled up to 30 s. Default 1 s. */
  retryBackoffMs?: number;
  /**
   * Rewrites the interrupted backup's marker in its destination (and tidies what else the
   * destination's kind leaves: an S3 prefix's multipart uploads, s3_recovery.ts).
   * Default: markInterrupted, for a directory.
   */
  markInterrupted?: (destination: string, backupId: string, failure: BackupFailure) => Promise<unknown>;
}

type GatedEngine = Pick<BackupEngine, 'start' | 'status' | 'busy' | 'setThrottle' | 'abort'>;

export class Recovery {
  private pending: { backupId: string; pid: number; reason: string } | undefined;
  private readonly abort = new AbortController();
  private readonly finished: Promise<void>;
  private firstAttemptEnded: () => void = () => undefined;
  private readonly firstAttempt = new Promise<void>((resolve) => (this.firstAttemptEnded = resolve));

  private constructor(private readonly options: RecoveryOptions) {
    this.finished = this.run();
  }

  /**
   * Cleans up after a dead proxy's backup. Resolves once that is done, or once the first
   * attempt failed or ran out of time (then it goes on in the background): mongod away
   * must not keep the proxy from listening. Rejects only when the state file cannot be read
   * at all. The caller holds the state dir's claim (state_dir_claim.ts): no live proxy owns the record.
   */
  static async start(options: RecoveryOptions): Promise<Recovery> {
    const recovery = new Recovery(options);
    const bound = new AbortController();
    await Promise.race([
      recovery.finished,
      recovery.firstAttempt,
      sleep(options.firstAttemptMs ?? DEFAULT_FIRST_ATTEMPT_MS, undefined, { signal: bound.signal }),
    ]).finally(() => bound.abort());
    if (recovery.pending !== undefined) {
      options.log.error({ ...recovery.pending }, 'recovery: not finished; it goes on in the background, and backupStart is refused until it is done');
      recovery.finished.catch((err: unknown) => options.log.error({ err: String(err) }, 'recovery: failed'));
    }
    return recovery;
  }

  /** Settles once recovery is done (or stopped). */
  get done(): Promise<void> {
    return this.finished;
  }

  /** Why backupStart is refused now; undefined once recovery is done. */
  refusal(): CommandError | undefined {
    const pending = this.pending;
    if (pending === undefined) return undefined;
    return new CommandError(
      ErrorCodes.CannotBackup,
      `The proxy is still cleaning up after backup ${pending.backupId}, which the previous proxy (pid ${pending.pid}) left unfinished ` +
        `when it died: ${pending.reason}. No backup starts until that is done, so that none stacks on a lock or cursor still held; ` +
        'the proxy retries in the background (log lines "recovery").',
    );
  }

  /** The backup commands' view of `engine`: backupStart is refused while recovery is not done. */
  gate(engine: GatedEngine): GatedEngine {
    return {
      start: (request: StartRequest): Promise<StartedBackup> => {
        const refused = this.refusal();
        return refused === undefined ? engine.start(request) : Promise.reject(refused);
      },
      status: () => engine.status(),
      busy: () => engine.busy(),
      setThrottle: (bytesPerSec) => engine.setThrottle(bytesPerSec),
      abort: (by) => engine.abort(by),
    };
  }

  /** Stops the background attempts (at shutdown); what is left is done at the next start. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.finished;
  }

  private async run(): Promise<void> {
    const { log } = this.options;
    const read = await readStateFile(this.options.stateFile, { moveAsideInvalid: true });
    if (read.kind === 'invalid') {
      log.error(
        { stateFile: this.options.stateFile, movedTo: read.movedTo, reason: read.reason },
        'recovery: the state file is not valid, so it was moved aside and not trusted: if a proxy died during a backup, check by hand ' +
          'that mongod is not fsync-locked (db.currentOp().fsyncLock) and has no backup cursor open',
      );
    }
    const state = read.kind === 'valid' ? read.state : undefined;
    // No live proxy holds this record: this process claimed the state dir before recovery
    // ran (state_dir_claim.ts), and a proxy holds its claim for as long as it lives.
    if (state === undefined) {
      // No record, but a removal that failed in an earlier run may have left clones behind.
      await recoverStaging(undefined, this.options.stagingRoot, log).catch((err: unknown) =>
        log.error({ stagingRoot: this.options.stagingRoot, err: String(err) }, 'recovery: could not remove leftover staging directories'),
      );
      return;
    }
    log.warn({ backupId: state.backupId, pid: state.pid, stateFile: this.options.stateFile }, 'recovery: the previous proxy died during a backup; cleaning up after it');
    const pending = { backupId: state.backupId, pid: state.pid, reason: 'the cleanup has just begun' };
    this.pending = pending;
    let backoff = this.options.retryBackoffMs ?? 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt();
        return;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        // Besides mongod away (RecoveryPending): a state dir that cannot be written now (full, read-only) may be later.
        pending.reason = err instanceof RecoveryPending ? err.reason : `the cleanup failed: ${err instanceof Error ? err.message : String(err)}`;
        log.error({ attempt, reason: pending.reason, retryInMs: backoff }, 'recovery: could not finish; retrying in the background; backupStart is refused until then');
      } finally {
        this.firstAttemptEnded();
      }
      const slept = await sleep(backoff, true, { signal: this.abort.signal }).catch(() => false);
      if (!slept) return;
      backoff = Math.min(backoff * 2, MAX_RETRY_BACKOFF_MS);
    }
  }

  /** One pass over what the file still records; each step done is written down at once. */
  private async attempt(): Promise<void> {
    const { stateFile, upstreamUri, log } = this.options;
    const reread = async (): Promise<RunState> => {
      const read = await readStateFile(stateFile);
      if (read.kind !== 'valid') throw new Error(`the state file ${stateFile} changed under recovery: ${read.kind === 'invalid' ? read.reason : 'it is gone'}`);
      return read.state;
    };
    const first = await readStateFile(stateFile, { moveAsideInvalid: true });
    if (first.kind !== 'valid') {
      // Removed or replaced by hand while we retried: whoever did so took the cleanup over.
      log.error(
        { stateFile, movedTo: first.kind === 'invalid' ? first.movedTo : undefined },
        'recovery: the state file was removed or damaged while the cleanup was pending; it is not trusted, and nothing more is done: ' +
          'check by hand that mongod is not fsync-locked (db.currentOp().fsyncLock) and has no backup cursor open',
      );
      this.pending = undefined;
      return;
    }
    let state = first.state;
    const done = async (clause: string, change: Partial<RunState>, clear: ReadonlyArray<'backupCursor' | 'staging'> = []) => {
      const next: RunState = { ...state, ...change, cleanup: [...state.cleanup, clause] };
      for (const key of clear) delete next[key];
      await writeStateFile(stateFile, next);
      state = next;
      log.warn({ backupId: state.backupId, done: clause }, 'recovery: step done');
    };
    if (state.fsyncLock !== undefined && state.fsyncLock.phase !== 'unlocked') {
      const waiting = (reason: string) => {
        if (this.pending !== undefined) this.pending.reason = reason;
      };
      const clause = await recoverLock(state, reread, { stateFile, upstreamUri, signal: this.abort.signal, log, waiting });
      // Undefined: the watchdog settled it, and wrote its own clause.
      state = await reread();
      if (clause !== undefined && state.fsyncLock !== undefined) await done(clause, { fsyncLock: { ...state.fsyncLock, phase: 'unlocked' } });
    }
    if (state.backupCursor !== undefined) await done(await recoverCursor(state.backupCursor, upstreamUri), {}, ['backupCursor']);
    const staging = await recoverStaging(state.staging, this.options.stagingRoot, log);
    if (staging !== undefined) await done(staging, {}, ['staging']);
    await removeStateFile(stateFile);
    const outcome = interruptedOutcome(state);
    // The destination's marker still says running: it now says what happened (verify reads it).
    if (outcome.error !== undefined) {
      await (this.options.markInterrupted ?? markInterrupted)(state.destination, state.backupId, outcome.error).catch((err: unknown) =>
        log.warn({ backupId: state.backupId, destination: state.destination, err: String(err) }, 'recovery: could not mark the destination interrupted'),
      );
    }
    this.options.engine.recordInterrupted(outcome);
    this.pending = undefined;
    log.warn({ backupId: state.backupId, errmsg: outcome.error?.errmsg }, 'recovery: done; the interrupted backup is backupStatus.last');
  }
}

/** The dead proxy's backup as backupStatus.last shows it: failed, saying what happened and what was cleaned up. */
export function interruptedOutcome(state: RunState, now: Date = new Date()): BackupOutcome {
  const cleanup = state.cleanup.length === 0 ? 'it held nothing that needed cleaning up' : `cleaning up after it, ${state.cleanup.join('; ')}`;
  const error = new CommandError(
    ErrorCodes.InterruptedAtShutdown,
    `backup interrupted: the proxy (pid ${state.pid}) died during this backup (killed, crashed, or stopped before the backup could ` +
      `finish); ${cleanup}. ${state.destination} has no manifest, so the backup there is incomplete: remove it and start a new backup.`,
  );
  const startedAt = new Date(state.startedAt);
  return Object.freeze({
    ok: false,
    state: 'failed',
    backupId: state.backupId,
    destination: state.destination,
    strategy: state.strategy,
    strategyReason: undefined,
    writesBlockedMs: 0,
    startedAt,
    finishedAt: now,
    bytes: 0,
    files: 0,
    seconds: Math.max(0, (now.getTime() - startedAt.getTime()) / 1000),
    error: failureOf(error),
    warnings: Object.freeze([]),
    progress: new ProgressCounters().snapshot(),
  });
}
