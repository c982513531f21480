/**
 * $backupCursor on the dev server: with the cursor open, a file-by-file copy taken
 * while writes and checkpoints continue restores to a consistent database. The
 * same copy without the cursor is shown to break.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, MongoServerError, type Collection, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { tempDir } from '../helpers/paths.js';
import { inBackground, type BackgroundTask } from '../helpers/poll.js';
import { copyUpTo, wtVerifyAll, wtOpensAndVerifies, type ListedFile } from '../helpers/file_copy.js';
import { openBackupCursor, closeBackupCursor, keepBackupCursorAlive } from '../helpers/backup_cursor_spy.js';

type Seq = { _id: number; pad: string };

interface Writer {
  /** The highest acknowledged id. */
  acked: number;
  stopped: boolean;
  task: BackgroundTask;
}

/** Inserts sequential _ids until stopped. */
function startWriter(coll: Collection<Seq>): Writer {
  const state = { acked: -1, stopped: false };
  const task = inBackground(async () => {
    for (let id = 0; !state.stopped; id++) {
      await coll.insertOne({ _id: id, pad: 'w'.repeat(300) }, { writeConcern: { w: 1, j: true } });
      state.acked = id;
    }
  });
  return Object.assign(state, { task });
}

async function idsIn(dbpath: string): Promise<number[]> {
  const server = await startDevServer({ dbpath });
  const client = new MongoClient(server.uri);
  try {
    const docs = await client.db('app').collection('seq').find({}, { projection: { _id: 1 } }).sort({ _id: 1 }).toArray();
    return docs.map((d) => Number(d['_id']));
  } finally {
    await client.close();
    await server.stop();
  }
}

function isCollectionFile(file: ListedFile): boolean {
  return path.basename(file.filename).startsWith('collection-');
}

describe('$backupCursor on the dev server', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  const scratch = tempDir('backup-cursor');

  before(async () => {
    server = await startDevServer({ args: ['--checkpoint-interval', '1'] });
    client = new MongoClient(server.uri);
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('gives a consistent copy while writes and checkpoints continue, where a plain copy breaks', async () => {
    const coll = client.db('app').collection<Seq>('seq');
    const writer = startWriter(coll);
    try {
      await consistentCopyScenario(writer);
    } finally {
      writer.stopped = true;
      await writer.task.done.catch(() => undefined);
    }
  });

  async function consistentCopyScenario(writer: Writer): Promise<void> {
    await writer.task.until(() => writer.acked >= 1500);
    await client.db('admin').command({ fsync: 1 });

    // 1. With the cursor: copy the collection file, let writes and a checkpoint
    //    happen, then copy everything else.
    const ackedBeforeCursor = writer.acked;
    const backup = await openBackupCursor(client);
    assert.equal(backup.metadata['dbpath'], server.dbpath);
    assert.ok(backup.files.some((f) => f.filename.includes(`${path.sep}journal${path.sep}WiredTigerLog.`)), 'journal files are listed');
    const withCursor = path.join(scratch.dir, 'with-cursor');
    const ordered = [...backup.files.filter(isCollectionFile), ...backup.files.filter((f) => !isCollectionFile(f))];
    try {
      for (const [i, file] of ordered.entries()) {
        copyUpTo(server.dbpath, withCursor, file);
        if (i === 0) {
          const target = writer.acked + 1500;
          await writer.task.until(() => writer.acked >= target);
          await client.db('admin').command({ fsync: 1 });
        }
      }
      const keepalive = await keepBackupCursorAlive(client, backup);
      assert.deepEqual((keepalive['cursor'] as Document)['nextBatch'], [], 'a drained backup cursor stays open');
    } finally {
      await closeBackupCursor(client, backup);
    }

    // 2. Without the cursor, the same interleaving.
    const files = fs
      .readdirSync(server.dbpath, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name !== 'mongod.lock' && e.name !== 'WiredTiger.lock')
      .map((e) => {
        const filename = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
        return { filename, fileSize: fs.statSync(filename).size };
      });
    const plain = path.join(scratch.dir, 'plain');
    const plainOrdered = [...files.filter(isCollectionFile), ...files.filter((f) => !isCollectionFile(f))];
    for (const [i, file] of plainOrdered.entries()) {
      // Without the cursor, WiredTiger may archive a log file before we reach it.
      if (!fs.existsSync(file.filename)) continue;
      copyUpTo(server.dbpath, plain, i === 0 ? file : { ...file, fileSize: fs.statSync(file.filename).size });
      if (i === 0) {
        const target = writer.acked + 1500;
        await writer.task.until(() => writer.acked >= target);
        await client.db('admin').command({ fsync: 1 });
      }
    }
    writer.stopped = true;
    await writer.task.done;

    // The cursor copy: wt verifies every table, and the data is a gap-free prefix
    // that holds every write acknowledged before the cursor opened.
    const verifyCopy = path.join(scratch.dir, 'with-cursor-verify');
    fs.cpSync(withCursor, verifyCopy, { recursive: true });
    const verified = wtVerifyAll(verifyCopy);
    assert.ok(verified.tables.length >= 3, `tables: ${verified.tables.join(', ')}`);
    assert.deepEqual(verified.failures, []);
    const ids = await idsIn(withCursor);
    assert.ok(ids.length > ackedBeforeCursor, `copy has ${ids.length} docs, ${ackedBeforeCursor + 1} were acknowledged before the cursor`);
    ids.forEach((id, i) => assert.equal(id, i, `gap at ${i}`));

    // The plain copy: WiredTiger cannot open or verify it, or it lost data.
    const plainVerifies = wtOpensAndVerifies(plain);
    let plainIntact = plainVerifies;
    if (plainVerifies) {
      const plainIds = await idsIn(plain).catch(() => [] as number[]);
      plainIntact = plainIds.length > ackedBeforeCursor && plainIds.every((id, i) => id === i);
    }
    assert.equal(plainIntact, false, 'a plain copy taken while writing came out intact; the contrast proves nothing');
  }

  it('refuses a second backup cursor, and fsyncLock while one is open', async () => {
    const first = await openBackupCursor(client);
    try {
      await assert.rejects(openBackupCursor(client), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 50886);
        return true;
      });
      await assert.rejects(client.db('admin').command({ fsync: 1, lock: true }), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 50884);
        return true;
      });
    } finally {
      await closeBackupCursor(client, first);
    }
    const again = await openBackupCursor(client);
    await closeBackupCursor(client, again);
  });

  it('refuses a backup cursor while fsync-locked', async () => {
    await client.db('admin').command({ fsync: 1, lock: true });
    try {
      await assert.rejects(openBackupCursor(client), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 50887);
        return true;
      });
    } finally {
      await client.db('admin').command({ fsyncUnlock: 1 });
    }
  });

  it('answers $backupCursorExtend without its parameters as PSMDB does: InvalidOptions', async () => {
    // The rest of its order (50886, 29094, 29144) is in backup_cursor_options.test.ts.
    await assert.rejects(
      client.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursorExtend: {} }], cursor: {} }),
      (err: unknown) => err instanceof MongoServerError && err.code === 72,
    );
  });
});

describe('dev server started with --no-backup-cursor', () => {
  it('rejects $backupCursor exactly as MongoDB Community does', async () => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const client = new MongoClient(server.uri);
    try {
      await assert.rejects(client.db('admin').aggregate([{ $backupCursor: {} }]).toArray(), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 40324);
        assert.equal(err.codeName, 'Location40324');
        assert.equal(err.message, "Unrecognized pipeline stage name: '$backupCursor'");
        return true;
      });
    } finally {
      await client.close();
      await server.stop();
      server.cleanup();
    }
  });
});
