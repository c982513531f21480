/**
 * The streamer's counters, for whoever shows them (a terminal line, periodic log lines):
 * what it has made durable this run, and the newest entry's ts. The streamer only writes
 * them; readers take snapshots. No-op-free: counting is all it does.
 */
import type { OplogTs } from './oplog_ts.js';

export interface StreamSnapshot {
  /** Entries made durable this run. */
  readonly entries: number;
  readonly bytes: number;
  /** The newest entry durable in the output (this run's or, before its first, the resume point's). */
  readonly newestTs: OplogTs | undefined;
  /** The file being written. */
  readonly file: string | undefined;
  /** Set while the stream waits to reconnect after a transient error. */
  readonly reconnecting: boolean;
}

export class StreamProgress {
  #entries = 0;
  #bytes = 0;
  #newestTs: OplogTs | undefined;
  #file: string | undefined;
  #reconnecting = false;

  resumedAt(ts: OplogTs | undefined): void {
    this.#newestTs = ts;
  }

  written(entries: number, bytes: number, newestTs: OplogTs, file: string | undefined): void {
    this.#entries += entries;
    this.#bytes += bytes;
    this.#newestTs = newestTs;
    this.#file = file;
    this.#reconnecting = false;
  }

  setReconnecting(reconnecting: boolean): void {
    this.#reconnecting = reconnecting;
  }

  snapshot(): StreamSnapshot {
    return { entries: this.#entries, bytes: this.#bytes, newestTs: this.#newestTs, file: this.#file, reconnecting: this.#reconnecting };
  }
}
