/**
 * The S3 cleanups a backup owed when its proxy stopped (s3_recovery.ts, with the records
 * of s3_cleanup_records.ts) against a real radosgw: the uploads aborted, the marker
 * rewritten with what the record says, the record removed only then; a marker that could
 * not be read is no reason to count the cleanup done: it is retried, the record kept; and
 * a start that cannot reach S3 leaves the record to the next.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { objectsUnder, s3Marker, uploadsUnder } from '../helpers/s3_readback.js';
import { S3Recovery } from '../../src/s3/s3_recovery.js';
import { S3CleanupRecords } from '../../src/s3/s3_cleanup_records.js';
import { s3SettingsFromEnvironment } from '../../src/s3/s3_client.js';
import { writeS3Manifest, writeS3Marker } from '../../src/s3/s3_backup_records.js';
import { putObjectBytes } from '../../src/s3/s3_objects.js';
import { claimName } from '../../src/s3/s3_target.js';
import { manifestFiles } from '../../src/backup/manifest.js';
import { runningMarker } from '../../src/backup/backup_marker.js';
import { createLogger } from '../../src/log.js';

const available = radosgwAvailable();

describe('S3Recovery against radosgw', { skip: available.ok ? false : available.reason }, () => {
  let rgw: Radosgw;
  let s3: S3Client;
  const scratch = tempDir('s3-recovery');
  /** While set, the forwarder answers every GET of a marker with 500. */
  let markerUnreadable = false;

  const forwarder = http.createServer((req, res) => {
    if (markerUnreadable && req.method === 'GET' && (req.url ?? '').split('?')[0]?.endsWith('/hotbackup-incomplete.json')) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>InternalError</Code></Error>');
      return;
    }
    const upstreamUrl = new URL(rgw.endpoint);
    const upstream = http.request({ host: upstreamUrl.hostname, port: upstreamUrl.port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 500, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    Object.assign(process.env, rgw.env());
    forwarder.listen(0, '127.0.0.1');
    await new Promise((resolve) => forwarder.once('listening', resolve));
  });

  after(async () => {
    await new Promise((resolve) => forwarder.close(resolve));
    s3?.destroy();
    await rgw?.stop();
    scratch.remove();
  });

  it('a marker that cannot be read is retried, the record kept, until the marker is rewritten; only then is the record removed', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'owed' };
    const backupId = randomUUID();
    await writeS3Marker(s3, location, runningMarker({ backupId, startedAt: new Date() }));
    await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'owed/collection-0.wt' }));
    const records = new S3CleanupRecords(scratch.dir);
    await records.write({ backupId, destination: `s3://${bucket}/owed` });
    const { port } = forwarder.address() as AddressInfo;
    const settings = s3SettingsFromEnvironment({ ...rgw.env(), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1' });
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ name: 's3-recovery-test', format: 'json', destination: new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()) }) });
    const recovery = new S3Recovery({ settings, records, backoff: { firstMs: 50, maxMs: 50 }, log });
    try {
      markerUnreadable = true;
      await recovery.resume();
      assert.ok(!lines.some((l) => l['msg'] === 'recovery: S3 cleaned up after the interrupted backup'), 'counted done without knowing whose the marker is');
      assert.ok(lines.some((l) => String(l['msg']).startsWith('recovery: S3 could not be cleaned up')));
      assert.equal((await records.list(() => undefined)).length, 1, 'the record is kept while the cleanup is owed');
      assert.equal((await s3Marker(s3, location))?.state, 'running');
      markerUnreadable = false;
      await until(async () => ((await records.list(() => undefined)).length === 0 ? true : undefined));
      assert.equal((await s3Marker(s3, location))?.state, 'interrupted');
      assert.deepEqual(await uploadsUnder(s3, location), []);
      assert.ok(!fs.existsSync(path.join(records.dir, `${backupId}.json`)));
    } finally {
      markerUnreadable = false;
      await recovery.close();
    }
  });

  it('a cleanup that cannot reach S3 is kept through a close, and done by the next start that can', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'later' };
    const backupId = randomUUID();
    await writeS3Marker(s3, location, runningMarker({ backupId, startedAt: new Date() }));
    await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'later/WiredTiger.wt' }));
    const records = new S3CleanupRecords(path.join(scratch.dir, 'later'));
    await records.write({ backupId, destination: `s3://${bucket}/later` });
    const log = createLogger({ name: 's3-recovery-test', format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    // Nothing listens on port 9: S3 is down (or the environment points nowhere) at this start.
    const down = new S3Recovery({ settings: s3SettingsFromEnvironment({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' }), records, backoff: { firstMs: 50, maxMs: 50 }, log });
    await down.resume();
    await down.close();
    assert.deepEqual((await records.list(() => undefined)).map((r) => r.backupId), [backupId], 'the cleanup owed is forgotten by a close');
    assert.equal((await uploadsUnder(s3, location)).length, 1);
    const up = new S3Recovery({ settings: s3SettingsFromEnvironment(rgw.env()), records, log });
    try {
      await up.resume();
      assert.deepEqual(await records.list(() => undefined), []);
      assert.deepEqual(await uploadsUnder(s3, location), []);
      assert.equal((await s3Marker(s3, location))?.state, 'interrupted');
    } finally {
      await up.close();
    }
  });

  it('a record whose begin never owned the prefix removes only its claim: the uploads and marker of whoever owns it now stay', async () => {
    const bucket = await rgw.createBucket();
    const mine = randomUUID();
    const theirs = randomUUID();
    // Taken: another backup's marker and upload; unowned: no marker (ours was never written), a retry's claim and upload.
    await writeS3Marker(s3, { bucket, prefix: 'taken' }, runningMarker({ backupId: theirs, startedAt: new Date() }));
    for (const prefix of ['taken', 'unowned']) {
      await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${prefix}/collection-0.wt` }));
      await putObjectBytes(s3, bucket, `${prefix}/${claimName(mine)}`, Buffer.alloc(0));
    }
    await putObjectBytes(s3, bucket, `unowned/${claimName(theirs)}`, Buffer.alloc(0));
    const log = createLogger({ name: 's3-recovery-test', format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    for (const prefix of ['taken', 'unowned']) {
      const records = new S3CleanupRecords(path.join(scratch.dir, `not-ours-${prefix}`));
      await records.write({ backupId: mine, destination: `s3://${bucket}/${prefix}` });
      const recovery = new S3Recovery({ settings: s3SettingsFromEnvironment(rgw.env()), records, log });
      try {
        await recovery.resume();
        assert.deepEqual(await records.list(() => undefined), []);
      } finally {
        await recovery.close();
      }
      const location = { bucket, prefix };
      assert.equal((await uploadsUnder(s3, location)).length, 1, `${prefix}: another backup's upload was aborted`);
      assert.ok(!(await objectsUnder(s3, location)).some((o) => o.key.endsWith(claimName(mine))), `${prefix}: our claim is left`);
    }
    const marker = await s3Marker(s3, { bucket, prefix: 'taken' });
    assert.equal(marker?.backupId, theirs);
    assert.equal(marker?.state, 'running', 'another backup\'s marker was rewritten');
    assert.equal(await s3Marker(s3, { bucket, prefix: 'unowned' }), undefined);
  });

  it('a record of a backup whose manifest was written has its marker deleted, not rewritten "interrupted"', async () => {
    const bucket = await rgw.createBucket();
    const location = { bucket, prefix: 'completed' };
    const backupId = randomUUID();
    const now = new Date();
    await writeS3Marker(s3, location, runningMarker({ backupId, startedAt: now }));
    await putObjectBytes(s3, bucket, 'completed/x.wt', Buffer.from('x'));
    await writeS3Manifest(s3, location, {
      format: 'mongo-hotbackup-proxy',
      version: 2,
      backupId,
      strategy: 'backupCursor',
      source: { dbpath: '/data/db', host: '127.0.0.1:27017', serverVersion: '7.0.14' },
      startedAt: now.toISOString(),
      finishedAt: now.toISOString(),
      durationMs: 0,
      throttleBytesPerSec: 0,
      ...manifestFiles([{ relativePath: 'x.wt', size: 1, checksum: 'a'.repeat(16) }]),
    });
    const records = new S3CleanupRecords(path.join(scratch.dir, 'completed'));
    await records.write({ backupId, destination: `s3://${bucket}/completed` });
    const log = createLogger({ name: 's3-recovery-test', format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    const recovery = new S3Recovery({ settings: s3SettingsFromEnvironment(rgw.env()), records, log });
    try {
      await recovery.resume();
    } finally {
      await recovery.close();
    }
    assert.deepEqual(await records.list(() => undefined), []);
    assert.equal(await s3Marker(s3, location), undefined, 'a marker beside the complete backup\'s manifest');
    assert.deepEqual((await objectsUnder(s3, location)).map((o) => o.key).sort(), ['completed/hotbackup-manifest.json', 'completed/x.wt']);
  });
});
