/**
 * `$backupCursor` (Percona Server 4.4.6+, MongoDB Enterprise): mongod pins a
 * checkpoint and lists the files to copy, each up to a size. Writes never stop.
 * The cursor times out after 10 idle minutes, so a long copy keeps it alive with
 * a getMore every 30 s; closing it (killCursors) ends the backup.
 */
import { Long, type MongoClient, type Document } from 'mongodb';
import type { Snapshot, SnapshotStrategy } from './types.js';
import { sourceFile } from './files.js';
import type { SourceFile } from '../types.js';
import type { Logger } from '../../log.js';

const KEEPALIVE_INTERVAL_MS = 30_000;
const CURSOR_NS = '$cmd.aggregate';

/** The error mongod answers when it has never heard of the stage (MongoDB Community). */
export const UNRECOGNIZED_STAGE = 40324;

export class BackupCursorStrategy implements SnapshotStrategy {
  readonly name = 'backupCursor' as const;

  constructor(
    private readonly client: MongoClient,
    private readonly log: Logger,
  ) {}

  async open(): Promise<Snapshot> {
    const admin = this.client.db('admin');
    const reply = await admin.command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
    const cursor = reply['cursor'] as { id: number | Long; firstBatch: Document[] };
    const id = Long.fromValue(cursor.id);
    const release = onceAsync(async () => {
      clearInterval(keepalive);
      if (!id.isZero()) await admin.command({ killCursors: CURSOR_NS, cursors: [id] });
    });
    const keepalive = setInterval(() => {
      admin.command({ getMore: id, collection: CURSOR_NS }).catch((err: unknown) => {
        this.log.warn({ err: String(err) }, 'backup cursor keepalive failed');
      });
    }, KEEPALIVE_INTERVAL_MS);
    keepalive.unref();
    try {
      const docs = [...cursor.firstBatch];
      // Drain until an empty batch: the cursor is tailable and never reports exhaustion.
      while (!id.isZero()) {
        const more = await admin.command({ getMore: id, collection: CURSOR_NS });
        const batch = (more['cursor'] as { nextBatch: Document[] }).nextBatch;
        if (batch.length === 0) break;
        docs.push(...batch);
      }
      const metadata = (docs.shift() ?? {})['metadata'] as Document | undefined;
      const dbpath = metadata?.['dbpath'];
      if (typeof dbpath !== 'string') throw new Error('$backupCursor returned no metadata.dbpath');
      const files: SourceFile[] = docs.map((doc) => sourceFile(dbpath, String(doc['filename']), Number(doc['fileSize'])));
      const backupId = metadata?.['backupId'];
      return {
        strategy: this.name,
        backupId: backupId === undefined ? undefined : String((backupId as { toHexString?: () => string }).toHexString?.() ?? backupId),
        files,
        lost: new AbortController().signal,
        release,
      };
    } catch (err) {
      await release().catch(() => undefined);
      throw err;
    }
  }
}

export function onceAsync(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
