/**
 * mongod's E11000 error, with values printed the way mongod's BSONObj::toString
 * prints them (`{ _id: 1 }`, `{ _id: 1.0 }`, `{ _id: ObjectId('...') }`).
 */
import { ErrorCodes, CommandError } from '../../errors.js';

export function duplicateKeyError(ns: string, id: unknown): CommandError {
  return new CommandError(
    ErrorCodes.DuplicateKey,
    `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${formatBsonValue(id)} }`,
    { extra: { keyPattern: { _id: 1 }, keyValue: { _id: id } } },
  );
}

type Bsonish = { _bsontype?: unknown } & Record<string, unknown>;

export function formatBsonValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'string': return JSON.stringify(value);
    // A promoted number: bson would write an integral one as an int32.
    case 'number': return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : formatDouble(value);
    case 'bigint': case 'boolean': return String(value);
    case 'object': break;
    default: return String(value);
  }
  const v = value as Bsonish;
  switch (v._bsontype) {
    case 'Int32': return String(v.value);
    case 'Double': return formatDouble(v.value as number);
    case 'Long': return String(value);
    case 'Decimal128': return `NumberDecimal("${String(value)}")`;
    case 'ObjectId': return `ObjectId('${(value as { toHexString(): string }).toHexString()}')`;
    case 'Timestamp': {
      const ts = value as unknown as { getHighBits(): number; getLowBits(): number };
      return `Timestamp(${ts.getHighBits() >>> 0}, ${ts.getLowBits() >>> 0})`;
    }
    case 'MinKey': return 'MinKey';
    case 'MaxKey': return 'MaxKey';
    case 'BSONSymbol': return JSON.stringify(String(v.value));
    case 'BSONRegExp': return `/${String(v.pattern)}/${String(v.options)}`;
    case 'Code': return String(v.code);
    case 'DBRef': return formatObject((value as { toJSON(): Record<string, unknown> }).toJSON());
    case 'Binary': {
      const bin = value as unknown as { sub_type: number; buffer: Uint8Array; toUUID?(): { toHexString(dashes: boolean): string } };
      if (bin.sub_type === 4 && bin.buffer.length === 16 && bin.toUUID) return `UUID("${bin.toUUID().toHexString(true)}")`;
      return `BinData(${bin.sub_type}, ${Buffer.from(bin.buffer).toString('hex').toUpperCase()})`;
    }
  }
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  if (value instanceof RegExp) return String(value);
  if (value instanceof Uint8Array) return `BinData(0, ${Buffer.from(value).toString('hex').toUpperCase()})`;
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[ ${value.map(formatBsonValue).join(', ')} ]`;
  return formatObject(value as Record<string, unknown>);
}

function formatObject(doc: Record<string, unknown>): string {
  const fields = Object.entries(doc).map(([k, v]) => `${k}: ${formatBsonValue(v)}`);
  return fields.length === 0 ? '{}' : `{ ${fields.join(', ')} }`;
}

/** mongod prints integral doubles with a `.0` so they differ from integers. */
function formatDouble(d: number): string {
  if (Number.isNaN(d)) return 'nan';
  if (!Number.isFinite(d)) return d > 0 ? 'inf' : '-inf';
  if (Number.isInteger(d) && Math.abs(d) < 1e16) return Object.is(d, -0) ? '-0.0' : `${d}.0`;
  return String(d);
}
