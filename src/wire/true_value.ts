/**
 * BSONElement::trueValue (src/mongo/bson/bsonelement.cpp): how mongod reads a flag such
 * as `$ownOps` or `allUsers`: a true boolean or a non-zero number is true, the rest false.
 */
import { Double, Int32, Long } from 'bson';

export function trueValue(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'bigint') return value !== 0n;
  if (value instanceof Int32 || value instanceof Double) return value.valueOf() !== 0;
  if (value instanceof Long) return !value.isZero();
  return false;
}
