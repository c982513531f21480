/**
 * Ops Manager's "applies oplog" column for the proxy's scheduled job (serve --schedule
 * --stream-oplog): while the job is Active, the upstream's oplog streams into
 * `<backup root>/oplog/` (oplog_streamer.ts); when the job is stopped or deactivated, or
 * the proxy shuts down, the stream stops after its current write.
 *
 * | job state | keeps old snapshots | takes new snapshots | applies oplog |
 * |-----------|---------------------|---------------------|---------------|
 * | Active    | yes                 | yes                 | yes           |
 * | Stopped   | yes                 | no                  | no            |
 * | Inactive  | no                  | no                  | no            |
 *
 * A wrapper around the job's command-facing service (restic stacks its cross-cutting
 * concerns the same way): the job itself knows nothing of the oplog. Each start resumes
 * after the directory's last entry, with the streamer's check that nothing in between
 * was lost; a stream that cannot go on (the oplog rolled over while the job was
 * stopped) is logged as an error and stays stopped until the job is started again.
 */
import type { Logger } from '../log.js';
import type { BackupJobService } from '../commands/backup_job_command.js';
import type { JobAction, JobChange, JobStatus } from '../backup/backup_job.js';
import type { ErrorJudge, OplogSource } from './oplog_source.js';
import { defaultRetryDelay, sleep, streamOplog } from './oplog_streamer.js';
import { formatMongobackup } from './oplog_ts.js';
import { StreamProgress } from './stream_progress.js';

export interface JobOplogStreamOptions {
  /** `<backup root>/oplog`. */
  readonly dir: string;
  /** A new connection to the upstream, for each start. */
  readonly connect: () => Promise<OplogSource>;
  readonly judge: ErrorJudge;
  readonly rotateBytes: number;
  readonly log: Logger;
  readonly retryDelayMs?: (attempt: number) => number;
}

interface Run {
  readonly controller: AbortController;
  readonly done: Promise<void>;
  readonly progress: StreamProgress;
}

export class JobOplogStream {
  readonly #options: JobOplogStreamOptions;
  #run: Run | undefined;

  constructor(options: JobOplogStreamOptions) {
    this.#options = options;
  }

  /** Whether a stream runs (or waits to connect). */
  get running(): boolean {
    return this.#run !== undefined;
  }

  /** The running stream's counters, if one runs. */
  progress(): StreamProgress | undefined {
    return this.#run?.progress;
  }

  /** Starts streaming in the background, unless it runs already. */
  start(): void {
    if (this.#run !== undefined) return;
    const controller = new AbortController();
    const progress = new StreamProgress();
    const done = this.#stream(controller.signal, progress).finally(() => {
      if (this.#run?.controller === controller) this.#run = undefined;
    });
    this.#run = { controller, done, progress };
  }

  /** Stops the stream after its current write; resolves once its files are closed. */
  async stop(): Promise<void> {
    const run = this.#run;
    this.#run = undefined;
    run?.controller.abort();
    await run?.done;
  }

  async #stream(signal: AbortSignal, progress: StreamProgress): Promise<void> {
    const { log } = this.#options;
    const retryDelay = this.#options.retryDelayMs ?? defaultRetryDelay;
    let source: OplogSource | undefined;
    // The upstream may be down when the job becomes Active: keep trying while it is.
    for (let attempt = 1; source === undefined; attempt++) {
      try {
        source = await this.#options.connect();
      } catch (err) {
        if (signal.aborted) return;
        log.warn({ err: String(err), attempt }, 'the job cannot reach the upstream to stream its oplog; retrying');
        await sleep(retryDelay(attempt), signal);
        if (signal.aborted) return;
      }
    }
    try {
      log.info({ dir: this.#options.dir }, "the job is Active: streaming the oplog");
      const result = await streamOplog({ ...this.#options, source, signal, progress, log, retryDelayMs: retryDelay });
      log.info({ dir: this.#options.dir, backedUpTo: result.backedUpTo === undefined ? null : formatMongobackup(result.backedUpTo), entries: result.entries }, 'the job no longer streams the oplog');
    } catch (err) {
      log.error({ err: String(err), dir: this.#options.dir }, "the job's oplog stream stopped: it starts again (and resumes, if the oplog still holds its last entry) when the job is started again");
    } finally {
      await source.close().catch(() => undefined);
    }
  }
}

/** The job's service as the backupJob command sees it, with the oplog stream following its state. */
export class OplogStreamingJob implements BackupJobService {
  readonly #job: BackupJobService;
  readonly #stream: JobOplogStream;

  constructor(job: BackupJobService, stream: JobOplogStream) {
    this.#job = job;
    this.#stream = stream;
    if (job.status().state === 'Active') stream.start();
  }

  status(): JobStatus {
    return this.#job.status();
  }

  async change(action: JobAction, options: { confirm: boolean }): Promise<JobChange> {
    const change = await this.#job.change(action, options);
    if (change.state === 'Active') this.#stream.start();
    else await this.#stream.stop();
    return change;
  }

  /** Stops the stream (at the proxy's shutdown). */
  close(): Promise<void> {
    return this.#stream.stop();
  }
}
