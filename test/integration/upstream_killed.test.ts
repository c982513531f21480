/**
 * mongod (the dev server) is killed with SIGKILL in the middle of a backup's copy, for
 * both strategies: the blocking backupStart gets a mongod-style error, no manifest is
 * written (the incomplete marker says failed), the proxy stays up, and once mongod is
 * back on the same port and dbpath the proxy serves new clients, holds no lock on the new
 * mongod, and takes the next backup.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilCopying } from '../helpers/poll.js';
import { readIncompleteMarker } from '../../src/backup/backup_marker.js';
import { ErrorCodes } from '../../src/errors.js';
import { RawClient } from '../helpers/raw_client.js';

/** The backup's error, by strategy: the snapshot did not survive mongod's restart. */
const EXPECTED: Record<string, { code: number; codeName: string; errmsg: RegExp }> = {
  // mongod's own CursorNotFound, from whichever sees the restarted mongod first: a
  // keepalive getMore, or, when the copy finished in between (a slow restart on a busy
  // machine), the release's killCursors finding no such cursor. Both fail it as lost.
  backupCursor: { code: ErrorCodes.CursorNotFound, codeName: 'CursorNotFound', errmsg: /The backup cursor \d+ was lost .*(cursor id \d+ not found|killCursors did not kill it)/ },
  fsyncLock: { code: ErrorCodes.CannotBackup, codeName: 'CannotBackup', errmsg: /restart/i },
};

const cases = [
  { strategy: 'backupCursor', serverArgs: [] as string[], proxyArgs: ['--backup-cursor-keepalive-ms', '200'] },
  { strategy: 'fsyncLock', serverArgs: ['--no-backup-cursor'] as string[], proxyArgs: ['--allow-write-blocking'] as string[] },
];

for (const { strategy, serverArgs, proxyArgs } of cases) {
  describe(`mongod killed during a ${strategy} backup`, () => {
    it('fails the backup cleanly; the proxy stays up and serves the restarted mongod', async () => {
      const first = await startDevServer({ args: serverArgs });
      let server: RunningDevServer = first;
      const { dbpath, port } = first;
      const scratch = tempDir(`killed-${strategy}`);
      const proxy = await startProxy(server, proxyArgs);
      const starter = new MongoClient(proxy.uri, { maxPoolSize: 1 });
      const watcher = new MongoClient(proxy.uri, { maxPoolSize: 1 });
      let after: MongoClient | undefined;
      try {
        const pad = 'x'.repeat(10_000);
        await starter.db('app').collection('c').insertMany(Array.from({ length: 1000 }, (_, i) => ({ i, pad })));
        const admin = watcher.db('admin');
        // Slow enough that the copy is surely under way when mongod dies.
        await admin.command({ backupThrottle: '1MB' });
        const destination = path.join(scratch.dir, 'b');
        const started = starter.db('admin').command({ backupStart: destination });
        started.catch(() => undefined); // awaited below
        await untilCopying(admin);

        await server.kill9();
        // The proxy is up (its process, and its listener) while mongod is away. New
        // clients are accepted and closed (no upstream); the blocking backupStart's client
        // is kept: its answer does not depend on its own connection to mongod.
        assert.equal(proxy.child.exitCode, null, 'the proxy did not exit');
        assert.equal(proxy.child.signalCode, null);
        const late = await RawClient.connect(proxy.port);
        await late.closed;

        // mongod comes back, a new process on the same port and dbpath. An unreachable
        // mongod is not a lost snapshot (the copy goes on), but a restarted one is: the
        // cursor is gone with the old process, and so is the fsync lock.
        server = await startDevServer({ dbpath, port, args: serverArgs });
        await assert.rejects(started, (err: unknown) => {
          const e = err as { code?: number; message: string; errorResponse?: Document };
          const expected = EXPECTED[strategy] as (typeof EXPECTED)[string];
          assert.equal(e.code, expected.code, e.message);
          assert.equal(e.errorResponse?.['codeName'], expected.codeName);
          assert.match(e.message, expected.errmsg);
          return true;
        });
        assert.equal(fs.existsSync(path.join(destination, 'hotbackup-manifest.json')), false, 'no manifest');
        const marker = await readIncompleteMarker(destination);
        assert.equal(marker.kind, 'present');
        assert.equal(marker.kind === 'present' && marker.marker.state, 'failed', 'the marker says the backup failed');

        after = new MongoClient(proxy.uri);
        const status = await after.db('admin').command({ backupStatus: 1 });
        assert.equal(status['inProgress'], false);
        assert.equal((status['last'] as Document)['ok'], false);
        // The new mongod holds no lock of the dead one's backup: writes flow, and currentOp
        // (asked of mongod directly) shows none.
        const direct = new MongoClient(server.uri);
        try {
          assert.equal((await direct.db('admin').command({ currentOp: 1 }))['fsyncLock'], undefined, 'no fsync lock on the restarted mongod');
        } finally {
          await direct.close();
        }
        await after.db('app').collection('c').insertOne({ after: 'restart' });
        assert.equal(await after.db('app').collection('c').countDocuments({ after: 'restart' }), 1);

        // The next backup succeeds: the proxy's own connection to mongod came back too.
        await after.db('admin').command({ backupThrottle: 0 });
        const next = path.join(scratch.dir, 'next');
        await until(async () => {
          // The proxy may still be tidying after the failed one (a release it retries).
          const s = await after?.db('admin').command({ backupStatus: 1 });
          return s?.['inProgress'] === false;
        });
        assert.equal((await after.db('admin').command({ backupStart: next }))['ok'], 1);
        assert.ok(fs.existsSync(path.join(next, 'hotbackup-manifest.json')));
      } finally {
        await starter.close();
        await watcher.close();
        await after?.close();
        await proxy.stop();
        await server.stop();
        first.cleanup(); // the restarted server runs on the first one's dbpath

        scratch.remove();
      }
    });
  });
}
