/**
 * mongod's BSONElement::parseIntegerElementToLong(): the integer argument of $skip, $limit,
 * $pop, $slice..., with the failure texts mongod embeds in its errors.
 */
import { formatElement } from './format.js';
import { numericKind, toExact, toJsNumber, toSafeLong } from './numeric.js';

/** The integer, or the reason it is not one ("Expected a number in: $skip: \"x\""). */
export function parseInteger(name: string, v: unknown): bigint | string {
  if (numericKind(v) === undefined) return `Expected a number in: ${formatElement(name, v)}`;
  const e = toExact(v);
  if (e.kind === 'nan') return `Expected an integer, but found NaN in: ${formatElement(name, v)}`;
  const n = toSafeLong(v);
  if (n !== undefined) return n;
  if (numericKind(v) === 'double' && Number.isFinite(toJsNumber(v)) && !Number.isInteger(toJsNumber(v))) {
    return `Expected an integer: ${formatElement(name, v)}`;
  }
  return `Cannot represent as a 64-bit integer: ${formatElement(name, v)}`;
}

/** As parseInteger, also refusing negatives. */
export function parseNonNegativeInteger(name: string, v: unknown): bigint | string {
  const n = parseInteger(name, v);
  if (typeof n === 'bigint' && n < 0n) return `Expected a non-negative number in: ${formatElement(name, v)}`;
  return n;
}
