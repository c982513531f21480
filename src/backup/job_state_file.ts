/**
 * The scheduled job's record, `<stateDir>/job.json` (work_dirs.ts): what must survive a
 * restart of the proxy. Its state (Active, Stopped, Inactive: an operator's decision,
 * which a restart must not undo), the backups it took (the ones its retention and its
 * deactivation may delete, and no others), how many incrementals since its last full
 * backup (for --full-every), and its last run and run counts (for backupStatus).
 *
 * The schedule, root and retention come from the command line at each start; the record
 * belongs to one backup root: started with another root, the proxy begins a new job.
 *
 * As the run state file (run_state_file.ts): written durably (durable.ts), validated on
 * read with a versioned schema, and a file that does not pass is never trusted: it is
 * renamed aside (job.json.corrupt-<time>) and reported.
 */
import path from 'node:path';
import { moveAsideCorrupt, parseVersionedRecord, readTextIfPresent, type RecordKind } from './versioned_record.js';
import { z } from 'zod';
import { writeFileDurably } from './durable.js';
import { describeIssues } from './manifest.js';
import { JOB_FILE_NAME } from './work_dirs.js';

export const JOB_FORMAT = 'mongo-hotbackup-proxy-job';
/** Bump on any change an older reader would misread; readers refuse other versions. */
export const JOB_VERSION = 1;

/** Ops Manager's backup job states: what each keeps and takes is in backup_job.ts. */
export const JOB_STATES = ['Active', 'Stopped', 'Inactive'] as const;
export type JobState = (typeof JOB_STATES)[number];

const isoTime = z.iso.datetime({ offset: true });
const count = z.int().nonnegative();
/** A directory directly under the root: no separators, nothing hidden. */
const backupName = z.string().regex(/^[^/\\.][^/\\]*$/, 'must be a directory name under the root');

const JobRunSchema = z.object({
  /** When the schedule said to run. */
  scheduledAt: isoTime,
  result: z.enum(['ok', 'failed', 'skipped']),
  startedAt: isoTime.optional(),
  finishedAt: isoTime,
  backupId: z.uuid().optional(),
  /** The backup's directory (absolute). */
  destination: z.string().optional(),
  type: z.enum(['full', 'incremental']).optional(),
  /** The directory of the base of an incremental one. */
  incrementalBase: z.string().optional(),
  /** Backups the retention after it deleted, by name. */
  removed: z.array(z.string()).default([]),
  /** Why it failed or was skipped, mongod-style. */
  errmsg: z.string().optional(),
  code: z.int().optional(),
  codeName: z.string().optional(),
  /** What went wrong without failing it (a retention that could not delete, say). */
  warnings: z.array(z.string()).default([]),
});
export type JobRun = z.infer<typeof JobRunSchema>;

const JobRecordSchema = z.object({
  format: z.literal(JOB_FORMAT),
  version: z.literal(JOB_VERSION),
  root: z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path'),
  state: z.enum(JOB_STATES),
  changedAt: isoTime,
  /** The job's complete backups under the root, by name, oldest first. Inactive with some left: their deletion was cut short. */
  backups: z.array(backupName),
  /** Incremental backups since the last full one: with --full-every K, the K-th backup is full. */
  incrementalsSinceFull: count,
  runs: z.object({ ok: count, failed: count, skipped: count }),
  last: JobRunSchema.optional(),
});
export type JobRecord = z.infer<typeof JobRecordSchema>;

export type JobFileRead =
  | { kind: 'absent' }
  | { kind: 'valid'; record: JobRecord }
  /** Renamed to `movedTo`, never trusted. */
  | { kind: 'invalid'; reason: string; movedTo: string };

export function jobFilePath(stateDir: string): string {
  return path.join(stateDir, JOB_FILE_NAME);
}

/** A new job's record: Active, no backups, nothing run. */
export function newJobRecord(root: string, now: Date): JobRecord {
  return {
    format: JOB_FORMAT,
    version: JOB_VERSION,
    root,
    state: 'Active',
    changedAt: now.toISOString(),
    backups: [],
    incrementalsSinceFull: 0,
    runs: { ok: 0, failed: 0, skipped: 0 },
  };
}

const JOB_RECORD: RecordKind<JobRecord> = { format: JOB_FORMAT, version: JOB_VERSION, schema: JobRecordSchema, what: 'job file' };

/**
 * Reads and validates the record. One that does not pass is renamed to
 * `<file>.corrupt-<time>` (durably) and reported as invalid. Throws only when the file
 * exists but cannot be read at all (EACCES, EIO): then the proxy does not start.
 */
export async function readJobFile(file: string, now: Date): Promise<JobFileRead> {
  const text = await readTextIfPresent(file);
  if (text === undefined) return { kind: 'absent' };
  const parsed = parseVersionedRecord(text, JOB_RECORD);
  if (parsed.value !== undefined) return { kind: 'valid', record: parsed.value };
  return { kind: 'invalid', reason: parsed.why, movedTo: await moveAsideCorrupt(file, now) };
}


/** Validates `record` and writes it durably; refuses to write an invalid one. */
export async function writeJobFile(file: string, record: JobRecord): Promise<void> {
  const checked = JobRecordSchema.safeParse(record);
  if (!checked.success) throw new Error(`refusing to write an invalid job file to ${file}: ${describeIssues(checked.error)}`);
  await writeFileDurably(file, `${JSON.stringify(checked.data, null, 2)}\n`);
}
