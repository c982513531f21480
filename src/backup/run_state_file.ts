/**
 * The run journal kept on disk: `<stateDir>/state.json` (work_dirs.ts) says what a running
 * backup holds outside the proxy's memory (an fsync lock, a backup cursor, staged clones),
 * so that the next `serve` can clean up after a proxy that died mid-backup (recovery.ts).
 *
 * Every change is written durably (durable.ts: temp file, fsync, rename over, fsync of the
 * directory), so after a crash or a power cut the file holds either the record before a
 * change or the one after it, never a torn one. One file at a time: a state dir belongs to
 * one proxy.
 *
 * The file is validated on read with a versioned schema, as the manifest is. A file that
 * is not valid JSON, not ours, or of another version is never trusted and never
 * silently deleted: it is renamed aside (state.json.corrupt-<time>) and reported.
 *
 * Who writes it: the proxy while it runs (RunStateFile below); its unlock watchdog once the
 * proxy is dead, to mark what it did with the fsync lock (recorded_lock.ts); the next
 * `serve` while it cleans up. Never two of them at once: the watchdog writes only after
 * its proxy died, and the next `serve` waits for the watchdog to exit.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { moveAsideCorrupt, parseVersionedRecord, readTextIfPresent, type RecordKind } from './versioned_record.js';
import { z } from 'zod';
import { fsyncDirectory, writeFileDurably } from './durable.js';
import { describeIssues, MANIFEST_STRATEGIES } from './manifest.js';
import { STATE_FILE_NAME } from './work_dirs.js';
import type { RunHoldings, RunJournal, RunStart } from './run_journal.js';
import { CommandError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';

export const STATE_FORMAT = 'mongo-hotbackup-proxy-state';
/** Bump on any change an older reader would misread; readers refuse other versions. */
export const STATE_VERSION = 1;

const isoTime = z.iso.datetime({ offset: true });
const absolutePath = z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path');

/** What an unlock watchdog did once its proxy was gone (unlock_watchdog.ts), as it marked it. */
export const WATCHDOG_OUTCOMES = [
  /** It sent the one fsyncUnlock. */
  'released',
  /** mongod was not locked any more: nothing to send. */
  'notLocked',
  /** mongod had restarted since the lock (the lock died with it): nothing sent. */
  'restarted',
  /** The record said 'locking' and the lock count shows the lock was never applied: nothing sent. */
  'notApplied',
  /** mongod stayed unreachable for all its attempts: the lock may still be held. */
  'unreachable',
  /** The lock count could not be shown (FsyncLockCountUnknown): it did not guess. */
  'unknown',
  /** An operator disarmed it by hand (SIGUSR1) after the proxy died: the operator took the release over. */
  'disarmedByHand',
] as const;
export type WatchdogOutcome = (typeof WATCHDOG_OUTCOMES)[number];

const WatchdogMarkSchema = z.object({
  outcome: z.enum(WATCHDOG_OUTCOMES),
  /** One sentence, for the interrupted backup's errmsg. */
  detail: z.string(),
  at: isoTime,
});
export type WatchdogMark = z.infer<typeof WatchdogMarkSchema>;

const StateSchema = z.object({
  format: z.literal(STATE_FORMAT),
  version: z.literal(STATE_VERSION),
  /** The proxy that ran the backup. */
  pid: z.int().positive(),
  backupId: z.uuid(),
  startedAt: isoTime,
  destination: z.string(),
  strategy: z.enum(MANIFEST_STRATEGIES).optional(),
  fsyncLock: z
    .object({
      phase: z.enum(['locking', 'locked', 'unlocked']),
      processId: z.string().optional(),
      lockCountBefore: z.int().nonnegative().optional(),
      watchdogPid: z.int().positive().optional(),
      watchdog: WatchdogMarkSchema.optional(),
    })
    .optional(),
  backupCursor: z
    .object({
      lsid: z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex digits'),
      cursorId: z
        .string()
        .regex(/^-?[0-9]{1,20}$/, 'must be a decimal integer')
        .optional(),
    })
    .optional(),
  staging: absolutePath.optional(),
  /** What was already cleaned up after the proxy died, one sentence each (by its watchdog, or a restart cut short). */
  cleanup: z.array(z.string()).default([]),
});

export type RunState = z.infer<typeof StateSchema>;

export type StateFileRead =
  | { kind: 'absent' }
  | { kind: 'valid'; state: RunState }
  /** `movedTo` is where the file now is, when it was renamed aside. */
  | { kind: 'invalid'; reason: string; movedTo?: string | undefined };

const STATE_RECORD: RecordKind<RunState> = { format: STATE_FORMAT, version: STATE_VERSION, schema: StateSchema, what: 'state file' };

export function stateFilePath(stateDir: string): string {
  return path.join(stateDir, STATE_FILE_NAME);
}

/**
 * Reads and validates the state file. With `moveAsideInvalid`, a file that does not pass
 * is renamed to `<file>.corrupt-<time>` (durably): kept for the operator, never trusted.
 * Throws only when the file exists but cannot be read at all (EACCES, EIO).
 */
export async function readStateFile(file: string, options: { moveAsideInvalid?: boolean } = {}): Promise<StateFileRead> {
  const text = await readTextIfPresent(file);
  if (text === undefined) return { kind: 'absent' };
  const parsed = parseVersionedRecord(text, STATE_RECORD);
  if (parsed.value !== undefined) return { kind: 'valid', state: parsed.value };
  if (options.moveAsideInvalid !== true) return { kind: 'invalid', reason: parsed.why };
  return { kind: 'invalid', reason: parsed.why, movedTo: await moveAsideCorrupt(file, new Date()) };
}


/** Validates `state` and writes it durably; refuses to write an invalid one. */
export async function writeStateFile(file: string, state: RunState): Promise<void> {
  const checked = StateSchema.safeParse(state);
  if (!checked.success) throw new Error(`refusing to write an invalid state file to ${file}: ${describeIssues(checked.error)}`);
  await writeFileDurably(file, `${JSON.stringify(checked.data, null, 2)}\n`);
}

/** Removes the state file, durably (the directory is fsynced); absent is fine. */
export async function removeStateFile(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fsyncDirectory(path.dirname(file));
}

/** Whether `state` records an fsync lock that may still be held (taken, or being taken, and not known released). */
export function lockMayBeHeld(state: RunState): boolean {
  return state.fsyncLock !== undefined && state.fsyncLock.phase !== 'unlocked';
}

/** The holdings' fields, each applied only when present in `holdings` (set, or cleared when undefined). */
const HOLDING_KEYS = ['strategy', 'fsyncLock', 'backupCursor', 'staging'] as const;

/**
 * The RunJournal of `serve`: one record, the running backup's, in `<stateDir>/state.json`.
 * Writes are serialized (a record never overtakes the one before it) and each resolves
 * once the change is on disk; a failed write rejects and leaves the previous record in force.
 */
export class RunStateFile implements RunJournal {
  readonly stateFile: string;
  /** The running backup's record as last written; kept after a release that failed, until end(). */
  private current: RunState | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly stateDir: string,
    private readonly log: Logger,
    private readonly pid: number = process.pid,
  ) {
    this.stateFile = stateFilePath(stateDir);
  }

  /**
   * Refused while the previous backup's fsync lock may still be held (its release failed
   * and is retried in the background, or its watchdog waits for the proxy's exit, or it
   * was aborted while mongod was still taking the lock): a new backup would stack a
   * second lock on it, and overwrite the only record of the first.
   */
  begin(run: RunStart): Promise<void> {
    return this.serially(async () => {
      const previous = this.current;
      if (previous !== undefined && lockMayBeHeld(previous)) {
        const pid = previous.fsyncLock?.watchdogPid;
        throw new CommandError(
          ErrorCodes.CannotBackup,
          `Backup ${previous.backupId} may still hold mongod's fsync lock: its release failed (see its error in backupStatus.last), ` +
            'or it was aborted while mongod was still taking the lock (released as soon as it lands), ' +
            `and ${pid === undefined ? 'its unlock watchdog' : `its unlock watchdog (pid ${pid})`} stays armed. No new backup starts ` +
            'until that lock is released: the proxy retries in the background, or restart the proxy (the watchdog then sends the one ' +
            'fsyncUnlock, and the restart cleans up after it).',
        );
      }
      if (previous !== undefined && describeHeld(previous) !== 'nothing') {
        // A cursor times out in mongod, and leftover staging is removed at the next start.
        this.log.warn({ previous: describeHeld(previous) }, 'the previous backup did not release everything; its record is replaced by the new backup');
      }
      const state: RunState = {
        format: STATE_FORMAT,
        version: STATE_VERSION,
        pid: this.pid,
        backupId: run.backupId,
        startedAt: run.startedAt.toISOString(),
        destination: run.destination,
        cleanup: [],
      };
      await writeStateFile(this.stateFile, state);
      this.current = state;
    });
  }

  record(holdings: RunHoldings): Promise<void> {
    return this.serially(async () => {
      const current = this.current;
      // Nothing runs (a release that finished after end()): there is nothing to record.
      if (current === undefined) return;
      const next: RunState = { ...current };
      for (const key of HOLDING_KEYS) {
        if (!Object.hasOwn(holdings, key)) continue;
        if (holdings[key] === undefined) delete next[key];
        else Object.assign(next, { [key]: structuredClone(holdings[key]) });
      }
      await writeStateFile(this.stateFile, next);
      this.current = next;
    });
  }

  end(): Promise<void> {
    return this.serially(async () => {
      await removeStateFile(this.stateFile);
      this.current = undefined;
    });
  }

  /**
   * At a clean shutdown, once no backup runs: a record left by a release that failed but
   * holds nothing any more (a lost lock, a cursor found gone) is removed, so the next start
   * does not report as interrupted a backup whose failure was reported already. A record
   * that still holds something stays, for the next start to clean up.
   */
  settle(): Promise<void> {
    return this.serially(async () => {
      if (this.current === undefined || describeHeld(this.current) !== 'nothing') return;
      await removeStateFile(this.stateFile);
      this.current = undefined;
    });
  }

  private serially<T>(op: () => Promise<T>): Promise<T> {
    const result = this.queue.then(op);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** 'fsync lock (locked), backup cursor 123, staging /x': for logs and messages. */
export function describeHeld(state: RunState): string {
  const held: string[] = [];
  if (state.fsyncLock !== undefined && lockMayBeHeld(state)) held.push(`fsync lock (${state.fsyncLock.phase})`);
  if (state.backupCursor !== undefined) held.push(`backup cursor ${state.backupCursor.cursorId ?? `(open unanswered, session ${state.backupCursor.lsid})`}`);
  if (state.staging !== undefined) held.push(`staging ${state.staging}`);
  return held.length === 0 ? 'nothing' : held.join(', ');
}
