/**
 * All the backup commands need of whatever runs backups: start one, read the status,
 * set the throttle, abort the running one. The engine (src/backup/backup_engine.ts) is
 * one; a test can be another.
 */
import type { EngineStatus } from '../backup/engine_status.js';
import type { AbortAttempt, StartedBackup, StartRequest } from '../backup/backup_engine.js';

export interface BackupService {
  /**
   * Claims the single backup slot and starts the backup; rejects with the command's
   * error (a bad destination, a backup already running, a proxy shutting down).
   */
  start(request: StartRequest): Promise<StartedBackup>;
  /** A frozen snapshot; reading it twice never shows a change. */
  status(): EngineStatus;
  /**
   * Whether a backup holds the slot (from the moment start() claims it, through its
   * destination checks, to its outcome). Cheap enough to ask for each message: the proxy
   * asks it to decide whether currentOp and killOp are worth reading.
   */
  busy(): boolean;
  setThrottle(bytesPerSec: number): void;
  /** Stops the running backup; `by` says who asked, for its errmsg (BackupEngine.abort). */
  abort(by: string): AbortAttempt;
}
