/**
 * Several objects at once: what copy_pool.ts's threads are to files, for downloads,
 * which wait on the network rather than on a CPU and so need no thread. Items go out
 * largest first, one per slot, so one big object started last cannot leave the others
 * idle at the end. The first error (or the caller's abort) aborts every other item's
 * signal; every item has settled before runConcurrently does, and it then rejects with
 * that first error (or the signal's reason). With `keepGoing` (verify, which reports
 * every object), an item's own error is its result instead.
 */
import { setMaxListeners } from 'node:events';

/**
 * Objects downloaded at once unless told otherwise. Measured against radosgw on the same
 * 2-core machine, `hotbackup verify` of a 155 MB backup (a 100 MB journal file, a 50 MB
 * collection, ten small files), CLI start included: 74-77 MiB/s one object at a time,
 * 95-106 MiB/s with 2, 4 or 8. Ranged GETs splitting one object across connections
 * bought nothing there (one warm stream: 320-400 MiB/s, no less than 2-8 ranges), so
 * each object is one GetObject, hashed in order.
 */
export const DEFAULT_S3_CONCURRENCY = 4;

export type ItemResult<T> = { value: T } | { error: Error };

export async function runConcurrently<I extends { size: number }, T>(
  items: readonly I[],
  concurrency: number,
  work: (item: I, signal: AbortSignal) => Promise<T>,
  options: { signal?: AbortSignal | undefined; keepGoing?: boolean } = {},
): Promise<Array<ItemResult<T>>> {
  const { signal } = options;
  signal?.throwIfAborted();
  const stop = new AbortController();
  // Each object in flight listens on it several times (the SDK's request, its body's
  // stream, a throttle wait): four objects pass Node's default of 10 and print a
  // MaxListenersExceededWarning on the CLI's stderr, which is no leak.
  setMaxListeners(4 * Math.max(1, concurrency) + 10, stop.signal);
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    if (failure !== undefined) return;
    failure = { error };
    stop.abort(error);
  };
  const onAbort = () => fail(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const order = items.map((item, index) => ({ item, index })).sort((a, b) => b.item.size - a.item.size);
  const results: Array<ItemResult<T>> = new Array(items.length);
  let next = 0;
  const slot = async (): Promise<void> => {
    while (failure === undefined) {
      const job = order[next++];
      if (job === undefined) return;
      try {
        results[job.index] = { value: await work(job.item, stop.signal) };
      } catch (err) {
        if (failure !== undefined) return;
        if (options.keepGoing !== true) return fail(err);
        results[job.index] = { error: err instanceof Error ? err : new Error(String(err)) };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, slot));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure.error;
  return results;
}
