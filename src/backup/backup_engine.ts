/**
 * The backup engine: one backup at a time, from destination checks through a
 * snapshot strategy and the throttled copier to a manifest written last. A backup
 * that fails or is interrupted leaves no manifest, so it never looks complete, but a
 * marker that says why (backup_marker.ts), and its snapshot is always released (no cursor left open, no fsync lock left held).
 *
 * It reaches mongod only through the two seams declared here, which the composition
 * (src/cli/proxy_app.ts) fills in: `UpstreamAdmin` for what the manifest records of
 * mongod, and `SnapshotSource` for the strategy that keeps the files safe to copy.
 */
import os from 'node:os';
import type { CopyIoClass, CopyWrites } from './copy_messages.js';
import { TokenBucket } from './throttle.js';
import { DEFAULT_CONCURRENCY } from './copier.js';
import { runManifest } from './run_manifest.js';
import type { DestinationPolicy } from './destination.js';
import { planReuse, reuseWarnings, type IncrementalBase } from './incremental.js';
import { fileClock } from './source_stamp.js';
import { markerStateOf } from './backup_marker.js';
import type { BackupTarget, TargetCopyOptions } from './backup_target.js';
import { DirectoryTargets, type TargetOpener } from './target_opener.js';
import { TargetCleanups } from './target_cleanups.js';
import { toCommandError } from './io_error.js';
import { withLinks } from './strategies/files.js';
import type { Snapshot, StrategyChoice, StrategyName } from './strategies/snapshot.js';
import type { OplogTimestamp } from './oplog_bounds.js';
import { copyExtension } from './extension_copy.js';
import type { WritesBlockedWindow } from './strategies/writes_blocked.js';
import { NO_JOURNAL, type RunJournal } from './run_journal.js';
import type { CopyResult, SourceFile } from './copy_types.js';
import { failureOf, outcomeCopy, type BackupOutcome, type EngineStatus } from './engine_status.js';
import { BackupRun } from './backup_run.js';
import { SnapshotReleaseFailed } from './release_failed.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { failPointEnabled } from '../failpoints.js';
import type { Logger } from '../log.js';

/** What the manifest records of the mongod being backed up. */
export interface UpstreamAdmin {
  /** mongod's version, e.g. '8.0.4' (buildInfo). */
  serverVersion(): Promise<string>;
  /** How the proxy reaches mongod, e.g. '127.0.0.1:27018'. */
  readonly host: string;
}

export interface SnapshotRequest {
  backupId: string;
  /**
   * The backup's destination, checked and created: absolute, empty, outside the dbpath;
   * or an `s3://` URL (no local path: a strategy then puts nothing in it itself).
   */
  destination: string;
  /** The strategy asked for: by name, or `auto`. A named one that cannot run fails; it never falls back. */
  strategy: StrategyChoice;
  /** Whether writes may be blocked for the whole copy (fsyncLock). */
  allowWriteBlocking: boolean;
  /** Where the strategy writes down what it takes (a lock, a cursor, staging) before it takes it. */
  journal: RunJournal;
  /**
   * Aborted when the engine closes or the backup is aborted (backupAbort, killOp): a
   * source stops where it can (an open still waiting for mongod), takes nothing more, and
   * releases what it took.
   */
  signal: AbortSignal;
  /**
   * Called by a strategy that blocks writes just before it sends its lock, with its name
   * and its window: open() may go on for a while under the lock (the reflink strategy
   * clones then), and backupStatus shows both meanwhile.
   */
  onWritesBlocked?: (strategy: StrategyName, window: WritesBlockedWindow) => void;
  /**
   * The backup is to be extended (`extendTo`), which only the backup cursor can do: `auto`
   * refuses where there is none, before it takes any other snapshot (a lock, clones).
   */
  extending?: boolean;
}

/** Where the engine gets the snapshot that keeps mongod's files safe to copy. */
export interface SnapshotSource {
  open(request: SnapshotRequest): Promise<Snapshot>;
}

export interface BackupEngineOptions {
  /** mongod's dbpath, as seen from this host. */
  dbpath: string;
  /**
   * The machine the backups are of, as manifests record it (source.hostname): retention
   * and incremental bases tell sources apart by it. Default os.hostname(), which a new
   * container changes (`serve --source-name`).
   */
  sourceName?: string;
  upstream: UpstreamAdmin;
  snapshots: SnapshotSource;
  /** Whether fsyncLock for the whole copy is allowed when no $backupCursor exists. Default false. */
  allowWriteBlocking?: boolean;
  /** The strategy of a request that names none (`serve --strategy`). Default 'auto'. */
  strategy?: StrategyChoice;
  /** Where a running backup's holdings are written down for crash recovery. Default: nowhere. */
  journal?: RunJournal;
  /** Parallel copy workers. Default DEFAULT_CONCURRENCY. */
  concurrency?: number;
  /** How copy threads write, and their I/O class (copier.ts CopyOptions). Defaults 'direct' and 'best-effort'. */
  copyWrites?: CopyWrites;
  copyIoClass?: CopyIoClass;
  /** The process-wide throttle every copy draws from. Default: a new, unlimited TokenBucket. */
  throttle?: TokenBucket;
  /**
   * `serve --backup-root` and the proxy's own directories (destination.ts): a destination
   * and an incrementalBase must respect it. Default: any absolute path outside the dbpath.
   */
  destinations?: DestinationPolicy;
  /**
   * Checks destinations and opens their targets (target_opener.ts): the proxy's sends
   * `s3://` ones to S3. Default: local directories only, by `destinations`.
   */
  targets?: TargetOpener;
  log: Logger;
}

export interface StartRequest {
  destination: unknown;
  /** Per-request permission to block writes; ORed with the engine's option. */
  allowWriteBlocking?: boolean;
  /** Per-request strategy; default: the engine's. */
  strategy?: StrategyChoice;
  /** An earlier complete backup of this dbpath: files unchanged since are taken from it (incremental.ts). */
  incrementalBase?: string;
  /** With `incrementalBase`: compare every file by content, not by size and mtime. */
  checksum?: boolean;
  /**
   * Bring the copy up to at least this cluster time once the base files are copied
   * (`$backupCursorExtend`; the backupCursor strategy only): the journal written since the
   * checkpoint, copied over the earlier copies of the same files.
   */
  extendTo?: OplogTimestamp;
}

export interface StartedBackup {
  backupId: string;
  /** Settles when the backup ends; never rejects. */
  done: Promise<BackupOutcome>;
}

/**
 * What abort() found: no backup running; one now stopping; or one too far gone to stop
 * (its manifest is being written), which completes. Both settle `done` with the outcome.
 */
export type AbortAttempt =
  | { kind: 'none' }
  /** `done` settles with undefined for a backup whose destination was refused: it never began. */
  | { kind: 'aborting' | 'completing'; backupId: string; done: Promise<BackupOutcome | undefined> };

type SnapshotChoice = Pick<SnapshotRequest, 'allowWriteBlocking' | 'strategy'> & Pick<StartRequest, 'extendTo'>;

export const BACKUP_IN_PROGRESS = 'Cannot initiate backup. There already is a backup in progress.';

export class BackupEngine {
  readonly throttle: TokenBucket;
  private readonly journal: RunJournal;
  private readonly targets: TargetOpener;
  /** Cleanups of failed backups that could not finish at once (S3 unreachable): status says so. */
  private readonly cleanups: TargetCleanups;
  /** The backup in the slot, and its end (rejected when its destination is refused). */
  private running: { run: BackupRun; done: Promise<BackupOutcome> } | undefined;
  private last: BackupOutcome | undefined;
  private readonly closing = new AbortController();
  /**
   * The backup in the slot, from its destination check to its outcome; never rejects.
   * It is set in the same synchronous step that claims the slot, and a closing engine
   * claims nothing, so close() needs to await it only once.
   */
  private slot: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: BackupEngineOptions) {
    this.throttle = options.throttle ?? new TokenBucket(0);
    this.journal = options.journal ?? NO_JOURNAL;
    this.targets =
      options.targets ?? new DirectoryTargets({ dbpath: options.dbpath, policy: options.destinations, writes: options.copyWrites, ioClass: options.copyIoClass });
    this.cleanups = new TargetCleanups(options.log);
  }

  /**
   * Validates, claims the single backup slot, and starts copying. Resolves once the
   * backup is under way; `done` settles when it ends.
   */
  async start(request: StartRequest): Promise<StartedBackup> {
    // Aborted only by close(): a closing engine takes no new backups.
    if (this.closing.signal.aborted) throw new CommandError(ErrorCodes.ShutdownInProgress, 'the proxy is shutting down');
    if (this.running !== undefined) throw new CommandError(ErrorCodes.ConflictingOperationInProgress, BACKUP_IN_PROGRESS);
    const run = new BackupRun(String(request.destination), this.closing.signal);
    const allowWriteBlocking = request.allowWriteBlocking === true || this.options.allowWriteBlocking === true;
    const strategy = request.strategy ?? this.options.strategy ?? 'auto';
    // The base first (it creates nothing), then the destination, which may be created.
    const checking = this.targets.open(request, {
      backupId: run.backupId,
      startedAt: run.startedAt,
      source: { dbpath: this.options.dbpath, host: this.options.upstream.host, hostname: this.options.sourceName ?? os.hostname() },
      closing: this.closing.signal,
    });
    // A close() that comes while the destination is checked is seen by execute().
    const done = checking.then(
      ({ target, base }) => this.execute(run, target, { allowWriteBlocking, strategy, ...(request.extendTo === undefined ? {} : { extendTo: request.extendTo }) }, base),
      (err: unknown) => {
        this.running = undefined;
        throw err;
      },
    );
    this.running = { run, done };
    this.slot = done.catch(() => undefined);
    // A refused destination is the command's own error, and leaves no outcome behind.
    await checking;
    return { backupId: run.backupId, done };
  }

  /** Whether a backup holds the slot: claimed by start(), until its outcome (or the refusal of its destination). */
  busy(): boolean {
    return this.running !== undefined;
  }

  status(): EngineStatus {
    return Object.freeze({
      running: this.running?.run.status(),
      last: this.last === undefined ? undefined : this.cleanups.annotate(outcomeCopy(this.last)),
      throttleBytesPerSec: this.throttle.rate,
    });
  }

  /**
   * Stops the running backup on behalf of `by` (who asked, for the errmsg and the log):
   * see backup_run.ts. `done` settles once it has ended, its snapshot released.
   */
  abort(by: string): AbortAttempt {
    const slot = this.running;
    if (slot === undefined) return { kind: 'none' };
    const { run } = slot;
    // Aborted while its destination is checked, it sees the abort before it takes any snapshot.
    const done = slot.done.catch(() => undefined);
    if (!run.abort(by)) return { kind: 'completing', backupId: run.backupId, done };
    this.options.log.warn({ backupId: run.backupId, by, phase: run.phase }, 'backup aborted');
    return { kind: 'aborting', backupId: run.backupId, done };
  }

  setThrottle(bytesPerSec: number): void {
    this.throttle.setRate(bytesPerSec);
    this.options.log.info({ throttleBytesPerSec: bytesPerSec }, 'backup throttle set');
  }

  /** Interrupts a running backup and resolves once it has ended (its snapshot released). */
  async close(): Promise<void> {
    this.closing.abort(new CommandError(ErrorCodes.InterruptedAtShutdown, 'backup interrupted: the proxy is shutting down'));
    await this.slot;
    // A cleanup still retrying in the background stops; the next start's recovery goes on with it.
    await this.cleanups.close();
  }

  /**
   * What a proxy that died during a backup left behind, as found and cleaned up by the
   * next start (recovery.ts): shown as the last backup until another one ends.
   */
  recordInterrupted(outcome: BackupOutcome): void {
    if (this.running === undefined && this.last === undefined) this.last = outcomeCopy(outcome);
  }

  private async execute(run: BackupRun, target: BackupTarget, choice: SnapshotChoice, base: IncrementalBase | undefined): Promise<BackupOutcome> {
    const { log } = this.options;
    const { destination } = target;
    run.destination = destination;
    log.info({ backupId: run.backupId, destination, incrementalBase: base?.dir, throttleBytesPerSec: this.throttle.rate }, 'backup started');
    let error: CommandError | undefined;
    let begun = false;
    try {
      // backupAbort or close() during the destination check: nothing is written then.
      run.signal.throwIfAborted();
      // The marker says, until the manifest is written, that this is an unfinished backup and why (backup_marker.ts).
      await target.begin();
      begun = true;
      await this.copy(run, target, choice, base);
      await target.complete().catch((err: unknown) => run.warnings.push(markerLeft(target.markerName, err)));
    } catch (err) {
      error = run.failure(toCommandError(err, 'backup'));
      // A snapshot that never opened, or a release that failed: forget the record unless it still holds something.
      await this.journal.settle().catch((settleErr: unknown) => log.error({ err: String(settleErr) }, 'could not tidy the state file'));
    }
    const outcome = run.outcome(error);
    if (error !== undefined && outcome.state !== 'complete' && begun) {
      // The outcome's state, as backupStatus.last shows it: not the code alone (an Interrupted from mongod is no abort).
      await target
        .fail(failureOf(error), outcome.finishedAt, markerStateOf(outcome.state, error.code))
        .then((cleanup) => this.cleanups.track(run.backupId, destination, cleanup))
        .catch((err: unknown) => log.error({ backupId: run.backupId, err: String(err) }, `could not record the failure in ${target.markerName}`));
    }
    this.last = outcome;
    this.running = undefined;
    const summary = {
      backupId: run.backupId,
      destination,
      strategy: run.strategy,
      bytes: outcome.bytes,
      files: outcome.files,
      bytesReused: outcome.progress.bytesReused,
      filesReused: outcome.progress.filesReused,
      seconds: outcome.seconds,
      warnings: outcome.warnings.length,
    };
    if (error === undefined) log.info(summary, 'backup finished');
    else if (outcome.state === 'aborted') log.warn({ ...summary, code: error.code, errmsg: error.message }, 'backup aborted: ended');
    else log.error({ ...summary, code: error.code, errmsg: error.message }, 'backup failed');
    return outcomeCopy(outcome);
  }

  private async copy(run: BackupRun, target: BackupTarget, choice: SnapshotChoice, base: IncrementalBase | undefined): Promise<void> {
    const { options } = this;
    run.phase = 'snapshot';
    // close() or abort() may have come while the destination was being checked: take no lock then.
    run.signal.throwIfAborted();
    const serverVersion = await options.upstream.serverVersion();
    const { journal } = this;
    await journal.begin({ backupId: run.backupId, startedAt: run.startedAt, destination: run.destination });
    // The filesystem's clock as the backup begins, before any file is stat'ed: the next incremental's racy check (source_stamp.ts).
    const startedAtFs = journal.stateFile === undefined ? undefined : await fileClock(journal.stateFile);
    const onWritesBlocked = (strategy: StrategyName, window: WritesBlockedWindow) => {
      run.strategy = strategy;
      run.writesBlocked = window;
    };
    const { extendTo, ...snapshotChoice } = choice;
    run.extendTo = extendTo;
    const snapshot = await options.snapshots.open({ ...snapshotChoice, ...(extendTo === undefined ? {} : { extending: true }), backupId: run.backupId, destination: run.destination, journal, signal: run.signal, onWritesBlocked });
    run.strategy = snapshot.strategy;
    run.strategyReason = snapshot.reason;
    run.writesBlocked = snapshot.writesBlocked;
    const strategyWarnings = warningsOf(snapshot, run);
    strategyWarnings();
    options.log.info(
      { backupId: run.backupId, strategy: snapshot.strategy, strategyReason: snapshot.reason, files: snapshot.files.length, writesBlockedMs: snapshot.writesBlocked.ms() },
      'backup snapshot open',
    );
    let copied: { files: SourceFile[]; result: CopyResult } | undefined;
    let copyError: unknown;
    try {
      copied = await this.copyUnder(snapshot, run, target, base, extendTo);
    } catch (err) {
      copyError = err;
    }
    run.phase = 'releasing';
    const releaseFailure = await snapshot.release().then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    // A staging directory it could not remove, say: the copy is whole, the backup good.
    strategyWarnings();
    // Released: nothing of this backup's is held any more. A release that failed may have
    // left a lock or cursor behind: then the record stays, for the next start to clean up.
    if (releaseFailure === undefined) await journal.end();
    // A lost snapshot is the root cause of whatever the copy then ran into, and a loss
    // noticed only as the copy ended still means the files were not protected.
    snapshot.lost.throwIfAborted();
    if (releaseFailure !== undefined) throw this.releaseFailed(run, copied === undefined ? copyError : undefined, releaseFailure.err);
    if (copied === undefined) throw copyError;
    const { files, result } = copied;
    for (const skipped of result.skipped) {
      const warning = `${skipped.relativePath} was left out: it ${skipped.detail}`;
      options.log.warn({ backupId: run.backupId, file: skipped.path, reason: skipped.reason }, warning);
      run.warnings.push(warning);
    }
    for (const warning of base === undefined ? [] : reuseWarnings(result.copied, base)) {
      options.log.warn({ backupId: run.backupId, incrementalBase: base?.dir }, warning);
      run.warnings.push(warning);
    }
    // The last moment an abort can stop it: from the next line on it completes (BackupRun.abort).
    run.signal.throwIfAborted();
    run.phase = 'manifest';
    if (failPointEnabled('failBeforeManifest')) throw new Error('fail point failBeforeManifest: the backup fails before its manifest is written');
    const source = { dbpath: options.dbpath, host: options.upstream.host, serverVersion, hostname: options.sourceName ?? os.hostname() };
    const manifest = runManifest({ run, snapshot, source, startedAtFs, throttleBytesPerSec: this.throttle.rate, base, extendTo, files, result });
    await target.writeManifest(manifest);
  }

  /**
   * Lists the files (with the links they came through) and copies them while `snapshot`
   * protects them; then, with `extendTo`, extends the snapshot and copies what it adds.
   */
  private async copyUnder(snapshot: Snapshot, run: BackupRun, target: BackupTarget, base: IncrementalBase | undefined, extendTo: OplogTimestamp | undefined): Promise<{ files: SourceFile[]; result: CopyResult }> {
    if (extendTo !== undefined && snapshot.extend === undefined) {
      throw new CommandError(
        ErrorCodes.InvalidOptions,
        `backupStart option 'extendTo' needs the backupCursor strategy ($backupCursorExtend), and this backup's strategy is ${snapshot.strategy}: ` +
          'writes were blocked for its copy, so it holds no journal to extend; leave extendTo out, or back up a mongod that has $backupCursor',
      );
    }
    const copied = await this.copyListed(snapshot, run, target, base);
    if (extendTo === undefined || snapshot.extend === undefined) return copied;
    return copyExtension(snapshot.extend, run, { to: extendTo, lost: snapshot.lost, log: this.options.log }, copied, (files, signal) => target.replace(files, this.copyOptions(run, signal)));
  }

  /** The snapshot's own files, copied (or sealed, when the strategy put them in the destination). */
  private async copyListed(snapshot: Snapshot, run: BackupRun, target: BackupTarget, base: IncrementalBase | undefined): Promise<{ files: SourceFile[]; result: CopyResult }> {
    // Files reached through a symbolic link say so in the manifest, whichever strategy listed them.
    const listed = await withLinks(snapshot.files);
    // Clones already in the destination cost nothing: there is nothing to take from a base.
    const files = base === undefined || snapshot.inDestination !== undefined ? listed : planReuse(listed, base);
    run.phase = 'copying';
    run.counters.begin(files);
    const concurrency = this.options.concurrency ?? DEFAULT_CONCURRENCY;
    // Shutdown or an abort stops the copy, and so does a snapshot that stopped protecting the files.
    const signal = AbortSignal.any([run.signal, snapshot.lost]);
    // Files the strategy already put in the destination are only checked and made durable.
    const result =
      snapshot.inDestination !== undefined
        ? await snapshot.inDestination({ progress: run.counters, signal, concurrency })
        : await target.copy(files, this.copyOptions(run, signal));
    return { files, result };
  }

  /** Into the backup's target: through the one throttle and the backup's counters. */
  private copyOptions(run: BackupRun, signal: AbortSignal): TargetCopyOptions {
    return { limiter: this.throttle, concurrency: this.options.concurrency ?? DEFAULT_CONCURRENCY, progress: run.counters, signal };
  }

  /**
   * A release that failed (an fsyncUnlock that did not go through) may mean mongod is
   * still locked: the backup fails with it, even an aborted one (BackupRun.failure). The
   * copy's own error, if any, leads, since it is what went wrong first.
   */
  private releaseFailed(run: BackupRun, copyError: unknown, releaseError: unknown): SnapshotReleaseFailed {
    const failed = SnapshotReleaseFailed.of(copyError, releaseError);
    this.options.log.error({ backupId: run.backupId, err: failed.releaseMessage }, copyError === undefined ? 'releasing the snapshot failed' : 'releasing the snapshot failed too');
    return failed;
  }
}

/** The warning of a complete backup whose marker could not be removed after its manifest was written. */
function markerLeft(marker: string, err: unknown): string {
  return `${marker} could not be removed after the manifest was written (${err instanceof Error ? err.message : String(err)}): ` +
    'the backup is complete (its manifest says so, and verify checks it); remove it by hand.';
}

/** Adds to the run's warnings, each time it is called, those the snapshot has added since (Snapshot.warnings). */
function warningsOf(snapshot: Snapshot, run: BackupRun): () => void {
  let taken = 0;
  return () => {
    const all = snapshot.warnings ?? [];
    run.warnings.push(...all.slice(taken));
    taken = all.length;
  };
}
