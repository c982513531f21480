/**
 * `backupStart: "s3://…"` with `extendTo` on a replica set: the base files are uploaded,
 * the backup cursor extended, and the journal files it lists re-uploaded whole, each
 * replacing its earlier object in one step; the manifest (written last) lists their
 * extended copies, and the objects are exactly what it lists.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type Timestamp } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { assertS3MatchesManifest } from '../helpers/s3_readback.js';

const available = radosgwAvailable();

describe('backupStart to s3:// with extendTo', { skip: available.ok ? false : available.reason }, () => {
  let rgw: Radosgw;
  let set: RunningReplicaSet;
  let proxy: RunningProxy;
  let client: MongoClient;
  let s3: S3Client;

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    set = await startReplicaSet({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)', '--checkpoint-interval', '0'] });
    proxy = await startProxy(set.server, [], rgw.env());
    client = new MongoClient(proxy.uri);
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await set?.server.stop();
    set?.server.cleanup();
    s3?.destroy();
    await rgw?.stop();
  });

  it('re-uploads the journal files the extension lists, replacing their objects, and writes the manifest last', async () => {
    const bucket = await rgw.createBucket();
    const direct = await MongoClient.connect(set.uri);
    let target: Timestamp;
    try {
      // Enough journal for the extension to list: a 1 MB log file rolls every few dozen writes.
      let reply: Record<string, unknown> = {};
      for (let i = 0; i < 60; i++) {
        reply = await direct.db('app').command({ insert: 'seq', documents: [{ _id: i, pad: 'p'.repeat(32 * 1024) }], writeConcern: { w: 'majority', j: true } });
      }
      target = reply['operationTime'] as Timestamp;
    } finally {
      await direct.close();
    }
    const result = await client.db('admin').command({ backupStart: `s3://${bucket}/extended`, extendTo: target });
    assert.equal(result['ok'], 1);
    const manifest = await assertS3MatchesManifest(s3, { bucket, prefix: 'extended' });
    assert.deepEqual(manifest.extendedTo, { t: target.high >>> 0, i: target.low >>> 0 });
    const extended = proxy.logs.find((line) => line['msg'] === 'backup extended: copying the journal files it lists');
    assert.ok(extended !== undefined && Number(extended['files']) > 0, JSON.stringify(extended));
  });
});
