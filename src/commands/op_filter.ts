/**
 * Whether one document passes a currentOp filter, so that the running backup is listed
 * when, and only when, mongod would list an operation like it: `db.currentOp({"command.
 * backupStart": {$exists: true}})`, `db.currentOp({active: true, secs_running: {$gt: 3}})`.
 *
 * It holds the query language's common part, with mongod's rules for it: dotted paths
 * that descend through arrays, an array matching when it or one of its elements does,
 * `null` matching a missing field, numbers equal across BSON types, comparisons only
 * between values of one kind (matcher/expression_leaf.cpp, ComparisonMatchExpression):
 * $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $not $and $or $nor, and
 * regular expressions, read as mongod's PCRE reads them (pcre_regex.ts). Anything else
 * ($expr, $elemMatch, $type..., a pattern only PCRE reads) throws UnsupportedFilter: the
 * caller then leaves the backup out, as a filter it cannot judge.
 */
import { BSONRegExp, Double, Int32, Long } from 'bson';
import type { Document } from '../wire/command_message.js';
import { pcreRegex, type PcreRegex } from './pcre_regex.js';
import { UnsupportedFilter } from './unsupported_filter.js';

export { UnsupportedFilter };

type Kind = 'number' | 'string' | 'boolean' | 'date' | 'null' | 'object' | 'array' | 'other';

function isPlainDocument(value: unknown): value is Document {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !('_bsontype' in value) && !(value instanceof Date) && !(value instanceof RegExp);
}

/** Int32, Double, Long (from BSON with promoteValues off) and plain numbers, as one number. */
function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Int32 || value instanceof Double) return value.valueOf();
  if (value instanceof Long) return value.toNumber();
  return undefined;
}

function kindOf(value: unknown): Kind {
  if (value === null || value === undefined) return 'null';
  if (numberOf(value) !== undefined) return 'number';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (value instanceof Date) return 'date';
  if (Array.isArray(value)) return 'array';
  if (isPlainDocument(value)) return 'object';
  return 'other';
}

function equal(a: unknown, b: unknown): boolean {
  const kind = kindOf(a);
  if (kind !== kindOf(b)) return false;
  switch (kind) {
    case 'null':
      return true;
    case 'number':
      return numberOf(a) === numberOf(b);
    case 'date':
      return (a as Date).getTime() === (b as Date).getTime();
    case 'array': {
      const x = a as unknown[];
      const y = b as unknown[];
      return x.length === y.length && x.every((v, i) => equal(v, y[i]));
    }
    case 'object': {
      const x = Object.entries(a as Document);
      const y = Object.entries(b as Document);
      return x.length === y.length && x.every(([k, v], i) => y[i]?.[0] === k && equal(v, y[i]?.[1]));
    }
    case 'other':
      return JSON.stringify(a) === JSON.stringify(b);
    default:
      return a === b;
  }
}

/** Sign of a - b for two values of one comparable kind, else undefined (they never compare). */
function compare(a: unknown, b: unknown): number | undefined {
  const kind = kindOf(a);
  if (kind !== kindOf(b)) return undefined;
  if (kind === 'number') return Math.sign((numberOf(a) as number) - (numberOf(b) as number));
  if (kind === 'string') return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
  if (kind === 'date') return Math.sign((a as Date).getTime() - (b as Date).getTime());
  if (kind === 'boolean') return Number(a) - Number(b);
  return undefined;
}

/** The values at a dotted path: through arrays of documents, with each array's elements beside the array itself. */
function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return Array.isArray(value) ? [value, ...value] : [value];
  const [head, ...rest] = path as [string, ...string[]];
  if (Array.isArray(value)) {
    const index = /^\d+$/.test(head) ? value[Number(head)] : undefined;
    const inElements = value.flatMap((element) => (isPlainDocument(element) ? valuesAt(element, path) : []));
    return index === undefined ? inElements : [...valuesAt(index, rest), ...inElements];
  }
  if (!isPlainDocument(value) || !(head in value)) return [];
  return valuesAt(value[head], rest);
}

/**
 * A pattern as mongod reads it (PCRE, pcre_regex.ts), with `options` in place of its own
 * when they are not empty ($options). A JavaScript RegExp in a filter is sent as a BSON
 * regular expression of its source and flags, so it is read as PCRE too.
 */
function regexOf(value: unknown, options = ''): PcreRegex | undefined {
  if (value instanceof RegExp) return pcreRegex(value.source, options === '' ? value.flags.replace(/[^ims]/g, '') : options);
  if (value instanceof BSONRegExp) return pcreRegex(value.pattern, options === '' ? value.options : options);
  if (typeof value === 'string') return pcreRegex(value, options);
  return undefined;
}

/** Whether a value (one candidate at the path) passes `operator` with `operand`. */
function passes(operator: string, operand: unknown, values: unknown[], spec: Document): boolean {
  switch (operator) {
    case '$eq':
      // A regular expression after $eq is a value to compare, not a pattern (as in mongod).
      return equalsAny(values, operand);
    case '$ne':
      return !passes('$eq', operand, values, spec);
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return values.some((v) => {
        const sign = compare(v, operand);
        if (sign === undefined) return false;
        return operator === '$gt' ? sign > 0 : operator === '$gte' ? sign >= 0 : operator === '$lt' ? sign < 0 : sign <= 0;
      });
    case '$in':
      if (!Array.isArray(operand)) throw new UnsupportedFilter('$in needs an array');
      return operand.some((o) => equalsOrMatches(values, o));
    case '$nin':
      return !passes('$in', operand, values, spec);
    case '$exists':
      return (values.length > 0) === Boolean(numberOf(operand) ?? operand);
    case '$regex': {
      const options = spec['$options'];
      return matchesRegex(values, regexOf(operand, typeof options === 'string' ? options : '') ?? unsupported('$regex needs a string or a regular expression'));
    }
    case '$options':
      if (!('$regex' in spec)) throw new UnsupportedFilter('$options without $regex');
      return true;
    case '$not':
      if (operand instanceof RegExp || operand instanceof BSONRegExp) return !matchesRegex(values, regexOf(operand) as PcreRegex);
      if (!isPlainDocument(operand)) throw new UnsupportedFilter('$not needs a regular expression or a document');
      return !operatorsPass(operand, values);
    default:
      throw new UnsupportedFilter(operator);
  }
}

function unsupported(what: string): never {
  throw new UnsupportedFilter(what);
}

/** `null` matches a missing field as well as a null one. */
function equalsAny(values: unknown[], operand: unknown): boolean {
  if (kindOf(operand) === 'null' && values.length === 0) return true;
  return values.some((v) => equal(v, operand));
}

/** Implicit equality and $in: a regular expression is a pattern there. */
function equalsOrMatches(values: unknown[], operand: unknown): boolean {
  if (operand instanceof RegExp || operand instanceof BSONRegExp) return matchesRegex(values, regexOf(operand) as PcreRegex);
  return equalsAny(values, operand);
}

function matchesRegex(values: unknown[], regex: PcreRegex): boolean {
  return values.some((v) => typeof v === 'string' && regex.test(v));
}

function operatorsPass(spec: Document, values: unknown[]): boolean {
  return Object.entries(spec).every(([operator, operand]) => passes(operator, operand, values, spec));
}

/** Whether `doc` passes `filter`; throws UnsupportedFilter for what this matcher does not know. */
export function matchesFilter(doc: Document, filter: Document): boolean {
  return Object.entries(filter).every(([field, condition]) => {
    if (field === '$and' || field === '$or' || field === '$nor') {
      if (!Array.isArray(condition) || condition.length === 0 || !condition.every(isPlainDocument)) {
        throw new UnsupportedFilter(`${field} needs a non-empty array of documents`);
      }
      const results = (condition as Document[]).map((clause) => matchesFilter(doc, clause));
      return field === '$and' ? results.every(Boolean) : field === '$or' ? results.some(Boolean) : !results.some(Boolean);
    }
    if (field.startsWith('$')) throw new UnsupportedFilter(field);
    const values = valuesAt(doc, field.split('.'));
    const operators = isPlainDocument(condition) && Object.keys(condition).some((key) => key.startsWith('$'));
    if (operators) return operatorsPass(condition as Document, values);
    return equalsOrMatches(values, condition);
  });
}
