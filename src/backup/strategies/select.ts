/**
 * `auto`, the default: `$backupCursor` where mongod has it; otherwise fsyncLock for
 * the whole copy, but only when the operator allowed blocking writes.
 */
import { MongoServerError } from 'mongodb';
import type { Snapshot, SnapshotStrategy } from './snapshot.js';
import { BackupCursorStrategy, UNRECOGNIZED_STAGE } from './backup_cursor_strategy.js';
import { CommandError, ErrorCodes } from '../../errors.js';

export interface StrategyChoice {
  backupCursor: BackupCursorStrategy;
  /** Built only when blocking writes is allowed. */
  fsyncLock: (() => SnapshotStrategy) | undefined;
}

export const NO_SAFE_STRATEGY =
  'This mongod has no $backupCursor (MongoDB Community), so a hot copy would not be consistent. ' +
  'Allow blocking writes for the whole copy with {backupStart: <dir>, allowWriteBlocking: true} ' +
  'or start the proxy with --allow-write-blocking.';

export async function openSnapshot(choice: StrategyChoice): Promise<Snapshot> {
  try {
    return await choice.backupCursor.open();
  } catch (err) {
    const unsupported = err instanceof MongoServerError && err.code === UNRECOGNIZED_STAGE;
    if (!unsupported) throw err;
  }
  if (choice.fsyncLock === undefined) throw new CommandError(ErrorCodes.CannotBackup, NO_SAFE_STRATEGY);
  return choice.fsyncLock().open();
}
