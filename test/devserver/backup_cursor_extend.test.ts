/**
 * `$backupCursor`'s replica-set metadata and `$backupCursorExtend`, end to end: the dev
 * server as an initiated single-node set (`--replSet rs0`), the real driver, and the
 * backup cursor in its own explicit session, as a backup tool holds it (a cursor belongs
 * to the session that opened it). Checkpoints are taken only by `fsync`
 * (`--checkpoint-interval 0`), so writes made after the cursor opened live only in the
 * journal; journal files are 1 MB (`log=(file_max=1MB)`), so 10,000 inserts roll it.
 * What is checked is what PSMDB's jstests check (backup_cursor_extend.js,
 * extend_backup_cursor_wait.js): the metadata's invariants, new journal files, a copy
 * extended to T holding every write acknowledged at T, the wait, and the error order.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Long, MongoClient, MongoServerError, Timestamp, UUID, type Document } from 'mongodb';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startDevServer } from '../helpers/dev_server.js';
import { openBackupCursor, closeBackupCursor, type OpenedBackupCursor } from '../helpers/backup_cursor_spy.js';
import { copyUpTo, type ListedFile } from '../helpers/file_copy.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

interface Seq {
  _id: number;
  pad?: string;
}

const PAD = 'x'.repeat(200);

describe('$backupCursor and $backupCursorExtend on a replica set (end to end)', () => {
  let set: RunningReplicaSet;
  let client: MongoClient;
  let next = 0;

  before(async () => {
    set = await startReplicaSet({ args: ['--checkpoint-interval', '0', '--wiredTigerEngineConfigString', 'log=(file_max=1MB)'] });
    client = new MongoClient(set.uri);
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await set?.server.stop();
    set?.server.cleanup();
  });

  const admin = () => client.db('admin');

  /** Inserts `count` sequential `_id`s, journaled, in batches; returns the last reply's operationTime. */
  async function insert(count: number): Promise<Timestamp> {
    let operationTime: Timestamp | undefined;
    for (let done = 0; done < count; ) {
      const batch = Math.min(1000, count - done);
      const documents = Array.from({ length: batch }, () => ({ _id: next++, pad: PAD }));
      const reply = await client.db('app').command({ insert: 'seq', documents, writeConcern: { w: 1, j: true } });
      assert.equal(reply['n'], batch);
      operationTime = reply['operationTime'] as Timestamp;
      done += batch;
    }
    assert.ok(operationTime instanceof Timestamp, 'a replica-set member answers with operationTime');
    return operationTime;
  }

  /** The oplog's newest (`$natural: -1`) or oldest entry, read as a tool would. */
  async function oplogEntry(direction: 1 | -1): Promise<Document> {
    const entry = await client.db('local').collection('oplog.rs').find({}, { sort: { $natural: direction }, limit: 1 }).next();
    assert.ok(entry !== null, 'the oplog has entries');
    return entry;
  }

  function extend(backup: OpenedBackupCursor, timestamp: Timestamp, extra: Document = {}): Promise<Document> {
    return admin().command(
      { aggregate: 1, pipeline: [{ $backupCursorExtend: { backupId: backup.metadata['backupId'], timestamp } }], cursor: {}, ...extra },
      { session: backup.session },
    );
  }

  /** Every document of an extend reply (it is not tailable: the cursor ends with its last file). */
  async function extendFiles(backup: OpenedBackupCursor, timestamp: Timestamp): Promise<ListedFile[]> {
    const reply = await extend(backup, timestamp);
    const cursor = reply['cursor'] as { id: number | Long; firstBatch: Document[] };
    const docs = [...cursor.firstBatch];
    let id = Long.fromValue(cursor.id);
    while (!id.isZero()) {
      const more = await admin().command({ getMore: id, collection: '$cmd.aggregate' }, { session: backup.session });
      const c = more['cursor'] as { id: number | Long; nextBatch: Document[] };
      docs.push(...c.nextBatch);
      id = Long.fromValue(c.id);
    }
    // `{filename}` only, as PSMDB sends it: what a client copies is the file as it is now.
    for (const d of docs) assert.deepEqual(Object.keys(d), ['filename'], `an extend document is {filename} only: ${JSON.stringify(d)}`);
    return docs.map((d) => ({ filename: d['filename'] as string, fileSize: fs.statSync(d['filename'] as string).size }));
  }

  function rejectsWith(promise: Promise<unknown>, code: number, message?: string): Promise<void> {
    return assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof MongoServerError, String(err));
      assert.equal(err.code, code, err.message);
      if (message !== undefined) assert.equal(err.message, message);
      return true;
    });
  }

  it('reports oplogStart, oplogEnd and the checkpoint between them, as the oplog shows them', async () => {
    await insert(100);
    await admin().command({ fsync: 1 });
    // The checkpoint holds every entry up to the newest when fsync ran.
    const atCheckpoint = (await oplogEntry(-1))['ts'] as Timestamp;
    await insert(100);
    const backup = await openBackupCursor(client);
    try {
      const { metadata } = backup;
      assert.deepEqual(Object.keys(metadata), ['backupId', 'dbpath', 'oplogStart', 'oplogEnd', 'checkpointTimestamp', 'disableIncrementalBackup', 'incrementalBackup', 'blockSize']);
      const start = metadata['oplogStart'] as { ts: Timestamp; t: Long };
      const end = metadata['oplogEnd'] as { ts: Timestamp; t: Long };
      const checkpoint = metadata['checkpointTimestamp'] as Timestamp;
      // Nothing was written since the cursor opened: the newest entry is the one it reported.
      const newest = await oplogEntry(-1);
      const oldest = await oplogEntry(1);
      assert.ok(end.ts.equals(newest['ts'] as Timestamp), `oplogEnd ${end.ts.toString()} is the newest entry ${String(newest['ts'])}`);
      assert.equal(Number(end.t), Number(newest['t']));
      assert.ok(start.ts.equals(oldest['ts'] as Timestamp), `oplogStart ${start.ts.toString()} is the oldest entry ${String(oldest['ts'])}`);
      assert.equal(Number(start.t), Number(oldest['t']));
      assert.ok(end.ts.gte(start.ts), 'oplogEnd.ts >= oplogStart.ts');
      assert.ok(checkpoint.gte(start.ts) && checkpoint.lte(end.ts), `the checkpoint ${checkpoint.toString()} lies between oplogStart and oplogEnd`);
      assert.ok(checkpoint.equals(atCheckpoint), `the checkpoint is the newest entry when fsync ran (${atCheckpoint.toString()}), got ${checkpoint.toString()}`);
      assert.ok(checkpoint.lt(end.ts), 'writes after the checkpoint are after it');
    } finally {
      await closeBackupCursor(client, backup);
    }
  });

  it('extends past 10,000 inserts with new journal files, and a copy extended to T holds every write acknowledged at T', async () => {
    await admin().command({ fsync: 1 });
    const backup = await openBackupCursor(client);
    const scratch = tempDir('extend-copy');
    const copy = path.join(scratch.dir, 'copy');
    let lastId: number;
    try {
      const listed = new Set(backup.files.map((f) => f.filename));
      await insert(10_000);
      lastId = next - 1;
      // T: the operationTime of an acknowledged journaled write after the cursor opened.
      const T = await insert(1);
      lastId = next - 1;
      const extra = await extendFiles(backup, T);
      const fresh = extra.filter((f) => !listed.has(f.filename));
      assert.ok(fresh.length >= 1, `at least one journal file not in the first listing: ${JSON.stringify(extra)}`);
      for (const f of extra) {
        assert.match(f.filename, /\/journal\/WiredTigerLog\.\d{10}$/);
        assert.ok(f.fileSize > 0);
      }
      // Writes the backup must not hold go on: the copy stops at T, not at the close.
      await insert(10);
      for (const file of backup.files) copyUpTo(set.server.dbpath, copy, file);
      for (const file of extra) copyUpTo(set.server.dbpath, copy, file);
    } finally {
      await closeBackupCursor(client, backup);
    }
    fs.rmSync(path.join(copy, 'mongod.lock'), { force: true });
    const standalone = await startDevServer({ dbpath: copy, args: ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)'] });
    const reader = new MongoClient(standalone.uri);
    try {
      const ids = (await reader.db('app').collection<Seq>('seq').find({ _id: { $lte: lastId } }, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
      assert.equal(ids.length, lastId + 1, `every document up to _id ${lastId} (the write at T) is in the copy; missing ${lastId + 1 - ids.length}`);
    } finally {
      await reader.close();
      await standalone.stop();
      standalone.cleanup();
      scratch.remove();
    }
  });

  it('waits for a timestamp ahead of the newest entry until a write reaches it, and honours maxTimeMS', async () => {
    const backup = await openBackupCursor(client);
    try {
      const newest = (await oplogEntry(-1))['ts'] as Timestamp;
      // A timestamp no entry has reached yet: a few seconds past the newest.
      const ahead = new Timestamp({ t: newest.high + 3, i: 1 });
      await rejectsWith(extend(backup, ahead, { maxTimeMS: 50 }), 50, 'operation exceeded time limit');

      let settled = false;
      const waiting = extend(backup, ahead).finally(() => {
        settled = true;
      });
      // One journaled write at a time until one reaches the timestamp; the extend must
      // not answer while every acknowledged write is still before it.
      let last = newest;
      await until(async () => {
        assert.equal(settled, false, `the extend answered while the newest write (${last.toString()}) is before ${ahead.toString()}`);
        last = await insert(1);
        return last.gte(ahead);
      });
      const reply = await waiting;
      assert.equal(reply['ok'], 1);
    } finally {
      await closeBackupCursor(client, backup);
    }
  });

  it('refuses in PSMDB order on a replica set: no cursor open (50886), then a wrong backupId (29094)', async () => {
    const ts = ((await oplogEntry(-1))['ts'] as Timestamp);
    const session = client.startSession();
    try {
      const aggregate = (stage: Document) => admin().command({ aggregate: 1, pipeline: [stage], cursor: {} }, { session });
      await rejectsWith(aggregate({ $backupCursorExtend: { backupId: new UUID(), timestamp: ts } }), 50886, 'Cannot extend backup cursor because backup cursor is not open');
    } finally {
      await session.endSession();
    }
    const backup = await openBackupCursor(client);
    try {
      const wrong = admin().command(
        { aggregate: 1, pipeline: [{ $backupCursorExtend: { backupId: new UUID(), timestamp: ts } }], cursor: {} },
        { session: backup.session },
      );
      await rejectsWith(wrong, 29094, 'backupId provided to $backupCursorExtend does not match active backup');
      // The right id, an entry already applied: no wait, no error.
      assert.equal((await extend(backup, ts))['ok'], 1);
    } finally {
      await closeBackupCursor(client, backup);
    }
  });
});

describe('$backupCursor and $backupCursorExtend on a member started with --replSet but not initiated', () => {
  it('refuses both as a member in STARTUP refuses reads: NotPrimaryOrSecondary, not 29144', async () => {
    const set = await startReplicaSet({ initiate: false });
    const client = new MongoClient(set.server.uri);
    const session = client.startSession();
    try {
      const aggregate = (stage: Document) => client.db('admin').command({ aggregate: 1, pipeline: [stage], cursor: {} }, { session });
      const notPrimaryOrSecondary = (err: unknown) => err instanceof MongoServerError && err.code === 13436;
      await assert.rejects(aggregate({ $backupCursor: {} }), notPrimaryOrSecondary);
      await assert.rejects(aggregate({ $backupCursorExtend: { backupId: new UUID(), timestamp: new Timestamp({ t: 100, i: 1 }) } }), notPrimaryOrSecondary);
    } finally {
      await session.endSession();
      await client.close();
      await set.server.stop();
      set.server.cleanup();
    }
  });
});
