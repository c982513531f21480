/**
 * Issue 7, item 6: `$backupCursor` lists files under mongod's own dbpath, but a sidecar
 * may see that directory at another path. With `--dbpath` the proxy reads the listed
 * files from under its own path, after checking that it is the same directory.
 *
 * The proxy runs in its own mount namespace, where the data is bind-mounted at another
 * path and mongod's path is hidden under a tmpfs: nothing can be read through mongod's
 * path by accident. That needs root (mount namespaces, mounts); the refusal of a
 * --dbpath that is another directory does not.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { spawnCli, type CliProcess } from '../helpers/cli_process.js';
import { tempDir } from '../helpers/paths.js';

/** Mounts in a private namespace, checks mongod's path is gone, then execs the CLI. */
const HIDE_AND_RUN = 'mount --bind "$1" "$2" && mount -t tmpfs tmpfs "$3" && test ! -e "$1" && shift 3 && exec "$@"';

const canUnshare = (() => {
  try {
    execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /mnt'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

async function startProxyProcess(upstream: RunningDevServer, dbpath: string, wrapper: string[] = []): Promise<{ cli: CliProcess; uri: string }> {
  const cli = await spawnCli(['serve', '--upstream', upstream.uri, '--port', '0', '--dbpath', dbpath], 'proxy listening', wrapper);
  return { cli, uri: `mongodb://127.0.0.1:${cli.port}/?directConnection=true` };
}

describe('$backupCursor with a --dbpath other than mongod\'s path', () => {
  const scratch = tempDir('rebase');
  // mongod's dbpath is <scratch>/hidden/db; the proxy sees it at <scratch>/alias.
  const hidden = path.join(scratch.dir, 'hidden');
  const mongodDbpath = path.join(hidden, 'db');
  const alias = path.join(scratch.dir, 'alias');
  let server: RunningDevServer;
  let direct: MongoClient;

  before(async () => {
    fs.mkdirSync(mongodDbpath, { recursive: true });
    fs.mkdirSync(alias);
    server = await startDevServer({ dbpath: mongodDbpath });
    direct = new MongoClient(server.uri);
    await direct.db('app').collection('c').insertMany(Array.from({ length: 1000 }, (_, i) => ({ n: i, pad: 'r'.repeat(200) })));
    await direct.db('admin').command({ fsync: 1 });
  });

  after(async () => {
    await direct?.close();
    await server?.stop();
    scratch.remove();
  });

  it(
    'backs up through the other path when mongod\'s path is not visible to the proxy',
    { skip: canUnshare ? false : 'needs root, to run the proxy in its own mount namespace' },
    async () => {
      const wrapper = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', HIDE_AND_RUN, 'sh', mongodDbpath, alias, hidden];
      const proxy = await startProxyProcess(server, alias, wrapper);
      const client = new MongoClient(proxy.uri);
      const dest = path.join(scratch.dir, 'backup');
      try {
        assert.deepEqual(await client.db('admin').command({ backupStart: dest }), { ok: 1 });
        const manifest = JSON.parse(fs.readFileSync(path.join(dest, 'hotbackup-manifest.json'), 'utf8')) as Document;
        assert.equal((manifest['source'] as Document)['dbpath'], alias);
      } finally {
        await client.close();
        await proxy.cli.stop();
      }
      const restored = await startDevServer({ dbpath: dest });
      const reader = new MongoClient(restored.uri);
      try {
        assert.equal(await reader.db('app').collection('c').countDocuments(), 1000);
      } finally {
        await reader.close();
        await restored.stop();
      }
    },
  );

  it('refuses a --dbpath that is another directory, naming both, and closes the cursor', async () => {
    // A real WiredTiger dbpath, just not this mongod's.
    const other = await startDevServer();
    await other.stop();
    const proxy = await startProxyProcess(server, other.dbpath);
    const client = new MongoClient(proxy.uri);
    const dest = path.join(scratch.dir, 'refused');
    try {
      await assert.rejects(client.db('admin').command({ backupStart: dest }), (err: unknown) => {
        assert.ok(err instanceof MongoServerError, String(err));
        assert.equal(err.code, 268, err.message);
        assert.ok(err.message.startsWith(`The proxy's dbpath ${other.dbpath} is not mongod's dbpath ${mongodDbpath}: `), err.message);
        return true;
      });
      assert.equal(fs.existsSync(path.join(dest, 'hotbackup-manifest.json')), false);
      const engine = (await direct.db('admin').command({ serverStatus: 1 }))['storageEngine'] as Document;
      assert.equal(engine['backupCursorOpen'], false, 'the refused backup closed its cursor');
    } finally {
      await client.close();
      await proxy.cli.stop();
      other.cleanup();
    }
  });
});
