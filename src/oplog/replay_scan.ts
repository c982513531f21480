/**
 * The first pass of a replay, before anything is applied: reads the oplog files through
 * once, so that whatever would refuse them (a gap before --from, a torn or damaged
 * file, entries out of order, files that end before --until) refuses them while the
 * target is untouched; and notes what the second pass needs: the bytes and entries in
 * the range (for progress), and where collections and databases are dropped (to tell an
 * entry that fails only because a later entry of the range already ran, on a second run,
 * from one that fails for real).
 */
import { decodeOplogEntry, listOplogFiles, OplogDirError, readOplogEntries, type OplogFile } from './oplog_files.js';
import { compareOplogTs, formatOplogTs, type OplogTs } from './oplog_ts.js';

export interface OplogScan {
  readonly files: OplogFile[];
  /** Entries with from < ts <= until, and their bytes. */
  readonly entries: number;
  readonly bytes: number;
  /** The last `ts` at which each collection (by UUID hex, and by namespace) and database is dropped in the range. */
  readonly drops: Drops;
}

export interface Drops {
  readonly byUuid: Map<string, OplogTs>;
  readonly byNamespace: Map<string, OplogTs>;
  readonly byDatabase: Map<string, OplogTs>;
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

function later(map: Map<string, OplogTs>, key: string, ts: OplogTs): void {
  const known = map.get(key);
  if (known === undefined || compareOplogTs(ts, known) > 0) map.set(key, ts);
}

function noteDrops(doc: Record<string, unknown>, ts: OplogTs, drops: Drops): void {
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
export function droppedAfter(drops: Drops, op: Record<string, unknown>, ts: OplogTs): boolean {
  const ns = String(op['ns']);
  const hex = uuidHexOf(op['ui']);
  const candidates = [
    hex === undefined ? undefined : drops.byUuid.get(hex),
    drops.byNamespace.get(ns),
    drops.byDatabase.get(databaseOf(ns)),
  ];
  return candidates.some((at) => at !== undefined && compareOplogTs(at, ts) > 0);
}

export async function scanOplog(dir: string, from: OplogTs, until: OplogTs): Promise<OplogScan> {
  const files = await listOplogFiles(dir);
  if (files.length === 0) throw new OplogDirError(`${dir} holds no oplog files (oplog000000.bson, …)`);
  const drops: Drops = { byUuid: new Map(), byNamespace: new Map(), byDatabase: new Map() };
  let first: OplogTs | undefined;
  let last: OplogTs | undefined;
  let entries = 0;
  let bytes = 0;
  for await (const entry of readOplogEntries(files)) {
    if (first === undefined) {
      first = entry.ts;
      if (compareOplogTs(first, from) > 0) {
        throw new OplogDirError(
          `the oplog files in ${dir} start at ts ${formatOplogTs(first)}, after --from ${formatOplogTs(from)}: ` +
            'the entries in between are missing (a gap); replay from a backup whose last entry the files hold',
        );
      }
    }
    last = entry.ts;
    if (compareOplogTs(entry.ts, until) > 0) break;
    if (compareOplogTs(entry.ts, from) <= 0) continue;
    entries += 1;
    bytes += entry.bytes.length;
    // Decoded here too, so that an entry no BSON reader takes refuses the replay before it starts.
    noteDrops(decodeOplogEntry(entry), entry.ts, drops);
  }
  if (last === undefined) throw new OplogDirError(`the oplog files in ${dir} hold no entries`);
  if (compareOplogTs(last, until) < 0) {
    throw new OplogDirError(
      `the oplog files in ${dir} end at ts ${formatOplogTs(last)}, before --until ${formatOplogTs(until)}: ` +
        'the entries after it are not there; stream further, or replay --until a time they reach',
    );
  }
  return { files, entries, bytes, drops };
}
