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
    for (const dir of [rootDir, outside, dbpath, path.join(rootDir, 'sub')]) fs.mkdirSync(dir);
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

  it('takes an empty directory that exists, and leaves its mode as its owner set it', async () => {
    const dest = path.join(rootDir, 'sub', 'ready');
    await fsp.mkdir(dest);
    await fsp.chmod(dest, 0o750);
    await prepareDestination(dest, dbpath, nodeDestinationFs, { root });
    assert.equal(fs.statSync(dest).mode & 0o777, 0o750);
  });
});
