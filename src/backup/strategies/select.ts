/**
 * `auto`, the default: `$backupCursor` where mongod has it; otherwise fsyncLock for
 * the whole copy, but only when the operator allowed blocking writes.
 */
import { MongoServerError } from 'mongodb';
import type { Snapshot, SnapshotStrategy } from './snapshot.js';
import type { SnapshotRequest, SnapshotSource } from '../backup_engine.js';
import { CommandError, ErrorCodes, LocationCodes } from '../../errors.js';

/** How to build each strategy; each backup gets its own. */
export interface AutoStrategies {
  backupCursor: () => SnapshotStrategy;
  /** Built only when the backup may block writes. */
  fsyncLock: () => SnapshotStrategy;
}

export const NO_SAFE_STRATEGY =
  'This mongod has no $backupCursor (MongoDB Community), so a hot copy would not be consistent. ' +
  'Allow blocking writes for the whole copy with {backupStart: <dir>, allowWriteBlocking: true} ' +
  'or start the proxy with --allow-write-blocking.';

export class AutoSnapshotSource implements SnapshotSource {
  constructor(private readonly strategies: AutoStrategies) {}

  async open(request: SnapshotRequest): Promise<Snapshot> {
    request.signal.throwIfAborted();
    try {
      return await this.strategies.backupCursor().open(request.journal);
    } catch (err) {
      // How a mongod that has never heard of the stage answers (MongoDB Community).
      const unsupported = err instanceof MongoServerError && err.code === LocationCodes.UnrecognizedPipelineStage;
      if (!unsupported) throw err;
    }
    if (!request.allowWriteBlocking) throw new CommandError(ErrorCodes.CannotBackup, NO_SAFE_STRATEGY);
    // Asking for $backupCursor may have taken a while: a proxy closing since takes no lock.
    request.signal.throwIfAborted();
    return this.strategies.fsyncLock().open(request.journal);
  }
}
