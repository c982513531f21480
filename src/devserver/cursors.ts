/**
 * Server-side cursors: what `find` and `aggregate` leave behind for `getMore`.
 * Each cursor is a source of documents plus its namespace; the manager hands out
 * ids, enforces mongod's 10-minute idle timeout and closes sources exactly once.
 */
import { Long } from 'bson';
import { randomInt } from 'node:crypto';
import type { Document } from './bson.js';
import { MongoServerError, ErrorCodes } from '../errors.js';

/** mongod's default cursorTimeoutMillis. */
export const CURSOR_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
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
  lastUsed: number;
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
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly idleTimeoutMs = CURSOR_IDLE_TIMEOUT_MS) {
    this.reaper = setInterval(() => this.reapIdle(), Math.min(60_000, idleTimeoutMs)).unref();
  }

  get size(): number {
    return this.cursors.size;
  }

  register(ns: string, source: CursorSource, tailable = false): ServerCursor {
    let id: Long;
    do {
      // Positive, non-zero, and exact even for clients that turn ids into doubles.
      id = Long.fromNumber(randomInt(1, 2 ** 48 - 1));
    } while (this.cursors.has(id.toString()));
    const cursor: ServerCursor = { id, ns, source, tailable, lastUsed: Date.now() };
    this.cursors.set(id.toString(), cursor);
    return cursor;
  }

  get(id: Long | number | bigint, ns: string): ServerCursor {
    const cursor = this.cursors.get(id.toString());
    if (cursor === undefined) {
      throw new MongoServerError(ErrorCodes.CursorNotFound, `cursor id ${id.toString()} not found`);
    }
    if (cursor.ns !== ns) {
      throw new MongoServerError(
        ErrorCodes.Unauthorized,
        `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`,
      );
    }
    cursor.lastUsed = Date.now();
    return cursor;
  }

  /** Returns whether the cursor existed. */
  kill(id: Long | number | bigint): boolean {
    const key = id.toString();
    const cursor = this.cursors.get(key);
    if (cursor === undefined) return false;
    this.cursors.delete(key);
    cursor.source.close();
    return true;
  }

  closeAll(): void {
    for (const key of [...this.cursors.keys()]) this.kill(BigInt(key));
    clearInterval(this.reaper);
  }

  private reapIdle(): void {
    const deadline = Date.now() - this.idleTimeoutMs;
    for (const cursor of [...this.cursors.values()]) {
      if (cursor.lastUsed < deadline) this.kill(cursor.id);
    }
  }
}
