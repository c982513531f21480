/**
 * Server-side cursors: what `find` and `aggregate` leave behind for `getMore`.
 * Each cursor is a source of documents plus its namespace and the session that
 * created it; the manager hands out ids, enforces mongod's 10-minute idle timeout,
 * kills the cursors of killed or ended sessions, and closes sources exactly once.
 * A getMore pins its cursor while it runs, as mongod's does (cursor_manager.cpp,
 * pinCursor): the idle reaper passes it by, and a kill interrupts the getMore.
 */
import { Long } from 'bson';
import { randomInt } from 'node:crypto';
import type { Document } from './bson.js';
import { describeSession, type SessionId } from './sessions.js';
import { DevServerError, DevServerCodes } from './dev_server_errors.js';

/** mongod's default cursorTimeoutMillis. */
export const CURSOR_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
/** mongod's default logicalSessionRefreshMillis: ended sessions lose their cursors at the next refresh. */
export const SESSION_REFRESH_MS = 5 * 60 * 1000;

/** Keep each batch comfortably inside one 16 MiB reply document. */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024;
/**
 * What one document costs inside the batch array besides its own bytes: a type byte,
 * its index as a key ("12345") and the key's terminator. Ignoring it overflowed the
 * reply once a batch held ~16k small documents.
 */
const ARRAY_ELEMENT_OVERHEAD = 16;

export interface CursorSource {
  /** Up to `max` documents; fewer (possibly none) when the source is drained for now. */
  next(max: number, maxBytes: number): Document[];
  /** True when no document will ever come again (tailable sources never say so). */
  readonly exhausted: boolean;
  close(): void;
}

export interface ServerCursor {
  readonly id: Long;
  readonly ns: string;
  readonly source: CursorSource;
  readonly tailable: boolean;
  /** The session of the command that created it; undefined outside any session. */
  readonly lsid: SessionId | undefined;
  /** When the last getMore ended (or the cursor was created); not counted while pinned. */
  lastUsed: number;
  /** One per getMore running on the cursor: aborted when the cursor is killed. */
  readonly pins: Set<AbortController>;
  /** Killed while pinned: its source closes when the last pin is released. */
  killed: boolean;
}

/** A source over documents already in memory (sorted results, listings). */
export class ArraySource implements CursorSource {
  private position = 0;
  constructor(
    private readonly docs: Document[],
    private readonly sizeOf: (doc: Document) => number = () => 0,
  ) {}

  get exhausted(): boolean {
    return this.position >= this.docs.length;
  }

  next(max: number, maxBytes: number): Document[] {
    const batch: Document[] = [];
    let bytes = 0;
    while (batch.length < max && this.position < this.docs.length) {
      const doc = this.docs[this.position] as Document;
      const size = this.sizeOf(doc) + ARRAY_ELEMENT_OVERHEAD;
      if (batch.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      batch.push(doc);
      this.position += 1;
    }
    return batch;
  }

  close(): void {
    this.docs.length = 0;
  }
}

export class CursorManager {
  private readonly cursors = new Map<string, ServerCursor>();
  private reaper: NodeJS.Timeout;
  private readonly sessionRefresher: NodeJS.Timeout;
  /** Sessions ended by endSessions since the last refresh. */
  private readonly endingSessions = new Set<SessionId>();

  constructor(
    private idleTimeout = CURSOR_IDLE_TIMEOUT_MS,
    sessionRefreshMs = SESSION_REFRESH_MS,
  ) {
    this.reaper = this.startReaper();
    this.sessionRefresher = setInterval(() => this.refreshSessions(), sessionRefreshMs).unref();
  }

  /** mongod's cursorTimeoutMillis. */
  get idleTimeoutMs(): number {
    return this.idleTimeout;
  }

  /**
   * `setParameter: {cursorTimeoutMillis}`: idle cursors die after `ms` from now on, and the
   * reaper wakes often enough to notice (mongod's ClientCursorMonitor wakes every
   * clientCursorMonitorFrequencySecs and reads the parameter each time).
   */
  setIdleTimeout(ms: number): void {
    this.idleTimeout = ms;
    clearInterval(this.reaper);
    this.reaper = this.startReaper();
  }

  private startReaper(): NodeJS.Timeout {
    return setInterval(() => this.reapIdle(), Math.max(1, Math.min(60_000, this.idleTimeout))).unref();
  }

  get size(): number {
    return this.cursors.size;
  }

  register(ns: string, source: CursorSource, tailable = false, lsid?: SessionId): ServerCursor {
    let id: Long;
    do {
      // Positive, non-zero, and exact even for clients that turn ids into doubles.
      id = Long.fromNumber(randomInt(1, 2 ** 48 - 1));
    } while (this.cursors.has(id.toString()));
    const cursor: ServerCursor = { id, ns, source, tailable, lsid, lastUsed: Date.now(), pins: new Set(), killed: false };
    this.cursors.set(id.toString(), cursor);
    return cursor;
  }

  /**
   * The cursor a getMore reads, checked in mongod's order (getmore_cmd.cpp): it
   * exists, the namespace matches, the session matches. A refused getMore leaves
   * the cursor open, as mongod's does (its cursorFreer guard comes after the checks).
   */
  get(id: Long | number | bigint, ns: string, lsid: SessionId | undefined): ServerCursor {
    const cursor = this.cursors.get(id.toString());
    if (cursor === undefined) {
      throw new DevServerError(DevServerCodes.CursorNotFound, `cursor id ${id.toString()} not found`);
    }
    if (cursor.ns !== ns) {
      throw new DevServerError(
        DevServerCodes.Unauthorized,
        `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`,
      );
    }
    checkSession(cursor, lsid);
    cursor.lastUsed = Date.now();
    return cursor;
  }

  /**
   * A getMore starts using `cursor`: until unpin, the reaper skips it, and a kill aborts
   * the returned signal with CursorKilled, which the getMore fails with.
   */
  pin(cursor: ServerCursor): AbortSignal {
    const pin = new AbortController();
    cursor.pins.add(pin);
    return pin.signal;
  }

  /**
   * The getMore is done: the idle clock restarts now, as mongod's does when the cursor
   * is returned to its manager (ClientCursorPin::release stamps lastUseDate). A cursor
   * killed meanwhile closes its source now that nothing reads it.
   */
  unpin(cursor: ServerCursor, signal: AbortSignal): void {
    for (const pin of cursor.pins) {
      if (pin.signal === signal) cursor.pins.delete(pin);
    }
    cursor.lastUsed = Date.now();
    if (cursor.killed && cursor.pins.size === 0) cursor.source.close();
  }

  /**
   * Returns whether the cursor existed. A pinned cursor is gone for every later command
   * at once, and the getMore using it is interrupted with CursorKilled: mongod's
   * killCursor kills the operation using a pinned cursor with ErrorCodes::CursorKilled
   * (cursor_manager.cpp, CursorManager::killCursor), and the interrupted operation fails
   * with "operation was interrupted" (operation_context.cpp, checkForInterruptNoAssert).
   */
  kill(id: Long | number | bigint): boolean {
    const key = id.toString();
    const cursor = this.cursors.get(key);
    if (cursor === undefined) return false;
    this.cursors.delete(key);
    if (cursor.pins.size === 0) {
      cursor.source.close();
      return true;
    }
    cursor.killed = true;
    for (const pin of cursor.pins) {
      pin.abort(new DevServerError(DevServerCodes.CursorKilled, 'operation was interrupted'));
    }
    return true;
  }

  /**
   * killSessions / killAllSessions: kills the cursors of the matching sessions at once
   * (kill_sessions_local.cpp killSessionsLocal -> killCursorsWithMatchingSessions).
   * Cursors created outside any session match no session pattern. Returns how many died.
   */
  killSessionCursors(matches: (lsid: SessionId) => boolean): number {
    let killed = 0;
    for (const cursor of [...this.cursors.values()]) {
      if (cursor.lsid !== undefined && matches(cursor.lsid) && this.kill(cursor.id)) killed += 1;
    }
    return killed;
  }

  /**
   * endSessions: mongod only marks the sessions as ending (LogicalSessionCacheImpl::
   * endSessions); their cursors are killed at the next session-cache refresh (_refresh,
   * every logicalSessionRefreshMillis), not at once.
   */
  endSessions(ids: readonly SessionId[]): void {
    for (const id of ids) this.endingSessions.add(id);
  }

  closeAll(): void {
    for (const key of [...this.cursors.keys()]) this.kill(BigInt(key));
    clearInterval(this.reaper);
    clearInterval(this.sessionRefresher);
  }

  private refreshSessions(): void {
    if (this.endingSessions.size === 0) return;
    const ending = new Set(this.endingSessions);
    this.endingSessions.clear();
    this.killSessionCursors((lsid) => ending.has(lsid));
  }

  /** mongod's timeoutCursors passes pinned cursors by (cursor_manager.cpp, CursorManager::timeoutCursors). */
  private reapIdle(): void {
    const deadline = Date.now() - this.idleTimeout;
    for (const cursor of [...this.cursors.values()]) {
      if (cursor.pins.size === 0 && cursor.lastUsed < deadline) this.kill(cursor.id);
    }
  }
}

function checkSession(cursor: ServerCursor, lsid: SessionId | undefined): void {
  const id = cursor.id.toString();
  if (lsid !== undefined && cursor.lsid === undefined) {
    throw new DevServerError(
      DevServerCodes.GetMoreInSessionOnSessionlessCursor,
      `Cannot run getMore on cursor ${id}, which was not created in a session, in session ${describeSession(lsid)}`,
    );
  }
  if (lsid === undefined && cursor.lsid !== undefined) {
    throw new DevServerError(
      DevServerCodes.GetMoreWithoutCursorSession,
      `Cannot run getMore on cursor ${id}, which was created in session ${describeSession(cursor.lsid)}, without an lsid`,
    );
  }
  if (lsid !== undefined && cursor.lsid !== undefined && lsid !== cursor.lsid) {
    throw new DevServerError(
      DevServerCodes.GetMoreFromOtherSession,
      `Cannot run getMore on cursor ${id}, which was created in session ${describeSession(cursor.lsid)}, in session ${describeSession(lsid)}`,
    );
  }
}
