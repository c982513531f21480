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
 *   killCursors of an unknown id is `ok: 1` with `cursorsNotFound`.
 */
import { Long, MongoNetworkError, type ClientSession, type MongoClient, type Document } from 'mongodb';
import type { Snapshot, SnapshotStrategy } from './types.js';
import { checkSameDbpath, rebaseListedFiles } from './dbpath_identity.js';
import { MongoServerError, ErrorCodes } from '../../errors.js';
import type { Logger } from '../../log.js';

export const DEFAULT_KEEPALIVE_MS = 30_000;
const CURSOR_NS = '$cmd.aggregate';

/** The error mongod answers when it has never heard of the stage (MongoDB Community). */
export const UNRECOGNIZED_STAGE = 40324;

/**
 * Replies to a getMore that mean the cursor no longer exists: it was never (or is no
 * longer) known, killed, or interrupted with its operation, or mongod is going down;
 * 50736-50738 mean it cannot be kept alive from this session, so it will time out.
 */
const CURSOR_GONE_CODES: ReadonlySet<number> = new Set([
  ErrorCodes.CursorNotFound,
  ErrorCodes.CursorKilled,
  ErrorCodes.QueryPlanKilled,
  11601, // Interrupted: a killed getMore takes its cursor with it
  ErrorCodes.InterruptedAtShutdown,
  ErrorCodes.ShutdownInProgress,
  50736,
  50737,
  50738,
]);

export interface BackupCursorOptions {
  /** mongod's dbpath as seen from this host: the listed files are read from under it. */
  dbpath: string;
  /** Milliseconds between keepalive getMores. Default 30 s (mongod times a cursor out after 10 idle minutes). */
  keepaliveMs?: number;
}

/**
 * The error of a backup whose cursor died before release. CursorNotFound (43) is
 * what mongod itself answers for a cursor that is gone, whatever killed it.
 */
export function backupCursorLost(id: Long, why: string): MongoServerError {
  return new MongoServerError(
    ErrorCodes.CursorNotFound,
    `The backup cursor ${id.toString()} was lost (killed by killCursors or killSessions, or timed out in mongod): ${why}. ` +
      'mongod no longer protected the files being copied, so the copy is not consistent.',
  );
}

function cursorIsGone(err: unknown): boolean {
  if (err instanceof MongoNetworkError) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && CURSOR_GONE_CODES.has(code);
}

export class BackupCursorStrategy implements SnapshotStrategy {
  readonly name = 'backupCursor' as const;
  private readonly keepaliveMs: number;

  constructor(
    private readonly client: MongoClient,
    private readonly log: Logger,
    private readonly options: BackupCursorOptions,
  ) {
    this.keepaliveMs = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
  }

  async open(): Promise<Snapshot> {
    const session = this.client.startSession();
    const run = (cmd: Document) => this.client.db('admin').command(cmd, { session });
    let reply: Document;
    try {
      reply = await run({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
    } catch (err) {
      await session.endSession();
      throw err;
    }
    const first = reply['cursor'] as { id: number | Long; firstBatch: Document[] };
    const cursor = new KeptCursor(Long.fromValue(first.id), session, run, this.keepaliveMs, this.log);
    try {
      const docs = [...first.firstBatch, ...(await cursor.drain())];
      const metadata = (docs.shift() ?? {})['metadata'] as Document | undefined;
      const mongodDbpath = metadata?.['dbpath'];
      if (typeof mongodDbpath !== 'string') throw new Error('$backupCursor returned no metadata.dbpath');
      const listed = docs.map((doc) => ({ filename: String(doc['filename']), fileSize: Number(doc['fileSize']) }));
      const files = rebaseListedFiles(mongodDbpath, this.options.dbpath, listed);
      await checkSameDbpath(mongodDbpath, this.options.dbpath, files);
      const backupId = metadata?.['backupId'];
      this.log.info({ cursorId: cursor.id.toString(), mongodDbpath, dbpath: this.options.dbpath, keepaliveMs: this.keepaliveMs }, 'backup cursor open');
      return {
        strategy: this.name,
        backupId: backupId === undefined ? undefined : String((backupId as { toHexString?: () => string }).toHexString?.() ?? backupId),
        files,
        lost: cursor.lost.signal,
        release: () => cursor.release(),
      };
    } catch (err) {
      await cursor.release().catch(() => undefined);
      throw err;
    }
  }
}

/** One open backup cursor: its keepalive, and its kill. */
class KeptCursor {
  readonly lost = new AbortController();
  private keepalive: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private released: Promise<void> | undefined;

  constructor(
    readonly id: Long,
    private readonly session: ClientSession,
    private readonly run: (cmd: Document) => Promise<Document>,
    private readonly keepaliveMs: number,
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
      this.keepalive = setInterval(() => this.tick(), this.keepaliveMs);
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
      // A keepalive still running would race the kill and could report the kill as a loss.
      await this.inFlight;
      // Sent even after a loss: a cursor we merely failed to keep alive may still exist.
      const reply = await this.run({ killCursors: CURSOR_NS, cursors: [this.id] }).catch((err: unknown) => {
        this.lost.signal.throwIfAborted();
        throw err;
      });
      this.lost.signal.throwIfAborted();
      const killed = ((reply['cursorsKilled'] ?? []) as unknown[]).map((v) => Long.fromValue(v as number | Long));
      if (!killed.some((k) => k.equals(this.id))) {
        const notFound = ((reply['cursorsNotFound'] ?? []) as unknown[]).map(String);
        this.markLost(`killCursors did not kill it (cursorsKilled: [${killed.join(', ')}], cursorsNotFound: [${notFound.join(', ')}])`);
        this.lost.signal.throwIfAborted();
      }
    } finally {
      await this.session.endSession().catch(() => undefined);
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
            // A network blip or a busy server: the next tick retries, well within mongod's 10 minutes.
            this.log.warn({ cursorId: this.id.toString(), err: String(err) }, 'backup cursor keepalive failed; retrying at the next tick');
          }
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  private async getMore(): Promise<Document[]> {
    const reply = await this.run({ getMore: this.id, collection: CURSOR_NS });
    const cursor = reply['cursor'] as { id: number | Long; nextBatch: Document[] };
    // A backup cursor is tailable: id 0 means mongod closed it.
    if (Long.fromValue(cursor.id).isZero()) this.markLost('mongod closed it (getMore returned cursor id 0)');
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
