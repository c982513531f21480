/**
 * The flags `hotbackup verify` and `hotbackup restore` share: how fast they may read
 * (`--rate`, in backupThrottle's units) and with how many threads, and Ctrl-C, which
 * stops their copy threads cleanly rather than killing them mid-file.
 */
import { parseThrottle } from '../backup/units.js';
import { DEFAULT_CONCURRENCY } from '../backup/copier.js';
import { DEFAULT_S3_CONCURRENCY } from '../s3/s3_pool.js';

/** A usage error: printed on one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const JOB_FLAGS_HELP = `  --rate RATE       read at most RATE bytes per second: a number, or with a unit,
                    binary as backupThrottle's (50MB = 50 MiB/s)           [unlimited]
  --concurrency N   threads that read at once; for s3://, objects downloaded
                    at once                              [${DEFAULT_CONCURRENCY}; ${DEFAULT_S3_CONCURRENCY} for s3://]`;

export const JOB_FLAG_OPTIONS = {
  rate: { type: 'string' },
  concurrency: { type: 'string' },
} as const;

export function parseRate(value: string | undefined): number {
  if (value === undefined) return 0;
  try {
    return parseThrottle(value);
  } catch {
    throw new UsageError(`--rate must be a number of bytes per second, or one with a unit such as 50MB; got '${value}'`);
  }
}

/** The --concurrency given, or undefined for the default of what is read (a directory's threads, S3's downloads). */
export function parseConcurrency(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency must be a whole number from 1 to 64; got '${value}'`);
  return n;
}

/** Exit code of a job stopped by SIGINT or SIGTERM: 128 + the signal's number, as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** Aborts on the first SIGINT or SIGTERM, so the job stops its threads and says so; call the result to stop listening. */
export function abortOnSignal(controller: AbortController): () => void {
  const onSignal = (signal: NodeJS.Signals) => controller.abort(new Error(`interrupted by ${signal}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
