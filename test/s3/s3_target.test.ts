/**
 * A backup's writes to an S3 prefix (s3_target.ts) against a real radosgw, behind a
 * forwarding HTTP proxy that can lose one reply and counts the TCP connections:
 * - a CreateMultipartUpload whose reply was lost (the SDK retries it, creating a second
 *   upload) leaves no orphan upload under a backup that completes;
 * - a CompleteMultipartUpload whose reply was lost is retried and the file completes;
 * - a copy thread keeps its connections alive: not one per part;
 * - two backups begun at once in one empty prefix: one goes on, the other is refused with
 *   Percona's "is not empty" and leaves nothing behind; the marker is written only if
 *   there is none, where the server honours If-None-Match;
 * - a destination inside another backup's prefix is refused;
 * - a manifest is not written when the marker is no longer this backup's;
 * - a source file that cannot be read fails as a local I/O error, with its errno.
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
import { objectsUnder, s3Marker, uploadsUnder } from '../helpers/s3_readback.js';
import { claimName, S3Target } from '../../src/s3/s3_target.js';
import { S3CleanupRecords } from '../../src/s3/s3_cleanup_records.js';
import { failureOf } from '../../src/backup/engine_status.js';
import { S3Targets } from '../../src/s3/s3_targets.js';
import { uploadFiles } from '../../src/s3/upload_files.js';
import { putObjectBytes } from '../../src/s3/s3_objects.js';
import { createS3Client, s3SettingsFromEnvironment, type S3Settings } from '../../src/s3/s3_client.js';
import { createS3Marker, writeS3Marker } from '../../src/s3/s3_backup_records.js';
import type { S3Location } from '../../src/s3/s3_location.js';
import { runningMarker } from '../../src/backup/backup_marker.js';
import { manifestFiles, type Manifest } from '../../src/backup/manifest.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import { createLogger } from '../../src/log.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;
const MiB = 1024 * 1024;
const quiet = () => createLogger({ name: 's3-target-test', format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const copyOptions = () => ({ limiter: new TokenBucket(0), concurrency: 1, progress: new ProgressCounters(), signal: new AbortController().signal });

function targetFor(location: S3Location, settings: S3Settings, client: S3Client, closing: AbortSignal, backupId: string = randomUUID(), records?: S3CleanupRecords): S3Target {
  return new S3Target({ location, settings, client, backup: { backupId, startedAt: new Date() }, backoff: { firstMs: 100, maxMs: 100 }, closing, records, log: quiet() });
}

function manifestOf(backupId: string, file: { relativePath: string; size: number }): Manifest {
  const now = new Date().toISOString();
  return {
    format: 'mongo-hotbackup-proxy',
    version: 2,
    backupId,
    strategy: 'backupCursor',
    source: { dbpath: '/data/db', host: '127.0.0.1:27017', serverVersion: '7.0.14' },
    startedAt: now,
    finishedAt: now,
    durationMs: 0,
    throttleBytesPerSec: 0,
    ...manifestFiles([{ ...file, checksum: 'a'.repeat(16) }]),
  };
}

describe('S3Target against radosgw', { skip }, () => {
  let rgw: Radosgw;
  let s3: S3Client;
  const scratch = tempDir('s3-target');
  /** The reply the forwarder loses, once; undefined: none. */
  let lose: 'create' | 'complete' | undefined;
  let lost = 0;
  let connections = 0;
  /** While set, the forwarder answers every DeleteObjects with 500. */
  let deletesFail = false;

  const forwarder = http.createServer((req, res) => {
    const upstreamUrl = new URL(rgw.endpoint);
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const wanted = lose === 'create' ? query.has('uploads') : lose === 'complete' ? query.has('uploadId') : false;
    const dropThis = req.method === 'POST' && wanted;
    if (deletesFail && req.method === 'POST' && query.has('delete')) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>InternalError</Code></Error>');
      return;
    }
    const upstream = http.request({ host: upstreamUrl.hostname, port: upstreamUrl.port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      if (dropThis) {
        // radosgw did the request; the client never hears so, and its SDK retries.
        lose = undefined;
        lost += 1;
        reply.resume();
        reply.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(reply.statusCode ?? 500, reply.headers);
      reply.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  forwarder.on('connection', () => (connections += 1));

  /** Settings whose requests go through the forwarder. */
  const forwarded = (): S3Settings => {
    const { port } = forwarder.address() as AddressInfo;
    return s3SettingsFromEnvironment({ ...rgw.env(), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` });
  };

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    // The SDK's default chain reads the credentials from the environment, in this process and its copy threads.
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

  it('a backup that completes leaves no multipart upload under its prefix, even when a CreateMultipartUpload reply was lost', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'lost-create' };
    const settings = forwarded();
    const client = createS3Client(settings);
    const closing = new AbortController();
    const backupId = randomUUID();
    const target = targetFor(location, settings, client, closing.signal, backupId);
    const file = path.join(scratch.dir, 'big.wt');
    fs.writeFileSync(file, Buffer.alloc(12 * MiB, 3));
    try {
      await target.begin();
      lost = 0;
      lose = 'create';
      const result = await target.copy([{ path: file, relativePath: 'big.wt', size: 12 * MiB }], copyOptions());
      assert.equal(result.copied.length, 1);
      assert.equal(lost, 1, 'the first CreateMultipartUpload reply was lost, and the SDK retried it');
      await target.writeManifest(manifestOf(backupId, { relativePath: 'big.wt', size: 12 * MiB }));
      await target.complete();
      assert.deepEqual(await uploadsUnder(s3, location), [], 'an upload is left under a complete backup: its parts bill until someone aborts it');
      assert.equal(await s3Marker(s3, location), undefined);
    } finally {
      lose = undefined;
      closing.abort();
      client.destroy();
    }
  });

  it('a CompleteMultipartUpload whose reply was lost is retried, and the file completes', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'lost-complete' };
    const settings = forwarded();
    const client = createS3Client(settings);
    const closing = new AbortController();
    const target = targetFor(location, settings, client, closing.signal);
    const file = path.join(scratch.dir, 'big2.wt');
    fs.writeFileSync(file, Buffer.alloc(12 * MiB, 5));
    try {
      await target.begin();
      lost = 0;
      lose = 'complete';
      const result = await target.copy([{ path: file, relativePath: 'big2.wt', size: 12 * MiB }], copyOptions());
      assert.equal(lost, 1, 'the first CompleteMultipartUpload reply was lost');
      assert.equal(result.copied.length, 1);
      assert.equal((await objectsUnder(s3, location)).find((o) => o.key === 'lost-complete/big2.wt')?.size, 12 * MiB);
    } finally {
      lose = undefined;
      closing.abort();
      client.destroy();
    }
  });

  it('a copy thread sends its parts on kept-alive connections, not one connection per part', async () => {
    const file = path.join(scratch.dir, 'parts.wt');
    fs.writeFileSync(file, Buffer.alloc(64 * MiB, 9));
    connections = 0;
    await uploadFiles([{ path: file, relativePath: 'parts.wt', size: 64 * MiB }], { bucket: await rgw.createBucket(), prefix: 'sockets' }, { settings: forwarded(), limiter: new TokenBucket(0), concurrency: 1 });
    // 8 parts of 8 MiB, a create and a complete: 10 requests, on at most partsInFlight + 1 sockets.
    assert.ok(connections <= 3, `${connections} TCP connections for 10 requests: Expect: 100-continue sends each part of 2 MiB or more on a new agent without keep-alive`);
  });

  it('two backups begun at once in one empty prefix: one goes on, the other is refused as not empty and leaves nothing', async () => {
    const bucket = await rgw.createBucket();
    const settings = s3SettingsFromEnvironment(rgw.env());
    // Two proxies (one per shard, say) sent the same backupStart by a coordinator.
    const proxies = [new S3Targets({ settings, log: quiet() }), new S3Targets({ settings, log: quiet() })];
    const closing = new AbortController();
    const ids = [randomUUID(), randomUUID()];
    const context = (backupId: string) => ({ backupId, startedAt: new Date(), source: { dbpath: '/data/db', host: 'h:27017' }, closing: closing.signal });
    try {
      const request = { destination: `s3://${bucket}/nightly/2026-11-30` };
      // Both pass the emptiness check before either writes.
      const opened = await Promise.all(proxies.map((proxy, i) => proxy.open(request, context(ids[i] as string))));
      const begun = await Promise.allSettled(opened.map((o) => o.target.begin()));
      const ok = begun.flatMap((b, i) => (b.status === 'fulfilled' ? [ids[i]] : []));
      assert.ok(ok.length <= 1, 'both backups began in the same prefix: their objects (same names) would overwrite each other');
      for (const b of begun) {
        if (b.status === 'rejected') {
          assert.ok(b.reason instanceof CommandError);
          assert.equal(b.reason.code, ErrorCodes.BadValue);
          assert.equal(b.reason.message, `Backup directory s3://${bucket}/nightly/2026-11-30 is not empty`);
        }
      }
      const location = { bucket, prefix: 'nightly/2026-11-30' };
      const keys = (await objectsUnder(s3, location)).map((o) => o.key);
      // The loser's claim is gone; the winner's marker is all there is (or nothing, if both stood back).
      assert.deepEqual(keys, ok.length === 1 ? ['nightly/2026-11-30/hotbackup-incomplete.json'] : []);
      if (ok.length === 1) assert.equal((await s3Marker(s3, location))?.backupId, ok[0]);
    } finally {
      closing.abort();
      for (const p of proxies) p.close();
    }
  });

  it('the first marker is written only if there is none (If-None-Match: radosgw answers 412)', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'conditional' };
    const first = runningMarker({ backupId: randomUUID(), startedAt: new Date() });
    await createS3Marker(s3, location, first);
    await assert.rejects(createS3Marker(s3, location, runningMarker({ backupId: randomUUID(), startedAt: new Date() })), (err: Error & { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode === 412);
    assert.equal((await s3Marker(s3, location))?.backupId, first.backupId);
  });

  it('a destination inside an existing backup (a manifest, a marker or a claim above it) is refused; one beside it is not', async () => {
    const bucket = await rgw.createBucket();
    const targets = new S3Targets({ settings: s3SettingsFromEnvironment(rgw.env()), log: quiet() });
    const closing = new AbortController();
    const context = { backupId: randomUUID(), startedAt: new Date(), source: { dbpath: '/data/db', host: 'h:27017' }, closing: closing.signal };
    try {
      await putObjectBytes(s3, bucket, 'nightly/hotbackup-manifest.json', Buffer.from('{}'));
      await writeS3Marker(s3, { bucket, prefix: 'failed' }, runningMarker({ backupId: randomUUID(), startedAt: new Date() }));
      // A backup that claimed its prefix and has not yet written its marker.
      const claimed = claimName(randomUUID());
      await putObjectBytes(s3, bucket, `claimed/${claimed}`, Buffer.alloc(0));
      for (const [inside, parent, name] of [
        ['nightly/extra', 'nightly', 'hotbackup-manifest.json'],
        ['failed/a/b', 'failed', 'hotbackup-incomplete.json'],
        ['claimed/y', 'claimed', claimed],
      ] as const) {
        await assert.rejects(targets.open({ destination: `s3://${bucket}/${inside}` }, context), (err: CommandError) => {
          assert.equal(err.code, ErrorCodes.BadValue);
          assert.equal(err.message, `Backup destination s3://${bucket}/${inside} lies inside the backup s3://${bucket}/${parent} (it holds ${name}): choose a prefix beside it, not below it`);
          return true;
        });
      }
      await targets.open({ destination: `s3://${bucket}/weekly/2026-11-30` }, context);
    } finally {
      closing.abort();
      targets.close();
    }
  });

  it('no manifest is written when the marker is no longer this backup\'s', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'taken-over' };
    const settings = s3SettingsFromEnvironment(rgw.env());
    const client = createS3Client(settings);
    const closing = new AbortController();
    const backupId = randomUUID();
    const target = targetFor(location, settings, client, closing.signal, backupId);
    try {
      await target.begin();
      // Another writer replaced the marker (a backup begun by a proxy that skipped the claim, or by hand).
      const other = randomUUID();
      await writeS3Marker(client, location, runningMarker({ backupId: other, startedAt: new Date() }));
      await assert.rejects(target.writeManifest(manifestOf(backupId, { relativePath: 'x.wt', size: 1 })), (err: CommandError) => {
        assert.equal(err.code, ErrorCodes.OperationFailed);
        assert.match(err.message, new RegExp(`says backup ${other}, not this backup`));
        return true;
      });
      assert.deepEqual((await objectsUnder(s3, location)).map((o) => o.key), ['taken-over/hotbackup-incomplete.json']);
    } finally {
      closing.abort();
      client.destroy();
    }
  });

  it('fail() after another backup took the prefix leaves that backup\'s marker and uploads; only this backup\'s claim goes', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'clobber' };
    const settings = s3SettingsFromEnvironment(rgw.env());
    const client = createS3Client(settings);
    const closing = new AbortController();
    const backupId = randomUUID();
    const target = targetFor(location, settings, client, closing.signal, backupId);
    try {
      await target.begin();
      const other = randomUUID();
      await writeS3Marker(client, location, runningMarker({ backupId: other, startedAt: new Date() }));
      await s3.send(new CreateMultipartUploadCommand({ Bucket: location.bucket, Key: 'clobber/theirs.wt' }));
      // This backup's claim, left (its removal after the marker failed, say).
      await putObjectBytes(s3, location.bucket, `clobber/${claimName(backupId)}`, Buffer.alloc(0));
      await assert.rejects(target.writeManifest(manifestOf(backupId, { relativePath: 'x.wt', size: 1 })));
      const cleanup = await target.fail(failureOf(new CommandError(ErrorCodes.OperationFailed, 'taken over')), new Date(), 'failed');
      assert.equal(cleanup.state, 'done');
      const marker = await s3Marker(s3, location);
      assert.equal(marker?.backupId, other, 'the other backup\'s marker was overwritten');
      assert.equal(marker?.state, 'running');
      assert.deepEqual((await uploadsUnder(s3, location)).map((u) => u.key), ['clobber/theirs.wt'], 'the other backup\'s upload was aborted');
      assert.deepEqual((await objectsUnder(s3, location)).map((o) => o.key), ['clobber/hotbackup-incomplete.json']);
    } finally {
      closing.abort();
      client.destroy();
    }
  });

  it('a complete backup leaves no claim, and its pre-manifest sweep aborts only the uploads of its own files', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'outer' };
    const settings = s3SettingsFromEnvironment(rgw.env());
    const client = createS3Client(settings);
    const closing = new AbortController();
    const backupId = randomUUID();
    const target = targetFor(location, settings, client, closing.signal, backupId);
    try {
      await target.begin();
      // As if the claim's removal after the marker failed.
      await putObjectBytes(s3, location.bucket, `outer/${claimName(backupId)}`, Buffer.alloc(0));
      await putObjectBytes(s3, location.bucket, 'outer/x.wt', Buffer.from('x'));
      // An orphan of this backup's lost CreateMultipartUpload reply, and a nested backup's upload in flight.
      await s3.send(new CreateMultipartUploadCommand({ Bucket: location.bucket, Key: 'outer/x.wt' }));
      await s3.send(new CreateMultipartUploadCommand({ Bucket: location.bucket, Key: 'outer/inner/y.wt' }));
      await target.writeManifest(manifestOf(backupId, { relativePath: 'x.wt', size: 1 }));
      await target.complete();
      assert.deepEqual((await objectsUnder(s3, location)).map((o) => o.key).sort(), ['outer/hotbackup-manifest.json', 'outer/x.wt'], 'a claim left beside the manifest: verify calls the backup damaged');
      assert.deepEqual((await uploadsUnder(s3, location)).map((u) => u.key), ['outer/inner/y.wt'], 'the pre-manifest sweep aborted an upload that is not this backup\'s');
    } finally {
      closing.abort();
      client.destroy();
    }
  });

  it('complete() forgets the cleanup record even when the marker cannot be removed: the manifest decides', async () => {
    const location = { bucket: await rgw.createBucket(), prefix: 'left-marker' };
    const { port } = forwarder.address() as AddressInfo;
    const settings = s3SettingsFromEnvironment({ ...rgw.env(), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1' });
    const client = createS3Client(settings);
    const closing = new AbortController();
    const backupId = randomUUID();
    const records = new S3CleanupRecords(path.join(scratch.dir, 'left-marker'));
    const target = targetFor(location, settings, client, closing.signal, backupId, records);
    try {
      await target.begin();
      await putObjectBytes(s3, location.bucket, 'left-marker/x.wt', Buffer.from('x'));
      await target.writeManifest(manifestOf(backupId, { relativePath: 'x.wt', size: 1 }));
      deletesFail = true;
      await assert.rejects(target.complete());
      assert.deepEqual(await records.list(() => undefined), [], 'the record stays: the next start would rewrite the marker of a complete backup');
    } finally {
      deletesFail = false;
      closing.abort();
      client.destroy();
    }
  });
});

it('a source file that cannot be read fails the upload as a local I/O error with its errno, not as an S3 one', async () => {
  // Never reached: the file is opened before any request.
  const settings = s3SettingsFromEnvironment({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
  const client = createS3Client(settings);
  const closing = new AbortController();
  const scratch = tempDir('s3-target-local');
  const target = targetFor({ bucket: 'bucket', prefix: 'p' }, settings, client, closing.signal);
  try {
    const missing = path.join(scratch.dir, 'gone.wt');
    await assert.rejects(target.copy([{ path: missing, relativePath: 'gone.wt', size: 10 }], copyOptions()), (err: CommandError) => {
      assert.equal(err.extra['s3Code'], undefined, `a local error named as S3's: ${err.message}`);
      assert.equal(err.extra['errno'], 2);
      assert.equal(err.extra['strerror'], 'No such file or directory');
      assert.match(err.message, /gone\.wt: No such file or directory/);
      return true;
    });
  } finally {
    closing.abort();
    client.destroy();
    scratch.remove();
  }
});
