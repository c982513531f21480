/**
 * The first pass of a replay, before anything is applied: reads the oplog files through
 * once, so that whatever would refuse them (a gap before --from, a torn or damaged
 * file, entries out of order, files that end before --until) refuses them while the
 * target is untouched; and notes what the second pass needs: the bytes and entries in
 * the range (for progress), and where collections and databases are dropped (to tell an
 * entry that fails only because a later entry of the range already ran, on a second run,
 * from one that fails for real).
 */
import type { Timestamp } from 'bson';
import { listOplogFiles, readOplogEntries, OplogFilesRefusal } from './oplog_files.js';
import { compareTimestamps, formatOplogTimestamp } from './oplog_timestamp.js';

export interface OplogScan {
  readonly files: string[];
  /** Entries with from < ts <= until, and their bytes. */
  readonly entries: number;
  readonly bytes: number;
  /** The last `ts` at which each collection (by UUID hex, and by namespace) and database is dropped in the range. */
  readonly drops: Drops;
}

export interface Drops {
  readonly byUuid: Map<string, Timestamp>;
  readonly byNamespace: Map<string, Timestamp>;
  readonly byDatabase: Map<string, Timestamp>;
}

export function uuidHexOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || (value as { _bsontype?: string })._bsontype !== 'Binary') return undefined;
  const binary = value as { sub_type: number; buffer: Uint8Array };
  return binary.sub_type === 4 ? Buffer.from(binary.buffer).toString('hex') : undefined;
}

export function databaseOf(ns: string): string {
  const dot = ns.indexOf('.');
  return dot < 0 ? ns : ns.slice(0, dot);
}

function later(map: Map<string, Timestamp>, key: string, ts: Timestamp): void {
  const known = map.get(key);
  if (known === undefined || compareTimestamps(ts, known) > 0) map.set(key, ts);
}

function noteDrops(doc: Record<string, unknown>, ts: Timestamp, drops: Drops): void {
  const o = doc['o'];
  if (doc['op'] !== 'c' || o === null || typeof o !== 'object') return;
  const db = databaseOf(String(doc['ns']));
  const command = o as Record<string, unknown>;
  if (typeof command['drop'] === 'string') {
    later(drops.byNamespace, `${db}.${command['drop']}`, ts);
    const hex = uuidHexOf(doc['ui']);
    if (hex !== undefined) later(drops.byUuid, hex, ts);
  }
  if ('dropDatabase' in command) later(drops.byDatabase, db, ts);
}

/** Whether a collection `op` writes to is dropped, or its database, after `ts` within the range. */
export function droppedAfter(drops: Drops, op: Record<string, unknown>, ts: Timestamp): boolean {
  const ns = String(op['ns']);
  const hex = uuidHexOf(op['ui']);
  const candidates = [
    hex === undefined ? undefined : drops.byUuid.get(hex),
    drops.byNamespace.get(ns),
    drops.byDatabase.get(databaseOf(ns)),
  ];
  return candidates.some((at) => at !== undefined && compareTimestamps(at, ts) > 0);
}

export async function scanOplog(dir: string, from: Timestamp, until: Timestamp): Promise<OplogScan> {
  const files = await listOplogFiles(dir);
  const drops: Drops = { byUuid: new Map(), byNamespace: new Map(), byDatabase: new Map() };
  let first: Timestamp | undefined;
  let last: Timestamp | undefined;
  let entries = 0;
  let bytes = 0;
  for await (const entry of readOplogEntries(files)) {
    if (first === undefined) {
      first = entry.ts;
      if (compareTimestamps(first, from) > 0) {
        throw new OplogFilesRefusal(
          `the oplog files in ${dir} start at ts ${formatOplogTimestamp(first)}, after --from ${formatOplogTimestamp(from)}: ` +
            'the entries in between are missing (a gap); replay from a backup whose last entry the files hold',
        );
      }
    }
    last = entry.ts;
    if (compareTimestamps(entry.ts, until) > 0) break;
    if (compareTimestamps(entry.ts, from) <= 0) continue;
    entries += 1;
    bytes += entry.size;
    noteDrops(entry.doc, entry.ts, drops);
  }
  if (last === undefined) throw new OplogFilesRefusal(`the oplog files in ${dir} hold no entries`);
  if (compareTimestamps(last, until) < 0) {
    throw new OplogFilesRefusal(
      `the oplog files in ${dir} end at ts ${formatOplogTimestamp(last)}, before --until ${formatOplogTimestamp(until)}: ` +
        'the entries after it are not there; stream further, or replay --until a time they reach',
    );
  }
  return { files, entries, bytes, drops };
}
