import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Int32, MinKey } from 'bson';
import fc from 'fast-check';
import { compareValues, compileSort, type Document } from '../../../src/devserver/query/index.js';
import { assertNotImplemented, assertServerError, bsonValue, rt } from './helpers.js';

function order(docs: Document[], spec: Document): number[] {
  return [...docs].sort(compileSort(rt(spec))).map((d) => (d['_id'] as Int32).value);
}

describe('compileSort', () => {
  const docs = [
    { _id: 1, a: 3, b: 'x' },
    { _id: 2, a: 'str' },
    { _id: 3, a: [5, 0] },
    { _id: 4 },
    { _id: 5, a: null },
    { _id: 6, a: [] },
    { _id: 7, a: 1.5, b: 'y' },
    { _id: 8, a: new MinKey() },
  ].map(rt);

  it('sorts across types in canonical order; arrays by min ascending, max descending', () => {
    assert.deepEqual(order(docs, { a: 1 }), [8, 6, 4, 5, 3, 7, 1, 2]);
    assert.deepEqual(order(docs, { a: -1 }), [2, 3, 1, 7, 4, 5, 6, 8]);
  });

  it('uses later keys to break ties and follows dotted paths', () => {
    const d = [
      { _id: 1, k: 1, s: { v: 2 } },
      { _id: 2, k: 1, s: { v: 1 } },
      { _id: 3, k: 0, s: [{ v: 9 }, { v: 0 }] },
    ].map(rt);
    assert.deepEqual(order(d, { k: -1, 's.v': 1 }), [2, 1, 3]);
    assert.deepEqual(order(d, { 's.v': -1 }), [3, 1, 2]);
  });

  it('treats an empty specification as no sort', () => {
    assert.equal(compileSort({})({ a: 1 }, { a: 2 }), 0);
  });

  it('rejects bad orderings with mongod codes and texts', () => {
    assertServerError(() => compileSort(rt({ a: 2 })), 15975, '$sort key ordering must be 1 (for ascending) or -1 (for descending)');
    assertServerError(() => compileSort(rt({ a: 0 })), 15975, '$sort key ordering must be 1 (for ascending) or -1 (for descending)');
    assertServerError(
      () => compileSort(rt({ a: 'asc' })),
      15974,
      "$sort key ordering must be specified using a number or {$meta: 'textScore'}",
    );
    assertServerError(() => compileSort(rt({ $a: 1 })), 16410, /^FieldPath field names may not start with '\$'/);
    assertNotImplemented(() => compileSort(rt({ s: { $meta: 'textScore' } })), 'Sorting by $meta');
    assertNotImplemented(() => compileSort(rt({ $natural: -1 })), 'Sorting by $natural');
  });

  it('reads the direction as mongod does (numberInt truncation)', () => {
    assert.deepEqual(order(docs.slice(0, 2), { a: 1.5 }), [1, 2]);
  });

  it('orders scalar values exactly as compareValues does', () => {
    const scalar = bsonValue.filter((v) => !Array.isArray(v));
    fc.assert(
      fc.property(fc.array(scalar, { maxLength: 12 }), fc.constantFrom(1, -1), (values, dir) => {
        const ds = values.map((v, i) => ({ _id: i, v }));
        const sorted = [...ds].sort(compileSort({ v: new Int32(dir) }));
        for (let i = 1; i < sorted.length; i++) {
          const c = compareValues(sorted[i - 1]?.['v'], sorted[i]?.['v']) * dir;
          assert.ok(c <= 0, `out of order at ${i}`);
        }
      }),
      { numRuns: 500 },
    );
  });
});
