/**
 * Shared test helpers: BSON round trips (so inputs look exactly like what the wire layer
 * decodes) and a random BSON value generator for property tests.
 */
import assert from 'node:assert/strict';
import {
  Binary,
  BSONRegExp,
  Decimal128,
  deserialize,
  Double,
  Int32,
  Long,
  MaxKey,
  MinKey,
  ObjectId,
  serialize,
  Timestamp,
} from 'bson';
import fc from 'fast-check';
import { CommandError } from '../../../src/errors.js';
import type { Document } from '../../../src/devserver/query/index.js';

/** Encodes and decodes a document the way the server sees client input. */
export function rt(doc: Document): Document {
  return deserialize(serialize(doc), { promoteValues: false }) as Document;
}

/** Asserts that `fn` throws a CommandError with this code and (exact) message. */
export function assertServerError(fn: () => unknown, code: number, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CommandError, `expected CommandError, got ${String(err)}`);
    assert.equal(err.code, code, `code for: ${err.message}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

export function assertNotImplemented(fn: () => unknown, name: string): void {
  assertServerError(fn, 238, new RegExp(`${name.replace(/[$[\]().]/g, '\\$&')}.*not supported by the hotbackup dev server`));
}

/** The BSON type names of a decoded value's fields, to check fidelity after a round trip. */
export function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as { _bsontype?: string })._bsontype ?? (Array.isArray(v) ? 'array' : 'object');
}

const fieldName = fc.string({ maxLength: 4 }).filter((s) => s !== '__proto__' && !s.includes('\0'));

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => new Int32(n)),
  fc.integer({ min: -3, max: 3 }).map((n) => new Int32(n)),
  fc.double().map((d) => new Double(d)),
  fc.constantFrom(0.5, -0, 1, 2 ** 53, 2 ** 63, Number.NaN, Infinity).map((d) => new Double(d)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((b) => Long.fromBigInt(b)),
  fc.bigInt({ min: -3n, max: 3n }).map((b) => Long.fromBigInt(b)),
  fc
    .tuple(fc.bigInt({ min: -(10n ** 34n) + 1n, max: 10n ** 34n - 1n }), fc.integer({ min: -40, max: 40 }))
    .map(([c, e]) => Decimal128.fromString(`${c}E${e}`)),
  fc.constantFrom('NaN', '-Infinity', '1', '1.0', '-0', '0.5').map((s) => Decimal128.fromString(s)),
  fc.string({ maxLength: 5 }),
  fc.constantFrom('\u{1F600}', '\uFFFD', 'a', ''),
  fc.boolean(),
  fc.constant(null),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => new ObjectId(b)),
  fc.tuple(fc.uint8Array({ maxLength: 4 }), fc.constantFrom(0, 4, 128)).map(([b, t]) => new Binary(b, t)),
  fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), fc.nat({ max: 2 ** 32 - 1 })).map(([t, i]) => new Timestamp({ t, i })),
  fc.constantFrom(new MinKey(), new MaxKey()),
  fc.tuple(fc.constantFrom('a', 'b', ''), fc.constantFrom('', 'i')).map(([p, o]) => new BSONRegExp(p, o)),
);

/** Random BSON values: every type, nested arrays and documents a couple of levels deep. */
export const bsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 3 }),
    fc
      .uniqueArray(fc.tuple(fieldName, tie('value')), { maxLength: 3, selector: ([k]) => k })
      .map((entries) => Object.fromEntries(entries)),
  ),
})).value;
