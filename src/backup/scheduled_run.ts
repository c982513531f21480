/**
 * One run of a scheduled job (backup_job.ts), from "it is time" to what the job records:
 * - skipped when a backup is running (a client's backupStart): runs never overlap;
 * - otherwise a backup into `<root>/<time>`, incremental against the newest good backup
 *   under the root, or full: the first, and every K-th with --full-every K;
 * - after a success, the job's retention (job_snapshots.ts); after a failure, the
 *   directory it left is removed (it has no manifest, and an unattended job that keeps
 *   failing would otherwise leave one per period).
 * Nothing here retries: the job waits for its next run time.
 */
import path from 'node:path';
import { CommandError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import type { StartedBackup, StartRequest } from './backup_engine.js';
import type { EngineStatus } from './engine_status.js';
import type { SourceIdentity } from './incremental.js';
import type { JobRun } from './job_state_file.js';
import { applyRetention, freeDestination, newestGoodBackup, removeFailedBackup, type RetentionResult } from './job_snapshots.js';

/** What a job needs of whatever takes backups: the engine, behind the recovery gate. */
export interface JobBackups {
  start(request: StartRequest): Promise<StartedBackup>;
  status(): EngineStatus;
}

export interface ScheduledRunOptions {
  scheduledAt: Date;
  backups: JobBackups;
  /** Absolute. */
  root: string;
  source: SourceIdentity;
  keep: number;
  fullEvery: number | undefined;
  /** The job's backups, by name, and its incrementals since the last full one, as its record has them. */
  jobBackups: readonly string[];
  incrementalsSinceFull: number;
  /** Wall-clock time (the job's clock). */
  now(): Date;
  /** True once the proxy shuts down: a backup not yet started is then not started. */
  closing(): boolean;
  /** Told as soon as the backup is under way. */
  onStarted(backupId: string, destination: string): void;
  log: Logger;
}

export type ScheduledRunResult =
  | { readonly result: 'ok'; readonly run: JobRun; readonly type: 'full' | 'incremental'; readonly kept: readonly string[] }
  | { readonly result: 'failed' | 'skipped'; readonly run: JobRun };

interface RunFacts {
  scheduledAt: Date;
  startedAt?: Date;
  destination?: string | undefined;
  type?: 'full' | 'incremental';
  base?: string | undefined;
  backupId?: string;
}

const NO_OVERLAP = 'scheduled backups never overlap another backup';

/** Takes the run; undefined when the proxy began to shut down before its backup started. */
export async function takeScheduledBackup(options: ScheduledRunOptions): Promise<ScheduledRunResult | undefined> {
  const { backups, log, root, scheduledAt } = options;
  const busy = backups.status().running;
  if (busy !== undefined) return skipped(options, `backup ${busy.backupId} into ${busy.destination} was running, and ${NO_OVERLAP}`);
  const startedAt = options.now();
  let facts: RunFacts = { scheduledAt, startedAt, type: 'full' };
  let started: StartedBackup;
  try {
    const newest = await newestGoodBackup(root, options.source);
    const { fullEvery } = options;
    if (newest !== undefined && (fullEvery === undefined || options.incrementalsSinceFull + 1 < fullEvery)) facts = { ...facts, type: 'incremental', base: newest.path };
    facts.destination = await freeDestination(root, scheduledAt);
    if (options.closing()) return undefined;
    log.info({ scheduledAt, destination: facts.destination, type: facts.type, incrementalBase: facts.base }, 'scheduled backup started');
    started = await backups.start({ destination: facts.destination, ...(facts.base === undefined ? {} : { incrementalBase: facts.base }) });
  } catch (err) {
    // A client's backupStart that came in between our look and our start.
    if (err instanceof CommandError && err.code === ErrorCodes.ConflictingOperationInProgress) return skipped(options, `another backup was running (${err.message}), and ${NO_OVERLAP}`);
    const error = err instanceof CommandError ? err : new CommandError(ErrorCodes.OperationFailed, `scheduled backup into ${root}: ${(err as Error).message}`);
    return failed(options, facts, { errmsg: error.message, code: error.code, codeName: error.codeName });
  }
  const destination = facts.destination;
  facts.backupId = started.backupId;
  options.onStarted(started.backupId, destination);
  const outcome = await started.done;
  if (outcome.error !== undefined) return failed(options, facts, outcome.error);
  const name = path.basename(destination);
  const retention: RetentionResult = await applyRetention(root, [...options.jobBackups, name], options.keep).catch((err: unknown) => ({
    kept: [...options.jobBackups, name],
    removed: [],
    warnings: [`retention could not read ${root}: ${(err as Error).message}; it is tried again after the next backup`],
  }));
  for (const warning of retention.warnings) log.warn({ root }, warning);
  log.info({ scheduledAt, backupId: started.backupId, destination, type: facts.type, incrementalBase: facts.base, removed: retention.removed }, 'scheduled backup finished');
  return {
    result: 'ok',
    type: facts.type ?? 'full',
    kept: retention.kept,
    run: runRecord(facts, options.now(), { result: 'ok', removed: retention.removed, warnings: [...outcome.warnings, ...retention.warnings] }),
  };
}

function skipped(options: ScheduledRunOptions, why: string): ScheduledRunResult {
  const errmsg = `scheduled backup skipped: ${why}`;
  options.log.warn({ scheduledAt: options.scheduledAt }, errmsg);
  return {
    result: 'skipped',
    run: runRecord({ scheduledAt: options.scheduledAt }, options.now(), { result: 'skipped', errmsg, code: ErrorCodes.ConflictingOperationInProgress, codeName: 'ConflictingOperationInProgress' }),
  };
}

/** Removes what the backup left (removeFailedBackup: never a directory with a manifest). */
async function failed(options: ScheduledRunOptions, facts: RunFacts, error: { errmsg: string; code: number; codeName: string }): Promise<ScheduledRunResult> {
  options.log.error({ ...facts, code: error.code, errmsg: error.errmsg }, 'scheduled backup failed; the job waits for its next run time');
  const warnings: string[] = [];
  const { destination } = facts;
  if (destination !== undefined) {
    await removeFailedBackup(destination).catch((err: unknown) => {
      warnings.push(`the failed backup's directory ${destination} could not be removed: ${(err as Error).message}`);
    });
  }
  return { result: 'failed', run: runRecord(facts, options.now(), { result: 'failed', errmsg: error.errmsg, code: error.code, codeName: error.codeName, warnings }) };
}

function runRecord(facts: RunFacts, finishedAt: Date, result: Pick<JobRun, 'result'> & Partial<JobRun>): JobRun {
  return {
    scheduledAt: facts.scheduledAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    removed: [],
    warnings: [],
    ...(facts.startedAt === undefined ? {} : { startedAt: facts.startedAt.toISOString() }),
    ...(facts.backupId === undefined ? {} : { backupId: facts.backupId }),
    ...(facts.destination === undefined ? {} : { destination: facts.destination, type: facts.type }),
    ...(facts.base === undefined ? {} : { incrementalBase: facts.base }),
    ...result,
  };
}
