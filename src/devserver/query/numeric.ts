/**
 * Exact comparison and mongod-style arithmetic across BSON's four numeric types.
 *
 * mongod compares Int32, Long, Double and Decimal128 by mathematical value, so a Long above
 * 2^53 must not be squeezed through a JS number. Arithmetic follows mongod's SafeNum: the
 * result has the "widest" operand type, Int32 overflow widens to Long and Long overflow to
 * Double, and anything touching a Decimal128 is computed in decimal.
 */
import { Decimal128, Double, Int32, Long } from 'bson';
import { bsonTypeOf } from './bsontype.js';

export type NumericKind = 'int' | 'long' | 'double' | 'decimal';

export function numericKind(v: unknown): NumericKind | undefined {
  const t = bsonTypeOf(v);
  return t === 'int' || t === 'long' || t === 'double' || t === 'decimal' ? t : undefined;
}

/** An exact number: a finite value coeff * 10^exp, or one of the IEEE specials. */
export type Exact =
  | { readonly kind: 'nan' }
  | { readonly kind: 'inf'; readonly negative: boolean }
  | { readonly kind: 'finite'; readonly coeff: bigint; readonly exp: number; readonly negZero?: boolean };

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** The JS number for Int32/Double/JS numbers; callers have checked the kind. */
function jsNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  return (v as { value: number }).value;
}

function bigLong(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  return (v as Long).toBigInt();
}

/** Doubles decompose exactly: mantissa * 2^e == mantissa * 5^-e * 10^e. */
function exactFromDouble(d: number): Exact {
  if (Number.isNaN(d)) return { kind: 'nan' };
  if (!Number.isFinite(d)) return { kind: 'inf', negative: d < 0 };
  if (d === 0) return { kind: 'finite', coeff: 0n, exp: 0, negZero: Object.is(d, -0) };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, d);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let e2: number;
  if (biased === 0) {
    e2 = -1074;
  } else {
    mantissa |= 1n << 52n;
    e2 = biased - 1075;
  }
  const signed = negative ? -mantissa : mantissa;
  if (e2 >= 0) return { kind: 'finite', coeff: signed << BigInt(e2), exp: 0 };
  return { kind: 'finite', coeff: signed * 5n ** BigInt(-e2), exp: e2 };
}

export function exactFromDecimalString(s: string): Exact {
  if (s === 'NaN' || s === '-NaN') return { kind: 'nan' };
  if (s === 'Infinity' || s === '+Infinity') return { kind: 'inf', negative: false };
  if (s === '-Infinity') return { kind: 'inf', negative: true };
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s);
  if (m === null) throw new Error(`unparseable decimal ${s}`);
  const [, sign = '', int = '', frac = '', e = '0'] = m;
  const magnitude = BigInt(`${int}${frac}` || '0');
  const coeff = sign === '-' ? -magnitude : magnitude;
  return { kind: 'finite', coeff, exp: Number(e) - frac.length, negZero: sign === '-' && magnitude === 0n };
}

export function toExact(v: unknown): Exact {
  switch (numericKind(v)) {
    case 'int':
      return { kind: 'finite', coeff: BigInt(jsNumber(v)), exp: 0 };
    case 'double':
      return exactFromDouble(jsNumber(v));
    case 'long':
      return { kind: 'finite', coeff: bigLong(v), exp: 0 };
    case 'decimal':
      return exactFromDecimalString((v as Decimal128).toString());
    default:
      throw new TypeError('not a number');
  }
}

function digitCount(n: bigint): number {
  return (n < 0n ? -n : n).toString().length;
}

function compareFinite(a: bigint, ae: number, b: bigint, be: number): number {
  const sa = a === 0n ? 0 : a < 0n ? -1 : 1;
  const sb = b === 0n ? 0 : b < 0n ? -1 : 1;
  if (sa !== sb || sa === 0) return Math.sign(sa - sb);
  // Same sign, both non-zero: order of magnitude first, so 1E+6000 vs 1E-6000 needs no huge power.
  const ma = digitCount(a) + ae;
  const mb = digitCount(b) + be;
  if (ma !== mb) return ma > mb ? sa : -sa;
  const x = ae >= be ? a * 10n ** BigInt(ae - be) : a;
  const y = be >= ae ? b * 10n ** BigInt(be - ae) : b;
  return x === y ? 0 : x < y ? -1 : 1;
}

/** mongod's numeric order: NaN below every number (and equal to NaN), -0 equal to 0. */
export function compareExact(a: Exact, b: Exact): number {
  if (a.kind === 'nan' || b.kind === 'nan') return (a.kind === 'nan' ? 0 : 1) - (b.kind === 'nan' ? 0 : 1);
  const rank = (x: Exact): number => (x.kind === 'inf' ? (x.negative ? -1 : 1) : 0);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== 0 || rb !== 0) return Math.sign(ra - rb);
  if (a.kind !== 'finite' || b.kind !== 'finite') return 0;
  return compareFinite(a.coeff, a.exp, b.coeff, b.exp);
}

function compareJs(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return (Number.isNaN(a) ? 0 : 1) - (Number.isNaN(b) ? 0 : 1);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares two numeric BSON values by value; both must be numeric. */
export function compareNumbers(a: unknown, b: unknown): number {
  const ka = numericKind(a);
  const kb = numericKind(b);
  const small = (k: NumericKind | undefined): boolean => k === 'int' || k === 'double';
  if (small(ka) && small(kb)) return compareJs(jsNumber(a), jsNumber(b));
  if (ka === 'long' && kb === 'long') {
    const x = bigLong(a);
    const y = bigLong(b);
    return x === y ? 0 : x < y ? -1 : 1;
  }
  return compareExact(toExact(a), toExact(b));
}

/** A lossy JS number, for places that only need an approximation (averages, positions). */
export function toJsNumber(v: unknown): number {
  switch (numericKind(v)) {
    case 'int':
    case 'double':
      return jsNumber(v);
    case 'long':
      return Number(bigLong(v));
    case 'decimal':
      return Number((v as Decimal128).toString());
    default:
      return Number.NaN;
  }
}

/** The value as a 64-bit integer when it is integral and fits, else undefined. */
export function toSafeLong(v: unknown): bigint | undefined {
  const e = numericKind(v) === undefined ? undefined : toExact(v);
  if (e === undefined || e.kind !== 'finite') return undefined;
  let value: bigint;
  if (e.exp >= 0) {
    value = e.coeff * 10n ** BigInt(e.exp);
  } else {
    const div = 10n ** BigInt(-e.exp);
    if (e.coeff % div !== 0n) return undefined;
    value = e.coeff / div;
  }
  return value >= LONG_MIN && value <= LONG_MAX ? value : undefined;
}

// ---- Decimal128 arithmetic -------------------------------------------------------------------

const DEC_DIGITS = 34;
const DEC_MAX_EXP = 6111;
const DEC_MIN_EXP = -6176;

/** Rounds a coefficient to fewer digits, half to even, as IEEE 754 decimal does by default. */
function roundDrop(coeff: bigint, drop: number): bigint {
  if (drop <= 0) return coeff;
  const neg = coeff < 0n;
  const mag = neg ? -coeff : coeff;
  const div = 10n ** BigInt(drop);
  let q = mag / div;
  const r = mag % div;
  const half = div / 2n;
  if (r > half || (r === half && q % 2n === 1n)) q += 1n;
  return neg ? -q : q;
}

export function decimalFromExact(e: Exact): Decimal128 {
  if (e.kind === 'nan') return Decimal128.fromString('NaN');
  if (e.kind === 'inf') return Decimal128.fromString(e.negative ? '-Infinity' : 'Infinity');
  let { coeff, exp } = e;
  const excess = digitCount(coeff) - DEC_DIGITS;
  if (excess > 0) {
    coeff = roundDrop(coeff, excess);
    exp += excess;
    if (digitCount(coeff) > DEC_DIGITS) {
      coeff = roundDrop(coeff, 1);
      exp += 1;
    }
  }
  if (exp < DEC_MIN_EXP) {
    coeff = roundDrop(coeff, DEC_MIN_EXP - exp);
    exp = DEC_MIN_EXP;
  }
  if (exp > DEC_MAX_EXP) {
    // Clamp by padding the coefficient with zeros when it has room, else overflow.
    const room = DEC_DIGITS - digitCount(coeff);
    if (coeff !== 0n && exp - DEC_MAX_EXP > room) {
      return Decimal128.fromString(coeff < 0n ? '-Infinity' : 'Infinity');
    }
    coeff = coeff === 0n ? 0n : coeff * 10n ** BigInt(exp - DEC_MAX_EXP);
    exp = DEC_MAX_EXP;
  }
  const sign = coeff === 0n && e.negZero === true ? '-' : '';
  return Decimal128.fromString(`${sign}${coeff.toString()}E${exp}`);
}

/**
 * mongod's Decimal128(double): the exact binary value quantized to exactly 15 significant
 * digits, half to even (so 0.1 becomes 0.100000000000000); zero, infinities and NaN as they are.
 */
function toDecimalExact(v: unknown): Exact {
  if (numericKind(v) !== 'double') return toExact(v);
  const e = exactFromDouble(jsNumber(v));
  if (e.kind !== 'finite' || e.coeff === 0n) return e;
  let { coeff, exp } = e;
  const drop = digitCount(coeff) - 15;
  if (drop > 0) {
    coeff = roundDrop(coeff, drop);
    exp += drop;
  } else if (drop < 0) {
    coeff *= 10n ** BigInt(-drop);
    exp += drop;
  }
  if (digitCount(coeff) > 15) {
    coeff /= 10n;
    exp += 1;
  }
  return { kind: 'finite', coeff, exp };
}

function decimalOp(a: unknown, b: unknown, op: 'add' | 'mul'): Decimal128 {
  const x = toDecimalExact(a);
  const y = toDecimalExact(b);
  if (x.kind === 'nan' || y.kind === 'nan') return decimalFromExact({ kind: 'nan' });
  if (op === 'add') {
    if (x.kind === 'inf' || y.kind === 'inf') {
      if (x.kind === 'inf' && y.kind === 'inf' && x.negative !== y.negative) return decimalFromExact({ kind: 'nan' });
      return decimalFromExact(x.kind === 'inf' ? x : y);
    }
    const exp = Math.min(x.exp, y.exp);
    const coeff = x.coeff * 10n ** BigInt(x.exp - exp) + y.coeff * 10n ** BigInt(y.exp - exp);
    return decimalFromExact({ kind: 'finite', coeff, exp, negZero: coeff === 0n && x.negZero === true && y.negZero === true });
  }
  const negative = isNegative(x) !== isNegative(y);
  if (x.kind === 'inf' || y.kind === 'inf') {
    const other = x.kind === 'inf' ? y : x;
    if (other.kind === 'finite' && other.coeff === 0n) return decimalFromExact({ kind: 'nan' });
    return decimalFromExact({ kind: 'inf', negative });
  }
  const coeff = x.coeff * y.coeff;
  return decimalFromExact({ kind: 'finite', coeff, exp: x.exp + y.exp, negZero: coeff === 0n && negative });
}

function isNegative(e: Exact): boolean {
  if (e.kind === 'inf') return e.negative;
  if (e.kind === 'finite') return e.coeff < 0n || e.negZero === true;
  return false;
}

/** SafeNum addition/multiplication: Int32 → Long → Double promotion, Decimal128 if either is one. */
export function arithmetic(a: unknown, b: unknown, op: 'add' | 'mul'): Int32 | Long | Double | Decimal128 {
  const ka = numericKind(a);
  const kb = numericKind(b);
  if (ka === undefined || kb === undefined) throw new TypeError('arithmetic on a non-number');
  if (ka === 'decimal' || kb === 'decimal') return decimalOp(a, b, op);
  const asDouble = (): Double => {
    const x = toJsNumber(a);
    const y = toJsNumber(b);
    return new Double(op === 'add' ? x + y : x * y);
  };
  if (ka === 'double' || kb === 'double') return asDouble();
  const x = BigInt(ka === 'int' ? jsNumber(a) : bigLong(a));
  const y = BigInt(kb === 'int' ? jsNumber(b) : bigLong(b));
  const r = op === 'add' ? x + y : x * y;
  if (ka === 'int' && kb === 'int' && r >= BigInt(INT32_MIN) && r <= BigInt(INT32_MAX)) return new Int32(Number(r));
  if (r >= LONG_MIN && r <= LONG_MAX) return Long.fromBigInt(r);
  return asDouble();
}

/** A Decimal128 divided by a positive count, rounded as IEEE 754 decimal division ($avg over decimals). */
export function decimalDivide(v: unknown, count: number): Decimal128 {
  const e = toExact(v);
  if (e.kind !== 'finite') return decimalFromExact(e);
  const scale = 40;
  const n = e.coeff * 10n ** BigInt(scale);
  const divisor = BigInt(count);
  let coeff = n / divisor;
  let exp = e.exp - scale;
  if (n % divisor === 0n) {
    // An exact quotient takes the exponent nearest the dividend's, as IEEE prefers.
    while (exp < e.exp && coeff % 10n === 0n) {
      coeff /= 10n;
      exp += 1;
    }
  } else {
    // A sticky last digit marks the quotient inexact so half-even rounding cannot mistake it for a tie.
    coeff = coeff * 10n + (n < 0n ? -1n : 1n);
    exp -= 1;
  }
  return decimalFromExact({ kind: 'finite', coeff, exp, negZero: e.negZero === true });
}
