/** The `$v: 2` diffs of replication/diff_compute.ts: mongod's shapes, and pre + diff = post. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { deserialize, serialize } from 'bson';
import { computeDocumentDiff } from '../../../src/devserver/replication/diff_compute.js';
import { applyDocumentDiff } from './diff_reference.js';
import { applyDiff } from '../../../src/devserver/replication/diff_apply.js';

type Doc = Record<string, unknown>;

const keys = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
const scalar = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom('x', 'y', '', null, true, false), fc.double({ noNaN: true, min: -2, max: 2 }));
const { value } = fc.letrec<{ value: unknown; doc: Doc; array: unknown[] }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('doc'), tie('array')),
  doc: fc.dictionary(keys, tie('value'), { maxKeys: 5 }),
  array: fc.array(tie('value'), { maxLength: 5 }),
}));
const doc = fc.dictionary(keys, value, { maxKeys: 6 });
/** With a field named `__proto__`, which a plain `out[name] = v` would lose. */
const protoKeys = fc.constantFrom('a', 'b', '__proto__');
const protoDoc = fc.letrec<{ value: unknown; doc: Doc }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('doc')),
  doc: fc.dictionary(protoKeys, tie('value'), { maxKeys: 3 }),
})).doc;

/** Byte equality: field order and numeric types count, as they do in the stored document. */
function sameBytes(a: Doc, b: Doc): boolean {
  return Buffer.from(serialize(a)).equals(Buffer.from(serialize(b)));
}

describe('$v: 2 diffs', () => {
  it('writes mongod\'s sections: d, u, i, then s<field>; arrays a, l, u<n>, s<n>', () => {
    const pre = { _id: 1, gone: 1, same: 1, changed: 1, sub: { x: 1, y: 1 }, arr: [1, 2, 3, 4] };
    const post = { _id: 1, same: 1, changed: 2, sub: { x: 2, y: 1 }, arr: [1, 9], added: true };
    assert.deepEqual(computeDocumentDiff(pre, post), {
      d: { gone: false },
      u: { changed: 2 },
      i: { added: true },
      ssub: { u: { x: 2 } },
      sarr: { a: true, l: 2, u1: 9 },
    });
  });

  it('logs a field that moved to the end as an insert, not a delete', () => {
    // b left its place: it is re-inserted at the end, and c stays where it was.
    assert.deepEqual(computeDocumentDiff({ a: 1, b: 2, c: 3 }, { a: 1, c: 3, b: 2 }), { i: { b: 2 } });
    assert.deepEqual(computeDocumentDiff({ a: 1, b: 2 }, { b: 2 }), { d: { a: false } });
  });

  it('is empty for identical documents and tells 1 from 1.0 apart', () => {
    assert.deepEqual(computeDocumentDiff({ a: 1 }, { a: 1 }), {});
    assert.deepEqual(computeDocumentDiff({ a: 1 }, { a: 1.5 }), { u: { a: 1.5 } });
  });

  it('applies back to the post-image, field order included (property)', () => {
    fc.assert(
      fc.property(doc, doc, (pre, post) => {
        const diff = computeDocumentDiff(pre, post);
        const applied = applyDocumentDiff(pre, diff);
        return sameBytes(applied, post);
      }),
      { numRuns: 2000 },
    );
  });

  it('applies back through the server\'s applier and BSON, a field named __proto__ included (property)', () => {
    const bytes = (d: Doc): Doc => deserialize(serialize(d));
    assert.ok(sameBytes(applyDiff({ a: 1 }, bytes(computeDocumentDiff({ a: 1 }, JSON.parse('{"a":1,"__proto__":{"x":1}}') as Doc))), JSON.parse('{"a":1,"__proto__":{"x":1}}') as Doc));
    fc.assert(
      fc.property(protoDoc, protoDoc, (pre, post) => {
        const diff = computeDocumentDiff(pre, post);
        // An empty diff is never logged (mongod's applier refuses one).
        return sameBytes(Object.keys(diff).length === 0 ? pre : applyDiff(bytes(pre), bytes(diff)), post);
      }),
      { numRuns: 2000 },
    );
  });

  it('applies back when the post-image is a small edit of the pre-image (property)', () => {
    const edit = fc.tuple(doc, keys, value, fc.boolean()).map(([pre, key, v, remove]) => {
      const post: Doc = { ...pre };
      if (remove) delete post[key];
      else post[key] = v;
      return [pre, post] as const;
    });
    fc.assert(
      fc.property(edit, ([pre, post]) => sameBytes(applyDocumentDiff(pre, computeDocumentDiff(pre, post)), post)),
      { numRuns: 2000 },
    );
  });
});
