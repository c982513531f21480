/** Opens and drains a `$backupCursor` with the driver, as a backup tool does (tests and benches). */
import { Long, type MongoClient, type Document } from 'mongodb';

export interface OpenedBackupCursor {
  /** A BSON long: getMore refuses the plain number the driver hands back for small ids. */
  id: Long;
  metadata: Document;
  /** Absolute file names and the size to copy each up to. */
  files: Array<{ filename: string; fileSize: number }>;
}

export async function openBackupCursor(client: MongoClient): Promise<OpenedBackupCursor> {
  const admin = client.db('admin');
  const reply = await admin.command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
  const cursor = reply['cursor'] as { id: number | Long; firstBatch: Document[] };
  const id = Long.fromValue(cursor.id);
  const docs = [...cursor.firstBatch];
  // The cursor is tailable: drained, it answers with empty batches instead of closing.
  for (;;) {
    const more = await admin.command({ getMore: id, collection: '$cmd.aggregate' });
    const batch = (more['cursor'] as { nextBatch: Document[] }).nextBatch;
    if (batch.length === 0) break;
    docs.push(...batch);
  }
  const [first, ...rest] = docs;
  return {
    id,
    metadata: (first as Document)['metadata'] as Document,
    files: rest.map((d) => ({ filename: d['filename'] as string, fileSize: Number(d['fileSize']) })),
  };
}

export async function closeBackupCursor(client: MongoClient, id: Long): Promise<void> {
  await client.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [id] });
}
