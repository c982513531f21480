/**
 * `{backupVerify: "<dir>"}` through the proxy, with the real driver: ok: 1 for a good
 * backup; for a bad one, mongod's error shape (ok: 0, errmsg, code, codeName) with the
 * state and every file that does not match (a backup stopped by backupAbort: aborted);
 * the verdict is recorded for `hotbackup list`; the proxy keeps forwarding while a
 * throttled verify runs, and runs one at a time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Int32, Long, MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilCopying } from '../helpers/poll.js';
import { runCli } from '../helpers/cli_run.js';
import type { EntryJson } from '../../src/cli/catalog_output.js';

async function serverError(promise: Promise<unknown>): Promise<MongoServerError> {
  const err = await promise.then(
    () => assert.fail('the command succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof MongoServerError, `expected a server error, got ${String(err)}`);
  return err;
}

describe('backupVerify through the proxy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('verify-command');
  const good = path.join(scratch.dir, 'good');
  const admin = () => client.db('admin');
  /** `hotbackup list` of the scratch directory, as an operator would look: the entry named `name`. */
  const listed = async (name: string): Promise<EntryJson | undefined> => {
    const run = await runCli(['list', scratch.dir, '--json']);
    assert.equal(run.code, 0, run.stderr);
    return (JSON.parse(run.stdout) as { backups: EntryJson[] }).backups.find((b) => b.name === name);
  };

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    client = await MongoClient.connect(proxy.uri);
    await client.db('app').collection('docs').insertMany(Array.from({ length: 2000 }, (_, i) => ({ i, pad: 'v'.repeat(300) })));
    assert.deepEqual(await admin().command({ backupStart: good }), { ok: 1 });
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('answers ok: 1 for a good backup, with what it checked', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(good, 'hotbackup-manifest.json'), 'utf8')) as { backupId: string; totals: { files: number; bytes: number } };
    const reply = await admin().command({ backupVerify: good }, { promoteLongs: false, promoteValues: false });
    assert.equal(Number(reply['ok']), 1);
    assert.equal(String(reply['state']), 'complete');
    assert.equal(String(reply['backupId']), manifest.backupId);
    assert.ok(reply['files'] instanceof Int32);
    assert.equal(Number(reply['files']), manifest.totals.files);
    assert.ok(reply['bytes'] instanceof Long);
    assert.equal(Number(reply['bytes']), manifest.totals.bytes);
    assert.equal(Number(reply['bytesHashed']), manifest.totals.bytes);
    assert.deepEqual(reply['problems'], []);
    // Recorded for `hotbackup list`, as the CLI's verify is.
    assert.equal((await listed('good'))?.verified?.ok, true);
  });

  it('answers a corrupted backup with DataCorruptionDetected, naming the file', async () => {
    const bad = path.join(scratch.dir, 'corrupted');
    fs.cpSync(good, bad, { recursive: true });
    const collection = fs.readdirSync(bad).find((f) => f.startsWith('collection-')) as string;
    const fd = fs.openSync(path.join(bad, collection), 'r+');
    fs.writeSync(fd, Buffer.from([0xa5]), 0, 1, 200);
    fs.closeSync(fd);
    const err = await serverError(admin().command({ backupVerify: bad }));
    assert.equal(err.code, 301);
    assert.equal(err.codeName, 'DataCorruptionDetected');
    assert.match(err.message, new RegExp(`^${bad} is damaged: 1 corrupted \\(${collection}\\) of the \\d+ files`));
    const reply = err.errorResponse as Document;
    assert.equal(reply['state'], 'damaged');
    assert.deepEqual(
      (reply['problems'] as Document[]).map((p) => [p['problem'], p['file']]),
      [['corrupted', collection]],
    );
    // A copy of the verified backup carries its record, which says nothing of the copy; the verdict on the copy replaces it.
    assert.equal((await listed('corrupted'))?.verified?.ok, false);
  });

  it('answers a backup that failed with OperationIncomplete and the word failed', async () => {
    // A proxy of its own whose backups fail just before their manifest (src/failpoints.ts).
    const failing = await startProxy(server, ['--state-dir', path.join(scratch.dir, 'state-failing')], { HOTBACKUP_TEST_FAILPOINTS: 'failBeforeManifest' });
    const viaFailing = await MongoClient.connect(failing.uri);
    const dest = path.join(scratch.dir, 'failed');
    try {
      await assert.rejects(viaFailing.db('admin').command({ backupStart: dest }), /fail point failBeforeManifest/);
    } finally {
      await viaFailing.close();
      await failing.stop();
    }
    const err = await serverError(admin().command({ backupVerify: dest }));
    assert.equal(err.code, 77);
    assert.equal(err.codeName, 'OperationIncomplete');
    assert.equal(err.errorResponse['state'], 'failed');
    assert.match(err.message, /is not a complete backup: backup [0-9a-f-]{36} \(started [^)]+\) failed: fail point failBeforeManifest: the backup fails before its manifest is written\. It has no manifest/);
  });

  it('answers a backup stopped by backupAbort with OperationIncomplete and the word aborted', async () => {
    const dest = path.join(scratch.dir, 'aborted');
    await admin().command({ backupThrottle: '1MB' });
    let backupId: string;
    try {
      backupId = String((await admin().command({ backupStart: dest, async: true }))['backupId']);
      await untilCopying(admin());
      assert.equal((await admin().command({ backupAbort: 1 }))['state'], 'aborted');
    } finally {
      await admin().command({ backupThrottle: 0 });
    }
    const err = await serverError(admin().command({ backupVerify: dest }));
    assert.equal(err.code, 77);
    assert.equal(err.codeName, 'OperationIncomplete');
    assert.equal(err.errorResponse['state'], 'aborted');
    assert.equal(err.errorResponse['backupId'], backupId);
    assert.match(err.message, new RegExp(`^${dest} is not a complete backup: backup ${backupId} \\(started [^)]+\\) was aborted \\(killOp or backupAbort\\) at \\S+Z\\. It has no manifest`));
  });

  it('refuses a relative path and a bad rate with BadValue', async () => {
    const relative = await serverError(admin().command({ backupVerify: 'backups/x' }));
    assert.equal(relative.code, 2);
    assert.equal(relative.message, "backupVerify path must be absolute: 'backups/x'");
    const rate = await serverError(admin().command({ backupVerify: good, rate: 'quick' }));
    assert.equal(rate.code, 2);
    assert.equal(rate.message, "backupVerify option 'rate' must be a number");
    const elsewhere = await serverError(client.db('app').command({ backupVerify: good }));
    assert.equal(elsewhere.code, 13);
  });

  it('refuses a field it does not know, as mongod does, rather than verify at the proxy throttle', async () => {
    const misspelt = await serverError(admin().command({ backupVerify: good, rte: '1MB' }));
    assert.equal(misspelt.code, 40415);
    assert.equal(misspelt.message, "BSON field 'backupVerify.rte' is an unknown field.");
    // The generic fields a driver or a shell adds are no such field.
    const reply = await admin().command({ backupVerify: good, rate: '1GB', comment: 'nightly check', maxTimeMS: 600_000 });
    assert.equal(reply['state'], 'complete');
  });

  it('keeps forwarding while a throttled verify runs, and runs one verify at a time', async () => {
    const other = await MongoClient.connect(proxy.uri);
    try {
      // About 100 MiB (the journal file) at 8 MiB/s: the verify runs for seconds.
      let settled = false;
      const verifying = other
        .db('admin')
        .command({ backupVerify: good, rate: '8MB' })
        .finally(() => (settled = true));
      const second = await until(async () => {
        const err = await admin().command({ backupVerify: good }).then(
          () => undefined,
          (e: unknown) => e,
        );
        return err instanceof MongoServerError && err.code === 117 && err;
      });
      assert.match(second.message, /^A backupVerify is already running \(of .*\/good\): wait for it to finish\.$/);
      const found = await client.db('app').collection('docs').countDocuments();
      await client.db('app').collection('docs').insertOne({ during: 'verify' });
      assert.equal(settled, false, 'the reads and writes were answered while the verify still ran');
      assert.equal(found, 2000);
      assert.equal((await verifying)['state'], 'complete');
    } finally {
      await other.close();
    }
  });
});
