/**
 * Opens and drains a `$backupCursor` with the driver, as a backup tool does (tests and benches).
 * A cursor belongs to the session that opened it (mongod refuses a getMore from another:
 * 50737/50738), so the cursor is opened, drained and closed in one explicit session.
 */
import { Long, MongoClient, type ClientSession, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from './dev_server.js';
import { startProxy, type RunningProxy } from './proxy.js';
import { peekRequest } from '../../src/wire/peek.js';
import { decodeReply } from './raw_client.js';
import { readHeader } from '../../src/wire/header.js';
import { startRelay } from './relay.js';

export interface OpenedBackupCursor {
  /** A BSON long: getMore refuses the plain number the driver hands back for small ids. */
  id: Long;
  /** The session the cursor lives in; every getMore and the killCursors go through it. */
  session: ClientSession;
  metadata: Document;
  /** Absolute file names and the size to copy each up to. */
  files: Array<{ filename: string; fileSize: number }>;
}

export async function openBackupCursor(client: MongoClient): Promise<OpenedBackupCursor> {
  const admin = client.db('admin');
  const session = client.startSession();
  try {
    const reply = await admin.command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} }, { session });
    const cursor = reply['cursor'] as { id: number | Long; firstBatch: Document[] };
    const id = Long.fromValue(cursor.id);
    const docs = [...cursor.firstBatch];
    // The cursor is tailable: drained, it answers with empty batches instead of closing.
    for (;;) {
      const more = await admin.command({ getMore: id, collection: '$cmd.aggregate' }, { session });
      const batch = (more['cursor'] as { nextBatch: Document[] }).nextBatch;
      if (batch.length === 0) break;
      docs.push(...batch);
    }
    const [first, ...rest] = docs;
    return {
      id,
      session,
      metadata: (first as Document)['metadata'] as Document,
      files: rest.map((d) => ({ filename: d['filename'] as string, fileSize: Number(d['fileSize']) })),
    };
  } catch (err) {
    await session.endSession();
    throw err;
  }
}

/** A keepalive getMore, in the cursor's own session. */
export async function keepBackupCursorAlive(client: MongoClient, cursor: OpenedBackupCursor): Promise<Document> {
  return client.db('admin').command({ getMore: cursor.id, collection: '$cmd.aggregate' }, { session: cursor.session });
}

export async function closeBackupCursor(client: MongoClient, cursor: OpenedBackupCursor): Promise<void> {
  try {
    await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [cursor.id] }, { session: cursor.session });
  } finally {
    await cursor.session.endSession();
  }
}

/**
 * A relay in front of mongod that notes the id of every backup cursor it sees opened,
 * so a test can kill the cursor of a backup tool (the proxy) that runs elsewhere, as an
 * operator who found it with $currentOp would. It counts the commands mongod accepted,
 * and can fail the network at a chosen command:
 * - 'cut': its connection is closed instead of forwarding it; mongod never sees it;
 * - 'swallow': never forwarded, never answered, the connection left open (half-open TCP);
 * - 'lose-reply': mongod runs it, then its connection is closed instead of the reply.
 */
export type NetworkFault = 'cut' | 'swallow' | 'lose-reply';

export interface BackupCursorSpy {
  readonly port: number;
  /** Ids of the backup cursors opened through the relay, in order. */
  readonly cursorIds: Long[];
  /** How many commands named `commandName` mongod answered with `ok: 1` so far. */
  accepted(commandName: string): number;
  /**
   * The next command named `commandName` (for which `match` holds) meets `fault`; resolves
   * once it has. Faults armed for the same command apply to successive ones.
   */
  failNext(commandName: string, fault: NetworkFault, match?: (frame: Buffer) => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function startBackupCursorSpy(upstreamPort: number): Promise<BackupCursorSpy> {
  const cursorIds: Long[] = [];
  const accepted = new Map<string, number>();
  /** Request ids awaiting a reply, per connection: the command's name, and whether to lose its reply. */
  const pending = new Map<string, { name: string; lose: (() => void) | undefined }>();
  /** Armed faults, each for one command, the oldest first. */
  const faults: Array<{ name: string; kind: NetworkFault; match: (frame: Buffer) => boolean; done: () => void }> = [];
  const relay = await startRelay(upstreamPort, {
    fromClient(frame, connection) {
      const peek = peekRequest(frame);
      if (peek.kind !== 'command') return 'forward';
      const name = peek.command.commandName;
      const index = faults.findIndex((f) => f.name === name && f.match(frame));
      const failing = index === -1 ? undefined : faults.splice(index, 1)[0];
      if (failing?.kind === 'cut' || failing?.kind === 'swallow') {
        failing.done();
        return failing.kind;
      }
      pending.set(`${connection.id}:${readHeader(frame).requestID}`, { name, lose: failing?.done });
      return 'forward';
    },
    fromServer(frame, connection) {
      const key = `${connection.id}:${readHeader(frame).responseTo}`;
      const request = pending.get(key);
      pending.delete(key);
      if (request?.lose !== undefined) {
        request.lose();
        return 'cut';
      }
      const doc = decodeReply(frame).doc;
      if (request !== undefined && doc['ok'] === 1) accepted.set(request.name, (accepted.get(request.name) ?? 0) + 1);
      const cursor = doc['cursor'] as { id?: unknown; firstBatch?: Document[] } | undefined;
      if (cursor?.firstBatch?.[0]?.['metadata']?.['backupId'] !== undefined) cursorIds.push(Long.fromValue(cursor.id as number));
      return undefined;
    },
  });
  return {
    port: relay.port,
    cursorIds,
    accepted: (name) => accepted.get(name) ?? 0,
    failNext: (name, kind, match = () => true) =>
      new Promise<void>((resolve) => {
        faults.push({ name, kind, match, done: resolve });
      }),
    close: () => relay.close(),
  };
}

/**
 * A dev server with 500 documents, a spy relay in front of it, and a proxy whose upstream
 * is the spy: for tests that make the relay swallow or cut what the proxy sends mongod.
 */
export interface SpiedProxy {
  server: RunningDevServer;
  spy: BackupCursorSpy;
  proxy: RunningProxy;
  /** Connected through the proxy. */
  client: MongoClient;
  stop(): Promise<void>;
}

export async function startSpiedProxy(): Promise<SpiedProxy> {
  const server = await startDevServer();
  const spy = await startBackupCursorSpy(server.port);
  const proxy = await startProxy({ ...server, uri: `mongodb://127.0.0.1:${spy.port}/?directConnection=true` });
  const client = new MongoClient(proxy.uri);
  await client.connect();
  await client.db('app').collection('docs').insertMany(Array.from({ length: 500 }, (_, i) => ({ i })));
  return {
    server,
    spy,
    proxy,
    client,
    async stop() {
      await client.close();
      await proxy.stop();
      await spy.close();
      await server.stop();
      server.cleanup();
    },
  };
}
