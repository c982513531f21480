/**
 * The layout of a streamed oplog directory, for its writer and its readers (replay,
 * restore): numbered files `oplog000000.bson`, `oplog000001.bson`, …, each a plain
 * concatenation of whole oplog entries as the server sent them (mongodump's `.bson`
 * format: `bsondump oplog000000.bson` reads one), in `ts` order within a file and from
 * one file to the next. Only the highest-numbered file may end in a torn entry (a crash
 * mid-write): the writer truncates it on its next start (oplog_recovery.ts).
 */
import fs from 'node:fs/promises';
import path from 'node:path';

const FILE_NAME = /^oplog(\d{6,})\.bson$/;

export function oplogFileName(index: number): string {
  return `oplog${String(index).padStart(6, '0')}.bson`;
}

export interface OplogFile {
  readonly index: number;
  readonly path: string;
}

/** A directory that is not a streamed oplog as this build writes it. */
export class OplogDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OplogDirError';
  }
}

/**
 * The oplog files in `dir`, in order. Other names are ignored. A gap in the numbering
 * is refused: a file of the stream is missing, and what it held with it.
 */
export async function listOplogFiles(dir: string): Promise<OplogFile[]> {
  const files = (await fs.readdir(dir))
    .map((name) => ({ name, match: FILE_NAME.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ name, match }) => ({ index: Number(match[1]), path: path.join(dir, name) }))
    .sort((a, b) => a.index - b.index);
  files.forEach((file, position) => {
    if (file.index !== position) {
      throw new OplogDirError(`${dir} lacks ${oplogFileName(position)} (it has ${path.basename(file.path)}): a part of the stream is missing`);
    }
  });
  return files;
}

/** One whole document read from a file, and where it starts. */
export interface Frame {
  readonly offset: number;
  readonly bytes: Buffer;
}

/** Where a file stops holding whole documents, and why. */
export interface FrameEnd {
  /** The length of the file's run of whole documents. */
  readonly validLength: number;
  /** Undefined when the file ends exactly after a whole document. */
  readonly torn?: string;
}

const CHUNK = 1024 * 1024;
/** mongod's largest document (BSONObjMaxInternalSize: 16 MiB + 16 KiB). */
const MAX_DOCUMENT = 16 * 1024 * 1024 + 16 * 1024;
const MIN_DOCUMENT = 5;

/**
 * The whole documents of `file` in order, read in 1 MiB chunks; returns where they end
 * and, if bytes follow that are not a whole document, why (a length prefix cut short,
 * out of range, or running past the end; a document not ending in 0x00). Only framing is
 * checked here: what a document holds is the caller's to check.
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
    for (;;) {
      if (!(await fill(4))) {
        return buffered.length === 0 ? { validLength: bufferedAt } : { validLength: bufferedAt, torn: `${buffered.length} bytes, too few for a length prefix` };
      }
      const length = buffered.readInt32LE(0);
      if (length < MIN_DOCUMENT || length > MAX_DOCUMENT) return { validLength: bufferedAt, torn: `a length prefix of ${length}, not a document's` };
      if (!(await fill(length))) return { validLength: bufferedAt, torn: `a ${length}-byte document with only ${buffered.length} bytes written` };
      if (buffered[length - 1] !== 0) return { validLength: bufferedAt, torn: `a ${length}-byte document that does not end in 0x00` };
      // A copy: the caller may keep it, and the chunk is not pinned by it.
      yield { offset: bufferedAt, bytes: Buffer.from(buffered.subarray(0, length)) };
      buffered = buffered.subarray(length);
      bufferedAt += length;
    }
  } finally {
    await handle.close();
  }
}

/**
 * Every entry of a streamed oplog directory, in order, as raw BSON: what replay reads.
 * A torn tail of the last file (a streamer killed mid-write, not restarted since) ends
 * the stream at the last whole entry, as the streamer's own recovery would cut it; a torn
 * earlier file is damage, and throws.
 */
export async function* readOplogEntries(dir: string): AsyncGenerator<Buffer, void, void> {
  const files = await listOplogFiles(dir);
  for (const [position, file] of files.entries()) {
    const frames = readFrames(file.path);
    for (;;) {
      const next = await frames.next();
      if (next.done === true) {
        if (next.value.torn !== undefined && position !== files.length - 1) {
          throw new OplogDirError(`${file.path} is damaged at byte ${next.value.validLength} (${next.value.torn}), and is not the last file: entries are lost`);
        }
        break;
      }
      yield next.value.bytes;
    }
  }
}
