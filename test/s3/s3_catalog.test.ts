/**
 * `hotbackup list s3://…` and `hotbackup purge s3://…` as an operator runs them, against a
 * real radosgw, on a root holding real backups (taken through the proxy from the dev
 * server, then put on S3 object by object) and unfinished ones crafted from a marker and
 * a few objects:
 * - list: complete and unfinished prefixes with the local catalog's states, sizes (the
 *   manifest's, or the listing's), order and verification column; the streamed oplog's
 *   prefix, loose objects and hidden prefixes passed over;
 * - purge --dry-run changes nothing; purge --keep 1 of 3 deletes the 2 oldest (the base of
 *   the kept incremental among them): no object and no multipart upload left under them;
 * - a purge cut short after a manifest's deletion leaves an incomplete prefix, its other
 *   objects still there;
 * - --remove-incomplete deletes the ended ones, never one still running, one whose writer
 *   cannot be checked from here, nor a prefix without our marker;
 * - a missing bucket, refused credentials and an unreachable server: one line naming S3's
 *   code, exit 1, no secret printed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { CLI, CLI_NODE_FLAGS, tempDir } from '../helpers/paths.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { beginUpload, keysUnder, putBackup, putObject, putUnfinished } from '../helpers/s3_backups.js';
import { MANIFEST_FILENAME, MANIFEST_FORMAT, readManifest, type Manifest } from '../../src/backup/manifest.js';
import { endedMarker, INCOMPLETE_MARKER_FILENAME, runningMarker, type BackupMarker } from '../../src/backup/backup_marker.js';
import { VERIFICATION_FILENAME } from '../../src/backup/verification_record.js';
import { ErrorCodes } from '../../src/errors.js';
import { listMultipartUploads } from '../../src/s3/s3_objects.js';
import type { EntryJson } from '../../src/cli/catalog_output.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

type Listed = { root: string; backups: EntryJson[] };
type Purged = { root: string; keep: number; dryRun: boolean; backups: Array<EntryJson & { action: string; reason: string; removed: boolean }> };

const COMPLETE = ['full1', 'full2', 'incr3'] as const;
/** Unfinished ones, put in name order: dated by their newest object, they list in this order after the complete ones. */
const UNFINISHED = ['x-aborted', 'x-failed', 'x-foreign', 'x-interrupted', 'x-running', 'x-unknown'] as const;
const ROOT = 'nightly';

function marker(state: 'running' | 'aborted' | 'failed', writer?: BackupMarker['writer']): BackupMarker {
  const running = runningMarker({ backupId: randomUUID(), startedAt: new Date() });
  const withWriter = writer === undefined ? running : { ...running, writer };
  if (state === 'running') return withWriter;
  const code = state === 'aborted' ? ErrorCodes.Interrupted : ErrorCodes.OperationFailed;
  return endedMarker(withWriter, { code, codeName: state === 'aborted' ? 'Interrupted' : 'OperationFailed', errmsg: `the backup ${state}`, extra: {} }, new Date(), state);
}

describe('hotbackup list and purge on an s3:// root', { skip }, () => {
  let rgw: Radosgw;
  let s3: S3Client;
  const scratch = tempDir('s3-catalog');
  const manifests = new Map<string, Manifest>();

  before(async () => {
    // Three real backups of one source, the third an incremental against the second; the
    // dev server is stopped before radosgw starts (the machine is small).
    const server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)', '--checkpoint-interval', '0'] });
    const proxy = await startProxy(server);
    const client = new MongoClient(proxy.uri);
    try {
      const admin = client.db('admin');
      await client.db('app').collection<{ _id: number; pad: string }>('a').insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, pad: 'a'.repeat(500) })));
      await admin.command({ fsync: 1 });
      await admin.command({ backupStart: path.join(scratch.dir, 'full1') });
      await admin.command({ backupStart: path.join(scratch.dir, 'full2') });
      await admin.command({ backupStart: path.join(scratch.dir, 'incr3'), incrementalBase: path.join(scratch.dir, 'full2') });
    } finally {
      await client.close();
      await proxy.stop();
      await server.stop();
      server.cleanup();
    }
    for (const name of COMPLETE) manifests.set(name, await readManifest(path.join(scratch.dir, name)));
    rgw = await startRadosgw();
    s3 = rgw.client();
  });

  after(async () => {
    s3?.destroy();
    await rgw?.stop();
    scratch.remove();
  });

  const env = (): Record<string, string> => ({ ...rgw.env(), AWS_MAX_ATTEMPTS: '2' });
  const hotbackup = (args: string[], extra: Record<string, string> = {}) => runCli(args, { ...env(), ...extra });

  /** A fresh bucket holding the root: the three backups, the unfinished ones, and what list passes over. Returns the bucket and each prefix's bytes. */
  async function populate(): Promise<{ bucket: string; url: string; bytes: Map<string, number> }> {
    const bucket = await rgw.createBucket();
    const bytes = new Map<string, number>();
    for (const name of COMPLETE) {
      await putBackup(s3, bucket, `${ROOT}/${name}`, path.join(scratch.dir, name));
      bytes.set(name, manifests.get(name)?.totals.bytes ?? -1);
    }
    const gone = spawnSync('true').pid;
    const markers: Record<(typeof UNFINISHED)[number], BackupMarker | undefined> = {
      'x-aborted': marker('aborted'),
      'x-failed': marker('failed'),
      'x-foreign': undefined,
      'x-interrupted': marker('running', { pid: gone, hostname: os.hostname() }),
      'x-running': marker('running'),
      'x-unknown': marker('running', { pid: 4242, hostname: `not-${os.hostname()}` }),
    };
    for (const name of UNFINISHED) {
      bytes.set(name, await putUnfinished(s3, bucket, `${ROOT}/${name}`, markers[name], { WiredTiger: `half of ${name}`, 'journal/WiredTigerLog.0000000001': 'x'.repeat(3000) }));
    }
    // Passed over: the streamed oplog's prefix, an object beside the backups, a hidden prefix.
    await putObject(s3, bucket, `${ROOT}/oplog/oplog000000.bson`, '');
    await putObject(s3, bucket, `${ROOT}/README`, 'not a backup');
    await putObject(s3, bucket, `${ROOT}/.hidden/x`, 'x');
    return { bucket, url: `s3://${bucket}/${ROOT}`, bytes };
  }

  it('list: complete and unfinished backups with the local states, sizes and order; a verification recorded beside a manifest', async () => {
    const { bucket, url, bytes } = await populate();
    // full2 verified where it lies; incr3's record names another place (a copy carried along): not its verification.
    const verified = async (name: string, directory: string, ok: boolean): Promise<void> => {
      const manifestBytes = fs.readFileSync(path.join(scratch.dir, name, MANIFEST_FILENAME));
      const manifest = manifests.get(name) as Manifest;
      const record = {
        format: MANIFEST_FORMAT, kind: 'verification', version: 1, directory, backupId: manifest.backupId, manifestChecksum: xxh3Hex(manifestBytes),
        verifiedAt: '2026-11-30T10:00:00.000Z', ok, state: ok ? 'complete' : 'damaged', problems: ok ? 0 : 1, files: manifest.totals.files,
        bytes: manifest.totals.bytes, bytesHashed: manifest.totals.bytes, seconds: 1, by: 'hotbackup verify', writer: { pid: 1, hostname: os.hostname() },
      };
      await putObject(s3, bucket, `${ROOT}/${name}/${VERIFICATION_FILENAME}`, JSON.stringify(record));
    };
    await verified('full2', `${url}/full2`, true);
    await verified('incr3', path.join(scratch.dir, 'incr3'), true);

    const run = await hotbackup(['list', `${url}/`]);
    assert.equal(run.code, 0, run.stderr);
    const listed = JSON.parse(run.stdout) as Listed;
    assert.equal(listed.root, url);
    assert.deepEqual(
      listed.backups.map((b) => [b.name, b.path, b.complete, b.bytes]),
      [...COMPLETE, ...UNFINISHED].map((name) => [name, `${url}/${name}`, (COMPLETE as readonly string[]).includes(name), bytes.get(name)]),
    );
    const byName = new Map(listed.backups.map((b) => [b.name, b]));
    assert.deepEqual(byName.get('full2')?.verified, { ok: true, verifiedAt: '2026-11-30T10:00:00.000Z' });
    assert.equal(byName.get('incr3')?.verified, null, 'a record naming another place is not this backup\'s verification');
    assert.equal(byName.get('incr3')?.base?.name, 'full2');
    assert.ok((byName.get('incr3')?.bytesReused ?? 0) > 0);
    const incomplete = (name: string): string => byName.get(name)?.incomplete ?? '';
    assert.match(incomplete('x-aborted'), /^an unfinished backup: no manifest, and its hotbackup-incomplete.json says it was aborted \(backup /);
    assert.match(incomplete('x-failed'), /says it failed \(backup /);
    assert.match(incomplete('x-interrupted'), /says running, but the proxy writing it \(pid \d+ on .*\) is gone/);
    assert.match(incomplete('x-running'), /^a backup still being written \(by pid \d+/);
    assert.match(incomplete('x-unknown'), /which cannot be checked from this host/);
    assert.match(incomplete('x-foreign'), /^no manifest and no hotbackup-incomplete.json: not a backup of ours$/);

    // On a terminal: the table, an unfinished prefix's size from the listing.
    const command = [process.execPath, ...CLI_NODE_FLAGS, CLI, 'list', url].join(' ');
    const screen = execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, ...env() } }).replaceAll('\r', '');
    assert.match(screen, /^NAME +FINISHED +SIZE +REUSED +STRATEGY +BASE +COMPLETE +VERIFIED/);
    assert.match(screen, /\nfull2 .* backupCursor +- +yes +yes 2026-11-30\n/);
    assert.match(screen, /\nx-aborted +\S+ +\d+(\.\d+)? KiB +- +- +- +no +-\n/);
    assert.match(screen, /\nIncomplete:\n {2}x-aborted: an unfinished backup/);
    assert.doesNotMatch(screen, /oplog|README|hidden/);
  });

  it('purge --dry-run says what it would delete and changes nothing', async () => {
    const { bucket, url } = await populate();
    await beginUpload(s3, bucket, `${ROOT}/full1/collection-0.wt`);
    const before = await keysUnder(s3, bucket);
    const run = await hotbackup(['purge', url, '--keep', '1', '--dry-run', '--remove-incomplete']);
    assert.equal(run.code, 0, run.stderr);
    const purged = JSON.parse(run.stdout) as Purged;
    assert.equal(purged.dryRun, true);
    assert.deepEqual(purged.backups.filter((b) => b.action === 'remove').map((b) => [b.name, b.removed]), [['full1', false], ['full2', false], ['x-aborted', false], ['x-failed', false], ['x-interrupted', false]]);
    assert.deepEqual(await keysUnder(s3, bucket), before);
    assert.equal((await listMultipartUploads(s3, { bucket, prefix: `${ROOT}/full1` })).length, 1);
  });

  it('purge --keep 1 of three backups deletes the two oldest, objects and multipart uploads, and keeps the newest whole', async () => {
    const { bucket, url } = await populate();
    await beginUpload(s3, bucket, `${ROOT}/full1/collection-0.wt`);
    await beginUpload(s3, bucket, `${ROOT}/full2/journal/WiredTigerLog.0000000002`);
    const incrBefore = await keysUnder(s3, bucket, `${ROOT}/incr3/`);
    const unfinishedBefore = await keysUnder(s3, bucket, `${ROOT}/x-`);
    const run = await hotbackup(['purge', url, '--keep', '1']);
    assert.equal(run.code, 0, run.stderr);
    const purged = JSON.parse(run.stdout) as Purged;
    const action = new Map(purged.backups.map((b) => [b.name, b]));
    assert.deepEqual([...COMPLETE].map((name) => [name, action.get(name)?.action, action.get(name)?.removed]), [['full1', 'remove', true], ['full2', 'remove', true], ['incr3', 'keep', false]]);
    // The base of the kept incremental goes: its unchanged files are the incremental's own objects.
    assert.match(action.get('full2')?.reason ?? '', /the base of incr3, which holds its own copies \(server-side copies\) of the \d+ files it took from it/);
    for (const name of UNFINISHED) assert.equal(action.get(name)?.action, 'leave', name);
    for (const name of ['full1', 'full2']) {
      assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/${name}/`), [], name);
      assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: `${ROOT}/${name}` }), [], name);
    }
    assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/incr3/`), incrBefore);
    assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/x-`), unfinishedBefore);
    const after = JSON.parse((await hotbackup(['list', url])).stdout) as Listed;
    assert.deepEqual(after.backups.map((b) => b.name), ['incr3', ...UNFINISHED]);
  });

  it('a purge cut short after deleting a manifest leaves an incomplete prefix saying it ended, which the next purge --remove-incomplete finishes', async () => {
    const { bucket, url } = await populate();
    const full1Before = await keysUnder(s3, bucket, `${ROOT}/full1/`);
    const full2Before = await keysUnder(s3, bucket, `${ROOT}/full2/`);
    const run = await hotbackup(['purge', url, '--keep', '1'], { HOTBACKUP_TEST_FAILPOINTS: 'failPurgeAfterManifestDeletion' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^hotbackup purge: could not delete s3:\/\/\S+\/nightly\/full1: .*the backups after it were not deleted\n$/);
    // A marker went in, then the manifest went; every other object is still there.
    const full1After = await keysUnder(s3, bucket, `${ROOT}/full1/`);
    const withoutManifest = full1Before.filter((key) => !key.startsWith(`${ROOT}/full1/${MANIFEST_FILENAME} `));
    assert.deepEqual(full1After.filter((key) => !key.startsWith(`${ROOT}/full1/${INCOMPLETE_MARKER_FILENAME} `)), withoutManifest);
    assert.equal(full1After.length, withoutManifest.length + 1, 'the marker saying the backup is being deleted');
    assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/full2/`), full2Before);
    const listed = JSON.parse((await hotbackup(['list', url])).stdout) as Listed;
    const full1 = listed.backups.find((b) => b.name === 'full1');
    assert.equal(full1?.complete, false);
    assert.match(full1?.incomplete ?? '', /^an unfinished backup: no manifest, and its hotbackup-incomplete\.json says it was aborted/);
    // The next purge that may delete ended backups finishes the job.
    const again = await hotbackup(['purge', url, '--keep', '1', '--remove-incomplete']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/full1/`), []);
  });

  it('a manifest whose deletion fails leaves the backup complete, without the purge marker', async () => {
    const { bucket, url } = await populate();
    const full1Before = await keysUnder(s3, bucket, `${ROOT}/full1/`);
    const run = await hotbackup(['purge', url, '--keep', '1'], { HOTBACKUP_TEST_FAILPOINTS: 'failPurgeManifestDeletion' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /failPurgeManifestDeletion/);
    assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/full1/`), full1Before, 'the marker written before the manifest was deleted again');
    const listed = JSON.parse((await hotbackup(['list', url])).stdout) as Listed;
    assert.equal(listed.backups.find((b) => b.name === 'full1')?.complete, true);
  });

  it('--remove-incomplete deletes the unfinished backups that ended, never a running one, one it cannot check, nor a prefix without our marker', async () => {
    const { bucket, url } = await populate();
    await beginUpload(s3, bucket, `${ROOT}/x-aborted/collection-7.wt`);
    await beginUpload(s3, bucket, `${ROOT}/x-running/collection-7.wt`);
    const completeBefore = await keysUnder(s3, bucket, `${ROOT}/f`);
    const run = await hotbackup(['purge', url, '--keep', '3', '--remove-incomplete']);
    assert.equal(run.code, 0, run.stderr);
    const purged = JSON.parse(run.stdout) as Purged;
    assert.deepEqual(purged.backups.filter((b) => b.removed).map((b) => b.name), ['x-aborted', 'x-failed', 'x-interrupted']);
    for (const name of ['x-aborted', 'x-failed', 'x-interrupted']) assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/${name}/`), [], name);
    assert.deepEqual(await listMultipartUploads(s3, { bucket, prefix: `${ROOT}/x-aborted` }), []);
    for (const name of ['x-running', 'x-unknown', 'x-foreign']) assert.notDeepEqual(await keysUnder(s3, bucket, `${ROOT}/${name}/`), [], name);
    assert.equal((await listMultipartUploads(s3, { bucket, prefix: `${ROOT}/x-running` })).length, 1, 'a running backup\'s upload is left alone');
    assert.deepEqual(await keysUnder(s3, bucket, `${ROOT}/f`), completeBefore);
    const reasons = new Map(purged.backups.map((b) => [b.name, b.reason]));
    assert.match(reasons.get('x-running') ?? '', /: never removed$/);
    assert.match(reasons.get('x-unknown') ?? '', /left alone, even with --remove-incomplete$/);
  });

  it('a missing bucket, refused credentials, an unreachable server, a root with nothing under it: one line naming S3\'s code, exit 1, no secret; a malformed URL or AWS_* value is a usage error', async () => {
    const missing = await hotbackup(['list', `s3://no-such-bucket-${randomUUID().slice(0, 8)}/${ROOT}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^hotbackup list: S3 list of s3:\/\/no-such-bucket-\w+\/nightly failed: NoSuchBucket \(HTTP 404\): the bucket does not exist[^\n]*\n$/);

    const bucket = await rgw.createBucket();
    const secret = `wrong-${randomUUID()}`;
    const refused = await hotbackup(['purge', `s3://${bucket}/${ROOT}`, '--keep', '1'], { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: secret });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^hotbackup purge: S3 list of s3:\/\/\S+ failed: SignatureDoesNotMatch \(HTTP 403\): the credentials were refused[^\n]*\n$/);
    const unknownKey = await hotbackup(['list', `s3://${bucket}/${ROOT}`], { AWS_ACCESS_KEY_ID: 'NOSUCHKEY0000000000', AWS_SECRET_ACCESS_KEY: secret });
    assert.equal(unknownKey.code, 1);
    assert.match(unknownKey.stderr, /^hotbackup list: S3 list of s3:\/\/\S+ failed: InvalidAccessKeyId \(HTTP 403\)[^\n]*\n$/);
    for (const run of [refused, unknownKey]) {
      assert.ok(!run.stderr.includes(secret) && !run.stdout.includes(secret), 'the secret key is never printed');
      assert.ok(!run.stderr.includes(rgw.secretAccessKey));
    }

    const closed = new URL(rgw.endpoint);
    closed.port = String(await closedPort());
    const unreachable = await hotbackup(['list', `s3://${bucket}/${ROOT}`], { AWS_ENDPOINT_URL_S3: closed.origin, AWS_MAX_ATTEMPTS: '1' });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^hotbackup list: S3 list of s3:\/\/\S+ failed: ECONNREFUSED: the S3 server could not be reached[^\n]*\n$/);

    const malformed = await hotbackup(['list', 's3://Bad_Bucket/x']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /^hotbackup list: Backup root s3:\/\/Bad_Bucket\/x is not a valid S3 location: /);

    // An unusable AWS_* value is what was given being wrong, before any request: 2 from every command.
    for (const args of [['list', `s3://${bucket}/${ROOT}`], ['purge', `s3://${bucket}/${ROOT}`, '--keep', '1'], ['verify', `s3://${bucket}/${ROOT}/b`], ['restore', `s3://${bucket}/${ROOT}/b`, '--to', path.join(scratch.dir, 'never')]]) {
      const badSetting = await hotbackup(args, { AWS_ENDPOINT_URL_S3: 'ftp://rgw.example' });
      assert.equal(badSetting.code, 2, `${args[0]}: ${badSetting.stderr}`);
      assert.match(badSetting.stderr, /the S3 endpoint must be http:\/\/ or https:\/\//);
    }

    // S3 has no empty directories: a root with no object under it is a missing one (mistyped?), exit 1 as for a directory.
    const mistyped = await hotbackup(['list', `s3://${bucket}/${ROOT}`]);
    assert.equal(mistyped.code, 1, mistyped.stderr);
    assert.match(mistyped.stderr, /^hotbackup list: s3:\/\/\S+\/nightly does not exist: there is no object under it/);
    assert.equal((await hotbackup(['purge', `s3://${bucket}/${ROOT}`, '--keep', '1'])).code, 1);
    // An empty bucket's top, or a root holding only something else, exists and holds no backup.
    const emptyBucket = await hotbackup(['list', `s3://${bucket}`]);
    assert.equal(emptyBucket.code, 0, emptyBucket.stderr);
    assert.deepEqual((JSON.parse(emptyBucket.stdout) as Listed).backups, []);
    await putObject(s3, bucket, `${ROOT}/README`, 'backups go here');
    const empty = await hotbackup(['list', `s3://${bucket}/${ROOT}`]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.deepEqual((JSON.parse(empty.stdout) as Listed).backups, []);
  });
});

/** A port nothing listens on: one the kernel just gave and took back. */
async function closedPort(): Promise<number> {
  const net = await import('node:net');
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
