/**
 * prepareDestination under a backup root, on real temp directories: the refusals, and a
 * symbolic link swapped in between the check of the path and the mkdir (injected
 * through DestinationFs, as a local attacker racing the proxy would do it), which must
 * create nothing outside the root.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { prepareDestination, nodeDestinationFs, type DestinationFs } from '../../src/backup/destination.js';
import { BackupRoot } from '../../src/backup/backup_root.js';
import { tempDir } from '../helpers/paths.js';

async function refusedWith(promise: Promise<unknown>, errmsg: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    const reply = (err as { toReply(): Record<string, unknown> }).toReply();
    assert.equal(reply['code'], 2);
    assert.equal(reply['codeName'], 'BadValue');
    assert.match(String(reply['errmsg']), errmsg);
    return true;
  });
}

describe('prepareDestination under a backup root', () => {
  let scratch: { dir: string; remove: () => void };
  let rootDir: string;
  let outside: string;
  let dbpath: string;
  let root: BackupRoot;

  beforeEach(async () => {
    scratch = tempDir('dest-root');
    rootDir = path.join(scratch.dir, 'b');
    outside = path.join(scratch.dir, 'outside');
    dbpath = path.join(scratch.dir, 'db');
    // 0755 whatever the umask: below the root, directories others may write in are refused.
    for (const dir of [rootDir, outside, dbpath, path.join(rootDir, 'sub')]) {
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o755);
    }
    root = await BackupRoot.open(rootDir);
  });
  afterEach(() => scratch.remove());

  /** The real operations, with `before` run just before the mkdir. */
  function racing(before: () => void): DestinationFs {
    return {
      async mkdir(dir) {
        before();
        await nodeDestinationFs.mkdir(dir);
      },
      fsyncDirectory: nodeDestinationFs.fsyncDirectory,
    };
  }

  it('creates one level inside the root, 0700, and returns its real path', async () => {
    const destination = await prepareDestination(path.join(rootDir, 'sub', 'x'), dbpath, nodeDestinationFs, { root });
    assert.equal(destination, path.join(fs.realpathSync(rootDir), 'sub', 'x'));
    assert.equal(fs.statSync(destination).mode & 0o777, 0o700);
  });

  it("refuses '..', a link below the root, a file, a non-empty directory and a missing parent, in Percona's words where it has them", async () => {
    fs.symlinkSync(outside, path.join(rootDir, 'link'));
    fs.writeFileSync(path.join(rootDir, 'file'), '');
    fs.mkdirSync(path.join(rootDir, 'full'));
    fs.writeFileSync(path.join(rootDir, 'full', 'f'), '');
    const policy = { root };
    await refusedWith(prepareDestination(`${rootDir}/sub/../x`, dbpath, nodeDestinationFs, policy), /must not contain '\.\.'/);
    await refusedWith(prepareDestination(path.join(rootDir, 'link', 'x'), dbpath, nodeDestinationFs, policy), /passes through the symbolic link/);
    await refusedWith(prepareDestination(path.join(rootDir, 'link'), dbpath, nodeDestinationFs, policy), /passes through the symbolic link/);
    await refusedWith(prepareDestination(path.join(rootDir, 'file'), dbpath, nodeDestinationFs, policy), /^Backup destination .*file is not a directory$/);
    await refusedWith(prepareDestination(path.join(rootDir, 'full'), dbpath, nodeDestinationFs, policy), /^Backup directory .*full is not empty$/);
    await refusedWith(prepareDestination(path.join(rootDir, 'nope', 'x'), dbpath, nodeDestinationFs, policy), /cannot be created: its parent directory .*nope does not exist$/);
    await refusedWith(prepareDestination(path.join(outside, 'x'), dbpath, nodeDestinationFs, policy), /is outside the backup root/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it('refuses the dbpath and a path inside it when the root holds the dbpath', async () => {
    const inner = path.join(rootDir, 'db');
    fs.mkdirSync(inner);
    for (const dest of [inner, path.join(inner, 'x')]) {
      await refusedWith(prepareDestination(dest, inner, nodeDestinationFs, { root }), /must be outside the dbpath/);
    }
    assert.deepEqual(fs.readdirSync(inner), []);
  });

  it('creates nothing outside the root when a parent is replaced by a link to outside just before the mkdir', async () => {
    const sub = path.join(rootDir, 'sub');
    const swap = racing(() => {
      fs.renameSync(sub, path.join(rootDir, 'sub-moved'));
      fs.symlinkSync(outside, sub);
    });
    await refusedWith(prepareDestination(path.join(sub, 'x'), dbpath, swap, { root }), /changed while it was checked/);
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing made through the link');
    assert.deepEqual(fs.readdirSync(path.join(rootDir, 'sub-moved')), [], 'the directory made in the old parent was removed again');
  });

  it('refuses a link put in place of the destination itself just before the mkdir', async () => {
    const dest = path.join(rootDir, 'sub', 'x');
    const swap = racing(() => fs.symlinkSync(outside, dest));
    await refusedWith(prepareDestination(dest, dbpath, swap, { root }), /passes through the symbolic link/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it("takes an empty directory of the proxy's user that exists, and makes it 0700; one not empty keeps its mode", async () => {
    const dest = path.join(rootDir, 'sub', 'ready');
    await fsp.mkdir(dest);
    await fsp.chmod(dest, 0o777);
    await prepareDestination(dest, dbpath, nodeDestinationFs, { root });
    assert.equal(fs.statSync(dest).mode & 0o7777, 0o700);
    const full = path.join(rootDir, 'sub', 'full');
    await fsp.mkdir(full);
    await fsp.chmod(full, 0o750);
    fs.writeFileSync(path.join(full, 'f'), '');
    await refusedWith(prepareDestination(full, dbpath, nodeDestinationFs, { root }), /is not empty$/);
    assert.equal(fs.statSync(full).mode & 0o7777, 0o750);
  });

  it("takes a name that merely starts with '..' as the name inside the root it is", async () => {
    const dotted = path.join(rootDir, '..snap');
    fs.mkdirSync(dotted);
    fs.chmodSync(dotted, 0o755);
    const destination = await prepareDestination(path.join(dotted, 'x'), dbpath, nodeDestinationFs, { root });
    assert.equal(destination, path.join(fs.realpathSync(rootDir), '..snap', 'x'));
    assert.ok(fs.statSync(destination).isDirectory());
    assert.equal(await root.existingDirectory(dotted, 'backupVerify path'), path.join(fs.realpathSync(rootDir), '..snap'));
  });

  it("refuses the dbpath's, the state dir's and staging's insides under a root too, whatever the root allows", async () => {
    // The start refuses a root that overlaps these; the destination check must hold on its own all the same.
    const inner = path.join(rootDir, 'db');
    const state = path.join(rootDir, 'state');
    const staging = path.join(rootDir, 'staging');
    for (const dir of [inner, state, staging]) {
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o755);
    }
    const policy = { root, protectedDirs: [{ name: "the proxy's state dir", dir: state }, { name: 'the staging dir', dir: staging }] };
    await refusedWith(prepareDestination(path.join(inner, '..x'), inner, nodeDestinationFs, policy), /must be outside the dbpath/);
    await refusedWith(prepareDestination(path.join(state, 'x'), inner, nodeDestinationFs, policy), /must be outside the proxy's state dir/);
    await refusedWith(prepareDestination(path.join(staging, '..x'), inner, nodeDestinationFs, policy), /must be outside the staging dir/);
    await refusedWith(prepareDestination(rootDir + '/state', inner, nodeDestinationFs, policy), /must be outside the proxy's state dir/);
    for (const dir of [inner, state, staging]) assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('refuses to walk through a directory others may write in, unless it is sticky', async () => {
    const open = path.join(rootDir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    await refusedWith(
      prepareDestination(path.join(open, 'x'), dbpath, nodeDestinationFs, { root }),
      /open is not safe to write through: group or others may write to it \(mode 0777\) and it has no sticky bit/,
    );
    await refusedWith(root.existingDirectory(open, 'backupVerify path'), /not safe to write through/);
    fs.chmodSync(open, 0o1777);
    await prepareDestination(path.join(open, 'x'), dbpath, nodeDestinationFs, { root });
    assert.deepEqual(fs.readdirSync(open), ['x']);
    fs.chmodSync(path.join(rootDir, 'sub'), 0o775);
    await refusedWith(prepareDestination(path.join(rootDir, 'sub', 'y'), dbpath, nodeDestinationFs, { root }), /group or others may write to it \(mode 0775\)/);
    assert.deepEqual(fs.readdirSync(path.join(rootDir, 'sub')), []);
  });

  it("refuses another user's directory on the way, and another user's existing destination, changing neither", { skip: process.geteuid?.() !== 0 && 'needs root to chown' }, async () => {
    const theirs = path.join(rootDir, 'theirs');
    fs.mkdirSync(theirs);
    fs.chmodSync(theirs, 0o755);
    fs.chownSync(theirs, 65534, 65534);
    await refusedWith(prepareDestination(path.join(theirs, 'x'), dbpath, nodeDestinationFs, { root }), /theirs is not safe to write through: it is owned by uid 65534, neither the proxy's user \(uid 0\) nor root/);
    await refusedWith(prepareDestination(theirs, dbpath, nodeDestinationFs, { root }), /theirs is not safe to write through: it is owned by uid 65534, not by the proxy's user/);
    assert.deepEqual(fs.readdirSync(theirs), []);
    assert.equal(fs.statSync(theirs).mode & 0o7777, 0o755);
  });
});
