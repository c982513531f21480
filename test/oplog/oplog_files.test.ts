/**
 * The streamed oplog directory without a server: timestamps as DBAs type and read them,
 * the writer's rotation and modes, and recovery from what a crash leaves (a torn entry,
 * zeros, garbage that frames like a document), then the reader replay uses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { listOplogFiles, OplogDirError, readOplogEntries } from '../../src/oplog/oplog_files.js';
import { recoverOplogDir } from '../../src/oplog/oplog_recovery.js';
import { entryTs, formatFromArg, formatMongobackup, parseOplogTs } from '../../src/oplog/oplog_ts.js';
import { OplogWriter } from '../../src/oplog/oplog_writer.js';
import { concatenatedOplog, oplogEntries, oplogEntry } from '../helpers/oplog_entries.js';
import { tempDir } from '../helpers/paths.js';

describe('oplog timestamps', () => {
  it("parses --from as mongobackup's -s, and prints mongobackup's stop line", () => {
    const ts = parseOplogTs('1466234959,1');
    assert.deepEqual(ts, { secs: 1466234959, inc: 1 });
    assert.equal(formatMongobackup(ts), 'Timestamp 1466234959000|1');
    assert.equal(formatFromArg(ts), '1466234959,1');
    for (const bad of ['1466234959', '1466234959.1', '-1,2', '1,', 'a,b', '4294967296,0']) assert.throws(() => parseOplogTs(bad), /<secs>,<inc>/, bad);
  });

  it("reads an entry's ts from its raw bytes, wherever the field is", () => {
    assert.deepEqual(entryTs(oplogEntry({ secs: 1700000000, inc: 42 })), { secs: 1700000000, inc: 42 });
    assert.throws(() => entryTs(Buffer.from([5, 0, 0, 0, 0])), /without a ts/);
  });
});

describe('OplogWriter and recoverOplogDir', () => {
  let root: { dir: string; remove: () => void };
  before(() => {
    root = tempDir('oplog-files');
  });
  after(() => root.remove());
  let n = 0;
  const freshDir = () => {
    const dir = path.join(root.dir, `d${n++}`);
    fs.mkdirSync(dir);
    return dir;
  };

  it('rotates before a file would pass the size, never splitting an entry, and keeps every byte in order', async () => {
    const dir = freshDir();
    const entries = oplogEntries({ secs: 1700000000, inc: 1 }, 50, 200);
    const size = (entries[0] as Buffer).length;
    const completed: string[] = [];
    const writer = new OplogWriter({ dir, nextIndex: 0, rotateBytes: size * 7 + 1, onFileComplete: (f) => completed.push(path.basename(f.file)) });
    for (let i = 0; i < entries.length; i += 9) await writer.append(entries.slice(i, i + 9));
    await writer.close();
    const files = await listOplogFiles(dir);
    assert.deepEqual(
      files.map((f) => path.basename(f.path)),
      Array.from({ length: 8 }, (_, i) => `oplog00000${i}.bson`),
    );
    for (const file of files.slice(0, -1)) assert.equal(fs.statSync(file.path).size, size * 7, file.path);
    assert.equal(fs.statSync((files[7] as { path: string }).path).size, size * 1);
    assert.deepEqual(completed, files.slice(0, -1).map((f) => path.basename(f.path)));
    assert.deepEqual(concatenatedOplog(dir), Buffer.concat(entries));
    assert.equal(fs.statSync((files[0] as { path: string }).path).mode & 0o777, 0o600);
    const read: Buffer[] = [];
    for await (const entry of readOplogEntries(dir)) read.push(entry);
    assert.deepEqual(read, entries);
  });

  it('gives an entry larger than the rotation size a file of its own', async () => {
    const dir = freshDir();
    const writer = new OplogWriter({ dir, nextIndex: 0, rotateBytes: 1000 });
    const [small, big, small2] = [oplogEntry({ secs: 1, inc: 1 }), oplogEntry({ secs: 1, inc: 2 }, 5000), oplogEntry({ secs: 1, inc: 3 })] as [Buffer, Buffer, Buffer];
    await writer.append([small, big, small2]);
    await writer.close();
    assert.deepEqual(
      (await listOplogFiles(dir)).map((f) => fs.readFileSync(f.path)),
      [small, big, small2],
    );
  });

  it('recovers a clean directory: its last ts, and a new file for the next run', async () => {
    const dir = freshDir();
    const writer = new OplogWriter({ dir, nextIndex: 0, rotateBytes: 1 << 20 });
    await writer.append(oplogEntries({ secs: 1700000000, inc: 1 }, 5));
    await writer.close();
    assert.deepEqual(await recoverOplogDir(dir), { lastTs: { secs: 1700000000, inc: 5 }, nextIndex: 1, truncated: [] });
    assert.deepEqual(await recoverOplogDir(freshDir()), { lastTs: undefined, nextIndex: 0, truncated: [] });
  });

  const tails: Array<[string, (entry: Buffer) => Buffer]> = [
    ['half an entry (killed mid-write)', (entry) => entry.subarray(0, Math.floor(entry.length / 2))],
    ['three bytes of a length prefix', (entry) => entry.subarray(0, 3)],
    ['zeros (a power cut after the size grew)', () => Buffer.alloc(4096)],
    ['a whole length but no trailing 0x00', (entry) => Buffer.concat([entry.subarray(0, entry.length - 1), Buffer.from([7])])],
    ['an entry older than the one before it', () => oplogEntry({ secs: 1600000000, inc: 1 })],
  ];
  for (const [name, tail] of tails) {
    it(`cuts a torn tail of ${name} off the last file, and fsyncs the cut`, async () => {
      const dir = freshDir();
      const good = oplogEntries({ secs: 1700000000, inc: 1 }, 4);
      fs.writeFileSync(path.join(dir, 'oplog000000.bson'), Buffer.concat(oplogEntries({ secs: 1690000000, inc: 1 }, 2)));
      const last = path.join(dir, 'oplog000001.bson');
      fs.writeFileSync(last, Buffer.concat([...good, tail(oplogEntry({ secs: 1700000000, inc: 5 }))]));
      const state = await recoverOplogDir(dir);
      assert.deepEqual(state.lastTs, { secs: 1700000000, inc: 4 });
      assert.equal(state.nextIndex, 2);
      assert.equal(state.truncated.length, 1);
      assert.equal(state.truncated[0]?.file, last);
      assert.deepEqual(fs.readFileSync(last), Buffer.concat(good));
    });
  }

  it('removes a last file that held only a torn entry, and ends at the file before', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), Buffer.concat(oplogEntries({ secs: 1700000000, inc: 1 }, 3)));
    fs.writeFileSync(path.join(dir, 'oplog000001.bson'), oplogEntry({ secs: 1700000000, inc: 4 }).subarray(0, 10));
    const state = await recoverOplogDir(dir);
    assert.deepEqual(state.lastTs, { secs: 1700000000, inc: 3 });
    assert.equal(state.nextIndex, 1);
    assert.deepEqual(fs.readdirSync(dir), ['oplog000000.bson']);
  });

  it('never writes into a file an earlier run wrote: the next run begins a new one', async () => {
    const dir = freshDir();
    const first = new OplogWriter({ dir, nextIndex: 0, rotateBytes: 1 << 20 });
    await first.append(oplogEntries({ secs: 1700000000, inc: 1 }, 2));
    await first.close();
    const before = fs.readFileSync(path.join(dir, 'oplog000000.bson'));
    const state = await recoverOplogDir(dir);
    const second = new OplogWriter({ dir, nextIndex: state.nextIndex, rotateBytes: 1 << 20 });
    await second.append(oplogEntries({ secs: 1700000000, inc: 3 }, 2));
    await second.close();
    assert.deepEqual(fs.readFileSync(path.join(dir, 'oplog000000.bson')), before);
    assert.deepEqual(concatenatedOplog(dir), Buffer.concat(oplogEntries({ secs: 1700000000, inc: 1 }, 4)));
    // And a file that is there already is refused, not overwritten.
    const stale = new OplogWriter({ dir, nextIndex: 1, rotateBytes: 1 << 20 });
    await assert.rejects(stale.append([oplogEntry({ secs: 1700000001, inc: 1 })]), { code: 'EEXIST' });
  });

  it('refuses a directory with a file of the stream missing', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), oplogEntry({ secs: 1, inc: 1 }));
    fs.writeFileSync(path.join(dir, 'oplog000002.bson'), oplogEntry({ secs: 1, inc: 3 }));
    await assert.rejects(recoverOplogDir(dir), (err: unknown) => err instanceof OplogDirError && /lacks oplog000001\.bson/.test(err.message));
  });

  it('reads past nothing torn in an earlier file: that is damage, not a crash', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), oplogEntry({ secs: 1, inc: 1 }).subarray(0, 9));
    fs.writeFileSync(path.join(dir, 'oplog000001.bson'), oplogEntry({ secs: 1, inc: 3 }));
    await assert.rejects(async () => {
      for await (const entry of readOplogEntries(dir)) void entry;
    }, /oplog000000\.bson is damaged at byte 0/);
  });
});
