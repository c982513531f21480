/**
 * Waiting for observable state instead of sleeping for a guessed time: tests poll
 * until what a user would see holds. No deadline here: node:test's per-test timeout
 * is the hang detector, so a busy machine only makes a test slower, never wrong.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns something other than undefined or false, and returns
 * that: a value found (`until(() => logs.find(...))`) or a condition that holds
 * (`until(() => raw.frames.length === 3)`).
 */
export async function until<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, intervalMs = 50): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await sleep(intervalMs);
  }
}

/** Whether a process exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Resolves once process `pid` has exited. */
export async function untilGone(pid: number): Promise<void> {
  await until(() => (processAlive(pid) ? undefined : true));
}

/** Anything that runs an admin command: a driver `Db`, as `client.db('admin')`. */
interface AdminDb {
  command(cmd: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Polls backupStatus until no backup is in progress, and returns that last status. */
export async function untilBackupEnds(admin: AdminDb): Promise<Record<string, unknown>> {
  return until(async () => {
    const status = await admin.command({ backupStatus: 1 });
    return status['inProgress'] === true ? undefined : status;
  });
}

/** Polls backupStatus until the copy is under way (phase copying, some bytes copied), and returns that status. */
export async function untilCopying(admin: AdminDb): Promise<Record<string, unknown>> {
  return until(async () => {
    const status = await admin.command({ backupStatus: 1 });
    return status['phase'] === 'copying' && Number(status['bytesCopied']) > 0 && status;
  });
}

/** A task left running in the background (a writer, say) while the test polls its progress. */
export interface BackgroundTask {
  /** Settles as the task does. */
  readonly done: Promise<void>;
  /**
   * Polls `probe` as until() does, but fails once the task has ended with the condition
   * still unmet: with the task's error if it failed. A writer that died then fails the
   * test at once, instead of leaving it to wait for progress that never comes.
   */
  until<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, intervalMs?: number): Promise<T>;
}

export function inBackground(task: () => Promise<void>): BackgroundTask {
  let ended: { failed: false } | { failed: true; err: unknown } | undefined;
  const done = Promise.resolve().then(task);
  done.then(
    () => (ended = { failed: false }),
    (err: unknown) => (ended = { failed: true, err }),
  );
  return {
    done,
    until: (probe, intervalMs) =>
      until(async () => {
        const value = await probe();
        if (value !== undefined && value !== false) return value;
        if (ended?.failed === true) throw new Error(`the background task failed while the test waited on it: ${String(ended.err)}`, { cause: ended.err });
        if (ended !== undefined) throw new Error('the background task ended while the test waited on it');
        return undefined;
      }, intervalMs),
  };
}
