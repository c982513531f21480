/**
 * The radosgw harness itself: a real S3 server that the S3 tests can trust, and that
 * leaves no daemon and no temp dir behind, however its test file ends.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { once } from 'node:events';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { processAlive, until, untilGone } from '../helpers/poll.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

async function getText(rgw: Radosgw, bucket: string, key: string): Promise<string> {
  const reply = await rgw.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await reply.Body?.transformToString()) ?? '';
}

describe('a one-node radosgw for a test file', { skip }, () => {
  let rgw: Radosgw;
  before(async () => {
    rgw = await startRadosgw();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('serves buckets, PUT and GET, with the keys env() gives a child process', async () => {
    const bucket = await rgw.createBucket();
    await rgw.client().send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/a.txt', Body: 'hello radosgw' }));
    assert.equal(await getText(rgw, bucket, 'dir/a.txt'), 'hello radosgw');
    const env = rgw.env();
    assert.deepEqual(Object.keys(env).sort(), ['AWS_ACCESS_KEY_ID', 'AWS_ENDPOINT_URL_S3', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY']);
    assert.equal(env['AWS_ENDPOINT_URL_S3'], rgw.endpoint);
    assert.match(rgw.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('keeps multipart uploads: create, list, abort', async () => {
    const bucket = await rgw.createBucket();
    const s3 = rgw.client();
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'big' }));
    assert.ok(UploadId);
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'big', UploadId, PartNumber: 1, Body: Buffer.alloc(5 * 1024 * 1024, 1) }));
    const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(listed.Uploads?.map((u) => [u.Key, u.UploadId]), [['big', UploadId]]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'big', UploadId }));
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(after.Uploads ?? [], []);
  });

  it('gives each user its own keys and buckets', async () => {
    const other = rgw.client(await rgw.addUser());
    const mine = await rgw.createBucket();
    const theirs = await other.send(new ListBucketsCommand({}));
    assert.equal(theirs.Buckets?.some((b) => b.Name === mine) ?? false, false);
    other.destroy();
  });

  it('keeps the objects across a killed and restarted gateway', async () => {
    const bucket = await rgw.createBucket();
    await rgw.client().send(new PutObjectCommand({ Bucket: bucket, Key: 'kept', Body: 'still here' }));
    const [, , gateway] = rgw.pids();
    await rgw.stopGateway();
    assert.equal(processAlive(gateway as number), false, 'the gateway is dead');
    await assert.rejects(rgw.client().send(new ListObjectsV2Command({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(60_000) }));
    await rgw.startGateway();
    assert.equal(await getText(rgw, bucket, 'kept'), 'still here');
  });

  it('stop() leaves no daemon and no temp dir', async () => {
    const pids = rgw.pids();
    assert.equal(pids.length, 3, 'monitor, OSD and gateway run');
    await rgw.stop();
    for (const pid of pids) assert.equal(processAlive(pid), false, `pid ${pid} outlived stop()`);
    assert.equal(fs.existsSync(rgw.dir), false);
  });
});

/** A test file that starts a radosgw, reports its PIDs, then waits to be killed or (`end`) just ends. */
const CHILD = `
  const { startRadosgw } = await import(${JSON.stringify(new URL('../helpers/radosgw.js', import.meta.url).href)});
  const rgw = await startRadosgw();
  process.stdout.write(JSON.stringify({ pids: rgw.pids(), dir: rgw.dir }) + '\\n');
  if (process.argv[1] !== 'end') setInterval(() => undefined, 1000);
`;

describe('a test file that ends without stop(), or is killed, while its radosgw runs', { skip }, () => {
  for (const how of ['end', 'SIGKILL', 'SIGTERM'] as const) {
    it(`leaves no daemon and no temp dir behind (${how})`, async () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, how], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = once(child, 'exit');
      const [line] = (await once(readline.createInterface({ input: child.stdout }), 'line')) as [string];
      const { pids, dir } = JSON.parse(line) as { pids: number[]; dir: string };
      assert.equal(pids.length, 3);
      if (how !== 'end') child.kill(how);
      await exited;
      for (const pid of pids) await untilGone(pid);
      await until(() => !fs.existsSync(dir));
    });
  }
});
