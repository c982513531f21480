/**
 * What the `restore --oplog` tests share: a backup taken through the proxy of a standalone
 * dev server whose `local.oplog.rs` the test writes (one entry, ts 3, standing for the
 * backup's last), and oplog files as `hotbackup oplog` writes them, from before the backup
 * (ts 2) on: inserts of _id 3..6 at ts 4..7 and an update of _id 5 at ts 8.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Int32, Long, MongoClient, Timestamp, UUID, type Document } from 'mongodb';
import { serialize } from 'bson';
import { startDevServer } from './dev_server.js';
import { startProxy } from './proxy.js';

export const SECS = 1_700_000_100;
const ts = (i: number) => new Timestamp({ t: SECS, i });
const entry = (i: number, fields: Document): Document => ({ ts: ts(i), t: Long.fromNumber(1), ...fields, v: Long.fromNumber(2), wall: new Date() });

export interface OplogBackup {
  backup: string;
  oplogDir: string;
}

/** Makes `<dir>/backup` and `<dir>/oplog`; the server and proxy it used are stopped and removed. */
export async function makeOplogBackup(dir: string): Promise<OplogBackup> {
  const backup = path.join(dir, 'backup');
  const oplogDir = path.join(dir, 'oplog');
  const server = await startDevServer();
  const proxy = await startProxy(server);
  try {
    const client = await MongoClient.connect(proxy.uri);
    try {
      await client.db('app').collection('seq').insertMany([0, 1, 2].map((i) => ({ _id: i })) as never[]);
      // The backup's last oplog entry: ts 3.
      await client.db('local').collection('oplog.rs').insertOne(entry(3, { op: 'i', ns: 'app.seq', o: { _id: 2 } }));
      const [info] = await client.db('app').listCollections({ name: 'seq' }).toArray();
      const ui = (info as unknown as { info: { uuid: UUID } }).info.uuid;
      assert.deepEqual(await client.db('admin').command({ backupStart: backup }), { ok: 1 });
      // The stream holds entries from before the backup on, as a streamer started earlier does.
      const entries = [
        entry(2, { op: 'i', ns: 'app.seq', ui, o: { _id: 1 } }),
        entry(3, { op: 'i', ns: 'app.seq', ui, o: { _id: 2 } }),
        ...[3, 4, 5, 6].map((id) => entry(id + 1, { op: 'i', ns: 'app.seq', ui, o: { _id: id } })),
        entry(8, { op: 'u', ns: 'app.seq', ui, o: { $v: new Int32(2), diff: { i: { last: true } } }, o2: { _id: 5 } }),
      ];
      fs.mkdirSync(oplogDir);
      fs.writeFileSync(path.join(oplogDir, 'oplog000000.bson'), Buffer.concat(entries.slice(0, 3).map((e) => Buffer.from(serialize(e)))));
      fs.writeFileSync(path.join(oplogDir, 'oplog000001.bson'), Buffer.concat(entries.slice(3).map((e) => Buffer.from(serialize(e)))));
    } finally {
      await client.close();
    }
  } finally {
    await proxy.stop();
    await server.stop();
    server.cleanup();
  }
  return { backup, oplogDir };
}

/** The documents of app.seq as the dev server serves them from `dbpath`. */
export async function seqDocsIn(dbpath: string): Promise<Document[]> {
  const restored = await startDevServer({ dbpath });
  const client = await MongoClient.connect(restored.uri);
  try {
    return await client.db('app').collection('seq').find().sort({ _id: 1 }).toArray();
  } finally {
    await client.close();
    await restored.stop();
  }
}
