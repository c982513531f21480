/**
 * What a streamed oplog directory holds when its streamer starts: where it ends (the
 * `ts` of its last whole entry) and which file comes next. A streamer killed mid-write
 * (kill -9, a crash, a power cut) may leave its last file ending in a torn entry, or
 * after a power cut in bytes that were never fsynced: those were never counted as
 * backed up (the writer counts a batch only once it is fsynced), so they are cut off
 * here, and the file fsynced, before anything is appended. Only the last file is read:
 * each earlier one was fsynced whole before the next was created (oplog_writer.ts).
 */
import fs from 'node:fs/promises';
import { fsyncDirectory } from '../backup/durable.js';
import { listOplogFiles, readFrames, type OplogFile } from './oplog_files.js';
import { compareOplogTs, entryTs, formatOplogTs, type OplogTs } from './oplog_ts.js';

export interface TornTail {
  readonly file: string;
  /** Bytes cut off. */
  readonly bytes: number;
  readonly reason: string;
}

export interface OplogDirState {
  /** The `ts` of the last whole entry; undefined when the directory holds none. */
  readonly lastTs: OplogTs | undefined;
  /** The number of the file the next run writes: a new one, never one written before. */
  readonly nextIndex: number;
  /** Torn tails cut off, with the file each was in (an emptied file is removed). */
  readonly truncated: readonly TornTail[];
}

interface Scan {
  lastTs: OplogTs | undefined;
  validLength: number;
  torn: string | undefined;
}

/** Reads `file`'s entries: the last whole one's ts, and where a torn or disordered tail starts. */
async function scanFile(file: string): Promise<Scan> {
  const frames = readFrames(file);
  let lastTs: OplogTs | undefined;
  for (;;) {
    const next = await frames.next();
    if (next.done === true) return { lastTs, validLength: next.value.validLength, torn: next.value.torn?.reason };
    let ts: OplogTs;
    try {
      ts = entryTs(next.value.bytes);
    } catch (err) {
      await frames.return({ validLength: next.value.offset });
      return { lastTs, validLength: next.value.offset, torn: `an entry that cannot be read (${(err as Error).message})` };
    }
    // Garbage left by a power cut can frame like a document; an entry out of order is not ours.
    if (lastTs !== undefined && compareOplogTs(ts, lastTs) <= 0) {
      await frames.return({ validLength: next.value.offset });
      return { lastTs, validLength: next.value.offset, torn: `an entry at ${formatOplogTs(ts)}, not after the one before it (${formatOplogTs(lastTs)})` };
    }
    lastTs = ts;
  }
}

async function truncateDurably(file: string, length: number): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Recovers `dir` (which must exist) for appending: cuts a torn tail, removes a file left empty. */
export async function recoverOplogDir(dir: string): Promise<OplogDirState> {
  const files: OplogFile[] = await listOplogFiles(dir);
  const truncated: TornTail[] = [];
  while (files.length > 0) {
    const last = files[files.length - 1] as OplogFile;
    const scan = await scanFile(last.path);
    if (scan.torn !== undefined) {
      const { size } = await fs.stat(last.path);
      await truncateDurably(last.path, scan.validLength);
      truncated.push({ file: last.path, bytes: size - scan.validLength, reason: scan.torn });
    }
    if (scan.lastTs !== undefined) return { lastTs: scan.lastTs, nextIndex: last.index + 1, truncated };
    // Empty (or emptied): it holds nothing, so removing it loses nothing, and the next run
    // writes this number afresh; the entry the directory ends at is in the file before.
    await fs.rm(last.path);
    await fsyncDirectory(dir);
    files.pop();
  }
  return { lastTs: undefined, nextIndex: 0, truncated };
}
