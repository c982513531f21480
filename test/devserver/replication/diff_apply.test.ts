import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deserialize, Int32, serialize, Timestamp } from 'bson';
import { applyDiff } from '../../../src/devserver/replication/diff_apply.js';
import type { Document } from '../../../src/devserver/bson.js';
import { CommandError } from '../../../src/errors.js';

/** Through BSON and back, as the server sees documents (Int32 stays Int32). */
function rt(doc: Document): Document {
  return deserialize(serialize(doc), { promoteValues: false }) as Document;
}

function apply(pre: Document, diff: Document): Document {
  return applyDiff(rt(pre), rt(diff));
}

/** Field order matters in BSON: compare the bytes. */
function assertSameBson(actual: Document, expected: Document): void {
  assert.deepEqual(deserialize(serialize(actual)), deserialize(serialize(expected)));
  assert.deepEqual(Object.keys(actual), Object.keys(expected));
}

function assertDiffError(pre: Document, diff: Document, code: number, message: RegExp): void {
  assert.throws(() => apply(pre, diff), (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('applyDiff: document sections (document_diff_applier.cpp)', () => {
  it('deletes, updates in place, inserts at the end', () => {
    const out = apply({ _id: 1, a: 1, b: 2, c: 3 }, { d: { b: false }, u: { a: 10 }, i: { z: 26 } });
    assertSameBson(out, { _id: 1, a: 10, c: 3, z: 26 });
  });

  it('an update of a field the pre-image lacks is appended', () => {
    assertSameBson(apply({ _id: 1 }, { u: { a: 1 } }), { _id: 1, a: 1 });
  });

  it('an insert of an existing field moves it to the end with its new value', () => {
    assertSameBson(apply({ _id: 1, a: 1, b: 2 }, { i: { a: 3 } }), { _id: 1, b: 2, a: 3 });
  });

  it('deleting a missing field is a no-op, so a diff applies twice to the same result', () => {
    const diff = { d: { gone: false }, u: { n: 2 }, i: { added: true } };
    const once = apply({ _id: 1, gone: 1, n: 1 }, diff);
    const twice = applyDiff(once, rt(diff));
    assertSameBson(once, { _id: 1, n: 2, added: true });
    assertSameBson(twice, once);
  });

  it('keeps BSON types of untouched and new values', () => {
    const ts = new Timestamp({ t: 5, i: 1 });
    const out = apply({ _id: 1, n: new Int32(1) }, { u: { ts } });
    assert.equal((out['n'] as Int32)._bsontype, 'Int32');
    assert.ok((out['ts'] as Timestamp).equals(ts));
  });
});

describe('applyDiff: sub-diffs', () => {
  it('recurses into a sub-document', () => {
    const out = apply({ _id: 1, a: { x: 1, y: 2 }, b: 1 }, { sa: { u: { y: 3 }, i: { z: 4 } } });
    assertSameBson(out, { _id: 1, a: { x: 1, y: 3, z: 4 }, b: 1 });
  });

  it('array: updates an index, appends past the end, pads a gap with null', () => {
    assertSameBson(apply({ _id: 1, a: [1, 2, 3] }, { sa: { a: true, u1: 20 } }), { _id: 1, a: [1, 20, 3] });
    assertSameBson(apply({ _id: 1, a: [1] }, { sa: { a: true, u3: 4 } }), { _id: 1, a: [1, null, null, 4] });
  });

  it('array: a resize truncates, and extends with null', () => {
    assertSameBson(apply({ _id: 1, a: [1, 2, 3] }, { sa: { a: true, l: new Int32(1) } }), { _id: 1, a: [1] });
    assertSameBson(apply({ _id: 1, a: [1] }, { sa: { a: true, l: new Int32(3) } }), { _id: 1, a: [1, null, null] });
  });

  it('array of documents: a sub-diff at an index', () => {
    const out = apply({ _id: 1, a: [{ q: 1 }, { q: 2 }] }, { sa: { a: true, s1: { u: { q: 5 } } } });
    assertSameBson(out, { _id: 1, a: [{ q: 1 }, { q: 5 }] });
  });

  it('a sub-diff over a value of another type leaves null, as on re-application', () => {
    assertSameBson(apply({ _id: 1, a: 'now a string' }, { sa: { u: { x: 1 } } }), { _id: 1, a: null });
    assertSameBson(apply({ _id: 1, a: { x: 1 } }, { sa: { a: true, u0: 1 } }), { _id: 1, a: null });
    assertSameBson(apply({ _id: 1, a: [] }, { sa: { a: true, s0: { u: { x: 1 } } } }), { _id: 1, a: [null] });
  });

  it('does not modify the pre-image', () => {
    const pre = rt({ _id: 1, a: { x: 1 }, b: [1, 2] });
    const copy = rt(pre);
    applyDiff(pre, rt({ sa: { u: { x: 2 } }, sb: { a: true, u0: 9 } }));
    assert.deepEqual(pre, copy);
  });
});

describe('applyDiff: malformed diffs get mongod\'s errors (document_diff_serialization.cpp)', () => {
  const pre = { _id: 1, a: { x: 1 }, b: [1] };
  it('empty', () => assertDiffError(pre, {}, 4770500, /Expected diff to be non-empty/));
  it('a section out of order', () => assertDiffError(pre, { u: { a: 1 }, d: { b: false } }, 4770503, /Unexpected section: d in document diff/));
  it('an unknown section, and mongod 8\'s binary section', () => {
    assertDiffError(pre, { x: { a: 1 } }, 4770503, /Unexpected section: x/);
    assertDiffError(pre, { b: { a: 1 } }, 4770503, /Unexpected section: b/);
  });
  it('a section that is not an object', () => assertDiffError(pre, { u: 1 }, 4770507, /Expected u section to be type object/));
  it('the same field in two sections', () => assertDiffError(pre, { d: { a: false }, u: { a: 1 } }, 4728000, /duplicate field name in diff: a/));
  it('a non-sub-diff after sub-diffs', () => assertDiffError(pre, { sa: { u: { x: 2 } }, u: { c: 1 } }, 4770514, /Did not expect more sections/));
  it('a sub-diff that is not an object', () => assertDiffError(pre, { sa: { u: { x: 2 } }, sb: 1 }, 470510, /Subdiffs should be objects/));
  it('array header false', () => assertDiffError(pre, { sb: { a: false, u0: 1 } }, 4770520, /array header to be value true/));
  it('array entry neither u nor s', () => assertDiffError(pre, { sb: { a: true, x0: 1 } }, 4770502, /Expected either 'u' \(update\) or 's' \(sub diff\) at index 0/));
  it('array index not an integer', () => assertDiffError(pre, { sb: { a: true, uX: 1 } }, 4770512, /Expected integer but got X/));
  it('array resize not an int', () => assertDiffError(pre, { sb: { a: true, l: 'x' } }, 4770507, /Expected l section to be type int/));
});
