import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Binary, BSONRegExp, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp } from 'bson';
import fc from 'fast-check';
import {
  compareValues,
  getPath,
  getPathValues,
  identical,
  isNumeric,
  setPath,
  toNumber,
  unsetPath,
  valuesEqual,
} from '../../../src/devserver/query/index.js';
import { assertServerError, bsonValue, rt } from './helpers.js';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('compareValues', () => {
  it('orders the type brackets as mongod does', () => {
    const ordered: unknown[] = [
      new MinKey(),
      null,
      new Int32(-5),
      'a',
      { a: 1 },
      [1],
      new Binary(Buffer.from([1])),
      new ObjectId('000000000000000000000000'),
      false,
      new Date(0),
      new Timestamp({ t: 1, i: 1 }),
      new BSONRegExp('a', ''),
      new MaxKey(),
    ];
    for (let i = 0; i < ordered.length - 1; i++) {
      assert.equal(compareValues(ordered[i], ordered[i + 1]), -1, `${i}`);
      assert.equal(compareValues(ordered[i + 1], ordered[i]), 1, `${i}`);
    }
  });

  it('compares numbers by value across Int32, Double, Long and Decimal128', () => {
    assert.equal(compareValues(new Int32(1), new Double(1)), 0);
    assert.equal(compareValues(Long.fromNumber(1), Decimal128.fromString('1.000')), 0);
    assert.equal(compareValues(new Double(1.5), Long.fromNumber(1)), 1);
    assert.equal(compareValues(Decimal128.fromString('0.1'), new Double(0.1)), -1, '0.1 as a double is slightly above 1/10');
    // 2^53 + 1 has no double; it must still compare above 2^53.
    assert.equal(compareValues(Long.fromBigInt(2n ** 53n + 1n), new Double(2 ** 53)), 1);
    assert.equal(compareValues(Long.fromBigInt(2n ** 63n - 1n), new Double(2 ** 63)), -1);
    assert.equal(compareValues(new Double(Number.NaN), new Double(-Infinity)), -1, 'NaN sorts below every number');
    assert.equal(compareValues(new Double(Number.NaN), Decimal128.fromString('NaN')), 0);
    assert.equal(compareValues(new Double(-0), new Int32(0)), 0);
    assert.equal(compareValues(Decimal128.fromString('1E+6000'), new Double(Number.MAX_VALUE)), 1);
  });

  it('compares strings by UTF-8 bytes, not UTF-16 units', () => {
    // U+1F600 is a surrogate pair in UTF-16 (0xD83D...) but sorts after U+FFFD in UTF-8.
    assert.equal(compareValues('\u{1F600}', '\uFFFD'), 1);
    assert.equal(compareValues('ab', 'abc'), -1);
  });

  it('compares documents field by field, including names and order', () => {
    assert.equal(compareValues({ a: 1, b: 2 }, { a: 1, b: 2 }), 0);
    assert.equal(compareValues({ a: 1, b: 2 }, { b: 2, a: 1 }), -1);
    assert.equal(compareValues({ a: 1 }, { a: 1, b: 0 }), -1);
    assert.equal(compareValues({ a: 'x' }, { a: 1 }), 1, 'type bracket of the field decides first');
    assert.equal(compareValues([1, 2], [1, 3]), -1);
    assert.equal(compareValues([], [null]), -1);
  });

  it('compares binData by length, then subtype, then bytes', () => {
    assert.equal(compareValues(new Binary(Buffer.from([9]), 0), new Binary(Buffer.from([1, 1]), 0)), -1);
    assert.equal(compareValues(new Binary(Buffer.from([9]), 0), new Binary(Buffer.from([1]), 4)), -1);
  });

  it('treats missing (undefined) like null', () => {
    assert.equal(compareValues(undefined, null), 0);
    assert.ok(valuesEqual(undefined, null));
  });

  it('is a total order on random BSON values (reflexive, antisymmetric, transitive)', () => {
    fc.assert(
      fc.property(bsonValue, bsonValue, bsonValue, (a, b, c) => {
        assert.equal(compareValues(a, a), 0);
        assert.equal(sign(compareValues(a, b)) + sign(compareValues(b, a)), 0);
        if (compareValues(a, b) <= 0 && compareValues(b, c) <= 0) assert.ok(compareValues(a, c) <= 0);
        if (compareValues(a, b) === 0) assert.equal(sign(compareValues(a, c)), sign(compareValues(b, c)));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with exact arithmetic on random integers of mixed types', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }), fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }), (x, y) => {
        const expected = sign(Number(x - y));
        assert.equal(compareValues(Long.fromBigInt(x), Decimal128.fromString(y.toString())), expected);
        if (Number.isSafeInteger(Number(y))) assert.equal(compareValues(Long.fromBigInt(x), new Double(Number(y))), expected);
      }),
    );
  });
});

describe('identical, isNumeric, toNumber', () => {
  it('distinguishes equal values of different types', () => {
    assert.ok(valuesEqual(new Int32(1), new Double(1)));
    assert.ok(!identical(new Int32(1), new Double(1)));
    assert.ok(identical({ a: [new Int32(1)] }, { a: [new Int32(1)] }));
    assert.ok(!identical({ a: 1, b: 2 }, { b: 2, a: 1 }));
  });

  it('recognizes and converts every numeric type', () => {
    for (const v of [new Int32(3), new Double(3), Long.fromNumber(3), Decimal128.fromString('3'), 3]) {
      assert.ok(isNumeric(v));
      assert.equal(toNumber(v), 3);
    }
    assert.ok(!isNumeric('3'));
  });
});

describe('paths', () => {
  const doc = rt({ a: [{ b: 1 }, { b: [2, 3] }, { c: 1 }, 5], d: { e: [[1]] }, n: null });

  it('getPathValues fans out across arrays as matching does', () => {
    const values = getPathValues(doc, 'a.b').map((v) => (v === undefined ? 'missing' : toNumberOrArray(v)));
    assert.deepEqual(values, [1, 2, 3, [2, 3], 'missing']);
    assert.deepEqual(getPathValues(doc, 'a.3').map(toNumberOrArray), [5]);
    assert.deepEqual(getPathValues(doc, 'x.y'), [undefined]);
    assert.deepEqual(getPathValues(doc, 'n.y'), [undefined]);
    assert.equal(getPathValues(doc, 'd.e').length, 2, 'leaf array: its element and itself');
  });

  it('getPath addresses one value, indexing arrays', () => {
    assert.equal(toNumber(getPath(doc, 'a.1.b.0')), 2);
    assert.equal(getPath(doc, 'a.b'), undefined);
    assert.equal(getPath(doc, 'missing.x'), undefined);
  });

  it('setPath creates sub-documents, pads arrays, refuses to traverse scalars', () => {
    const d = rt({ a: 1, arr: [1] });
    setPath(d, 'x.y.z', 1);
    assert.deepEqual(d['x'], { y: { z: 1 } });
    setPath(d, 'arr.3', 'v');
    assert.deepEqual(d['arr'], [new Int32(1), null, null, 'v']);
    assertServerError(() => setPath(d, 'a.b', 1), 28, "Cannot create field 'b' in element {a: 1}");
    assertServerError(() => setPath(d, 'arr.x', 1), 28, /^Cannot create field 'x' in element \{arr: \[ 1, null, null, "v" \]\}$/);
  });

  it('setPath cannot be tricked into touching the prototype', () => {
    const d: Record<string, unknown> = {};
    setPath(d, '__proto__.polluted', 1);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.deepEqual(Object.keys(d), ['__proto__']);
  });

  it('unsetPath removes fields, nulls array elements, ignores non-viable paths', () => {
    const d = rt({ a: { b: 1, c: 2 }, arr: [1, 2], s: 5 });
    assert.equal(unsetPath(d, 'a.b'), true);
    assert.deepEqual(d['a'], { c: new Int32(2) });
    assert.equal(unsetPath(d, 'arr.0'), true);
    assert.deepEqual(d['arr'], [null, new Int32(2)]);
    assert.equal(unsetPath(d, 's.x'), false);
    assert.equal(unsetPath(d, 'nope'), false);
  });
});

function toNumberOrArray(v: unknown): unknown {
  return Array.isArray(v) ? v.map(toNumberOrArray) : isNumeric(v) ? toNumber(v) : v;
}
