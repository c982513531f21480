/**
 * `hotbackup replay`, the CLI as a child process, onto a standalone dev server, from
 * oplog files built here entry by entry in mongod 7.0's shapes (with the `ui` of the
 * real collections): the range (--from exclusive, --until inclusive), a second run to
 * the same data, the refusals that leave the target untouched (a gap, a torn file, a
 * missing file), a target that is no copy of the source, and the progress a person sees.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Int32, Long, MongoClient, Timestamp, UUID, type Db, type Document } from 'mongodb';
import { serialize } from 'bson';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { runCli } from '../helpers/cli_run.js';
import { CLI, CLI_NODE_FLAGS, tempDir } from '../helpers/paths.js';

const SECS = 1_700_000_000;
const ts = (i: number) => new Timestamp({ t: SECS, i });
const flag = (i: number) => `${SECS},${i}`;

function entry(i: number, fields: Document): Document {
  return { ts: ts(i), t: Long.fromNumber(1), ...fields, v: Long.fromNumber(2), wall: new Date(1_700_000_000_000 + i) };
}

/** Writes `files` (each a list of entries) as oplog000000.bson, oplog000001.bson, … in `dir`. */
function writeOplogFiles(dir: string, files: Document[][]): void {
  fs.mkdirSync(dir, { recursive: true });
  files.forEach((entries, n) => {
    const bytes = Buffer.concat(entries.map((e) => Buffer.from(serialize(e))));
    fs.writeFileSync(path.join(dir, `oplog${String(n).padStart(6, '0')}.bson`), bytes);
  });
}

async function uuidOf(db: Db, name: string): Promise<UUID> {
  const [info] = await db.listCollections({ name }).toArray();
  return (info as unknown as { info: { uuid: UUID } }).info.uuid;
}

const diff = (d: Document) => ({ $v: new Int32(2), diff: d });

describe('hotbackup replay onto the dev server', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  let db: Db;
  const work = tempDir('replay');
  const dir = path.join(work.dir, 'oplog');
  let expected: Document[];

  before(async () => {
    server = await startDevServer();
    client = new MongoClient(server.uri);
    db = client.db('app');
    // The state a backup left: everything up to ts 2.
    await db.collection('items').insertMany([{ _id: 1, v: 'a' }, { _id: 2, n: 1 }] as never[]);
    await db.collection('gone').insertOne({ _id: 1 as never });
    const items = await uuidOf(db, 'items');
    const gone = await uuidOf(db, 'gone');
    const temp = new UUID();
    writeOplogFiles(dir, [
      [
        entry(1, { op: 'i', ns: 'app.items', ui: items, o: { _id: 1, v: 'a' }, o2: { _id: 1 } }),
        entry(2, { op: 'i', ns: 'app.items', ui: items, o: { _id: 2, n: 1 }, o2: { _id: 2 } }),
        entry(3, { op: 'i', ns: 'app.items', ui: items, o: { _id: 10 }, o2: { _id: 10 } }),
        entry(4, { op: 'i', ns: 'app.items', ui: items, o: { _id: 11, n: 1 }, o2: { _id: 11 } }),
        entry(5, { op: 'u', ns: 'app.items', ui: items, o: diff({ u: { n: 2 } }), o2: { _id: 11 } }),
        entry(6, { op: 'd', ns: 'app.items', ui: items, o: { _id: 1 } }),
        entry(7, { op: 'c', ns: 'app.$cmd', ui: temp, o: { create: 'temp', idIndex: { v: 2, key: { _id: 1 }, name: '_id_' } } }),
      ],
      [
        entry(8, { op: 'i', ns: 'app.temp', ui: temp, o: { _id: 1 }, o2: { _id: 1 } }),
        entry(9, { op: 'c', ns: 'app.$cmd', ui: items, o: { createIndexes: 'items', v: 2, key: { n: 1 }, name: 'n_1' } }),
        entry(10, { op: 'u', ns: 'app.items', ui: items, o: diff({ i: { gone: true } }), o2: { _id: 2 } }),
        entry(11, { op: 'd', ns: 'app.items', ui: items, o: { _id: 2 } }),
        entry(12, { op: 'c', ns: 'app.$cmd', ui: temp, o: { drop: 'temp' }, o2: { numRecords: 1 } }),
        // An index on a collection that existed before --from and is dropped in the range:
        // on a second run it must not come back (mongod applies createIndexes on a missing
        // collection as a no-op; the createIndexes command would create it).
        entry(13, { op: 'c', ns: 'app.$cmd', ui: gone, o: { createIndexes: 'gone', v: 2, key: { g: 1 }, name: 'g_1' } }),
        entry(14, { op: 'c', ns: 'app.$cmd', ui: gone, o: { drop: 'gone' }, o2: { numRecords: 1 } }),
        entry(15, { op: 'n', ns: '', o: { msg: 'periodic noop' } }),
        entry(16, { op: 'i', ns: 'app.items', ui: items, o: { _id: 99, afterUntil: true }, o2: { _id: 99 } }),
      ],
    ]);
    expected = [{ _id: 10 }, { _id: 11, n: 2 }];
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
    work.remove();
  });

  it('applies the entries after --from up to --until, and a second run gives the same data', async () => {
    for (const round of [1, 2]) {
      const run = await runCli(['replay', dir, '--to', server.uri, '--from', flag(2), '--until', flag(15)]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^Replayed 13 oplog entries \(\d+ bytes\) after ts 1700000000,2 up to 1700000000,15 onto mongodb:\/\/127\.0\.0\.1:\d+/);
      assert.deepEqual(await db.collection('items').find().sort({ _id: 1 }).toArray(), expected, `round ${round}`);
      assert.deepEqual(await db.listCollections({ name: 'temp' }).toArray(), [], 'temp was created, then dropped');
      assert.deepEqual(await db.listCollections({ name: 'gone' }).toArray(), [], 'gone was dropped');
      assert.deepEqual((await db.collection('items').listIndexes().toArray()).map((i) => i['name']), ['_id_', 'n_1']);
      if (round === 1) assert.match(run.stdout, /: 12 applied, 1 no-ops\.$/m);
      // On the second run the update of _id 2, deleted later in the range, and the index
      // on the collection dropped later, did nothing.
      else assert.match(run.stdout, /: 10 applied, 2 already superseded by later entries, 1 no-ops\.$/m);
      // Off a terminal, progress is logged, structured.
      const started = run.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Document).find((l) => l['msg'] === 'replay starts');
      assert.equal(started?.['entriesTotal'], 13);
    }
  });

  it('refuses a gap: files that start after --from; nothing is applied', async () => {
    const run = await runCli(['replay', dir, '--to', server.uri, '--from', `${SECS - 1},0`, '--until', flag(13)]);
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /start at ts 1700000000,1, after --from 1699999999,0: the entries in between are missing \(a gap\).*nothing was applied/);
  });

  it('refuses a torn file, naming it and the offset; nothing is applied', async () => {
    const torn = path.join(work.dir, 'torn');
    const start = entry(1, { op: 'n', ns: '', o: {} });
    const first = entry(2, { op: 'c', ns: 'torn.$cmd', o: { create: 'c' } });
    const second = entry(3, { op: 'i', ns: 'torn.c', o: { _id: 1, pad: 'x'.repeat(100) } });
    writeOplogFiles(torn, [[start, first], [second]]);
    const file = path.join(torn, 'oplog000001.bson');
    fs.truncateSync(file, fs.statSync(file).size - 10);
    const run = await runCli(['replay', torn, '--to', server.uri, '--from', flag(1), '--until', flag(3)]);
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /oplog000001\.bson is torn: the entry at offset 0 runs past the end of the file/);
    assert.deepEqual(await client.db('torn').listCollections().toArray(), [], 'the create before the torn entry was not applied either');
  });

  it('refuses a missing file in the numbering, and files that end before --until', async () => {
    const holed = path.join(work.dir, 'holed');
    writeOplogFiles(holed, [[entry(1, { op: 'n', ns: '', o: {} })], [entry(2, { op: 'n', ns: '', o: {} })], [entry(3, { op: 'n', ns: '', o: {} })]]);
    fs.rmSync(path.join(holed, 'oplog000001.bson'));
    const missing = await runCli(['replay', holed, '--to', server.uri, '--from', flag(1), '--until', flag(3)]);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /oplog000001\.bson is missing/);
    const short = await runCli(['replay', dir, '--to', server.uri, '--from', flag(2), '--until', flag(50)]);
    assert.equal(short.code, 4);
    assert.match(short.stderr, /end at ts 1700000000,16, before --until 1700000000,50/);
  });

  it('stops on a target that is no copy of the source (another UUID), exit 1', async () => {
    await client.db('other').collection('c').insertOne({ _id: 1 as never });
    const foreign = path.join(work.dir, 'foreign');
    writeOplogFiles(foreign, [[
      entry(1, { op: 'n', ns: '', o: {} }),
      entry(2, { op: 'i', ns: 'other.c', ui: new UUID(), o: { _id: 2 } }),
    ]]);
    const run = await runCli(['replay', foreign, '--to', server.uri, '--from', flag(1), '--until', flag(2)]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /applyOps failed: applyOps had one or more errors applying ops \(UnknownError, code 8\): the entry at ts 1700000000,2 \(i on other\.c\) failed; nothing was applied, and running it again is safe/);
    assert.equal(await client.db('other').collection('c').countDocuments(), 1);
  });

  it('shows mongobackup\'s progress and objects count on a terminal', () => {
    const command = [process.execPath, ...CLI_NODE_FLAGS, CLI, 'replay', dir, '--to', `'${server.uri}'`, '--from', flag(2), '--until', flag(15)].join(' ');
    const screen = execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' });
    const bytes = /Progress: (\d+)\/(\d+) 100% \(bytes\)\r?\n13 objects found/.exec(screen);
    assert.ok(bytes, screen);
    assert.equal(bytes[1], bytes[2]);
  });

  it('usage errors: exit 2', async () => {
    const run = await runCli(['replay', dir, '--to', server.uri, '--from', flag(2)]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--until <secs,inc> is required/);
    const bad = await runCli(['replay', dir, '--to', server.uri, '--from', 'yesterday', '--until', flag(2)]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from takes a timestamp as <secs>,<inc>/);
  });
});
