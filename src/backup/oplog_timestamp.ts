/**
 * Oplog timestamps as a DBA types them: `<secs>,<inc>`, mongobackup's `-s 1466169280,94`
 * (Unix seconds, then the counter within that second). `secs:inc`, mongorestore's
 * --oplogLimit form, is taken too.
 */
import { Timestamp } from 'bson';

export function parseOplogTimestamp(text: string, flag: string): Timestamp {
  const match = /^(\d{1,10})[,:](\d{1,10})$/.exec(text.trim());
  const secs = match === null ? NaN : Number(match[1]);
  const inc = match === null ? NaN : Number(match[2]);
  if (!Number.isInteger(secs) || !Number.isInteger(inc) || secs > 0xffffffff || inc > 0xffffffff) {
    throw new Error(`${flag} takes a timestamp as <secs>,<inc> (e.g. 1466169280,94); got '${text}'`);
  }
  return new Timestamp({ t: secs, i: inc });
}

export function formatOplogTimestamp(ts: Timestamp): string {
  return `${ts.t},${ts.i}`;
}

/** Negative, zero or positive as `a` is before, at or after `b` (unsigned, seconds first). */
export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  return a.t !== b.t ? a.t - b.t : a.i - b.i;
}
