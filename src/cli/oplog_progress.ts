/**
 * How `hotbackup oplog` shows its progress: a line redrawn in place on a terminal
 * (progress_line.ts), or a structured log line every `intervalMs` elsewhere (a service's
 * journal, a log file), each from the streamer's counters: entries and bytes durable this
 * run, the newest entry's ts, and its lag (how long ago that entry was written, as its
 * ts's seconds say: on a busy server, how far the stream trails it).
 */
import type { Logger } from '../log.js';
import { formatBytes } from '../backup/units.js';
import type { StreamProgress, StreamSnapshot } from '../oplog/stream_progress.js';
import { formatMongobackup } from '../oplog/oplog_ts.js';
import { startLiveLine, type ProgressLine } from './progress_line.js';

function lagSecs(snap: StreamSnapshot, nowMs: number): number | undefined {
  return snap.newestTs === undefined ? undefined : Math.max(0, nowMs / 1000 - snap.newestTs.secs);
}

/** e.g. `oplog  1,204 entries  3.2 MiB  newest Timestamp 1466234959000|1 (lag 0s)  oplog000003.bson`. */
export function renderStreamLine(snap: StreamSnapshot, nowMs: number): string {
  const lag = lagSecs(snap, nowMs);
  const newest = snap.newestTs === undefined ? '  waiting for the first entry' : `  newest ${formatMongobackup(snap.newestTs)} (lag ${Math.floor(lag ?? 0)}s)`;
  const file = snap.file === undefined ? '' : `  ${snap.file.slice(snap.file.lastIndexOf('/') + 1)}`;
  const state = snap.reconnecting ? '  reconnecting…' : '';
  return `oplog  ${snap.entries.toLocaleString('en-US')} entries  ${formatBytes(snap.bytes)}${newest}${file}${state}`;
}

export interface StreamReporterOptions {
  readonly progress: StreamProgress;
  readonly log: Logger;
  /** Where the live line goes, if it is a terminal. */
  readonly stream: NodeJS.WriteStream;
  readonly intervalMs: number;
  readonly now?: () => number;
}

/** Starts the live line on a terminal, periodic log lines otherwise; stop() ends either. */
export function startStreamReporter(options: StreamReporterOptions): ProgressLine {
  const now = options.now ?? Date.now;
  if (options.stream.isTTY === true) return startLiveLine(() => renderStreamLine(options.progress.snapshot(), now()), options.stream);
  let reported: StreamSnapshot | undefined;
  const timer = setInterval(() => {
    const snap = options.progress.snapshot();
    // Only news: an idle stream does not fill its log with the same line.
    if (reported !== undefined && snap.entries === reported.entries) return;
    reported = snap;
    const lag = lagSecs(snap, now());
    options.log.info(
      { entries: snap.entries, bytes: snap.bytes, newest: snap.newestTs === undefined ? undefined : formatMongobackup(snap.newestTs), lagSecs: lag === undefined ? undefined : Math.floor(lag), file: snap.file },
      'oplog streaming',
    );
  }, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
