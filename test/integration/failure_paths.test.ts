/**
 * A backup that fails mid-copy fails cleanly, for both strategies: the status says
 * so with errno and strerror, no manifest is written, no backup cursor is left open,
 * no fsync lock is left held, writes go on, and the next backup succeeds.
 *
 * The destination is a 16 MiB tmpfs, so the copy runs out of space part-way through
 * the 100 MiB journal file: a real ENOSPC, not an injected fault.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { openBackupCursor, closeBackupCursor, startBackupCursorSpy } from '../helpers/backup_cursor_spy.js';

function mountSmallTmpfs(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const canMount = (() => {
  const probe = tempDir('mount-probe');
  try {
    if (!mountSmallTmpfs(probe.dir)) return false;
    execFileSync('umount', [probe.dir]);
    return true;
  } finally {
    probe.remove();
  }
})();

const cases = [
  { strategy: 'backupCursor', serverArgs: [] as string[], start: {} },
  { strategy: 'fsyncLock', serverArgs: ['--no-backup-cursor'], start: { allowWriteBlocking: true } },
] as const;

for (const { strategy, serverArgs, start } of cases) {
  describe(`a failed ${strategy} backup`, () => {
    it('fails cleanly and leaves mongod as it found it', { skip: canMount ? false : 'needs root to mount a small tmpfs' }, async () => {
      const server = await startDevServer({ args: [...serverArgs] });
      const proxy = await startProxy(server);
      const scratch = tempDir(`fail-${strategy}`);
      const full = path.join(scratch.dir, 'full');
      fs.mkdirSync(full);
      assert.ok(mountSmallTmpfs(full));
      const viaProxy = new MongoClient(proxy.uri);
      const direct = new MongoClient(server.uri);
      try {
        const admin = viaProxy.db('admin');
        await viaProxy.db('app').collection('c').insertMany(Array.from({ length: 500 }, (_, i) => ({ i })));
        const dest = path.join(full, 'backup');
        await assert.rejects(admin.command({ backupStart: dest, ...start }), (err: unknown) => {
          const e = err as { code?: number; message: string; errorResponse?: Document };
          assert.equal(e.code, 96, e.message);
          assert.match(e.message, /No space left on device/);
          assert.ok(e.message.includes(`${dest}/`), `the errmsg names the file it could not write: ${e.message}`);
          assert.equal(e.errorResponse?.['errno'], 28);
          assert.equal(e.errorResponse?.['strerror'], 'No space left on device');
          return true;
        });
        const status = await admin.command({ backupStatus: 1 });
        assert.equal(status['inProgress'], false);
        const last = status['last'] as Document;
        assert.equal(last['ok'], false);
        assert.match(String(last['errmsg']), /No space left on device/);
        assert.equal(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')), false, 'a failed backup has no manifest');

        // mongod is as it was: no lock, no cursor, writes flow. The lock is read from
        // currentOp rather than guessed from how long a write takes: with none held, the
        // write below cannot block.
        const op = await direct.db('admin').command({ currentOp: 1 });
        assert.equal(op['fsyncLock'], undefined, 'no fsync lock left held');
        const write = await direct.db('app').collection('c').insertOne({ after: 'failure' }, { writeConcern: { j: true } });
        assert.equal(write.acknowledged, true, 'writes succeed after the failure');
        if (strategy === 'backupCursor') {
          const cursor = await openBackupCursor(direct); // no cursor was left open
          await closeBackupCursor(direct, cursor);
        }

        // And the next backup, to a roomy destination, succeeds.
        const next = path.join(scratch.dir, 'next');
        assert.deepEqual(await admin.command({ backupStart: next, ...start }), { ok: 1 });
        assert.ok(fs.existsSync(path.join(next, 'hotbackup-manifest.json')));
      } finally {
        await viaProxy.close();
        await direct.close();
        execFileSync('umount', [full]);
        await proxy.stop();
        await server.stop();
        server.cleanup();
        scratch.remove();
      }
    });
  });
}

describe('a failed copy whose release fails too', () => {
  it('says both in one errmsg: the copy error first, then the release', { skip: canMount ? false : 'needs root to mount a small tmpfs' }, async () => {
    const server = await startDevServer();
    const spy = await startBackupCursorSpy(server.port);
    // The proxy reaches mongod through the spy, which cuts the connection of its killCursors.
    const proxy = await startProxy({ ...server, uri: `mongodb://127.0.0.1:${spy.port}/?directConnection=true` });
    const scratch = tempDir('fail-release-too');
    const full = path.join(scratch.dir, 'full');
    fs.mkdirSync(full);
    assert.ok(mountSmallTmpfs(full));
    const viaProxy = new MongoClient(proxy.uri);
    try {
      const cut = spy.failNext('killCursors', 'cut');
      await assert.rejects(viaProxy.db('admin').command({ backupStart: path.join(full, 'backup') }), (err: unknown) => {
        const e = err as { code?: number; message: string; errorResponse?: Document };
        assert.equal(e.code, 96, e.message);
        assert.match(e.message, /No space left on device; releasing the snapshot failed too: /);
        assert.equal(e.errorResponse?.['errno'], 28, 'the copy error keeps its errno');
        return true;
      });
      await cut;
    } finally {
      await viaProxy.close();
      execFileSync('umount', [full]);
      await proxy.stop();
      await spy.close();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
