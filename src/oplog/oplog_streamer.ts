/**
 * Streams a server's oplog into a directory of numbered BSON files (mongobackup's
 * `--backup --stream -s <secs>,<inc>`), until its signal aborts, and says how far the
 * files reach: the ts a later run resumes from without losing or repeating an entry.
 *
 * Where it starts:
 * - after the directory's last entry, when it holds any (a torn tail is cut first,
 *   oplog_recovery.ts); `from`, if given, must be that entry, and is not written again;
 * - at `from` in an empty directory, that entry written first (the files then prove
 *   where they start: replay from a backup's last entry needs the files to hold it);
 * - at the newest entry now, that entry included, in an empty directory without `from`.
 *
 * Either way the oplog must still hold the entry at the resume point: a first entry
 * after it would prove nothing about the entries in between, so the stream refuses
 * (OplogGap) rather than leave a silent hole. The same check guards every reconnect after
 * a transient error (a network drop, a failover): the new cursor starts at the last
 * durable entry, which it must find again.
 *
 * A batch is written and fsynced whole before the signal is looked at again, so a stop
 * never leaves a batch half-counted; a wait for entries is abandoned at once.
 */
import type { Logger } from '../log.js';
import { makeOwnDirectory, BACKUP_DIR_MODE } from '../backup/owner_only.js';
import { fsyncDirectory } from '../backup/durable.js';
import { claimDirectory } from '../backup/state_dir_claim.js';
import path from 'node:path';
import { recoverOplogDir } from './oplog_recovery.js';
import type { ErrorJudge, OplogSource, OplogTail } from './oplog_source.js';
import { compareOplogTs, entryTs, formatOplogTs, formatMongobackup, sameOplogTs, type OplogTs } from './oplog_ts.js';
import { OplogWriter } from './oplog_writer.js';
import { NoOplog, OplogGap, StreamRefusal } from './stream_errors.js';
import { StreamProgress } from './stream_progress.js';

export interface StreamOptions {
  readonly source: OplogSource;
  readonly judge: ErrorJudge;
  /** The output directory; created (one level, mode 0700) when absent. */
  readonly dir: string;
  readonly rotateBytes: number;
  /** Resume after this entry (exclusive); it must still be in the oplog. */
  readonly from?: OplogTs;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly progress?: StreamProgress;
  /** The wait before reconnect attempt `attempt` (1, 2, …); default 100 ms doubling up to 5 s. */
  readonly retryDelayMs?: (attempt: number) => number;
}

export interface StreamResult {
  /** The last entry durable in the directory, which `--from` resumes after; undefined when it holds none. */
  readonly backedUpTo: OplogTs | undefined;
  readonly entries: number;
  readonly bytes: number;
}

/** 100 ms doubling up to 5 s: a server restarting is found again within seconds, and a long outage costs a try every 5 s. */
export const defaultRetryDelay = (attempt: number): number => Math.min(5000, 100 * 2 ** (attempt - 1));

type Raced<T> = { aborted: false; value: T } | { aborted: true };

/** `promise`, or `{aborted: true}` as soon as `signal` aborts (the promise is then left to settle unobserved). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<Raced<T>> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve({ aborted: true });
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => undefined);
      resolve({ aborted: true });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ aborted: false, value });
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Where the next cursor starts, and whether its first entry is written or only checked. */
interface Position {
  ts: OplogTs;
  /** The entry at `ts` is written too: a fresh directory starting at the newest entry. */
  inclusive: boolean;
}

async function prepareDir(dir: string): Promise<void> {
  if (await makeOwnDirectory(dir, BACKUP_DIR_MODE, 'keep')) await fsyncDirectory(path.dirname(path.resolve(dir)));
}

export async function streamOplog(options: StreamOptions): Promise<StreamResult> {
  const { dir } = options;
  await prepareDir(dir);
  // Two streamers into one directory would interleave their files and cut each other's tails.
  const claim = await claimDirectory(dir, 'oplog', (holder) => `another hotbackup oplog${holder === undefined ? '' : ` (pid ${holder})`} is streaming into ${dir}`).catch((err: unknown) => {
    throw new StreamRefusal((err as Error).message);
  });
  try {
    return await streamInto(options);
  } finally {
    await claim.release();
  }
}

/** The stream itself, into a directory this process has claimed. */
async function streamInto(options: StreamOptions): Promise<StreamResult> {
  const { source, judge, dir, signal, log } = options;
  const progress = options.progress ?? new StreamProgress();
  const retryDelay = options.retryDelayMs ?? defaultRetryDelay;
  const state = await recoverOplogDir(dir);
  for (const tail of state.truncated) log.warn({ file: tail.file, bytes: tail.bytes, reason: tail.reason }, 'cut a torn tail left by an earlier run: those bytes were never counted as backed up');

  let backedUpTo = state.lastTs;
  let position: Position;
  if (state.lastTs !== undefined) {
    if (options.from !== undefined && !sameOplogTs(options.from, state.lastTs)) {
      const why = compareOplogTs(options.from, state.lastTs) < 0 ? 'entries after it are in the directory already, and would be written twice' : 'the entries between them would be missing';
      throw new StreamRefusal(`${dir} ends at ${formatOplogTs(state.lastTs)}, not at --from ${formatOplogTs(options.from)}: ${why}. Leave --from out to continue after ${formatOplogTs(state.lastTs)}, or stream into another directory`);
    }
    position = { ts: state.lastTs, inclusive: false };
    log.info({ dir, after: formatOplogTs(state.lastTs) }, 'continuing after the last entry in the directory');
  } else if (options.from !== undefined) {
    // Into an empty directory the entry at --from is written too: the files then show
    // where they start, and a replay from that point (a backup's last entry) finds it.
    position = { ts: options.from, inclusive: true };
    backedUpTo = options.from;
    log.info({ dir, from: formatOplogTs(options.from) }, 'empty directory: streaming from --from, its entry written first');
  } else {
    const bounds = await source.bounds();
    if (bounds === undefined) throw noOplog();
    position = { ts: bounds.newest, inclusive: true };
    log.info({ dir, at: formatOplogTs(bounds.newest) }, 'empty directory and no --from: starting at the newest entry in the oplog now, that entry included');
  }
  progress.resumedAt(backedUpTo);

  const writer = new OplogWriter({
    dir,
    nextIndex: state.nextIndex,
    rotateBytes: options.rotateBytes,
    onFileComplete: (file) => log.info({ file: file.file, bytes: file.bytes, entries: file.entries }, 'oplog file complete'),
  });
  let entries = 0;
  let bytes = 0;
  let failures = 0;
  try {
    while (!signal.aborted) {
      let tail: OplogTail | undefined;
      try {
        await checkStillHeld(source, position);
        tail = source.tail(position.ts);
        let verified = false;
        for (;;) {
          const raced = await raceAbort(tail.next(), signal);
          if (raced.aborted) break;
          let batch = raced.value;
          if (batch.length === 0) continue;
          if (!verified) {
            batch = firstBatch(batch, position);
            verified = true;
            failures = 0;
            progress.setReconnecting(false);
            if (batch.length === 0) continue;
          }
          const last = entryTs(batch[batch.length - 1] as Uint8Array);
          await writer.append(batch);
          const size = batch.reduce((sum, entry) => sum + entry.length, 0);
          entries += batch.length;
          bytes += size;
          backedUpTo = last;
          position = { ts: last, inclusive: false };
          progress.written(batch.length, size, last, writer.currentFile);
          log.debug({ entries: batch.length, bytes: size, newest: formatOplogTs(last) }, 'oplog batch durable');
          // Looked at between batches only: a batch is never half-counted.
          if (signal.aborted) break;
        }
      } catch (err) {
        if (signal.aborted) break;
        if (!judge.isTransient(err)) throw err;
        failures += 1;
        progress.setReconnecting(true);
        const delay = retryDelay(failures);
        log.warn({ err: String(err), attempt: failures, retryInMs: delay, after: formatOplogTs(position.ts) }, 'oplog stream interrupted: resuming from the last durable entry');
        await sleep(delay, signal);
      } finally {
        // Stopping, the caller closes the source, which abandons a getMore still waiting;
        // closing the cursor first would wait out that getMore's maxTimeMS.
        if (signal.aborted) void tail?.close().catch(() => undefined);
        else await tail?.close();
      }
    }
  } finally {
    await writer.close();
  }
  if (backedUpTo !== undefined) log.info({ backedUpTo: formatMongobackup(backedUpTo), entries, bytes }, 'oplog stream stopped');
  return { backedUpTo, entries, bytes };
}

function noOplog(): NoOplog {
  return new NoOplog('the server has no oplog (local.oplog.rs is absent or empty): oplog streaming needs a replica-set member (mongod --replSet, initiated)');
}

/** Refuses a resume point the oplog has rolled past, before tailing from it. */
async function checkStillHeld(source: OplogSource, position: Position): Promise<void> {
  const bounds = await source.bounds();
  if (bounds === undefined) throw noOplog();
  if (compareOplogTs(position.ts, bounds.oldest) < 0) throw rolledOver(position.ts, bounds.oldest);
  if (compareOplogTs(position.ts, bounds.newest) > 0) {
    throw new OplogGap(`${formatOplogTs(position.ts)} is after the newest entry in the oplog (${formatOplogTs(bounds.newest)}): it is no entry of this oplog (another replica set's, or a failover rolled it back); a new full backup is needed`);
  }
}

function rolledOver(resume: OplogTs, oldest: OplogTs): OplogGap {
  return new OplogGap(
    `oplog entries between ${formatOplogTs(resume)} and ${formatOplogTs(oldest)} are missing: the oplog has rolled over past ${formatOplogTs(resume)} ` +
      `(its oldest entry is now ${formatOplogTs(oldest)}); a new full backup is needed, then stream from its end`,
  );
}

/** The first batch of a cursor: its first entry must be the one at the resume point, which is dropped unless inclusive. */
function firstBatch(batch: Uint8Array[], position: Position): Uint8Array[] {
  const first = entryTs(batch[0] as Uint8Array);
  if (!sameOplogTs(first, position.ts)) {
    // Rolled over between the bounds check and the find, or a ts between two entries.
    throw new OplogGap(
      `the oplog holds no entry at ${formatOplogTs(position.ts)} (the first at or after it is ${formatOplogTs(first)}): entries between them may be missing ` +
        '(the oplog has rolled over, a failover rolled entries back, or the timestamp names no entry); a new full backup is needed',
    );
  }
  return position.inclusive ? batch : batch.slice(1);
}
