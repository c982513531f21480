/** OplogWriter without a server: rotation by size, file modes, and never a second write into a file an earlier run wrote. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { listOplogFiles, readOplogEntries } from '../../src/oplog/oplog_files.js';
import { recoverOplogDir } from '../../src/oplog/oplog_recovery.js';
import { OplogWriter } from '../../src/oplog/oplog_writer.js';
import { concatenatedOplog, oplogEntries, oplogEntry } from '../helpers/oplog_entries.js';
import { freshDirs } from '../helpers/paths.js';

describe('OplogWriter', () => {
  const dirs = freshDirs('oplog-writer');
  after(() => dirs.remove());
  const freshDir = dirs.fresh;
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
    for await (const entry of readOplogEntries(files)) read.push(entry.bytes);
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
});
