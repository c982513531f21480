/**
 * backupStart, backupStatus and backupThrottle through the proxy, checked with the
 * real driver (and mongosh for the happy path): reply shapes and Percona's texts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Int32, Long, MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runMongosh } from '../helpers/mongosh.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

const MANIFEST = 'hotbackup-manifest.json';

async function expectError(promise: Promise<unknown>, code: number, message: string | RegExp): Promise<MongoServerError> {
  let caught: MongoServerError | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof MongoServerError, `expected a server error, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    caught = err;
    return true;
  });
  return caught as MongoServerError;
}

describe('backup commands through the proxy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('commands');
  const admin = () => client.db('admin');
  // Raw values: the checks below are about BSON types (NumberLong, int32).
  const raw = { promoteLongs: false, promoteValues: false } as const;

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    await client.connect();
    await client.db('app').collection('docs').insertMany(Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'd'.repeat(500) })));
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('reports an idle status in Percona shape before any backup', async () => {
    const status = await admin().command({ backupStatus: 1 }, raw);
    assert.equal(status['inProgress'], false);
    assert.ok(status['bytesCopied'] instanceof Long, 'bytesCopied is a NumberLong');
    assert.ok(status['filesCopied'] instanceof Int32, 'filesCopied is an int32');
    assert.equal(Number(status['bytesCopied']), 0);
    assert.equal(Number(status['filesCopied']), 0);
    assert.equal(Number(status['throttleBytesPerSec']), 0, 'unlimited by default');
    assert.equal(status['last'], undefined);
  });

  it('rejects bad destinations with Percona texts', async () => {
    await expectError(admin().command({ backupStart: '' }), 2, "invalid destination directory: ''");
    await expectError(admin().command({ backupStart: 'relative/dir' }), 2, 'Destination path must be absolute');
    const file = path.join(scratch.dir, 'a-file');
    fs.writeFileSync(file, 'x');
    await expectError(admin().command({ backupStart: file }), 2, `Backup destination ${file} is not a directory`);
    const full = path.join(scratch.dir, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'keep'), 'x');
    await expectError(admin().command({ backupStart: full }), 2, `Backup directory ${full} is not empty`);
    await expectError(admin().command({ backupStart: path.join(server.dbpath, 'inside') }), 2, /must be outside the dbpath/);
    const belowFile = path.join(file, 'below-a-file');
    await expectError(admin().command({ backupStart: belowFile }), 2, `Backup destination ${belowFile} cannot be created: its parent ${file} is not a directory`);
  });

  it('refuses a destination whose parent does not exist, creating nothing, as PSMDB does', async () => {
    // PSMDB creates one level only (jstests/backup/dest_path.js: "/non-existent/path" fails).
    const parent = path.join(scratch.dir, 'non-existent');
    const destination = path.join(parent, 'path');
    const lastBefore = (await admin().command({ backupStatus: 1 }))['last'] as Document | undefined;
    for (const options of [{}, { async: true }]) {
      const err = await expectError(
        admin().command({ backupStart: destination, ...options }),
        2,
        `Backup destination ${destination} cannot be created: its parent directory ${parent} does not exist`,
      );
      assert.equal(err.codeName, 'BadValue');
      assert.equal(fs.existsSync(parent), false, 'nothing created');
      const status = await admin().command({ backupStatus: 1 });
      assert.equal(status['inProgress'], false);
      assert.equal(status['backupId'], undefined);
      assert.deepEqual(status['last'], lastBefore, 'a refused start is not a backup');
    }
  });

  it('answers the commands only on admin, as mongod does for admin-only commands', async () => {
    for (const cmd of [{ backupStart: '/tmp/x' }, { backupStatus: 1 }, { backupThrottle: 0 }]) {
      const name = Object.keys(cmd)[0];
      await expectError(client.db('app').command(cmd), 13, `${name} may only be run against the admin database.`);
    }
  });

  it('validates backupThrottle with Percona texts and accepts units', async () => {
    await expectError(admin().command({ backupThrottle: 'fast' }), 2, 'backupThrottle argument must be a number');
    await expectError(admin().command({ backupThrottle: -1 }), 2, 'backupThrottle argument cannot be negative');
    await admin().command({ backupThrottle: '10MB' });
    assert.equal(Number((await admin().command({ backupStatus: 1 }))['throttleBytesPerSec']), 10 * 1024 * 1024);
    await admin().command({ backupThrottle: 0 });
    assert.equal(Number((await admin().command({ backupStatus: 1 }))['throttleBytesPerSec']), 0);
  });

  it('blocks backupStart until the copy and its manifest are complete', async () => {
    const dest = path.join(scratch.dir, 'blocking');
    const reply = await admin().command({ backupStart: dest });
    assert.deepEqual(reply, { ok: 1 });
    const manifest = JSON.parse(fs.readFileSync(path.join(dest, MANIFEST), 'utf8')) as Document;
    assert.equal(manifest['strategy'], 'backupCursor');
    const files = manifest['files'] as Array<{ path: string; size: number; checksum: string }>;
    const names = files.map((f) => f.path);
    assert.ok(names.includes('storage.bson') && names.includes('_mdb_catalog.wt'), names.join(','));
    assert.ok(names.some((n) => n.startsWith('journal/WiredTigerLog.')), 'journal kept under journal/');
    // What a user verifying the backup does: every file's bytes against the manifest.
    assert.deepEqual(manifest['checksum'], { algorithm: 'xxh3-64' });
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(dest, f.path));
      assert.deepEqual({ path: f.path, size: bytes.length, checksum: xxh3Hex(bytes) }, { path: f.path, size: f.size, checksum: f.checksum });
    }

    const status = await admin().command({ backupStatus: 1 }, raw);
    assert.equal(status['inProgress'], false);
    assert.equal(Number(status['filesCopied']), names.length, 'idle status keeps the last counters');
    assert.equal(Number(status['bytesCopied']), (manifest['totals'] as { bytes: number }).bytes);
    const last = status['last'] as Document;
    assert.equal(last['ok'], true);
    assert.equal(last['destination'], dest);
    assert.equal(last['strategy'], 'backupCursor');
  });

  it('starts asynchronously, refuses a second start, and reports progress until done', async () => {
    const dest = path.join(scratch.dir, 'async');
    // A crawl, so that the second start and the progress are seen while it runs however
    // busy the machine; lifted once progress was seen.
    await admin().command({ backupThrottle: '1MB' });
    try {
      const reply = await admin().command({ backupStart: dest, async: true });
      assert.equal(reply['ok'], 1);
      assert.match(String(reply['backupId']), /^[0-9a-f-]{36}$/);
      await expectError(
        admin().command({ backupStart: path.join(scratch.dir, 'second') }),
        117,
        'Cannot initiate backup. There already is a backup in progress.',
      );
      let sawProgress = false;
      await until(async () => {
        const status = await admin().command({ backupStatus: 1 });
        if (!status['inProgress']) return true;
        assert.equal(status['backupId'], reply['backupId']);
        assert.equal(status['destination'], dest);
        if (status['phase'] === 'copying' && Number(status['bytesCopied']) > 0) {
          assert.ok(Number(status['bytesTotal']) >= Number(status['bytesCopied']));
          assert.ok(status['percent'] >= 0 && status['percent'] <= 100);
          assert.ok(Array.isArray(status['currentFiles']));
          if (!sawProgress) await admin().command({ backupThrottle: 0 });
          sawProgress = true;
        }
        return undefined;
      }, 100);
      assert.ok(sawProgress, 'saw the copy in progress');
      assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
      const last = (await admin().command({ backupStatus: 1 }))['last'] as Document;
      assert.equal(last['backupId'], reply['backupId']);
      assert.equal(last['ok'], true);
    } finally {
      await admin().command({ backupThrottle: 0 });
    }
  });

  it('works from mongosh', async () => {
    const dest = path.join(scratch.dir, 'from-mongosh');
    const result = await runMongosh(
      proxy.uri,
      `const r = db.adminCommand({ backupStart: ${JSON.stringify(dest)} }); print('ok=' + r.ok);
       const s = db.adminCommand({ backupStatus: 1 }); print('inProgress=' + s.inProgress + ' files=' + s.filesCopied);
       try { db.adminCommand({ backupThrottle: 'abc' }); } catch (e) { print('error=' + e.message + ' code=' + e.code); }`,
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines[0], 'ok=1');
    assert.match(lines[1] ?? '', /^inProgress=false files=\d+$/);
    assert.equal(lines[2], 'error=backupThrottle argument must be a number code=2');
    assert.ok(fs.existsSync(path.join(dest, MANIFEST)));
  });

  it('logs one line per backup start and end', () => {
    const starts = proxy.logs.filter((l) => l['msg'] === 'backup started');
    const ends = proxy.logs.filter((l) => l['msg'] === 'backup finished' || l['msg'] === 'backup failed');
    assert.ok(starts.length >= 3);
    assert.equal(starts.length, ends.length);
  });
});
