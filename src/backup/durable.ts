/**
 * Writes that survive a crash or power cut, in restic's order
 * (internal/backend/local/local.go): temp file in the same directory, write, check
 * the byte count, fsync, rename over the target, fsync the directory. A reader then
 * sees either the old file or the whole new one, never a torn write, and the rename
 * itself is on disk when we return.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from './io_error.js';
import { BACKUP_FILE_MODE, setModeOf } from './owner_only.js';

/** Error codes meaning "this filesystem cannot fsync a directory", which restic ignores too. */
const DIR_FSYNC_UNSUPPORTED: ReadonlySet<string> = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR']);

/**
 * fsyncs a directory so the entries created, renamed or removed in it are durable.
 * Filesystems that do not support it (some network and FUSE ones) are tolerated:
 * there is nothing more we could do on them.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    if (!DIR_FSYNC_UNSUPPORTED.has(errorCode(err) ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Whether `name` is the temp file writeFileDurably writes `basename` through
 * (`.<basename>.<12 hex digits>.tmp`): left over only when a crash came between the
 * write and the rename; never the file itself.
 */
export function isTempFileOf(name: string, basename: string): boolean {
  return name.startsWith(`.${basename}.`) && /^\.[0-9a-f]{12}\.tmp$/.test(name.slice(basename.length + 1));
}

/**
 * Replaces `file` with `data` atomically and durably. On failure the temp file is
 * removed and `file` is untouched. Out-of-space and permission errors are thrown as
 * they are (with Node's code/errno/syscall/path): retrying would not help. The new
 * file has `mode` (default 0600: manifests, markers and state files name what a
 * backup holds) whatever the umask (owner_only.ts).
 */
export async function writeFileDurably(file: string, data: string | Buffer, mode: number = BACKUP_FILE_MODE): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = path.dirname(file);
  // Dot-prefixed and random: never mistaken for the real file, never clashing with a
  // concurrent writer; `wx` makes sure of the latter.
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', mode);
  let renamed = false;
  try {
    try {
      await setModeOf(handle, mode);
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, written);
        if (bytesWritten === 0) break;
        written += bytesWritten;
      }
      // restic checks the size it wrote rather than trusting the write calls: a short
      // write without an error is how some full disks fail.
      const { size } = await handle.stat();
      if (written !== bytes.length || size !== bytes.length) {
        throw new Error(`wrote ${size} bytes to ${temp} instead of the expected ${bytes.length}`);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
    renamed = true;
    await fsyncDirectory(dir);
  } finally {
    if (!renamed) await fs.rm(temp, { force: true }).catch(() => undefined);
  }
}

/**
 * Replaces `file` as writeFileDurably does; when that cannot be done (no room for a new
 * file, a directory that may not gain entries), writes `text` over the existing `file`
 * in place, truncates it to that length and fsyncs it. For a small file whose stale
 * content would mislead more than a torn one (a torn write reads as invalid, which its
 * readers take for "unknown"). Throws writeFileDurably's error when there is no file
 * to write over, or it cannot be opened for writing either.
 */
export async function replaceFileOrRewriteInPlace(file: string, text: string): Promise<void> {
  try {
    await writeFileDurably(file, text);
  } catch (err) {
    const handle = await fs.open(file, 'r+').catch(() => {
      throw err;
    });
    try {
      await handle.write(text, 0, 'utf8');
      await handle.truncate(Buffer.byteLength(text));
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
