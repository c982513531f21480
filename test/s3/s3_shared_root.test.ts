/**
 * `hotbackup list` and `purge` on S3 roots shaped as people share them, against a real
 * radosgw: one root written by sidecar proxies on several machines (each reaching its
 * mongod as 127.0.0.1:27017 with the same dbpath), a bucket's top holding other things
 * beside backups, more than 1000 prefixes, and a prefix named by hand with a backslash.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { runCli } from '../helpers/cli_run.js';
import { keysUnder, putCrafted, putObject, putUnfinished } from '../helpers/s3_backups.js';
import { endedMarker, runningMarker } from '../../src/backup/backup_marker.js';
import { ErrorCodes } from '../../src/errors.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;

interface Listed {
  root: string;
  backups: Array<{ name: string; path: string; complete: boolean; bytes: number | null; source: { hostname: string | null } | null }>;
}

describe('list and purge of shared and odd S3 roots', { skip }, () => {
  let rgw: Radosgw;
  const cli = (args: string[]) => runCli(args, rgw.env());
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);

  before(async () => {
    rgw = await startRadosgw();
  });
  after(async () => {
    await rgw?.stop();
  });

  it('purge --keep 1 of a root shared by the proxies of two machines keeps the newest backup of each, and list names the machine', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    const file = new Map([['a.wt', Buffer.from('a')]]);
    await putCrafted(client, bucket, 'nightly/db-a-1', file, { finishedAt: hoursAgo(48), hostname: 'db-a' });
    await putCrafted(client, bucket, 'nightly/db-b-1', file, { finishedAt: hoursAgo(47), hostname: 'db-b' });
    await putCrafted(client, bucket, 'nightly/db-a-2', file, { finishedAt: hoursAgo(24), hostname: 'db-a' });
    await putCrafted(client, bucket, 'nightly/db-b-2', file, { finishedAt: hoursAgo(23), hostname: 'db-b' });
    const json = JSON.parse((await cli(['list', `s3://${bucket}/nightly`, '--json'])).stdout) as Listed;
    assert.deepEqual(json.backups.map((b) => b.source?.hostname), ['db-a', 'db-b', 'db-a', 'db-b']);
    const run = await cli(['purge', `s3://${bucket}/nightly`, '--keep', '1']);
    assert.equal(run.code, 0, run.stderr);
    const left = new Set((await keysUnder(client, bucket, 'nightly/')).map((key) => key.split('/')[1]));
    assert.deepEqual([...left].sort(), ['db-a-2', 'db-b-2']);
  });

  it('purge --remove-incomplete deletes an ended backup whose prefix has a name parseS3Url refuses (a backslash), and goes on', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    const ended = endedMarker(runningMarker({ backupId: randomUUID(), startedAt: new Date() }), { code: ErrorCodes.Interrupted, codeName: 'Interrupted', errmsg: 'aborted', extra: {} }, new Date(), 'aborted');
    await putUnfinished(client, bucket, 'root/a\\b', ended, { 'x.wt': 'x' });
    await putUnfinished(client, bucket, 'root/c', ended, { 'x.wt': 'x' });
    const run = await cli(['purge', `s3://${bucket}/root`, '--keep', '1', '--remove-incomplete']);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(await keysUnder(client, bucket, 'root/'), []);
  });

  it('list and purge of s3://bucket (its top) holding backups and prefixes of something else: the others are listed incomplete and never deleted', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    await putCrafted(client, bucket, 'b1', new Map([['x.wt', Buffer.from('x')]]));
    await putObject(client, bucket, 'photos/cat.jpg', 'meow');
    await putObject(client, bucket, 'loose.txt', 'loose');
    const listed = await cli(['list', `s3://${bucket}`, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const doc = JSON.parse(listed.stdout) as Listed;
    assert.equal(doc.root, `s3://${bucket}`);
    assert.deepEqual(
      doc.backups.map((b) => [b.name, b.path, b.complete, b.bytes]).sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
      [
        ['b1', `s3://${bucket}/b1`, true, 1],
        ['photos', `s3://${bucket}/photos`, false, 4],
      ],
    );
    const purged = await cli(['purge', `s3://${bucket}`, '--keep', '1', '--remove-incomplete']);
    assert.equal(purged.code, 0, purged.stderr);
    const keys = await keysUnder(client, bucket);
    assert.ok(keys.some((k) => k.startsWith('photos/cat.jpg ')) && keys.some((k) => k.startsWith('loose.txt ')), keys.join(','));
  });

  it('list: a root of more than 1000 prefixes (the listing of CommonPrefixes is paginated)', async () => {
    const bucket = await rgw.createBucket();
    const client = rgw.client();
    const names = Array.from({ length: 1003 }, (_, i) => `p${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 32) await Promise.all(names.slice(i, i + 32).map((n) => putObject(client, bucket, `root/${n}/f`, 'f')));
    const listed = await cli(['list', `s3://${bucket}/root`, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as Listed).backups.length, 1003);
  });
});
