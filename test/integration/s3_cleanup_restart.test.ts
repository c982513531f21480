/**
 * An S3 cleanup still owed when the proxy restarts is not forgotten: a backup to S3 that
 * failed or was interrupted while radosgw was down leaves multipart uploads (billing for
 * their parts) and a marker saying `running`; the proxy keeps the cleanup in its state
 * dir (s3_cleanup_records.ts) until it succeeds, however many starts that takes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MongoClient, type Document } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { until } from '../helpers/poll.js';
import { s3Marker, uploadsUnder } from '../helpers/s3_readback.js';

const MiB = 1024 * 1024;
const available = radosgwAvailable();

describe('an S3 cleanup pending across proxy restarts', { skip: available.ok ? false : available.reason }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  let s3: S3Client;
  const proxyEnv = () => ({ ...rgw.env(), HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS: '200', AWS_MAX_ATTEMPTS: '2' });

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
    const client = new MongoClient(server.uri);
    try {
      for (const name of ['a', 'b']) {
        await client.db('app').collection(name).insertMany(Array.from({ length: 64 }, (_, i) => ({ i, pad: randomBytes(240 * 1024).toString('base64') })));
      }
      await client.db('admin').command({ fsync: 1 });
    } finally {
      await client.close();
    }
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
    s3?.destroy();
    await rgw?.stop();
  });

  async function uploading(admin: ReturnType<MongoClient['db']>, url: string): Promise<{ reply: Promise<Document> }> {
    await admin.command({ backupThrottle: 4 * MiB });
    const reply = admin.command({ backupStart: url });
    reply.catch(() => undefined);
    await until(async () => {
      const status = await admin.command({ backupStatus: 1 });
      return (status['inProgress'] === true && Number(status['bytesCopied']) > 2 * MiB) || undefined;
    });
    return { reply };
  }

  it('a backup failed with radosgw down, its cleanup pending; the proxy restarted once radosgw is back: the uploads are aborted and the marker says failed', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'restarted' };
    let proxy: RunningProxy | undefined = await startProxy(server, [], proxyEnv());
    let next: RunningProxy | undefined;
    try {
      const client = new MongoClient(proxy.uri);
      try {
        await client.connect();
        const admin = client.db('admin');
        const { reply } = await uploading(admin, `s3://${bucket}/restarted`);
        await rgw.stopGateway();
        await assert.rejects(reply);
        const pending = ((await admin.command({ backupStatus: 1 }))['last'] as Document)['cleanup'] as Document | undefined;
        assert.equal(pending?.['state'], 'pending', JSON.stringify(pending));
      } finally {
        await client.close();
      }
      // An ordinary restart (an upgrade, a config change) while S3 is still down.
      await proxy.stop();
      proxy = undefined;
      await rgw.startGateway();
      next = await startProxy(server, [], proxyEnv());
      // The cleanups owed have been tried once when the proxy listens.
      assert.deepEqual(await uploadsUnder(s3, location), [], `multipart uploads are still under s3://${bucket}/restarted`);
      assert.equal((await s3Marker(s3, location))?.state, 'failed', 'the marker says what happened to the backup');
    } finally {
      await proxy?.kill9();
      await next?.stop();
    }
  });

  it('a proxy killed mid-upload; the next start finds radosgw down; the third, with radosgw back, aborts the uploads and marks the backup interrupted', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'twice' };
    const first = await startProxy(server, [], proxyEnv());
    let second: RunningProxy | undefined;
    let third: RunningProxy | undefined;
    try {
      const client = new MongoClient(first.uri);
      try {
        await client.connect();
        await uploading(client.db('admin'), `s3://${bucket}/twice`);
      } finally {
        await client.close().catch(() => undefined);
      }
      await first.kill9();
      assert.ok((await uploadsUnder(s3, location)).length > 0, 'the dead proxy left multipart uploads');
      await rgw.stopGateway();
      second = await startProxy(server, [], proxyEnv());
      await until(() => second?.logs.some((line) => String(line['msg']).startsWith('recovery: S3 could not be cleaned up')) || undefined, 200);
      await second.stop();
      second = undefined;
      await rgw.startGateway();
      third = await startProxy(server, [], proxyEnv());
      // The cleanups owed have been tried once when the proxy listens.
      assert.deepEqual(await uploadsUnder(s3, location), [], `multipart uploads are still under s3://${bucket}/twice after three starts`);
      assert.equal((await s3Marker(s3, location))?.state, 'interrupted', 'the marker says what happened to the backup');
    } finally {
      await first.kill9();
      await second?.kill9();
      await third?.stop();
    }
  });
});
