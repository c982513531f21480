/**
 * `{backupJob: "stop" | "start" | "deactivate", confirm: true}` and the `job` field of
 * backupStatus: the scheduled job (src/backup/backup_job.ts) as a client sees it. Ops
 * Manager's states, by its names: Active (keeps its backups, takes new ones), Stopped
 * (keeps, takes none), Inactive (keeps none, takes none). Deactivating deletes the job's
 * backups, so it needs `confirm: true`.
 */
import { Int32 } from 'bson';
import type { Document } from '../wire/command_message.js';
import type { JobAction, JobChange, JobRunStatus, JobStatus } from '../backup/backup_job.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { checkKnownFields } from './backup_start_options.js';

/** What the command needs of the job. */
export interface BackupJobService {
  status(): JobStatus;
  change(action: JobAction, options: { confirm: boolean }): Promise<JobChange>;
}

const ACTIONS: readonly JobAction[] = ['start', 'stop', 'deactivate'];
/** A misspelt `confirm` must not read as "not confirmed" silently: unknown fields are refused, as backupStart's are. */
const OPTIONS: ReadonlySet<string> = new Set(['confirm']);

/** Parses the request and changes the job's state; throws the command's error. */
export async function runBackupJob(cmd: Document, job: BackupJobService | undefined): Promise<Document> {
  const action = cmd['backupJob'];
  if (typeof action !== 'string') throw new CommandError(ErrorCodes.TypeMismatch, "backupJob must be a string: 'start', 'stop' or 'deactivate'");
  if (!(ACTIONS as readonly string[]).includes(action)) {
    throw new CommandError(ErrorCodes.BadValue, `backupJob must be 'start', 'stop' or 'deactivate'; got '${action}'`);
  }
  checkKnownFields(cmd, OPTIONS);
  const confirm = cmd['confirm'];
  if (confirm !== undefined && typeof confirm !== 'boolean') throw new CommandError(ErrorCodes.TypeMismatch, "backupJob option 'confirm' must be a boolean");
  if (job === undefined) {
    throw new CommandError(
      ErrorCodes.IllegalOperation,
      'this proxy runs no scheduled backup job: start it with --schedule, --backup-root and --keep (hotbackup serve --help)',
    );
  }
  const change = await job.change(action as JobAction, { confirm: confirm === true });
  return {
    ok: 1,
    state: change.state,
    previousState: change.previousState,
    nextRunAt: change.nextRunAt ?? null,
    ...(action === 'deactivate' ? { removed: [...change.removed] } : {}),
  };
}

function runDocument(run: JobRunStatus): Document {
  const doc: Document = {
    scheduledAt: run.scheduledAt,
    result: run.result,
    startedAt: run.startedAt ?? null,
    finishedAt: run.finishedAt,
    backupId: run.backupId ?? null,
    destination: run.destination ?? null,
    type: run.type ?? null,
    incrementalBase: run.incrementalBase ?? null,
    removed: [...run.removed],
    warnings: [...run.warnings],
  };
  if (run.errmsg !== undefined) Object.assign(doc, { errmsg: run.errmsg, code: run.code ?? null, codeName: run.codeName ?? null });
  return doc;
}

/** backupStatus's `job`: the state, the schedule and root and retention, the next run time (null unless Active and idle), the last run. */
export function jobStatusDocument(status: JobStatus): Document {
  return {
    state: status.state,
    schedule: status.schedule,
    backupRoot: status.root,
    keep: new Int32(status.keep),
    fullEvery: status.fullEvery === undefined ? null : new Int32(status.fullEvery),
    nextRunAt: status.nextRunAt ?? null,
    backups: [...status.backups],
    runs: { ok: new Int32(status.runs.ok), failed: new Int32(status.runs.failed), skipped: new Int32(status.runs.skipped) },
    running: status.running === undefined ? null : { scheduledAt: status.running.scheduledAt, backupId: status.running.backupId, destination: status.running.destination },
    lastRun: status.last === undefined ? null : runDocument(status.last),
  };
}
