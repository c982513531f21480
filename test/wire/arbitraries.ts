/** Shared fast-check arbitraries and BSON helpers for the wire tests. */
import fc from 'fast-check';
import { BSON, type Document } from 'bson';
import { CommandError } from '../../src/errors.js';

export function bson(doc: Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

/** Hex with whitespace and `|` separators allowed, for readable byte vectors. */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/[\s|]/g, ''), 'hex');
}

export const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

/** Unicode text that survives UTF-8 and has no NUL (cstrings cannot hold one). */
export const cstringText = fc
  .string({ unit: 'grapheme', maxLength: 12 })
  .filter((s) => !s.includes('\0'));

const value = fc.oneof(
  int32,
  fc.double({ noNaN: true }),
  fc.string({ maxLength: 20 }),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);

const key = cstringText.filter((k) => k.length > 0);
const nested = fc.dictionary(key, value, { maxKeys: 3 });

/** A random BSON document (as bytes) with a few scalar and nested fields. */
export const bsonDoc = fc.dictionary(key, fc.oneof(value, nested), { maxKeys: 5 }).map((doc) => bson(doc));

/** Asserts that `fn` throws a CommandError with `code`; returns it for further checks. */
export function expectServerError(fn: () => unknown, code: number): CommandError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    if (err.code !== code) {
      throw new Error(`expected code ${code}, got ${err.code} (${err.codeName}): ${err.message}`);
    }
    return err;
  }
  throw new Error(`expected a CommandError with code ${code}, nothing was thrown`);
}
