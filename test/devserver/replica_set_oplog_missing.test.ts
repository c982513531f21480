/**
 * An initiated set without its oplog does not serve: the oplog dropped while the dbpath
 * ran as a standalone, the server refuses to start with --replSet (writes taken then
 * would be in no oplog), as mongod's member never becomes writable without one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startReplDevServer } from '../helpers/repl_dev_server.js';

describe('dev server --replSet on a dbpath whose oplog was dropped', () => {
  it('refuses to start, saying the oplog is missing', async () => {
    const initiated = await startReplDevServer();
    try {
      assert.equal(await initiated.stop(), 0);
      const standalone = await startDevServer({ dbpath: initiated.dbpath });
      const client = new MongoClient(standalone.uri);
      try {
        await client.db('local').command({ drop: 'oplog.rs' });
        assert.deepEqual(await client.db('local').listCollections({ name: 'oplog.rs' }).toArray(), []);
      } finally {
        await client.close();
        await standalone.stop();
      }
      await assert.rejects(
        startDevServer({ dbpath: initiated.dbpath, args: ['--replSet', 'rs0'] }),
        /the dbpath holds replica set 'rs0' but no oplog \(local\.oplog\.rs is missing\)/,
      );
    } finally {
      await initiated.stop();
      initiated.cleanup();
    }
  });
});
