/**
 * Appends oplog entries to a streamed oplog directory (oplog_files.ts), durably and
 * rotated by size. A batch counts as backed up only once `append` has returned: by then
 * its bytes are fsynced, and so is the directory entry of every file it created (a file
 * whose name is not yet on disk is lost with its bytes after a power cut: fsync(2), "Calling
 * fsync() does not necessarily ensure that the entry in the directory containing the file
 * has also reached disk"). A file is fsynced whole before the next is created, so only
 * the last file can ever end torn. Each run writes new files only (`wx`), starting at the
 * number recovery gave it: a file completed by an earlier run is never opened for writing.
 */
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDirectory } from '../backup/durable.js';
import { BACKUP_FILE_MODE, setModeOf } from '../backup/owner_only.js';
import { oplogFileName } from './oplog_files.js';

export interface OplogWriterOptions {
  readonly dir: string;
  /** The number of the first file this writer creates. */
  readonly nextIndex: number;
  /** A file is closed, and the next begun, before an entry would take it past this size (one larger entry alone fills a file). */
  readonly rotateBytes: number;
  /** Called once a file is complete (fsynced, closed) and the next is about to begin. */
  readonly onFileComplete?: (file: CompletedFile) => void;
}

export interface CompletedFile {
  readonly file: string;
  readonly bytes: number;
  readonly entries: number;
}

interface OpenFile {
  readonly path: string;
  readonly handle: FileHandle;
  bytes: number;
  entries: number;
}

export class OplogWriter {
  readonly #options: OplogWriterOptions;
  #nextIndex: number;
  #current: OpenFile | undefined;

  constructor(options: OplogWriterOptions) {
    if (!(options.rotateBytes > 0)) throw new RangeError('rotateBytes must be positive');
    this.#options = options;
    this.#nextIndex = options.nextIndex;
  }

  /** The file being written, if one is open. */
  get currentFile(): string | undefined {
    return this.#current?.path;
  }

  /** Writes `entries` (whole BSON documents, in order) and returns once they are durable. */
  async append(entries: readonly Uint8Array[]): Promise<void> {
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    for (const entry of entries) {
      const file = this.#current ?? (await this.#begin());
      if (file.bytes + pendingBytes > 0 && file.bytes + pendingBytes + entry.length > this.#options.rotateBytes) {
        await this.#write(file, pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        await this.#complete(file);
        await this.#begin();
      }
      pending.push(entry);
      pendingBytes += entry.length;
    }
    const file = this.#current;
    if (file !== undefined && pending.length > 0) {
      await this.#write(file, pending, pendingBytes);
      await file.handle.sync();
    }
  }

  /** Closes the open file (its entries are durable already). */
  async close(): Promise<void> {
    const file = this.#current;
    this.#current = undefined;
    await file?.handle.close();
  }

  async #begin(): Promise<OpenFile> {
    const file = path.join(this.#options.dir, oplogFileName(this.#nextIndex));
    const handle = await fs.open(file, 'wx', BACKUP_FILE_MODE);
    try {
      await setModeOf(handle, BACKUP_FILE_MODE);
      await fsyncDirectory(this.#options.dir);
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.#nextIndex += 1;
    this.#current = { path: file, handle, bytes: 0, entries: 0 };
    return this.#current;
  }

  async #complete(file: OpenFile): Promise<void> {
    await file.handle.sync();
    await file.handle.close();
    this.#current = undefined;
    this.#options.onFileComplete?.({ file: file.path, bytes: file.bytes, entries: file.entries });
  }

  /** One positional write of `entries` at the file's end, looping over short writes. */
  async #write(file: OpenFile, entries: readonly Uint8Array[], length: number): Promise<void> {
    if (entries.length === 0) return;
    const bytes = entries.length === 1 ? (entries[0] as Uint8Array) : Buffer.concat(entries, length);
    let written = 0;
    while (written < length) {
      const { bytesWritten } = await file.handle.write(bytes, written, length - written, file.bytes + written);
      // A short write without an error is how some full disks fail (restic checks for it too).
      if (bytesWritten === 0) throw new Error(`wrote ${written} of ${length} bytes to ${file.path}: the disk accepts no more`);
      written += bytesWritten;
    }
    file.bytes += length;
    file.entries += entries.length;
  }
}
