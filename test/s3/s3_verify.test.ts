/**
 * `hotbackup verify s3://bucket/prefix` as an operator runs it, against a real radosgw, on
 * a real backup (taken through the proxy in front of the dev server, then put object by
 * object: test/helpers/s3_backup_fixture.ts): a good one passes (exit 0) and its verdict
 * is recorded as an object beside the manifest; a flipped byte, a missing, an extra and a
 * resized object are each named (exit 1); no manifest with a marker that says failed is
 * refused in the local verify's words (exit 3); wrong credentials and a bucket that does
 * not exist are one line naming S3's code, with no secret in it; backupVerify in the
 * proxy takes s3:// too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { corruptObject, deleteObject, getObject, keysBelow, putObject, takeBackup, putBackup } from '../helpers/s3_backup_fixture.js';
import { readManifest, type Manifest } from '../../src/backup/manifest.js';
import { endedMarker, runningMarker, serializeMarker } from '../../src/backup/backup_marker.js';
import { parseVerificationRecordText } from '../../src/backup/verification_record.js';
import { xxh3Hex } from '../helpers/checksum.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

interface VerdictJson {
  ok: boolean;
  state: string;
  directory: string;
  files: number;
  bytesHashed: number;
  problems: Array<{ file: string; problem: string }>;
  code?: number;
  codeName?: string;
  errmsg?: string;
}

describe('hotbackup verify s3://', { skip }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  let proxy: RunningProxy;
  const scratch = tempDir('s3-verify');
  const backupDir = path.join(scratch.dir, 'backup');
  let manifest: Manifest;
  /** A fresh bucket holding the backup at `backup`: s3://<bucket>/backup. */
  const uploaded = async (): Promise<{ bucket: string; url: string }> => {
    const bucket = await rgw.createBucket();
    await putBackup(rgw.client(), bucket, 'backup', backupDir);
    return { bucket, url: `s3://${bucket}/backup` };
  };
  const verify = (...args: string[]) => runCli(['verify', ...args], rgw.env());
  /** The collection file the manifest lists with the most bytes. */
  const largestCollection = () => [...manifest.files].filter((f) => f.path.startsWith('collection-')).sort((a, b) => b.size - a.size)[0]!.path;

  before(async () => {
    rgw = await startRadosgw();
    // Journal files of 2 MB, not mongod's 100 MB: the backup is then ~10 MB, not ~104 MB,
    // and every download, verify and restore of it takes a tenth of the time.
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
    proxy = await startProxy(server, [], rgw.env());
    await takeBackup(proxy.uri, backupDir, 4);
    manifest = await readManifest(backupDir);
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    await rgw?.stop();
    scratch.remove();
  });

  it('passes a good backup (exit 0), and records the verdict beside the manifest, as list reads it', async () => {
    const { bucket, url } = await uploaded();
    const run = await verify(url);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, new RegExp(`^${url}: complete\\. Backup ${manifest.backupId} \\(backupCursor, finished [^)]+\\): ${manifest.files.length} files, [\\d.]+ MiB, every checksum matches \\(checked in [\\d.]+ s\\)\\.\\n$`));
    const read = parseVerificationRecordText((await getObject(rgw.client(), bucket, 'backup/hotbackup-verified.json')).toString('utf8'));
    assert.equal(read.kind, 'present');
    const { record } = read as Extract<typeof read, { kind: 'present' }>;
    assert.equal(record.directory, url);
    assert.equal(record.backupId, manifest.backupId);
    assert.equal(record.manifestChecksum, xxh3Hex(await getObject(rgw.client(), bucket, 'backup/hotbackup-manifest.json')));
    assert.equal(record.ok, true);
    assert.equal(record.by, 'hotbackup verify');
    assert.equal(record.bytesHashed, manifest.totals.bytes);
    // hotbackup list reads it (an s3:// root of one backup: the bucket's top).
    const list = await runCli(['list', `s3://${bucket}`, '--json'], rgw.env());
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout) as { backups: Array<{ name: string; verified: { ok: boolean; verifiedAt: string } | null }> }).backups;
    assert.deepEqual(listed.map((b) => [b.name, b.verified?.ok, b.verified?.verifiedAt]), [['backup', true, record.verifiedAt]]);
    // The record is about the backup, not of it: verifying again does not call it extra.
    const again = await verify(url, '--json');
    assert.equal(again.code, 0, again.stderr);
    const doc = JSON.parse(again.stdout) as VerdictJson;
    assert.deepEqual([doc.ok, doc.state, doc.directory, doc.files, doc.problems], [true, 'complete', url, manifest.files.length, []]);
  });

  it('names a corrupted, a missing, an extra and a resized object (exit 1), and records the backup as damaged', async () => {
    const { bucket, url } = await uploaded();
    const s3 = rgw.client();
    const corrupted = largestCollection();
    await corruptObject(s3, bucket, `backup/${corrupted}`);
    const missing = 'WiredTiger.backup';
    await deleteObject(s3, bucket, `backup/${missing}`);
    await putObject(s3, bucket, 'backup/stray.wt', 'not of this backup');
    // A claim left by a backup that could not remove it: about the backup, not of it (not named extra).
    await putObject(s3, bucket, `backup/.hotbackup-claim-${randomUUID()}`, '');
    const resized = manifest.files.find((f) => f.path !== corrupted && f.path !== missing && f.path.endsWith('.wt'))!.path;
    await putObject(s3, bucket, `backup/${resized}`, Buffer.concat([await getObject(s3, bucket, `backup/${resized}`), Buffer.from('more')]));
    const run = await verify(url);
    assert.equal(run.code, 1, run.stderr);
    const lines = run.stdout.trim().split('\n').sort();
    assert.deepEqual(lines.map((line) => line.split(/\s+/).slice(0, 2).join(' ')).sort(), [`corrupted ${corrupted}:`, 'extra stray.wt:', `missing ${missing}:`, `resized ${resized}:`].sort());
    assert.match(run.stdout, new RegExp(`corrupted\\s+${corrupted}: its xxh3-64 checksum is [0-9a-f]{16}, the manifest says [0-9a-f]{16}`));
    assert.match(run.stdout, new RegExp(`resized\\s+${resized}: \\d+ bytes, the manifest says \\d+`));
    assert.match(run.stderr, new RegExp(`^hotbackup verify: ${url} is damaged: .*Do not restore it; take a new backup\\.\\n$`));
    const read = parseVerificationRecordText((await getObject(s3, bucket, 'backup/hotbackup-verified.json')).toString('utf8'));
    assert.equal(read.kind === 'present' && read.record.ok, false, 'list shows FAILED');
  });

  it('refuses a prefix without a manifest whose marker says the backup failed, in the local verify\'s words (exit 3)', async () => {
    const bucket = await rgw.createBucket();
    await putBackup(rgw.client(), bucket, 'failed', backupDir, ['hotbackup-manifest.json']);
    const marker = endedMarker(runningMarker({ backupId: manifest.backupId, startedAt: new Date('2026-11-30T01:00:00Z') }), { code: 6, codeName: 'HostUnreachable', errmsg: 'backup failed: S3 upload failed: ECONNREFUSED', extra: {} }, new Date('2026-11-30T01:02:00Z'), 'failed');
    await putObject(rgw.client(), bucket, 'failed/hotbackup-incomplete.json', serializeMarker(marker));
    const url = `s3://${bucket}/failed`;
    const run = await verify(url, '--json');
    assert.equal(run.code, 3, run.stderr);
    const doc = JSON.parse(run.stdout) as VerdictJson;
    assert.equal(doc.state, 'failed');
    assert.equal(doc.codeName, 'OperationIncomplete');
    assert.equal(
      doc.errmsg,
      `${url} is not a complete backup: backup ${manifest.backupId} (started 2026-11-30T01:00:00.000Z) failed: S3 upload failed: ECONNREFUSED. It has no manifest, so none of its files can be trusted: remove it and take a new backup.`,
    );
    assert.deepEqual(await keysBelow(rgw.client(), bucket, 'failed').then((keys) => keys.filter((k) => k.endsWith('verified.json'))), [], 'no verdict is recorded for no backup');
    const empty = await verify(`s3://${bucket}/nothing-here`);
    assert.equal(empty.code, 4);
    assert.equal(empty.stderr, `hotbackup verify: s3://${bucket}/nothing-here does not exist: there is no object under it\n`);
  });

  it('says wrong credentials and a missing bucket in one line naming S3\'s code, and prints no secret (exits 5 and 4)', async () => {
    const { url } = await uploaded();
    const secret = 'wrong-secret-that-must-not-be-printed';
    const badKey = await runCli(['verify', url], { ...rgw.env(), AWS_SECRET_ACCESS_KEY: secret });
    assert.equal(badKey.code, 5, badKey.stderr);
    assert.match(badKey.stderr, /^hotbackup verify: S3 read of s3:\/\/[^ ]+ failed: SignatureDoesNotMatch \(HTTP 403\): the credentials were refused[^\n]*\n$/);
    assert.equal(`${badKey.stdout}${badKey.stderr}`.includes(secret), false);
    assert.equal(`${badKey.stdout}${badKey.stderr}`.includes(rgw.secretAccessKey), false);
    const noBucket = await verify('s3://no-such-bucket-here/backup');
    assert.equal(noBucket.code, 4, noBucket.stderr);
    assert.match(noBucket.stderr, /^hotbackup verify: S3 read of s3:\/\/no-such-bucket-here\/backup failed: NoSuchBucket \(HTTP 404\): the bucket does not exist[^\n]*\n$/);
  });

  it('backupVerify in the proxy verifies s3:// too, with the proxy\'s AWS environment', async () => {
    const { bucket, url } = await uploaded();
    const client = await MongoClient.connect(proxy.uri);
    try {
      const admin = client.db('admin');
      const good = await admin.command({ backupVerify: url });
      assert.deepEqual([good['ok'], good['state'], good['directory'], good['files']], [1, 'complete', url, manifest.files.length]);
      await corruptObject(rgw.client(), bucket, `backup/${largestCollection()}`);
      await assert.rejects(admin.command({ backupVerify: url }), (err: { codeName?: string; errmsg?: string }) => {
        assert.equal(err.codeName, 'DataCorruptionDetected');
        assert.match(err.errmsg ?? '', new RegExp(`^${url} is damaged: 1 corrupted \\(${largestCollection()}\\)`));
        return true;
      });
      const read = parseVerificationRecordText((await getObject(rgw.client(), bucket, 'backup/hotbackup-verified.json')).toString('utf8'));
      assert.equal(read.kind === 'present' && `${read.record.by} ${read.record.ok}`, 'backupVerify false');
    } finally {
      await client.close();
    }
  });
});
