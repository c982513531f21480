/**
 * backupStart to `s3://bucket/prefix` through the proxy, against a real radosgw: the
 * objects are the manifest's files, the manifest is written last, backupStatus reads
 * as for a directory, the throttle holds, an abort leaves nothing billing, bad input is
 * refused before anything is written, and an incremental backup copies unchanged files
 * server-side.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { digestOf, openAndDigest } from '../helpers/s3_backup_fixture.js';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { until } from '../helpers/poll.js';
import { tempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/cli_run.js';
import { assertS3MatchesManifest, objectsUnder, s3Manifest, s3Marker, uploadsUnder } from '../helpers/s3_readback.js';
import { putObjectBytes } from '../../src/s3/s3_objects.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';
import { ErrorCodes } from '../../src/errors.js';

const MiB = 1024 * 1024;
const available = radosgwAvailable();

describe('backupStart to s3://', { skip: available.ok ? false : available.reason }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  let s3: S3Client;
  const admin = () => client.db('admin');

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    // Journal files of 2 MB, not mongod's 100 MB: the collections are then most of each
    // backup, as in a real database, and an incremental backup's savings show.
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
    proxy = await startProxy(server, [], rgw.env());
    client = new MongoClient(proxy.uri);
    await client.connect();
    // Four collections of ~10 MiB that do not compress: files that finish one after another.
    for (const name of ['a', 'b', 'c', 'd']) {
      await client.db('app').collection(name).insertMany(Array.from({ length: 32 }, (_, i) => ({ i, pad: randomBytes(240 * 1024).toString('base64') })));
    }
    await admin().command({ fsync: 1 });
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    s3?.destroy();
    await rgw?.stop();
  });

  it('uploads every file, then the manifest last, and reads back as the manifest says', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'nightly/first' };
    const reply = await admin().command({ backupStart: `s3://${bucket}/nightly/first` });
    assert.equal(reply['ok'], 1);
    const manifest = await assertS3MatchesManifest(s3, location);
    assert.ok(manifest.files.length > 3, `${manifest.files.length} files`);
    assert.ok(manifest.totals.bytes > 30 * MiB, `${manifest.totals.bytes} bytes`);
    assert.deepEqual(await uploadsUnder(s3, location), []);
    const status = await admin().command({ backupStatus: 1 });
    const last = status['last'] as Document;
    assert.equal(last['state'], 'complete');
    assert.equal(last['destination'], `s3://${bucket}/nightly/first`);
    assert.equal(Number(last['bytes']), manifest.totals.bytes);
    assert.equal(last['files'], manifest.files.length);
    assert.equal(status['percent'], 100);
    // And it verifies, by its URL, through the proxy.
    const verdict = await admin().command({ backupVerify: `s3://${bucket}/nightly/first` });
    assert.equal(verdict['state'], 'complete');
    assert.equal(Number(verdict['files']), manifest.files.length);
    // And it restores (hotbackup restore s3://…) into a dbpath the dev server opens with every document.
    const scratch = tempDir('s3-restore');
    try {
      const restored = path.join(scratch.dir, 'db');
      const restore = await runCli(['restore', `s3://${bucket}/nightly/first`, '--to', restored], rgw.env());
      assert.equal(restore.code, 0, restore.stderr);
      // Every document, by content: the count and an XXH3 of each collection's BSON in _id order.
      const [original, back] = [await digestOf(server.uri), await openAndDigest(restored)];
      assert.deepEqual(Object.keys(back).sort(), ['app.a', 'app.b', 'app.c', 'app.d']);
      assert.deepEqual(back, original);
      assert.ok(Object.values(back).every(({ count }) => count === 32));
    } finally {
      scratch.remove();
    }
  });

  it('holds the throttle, and backupStatus shows bytes, files and percent climbing', async (t) => {
    const bucket = await rgw.createBucket();
    const rate = 8 * MiB;
    await admin().command({ backupThrottle: rate });
    try {
      await admin().command({ backupStart: `s3://${bucket}/throttled`, async: true });
      const seen: Array<{ bytes: number; files: number; percent: number }> = [];
      const done = await until(async () => {
        const status = await admin().command({ backupStatus: 1 });
        if (status['inProgress'] === true && status['phase'] === 'copying') {
          seen.push({ bytes: Number(status['bytesCopied']), files: Number(status['filesCopied']), percent: Number(status['percent']) });
        }
        return status['inProgress'] === true ? undefined : status;
      }, 100);
      const last = done['last'] as Document;
      assert.equal(last['state'], 'complete', String(last['errmsg']));
      const manifest = await s3Manifest(s3, { bucket, prefix: 'throttled' });
      const bytes = manifest.totals.bytes;
      t.diagnostic(`${(bytes / MiB).toFixed(1)} MiB at ${rate / MiB} MiB/s in ${(manifest.durationMs / 1000).toFixed(1)} s; ${seen.length} status samples`);
      // Wide margin: a busy machine only makes it slower.
      assert.ok(manifest.durationMs >= (0.5 * 1000 * bytes) / rate, `${bytes} bytes took ${manifest.durationMs} ms at ${rate} bytes/s`);
      assert.equal(manifest.throttleBytesPerSec, rate);
      for (const field of ['bytes', 'files', 'percent'] as const) {
        let rises = 0;
        for (let i = 1; i < seen.length; i++) {
          const [before, now] = [seen[i - 1]?.[field] ?? 0, seen[i]?.[field] ?? 0];
          assert.ok(now >= before, `${field} never goes back: ${before} then ${now}`);
          if (now > before) rises++;
        }
        assert.ok(rises >= 3, `${field} rose ${rises} times over ${seen.length} samples: ${JSON.stringify(seen.map((s) => s[field]))}`);
      }
    } finally {
      await admin().command({ backupThrottle: 0 });
    }
  });

  it('backupAbort mid-upload: aborted, no manifest, the marker says so, no multipart upload left', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'aborted' };
    await admin().command({ backupThrottle: 8 * MiB });
    try {
      await admin().command({ backupStart: `s3://${bucket}/aborted`, async: true });
      await until(async () => Number((await admin().command({ backupStatus: 1 }))['bytesCopied']) > 0 || undefined);
      const reply = await admin().command({ backupAbort: 1 });
      assert.equal(reply['state'], 'aborted');
    } finally {
      await admin().command({ backupThrottle: 0 });
    }
    const last = (await admin().command({ backupStatus: 1 }))['last'] as Document;
    assert.equal(last['state'], 'aborted');
    assert.equal(last['code'], ErrorCodes.Interrupted);
    const keys = (await objectsUnder(s3, location)).map((object) => object.key);
    assert.ok(!keys.includes(`aborted/${MANIFEST_FILENAME}`), 'no manifest object');
    const marker = await s3Marker(s3, location);
    assert.equal(marker?.state, 'aborted');
    assert.equal(marker?.error?.code, ErrorCodes.Interrupted);
    assert.deepEqual(await uploadsUnder(s3, location), []);
  });

  it('refuses a prefix that holds an object, or an unfinished multipart upload, with Percona\'s text, writing nothing', async () => {
    const bucket = await rgw.createBucket();
    await putObjectBytes(s3, bucket, 'taken/something.txt', Buffer.from('not a backup'));
    const before = await objectsUnder(s3, { bucket, prefix: '' });
    await assert.rejects(admin().command({ backupStart: `s3://${bucket}/taken` }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.equal(err.message, `Backup directory s3://${bucket}/taken is not empty`);
      return true;
    });
    await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'pending/WiredTiger.wt' }));
    await assert.rejects(admin().command({ backupStart: `s3://${bucket}/pending/` }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.match(err.message, new RegExp(`^Backup directory s3://${bucket}/pending is not empty: it has 1 unfinished multipart upload`));
      return true;
    });
    assert.deepEqual(await objectsUnder(s3, { bucket, prefix: '' }), before, 'nothing was written');
    const status = await admin().command({ backupStatus: 1 });
    assert.equal(status['inProgress'], false);
  });

  it('names S3\'s code for a bucket that does not exist, and refuses a malformed URL', async () => {
    await assert.rejects(admin().command({ backupStart: 's3://no-such-bucket-here/x' }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.NonExistentPath);
      assert.match(err.message, /NoSuchBucket/);
      assert.equal((err as unknown as { s3Code?: string }).s3Code ?? err.errorResponse['s3Code'], 'NoSuchBucket');
      return true;
    });
    await assert.rejects(admin().command({ backupStart: 's3://AKIDEXAMPLE:hunter2secret@bucket/x' }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.match(err.message, /an s3:\/\/ URL carries no credentials/);
      assert.ok(!err.message.includes('hunter2secret'), err.message);
      return true;
    });
    assert.ok(!JSON.stringify(await admin().command({ backupStatus: 1 })).includes('hunter2secret'), 'nor backupStatus');
    assert.ok(!JSON.stringify(proxy.logs).includes('hunter2secret'), 'nor the log');
    await assert.rejects(admin().command({ backupStart: 's3://Bad_Bucket/x' }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.match(err.message, /is not a valid S3 location/);
      return true;
    });
  });

  it('refuses wrong credentials naming S3\'s code, and never shows the secret', async () => {
    const bucket = await rgw.createBucket();
    const secret = `WrongSecret${randomBytes(12).toString('hex')}`;
    const stateDir = tempDir('s3-wrong-keys');
    const wrong = await startProxy(server, ['--state-dir', stateDir.dir], { ...rgw.env(), AWS_SECRET_ACCESS_KEY: secret });
    const other = new MongoClient(wrong.uri);
    try {
      await other.connect();
      const otherAdmin = other.db('admin');
      await assert.rejects(otherAdmin.command({ backupStart: `s3://${bucket}/denied` }), (err: MongoServerError) => {
        assert.equal(err.code, ErrorCodes.OperationFailed);
        assert.match(err.message, /SignatureDoesNotMatch|InvalidAccessKeyId/);
        assert.match(String(err.errorResponse['s3Code']), /^(SignatureDoesNotMatch|InvalidAccessKeyId)$/);
        assert.ok(!err.message.includes(secret), 'no secret in the errmsg');
        return true;
      });
      const status = await otherAdmin.command({ backupStatus: 1 });
      assert.ok(!JSON.stringify(status).includes(secret), 'no secret in backupStatus');
    } finally {
      await other.close();
      await wrong.stop();
      stateDir.remove();
    }
    assert.ok(!JSON.stringify(wrong.logs).includes(secret) && !wrong.stderr().includes(secret), 'no secret in the log');
    assert.deepEqual(await objectsUnder(s3, { bucket, prefix: '' }), []);
  });

  it('refuses a bucket the credentials may not write with AccessDenied named', async () => {
    const bucket = await rgw.createBucket();
    const stranger = await rgw.addUser();
    const stateDir = tempDir('s3-stranger');
    const other = await startProxy(server, ['--state-dir', stateDir.dir], { ...rgw.env(), AWS_ACCESS_KEY_ID: stranger.accessKeyId, AWS_SECRET_ACCESS_KEY: stranger.secretAccessKey });
    const otherClient = new MongoClient(other.uri);
    try {
      await assert.rejects(otherClient.db('admin').command({ backupStart: `s3://${bucket}/theirs` }), (err: MongoServerError) => {
        assert.equal(err.code, ErrorCodes.OperationFailed);
        assert.match(err.message, /^S3 check of s3:\/\/\S+ failed: AccessDenied \(HTTP 403\): the credentials in use may not do this/);
        assert.equal(err.errorResponse['s3Code'], 'AccessDenied');
        assert.ok(!err.message.includes(stranger.secretAccessKey));
        return true;
      });
    } finally {
      await otherClient.close();
      await other.stop();
      stateDir.remove();
    }
    assert.deepEqual(await objectsUnder(s3, { bucket, prefix: '' }), []);
  });

  it('an incremental backup on S3 copies unchanged files server-side', async (t) => {
    const bucket = await rgw.createBucket();
    await admin().command({ backupStart: `s3://${bucket}/full` });
    // One collection changes; the others are taken from the base.
    await client.db('app').collection('a').insertOne({ changed: true });
    await admin().command({ fsync: 1 });
    await admin().command({ backupStart: `s3://${bucket}/incr`, incrementalBase: `s3://${bucket}/full` });
    const location = { bucket, prefix: 'incr' };
    const manifest = await assertS3MatchesManifest(s3, location);
    assert.equal(manifest.base?.path, `s3://${bucket}/full`);
    const reused = manifest.files.filter((file) => file.reusedFrom !== undefined);
    assert.ok(reused.length >= 3, `${reused.length} files reused`);
    for (const file of reused) assert.equal(file.reusedFrom?.method, 'serverCopy', file.path);
    const last = (await admin().command({ backupStatus: 1 }))['last'] as Document;
    const uploaded = Number(last['bytes']);
    const reusedBytes = Number(last['bytesReused']);
    t.diagnostic(`uploaded ${(uploaded / MiB).toFixed(1)} MiB, copied server-side ${(reusedBytes / MiB).toFixed(1)} MiB (${reused.length} files)`);
    assert.equal(uploaded + reusedBytes, manifest.totals.bytes);
    assert.ok(uploaded < manifest.totals.bytes / 2, `uploaded ${uploaded} of ${manifest.totals.bytes} bytes, ${reusedBytes} copied server-side`);
  });

  it('refuses a local base for an S3 destination, and an S3 base for a local one', async () => {
    const bucket = await rgw.createBucket();
    await assert.rejects(admin().command({ backupStart: `s3://${bucket}/x`, incrementalBase: '/tmp/some-backup' }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.match(err.message, /the destination is on S3 and the base is a local directory/);
      return true;
    });
    await assert.rejects(admin().command({ backupStart: '/tmp/hotbackup-never-made', incrementalBase: `s3://${bucket}/full` }), (err: MongoServerError) => {
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.match(err.message, /the destination is a local directory and the base is on S3/);
      return true;
    });
    assert.deepEqual(await objectsUnder(s3, { bucket, prefix: '' }), []);
  });

  it('serve --backup-root s3://…: destinations below it only, local ones refused; a local root refuses s3://', async () => {
    const bucket = await rgw.createBucket();
    const states = tempDir('s3-roots');
    const localRoot = tempDir('s3-local-root');
    const s3Rooted = await startProxy(server, ['--state-dir', `${states.dir}/a`, '--backup-root', `s3://${bucket}/root`], rgw.env());
    const localRooted = await startProxy(server, ['--state-dir', `${states.dir}/b`, '--backup-root', localRoot.dir], rgw.env());
    const [toS3, toLocal] = [new MongoClient(s3Rooted.uri), new MongoClient(localRooted.uri)];
    try {
      const refused = (pattern: RegExp) => (err: MongoServerError) => {
        assert.equal(err.code, ErrorCodes.BadValue);
        assert.match(err.message, pattern);
        return true;
      };
      const s3Admin = toS3.db('admin');
      await assert.rejects(s3Admin.command({ backupStart: `${localRoot.dir}/x` }), refused(new RegExp(`is refused: the proxy's --backup-root is s3://${bucket}/root, so backups go only to S3 below it`)));
      await assert.rejects(s3Admin.command({ backupStart: `s3://${bucket}/elsewhere` }), refused(new RegExp(`^Backup destination s3://${bucket}/elsewhere must lie under the proxy's --backup-root s3://${bucket}/root$`)));
      await assert.rejects(s3Admin.command({ backupStart: `s3://${bucket}/root` }), refused(/must lie under/));
      await assert.rejects(s3Admin.command({ backupVerify: `${localRoot.dir}/x` }), refused(/is refused: this proxy's --backup-root is s3:\/\/.*, so its backups are on S3: verify them by their s3:\/\/ URL/));
      assert.equal((await s3Admin.command({ backupStart: `s3://${bucket}/root/first` }))['ok'], 1);
      await assertS3MatchesManifest(s3, { bucket, prefix: 'root/first' });
      await assert.rejects(
        toLocal.db('admin').command({ backupStart: `s3://${bucket}/root/second` }),
        refused(new RegExp(`is refused: the proxy's --backup-root is the local directory ${localRoot.dir}, so backups go only there; start the proxy with --backup-root s3://`)),
      );
    } finally {
      await toS3.close();
      await toLocal.close();
      await s3Rooted.stop();
      await localRooted.stop();
      states.remove();
      localRoot.remove();
    }
    assert.deepEqual((await objectsUnder(s3, { bucket, prefix: '' })).filter((object) => !object.key.startsWith('root/first/')), []);
  });
});
