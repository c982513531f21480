import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { deserialize, Int32, serialize } from 'bson';
import { CommandError } from '../../../src/errors.js';
import { StorageEngine, type BackupFile } from '../../../src/devserver/storage/storage_engine.js';
import { tempDir, wt } from './helpers.js';

const CHUNK = 1 << 20;

function insertRange(engine: StorageEngine, ns: string, from: number, to: number): void {
  engine.writeTransaction(() => {
    for (let i = from; i < to; i++) {
      engine.insertRecord(ns, Buffer.from(serialize({ _id: new Int32(i), pad: 'p'.repeat(100) })), new Int32(i));
    }
  });
}

/** Copies each file up to its listed size, calling between() after every few MiB. */
function copyBackup(dbpath: string, files: BackupFile[], dest: string, between: () => void): void {
  const buffer = Buffer.alloc(CHUNK);
  let chunks = 0;
  for (const { filename, fileSize } of files) {
    const target = path.join(dest, path.relative(dbpath, filename));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const input = fs.openSync(filename, 'r');
    const output = fs.openSync(target, 'w');
    try {
      for (let offset = 0; offset < fileSize;) {
        const n = fs.readSync(input, buffer, 0, Math.min(CHUNK, fileSize - offset), offset);
        assert.ok(n > 0, `${filename} shrank below its listed size`);
        fs.writeSync(output, buffer, 0, n, offset);
        offset += n;
        if (++chunks % 8 === 0) between();
      }
    } finally {
      fs.closeSync(input);
      fs.closeSync(output);
    }
    between();
  }
}

test('a copy taken under a backup cursor, while writes and checkpoints go on, is consistent', (t) => {
  const { dir: dbpath, cleanup } = tempDir('backup-src');
  const { dir: copy, cleanup: cleanupCopy } = tempDir('backup-copy');
  const engine = StorageEngine.open({ dbpath, cacheSizeMB: 64 });
  t.after(() => {
    engine.close();
    cleanup();
    cleanupCopy();
  });

  const c = engine.createCollection('bk.c');
  const dropme = engine.createCollection('bk.dropme');
  insertRange(engine, 'bk.c', 0, 1000);
  insertRange(engine, 'bk.dropme', 0, 10);
  engine.checkpoint();
  // Written after the last checkpoint: only the journal has these.
  insertRange(engine, 'bk.c', 1000, 1500);
  const late = engine.createCollection('bk.late');
  insertRange(engine, 'bk.late', 0, 1);

  const handle = engine.openBackupCursor();
  const names = handle.files.map((f) => path.relative(dbpath, f.filename));
  for (const name of ['WiredTiger', 'WiredTiger.backup', 'WiredTiger.basecfg', '_mdb_catalog.wt', 'storage.bson',
    `${c.ident}.wt`, `${c.idIndexIdent}.wt`, `${late.ident}.wt`, `${dropme.ident}.wt`]) {
    assert.ok(names.includes(name), `${name} in ${names.join(' ')}`);
  }
  assert.ok(names.some((n) => /^journal\/WiredTigerLog\.\d{10}$/.test(n)), names.join(' '));
  // The turtle and metadata files are rebuilt from WiredTiger.backup on restore.
  for (const name of ['WiredTiger.turtle', 'WiredTiger.wt', 'WiredTiger.lock', 'mongod.lock']) {
    assert.ok(!names.includes(name), `${name} not listed`);
  }
  for (const file of handle.files) {
    assert.ok(path.isAbsolute(file.filename));
    assert.equal(file.fileSize, fs.statSync(file.filename).size);
  }
  assert.throws(() => engine.openBackupCursor(), (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, 50886);
    assert.equal(err.message, 'The existing backup cursor must be closed before $backupCursor can succeed.');
    return true;
  });

  let next = 1500;
  let rounds = 0;
  // In reverse listing order (journal last): the copying order must not matter.
  copyBackup(dbpath, [...handle.files].reverse(), copy, () => {
    insertRange(engine, 'bk.c', next, next + 50);
    next += 50;
    if (++rounds % 3 === 0) engine.checkpoint();
    if (rounds === 2) engine.dropCollection('bk.dropme');
  });
  assert.ok(rounds >= 10, `only ${rounds} write rounds during the copy`);
  // WiredTiger refuses drops during a backup: the files go once it ends.
  assert.ok(fs.existsSync(path.join(dbpath, `${dropme.ident}.wt`)));
  handle.close();
  handle.close();
  assert.ok(!fs.existsSync(path.join(dbpath, `${dropme.ident}.wt`)));
  engine.openBackupCursor().close(); // the slot is free again

  const restored = StorageEngine.open({ dbpath: copy, cacheSizeMB: 32 });
  let count = 0;
  try {
    const ids = [...restored.scanRecords('bk.c')].map((r) => (deserialize(r.doc)['_id'] as number));
    count = ids.length;
    assert.ok(count >= 1500, `${count} records, 1500 were written before the cursor opened`);
    assert.deepEqual(ids, Array.from({ length: count }, (_, i) => i));
    assert.equal(restored.countRecords('bk.late'), 1);
    assert.equal(restored.findRecordById('bk.c', new Int32(1499))?.rid, 1500);
  } finally {
    restored.close();
  }
  t.diagnostic(`restored ${count} of ${next} records; ${rounds} write rounds during the copy`);

  // WiredTiger's own tool agrees that every table of the copy is sound.
  const list = wt(copy, 'list');
  assert.equal(list.status, 0, list.stderr);
  const tables = list.stdout.split('\n').filter((l) => l.startsWith('table:'));
  assert.ok(tables.includes('table:_mdb_catalog') && tables.includes(`table:${c.ident}`), tables.join(' '));
  for (const table of tables) {
    const verify = wt(copy, 'verify', table);
    assert.equal(verify.status, 0, `${table}: ${verify.stderr}`);
  }
});
