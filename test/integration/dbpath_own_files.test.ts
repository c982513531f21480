/**
 * A dbpath that holds hotbackup's own files, as one does when mongod was started on a
 * copy of a backup (its manifest, its verification record) or on a backup left
 * unfinished (its marker): the backups taken of it through the proxy, with fsyncLock
 * (which lists the dbpath itself) and with $backupCursor, carry none of them, so the new
 * backup's manifest is its own and verify passes it; a file of the same name further
 * down the dbpath is anyone's, and is copied.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { readManifest } from '../../src/backup/manifest.js';

const OWN = ['hotbackup-manifest.json', 'hotbackup-verified.json', 'hotbackup-incomplete.json'];
const DOCS = 1500;

describe("backups of a dbpath that holds hotbackup's own files", () => {
  const scratch = tempDir('own-files');
  const dbpath = path.join(scratch.dir, 'started-on-a-backup');
  let server: RunningDevServer | undefined;
  let proxy: RunningProxy | undefined;
  let client: MongoClient | undefined;
  let firstId = '';

  before(async () => {
    // A backup, verified; then mongod (the dev server) started on a copy of it.
    const origin = await startDevServer();
    const originProxy = await startProxy(origin);
    const first = path.join(scratch.dir, 'first');
    try {
      const c = await MongoClient.connect(originProxy.uri);
      try {
        await c.db('app').collection('docs').insertMany(Array.from({ length: DOCS }, (_, i) => ({ i, pad: 'o'.repeat(200) })));
        assert.deepEqual(await c.db('admin').command({ backupStart: first }), { ok: 1 });
      } finally {
        await c.close();
      }
    } finally {
      await originProxy.stop();
      await origin.stop();
      origin.cleanup();
    }
    assert.equal((await runCli(['verify', first])).code, 0);
    firstId = (await readManifest(first)).backupId;
    execFileSync('cp', ['-a', first, dbpath]);
    // And the marker of a backup that never finished, and a file of ours by name only, further down.
    fs.writeFileSync(path.join(dbpath, 'hotbackup-incomplete.json'), '{"kind": "incomplete-backup", "state": "aborted"}');
    fs.mkdirSync(path.join(dbpath, 'notes'));
    fs.writeFileSync(path.join(dbpath, 'notes', 'hotbackup-manifest.json'), 'an operator\'s notes');
    server = await startDevServer({ dbpath });
    proxy = await startProxy(server);
    client = await MongoClient.connect(proxy.uri);
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    scratch.remove();
  });

  for (const [strategy, options] of [
    ['fsyncLock', { strategy: 'fsyncLock', allowWriteBlocking: true }],
    ['backupCursor', {}],
  ] as const) {
    it(`with ${strategy}: the new backup carries none of them, and verify passes it`, async () => {
      const admin = (client as MongoClient).db('admin');
      assert.equal(await (client as MongoClient).db('app').collection('docs').countDocuments(), DOCS, 'the dev server opened the copy');
      const dest = path.join(scratch.dir, `backup-${strategy}`);
      assert.deepEqual(await admin.command({ backupStart: dest, ...options }), { ok: 1 });
      const status = await admin.command({ backupStatus: 1 });
      const last = status['last'] as { backupId: string; strategy: string };
      assert.equal(last.strategy, strategy);

      const manifest = await readManifest(dest);
      assert.equal(manifest.backupId, last.backupId, 'the manifest is the new backup\'s');
      assert.notEqual(manifest.backupId, firstId);
      const listed = manifest.files.map((f) => f.path);
      for (const name of OWN) assert.ok(!listed.includes(name), `${name} is not in the manifest: ${listed.join(', ')}`);
      assert.deepEqual(fs.readdirSync(dest).filter((name) => name.startsWith('hotbackup-')), ['hotbackup-manifest.json']);
      if (strategy === 'fsyncLock') assert.ok(listed.includes('notes/hotbackup-manifest.json'), 'a file of that name further down is copied');

      const verified = await runCli(['verify', dest, '--json']);
      assert.equal(verified.code, 0, verified.stdout);
      assert.equal((JSON.parse(verified.stdout) as { backupId: string }).backupId, last.backupId);
    });
  }
});
