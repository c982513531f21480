/**
 * The instant local snapshot (reflink clones made straight into a destination on the
 * dbpath's XFS, with no copy) through verify and restore: a complete one leaves no marker
 * and verifies; one that fails after its clones are in the destination is marked failed,
 * and verify says so; a restore of the good one opens with the counts of backup time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';

const xfsUnavailable = loopFsUnavailable('xfs');

describe('an instant local snapshot (reflink into the destination)', () => {
  let fsys: LoopFs | undefined;
  let server: RunningDevServer;
  let proxy: RunningProxy;

  before(async () => {
    if (xfsUnavailable !== undefined) return;
    fsys = await mountLoopFs('xfs', 400);
    const dbpath = path.join(fsys.dir, 'db');
    fs.mkdirSync(dbpath);
    server = await startDevServer({ dbpath, args: ['--no-backup-cursor'] });
    proxy = await startProxy(server);
    const client = await MongoClient.connect(proxy.uri);
    await client.db('app').collection('docs').insertMany(Array.from({ length: 1500 }, (_, i) => ({ i, pad: 'x'.repeat(200) })));
    await client.close();
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    await fsys?.remove();
  });

  it('verifies when complete, restores to the counts of backup time, and says failed when it failed before its manifest', { skip: xfsUnavailable }, async () => {
    const root = (fsys as LoopFs).dir;
    const good = path.join(root, 'good');
    const client = await MongoClient.connect(proxy.uri);
    try {
      assert.deepEqual(await client.db('admin').command({ backupStart: good, strategy: 'reflink' }), { ok: 1 });
      const last = (await client.db('admin').command({ backupStatus: 1 }))['last'] as { strategyReason: string };
      assert.match(last.strategyReason, /cloned straight into the destination/);
    } finally {
      await client.close();
    }
    assert.equal(fs.existsSync(path.join(good, 'hotbackup-incomplete.json')), false);
    const verified = await runCli(['verify', good]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /: complete\. Backup [0-9a-f-]{36} \(reflink,/);

    const target = path.join(root, 'restored');
    const restored = await runCli(['restore', good, '--to', target]);
    assert.equal(restored.code, 0, restored.stderr);
    const opened = await startDevServer({ dbpath: target });
    const reader = await MongoClient.connect(opened.uri);
    try {
      assert.equal(await reader.db('app').collection('docs').countDocuments(), 1500);
    } finally {
      await reader.close();
      await opened.stop();
    }

    // A proxy of its own whose backups fail once their files are in place (src/failpoints.ts).
    const failing = await startProxy(server, ['--state-dir', path.join(root, 'state-failing')], { HOTBACKUP_TEST_FAILPOINTS: 'failBeforeManifest' });
    const viaFailing = await MongoClient.connect(failing.uri);
    const failed = path.join(root, 'failed');
    try {
      await assert.rejects(viaFailing.db('admin').command({ backupStart: failed, strategy: 'reflink' }), /fail point failBeforeManifest/);
    } finally {
      await viaFailing.close();
      await failing.stop();
    }
    assert.ok(fs.readdirSync(failed).some((f) => f.endsWith('.wt')), 'the clones are in the destination');
    const run = await runCli(['verify', failed]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /is not a complete backup: backup [0-9a-f-]{36} \(started [^)]+\) failed: fail point failBeforeManifest/);
    const refused = await runCli(['restore', failed, '--to', path.join(root, 'never')]);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /^hotbackup restore: cannot restore: .* failed: fail point failBeforeManifest/);
  });
});
