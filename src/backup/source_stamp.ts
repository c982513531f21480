/**
 * A source file's modification time, as an incremental backup's quick check uses it
 * (rsync's "quick check": same size and same mtime means unchanged; rsync(1), --checksum).
 *
 * Kept as text, ISO 8601 with all nine digits of nanoseconds ('2026-11-21T10:00:00.123456789Z'):
 * exact (a JSON number cannot hold nanoseconds since 1970), readable in the manifest,
 * and compared as strings, since every stamp is written by `mtimeText` alone.
 *
 * Two readings matter, because a strategy captures a file's bytes at one moment and may
 * stat it at others (docs/backups.md, "Incremental backups"):
 * - `before`: read at or before the capture, and recorded in the manifest. Whatever is
 *   written after it moves the mtime on, so the next backup sees a change;
 * - `after`: read at or after the capture. Equal to the base's recorded mtime, it proves
 *   that nothing was written between the base's reading and the capture.
 * A strategy whose one stat lies inside its protected window (fsyncLock: writes blocked;
 * $backupCursor: the pinned checkpoint is on disk before it opens) gives both from it.
 */
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';

export interface SourceStamp {
  /** mtime read at or before the strategy captured the file's bytes: what the manifest records. */
  readonly before: string;
  /** mtime read at or after that capture: what this backup's quick check compares with the base. */
  readonly after: string;
}

/**
 * How far before a backup's start a recorded mtime must lie to be trusted: a write in
 * the same tick of the filesystem's clock as the base's stat would leave the mtime
 * unchanged (git's "racy clean" entries, Documentation/technical/racy-git.txt). File
 * times come from the kernel's coarse clock (a jiffy, 1-10 ms) on xfs and on ext4 with
 * 256-byte inodes, but whole seconds on ext4 with 128-byte inodes or ext3, and two
 * seconds on FAT: 2 s covers all of them.
 */
export const RACY_WINDOW_NS = 2_000_000_000n;

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** `stats.mtimeNs` as a stamp; undefined before 1970, which no live dbpath file has. */
export function mtimeText(stats: Pick<BigIntStats, 'mtimeNs'>): string | undefined {
  const ns = stats.mtimeNs;
  if (ns < 0n) return undefined;
  const seconds = new Date(Number((ns / NS_PER_S) * 1000n)).toISOString().slice(0, 19);
  return `${seconds}.${(ns % NS_PER_S).toString().padStart(9, '0')}Z`;
}

export const MTIME_PATTERN = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

/** A stamp back in nanoseconds since 1970. */
export function mtimeNs(text: string): bigint {
  if (!MTIME_PATTERN.test(text)) throw new RangeError(`not an mtime stamp: '${text}'`);
  const seconds = BigInt(Date.parse(`${text.slice(0, 19)}Z`)) / 1000n;
  return seconds * NS_PER_S + BigInt(text.slice(20, 29));
}

/**
 * Whether a base's recorded mtime can be trusted by the quick check: it lies more than
 * RACY_WINDOW_NS before the base began (every stat of a backup comes after its start).
 * A racy one is compared by content instead.
 *
 * "Began" is read on two clocks, and the earlier reading counts: the proxy's
 * (`startedAt`), and the filesystem's (`startedAtFs`, the mtime of the state file the
 * backup wrote as it began: fileClock). mtimes come from the clock of the filesystem, not
 * the proxy's: on a network filesystem whose server's clock lags the proxy's, the proxy's
 * clock alone would place a file written just before the base well outside the window.
 * The earlier of the two is never later than the base's stats by either clock, so taking
 * it can only make more files racy, never fewer.
 */
export function settledBefore(mtime: string, startedAt: Date, startedAtFs?: string): boolean {
  const byProxy = BigInt(startedAt.getTime()) * NS_PER_MS;
  const byFilesystem = startedAtFs === undefined ? byProxy : mtimeNs(startedAtFs);
  const began = byFilesystem < byProxy ? byFilesystem : byProxy;
  return mtimeNs(mtime) < began - RACY_WINDOW_NS;
}

/** `file`'s mtime as a stamp: its filesystem's clock when it was last written; undefined if it cannot be read. */
export async function fileClock(file: string): Promise<string | undefined> {
  const stats = await fs.stat(file, { bigint: true }).catch(() => undefined);
  return stats === undefined ? undefined : mtimeText(stats);
}

/** One stat of `file` serving as both readings (see the module comment); undefined if it cannot be stamped. */
export async function statStamp(file: string): Promise<SourceStamp | undefined> {
  const mtime = mtimeText(await fs.stat(file, { bigint: true }));
  return mtime === undefined ? undefined : { before: mtime, after: mtime };
}
