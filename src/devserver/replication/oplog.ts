/**
 * STAND-IN for the oplog (the i13-oplog slice owns this file and replaces it at merge).
 * It implements only the contract the topology slice codes against: `local.oplog.rs`
 * created at replSetInitiate with its first no-op entry, found again after a restart,
 * and the last applied optime. Writes do not append entries here.
 */
import { EventEmitter } from 'node:events';
import { Long, Timestamp } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument, encodeDocument } from '../bson.js';
import type { StorageEngine } from '../storage/storage_engine.js';

export interface OpTime {
  readonly ts: Timestamp;
  readonly t: Long;
}

const OPLOG_NS = 'local.oplog.rs';
const TERM = Long.fromNumber(1);

export class Oplog {
  private last: OpTime | undefined;
  private first: OpTime | undefined;
  private readonly appended = new EventEmitter();

  private constructor(private readonly engine: StorageEngine) {}

  /** Creates local.oplog.rs (capped, sizeBytes) with its first entry, at replSetInitiate. */
  static create(engine: StorageEngine, opts: { sizeBytes: number }): Oplog {
    engine.createCollection(OPLOG_NS, { capped: true, size: opts.sizeBytes });
    return new Oplog(engine);
  }

  /** The existing oplog after a restart; undefined when there is none. */
  static open(engine: StorageEngine): Oplog | undefined {
    if (engine.getCollection(OPLOG_NS) === undefined) return undefined;
    const oplog = new Oplog(engine);
    for (const entry of engine.scanRecords(OPLOG_NS)) {
      const doc = decodeDocument(entry.doc);
      const opTime = { ts: doc['ts'] as Timestamp, t: doc['t'] as Long };
      oplog.first ??= opTime;
      oplog.last = opTime;
    }
    return oplog;
  }

  /** A no-op entry {op: 'n', ns: '', o}, as replSetInitiate's {msg: 'initiating set'}. */
  appendNoop(o: Document): OpTime {
    const opTime: OpTime = { ts: this.nextTimestamp(), t: TERM };
    const entry: Document = { op: 'n', ns: '', o, ts: opTime.ts, t: opTime.t, v: Long.fromNumber(2), wall: new Date() };
    this.engine.writeTransaction(() => this.engine.insertRecord(OPLOG_NS, encodeDocument(entry), opTime.ts), { sync: true });
    this.first ??= opTime;
    this.last = opTime;
    this.appended.emit('entry');
    return opTime;
  }

  lastApplied(): OpTime | undefined {
    return this.last;
  }

  firstEntry(): OpTime | undefined {
    return this.first;
  }

  /** Resolves once an entry with ts > `after` is committed; rejects when signal aborts. */
  waitForNewer(after: Timestamp, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.last !== undefined && this.last.ts.greaterThan(after)) {
          cleanup();
          resolve();
        }
      };
      const abort = () => {
        cleanup();
        reject(signal.reason);
      };
      const cleanup = () => {
        this.appended.off('entry', check);
        signal.removeEventListener('abort', abort);
      };
      if (signal.aborted) return reject(signal.reason);
      this.appended.on('entry', check);
      signal.addEventListener('abort', abort);
      check();
    });
  }

  private nextTimestamp(): Timestamp {
    const secs = Math.floor(Date.now() / 1000);
    const prev = this.last?.ts;
    if (prev !== undefined && prev.high >= secs) return new Timestamp({ t: prev.high, i: prev.low + 1 });
    return new Timestamp({ t: secs, i: 1 });
  }
}
