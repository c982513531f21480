/**
 * The cleanups of failed backups that could not finish when the backup ended (an S3
 * server that could not be reached: its unfinished multipart uploads and its marker),
 * which their target goes on retrying in the background (BackupTarget.fail). The
 * engine's status shows the last backup's (`cleanup` in backupStatus.last), and the log
 * says when each is done; close() waits for the retries to stop.
 */
import type { TargetCleanup } from './backup_target.js';
import type { BackupOutcome, CleanupStatus } from './engine_status.js';
import type { Logger } from '../log.js';

export class TargetCleanups {
  private readonly states = new Map<string, CleanupStatus>();
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly log: Logger) {}

  /** Records how the cleanup of backup `backupId` went, and follows one left to the background. */
  track(backupId: string, destination: string, cleanup: TargetCleanup): void {
    if (cleanup.state === 'done') return;
    this.states.set(backupId, Object.freeze({ state: 'pending', detail: cleanup.detail }));
    this.log.warn({ backupId, destination, cleanup: 'pending', detail: cleanup.detail }, 'backup cleanup pending: retrying in the background');
    const followed = cleanup.settled.then(
      ({ state, detail }) => {
        this.states.set(backupId, Object.freeze({ state, detail }));
        if (state === 'done') this.log.warn({ backupId, destination, cleanup: 'done', detail }, 'backup cleanup done');
        else this.log.error({ backupId, destination, cleanup: 'stopped', detail }, 'backup cleanup stopped unfinished: the proxy is closing');
      },
      (err: unknown) => this.log.error({ backupId, destination, err: String(err) }, 'backup cleanup failed'),
    );
    this.running.add(followed);
    void followed.finally(() => this.running.delete(followed));
  }

  /** `outcome` with its cleanup's state, when one was left to the background. */
  annotate(outcome: BackupOutcome): BackupOutcome {
    const cleanup = this.states.get(outcome.backupId);
    return cleanup === undefined ? outcome : Object.freeze({ ...outcome, cleanup });
  }

  /** Resolves once every background cleanup has stopped (their targets watch the engine's closing signal). */
  async close(): Promise<void> {
    await Promise.all([...this.running]);
  }
}
