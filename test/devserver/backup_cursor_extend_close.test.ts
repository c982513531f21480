/**
 * A $backupCursorExtend waiting for a timestamp is answered as soon as its backup cursor
 * is killed: with PSMDB's "backup cursor is not open" (50886), not left waiting.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, MongoServerError, Timestamp, type Document } from 'mongodb';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import type { RunningDevServer } from '../helpers/dev_server.js';
import { until } from '../helpers/poll.js';

describe('$backupCursorExtend when its backup cursor is killed', () => {
  let server: RunningDevServer | undefined;
  const clients: MongoClient[] = [];

  after(async () => {
    for (const client of clients) await client.close();
    await server?.stop();
    server?.cleanup();
  });

  it('stops waiting and answers 50886', async () => {
    server = await startReplDevServer();
    const backup = await MongoClient.connect(server.uri);
    const extender = await MongoClient.connect(server.uri);
    clients.push(backup, extender);
    const cursor = backup.db('admin').aggregate([{ $backupCursor: {} }]);
    const first = (await cursor.next()) as Document;
    const backupId = (first['metadata'] as Document)['backupId'];
    // Far in the future: only the close can end the wait.
    const far = new Timestamp({ t: 0xffff_fff0, i: 1 });
    const extension = extender.db('admin').aggregate([{ $backupCursorExtend: { backupId, timestamp: far } }]).toArray();
    const outcome = extension.then(() => undefined, (err: unknown) => err);
    // Waiting on the server (it logs the wait's start) before the cursor is killed.
    await until(() => server?.logs.some((line) => line['msg'] === 'extending backup cursor'));
    await cursor.close();
    const err = await outcome;
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, 50886);
    assert.equal(err.message, 'Cannot extend backup cursor because backup cursor is not open');
  });
});
