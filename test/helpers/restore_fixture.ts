/**
 * What the restore tests share: backups of both kinds of WiredTiger backup, taken through
 * the proxy in front of the dev server ($backupCursor's, with WiredTiger.backup;
 * fsyncLock's, with WiredTiger.turtle and WiredTiger.wt); the document counts the dev
 * server serves from a dbpath; a flipped byte in a collection file; and the check that
 * the dev server, with WiredTiger's salvage or without, will not open a dbpath.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer } from './dev_server.js';

export type Counts = Record<string, number>;
export type Strategy = 'backupCursor' | 'fsyncLock';

/** Documents per collection, `db.collection` → count, of every database but the server's own. */
export async function countsOf(uri: string): Promise<Counts> {
  const client = await MongoClient.connect(uri);
  try {
    const counts: Counts = {};
    for (const db of ['app', 'shop']) {
      for (const { name } of await client.db(db).listCollections().toArray()) counts[`${db}.${name}`] = await client.db(db).collection(name).countDocuments();
    }
    return counts;
  } finally {
    await client.close();
  }
}

/** Opens `dbpath` with the dev server and returns its counts; the dev server is stopped again. */
export async function openAndCount(dbpath: string): Promise<Counts> {
  const server = await startDevServer({ dbpath });
  try {
    return await countsOf(server.uri);
  } finally {
    await server.stop();
  }
}

/**
 * Asserts that the dev server (real WiredTiger, as mongod opens it) refuses `dbpath`:
 * plainly, then with `salvage=true` (what `mongod --repair` opens WiredTiger with), then
 * plainly again (salvage replaces a turtle file it cannot read with a default one).
 * A server that does start is stopped, and the assertion fails with what it serves.
 */
export async function assertRefusedEvenWithSalvage(dbpath: string): Promise<void> {
  for (const args of [[], ['--wiredTigerEngineConfigString', 'salvage=true'], []]) {
    const started = await startDevServer({ dbpath, args }).then(
      (server) => server,
      (err: unknown) => {
        assert.match(String(err), /exited \(\d+\) before listening/);
        return undefined;
      },
    );
    if (started === undefined) continue;
    const counts = await countsOf(started.uri).finally(() => started.stop());
    assert.fail(`the dev server opened ${dbpath} (${args.join(' ') || 'no options'}), serving ${JSON.stringify(counts)}`);
  }
}

/** Flips one byte in the middle of the smallest (or largest) collection file of `dir`; returns its name. */
export function corruptCollection(dir: string, which: 'smallest' | 'largest'): string {
  const bySize = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('collection-'))
    .sort((a, b) => fs.statSync(path.join(dir, a)).size - fs.statSync(path.join(dir, b)).size);
  const name = (which === 'smallest' ? bySize[0] : bySize[bySize.length - 1]) as string;
  const fd = fs.openSync(path.join(dir, name), 'r+');
  const at = Math.floor(fs.fstatSync(fd).size / 2);
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, at);
  fs.writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
  fs.closeSync(fd);
  return name;
}

/**
 * Through the proxy at `uri`: some data in three collections of two databases, a backup
 * of each kind in `dirs`, then more writes that no backup holds. Resolves with the
 * counts at backup time.
 */
export async function takeBackups(uri: string, dirs: Record<Strategy, string>): Promise<Counts> {
  const client = await MongoClient.connect(uri);
  try {
    await client.db('app').collection('docs').insertMany(Array.from({ length: 3000 }, (_, i) => ({ i, pad: 'r'.repeat(300) })));
    await client.db('app').collection('notes').insertMany(Array.from({ length: 120 }, (_, i) => ({ i })));
    await client.db('shop').collection('orders').insertMany(Array.from({ length: 45 }, (_, i) => ({ i, total: i * 3 })));
    const atBackup = await countsOf(uri);
    const admin = client.db('admin');
    assert.deepEqual(await admin.command({ backupStart: dirs.backupCursor }), { ok: 1 });
    assert.deepEqual(await admin.command({ backupStart: dirs.fsyncLock, strategy: 'fsyncLock', allowWriteBlocking: true }), { ok: 1 });
    // Written after both backups: a restore holds none of them.
    await client.db('app').collection('docs').insertMany(Array.from({ length: 500 }, (_, i) => ({ after: i })));
    await client.db('shop').collection('later').insertOne({ after: true });
    return atBackup;
  } finally {
    await client.close();
  }
}
