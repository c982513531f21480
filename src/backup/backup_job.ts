/**
 * A scheduled backup job, as Ops Manager defines one: backups taken on a schedule
 * (schedule_spec.ts) into `<root>/<time>`, each incremental against the newest good
 * backup under the root and every K-th one full, with the job's own backups beyond the
 * newest N deleted after each success; and a state that says what the job keeps and takes:
 *
 * | state    | keeps its backups | takes new ones |
 * |----------|-------------------|----------------|
 * | Active   | yes               | yes            |
 * | Stopped  | yes               | no             |
 * | Inactive | no                | no             |
 *
 * Deactivating deletes the job's backups, so it is done only when the request confirms it.
 * The state, the job's backups and its last run are kept in job.json (job_state_file.ts)
 * and survive a restart of the proxy.
 *
 * Runs never overlap another backup: the proxy takes one at a time, and a run that falls
 * due while a backup (a client's backupStart) is running is skipped, and says so. A run
 * that fails is recorded and the job waits for its next time: never a retry at once. The
 * next time is worked out when a run ends, so a run longer than the period moves the next
 * one on rather than setting off another straight after it.
 *
 * Time comes from an injected clock, so that the tests move it by hand.
 */
import { CommandError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import type { SourceIdentity } from './incremental.js';
import type { Schedule } from './schedule_spec.js';
import { jobFilePath, newJobRecord, readJobFile, writeJobFile, type JobRecord, type JobRun, type JobState } from './job_state_file.js';
import { removeJobBackups } from './job_snapshots.js';
import { takeScheduledBackup, type JobBackups } from './scheduled_run.js';

/** Wall-clock time in milliseconds since the epoch, and timers: Date.now and Node's by default. */
export interface JobClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: JobClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * The longest a timer is set for: the wall clock is read again at each wake-up, so a
 * clock set forward or back, or a host that slept, is seen within an hour, and no delay
 * reaches Node's limit (2³¹−1 ms, about 24.8 days; a longer one fires after 1 ms).
 */
const MAX_TIMER_MS = 3_600_000;

export type { JobBackups };

export interface BackupJobOptions {
  schedule: Schedule;
  /** Absolute; an existing directory. */
  root: string;
  /** The job's complete backups to keep, newest first; at least 1. */
  keep: number;
  /** Every K-th backup is full; undefined: every one after the first is incremental. */
  fullEvery?: number | undefined;
  /** Where job.json lives (work_dirs.ts). */
  stateDir: string;
  backups: JobBackups;
  /** The dbpath and mongod backed up: a base must be a backup of them (incremental.ts). */
  source: SourceIdentity;
  clock?: JobClock;
  log: Logger;
}

export type JobAction = 'start' | 'stop' | 'deactivate';

/** A run as backupStatus shows it: job_state_file.ts's record with Dates. */
export type JobRunStatus = Readonly<Omit<JobRun, 'scheduledAt' | 'startedAt' | 'finishedAt' | 'removed' | 'warnings'>> & {
  readonly scheduledAt: Date;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date;
  readonly removed: readonly string[];
  readonly warnings: readonly string[];
};

export interface JobStatus {
  readonly state: JobState;
  readonly schedule: string;
  readonly root: string;
  readonly keep: number;
  readonly fullEvery: number | undefined;
  /** Undefined unless Active and idle (while a run lasts, the next time is not known yet). */
  readonly nextRunAt: Date | undefined;
  /** The job's complete backups, by name, oldest first. */
  readonly backups: readonly string[];
  readonly runs: Readonly<JobRecord['runs']>;
  /** The scheduled backup running now. */
  readonly running: { readonly scheduledAt: Date; readonly backupId: string; readonly destination: string } | undefined;
  readonly last: JobRunStatus | undefined;
}

export interface JobChange {
  readonly state: JobState;
  readonly previousState: JobState;
  readonly nextRunAt: Date | undefined;
  /** Deactivation: the backups it deleted, by name. */
  readonly removed: readonly string[];
}

export class BackupJob {
  readonly #options: BackupJobOptions;
  readonly #clock: JobClock;
  readonly #file: string;
  #record: JobRecord;
  #timer: unknown;
  #nextRunAt: Date | undefined;
  /** The run in progress, bookkeeping included; its end arms the next one. */
  #run: Promise<void> | undefined;
  #running: { scheduledAt: Date; backupId: string; destination: string } | undefined;
  /** Set, synchronously, once a change stops the job from taking new backups (stop, deactivate, close). */
  #halted = false;
  #closed = false;
  /** Record changes, one at a time, in order. */
  #queue: Promise<unknown> = Promise.resolve();
  /** backupJob commands, one at a time. */
  #commands: Promise<unknown> = Promise.resolve();

  private constructor(options: BackupJobOptions, clock: JobClock, file: string, record: JobRecord) {
    this.#options = options;
    this.#clock = clock;
    this.#file = file;
    this.#record = record;
  }

  /** Reads (or creates) the job's record, finishes a deactivation a restart cut short, and arms the first run if Active. */
  static async open(options: BackupJobOptions): Promise<BackupJob> {
    const clock = options.clock ?? systemClock;
    const { log, root } = options;
    const file = jobFilePath(options.stateDir);
    const now = new Date(clock.now());
    const read = await readJobFile(file, now);
    let record: JobRecord;
    if (read.kind === 'valid' && read.record.root === root) {
      record = read.record;
    } else if (read.kind === 'valid') {
      log.warn(
        { jobFile: file, previousRoot: read.record.root, previousState: read.record.state, previousBackups: read.record.backups, root },
        `a new scheduled job for ${root}: the job for ${read.record.root} (${read.record.state}) is forgotten, and its backups stay where they are`,
      );
      record = newJobRecord(root, now);
    } else if (read.kind === 'invalid') {
      log.error(
        { jobFile: file, movedTo: read.movedTo, reason: read.reason },
        "the scheduled job's record is not valid, so it was moved aside and not trusted; the job starts Stopped, since it may have been stopped: " +
          "check the backups under the root, then send {backupJob: 'start'}",
      );
      record = { ...newJobRecord(root, now), state: 'Stopped' };
    } else {
      record = newJobRecord(root, now);
    }
    if (read.kind !== 'valid' || read.record !== record) await writeJobFile(file, record);
    const job = new BackupJob(options, clock, file, record);
    if (record.state === 'Inactive' && record.backups.length > 0) {
      log.warn({ backups: record.backups }, 'the job was deactivated but not all its backups were deleted; deleting them now');
      await job.#deleteBackups().catch((err: unknown) => log.error({ err: String(err) }, 'could not delete the deactivated job\'s backups'));
    }
    job.#halted = record.state !== 'Active';
    job.#arm(undefined);
    log.info({ state: record.state, schedule: options.schedule.spec, root, keep: options.keep, fullEvery: options.fullEvery, nextRunAt: job.#nextRunAt }, 'scheduled backup job ready');
    return job;
  }

  status(): JobStatus {
    const record = this.#record;
    const running = this.#running;
    return Object.freeze({
      state: record.state,
      schedule: this.#options.schedule.spec,
      root: this.#options.root,
      keep: this.#options.keep,
      fullEvery: this.#options.fullEvery,
      nextRunAt: this.#nextRunAt === undefined ? undefined : new Date(this.#nextRunAt),
      backups: Object.freeze([...record.backups]),
      runs: Object.freeze({ ...record.runs }),
      running: running === undefined ? undefined : Object.freeze({ ...running, scheduledAt: new Date(running.scheduledAt) }),
      last: record.last === undefined ? undefined : runStatus(record.last),
    });
  }

  /** `{backupJob: action}`: resolves once the new state is on disk (and, for deactivate, the backups deleted). */
  change(action: JobAction, options: { confirm: boolean }): Promise<JobChange> {
    return this.#serially(async () => {
      const previousState = this.#record.state;
      let removed: string[] = [];
      if (action === 'start') {
        await this.#setState('Active');
        this.#halted = false;
        // A run still going arms the next one as it ends.
        if (this.#run === undefined) this.#arm(undefined);
      } else if (action === 'stop') {
        if (previousState === 'Inactive') {
          throw new CommandError(ErrorCodes.IllegalOperation, "the backup job is Inactive: it keeps no backups and takes none, so there is nothing to stop; {backupJob: 'start'} makes it Active");
        }
        await this.#setState('Stopped');
        // A run going on now finishes (and its retention runs): stopping takes no new ones.
        this.#halt();
      } else {
        removed = await this.#deactivate(options.confirm);
      }
      const change: JobChange = { state: this.#record.state, previousState, nextRunAt: this.#nextRunAt, removed };
      this.#options.log.info({ action, from: previousState, to: change.state, removed, nextRunAt: change.nextRunAt }, 'backup job state changed');
      return change;
    });
  }

  /** Resolves once no scheduled run is in progress and the record is written. */
  async settled(): Promise<void> {
    while (this.#run !== undefined) await this.#run;
    await this.#queue;
  }

  /**
   * Takes no new run and waits for the one in progress to be recorded. The caller closes
   * the engine meanwhile, which interrupts that run's backup.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#halt();
    await this.settled();
  }

  /** Undoes #halt after a change that could not be written: an Active job goes on. */
  #resume(): void {
    if (this.#closed || this.#record.state !== 'Active') return;
    this.#halted = false;
    if (this.#run === undefined) this.#arm(undefined);
  }

  #halt(): void {
    this.#halted = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextRunAt = undefined;
  }

  /** Sets the next run time (after `anchor`, the previous one's) and its timer, if the job takes backups. */
  #arm(anchor: Date | undefined): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextRunAt = undefined;
    if (this.#halted || this.#closed || this.#record.state !== 'Active') return;
    const now = new Date(this.#clock.now());
    const next = this.#options.schedule.firstAfter(now, anchor);
    if (next === undefined) {
      this.#options.log.warn({ schedule: this.#options.schedule.spec }, 'the schedule has no further run time: the job takes no more backups');
      return;
    }
    const following = anchor === undefined ? undefined : this.#options.schedule.firstAfter(anchor, anchor);
    if (following !== undefined && following.getTime() <= now.getTime()) {
      this.#options.log.info({ previousRunAt: anchor, nextRunAt: next }, 'run times passed while the previous scheduled backup ran; the next is the first one ahead');
    }
    this.#nextRunAt = next;
    this.#wake();
  }

  #wake(): void {
    const due = this.#nextRunAt;
    if (due === undefined || this.#halted) return;
    const wait = due.getTime() - this.#clock.now();
    if (wait > 0) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#wake();
      }, Math.min(wait, MAX_TIMER_MS));
      return;
    }
    this.#nextRunAt = undefined;
    const run = this.#runOnce(due)
      .catch((err: unknown) => this.#options.log.error({ err: String(err), scheduledAt: due }, 'scheduled backup: unexpected error'))
      .finally(() => {
        this.#run = undefined;
        this.#running = undefined;
        this.#arm(due);
      });
    this.#run = run;
  }

  async #runOnce(scheduledAt: Date): Promise<void> {
    const options = this.#options;
    const taken = await takeScheduledBackup({
      scheduledAt,
      backups: options.backups,
      root: options.root,
      source: options.source,
      keep: options.keep,
      fullEvery: options.fullEvery,
      jobBackups: this.#record.backups,
      incrementalsSinceFull: this.#record.incrementalsSinceFull,
      now: () => new Date(this.#clock.now()),
      closing: () => this.#closed,
      onStarted: (backupId, destination) => (this.#running = { scheduledAt, backupId, destination }),
      log: options.log,
    });
    if (taken === undefined) return;
    await this.#commit((record) => {
      const runs = { ...record.runs, [taken.result]: record.runs[taken.result] + 1 };
      if (taken.result !== 'ok') return { ...record, runs, last: taken.run };
      // Inactive meanwhile cannot be (deactivate waits for no run); Stopped keeps what it has.
      return { ...record, runs, last: taken.run, backups: [...taken.kept], incrementalsSinceFull: taken.type === 'full' ? 0 : record.incrementalsSinceFull + 1 };
    });
  }

  /** Deactivation: refused without confirm, or while the job's own backup runs; then Inactive first, the deletions after. */
  async #deactivate(confirm: boolean): Promise<string[]> {
    const { root } = this.#options;
    const names = this.#record.backups;
    if (!confirm) {
      const listed = names.length === 0 ? 'none now' : names.join(', ');
      throw new CommandError(
        ErrorCodes.BadValue,
        `{backupJob: 'deactivate'} makes the job Inactive and deletes its ${names.length} backups under ${root} (${listed}). ` +
          "To do that, send {backupJob: 'deactivate', confirm: true}; to keep them and take no new ones, send {backupJob: 'stop'}",
      );
    }
    if (this.#run !== undefined) {
      const running = this.#running;
      const which = running === undefined ? 'a scheduled backup is starting' : `a scheduled backup (${running.backupId}) is running into ${running.destination}`;
      throw new CommandError(
        ErrorCodes.ConflictingOperationInProgress,
        `${which}: deactivating now would delete a backup as it is written. ` +
          "Send {backupJob: 'stop'} so that no new one starts, wait until backupStatus shows no backup in progress, then deactivate",
      );
    }
    // Before the state is written: no run may start into a root being emptied.
    this.#halt();
    try {
      await this.#setState('Inactive');
    } catch (err) {
      this.#resume();
      throw err;
    }
    return this.#deleteBackups();
  }

  /** Deletes the backups the record names; the record keeps those that could not be deleted. */
  async #deleteBackups(): Promise<string[]> {
    const { removed, failed } = await removeJobBackups(this.#options.root, this.#record.backups);
    await this.#commit((record) => ({ ...record, backups: record.backups.filter((name) => !removed.includes(name)) }), true);
    if (failed.length > 0) {
      throw new CommandError(
        ErrorCodes.OperationFailed,
        `the backup job is Inactive, but ${failed.length} of its backups could not be deleted: ${failed.map((f) => `${f.name} (${f.why})`).join('; ')}. ` +
          "Fix that, then send {backupJob: 'deactivate', confirm: true} again",
      );
    }
    return removed;
  }

  async #setState(state: JobState): Promise<void> {
    if (this.#record.state === state) return;
    await this.#commit((record) => ({ ...record, state, changedAt: new Date(this.#clock.now()).toISOString() }), true);
  }

  /**
   * Applies `change` to the record and writes it. A state change (`mustPersist`) that
   * cannot be written fails, and nothing changes; a run's result that cannot be written is
   * kept in memory and logged: the backup is there either way.
   */
  #commit(change: (record: JobRecord) => JobRecord, mustPersist = false): Promise<void> {
    const op = async () => {
      const next = change(structuredClone(this.#record));
      try {
        await writeJobFile(this.#file, next);
      } catch (err) {
        if (mustPersist) throw err;
        this.#options.log.error({ err: String(err), jobFile: this.#file }, "could not write the scheduled job's record; its last run is kept in memory only");
      }
      this.#record = next;
    };
    const result = this.#queue.then(op);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Commands one at a time: the second waits for the first's record to be written. */
  #serially<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#commands.then(op);
    this.#commands = result.catch(() => undefined);
    return result;
  }
}

function runStatus(run: JobRun): JobRunStatus {
  return Object.freeze({
    ...run,
    removed: Object.freeze([...run.removed]),
    warnings: Object.freeze([...run.warnings]),
    scheduledAt: new Date(run.scheduledAt),
    startedAt: run.startedAt === undefined ? undefined : new Date(run.startedAt),
    finishedAt: new Date(run.finishedAt),
  });
}
