/**
 * Reading the oplog files `hotbackup oplog` writes: `oplog000000.bson`, `oplog000001.bson`,
 * … in DIR, each a plain concatenation of BSON oplog entries in `ts` order (what
 * mongodump's oplog.bson and mongobackup's stream files hold too). The entries come out
 * one at a time, each with where it was read, in a buffer of their own.
 *
 * The files are checked as they are read, and refused with an OplogFilesRefusal naming
 * the file and offset: a numbered file missing between two others, a document torn at
 * the end of a file (a length prefix running past it), a length no BSON document has,
 * and a `ts` that does not increase.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { deserialize, Timestamp } from 'bson';
import { compareTimestamps, formatOplogTimestamp } from './oplog_timestamp.js';

const FILE_NAME = /^oplog(\d{6,})\.bson$/;
/** 16 MiB, and the 16 KiB mongod lets an oplog entry carry past it (mongorestore's SetMaxBSONSize). */
const MAX_ENTRY_BYTES = 16 * 1024 * 1024 + 16 * 1024;
const READ_CHUNK = 1024 * 1024;

export class OplogFilesRefusal extends Error {
  override readonly name = 'OplogFilesRefusal';
}

export interface OplogEntry {
  /** The entry, decoded as it was written (promoteValues off: Int32, Long, Double stay). */
  readonly doc: Record<string, unknown>;
  readonly ts: Timestamp;
  /** Its size in bytes. */
  readonly size: number;
  readonly file: string;
  readonly offset: number;
}

/** The oplog files in `dir`, in order; refuses a gap in the numbering or an empty directory. */
export async function listOplogFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    throw new OplogFilesRefusal(`cannot read ${dir}: ${(err as Error).message}`);
  }
  const numbered = names
    .map((name) => ({ name, match: FILE_NAME.exec(name) }))
    .filter((f): f is { name: string; match: RegExpExecArray } => f.match !== null)
    .map((f) => ({ name: f.name, n: Number(f.match[1]) }))
    .sort((a, b) => a.n - b.n);
  if (numbered.length === 0) throw new OplogFilesRefusal(`${dir} holds no oplog files (oplog000000.bson, …)`);
  for (let i = 1; i < numbered.length; i += 1) {
    const { n } = numbered[i - 1] as { n: number };
    if ((numbered[i] as { n: number }).n !== n + 1) {
      throw new OplogFilesRefusal(`oplog${String(n + 1).padStart(6, '0')}.bson is missing from ${dir}: the entries between ${(numbered[i - 1] as { name: string }).name} and ${(numbered[i] as { name: string }).name} are not there`);
    }
  }
  return numbered.map((f) => path.join(dir, f.name));
}

/** Every entry of one file, in order. */
async function* readFile(file: string): AsyncGenerator<OplogEntry> {
  const handle = await fs.open(file, 'r');
  try {
    let buffer = Buffer.alloc(0);
    let base = 0; // file offset of buffer[0]
    let eof = false;
    const name = path.basename(file);
    for (;;) {
      if (buffer.length >= 4) checkLength(buffer.readInt32LE(0), name, base);
      while (!eof && (buffer.length < 4 || buffer.length < buffer.readInt32LE(0))) {
        const chunk = Buffer.alloc(Math.max(READ_CHUNK, buffer.length >= 4 ? buffer.readInt32LE(0) - buffer.length : 0));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, base + buffer.length);
        if (bytesRead === 0) eof = true;
        else buffer = Buffer.concat([buffer, chunk.subarray(0, bytesRead)]);
        if (buffer.length >= 4) checkLength(buffer.readInt32LE(0), name, base);
      }
      if (buffer.length === 0) return;
      if (buffer.length < 4 || buffer.length < buffer.readInt32LE(0)) {
        const size = await handle.stat().then((s) => s.size);
        throw new OplogFilesRefusal(`${name} is torn: the entry at offset ${base} runs past the end of the file (${size} bytes); the stream that wrote it stopped mid-write, or the file was cut`);
      }
      const size = buffer.readInt32LE(0);
      const bytes = Buffer.from(buffer.subarray(0, size));
      let doc: Record<string, unknown>;
      try {
        doc = deserialize(bytes, { promoteValues: false });
      } catch (err) {
        throw new OplogFilesRefusal(`${name}: the entry at offset ${base} is not valid BSON: ${(err as Error).message}`);
      }
      const ts = doc['ts'];
      if (!(ts instanceof Timestamp)) throw new OplogFilesRefusal(`${name}: the entry at offset ${base} has no timestamp 'ts': not an oplog entry`);
      yield { doc, ts, size, file: name, offset: base };
      buffer = buffer.subarray(size);
      base += size;
    }
  } finally {
    await handle.close();
  }
}

function checkLength(length: number, name: string, offset: number): void {
  if (length < 5 || length > MAX_ENTRY_BYTES) {
    throw new OplogFilesRefusal(`${name}: the entry at offset ${offset} claims ${length} bytes, which no oplog entry has: the file is damaged or not an oplog file`);
  }
}

/** The entries of all `files`, in order, checking that `ts` increases across them. */
export async function* readOplogEntries(files: readonly string[]): AsyncGenerator<OplogEntry> {
  let previous: OplogEntry | undefined;
  for (const file of files) {
    for await (const entry of readFile(file)) {
      if (previous !== undefined && compareTimestamps(entry.ts, previous.ts) <= 0) {
        throw new OplogFilesRefusal(`${entry.file}: the entry at offset ${entry.offset} (ts ${formatOplogTimestamp(entry.ts)}) does not come after the one before it (ts ${formatOplogTimestamp(previous.ts)} in ${previous.file}): entries out of order or repeated`);
      }
      previous = entry;
      yield entry;
    }
  }
}
