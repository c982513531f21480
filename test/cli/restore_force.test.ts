/**
 * `hotbackup restore` where an operator stands to lose most: --force over a dbpath that
 * holds a database (a damaged backup is found before anything is deleted; a restore
 * killed while it deletes leaves a target mongod and WiredTiger refuse), a restore whose
 * last step fails (its message says how far it got), and a umask that takes the owner's
 * bits. Backups of both kinds, taken through the proxy in front of the dev server; the
 * CLI as a child process; the dev server to see what opens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { deserialize } from 'bson';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { runCli, startCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { assertRefusedEvenWithSalvage, corruptCollection, openAndCount, takeBackups, type Counts } from '../helpers/restore_fixture.js';

const MARKER = 'hotbackup-restore-incomplete.json';

/** Every entry under `dir`, relative, with its size (0 for a directory). */
function listing(dir: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    found[path.relative(dir, full)] = entry.isDirectory() ? 0 : fs.statSync(full).size;
  }
  return found;
}

describe('hotbackup restore --force, and restores stopped late', () => {
  const scratch = tempDir('restore-force');
  const backups = { backupCursor: path.join(scratch.dir, 'cursor-backup'), fsyncLock: path.join(scratch.dir, 'lock-backup') };
  let atBackup: Counts;
  const restore = (...args: string[]) => runCli(['restore', ...args]);
  /** A dbpath holding a database, as the one --force replaces would: a restore of the fsyncLock backup. */
  const dbpathWithData = async (name: string): Promise<string> => {
    const target = path.join(scratch.dir, name);
    const run = await restore(backups.fsyncLock, '--to', target);
    assert.equal(run.code, 0, run.stderr);
    return target;
  };

  before(async () => {
    const server = await startDevServer();
    try {
      const proxy = await startProxy(server);
      try {
        atBackup = await takeBackups(proxy.uri, backups);
      } finally {
        await proxy.stop();
      }
    } finally {
      await server.stop();
      server.cleanup();
    }
  });

  after(() => scratch.remove());

  it('checks every checksum before --force deletes anything: a damaged backup leaves the target as it was', async () => {
    const target = await dbpathWithData('kept');
    const held = listing(target);
    const bad = path.join(scratch.dir, 'damaged');
    fs.cpSync(backups.backupCursor, bad, { recursive: true });
    const collection = corruptCollection(bad, 'largest');

    const refused = await restore(bad, '--to', target, '--force');
    assert.equal(refused.code, 4, refused.stderr);
    assert.equal(refused.stderr, `hotbackup restore: cannot restore: ${bad} is damaged: 1 corrupted (${collection}). Nothing was deleted from ${target}; restore another backup.\n`);
    assert.deepEqual(listing(target), held, 'not a file of the target touched');
    assert.deepEqual(await openAndCount(target), atBackup);

    // Without the check, what the target held goes first, and the copy stops at the bad file.
    const unchecked = await restore(bad, '--to', target, '--force', '--no-precheck');
    assert.equal(unchecked.code, 1, unchecked.stderr);
    assert.match(unchecked.stderr, new RegExp(`^hotbackup restore: restore stopped: ${collection} is corrupted: `));
    await assertRefusedEvenWithSalvage(target);
  });

  it('fences the target before --force deletes what it held: killed half-way through, it opens neither as it was nor empty', async () => {
    const target = await dbpathWithData('killed');
    const running = startCli(['restore', backups.backupCursor, '--to', target, '--force'], { HOTBACKUP_TEST_FAILPOINTS: 'hangDuringForceDelete' });
    let exited = false;
    void running.done.then(() => (exited = true));
    let last: string;
    try {
      const hanging = await until(() => exited || (/failpoint hangDuringForceDelete: hanging before deleting (\S+)\n/.exec(running.stderr()) ?? undefined));
      assert.ok(hanging !== true, running.stderr());
      last = hanging[1] as string;
    } finally {
      running.child.kill('SIGKILL');
    }
    await running.done;
    assert.equal(JSON.parse(fs.readFileSync(path.join(target, MARKER), 'utf8')).state, 'running');
    assert.ok(fs.existsSync(path.join(target, last)), `${last}, the last of what it held, is still there`);
    await assertRefusedEvenWithSalvage(target);

    const again = await restore(backups.backupCursor, '--to', target, '--force');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await openAndCount(target), atBackup);
  });

  for (const strategy of ['fsyncLock', 'backupCursor'] as const) {
    it(`says how far the last step got when it fails (${strategy}), and mongod's placeholder stays until a restore finishes`, async () => {
      const target = path.join(scratch.dir, `late-${strategy}`);
      const run = await runCli(['restore', backups[strategy], '--to', target], { HOTBACKUP_TEST_FAILPOINTS: 'failDuringRestoreCompletion' });
      assert.equal(run.code, 1, run.stderr);
      const first = strategy === 'fsyncLock' ? 'WiredTiger.turtle' : 'WiredTiger.backup';
      assert.equal(
        run.stderr,
        `hotbackup restore: restore stopped: failpoint failDuringRestoreCompletion: stopped after the first step. Every file of ${target} was copied and matched its checksum, ` +
          `but the restore stopped in its last step, after: ${first} put in place. It is marked incomplete, and its storage.bson is still a placeholder, on which mongod does not start. ` +
          `Restore the backup into it again with --force.\n`,
      );
      assert.equal(JSON.parse(fs.readFileSync(path.join(target, MARKER), 'utf8')).state, 'failed');
      assert.equal((deserialize(fs.readFileSync(path.join(target, 'storage.bson'))) as { storage: { engine: string } }).storage.engine, 'hotbackup-restore-incomplete');
      if (strategy === 'fsyncLock') {
        // The turtle file is in, but WiredTiger.wt is still the placeholder.
        await assertRefusedEvenWithSalvage(target);
      } else {
        // WiredTiger.backup is in, after every other file: WiredTiger (the dev server
        // reads no storage.bson) rebuilds its metadata from it and opens the whole backup.
        assert.deepEqual(await openAndCount(target), atBackup);
      }

      const again = await restore(backups[strategy], '--to', target, '--force');
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await openAndCount(target), atBackup);
    });
  }

  it("gives files 0600 and directories 0700 under a umask that takes the owner's bits", async () => {
    const target = path.join(scratch.dir, 'umask-0277');
    const run = await runCli(['restore', backups.backupCursor, '--to', target], {}, ['sh', '-c', 'umask 0277; exec "$@"', 'sh']);
    assert.equal(run.code, 0, run.stderr);
    const modes = Object.keys(listing(target)).map((name) => {
      const stat = fs.statSync(path.join(target, name));
      return { name, directory: stat.isDirectory(), mode: stat.mode & 0o777 };
    });
    assert.ok(modes.some((entry) => entry.directory), 'journal/ at least');
    for (const entry of modes) assert.equal(entry.mode, entry.directory ? 0o700 : 0o600, `${entry.name}: ${entry.mode.toString(8)}`);
    assert.equal(fs.statSync(target).mode & 0o777, 0o700);
    assert.deepEqual(await openAndCount(target), atBackup);
  });
});
