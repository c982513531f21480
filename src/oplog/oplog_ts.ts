/**
 * An oplog entry's `ts` (a BSON Timestamp: Unix seconds and an increment that counts
 * up within the second), as a DBA types it (`--from 1466234959,1`, mongobackup's `-s`;
 * `1466234959:1`, mongorestore's --oplogLimit form, too), as the commands print it
 * (`1466234959,1`, what --from and --until take back) and as mongobackup prints it on
 * stop (`Timestamp 1466234959000|1`: the seconds as milliseconds, as the 3.x shell
 * printed a Timestamp), and read out of an entry's raw bytes without decoding the rest
 * of it. The streamer and the replay both use these: one spelling everywhere.
 */
import { onDemand, Timestamp } from 'bson';

export interface OplogTs {
  readonly secs: number;
  readonly inc: number;
}

const UINT32_MAX = 0xffff_ffff;

/** Parses `<secs>,<inc>` (or `<secs>:<inc>`) given to `flag`; throws with a message fit for a usage error. */
export function parseOplogTs(text: string, flag: string): OplogTs {
  const match = /^\s*(\d{1,10})[,:](\d{1,10})\s*$/.exec(text);
  const secs = Number(match?.[1]);
  const inc = Number(match?.[2]);
  if (match === null || secs > UINT32_MAX || inc > UINT32_MAX) {
    throw new Error(`${flag} takes a timestamp as <secs>,<inc> (two whole numbers below 2^32, as mongobackup's -s takes it), e.g. 1466234959,1; got '${text}'`);
  }
  return { secs, inc };
}

const ISO_UTC_SECOND = /^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z\s*$/;

/**
 * A point in time given to `flag` (restore's --to-time): `<secs>,<inc>` as parseOplogTs
 * takes it, or an ISO-8601 UTC time to the second (`2026-11-30T14:06:59Z`), which means
 * every entry of that second and before: `<secs>,4294967295`. Whole seconds only: an
 * oplog ts counts seconds, so a fraction could not be honoured.
 */
export function parsePointInTime(text: string, flag: string): OplogTs {
  const iso = ISO_UTC_SECOND.exec(text);
  if (iso === null) {
    if (/^\s*\d/.test(text) && /[,:]/.test(text) && !text.includes('T')) return parseOplogTs(text, flag);
    throw new Error(`${flag} takes <secs>,<inc> (an oplog timestamp, e.g. 1466234959,1) or an ISO-8601 UTC time to the second (e.g. 2026-11-30T14:06:59Z); got '${text}'`);
  }
  const millis = Date.UTC(Number(iso[1]), Number(iso[2]) - 1, Number(iso[3]), Number(iso[4]), Number(iso[5]), Number(iso[6]));
  // Date.UTC rolls 2026-02-30 over to March: a date that does not round-trip does not exist.
  if (new Date(millis).toISOString() !== `${iso[1]}-${iso[2]}-${iso[3]}T${iso[4]}:${iso[5]}:${iso[6]}.000Z` || millis < 0 || millis / 1000 > UINT32_MAX) {
    throw new Error(`${flag}: '${text.trim()}' is not a UTC time an oplog timestamp can hold (1970 to 2106)`);
  }
  return { secs: millis / 1000, inc: UINT32_MAX };
}

/** `1466234959,1`: what `--from` and `--until` take, and how every message names an entry. */
export function formatOplogTs(ts: OplogTs): string {
  return `${ts.secs},${ts.inc}`;
}

/** `Timestamp 1466234959000|1`: mongobackup's "Backed up to ts:" format. */
export function formatMongobackup(ts: OplogTs): string {
  return `Timestamp ${ts.secs * 1000}|${ts.inc}`;
}

/** Negative, zero or positive as `a` is before, at or after `b` (seconds first). */
export function compareOplogTs(a: OplogTs, b: OplogTs): number {
  return a.secs !== b.secs ? a.secs - b.secs : a.inc - b.inc;
}

export function sameOplogTs(a: OplogTs, b: OplogTs): boolean {
  return a.secs === b.secs && a.inc === b.inc;
}

export function toBsonTimestamp(ts: OplogTs): Timestamp {
  return new Timestamp({ t: ts.secs, i: ts.inc });
}

export function fromBsonTimestamp(ts: Timestamp): OplogTs {
  return { secs: ts.t, inc: ts.i };
}

const BSON_TIMESTAMP = 0x11;
const TS_NAME = Buffer.from('ts', 'latin1');

/**
 * The top-level `ts` of one raw BSON document (an oplog entry as the server sent it).
 * bson's onDemand element walker (the one the driver itself reads replies with) lists
 * the top-level elements without decoding them; a Timestamp is 8 bytes, little-endian,
 * the increment in the low word (bsonspec.org, "timestamp"). Throws when the document
 * is malformed or has no Timestamp `ts`: no oplog entry lacks one.
 */
export function entryTs(entry: Uint8Array): OplogTs {
  for (const [type, nameOffset, nameLength, offset] of onDemand.parseToElements(entry)) {
    if (nameLength !== 2 || entry[nameOffset] !== TS_NAME[0] || entry[nameOffset + 1] !== TS_NAME[1]) continue;
    if (type !== BSON_TIMESTAMP) throw new Error(`an oplog entry's ts is BSON type ${type}, not a Timestamp`);
    const view = new DataView(entry.buffer, entry.byteOffset + offset, 8);
    return { inc: view.getUint32(0, true), secs: view.getUint32(4, true) };
  }
  throw new Error('an oplog entry without a ts');
}
