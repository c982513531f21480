/** Oplog entries as a server sends them (raw BSON, mongod 7.0's field order: ts after o), for tests without a server. */
import fs from 'node:fs';
import path from 'node:path';
import { Long, serialize, Timestamp } from 'bson';
import type { OplogTs } from '../../src/oplog/oplog_ts.js';

/** An insert entry at `ts`, about `padding` bytes larger than bare. */
export function oplogEntry(ts: OplogTs, padding = 0): Buffer {
  return Buffer.from(
    serialize({
      op: 'i',
      ns: 'test.c',
      o: { _id: ts.secs * 1000 + ts.inc, pad: 'x'.repeat(padding) },
      ts: new Timestamp({ t: ts.secs, i: ts.inc }),
      t: Long.fromNumber(1),
      v: Long.fromNumber(2),
      wall: new Date(ts.secs * 1000),
    }),
  );
}

/** `count` entries from `first` on, one increment apart. */
export function oplogEntries(first: OplogTs, count: number, padding = 0): Buffer[] {
  return Array.from({ length: count }, (_, i) => oplogEntry({ secs: first.secs, inc: first.inc + i }, padding));
}

/** The oplog files of `dir`, in order, concatenated. */
export function concatenatedOplog(dir: string): Buffer {
  const names = fs
    .readdirSync(dir)
    .filter((name) => /^oplog\d{6,}\.bson$/.test(name))
    .sort();
  return Buffer.concat(names.map((name) => fs.readFileSync(path.join(dir, name))));
}

/**
 * The whole entries of the oplog files in `dir` (none when it does not exist yet), as a
 * test polls a running streamer: a torn last entry, still being written, is left out.
 */
export function streamedEntries(dir: string): Buffer[] {
  if (!fs.existsSync(dir)) return [];
  const all = concatenatedOplog(dir);
  const entries: Buffer[] = [];
  for (let at = 0; at + 4 <= all.length; ) {
    const length = all.readInt32LE(at);
    if (length < 5 || at + length > all.length) break;
    entries.push(all.subarray(at, at + length));
    at += length;
  }
  return entries;
}

/** A driver Timestamp as the CLI's `secs,inc` argument. */
export function timestampArg(ts: Timestamp): string {
  return `${ts.high >>> 0},${ts.low >>> 0}`;
}
