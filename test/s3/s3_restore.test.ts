/**
 * `hotbackup restore s3://bucket/prefix --to <dbpath>` as an operator runs it, against a
 * real radosgw, on a real backup (taken through the proxy in front of the dev server, then
 * put object by object: test/helpers/s3_backup_fixture.ts): the dev server opens the
 * restored dbpath with every document (counts and a checksum of each collection's
 * documents), its files 0600 and directories 0700 whatever the umask; a corrupted object
 * stops the restore naming it, and leaves a target marked incomplete that the dev server
 * refuses; a missing object, or --force onto a non-empty target with a corrupted backup,
 * is refused before anything is written or deleted; --rate holds; SIGINT stops it with the
 * target fenced; wrong credentials are one line naming S3's code, with no secret in it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli, startCli } from '../helpers/cli_run.js';
import { until } from '../helpers/poll.js';
import { tempDir } from '../helpers/paths.js';
import { assertRefusedEvenWithSalvage } from '../helpers/restore_fixture.js';
import { corruptObject, deleteObject, modesUnder, openAndDigest, takeBackup, putBackup, type Digest } from '../helpers/s3_backup_fixture.js';
import { readManifest, type Manifest } from '../../src/backup/manifest.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

describe('hotbackup restore s3://', { skip }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  let proxy: RunningProxy;
  const scratch = tempDir('s3-restore');
  const backupDir = path.join(scratch.dir, 'backup');
  let manifest: Manifest;
  let atBackup: Digest;
  const uploaded = async (): Promise<{ bucket: string; url: string }> => {
    const bucket = await rgw.createBucket();
    await putBackup(rgw.client(), bucket, 'nightly/backup', backupDir);
    return { bucket, url: `s3://${bucket}/nightly/backup` };
  };
  const restore = (...args: string[]) => runCli(['restore', ...args], rgw.env());
  /** The collection file with the most bytes: downloaded first, so the others are in when it fails. */
  const largestCollection = () => [...manifest.files].filter((f) => f.path.startsWith('collection-')).sort((a, b) => b.size - a.size)[0]!.path;

  before(async () => {
    rgw = await startRadosgw();
    // Journal files of 2 MB, not mongod's 100 MB: the backup is then ~10 MB, not ~104 MB,
    // and every download, verify and restore of it takes a tenth of the time.
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
    proxy = await startProxy(server);
    atBackup = await takeBackup(proxy.uri, backupDir, 4);
    manifest = await readManifest(backupDir);
    // The proxy and its server are not needed past the backup: each restore is opened by a dev server of its own.
    await proxy.stop();
    await server.stop();
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    await rgw?.stop();
    scratch.remove();
  });

  it('restores a dbpath the dev server opens with every document, its files 0600 and directories 0700 under umask 000', async () => {
    const { url } = await uploaded();
    const target = path.join(scratch.dir, 'restored');
    const run = await runCli(['restore', url, '--to', target], rgw.env(), ['sh', '-c', 'umask 000; exec "$@"', 'sh']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^Restored ${manifest.files.length} files, [\\d.]+ MiB, from backup ${manifest.backupId} \\(backup, taken [^)]+\\) into ${target}; every checksum matched \\([\\d.]+ s\\)\\. Start mongod with --dbpath ${target}\\.\\n$`));
    const { files, dirs } = modesUnder(target);
    assert.deepEqual([...files.keys()].sort(), manifest.files.map((f) => f.path).sort(), 'every file of the backup, and nothing else: no marker, no manifest');
    for (const [file, mode] of files) assert.equal(mode.toString(8), '600', file);
    for (const [dir, mode] of dirs) assert.equal(mode.toString(8), '700', dir);
    assert.ok(dirs.size > 1, 'the backup has a subdirectory (journal/) whose mode is checked');
    assert.deepEqual(await openAndDigest(target), atBackup);
  });

  it('stops at a corrupted object naming it, and leaves the target marked incomplete, which the dev server refuses', async () => {
    const { bucket, url } = await uploaded();
    const collection = largestCollection();
    await corruptObject(rgw.client(), bucket, `nightly/backup/${collection}`);
    const target = path.join(scratch.dir, 'stopped');
    const run = await restore(url, '--to', target);
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
    assert.deepEqual([marker.state, marker.backup], ['failed', url]);
    assert.match(marker.error, new RegExp(`^${collection} is corrupted`));
    assert.match(fs.readFileSync(path.join(target, 'WiredTiger.turtle'), 'utf8'), /^hotbackup restore: this is not a WiredTiger turtle file\./);
    assert.equal(fs.existsSync(path.join(target, 'WiredTiger.backup')), false, 'what would let WiredTiger open it is held back');
    await assertRefusedEvenWithSalvage(target);
  });

  it('refuses a backup with a missing object, and --force with a corrupted one, before anything is written or deleted', async () => {
    const { bucket, url } = await uploaded();
    await deleteObject(rgw.client(), bucket, 'nightly/backup/WiredTiger.backup');
    const never = path.join(scratch.dir, 'never');
    const missing = await restore(url, '--to', never);
    assert.equal(missing.code, 4, missing.stderr);
    assert.equal(missing.stderr, `hotbackup restore: cannot restore: ${url} is damaged: 1 missing (WiredTiger.backup). Nothing was written to ${never}; restore another backup.\n`);
    assert.equal(fs.existsSync(never), false);

    const corrupted = await uploaded();
    const collection = largestCollection();
    await corruptObject(rgw.client(), corrupted.bucket, `nightly/backup/${collection}`);
    const held = path.join(scratch.dir, 'held');
    fs.mkdirSync(held);
    fs.writeFileSync(path.join(held, 'keep.txt'), 'what the target held');
    const forced = await restore(corrupted.url, '--to', held, '--force');
    assert.equal(forced.code, 4, forced.stderr);
    assert.match(forced.stderr, new RegExp(`^hotbackup restore: cannot restore: ${corrupted.url} is damaged: 1 corrupted \\(${collection}\\)\\. Nothing was deleted from ${held}; restore another backup\\.\\n$`));
    assert.deepEqual(fs.readdirSync(held), ['keep.txt']);

    const good = await uploaded();
    const replaced = await restore(good.url, '--to', held, '--force');
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.match(replaced.stdout, new RegExp(`^--force: deleted 1 entries that ${held} held\\.$`, 'm'));
    assert.equal(fs.existsSync(path.join(held, 'keep.txt')), false);
  });

  it('holds --rate (on a wide margin)', async () => {
    const { url } = await uploaded();
    // About 5 s whatever the backup's size (its journal files are preallocated: ~100 MB).
    const rate = Math.ceil(manifest.totals.bytes / 5);
    const started = performance.now();
    const run = await restore(url, '--to', path.join(scratch.dir, 'throttled'), '--rate', String(rate));
    const seconds = (performance.now() - started) / 1000;
    assert.equal(run.code, 0, run.stderr);
    // The bucket starts empty and holds 0.1 s of tokens: no faster than (bytes - 0.1 s) / rate.
    const floor = (manifest.totals.bytes - rate * 0.1) / rate;
    assert.ok(seconds >= floor * 0.9, `${manifest.totals.bytes} bytes at ${rate} bytes/s took ${seconds.toFixed(1)} s, under ${floor.toFixed(1)} s`);
  });

  it('stops on SIGINT mid-download (exit 130), the target marked incomplete and fenced', async () => {
    const { url } = await uploaded();
    const target = path.join(scratch.dir, 'interrupted');
    // Slow enough to be caught mid-download on any machine: about 60 s for the whole backup.
    const running = startCli(['restore', url, '--to', target, '--rate', String(Math.ceil(manifest.totals.bytes / 60))], rgw.env());
    const collection = largestCollection();
    await until(() => {
      const file = path.join(target, collection);
      return fs.existsSync(file) && fs.statSync(file).size > 0;
    });
    running.child.kill('SIGINT');
    const done = await running.done;
    assert.equal(done.code, 130, done.stderr);
    assert.match(done.stderr, new RegExp(`^hotbackup restore: restore stopped: interrupted by SIGINT\. ${target} is incomplete and marked so: its WiredTiger\.turtle, WiredTiger\.wt and storage\.bson are placeholders`));
    const marker = JSON.parse(fs.readFileSync(path.join(target, 'hotbackup-restore-incomplete.json'), 'utf8')) as { state: string; error: string };
    assert.deepEqual([marker.state, marker.error], ['failed', 'interrupted by SIGINT']);
  });

  it("says wrong credentials in one line naming S3's code, with no secret, and refuses what it cannot do from S3", async () => {
    const { url } = await uploaded();
    const secret = 'wrong-secret-that-must-not-be-printed';
    const never = path.join(scratch.dir, 'never-written');
    const run = await runCli(['restore', url, '--to', never], { ...rgw.env(), AWS_SECRET_ACCESS_KEY: secret });
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /^hotbackup restore: cannot restore: S3 read of s3:\/\/\S+ failed: SignatureDoesNotMatch \(HTTP 403\): the credentials were refused[^\n]*\n$/);
    assert.equal(`${run.stdout}${run.stderr}`.includes(secret), false);
    assert.equal(fs.existsSync(never), false);

    const root = await restore('--root', 's3://bucket/root', '--to-time', '2026-11-30T00:00:00Z', '--to', never);
    assert.equal(root.code, 2);
    assert.match(root.stderr, /^hotbackup restore: --root takes a local backup root/);
    const oplog = await restore(url, '--to', never, '--oplog', 's3://bucket/oplog', '--until', '1,1');
    assert.equal(oplog.code, 2);
    assert.match(oplog.stderr, /^hotbackup restore: --oplog takes a local directory/);
  });
});
