/**
 * A hot backup through WiredTiger's `backup:` cursor, as mongod's $backupCursor.
 *
 * What WiredTiger 3.2.1 lists (found by experiment, see test/.../backup.test.ts):
 *   - every data file: `_mdb_catalog.wt`, `collection-*.wt`, `index-*.wt`;
 *   - `WiredTiger.backup`, `WiredTiger.basecfg` and `WiredTiger`;
 *   - the log files up to the current one, as bare names (`WiredTigerLog.0000000001`),
 *     each as long as WT preallocates it (100 MB);
 *   - NOT `WiredTiger.wt`, `WiredTiger.turtle`, `WiredTigerLAS.wt`, `WiredTiger.lock`.
 * Opening the cursor moves logging on to a new log file, which is not listed: a
 * restore holds exactly what was committed when the cursor opened, however long
 * the copy takes (no later write ever came back in our tests).
 *
 * What a restore needs: exactly those files, each copied up to its listed size,
 * with the logs put back in `journal/` (our log path). `WiredTiger.backup` is the
 * metadata as of the cursor's opening; a `wiredtiger_open` that finds it rebuilds
 * `WiredTiger.wt` and the turtle file from it, then replays the copied log from
 * the backed-up checkpoint. `WiredTigerLAS.wt` is recreated empty.
 *
 * While the cursor is open: checkpoints run but cannot overwrite the backed-up
 * checkpoint's blocks, log files are not archived, and dropping a table fails
 * with EBUSY (the engine retries such drops later). Only one backup cursor may be
 * open per connection (WT answers EINVAL, "there is already a backup cursor open").
 *
 * Extending it (mongod's extendBackupCursor): a duplicate cursor with `target=("log:")`
 * on the backup cursor. What WiredTiger 3.2.1 lists on it, found by experiment
 * (test/devserver/storage/backup_extend.test.ts): every log file present, from the first
 * one the backup listed up to the one being written, in directory order (not sorted);
 * it switches to no new log file (the one being written is listed, up to what is
 * written), and asking again lists the same files again, grown. Since no log file is
 * archived while the backup is open, these are exactly the files a copy needs to replay
 * up to the extension: the ones the backup did not list are returned, as mongod's
 * getUniqueFiles does, each up to its size once the journal is synced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UUID } from 'bson';
import { CommandError } from '../../errors.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { backupFilePath, STORAGE_BSON } from './dbpath.js';
import type { BackupCursorHandle, BackupFile } from './storage_types.js';
import type { WtConnection } from './wiredtiger.js';

/**
 * Opens the cursor on its own session and keeps both open until close().
 * onClose runs once, after WiredTiger has released the backup.
 */
export function openBackupCursor(conn: WtConnection, dbpath: string, checkpointMark: unknown, onClose: () => void): BackupCursorHandle {
  const session = conn.openSession();
  try {
    // Commits not yet synced may still sit in WiredTiger's log buffer: push them
    // into the log file, so the backup holds everything committed before it opened.
    session.logFlush('sync=on');
    const cursor = session.openCursor('backup:');
    const names: string[] = [];
    while (cursor.next()) names.push(cursor.getKey() as string);
    // mongod's backups carry storage.bson too: the copy is then a usable dbpath.
    const files: BackupFile[] = [...names.map((n) => backupFilePath(dbpath, n)), path.join(dbpath, STORAGE_BSON)]
      .map((filename) => ({ filename, fileSize: fs.statSync(filename).size }));
    const listed = new Set(files.map((f) => f.filename));
    let open = true;
    return {
      backupId: new UUID(),
      files,
      checkpointMark,
      extend(): BackupFile[] {
        if (!open) throw new DevServerError(DevServerCodes.IllegalOperation, 'the backup cursor is closed');
        session.logFlush('sync=on');
        const dup = cursor.duplicate('target=("log:")');
        const logs: string[] = [];
        try {
          while (dup.next()) logs.push(dup.getKey() as string);
        } finally {
          dup.close();
        }
        return logs
          .map((n) => backupFilePath(dbpath, n))
          .filter((filename) => !listed.has(filename))
          .sort()
          .map((filename) => ({ filename, fileSize: fs.statSync(filename).size }));
      },
      close(): void {
        if (!open) return;
        open = false;
        try {
          // The cursor is closed here and only here. Dropping the last reference to it
          // would let the garbage collector close it, silently ending the backup
          // (log archiving resumes and listed journal files vanish mid-copy).
          if (cursor.isOpen) cursor.close();
          // After a connection close, there is nothing left to do.
          if (session.isOpen) session.close();
        } finally {
          onClose();
        }
      },
    };
  } catch (err) {
    if (session.isOpen) session.close();
    throw err;
  }
}

export function backupCursorAlreadyOpen(): CommandError {
  return new DevServerError(
    DevServerCodes.BackupCursorAlreadyOpen,
    'The existing backup cursor must be closed before $backupCursor can succeed.',
  );
}
