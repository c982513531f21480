/**
 * The array update operators: $push (with $each/$position/$slice/$sort), $addToSet, $pull,
 * $pullAll and $pop, following mongod's push_node/addtoset_node/pull_node/pop_node.
 */
import { ErrorCodes, CommandError } from '../../errors.js';
import { bsonTypeOf, isDocumentValue } from './bsontype.js';
import { documentEntries } from './entries.js';
import { compileFilter, isOperatorDocument } from './filter.js';
import { formatElement, formatValue } from './format.js';
import { parseInteger } from './integers.js';
import { numericKind, toJsNumber } from './numeric.js';
import { getPath, setPath } from './paths.js';
import { compileSort } from './sort.js';
import { cloneValue, compareValues, valuesEqual, type Document } from './values.js';

function idForMessage(doc: Document): string {
  const id = doc['_id'];
  return id === undefined ? 'no id' : formatElement('_id', id);
}

export interface PushSpec {
  readonly values: readonly unknown[];
  readonly position?: bigint;
  readonly slice?: bigint;
  readonly sort?: (a: unknown, b: unknown) => number;
}

function parsePushSort(clause: unknown): (a: unknown, b: unknown) => number {
  const badOrder = (): CommandError => new CommandError(ErrorCodes.BadValue, 'The $sort element value must be either 1 or -1');
  if (numericKind(clause) !== undefined) {
    const dir = toJsNumber(clause);
    if (dir !== 1 && dir !== -1) throw badOrder();
    return (a, b) => compareValues(a, b) * dir;
  }
  if (!isDocumentValue(clause)) {
    throw new CommandError(
      ErrorCodes.BadValue,
      'The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields',
    );
  }
  const entries = documentEntries(clause);
  if (entries.length === 0) throw new CommandError(ErrorCodes.BadValue, 'The $sort pattern is empty when it should be a set of fields.');
  for (const [field, order] of entries) {
    if (numericKind(order) === undefined || Math.abs(toJsNumber(order)) !== 1) throw badOrder();
    if (field.split('.').some((p) => p === '')) {
      throw new CommandError(ErrorCodes.BadValue, `The $sort field is a dotted field but has an empty part: ${field}`);
    }
  }
  const byFields = compileSort(clause);
  // Non-document elements sort as if they were empty documents.
  return (a, b) => byFields(isDocumentValue(a) ? a : {}, isDocumentValue(b) ? b : {});
}

export function parsePushArgument(arg: unknown): PushSpec {
  if (!isDocumentValue(arg) || !documentEntries(arg).some(([k]) => k === '$each')) return { values: [arg] };
  const clauses = new Map<string, unknown>();
  for (const [name, value] of documentEntries(arg)) {
    if (!['$each', '$slice', '$sort', '$position'].includes(name)) {
      throw new CommandError(ErrorCodes.BadValue, `Unrecognized clause in $push: ${name}`);
    }
    if (clauses.has(name)) throw new CommandError(ErrorCodes.BadValue, `Only one ${name} is supported.`);
    clauses.set(name, value);
  }
  const each = clauses.get('$each');
  if (!Array.isArray(each)) {
    throw new CommandError(
      ErrorCodes.BadValue,
      `The argument to $each in $push must be an array but it was of type: ${bsonTypeOf(each)}`,
    );
  }
  const spec: { values: unknown[]; position?: bigint; slice?: bigint; sort?: (a: unknown, b: unknown) => number } = { values: each };
  if (clauses.has('$slice')) {
    const n = parseInteger('$slice', clauses.get('$slice'));
    if (typeof n === 'string') {
      throw new CommandError(
        ErrorCodes.BadValue,
        `The value for $slice must be an integer value but was given type: ${bsonTypeOf(clauses.get('$slice'))}`,
      );
    }
    spec.slice = n;
  }
  if (clauses.has('$sort')) spec.sort = parsePushSort(clauses.get('$sort'));
  if (clauses.has('$position')) {
    const n = parseInteger('$position', clauses.get('$position'));
    if (typeof n === 'string') {
      throw new CommandError(
        ErrorCodes.BadValue,
        `The value for $position must be an integer value, not of type: ${bsonTypeOf(clauses.get('$position'))}`,
      );
    }
    spec.position = n;
  }
  return spec;
}

function insertAt(arr: unknown[], position: bigint | undefined, values: readonly unknown[]): void {
  const size = BigInt(arr.length);
  let at: bigint;
  if (position === undefined || position > size) at = size;
  else if (position >= 0n) at = position;
  else at = -position < size ? size + position : 0n;
  arr.splice(Number(at), 0, ...values.map((v) => cloneValue(v)));
}

export function applyPush(doc: Document, path: string, spec: PushSpec): boolean {
  const existing = getPath(doc, path);
  if (existing !== undefined && !Array.isArray(existing)) {
    throw new CommandError(
      ErrorCodes.BadValue,
      `The field '${path}' must be an array but is of type ${bsonTypeOf(existing)} in document {${idForMessage(doc)}}`,
    );
  }
  const arr = existing === undefined ? [] : [...existing];
  let changed = existing === undefined || spec.values.length > 0;
  insertAt(arr, spec.position, spec.values);
  if (spec.sort !== undefined) {
    arr.sort(spec.sort);
    changed = true;
  }
  if (spec.slice !== undefined) {
    const keep = Number(spec.slice < 0n ? -spec.slice : spec.slice);
    if (arr.length > keep) {
      changed = true;
      if (spec.slice >= 0n) arr.splice(keep);
      else arr.splice(0, arr.length - keep);
    }
  }
  if (changed) setPath(doc, path, arr);
  return changed;
}

export function parseAddToSet(arg: unknown): unknown[] {
  let values: unknown[] = [arg];
  if (isDocumentValue(arg)) {
    const entries = documentEntries(arg);
    const first = entries[0];
    if (first !== undefined && first[0] === '$each') {
      if (!Array.isArray(first[1])) {
        throw new CommandError(
          ErrorCodes.TypeMismatch,
          `The argument to $each in $addToSet must be an array but it was of type ${bsonTypeOf(first[1])}`,
        );
      }
      if (entries.length > 1) {
        throw new CommandError(ErrorCodes.BadValue, `Found unexpected fields after $each in $addToSet: ${formatValue(arg)}`);
      }
      values = first[1];
    }
  }
  const unique: unknown[] = [];
  for (const v of values) if (!unique.some((u) => valuesEqual(u, v))) unique.push(v);
  return unique;
}

export function applyAddToSet(doc: Document, path: string, values: readonly unknown[]): boolean {
  const existing = getPath(doc, path);
  if (existing === undefined) {
    setPath(doc, path, values.map((v) => cloneValue(v)));
    return true;
  }
  if (!Array.isArray(existing)) {
    throw new CommandError(
      ErrorCodes.BadValue,
      `Cannot apply $addToSet to non-array field. Field named '${path.slice(path.lastIndexOf('.') + 1)}' has non-array type ${bsonTypeOf(existing)}`,
    );
  }
  const toAdd = values.filter((v) => !existing.some((e) => valuesEqual(e, v)));
  if (toAdd.length === 0) return false;
  setPath(doc, path, [...existing, ...toAdd.map((v) => cloneValue(v))]);
  return true;
}

/** Top-level query operators: a $pull condition starting with one is matched against each element as a document. */
const TOP_LEVEL_QUERY_OPERATORS = new Set(['$and', '$or', '$nor', '$expr', '$where', '$comment', '$text', '$jsonSchema', '$alwaysTrue', '$alwaysFalse', '$sampleRate']);

export function parsePull(modifier: '$pull' | '$pullAll', arg: unknown): (element: unknown) => boolean {
  if (modifier === '$pullAll') {
    if (!Array.isArray(arg)) {
      throw new CommandError(ErrorCodes.BadValue, `$pullAll requires an array argument but was given a ${bsonTypeOf(arg)}`);
    }
    return (e) => arg.some((v) => valuesEqual(e, v));
  }
  const first = isDocumentValue(arg) ? documentEntries(arg)[0]?.[0] : undefined;
  if (isDocumentValue(arg) && !(isOperatorDocument(arg) && !TOP_LEVEL_QUERY_OPERATORS.has(first ?? ''))) {
    // {$pull: {results: {score: 8}}}: a query each sub-document element must match.
    const matches = compileFilter(arg);
    return (e) => isDocumentValue(e) && matches(e);
  }
  if (isDocumentValue(arg) || bsonTypeOf(arg) === 'regex') {
    // {$pull: {votes: {$gte: 6}}}: the condition applies to each element itself.
    const matches = compileFilter({ v: arg });
    return (e) => matches({ v: e });
  }
  return (e) => valuesEqual(e, arg);
}

export function applyPull(doc: Document, path: string, matches: (element: unknown) => boolean): boolean {
  const existing = getPath(doc, path);
  if (existing === undefined) return false;
  if (!Array.isArray(existing)) throw new CommandError(ErrorCodes.BadValue, 'Cannot apply $pull to a non-array value');
  const kept = existing.filter((e) => !matches(e));
  if (kept.length === existing.length) return false;
  setPath(doc, path, kept);
  return true;
}

export function parsePop(path: string, arg: unknown): boolean {
  const n = parseInteger(path, arg);
  if (typeof n === 'string') throw new CommandError(ErrorCodes.FailedToParse, n);
  if (n !== 1n && n !== -1n) throw new CommandError(ErrorCodes.FailedToParse, `$pop expects 1 or -1, found: ${n}`);
  return n === -1n;
}

export function applyPop(doc: Document, path: string, fromFront: boolean): boolean {
  const existing = getPath(doc, path);
  if (existing === undefined) return false;
  if (!Array.isArray(existing)) {
    throw new CommandError(
      ErrorCodes.TypeMismatch,
      `Path '${path}' contains an element of non-array type '${bsonTypeOf(existing)}'`,
    );
  }
  if (existing.length === 0) return false;
  setPath(doc, path, fromFront ? existing.slice(1) : existing.slice(0, -1));
  return true;
}
