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
 * Only on ext4 and XFS, the local block filesystems it was measured on: NFS takes
 * O_DIRECT as one synchronous round trip per write, tmpfs has no disk to keep busy, and
 * btrfs turns a direct write it cannot take into a buffered one anyway.
 *
 * O_DIRECT wants the buffer's address, the file offset and the length aligned to the
 * device's logical block size (open(2), "O_DIRECT"). Node gives no way to ask for an
 * aligned Buffer nor to read a Buffer's address, so the alignment is found by trying:
 * one write of one block into a probe file beside the copies, at successive offsets
 * into an over-allocated buffer, until the kernel stops answering EINVAL. Offsets and
 * lengths are kept to multiples of DIRECT_IO_ALIGNMENT (destination_file.ts), which
 * satisfies any logical block size up to 4 KiB.
 */
import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

/** The largest alignment a Linux block device asks of O_DIRECT (4 KiB logical blocks). */
export const DIRECT_IO_ALIGNMENT = 4096;
/** Offsets into the raw buffer are tried in this step: what malloc aligns to on 64-bit. */
const PROBE_STEP = 16;

const O_DIRECT = fs.constants.O_DIRECT ?? 0;

/** statfs(2) f_type of the filesystems direct writes are used on (linux/magic.h). */
const DIRECT_WRITE_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
]);

/** open(2) flags for a new destination file written with O_DIRECT. */
export function directCreateFlags(): number {
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
  return O_WRONLY | O_CREAT | O_EXCL | O_DIRECT;
}

/**
 * A view of `raw` (at least chunkSize + DIRECT_IO_ALIGNMENT bytes) whose address suits
 * O_DIRECT on the filesystem of `dir`, or undefined where copies are written buffered:
 * not Linux, not ext4 or XFS, a chunk size that is not a multiple of the alignment, or
 * a filesystem that refuses O_DIRECT.
 */
export function findDirectBuffer(dir: string, raw: Buffer, chunkSize: number): Buffer | undefined {
  if (O_DIRECT === 0 || chunkSize % DIRECT_IO_ALIGNMENT !== 0 || raw.length < chunkSize + DIRECT_IO_ALIGNMENT) return undefined;
  if (!DIRECT_WRITE_FILESYSTEMS.has(fs.statfsSync(dir).type)) return undefined;
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
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw Object.assign(err as Error, { path: probe });
      }
    }
    return undefined;
  } finally {
    try {
      fs.closeSync(fd);
    } finally {
      fs.rmSync(probe, { force: true });
    }
  }
}
