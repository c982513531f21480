/**
 * uploadFiles against a real radosgw (test/helpers/radosgw.ts), as the backup engine
 * calls it: the copy threads read, hash and send; these tests read the bucket back.
 * - sizes around the part size: read back byte for byte, with the copier's XXH3, a
 *   growing file cut at its listed size, and the progress the copier would report;
 * - Content-MD5 is sent and checked: a byte flipped after the MD5 was taken (an SDK
 *   middleware on the test's own client, the product has no hook) is refused, and the
 *   multipart upload is aborted;
 * - the throttle holds, on an injected clock, with one request per thread at a time;
 * - abort mid-upload, and a gateway killed mid-upload: no multipart upload and no object
 *   of the file left, or the ones that could not be aborted reported;
 * - refused credentials and a missing bucket fail at once with S3's code;
 * - optional files that vanish or shrink are skipped;
 * - a reused file whose base is on S3 is copied on the server (CopyObject, UploadPartCopy)
 *   without reading its source, or uploaded when the base's object changed;
 * - the part buffers stay within their bound across many files.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { FakeClock } from '../helpers/fake_clock.js';
import { uploadFiles, uploadsLeftOf, type UploadOptions } from '../../src/s3/upload_files.js';
import { uploadOneFile, type UploadContext, type UploadHooks } from '../../src/s3/object_upload.js';
import { PartBuffers } from '../../src/s3/part_buffers.js';
import { s3SettingsFromEnvironment, type S3Settings } from '../../src/s3/s3_client.js';
import { listMultipartUploads } from '../../src/s3/s3_objects.js';
import { copyFiles } from '../../src/backup/copier.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import type { Limiter } from '../../src/backup/copy_pool.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

const MIB = 1024 * 1024;
/** radosgw's (and S3's) smallest part: the tests' files stay small. */
const PART = 5 * MIB;

describe('uploadFiles to radosgw', { skip }, () => {
  let rgw: Radosgw;
  let s3: S3Client;
  let settings: S3Settings;
  const scratch = tempDir('s3-upload');
  const savedEnv = { ...process.env };
  let serial = 0;

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    // The copy threads find their credentials as the proxy's do: in the env they inherit.
    Object.assign(process.env, rgw.env());
    settings = s3SettingsFromEnvironment();
  });

  after(async () => {
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
    await rgw?.stop();
    scratch.remove();
  });

  /** A file of `size` random bytes in the scratch dir. */
  function sourceFile(name: string, size: number, extra: Partial<SourceFile> = {}): SourceFile {
    const file = path.join(scratch.dir, `${serial++}-${name.replaceAll('/', '_')}`);
    fs.writeFileSync(file, randomBytes(size));
    return { path: file, relativePath: name, size, ...extra };
  }

  function options(extra: Partial<UploadOptions> = {}): UploadOptions {
    return { settings, limiter: new TokenBucket(0), minPartSize: PART, ...extra };
  }

  async function objectBytes(bucket: string, key: string): Promise<Buffer> {
    const reply = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await (reply.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  }

  async function exists(bucket: string, key: string): Promise<boolean> {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw err;
    }
  }

  it('uploads files around the part size byte for byte, with the XXH3 the copier gives and the same progress', async () => {
    const bucket = await rgw.createBucket();
    const files = [
      sourceFile('empty', 0),
      sourceFile('one', 1),
      sourceFile('dir/below', PART - 1),
      sourceFile('dir/exact', PART),
      sourceFile('dir/above', PART + 1),
      sourceFile('collection-7.wt', 3 * PART + 12_345),
    ];
    // Still growing: only the listed bytes belong to the backup.
    const growing = sourceFile('journal/WiredTigerLog.1', 2 * PART + 7);
    fs.appendFileSync(growing.path, randomBytes(1000));
    files.push(growing);
    const counters = new ProgressCounters();
    counters.begin(files);
    const result = await uploadFiles(files, { bucket, prefix: 'nightly/1' }, options({ progress: counters }));

    const copyDir = path.join(scratch.dir, 'copy');
    fs.mkdirSync(copyDir);
    const copied = await copyFiles(files, copyDir, { limiter: new TokenBucket(0) });
    assert.deepEqual(result, copied, 'the same result as a copy: paths, sizes and checksums, in order');
    for (const file of files) {
      const bytes = await objectBytes(bucket, `nightly/1/${file.relativePath}`);
      assert.ok(bytes.equals(fs.readFileSync(file.path).subarray(0, file.size)), `${file.relativePath} read back as written`);
    }
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const seen = counters.snapshot();
    assert.equal(seen.bytesCopied, total);
    assert.equal(seen.filesCopied, files.length);
    assert.equal(seen.percent, 100);
    assert.deepEqual(seen.currentFiles, []);
    assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: 'nightly' }), []);
  });

  it('sends Content-MD5 with every part: a byte changed after it was taken is refused, and the upload aborted', async () => {
    const bucket = await rgw.createBucket();
    for (const size of [PART, 2 * PART + 1]) {
      const file = sourceFile(`flipped-${size}`, size);
      const client = rgw.client({ accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
      // After serialization, before signing: the signature covers the flipped bytes, so
      // only the MD5 can tell.
      client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { body?: unknown };
          if (request.body instanceof Uint8Array && request.body.length > 0) {
            const flipped = Buffer.from(request.body);
            const middle = flipped.length >> 1;
            flipped[middle] = (flipped[middle] as number) ^ 0x01;
            request.body = flipped;
          }
          return next(args);
        },
        { step: 'build', name: 'flipOneByte' },
      );
      const left: unknown[] = [];
      const err = await uploadOneFile(file, { bucket, key: file.relativePath }, context(client, new PartBuffers(2)), hooks({ uploadLeft: (u) => left.push(u) })).then(
        () => assert.fail('a corrupted body was stored'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CommandError, String(err));
      assert.equal(err.extra['s3Code'], 'BadDigest', err.message);
      assert.match(err.message, /BadDigest \(HTTP 400\)/);
      client.destroy();
      assert.deepEqual(left, []);
      assert.equal(await exists(bucket, file.relativePath), false);
    }
    assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: '' }), [], 'the multipart upload was aborted');
  });

  it('holds the throttle (on an injected clock), asking it one chunk at a time per thread', async () => {
    const bucket = await rgw.createBucket();
    const files = [sourceFile('a', 3 * MIB), sourceFile('b', PART + MIB)];
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const clock = new FakeClock();
    const rate = MIB;
    const bucketOfTokens = new TokenBucket(rate, { clock, refillIntervalMs: 100 });
    let granted = 0;
    let asking = 0;
    let mostAsking = 0;
    const limiter: Limiter = {
      async take(bytes, signal) {
        asking += 1;
        mostAsking = Math.max(mostAsking, asking);
        try {
          await bucketOfTokens.take(bytes, signal);
          granted += bytes;
        } finally {
          asking -= 1;
        }
      },
      watchUnlimited: (listener) => bucketOfTokens.watchUnlimited(listener),
    };
    const counters = new ProgressCounters();
    counters.begin(files);
    let done = false;
    const upload = uploadFiles(files, { bucket, prefix: 'slow' }, options({ limiter, progress: counters, concurrency: 2 })).finally(() => (done = true));
    while (!done) {
      await until(() => done || bucketOfTokens.waiting > 0);
      // Never more than the rate allows, plus one bucket and the one request it may owe.
      assert.ok(granted <= (rate * clock.now()) / 1000 + rate / 10 + MIB, `${granted} bytes granted after ${clock.now()} ms`);
      assert.ok(counters.bytesCopied <= granted, 'nothing stored that was not read through the throttle');
      await clock.advance(100);
    }
    await upload;
    assert.equal(granted, total, 'every byte read was asked for');
    assert.ok(clock.now() >= ((total - MIB - rate / 10) * 1000) / rate, `${total} bytes in ${clock.now()} ms at ${rate} B/s`);
    // At most one per thread; whether both threads ever wait at the same moment depends on the machine's timing.
    assert.ok(mostAsking >= 1 && mostAsking <= 2, `${mostAsking} throttle requests at once from 2 copy threads`);
  });

  it('aborts mid-upload: the signal stops every thread, and no part nor object of the file is left', async () => {
    const bucket = await rgw.createBucket();
    const files = [sourceFile('big', 6 * PART), sourceFile('small', MIB)];
    const counters = new ProgressCounters();
    counters.begin(files);
    const abort = new AbortController();
    const reason = new CommandError(ErrorCodes.Interrupted, 'backup aborted');
    // The throttle's clock moves only when told: the upload is surely mid-way below.
    const clock = new FakeClock();
    const tokens = new TokenBucket(4 * MIB, { clock });
    const upload = uploadFiles(files, { bucket, prefix: 'aborted' }, options({ limiter: tokens, progress: counters, signal: abort.signal }));
    await driveUntil(clock, tokens, () => counters.bytesCopied >= PART);
    assert.equal(await exists(bucket, 'aborted/big'), false);
    abort.abort(reason);
    await assert.rejects(upload, (err) => err === reason);
    assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: 'aborted' }), []);
    assert.equal(await exists(bucket, 'aborted/big'), false);
  });

  it('fails at once with S3\'s code on refused credentials and on a missing bucket', async () => {
    const bucket = await rgw.createBucket();
    const files = [sourceFile('x', 2 * PART), sourceFile('y', 10)];
    const secret = process.env['AWS_SECRET_ACCESS_KEY'] as string;
    process.env['AWS_SECRET_ACCESS_KEY'] = 'not-the-secret';
    try {
      await assert.rejects(uploadFiles(files, { bucket, prefix: 'p' }, options()), (err: unknown) => {
        assert.ok(err instanceof CommandError, String(err));
        assert.equal(err.code, ErrorCodes.OperationFailed);
        assert.equal(err.extra['s3Code'], 'SignatureDoesNotMatch');
        assert.match(err.message, /^S3 upload of s3:\/\/.* failed: SignatureDoesNotMatch \(HTTP 403\): the credentials were refused/);
        assert.ok(!err.message.includes('not-the-secret') && !err.message.includes(secret));
        return true;
      });
    } finally {
      process.env['AWS_SECRET_ACCESS_KEY'] = secret;
    }
    // At once: the SDK made one attempt (a 403 is not retried).
    const wrong = rgw.client({ accessKeyId: rgw.accessKeyId, secretAccessKey: 'wrong' });
    const err = await uploadOneFile(files[1] as SourceFile, { bucket, key: 'y' }, context(wrong, new PartBuffers(1)), hooks()).catch((e: unknown) => e);
    wrong.destroy();
    assert.ok(err instanceof CommandError);
    assert.equal((err.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts, 1);

    await assert.rejects(uploadFiles(files, { bucket: 'no-such-bucket-here', prefix: 'p' }, options()), (e: unknown) => {
      assert.ok(e instanceof CommandError, String(e));
      assert.equal(e.code, ErrorCodes.NonExistentPath);
      assert.equal(e.extra['s3Code'], 'NoSuchBucket');
      assert.match(e.message, /NoSuchBucket \(HTTP 404\): the bucket does not exist/);
      return true;
    });
  });

  it('skips optional files that vanish or shrink, aborting the multipart upload of one that shrank', async () => {
    const bucket = await rgw.createBucket();
    const kept = sourceFile('kept', PART + 3);
    const shrank = sourceFile('shrank', PART + MIB, { optional: true });
    const listed = { ...shrank, size: 3 * PART };
    const vanished: SourceFile = { path: path.join(scratch.dir, 'never-there'), relativePath: 'vanished', size: 100, optional: true };
    const files = [kept, listed, vanished];
    const counters = new ProgressCounters();
    counters.begin(files);
    const result = await uploadFiles(files, { bucket, prefix: 'opt' }, options({ progress: counters }));
    assert.deepEqual(result.copied.map((c) => c.relativePath), ['kept']);
    assert.deepEqual(result.skipped.map((s) => [s.relativePath, s.reason]).sort(), [['shrank', 'shrank'], ['vanished', 'vanished']]);
    assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: 'opt' }), []);
    assert.equal(await exists(bucket, 'opt/shrank'), false);
    assert.equal(await exists(bucket, 'opt/vanished'), false);
    const seen = counters.snapshot();
    assert.equal(seen.filesTotal, 1);
    assert.equal(seen.bytesTotal, kept.size);
    assert.equal(seen.bytesCopied, kept.size);
    assert.equal(seen.percent, 100);
  });

  it('copies a reused file on the server from its base on S3, without reading the source; uploads it when the base changed', async () => {
    const bucket = await rgw.createBucket();
    const a = sourceFile('a', 2 * PART + 5);
    const b = sourceFile('b', 1000);
    const base = await uploadFiles([a, b], { bucket, prefix: 'full' }, options());
    const [sumA, sumB] = base.copied.map((c) => c.checksum) as [string, string];
    const writtenAt = mtimeOf(new Date(Date.now() + 1000));
    const gone = path.join(scratch.dir, 'not-read');
    const reuse = (from: string, checksum: string, extra: Partial<NonNullable<SourceFile['reuse']>> = {}): SourceFile['reuse'] => ({
      from: `s3://${bucket}/${from}`,
      backupId: '7a0c7d0e-3c1f-4f4e-9d59-0c3b8f0e5a11',
      checksum,
      baseWrittenAt: writtenAt,
      compare: false,
      ...extra,
    });
    const files: SourceFile[] = [
      // Sources that do not exist: copied on the server, never opened.
      { path: gone, relativePath: 'a', size: a.size, reuse: reuse('full/a', sumA) },
      { path: gone, relativePath: 'b', size: b.size, reuse: reuse('full/b', sumB) },
      // Compared first: equal, so copied on the server.
      { ...b, relativePath: 'b-compared', reuse: reuse('full/b', sumB, { compare: true }) },
      // Compared and changed: uploaded, no reason given (it is not a failure to reuse).
      { ...sourceFile('changed', 1000), relativePath: 'changed', reuse: reuse('full/b', sumB, { compare: true }) },
      // The base's object written after its manifest: uploaded, and why.
      { ...b, relativePath: 'b-late', reuse: reuse('full/b', sumB, { baseWrittenAt: mtimeOf(new Date(Date.now() - 3_600_000)) }) },
      // The base lists another size, or has no such object: uploaded, and why.
      { ...b, relativePath: 'b-size', reuse: reuse('full/a', sumB) },
      { ...b, relativePath: 'b-missing', reuse: reuse('full/nope', sumB) },
    ];
    const counters = new ProgressCounters();
    counters.begin(files);
    // CopyObject up to 6 MiB here, so `a` goes as UploadPartCopy parts.
    const result = await uploadFiles(files, { bucket, prefix: 'incr' }, options({ progress: counters, maxCopyObjectSize: 6 * MIB }));
    const by = new Map(result.copied.map((c) => [c.relativePath, c]));
    assert.deepEqual(by.get('a'), { relativePath: 'a', size: a.size, checksum: sumA, reused: { method: 'serverCopy', check: 'sizeMtime' } });
    assert.deepEqual(by.get('b')?.reused, { method: 'serverCopy', check: 'sizeMtime' });
    assert.deepEqual(by.get('b-compared')?.reused, { method: 'serverCopy', check: 'checksum' });
    assert.equal(by.get('changed')?.reused, undefined);
    assert.equal(by.get('changed')?.notReused, undefined);
    assert.match(by.get('b-late')?.notReused ?? '', /was modified .* after that backup's manifest was written/);
    assert.match(by.get('b-size')?.notReused ?? '', /is 10485765 bytes, not the 1000 its manifest lists/);
    assert.match(by.get('b-missing')?.notReused ?? '', /cannot be read \(NotFound, HTTP 404\)/);
    for (const name of ['a', 'b', 'b-compared']) {
      const original = name === 'a' ? a : b;
      assert.ok((await objectBytes(bucket, `incr/${name}`)).equals(fs.readFileSync(original.path)), `incr/${name}`);
    }
    for (const name of ['changed', 'b-late', 'b-size', 'b-missing']) {
      const file = files.find((f) => f.relativePath === name) as SourceFile;
      assert.ok((await objectBytes(bucket, `incr/${name}`)).equals(fs.readFileSync(file.path)), `incr/${name} uploaded from its source`);
    }
    const seen = counters.snapshot();
    assert.equal(seen.filesReused, 3);
    assert.equal(seen.bytesReused, a.size + 2 * b.size);
    assert.equal(seen.bytesCompared, 2 * 1000, 'b-compared and changed were hashed');
    assert.equal(seen.bytesCopied, 4 * 1000, 'only the four uploaded files were read for upload');
    assert.equal(seen.percent, 100);
    assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: 'incr' }), []);
  });

  it('keeps its part buffers within parts in flight × part size across many files', async () => {
    const bucket = await rgw.createBucket();
    const buffers = new PartBuffers(2);
    const ctx = context(s3, buffers);
    for (const [i, size] of [3 * PART + 1, 1, PART, 0, 2 * PART - 1, 4 * PART].entries()) {
      const file = sourceFile(`m${i}`, size);
      const outcome = await uploadOneFile(file, { bucket, key: `m/${i}` }, ctx, hooks());
      assert.ok('copied' in outcome);
      assert.equal(buffers.lent, 0, 'every buffer back after each file');
      assert.ok(buffers.allocatedBytes <= 2 * PART);
    }
    assert.equal(buffers.peakBytes, 2 * PART, 'two buffers of one part, reused by every file');
  });

  it('fails with HostUnreachable when the gateway dies mid-upload, and reports the uploads it could not abort', async () => {
    const bucket = await rgw.createBucket();
    const files = [sourceFile('big', 6 * PART)];
    const counters = new ProgressCounters();
    counters.begin(files);
    const clock = new FakeClock();
    const tokens = new TokenBucket(4 * MIB, { clock });
    let settled = false;
    // Its rejection is taken at once: it comes while the clock is still being driven.
    const failure = uploadFiles(files, { bucket, prefix: 'dead' }, { ...options({ limiter: tokens, progress: counters }), settings: { ...settings, maxAttempts: 2 } })
      .then(
        () => assert.fail('the upload survived its server'),
        (e: unknown) => e,
      )
      .finally(() => (settled = true));
    await driveUntil(clock, tokens, () => counters.bytesCopied >= PART);
    await rgw.stopGateway();
    // Reads go on (the throttle's clock with them) until a part meets the dead server.
    await driveUntil(clock, tokens, () => settled);
    const err = await failure;
    try {
      assert.ok(err instanceof CommandError, String(err));
      assert.equal(err.code, ErrorCodes.HostUnreachable, err.message);
      const left = uploadsLeftOf(err);
      assert.equal(left.length, 1);
      assert.equal(left[0]?.key, 'dead/big');
      assert.equal(left[0]?.bucket, bucket);
    } finally {
      await rgw.startGateway();
    }
    // The caller's later cleanup: the upload reported is the one left.
    const uploads = await listMultipartUploads(s3, { bucket, prefix: 'dead' });
    assert.deepEqual(uploads.map((u) => u.uploadId), uploadsLeftOf(err).map((u) => u.uploadId));
  });
});

/** Moves the throttle's clock on whenever a read waits on it, until `done()`. */
async function driveUntil(clock: FakeClock, tokens: TokenBucket, done: () => boolean): Promise<void> {
  for (;;) {
    await until(() => done() || tokens.waiting > 0);
    if (done()) return;
    await clock.advance(100);
  }
}

function context(client: S3Client, buffers: PartBuffers): UploadContext {
  return { client, buffers, chunkSize: MIB, minPartSize: PART, stop: new AbortController().signal };
}

function hooks(extra: Partial<UploadHooks> = {}): UploadHooks {
  return { beforeRead: () => undefined, chunkCopied: () => undefined, chunkCompared: () => undefined, uploadLeft: () => undefined, ...extra };
}

/** A Date as a base's manifest time (source_stamp.ts's text: nine fractional digits). */
function mtimeOf(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000000Z`;
}

function randomBytes(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  return bytes;
}
