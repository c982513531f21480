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
 */
import { MongoNetworkError, type ClientSession, type Document, type MongoClient } from 'mongodb';
import type { Logger } from '../../log.js';

/** A bounded command got no reply in time; its connection was closed, as after a network error. */
export class NoReplyError extends Error {
  override readonly name = 'NoReplyError';
}

/** The failures after which nobody knows what mongod did with the command: the reply never came. */
export function isNoReply(err: unknown): boolean {
  return err instanceof MongoNetworkError || err instanceof NoReplyError;
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

  /** Runs `cmd` on admin in the session; `bounded` ones fail with NoReplyError after the timeout. */
  run(cmd: Document, bounded: boolean): Promise<Document> {
    if (!bounded) return this.client.db('admin').command(cmd, { session: this.session });
    return this.withBound(`${Object.keys(cmd)[0]}`, (signal) => this.client.db('admin').command(cmd, { session: this.session, signal }));
  }

  /**
   * Kills every cursor of the session (only ours): killSessions, sent outside the session
   * (mongod ignores a killSessions' own lsid: attachLogicalSessionsToOpCtx() is false),
   * retried once when the reply is lost. Never throws: this runs on failure paths,
   * whose own error is the one to report.
   */
  async killAll(why: string): Promise<void> {
    const id = this.session.id?.id;
    if (id === undefined) return;
    const cmd = { killSessions: [{ id }] };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.withBound('killSessions', (signal) => this.client.db('admin').command(cmd, { signal }));
        this.log.warn({ lsid: this.lsid, why }, 'killed the backup cursor session, so no backup cursor is left open in mongod');
        return;
      } catch (err) {
        if (attempt === 1 && isNoReply(err)) continue;
        this.log.error(
          { lsid: this.lsid, why, err: String(err) },
          'could not kill the backup cursor session: a backup cursor may stay open in mongod, refusing new backups (50886), until its 10-minute idle timeout',
        );
        return;
      }
    }
  }

  async end(): Promise<void> {
    await this.session.endSession().catch(() => undefined);
  }

  private async withBound(what: string, op: (signal: AbortSignal) => Promise<Document>): Promise<Document> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return await op(signal);
    } catch (err) {
      if (signal.aborted) throw new NoReplyError(`${what} got no reply within ${this.timeoutMs} ms; its connection was closed`, { cause: err });
      throw err;
    }
  }
}
