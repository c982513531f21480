/**
 * How many per-file filesystem calls (stat, lstat, realpath) the main thread keeps in
 * flight when it walks a list of files.
 *
 * Not all of them at once: a `Promise.all` over every file of a 2,000-file dbpath keeps
 * 2,000 requests, their Stats objects and their closures alive together. They outlive
 * V8's young-generation collections, get promoted, and grow the old generation by tens
 * of MiB per backup, more as the database has more files (docs/performance.md, section
 * 6). Node runs these calls on libuv's pool of 4 threads, so a window of 16 is as fast
 * as an unbounded one, and memory no longer grows with the number of files.
 */
import pMap from 'p-map';

export const FILE_CALL_CONCURRENCY = 16;

/** `map` over `items`, FILE_CALL_CONCURRENCY at a time, results in the order of `items`. */
export function mapFiles<T, R>(items: Iterable<T>, map: (item: T, index: number) => Promise<R>): Promise<R[]> {
  return pMap(items, map, { concurrency: FILE_CALL_CONCURRENCY });
}
