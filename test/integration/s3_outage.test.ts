/**
 * A backup to S3 when the S3 server dies mid-upload, and when the proxy does: the
 * backup fails at once naming S3, no manifest is written, and the multipart uploads
 * left under the prefix are aborted and the marker rewritten once S3 answers again
 * (in the background by the same proxy, or by the next one's recovery, however many
 * starts that takes).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { until } from '../helpers/poll.js';
import { objectsUnder, s3Marker, uploadsUnder } from '../helpers/s3_readback.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';
import { ErrorCodes } from '../../src/errors.js';

const MiB = 1024 * 1024;
const available = radosgwAvailable();

describe('a backup to s3:// when S3 or the proxy dies mid-upload', { skip: available.ok ? false : available.reason }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  let s3: S3Client;

  /** A proxy that retries its S3 cleanup every 200 ms, and gives up on a dead server after two attempts per request. */
  const proxyEnv = () => ({ ...rgw.env(), HOTBACKUP_TEST_S3_CLEANUP_BACKOFF_MS: '200', AWS_MAX_ATTEMPTS: '2' });

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
    const client = new MongoClient(server.uri);
    try {
      // Files of ~20 MiB: uploaded in multipart parts, several at once.
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

  /** Starts a throttled backup to `url` and resolves once its first bytes are uploaded, with the (synchronous) backupStart's reply. */
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

  it('radosgw killed: fails at once with HostUnreachable naming S3; the cleanup finishes once radosgw is back', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'outage' };
    const proxy = await startProxy(server, [], proxyEnv());
    const client = new MongoClient(proxy.uri);
    try {
      await client.connect();
      const admin = client.db('admin');
      const { reply } = await uploading(admin, `s3://${bucket}/outage`);
      await rgw.stopGateway();
      await assert.rejects(reply, (err: MongoServerError) => {
        assert.equal(err.code, ErrorCodes.HostUnreachable, err.message);
        assert.match(err.message, /^S3 /);
        assert.match(err.message, /could not be reached/);
        return true;
      });
      const pending = ((await admin.command({ backupStatus: 1 }))['last'] as Document)['cleanup'] as Document | undefined;
      assert.equal(pending?.['state'], 'pending', JSON.stringify(pending));
      await rgw.startGateway();
      const last = await until(async () => {
        const status = (await admin.command({ backupStatus: 1 }))['last'] as Document;
        return (status['cleanup'] as Document | undefined)?.['state'] === 'done' ? status : undefined;
      }, 200);
      assert.equal(last['state'], 'failed');
      assert.deepEqual(await uploadsUnder(s3, location), [], 'no multipart upload is left');
      const marker = await s3Marker(s3, location);
      assert.equal(marker?.state, 'failed');
      assert.equal(marker?.error?.code, ErrorCodes.HostUnreachable);
      const keys = (await objectsUnder(s3, location)).map((object) => object.key);
      assert.ok(!keys.includes(`outage/${MANIFEST_FILENAME}`), 'no manifest object');
      assert.ok(proxy.logs.some((line) => line['msg'] === 'backup cleanup done'), 'the log says the cleanup is done');
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  it('proxy killed: its next start aborts the uploads under the prefix and marks the backup interrupted', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'killed' };
    const proxy = await startProxy(server, [], proxyEnv());
    const client = new MongoClient(proxy.uri);
    let next: RunningProxy | undefined;
    try {
      await client.connect();
      await uploading(client.db('admin'), `s3://${bucket}/killed`);
      await proxy.kill9();
      assert.ok((await uploadsUnder(s3, location)).length > 0, 'the dead proxy left multipart uploads');
      assert.equal((await s3Marker(s3, location))?.state, 'running');
      next = await startProxy(server, [], proxyEnv());
      const marker = await until(async () => {
        const read = await s3Marker(s3, location);
        return read?.state === 'interrupted' ? read : undefined;
      }, 200);
      assert.equal(marker.error?.code, ErrorCodes.InterruptedAtShutdown);
      assert.deepEqual(await uploadsUnder(s3, location), [], 'no multipart upload is left');
      const keys = (await objectsUnder(s3, location)).map((object) => object.key);
      assert.ok(!keys.includes(`killed/${MANIFEST_FILENAME}`), 'no manifest object');
    } finally {
      await client.close();
      await proxy.kill9();
      await next?.stop();
    }
  });

  it('proxy stopped (SIGTERM) mid-upload: the backup is cleaned up before it exits, its marker says interrupted', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'stopped' };
    const proxy = await startProxy(server, [], proxyEnv());
    const client = new MongoClient(proxy.uri);
    try {
      await client.connect();
      await uploading(client.db('admin'), `s3://${bucket}/stopped`);
      await client.close();
      assert.equal(await proxy.stop(), 0);
      const marker = await s3Marker(s3, location);
      assert.equal(marker?.state, 'interrupted');
      assert.equal(marker?.error?.code, ErrorCodes.InterruptedAtShutdown);
      assert.deepEqual(await uploadsUnder(s3, location), [], 'no multipart upload is left');
    } finally {
      await client.close();
      await proxy.kill9();
    }
  });

  // A cleanup still owed when the proxy restarts is not forgotten: it is kept in the
  // proxy's state dir (s3_cleanup_records.ts) until it succeeds, however many starts that takes.
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
