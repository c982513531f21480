/**
 * `backupStart` with `extendTo`, through the proxy, with the real driver, against the dev
 * server. On a standalone: the base copy is made, then mongod's own refusal of
 * `$backupCursorExtend` (29144) is the backup's error, and the directory gets no manifest;
 * a plain backup's manifest has no oplog fields; a request that names a write-blocking
 * strategy, or no Timestamp, is refused before anything starts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, MongoServerError, Timestamp, type Db } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';

describe('backupStart extendTo on a standalone', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  let admin: Db;
  const scratch = tempDir('extend-standalone');

  before(async () => {
    server = await startDevServer({ args: ['--checkpoint-interval', '0'] });
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    admin = client.db('admin');
    await client.db('app').collection<{ _id: number }>('c').insertMany(Array.from({ length: 100 }, (_, i) => ({ _id: i })));
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('copies the files, then fails with mongod\'s 29144 and leaves no manifest', async () => {
    const destination = path.join(scratch.dir, 'extended');
    const err = await admin.command({ backupStart: destination, extendTo: new Timestamp({ t: Math.floor(Date.now() / 1000), i: 1 }) }).then(
      () => assert.fail('an extension on a standalone must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, 29144);
    assert.match(err.message, /Cannot extend backup cursor when replication is not enabled/);
    const last = (await admin.command({ backupStatus: 1 }))['last'] as Record<string, unknown>;
    assert.equal(last['code'], 29144);
    assert.equal(last['strategy'], 'backupCursor');
    assert.ok(Number(last['files']) > 0, 'the base files were copied first');
    assert.equal(fs.existsSync(path.join(destination, MANIFEST_FILENAME)), false);
  });

  it('records no oplog in a standalone\'s manifest, whichever the strategy, and warns of nothing', async () => {
    for (const strategy of ['backupCursor', 'fsyncLock']) {
      const destination = path.join(scratch.dir, `plain-${strategy}`);
      await admin.command({ backupStart: destination, strategy, allowWriteBlocking: true });
      const manifest = await readManifest(destination);
      assert.equal(manifest.strategy, strategy);
      assert.equal('oplog' in manifest, false);
      assert.equal('extendedTo' in manifest, false);
      assert.deepEqual(((await admin.command({ backupStatus: 1 }))['last'] as Record<string, unknown>)['warnings'], []);
    }
  });

  it('refuses a non-Timestamp with TypeMismatch and a write-blocking strategy with InvalidOptions, before anything starts', async () => {
    await assert.rejects(admin.command({ backupStart: path.join(scratch.dir, 'x'), extendTo: 1_780_000_000 }), { code: 14, message: /'extendTo' must be a Timestamp/ });
    await assert.rejects(admin.command({ backupStart: path.join(scratch.dir, 'y'), strategy: 'fsyncLock', allowWriteBlocking: true, extendTo: new Timestamp({ t: 1, i: 1 }) }), {
      code: 72,
      message: /needs the backupCursor strategy/,
    });
    assert.equal(fs.existsSync(path.join(scratch.dir, 'x')), false);
    assert.equal(fs.existsSync(path.join(scratch.dir, 'y')), false);
  });
});

describe('backupStart extendTo against a mongod without $backupCursor', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  let admin: Db;
  const scratch = tempDir('extend-no-cursor');

  before(async () => {
    server = await startDevServer({ args: ['--no-backup-cursor'] });
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    admin = client.db('admin');
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('refuses auto with InvalidOptions once $backupCursor is found missing, before any lock or copy', async () => {
    const destination = path.join(scratch.dir, 'auto');
    // Write blocking allowed: auto would fall back to fsyncLock, were it not for extendTo.
    await assert.rejects(admin.command({ backupStart: destination, allowWriteBlocking: true, extendTo: new Timestamp({ t: 1, i: 1 }) }), {
      code: 72,
      message: /'extendTo' needs the backupCursor strategy .* no \$backupCursor/,
    });
    const last = (await admin.command({ backupStatus: 1 }))['last'] as Record<string, unknown>;
    assert.equal(last['code'], 72);
    assert.equal(last['strategy'] ?? null, null, `no snapshot was taken: ${JSON.stringify(last)}`);
    assert.equal(last['writesBlockedMs'] ?? 0, 0, 'writes were never blocked');
    assert.equal(Number(last['files'] ?? 0), 0, 'nothing was copied');
  });
});
