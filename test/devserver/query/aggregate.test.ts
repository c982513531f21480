import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal128, Double, Int32, Long } from 'bson';
import { distinctValues, runPipeline, upsertSeed, type Document } from '../../../src/devserver/query/index.js';
import { assertNotImplemented, assertServerError, rt, typeOf } from './helpers.js';

const docs: Document[] = [
  { _id: 1, cat: 'a', n: 1, tags: ['x', 'y'], sub: { k: 1 } },
  { _id: 2, cat: 'b', n: 2, tags: ['y'] },
  { _id: 3, cat: 'a', n: 3.5 },
  { _id: 4, cat: 'b', n: 'str' },
  { _id: 5, n: null },
].map(rt);

function run(pipeline: Document[]): Document[] {
  return runPipeline(docs, pipeline.map(rt));
}

describe('runPipeline: $match, $sort, $skip, $limit, $count', () => {
  it('runs mongosh countDocuments shape', () => {
    const out = run([{ $match: { cat: 'a' } }, { $skip: 0 }, { $limit: 10 }, { $group: { _id: 1, n: { $sum: 1 } } }]);
    assert.deepEqual(out, [{ _id: new Int32(1), n: new Int32(2) }]);
    assert.deepEqual(run([{ $match: { cat: 'zzz' } }, { $group: { _id: 1, n: { $sum: 1 } } }]), []);
  });

  it('filters, sorts, skips and limits', () => {
    const out = run([{ $match: { n: { $exists: true } } }, { $sort: { _id: -1 } }, { $skip: 1 }, { $limit: 2 }]);
    assert.deepEqual(out.map((d) => (d['_id'] as Int32).value), [4, 3]);
    assert.deepEqual(run([{ $count: 'total' }]), [{ total: new Int32(5) }]);
    assert.deepEqual(run([{ $match: { nope: 1 } }, { $count: 'total' }]), []);
  });
});

describe('runPipeline: $group', () => {
  it('groups by a field path with the accumulators', () => {
    const out = run([
      { $group: { _id: '$cat', sum: { $sum: '$n' }, avg: { $avg: '$n' }, min: { $min: '$n' }, max: { $max: '$n' }, first: { $first: '$n' }, last: { $last: '$sub' }, all: { $push: '$_id' }, set: { $addToSet: '$cat' }, c: { $count: {} } } },
      { $sort: { _id: 1 } },
    ]);
    assert.deepEqual(out.map((d) => d['_id']), [null, 'a', 'b']);
    const a = out[1] as Document;
    assert.deepEqual(a['sum'], new Double(4.5));
    assert.deepEqual(a['avg'], new Double(2.25));
    assert.deepEqual(a['min'], new Int32(1));
    assert.deepEqual(a['max'], new Double(3.5));
    assert.deepEqual(a['last'], null, '$last of a missing field is null');
    assert.deepEqual(a['all'], [new Int32(1), new Int32(3)]);
    assert.deepEqual(a['set'], ['a']);
    assert.deepEqual(a['c'], new Int32(2));
    const b = out[2] as Document;
    assert.deepEqual(b['sum'], new Int32(2), 'non-numbers are ignored and Int32 sums stay Int32');
    assert.deepEqual(b['max'], 'str', '$max compares across types');
    const none = out[0] as Document;
    assert.deepEqual(none['avg'], null);
    assert.deepEqual(none['min'], null);
    assert.deepEqual(none['set'], [], 'a missing value is not added');
  });

  it('promotes $sum types like mongod', () => {
    const big = [rt({ v: 2 ** 31 - 1 }), rt({ v: 1 })];
    assert.deepEqual(runPipeline(big, [{ $group: { _id: null, s: { $sum: '$v' } } }])[0]?.['s'], Long.fromNumber(2 ** 31));
    const longs = [{ v: Long.fromBigInt(2n ** 63n - 1n) }, { v: new Int32(1) }];
    assert.equal(typeOf(runPipeline(longs, [{ $group: { _id: null, s: { $sum: '$v' } } }])[0]?.['s']), 'Double');
    const decs = [{ v: Decimal128.fromString('0.1') }, { v: new Int32(1) }];
    assert.equal(String(runPipeline(decs, [{ $group: { _id: null, s: { $sum: '$v' }, a: { $avg: '$v' } } }])[0]?.['a']), '0.55');
  });

  it('groups by compound keys and treats equal numbers as one key', () => {
    const input = [rt({ a: 1, b: 'x' }), { a: new Double(1), b: 'x' }, rt({ a: 2 })];
    const out = runPipeline(input, [{ $group: { _id: { a: '$a', b: '$b' }, n: { $sum: new Int32(1) } } }]);
    assert.deepEqual(out, [
      { _id: { a: new Int32(1), b: 'x' }, n: new Int32(2) },
      { _id: { a: new Int32(2) }, n: new Int32(1) },
    ]);
  });

  it('rejects malformed groups', () => {
    assertServerError(() => run([{ $group: { n: { $sum: 1 } } }]), 15955, 'a group specification must include an _id');
    assertServerError(() => run([{ $group: { _id: null, n: 1 } }]), 40234, "The field 'n' must be an accumulator object");
    assertServerError(() => run([{ $group: { _id: null, n: { $sum: 1, $avg: 1 } } }]), 40238, "The field 'n' must specify one accumulator");
    assertServerError(() => run([{ $group: { _id: null, n: { $foo: 1 } } }]), 15952, "unknown group operator '$foo'");
    assertNotImplemented(() => run([{ $group: { _id: null, n: { $stdDevPop: '$n' } } }]), '$stdDevPop');
    assertNotImplemented(() => run([{ $group: { _id: { $year: '$d' } } }]), '$year');
  });
});

describe('runPipeline: $project, $addFields, $unset', () => {
  it('$project includes, renames from paths and adds literals', () => {
    const out = run([{ $match: { _id: 1 } }, { $project: { cat: 1, k: '$sub.k', lit: { $literal: '$notAPath' }, s: 'text' } }]);
    assert.deepEqual(out, [{ _id: new Int32(1), cat: 'a', k: new Int32(1), lit: '$notAPath', s: 'text' }]);
    assert.deepEqual(Object.keys(run([{ $project: { _id: 0, tags: 0, sub: 0 } }])[0] ?? {}), ['cat', 'n']);
  });

  it('$project errors carry the stage prefix', () => {
    assertServerError(
      () => run([{ $project: { a: 1, b: 0 } }]),
      31254,
      'Invalid $project :: caused by :: Cannot do exclusion on field b in inclusion projection',
    );
    assertServerError(() => run([{ $project: {} }]), 51272, 'Invalid $project :: caused by :: projection specification must have at least one field');
    assertNotImplemented(() => run([{ $project: { a: { $add: [1, 2] } } }]), '$add');
    assertServerError(() => run([{ $project: { a: { $bogus: 1 } } }]), 168, /^Invalid \$project :: caused by :: Unrecognized expression '\$bogus'$/);
  });

  it('$addFields/$set add, replace and merge into sub-documents; $unset removes', () => {
    const out = run([{ $match: { _id: 1 } }, { $set: { cat: 'z', 'sub.j': '$n', extra: [1, '$cat'] } }, { $unset: ['tags', 'n'] }]);
    assert.deepEqual(out, [{ _id: new Int32(1), cat: 'z', sub: { k: new Int32(1), j: new Int32(1) }, extra: [new Int32(1), 'a'] }]);
    assert.deepEqual(Object.keys(run([{ $addFields: { sub: '$$REMOVE' } }])[0] ?? {}), ['_id', 'cat', 'n', 'tags']);
  });
});

describe('runPipeline: stage errors', () => {
  it('uses mongod codes and texts', () => {
    assertServerError(() => run([{ $foo: {} }]), 40324, "Unrecognized pipeline stage name: '$foo'");
    assertServerError(() => run([{ $match: {}, $limit: 1 }]), 40323, 'A pipeline stage specification object must contain exactly one field.');
    assertServerError(() => run([{ $limit: 0 }]), 15958, 'the limit must be positive');
    assertServerError(() => run([{ $limit: -1 }]), 5107201, 'invalid argument to $limit stage: Expected a non-negative number in: $limit: -1');
    assertServerError(() => run([{ $skip: 'x' }]), 5107200, 'invalid argument to $skip stage: Expected a number in: $skip: "x"');
    assertServerError(() => run([{ $skip: 1.5 }]), 5107200, 'invalid argument to $skip stage: Expected an integer: $skip: 1.5');
    assertServerError(() => run([{ $sort: {} }]), 15976, '$sort stage must have at least one sort key');
    assertServerError(() => run([{ $count: '$x' }]), 40158, 'the count field cannot be a $-prefixed path');
  });

  it('refuses real stages it does not run', () => {
    for (const stage of ['$lookup', '$unwind', '$facet', '$out', '$replaceRoot']) {
      assertNotImplemented(() => run([{ [stage]: {} }]), stage);
    }
  });
});

describe('distinctValues', () => {
  it('flattens arrays one level, drops missing, dedupes by value, sorts like mongod', () => {
    const input = [rt({ a: [1, 2, [3]] }), rt({ a: 2.0 }), rt({ a: null }), rt({}), rt({ a: 'x' }), rt({ a: [{ b: 1 }] })];
    const values = distinctValues(input, 'a');
    assert.deepEqual(values, [null, new Int32(1), new Int32(2), 'x', { b: new Int32(1) }, [new Int32(3)]]);
    assert.deepEqual(distinctValues(input, 'a.b'), [new Int32(1)]);
  });
});

describe('upsertSeed', () => {
  it('collects equalities, including $and, $eq, one-element $in and dotted paths', () => {
    const seed = upsertSeed(rt({ a: 1, 'b.c': 'x', $and: [{ d: { $eq: 2 } }, { e: { $in: [3] } }], f: { $gt: 1 }, _id: 9 }));
    assert.deepEqual(seed, rt({ _id: 9, a: 1, b: { c: 'x' }, d: 2, e: 3 }));
    assert.deepEqual(Object.keys(seed)[0], '_id');
    assert.deepEqual(upsertSeed(rt({ $or: [{ a: 1 }] })), rt({ a: 1 }));
    assert.deepEqual(upsertSeed(rt({ $or: [{ a: 1 }, { b: 1 }] })), {});
    assert.deepEqual(upsertSeed(rt({ a: 1, _id: 2 }), { idOnly: true }), rt({ _id: 2 }));
  });

  it('rejects ambiguous equalities', () => {
    assertServerError(() => upsertSeed(rt({ a: 1, $and: [{ a: 2 }] })), 54, "cannot infer query fields to set, path 'a' is matched twice");
    assertServerError(() => upsertSeed(rt({ a: 1, 'a.b': 2 })), 54, "cannot infer query fields to set, both paths 'a' and 'a.b' are matched");
  });
});
