/**
 * The surface a backup tool uses: fsync/fsyncLock, fsyncUnlock (currentOp's `fsyncLock`
 * flag is in current_op.ts), and the `$backupCursor` / `$backupCursorExtend` stages with the
 * error codes of Percona Server and MongoDB Enterprise (PSMDB's
 * src/mongo/db/pipeline/document_source_backup_cursor*.cpp; docs/devserver.md).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Long } from 'bson';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { isCollectionless } from './common.js';
import { extendBackupCursor, openBackupCursor } from './backup_cursor.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

export const BACKUP_STAGES = ['$backupCursor', '$backupCursorExtend'] as const;

async function fsync(cmd: Document, ctx: CommandContext): Promise<Document> {
  const { state } = ctx;
  if (cmd['lock'] !== true) {
    state.engine.checkpoint();
    return { numFiles: 1, ok: 1 };
  }
  if (state.backupCursor !== undefined) {
    throw new DevServerError(DevServerCodes.FsyncLockWhileBackupCursorOpen, 'The node has an open backup cursor; fsyncLock is not allowed.');
  }
  // One fsync lock or unlock at a time, as mongod's fsyncSingleCommandExclusionMutex.
  return state.fsyncLock.exclusively(async () => {
    // As mongod's fsync.cpp: the count goes up first (writers wait from now on, currentOp
    // says fsyncLock), then the first lock flushes, and only then does the command answer.
    // A nested one only increments the count, and the files stay untouched while locked
    // (the FSyncLockThread, which flushes, is started only when `lockCountAtStart == 0`).
    const first = !state.fsyncLock.locked;
    const lockCount = state.fsyncLock.lock();
    if (first) {
      try {
        const delayMs = state.options.fsyncLockDelayMs ?? 0;
        if (delayMs > 0) {
          // --fsync-lock-delay-ms: mongod's command waits for its FSyncLockThread to flush, on
          // a plain condition variable: neither is interrupted if the client goes away
          // (fsync.cpp: acquireFsyncLockSyncCV.wait; the thread is unkillable, SERVER-74657).
          // On a large dataset that takes seconds. A tool must be able to give up on such a
          // lock without waiting, and undo it once it is answered: the proxy's backupAbort is
          // tested against this.
          state.log.info({ delayMs, connectionId: ctx.connection.id }, 'fsyncLock: flushing before the lock is answered (delayed)');
          await sleep(delayMs);
        }
        state.engine.checkpoint();
        state.engine.logFlush(true);
      } catch (err) {
        // mongod: "fsyncLock failed. Lock count reset to 0" (releaseLock, then the error).
        state.fsyncLock.unlock();
        throw err;
      }
    }
    state.log.info({ lockCount, connectionId: ctx.connection.id }, 'fsyncLock acquired');
    return {
      info: 'now locked against writes, use db.fsyncUnlock() to unlock',
      lockCount: Long.fromNumber(lockCount),
      seeAlso: 'http://dochub.mongodb.org/core/fsynccommand',
      ok: 1,
    };
  });
}

function fsyncUnlock(cmd: Document, ctx: CommandContext): Promise<Document> {
  // After a lock still flushing, as in mongod (fsyncSingleCommandExclusionMutex).
  return ctx.state.fsyncLock.exclusively(() => unlockNow(cmd, ctx));
}

function unlockNow(_cmd: Document, ctx: CommandContext): Document {
  const { fsyncLock, log } = ctx.state;
  if (!fsyncLock.locked) {
    // mongod 7.0+ (fsync.cpp, FSyncUnlockCommand): uassert(ErrorCodes::IllegalOperation,
    // "fsyncUnlock called when not locked", lockCount != 0). Before 7.0 it was the same
    // errmsg with no code (an errmsgRun returning false).
    throw new DevServerError(DevServerCodes.IllegalOperation, 'fsyncUnlock called when not locked');
  }
  const lockCount = fsyncLock.unlock();
  log.info({ lockCount, connectionId: ctx.connection.id }, 'fsyncUnlock');
  return { info: 'fsyncUnlock completed', lockCount: Long.fromNumber(lockCount), ok: 1 };
}

/** Handles a pipeline whose first stage is a backup stage; the caller checks that. */
export function runBackupStage(stage: Document, cmd: Document, ctx: CommandContext): Document | Promise<Document> {
  const name = Object.keys(stage)[0] ?? '';
  if (!ctx.state.options.backupCursor) {
    // What MongoDB Community says: it has never heard of these stages.
    throw new DevServerError(DevServerCodes.UnrecognizedPipelineStage, `Unrecognized pipeline stage name: '${name}'`);
  }
  if (ctx.db !== 'admin' || !isCollectionless(cmd)) {
    throw new DevServerError(DevServerCodes.InvalidNamespace, `${name} must be run against the 'admin' database with {aggregate: 1}`);
  }
  if (name === '$backupCursorExtend') return extendBackupCursor(stage[name], cmd, ctx);
  return openBackupCursor(stage[name], cmd, ctx);
}

export const backupCommands: Command[] = [
  { names: ['fsync'], adminOnly: true, run: fsync },
  { names: ['fsyncUnlock'], adminOnly: true, run: fsyncUnlock },
];
