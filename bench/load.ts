/**
 * Foreground load for the backup benchmarks: sequential operation loops that log when
 * each operation ended and how long it took, so that rates and percentiles can be cut
 * afterwards for any window (before a backup, during it).
 */
import { percentileSorted } from './common.js';

export interface OpLog {
  /** performance.now() at the end of each operation, in order. */
  readonly ends: number[];
  /** Each operation's latency in ms, same order. */
  readonly latencies: number[];
}

export interface Loop {
  readonly log: OpLog;
  /** Ends the loop after its current operation; rejects with the first error an operation threw. */
  stop(): Promise<void>;
}

/** Runs `op(i)` back to back (i = 0, 1, ...) until stopped; the first error ends the loop. */
export function startLoop(op: (i: number) => Promise<unknown>): Loop {
  const log: OpLog = { ends: [], latencies: [] };
  let stopping = false;
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const start = performance.now();
      await op(i);
      const end = performance.now();
      log.ends.push(end);
      log.latencies.push(end - start);
    }
  })();
  // Until stop() is awaited, a failure is kept for it rather than reported as unhandled.
  done.catch(() => undefined);
  return {
    log,
    async stop() {
      stopping = true;
      await done;
    },
  };
}

export interface WindowStats {
  ops: number;
  /** Operations per second over the window. */
  rate: number;
  /**
   * Latencies (ms) of the operations that *started* in the window, so that one stalled
   * by what ran in the window counts even if it ended after.
   */
  p50: number;
  p99: number;
}

/** Operations that ended in [from, to) (performance.now() ms); latencies of those that started in it. */
export function windowStats(log: OpLog, from: number, to: number): WindowStats {
  const latencies: number[] = [];
  let ops = 0;
  for (let i = 0; i < log.ends.length; i++) {
    const end = log.ends[i] as number;
    const latency = log.latencies[i] as number;
    if (end >= from && end < to) ops++;
    if (end - latency >= from && end - latency < to) latencies.push(latency);
  }
  latencies.sort((a, b) => a - b);
  return {
    ops,
    rate: (ops * 1000) / (to - from),
    p50: percentileSorted(latencies, 50),
    p99: percentileSorted(latencies, 99),
  };
}
