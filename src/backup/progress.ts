/**
 * How the copier reports progress, and the one set of counters both the proxy's
 * backupStatus and the CLI's progress bar read. The copier calls the interface; it
 * never imports a UI (restic's internal/restorer/progress.go pattern).
 */
import type { CopiedFile, SkippedFile, SourceFile } from './copy_types.js';

/** What the copier tells whoever is watching. Calls are synchronous and must not throw. */
export interface CopyProgress {
  /** A worker opened `file` and is about to copy it. */
  fileStarted(file: SourceFile): void;
  /**
   * `n` more bytes of `file` were read, hashed and written (once per chunk).
   * Not named `bytesCopied`: that name is ProgressCounters' running total (the
   * backupStatus field), and one class cannot hold a method and a number by one name.
   */
  chunkCopied(file: SourceFile, n: number): void;
  /**
   * `n` more bytes of `file` were read and hashed to compare it with an incremental
   * backup's base (once per chunk); not copied. Optional: only incremental backups call it.
   */
  chunkCompared?(file: SourceFile, n: number): void;
  /** `file` is written and fsynced; or taken from the base, when `copied.reused` says so. */
  fileFinished(file: SourceFile, copied: CopiedFile): void;
  /**
   * An optional `file` was left out after `bytesReported` of its bytes had been
   * reported through chunkCopied: those no longer count, and neither does the file.
   */
  fileSkipped(file: SourceFile, skipped: SkippedFile, bytesReported: number): void;
}

/** The default reporter: ignores everything. */
export const noProgress: CopyProgress = Object.freeze({
  fileStarted(): void {},
  chunkCopied(): void {},
  chunkCompared(): void {},
  fileFinished(): void {},
  fileSkipped(): void {},
});

export interface ProgressCountersOptions {
  /** Span of the sliding window behind `bytesPerSec`, in ms. Default 2000. */
  windowMs?: number;
  /** Clock in ms, monotonic. Default `performance.now`; tests pass their own. */
  now?: () => number;
}

/** What the counters read at one moment: plain data, frozen, never updated. */
export interface ProgressSnapshot {
  readonly bytesCopied: number;
  readonly filesCopied: number;
  /** Bytes and files an incremental backup took from its base instead of copying them. */
  readonly bytesReused: number;
  readonly filesReused: number;
  /** Bytes of the source read only to compare them with the base (`checksum: true`, racy mtimes). */
  readonly bytesCompared: number;
  readonly bytesTotal: number;
  readonly filesTotal: number;
  /** 0–100, as `ProgressCounters.percent`: copied and reused bytes count as done. */
  readonly percent: number;
  readonly bytesPerSec: number;
  /** Undefined while the rate is unknown. */
  readonly etaSecs: number | undefined;
  readonly currentFiles: readonly string[];
}

/** Running totals of one copy, plus a recent transfer rate and an ETA derived from it. */
export class ProgressCounters implements CopyProgress {
  bytesCopied = 0;
  filesCopied = 0;
  bytesReused = 0;
  filesReused = 0;
  bytesCompared = 0;
  bytesTotal = 0;
  filesTotal = 0;
  readonly #current = new Set<string>();
  readonly #windowMs: number;
  readonly #now: () => number;
  /**
   * (time, bytes) of each chunk inside the window, oldest first, from #head on. At
   * 1 GiB/s in 1 MiB chunks that is ~2000 entries for a 2 s window: cheap, and exact
   * where fixed time slots would be off by up to a slot at each end.
   */
  #times: number[] = [];
  #amounts: number[] = [];
  #head = 0;
  #windowBytes = 0;
  #beganAt: number;
  #begun = false;

  constructor(options: ProgressCountersOptions = {}) {
    this.#windowMs = options.windowMs ?? 2000;
    this.#now = options.now ?? (() => performance.now());
    this.#beganAt = this.#now();
  }

  /** Starts counting a new copy of `files`; clears everything from the last one. */
  begin(files: readonly SourceFile[]): void {
    this.bytesCopied = 0;
    this.filesCopied = 0;
    this.bytesReused = 0;
    this.filesReused = 0;
    this.bytesCompared = 0;
    this.bytesTotal = files.reduce((sum, f) => sum + f.size, 0);
    this.filesTotal = files.length;
    this.#current.clear();
    this.#times = [];
    this.#amounts = [];
    this.#head = 0;
    this.#windowBytes = 0;
    this.#beganAt = this.#now();
    this.#begun = true;
  }

  /** More files to copy in the same backup (an extension's journal files): the totals grow, nothing is cleared. */
  add(files: readonly SourceFile[]): void {
    this.bytesTotal += files.reduce((sum, f) => sum + f.size, 0);
    this.filesTotal += files.length;
  }

  /** Relative paths of the files being copied right now. */
  get currentFiles(): string[] {
    return [...this.#current];
  }

  fileStarted(file: SourceFile): void {
    this.#current.add(file.relativePath);
  }

  chunkCopied(_file: SourceFile, n: number): void {
    this.bytesCopied += n;
    this.#moved(n);
  }

  chunkCompared(_file: SourceFile, n: number): void {
    this.bytesCompared += n;
    this.#moved(n);
  }

  /** `n` bytes read from the source just now: the rate is of reads, copied or compared. */
  #moved(n: number): void {
    const now = this.#now();
    this.#times.push(now);
    this.#amounts.push(n);
    this.#windowBytes += n;
    this.#prune(now);
  }

  fileFinished(file: SourceFile, copied?: CopiedFile): void {
    this.#current.delete(file.relativePath);
    if (copied?.reused === undefined) {
      this.filesCopied += 1;
      return;
    }
    this.filesReused += 1;
    this.bytesReused += copied.size;
  }

  /** A skipped file leaves the totals, so that a finished copy still reads 100%. */
  fileSkipped(file: SourceFile, _skipped: SkippedFile | undefined, bytesReported: number): void {
    this.#current.delete(file.relativePath);
    this.bytesCopied -= bytesReported;
    this.bytesTotal -= file.size;
    this.filesTotal -= 1;
  }

  /**
   * Bytes per second over the last `windowMs` (or since begin(), if that is shorter).
   * 0 before any data, and back to 0 once nothing has moved for a whole window.
   */
  get bytesPerSec(): number {
    const now = this.#now();
    this.#prune(now);
    if (this.#head >= this.#times.length) return 0;
    // A chunk's bytes moved before its timestamp, so the chunks kept span the whole
    // window (or the time since begin()). Never divide by less than 100 ms, so the
    // first chunk does not read as an absurd rate.
    const span = Math.max(100, Math.min(this.#windowMs, now - this.#beganAt));
    return (this.#windowBytes * 1000) / span;
  }

  /** Seconds left at the current rate; 0 when done; undefined while the rate is unknown. */
  get etaSecs(): number | undefined {
    if (!this.#begun) return undefined;
    const remaining = this.bytesTotal - this.bytesCopied - this.bytesReused;
    if (remaining <= 0) return 0;
    const rate = this.bytesPerSec;
    if (rate <= 0) return undefined;
    return remaining / rate;
  }

  /** 0–100, rounded down to one decimal, by bytes (by files when every file is empty). */
  get percent(): number {
    let fraction: number;
    if (this.bytesTotal > 0) fraction = (this.bytesCopied + this.bytesReused) / this.bytesTotal;
    else if (this.filesTotal > 0) fraction = (this.filesCopied + this.filesReused) / this.filesTotal;
    else return 0;
    return Math.min(100, Math.floor(fraction * 1000) / 10);
  }

  /**
   * Everything at once, as it is now. Readers that keep what they read (backupStatus,
   * a finished backup's outcome) get a copy that the running copy cannot change.
   */
  snapshot(): ProgressSnapshot {
    return Object.freeze({
      bytesCopied: this.bytesCopied,
      filesCopied: this.filesCopied,
      bytesReused: this.bytesReused,
      filesReused: this.filesReused,
      bytesCompared: this.bytesCompared,
      bytesTotal: this.bytesTotal,
      filesTotal: this.filesTotal,
      percent: this.percent,
      bytesPerSec: this.bytesPerSec,
      etaSecs: this.etaSecs,
      currentFiles: Object.freeze(this.currentFiles),
    });
  }

  /** Forgets chunks at or before `now - windowMs`. */
  #prune(now: number): void {
    const horizon = now - this.#windowMs;
    while (this.#head < this.#times.length && (this.#times[this.#head] as number) <= horizon) {
      this.#windowBytes -= this.#amounts[this.#head] as number;
      this.#head += 1;
    }
    // Compact now and then rather than shifting on every chunk.
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#amounts = this.#amounts.slice(this.#head);
      this.#head = 0;
    }
  }
}
