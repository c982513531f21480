/**
 * Opens and drains a `$backupCursor` with the driver, as a backup tool does (tests and benches).
 * A cursor belongs to the session that opened it (mongod refuses a getMore from another:
 * 50737/50738), so the cursor is opened, drained and closed in one explicit session.
 */
import { Long, type MongoClient, type ClientSession, type Document } from 'mongodb';
import { peekRequest } from '../../src/wire/peek.js';
import { decodeReply } from './raw_client.js';
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
 * operator who found it with $currentOp would. It can also cut the connection that
 * carries the next getMore, a network failure that leaves the cursor alive in mongod.
 */
export interface BackupCursorSpy {
  readonly port: number;
  /** Ids of the backup cursors opened through the relay, in order. */
  readonly cursorIds: Long[];
  /** Closes the connection of the next getMore instead of forwarding it; resolves once done. */
  dropNextGetMore(): Promise<void>;
  close(): Promise<void>;
}

export async function startBackupCursorSpy(upstreamPort: number): Promise<BackupCursorSpy> {
  const cursorIds: Long[] = [];
  let dropGetMore: (() => void) | undefined;
  const relay = await startRelay(upstreamPort, {
    fromClient(frame) {
      if (dropGetMore === undefined) return 'forward';
      const peek = peekRequest(frame);
      if (peek.kind !== 'command' || peek.command.commandName !== 'getMore') return 'forward';
      dropGetMore();
      dropGetMore = undefined;
      return 'cut';
    },
    fromServer(frame) {
      const cursor = decodeReply(frame).doc['cursor'] as { id?: unknown; firstBatch?: Document[] } | undefined;
      if (cursor?.firstBatch?.[0]?.['metadata']?.['backupId'] !== undefined) cursorIds.push(Long.fromValue(cursor.id as number));
    },
  });
  return {
    port: relay.port,
    cursorIds,
    dropNextGetMore: () =>
      new Promise<void>((resolve) => {
        dropGetMore = resolve;
      }),
    close: () => relay.close(),
  };
}
