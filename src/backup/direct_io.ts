/**
 * Writing a copy around the page cache (O_DIRECT), for the copy threads (file_copy.ts).
 *
 * Why: a buffered copy fills the page cache with dirty pages, and each copy thread's
 * fsync then waits for all of its file at once; the disk idles while threads fill
 * memory and is flooded when they flush (docs/performance.md, section 5). With O_DIRECT
 * each write goes to the device as it is made, so two threads keep the disk busy all
 * along, the fsync at the end of a file has only metadata left to write, and the copy
 * leaves no gigabytes of dirty pages behind for mongod's own flushes to queue behind.
 *
 * O_DIRECT wants the buffer's address, the file offset and the length aligned to the
 * device's logical block size (open(2), "O_DIRECT"). Node gives no way to ask for an
 * aligned Buffer nor to read a Buffer's address, so the alignment is found by trying:
 * one write of one block into a probe file beside the copies, at successive offsets
 * into an over-allocated buffer, until the kernel stops answering EINVAL. A filesystem
 * that refuses O_DIRECT (EINVAL at open) gets the buffered path instead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

/** The largest alignment a Linux block device asks of O_DIRECT (4 KiB logical blocks). */
export const DIRECT_IO_ALIGNMENT = 4096;
/** Offsets into the raw buffer are tried in this step: what malloc aligns to on 64-bit. */
const PROBE_STEP = 16;

const O_DIRECT = fs.constants.O_DIRECT ?? 0;

/** open(2) flags for a new destination file written with O_DIRECT. */
export function directCreateFlags(): number {
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
  return O_WRONLY | O_CREAT | O_EXCL | O_DIRECT;
}

/**
 * A view of `raw` (at least chunkSize + DIRECT_IO_ALIGNMENT bytes) whose address suits
 * O_DIRECT on the filesystem of `dir`, or undefined if that filesystem takes no O_DIRECT.
 */
export function findDirectBuffer(dir: string, raw: Buffer, chunkSize: number): Buffer | undefined {
  if (O_DIRECT === 0 || raw.length < chunkSize + DIRECT_IO_ALIGNMENT) return undefined;
  const probe = path.join(dir, `.hotbackup-direct-probe-${process.pid}-${threadId}`);
  let fd: number;
  try {
    fd = fs.openSync(probe, directCreateFlags(), 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw err;
  }
  try {
    for (let offset = 0; offset < DIRECT_IO_ALIGNMENT; offset += PROBE_STEP) {
      try {
        fs.writeSync(fd, raw, offset, DIRECT_IO_ALIGNMENT, 0);
        return raw.subarray(offset, offset + chunkSize);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      }
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(probe, { force: true });
  }
}
