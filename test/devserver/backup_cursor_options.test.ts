/**
 * `$backupCursor` and `$backupCursorExtend` options as Percona's and MongoDB's own jstests
 * try them (incremental_backup_cursor.js, backup_cursor_extend.js), on a standalone dev
 * server; and `setParameter: {cursorTimeoutMillis}` timing out an idle backup cursor.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Double, Long, MongoClient, MongoServerError, Timestamp, UUID, type ClientSession, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { until } from '../helpers/poll.js';

describe('$backupCursor and $backupCursorExtend options on the dev server', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  let session: ClientSession;

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
    await client.connect();
    session = client.startSession();
  });

  after(async () => {
    await session?.endSession();
    await client?.close();
    await server?.stop();
    server?.cleanup();
  });

  const admin = () => client.db('admin');
  const aggregate = (stage: Document) => admin().command({ aggregate: 1, pipeline: [stage], cursor: {} }, { session });
  const close = (id: unknown) => admin().command({ killCursors: '$cmd.aggregate', cursors: [Long.fromValue(id as number)] }, { session });

  async function refused(stage: Document, code: number, message?: RegExp | string): Promise<void> {
    await assert.rejects(aggregate(stage), (err: unknown) => {
      assert.ok(err instanceof MongoServerError, String(err));
      assert.equal(err.code, code, `${JSON.stringify(stage)}: ${err.message}`);
      if (typeof message === 'string') assert.equal(err.message, message);
      else if (message !== undefined) assert.match(err.message, message);
      return true;
    });
    // Nothing was left open by a refused stage.
    const status = await admin().command({ serverStatus: 1 });
    assert.equal((status['storageEngine'] as Document)['backupCursorOpen'], false);
  }

  it('refuses wrong types with TypeMismatch and bad combinations with InvalidOptions, in PSMDB wording', async () => {
    await refused({ $backupCursor: 1 }, 9, '$backupCursor parameters must be specified in an object, but found: int');
    await refused({ $backupCursor: { incrementalBackup: {} } }, 14, "The 'incrementalBackup' parameter of the $backupCursor stage must be a boolean value, but found: object");
    await refused({ $backupCursor: { disableIncrementalBackup: 1 } }, 14);
    await refused({ $backupCursor: { blockSize: new Double(16) } }, 14, "The 'blockSize' parameter of the $backupCursor stage must be an integer value, but found: double");
    await refused({ $backupCursor: { incrementalBackup: true, thisBackupName: 1 } }, 14);
    await refused({ $backupCursor: { incrementalBackup: true, thisBackupName: 'foo', srcBackupName: {} } }, 14);
    await refused({ $backupCursor: { bogus: true } }, 9, "Unrecognized option 'bogus' in $backupCursor stage");
    await refused({ $backupCursor: { incrementalBackup: true, disableIncrementalBackup: true } }, 72, "'incrementalBackup' and 'disableIncrementalBackup' parameters are mutually exclusive. Cannot enable both");
    const namesOnlyWithIncremental = "'thisBackupName' and 'srcBackupName' parameters are only allowed when 'incrementalBackup' is true";
    await refused({ $backupCursor: { incrementalBackup: false, thisBackupName: 'foo' } }, 72, namesOnlyWithIncremental);
    await refused({ $backupCursor: { srcBackupName: 'foo' } }, 72, namesOnlyWithIncremental);
    await refused({ $backupCursor: { disableIncrementalBackup: true, thisBackupName: 'foo' } }, 72, namesOnlyWithIncremental);
    await refused({ $backupCursor: { incrementalBackup: true } }, 72, "'thisBackupName' needs to exist when incrementalBackup=true");
    await refused({ $backupCursor: { incrementalBackup: true, srcBackupName: 'foo' } }, 72, "'thisBackupName' needs to exist when incrementalBackup=true");
    await refused({ $backupCursor: { incrementalBackup: true, thisBackupName: '' } }, 72, "'thisBackupName' needs to be a non-empty string");
    await refused({ $backupCursor: { blockSize: 0 } }, 72);
    await refused({ $backupCursor: { blockSize: -16 } }, 72);
    // A valid incremental request: WiredTiger 3.2.1 cannot do it.
    await refused({ $backupCursor: { incrementalBackup: true, thisBackupName: 'foo' } }, 238);
  });

  it('accepts incrementalBackup: false and echoes the options in the metadata', async () => {
    const reply = await aggregate({ $backupCursor: { incrementalBackup: false, blockSize: 8 } });
    const cursor = reply['cursor'] as { id: unknown; firstBatch: Document[] };
    try {
      const metadata = cursor.firstBatch[0]?.['metadata'] as Document;
      assert.equal(metadata['incrementalBackup'], false);
      assert.equal(metadata['disableIncrementalBackup'], false);
      assert.equal(metadata['blockSize'], 8);
      assert.equal(metadata['message'], undefined);
      assert.ok(cursor.firstBatch.length > 1, 'a full backup lists files');
    } finally {
      await close(cursor.id);
    }
  });

  it('disableIncrementalBackup: true answers the metadata alone, with the message, until closed', async () => {
    const reply = await aggregate({ $backupCursor: { disableIncrementalBackup: true } });
    const cursor = reply['cursor'] as { id: unknown; firstBatch: Document[] };
    try {
      assert.equal(cursor.firstBatch.length, 1);
      const metadata = cursor.firstBatch[0]?.['metadata'] as Document;
      assert.equal(metadata['disableIncrementalBackup'], true);
      assert.equal(metadata['incrementalBackup'], false);
      assert.equal(metadata['message'], 'Close the cursor to release all incremental information and resources.');
      const more = await admin().command({ getMore: Long.fromValue(cursor.id as number), collection: '$cmd.aggregate' }, { session });
      assert.deepEqual((more['cursor'] as Document)['nextBatch'], [], 'no file documents follow');
      // It is a backup cursor all the same: a second one waits for it to close.
      await assert.rejects(aggregate({ $backupCursor: {} }), (err: unknown) => err instanceof MongoServerError && err.code === 50886);
    } finally {
      await close(cursor.id);
    }
    const again = await aggregate({ $backupCursor: {} });
    await close((again['cursor'] as Document)['id']);
  });

  it('checks $backupCursorExtend in PSMDB order: parsing, no cursor (50886), wrong id (29094), no replication (29144)', async () => {
    const ts = new Timestamp({ t: 100, i: 1 });
    await refused({ $backupCursorExtend: 1 }, 9);
    await refused({ $backupCursorExtend: { bogus: 1 } }, 9, "Unrecognized option 'bogus' in $backupCursorExtend stage");
    await refused({ $backupCursorExtend: { backupId: 'abc', timestamp: ts } }, 14, "The 'backupId' parameter of the $backupCursorExtend stage must be a UUID value, but found: string");
    await refused({ $backupCursorExtend: { backupId: new UUID(), timestamp: 5 } }, 14);
    await refused({ $backupCursorExtend: { timestamp: ts } }, 72, 'Required parameter missing: backupId');
    await refused({ $backupCursorExtend: { backupId: new UUID() } }, 72, 'Required parameter missing: timestamp');
    await refused({ $backupCursorExtend: { backupId: new UUID(), timestamp: ts } }, 50886, 'Cannot extend backup cursor because backup cursor is not open');

    const reply = await aggregate({ $backupCursor: {} });
    const cursor = reply['cursor'] as { id: unknown; firstBatch: Document[] };
    try {
      const backupId = (cursor.firstBatch[0]?.['metadata'] as Document)['backupId'] as UUID;
      const extend = (id: UUID) => aggregate({ $backupCursorExtend: { backupId: id, timestamp: ts } });
      await assert.rejects(extend(new UUID()), (err: unknown) => err instanceof MongoServerError && err.code === 29094);
      await assert.rejects(extend(backupId), (err: unknown) => {
        assert.ok(err instanceof MongoServerError);
        assert.equal(err.code, 29144);
        assert.equal(err.message, 'Cannot extend backup cursor when replication is not enabled');
        return true;
      });
    } finally {
      await close(cursor.id);
    }
  });

  it('setParameter cursorTimeoutMillis times out an idle backup cursor; getParameter reads it back', async () => {
    await assert.rejects(admin().command({ setParameter: 1, noSuchParameter: 1 }), (err: unknown) => err instanceof MongoServerError && err.code === 72);
    await assert.rejects(admin().command({ setParameter: 1, cursorTimeoutMillis: 'soon' }), (err: unknown) => err instanceof MongoServerError && err.code === 2);
    const reply = await aggregate({ $backupCursor: {} });
    const id = (reply['cursor'] as Document)['id'];
    let restored = false;
    try {
      const set = await admin().command({ setParameter: 1, cursorTimeoutMillis: 300 });
      assert.equal(Number(set['was']), 600_000);
      const got = await admin().command({ getParameter: 1, cursorTimeoutMillis: 1 });
      assert.equal(Number(got['cursorTimeoutMillis']), 300);
      // The reaper follows the new value: the idle backup cursor is closed, and with it the backup.
      await until(async () => {
        const status = await admin().command({ serverStatus: 1 });
        return (status['storageEngine'] as Document)['backupCursorOpen'] === false;
      });
      await assert.rejects(
        admin().command({ getMore: Long.fromValue(id as number), collection: '$cmd.aggregate' }, { session }),
        (err: unknown) => err instanceof MongoServerError && err.code === 43,
      );
      await admin().command({ setParameter: 1, cursorTimeoutMillis: 600_000 });
      restored = true;
    } finally {
      if (!restored) await admin().command({ setParameter: 1, cursorTimeoutMillis: 600_000 }).catch(() => undefined);
    }
  });
});
