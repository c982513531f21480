/**
 * The steps of recovery.ts, one per thing a dead proxy's backup may have left behind: its
 * fsync lock, its backup cursor, its staged clones. Each returns one clause for the
 * interrupted backup's errmsg, or throws a RecoveryPending when it must be tried again
 * later (mongod unreachable, the unlock watchdog still at work).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Binary, Long, MongoClient, MongoServerError } from 'mongodb';
import { AdminConnection, FsyncLockCountUnknown } from './strategies/fsync_lock_state.js';
import { describeLockOutcome, releaseRecordedLock } from './strategies/recorded_lock.js';
import { watchdogProcess } from './strategies/watchdog_processes.js';
import { fsyncDirectory } from './durable.js';
import { STAGING_PREFIX } from './work_dirs.js';
import type { RunState } from './run_state_file.js';
import type { Logger } from '../log.js';

/** The step could not finish now; recovery tries again later. `reason` says why, for the log and for a refused backupStart. */
export class RecoveryPending extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
    this.name = 'RecoveryPending';
  }
}

/** What staging.ts names a staging directory: the marker prefix, then the backup id. */
const STAGING_NAME = new RegExp(`^${STAGING_PREFIX}[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, 'i');
const WATCHDOG_POLL_MS = 100;
const WHO = 'the restarted proxy';

/**
 * Whether `pid` is an unlock watchdog of the proxy that keeps `stateFile`: a watchdog
 * (watchdog_processes.ts) whose environment, when readable, names no other state file.
 */
export async function isOurWatchdog(pid: number, stateFile: string): Promise<boolean> {
  const watchdog = await watchdogProcess(pid);
  return watchdog !== undefined && (watchdog.stateFile === undefined || watchdog.stateFile === stateFile);
}

export interface LockStepOptions {
  stateFile: string;
  upstreamUri: string;
  signal: AbortSignal;
  log: Logger;
  /** Told what the step waits for, while it waits: a refused backupStart says it. */
  waiting: (reason: string) => void;
}

/**
 * The fsync lock: exactly one fsyncUnlock between the watchdog and us. Returns the clause
 * to write down, or undefined when the watchdog settled the lock and wrote its own. While the recorded
 * watchdog lives it is at work (its proxy is gone, so its pipe closed): wait for it, then
 * read what it marked. Only when it is gone without settling the lock (killed too, or it
 * gave up on an unreachable mongod) do we release, per the record, and only to the mongod
 * process that was locked. `reread` gives the record as it is on disk now.
 */
export async function recoverLock(state: RunState, reread: () => Promise<RunState>, options: LockStepOptions): Promise<string | undefined> {
  const pid = state.fsyncLock?.watchdogPid;
  if (pid !== undefined && (await isOurWatchdog(pid, options.stateFile))) {
    options.log.warn({ watchdogPid: pid }, 'recovery: the unlock watchdog of the dead proxy is still at work; waiting for it to exit');
    options.waiting(`its unlock watchdog (pid ${pid}) is still at work on the fsync lock, and the proxy waits for it to finish (so that only one fsyncUnlock is sent)`);
    while (await isOurWatchdog(pid, options.stateFile)) await sleep(WATCHDOG_POLL_MS, undefined, { signal: options.signal });
  }
  const now = await reread();
  const lock = now.fsyncLock;
  // Settled by the watchdog while we waited (or before), its clause written beside it.
  if (lock === undefined || lock.phase === 'unlocked') return undefined;
  const mark = lock.watchdog;
  if (mark?.outcome === 'unknown') {
    // The watchdog could not show the count; a guess from us would be no better.
    return `${mark.detail}; the restarted proxy sent nothing either. Check db.currentOp().fsyncLock by hand`;
  }
  let conn: AdminConnection;
  try {
    conn = await AdminConnection.open(options.upstreamUri, lock.processId);
  } catch (err) {
    throw new RecoveryPending(`mongod could not be reached to release the dead proxy's fsync lock (${String(err)})`, { cause: err });
  }
  try {
    const outcome = await releaseRecordedLock(conn, lock, { attempts: 3 });
    const watchdog = mark === undefined ? (pid === undefined ? '' : `its unlock watchdog (pid ${pid}) was gone without having acted; `) : `${mark.detail}; `;
    return watchdog + describeLockOutcome(outcome, WHO);
  } catch (err) {
    if (err instanceof FsyncLockCountUnknown) return `${WHO} could not tell whether the backup's fsync lock is still held, and sent nothing: ${err.message}`;
    throw new RecoveryPending(`the dead proxy's fsync lock could not be released (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  } finally {
    await conn.close();
  }
}

/**
 * The backup cursor: killCursors on its id (so the clause can say whether it was still
 * open), then killSessions on its session, which kills it even when its id never reached
 * the proxy (cursor_session.ts, "Why killSessions"). Either way a new $backupCursor is no
 * longer refused with 50886.
 */
export async function recoverCursor(cursor: NonNullable<RunState['backupCursor']>, upstreamUri: string): Promise<string> {
  const client = new MongoClient(upstreamUri, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
  try {
    const admin = client.db('admin');
    let clause: string;
    if (cursor.cursorId === undefined) {
      clause = `${WHO} killed the session of the backup cursor whose open was never answered (lsid ${cursor.lsid})`;
    } else {
      const reply = await admin.command({ killCursors: '$cmd.aggregate', cursors: [Long.fromString(cursor.cursorId)] }).catch((err: unknown) => {
        if (err instanceof MongoServerError) return { cursorsKilled: [] };
        throw err;
      });
      const killed = ((reply['cursorsKilled'] ?? []) as unknown[]).some((id) => String(id) === cursor.cursorId);
      clause = killed
        ? `${WHO} killed the backup cursor ${cursor.cursorId} (and its session)`
        : `the backup cursor ${cursor.cursorId} was already gone from mongod; ${WHO} killed its session all the same`;
    }
    await admin.command({ killSessions: [{ id: new Binary(Buffer.from(cursor.lsid, 'hex'), Binary.SUBTYPE_UUID) }] });
    return clause;
  } catch (err) {
    if (err instanceof MongoServerError) {
      return `${WHO} could not kill the backup cursor (${err.message}): mongod closes it after 10 idle minutes, and refuses new $backupCursor opens (50886) until then`;
    }
    throw new RecoveryPending(`mongod could not be reached to kill the dead proxy's backup cursor (${String(err)})`, { cause: err });
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * Staged clones: the recorded directory and any other `<stagingRoot>/hotbackup-staging-<uuid>`
 * directory (a removal that failed in an earlier run). Only real directories named so are
 * removed, never anything else, whatever a record says. Returns the clause for the recorded one.
 */
export async function recoverStaging(recorded: string | undefined, stagingRoot: string, log: Logger): Promise<string | undefined> {
  const targets = new Set<string>();
  if (recorded !== undefined) {
    if (STAGING_NAME.test(path.basename(recorded))) targets.add(path.resolve(recorded));
    else log.error({ staging: recorded }, 'recovery: the recorded staging directory is not named by a backup id; left alone');
  }
  const entries = await fs.readdir(stagingRoot, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) if (entry.isDirectory() && STAGING_NAME.test(entry.name)) targets.add(path.join(stagingRoot, entry.name));
  let clause: string | undefined;
  for (const dir of targets) {
    const existed = await fs.lstat(dir).then(
      (st) => st.isDirectory(),
      () => false,
    );
    await fs.rm(dir, { recursive: true, force: true });
    await fsyncDirectory(path.dirname(dir)).catch(() => undefined);
    const isRecorded = recorded !== undefined && dir === path.resolve(recorded);
    if (existed) log.warn({ staging: dir, recorded: isRecorded }, 'recovery: removed a leftover staging directory');
    if (isRecorded) clause = existed ? `${WHO} removed the staging directory ${dir}` : `the staging directory ${dir} was already gone`;
  }
  return clause;
}
