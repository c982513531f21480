/**
 * Extending a backup at the storage level (what $backupCursorExtend is built on): a copy
 * taken under a backup cursor, plus the journal files a duplicate `target=("log:")` cursor
 * lists afterwards, holds the writes made after the cursor opened; the same copy without
 * them does not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Int32, serialize } from 'bson';
import { StorageEngine, type BackupFile } from '../../../src/devserver/storage/storage_engine.js';
import { tempDir } from './helpers.js';

const NS = 'ext.c';

function insertRange(engine: StorageEngine, from: number, to: number): void {
  // A hundred records per synced commit: what a writer with j:true leaves in the journal.
  for (let batch = from; batch < to; batch += 100) {
    engine.writeTransaction(() => {
      for (let i = batch; i < Math.min(batch + 100, to); i++) {
        engine.insertRecord(NS, Buffer.from(serialize({ _id: new Int32(i), pad: 'p'.repeat(100) })), new Int32(i));
      }
    }, { sync: true });
  }
}

function copyFiles(dbpath: string, files: BackupFile[], dest: string): void {
  for (const { filename, fileSize } of files) {
    const target = path.join(dest, path.relative(dbpath, filename));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const data = Buffer.alloc(fileSize);
    const fd = fs.openSync(filename, 'r');
    try {
      assert.equal(fs.readSync(fd, data, 0, fileSize, 0), fileSize, `${filename} shrank below its listed size`);
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(target, data);
  }
}

function countIn(dbpath: string): number {
  const engine = StorageEngine.open({ dbpath, cacheSizeMB: 32 });
  try {
    return engine.countRecords(NS);
  } finally {
    engine.close();
  }
}

test('the journal files an extension lists bring a backup up to the writes made after it opened', (t) => {
  const { dir: dbpath, cleanup } = tempDir('extend-src');
  const { dir: scratch, cleanup: cleanupScratch } = tempDir('extend-copies');
  const engine = StorageEngine.open({ dbpath, cacheSizeMB: 64 });
  t.after(() => {
    engine.close();
    cleanup();
    cleanupScratch();
  });
  engine.createCollection(NS);
  insertRange(engine, 0, 1000);
  engine.checkpoint();

  const backup = engine.openBackupCursor();
  const base = path.join(scratch, 'base');
  copyFiles(dbpath, backup.files, base);

  insertRange(engine, 1000, 11_000);
  const journal = path.join(dbpath, 'journal');
  const logsBefore = fs.readdirSync(journal).filter((n) => n.startsWith('WiredTigerLog.')).sort();
  const extra = backup.extend();
  // WiredTiger 3.2.1 switches to no new log file for the duplicate cursor: the one being
  // written is listed as it stands.
  const logsAfter = fs.readdirSync(journal).filter((n) => n.startsWith('WiredTigerLog.')).sort();
  assert.deepEqual(logsAfter, logsBefore);
  assert.equal(path.basename(extra.at(-1)?.filename ?? ''), logsBefore.at(-1), 'the log being written is listed');
  assert.ok(extra.length >= 1, 'an extension after 10,000 inserts lists at least one journal file');
  const listed = new Set(backup.files.map((f) => f.filename));
  for (const file of extra) {
    assert.equal(path.dirname(file.filename), path.join(dbpath, 'journal'), `${file.filename} is a journal file`);
    assert.match(path.basename(file.filename), /^WiredTigerLog\.\d{10}$/);
    assert.ok(!listed.has(file.filename), `${file.filename} was not listed when the backup opened`);
  }
  // Asked again, the same files, none fewer: nothing is archived while the backup is open.
  const again = backup.extend().map((f) => f.filename);
  assert.deepEqual(again, extra.map((f) => f.filename));

  const extended = path.join(scratch, 'extended');
  fs.cpSync(base, extended, { recursive: true });
  copyFiles(dbpath, extra, extended);
  backup.close();

  assert.equal(countIn(extended), 11_000, 'the extended copy holds every insert');
  assert.equal(countIn(base), 1000, 'without the extra journal files, the copy stops where the backup opened');
});

test('a duplicate log cursor on a closed backup is refused, not run on freed memory', (t) => {
  const { dir: dbpath, cleanup } = tempDir('extend-closed');
  const engine = StorageEngine.open({ dbpath, cacheSizeMB: 32 });
  t.after(() => {
    engine.close();
    cleanup();
  });
  const backup = engine.openBackupCursor();
  backup.close();
  assert.throws(() => backup.extend(), /closed/);
});
