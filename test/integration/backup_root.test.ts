/**
 * `hotbackup serve --backup-root` through the proxy, with the real driver against the dev
 * server, as a client that tries to make the proxy write elsewhere would: `..` and a
 * symbolic link out of the root are refused and nothing is created outside it; the
 * dbpath, a relative path and the root itself too; a path inside succeeds. And, with the
 * proxy run under umask 000, every file a backup creates is 0600 and every directory
 * 0700. Without a root, the start warns that any path is allowed, and the dbpath is
 * still refused.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, MongoServerError } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilBackupEnds, untilCopying } from '../helpers/poll.js';

/** Runs the proxy's command line under umask 000: modes are then whatever the proxy sets. */
const UMASK_000 = ['sh', '-c', 'umask 000; exec "$@"', 'sh'];

async function refusal(promise: Promise<unknown>): Promise<MongoServerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MongoServerError, `a server error, not ${String(err)}`);
    return err;
  }
  assert.fail('expected the command to be refused');
}

function assertBadValue(err: MongoServerError, message: RegExp): void {
  assert.equal(err.code, 2);
  assert.equal(err.codeName, 'BadValue');
  assert.match(err.message, message);
}

/** Every entry under `dir` (itself included) with its permission bits, as `relative path -> 'd0700' | 'f0600'`. */
function modesUnder(dir: string): Map<string, string> {
  const modes = new Map<string, string>();
  const visit = (at: string, rel: string): void => {
    const stats = fs.lstatSync(at);
    modes.set(rel, `${stats.isDirectory() ? 'd' : stats.isFile() ? 'f' : '?'}${(stats.mode & 0o7777).toString(8).padStart(4, '0')}`);
    if (stats.isDirectory()) for (const name of fs.readdirSync(at)) visit(path.join(at, name), path.join(rel, name));
  };
  visit(dir, '.');
  return modes;
}

function assertOwnerOnly(dir: string): void {
  const modes = modesUnder(dir);
  const wrong = [...modes].filter(([, mode]) => mode !== 'd0700' && mode !== 'f0600');
  assert.deepEqual(wrong, [], `every directory 0700 and every file 0600 under ${dir}`);
}

describe('serve --backup-root through the proxy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('backup-root');
  const root = path.join(scratch.dir, 'b');
  const sibling = path.join(scratch.dir, 'sibling');
  const outside = path.join(scratch.dir, 'outside');
  const admin = () => client.db('admin');

  before(async () => {
    for (const dir of [root, sibling, outside]) fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(root, 0o755);
    fs.symlinkSync(outside, path.join(root, 'link'));
    server = await startDevServer();
    proxy = await startProxy(server, ['--backup-root', root, '--state-dir', path.join(scratch.dir, 'state')], {}, UMASK_000);
    client = new MongoClient(proxy.uri);
    await client.db('app').collection<{ _id: number; pad: string }>('docs').insertMany(Array.from({ length: 200 }, (_, i) => ({ _id: i, pad: 'x'.repeat(200) })));
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('says where destinations may go at start, and gives no warning that any path is allowed', () => {
    const ready = proxy.logs.find((line) => line['msg'] === 'backup commands ready');
    assert.equal(ready?.['backupRoot'], root);
    assert.equal(proxy.logs.find((line) => String(line['msg']).startsWith('no --backup-root')), undefined);
    assert.equal(proxy.logs.find((line) => String(line['msg']).startsWith('--backup-root is owned by another user')), undefined, "the root is the proxy's user's");
  });

  it('refuses /b/../<sibling>/x and /b/link/x (link -> outside), and creates nothing outside the root', async () => {
    const escape = `${root}/../sibling/x`;
    assertBadValue(await refusal(admin().command({ backupStart: escape })), /^Backup destination .* must not contain '\.\.'/);
    const through = path.join(root, 'link', 'x');
    assertBadValue(await refusal(admin().command({ backupStart: through })), new RegExp(`passes through the symbolic link ${path.join(root, 'link')}`));
    // Also as the last level, and as the incrementalBase and backupVerify paths.
    assertBadValue(await refusal(admin().command({ backupStart: path.join(root, 'link') })), /passes through the symbolic link/);
    assertBadValue(await refusal(admin().command({ backupVerify: through })), /^backupVerify path .* passes through the symbolic link/);
    assertBadValue(await refusal(admin().command({ backupVerify: outside })), /^backupVerify path .* is outside the backup root/);
    assertBadValue(await refusal(admin().command({ backupStart: path.join(root, 'inc'), incrementalBase: path.join(root, 'link') })), /^incrementalBase .* passes through the symbolic link/);
    assert.deepEqual(fs.readdirSync(sibling), []);
    assert.deepEqual(fs.readdirSync(outside), []);
    assert.deepEqual(fs.readdirSync(root), ['link']);
  });

  // The dbpath lies outside any root the start accepts, so the root's check answers first
  // here; the dbpath's own check under a root is held to in test/backup/destination_root.test.ts.
  it('refuses the dbpath, a path inside it, a relative path and the root itself', async () => {
    for (const dbpathOrInside of [server.dbpath, path.join(server.dbpath, 'x')]) {
      assertBadValue(await refusal(admin().command({ backupStart: dbpathOrInside })), /is outside the backup root/);
    }
    assertBadValue(await refusal(admin().command({ backupStart: 'b/x' })), /^Destination path must be absolute$/);
    assertBadValue(await refusal(admin().command({ backupStart: root })), /is the backup root itself/);
    assert.deepEqual(fs.readdirSync(root), ['link']);
  });

  it('takes a backup inside the root, verifies it there, and under umask 000 makes every file 0600 and every directory 0700', async () => {
    const good = path.join(root, 'good');
    const reply = await admin().command({ backupStart: good });
    assert.equal(reply['ok'], 1);
    assert.equal((await admin().command({ backupVerify: good }))['ok'], 1);
    const modes = modesUnder(good);
    for (const name of ['hotbackup-manifest.json', 'hotbackup-verified.json', 'journal']) assert.ok(modes.has(path.join('.', name)), `${name} in the backup`);
    assertOwnerOnly(good);
  });

  it('leaves an aborted backup marker 0600 too', async () => {
    await admin().command({ backupThrottle: '64KB' });
    const dest = path.join(root, 'aborted');
    await admin().command({ backupStart: dest, async: true });
    await untilCopying(admin());
    await admin().command({ backupAbort: 1 });
    await admin().command({ backupThrottle: 0 });
    await untilBackupEnds(admin());
    assert.ok(fs.existsSync(path.join(dest, 'hotbackup-incomplete.json')));
    assertOwnerOnly(dest);
  });
});

describe('serve --backup-root owned by another user', () => {
  it("warns at start that the root is not the proxy's user's", { skip: process.geteuid?.() !== 0 && 'needs root to chown' }, async () => {
    const server = await startDevServer();
    const scratch = tempDir('root-owner');
    const root = path.join(scratch.dir, 'b');
    let proxy: RunningProxy | undefined;
    try {
      fs.mkdirSync(root, { mode: 0o755 });
      fs.chownSync(root, 65534, 65534);
      proxy = await startProxy(server, ['--backup-root', root, '--state-dir', path.join(scratch.dir, 'state')]);
      // Logged while the root is opened, before the proxy listens (which startProxy waits for).
      const warning = proxy.logs.find((line) => String(line['msg']).startsWith('--backup-root is owned by another user'));
      assert.ok(warning !== undefined, 'the start warns of the owner');
      assert.equal(warning['level'], 40, 'a warn line');
      assert.equal(warning['owner'], 65534);
      assert.equal(warning['proxyUid'], 0);
    } finally {
      await proxy?.stop();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});

describe('serve without --backup-root', () => {
  it('warns at start that any absolute path is allowed, and still refuses the dbpath and a path inside it', async () => {
    const server = await startDevServer();
    const scratch = tempDir('no-root');
    let proxy: RunningProxy | undefined;
    let client: MongoClient | undefined;
    try {
      proxy = await startProxy(server, ['--state-dir', path.join(scratch.dir, 'state')]);
      const warning = await until(() => proxy?.logs.find((line) => String(line['msg']).startsWith('no --backup-root')));
      assert.equal(warning['level'], 40, 'a warn line');
      assert.match(String(warning['msg']), /any absolute path the proxy can write/);
      client = new MongoClient(proxy.uri);
      const admin = client.db('admin');
      for (const dest of [server.dbpath, path.join(server.dbpath, 'x')]) {
        assertBadValue(await refusal(admin.command({ backupStart: dest })), /must be outside the dbpath/);
      }
      assertBadValue(await refusal(admin.command({ backupStart: path.join(scratch.dir, 'state', 'x') })), /must be outside the proxy's state dir/);
    } finally {
      await client?.close();
      await proxy?.stop();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
