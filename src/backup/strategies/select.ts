/**
 * Which strategy makes a backup's snapshot. `auto`, the default, takes the first that
 * can run, from the one that costs the application least:
 * 1. `$backupCursor`, where mongod has it: writes never stop;
 * 2. reflink, where the dbpath's filesystem clones files (a real test clone says so):
 *    writes stop for the milliseconds the clones take;
 * 3. fsyncLock for the whole copy, only when the operator allowed blocking writes;
 * 4. otherwise CannotBackup, naming the three and how to enable each.
 * A backup to be extended (`extendTo`) takes only the first: the others cannot extend.
 * A strategy asked for by name runs or fails saying why; it never falls back to another.
 */
import { MongoServerError } from 'mongodb';
import type { Snapshot, SnapshotStrategy } from './snapshot.js';
import type { ReflinkSupport } from './reflink_probe.js';
import type { SnapshotRequest, SnapshotSource } from '../backup_engine.js';
import { CommandError, ErrorCodes, LocationCodes } from '../../errors.js';

/** The reflink strategy, with its probe: auto tries it only where a test clone works. */
export interface ReflinkCandidate extends SnapshotStrategy {
  probe(): Promise<ReflinkSupport>;
}

/** How to build each strategy; each backup gets its own. */
export interface AutoStrategies {
  backupCursor: () => SnapshotStrategy;
  reflink: () => ReflinkCandidate;
  /** Built only when the backup may block writes. */
  fsyncLock: () => SnapshotStrategy;
}

const HOW_REFLINK =
  'put the dbpath on a filesystem that clones files (XFS made with reflink=1, the mkfs.xfs default since xfsprogs 5.1, or btrfs), ' +
  "with the staging directory (--staging-dir; by default next to the dbpath) on the dbpath's filesystem";
const HOW_BACKUP_CURSOR = 'run a mongod that has $backupCursor (MongoDB Enterprise, or Percona Server for MongoDB)';
const HOW_FSYNC_LOCK = 'send {backupStart: <dir>, allowWriteBlocking: true}, or start the proxy with --allow-write-blocking';

/** auto's error where nothing can run: why reflink could not, then the three ways out. */
export function noSafeStrategy(reflinkReason: string): string {
  return (
    `This mongod has no $backupCursor (MongoDB Community), and reflink cannot run here (${reflinkReason}), ` +
    'so a hot copy would not be consistent. Any one of these makes a backup possible: ' +
    `(1) reflink, which blocks writes for milliseconds: ${HOW_REFLINK}; ` +
    `(2) $backupCursor, which never blocks writes: ${HOW_BACKUP_CURSOR}; ` +
    `(3) fsyncLock, which blocks writes for the whole copy: ${HOW_FSYNC_LOCK}.`
  );
}

/** auto's refusal of `extendTo` where mongod has no `$backupCursor` (InvalidOptions, as for a named write-blocking strategy). */
export const EXTEND_NEEDS_BACKUP_CURSOR =
  "backupStart option 'extendTo' needs the backupCursor strategy ($backupCursorExtend), and this mongod has no $backupCursor (MongoDB Community): " +
  `leave extendTo out, or ${HOW_BACKUP_CURSOR}.`;

export const FSYNC_LOCK_NOT_ALLOWED =
  `strategy fsyncLock blocks every write to mongod for the whole copy, so it must be allowed: ${HOW_FSYNC_LOCK}.`;

const FSYNC_LOCK_COST = 'fsyncLock for the whole copy, as allowed: writes wait until the copy ends';

export class AutoSnapshotSource implements SnapshotSource {
  constructor(private readonly strategies: AutoStrategies) {}

  async open(request: SnapshotRequest): Promise<Snapshot> {
    request.signal.throwIfAborted();
    switch (request.strategy) {
      case 'backupCursor':
        return this.namedBackupCursor(request);
      case 'reflink':
        return this.namedReflink(request);
      case 'fsyncLock':
        if (!request.allowWriteBlocking) throw new CommandError(ErrorCodes.CannotBackup, FSYNC_LOCK_NOT_ALLOWED);
        return withReason(await this.strategies.fsyncLock().open(request), `strategy fsyncLock as asked; ${FSYNC_LOCK_COST}`);
      case 'auto':
        return this.auto(request);
    }
  }

  private async auto(request: SnapshotRequest): Promise<Snapshot> {
    const cursor = await this.openBackupCursor(request);
    if (cursor !== undefined) return cursor;
    // The others block writes for their copy: better refused now than after a lock.
    if (request.extending === true) throw new CommandError(ErrorCodes.InvalidOptions, EXTEND_NEEDS_BACKUP_CURSOR);
    // Asking for $backupCursor may have taken a while: a proxy closing since takes nothing.
    request.signal.throwIfAborted();
    const reflink = this.strategies.reflink();
    const support = await reflink.probe();
    request.signal.throwIfAborted();
    if (support.ok) return withReason(await reflink.open(request), `no $backupCursor; ${support.reason}`, true);
    if (!request.allowWriteBlocking) throw new CommandError(ErrorCodes.CannotBackup, noSafeStrategy(support.reason));
    return withReason(await this.strategies.fsyncLock().open(request), `no $backupCursor; ${support.reason}; ${FSYNC_LOCK_COST}`);
  }

  /** The backup cursor's snapshot, or undefined where mongod does not know the stage. */
  private async openBackupCursor(request: SnapshotRequest): Promise<Snapshot | undefined> {
    try {
      return await this.strategies.backupCursor().open(request);
    } catch (err) {
      // How a mongod that has never heard of the stage answers (MongoDB Community).
      if (err instanceof MongoServerError && err.code === LocationCodes.UnrecognizedPipelineStage) return undefined;
      throw err;
    }
  }

  private async namedBackupCursor(request: SnapshotRequest): Promise<Snapshot> {
    const snapshot = await this.openBackupCursor(request);
    if (snapshot === undefined) {
      throw new CommandError(
        ErrorCodes.CannotBackup,
        'strategy backupCursor was asked for, but this mongod has no $backupCursor (MongoDB Community): ' +
          `${HOW_BACKUP_CURSOR}, or ask for strategy reflink, fsyncLock or auto (which picks what this mongod can do).`,
      );
    }
    return withReason(snapshot, `strategy backupCursor as asked; ${snapshot.reason}`);
  }

  private async namedReflink(request: SnapshotRequest): Promise<Snapshot> {
    const reflink = this.strategies.reflink();
    const support = await reflink.probe();
    if (!support.ok) {
      throw new CommandError(
        ErrorCodes.CannotBackup,
        `strategy reflink was asked for, but it cannot run here: ${support.reason}. To use it, ${HOW_REFLINK}.`,
      );
    }
    request.signal.throwIfAborted();
    return withReason(await reflink.open(request), `strategy reflink as asked; ${support.reason}`, true);
  }
}

/**
 * `snapshot`, saying `reason` for its choice (and, with `andHow`, the strategy's own
 * reason where it made its copy in the destination); everything else is the strategy's.
 */
function withReason(snapshot: Snapshot, reason: string, andHow = false): Snapshot {
  return {
    strategy: snapshot.strategy,
    reason: andHow && snapshot.inDestination !== undefined ? `${reason}; ${snapshot.reason}` : reason,
    files: snapshot.files,
    writesBlocked: snapshot.writesBlocked,
    lost: snapshot.lost,
    release: () => snapshot.release(),
    // The strategy's own array: it may add to it until release() settles.
    ...(snapshot.warnings === undefined ? {} : { warnings: snapshot.warnings }),
    ...(snapshot.inDestination === undefined ? {} : { inDestination: snapshot.inDestination }),
    // Listed one by one, so each new field must be passed on here: without these two, a
    // strategy named in backupStart (or picked by auto after backupCursor) wrote no oplog
    // window to the manifest, and `strategy: "backupCursor"` with `extendTo` was refused.
    ...(snapshot.oplog === undefined ? {} : { oplog: snapshot.oplog }),
    ...(snapshot.extend === undefined ? {} : { extend: snapshot.extend }),
  };
}
