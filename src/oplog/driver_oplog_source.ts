/**
 * The oplog of a replica-set member, read with the npm driver as a driver's oplog
 * tailer reads it (mongodump --oplog, mongo-connector): `local.oplog.rs`, a find on
 * `{ts: {$gte: from}}` with a tailable, awaitData cursor whose getMores wait up to
 * `maxAwaitTimeMS` for new entries. Entries come in the driver's raw mode: each is the
 * slice of the server's reply that holds it, never decoded and re-encoded, so the files
 * hold exactly the bytes the server wrote.
 */
import { MongoClient, MongoCursorExhaustedError, MongoNetworkError, MongoServerError, MongoServerSelectionError, type Collection, type FindCursor } from 'mongodb';
import type { ErrorJudge, OplogBounds, OplogSource, OplogTail } from './oplog_source.js';
import type { Timestamp } from 'bson';
import { fromBsonTimestamp, toBsonTimestamp, type OplogTs } from './oplog_ts.js';

export interface DriverOplogSourceOptions {
  /** How long each getMore waits for new entries (its maxTimeMS). */
  readonly maxAwaitTimeMS: number;
  /** How long the driver looks for a server before an operation fails. */
  readonly serverSelectionTimeoutMS: number;
  /** Read this very server, never another member the driver discovers (the proxy's sidecar use). */
  readonly directConnection?: boolean;
}

/** A tailable cursor the server ended (killed, or it found nothing to wait on): resume with a new one. */
export class TailEnded extends Error {
  constructor() {
    super('the server ended the oplog cursor');
    this.name = 'TailEnded';
  }
}

/**
 * Server errors after which a new cursor from the last written ts may go on: the node
 * stepping down or shutting down, a cursor killed or overtaken by the capped oplog
 * (the resume then checks its entry is still there). Codes from mongod's
 * src/mongo/base/error_codes.yml; the driver's own network and selection errors count
 * too. Authentication and authorization failures do not: retrying cannot fix them.
 */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  43, // CursorNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  136, // CappedPositionLost
  175, // QueryPlanKilled
  189, // PrimarySteppedDown
  237, // CursorKilled
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

export const driverErrorJudge: ErrorJudge = {
  isTransient(err: unknown): boolean {
    if (err instanceof TailEnded || err instanceof MongoNetworkError || err instanceof MongoServerSelectionError) return true;
    return err instanceof MongoServerError && typeof err.code === 'number' && TRANSIENT_CODES.has(err.code);
  },
};

interface OplogDoc {
  ts: Timestamp;
}

class DriverTail implements OplogTail {
  readonly #cursor: FindCursor<Uint8Array>;

  constructor(cursor: FindCursor<Uint8Array>) {
    this.#cursor = cursor;
  }

  async next(): Promise<Uint8Array[]> {
    let first: Uint8Array | null;
    try {
      first = await this.#cursor.tryNext();
    } catch (err) {
      // Its last batch came with cursor id 0: the server is done with it.
      if (err instanceof MongoCursorExhaustedError) throw new TailEnded();
      throw err;
    }
    if (first === null) {
      // An empty getMore (the wait ran out) leaves the cursor open; a dead one is closed.
      if (this.#cursor.closed || this.#cursor.id?.isZero() === true) throw new TailEnded();
      return [];
    }
    return [first, ...this.#cursor.readBufferedDocuments()];
  }

  async close(): Promise<void> {
    await this.#cursor.close().catch(() => undefined);
  }
}

export class DriverOplogSource implements OplogSource {
  readonly #client: MongoClient;
  readonly #options: DriverOplogSourceOptions;

  private constructor(client: MongoClient, options: DriverOplogSourceOptions) {
    this.#client = client;
    this.#options = options;
  }

  /** Connects (the URI's own credentials and TLS apply); rejects when no server answers. */
  static async connect(uri: string, options: DriverOplogSourceOptions): Promise<DriverOplogSource> {
    const client = new MongoClient(uri, {
      appName: 'hotbackup oplog',
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMS,
      ...(options.directConnection === true ? { directConnection: true } : {}),
    });
    await client.connect();
    return new DriverOplogSource(client, options);
  }

  #oplog<T extends object>(): Collection<T> {
    return this.#client.db('local').collection<T>('oplog.rs');
  }

  async bounds(): Promise<OplogBounds | undefined> {
    // A standalone has no local.oplog.rs: ask for the collection rather than query one
    // that is not there (a server may refuse a $natural sort it cannot apply).
    const listed = await this.#client.db('local').listCollections({ name: 'oplog.rs' }, { nameOnly: true }).toArray();
    if (listed.length === 0) return undefined;
    // $natural order is insertion order, which in the oplog is ts order.
    const end = async (direction: 1 | -1): Promise<OplogTs | undefined> => {
      const doc = await this.#oplog<OplogDoc>().findOne({}, { sort: { $natural: direction }, projection: { _id: 0, ts: 1 } });
      return doc === null ? undefined : fromBsonTimestamp(doc.ts);
    };
    const oldest = await end(1);
    const newest = await end(-1);
    return oldest === undefined || newest === undefined ? undefined : { oldest, newest };
  }

  tail(from: OplogTs): OplogTail {
    const cursor = this.#oplog().find<Uint8Array>(
      { ts: { $gte: toBsonTimestamp(from) } },
      { tailable: true, awaitData: true, maxAwaitTimeMS: this.#options.maxAwaitTimeMS, raw: true },
    );
    return new DriverTail(cursor);
  }

  async close(): Promise<void> {
    // Forced: a getMore waiting for entries is abandoned rather than awaited.
    await this.#client.close(true);
  }
}
