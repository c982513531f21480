/**
 * The one reader of streamed oplog files (what replay reads, and recovery frames): the
 * listing and its refusal of a missing file, entries in order across files, and every
 * refusal naming the file and the offset: a torn entry, a length no entry has, an entry
 * without a ts, entries out of order, BSON no reader takes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { decodeOplogEntry, listOplogFiles, OplogDirError, readOplogEntries, readFrames, type OplogEntry } from '../../src/oplog/oplog_files.js';
import { oplogEntries, oplogEntry } from '../helpers/oplog_entries.js';
import { tempDir } from '../helpers/paths.js';

/** Writes `files` (each the bytes of one file) as oplog<first>.bson, … into a new directory. */
function oplogDir(root: string, name: string, files: Buffer[], first = 0): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  files.forEach((bytes, i) => fs.writeFileSync(path.join(dir, `oplog${String(first + i).padStart(6, '0')}.bson`), bytes));
  return dir;
}

async function readAll(dir: string): Promise<OplogEntry[]> {
  const read: OplogEntry[] = [];
  for await (const entry of readOplogEntries(await listOplogFiles(dir))) read.push(entry);
  return read;
}

describe('reading streamed oplog files', () => {
  const root = tempDir('oplog-files');
  after(() => root.remove());
  const secs = 1700000000;

  it('lists the numbered files in order, ignoring other names; an empty directory has none', async () => {
    const dir = oplogDir(root.dir, 'listed', [oplogEntry({ secs, inc: 1 }), oplogEntry({ secs, inc: 2 })], 9);
    fs.writeFileSync(path.join(dir, 'oplog.bson'), 'not ours');
    fs.writeFileSync(path.join(dir, 'oplog000011.bson.tmp'), 'not ours');
    assert.deepEqual(await listOplogFiles(dir), [
      { index: 9, path: path.join(dir, 'oplog000009.bson') },
      { index: 10, path: path.join(dir, 'oplog000010.bson') },
    ]);
    assert.deepEqual(await listOplogFiles(oplogDir(root.dir, 'empty', [])), []);
    await assert.rejects(listOplogFiles(path.join(root.dir, 'absent')), (err: unknown) => err instanceof OplogDirError && /^cannot read .*absent: ENOENT/.test(err.message));
  });

  it('refuses a gap in the numbering, naming the missing file', async () => {
    const dir = oplogDir(root.dir, 'holed', [oplogEntry({ secs, inc: 1 }), oplogEntry({ secs, inc: 2 }), oplogEntry({ secs, inc: 3 })]);
    fs.rmSync(path.join(dir, 'oplog000001.bson'));
    await assert.rejects(listOplogFiles(dir), (err: unknown) => err instanceof OplogDirError && err.message === `oplog000001.bson is missing from ${dir}: the entries between oplog000000.bson and oplog000002.bson are not there (a part of the stream is lost)`);
  });

  it('reads every entry of every file in order, each with its ts, file and offset', async () => {
    const entries = oplogEntries({ secs, inc: 1 }, 5, 100);
    const dir = oplogDir(root.dir, 'whole', [Buffer.concat(entries.slice(0, 3)), Buffer.concat(entries.slice(3))]);
    const read = await readAll(dir);
    assert.deepEqual(read.map((e) => e.bytes), entries);
    assert.deepEqual(read.map((e) => e.ts.inc), [1, 2, 3, 4, 5]);
    const size = (entries[0] as Buffer).length;
    assert.deepEqual(read.map((e) => [path.basename(e.file), e.offset]), [['oplog000000.bson', 0], ['oplog000000.bson', size], ['oplog000000.bson', 2 * size], ['oplog000001.bson', 0], ['oplog000001.bson', size]]);
    assert.equal(decodeOplogEntry(read[0] as OplogEntry)['op'], 'i');
  });

  it('reads an entry larger than its 1 MiB chunks whole', async () => {
    const entries = [oplogEntry({ secs, inc: 1 }, 3 * 1024 * 1024), oplogEntry({ secs, inc: 2 })];
    const read = await readAll(oplogDir(root.dir, 'large', [Buffer.concat(entries)]));
    assert.deepEqual(read.map((e) => e.bytes), entries);
  });

  const refusals: Array<[string, (good: Buffer[]) => Buffer[], RegExp]> = [
    ['a torn last file, as a streamer killed mid-write leaves it', (good) => [good[0] as Buffer, (good[1] as Buffer).subarray(0, 30)], /oplog000001\.bson is torn: the entry at offset 0 runs past the end of the file \(a \d+-byte entry with only 30 bytes written\); the stream that wrote it stopped mid-write/],
    ['a torn earlier file', (good) => [(good[0] as Buffer).subarray(0, 3), good[1] as Buffer], /oplog000000\.bson is torn: the entry at offset 0 runs past the end of the file \(3 bytes, too few for a length prefix\)/],
    ['a length no oplog entry has', (good) => [Buffer.concat([good[0] as Buffer, Buffer.from([0xff, 0xff, 0xff, 0x7f, 0])]), good[1] as Buffer], /oplog000000\.bson is damaged: the entry at offset \d+ is no BSON document \(a length prefix of 2147483647, which no oplog entry has\)/],
    ['an entry without a ts', (good) => [Buffer.concat([good[0] as Buffer, Buffer.from([5, 0, 0, 0, 0])]), good[1] as Buffer], /oplog000000\.bson: the entry at offset \d+ is not an oplog entry \(an oplog entry without a ts\)/],
    ['entries out of order across files', (good) => [good[1] as Buffer, good[0] as Buffer], /oplog000001\.bson: the entry at offset 0 \(ts 1700000000,1\) does not come after the one before it \(ts 1700000000,2 in oplog000000\.bson\): entries out of order or repeated/],
    ['an entry repeated', (good) => [good[0] as Buffer, good[0] as Buffer], /does not come after the one before it/],
  ];
  for (const [name, damage, message] of refusals) {
    it(`refuses ${name}, naming the file and offset`, async () => {
      const dir = oplogDir(root.dir, name.replace(/\W+/g, '-'), damage(oplogEntries({ secs, inc: 1 }, 2)));
      await assert.rejects(readAll(dir), (err: unknown) => err instanceof OplogDirError && message.test(err.message) && err.message.includes(dir));
    });
  }

  it('refuses to decode an entry whose body no BSON reader takes, naming file and offset', async () => {
    // A string inside `o` whose length runs past its document: the framing and the
    // top-level walk to ts pass (they step over `o` whole); decoding does not.
    const bad = Buffer.from(oplogEntry({ secs, inc: 1 }, 10));
    bad.writeInt32LE(1000, bad.indexOf(Buffer.from('pad\0')) + 4);
    const [entry] = await readAll(oplogDir(root.dir, 'undecodable', [bad]));
    assert.throws(() => decodeOplogEntry(entry as OplogEntry), (err: unknown) => err instanceof OplogDirError && /oplog000000\.bson: the entry at offset 0 is not valid BSON/.test(err.message));
  });

  it('frames without judging contents, and says where whole documents end', async () => {
    const good = oplogEntry({ secs, inc: 1 });
    const file = path.join(oplogDir(root.dir, 'frames', [Buffer.concat([good, Buffer.alloc(7)])]), 'oplog000000.bson');
    const frames = readFrames(file);
    const first = await frames.next();
    assert.deepEqual(first, { done: false, value: { offset: 0, bytes: good } });
    assert.deepEqual(await frames.next(), { done: true, value: { validLength: good.length, torn: { runsPastEnd: false, reason: 'a length prefix of 0, which no oplog entry has' } } });
  });
});
