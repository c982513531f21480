/**
 * One file a copy thread writes (file_copy.ts): with O_DIRECT where a write is aligned,
 * through the page cache where it is not.
 *
 * Direct writes need offsets and lengths in whole blocks (direct_io.ts). A copy's chunks
 * are, except: the last chunk of a file (its tail shorter than a block), anything after
 * a short read (the offset is no longer aligned), and the rest of a short write. Those
 * bytes go through a second, buffered descriptor of the same file; fsync is per inode,
 * so one fsync makes both descriptors' writes durable, and the page cache and the
 * direct writes never cover the same bytes.
 */
import fs from 'node:fs';
import { DIRECT_IO_ALIGNMENT, directCreateFlags } from './direct_io.js';
import { MODELESS } from './owner_only.js';

export class DestinationFile {
  private buffered: number | undefined;

  private constructor(
    readonly path: string,
    /** Opened O_DIRECT when `direct`; the buffered descriptor otherwise. */
    private readonly fd: number,
    private readonly direct: boolean,
  ) {
    if (!direct) this.buffered = fd;
  }

  /**
   * Creates `path` (which must not exist) with `mode`, set as such: open(2) applies the
   * umask to it, and a umask that takes the owner's bits (0277) would leave a file its
   * owner cannot write once closed. A filesystem without Unix modes (EPERM, ENOTSUP on a
   * file we just created) keeps the mode its mount gives.
   */
  static create(path: string, mode: number, direct: boolean): DestinationFile {
    const fd = withPath(path, () => fs.openSync(path, direct ? directCreateFlags() : 'wx', mode));
    try {
      withPath(path, () => fs.fchmodSync(fd, mode));
    } catch (err) {
      if (!MODELESS.has((err as NodeJS.ErrnoException).code ?? '')) {
        fs.closeSync(fd);
        throw err;
      }
    }
    return new DestinationFile(path, fd, direct);
  }

  /** Writes all of `chunk` at `position`. */
  write(chunk: Buffer, position: number): void {
    let done = 0;
    if (this.direct && position % DIRECT_IO_ALIGNMENT === 0) {
      const aligned = chunk.length - (chunk.length % DIRECT_IO_ALIGNMENT);
      // One try: a short direct write leaves the rest unaligned, so the rest goes buffered.
      if (aligned > 0) done = withPath(this.path, () => fs.writeSync(this.fd, chunk, 0, aligned, position));
    }
    if (done < chunk.length) this.writeBuffered(chunk.subarray(done), position + done);
  }

  /** Sets the file's size: the end of a copy that skipped a hole at its end. */
  truncate(size: number): void {
    withPath(this.path, () => fs.ftruncateSync(this.fd, size));
  }

  fsync(): void {
    withPath(this.path, () => fs.fsyncSync(this.fd));
  }

  /**
   * Closes both descriptors, and throws the first error: a failed close of the
   * destination can be the first report of a lost write.
   */
  close(): void {
    let failure: unknown;
    for (const fd of new Set([this.buffered, this.fd])) {
      if (fd === undefined) continue;
      try {
        withPath(this.path, () => fs.closeSync(fd));
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Closes, keeping quiet: the caller is already failing with a better error. */
  closeQuietly(): void {
    try {
      this.close();
    } catch {
      // the first error is the one to report
    }
  }

  private writeBuffered(bytes: Buffer, position: number): void {
    this.buffered ??= withPath(this.path, () => fs.openSync(this.path, 'r+'));
    const fd = this.buffered;
    let done = 0;
    while (done < bytes.length) {
      const written = withPath(this.path, () => fs.writeSync(fd, bytes, done, bytes.length - done, position + done));
      if (written === 0) throw Object.assign(new Error(`write to ${this.path} made no progress`), { path: this.path });
      done += written;
    }
  }
}

/**
 * Runs an fd operation and names `file` in its error: Node's errors from calls on a
 * file descriptor carry code/errno/syscall but no path, and the caller's errmsg needs one.
 */
export function withPath<T>(file: string, operation: () => T): T {
  try {
    return operation();
  } catch (err) {
    if (err instanceof Error && 'syscall' in err && !('path' in err)) Object.assign(err, { path: file });
    throw err;
  }
}
