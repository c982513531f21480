/**
 * Byte counts and rates as operators type and read them: parsing the backupThrottle
 * argument, and formatting sizes and rates for status output and logs.
 *
 * backupThrottle accepts (the same rules are in docs):
 * - a non-negative number of bytes per second, as any BSON numeric type (double,
 *   int32, int64/Long, decimal128) or a JS number/bigint. 0 means unlimited.
 * - a string: a non-negative decimal number, an optional space, an optional unit, and
 *   an optional `/s` suffix. Units are binary and case-insensitive:
 *     none or `B`            bytes
 *     `K`, `KB`, `KiB`       1024
 *     `M`, `MB`, `MiB`       1024² (1,048,576)
 *     `G`, `GB`, `GiB`       1024³ (1,073,741,824)
 *   Examples: `'10MB'`, `'1.5 MiB/s'`, `'512k'`, `'2G'`, `'4096'`.
 *   `KB` means 1024 as TokuMX's k/m/g suffixes did, not 1000.
 * - the result is rounded down to whole bytes (so `'0.5'` is 0, i.e. unlimited).
 * Anything else (booleans, objects, null, NaN, Infinity, unknown units) fails with
 * Percona's `backupThrottle argument must be a number`; a negative value with
 * `backupThrottle argument cannot be negative`. Both are BadValue (code 2).
 */
import { ErrorCodes, CommandError } from '../errors.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

const UNIT_BYTES: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['b', 1],
  ['k', KIB],
  ['kb', KIB],
  ['kib', KIB],
  ['m', MIB],
  ['mb', MIB],
  ['mib', MIB],
  ['g', GIB],
  ['gb', GIB],
  ['gib', GIB],
]);

/** sign, number, optional space, unit letters, optional `/s`. Units are checked against UNIT_BYTES. */
const THROTTLE_STRING = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)(\/s)?$/i;

/** The BSON numeric wrapper classes, recognised by their `_bsontype` tag rather than
 * `instanceof`, so a value decoded by another copy of the bson package still counts. */
const BSON_NUMERIC_TYPES: ReadonlySet<string> = new Set(['Int32', 'Double', 'Long', 'Decimal128']);

interface BsonNumeric {
  _bsontype: string;
  toString(): string;
}

function isBsonNumeric(value: unknown): value is BsonNumeric {
  if (typeof value !== 'object' || value === null) return false;
  const tag = (value as { _bsontype?: unknown })._bsontype;
  return typeof tag === 'string' && BSON_NUMERIC_TYPES.has(tag);
}

function notANumber(): CommandError {
  return new CommandError(ErrorCodes.BadValue, 'backupThrottle argument must be a number');
}

function negative(): CommandError {
  return new CommandError(ErrorCodes.BadValue, 'backupThrottle argument cannot be negative');
}

/** Checks and rounds a numeric throttle. NaN and ±Infinity are not throttles. */
function fromNumber(n: number): number {
  if (!Number.isFinite(n)) throw notANumber();
  if (n < 0) throw negative();
  if (n === 0) return 0; // also turns -0 into 0
  // A positive rate below one byte per second must not round down to 0, which means unlimited.
  return Math.max(1, Math.floor(n));
}

function fromString(text: string): number {
  const match = THROTTLE_STRING.exec(text.trim());
  if (match === null) throw notANumber();
  const [, sign = '', digits = '', unit = ''] = match;
  const multiplier = UNIT_BYTES.get(unit.toLowerCase());
  if (multiplier === undefined) throw notANumber();
  const amount = Number(digits);
  // '-0' is zero, not negative.
  if (sign === '-' && amount !== 0) throw negative();
  return fromNumber(amount * multiplier);
}

/**
 * The backupThrottle argument as whole bytes per second (0 = unlimited). Throws a
 * BadValue CommandError with Percona's wording for anything else.
 */
export function parseThrottle(value: unknown): number {
  if (typeof value === 'number') return fromNumber(value);
  if (typeof value === 'bigint') {
    if (value < 0n) throw negative();
    return Math.floor(Number(value));
  }
  if (typeof value === 'string') return fromString(value);
  // Int32 and Double have a numeric valueOf(), but Long's is Object's and Decimal128
  // has none: every one of them prints its exact value with toString().
  if (isBsonNumeric(value)) return fromNumber(Number(value.toString()));
  throw notANumber();
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** A byte count for people: `'512 B'`, `'16.0 MiB'`, `'1.5 GiB'`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`;
  const sign = n < 0 ? '-' : '';
  let value = Math.abs(n);
  if (value < KIB) return `${sign}${Math.round(value)} B`;
  let unit = 0;
  // Move up while the value would print as 1024.0 or more, so 1048575 B is '1.0 MiB'.
  while (unit < BINARY_UNITS.length - 1 && value >= 1023.95) {
    value /= KIB;
    unit += 1;
  }
  return `${sign}${value.toFixed(1)} ${BINARY_UNITS[unit] ?? 'B'}`;
}

/** A throttle for people: `'unlimited'` for 0, otherwise e.g. `'16.0 MiB/s'`. */
export function formatRate(bytesPerSec: number): string {
  if (bytesPerSec === 0) return 'unlimited';
  return `${formatBytes(bytesPerSec)}/s`;
}
