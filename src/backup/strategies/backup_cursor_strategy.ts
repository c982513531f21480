/**
 * `$backupCursor` (Percona Server 4.4.6+, MongoDB Enterprise): mongod pins a
 * checkpoint and lists the files to copy, each up to a size. Writes never stop.
 *
 * The copy is consistent only while the cursor lives. Once it is closed (killCursors
 * or killSessions by someone else, or mongod's 10-minute idle timeout), WiredTiger may
 * reuse the pinned checkpoint's blocks and truncate files. So:
 * - the cursor is opened, kept alive and killed in ONE explicit session: mongod refuses
 *   a getMore from another session (50737/50738) and the driver would otherwise pick
 *   a pooled implicit session per command;
 * - a keepalive getMore every `keepaliveMs` (30 s by default); one that says the cursor
 *   is gone aborts the snapshot's `lost` signal at once, which stops the copy;
 * - release() fails the backup unless killCursors reports the id in `cursorsKilled`:
 *   killCursors of an unknown id is `ok: 1` with `cursorsNotFound`;
 * - nothing may leave the cursor open in mongod (it would refuse every later backup
 *   until its idle timeout): when the open reply or the killCursors is lost, the
 *   cursor's session is killed instead (cursor_session.ts);
 * - nothing may hang on a connection gone silent: every command is bounded (the open
 *   generously, since mongod may wait for a checkpoint), and release() waits for a
 *   keepalive in flight only for a while, since killCursors goes out on another connection;
 * - an open that got no reply may still open its cursor after the kill of its session:
 *   the next open that mongod refuses with 50886 kills that session again and retries
 *   once (cursor_session.ts, "Why remember").
 */
import { Long, MongoServerError, type MongoClient, type Document } from 'mongodb';
import type { Snapshot, SnapshotStrategy } from './snapshot.js';
import { NEVER_BLOCKED } from './writes_blocked.js';
import { checkSameDbpath, rebaseListedFiles } from './dbpath_identity.js';
import { stampFiles } from './files.js';
import { boundsFromMetadata } from './oplog_read.js';
import { DEFAULT_MAJORITY_POLL_MS, extendBackupCursor } from './cursor_extend.js';
import { isHotbackupFile } from '../own_files.js';
import { CursorSession, NoReplyError, isNoReply, killUnsettledOpens } from './cursor_session.js';
import { NO_JOURNAL, type RunJournal } from '../run_journal.js';
import { CommandError, ErrorCodes, LocationCodes } from '../../errors.js';
import type { Logger } from '../../log.js';

export const DEFAULT_KEEPALIVE_MS = 30_000;
/** A getMore on a drained backup cursor answers at once; 30 s of silence is a dead connection. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
export const DEFAULT_RELEASE_WAIT_MS = 5_000;
/**
 * mongod may hold the open until a checkpoint completes (WiredTiger checkpoints every
 * 60 s by default, and a big one can take minutes); 10 minutes without a reply is a
 * connection gone silent, not a slow checkpoint.
 */
export const DEFAULT_OPEN_TIMEOUT_MS = 10 * 60_000;
const CURSOR_NS = '$cmd.aggregate';

/**
 * Replies to a getMore that mean the cursor no longer exists: it was never (or is no
 * longer) known, killed, or interrupted with its operation, or mongod is going down;
 * 50736-50738 mean it cannot be kept alive from this session, so it will time out.
 */
const CURSOR_GONE_CODES: ReadonlySet<number> = new Set([
  ErrorCodes.CursorNotFound,
  ErrorCodes.CursorKilled,
  ErrorCodes.QueryPlanKilled,
  // A killed getMore takes its cursor with it.
  ErrorCodes.Interrupted,
  ErrorCodes.InterruptedAtShutdown,
  ErrorCodes.ShutdownInProgress,
  LocationCodes.GetMoreInSessionOnSessionlessCursor,
  LocationCodes.GetMoreWithoutCursorSession,
  LocationCodes.GetMoreFromOtherSession,
]);

export interface BackupCursorOptions {
  /** mongod's dbpath as seen from this host: the listed files are read from under it. */
  dbpath: string;
  /** Milliseconds between keepalive getMores. Default 30 s (mongod times a cursor out after 10 idle minutes). */
  keepaliveMs?: number;
  /**
   * Milliseconds a getMore, killCursors or killSessions may go unanswered before it counts
   * as a network failure (its connection is closed). Default 30 s. A keepalive that times
   * out is retried at the next tick, like any transient failure.
   */
  commandTimeoutMs?: number;
  /** Milliseconds release() waits for a keepalive in flight before it sends killCursors anyway. Default 5 s. */
  releaseWaitMs?: number;
  /**
   * Milliseconds the `$backupCursor` aggregate may go unanswered before the open fails
   * (MaxTimeMSExpired) and its session is killed. Default 10 minutes.
   */
  openTimeoutMs?: number;
  /** Milliseconds between two looks at the majority commit point while an extend waits for it. Default 200. */
  majorityPollMs?: number;
}

/**
 * The error of a backup whose cursor died before release. CursorNotFound (43) is
 * what mongod itself answers for a cursor that is gone, whatever killed it.
 */
export function backupCursorLost(id: Long, why: string): CommandError {
  return new CommandError(
    ErrorCodes.CursorNotFound,
    `The backup cursor ${id.toString()} was lost (killed by killCursors or killSessions, or timed out in mongod): ${why}. ` +
      'mongod no longer protected the files being copied, so the copy is not consistent.',
  );
}

function cursorIsGone(err: unknown): boolean {
  if (isNoReply(err)) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && CURSOR_GONE_CODES.has(code);
}

export class BackupCursorStrategy implements SnapshotStrategy {
  readonly name = 'backupCursor' as const;
  private readonly timing: CursorTiming;

  constructor(
    private readonly client: MongoClient,
    private readonly log: Logger,
    private readonly options: BackupCursorOptions,
  ) {
    this.timing = {
      keepaliveMs: options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      releaseWaitMs: options.releaseWaitMs ?? DEFAULT_RELEASE_WAIT_MS,
    };
  }

  /**
   * `journal` gets the cursor's session before the aggregate is sent, and its id once
   * mongod answers: a proxy killed at any point leaves the next start what it needs to
   * kill it (recovery.ts), rather than 10 minutes of 50886.
   */
  async open({ journal = NO_JOURNAL, signal }: { journal?: RunJournal; signal?: AbortSignal } = {}): Promise<Snapshot> {
    const session = new CursorSession(this.client, this.client.startSession(), this.log, this.commandTimeoutMs);
    let first: { id: number | Long; firstBatch: Document[] };
    try {
      await journal.record({ strategy: this.name, backupCursor: { lsid: session.lsid } });
      first = await this.openCursor(session, signal);
    } catch (err) {
      await session.end();
      // Refused by mongod (no such stage, 50886): no cursor was opened. Any other failure may
      // hide one opened late, so the session stays on record for the next start to kill.
      if (err instanceof MongoServerError) await this.forget(journal);
      throw err;
    }
    const cursor = new KeptCursor(Long.fromValue(first.id), session, this.timing, this.log);
    let releasing: Promise<void> | undefined;
    const release = () =>
      (releasing ??= cursor.release().finally(async () => {
        if (cursor.gone) await this.forget(journal);
      }));
    try {
      await journal.record({ backupCursor: { lsid: session.lsid, cursorId: cursor.id.toString() } });
      const docs = [...first.firstBatch, ...(await cursor.drain())];
      const metadata = (docs.shift() ?? {})['metadata'] as Document | undefined;
      const mongodDbpath = metadata?.['dbpath'];
      if (typeof mongodDbpath !== 'string') throw new Error('$backupCursor returned no metadata.dbpath');
      const listed = docs.map((doc) => ({ filename: String(doc['filename']), fileSize: Number(doc['fileSize']) }));
      // mongod lists WiredTiger's files and storage.bson, never hotbackup's own; that none of
      // those is ever copied holds for every strategy all the same (own_files.ts).
      const files = rebaseListedFiles(mongodDbpath, this.options.dbpath, listed).filter((file) => !isHotbackupFile(file.relativePath));
      await checkSameDbpath(mongodDbpath, this.options.dbpath, files);
      // The pinned checkpoint is on disk before the cursor opens, and the copy reads after
      // this: one stat is a reading both after the capture and before the bytes are read.
      const stamped = await stampFiles(files);
      this.log.info(
        { cursorId: cursor.id.toString(), lsid: session.lsid, mongodDbpath, dbpath: this.options.dbpath, keepaliveMs: this.timing.keepaliveMs },
        'backup cursor open',
      );
      const oplog = boundsFromMetadata(metadata);
      const extendTarget = {
        client: this.client,
        session,
        backupId: metadata?.['backupId'],
        mongodDbpath,
        dbpath: this.options.dbpath,
        log: this.log,
        pollMs: this.options.majorityPollMs ?? DEFAULT_MAJORITY_POLL_MS,
      };
      return {
        strategy: this.name,
        reason: 'mongod has $backupCursor: writes never stop',
        files: stamped,
        writesBlocked: NEVER_BLOCKED,
        lost: cursor.lost.signal,
        release,
        ...(oplog === undefined ? {} : { oplog }),
        extend: (request) => extendBackupCursor(extendTarget, { ...request, signal: AbortSignal.any([request.signal, cursor.lost.signal]) }),
      };
    } catch (err) {
      await release().catch(() => undefined);
      throw err;
    }
  }

  /** The cursor is known gone from mongod: nothing of it is left to kill after a crash. */
  private async forget(journal: RunJournal): Promise<void> {
    await journal.record({ backupCursor: undefined }).catch((err: unknown) => this.log.error({ err: String(err) }, 'could not clear the backup cursor from the state file'));
  }

  private get commandTimeoutMs(): number {
    return this.options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  }

  /** Runs the `$backupCursor` aggregate; once more if a cursor opened late by an earlier open refused it. */
  private async openCursor(session: CursorSession, signal: AbortSignal | undefined): Promise<{ id: number | Long; firstBatch: Document[] }> {
    try {
      return await this.runOpen(session, signal);
    } catch (err) {
      const alreadyOpen = err instanceof MongoServerError && err.code === LocationCodes.BackupCursorAlreadyOpen;
      if (!alreadyOpen || !(await killUnsettledOpens(this.client, this.log, this.commandTimeoutMs))) throw err;
      signal?.throwIfAborted();
      return this.runOpen(session, signal);
    }
  }

  /**
   * An abort while mongod holds the aggregate (it may wait minutes for a checkpoint) is
   * handled as a reply that never came: the connection is closed and the session killed,
   * so that a cursor opened after all is killed with it.
   */
  private async runOpen(session: CursorSession, signal: AbortSignal | undefined): Promise<{ id: number | Long; firstBatch: Document[] }> {
    const openTimeoutMs = this.options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    try {
      const reply = await session.run({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} }, openTimeoutMs, signal);
      const first = reply['cursor'] as { id: number | Long; firstBatch: Document[] } | undefined;
      if (first?.id === undefined) throw new Error(`$backupCursor answered without a cursor: ${JSON.stringify(reply)}`);
      return first;
    } catch (err) {
      // mongod's error reply means it opened nothing; any other failure may hide an open cursor.
      if (err instanceof MongoServerError) throw err;
      await session.abandonOpen(signal?.aborted === true ? 'the backup was aborted while mongod had not answered the $backupCursor aggregate' : `the $backupCursor aggregate failed: ${String(err)}`);
      if (!(err instanceof NoReplyError)) throw err;
      throw new CommandError(
        ErrorCodes.MaxTimeMSExpired,
        `operation exceeded time limit: mongod did not answer the $backupCursor aggregate within ${openTimeoutMs} ms ` +
          '(a connection gone silent, or a checkpoint that long); its session was killed, so that no backup cursor is left open',
        { cause: err },
      );
    }
  }
}

interface CursorTiming {
  keepaliveMs: number;
  releaseWaitMs: number;
}

/** One open backup cursor: its keepalive, and its kill. */
class KeptCursor {
  readonly lost = new AbortController();
  /** Set once mongod is known to hold the cursor no more: killCursors answered, or its session was killed. */
  gone = false;
  private keepalive: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private released: Promise<void> | undefined;

  constructor(
    readonly id: Long,
    private readonly session: CursorSession,
    private readonly timing: CursorTiming,
    private readonly log: Logger,
  ) {
    // A cursor that came back closed pins nothing.
    if (id.isZero()) this.markLost('mongod returned it already closed (id 0)');
  }

  /**
   * The documents after the first batch; then the keepalives start, so that none runs
   * concurrently with the drain. Drained, the tailable cursor answers empty batches.
   */
  async drain(): Promise<Document[]> {
    const docs: Document[] = [];
    for (;;) {
      this.lost.signal.throwIfAborted();
      const batch = await this.getMore();
      if (batch.length === 0) break;
      docs.push(...batch);
    }
    if (this.released === undefined && !this.lost.signal.aborted) {
      this.keepalive = setInterval(() => this.tick(), this.timing.keepaliveMs);
      this.keepalive.unref();
    }
    return docs;
  }

  /** Kills the cursor; rejects when it was already gone, since the copy then proves nothing. */
  release(): Promise<void> {
    this.released ??= this.kill();
    return this.released;
  }

  private async kill(): Promise<void> {
    clearInterval(this.keepalive);
    try {
      await this.keepaliveSettled();
      // Sent even after a loss: a cursor we merely failed to keep alive may still exist.
      const reply = await this.session.run({ killCursors: CURSOR_NS, cursors: [this.id] }).catch(async (err: unknown) => {
        // The cursor may still be open (the request or its reply was lost, or mongod refused
        // it): make sure it is gone, then fail the backup all the same, since nothing
        // proves that the cursor lived until now.
        this.gone = await this.session.killAll(`killCursors of cursor ${this.id.toString()} failed: ${String(err)}`);
        this.lost.signal.throwIfAborted();
        throw err;
      });
      // Killed or not found: either way mongod holds it no more.
      this.gone = true;
      this.lost.signal.throwIfAborted();
      const killed = ((reply['cursorsKilled'] ?? []) as unknown[]).map((v) => Long.fromValue(v as number | Long));
      if (!killed.some((k) => k.equals(this.id))) {
        const notFound = ((reply['cursorsNotFound'] ?? []) as unknown[]).map(String);
        this.markLost(`killCursors did not kill it (cursorsKilled: [${killed.join(', ')}], cursorsNotFound: [${notFound.join(', ')}])`);
        this.lost.signal.throwIfAborted();
      }
    } finally {
      await this.session.end();
    }
  }

  /**
   * Lets a keepalive in flight finish first, so that it does not meet the kill, but only
   * for a while: one on a silent connection would hold the release until its own bound,
   * and killCursors goes out on another pooled connection anyway. mongod kills a cursor
   * pinned by a getMore by interrupting that getMore, and still lists it in cursorsKilled
   * (cursor_manager.cpp CursorManager::killCursor returns OK for it).
   */
  private async keepaliveSettled(): Promise<void> {
    if (this.inFlight === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'waited'>((resolve) => {
      timer = setTimeout(() => resolve('waited'), this.timing.releaseWaitMs);
    });
    const outcome = await Promise.race([this.inFlight, waited]);
    clearTimeout(timer);
    if (outcome === 'waited') {
      this.log.warn({ cursorId: this.id.toString(), releaseWaitMs: this.timing.releaseWaitMs }, 'a keepalive is still unanswered; killing the backup cursor without waiting for it');
    }
  }

  private tick(): void {
    if (this.inFlight !== undefined || this.released !== undefined || this.lost.signal.aborted) return;
    this.inFlight = this.getMore()
      .then(
        () => undefined,
        (err: unknown) => {
          if (this.released !== undefined || this.lost.signal.aborted) return;
          if (cursorIsGone(err)) {
            this.markLost(`the keepalive getMore failed: ${err instanceof Error ? err.message : String(err)}`);
          } else {
            // A network blip, a connection gone silent (its bound closed it) or a busy
            // server: the next tick retries, well within mongod's 10 minutes.
            this.log.warn({ cursorId: this.id.toString(), err: String(err) }, 'backup cursor keepalive failed; retrying at the next tick');
          }
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  private async getMore(): Promise<Document[]> {
    const reply = await this.session.run({ getMore: this.id, collection: CURSOR_NS });
    const cursor = reply['cursor'] as { id: number | Long; nextBatch: Document[] };
    // A backup cursor is tailable: id 0 means mongod closed it. Once the release has
    // begun, a keepalive may meet our own kill; the killCursors reply is the judge then.
    if (Long.fromValue(cursor.id).isZero() && this.released === undefined) this.markLost('mongod closed it (getMore returned cursor id 0)');
    return cursor.nextBatch;
  }

  private markLost(why: string): void {
    if (this.lost.signal.aborted) return;
    const error = backupCursorLost(this.id, why);
    this.log.error({ cursorId: this.id.toString(), errmsg: error.message }, 'backup cursor lost');
    clearInterval(this.keepalive);
    this.lost.abort(error);
  }
}
