/**
 * The one explicit session a `$backupCursor` lives in: the commands sent in it, each
 * bounded when asked, and the last resort that kills whatever the session still holds.
 *
 * Why a bound: the driver's socketTimeoutMS is 0 (infinite) by default, so a command on
 * a connection gone silent (half-open TCP: no reply, no RST) never settles. A bounded
 * command aborts through an AbortSignal: the driver then closes that connection, as
 * for a network error, and the next command takes another pooled one. (The driver's
 * per-operation `timeoutMS` is a no-op in driver 7.9: TimeoutContext.create never builds
 * a CSOT context.)
 *
 * Why killSessions: a cursor whose open reply or killCursors was lost stays open in
 * mongod, pinning the checkpoint and the journal and refusing every later backup (50886)
 * until mongod's 10-minute idle timeout; with no cursor id (a lost open reply), nothing
 * else can reach it. The session is dedicated to this one cursor, so killing the session
 * kills exactly it: mongod kills a killed session's cursors at once
 * (kill_sessions_local.cpp killSessionsLocal -> killCursorsWithMatchingSessions), and a
 * session with nothing left to kill is `ok: 1`, so repeating it is harmless.
 *
 * Why remember the sessions of failed opens: a killSessions can come too early. When the
 * open's reply is lost, or the open outlives its bound, the aggregate may not have opened
 * its cursor yet (its bytes still in mongod's socket buffer, or the stage still waiting
 * for a checkpoint), and it opens after the kill, in the killed session: nothing kills it
 * then, and mongod refuses every later backup (50886) until its 10-minute idle timeout.
 * No delay is long enough to kill it again "after" the aggregate (a checkpoint may take
 * minutes), but such a leak always shows itself the same way: the next open gets 50886.
 * So the sessions of failed opens are remembered per client, and an open refused with
 * 50886 kills them again and retries once. Killing one that holds nothing is harmless
 * (`ok: 1`), and so is killing one the driver has since handed out again (it would be
 * idle, or this very open's session, which holds nothing after a refused open).
 */
import { MongoNetworkError, type Binary, type ClientSession, type Document, type MongoClient } from 'mongodb';
import type { Logger } from '../../log.js';

/** A bounded command got no reply in time; its connection was closed, as after a network error. */
export class NoReplyError extends Error {
  override readonly name = 'NoReplyError';
}

/** The failures after which nobody knows what mongod did with the command: the reply never came. */
export function isNoReply(err: unknown): boolean {
  return err instanceof MongoNetworkError || err instanceof NoReplyError;
}

/** How many sessions of failed opens are remembered per client; the oldest are forgotten first. */
const MAX_REMEMBERED = 16;

/** The lsids of the sessions whose open failed with no reply, per client: see "Why remember". */
const unsettledOpens = new WeakMap<MongoClient, Map<string, Binary>>();

/**
 * Kills again the sessions of earlier opens that failed with no reply, in one killSessions,
 * and forgets them. True when there were some and mongod accepted the kill: then a backup
 * cursor one of them opened late is gone, and an open refused with 50886 is worth retrying.
 */
export async function killUnsettledOpens(client: MongoClient, log: Logger, timeoutMs: number): Promise<boolean> {
  const remembered = unsettledOpens.get(client);
  if (remembered === undefined || remembered.size === 0) return false;
  const lsids = [...remembered.keys()];
  try {
    await bounded('killSessions', timeoutMs, (signal) => client.db('admin').command({ killSessions: [...remembered.values()].map((id) => ({ id })) }, { signal }));
  } catch (err) {
    log.error({ lsids, err: String(err) }, 'could not kill the sessions of earlier backup cursor opens that got no reply');
    return false;
  }
  for (const lsid of lsids) remembered.delete(lsid);
  log.warn({ lsids }, 'a backup cursor is open in mongod: killed the sessions of earlier opens that got no reply, in case one of them opened it late');
  return true;
}

export class CursorSession {
  constructor(
    private readonly client: MongoClient,
    private readonly session: ClientSession,
    private readonly log: Logger,
    /** The bound of a bounded command, in ms. */
    private readonly timeoutMs: number,
  ) {}

  /** The session's id as mongod knows it (`lsid.id`), in hex, for the logs. */
  get lsid(): string {
    return this.session.id?.id.toString('hex') ?? 'unknown';
  }

  /**
   * Runs `cmd` on admin in the session; fails with NoReplyError after `timeoutMs` (by
   * default the session's bound). `abort`, when it fires first, stops the wait the same
   * way (the driver closes the connection) and fails with its reason: then, as after no
   * reply, nobody knows what mongod did with the command.
   */
  run(cmd: Document, timeoutMs: number = this.timeoutMs, abort?: AbortSignal): Promise<Document> {
    return bounded(`${Object.keys(cmd)[0]}`, timeoutMs, (signal) => this.client.db('admin').command(cmd, { session: this.session, signal }), abort);
  }

  /**
   * After an open that got no reply: kills the session now, and remembers it, to kill it
   * again should a later open find a backup cursor open (see "Why remember").
   */
  async abandonOpen(why: string): Promise<void> {
    const id = this.session.id?.id;
    if (id !== undefined) {
      const remembered = unsettledOpens.get(this.client) ?? new Map<string, Binary>();
      unsettledOpens.set(this.client, remembered);
      remembered.set(this.lsid, id);
      for (const oldest of remembered.keys()) {
        if (remembered.size <= MAX_REMEMBERED) break;
        remembered.delete(oldest);
      }
    }
    await this.killAll(why);
  }

  /**
   * Kills every cursor of the session (only ours): killSessions, sent outside the session
   * (mongod ignores a killSessions' own lsid: attachLogicalSessionsToOpCtx() is false),
   * retried once when the reply is lost. Never throws: this runs on failure paths,
   * whose own error is the one to report. True once mongod accepted the kill.
   */
  async killAll(why: string): Promise<boolean> {
    const id = this.session.id?.id;
    if (id === undefined) return false;
    const cmd = { killSessions: [{ id }] };
    for (let attempt = 1; ; attempt++) {
      try {
        await bounded('killSessions', this.timeoutMs, (signal) => this.client.db('admin').command(cmd, { signal }));
        this.log.warn({ lsid: this.lsid, why }, 'killed the backup cursor session, so no backup cursor is left open in mongod');
        return true;
      } catch (err) {
        if (attempt === 1 && isNoReply(err)) continue;
        this.log.error(
          { lsid: this.lsid, why, err: String(err) },
          'could not kill the backup cursor session: a backup cursor may stay open in mongod, refusing new backups (50886), until its 10-minute idle timeout',
        );
        return false;
      }
    }
  }

  async end(): Promise<void> {
    await this.session.endSession().catch(() => undefined);
  }
}

/**
 * Runs `op`, aborting it (the driver then closes its connection) when no reply came
 * within `timeoutMs`, or when `abort` fires first (then it fails with abort's reason).
 */
async function bounded(what: string, timeoutMs: number, op: (signal: AbortSignal) => Promise<Document>, abort?: AbortSignal): Promise<Document> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await op(abort === undefined ? timeout : AbortSignal.any([timeout, abort]));
  } catch (err) {
    if (abort?.aborted === true) throw abort.reason;
    if (timeout.aborted) throw new NoReplyError(`${what} got no reply within ${timeoutMs} ms; its connection was closed`, { cause: err });
    throw err;
  }
}
