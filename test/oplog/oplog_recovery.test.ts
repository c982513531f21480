/** recoverOplogDir: what a crash leaves at the end of the last file (a torn entry, zeros, garbage that frames like a document) cut off before a streamer appends. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OplogDirError } from '../../src/oplog/oplog_files.js';
import { recoverOplogDir } from '../../src/oplog/oplog_recovery.js';
import { OplogWriter } from '../../src/oplog/oplog_writer.js';
import { oplogEntries, oplogEntry } from '../helpers/oplog_entries.js';
import { freshDirs } from '../helpers/paths.js';

describe('recoverOplogDir', () => {
  const dirs = freshDirs('oplog-recovery');
  after(() => dirs.remove());
  const freshDir = dirs.fresh;
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
  it('refuses a directory with a file of the stream missing', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), oplogEntry({ secs: 1, inc: 1 }));
    fs.writeFileSync(path.join(dir, 'oplog000002.bson'), oplogEntry({ secs: 1, inc: 3 }));
    await assert.rejects(recoverOplogDir(dir), (err: unknown) => err instanceof OplogDirError && /oplog000001\.bson is missing from .*: the entries between oplog000000\.bson and oplog000002\.bson are not there/.test(err.message));
  });

  it('continues after the last file where earlier files were pruned: the numbering may start above 0', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'oplog000004.bson'), Buffer.concat(oplogEntries({ secs: 1700000000, inc: 1 }, 2)));
    fs.writeFileSync(path.join(dir, 'oplog000005.bson'), Buffer.concat(oplogEntries({ secs: 1700000000, inc: 3 }, 2)));
    assert.deepEqual(await recoverOplogDir(dir), { lastTs: { secs: 1700000000, inc: 4 }, nextIndex: 6, truncated: [] });
  });
});
