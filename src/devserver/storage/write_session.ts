/**
 * The one WiredTiger session every write goes through (Node is single-threaded,
 * so one writer is all there is), with its transaction nesting and cursor cache.
 *
 * Committing or rolling back resets every cursor of this session; the cached
 * cursors are always repositioned by a search or insert, so that is harmless
 * here. Long-lived reads (scans) use another session for exactly that reason.
 */
import type { WtCursor, WtSession } from './wiredtiger.js';

export class WriteSession {
  private depth = 0;
  private sync = false;
  private hooks: Array<() => void> = [];
  private rollbackHooks: Array<() => void> = [];
  private readonly cursors = new Map<string, WtCursor>();

  constructor(private readonly session: WtSession) {}

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  /**
   * begin; fn; commit (synced to the journal when any level asked for sync).
   * Nested calls join the outer transaction. WiredTiger has no savepoints: an
   * error that an outer fn catches leaves the inner writes that did succeed.
   */
  run<T>(fn: () => T, opts?: { sync?: boolean }): T {
    if (this.depth > 0) {
      if (opts?.sync === true) this.sync = true;
      this.depth++;
      try {
        return fn();
      } finally {
        this.depth--;
      }
    }
    this.session.beginTransaction();
    this.depth = 1;
    this.sync = opts?.sync === true;
    this.hooks = [];
    this.rollbackHooks = [];
    let result: T;
    try {
      result = fn();
      if (isPromiseLike(result)) {
        // The rest of an async fn would run after the commit, outside any transaction.
        throw new TypeError('writeTransaction needs a synchronous function');
      }
    } catch (err) {
      this.depth = 0;
      this.hooks = [];
      try {
        this.session.rollbackTransaction();
      } catch {
        // The error that made us roll back is the one worth reporting.
      }
      this.runRollbackHooks();
      throw err;
    }
    const hooks = this.hooks;
    this.depth = 0;
    this.hooks = [];
    try {
      this.session.commitTransaction(this.sync ? 'sync=on' : undefined);
    } catch (err) {
      // A failed commit was rolled back by WiredTiger; the commit hooks are dropped.
      this.runRollbackHooks();
      throw err;
    }
    this.rollbackHooks = [];
    for (const hook of hooks) hook();
    return result;
  }

  /** Runs hook once the current transaction commits (never if it rolls back). */
  afterCommit(hook: () => void): void {
    if (this.depth === 0) hook();
    else this.hooks.push(hook);
  }

  /** Runs hook if the current transaction rolls back (never if it commits). */
  afterRollback(hook: () => void): void {
    if (this.depth > 0) this.rollbackHooks.push(hook);
  }

  private runRollbackHooks(): void {
    const hooks = this.rollbackHooks;
    this.rollbackHooks = [];
    for (const hook of hooks) hook();
  }

  /**
   * A cached cursor on uri, opened with overwrite=false: insert of an existing key
   * fails with WT_DUPLICATE_KEY, update/remove of a missing one answer false.
   */
  cursor(uri: string): WtCursor {
    let cursor = this.cursors.get(uri);
    if (cursor === undefined) {
      cursor = this.session.openCursor(uri, 'overwrite=false');
      this.cursors.set(uri, cursor);
    }
    return cursor;
  }

  /** A table cannot be dropped while a cursor is open on it. */
  closeCursor(uri: string): void {
    const cursor = this.cursors.get(uri);
    this.cursors.delete(uri);
    if (cursor?.isOpen === true) cursor.close();
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
