/**
 * verify and restore of s3:// when the network misbehaves or the disk fills, against a
 * real radosgw behind a forwarder that resets connections on demand
 * (test/helpers/flaky_forwarder.ts): a transfer cut short is resumed, an object that stays
 * unreachable is "could not be checked" (exit 5) and never recorded as damage, a listing
 * that fails keeps the earlier verification, a full target disk is the disk's error. Also
 * the shapes S3 allows that a directory rarely has: odd keys, more than 1000 objects, a
 * 512 MiB object read as a stream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { keysUnder, putCrafted } from '../helpers/s3_backups.js';
import { startFlakyForwarder } from '../helpers/flaky_forwarder.js';
import { loopFsUnavailable, mountLoopFs } from '../helpers/loop_fs.js';
import { VERIFICATION_FILENAME } from '../../src/backup/verification_record.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

interface Listed {
  backups: Array<{ name: string; verified: { ok: boolean } | null }>;
}

describe('verify and restore of s3:// when the network or the disk fails', { skip }, () => {
  let rgw: Radosgw;
  const scratch = tempDir('s3-read-faults');
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ...rgw.env(), ...env });
  const port = (): number => Number(new URL(rgw.endpoint).port);
  const verified = async (url: string): Promise<Listed['backups'][number]['verified'] | undefined> =>
    (JSON.parse((await cli(['list', url, '--json'])).stdout) as Listed).backups[0]?.verified;

  before(async () => {
    rgw = await startRadosgw();
  });
  after(async () => {
    await rgw?.stop();
    scratch.remove();
  });

  it('verify: a connection reset mid-object is resumed and the backup passes; one that never gets through is "could not be checked" (exit 5) and leaves the recorded verification alone', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'root/b1', new Map([['big.wt', Buffer.alloc(8 * 1024 * 1024, 7)], ['small.wt', Buffer.from('hello')]]));
    const once = await startFlakyForwarder(port(), '/big.wt', 1024 * 1024);
    try {
      const run = await cli(['verify', `s3://${bucket}/root/b1`], { AWS_ENDPOINT_URL_S3: once.endpoint });
      assert.equal(once.cuts(), 1, 'the forwarder cut one download');
      assert.equal(run.code, 0, `stdout: ${run.stdout} stderr: ${run.stderr}`);
    } finally {
      once.close();
    }
    assert.equal((await verified(`s3://${bucket}/root`))?.ok, true);
    // Cut before any byte of each reply: a GET that receives something is progress, and
    // resuming from there again and again reads the object whole (as the first part shows).
    const always = await startFlakyForwarder(port(), '/big.wt', 0, Infinity);
    try {
      const run = await cli(['verify', `s3://${bucket}/root/b1`, '--json'], { AWS_ENDPOINT_URL_S3: always.endpoint, AWS_MAX_ATTEMPTS: '2' });
      assert.ok(always.cuts() > 1, 'the download was tried again');
      assert.equal(run.code, 5, `stdout: ${run.stdout} stderr: ${run.stderr}`);
      assert.equal((JSON.parse(run.stdout) as { state: string }).state, 'unreadable');
    } finally {
      always.close();
    }
    assert.equal((await verified(`s3://${bucket}/root`))?.ok, true, 'the earlier verification still stands');
  });

  it('verify: a listing that fails (the server unreachable for it) is "could not be checked" and keeps the recorded verification', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'root/b1', new Map([['x.wt', Buffer.from('x')]]));
    assert.equal((await cli(['verify', `s3://${bucket}/root/b1`])).code, 0);
    // Every ListObjectsV2 is cut; the record's DELETE would go through.
    const lists = await startFlakyForwarder(port(), 'list-type=2', 0, Infinity);
    try {
      const run = await cli(['verify', `s3://${bucket}/root/b1`], { AWS_ENDPOINT_URL_S3: lists.endpoint, AWS_MAX_ATTEMPTS: '2' });
      assert.ok(lists.cuts() > 0);
      assert.equal(run.code, 5, `stdout: ${run.stdout} stderr: ${run.stderr}`);
    } finally {
      lists.close();
    }
    assert.equal((await verified(`s3://${bucket}/root`))?.ok, true, 'the earlier verification still stands');
  });

  it('restore: a connection reset mid-object is resumed, and the file is whole', async () => {
    const bucket = await rgw.createBucket();
    const big = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    await putCrafted(rgw.client(), bucket, 'b1', new Map([['collection-1.wt', big], ['journal/WiredTigerLog.0000000001', Buffer.from('log')]]));
    const flaky = await startFlakyForwarder(port(), '/collection-1.wt', 1024 * 1024 + 123);
    const target = path.join(scratch.dir, 'reset-target');
    try {
      const run = await cli(['restore', `s3://${bucket}/b1`, '--to', target], { AWS_ENDPOINT_URL_S3: flaky.endpoint });
      assert.equal(flaky.cuts(), 1, 'the forwarder cut one download');
      assert.equal(run.code, 0, `stdout: ${run.stdout} stderr: ${run.stderr}`);
    } finally {
      flaky.close();
    }
    assert.ok(fs.readFileSync(path.join(target, 'collection-1.wt')).equals(big));
  });

  it("restore: a full disk is said as the disk's error, not as an S3 download failure", { skip: loopFsUnavailable('ext4') }, async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'big', new Map([['collection-1.wt', Buffer.alloc(48 * 1024 * 1024, 3)]]));
    const fsys = await mountLoopFs('ext4', 32);
    try {
      const run = await cli(['restore', `s3://${bucket}/big`, '--to', path.join(fsys.dir, 'db')]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /ENOSPC|no space left/i);
      assert.doesNotMatch(run.stderr, /S3 download of .* failed/);
    } finally {
      await fsys.remove();
    }
  });

  it('verify and restore: keys with spaces, +, %, #, ?, &, unicode and a leading dash', async () => {
    const bucket = await rgw.createBucket();
    const files = new Map<string, Buffer>([
      ['a b+c%20d#e?f&g.wt', Buffer.from('one')],
      ['dir with space/ü ñ 日本.wt', Buffer.from('two')],
      ['-leading.wt', Buffer.from('three')],
      ["x~y=z;@,$!'().wt", Buffer.from('four')],
    ]);
    await putCrafted(rgw.client(), bucket, 'odd/b1', files);
    const checked = await cli(['verify', `s3://${bucket}/odd/b1`]);
    assert.equal(checked.code, 0, `stdout: ${checked.stdout} stderr: ${checked.stderr}`);
    const target = path.join(scratch.dir, 'odd-target');
    const restored = await cli(['restore', `s3://${bucket}/odd/b1`, '--to', target]);
    assert.equal(restored.code, 0, restored.stderr);
    for (const [p, body] of files) assert.deepEqual(fs.readFileSync(path.join(target, p)), body, p);
  });

  it('verify and restore: a backup of more than 1000 objects (the listing is paginated)', async () => {
    const bucket = await rgw.createBucket();
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 1050; i++) files.set(`index-${String(i).padStart(4, '0')}.wt`, Buffer.from(`file ${i}`));
    await putCrafted(rgw.client(), bucket, 'many', files);
    const checked = await cli(['verify', `s3://${bucket}/many`, '--json']);
    assert.equal(checked.code, 0, checked.stdout.slice(0, 2000) + checked.stderr);
    assert.equal((JSON.parse(checked.stdout) as { files: number }).files, 1050);
    const target = path.join(scratch.dir, 'many-target');
    const restored = await cli(['restore', `s3://${bucket}/many`, '--to', target]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(fs.readdirSync(target).length, 1050);
  });

  it('verify: no credential in the verification record object, stdout or stderr', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'sec', new Map([['x.wt', Buffer.from('x')]]));
    const run = await cli(['verify', `s3://${bucket}/sec`]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok((await keysUnder(rgw.client(), bucket, 'sec/')).some((k) => k.includes(VERIFICATION_FILENAME)));
    const reply = await rgw.client().send(new GetObjectCommand({ Bucket: bucket, Key: `sec/${VERIFICATION_FILENAME}` }));
    const record = (await reply.Body?.transformToString()) ?? '';
    for (const text of [record, run.stdout, run.stderr]) assert.ok(!text.includes(rgw.secretAccessKey) && !text.includes(rgw.accessKeyId), text);
  });

  it('restore and verify: the peak RSS for a 512 MiB object stays small (streamed, never whole)', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'huge', new Map([['collection-1.wt', Buffer.alloc(512 * 1024 * 1024, 5)]]));
    const target = path.join(scratch.dir, 'huge-target');
    const timed = ['/usr/bin/time', '-f', 'MAXRSS_KB=%M'];
    const restored = await runCli(['restore', `s3://${bucket}/huge`, '--to', target], rgw.env(), timed);
    assert.equal(restored.code, 0, restored.stderr);
    fs.rmSync(target, { recursive: true, force: true });
    const checked = await runCli(['verify', `s3://${bucket}/huge`], rgw.env(), timed);
    assert.equal(checked.code, 0, checked.stderr);
    const restoreKb = Number(/MAXRSS_KB=(\d+)/.exec(restored.stderr)?.[1]);
    const verifyKb = Number(/MAXRSS_KB=(\d+)/.exec(checked.stderr)?.[1]);
    assert.ok(restoreKb < 200 * 1024 && verifyKb < 200 * 1024, `peak RSS restore ${restoreKb} KiB, verify ${verifyKb} KiB`);
  });
});
