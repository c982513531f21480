import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal128, deserialize, Double, Int32, Long, serialize, Timestamp } from 'bson';
import { compileUpdate, type Document } from '../../../src/devserver/query/index.js';
import { assertNotImplemented, assertServerError, rt, typeOf } from './helpers.js';

function apply(doc: Document, update: Document, ctx?: { isInsert?: boolean; now?: Date }): { doc: Document; modified: boolean } {
  return compileUpdate(rt(update)).apply(rt(doc), ctx);
}

describe('compileUpdate: $inc and $mul type promotion', () => {
  const cases: Array<[string, unknown, unknown, string, string]> = [
    ['Int32 + Int32', new Int32(1), new Int32(2), 'Int32', '3'],
    ['Int32 overflow → Long', new Int32(2 ** 31 - 1), new Int32(1), 'Long', '2147483648'],
    ['Int32 + Long', new Int32(1), Long.fromNumber(2), 'Long', '3'],
    ['Long overflow → Double', Long.fromBigInt(2n ** 63n - 1n), new Int32(1), 'Double', String(2 ** 63)],
    ['Int32 + Double', new Int32(1), new Double(0.5), 'Double', '1.5'],
    ['Double + Int32 integral', new Double(1), new Int32(1), 'Double', '2'],
    ['Decimal + Int32', Decimal128.fromString('1.10'), new Int32(1), 'Decimal128', '2.10'],
    ['Decimal + Double 0.25', Decimal128.fromString('1.5'), new Double(0.25), 'Decimal128', '1.750000000000000'],
    ['Decimal + Double (as 15 digits)', Decimal128.fromString('1'), new Double(0.1), 'Decimal128', '1.100000000000000'],
  ];
  for (const [name, start, by, type, value] of cases) {
    it(name, () => {
      const { doc, modified } = apply({ _id: 1, n: start }, { $inc: { n: by } });
      assert.equal(modified, true);
      const back = deserialize(serialize(doc), { promoteValues: false });
      assert.equal(typeOf(back['n']), type);
      assert.equal(String(back['n'].valueOf?.() ?? back['n']), value);
    });
  }

  it('$mul keeps the type rules and creates a zero of the argument type', () => {
    assert.deepEqual(apply({ n: new Int32(70000) }, { $mul: { n: new Int32(70000) } }).doc['n'], Long.fromNumber(4_900_000_000));
    const created = apply({}, { $mul: { n: Long.fromNumber(5) } }).doc['n'];
    assert.equal(typeOf(created), 'Long');
    assert.equal(String(created), '0');
  });

  it('$inc of a missing field sets the argument, keeping its type', () => {
    assert.deepEqual(apply({}, { $inc: { 'a.b': Long.fromNumber(2) } }).doc, { a: { b: Long.fromNumber(2) } });
    const made = compileUpdate({ $inc: { n: 2 } }).apply({}).doc['n'];
    assert.equal(typeOf(made), 'Double', 'a JS number counts as a double');
  });

  it('reports no modification when the value does not change', () => {
    assert.equal(apply({ n: 1 }, { $inc: { n: 0 } }).modified, false);
    assert.equal(apply({ n: 1.5 }, { $inc: { n: new Int32(0) } }).modified, false);
    // A double zero converts to decimal unquantized, so adding it changes nothing.
    assert.equal(apply({ n: Decimal128.fromString('1.5') }, { $inc: { n: new Double(0) } }).modified, false);
  });

  it('rejects non-numeric operands and targets', () => {
    assertServerError(
      () => apply({ _id: 1, a: 'x' }, { $inc: { a: 1 } }),
      14,
      "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string",
    );
    assertServerError(() => apply({ _id: 1, a: { b: null } }, { $mul: { 'a.b': 2 } }), 14, /^Cannot apply \$mul .*'b' of non-numeric type null$/);
    assertServerError(() => compileUpdate(rt({ $inc: { a: 'x' } })), 14, 'Cannot increment with non-numeric argument: {a: "x"}');
  });
});

describe('compileUpdate: field operators', () => {
  it('$set replaces in place, appends new fields in mongod field order, creates paths', () => {
    const { doc, modified } = apply({ _id: 1, a: 1, z: 1 }, { $set: { z: 2, c: 1, b: 1, 'x.y': 1, a: 5 } });
    assert.equal(modified, true);
    assert.deepEqual(Object.keys(doc), ['_id', 'a', 'z', 'b', 'c', 'x']);
    assert.deepEqual(doc['x'], { y: new Int32(1) });
  });

  it('$set of an identical value is a no-op, of an equal value of another type is not', () => {
    assert.equal(apply({ a: { b: [1] } }, { $set: { a: { b: [1] } } }).modified, false);
    assert.equal(apply({ a: 1 }, { $set: { a: new Double(1) } }).modified, true);
  });

  it('$set refuses to traverse a scalar', () => {
    assertServerError(() => apply({ a: 1 }, { $set: { 'a.b': 1 } }), 28, "Cannot create field 'b' in element {a: 1}");
  });

  it('$unset, $min, $max, $rename', () => {
    assert.deepEqual(apply({ a: 1, b: 2 }, { $unset: { a: '' } }).doc, rt({ b: 2 }));
    assert.equal(apply({ b: 2 }, { $unset: { a: 1 } }).modified, false);
    assert.deepEqual(apply({ a: 5 }, { $min: { a: 3 } }).doc, rt({ a: 3 }));
    assert.equal(apply({ a: 5 }, { $min: { a: 7 } }).modified, false);
    assert.equal(apply({ a: 5 }, { $max: { a: 5.0 } }).modified, false, 'equal values do not replace');
    assert.deepEqual(apply({ a: 5 }, { $max: { a: 'str' } }).doc, rt({ a: 'str' }), 'strings sort above numbers');
    assert.deepEqual(apply({}, { $max: { a: 1 } }).doc, rt({ a: 1 }));
    assert.deepEqual(apply({ a: 1, b: { c: 2 } }, { $rename: { a: 'b.d', 'b.c': 'e' } }).doc, rt({ b: { d: 1 }, e: 2 }));
    assert.equal(apply({ b: 1 }, { $rename: { a: 'c' } }).modified, false);
  });

  it('$setOnInsert applies only on insert', () => {
    assert.equal(apply({ a: 1 }, { $setOnInsert: { b: 1 } }).modified, false);
    assert.deepEqual(apply({ a: 1 }, { $setOnInsert: { b: 1 } }, { isInsert: true }).doc, rt({ a: 1, b: 1 }));
  });

  it('$currentDate writes a date or a timestamp', () => {
    const now = new Date('2024-01-02T03:04:05Z');
    const { doc } = apply({}, { $currentDate: { d: true, t: { $type: 'timestamp' } } }, { now });
    assert.deepEqual(doc['d'], now);
    assert.ok(doc['t'] instanceof Timestamp);
    assert.equal((doc['t'] as Timestamp).t, Math.floor(now.getTime() / 1000));
  });
});

describe('compileUpdate: array operators', () => {
  it('$push a value, $each with $position/$slice/$sort', () => {
    assert.deepEqual(apply({ a: [1] }, { $push: { a: 2 } }).doc, rt({ a: [1, 2] }));
    assert.deepEqual(apply({}, { $push: { a: [1] } }).doc, rt({ a: [[1]] }));
    assert.deepEqual(apply({ a: [1, 2] }, { $push: { a: { $each: [3, 4], $position: 0 } } }).doc, rt({ a: [3, 4, 1, 2] }));
    assert.deepEqual(apply({ a: [5, 1] }, { $push: { a: { $each: [3], $sort: -1, $slice: 2 } } }).doc, rt({ a: [5, 3] }));
    assert.deepEqual(
      apply({ a: [{ s: 2 }, { s: 1 }] }, { $push: { a: { $each: [], $sort: { s: 1 } } } }).doc,
      rt({ a: [{ s: 1 }, { s: 2 }] }),
    );
    assert.equal(apply({ a: [1] }, { $push: { a: { $each: [] } } }).modified, false);
    assertServerError(
      () => apply({ _id: 1, a: 'x' }, { $push: { a: 1 } }),
      2,
      "The field 'a' must be an array but is of type string in document {_id: 1}",
    );
  });

  it('$addToSet adds only missing values (by value)', () => {
    assert.deepEqual(apply({ a: [1, 2] }, { $addToSet: { a: { $each: [2.0, 3, 3] } } }).doc, rt({ a: [1, 2, 3] }));
    assert.equal(apply({ a: [1] }, { $addToSet: { a: 1 } }).modified, false);
    assert.deepEqual(apply({}, { $addToSet: { a: 1 } }).doc, rt({ a: [1] }));
    assertServerError(
      () => apply({ a: 1 }, { $addToSet: { a: 1 } }),
      2,
      "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type int",
    );
  });

  it('$pull by equality and by condition, $pullAll, $pop', () => {
    assert.deepEqual(apply({ a: [1, 2, 1, 3] }, { $pull: { a: 1 } }).doc, rt({ a: [2, 3] }));
    assert.deepEqual(apply({ a: [1, 5, 9] }, { $pull: { a: { $gte: 5 } } }).doc, rt({ a: [1] }));
    assert.deepEqual(apply({ a: [{ x: 1, y: 1 }, { x: 2 }] }, { $pull: { a: { x: 1 } } }).doc, rt({ a: [{ x: 2 }] }));
    assert.equal(apply({ a: [1] }, { $pull: { a: 2 } }).modified, false);
    assert.deepEqual(apply({ a: [1, 2, 3] }, { $pullAll: { a: [1, 3] } }).doc, rt({ a: [2] }));
    assert.deepEqual(apply({ a: [1, 2, 3] }, { $pop: { a: -1 } }).doc, rt({ a: [2, 3] }));
    assert.deepEqual(apply({ a: [1, 2, 3] }, { $pop: { a: 1 } }).doc, rt({ a: [1, 2] }));
    assert.equal(apply({ a: [] }, { $pop: { a: 1 } }).modified, false);
    assertServerError(() => apply({ a: 1 }, { $pull: { a: 1 } }), 2, 'Cannot apply $pull to a non-array value');
    assertServerError(() => apply({ a: 1 }, { $pop: { a: 1 } }), 14, "Path 'a' contains an element of non-array type 'int'");
    assertServerError(() => compileUpdate(rt({ $pop: { a: 2 } })), 9, '$pop expects 1 or -1, found: 2');
  });
});

describe('compileUpdate: replacement', () => {
  it('keeps the original _id first and reports no-ops', () => {
    const { doc, modified } = apply({ _id: 1, a: 1 }, { b: 2 });
    assert.equal(modified, true);
    assert.deepEqual(Object.keys(doc), ['_id', 'b']);
    assert.equal(apply({ _id: 1, a: 1 }, { a: 1 }).modified, false);
    assert.equal(compileUpdate({}).isReplacement, true);
  });

  it('refuses to change _id, and $-prefixed top-level fields', () => {
    assertServerError(
      () => apply({ _id: 1 }, { _id: 2 }),
      66,
      "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2",
    );
    assert.equal(apply({ _id: 1 }, { _id: 1.0, a: 1 }).modified, true, 'an equal _id value is allowed');
    assertServerError(
      () => compileUpdate(rt({ a: 1, $set: { b: 1 } })),
      52,
      "The dollar ($) prefixed field '$set' in '$set' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.",
    );
  });
});

describe('compileUpdate: errors', () => {
  it('unknown modifiers, modifier/field mixes and non-object arguments', () => {
    const msg = (m: string): string => `Unknown modifier: ${m}. Expected a valid update modifier or pipeline-style update specified as an array`;
    assertServerError(() => compileUpdate(rt({ $foo: { a: 1 } })), 9, msg('$foo'));
    assertServerError(() => compileUpdate(rt({ $set: { a: 1 }, b: 2 })), 9, msg('b'));
    assertServerError(() => compileUpdate(rt({ $pushAll: { a: [1] } })), 9, msg('$pushAll'));
    assertServerError(
      () => compileUpdate(rt({ $set: 5 })),
      9,
      'Modifiers operate on fields but we found type int instead. For example: {$mod: {<field>: ...}} not {$set: 5}',
    );
  });

  it('conflicting paths', () => {
    assertServerError(() => compileUpdate(rt({ $set: { a: 1 }, $inc: { a: 1 } })), 40, "Updating the path 'a' would create a conflict at 'a'");
    assertServerError(() => compileUpdate(rt({ $set: { a: 1 }, $unset: { 'a.b': 1 } })), 40, "Updating the path 'a.b' would create a conflict at 'a'");
    assertServerError(() => compileUpdate(rt({ $set: { 'a.b': 1, a: 1 } })), 40, "Updating the path 'a' would create a conflict at 'a'");
    assertServerError(() => compileUpdate(rt({ $rename: { a: 'b' }, $set: { b: 1 } })), 40, "Updating the path 'b' would create a conflict at 'b'");
    assert.doesNotThrow(() => compileUpdate(rt({ $set: { 'a.b': 1, 'a.c': 1 } })));
  });

  it('immutable _id', () => {
    const msg = "Performing an update on the path '_id' would modify the immutable field '_id'";
    assertServerError(() => apply({ _id: 1 }, { $set: { _id: 2 } }), 66, msg);
    assertServerError(() => apply({ _id: 1 }, { $inc: { _id: 1 } }), 66, msg);
    assertServerError(() => apply({ _id: { a: 1 } }, { $set: { '_id.a': 2 } }), 66, /on the path '_id.a'/);
    assert.equal(apply({ _id: 1 }, { $set: { _id: 1 } }).modified, false, 'an identical _id is a no-op');
    assert.deepEqual(apply({}, { $set: { _id: 5, a: 1 } }, { isInsert: true }).doc, rt({ _id: 5, a: 1 }));
  });

  it('paths, $rename arguments, pipelines and positional operators', () => {
    assertServerError(() => compileUpdate(rt({ $set: { 'a..b': 1 } })), 56, "The update path 'a..b' contains an empty field name, which is not allowed.");
    assertServerError(() => compileUpdate(rt({ $rename: { a: 1 } })), 2, "The 'to' field for $rename must be a string: a: 1");
    assertServerError(() => compileUpdate(rt({ $rename: { a: 'a.b' } })), 2, 'The source and target field for $rename must not be on the same path: a: "a.b"');
    assertNotImplemented(() => compileUpdate([{ $set: { a: 1 } }]), 'Pipeline-style updates');
    assertNotImplemented(() => compileUpdate(rt({ $set: { 'a.$': 1 } })), 'positional update operators');
    assertNotImplemented(() => compileUpdate(rt({ $set: { 'a.$[]': 1 } })), 'positional update operators');
    assertNotImplemented(() => compileUpdate(rt({ $bit: { a: { and: 1 } } })), '$bit');
  });
});

describe('compileUpdate: fidelity', () => {
  it('round-trips every BSON type it leaves alone, and never mutates its input', () => {
    const original = rt({
      _id: new Int32(1),
      d: new Double(2),
      l: Long.fromNumber(3),
      dec: Decimal128.fromString('4.50'),
      when: new Date(5),
      ts: new Timestamp({ t: 6, i: 7 }),
      nested: { arr: [new Int32(1), new Double(1)] },
    });
    const before = serialize(original);
    const { doc } = compileUpdate(rt({ $set: { added: 1 }, $inc: { d: new Int32(1) } })).apply(original);
    assert.deepEqual(serialize(original), before, 'input untouched');
    const back = deserialize(serialize(doc), { promoteValues: false });
    for (const [k, t] of Object.entries({ _id: 'Int32', d: 'Double', l: 'Long', dec: 'Decimal128', ts: 'Timestamp', added: 'Int32' })) {
      assert.equal(typeOf(back[k]), t, k);
    }
    assert.equal(typeOf(back['nested'].arr[1]), 'Double');
    assert.equal(back['d'].value, 3);
  });
});
