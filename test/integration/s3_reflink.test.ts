/**
 * The reflink strategy with an s3:// destination: a destination on no filesystem is never
 * cloned into, so the clones are staged beside the dbpath, uploaded, and the staging
 * removed; the objects are exactly the manifest's files.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';
import { untilCopying, untilBackupEnds } from '../helpers/poll.js';
import { assertS3MatchesManifest } from '../helpers/s3_readback.js';
import { workDirs } from '../../src/backup/work_dirs.js';

const available = radosgwAvailable();
const skip = !available.ok ? available.reason : loopFsUnavailable('xfs');

describe('the reflink strategy backing up to s3://', { skip: skip ?? false }, () => {
  let rgw: Radosgw;
  let fsys: LoopFs;
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  let s3: S3Client;

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    fsys = await mountLoopFs('xfs', 400);
    const dbpath = path.join(fsys.dir, 'db');
    fs.mkdirSync(dbpath);
    server = await startDevServer({ dbpath, args: ['--no-backup-cursor', '--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
    proxy = await startProxy(server, [], rgw.env());
    client = new MongoClient(proxy.uri);
    await client.db('app').collection('c').insertMany(Array.from({ length: 200 }, (_, i) => ({ i, pad: 'r'.repeat(4096) })));
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    await fsys?.remove();
    s3?.destroy();
    await rgw?.stop();
  });

  it('stages the clones, uploads them, and removes the staging', async () => {
    const bucket = await rgw.createBucket();
    const admin = client.db('admin');
    const staging = workDirs(server.dbpath).stagingRoot;
    await admin.command({ backupThrottle: '4MB' });
    await admin.command({ backupStart: `s3://${bucket}/cloned`, strategy: 'reflink', async: true });
    const copying = await untilCopying(admin);
    assert.equal(copying['strategy'], 'reflink');
    assert.deepEqual(fs.readdirSync(staging), [`hotbackup-staging-${String(copying['backupId'])}`], 'the clones are staged beside the dbpath');
    await admin.command({ backupThrottle: 0 });
    const last = (await untilBackupEnds(admin))['last'] as Document;
    assert.equal(last['state'], 'complete', String(last['errmsg']));
    assert.equal(last['strategy'], 'reflink');
    assert.deepEqual(fs.readdirSync(staging), [], 'the staging is removed');
    const manifest = await assertS3MatchesManifest(s3, { bucket, prefix: 'cloned' });
    assert.equal(manifest.strategy, 'reflink');
  });
});
