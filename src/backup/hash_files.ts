/**
 * Hashes files where they are, on the copy threads (copy_pool.ts) in their hash-only
 * mode: what verify needs to recompute a backup's checksums without holding up the
 * event loop that called it (the proxy's forwarding loop, for backupVerify). Same
 * threads, buffer, throttle and checksum as a copy, and nothing written.
 *
 * Unlike a copy, one bad file does not stop the others: verify reports every file, so
 * each file's own error (unreadable, shorter than listed) is that file's result. An
 * abort, or a limiter or thread that fails, still stops them all.
 */
import { noProgress, type CopyProgress } from './progress.js';
import { poolSettings, runPool, type Limiter, type PoolSettingsInput } from './copy_pool.js';
import type { HashedFile, SourceFile } from './copy_types.js';

export interface HashOptions extends PoolSettingsInput {
  /** The throttle every read draws from; `new TokenBucket(0)` is unlimited. */
  limiter: Limiter;
  /** Told about every file and chunk, as by a copy. Default: nothing is told. */
  progress?: CopyProgress;
  /** Aborting stops every thread; hashFiles then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** One file's result: its hash, or why it could not be read. */
export type HashResult = { hashed: HashedFile } | { error: Error };

/** Hashes the first `size` bytes of each file's `path`; the results are in the order of `files`. */
export async function hashFiles(files: readonly SourceFile[], options: HashOptions): Promise<HashResult[]> {
  const outcomes = await runPool({
    files,
    job: () => ({ type: 'hash' }),
    limiter: options.limiter,
    ...poolSettings(options),
    fileMode: 0o600,
    progress: options.progress ?? noProgress,
    signal: options.signal,
    keepGoing: true,
  });
  return outcomes.map((outcome, index) => {
    if ('hashed' in outcome) return { hashed: outcome.hashed };
    if ('failed' in outcome) return { error: outcome.failed };
    throw new Error(`hashing ${files[index]?.path} ended without a hash`);
  });
}
