import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { deserialize, Int32 } from 'bson';
import { CommandError } from '../../../src/errors.js';
import { StorageEngine } from '../../../src/devserver/storage/storage_engine.js';
import { ENGINE_URL, listFiles, runScript, tempDir } from './helpers.js';

test('a new dbpath is laid out like mongod\'s', (t) => {
  const { dir, cleanup } = tempDir('layout');
  t.after(cleanup);
  const dbpath = path.join(dir, 'nested', 'db'); // created, parents included
  const engine = StorageEngine.open({ dbpath, cacheSizeMB: 64 });
  try {
    assert.equal(engine.dbpath, dbpath);
    const meta = engine.createCollection('test.c');
    engine.insertRecord('test.c', Buffer.from('doc'), new Int32(1));
    engine.checkpoint();

    const files = listFiles(dbpath);
    for (const name of ['WiredTiger', 'WiredTiger.wt', 'WiredTiger.turtle', 'WiredTiger.lock',
      '_mdb_catalog.wt', 'mongod.lock', 'storage.bson', `${meta.ident}.wt`, `${meta.idIndexIdent}.wt`]) {
      assert.ok(files.includes(name), `${name} in ${files.join(' ')}`);
    }
    assert.match(meta.ident, /^collection-\d+-\d+$/);
    assert.match(meta.idIndexIdent, /^index-\d+-\d+$/);
    assert.ok(files.some((f) => /^journal\/WiredTigerLog\.\d{10}$/.test(f)), files.join(' '));
    assert.equal(fs.readFileSync(path.join(dbpath, 'mongod.lock'), 'utf8'), `${process.pid}\n`);
    assert.deepEqual(deserialize(fs.readFileSync(path.join(dbpath, 'storage.bson'))), {
      storage: { engine: 'wiredTiger', options: { directoryPerDB: false, directoryForIndexes: false } },
    });
  } finally {
    engine.close();
  }
  // A clean shutdown leaves mongod.lock empty, as mongod does.
  assert.equal(fs.statSync(path.join(dbpath, 'mongod.lock')).size, 0);
  assert.throws(() => engine.listCollections(), { code: 91 });
  engine.close(); // idempotent
});

test('a dbpath in use is refused with DBPathInUse, in this process and another', (t) => {
  const { dir, cleanup } = tempDir('inuse');
  const engine = StorageEngine.open({ dbpath: dir, cacheSizeMB: 32 });
  t.after(() => {
    engine.close();
    cleanup();
  });
  const expected = `Unable to lock the lock file: ${dir}/mongod.lock (Resource temporarily unavailable). ` +
    `Another mongod instance is already running on the ${dir} directory`;

  assert.throws(() => StorageEngine.open({ dbpath: dir }), (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, 98);
    assert.equal(err.codeName, 'DBPathInUse');
    assert.equal(err.message, expected);
    return true;
  });

  const child = runScript(`
    const { StorageEngine } = await import(${JSON.stringify(ENGINE_URL)});
    try { StorageEngine.open({ dbpath: process.argv[1] }); console.log('opened'); }
    catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }
  `, [dir]);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { code: 98, message: expected });
  // The refused instance did not touch our lock file.
  assert.equal(fs.readFileSync(path.join(dir, 'mongod.lock'), 'utf8'), `${process.pid}\n`);
});
