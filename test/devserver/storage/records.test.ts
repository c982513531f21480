import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Decimal128, deserialize, Double, Int32, Long, ObjectId, serialize } from 'bson';
import { CommandError } from '../../../src/errors.js';
import { StorageEngine } from '../../../src/devserver/storage/storage_engine.js';
import { tempDir } from './helpers.js';

function openEngine(t: TestContext): { engine: StorageEngine; dbpath: string } {
  const { dir, cleanup } = tempDir('records');
  const engine = StorageEngine.open({ dbpath: dir, cacheSizeMB: 32 });
  t.after(() => {
    engine.close();
    cleanup();
  });
  return { engine, dbpath: dir };
}

const doc = (fields: Record<string, unknown>): Buffer => Buffer.from(serialize(fields));
const read = (buf: Buffer): Record<string, unknown> => deserialize(buf);

test('insert, find by _id, update, delete, scan and count records', (t) => {
  const { engine } = openEngine(t);
  engine.createCollection('test.c');
  const oid = new ObjectId();
  const ids: unknown[] = [new Int32(7), 'seven', oid];
  const rids = ids.map((id, i) => engine.insertRecord('test.c', doc({ _id: id, i }), id));
  assert.deepEqual(rids, [1, 2, 3]);

  assert.equal(read(engine.findRecordById('test.c', 'seven')!.doc)['i'], 1);
  assert.equal(engine.findRecordById('test.c', new ObjectId(oid.toHexString()))?.rid, 3);
  assert.equal(engine.findRecordById('test.c', 'eight'), undefined);
  assert.equal(engine.findRecordById('test.nope', 'seven'), undefined);

  engine.writeTransaction(() => engine.updateRecord('test.c', 2, doc({ _id: 'seven', i: 42, pad: 'x'.repeat(100) })));
  assert.equal(read(engine.findRecordById('test.c', 'seven')!.doc)['i'], 42);

  assert.deepEqual([...engine.scanRecords('test.c')].map((r) => r.rid), [1, 2, 3]);
  assert.deepEqual([...engine.scanRecords('test.c', 1)].map((r) => r.rid), [2, 3]);
  assert.deepEqual([...engine.scanRecords('test.nope')], []);
  assert.equal(engine.countRecords('test.c'), 3);
  const sizes = [...engine.scanRecords('test.c')].reduce((n, r) => n + r.doc.length, 0);
  assert.equal(engine.collectionStats('test.c').size, sizes);
  assert.ok(engine.collectionStats('test.c').storageSize > 0);

  engine.deleteRecord('test.c', 1, new Int32(7));
  engine.deleteRecord('test.c', 1, new Int32(7)); // already gone: no-op
  assert.equal(engine.findRecordById('test.c', new Int32(7)), undefined);
  assert.equal(engine.countRecords('test.c'), 2);
  // The _id is free again once its record is deleted.
  assert.equal(engine.insertRecord('test.c', doc({ _id: 7 }), new Int32(7)), 4);
  assert.throws(() => engine.insertRecord('test.c', doc({ _id: [1] }), [1]), { code: 53 });
  assert.throws(() => engine.insertRecord('test.nope', doc({}), 1), { code: 26 });
});

test('equal numbers of any BSON type are one _id', (t) => {
  const { engine } = openEngine(t);
  engine.createCollection('test.c');
  engine.insertRecord('test.c', doc({ _id: new Int32(1) }), new Int32(1));
  for (const [id, shown] of [[new Double(1), '1.0'], [Long.fromNumber(1), '1'],
    [Decimal128.fromString('1.000'), 'NumberDecimal("1.000")'], [new Int32(1), '1']] as const) {
    assert.throws(() => engine.insertRecord('test.c', doc({ _id: id }), id), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, 11000);
      assert.equal(err.codeName, 'DuplicateKey');
      assert.equal(err.message, `E11000 duplicate key error collection: test.c index: _id_ dup key: { _id: ${shown} }`);
      assert.deepEqual(err.extra, { keyPattern: { _id: 1 }, keyValue: { _id: id } });
      return true;
    });
    assert.equal(engine.findRecordById('test.c', id)?.rid, 1);
  }
  // Close but not equal: 1.5 and Decimal 1.1 are other _ids.
  engine.insertRecord('test.c', doc({ _id: 1.5 }), new Double(1.5));
  engine.insertRecord('test.c', doc({}), Decimal128.fromString('1.1'));
  assert.equal(engine.countRecords('test.c'), 3);
});

test('writeTransaction commits, rolls back on throw, nests, and survives a duplicate', (t) => {
  const { engine } = openEngine(t);
  engine.createCollection('test.c');
  assert.equal(engine.countRecords('test.c'), 0);
  assert.throws(() => engine.writeTransaction(() => {
    engine.insertRecord('test.c', doc({ _id: 1 }), 1);
    engine.writeTransaction(() => engine.insertRecord('test.c', doc({ _id: 2 }), 2), { sync: true });
    throw new Error('boom');
  }), /boom/);
  assert.equal(engine.findRecordById('test.c', 1), undefined);
  assert.equal(engine.findRecordById('test.c', 2), undefined);
  assert.equal(engine.countRecords('test.c'), 0);

  // An unordered insert: the duplicate fails alone, the rest commit together.
  const errors: number[] = [];
  engine.writeTransaction(() => {
    for (const id of [1, 2, 1, 3]) {
      try {
        engine.insertRecord('test.c', doc({ _id: id }), id);
      } catch (err) {
        errors.push((err as CommandError).code);
      }
    }
    // Reads on the write session see the transaction's own writes.
    assert.ok(engine.findRecordById('test.c', 3) !== undefined);
  });
  assert.deepEqual(errors, [11000]);
  assert.equal(engine.countRecords('test.c'), 3);
  assert.throws(() => engine.writeTransaction(() => Promise.resolve()), /synchronous/);
  assert.throws(() => engine.writeTransaction(() => engine.dropCollection('test.c')), { code: 20 });
});

test('a scan keeps its place across write transactions and sees committed data', (t) => {
  const { engine } = openEngine(t);
  engine.createCollection('test.c');
  engine.writeTransaction(() => {
    for (let i = 0; i < 100; i++) engine.insertRecord('test.c', doc({ _id: i }), i);
  });
  // Batches are read ahead (16, then 64, then 256 records): each reflects what was
  // committed when it was fetched. Changes well past the current batch are seen.
  const seen: Array<{ rid: number; changed: unknown }> = [];
  for (const { rid, doc: bytes } of engine.scanRecords('test.c')) {
    seen.push({ rid, changed: read(bytes)['changed'] });
    if (rid === 10) {
      engine.writeTransaction(() => {
        engine.updateRecord('test.c', 60, doc({ _id: 59, changed: true }));
        engine.deleteRecord('test.c', 50, 49);
        engine.insertRecord('test.c', doc({ _id: 100 }), 100);
      });
    }
  }
  const rids = seen.map((s) => s.rid);
  assert.deepEqual(rids, Array.from({ length: 101 }, (_, i) => i + 1).filter((rid) => rid !== 50));
  assert.equal(seen.find((s) => s.rid === 60)?.changed, true);
  assert.equal(engine.countRecords('test.c'), 100);

  // Dropping the collection kills a scan in progress.
  const live = engine.scanRecords('test.c');
  for (let i = 0; i < 16; i++) live.next();
  engine.dropCollection('test.c');
  assert.throws(() => live.next(), { code: 175, codeName: 'QueryPlanKilled' });
});

test('the catalog survives close and reopen', (t) => {
  const { dir, cleanup } = tempDir('catalog');
  t.after(cleanup);
  let engine = StorageEngine.open({ dbpath: dir, cacheSizeMB: 32 });
  const created = engine.createCollection('app.users', { validator: { age: { $gte: 0 } } });
  engine.createCollection('app.logs.2024'); // collection names may hold dots
  engine.createCollection('other.things');
  assert.throws(() => engine.createCollection('app.users'), { code: 48, message: 'Collection app.users already exists.' });
  assert.equal(engine.addIndexes('app.users', [
    { v: 2, key: { email: 1 }, name: 'email_1', unique: true },
    { v: 2, key: { _id: 1 }, name: '_id_' },
  ]), 1);
  engine.insertRecord('app.users', doc({ _id: 'a' }), 'a');
  engine.insertRecord('app.users', doc({ _id: 'b' }), 'b');
  engine.close();

  engine = StorageEngine.open({ dbpath: dir, cacheSizeMB: 32 });
  try {
    const users = engine.getCollection('app.users');
    assert.ok(users !== undefined);
    assert.equal(users.uuid.toHexString(), created.uuid.toHexString());
    assert.equal(users.ident, created.ident);
    assert.equal(users.idIndexIdent, created.idIndexIdent);
    assert.deepEqual(users.options, { validator: { age: { $gte: 0 } } });
    assert.deepEqual(users.indexes, [
      { v: 2, key: { _id: 1 }, name: '_id_' },
      { v: 2, key: { email: 1 }, name: 'email_1', unique: true },
    ]);
    assert.deepEqual({ db: users.db, name: users.name }, { db: 'app', name: 'users' });
    assert.deepEqual(engine.listCollections('app').map((c) => c.name), ['logs.2024', 'users']);
    assert.deepEqual(engine.listDatabaseNames(), ['app', 'other']);
    assert.equal(engine.countRecords('app.users'), 2);
    // rids continue after the largest one on disk.
    assert.equal(engine.insertRecord('app.users', doc({ _id: 'c' }), 'c'), 3);
    // New idents never collide with the ones already in the catalog.
    const idents = new Set(engine.listCollections().flatMap((c) => [c.ident, c.idIndexIdent]));
    const fresh = engine.createCollection('app.fresh');
    assert.ok(!idents.has(fresh.ident) && !idents.has(fresh.idIndexIdent));
  } finally {
    engine.close();
  }
});

test('index metadata: add, conflicts and drop', (t) => {
  const { engine } = openEngine(t);
  engine.createCollection('test.c');
  assert.equal(engine.addIndexes('test.c', [{ v: 2, key: { a: 1 }, name: 'a_1' }]), 1);
  assert.equal(engine.addIndexes('test.c', [{ v: 2, key: { a: new Double(1) }, name: 'a_1' }]), 0);
  assert.throws(() => engine.addIndexes('test.c', [{ v: 2, key: { a: -1 }, name: 'a_1' }]), { code: 86 });
  assert.throws(() => engine.addIndexes('test.c', [{ v: 2, key: { a: 1 }, name: 'other' }]),
    { code: 85, message: 'Index already exists with a different name: a_1' });
  assert.throws(() => engine.addIndexes('test.nope', [{ v: 2, key: { a: 1 }, name: 'a_1' }]), { code: 26 });
  assert.throws(() => engine.dropIndex('test.c', '_id_'), { code: 72 });
  assert.throws(() => engine.dropIndex('test.c', 'b_1'), { code: 27, message: 'index not found with name [b_1]' });
  engine.dropIndex('test.c', 'a_1');
  assert.deepEqual(engine.getCollection('test.c')?.indexes.map((ix) => ix.name), ['_id_']);
});

test('dropCollection and dropDatabase remove the files', (t) => {
  const { engine, dbpath } = openEngine(t);
  const a = engine.createCollection('db1.a');
  const b = engine.createCollection('db1.b');
  const c = engine.createCollection('db2.c');
  for (const meta of [a, b, c]) engine.insertRecord(meta.ns, doc({ _id: 1 }), 1);
  engine.checkpoint();
  const exists = (ident: string): boolean => fs.existsSync(path.join(dbpath, `${ident}.wt`));
  assert.ok([a, b, c].every((m) => exists(m.ident) && exists(m.idIndexIdent)));

  assert.equal(engine.dropCollection('db1.a'), true);
  assert.equal(engine.dropCollection('db1.a'), false);
  assert.ok(!exists(a.ident) && !exists(a.idIndexIdent));
  assert.equal(engine.getCollection('db1.a'), undefined);
  assert.throws(() => engine.insertRecord('db1.a', doc({ _id: 1 }), 1), { code: 26 });

  engine.dropDatabase('db1');
  assert.ok(!exists(b.ident) && !exists(b.idIndexIdent));
  assert.ok(exists(c.ident));
  assert.deepEqual(engine.listDatabaseNames(), ['db2']);

  // A re-created namespace starts empty, with new files.
  const again = engine.createCollection('db1.a');
  assert.notEqual(again.ident, a.ident);
  assert.equal(engine.countRecords('db1.a'), 0);
  assert.equal(engine.insertRecord('db1.a', doc({ _id: 1 }), 1), 1);
});
