/**
 * The replay's progress, as mongobackup shows its recovery's: on a terminal, one line
 * redrawn in place, `Progress: 13111800/13840083 94% (bytes)`, and at the end
 * `112521 objects found` (the entries of the range); off a terminal, a structured log
 * line every few seconds instead, which a log collector can read.
 */
import type { Logger } from '../log.js';
import type { ReplayProgress } from '../oplog/oplog_replay.js';

export interface ReplayProgressView extends ReplayProgress {
  /** Stops redrawing; on a terminal, leaves the final line and the objects count. */
  stop(): void;
}

export function progressText(done: number, total: number): string {
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  return `Progress: ${done}/${total} ${percent}% (bytes)`;
}

export function startReplayProgress(log: Logger, stream: NodeJS.WriteStream = process.stderr, logEveryMs = 5000): ReplayProgressView {
  let totalBytes = 0;
  let totalEntries = 0;
  let bytes = 0;
  let entries = 0;
  const tty = stream.isTTY === true;
  const draw = () => {
    if (tty) stream.write(`\r\x1b[K${progressText(bytes, totalBytes)}`);
    else log.info({ bytesDone: bytes, bytesTotal: totalBytes, entriesDone: entries, entriesTotal: totalEntries }, 'replay progress');
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    start(total: number, count: number) {
      totalBytes = total;
      totalEntries = count;
      if (!tty) log.info({ bytesTotal: total, entriesTotal: count }, 'replay starts');
      timer = setInterval(draw, tty ? 200 : logEveryMs);
      timer.unref();
      if (tty) draw();
    },
    advance(n: number, count: number) {
      bytes += n;
      entries += count;
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      if (tty && timer !== undefined) stream.write(`\r\x1b[K${progressText(bytes, totalBytes)}\n${totalEntries} objects found\n`);
      timer = undefined;
    },
  };
}
