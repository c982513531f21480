import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BSONRegExp, Decimal128, Double, Int32, Long, MaxKey, MinKey } from 'bson';
import { compileFilter, type Document } from '../../../src/devserver/query/index.js';
import { assertNotImplemented, assertServerError, rt } from './helpers.js';

const docs: Document[] = [
  { _id: 1, age: 5, tags: ['a', 'b'], name: 'ann', sub: { k: 1, j: 2 } },
  { _id: 2, age: 'five', tags: 'a' },
  { _id: 3, age: 10.5, items: [{ q: 1 }, { q: 7, r: 1 }] },
  { _id: 4, age: null },
  { _id: 5 },
  { _id: 6, age: [1, 20], nested: [[1, 2]] },
  { _id: 7, age: Long.fromBigInt(2n ** 53n + 1n) },
].map(rt);

function ids(filter: Document): number[] {
  const matches = compileFilter(rt(filter));
  return docs.filter(matches).map((d) => (d['_id'] as Int32).value);
}

describe('compileFilter: equality', () => {
  it('matches scalars, whole sub-documents and whole arrays', () => {
    assert.deepEqual(ids({ age: 5 }), [1]);
    assert.deepEqual(ids({ age: 5.0 }), [1], 'numbers compare by value across types');
    assert.deepEqual(ids({ sub: { k: 1, j: 2 } }), [1]);
    assert.deepEqual(ids({ sub: { j: 2, k: 1 } }), [], 'sub-document equality is order-sensitive');
    assert.deepEqual(ids({ tags: ['a', 'b'] }), [1]);
    assert.deepEqual(ids({ nested: [1, 2] }), [6], 'an element that is itself an array');
  });

  it('has array-contains semantics', () => {
    assert.deepEqual(ids({ tags: 'a' }), [1, 2]);
    assert.deepEqual(ids({ age: 20 }), [6]);
    assert.deepEqual(ids({ nested: 1 }), [], 'nested arrays are not flattened');
  });

  it('follows dotted paths through sub-documents and arrays', () => {
    assert.deepEqual(ids({ 'sub.k': 1 }), [1]);
    assert.deepEqual(ids({ 'items.q': 7 }), [3]);
    assert.deepEqual(ids({ 'items.1.q': 7 }), [3]);
    assert.deepEqual(ids({ 'items.0.q': 7 }), []);
    assert.deepEqual(ids({ 'tags.1': 'b' }), [1]);
  });

  it('matches null against null and missing fields', () => {
    assert.deepEqual(ids({ age: null }), [4, 5]);
    assert.deepEqual(ids({ 'items.r': null }), [1, 2, 3, 4, 5, 6, 7], 'an array element lacking the field counts as missing');
    assert.deepEqual(ids({ 'items.q': null }), [1, 2, 4, 5, 6, 7]);
    assert.deepEqual(ids({ age: { $ne: null } }), [1, 2, 3, 6, 7]);
  });

  it('compares Longs beyond 2^53 exactly', () => {
    assert.deepEqual(ids({ age: Long.fromBigInt(2n ** 53n + 1n) }), [7]);
    assert.deepEqual(ids({ age: new Double(2 ** 53) }), []);
  });
});

describe('compileFilter: comparison operators', () => {
  it('stays within the type bracket', () => {
    assert.deepEqual(ids({ age: { $gt: 5 } }), [3, 6, 7]);
    assert.deepEqual(ids({ age: { $gte: 5, $lt: 11 } }), [1, 3, 6], 'each bound may be met by a different element');
    assert.deepEqual(ids({ age: { $gt: 'a' } }), [2], 'strings never match a numeric bound and vice versa');
    assert.deepEqual(ids({ age: { $lt: Decimal128.fromString('1.5') } }), [6]);
  });

  it('treats null bounds like mongod: $gte/$lte null match null and missing', () => {
    assert.deepEqual(ids({ age: { $gte: null } }), [4, 5]);
    assert.deepEqual(ids({ age: { $lt: null } }), []);
  });

  it('lets MinKey and MaxKey bound every type', () => {
    assert.equal(ids({ age: { $gt: new MinKey() } }).length, docs.length);
    assert.equal(ids({ age: { $lt: new MaxKey() } }).length, docs.length);
    assert.deepEqual(ids({ age: { $lt: new MinKey() } }), []);
  });

  it('makes NaN equal only to NaN', () => {
    const nan = [rt({ v: Number.NaN }), rt({ v: 1 })];
    const count = (f: Document): number => nan.filter(compileFilter(rt(f))).length;
    assert.equal(count({ v: Number.NaN }), 1);
    assert.equal(count({ v: { $gte: Number.NaN } }), 1);
    assert.equal(count({ v: { $lt: Number.NaN } }), 0);
    assert.equal(count({ v: { $gt: 0 } }), 1);
  });

  it('supports $eq, $ne, $in, $nin, $exists and $not', () => {
    assert.deepEqual(ids({ age: { $eq: 5 } }), [1]);
    assert.deepEqual(ids({ tags: { $ne: 'a' } }), [3, 4, 5, 6, 7]);
    assert.deepEqual(ids({ age: { $in: [5, 'five', null] } }), [1, 2, 4, 5]);
    assert.deepEqual(ids({ age: { $nin: [5, null] } }), [2, 3, 6, 7]);
    assert.deepEqual(ids({ age: { $exists: true } }), [1, 2, 3, 4, 6, 7]);
    assert.deepEqual(ids({ age: { $exists: 0 } }), [5]);
    assert.deepEqual(ids({ 'items.r': { $exists: true } }), [3]);
    assert.deepEqual(ids({ age: { $not: { $gt: 5 } } }), [1, 2, 4, 5]);
  });

  it('treats an operator-looking value under $eq as a literal', () => {
    const d = [rt({ a: { $gt: 1 } })];
    assert.equal(d.filter(compileFilter(rt({ a: { $eq: { $gt: 1 } } }))).length, 1);
  });
});

describe('compileFilter: logical operators', () => {
  it('supports $and, $or, $nor at top level and nested', () => {
    assert.deepEqual(ids({ $or: [{ age: 5 }, { _id: 5 }] }), [1, 5]);
    assert.deepEqual(ids({ $and: [{ tags: 'a' }, { age: { $exists: true } }] }), [1, 2]);
    assert.deepEqual(ids({ $nor: [{ tags: 'a' }, { age: null }] }), [3, 6, 7]);
    assert.deepEqual(ids({ $or: [{ $and: [{ age: 5 }, { name: 'ann' }] }, { _id: 2 }] }), [1, 2]);
    assert.deepEqual(ids({ $comment: 'ignored', _id: 3 }), [3]);
    assert.deepEqual(ids({}), [1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('compileFilter: errors', () => {
  const filter = (f: Document) => () => compileFilter(rt(f));

  it('rejects unknown operators with mongod texts', () => {
    assertServerError(filter({ a: { $foo: 1 } }), 2, 'unknown operator: $foo');
    assertServerError(filter({ a: { $gt: 1, b: 1 } }), 2, 'unknown operator: b');
    assertServerError(
      filter({ $foo: 1 }),
      2,
      "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.",
    );
  });

  it('validates operator arguments', () => {
    assertServerError(filter({ a: { $in: 1 } }), 2, '$in needs an array');
    assertServerError(filter({ a: { $nin: 'x' } }), 2, '$nin needs an array');
    assertServerError(filter({ a: { $in: [{ $gt: 1 }] } }), 2, 'cannot nest $ under $in');
    assertServerError(filter({ $or: {} }), 2, '$or must be an array');
    assertServerError(filter({ $and: [] }), 2, '$and/$or/$nor must be a nonempty array');
    assertServerError(filter({ $nor: [1] }), 2, '$or/$and/$nor entries need to be full objects');
    assertServerError(filter({ a: { $not: 1 } }), 2, '$not needs a regex or a document');
    assertServerError(filter({ a: { $not: {} } }), 2, '$not cannot be empty');
    assertServerError(filter({ a: { $gt: new BSONRegExp('x', '') } }), 2, "Can't have RegEx as arg to predicate over field 'a'.");
  });

  it('refuses valid operators it does not evaluate, by name', () => {
    for (const op of ['$regex', '$elemMatch', '$type', '$size', '$all', '$mod', '$geoWithin', '$near', '$bitsAllSet']) {
      assertNotImplemented(filter({ a: { [op]: 1 } }), op);
    }
    for (const op of ['$expr', '$where', '$text', '$jsonSchema']) {
      assertNotImplemented(filter({ [op]: {} }), op);
    }
    assertNotImplemented(filter({ a: new BSONRegExp('^x', 'i') }), 'Regular expression');
    assertNotImplemented(() => compileFilter({ a: /x/ }), 'Regular expression');
    assertNotImplemented(filter({ a: { $in: [new BSONRegExp('x', '')] } }), 'Regular expression');
    assertNotImplemented(filter({ a: { $not: new BSONRegExp('x', '') } }), 'Regular expression');
  });
});

describe('compileFilter: inputs built in code', () => {
  it('accepts JS numbers and plain values', () => {
    const m = compileFilter({ a: { $gte: 2 }, b: 'x' });
    assert.equal(m({ a: new Int32(2), b: 'x' }), true);
    assert.equal(m({ a: 2.5, b: 'x' }), true);
    assert.equal(m({ a: 1, b: 'x' }), false);
  });
});
