/**
 * The document an upsert starts from: the equalities its filter pins down (mongod's
 * pathsupport::extractEqualityMatches + addEqualitiesToDoc).
 */
import { CommandError } from '../../errors.js';
import { bsonTypeOf, isDocumentValue } from './bsontype.js';
import { documentEntries } from './entries.js';
import { isOperatorDocument } from './filter.js';
import { setPath } from './paths.js';
import { cloneValue, type Document } from './values.js';

const NOT_SINGLE_VALUE_FIELD = 54;

function inferenceError(message: string): CommandError {
  return new CommandError(NOT_SINGLE_VALUE_FIELD, `cannot infer query fields to set, ${message}`, {
    codeName: 'NotSingleValueField',
  });
}

function isRegex(v: unknown): boolean {
  return bsonTypeOf(v) === 'regex';
}

function add(out: Map<string, unknown>, path: string, value: unknown): void {
  if (out.has(path)) throw inferenceError(`path '${path}' is matched twice`);
  out.set(path, value);
}

function collect(filter: Document, out: Map<string, unknown>): void {
  for (const [key, value] of documentEntries(filter)) {
    if (key === '$and' || key === '$or') {
      // A one-clause $or is the clause itself after mongod canonicalizes the query.
      if (!Array.isArray(value) || (key === '$or' && value.length !== 1)) continue;
      for (const clause of value) if (isDocumentValue(clause)) collect(clause, out);
      continue;
    }
    if (key.startsWith('$') || isRegex(value)) continue;
    if (!isOperatorDocument(value)) {
      add(out, key, value);
      continue;
    }
    for (const [op, arg] of documentEntries(value)) {
      if (op === '$eq' && !isRegex(arg)) add(out, key, arg);
      // A one-element $in is rewritten to an equality.
      if (op === '$in' && Array.isArray(arg) && arg.length === 1 && !isRegex(arg[0]) && !isOperatorDocument(arg[0])) {
        add(out, key, arg[0]);
      }
    }
  }
}

/**
 * The fields an upsert's new document starts with: every equality in the filter (top level,
 * under $and, a single-clause $or, $eq, a one-element $in), dotted paths expanded into
 * sub-documents, `_id` first. With `idOnly` (replacement-style upserts) only `_id` is taken.
 */
export function upsertSeed(filter: Document, options: { idOnly?: boolean } = {}): Document {
  const equalities = new Map<string, unknown>();
  collect(filter, equalities);
  const paths = [...equalities.keys()].filter((p) => options.idOnly !== true || p === '_id');
  for (const a of paths) {
    for (const b of paths) {
      if (b.startsWith(`${a}.`)) throw inferenceError(`both paths '${a}' and '${b}' are matched`);
    }
  }
  paths.sort((a, b) => Number(b === '_id' || b.startsWith('_id.')) - Number(a === '_id' || a.startsWith('_id.')));
  const seed: Document = {};
  for (const path of paths) setPath(seed, path, cloneValue(equalities.get(path)));
  return seed;
}
