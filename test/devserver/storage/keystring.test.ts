import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Binary, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp } from 'bson';
import { encodeKeyString } from '../../../src/devserver/storage/keystring.js';

// ---- a reference comparison, written independently of the encoder -------------

/** Canonical type ranks from mongod's canonicalizeBSONType. */
function rank(v: unknown): number {
  if (v === null) return 5;
  if (typeof v === 'string') return 15;
  if (typeof v === 'boolean') return 40;
  if (v instanceof Date) return 45;
  switch ((v as { _bsontype?: string })._bsontype) {
    case 'MinKey': return -1;
    case 'Int32': case 'Double': case 'Long': case 'Decimal128': return 10;
    case 'ObjectId': return 35;
    case 'MaxKey': return 127;
  }
  if (typeof v === 'object') return 20;
  throw new Error(`no rank for ${String(v)}`);
}

type Rational = { num: bigint; den: bigint } | 'NaN' | 'Infinity' | '-Infinity';

function doubleToRational(d: number): Rational {
  if (Number.isNaN(d)) return 'NaN';
  if (!Number.isFinite(d)) return d > 0 ? 'Infinity' : '-Infinity';
  // Scale by 2 until integral: exact, since every double is m / 2^k.
  let den = 1n;
  let x = d;
  while (!Number.isInteger(x)) {
    x *= 2;
    den *= 2n;
  }
  return { num: BigInt(x), den };
}

function toRational(v: unknown): Rational {
  const b = v as { _bsontype: string; value: number; toBigInt(): bigint };
  switch (b._bsontype) {
    case 'Int32': return { num: BigInt(b.value), den: 1n };
    case 'Long': return { num: b.toBigInt(), den: 1n };
    case 'Double': return doubleToRational(b.value);
  }
  const s = String(v);
  if (s === 'NaN' || s === 'Infinity' || s === '-Infinity') return s;
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:E([+-]\d+))?$/.exec(s)!;
  const fraction = m[3] ?? '';
  const exp = Number(m[4] ?? 0) - fraction.length;
  const digits = BigInt((m[1] ?? '') + (m[2] ?? '') + fraction);
  return exp >= 0 ? { num: digits * 10n ** BigInt(exp), den: 1n } : { num: digits, den: 10n ** BigInt(-exp) };
}

function compareNumbers(a: unknown, b: unknown): number {
  const order = (r: Rational): number => (r === 'NaN' ? 0 : r === '-Infinity' ? 1 : r === 'Infinity' ? 3 : 2);
  const ra = toRational(a);
  const rb = toRational(b);
  if (typeof ra === 'string' || typeof rb === 'string') return Math.sign(order(ra) - order(rb));
  const diff = ra.num * rb.den - rb.num * ra.den;
  return diff < 0n ? -1 : diff > 0n ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function compare(a: unknown, b: unknown): number {
  const r = Math.sign(rank(a) - rank(b));
  if (r !== 0) return r;
  switch (rank(a)) {
    case 10: return compareNumbers(a, b);
    case 15: return compareBytes(Buffer.from(a as string), Buffer.from(b as string));
    case 35: return compareBytes((a as ObjectId).id, (b as ObjectId).id);
    case 40: return Math.sign(Number(a) - Number(b));
    case 45: return Math.sign((a as Date).getTime() - (b as Date).getTime());
    case 20: {
      // One-field documents {k: value}, as BSONElement::woCompare: type, field name, value.
      const [ka, va] = Object.entries(a as object)[0]!;
      const [kb, vb] = Object.entries(b as object)[0]!;
      return Math.sign(rank(va) - rank(vb)) || compareBytes(Buffer.from(ka), Buffer.from(kb)) || compare(va, vb);
    }
    default: return 0;
  }
}

// ---- generators ---------------------------------------------------------------

/** Small values shared by every number type, so that equal values across types are common. */
const sharedNumber = fc.oneof(
  fc.integer({ min: -3, max: 3 }).chain((n) => fc.constantFrom<unknown>(new Int32(n), new Double(n), Long.fromNumber(n),
    Decimal128.fromString(`${n}.00`), Decimal128.fromString(`${n}E0`))),
  fc.constantFrom(0.5, -0.5, 0.1, 1.25, -2.75).chain((d) => fc.constantFrom<unknown>(new Double(d), Decimal128.fromString(String(d)))),
  fc.constantFrom<unknown>(new Double(-0), Decimal128.fromString('-0'), new Double(NaN), Decimal128.fromString('NaN'),
    new Double(Infinity), new Double(-Infinity), Decimal128.fromString('-Infinity')),
);

const number = fc.oneof(
  sharedNumber,
  fc.integer().map((n) => new Int32(n)),
  fc.double().map((d) => new Double(d)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => Long.fromBigInt(n)),
  fc.tuple(fc.bigInt({ min: -(10n ** 34n) + 1n, max: 10n ** 34n - 1n }), fc.integer({ min: -60, max: 60 }))
    .map(([digits, exp]) => Decimal128.fromString(`${digits}E${exp}`)),
);

const scalar = fc.oneof(
  { weight: 4, arbitrary: number },
  { weight: 2, arbitrary: fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', 'a', 'a\u0000', 'a\u0000b', 'ab')) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => new ObjectId(b)) },
  { weight: 1, arbitrary: fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms)) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(true, false, null, new MinKey(), new MaxKey()) },
);

const value = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('a', 'b', 'ab'), scalar).map(([k, v]) => ({ [k]: v })) },
);

// ---- properties -----------------------------------------------------------------

test('keystring order is BSON canonical order, and equal values encode identically', () => {
  fc.assert(
    fc.property(value, value, (a, b) => {
      const expected = compare(a, b);
      const actual = Math.sign(Buffer.compare(encodeKeyString(a), encodeKeyString(b)));
      assert.equal(actual, expected);
    }),
    { numRuns: 3000 },
  );
});

test('keystrings of mongod-equal numbers are identical', () => {
  const ones = [new Int32(1), new Double(1), Long.fromNumber(1), Decimal128.fromString('1.000'), Decimal128.fromString('0.1E1'), 1, 1n];
  for (const one of ones) assert.deepEqual(encodeKeyString(one), encodeKeyString(new Int32(1)));
  assert.deepEqual(encodeKeyString(new Double(-0)), encodeKeyString(new Int32(0)));
  assert.deepEqual(encodeKeyString(Decimal128.fromString('NaN')), encodeKeyString(new Double(NaN)));
  // The double nearest 0.1 is not the decimal 0.1.
  assert.notDeepEqual(encodeKeyString(new Double(0.1)), encodeKeyString(Decimal128.fromString('0.1')));
  assert.ok(encodeKeyString(Decimal128.fromString('0.1')).compare(encodeKeyString(new Double(0.1))) < 0);
  // Beyond 2^53 Long keeps every digit.
  assert.ok(encodeKeyString(Long.fromBigInt(2n ** 60n + 1n)).compare(encodeKeyString(new Double(2 ** 60))) > 0);
});

test('keystring covers the other _id types in canonical order', () => {
  const ordered: unknown[] = [
    new MinKey(), null, new Int32(-1), 'a', { a: 1 }, { a: 1, b: 1 }, { b: [1, 2] },
    new Binary(Buffer.from([9]), 0), new Binary(Buffer.from([1, 2]), 0), new Binary(Buffer.from([1, 2]), 4),
    new ObjectId('000000000000000000000000'), false, true, new Date(-1), new Date(0),
    new Timestamp({ t: 1, i: 2 }), new Timestamp({ t: 2, i: 1 }), /a/i, new MaxKey(),
  ];
  const keys = ordered.map(encodeKeyString);
  for (let i = 1; i < keys.length; i++) {
    assert.ok(keys[i - 1]!.compare(keys[i]!) < 0, `${String(i - 1)} < ${String(i)}`);
  }
  assert.throws(() => encodeKeyString([1]), TypeError);
});
