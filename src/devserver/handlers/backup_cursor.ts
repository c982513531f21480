/**
 * `$backupCursor` and `$backupCursorExtend`, as Percona Server answers them
 * (src/mongo/db/storage/wiredtiger/wiredtiger_backup_cursor_hooks.cpp, openBackupCursor and
 * extendBackupCursor), with the options checked as in backup_cursor_options.ts.
 */
import { Long, Timestamp, UUID } from 'bson';
import type { Document } from '../bson.js';
import type { CommandContext } from './handler.js';
import type { CursorSource } from '../cursors.js';
import type { BackupCursorHandle } from '../storage/storage_engine.js';
import type { ServerState } from '../state.js';
import { firstBatchReply } from './read.js';
import { cursorBatchSize } from './common.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { parseBackupCursorExtendOptions, parseBackupCursorOptions, type BackupCursorOptions } from './backup_cursor_options.js';
import type { Oplog, OpTime } from '../replication/oplog.js';
import { parseMaxTimeMS } from '../max_time.js';

/**
 * The backup cursor's documents: metadata, then one per file. It is tailable, as
 * in mongod: once drained it stays open, answering getMore with empty batches, so a
 * backup tool can hold it (and with it WiredTiger's checkpoint) while copying.
 */
class BackupCursorSource implements CursorSource {
  readonly exhausted = false;

  constructor(
    private readonly pending: Document[],
    private readonly handle: BackupCursorHandle,
    private readonly onClose: () => void,
  ) {}

  next(max: number): Document[] {
    return this.pending.splice(0, max);
  }

  close(): void {
    this.handle.close();
    this.onClose();
  }
}

/**
 * `{disableIncrementalBackup: true}`: MongoDB Enterprise opens a WiredTiger backup cursor
 * with `incremental=(force_stop=true)` only to drop incremental history, lists no file,
 * and holds the backup state until the cursor closes (backup_cursor_service.cpp).
 * WiredTiger 3.2.1 keeps no incremental history, so there is nothing to drop or list.
 */
function disabledBackup(): BackupCursorHandle {
  return {
    backupId: new UUID(),
    files: [],
    checkpointMark: undefined,
    extend(): never {
      throw new DevServerError(DevServerCodes.IllegalOperation, 'a backup cursor opened with disableIncrementalBackup has no files to extend');
    },
    close: () => undefined,
  };
}

const toBson = (op: OpTime): Document => ({ ts: op.ts, t: op.t });

function isOpTime(v: unknown): v is OpTime {
  return typeof v === 'object' && v !== null && 'ts' in v && (v as { ts: unknown }).ts instanceof Timestamp;
}

/** Aborted when the backup cursor closes, to wake a $backupCursorExtend waiting on it. */
const closedSignals = new WeakMap<BackupCursorHandle, AbortSignal>();

export function openBackupCursor(spec: unknown, cmd: Document, ctx: CommandContext): Document {
  const { state } = ctx;
  const options = parseBackupCursorOptions(spec);
  if (options.incrementalBackup) {
    // WiredTiger 3.2.1 has no block-based incremental backup (`incremental=(...)` came in 10.0).
    throw new DevServerError(DevServerCodes.NotImplemented, 'incremental backup cursors are not supported by the hotbackup dev server (WiredTiger 3.2.1 has no incremental backup)');
  }
  if (state.fsyncLock.locked) {
    throw new DevServerError(DevServerCodes.BackupCursorWhileFsyncLocked, 'The node is currently fsyncLocked.');
  }
  if (state.backupCursor !== undefined) {
    throw new DevServerError(DevServerCodes.BackupCursorAlreadyOpen, 'The existing backup cursor must be closed before $backupCursor can succeed.');
  }
  // PSMDB reads lastApplied before opening the cursor, the first entry after. Before
  // replSetInitiate there is no oplog, and the metadata has no oplog fields.
  const oplogEnd = state.oplog?.lastApplied();
  const handle = options.disableIncrementalBackup ? disabledBackup() : state.engine.openBackupCursor();
  let metadata: Document;
  try {
    metadata = backupMetadata(state, handle, options, state.oplog, oplogEnd);
  } catch (err) {
    handle.close();
    throw err;
  }
  state.backupCursor = handle;
  // The backup's oplogStart stays readable while the cursor is open (oplog.ts, pin).
  const oplogStart = (metadata['oplogStart'] as OpTime | undefined)?.ts;
  const unpin = oplogStart === undefined ? undefined : state.oplog?.pin(oplogStart);
  state.log.info({ backupId: handle.backupId.toHexString(), files: handle.files.length }, 'backup cursor opened');
  const documents = [{ metadata }, ...handle.files.map((f) => ({ filename: f.filename, fileSize: Long.fromNumber(f.fileSize) }))];
  const closed = new AbortController();
  closedSignals.set(handle, closed.signal);
  const source = new BackupCursorSource(documents, handle, () => {
    closed.abort();
    unpin?.();
    state.backupCursor = undefined;
    state.log.info({ backupId: handle.backupId.toHexString() }, 'backup cursor closed');
  });
  return firstBatchReply(ctx, { ns: 'admin.$cmd.aggregate', source, batchSize: cursorBatchSize(cmd) ?? Infinity, tailable: true });
}

/** The metadata document, fields in PSMDB's order. */
function backupMetadata(
  state: ServerState,
  handle: BackupCursorHandle,
  options: BackupCursorOptions,
  oplog: Oplog | undefined,
  oplogEnd: OpTime | undefined,
): Document {
  const metadata: Document = { backupId: handle.backupId, dbpath: state.engine.dbpath };
  let checkpointTimestamp: Timestamp | undefined;
  if (oplog !== undefined && oplogEnd !== undefined) {
    const oplogStart = oplog.firstEntry();
    if (oplogStart === undefined) throw new DevServerError(DevServerCodes.BackupCursorNoOplogRecords, 'No oplog records were found.');
    if (oplogStart.ts.compare(oplogEnd.ts) > 0) {
      throw new DevServerError(
        DevServerCodes.BackupCursorOplogRolledOver,
        `Oplog rolled over while establishing the backup cursor. oplogStart: ${String(oplogStart.ts)} oplogEnd: ${String(oplogEnd.ts)}`,
      );
    }
    metadata['oplogStart'] = toBson(oplogStart);
    metadata['oplogEnd'] = toBson(oplogEnd);
    // The newest entry the backed-up checkpoint holds (see StorageEngine.setCheckpointMarker).
    // None when no checkpoint has been taken since the oplog began, as PSMDB omits it
    // without a stable checkpoint; the oplog keeps every entry back to it otherwise.
    const mark = handle.checkpointMark;
    if (isOpTime(mark) && mark.ts.compare(oplogStart.ts) >= 0) checkpointTimestamp = mark.ts;
  }
  if (options.disableIncrementalBackup) {
    // Enterprise's wording (backup_cursor_service.cpp), which its jstests check.
    metadata['message'] = 'Close the cursor to release all incremental information and resources.';
  }
  if (checkpointTimestamp !== undefined) metadata['checkpointTimestamp'] = checkpointTimestamp;
  metadata['disableIncrementalBackup'] = options.disableIncrementalBackup;
  metadata['incrementalBackup'] = options.incrementalBackup;
  metadata['blockSize'] = options.blockSize;
  if (options.thisBackupName !== undefined) metadata['thisBackupName'] = options.thisBackupName;
  if (options.srcBackupName !== undefined) metadata['srcBackupName'] = options.srcBackupName;
  return metadata;
}

/**
 * `$backupCursorExtend: {backupId, timestamp}`: waits until this node has applied an entry
 * at or after `timestamp` and it is majority-committed (a single node: applied is
 * majority), syncs the journal, and lists the journal files written since the backup
 * opened. Not tailable: the cursor ends with its last file.
 */
export async function extendBackupCursor(spec: unknown, cmd: Document, ctx: CommandContext): Promise<Document> {
  const { state } = ctx;
  const { backupId, timestamp } = parseBackupCursorExtendOptions(spec);
  // PSMDB's order (WiredTigerBackupCursorHooks::extendBackupCursor).
  if (state.fsyncLock.locked) {
    throw new DevServerError(DevServerCodes.BackupCursorWhileFsyncLocked, 'The node is currently fsyncLocked.');
  }
  const handle = state.backupCursor;
  if (handle === undefined) {
    throw new DevServerError(DevServerCodes.BackupCursorAlreadyOpen, 'Cannot extend backup cursor because backup cursor is not open');
  }
  if (!handle.backupId.equals(backupId)) {
    throw new DevServerError(DevServerCodes.BackupCursorExtendWrongId, 'backupId provided to $backupCursorExtend does not match active backup');
  }
  // PSMDB asks whether the node was started with --replSet
  // (`replCoord->getSettings().usingReplSets()`, wiredtiger_backup_cursor_hooks.cpp), not
  // whether the set is initiated. An uninitiated member never gets here: in STARTUP it
  // refuses the aggregate itself (NotPrimaryOrSecondary), so it has no cursor to extend.
  if (state.replSet === undefined) {
    throw new DevServerError(DevServerCodes.BackupCursorExtendNotReplSet, 'Cannot extend backup cursor when replication is not enabled');
  }
  // Before the wait, as mongod's "Extending backup cursor" (backup_cursor_service.cpp, 24201).
  state.log.info({ backupId: backupId.toHexString(), extendTo: timestamp.toString() }, 'extending backup cursor');
  const closed = closedSignals.get(handle);
  try {
    await waitForApplied(state.oplog, timestamp, cmd, closed === undefined ? ctx.signal : AbortSignal.any([ctx.signal, closed]));
  } catch (err) {
    if (closed?.aborted !== true || ctx.signal.aborted) throw err;
  }
  // Closed while waiting: PSMDB's answer to an extend of a closed cursor
  // (WiredTigerBackupCursorHooks::extendBackupCursor, 50886). PSMDB itself holds its
  // mutex through the wait, so there the close would wait for the extend instead.
  if (state.backupCursor !== handle) {
    throw new DevServerError(DevServerCodes.BackupCursorAlreadyOpen, 'Cannot extend backup cursor because backup cursor is not open');
  }
  const files = handle.extend();
  state.log.info({ backupId: backupId.toHexString(), extendTo: timestamp.toString(), files: files.length }, 'backup cursor extended');
  // `{filename}` only, as PSMDB and mongod send it (PSMDB's
  // src/mongo/db/pipeline/document_source_backup_cursor_extend.cpp builds
  // `Document doc = {{"filename", ...}}`): no size, so a client copies each file whole.
  const documents = files.map((f) => ({ filename: f.filename }));
  return firstBatchReply(ctx, {
    ns: 'admin.$cmd.aggregate',
    source: new ExtendSource(documents),
    batchSize: cursorBatchSize(cmd) ?? Infinity,
  });
}

class ExtendSource implements CursorSource {
  constructor(private readonly pending: Document[]) {}
  get exhausted(): boolean {
    return this.pending.length === 0;
  }
  next(max: number): Document[] {
    return this.pending.splice(0, max);
  }
  close(): void {
    this.pending.length = 0;
  }
}

/** PSMDB's awaitTimestampCommitted, bounded by the command's maxTimeMS as mongod's wait is. */
async function waitForApplied(oplog: Oplog | undefined, target: Timestamp, cmd: Document, clientGone: AbortSignal): Promise<void> {
  if (oplog === undefined) {
    throw new DevServerError(DevServerCodes.NotYetInitialized, 'Cannot wait for a timestamp before the replica set is initiated');
  }
  const maxTimeMS = parseMaxTimeMS(cmd);
  // A timer of our own rather than AbortSignal.timeout, whose timer is unref'd.
  const expired = new AbortController();
  const timer = maxTimeMS > 0 ? setTimeout(() => expired.abort(), maxTimeMS) : undefined;
  const signal = AbortSignal.any([clientGone, expired.signal]);
  try {
    for (;;) {
      const last = oplog.lastApplied();
      if (last !== undefined && last.ts.compare(target) >= 0) return;
      try {
        await oplog.waitForNewer(last?.ts ?? new Timestamp(Long.ZERO), signal);
      } catch (err) {
        if (expired.signal.aborted && !clientGone.aborted) {
          throw new DevServerError(DevServerCodes.MaxTimeMSExpired, 'operation exceeded time limit');
        }
        throw err;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
