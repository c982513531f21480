/**
 * `hotbackup restore` as an operator runs it, on backups taken through the proxy in front
 * of the dev server with both kinds of WiredTiger backup ($backupCursor's, with
 * WiredTiger.backup; fsyncLock's, with WiredTiger.turtle): the dev server opens the
 * restored dbpath with the document counts of backup time; a corrupted backup stops the
 * restore, and the dev server then refuses the target; a non-empty target, or one a
 * mongod runs on, is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';

type Counts = Record<string, number>;

/** Documents per collection, `db.collection` → count, of every database but the server's own. */
async function countsOf(uri: string): Promise<Counts> {
  const client = await MongoClient.connect(uri);
  try {
    const counts: Counts = {};
    for (const db of ['app', 'shop']) {
      for (const { name } of await client.db(db).listCollections().toArray()) counts[`${db}.${name}`] = await client.db(db).collection(name).countDocuments();
    }
    return counts;
  } finally {
    await client.close();
  }
}

/** Opens `dbpath` with the dev server and returns its counts; the dev server is stopped again. */
async function openAndCount(dbpath: string): Promise<Counts> {
  const server = await startDevServer({ dbpath });
  try {
    return await countsOf(server.uri);
  } finally {
    await server.stop();
  }
}

/** Flips one byte in the middle of the largest collection file of `dir`; returns its name. */
function corruptCollection(dir: string): string {
  const name = fs.readdirSync(dir).filter((f) => f.startsWith('collection-')).sort((a, b) => fs.statSync(path.join(dir, b)).size - fs.statSync(path.join(dir, a)).size)[0] as string;
  const fd = fs.openSync(path.join(dir, name), 'r+');
  const at = Math.floor(fs.fstatSync(fd).size / 2);
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, at);
  fs.writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
  fs.closeSync(fd);
  return name;
}

describe('hotbackup restore', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  const scratch = tempDir('restore-cli');
  const backups = { backupCursor: path.join(scratch.dir, 'cursor-backup'), fsyncLock: path.join(scratch.dir, 'lock-backup') };
  let atBackup: Counts;
  const restore = (...args: string[]) => runCli(['restore', ...args]);

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    const client = await MongoClient.connect(proxy.uri);
    try {
      await client.db('app').collection('docs').insertMany(Array.from({ length: 3000 }, (_, i) => ({ i, pad: 'r'.repeat(300) })));
      await client.db('app').collection('notes').insertMany(Array.from({ length: 120 }, (_, i) => ({ i })));
      await client.db('shop').collection('orders').insertMany(Array.from({ length: 45 }, (_, i) => ({ i, total: i * 3 })));
      atBackup = await countsOf(proxy.uri);
      const admin = client.db('admin');
      assert.deepEqual(await admin.command({ backupStart: backups.backupCursor }), { ok: 1 });
      assert.deepEqual(await admin.command({ backupStart: backups.fsyncLock, strategy: 'fsyncLock', allowWriteBlocking: true }), { ok: 1 });
      // Written after both backups: a restore holds none of them.
      await client.db('app').collection('docs').insertMany(Array.from({ length: 500 }, (_, i) => ({ after: i })));
      await client.db('shop').collection('later').insertOne({ after: true });
    } finally {
      await client.close();
    }
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  for (const strategy of ['backupCursor', 'fsyncLock'] as const) {
    it(`restores a ${strategy} backup that the dev server opens, with the document counts of backup time`, async () => {
      const target = path.join(scratch.dir, `restored-${strategy}`);
      const run = await restore(backups[strategy], '--to', target);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^Restored \\d+ files, [\\d.]+ MiB, from backup [0-9a-f-]{36} \\(${path.basename(backups[strategy])}, taken [^)]+\\) into ${target}; every checksum matched`));
      assert.equal(fs.existsSync(path.join(target, 'hotbackup-restore-incomplete.json')), false);
      assert.equal(fs.existsSync(path.join(target, 'hotbackup-manifest.json')), false, 'a dbpath, not a backup');
      assert.deepEqual(await openAndCount(target), atBackup);
    });
  }

  for (const strategy of ['backupCursor', 'fsyncLock'] as const) {
    it(`stops at a corrupted file of a ${strategy} backup, and leaves a target the dev server refuses`, async () => {
      const bad = path.join(scratch.dir, `corrupted-${strategy}`);
      fs.cpSync(backups[strategy], bad, { recursive: true });
      const collection = corruptCollection(bad);
      const target = path.join(scratch.dir, `stopped-${strategy}`);
      const run = await restore(bad, '--to', target);
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`^hotbackup restore: restore stopped: ${collection} is corrupted: its xxh3-64 checksum is [0-9a-f]{16}, the manifest says [0-9a-f]{16}\\. ${target} is incomplete and marked so: its WiredTiger.turtle is a placeholder that mongod will not open\\.`),
      );
      const marker = JSON.parse(fs.readFileSync(path.join(target, 'hotbackup-restore-incomplete.json'), 'utf8')) as { state: string; backup: string; error: string };
      assert.equal(marker.state, 'failed');
      assert.equal(marker.backup, bad);
      assert.match(marker.error, new RegExp(`^${collection} is corrupted`));
      assert.match(fs.readFileSync(path.join(target, 'WiredTiger.turtle'), 'utf8'), /^hotbackup restore: this is not a WiredTiger turtle file\./);
      assert.equal(fs.existsSync(path.join(target, 'WiredTiger.backup')), false, 'what would let WiredTiger open it is held back');
      await assert.rejects(startDevServer({ dbpath: target }), /exited \(\d+\) before listening/);
    });
  }

  it('refuses a non-empty target unless --force, which replaces what it holds', async () => {
    const target = path.join(scratch.dir, 'stopped-fsyncLock');
    const before = fs.readdirSync(target).sort();
    const refused = await restore(backups.fsyncLock, '--to', target);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, new RegExp(`^hotbackup restore: cannot restore into ${target}: it is not empty \\(.+\\)\\. Restore into an empty or new directory, or pass --force to DELETE everything in ${target} first\\.$`, 'm'));
    assert.deepEqual(fs.readdirSync(target).sort(), before, 'nothing was touched');

    const forced = await restore(backups.fsyncLock, '--to', target, '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`^--force: deleted ${before.length} entries that ${target} held\\.$`, 'm'));
    assert.deepEqual(await openAndCount(target), atBackup);
  });

  it("refuses a running mongod's dbpath even with --force, and a backup without a manifest with verify's words", async () => {
    const running = await restore(backups.backupCursor, '--to', server.dbpath, '--force');
    assert.equal(running.code, 3);
    assert.match(running.stderr, new RegExp(`cannot restore into ${server.dbpath}: a mongod \\(pid ${server.child.pid}\\) is running on it`));

    const empty = path.join(scratch.dir, 'empty');
    fs.mkdirSync(empty);
    const notABackup = await restore(empty, '--to', path.join(scratch.dir, 'never'));
    assert.equal(notABackup.code, 4);
    assert.equal(notABackup.stderr, `hotbackup restore: cannot restore: ${empty} is not a hotbackup backup: it is empty\n`);
    assert.equal(fs.existsSync(path.join(scratch.dir, 'never')), false);
  });
});
