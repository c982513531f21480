/**
 * The reflink strategy against a dev server without $backupCursor (as MongoDB
 * Community) whose dbpath is on a real loop-mounted filesystem:
 * - on XFS, `auto` picks reflink and says why; a j:true writer keeps writing during the
 *   copy; the copy restores as a gap-free prefix of acknowledged writes that `wt verify`
 *   accepts; the staging directory is gone after success, after a failure and after an
 *   abort, and a failed backup leaves no manifest;
 * - a destination on the same XFS gets the clones themselves: no staging, no copy, a
 *   manifest whose checksums verify, data that opens;
 * - on ext4, `auto` refuses with the error naming the three ways out, unless blocking
 *   writes is allowed (then fsyncLock), and reflink asked for by name fails saying why.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { assertRestorablePrefix, startSequentialWriter, type SequenceDoc } from '../helpers/restorable.js';
import { until, untilBackupEnds, untilCopying } from '../helpers/poll.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';
import { workDirs } from '../../src/backup/work_dirs.js';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';
import { xxh3Hex } from '../helpers/checksum.js';

type Last = { ok: boolean; strategy: string | null; strategyReason: string | null; writesBlockedMs: unknown; backupId: string; errmsg?: string; code?: number };

const xfsUnavailable = loopFsUnavailable('xfs');
const ext4Unavailable = loopFsUnavailable('ext4');

/** A filesystem of `type`, a dev server without $backupCursor on it, and a proxy in front. */
interface Stack {
  fsys: LoopFs;
  server: RunningDevServer;
  proxy: RunningProxy;
  client: MongoClient;
  admin: Db;
  stagingRoot: string;
  scratch: { dir: string; remove: () => void };
}

async function startStack(type: 'xfs' | 'ext4'): Promise<Stack> {
  const fsys = await mountLoopFs(type, 400);
  const dbpath = path.join(fsys.dir, 'db');
  fs.mkdirSync(dbpath);
  const server = await startDevServer({ dbpath, args: ['--no-backup-cursor', '--checkpoint-interval', '1'] });
  const proxy = await startProxy(server);
  const client = new MongoClient(proxy.uri);
  return { fsys, server, proxy, client, admin: client.db('admin'), stagingRoot: workDirs(dbpath).stagingRoot, scratch: tempDir(`reflink-${type}`) };
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  if (stack === undefined) return;
  await stack.client.close();
  await stack.proxy.stop();
  await stack.server.stop();
  stack.scratch.remove();
  await stack.fsys.remove();
}

function stagingEntries(stack: Stack): string[] {
  return fs.existsSync(stack.stagingRoot) ? fs.readdirSync(stack.stagingRoot) : [];
}

function hasManifest(dir: string): boolean {
  return fs.existsSync(path.join(dir, MANIFEST_FILENAME));
}

describe('reflink on XFS', () => {
  let stack: Stack | undefined;

  before(async () => {
    if (xfsUnavailable === undefined) stack = await startStack('xfs');
  });

  after(async () => {
    await stopStack(stack);
  });

  it('auto picks reflink and says why; the copy restores as a gap-free prefix that wt verify accepts; staging is removed', { skip: xfsUnavailable }, async () => {
    const s = stack as Stack;
    const writerClient = new MongoClient(s.proxy.uri);
    try {
      const writer = await startSequentialWriter(writerClient.db('app').collection<SequenceDoc>('seq'), 'r');
      const ackedBeforeStart = writer.acked();
      // A crawl, so that the copy overlaps the writer for a while.
      await s.admin.command({ backupThrottle: '1MB' });
      const dest = path.join(s.scratch.dir, 'backup');
      assert.equal((await s.admin.command({ backupStart: dest, async: true }))['ok'], 1);
      const copying = await untilCopying(s.admin);
      assert.equal(copying['strategy'], 'reflink');
      assert.equal(copying['strategyReason'], 'no $backupCursor; dbpath on xfs supports reflink');
      assert.ok(Number(copying['writesBlockedMs']) > 0, 'the clones were made under an fsync lock');
      // The copy reads the staged clones, on the dbpath's filesystem, next to the dbpath.
      assert.deepEqual(stagingEntries(s), [`hotbackup-staging-${String(copying['backupId'])}`]);
      // Writes are not blocked while the copy runs: only while the clones were made.
      await writer.untilMoreDuring(50, async () => (await s.admin.command({ backupStatus: 1 }))['inProgress'] === true);
      await s.admin.command({ backupThrottle: 0 });
      const done = await untilBackupEnds(s.admin);
      await writer.stop();
      const last = done['last'] as Last;
      assert.equal(last.ok, true, JSON.stringify(last));
      assert.equal(last.backupId, copying['backupId']);
      assert.equal(last.strategy, 'reflink');
      assert.equal(last.strategyReason, 'no $backupCursor; dbpath on xfs supports reflink');
      assert.ok(Number(last.writesBlockedMs) > 0);
      assert.deepEqual(stagingEntries(s), [], 'the staging directory is removed after the copy');
      const manifest = await readManifest(dest);
      assert.equal(manifest.strategy, 'reflink');
      assert.equal(manifest.source.dbpath, s.server.dbpath);

      await assertRestorablePrefix(dest, s.scratch.dir, ackedBeforeStart);
    } finally {
      await writerClient.close();
    }
  });

  it('removes the staging directory after a failed copy, and leaves no manifest', { skip: xfsUnavailable }, async () => {
    const s = stack as Stack;
    await s.admin.command({ backupThrottle: '1MB' });
    const dest = path.join(s.scratch.dir, 'failing');
    assert.equal((await s.admin.command({ backupStart: dest, async: true }))['ok'], 1);
    const copying = await untilCopying(s.admin);
    assert.deepEqual(stagingEntries(s), [`hotbackup-staging-${String(copying['backupId'])}`]);
    // The destination goes away under the copy: the next file cannot be created.
    fs.rmSync(dest, { recursive: true, force: true });
    await s.admin.command({ backupThrottle: 0 });
    const last = (await untilBackupEnds(s.admin))['last'] as Last;
    assert.equal(last.ok, false);
    assert.equal(last.strategy, 'reflink');
    assert.match(last.errmsg ?? '', /ENOENT|No such file or directory/);
    assert.deepEqual(stagingEntries(s), [], 'the staging directory is removed after a failure');
    assert.equal(hasManifest(dest), false);
  });

  it('clones straight into a destination on the same filesystem: no staging, a manifest whose checksums verify, data that opens', { skip: xfsUnavailable }, async () => {
    const s = stack as Stack;
    const docs = s.client.db('app').collection<{ _id: number; pad: string }>('local');
    await docs.insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, pad: 'l'.repeat(1000) })), { writeConcern: { w: 1, j: true } });
    // A crawl that would take minutes if anything were copied through it.
    await s.admin.command({ backupThrottle: '1KB' });
    const backups = path.join(s.fsys.dir, 'backups');
    fs.mkdirSync(backups, { recursive: true });
    const dest = path.join(backups, 'local');
    assert.equal((await s.admin.command({ backupStart: dest }))['ok'], 1);
    await s.admin.command({ backupThrottle: 0 });
    const last = (await s.admin.command({ backupStatus: 1 }))['last'] as Last & { bytes: unknown; files: number };
    assert.equal(last.ok, true, JSON.stringify(last));
    assert.equal(last.strategy, 'reflink');
    assert.equal(last.strategyReason, "no $backupCursor; dbpath on xfs supports reflink; cloned straight into the destination, on the dbpath's filesystem: nothing to copy");
    assert.ok(Number(last.writesBlockedMs) > 0);
    const cloned = s.proxy.logs.find((line) => line['msg'] === 'reflink: files cloned, mongod unlocked' && line['backupId'] === last.backupId);
    assert.equal(cloned?.['into'], dest, 'cloned into the destination, not into staging');
    assert.deepEqual(stagingEntries(s), []);

    const manifest = await readManifest(dest);
    assert.equal(manifest.strategy, 'reflink');
    assert.equal(manifest.files.length, last.files);
    assert.equal(manifest.totals.bytes, Number(last.bytes));
    for (const file of manifest.files) {
      const bytes = fs.readFileSync(path.join(dest, file.path));
      assert.equal(bytes.length, file.size, file.path);
      assert.equal(xxh3Hex(bytes), file.checksum, file.path);
      assert.equal(fs.statSync(path.join(dest, file.path)).mode & 0o777, 0o600, file.path);
    }
    // Clones: the table's extents are shared with the dbpath's (filefrag's "shared" flag).
    const table = manifest.files.find((f) => f.path.startsWith('collection-') && f.size > 0);
    assert.ok(table !== undefined);
    assert.match(execFileSync('filefrag', ['-v', path.join(dest, table.path)], { encoding: 'utf8' }), /shared/);

    const restored = await startDevServer({ dbpath: dest });
    const reader = new MongoClient(restored.uri);
    try {
      assert.equal(await reader.db('app').collection('local').countDocuments(), 500);
    } finally {
      await reader.close();
      await restored.stop();
    }
  });

  it('serve --strategy reflink --staging-dir DIR: a backupStart that names no strategy gets reflink, staged in DIR', { skip: xfsUnavailable }, async () => {
    const s = stack as Stack;
    const stagingDir = path.join(s.fsys.dir, 'custom-staging');
    // A second proxy beside the stack's: it needs a state dir of its own (one proxy per state dir).
    const stateDir = path.join(s.fsys.dir, 'second-proxy-state');
    const proxy = await startProxy(s.server, ['--strategy', 'reflink', '--staging-dir', stagingDir, '--state-dir', stateDir]);
    const client = new MongoClient(proxy.uri);
    try {
      const admin = client.db('admin');
      await admin.command({ backupThrottle: '1MB' });
      assert.equal((await admin.command({ backupStart: path.join(s.scratch.dir, 'custom'), async: true }))['ok'], 1);
      const copying = await untilCopying(admin);
      assert.equal(copying['strategyReason'], 'strategy reflink as asked; dbpath on xfs supports reflink');
      assert.deepEqual(fs.readdirSync(stagingDir), [`hotbackup-staging-${String(copying['backupId'])}`]);
      assert.deepEqual(stagingEntries(s), [], 'nothing in the default staging directory');
      await admin.command({ backupThrottle: 0 });
      const last = (await untilBackupEnds(admin))['last'] as Last;
      assert.equal(last.ok, true, JSON.stringify(last));
      assert.deepEqual(fs.readdirSync(stagingDir), []);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  it('reflink asked for by name runs; a proxy shut down mid-copy removes the staging directory and leaves no manifest', { skip: xfsUnavailable }, async () => {
    const s = stack as Stack;
    await s.admin.command({ backupThrottle: '1MB' });
    const dest = path.join(s.scratch.dir, 'aborted');
    assert.equal((await s.admin.command({ backupStart: dest, async: true, strategy: 'reflink' }))['ok'], 1);
    const copying = await untilCopying(s.admin);
    assert.equal(copying['strategy'], 'reflink');
    assert.equal(copying['strategyReason'], 'strategy reflink as asked; dbpath on xfs supports reflink');
    assert.deepEqual(stagingEntries(s), [`hotbackup-staging-${String(copying['backupId'])}`]);
    assert.equal(await s.proxy.stop(), 0);
    assert.deepEqual(stagingEntries(s), [], 'the staging directory is removed when the proxy shuts down');
    assert.equal(hasManifest(dest), false);
    // mongod is writable: the lock was released long before.
    const direct = new MongoClient(s.server.uri);
    try {
      await direct.db('app').collection('after').insertOne({ ok: true }, { writeConcern: { w: 1, j: true } });
    } finally {
      await direct.close();
    }
  });
});

describe('reflink on XFS with the journal on another filesystem', () => {
  it('fails under the lock naming the file that cannot be cloned; mongod is unlocked, staging removed, no manifest', { skip: xfsUnavailable }, async () => {
    const fsys = await mountLoopFs('xfs', 300);
    const scratch = tempDir('reflink-exdev');
    const dbpath = path.join(fsys.dir, 'db');
    // journal/ on the ordinary disk, as an operator puts it on a disk of its own.
    fs.mkdirSync(dbpath);
    fs.mkdirSync(path.join(scratch.dir, 'journal'));
    fs.symlinkSync(path.join(scratch.dir, 'journal'), path.join(dbpath, 'journal'));
    const server = await startDevServer({ dbpath, args: ['--no-backup-cursor'] });
    const proxy = await startProxy(server);
    const client = new MongoClient(proxy.uri);
    try {
      await client.db('app').collection('c').insertOne({ x: 1 }, { writeConcern: { w: 1, j: true } });
      const dest = path.join(scratch.dir, 'backup');
      const err = await client
        .db('admin')
        .command({ backupStart: dest })
        .then(
          () => assert.fail('a clone crossed filesystems'),
          (e: { code?: number; errmsg?: string; message: string }) => e,
        );
      assert.equal(err.code, 268);
      assert.match(
        err.errmsg ?? err.message,
        /^reflink: cannot clone journal\/WiredTigerLog\.\d+ \(.*\) into .*: it is on another filesystem than .*\(Invalid cross-device link \(EXDEV\)\); a symbolic link in the dbpath to another disk does this\. Back up with strategy fsyncLock or backupCursor/,
      );
      const last = (await client.db('admin').command({ backupStatus: 1 }))['last'] as Last;
      // It failed under its lock: the report says which strategy blocked writes, and for how long.
      assert.equal(last.strategy, 'reflink');
      assert.ok(Number(last.writesBlockedMs) > 0, `writesBlockedMs ${String(last.writesBlockedMs)}`);
      assert.equal(hasManifest(dest), false);
      assert.deepEqual(fs.readdirSync(workDirs(dbpath).stagingRoot), []);
      // Unlocked: a write goes through, and mongod says it is not locked.
      await client.db('app').collection('c').insertOne({ x: 2 }, { writeConcern: { w: 1, j: true } });
      assert.notEqual((await client.db('admin').command({ currentOp: 1 }))['fsyncLock'], true);
    } finally {
      await client.close();
      await proxy.stop();
      await server.stop();
      await fsys.remove();
      scratch.remove();
    }
  });
});

describe('reflink on ext4', () => {
  let stack: Stack | undefined;

  before(async () => {
    if (ext4Unavailable === undefined) stack = await startStack('ext4');
  });

  after(async () => {
    await stopStack(stack);
  });

  it('auto refuses with the error naming the three ways out, unless blocking writes is allowed; then fsyncLock works', { skip: ext4Unavailable }, async () => {
    const s = stack as Stack;
    await s.client.db('app').collection('c').insertOne({ x: 1 }, { writeConcern: { w: 1, j: true } });
    const refused = path.join(s.scratch.dir, 'refused');
    const reply = await s.admin.command({ backupStart: refused }).then(
      () => assert.fail('backupStart succeeded on ext4 without allowWriteBlocking'),
      (err: { code?: number; errmsg?: string; message: string }) => err,
    );
    assert.equal(reply.code, 268);
    const errmsg = reply.errmsg ?? reply.message;
    assert.match(errmsg, /^This mongod has no \$backupCursor \(MongoDB Community\), and reflink cannot run here \(dbpath on ext4 cannot clone files \(FICLONE: Operation not supported \(EOPNOTSUPP\)\)\)/);
    // The three ways out, each with how to enable it.
    assert.match(errmsg, /\(1\) reflink, .*XFS made with reflink=1.*btrfs.*--staging-dir/);
    assert.match(errmsg, /\(2\) \$backupCursor, .*MongoDB Enterprise, or Percona Server for MongoDB/);
    assert.match(errmsg, /\(3\) fsyncLock, .*allowWriteBlocking: true.*--allow-write-blocking/);
    assert.equal(hasManifest(refused), false);
    assert.deepEqual(stagingEntries(s), []);

    const blocking = path.join(s.scratch.dir, 'blocking');
    assert.equal((await s.admin.command({ backupStart: blocking, allowWriteBlocking: true }))['ok'], 1);
    const last = (await s.admin.command({ backupStatus: 1 }))['last'] as Last;
    assert.equal(last.ok, true, JSON.stringify(last));
    assert.equal(last.strategy, 'fsyncLock');
    assert.match(last.strategyReason ?? '', /^no \$backupCursor; dbpath on ext4 cannot clone files .*; fsyncLock for the whole copy, as allowed/);
    assert.equal((await readManifest(blocking)).strategy, 'fsyncLock');
  });

  it('reflink asked for by name fails saying why, and fsyncLock by name still needs permission', { skip: ext4Unavailable }, async () => {
    const s = stack as Stack;
    const named = path.join(s.scratch.dir, 'named-reflink');
    const reflink = await s.admin.command({ backupStart: named, strategy: 'reflink', allowWriteBlocking: true }).then(
      () => assert.fail('reflink ran on ext4'),
      (err: { code?: number; errmsg?: string; message: string }) => err,
    );
    assert.equal(reflink.code, 268);
    assert.match(
      reflink.errmsg ?? reflink.message,
      /^strategy reflink was asked for, but it cannot run here: dbpath on ext4 cannot clone files \(FICLONE: Operation not supported \(EOPNOTSUPP\)\)\. To use it, put the dbpath on a filesystem that clones files/,
    );
    // Never a fallback, even though blocking writes was allowed.
    const last = (await s.admin.command({ backupStatus: 1 }))['last'] as Last;
    assert.equal(last.strategy, null);
    assert.equal(hasManifest(named), false);

    const lock = await s.admin.command({ backupStart: path.join(s.scratch.dir, 'named-lock'), strategy: 'fsyncLock' }).then(
      () => assert.fail('fsyncLock ran without permission'),
      (err: { code?: number; errmsg?: string; message: string }) => err,
    );
    assert.equal(lock.code, 268);
    assert.match(lock.errmsg ?? lock.message, /^strategy fsyncLock blocks every write to mongod for the whole copy, so it must be allowed: .*allowWriteBlocking: true.*--allow-write-blocking/);
    await until(async () => (await s.admin.command({ backupStatus: 1 }))['inProgress'] === false);
  });

  it('serve --strategy reflink is a default that never falls back either', { skip: ext4Unavailable }, async () => {
    const s = stack as Stack;
    const proxy = await startProxy(s.server, ['--strategy', 'reflink', '--allow-write-blocking', '--state-dir', path.join(s.fsys.dir, 'second-proxy-state')]);
    const client = new MongoClient(proxy.uri);
    try {
      const err = await client
        .db('admin')
        .command({ backupStart: path.join(s.scratch.dir, 'serve-default') })
        .then(
          () => assert.fail('reflink ran on ext4'),
          (e: { code?: number; errmsg?: string; message: string }) => e,
        );
      assert.equal(err.code, 268);
      assert.match(err.errmsg ?? err.message, /^strategy reflink was asked for, but it cannot run here: dbpath on ext4 cannot clone files/);
      // The request's own choice still wins over serve's.
      assert.equal((await client.db('admin').command({ backupStart: path.join(s.scratch.dir, 'serve-default-auto'), strategy: 'auto' }))['ok'], 1);
      const last = (await client.db('admin').command({ backupStatus: 1 }))['last'] as Last;
      assert.equal(last.strategy, 'fsyncLock');
    } finally {
      await client.close();
      await proxy.stop();
    }
  });
});
