/**
 * Retrying an S3 cleanup (aborting a failed backup's multipart uploads, rewriting its
 * marker) in the background while the server cannot be reached: exponential backoff,
 * capped, until it succeeds or `signal` aborts (the proxy closes). Each attempt is
 * already the SDK's own retries of each request; this is the wait between attempts,
 * which may be minutes while a server is down. Injectable for tests (a small backoff).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Backoff {
  /** The first wait, doubled after each failure up to `maxMs`. */
  readonly firstMs: number;
  readonly maxMs: number;
}

export const DEFAULT_CLEANUP_BACKOFF: Backoff = Object.freeze({ firstMs: 1000, maxMs: 60_000 });

export type RetryOutcome<T> = { state: 'done'; value: T } | { state: 'stopped' };

/** Waits a backoff, then calls `attempt`, until it resolves or `signal` aborts. Never rejects. */
export async function retryInBackground<T>(
  attempt: () => Promise<T>,
  options: { backoff: Backoff; signal: AbortSignal; onRetry?: (err: unknown, inMs: number) => void },
): Promise<RetryOutcome<T>> {
  let wait = options.backoff.firstMs;
  for (;;) {
    const slept = await sleep(wait, true, { signal: options.signal }).catch(() => false);
    if (!slept) return { state: 'stopped' };
    try {
      return { state: 'done', value: await attempt() };
    } catch (err) {
      if (options.signal.aborted) return { state: 'stopped' };
      wait = Math.min(wait * 2, options.backoff.maxMs);
      options.onRetry?.(err, wait);
    }
  }
}

/**
 * For tests that stop and restart an S3 server: HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS=N
 * waits N ms between attempts, always, instead of the default's growing minutes. Read
 * from the environment only, as the fail points are (src/failpoints.ts).
 */
export function cleanupBackoffFromEnvironment(env: NodeJS.ProcessEnv): Backoff | undefined {
  const value = env['HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS'];
  if (value === undefined || value === '') return undefined;
  const ms = Number(value);
  if (!Number.isSafeInteger(ms) || ms < 1) throw new TypeError(`HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS must be a positive whole number of milliseconds, got '${value}'`);
  return Object.freeze({ firstMs: ms, maxMs: ms });
}
