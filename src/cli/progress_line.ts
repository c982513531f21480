/**
 * A one-line progress bar on a terminal, redrawn in place, for the CLI's long jobs
 * (verify, restore): the same ProgressCounters that backupStatus reads, rendered every
 * 200 ms. Off a terminal (a pipe, a log file, cron) it draws nothing: the result line
 * at the end is all such a reader wants. No library: one line of ANSI (carriage return,
 * then EL, "erase in line") is all it takes, and every terminal since the VT100 has it.
 */
import type { ProgressCounters } from '../backup/progress.js';
import { formatBytes } from '../backup/units.js';

export interface ProgressLine {
  /** Erases the line (so the next output starts clean) and stops redrawing. */
  stop(): void;
}

const WIDTH = 24;

/** What the line says for `counters`, e.g. `verifying [######......]  25.0%  1.0 GiB of 4.0 GiB  310.0 MiB/s  ETA 10s  collection-7-123.wt`. */
export function renderProgress(label: string, counters: ProgressCounters, columns: number): string {
  const snap = counters.snapshot();
  const filled = Math.round((snap.percent / 100) * WIDTH);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}]`;
  const eta = snap.etaSecs === undefined ? '' : `  ETA ${Math.ceil(snap.etaSecs)}s`;
  const current = snap.currentFiles.length === 0 ? '' : `  ${snap.currentFiles.join(', ')}`;
  return fitLine(`${label} ${bar} ${snap.percent.toFixed(1).padStart(5)}%  ${formatBytes(snap.bytesCopied)} of ${formatBytes(snap.bytesTotal)}  ${formatBytes(snap.bytesPerSec)}/s${eta}${current}`, columns);
}

export function startProgressLine(label: string, counters: ProgressCounters, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  return startLiveLine((columns) => renderProgress(label, counters, columns), stream);
}

/** Redraws `render(columns)` in place every 200 ms on a terminal; draws nothing elsewhere. */
export function startLiveLine(render: (columns: number) => string, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  if (stream.isTTY !== true) return { stop: () => undefined };
  // A terminal whose size is unknown (a pty nobody sized, as script(1) makes) says 0 columns.
  const draw = () => stream.write(`\r\x1b[K${fitLine(render(stream.columns || 80), stream.columns || 80)}`);
  const timer = setInterval(draw, 200);
  draw();
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stream.write('\r\x1b[K');
    },
  };
}

/** Longer than the terminal, a line would wrap, and \r would redraw only its last row. */
export function fitLine(line: string, columns: number): string {
  return line.length >= columns ? line.slice(0, Math.max(0, columns - 1)) : line;
}
