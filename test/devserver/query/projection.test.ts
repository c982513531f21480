import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileProjection, type Document } from '../../../src/devserver/query/index.js';
import { assertNotImplemented, assertServerError, rt } from './helpers.js';

const doc = rt({ z: 0, _id: 7, a: 1, b: { c: 2, d: 3 }, arr: [{ c: 1, e: 2 }, 5, [{ c: 3 }]], s: 'x' });
const project = (spec: Document): Document => rt(compileProjection(rt(spec))(doc));

describe('compileProjection', () => {
  it('includes fields in the document order, with _id by default', () => {
    assert.deepEqual(Object.keys(project({ s: 1, a: true })), ['_id', 'a', 's']);
    assert.deepEqual(Object.keys(project({ a: 1, _id: 0 })), ['a']);
    assert.deepEqual(Object.keys(project({ a: 5 })), ['_id', 'a'], 'any non-zero number includes');
    assert.deepEqual(Object.keys(project({ _id: 1 })), ['_id']);
  });

  it('includes dotted and nested fields, descending into arrays', () => {
    assert.deepEqual(project({ 'b.c': 1, _id: 0 }), rt({ b: { c: 2 } }));
    assert.deepEqual(project({ b: { d: 1 }, _id: 0 }), rt({ b: { d: 3 } }));
    assert.deepEqual(project({ 'arr.c': 1, _id: 0 }), rt({ arr: [{ c: 1 }, [{ c: 3 }]] }), 'scalars in arrays are dropped');
    assert.deepEqual(project({ 's.x': 1, _id: 0 }), {}, 'a scalar has no sub-fields to include');
  });

  it('excludes top-level and dotted fields, keeping everything else in order', () => {
    assert.deepEqual(Object.keys(project({ a: 0, b: 0 })), ['z', '_id', 'arr', 's']);
    assert.deepEqual(project({ 'b.c': 0, 'arr.c': 0, z: 0, a: 0, s: 0 }), rt({ _id: 7, b: { d: 3 }, arr: [{ e: 2 }, 5, [{}]] }));
    assert.deepEqual(Object.keys(project({ _id: 0 })), ['z', 'a', 'b', 'arr', 's']);
    assert.deepEqual(Object.keys(project({ _id: 1, a: 0 })), ['z', '_id', 'b', 'arr', 's']);
  });

  it('returns the document unchanged for an empty projection', () => {
    assert.equal(compileProjection({})(doc), doc);
  });

  it('rejects mixing inclusion and exclusion with mongod codes', () => {
    assertServerError(() => compileProjection(rt({ a: 1, b: 0 })), 31254, 'Cannot do exclusion on field b in inclusion projection');
    assertServerError(() => compileProjection(rt({ a: 0, b: 1 })), 31253, 'Cannot do inclusion on field b in exclusion projection');
    assertServerError(() => compileProjection(rt({ a: 1, 'a.b': 1 })), 31249, 'Path collision at a.b remaining portion b');
    assertServerError(() => compileProjection(rt({ 'a.b': 1, a: 1 })), 31250, 'Path collision at a');
    assertServerError(() => compileProjection(rt({ $a: 1 })), 16410, /^FieldPath field names may not start with '\$'/);
  });

  it('refuses projection operators, expressions and literals', () => {
    assertNotImplemented(() => compileProjection(rt({ a: { $slice: 1 } })), '$slice');
    assertNotImplemented(() => compileProjection(rt({ a: { $elemMatch: { b: 1 } } })), '$elemMatch');
    assertNotImplemented(() => compileProjection(rt({ a: { $meta: 'textScore' } })), '$meta');
    assertNotImplemented(() => compileProjection(rt({ a: { $add: [1, 2] } })), 'Expressions in find projections');
    assertNotImplemented(() => compileProjection(rt({ a: 'literal' })), 'Literal values');
    assertNotImplemented(() => compileProjection(rt({ 'arr.$': 1 })), 'Positional projection');
  });
});
