/**
 * The dbpath directory as mongod lays it out: WiredTiger's files, `journal/` for
 * its log, `mongod.lock` and `storage.bson`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { serialize } from 'bson';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { checkRecordedLayout, DEFAULT_LAYOUT, type StorageLayout } from './ident_layout.js';
import { isWtError, openConnection, WtCode, type WtConnection } from './wiredtiger.js';

export const JOURNAL_DIR = 'journal';
export const LOCK_FILE = 'mongod.lock';
export const STORAGE_BSON = 'storage.bson';
/** WiredTiger names its log files `WiredTigerLog.<n>`; they live in journal/. */
export const LOG_FILE_PREFIX = 'WiredTigerLog.';

const DEFAULT_CACHE_MB = 256;
// Main, read and admin sessions, one for a backup cursor, plus WT's own.
const SESSION_MAX = 100;

/**
 * wiredtiger_open's config: logging on, so a restart after a crash runs recovery.
 * `engineConfig` goes last, where WiredTiger lets it override ours key by key, as
 * mongod appends --wiredTigerEngineConfigString (e.g. `log=(file_max=2MB)`, which keeps
 * the rest of `log=(...)`).
 */
export function wiredtigerConfig(cacheSizeMB = DEFAULT_CACHE_MB, engineConfig?: string): string {
  if (!Number.isInteger(cacheSizeMB) || cacheSizeMB < 1) {
    throw new DevServerError(DevServerCodes.BadValue, `cacheSizeMB must be a positive integer, got ${cacheSizeMB}`);
  }
  return [
    'create',
    `log=(enabled=true,path=${JOURNAL_DIR},archive=true)`,
    'checkpoint_sync=true',
    // Commits are not fsync'ed unless asked (writeTransaction's sync, logFlush), as in mongod.
    'transaction_sync=(enabled=false)',
    // No `checkpoint=(wait=N)`: WiredTiger's own checkpoint thread knows nothing of the
    // fsync lock and kept rewriting the journal of a locked server. mongod does not use it
    // either: it runs its own checkpoint thread every syncdelay seconds
    // (src/mongo/db/storage/checkpointer.cpp, Checkpointer::run; WTCheckpointThread in
    // wiredtiger_kv_engine.cpp before 5.0), and its wiredtiger_open config has no
    // `checkpoint=`. The dev server's periodic checkpoint is its own timer too
    // (server.ts, --checkpoint-interval), which skips while fsync-locked.
    `cache_size=${cacheSizeMB}M`,
    `session_max=${SESSION_MAX}`,
    ...(engineConfig === undefined || engineConfig === '' ? [] : [engineConfig]),
  ].join(',');
}

/**
 * Creates the directories, opens WiredTiger, and claims the dbpath. A layout other than
 * the one storage.bson records is refused before anything is touched, as mongod does.
 */
export function openDbpath(dbpath: string, cacheSizeMB?: number, engineConfig?: string, layout: StorageLayout = DEFAULT_LAYOUT): WtConnection {
  const config = wiredtigerConfig(cacheSizeMB, engineConfig);
  checkRecordedLayout(path.join(dbpath, STORAGE_BSON), layout);
  fs.mkdirSync(path.join(dbpath, JOURNAL_DIR), { recursive: true });
  let conn: WtConnection;
  try {
    conn = openConnection(dbpath, config);
  } catch (err) {
    // WT holds a lock on WiredTiger.lock; mongod reports the same case against mongod.lock.
    if (isWtError(err, WtCode.EBUSY)) {
      const lockFile = path.join(dbpath, LOCK_FILE);
      throw new DevServerError(
        DevServerCodes.DBPathInUse,
        `Unable to lock the lock file: ${lockFile} (Resource temporarily unavailable). ` +
          `Another mongod instance is already running on the ${dbpath} directory`,
        { cause: err },
      );
    }
    throw err;
  }
  // Written only once WT's lock is ours, so a refused second instance changes nothing.
  try {
    writeFileDurably(path.join(dbpath, LOCK_FILE), `${process.pid}\n`);
    writeFileDurably(
      path.join(dbpath, STORAGE_BSON),
      serialize({
        storage: { engine: 'wiredTiger', options: { directoryPerDB: layout.directoryPerDB, directoryForIndexes: layout.directoryForIndexes } },
      }),
    );
  } catch (err) {
    conn.close();
    throw err;
  }
  return conn;
}

/** mongod empties mongod.lock on a clean shutdown; a non-empty one means a crash. */
export function markCleanShutdown(dbpath: string): void {
  fs.truncateSync(path.join(dbpath, LOCK_FILE), 0);
}

/** Where a file named by WiredTiger's backup cursor lives: log files are in journal/. */
export function backupFilePath(dbpath: string, name: string): string {
  return name.startsWith(LOG_FILE_PREFIX) ? path.join(dbpath, JOURNAL_DIR, name) : path.join(dbpath, name);
}

function writeFileDurably(file: string, data: string | Uint8Array): void {
  fs.writeFileSync(file, data, { flush: true });
}
