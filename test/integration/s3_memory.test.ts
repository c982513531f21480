/**
 * Memory of a backup to S3 is bounded by the upload's part buffers, not by the data:
 * the proxy's peak RSS (VmHWM, every thread of the process: /proc/<pid>/status, proc(5))
 * backing up ~1 GB to radosgw is within 64 MiB of its peak backing up ~100 MB, each
 * measured in a fresh proxy process.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Binary, MongoClient } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { s3Manifest } from '../helpers/s3_readback.js';

const MiB = 1024 * 1024;
const DOC_BYTES = 8 * MiB;
const available = radosgwAvailable();

/** A field of /proc/<pid>/status, in bytes. */
function statusBytes(pid: number, field: 'VmHWM'): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  const kib = Number(/(\d+)\s+kB/.exec(line ?? '')?.[1]);
  assert.ok(Number.isFinite(kib), `${field} in /proc/${pid}/status`);
  return kib * 1024;
}

describe('proxy memory backing up to s3://', { skip: available.ok ? false : available.reason }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  let s3: S3Client;
  let bucket: string;
  let docs = 0;

  /** Grows the database by incompressible documents of 8 MiB (few, large inserts) to about `bytes`. */
  async function growTo(bytes: number): Promise<void> {
    const client = new MongoClient(server.uri);
    try {
      const coll = client.db('app').collection<{ _id: number; blob: Binary }>('blobs');
      while (docs * DOC_BYTES < bytes) await coll.insertOne({ _id: docs++, blob: new Binary(randomBytes(DOC_BYTES)) });
      await client.db('admin').command({ fsync: 1 });
    } finally {
      await client.close();
    }
  }

  /** Backs up to `prefix` in a fresh proxy; returns its peak RSS and the bytes backed up. */
  async function peakDuringBackup(prefix: string): Promise<{ peak: number; bytes: number }> {
    const proxy = await startProxy(server, [], rgw.env());
    const client = new MongoClient(proxy.uri);
    try {
      await client.connect();
      await client.db('admin').command({ backupStart: `s3://${bucket}/${prefix}` });
      const peak = statusBytes(proxy.child.pid as number, 'VmHWM');
      return { peak, bytes: (await s3Manifest(s3, { bucket, prefix })).totals.bytes };
    } finally {
      await client.close();
      await proxy.stop();
    }
  }

  before(async () => {
    rgw = await startRadosgw();
    s3 = rgw.client();
    bucket = await rgw.createBucket();
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
    s3?.destroy();
    await rgw?.stop();
  });

  it('peaks within 64 MiB for 1 GB of what it peaks at for 100 MB', async (t) => {
    await growTo(100 * MiB);
    const small = await peakDuringBackup('small');
    await growTo(1000 * MiB);
    const large = await peakDuringBackup('large');
    t.diagnostic(`peak RSS ${(small.peak / MiB).toFixed(0)} MiB for ${(small.bytes / MiB).toFixed(0)} MiB, ${(large.peak / MiB).toFixed(0)} MiB for ${(large.bytes / MiB).toFixed(0)} MiB`);
    assert.ok(large.bytes >= 9 * small.bytes, `the large backup (${large.bytes}) is about ten times the small one (${small.bytes})`);
    assert.ok(large.peak - small.peak <= 64 * MiB, `peak RSS grew by ${((large.peak - small.peak) / MiB).toFixed(1)} MiB`);
  });
});
