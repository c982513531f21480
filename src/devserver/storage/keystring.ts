/**
 * An order-preserving byte encoding of `_id` values ("keystring", after mongod's).
 *
 * `Buffer.compare` on two encodings agrees with mongod's BSON comparison of the
 * values, and equal values encode identically, whatever their BSON number types:
 * Int32 1, Long 1, Double 1.0 and Decimal128 1.00 are the same `_id` to mongod.
 * That is why numbers are encoded by exact value (as a normalized decimal) and
 * not by type: every double is a terminating decimal, and so are Int64 and
 * Decimal128, so one representation orders them all exactly.
 *
 * Layout: one canonical-type byte (spaced like mongod's KeyString CType), then a
 * body. Bodies are self-delimiting, so encodings concatenate inside objects and
 * arrays; the byte after any body is an element type (>= 10) or END (0).
 */

/** Canonical type bytes, in BSON canonical order. */
const T = Object.freeze({
  END: 0,
  MinKey: 10,
  Undefined: 15,
  Null: 20,
  Number: 30,
  String: 60, // and Symbol
  Object: 70,
  Array: 80,
  BinData: 90,
  ObjectId: 100,
  Bool: 110,
  Date: 120,
  Timestamp: 130,
  Regex: 140,
  Code: 160,
  CodeWithScope: 170,
  MaxKey: 240,
});

/** Number classes, in numeric order (mongod orders NaN below every number). */
const N = Object.freeze({ NaN: 0x10, NegInf: 0x20, Neg: 0x30, Zero: 0x40, Pos: 0x50, PosInf: 0x60 });

/** A finite non-zero number as 0.<digits> x 10^exp, digits without leading or trailing zeros. */
interface Decimal { negative: boolean; digits: string; exp: number }
type NumberValue = Decimal | 'NaN' | '-Infinity' | 'Infinity' | 'zero';

/** Encodes an `_id` value. Top-level arrays are not valid `_id`s: callers reject them first. */
export function encodeKeyString(value: unknown): Buffer {
  if (Array.isArray(value)) throw new TypeError('an array cannot be an _id');
  const out: number[] = [];
  encodeValue(out, value);
  return Buffer.from(out);
}

function encodeValue(out: number[], value: unknown): void {
  out.push(typeByte(value));
  encodeBody(out, value);
}

type Bsonish = { _bsontype?: string } & Record<string, unknown>;

function bsonType(value: object): string | undefined {
  const t = (value as Bsonish)._bsontype;
  return typeof t === 'string' ? t : undefined;
}

function typeByte(value: unknown): number {
  if (value === null) return T.Null;
  if (value === undefined) return T.Undefined;
  switch (typeof value) {
    case 'number': case 'bigint': return T.Number;
    case 'string': return T.String;
    case 'boolean': return T.Bool;
    case 'object': break;
    default: throw new TypeError(`cannot encode a ${typeof value} in an _id`);
  }
  switch (bsonType(value)) {
    case 'Int32': case 'Double': case 'Long': case 'Decimal128': return T.Number;
    case 'BSONSymbol': return T.String;
    case 'ObjectId': return T.ObjectId;
    case 'Binary': return T.BinData;
    case 'Timestamp': return T.Timestamp;
    case 'MinKey': return T.MinKey;
    case 'MaxKey': return T.MaxKey;
    case 'BSONRegExp': return T.Regex;
    case 'Code': return (value as { scope?: unknown }).scope ? T.CodeWithScope : T.Code;
    case 'DBRef': return T.Object; // {$ref, $id} documents are plain objects to mongod
    case undefined: break;
    default: throw new TypeError(`cannot encode BSON type ${bsonType(value)} in an _id`);
  }
  if (Array.isArray(value)) return T.Array;
  if (value instanceof Date) return T.Date;
  if (value instanceof RegExp) return T.Regex;
  if (value instanceof Uint8Array) return T.BinData;
  return T.Object;
}

function encodeBody(out: number[], value: unknown): void {
  const type = typeByte(value);
  switch (type) {
    case T.MinKey: case T.MaxKey: case T.Null: case T.Undefined: return;
    case T.Number: return encodeNumber(out, numberValue(value));
    case T.String: return pushString(out, typeof value === 'string' ? value : String((value as Bsonish).value));
    case T.Bool: out.push(value ? 1 : 0); return;
    case T.ObjectId: return pushBytes(out, (value as { id: Uint8Array }).id);
    case T.Date: return pushInt64(out, BigInt((value as Date).getTime()));
    case T.Timestamp: {
      const ts = value as unknown as { getHighBits(): number; getLowBits(): number };
      pushUint32(out, ts.getHighBits() >>> 0);
      pushUint32(out, ts.getLowBits() >>> 0);
      return;
    }
    case T.BinData: {
      // mongod orders BinData by length, then subtype, then bytes.
      const bin = value instanceof Uint8Array ? { sub_type: 0, buffer: value } : value as { sub_type: number; buffer: Uint8Array };
      pushUint32(out, bin.buffer.length);
      out.push(bin.sub_type & 0xff);
      pushBytes(out, bin.buffer);
      return;
    }
    case T.Regex: {
      const re = value instanceof RegExp ? { pattern: value.source, options: value.flags } : value as { pattern: string; options: string };
      pushCString(out, re.pattern);
      pushCString(out, [...re.options].sort().join(''));
      return;
    }
    case T.Code: return pushString(out, (value as { code: string }).code);
    case T.CodeWithScope: {
      const code = value as { code: string; scope: Record<string, unknown> };
      pushString(out, code.code);
      return encodeObjectBody(out, code.scope);
    }
    case T.Array:
      for (const item of value as unknown[]) encodeValue(out, item);
      out.push(T.END);
      return;
    default: {
      const doc = bsonType(value as object) === 'DBRef'
        ? (value as { toJSON(): Record<string, unknown> }).toJSON()
        : value as Record<string, unknown>;
      return encodeObjectBody(out, doc);
    }
  }
}

/** mongod compares object elements by canonical type, then field name, then value. */
function encodeObjectBody(out: number[], doc: Record<string, unknown>): void {
  for (const [name, item] of Object.entries(doc)) {
    out.push(typeByte(item));
    pushCString(out, name);
    encodeBody(out, item);
  }
  out.push(T.END);
}

// ---- numbers ----------------------------------------------------------------

function numberValue(value: unknown): NumberValue {
  if (typeof value === 'number') return fromDouble(value);
  if (typeof value === 'bigint') return fromBigInt(value);
  const v = value as Bsonish & { toBigInt?(): bigint };
  switch (v._bsontype) {
    case 'Int32': case 'Double': return fromDouble(v.value as number);
    case 'Long': return fromBigInt(v.toBigInt!());
    default: return fromDecimalString(String(value));
  }
}

function fromBigInt(n: bigint): NumberValue {
  if (n === 0n) return 'zero';
  const s = (n < 0n ? -n : n).toString();
  return { negative: n < 0n, digits: s.replace(/0+$/, ''), exp: s.length };
}

const scratch = new DataView(new ArrayBuffer(8));

/** The exact decimal value of a double: m x 2^e is m x 5^-e / 10^-e when e < 0. */
function fromDouble(d: number): NumberValue {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (Number.isSafeInteger(d)) return fromBigInt(BigInt(d));
  scratch.setFloat64(0, d);
  const bits = scratch.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exp2 = (biased === 0 ? 1 : biased) - 1075;
  if (exp2 >= 0) return fromBigInt((d < 0 ? -mantissa : mantissa) << BigInt(exp2));
  const scaled = (mantissa * 5n ** BigInt(-exp2)).toString();
  return { negative: d < 0, digits: scaled.replace(/0+$/, ''), exp: scaled.length + exp2 };
}

/** Decimal128.toString(): "NaN", "-Infinity", "-0.00", "1.2300E+5", "1E-6176"... */
function fromDecimalString(s: string): NumberValue {
  if (s === 'NaN' || s === '-NaN') return 'NaN';
  if (s === 'Infinity') return 'Infinity';
  if (s === '-Infinity') return '-Infinity';
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:E([+-]\d+))?$/i.exec(s);
  if (m === null) throw new TypeError(`cannot encode the number ${s} in an _id`);
  const fraction = m[3] ?? '';
  const all = ((m[2] ?? '') + fraction).replace(/^0+/, '');
  if (all === '') return 'zero';
  const exp = all.length + Number(m[4] ?? 0) - fraction.length;
  return { negative: m[1] === '-', digits: all.replace(/0+$/, ''), exp };
}

/**
 * Class byte, then for finite numbers: exponent (int16 + 0x8000, big-endian) and
 * one byte per digit (digit + 1) closed by 0. Bigger exponent, then bigger digit
 * string, means bigger; negatives complement those bytes to reverse the order.
 */
function encodeNumber(out: number[], v: NumberValue): void {
  switch (v) {
    case 'NaN': out.push(N.NaN); return;
    case '-Infinity': out.push(N.NegInf); return;
    case 'Infinity': out.push(N.PosInf); return;
    case 'zero': out.push(N.Zero); return;
  }
  const flip = v.negative ? 0xff : 0;
  out.push(v.negative ? N.Neg : N.Pos);
  const e = v.exp + 0x8000;
  out.push(((e >> 8) & 0xff) ^ flip, (e & 0xff) ^ flip);
  for (let i = 0; i < v.digits.length; i++) out.push((v.digits.charCodeAt(i) - 0x2f) ^ flip);
  out.push(flip);
}

// ---- scalars ----------------------------------------------------------------

function pushBytes(out: number[], bytes: Uint8Array): void {
  for (const b of bytes) out.push(b);
}

/** UTF-8 bytes (mongod compares strings bytewise), NUL escaped as 00 FF, closed by 00. */
function pushString(out: number[], s: string): void {
  for (const b of Buffer.from(s, 'utf8')) {
    out.push(b);
    if (b === 0) out.push(0xff);
  }
  out.push(0);
}

/** Field names and regexes are C strings in BSON: they cannot hold NUL. */
function pushCString(out: number[], s: string): void {
  pushBytes(out, Buffer.from(s, 'utf8'));
  out.push(0);
}

function pushUint32(out: number[], n: number): void {
  out.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** Signed 64-bit, sign bit flipped so that negatives sort first. */
function pushInt64(out: number[], n: bigint): void {
  const u = BigInt.asUintN(64, n) ^ (1n << 63n);
  for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((u >> shift) & 0xffn));
}
