/**
 * Renders values the way mongod's BSONElement::toString() does, so that error messages which
 * embed a value (`{_id: 1} has the field 'a' of non-numeric type string`) read like mongod's.
 */
import type { Binary, Code, Decimal128, Long, ObjectId, Timestamp } from 'bson';
import { bsonTypeOf } from './bsontype.js';
import { documentEntries } from './entries.js';

function formatDouble(d: number): string {
  if (Number.isNaN(d)) return 'nan';
  if (!Number.isFinite(d)) return d < 0 ? '-inf' : 'inf';
  // appendDoubleNice() keeps a ".0" on integral values so they do not read as ints.
  if (Number.isInteger(d) && Math.abs(d) < 1e16) return `${d.toFixed(0)}.0`;
  return String(d);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function formatBinary(b: Binary): string {
  const bytes = b.buffer.subarray(0, b.position);
  if (b.sub_type === 4 && bytes.length === 16) {
    const h = hex(bytes);
    return `UUID("${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}")`;
  }
  return `BinData(${b.sub_type}, ${hex(bytes).toUpperCase()})`;
}

function formatObject(entries: ReadonlyArray<readonly [string, unknown]>, isArray: boolean): string {
  if (entries.length === 0) return isArray ? '[]' : '{}';
  const parts = entries.map(([k, v]) => (isArray ? formatValue(v) : `${k}: ${formatValue(v)}`));
  return isArray ? `[ ${parts.join(', ')} ]` : `{ ${parts.join(', ')} }`;
}

export function formatValue(v: unknown): string {
  switch (bsonTypeOf(v)) {
    case 'missing':
      return 'missing';
    case 'null':
      return 'null';
    case 'undefined':
      return 'undefined';
    case 'minKey':
      return 'MinKey';
    case 'maxKey':
      return 'MaxKey';
    case 'bool':
      return v === true ? 'true' : 'false';
    case 'int':
      return String((v as { value: number }).value);
    case 'double':
      return formatDouble(typeof v === 'number' ? v : (v as { value: number }).value);
    case 'long':
      return typeof v === 'bigint' ? v.toString() : (v as Long).toString();
    case 'decimal':
      return (v as Decimal128).toString();
    case 'string':
      return `"${String(v)}"`;
    case 'symbol':
      return `"${String((v as { value: unknown }).value)}"`;
    case 'objectId':
      return `ObjectId('${(v as ObjectId).toHexString()}')`;
    case 'date':
      return `new Date(${(v as Date).getTime()})`;
    case 'timestamp':
      return `Timestamp(${(v as Timestamp).t}, ${(v as Timestamp).i})`;
    case 'binData':
      return formatBinary(v as Binary);
    case 'regex': {
      if (v instanceof RegExp) return `/${v.source}/${v.flags}`;
      const r = v as { pattern: string; options: string };
      return `/${r.pattern}/${r.options}`;
    }
    case 'javascript':
    case 'javascriptWithScope':
      return (v as Code).code;
    case 'array':
      return formatObject(
        (v as unknown[]).map((x, i) => [String(i), x] as const),
        true,
      );
    default:
      return formatObject(documentEntries(v as object), false);
  }
}

/** `name: value`, as mongod prints an element (`_id: 1`, `a: "x"`). */
export function formatElement(name: string, v: unknown): string {
  return `${name}: ${formatValue(v)}`;
}
