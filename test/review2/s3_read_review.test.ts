/**
 * Adversarial review of issue 14's S3 read path (verify, restore, list, purge on s3://),
 * against a real radosgw. Each `it` is one finding or one probe; those that fail show a
 * bug (the assertion states what should hold). Run singly:
 *   node --test --test-timeout=600000 dist/test/review2/s3_read_review.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { keysUnder, putObject, putUnfinished } from '../helpers/s3_backups.js';
import { CHECKSUM_ALGORITHM, startChecksum } from '../../src/backup/checksum.js';
import { MANIFEST_FILENAME, MANIFEST_FORMAT, MANIFEST_VERSION, serializeManifest, type Manifest } from '../../src/backup/manifest.js';
import { endedMarker, runningMarker } from '../../src/backup/backup_marker.js';
import { VERIFICATION_FILENAME } from '../../src/backup/verification_record.js';
import { ErrorCodes } from '../../src/errors.js';
import { loopFsUnavailable, mountLoopFs } from '../helpers/loop_fs.js';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

function xxh3(bytes: Buffer): string {
  const c = startChecksum();
  c.update(bytes);
  return c.hex();
}

/** A valid manifest for `files` (no database: verify and restore only copy and hash). */
function manifestOf(files: ReadonlyMap<string, Buffer>, finishedAt = new Date()): Manifest {
  const list = [...files].map(([p, body]) => ({ path: p, size: body.length, checksum: xxh3(body) }));
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    checksum: { algorithm: CHECKSUM_ALGORITHM },
    backupId: randomUUID(),
    strategy: 'backupCursor',
    source: { dbpath: '/data/db', host: 'localhost:27017', serverVersion: '7.0.0' },
    startedAt: new Date(finishedAt.getTime() - 1000).toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: 1000,
    throttleBytesPerSec: 0,
    files: list,
    totals: { files: list.length, bytes: list.reduce((s, f) => s + f.size, 0) },
  } as Manifest;
}

/** Puts `files` and their manifest (last) at s3://bucket/prefix; returns the manifest. */
async function putCrafted(client: S3Client, bucket: string, prefix: string, files: ReadonlyMap<string, Buffer>, finishedAt?: Date): Promise<Manifest> {
  const manifest = manifestOf(files, finishedAt);
  const keyOf = (p: string) => (prefix === '' ? p : `${prefix}/${p}`);
  const entries = [...files];
  for (let i = 0; i < entries.length; i += 32) {
    await Promise.all(entries.slice(i, i + 32).map(([p, body]) => putObject(client, bucket, keyOf(p), body)));
  }
  await putObject(client, bucket, keyOf(MANIFEST_FILENAME), serializeManifest(manifest, 'x'));
  return manifest;
}

/**
 * A TCP forwarder in front of radosgw that, once, resets the connection carrying the
 * response to a GET whose request line contains `needle`, after `after` bytes of it.
 */
async function startFlakyForwarder(port: number, needle: string, afterBytes: number): Promise<{ endpoint: string; cuts: () => number; close: () => void }> {
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let armed = false;
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (cuts === 0 && text.startsWith('GET ') && text.split('\r\n')[0]!.includes(needle)) {
        armed = true;
        sent = 0;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (armed && cuts === 0) {
        const room = afterBytes - sent;
        if (chunk.length >= room) {
          client.write(chunk.subarray(0, room));
          cuts += 1;
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        sent += chunk.length;
      }
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const p = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${p}`,
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('review2: the S3 read path', { skip }, () => {
  let rgw: Radosgw;
  const scratch = tempDir('review2-s3');
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ...rgw.env(), ...env });

  before(async () => {
    rgw = await startRadosgw();
  });
  after(async () => {
    await rgw?.stop();
    scratch.remove();
  });

  it('verify: one connection reset mid-object is no proof of damage: retried, or "could not be checked" (exit 5), never recorded as FAILED', async () => {
    const bucket = await rgw.createBucket();
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    await putCrafted(rgw.client(), bucket, 'root/b1', new Map([['big.wt', big], ['small.wt', Buffer.from('hello')]]));
    const port = Number(new URL(rgw.endpoint).port);
    const flaky = await startFlakyForwarder(port, '/big.wt', 1024 * 1024);
    try {
      const run = await cli(['verify', `s3://${bucket}/root/b1`], { AWS_ENDPOINT_URL_S3: flaky.endpoint });
      assert.equal(flaky.cuts(), 1, 'the forwarder cut one download');
      const listed = await cli(['list', `s3://${bucket}/root`, '--json']);
      const entry = (JSON.parse(listed.stdout) as { backups: Array<{ name: string; verified: unknown }> }).backups[0];
      // Either the download was retried and the backup passes, or the verify says it could not check it.
      assert.ok(run.code === 0 || run.code === 5, `exit ${run.code}; stdout: ${run.stdout} stderr: ${run.stderr}; list shows ${JSON.stringify(entry?.verified)}`);
    } finally {
      flaky.close();
    }
  });

  it('restore: one connection reset mid-object does not fail a restore (the object is fetched again)', async () => {
    const bucket = await rgw.createBucket();
    const big = Buffer.alloc(8 * 1024 * 1024, 9);
    await putCrafted(rgw.client(), bucket, 'b1', new Map([['collection-1.wt', big], ['journal/WiredTigerLog.0000000001', Buffer.from('log')]]));
    const port = Number(new URL(rgw.endpoint).port);
    const flaky = await startFlakyForwarder(port, '/collection-1.wt', 1024 * 1024);
    const target = path.join(scratch.dir, 'reset-target');
    try {
      const run = await cli(['restore', `s3://${bucket}/b1`, '--to', target], { AWS_ENDPOINT_URL_S3: flaky.endpoint });
      assert.equal(flaky.cuts(), 1, 'the forwarder cut one download');
      assert.equal(run.code, 0, `stdout: ${run.stdout} stderr: ${run.stderr}`);
    } finally {
      flaky.close();
    }
  });

  it('verify and restore: keys with spaces, +, %, #, ?, &, unicode and a leading dash', async () => {
    const bucket = await rgw.createBucket();
    const files = new Map<string, Buffer>([
      ['a b+c%20d#e?f&g.wt', Buffer.from('one')],
      ['dir with space/ü ñ 日本.wt', Buffer.from('two')],
      ['-leading.wt', Buffer.from('three')],
      ['x~y=z;@,$!\'().wt', Buffer.from('four')],
    ]);
    await putCrafted(rgw.client(), bucket, 'odd/b1', files);
    const verified = await cli(['verify', `s3://${bucket}/odd/b1`]);
    assert.equal(verified.code, 0, `stdout: ${verified.stdout} stderr: ${verified.stderr}`);
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
    const verified = await cli(['verify', `s3://${bucket}/many`, '--json']);
    assert.equal(verified.code, 0, verified.stdout.slice(0, 2000) + verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { files: number }).files, 1050);
    const target = path.join(scratch.dir, 'many-target');
    const restored = await cli(['restore', `s3://${bucket}/many`, '--to', target]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(fs.readdirSync(target).length, 1050);
  });

  it('list s3://bucket (the top) holding backups and prefixes of something else', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'b1', new Map([['x.wt', Buffer.from('x')]]));
    await putObject(rgw.client(), bucket, 'photos/cat.jpg', 'meow');
    await putObject(rgw.client(), bucket, 'loose.txt', 'loose');
    const listed = await cli(['list', `s3://${bucket}`, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const doc = JSON.parse(listed.stdout) as { root: string; backups: Array<{ name: string; path: string; complete: boolean; bytes: number | null }> };
    assert.equal(doc.root, `s3://${bucket}`);
    assert.deepEqual(
      doc.backups.map((b) => [b.name, b.path, b.complete, b.bytes]).sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
      [
        ['b1', `s3://${bucket}/b1`, true, 1],
        ['photos', `s3://${bucket}/photos`, false, 4],
      ],
    );
    const purged = await cli(['purge', `s3://${bucket}`, '--keep', '1', '--remove-incomplete']);
    assert.equal(purged.code, 0, purged.stderr);
    assert.ok((await keysUnder(rgw.client(), bucket)).some((k) => k.startsWith('photos/cat.jpg')), 'purge left what is not ours');
  });

  it('list and purge: a root of more than 1000 prefixes (CommonPrefixes paginated)', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    const names = Array.from({ length: 1003 }, (_, i) => `p${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 32) await Promise.all(names.slice(i, i + 32).map((n) => putObject(client, bucket, `root/${n}/f`, 'f')));
    const listed = await cli(['list', `s3://${bucket}/root`, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as { backups: unknown[] }).backups.length, 1003);
  });

  it('purge --remove-incomplete: a prefix whose name S3 allows and parseS3Url refuses (a backslash) fails with a usage-like message, stopping the rest', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    const ended = endedMarker(runningMarker({ backupId: randomUUID(), startedAt: new Date() }), { code: ErrorCodes.Interrupted, codeName: 'Interrupted', errmsg: 'aborted', extra: {} }, new Date(), 'aborted');
    await putUnfinished(client, bucket, 'root/a\\b', ended, { 'x.wt': 'x' });
    const run = await cli(['purge', `s3://${bucket}/root`, '--keep', '1', '--remove-incomplete']);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  });

  it('verify: no credential in the verification record object, stdout or stderr', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'sec', new Map([['x.wt', Buffer.from('x')]]));
    const run = await cli(['verify', `s3://${bucket}/sec`]);
    assert.equal(run.code, 0, run.stderr);
    const keys = await keysUnder(rgw.client(), bucket, 'sec/');
    assert.ok(keys.some((k) => k.includes(VERIFICATION_FILENAME)), keys.join(','));
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const record = await (await rgw.client().send(new GetObjectCommand({ Bucket: bucket, Key: `sec/${VERIFICATION_FILENAME}` }))).Body!.transformToString();
    for (const text of [record, run.stdout, run.stderr]) {
      assert.ok(!text.includes(rgw.secretAccessKey) && !text.includes(rgw.accessKeyId), text);
    }
  });
  it('purge: a deletion cut short after the manifest leaves a prefix the next purge --remove-incomplete finishes (not objects billing forever)', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    await putCrafted(client, bucket, 'root/old', new Map([['a.wt', Buffer.from('a')], ['journal/log.1', Buffer.from('l')]]), new Date(Date.now() - 3_600_000));
    await putCrafted(client, bucket, 'root/new', new Map([['a.wt', Buffer.from('b')]]));
    const cut = await cli(['purge', `s3://${bucket}/root`, '--keep', '1'], { HOTBACKUP_TEST_FAILPOINTS: 'failPurgeAfterManifestDeletion' });
    assert.equal(cut.code, 1, cut.stderr);
    const again = await cli(['purge', `s3://${bucket}/root`, '--keep', '1', '--remove-incomplete']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await keysUnder(client, bucket, 'root/old/'), [], `what the next purge said: ${again.stdout}`);
  });

  it('restore: a full disk is said as the disk\'s error, not as an S3 download failure', { skip: loopFsUnavailable('ext4') }, async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'big', new Map([['collection-1.wt', Buffer.alloc(48 * 1024 * 1024, 3)]]));
    const fsys = await mountLoopFs('ext4', 32);
    try {
      const target = path.join(fsys.dir, 'db');
      const run = await cli(['restore', `s3://${bucket}/big`, '--to', target]);
      assert.equal(run.code, 1, run.stderr);
      assert.doesNotMatch(run.stderr, /S3 download of .* failed/, 'ENOSPC is the target\'s problem, not S3\'s');
    } finally {
      await fsys.remove();
    }
  });

  it('restore and verify: peak RSS of a 512 MiB object stays small (streamed, never whole)', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'huge', new Map([['collection-1.wt', Buffer.alloc(512 * 1024 * 1024, 5)]]));
    const target = path.join(scratch.dir, 'huge-target');
    const timed = ['/usr/bin/time', '-f', 'MAXRSS_KB=%M'];
    const restored = await runCli(['restore', `s3://${bucket}/huge`, '--to', target], rgw.env(), timed);
    assert.equal(restored.code, 0, restored.stderr);
    const restoreKb = Number(/MAXRSS_KB=(\d+)/.exec(restored.stderr)?.[1]);
    const verified = await runCli(['verify', `s3://${bucket}/huge`], rgw.env(), timed);
    const verifyKb = Number(/MAXRSS_KB=(\d+)/.exec(verified.stderr)?.[1]);
    fs.rmSync(target, { recursive: true, force: true });
    assert.ok(restoreKb < 200 * 1024 && verifyKb < 200 * 1024, `peak RSS restore ${restoreKb} KiB, verify ${verifyKb} KiB`);
    console.log(`peak RSS restore ${restoreKb} KiB, verify ${verifyKb} KiB`);
  });
  it('backupVerify under a local --backup-root: an s3:// path outside it is refused (docs: every backupVerify path must lie in it); an s3:// URL with key:secret@ is not echoed', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'elsewhere/b1', new Map([['x.wt', Buffer.from('x')]]));
    const root = path.join(scratch.dir, 'local-root');
    fs.mkdirSync(root);
    const server = await startDevServer();
    const proxy = await startProxy(server, ['--backup-root', root], rgw.env());
    const client = await MongoClient.connect(proxy.uri);
    try {
      const admin = client.db('admin');
      const secret = 'wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET';
      const leaked = await admin.command({ backupVerify: `s3://AKIAIOSFODNN7EXAMPLE:${secret}@${bucket}/x` }).then(
        (reply) => JSON.stringify(reply),
        (err: { errmsg?: string }) => err.errmsg ?? '',
      );
      const escaped = await admin.command({ backupVerify: `s3://${bucket}/elsewhere/b1` }).then(
        (reply) => `accepted: state ${String(reply['state'])}`,
        (err: { codeName?: string; errmsg?: string }) => `${err.codeName}: ${err.errmsg}`,
      );
      const written = (await keysUnder(rgw.client(), bucket, 'elsewhere/b1/')).filter((k) => k.includes(VERIFICATION_FILENAME));
      const logged = JSON.stringify(proxy.logs).includes(secret);
      const wrong: string[] = [];
      if (leaked.includes(secret)) wrong.push(`the reply repeats the secret: ${leaked}`);
      if (logged) wrong.push('the proxy log holds the secret');
      if (!/^BadValue/.test(escaped)) wrong.push(`${escaped}; the proxy wrote [${written.join(',')}] outside its --backup-root`);
      assert.deepEqual(wrong, []);
    } finally {
      await client.close();
      await proxy.stop();
      await server.stop();
      server.cleanup();
    }
  });
});
