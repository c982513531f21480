/**
 * What the engine says about its backups: plain data, deep-frozen, taken at one
 * moment. A reader may keep it as long as it likes: the engine never changes it, and
 * nothing a reader does to it reaches the engine or another reader.
 */
import type { CommandError } from '../errors.js';
import type { ProgressSnapshot } from './progress.js';
import type { StrategyName } from './strategies/snapshot.js';

import type { OplogTimestamp } from './oplog_bounds.js';

/** 'extending': `extendTo`, waiting for the majority commit point, then copying the journal it adds. */
export type BackupPhase = 'starting' | 'snapshot' | 'copying' | 'extending' | 'releasing' | 'manifest';

/**
 * How a backup ended: `complete` (its manifest is written), `aborted` (stopped on purpose
 * by backupAbort or killOp, and everything it held released; code 11601 Interrupted, as
 * mongod's killOp gives), or `failed` (anything else: a proxy that stopped or died during
 * it, an abort whose release failed, a 11601 from mongod that no abort asked for).
 */
export type BackupState = 'complete' | 'aborted' | 'failed';

/** Why a backup failed, as mongod-style error fields. */
export interface BackupFailure {
  readonly code: number;
  readonly codeName: string;
  readonly errmsg: string;
  /** Fields a reply carries beside errmsg, e.g. errno and strerror for an I/O error. */
  readonly extra: Readonly<Record<string, unknown>>;
}

export interface BackupOutcome {
  readonly ok: boolean;
  /** ok: complete; otherwise aborted or failed. */
  readonly state: BackupState;
  readonly backupId: string;
  readonly destination: string;
  readonly strategy: StrategyName | undefined;
  /** Why that strategy, in one line; undefined when no snapshot was opened. */
  readonly strategyReason: string | undefined;
  /** How long mongod's writes were blocked on this backup's account (WritesBlockedWindow). */
  readonly writesBlockedMs: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly bytes: number;
  readonly files: number;
  readonly seconds: number;
  readonly error: BackupFailure | undefined;
  /** What went wrong without failing the backup, e.g. an optional file left out. */
  readonly warnings: readonly string[];
  /** The counters as the copy left them: Percona's backupStatus kept showing them after the end. */
  readonly progress: ProgressSnapshot;
  /**
   * Set when the failed backup's cleanup could not finish as it ended (an S3 server that
   * could not be reached) and was left to retry in the background (target_cleanups.ts).
   */
  readonly cleanup?: CleanupStatus;
}

/** `pending`: retrying in the background; `done`; `stopped`: the proxy closed first (its next start's recovery goes on). */
export interface CleanupStatus {
  readonly state: 'pending' | 'done' | 'stopped';
  /** What is (or was) left to do, or what was done. */
  readonly detail: string;
}

export interface RunningStatus {
  readonly backupId: string;
  /** As requested until checked, then the absolute path being written. */
  readonly destination: string;
  readonly startedAt: Date;
  readonly phase: BackupPhase;
  /** Set once backupAbort or killOp asked it to stop: who asked, as the errmsg will say. */
  readonly abortedBy: string | undefined;
  readonly strategy: StrategyName | undefined;
  readonly strategyReason: string | undefined;
  /** So far; still counting while writes are blocked. */
  readonly writesBlockedMs: number;
  readonly progress: ProgressSnapshot;
  readonly warnings: readonly string[];
  /** The `extendTo` asked for, if any. */
  readonly extendTo?: OplogTimestamp | undefined;
  /** While the extension waits: what for, e.g. "the majority commit point to reach Timestamp(…) (it is at …)". */
  readonly waitingFor?: string | undefined;
}

export interface EngineStatus {
  readonly running: RunningStatus | undefined;
  readonly last: BackupOutcome | undefined;
  readonly throttleBytesPerSec: number;
}

export function failureOf(error: CommandError): BackupFailure {
  return Object.freeze({ code: error.code, codeName: error.codeName, errmsg: error.message, extra: Object.freeze({ ...error.extra }) });
}

/**
 * `outcome` with Dates of its own: a frozen Date can still be set (its time is an
 * internal slot, not a property), so each reader gets copies.
 */
export function outcomeCopy(outcome: BackupOutcome): BackupOutcome {
  return Object.freeze({ ...outcome, startedAt: new Date(outcome.startedAt), finishedAt: new Date(outcome.finishedAt) });
}
