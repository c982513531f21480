/**
 * The backup engine: one backup at a time, from destination checks through a
 * snapshot strategy and the throttled copier to a manifest written last. A backup
 * that fails or is interrupted leaves no manifest, so it never looks complete, and
 * its snapshot is always released (no cursor left open, no fsync lock left held).
 */
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { TokenBucket } from './throttle.js';
import { ProgressCounters } from './progress.js';
import { copyFiles } from './copier.js';
import { manifestFiles, writeManifest, type Manifest } from './manifest.js';
import { prepareDestination } from './destination.js';
import { toCommandError } from './io_error.js';
import { BackupCursorStrategy } from './strategies/backup_cursor_strategy.js';
import { FsyncLockStrategy } from './strategies/fsync_lock_strategy.js';
import { openSnapshot } from './strategies/select.js';
import { withLinks } from './strategies/files.js';
import type { Snapshot, StrategyName } from './strategies/snapshot.js';
import type { CopyResult, SourceFile } from './copy_types.js';
import { CommandError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';

export interface BackupEngineOptions {
  /** mongod's dbpath, as seen from this host. */
  dbpath: string;
  /** How the engine reaches mongod (the proxy's upstream). */
  upstreamUri: string;
  /** Whether fsyncLock for the whole copy is allowed when no $backupCursor exists. Default false. */
  allowWriteBlocking?: boolean;
  /** Parallel copy workers. Default 4. */
  concurrency?: number;
  /** Milliseconds between the backup cursor's keepalive getMores. Default 30 s. */
  backupCursorKeepaliveMs?: number;
  log: Logger;
}

export interface StartRequest {
  destination: unknown;
  /** Per-request permission to block writes; ORed with the engine's option. */
  allowWriteBlocking?: boolean;
}

export type BackupPhase = 'starting' | 'snapshot' | 'copying' | 'releasing' | 'manifest';

export interface BackupOutcome {
  ok: boolean;
  backupId: string;
  destination: string;
  strategy: StrategyName | undefined;
  startedAt: Date;
  finishedAt: Date;
  bytes: number;
  files: number;
  seconds: number;
  error: CommandError | undefined;
  /** What went wrong without failing the backup, e.g. an optional file left out. */
  warnings: string[];
}

export interface RunningBackup {
  readonly backupId: string;
  /** As requested until checked, then the absolute path being written. */
  destination: string;
  readonly startedAt: Date;
  readonly counters: ProgressCounters;
  phase: BackupPhase;
  strategy: StrategyName | undefined;
  readonly warnings: string[];
}

export interface EngineStatus {
  running: RunningBackup | undefined;
  last: BackupOutcome | undefined;
  /** The running backup's counters, else the last one's: Percona kept them after the end. */
  counters: ProgressCounters | undefined;
  throttleBytesPerSec: number;
}

export const BACKUP_IN_PROGRESS = 'Cannot initiate backup. There already is a backup in progress.';

export class BackupEngine {
  readonly throttle = new TokenBucket(0);
  private readonly client: MongoClient;
  private running: RunningBackup | undefined;
  private last: BackupOutcome | undefined;
  private lastCounters: ProgressCounters | undefined;
  private readonly abort = new AbortController();
  /** Settles when the backup in the slot (destination check, then execute) is over. */
  private settled: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: BackupEngineOptions) {
    this.client = new MongoClient(options.upstreamUri, { directConnection: true, maxPoolSize: 4 });
  }

  get dbpath(): string {
    return this.options.dbpath;
  }

  /**
   * Validates, claims the single backup slot, and starts copying. Resolves once the
   * backup is under way; `done` settles when it ends (it never rejects).
   */
  async start(request: StartRequest): Promise<{ backupId: string; done: Promise<BackupOutcome> }> {
    // Aborted only by close(): a closing engine takes no new backups.
    if (this.abort.signal.aborted) throw new CommandError(ErrorCodes.ShutdownInProgress, 'the proxy is shutting down');
    if (this.running !== undefined) throw new CommandError(ErrorCodes.ConflictingOperationInProgress, BACKUP_IN_PROGRESS);
    const run: RunningBackup = {
      backupId: randomUUID(),
      destination: String(request.destination),
      startedAt: new Date(),
      counters: new ProgressCounters(),
      phase: 'starting',
      strategy: undefined,
      warnings: [],
    };
    this.running = run;
    const preparing = prepareDestination(request.destination, this.options.dbpath);
    this.settled = preparing.catch(() => undefined);
    let destination: string;
    try {
      destination = await preparing;
    } catch (err) {
      this.running = undefined;
      throw err;
    }
    run.destination = destination;
    const allowWriteBlocking = request.allowWriteBlocking === true || this.options.allowWriteBlocking === true;
    const done = this.execute(run, allowWriteBlocking);
    this.settled = done;
    return { backupId: run.backupId, done };
  }

  status(): EngineStatus {
    return {
      running: this.running,
      last: this.last,
      counters: this.running?.counters ?? this.lastCounters,
      throttleBytesPerSec: this.throttle.rate,
    };
  }

  setThrottle(bytesPerSec: number): void {
    this.throttle.setRate(bytesPerSec);
    this.options.log.info({ throttleBytesPerSec: bytesPerSec }, 'backup throttle set');
  }

  /** Interrupts a running backup (releasing its snapshot) and closes the upstream client. */
  async close(): Promise<void> {
    this.abort.abort(new CommandError(ErrorCodes.InterruptedAtShutdown, 'backup interrupted: the proxy is shutting down'));
    // A backup still checking its destination goes on to execute() and sees the abort
    // there: wait for whatever the slot holds until it holds nothing new.
    for (let settling = this.settled; ; settling = this.settled) {
      await settling;
      if (settling === this.settled) break;
    }
    await this.client.close();
  }

  private async execute(run: RunningBackup, allowWriteBlocking: boolean): Promise<BackupOutcome> {
    const { log } = this.options;
    log.info({ backupId: run.backupId, destination: run.destination, throttleBytesPerSec: this.throttle.rate }, 'backup started');
    let error: CommandError | undefined;
    try {
      await this.copy(run, allowWriteBlocking);
    } catch (err) {
      error = toCommandError(err, 'backup');
    }
    const finishedAt = new Date();
    const outcome: BackupOutcome = {
      ok: error === undefined,
      backupId: run.backupId,
      destination: run.destination,
      strategy: run.strategy,
      startedAt: run.startedAt,
      finishedAt,
      bytes: run.counters.bytesCopied,
      files: run.counters.filesCopied,
      seconds: (finishedAt.getTime() - run.startedAt.getTime()) / 1000,
      error,
      warnings: [...run.warnings],
    };
    this.last = outcome;
    this.lastCounters = run.counters;
    this.running = undefined;
    const summary = {
      backupId: run.backupId,
      destination: run.destination,
      strategy: run.strategy,
      bytes: outcome.bytes,
      files: outcome.files,
      seconds: outcome.seconds,
      warnings: outcome.warnings.length,
    };
    if (error === undefined) log.info(summary, 'backup finished');
    else log.error({ ...summary, code: error.code, errmsg: error.message }, 'backup failed');
    return outcome;
  }

  private async copy(run: RunningBackup, allowWriteBlocking: boolean): Promise<void> {
    const { options } = this;
    run.phase = 'snapshot';
    // close() may have come while the destination was being checked: take no lock then.
    this.abort.signal.throwIfAborted();
    const serverVersion = await this.serverVersion();
    const snapshot: Snapshot = await openSnapshot({
      backupCursor: new BackupCursorStrategy(this.client, options.log, { dbpath: options.dbpath, keepaliveMs: options.backupCursorKeepaliveMs }),
      fsyncLock: allowWriteBlocking ? () => new FsyncLockStrategy(options.upstreamUri, options.dbpath, options.log) : undefined,
    });
    run.strategy = snapshot.strategy;
    options.log.info({ backupId: run.backupId, strategy: snapshot.strategy, files: snapshot.files.length }, 'backup snapshot open');
    let copied: { files: SourceFile[]; result: CopyResult } | undefined;
    let copyError: unknown;
    try {
      copied = await this.copyUnder(snapshot, run);
    } catch (err) {
      copyError = err;
    }
    run.phase = 'releasing';
    const releaseFailure = await snapshot.release().then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    // A lost snapshot is the root cause of whatever the copy then ran into, and a loss
    // noticed only as the copy ended still means the files were not protected.
    snapshot.lost.throwIfAborted();
    if (copied === undefined) {
      if (releaseFailure !== undefined) throw this.releaseFailedToo(run, copyError, releaseFailure.err);
      throw copyError;
    }
    if (releaseFailure !== undefined) throw releaseFailure.err;
    const { files, result } = copied;
    for (const skipped of result.skipped) {
      const warning = `${skipped.relativePath} was left out: it ${skipped.detail}`;
      options.log.warn({ backupId: run.backupId, file: skipped.path, reason: skipped.reason }, warning);
      run.warnings.push(warning);
    }
    run.phase = 'manifest';
    const finishedAt = new Date();
    const manifest: Manifest = {
      format: 'mongo-hotbackup-proxy',
      version: 1,
      backupId: run.backupId,
      strategy: snapshot.strategy,
      source: { dbpath: options.dbpath, host: this.upstreamHost(), serverVersion },
      startedAt: run.startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - run.startedAt.getTime(),
      throttleBytesPerSec: this.throttle.rate,
      ...manifestFiles(result.copied, files),
    };
    await writeManifest(run.destination, manifest);
  }

  /** Lists the files (with the links they came through) and copies them while `snapshot` protects them. */
  private async copyUnder(snapshot: Snapshot, run: RunningBackup): Promise<{ files: SourceFile[]; result: CopyResult }> {
    // Files reached through a symbolic link say so in the manifest, whichever strategy listed them.
    const files = await withLinks(snapshot.files);
    run.phase = 'copying';
    run.counters.begin(files);
    const result = await copyFiles(files, run.destination, {
      bucket: this.throttle,
      concurrency: this.options.concurrency ?? 4,
      progress: run.counters,
      // Shutdown stops the copy, and so does a snapshot that stopped protecting the files.
      signal: AbortSignal.any([this.abort.signal, snapshot.lost]),
    });
    return { files, result };
  }

  /**
   * The copy's own error leads, since it is what went wrong first; a release that
   * failed as well (an fsyncUnlock that did not go through) is said in the same errmsg,
   * because it may mean mongod is still locked.
   */
  private releaseFailedToo(run: RunningBackup, copyError: unknown, releaseError: unknown): CommandError {
    const release = releaseError instanceof Error ? releaseError.message : String(releaseError);
    this.options.log.error({ backupId: run.backupId, err: release }, 'releasing the snapshot failed too');
    const copy = toCommandError(copyError, 'backup');
    return new CommandError(copy.code, `${copy.message}; releasing the snapshot failed too: ${release}`, {
      extra: { ...copy.extra },
      cause: copyError,
      codeName: copy.codeName,
    });
  }

  /** mongod's own `hello`, for callers that must answer as it would (e.g. replica-set member or not). */
  async upstreamHello(): Promise<Record<string, unknown>> {
    return this.client.db('admin').command({ hello: 1 });
  }

  private async serverVersion(): Promise<string> {
    const info = await this.client.db('admin').command({ buildInfo: 1 });
    return String(info['version'] ?? 'unknown');
  }

  private upstreamHost(): string {
    return this.client.options.hosts.map((h) => h.toString()).join(',');
  }
}
