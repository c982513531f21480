/**
 * The one reader of a streamed oplog directory, for its writer's recovery and for
 * replay: numbered files `oplog000000.bson`, `oplog000001.bson`, …, each a plain
 * concatenation of whole oplog entries as the server sent them (mongodump's `.bson`
 * format: `bsondump oplog000000.bson` reads one), in `ts` order within a file and from
 * one file to the next. Only the highest-numbered file may end in a torn entry (a crash
 * mid-write): the writer truncates it on its next start (oplog_recovery.ts); a reader
 * that finds one refuses it, naming the file and offset.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { deserialize } from 'bson';
import { compareOplogTs, entryTs, formatOplogTs, type OplogTs } from './oplog_ts.js';

const FILE_NAME = /^oplog(\d{6,})\.bson$/;

export function oplogFileName(index: number): string {
  return `oplog${String(index).padStart(6, '0')}.bson`;
}

export interface OplogFile {
  readonly index: number;
  readonly path: string;
}

/** A directory that is not a whole streamed oplog as this build writes it, or not the one asked for. */
export class OplogDirError extends Error {
  override readonly name = 'OplogDirError';
}

/**
 * The oplog files in `dir`, in order (none in an empty directory). Other names are
 * ignored. A gap in the numbering is refused: a file of the stream is missing, and what
 * it held with it. The numbers may start above 0: files before a backup's last entry
 * can be pruned.
 */
export async function listOplogFiles(dir: string): Promise<OplogFile[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    throw new OplogDirError(`cannot read ${dir}: ${(err as Error).message}`);
  }
  const files = names
    .map((name) => ({ name, match: FILE_NAME.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ name, match }) => ({ index: Number(match[1]), path: path.join(dir, name) }))
    .sort((a, b) => a.index - b.index);
  for (let i = 1; i < files.length; i += 1) {
    const [before, after] = [files[i - 1] as OplogFile, files[i] as OplogFile];
    if (after.index !== before.index + 1) {
      throw new OplogDirError(
        `${oplogFileName(before.index + 1)} is missing from ${dir}: the entries between ${path.basename(before.path)} and ${path.basename(after.path)} are not there (a part of the stream is lost)`,
      );
    }
  }
  return files;
}

/** One whole document read from a file, and where it starts. */
export interface Frame {
  readonly offset: number;
  readonly bytes: Buffer;
}

/** Why the bytes after a file's run of whole documents are not one. */
export interface Tear {
  /** The bytes there stop short of a whole document: a write cut off, or a file cut. */
  readonly runsPastEnd: boolean;
  readonly reason: string;
}

/** Where a file stops holding whole documents, and why. */
export interface FrameEnd {
  /** The length of the file's run of whole documents. */
  readonly validLength: number;
  /** Undefined when the file ends exactly after a whole document. */
  readonly torn?: Tear;
}

const CHUNK = 1024 * 1024;
/** mongod's largest document (BSONObjMaxInternalSize: 16 MiB + 16 KiB, what mongorestore's SetMaxBSONSize allows an oplog entry). */
const MAX_DOCUMENT = 16 * 1024 * 1024 + 16 * 1024;
const MIN_DOCUMENT = 5;

/**
 * The whole documents of `file` in order, read in 1 MiB chunks (memory: a chunk and the
 * largest document); returns where they end and, if bytes follow that are not a whole
 * document, why (a length prefix cut short, out of range, or running past the end; a
 * document not ending in 0x00). Only framing is checked here: what a document holds is
 * the caller's to check.
 */
export async function* readFrames(file: string): AsyncGenerator<Frame, FrameEnd, void> {
  const handle = await fs.open(file, 'r');
  try {
    let buffered = Buffer.alloc(0);
    let bufferedAt = 0;
    let eof = false;
    const fill = async (need: number): Promise<boolean> => {
      while (buffered.length < need && !eof) {
        const chunk = Buffer.allocUnsafe(Math.max(CHUNK, need - buffered.length));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, bufferedAt + buffered.length);
        if (bytesRead === 0) eof = true;
        buffered = Buffer.concat([buffered, chunk.subarray(0, bytesRead)]);
      }
      return buffered.length >= need;
    };
    const end = (runsPastEnd: boolean, reason: string): FrameEnd => ({ validLength: bufferedAt, torn: { runsPastEnd, reason } });
    for (;;) {
      if (!(await fill(4))) return buffered.length === 0 ? { validLength: bufferedAt } : end(true, `${buffered.length} bytes, too few for a length prefix`);
      const length = buffered.readInt32LE(0);
      if (length < MIN_DOCUMENT || length > MAX_DOCUMENT) return end(false, `a length prefix of ${length}, which no oplog entry has`);
      if (!(await fill(length))) return end(true, `a ${length}-byte entry with only ${buffered.length} bytes written`);
      if (buffered[length - 1] !== 0) return end(false, `a ${length}-byte entry that does not end in 0x00`);
      // A copy: the caller may keep it, and the chunk is not pinned by it.
      yield { offset: bufferedAt, bytes: Buffer.from(buffered.subarray(0, length)) };
      buffered = buffered.subarray(length);
      bufferedAt += length;
    }
  } finally {
    await handle.close();
  }
}

/** One entry of a streamed oplog, raw, with where it was read. */
export interface OplogEntry {
  readonly bytes: Buffer;
  readonly ts: OplogTs;
  readonly file: string;
  readonly offset: number;
}

function tearMessage(file: string, { validLength, torn }: Required<FrameEnd>): string {
  return torn.runsPastEnd
    ? `${file} is torn: the entry at offset ${validLength} runs past the end of the file (${torn.reason}); the stream that wrote it stopped mid-write (hotbackup oplog cuts it off when it next starts in that directory), or the file was cut`
    : `${file} is damaged: the entry at offset ${validLength} is no BSON document (${torn.reason}); the file is damaged or not an oplog file`;
}

/**
 * Every entry of `files` (from listOplogFiles), in order, checked as it is read: a torn
 * or damaged file, an entry without a Timestamp `ts`, and a `ts` that does not increase
 * (within a file or from one to the next) are refused with an OplogDirError naming the
 * file and offset. A reader cannot tell a torn tail a streamer will still cut from one
 * it will not, so it refuses both: what it would apply must be all there.
 */
export async function* readOplogEntries(files: readonly OplogFile[]): AsyncGenerator<OplogEntry, void, void> {
  let previous: OplogEntry | undefined;
  for (const file of files) {
    const frames = readFrames(file.path);
    for (;;) {
      const next = await frames.next();
      if (next.done === true) {
        if (next.value.torn !== undefined) throw new OplogDirError(tearMessage(file.path, next.value as Required<FrameEnd>));
        break;
      }
      const { bytes, offset } = next.value;
      let ts: OplogTs;
      try {
        ts = entryTs(bytes);
      } catch (err) {
        throw new OplogDirError(`${file.path}: the entry at offset ${offset} is not an oplog entry (${(err as Error).message})`);
      }
      if (previous !== undefined && compareOplogTs(ts, previous.ts) <= 0) {
        throw new OplogDirError(
          `${file.path}: the entry at offset ${offset} (ts ${formatOplogTs(ts)}) does not come after the one before it (ts ${formatOplogTs(previous.ts)} in ${path.basename(previous.file)}): entries out of order or repeated`,
        );
      }
      previous = { bytes, ts, file: file.path, offset };
      yield previous;
    }
  }
}

/** An entry decoded as it was written (promoteValues off: Int32, Long, Double stay what they were, for applyOps). */
export function decodeOplogEntry(entry: OplogEntry): Record<string, unknown> {
  try {
    return deserialize(entry.bytes, { promoteValues: false });
  } catch (err) {
    throw new OplogDirError(`${entry.file}: the entry at offset ${entry.offset} is not valid BSON: ${(err as Error).message}`);
  }
}
