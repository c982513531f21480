/**
 * Whether files are sparse, three ways:
 *
 *   size        st_size
 *   allocated   st_blocks * 512: what the filesystem has reserved on disk; less than the
 *               size means holes
 *   unwritten   bytes in extents the filesystem flags "unwritten" (FIEMAP, via
 *               `filefrag -v`): allocated, but never written, and read as zeros
 *
 * WiredTiger's log files are the case in point: unless `log=(zero_fill=true)`,
 * WiredTiger preallocates each by extending it with fallocate (`__log_prealloc` in
 * src/log/log.c; src/os_posix/os_fallocate.c), which on ext4 makes unwritten extents:
 * not sparse by st_blocks, yet nothing on disk to read. SEEK_HOLE is no steadier a
 * witness: ext4 reports an unwritten range as a hole only while none of its pages is in
 * the page cache, so a file that was read once (by a backup, say) turns to "data".
 * FIEMAP's flag does not depend on the page cache.
 *
 * `unwritten` is undefined where filefrag is missing or the filesystem has no FIEMAP.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MB, fmt } from './common.js';

export interface Allocation {
  name: string;
  size: number;
  allocated: number;
  unwritten: number | undefined;
}

/** Bytes in extents flagged unwritten, from `filefrag -v` (lengths in the block size its header gives). */
function unwrittenBytes(file: string): number | undefined {
  let out: string;
  try {
    out = execFileSync('filefrag', ['-v', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const blockSize = Number(/blocks of (\d+) bytes/.exec(out)?.[1]);
  if (!Number.isFinite(blockSize)) return undefined;
  let blocks = 0;
  // "   2:        3..   25599:   32309764..  32335360:  25597:             last,unwritten,eof"
  for (const line of out.split('\n')) {
    if (!/^\s*\d+:/.test(line)) continue;
    const fields = line.split(':');
    if (fields.length >= 5 && /\bunwritten\b/.test(fields.at(-1) ?? '')) blocks += Number(fields[3]);
  }
  return blocks * blockSize;
}

/** The allocation of every regular file directly in `dir` whose name matches `pattern`. */
export function allocationsIn(dir: string, pattern: RegExp): Allocation[] {
  if (!fs.existsSync(dir)) return [];
  const names = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && pattern.test(e.name))
    .map((e) => e.name)
    .sort();
  return names.map((name) => {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    return { name, size: stat.size, allocated: stat.blocks * 512, unwritten: unwrittenBytes(file) };
  });
}

/** A title, then one line per file: its size, allocated and unwritten bytes. */
export function describeAllocations(label: string, list: readonly Allocation[]): string[] {
  if (list.length === 0) return [`${label}: no files`];
  const width = Math.max(...list.map((a) => a.name.length));
  return [
    `${label}:`,
    ...list.map((a) => {
      const unwritten = a.unwritten === undefined ? 'unwritten n/a (no filefrag/FIEMAP)' : `unwritten (FIEMAP) ${fmt(a.unwritten / MB)} MB (${(a.unwritten / a.size).toFixed(2)})`;
      return `  ${a.name.padEnd(width)}  size ${fmt(a.size / MB)} MB  allocated (st_blocks*512) ${fmt(a.allocated / MB)} MB (${(a.allocated / a.size).toFixed(2)})  ${unwritten}`;
    }),
  ];
}

/** Sums over a list (unwritten undefined if any file's is). */
export function totalAllocation(list: readonly Allocation[]): { size: number; allocated: number; unwritten: number | undefined } {
  let unwritten: number | undefined = 0;
  for (const a of list) unwritten = a.unwritten === undefined || unwritten === undefined ? undefined : unwritten + a.unwritten;
  return { size: list.reduce((s, a) => s + a.size, 0), allocated: list.reduce((s, a) => s + a.allocated, 0), unwritten };
}
