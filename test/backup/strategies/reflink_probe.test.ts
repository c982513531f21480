/**
 * The reflink probe and the clones, on real loop-mounted XFS and ext4: the probe says
 * whether a clone works (and which filesystem, and what to do when it does not); a
 * clone is the source's bytes; a file that cannot be cloned fails by name and why.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../../helpers/loop_fs.js';
import { tempDir } from '../../helpers/paths.js';
import { filesystemType, probeReflink } from '../../../src/backup/strategies/reflink_probe.js';
import { cloneFiles } from '../../../src/backup/strategies/clone_files.js';
import { listDbpath } from '../../../src/backup/strategies/files.js';
import { CommandError, ErrorCodes } from '../../../src/errors.js';

const xfsUnavailable = loopFsUnavailable('xfs');
const ext4Unavailable = loopFsUnavailable('ext4');

/** A dbpath-like directory: the probe's file and a few tables. */
function makeDbpath(dir: string): void {
  fs.mkdirSync(path.join(dir, 'journal'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'WiredTiger'), 'WiredTiger\nWiredTiger 11.3.0\n');
  fs.writeFileSync(path.join(dir, 'collection-1.wt'), randomBytes(3 * 1024 * 1024));
  fs.writeFileSync(path.join(dir, 'journal', 'WiredTigerLog.0000000001'), randomBytes(256 * 1024));
}

describe('reflink probe and clones on XFS', () => {
  let xfs: LoopFs | undefined;
  let other: { dir: string; remove: () => void } | undefined;

  before(async () => {
    if (xfsUnavailable !== undefined) return;
    xfs = await mountLoopFs('xfs', 300);
    other = tempDir('reflink-other-fs');
  });

  after(async () => {
    other?.remove();
    await xfs?.remove();
  });

  it('the probe clones a dbpath file, names the filesystem, and leaves nothing behind', { skip: xfsUnavailable }, async () => {
    const dbpath = path.join((xfs as LoopFs).dir, 'probe-ok', 'db');
    makeDbpath(dbpath);
    const stagingRoot = path.join((xfs as LoopFs).dir, 'probe-ok', '.db.hotbackup', 'staging');
    const support = await probeReflink(dbpath, stagingRoot);
    assert.deepEqual(support, { ok: true, fsType: 'xfs', reason: 'dbpath on xfs supports reflink' });
    assert.deepEqual(fs.readdirSync(stagingRoot), [], 'the probe clone is removed');
    assert.equal(await probeReflink(dbpath, stagingRoot), await probeReflink(dbpath, stagingRoot), 'the answer is cached');
    assert.equal(await filesystemType(dbpath), 'xfs');
  });

  it('the probe says when the staging directory is on another filesystem, and what to set', { skip: xfsUnavailable }, async () => {
    const dbpath = path.join((xfs as LoopFs).dir, 'probe-exdev');
    makeDbpath(dbpath);
    const stagingRoot = path.join((other as { dir: string }).dir, 'staging');
    const support = await probeReflink(dbpath, stagingRoot);
    assert.equal(support.ok, false);
    assert.match(
      support.reason,
      /^the staging directory .*staging \(\w+\) is not on the dbpath's filesystem \(xfs\), and a clone cannot cross filesystems \(FICLONE: Invalid cross-device link \(EXDEV\)\): set --staging-dir to a directory on the dbpath's filesystem$/,
    );
    assert.equal(fs.existsSync(stagingRoot), false, 'what the probe created is removed again');
  });

  it('the probe does not cache a dbpath that has nothing to clone yet', { skip: xfsUnavailable }, async () => {
    const dbpath = path.join((xfs as LoopFs).dir, 'probe-empty');
    fs.mkdirSync(dbpath);
    const stagingRoot = path.join((xfs as LoopFs).dir, 'probe-empty-staging');
    const first = await probeReflink(dbpath, stagingRoot);
    assert.equal(first.ok, false);
    assert.match(first.reason, /has none of WiredTiger, storage\.bson, WiredTiger\.turtle/);
    makeDbpath(dbpath);
    assert.equal((await probeReflink(dbpath, stagingRoot)).ok, true);
  });

  it('clones every file with its bytes, keeps relative paths and listed sizes, and drops a vanished optional file', { skip: xfsUnavailable }, async () => {
    const dbpath = path.join((xfs as LoopFs).dir, 'clone-ok');
    makeDbpath(dbpath);
    fs.writeFileSync(path.join(dbpath, 'mongod.log'), 'a log line\n');
    const listed = await listDbpath(dbpath);
    fs.rmSync(path.join(dbpath, 'mongod.log'));
    const into = path.join((xfs as LoopFs).dir, 'clone-ok-staging');
    fs.mkdirSync(into);
    const result = await cloneFiles(listed, into);
    assert.deepEqual(
      result.files.map((f) => [f.relativePath, f.path, f.size]),
      listed.filter((f) => f.relativePath !== 'mongod.log').map((f) => [f.relativePath, path.join(into, f.relativePath), f.size]),
    );
    for (const file of result.files) assert.ok(fs.readFileSync(file.path).equals(fs.readFileSync(path.join(dbpath, file.relativePath))), file.relativePath);
    assert.deepEqual(result.dropped.map((d) => d.relativePath), ['mongod.log']);
    assert.match(result.dropped[0]?.detail ?? '', /ENOENT/);
    assert.deepEqual(result.directories, [path.join(into, 'journal')]);
    // Copy on write: a later write to the source leaves the clone as it was.
    const table = path.join(dbpath, 'collection-1.wt');
    const before = fs.readFileSync(path.join(into, 'collection-1.wt'));
    fs.writeFileSync(table, randomBytes(1024), { flag: 'r+' });
    assert.ok(fs.readFileSync(path.join(into, 'collection-1.wt')).equals(before));
  });

  it('fails naming the file and EXDEV when a file is on another filesystem, as through a symbolic link', { skip: xfsUnavailable }, async () => {
    const dbpath = path.join((xfs as LoopFs).dir, 'clone-exdev');
    makeDbpath(dbpath);
    const elsewhere = path.join((other as { dir: string }).dir, 'journal');
    fs.mkdirSync(elsewhere);
    fs.renameSync(path.join(dbpath, 'journal'), path.join(dbpath, 'journal.moved'));
    fs.cpSync(path.join(dbpath, 'journal.moved'), elsewhere, { recursive: true });
    fs.rmSync(path.join(dbpath, 'journal.moved'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(dbpath, 'journal'));
    const into = path.join((xfs as LoopFs).dir, 'clone-exdev-staging');
    fs.mkdirSync(into);
    const err = await cloneFiles(await listDbpath(dbpath), into).then(
      () => assert.fail('a clone crossed filesystems'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, ErrorCodes.CannotBackup);
    assert.match(
      err.message,
      /^reflink: cannot clone journal\/WiredTigerLog\.0000000001 \(.*\) into .*: it is on another filesystem than .*, and a clone cannot cross filesystems \(Invalid cross-device link \(EXDEV\)\); a symbolic link in the dbpath to another disk does this\. Back up with strategy fsyncLock or backupCursor/,
    );
    assert.equal(err.extra['errno'], 18);
  });
});

describe('reflink probe on ext4', () => {
  let ext4: LoopFs | undefined;

  before(async () => {
    if (ext4Unavailable === undefined) ext4 = await mountLoopFs('ext4', 64);
  });

  after(async () => {
    await ext4?.remove();
  });

  it('says ext4 cannot clone, and removes the staging directory it created to find out', { skip: ext4Unavailable }, async () => {
    const dbpath = path.join((ext4 as LoopFs).dir, 'db');
    makeDbpath(dbpath);
    const stateDir = path.join((ext4 as LoopFs).dir, '.db.hotbackup');
    const support = await probeReflink(dbpath, path.join(stateDir, 'staging'));
    assert.deepEqual(support, { ok: false, fsType: 'ext4', reason: 'dbpath on ext4 cannot clone files (FICLONE: Operation not supported (EOPNOTSUPP))' });
    assert.equal(fs.existsSync(stateDir), false);
  });
});
