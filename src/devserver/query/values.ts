/**
 * mongod's value semantics over decoded BSON: the canonical cross-type order, value equality,
 * and "binary identity" (what update uses to decide that a write changed nothing).
 */
import type { Binary, Code, ObjectId, Timestamp } from 'bson';
import { bsonTypeOf, canonicalRank, isDocumentValue } from './bsontype.js';
import { documentEntries, fromEntries } from './entries.js';
import { compareNumbers, numericKind, toExact, toJsNumber } from './numeric.js';

/** A decoded BSON document. */
export type Document = Record<string, unknown>;

export { getPath, getPathValues, setPath, unsetPath } from './paths.js';

/** Strings compare by UTF-8 bytes in mongod, which is code point order, not UTF-16 unit order. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates encode code points above U+FFFF, which sort after U+E000..U+FFFF.
    if (x >= 0xd800) x = x < 0xe000 ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return Math.sign(a.length - b.length);
}

function binaryBytes(b: Binary): Uint8Array {
  return b.buffer.subarray(0, b.position);
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function stringOf(v: unknown): string {
  return typeof v === 'string' ? v : String((v as { value: unknown }).value);
}

function regexParts(v: unknown): [string, string] {
  if (v instanceof RegExp) return [v.source, v.flags];
  const r = v as { pattern: string; options: string };
  return [r.pattern, r.options];
}

function compareSequences(a: ReadonlyArray<readonly [string, unknown]>, b: ReadonlyArray<readonly [string, unknown]>, names: boolean): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const [ka, va] = a[i] as readonly [string, unknown];
    const [kb, vb] = b[i] as readonly [string, unknown];
    // BSONElement::woCompare: type bracket first, then the field name, then the value.
    const byType = sign(canonicalRank(va) - canonicalRank(vb));
    if (byType !== 0) return byType;
    if (names) {
      const byName = compareStrings(ka, kb);
      if (byName !== 0) return byName;
    }
    const byValue = compareValues(va, vb);
    if (byValue !== 0) return byValue;
  }
  return sign(a.length - b.length);
}

function indexed(arr: readonly unknown[]): Array<[string, unknown]> {
  return arr.map((v, i) => [String(i), v]);
}

/** mongod's total order over BSON values (BSONElement::compareElementValues plus the type brackets). */
export function compareValues(a: unknown, b: unknown): number {
  const byType = sign(canonicalRank(a) - canonicalRank(b));
  if (byType !== 0) return byType;
  switch (bsonTypeOf(a)) {
    case 'double':
    case 'int':
    case 'long':
    case 'decimal':
      return compareNumbers(a, b);
    case 'string':
    case 'symbol':
      return compareStrings(stringOf(a), stringOf(b));
    case 'object':
      return compareSequences(documentEntries(a as object), documentEntries(b as object), true);
    case 'array':
      return compareSequences(indexed(a as unknown[]), indexed(b as unknown[]), false);
    case 'binData': {
      const x = a as Binary;
      const y = b as Binary;
      // Length first, then subtype, then bytes: mongod memcmp()s the length-prefixed value.
      if (x.position !== y.position) return sign(x.position - y.position);
      if (x.sub_type !== y.sub_type) return sign(x.sub_type - y.sub_type);
      return compareBytes(binaryBytes(x), binaryBytes(y));
    }
    case 'objectId':
      return compareBytes((a as ObjectId).id, (b as ObjectId).id);
    case 'bool':
      return sign(Number(a) - Number(b));
    case 'date':
      return sign((a as Date).getTime() - (b as Date).getTime());
    case 'timestamp': {
      const x = a as Timestamp;
      const y = b as Timestamp;
      return x.t !== y.t ? sign(x.t - y.t) : sign(x.i - y.i);
    }
    case 'regex': {
      const [pa, fa] = regexParts(a);
      const [pb, fb] = regexParts(b);
      return compareStrings(pa, pb) || compareStrings(fa, fb);
    }
    case 'javascript':
      return compareStrings((a as Code).code, (b as Code).code);
    case 'javascriptWithScope':
      return (
        compareStrings((a as Code).code, (b as Code).code) ||
        compareValues((a as Code).scope ?? {}, (b as Code).scope ?? {})
      );
    default:
      // MinKey, MaxKey, null/missing, and types without an order of their own.
      return 0;
  }
}

export function valuesEqual(a: unknown, b: unknown): boolean {
  return compareValues(a, b) === 0;
}

export function isNumeric(v: unknown): boolean {
  return numericKind(v) !== undefined;
}

/** A JS number for any BSON number (lossy beyond 2^53 and for decimals); NaN for non-numbers. */
export function toNumber(v: unknown): number {
  return toJsNumber(v);
}

/**
 * Same BSON type and same value, recursively: mongod's binary equality, which decides whether
 * an update was a no-op. `1` and `1.0` are equal values but not identical.
 */
export function identical(a: unknown, b: unknown): boolean {
  const ta = bsonTypeOf(a);
  if (ta !== bsonTypeOf(b)) return false;
  switch (ta) {
    case 'double':
      return Object.is(toJsNumber(a), toJsNumber(b));
    case 'decimal':
      return String(a) === String(b);
    case 'int':
    case 'long': {
      const x = toExact(a);
      const y = toExact(b);
      return x.kind === 'finite' && y.kind === 'finite' && x.coeff === y.coeff;
    }
    case 'array': {
      const x = a as unknown[];
      const y = b as unknown[];
      return x.length === y.length && x.every((v, i) => identical(v, y[i]));
    }
    case 'object': {
      const x = documentEntries(a as object);
      const y = documentEntries(b as object);
      return x.length === y.length && x.every(([k, v], i) => y[i]?.[0] === k && identical(v, y[i]?.[1]));
    }
    case 'regex':
    case 'javascript':
    case 'javascriptWithScope':
      return compareValues(a, b) === 0 && (ta !== 'javascriptWithScope' || identical((a as Code).scope, (b as Code).scope));
    default:
      return compareValues(a, b) === 0;
  }
}

/** A deep copy of the containers; BSON value instances are shared, as nothing here mutates them. */
export function cloneValue<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x: unknown) => cloneValue(x)) as T;
  if (isDocumentValue(v) && (v as { _bsontype?: unknown })._bsontype === undefined) {
    return fromEntries(Object.entries(v).map(([k, x]) => [k, cloneValue(x)] as const)) as T;
  }
  return v;
}

export function cloneDocument(doc: Document): Document {
  return cloneValue(doc);
}
