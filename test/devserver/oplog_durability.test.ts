/**
 * The oplog and the data it describes commit together: strictly increasing ts across
 * concurrent clients, nothing acknowledged without its entry (and no entry without its
 * write) after kill -9, numbering on after a restart, and a hot backup whose copy,
 * opened as a standalone, holds the oplog up to the backup.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, Timestamp, type Document } from 'mongodb';
import { startReplDevServer } from '../helpers/repl_dev_server.js';
import { startDevServer } from '../helpers/dev_server.js';
import { tempDir } from '../helpers/paths.js';
import { inBackground } from '../helpers/poll.js';
import { copyUpTo } from '../helpers/file_copy.js';
import { openBackupCursor, closeBackupCursor } from '../helpers/backup_cursor_spy.js';

type Seq = { _id: number; pad?: string; n?: number };

async function allEntries(client: MongoClient, filter: Document = {}): Promise<Document[]> {
  return client.db('local').collection('oplog.rs').find(filter).toArray();
}

function assertStrictlyIncreasing(entries: Document[]): void {
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1]?.['ts'] as Timestamp;
    const b = entries[i]?.['ts'] as Timestamp;
    assert.ok(b.gt(a), `entry ${i}: ${b.toString()} after ${a.toString()}`);
  }
}

/** The _ids the oplog says exist in ns: inserts minus deletes. */
function idsFromOplog(entries: Document[], ns: string): Set<number> {
  const ids = new Set<number>();
  for (const e of entries) {
    if (e['ns'] !== ns) continue;
    if (e['op'] === 'i') ids.add(Number((e['o'] as Seq)._id));
    if (e['op'] === 'd') ids.delete(Number((e['o'] as Seq)._id));
  }
  return ids;
}

async function idsIn(client: MongoClient, db: string, coll: string): Promise<Set<number>> {
  const docs = await client.db(db).collection<Seq>(coll).find({}, { projection: { _id: 1 } }).toArray();
  return new Set(docs.map((d) => Number(d._id)));
}

describe('oplog durability', () => {
  it('hands out strictly increasing timestamps to concurrent clients', async () => {
    const server = await startReplDevServer();
    const clients = Array.from({ length: 4 }, () => new MongoClient(server.uri));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      await Promise.all(clients.map(async (c, k) => {
        const coll = c.db('conc').collection<Seq>(`c${k}`);
        for (let i = 0; i < 50; i++) await coll.insertOne({ _id: i });
        await coll.insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: 100 + i })));
        await coll.updateMany({}, { $inc: { n: 1 } });
      }));
      const entries = await allEntries(clients[0] as MongoClient);
      assertStrictlyIncreasing(entries);
      const writes = entries.filter((e) => String(e['ns']).startsWith('conc.c') && e['op'] !== 'c');
      assert.equal(writes.length, 4 * (50 + 50 + 100));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
      server.cleanup();
    }
  });

  it('after kill -9, every acknowledged j:true write has its entry and no entry lacks its write', async () => {
    const data = tempDir('oplog-crash');
    try {
      const first = await startReplDevServer({ dbpath: data.dir, args: ['--checkpoint-interval', '1'] });
      const client = new MongoClient(first.uri, { retryWrites: false });
      await client.connect();
      const coll = client.db('crash').collection<Seq>('stream');
      const acknowledged: number[] = [];
      let stop = false;
      const writer = inBackground(async () => {
        for (let id = 0; !stop; id++) {
          await coll.insertOne({ _id: id, pad: 'p'.repeat(200) }, { writeConcern: { w: 1, j: true } });
          // Every third document is deleted again: deletes must survive with their entries too.
          if (id % 3 === 0) await coll.deleteOne({ _id: id }, { writeConcern: { w: 1, j: true } });
          acknowledged.push(id);
        }
      });
      await writer.until(() => acknowledged.length > 300);
      await first.kill9();
      stop = true;
      await writer.done.catch(() => undefined);
      await client.close(true);
      const lastBefore = acknowledged.length;

      const second = await startReplDevServer({ dbpath: data.dir });
      const reader = new MongoClient(second.uri);
      try {
        const entries = await allEntries(reader);
        assertStrictlyIncreasing(entries);
        const fromOplog = idsFromOplog(entries, 'crash.stream');
        const stored = await idsIn(reader, 'crash', 'stream');
        assert.deepEqual([...stored].sort((a, b) => a - b), [...fromOplog].sort((a, b) => a - b), 'the oplog and the collection agree');
        const lost = acknowledged.slice(0, lastBefore).filter((id) => (id % 3 === 0 ? stored.has(id) : !stored.has(id)));
        assert.deepEqual(lost, [], 'every acknowledged write survived');
        const lastTs = entries.at(-1)?.['ts'] as Timestamp;
        await reader.db('crash').collection<Seq>('after').insertOne({ _id: 1 });
        const [newest] = await reader.db('local').collection('oplog.rs').find().sort({ $natural: -1 }).limit(1).toArray();
        assert.ok(((newest as Document)['ts'] as Timestamp).gt(lastTs), 'timestamps go on after the newest entry');
      } finally {
        await reader.close();
        await second.stop();
      }
    } finally {
      data.remove();
    }
  });

  it('a $backupCursor copy opened as a standalone holds local.oplog.rs up to the backup', async () => {
    const server = await startReplDevServer({ args: ['--checkpoint-interval', '1'] });
    const scratch = tempDir('oplog-backup');
    const client = new MongoClient(server.uri);
    try {
      await client.connect();
      const coll = client.db('app').collection<Seq>('seq');
      let next = 0;
      let stop = false;
      const writer = inBackground(async () => {
        while (!stop) await coll.insertOne({ _id: next++ }, { writeConcern: { w: 1, j: true } });
      });
      await writer.until(() => next > 200);
      const backup = await openBackupCursor(client);
      const oplogEnd = (backup.metadata['oplogEnd'] as Document | undefined)?.['ts'] as Timestamp;
      assert.ok(oplogEnd instanceof Timestamp, 'the metadata carries oplogEnd');
      const copy = path.join(scratch.dir, 'copy');
      try {
        const target = next + 200;
        await writer.until(() => next > target); // writes go on during the copy
        for (const file of backup.files) copyUpTo(server.dbpath, copy, file);
      } finally {
        await closeBackupCursor(client, backup);
        stop = true;
        await writer.done;
      }
      fs.rmSync(path.join(copy, 'mongod.lock'), { force: true });

      const standalone = await startDevServer({ dbpath: copy });
      const reader = new MongoClient(standalone.uri);
      try {
        const entries = await allEntries(reader);
        assertStrictlyIncreasing(entries);
        const lastInCopy = entries.at(-1)?.['ts'] as Timestamp;
        assert.ok(!lastInCopy.lt(oplogEnd), `entries up to the backup's oplogEnd ${oplogEnd.toString()} are in the copy (last ${lastInCopy.toString()})`);
        assert.deepEqual(
          [...(await idsIn(reader, 'app', 'seq'))].sort((a, b) => a - b),
          [...idsFromOplog(entries, 'app.seq')].sort((a, b) => a - b),
          "the copy's oplog describes exactly the copy's data",
        );
        // A standalone writes no oplog entries.
        await reader.db('app').collection<Seq>('seq').insertOne({ _id: -1 });
        assert.equal((await allEntries(reader)).length, entries.length);
      } finally {
        await reader.close();
        await standalone.stop();
      }
    } finally {
      await client.close();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
