/**
 * Incremental backups through the proxy, with the real driver, against the dev server:
 * - a second backup of an unchanged database copies under 20% of the bytes of the first
 *   (the journal is always copied), takes the rest from the base by hard link where the
 *   filesystem cannot clone (the temp dir here: ext4) and by clone on XFS, leaves both
 *   copies read-only, and opens with the same counts;
 * - verify accepts it, and a restore of it copies every file (0600, an inode of its own,
 *   never a link to the backup) into a dbpath that opens with the same counts;
 * - a changed collection's file is copied, an unchanged one's taken from the base;
 * - `checksum: true` catches a change the quick check cannot see (same size, mtime set
 *   back with touch -d);
 * - a base's copy changed after that backup was written (an edit in place, bit rot with
 *   its mtime kept) is not taken: the file is copied from mongod, a warning names it, and
 *   the new manifest's checksums are those of its bytes;
 * - an incomplete base, a base of another dbpath, and the dbpath itself (holding a valid
 *   manifest of itself, or reached through a symbolic link) are refused before anything
 *   is written.
 *
 * The journal files are 1 MB here (WiredTiger's file_max, through the dev server's
 * --wiredTigerEngineConfigString), not mongod's 100 MB: every backup copies them, and
 * with 100 MB files the database would need half a gigabyte to show the ratio.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';
import { assertMatchesManifest, collectionFiles, countsOfCopy } from '../helpers/backups.js';
import { MANIFEST_FILENAME, readManifest, type Manifest } from '../../src/backup/manifest.js';
import { mtimeNs } from '../../src/backup/source_stamp.js';
import { runCli } from '../helpers/cli_run.js';

const SMALL_JOURNAL = ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)', '--checkpoint-interval', '0'];
const DOCS = 8000;

interface Stack {
  server: RunningDevServer;
  proxy: RunningProxy;
  client: MongoClient;
  admin: Db;
  /** The collection file of app.a and of app.b, found as each collection was created. */
  aFile: string;
  bFile: string;
}

async function fill(client: MongoClient, name: string, count: number, from = 0): Promise<void> {
  const coll = client.db('app').collection<{ _id: number; pad: string }>(name);
  for (let i = from; i < from + count; i += 1000) {
    await coll.insertMany(Array.from({ length: Math.min(1000, from + count - i) }, (_, k) => ({ _id: i + k, pad: name.repeat(1000) })));
  }
}

/** A dev server with two collections of DOCS 1 KB documents, checkpointed, and a proxy in front. */
async function startStack(): Promise<Stack> {
  const server = await startDevServer({ args: SMALL_JOURNAL });
  const proxy = await startProxy(server);
  const client = new MongoClient(proxy.uri);
  const admin = client.db('admin');
  await fill(client, 'a', DOCS);
  const [aFile] = collectionFiles(server.dbpath);
  await fill(client, 'b', DOCS);
  const [bFile] = collectionFiles(server.dbpath).filter((name) => name !== aFile);
  assert.ok(aFile !== undefined && bFile !== undefined);
  // A checkpoint: the documents are in the collection files, not only in the journal.
  await admin.command({ fsync: 1 });
  return { server, proxy, client, admin, aFile, bFile };
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  if (stack === undefined) return;
  await stack.client.close();
  await stack.proxy.stop();
  await stack.server.stop();
  stack.server.cleanup();
}

type Status = Record<string, unknown> & { last: Record<string, unknown> };

async function backup(admin: Db, command: Record<string, unknown>): Promise<Status> {
  assert.equal((await admin.command(command))['ok'], 1);
  const status = (await admin.command({ backupStatus: 1 })) as Status;
  assert.equal(status.last['ok'], true, JSON.stringify(status.last));
  return status;
}

function bytesOf(files: Manifest['files']): number {
  return files.reduce((sum, f) => sum + f.size, 0);
}

function entry(manifest: Manifest, file: string): Manifest['files'][number] {
  const found = manifest.files.find((f) => f.path === file);
  assert.ok(found !== undefined, `${file} is in the manifest`);
  return found;
}

/** Overwrites a few bytes in the middle of `file` in place: same size, other bytes, a new mtime. */
function overwriteMiddle(file: string): void {
  fs.chmodSync(file, 0o600);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from('not what the manifest says'), 0, 26, Math.floor(fs.fstatSync(fd).size / 2));
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `dir`'s filesystem clones files (FICLONE), as the reuse would find out. */
function clonesIn(dir: string): boolean {
  const probe = path.join(dir, '.clone-probe');
  fs.writeFileSync(probe, 'x');
  try {
    fs.copyFileSync(probe, `${probe}.clone`, fs.constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
    fs.rmSync(`${probe}.clone`, { force: true });
  }
}

/**
 * The shared assertions of "unchanged database": the ratio, the counters against the
 * manifest, the journal copied, both collection files taken by `method`, read-only.
 */
async function assertUnchangedIncremental(s: Stack, full: string, incremental: string, first: Status, second: Status, method: 'hardlink' | 'reflink'): Promise<Manifest> {
  const copiedFirst = Number(first['bytesCopied']);
  assert.equal(Number(first['bytesReused']), 0);
  assert.ok(Number(second['bytesCopied']) < 0.2 * copiedFirst, `the incremental copied ${String(second['bytesCopied'])} bytes, the full one ${copiedFirst}`);
  assert.equal(Number(second.last['bytesReused']), Number(second['bytesReused']));
  assert.equal(Number(second.last['bytes']), Number(second['bytesCopied']));

  const base = await assertMatchesManifest(full);
  const manifest = await assertMatchesManifest(incremental);
  assert.deepEqual(manifest.base, { backupId: base.backupId, path: full });
  // The filesystem's clock as the base began (its state file's mtime), for the racy window.
  const startedAtFs = Number(mtimeNs(base.startedAtFs ?? '') / 1_000_000n);
  assert.ok(startedAtFs >= Date.parse(base.startedAt) - 1000 && startedAtFs <= Date.parse(base.finishedAt) + 1000, `startedAtFs ${base.startedAtFs}`);
  // What backupStatus counted is what the manifest says was copied and reused.
  assert.equal(bytesOf(manifest.files.filter((f) => f.reusedFrom === undefined)), Number(second['bytesCopied']));
  assert.equal(bytesOf(manifest.files.filter((f) => f.reusedFrom !== undefined)), Number(second['bytesReused']));
  const journal = manifest.files.filter((f) => f.path.startsWith('journal/'));
  assert.ok(journal.length > 0);
  for (const f of journal) assert.equal(f.reusedFrom, undefined, `${f.path}: the journal is always copied`);

  for (const file of [s.aFile, s.bFile]) {
    const reused = entry(manifest, file);
    assert.equal(reused.reusedFrom?.backupId, base.backupId, file);
    assert.equal(reused.reusedFrom?.method, method, file);
    // The source's mtime, recorded for the next backup's quick check.
    assert.equal(reused.mtime, entry(base, file).mtime);
    const [old, now] = [fs.statSync(path.join(full, file)), fs.statSync(path.join(incremental, file))];
    assert.equal(old.mode & 0o777, 0o400, `${file} is read-only in the base`);
    assert.equal(now.mode & 0o777, 0o400, `${file} is read-only in the incremental`);
    if (method === 'hardlink') {
      assert.equal(now.ino, old.ino, `${file} is the base's inode`);
      assert.equal(now.nlink, 2);
    } else {
      assert.notEqual(now.ino, old.ino, `${file} is a clone: an inode of its own`);
      assert.equal(now.nlink, 1);
    }
  }
  return manifest;
}

describe('incremental backups into the temp dir (ext4 here: hard links)', () => {
  let stack: Stack | undefined;
  const scratch = tempDir('incremental');
  const root = path.join(scratch.dir, 'backups');
  const method = () => (clonesIn(root) ? 'reflink' : 'hardlink');

  before(async () => {
    fs.mkdirSync(root);
    stack = await startStack();
  });

  after(async () => {
    await stopStack(stack);
    scratch.remove();
  });

  it('a second backup of an unchanged database copies under 20% of the bytes of the first, and opens with the same counts', async () => {
    const s = stack as Stack;
    const full = path.join(root, 'full');
    const incremental = path.join(root, 'incremental');
    const first = await backup(s.admin, { backupStart: full });
    const second = await backup(s.admin, { backupStart: incremental, incrementalBase: full });
    await assertUnchangedIncremental(s, full, incremental, first, second, method());
    assert.deepEqual(await countsOfCopy(incremental, scratch.dir, ['a', 'b']), { a: DOCS, b: DOCS });
  });

  it('verify accepts the incremental backup; restore copies it into plain 0600 files of their own, which open with the same counts', async () => {
    const incremental = path.join(root, 'incremental');
    const manifest = await readManifest(incremental);
    const reused = manifest.files.filter((f) => f.reusedFrom !== undefined);
    assert.ok(reused.length >= 2, 'both collection files were taken from the base');
    const verified = await runCli(['verify', incremental]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /: complete\. .* every checksum matches/);

    const target = path.join(scratch.dir, 'restored-incremental');
    const restored = await runCli(['restore', incremental, '--to', target]);
    assert.equal(restored.code, 0, restored.stderr);
    // The verify's record is about the backup, not of it: neither restored nor worth a note.
    assert.doesNotMatch(restored.stdout, /^note:/m);
    assert.deepEqual(fs.readdirSync(target).filter((name) => name.startsWith('hotbackup-')), []);
    const backupInodes = new Set(manifest.files.map((f) => fs.statSync(path.join(incremental, f.path)).ino));
    for (const file of manifest.files) {
      const copy = fs.lstatSync(path.join(target, file.path));
      assert.ok(copy.isFile(), file.path);
      // mongod opens its files read-write: the 0400 of a reused file does not come along.
      assert.equal(copy.mode & 0o777, 0o600, `${file.path} is ${(copy.mode & 0o777).toString(8)}`);
      assert.equal(copy.uid, process.getuid?.(), `${file.path} belongs to the user who restored it`);
      // A copy, never a link to the backup: mongod's writes must not reach the backups that share it.
      assert.equal(copy.nlink, 1, `${file.path} has no other name`);
      assert.ok(!backupInodes.has(copy.ino), `${file.path} is an inode of its own`);
    }
    for (const file of reused) assert.equal(fs.statSync(path.join(incremental, file.path)).mode & 0o777, 0o400, `${file.path} stays read-only in the backup`);

    // The dev server opens the restored dbpath (and writes to it): the same counts, and the backups are untouched.
    const server = await startDevServer({ dbpath: target });
    const reader = new MongoClient(server.uri);
    try {
      assert.equal(await reader.db('app').collection('a').countDocuments(), DOCS);
      assert.equal(await reader.db('app').collection('b').countDocuments(), DOCS);
      await reader.db('app').collection<{ _id: number; pad: string }>('a').insertOne({ _id: -1, pad: 'written after the restore' });
      await reader.db('admin').command({ fsync: 1 });
    } finally {
      await reader.close();
      await server.stop();
    }
    for (const dir of [incremental, path.join(root, 'full')]) {
      const again = await runCli(['verify', dir]);
      assert.equal(again.code, 0, `${dir}: ${again.stdout}${again.stderr}`);
    }
  });

  it("copies a changed collection's file and takes the unchanged one's from the base", async () => {
    const s = stack as Stack;
    await fill(s.client, 'b', 1000, DOCS);
    await s.admin.command({ fsync: 1 });
    const base = path.join(root, 'incremental');
    const next = path.join(root, 'after-change');
    const status = await backup(s.admin, { backupStart: next, incrementalBase: base });
    const manifest = await assertMatchesManifest(next);
    assert.equal(entry(manifest, s.bFile).reusedFrom, undefined, 'the changed collection is copied');
    assert.ok(Number(status['bytesCopied']) >= entry(manifest, s.bFile).size);
    assert.equal(entry(manifest, s.aFile).reusedFrom?.backupId, (await assertMatchesManifest(base)).backupId, 'the unchanged one is taken from the base');
    assert.deepEqual(await countsOfCopy(next, scratch.dir, ['a', 'b']), { a: DOCS, b: DOCS + 1000 });
  });

  it('checksum: true catches a change of the same size whose mtime was set back (touch -d), which the quick check takes for none', async () => {
    const s = stack as Stack;
    // A file of the dbpath besides WiredTiger's, which the fsyncLock strategy lists (and
    // the test may rewrite in place without harming the server).
    const notes = path.join(s.server.dbpath, 'notes.txt');
    const past = `@${Math.floor(Date.now() / 1000) - 3600}`;
    fs.writeFileSync(notes, 'version 1');
    execFileSync('touch', ['-m', '-d', past, notes]);
    const fsyncLock = { strategy: 'fsyncLock', allowWriteBlocking: true };
    const base = path.join(root, 'notes-base');
    await backup(s.admin, { backupStart: base, ...fsyncLock });
    assert.equal(entry(await assertMatchesManifest(base), 'notes.txt').mtime?.endsWith('.000000000Z'), true);

    fs.writeFileSync(notes, 'version 2');
    execFileSync('touch', ['-m', '-d', past, notes]);
    const quick = path.join(root, 'notes-quick');
    const quickStatus = await backup(s.admin, { backupStart: quick, incrementalBase: base, ...fsyncLock });
    // Same size, same (settled) mtime: the quick check cannot tell, reads nothing, and takes the base's.
    assert.deepEqual(entry(await assertMatchesManifest(quick), 'notes.txt').reusedFrom?.check, 'sizeMtime');
    assert.equal(fs.readFileSync(path.join(quick, 'notes.txt'), 'utf8'), 'version 1');
    assert.ok(Number(quickStatus['bytesReused']) > 0);

    const checked = path.join(root, 'notes-checksum');
    const status = await backup(s.admin, { backupStart: checked, incrementalBase: base, checksum: true, ...fsyncLock });
    const manifest = await assertMatchesManifest(checked);
    assert.equal(entry(manifest, 'notes.txt').reusedFrom, undefined, 'hashed, found changed, copied');
    assert.equal(fs.readFileSync(path.join(checked, 'notes.txt'), 'utf8'), 'version 2');
    // Every other candidate was hashed and, found equal, taken from the base.
    assert.ok(Number(status['bytesCompared']) > 0);
    const reused = manifest.files.filter((f) => f.reusedFrom !== undefined);
    assert.ok(reused.length > 0);
    for (const f of reused) assert.equal(f.reusedFrom?.check, 'checksum', f.path);
  });

  it("does not take a base's copy modified after that backup was written: copies the file from mongod, says so, and the manifest matches every byte", async () => {
    const s = stack as Stack;
    const base = path.join(root, 'edited-base');
    await backup(s.admin, { backupStart: base });
    // What mongod started on the base, or a hand edit, does: new bytes, same size, a later mtime.
    const edited = path.join(base, s.aFile);
    overwriteMiddle(edited);
    const next = path.join(root, 'after-edited-base');
    const status = await backup(s.admin, { backupStart: next, incrementalBase: base });
    const manifest = await assertMatchesManifest(next);
    assert.equal(entry(manifest, s.aFile).reusedFrom, undefined, 'copied from mongod');
    assert.equal(entry(manifest, s.bFile).reusedFrom?.backupId, (await readManifest(base)).backupId, 'the untouched one is still taken');
    const warnings = status.last['warnings'] as string[];
    assert.ok(
      warnings.some((w) => w.startsWith(`${s.aFile} could not be taken from the base ${base} and was copied instead: the base's copy ${edited} was modified (mtime `)),
      JSON.stringify(warnings),
    );
    assert.deepEqual(await countsOfCopy(next, scratch.dir, ['a', 'b']), { a: DOCS, b: DOCS + 1000 });
  });

  it("checksum: true hashes the base's copy too: one whose bytes rotted with its mtime kept is copied from mongod, not recorded with a checksum it no longer has", async () => {
    const s = stack as Stack;
    const base = path.join(root, 'rotted-base');
    await backup(s.admin, { backupStart: base });
    const rotted = path.join(base, s.aFile);
    const mtime = path.join(scratch.dir, 'mtime-of-rotted');
    fs.writeFileSync(mtime, '');
    execFileSync('touch', ['-m', '-r', rotted, mtime]);
    overwriteMiddle(rotted);
    execFileSync('touch', ['-m', '-r', mtime, rotted]);
    const next = path.join(root, 'after-rotted-base');
    const status = await backup(s.admin, { backupStart: next, incrementalBase: base, checksum: true });
    const manifest = await assertMatchesManifest(next);
    assert.equal(entry(manifest, s.aFile).reusedFrom, undefined, 'copied from mongod');
    assert.equal(entry(manifest, s.bFile).reusedFrom?.check, 'checksum');
    const warnings = status.last['warnings'] as string[];
    assert.ok(
      warnings.some((w) => new RegExp(`^${s.aFile} could not be taken from the base ${base} and was copied instead: the base's copy ${rotted} hashes to [0-9a-f]{16}, and that backup's manifest says [0-9a-f]{16}: the base is damaged`).test(w)),
      JSON.stringify(warnings),
    );
  });

  it('refuses an incomplete base and a base of another dbpath, saying why, and creates no destination', async () => {
    const s = stack as Stack;
    const refusal = async (command: Record<string, unknown>) =>
      s.admin.command(command).then(
        () => assert.fail(`${JSON.stringify(command)} was accepted`),
        (err: { code?: number; codeName?: string; message: string }) => err,
      );
    const dest = path.join(root, 'never');

    const partial = path.join(root, 'partial');
    fs.mkdirSync(partial);
    fs.writeFileSync(path.join(partial, s.aFile), 'half a copy');
    let err = await refusal({ backupStart: dest, incrementalBase: partial });
    assert.equal(err.code, 2);
    assert.equal(err.codeName, 'BadValue');
    assert.match(err.message, new RegExp(`^incrementalBase ${partial} cannot be used: it has no manifest, so it is not a complete backup`));

    const damaged = path.join(root, 'damaged');
    execFileSync('cp', ['-a', path.join(root, 'full'), damaged]);
    fs.writeFileSync(path.join(damaged, MANIFEST_FILENAME), '{"format": "mongo-hotbackup-proxy", "vers');
    err = await refusal({ backupStart: dest, incrementalBase: damaged });
    assert.equal(err.code, 2);
    assert.match(err.message, /cannot be used: .*hotbackup-manifest\.json is not valid JSON/);

    // A complete backup of another dev server's dbpath.
    const other = await startDevServer({ args: SMALL_JOURNAL });
    const otherProxy = await startProxy(other);
    const otherClient = new MongoClient(otherProxy.uri);
    const foreign = path.join(root, 'foreign');
    try {
      await fill(otherClient, 'a', 10);
      await backup(otherClient.db('admin'), { backupStart: foreign });
    } finally {
      await otherClient.close();
      await otherProxy.stop();
      await other.stop();
      other.cleanup();
    }
    err = await refusal({ backupStart: dest, incrementalBase: foreign });
    assert.equal(err.code, 2);
    assert.equal(
      err.message,
      `incrementalBase ${foreign} cannot be used: it is a backup of the dbpath ${other.dbpath}, and this proxy backs up ${s.server.dbpath}; take a full backup (no incrementalBase) first`,
    );

    err = await refusal({ backupStart: dest, incrementalBase: 'backups/full' });
    assert.match(err.message, /cannot be used: it must be an absolute path/);
    err = await refusal({ backupStart: dest, incrementalBase: 7 });
    assert.equal(err.codeName, 'TypeMismatch');
    err = await refusal({ backupStart: dest, checksum: true });
    assert.equal(err.codeName, 'BadValue');
    assert.match(err.message, /checksum: true' compares files with an incrementalBase, and none was given/);
    assert.equal(fs.existsSync(dest), false, 'a refused backup creates no destination');
    const last = ((await s.admin.command({ backupStatus: 1 })) as Status).last;
    assert.equal(last['destination'], path.join(root, 'after-rotted-base'), 'a refused backup leaves no outcome behind');
  });

  it('refuses the dbpath itself as a base, though it holds a valid manifest of itself; inside it, and through a symbolic link, too', async () => {
    const s = stack as Stack;
    const dbpath = s.server.dbpath;
    const modes = () => fs.readdirSync(dbpath).map((name) => `${name} ${fs.statSync(path.join(dbpath, name)).mode.toString(8)}`);
    const before = modes();
    // What `cp -a <backup> <dbpath>` leaves: the backup's manifest, which names this very dbpath and mongod.
    fs.copyFileSync(path.join(root, 'full', MANIFEST_FILENAME), path.join(dbpath, MANIFEST_FILENAME));
    const link = path.join(root, 'dbpath-link');
    fs.symlinkSync(dbpath, link);
    const dest = path.join(root, 'never-from-dbpath');
    const refusal = async (incrementalBase: string) =>
      s.admin.command({ backupStart: dest, incrementalBase }).then(
        () => assert.fail(`incrementalBase ${incrementalBase} was accepted`),
        (err: { code?: number; codeName?: string; message: string }) => err,
      );
    try {
      const why = "that this proxy backs up: mongod's live files are never a base, since taking them would link them into the backup and make them read-only. Give the directory of an earlier backup";
      let err = await refusal(dbpath);
      assert.equal(err.code, 2);
      assert.equal(err.codeName, 'BadValue');
      assert.equal(err.message, `incrementalBase ${dbpath} cannot be used: it is the dbpath ${dbpath} ${why}`);
      err = await refusal(link);
      assert.equal(err.code, 2);
      assert.equal(err.message, `incrementalBase ${link} cannot be used: it is the dbpath ${dbpath} ${why.replace(':', ` (${link} resolves to ${fs.realpathSync(dbpath)}, the dbpath to ${fs.realpathSync(dbpath)}):`)}`);
      err = await refusal(path.join(dbpath, 'journal'));
      assert.match(err.message, new RegExp(`cannot be used: it is inside the dbpath ${dbpath} that this proxy backs up`));
    } finally {
      fs.rmSync(path.join(dbpath, MANIFEST_FILENAME));
      fs.rmSync(link);
    }
    assert.deepEqual(modes(), before, "no file of the dbpath was made read-only");
    assert.equal(fs.existsSync(dest), false);
  });
});

const xfsUnavailable = loopFsUnavailable('xfs');

describe('incremental backups into XFS (clones)', () => {
  let stack: Stack | undefined;
  let xfs: LoopFs | undefined;
  const scratch = tempDir('incremental-xfs');

  before(async () => {
    if (xfsUnavailable !== undefined) return;
    xfs = await mountLoopFs('xfs', 300);
    stack = await startStack();
  });

  after(async () => {
    await stopStack(stack);
    await xfs?.remove();
    scratch.remove();
  });

  it('takes unchanged files from the base as clones, read-only, with extents shared; copies under 20%; opens with the same counts', { skip: xfsUnavailable }, async () => {
    const s = stack as Stack;
    const root = (xfs as LoopFs).dir;
    const full = path.join(root, 'full');
    const incremental = path.join(root, 'incremental');
    const first = await backup(s.admin, { backupStart: full });
    const second = await backup(s.admin, { backupStart: incremental, incrementalBase: full });
    await assertUnchangedIncremental(s, full, incremental, first, second, 'reflink');
    // filefrag's "shared" flag: the clone's extents are the base's, not a copy of them.
    assert.match(execFileSync('filefrag', ['-v', path.join(incremental, s.aFile)], { encoding: 'utf8' }), /shared/);
    assert.deepEqual(await countsOfCopy(incremental, scratch.dir, ['a', 'b']), { a: DOCS, b: DOCS });
  });

  it('with the reflink strategy (no $backupCursor, dbpath on XFS): unchanged files are taken from the base; clones made in the destination are not', { skip: xfsUnavailable }, async () => {
    const dbpath = path.join((xfs as LoopFs).dir, 'db');
    fs.mkdirSync(dbpath);
    const server = await startDevServer({ dbpath, args: [...SMALL_JOURNAL, '--no-backup-cursor'] });
    const proxy = await startProxy(server);
    const client = new MongoClient(proxy.uri);
    try {
      const admin = client.db('admin');
      await fill(client, 'a', DOCS);
      await admin.command({ fsync: 1 });
      const [aFile] = collectionFiles(dbpath);
      assert.ok(aFile !== undefined);
      // Staged clones copied into the temp dir: the files are read from the clones, their
      // mtimes from the dbpath, before the clone and after it.
      const full = path.join(scratch.dir, 'reflink-full');
      const incremental = path.join(scratch.dir, 'reflink-incremental');
      await backup(admin, { backupStart: full });
      const status = await backup(admin, { backupStart: incremental, incrementalBase: full });
      assert.equal(status.last['strategy'], 'reflink');
      const base = await assertMatchesManifest(full);
      const manifest = await assertMatchesManifest(incremental);
      assert.equal(entry(manifest, aFile).reusedFrom?.backupId, base.backupId);
      assert.equal(entry(manifest, aFile).mtime, entry(base, aFile).mtime);
      assert.ok(Number(status['bytesCopied']) < 0.2 * Number(status['bytesTotal']));
      assert.deepEqual(await countsOfCopy(incremental, scratch.dir, ['a']), { a: DOCS });

      // Into the dbpath's own filesystem the strategy clones straight into the destination:
      // nothing is copied, so nothing is taken from the base, which is still recorded.
      const localFull = path.join((xfs as LoopFs).dir, 'local-full');
      const local = path.join((xfs as LoopFs).dir, 'local-incremental');
      await backup(admin, { backupStart: localFull });
      const localStatus = await backup(admin, { backupStart: local, incrementalBase: localFull });
      const localManifest = await assertMatchesManifest(local);
      assert.equal(Number(localStatus['bytesReused']), 0);
      assert.deepEqual(localManifest.base, { backupId: (await assertMatchesManifest(localFull)).backupId, path: localFull });
      assert.equal(localManifest.files.filter((f) => f.reusedFrom !== undefined).length, 0);
    } finally {
      await client.close();
      await proxy.stop();
      await server.stop();
    }
  });
});
