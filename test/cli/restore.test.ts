/**
 * `hotbackup restore` as an operator runs it, on backups taken through the proxy in front
 * of the dev server with both kinds of WiredTiger backup ($backupCursor's, with
 * WiredTiger.backup; fsyncLock's, with WiredTiger.turtle and WiredTiger.wt): the dev
 * server opens the restored dbpath with the document counts of backup time; a corrupted
 * backup stops the restore, and the dev server then refuses the target, with WiredTiger's
 * salvage too; a non-empty target, or one a mongod runs on, is refused.
 * (restore_force.test.ts has --force, and restores stopped late or under a hostile umask.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { deserialize } from 'bson';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { assertRefusedEvenWithSalvage, corruptCollection, openAndCount, takeBackups, type Counts } from '../helpers/restore_fixture.js';

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
    atBackup = await takeBackups(proxy.uri, backups);
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
    it(`stops at a corrupted file of a ${strategy} backup, and leaves a target the dev server refuses, salvage or not`, async () => {
      const bad = path.join(scratch.dir, `corrupted-${strategy}`);
      fs.cpSync(backups[strategy], bad, { recursive: true });
      // The smallest: the other files, WiredTiger's metadata among them, are copied before it fails.
      const collection = corruptCollection(bad, 'smallest');
      const target = path.join(scratch.dir, `stopped-${strategy}`);
      const run = await restore(bad, '--to', target);
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(
          `^hotbackup restore: restore stopped: ${collection} is corrupted: its xxh3-64 checksum is [0-9a-f]{16}, the manifest says [0-9a-f]{16}\\. ` +
            `${target} is incomplete and marked so: its WiredTiger\\.turtle, WiredTiger\\.wt and storage\\.bson are placeholders, on which mongod does not start, --repair included\\. ` +
            `Do not use it; restore a good backup into it with --force\\.\\n$`,
        ),
      );
      const marker = JSON.parse(fs.readFileSync(path.join(target, 'hotbackup-restore-incomplete.json'), 'utf8')) as { state: string; backup: string; error: string };
      assert.equal(marker.state, 'failed');
      assert.equal(marker.backup, bad);
      assert.match(marker.error, new RegExp(`^${collection} is corrupted`));
      assert.match(fs.readFileSync(path.join(target, 'WiredTiger.turtle'), 'utf8'), /^hotbackup restore: this is not a WiredTiger turtle file\./);
      assert.match(fs.readFileSync(path.join(target, 'WiredTiger.wt'), 'utf8'), /^hotbackup restore: this is not WiredTiger's metadata file\./);
      // mongod reads storage.bson before it opens WiredTiger, and knows no such engine.
      assert.equal((deserialize(fs.readFileSync(path.join(target, 'storage.bson'))) as { storage: { engine: string } }).storage.engine, 'hotbackup-restore-incomplete');
      assert.equal(fs.existsSync(path.join(target, 'WiredTiger.backup')), false, 'what would let WiredTiger open it is held back');
      await assertRefusedEvenWithSalvage(target);
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

    const usage = await restore(backups.backupCursor, '--to', path.join(scratch.dir, 'never'), '--no-precheck');
    assert.equal(usage.code, 2);
    assert.equal(usage.stderr, 'hotbackup restore: --no-precheck goes with --force: only a restore into a non-empty target checks the backup first\n');
  });
});
