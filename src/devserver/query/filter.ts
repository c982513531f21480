/**
 * Query filters ({age: {$gt: 5}}) compiled to predicates, with mongod's matching semantics:
 * paths fan out across arrays, comparisons stay inside one type bracket, null matches missing.
 */
import { bsonTypeOf, canonicalRank, isDocumentValue } from './bsontype.js';
import { documentEntries } from './entries.js';
import { numericKind, toJsNumber } from './numeric.js';
import { walkPath, type PathHitKind } from './paths.js';
import { badValue, notImplemented } from './unsupported.js';
import { compareValues, type Document } from './values.js';

export type DocumentPredicate = (doc: Document) => boolean;
type ValueTest = (value: unknown, kind: PathHitKind) => boolean;
type Comparison = '$eq' | '$gt' | '$gte' | '$lt' | '$lte';

/** Valid query operators this dev server does not evaluate. */
const UNSUPPORTED_FIELD_OPERATORS = new Set([
  '$regex', '$options', '$elemMatch', '$type', '$size', '$all', '$mod',
  '$geoWithin', '$geoIntersects', '$near', '$nearSphere', '$within',
  '$bitsAllSet', '$bitsAllClear', '$bitsAnySet', '$bitsAnyClear',
  '$maxDistance', '$minDistance',
]);
const UNSUPPORTED_TOP_LEVEL = new Set(['$expr', '$where', '$text', '$jsonSchema', '$sampleRate']);
const DBREF_FIELDS = new Set(['$ref', '$id', '$db']);

function isRegex(v: unknown): boolean {
  return bsonTypeOf(v) === 'regex';
}

/** BSON "truthiness", as $exists reads its argument. */
export function trueValue(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (numericKind(v) !== undefined) return toJsNumber(v) !== 0;
  return true;
}

/** {a: {$gt: 1}} is an operator document; {a: {b: 1}} and a DBRef are literal values. */
export function isOperatorDocument(v: unknown): v is Document {
  if (!isDocumentValue(v)) return false;
  const first = documentEntries(v)[0];
  return first !== undefined && first[0].startsWith('$') && !DBREF_FIELDS.has(first[0]);
}

function anyHit(path: string, test: ValueTest): DocumentPredicate {
  return (doc) => {
    let hit = false;
    walkPath(doc, path, (v, kind) => {
      if (!hit && test(v, kind)) hit = true;
    });
    return hit;
  };
}

function isNaNNumber(v: unknown): boolean {
  return numericKind(v) !== undefined && Number.isNaN(toJsNumber(v));
}

/** ComparisonMatchExpression::matchesSingleElement. */
function comparisonTest(op: Comparison, operand: unknown): ValueTest {
  const operandType = bsonTypeOf(operand);
  const operandRank = canonicalRank(operand);
  const operandNaN = isNaNNumber(operand);
  return (v) => {
    if (canonicalRank(v) !== operandRank) {
      // Only MinKey and MaxKey reach across type brackets.
      if (operandType === 'minKey') return op === '$gt' || op === '$gte';
      if (operandType === 'maxKey') return op === '$lt' || op === '$lte';
      return false;
    }
    if (operandNaN || isNaNNumber(v)) {
      // NaN equals NaN and is otherwise incomparable.
      const both = operandNaN && isNaNNumber(v);
      return both && (op === '$eq' || op === '$gte' || op === '$lte');
    }
    const c = compareValues(v, operand);
    switch (op) {
      case '$eq':
        return c === 0;
      case '$gt':
        return c > 0;
      case '$gte':
        return c >= 0;
      case '$lt':
        return c < 0;
      case '$lte':
        return c <= 0;
    }
  };
}

function equalityOperand(v: unknown, op: string): unknown {
  if (isRegex(v)) throw notImplemented(`Regular expression matching (${op} with a regex)`);
  return v === undefined ? null : v;
}

function inTest(op: '$in' | '$nin', arg: unknown): ValueTest {
  if (!Array.isArray(arg)) throw badValue(`${op} needs an array`);
  const tests = arg.map((v) => {
    if (isOperatorDocument(v)) throw badValue(`cannot nest $ under ${op}`);
    return comparisonTest('$eq', equalityOperand(v, op));
  });
  return (v, kind) => tests.some((t) => t(v, kind));
}

function not(p: DocumentPredicate): DocumentPredicate {
  return (doc) => !p(doc);
}

function compileOperator(path: string, op: string, arg: unknown): DocumentPredicate {
  switch (op) {
    case '$eq':
      return anyHit(path, comparisonTest('$eq', equalityOperand(arg, op)));
    case '$ne':
      if (isRegex(arg)) throw badValue("Can't have regex as arg to $ne.");
      return not(anyHit(path, comparisonTest('$eq', arg === undefined ? null : arg)));
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      if (isRegex(arg)) throw badValue(`Can't have RegEx as arg to predicate over field '${path}'.`);
      return anyHit(path, comparisonTest(op, arg === undefined ? null : arg));
    case '$in':
      return anyHit(path, inTest(op, arg));
    case '$nin':
      return not(anyHit(path, inTest(op, arg)));
    case '$exists': {
      const exists = anyHit(path, (_v, kind) => kind !== 'missing');
      return trueValue(arg) ? exists : not(exists);
    }
    case '$not':
      return not(compileNot(path, arg));
    default:
      if (UNSUPPORTED_FIELD_OPERATORS.has(op)) throw notImplemented(`The query operator ${op}`);
      throw badValue(`unknown operator: ${op}`);
  }
}

function compileNot(path: string, arg: unknown): DocumentPredicate {
  if (isRegex(arg)) throw notImplemented('Regular expression matching ($not with a regex)');
  if (!isDocumentValue(arg)) throw badValue('$not needs a regex or a document');
  const entries = documentEntries(arg);
  if (entries.length === 0) throw badValue('$not cannot be empty');
  return compileOperators(path, entries);
}

function compileOperators(path: string, entries: ReadonlyArray<[string, unknown]>): DocumentPredicate {
  const parts = entries.map(([op, arg]) => compileOperator(path, op, arg));
  return (doc) => parts.every((p) => p(doc));
}

function compilePathClause(path: string, value: unknown): DocumentPredicate {
  if (isRegex(value)) throw notImplemented(`Regular expression matching (on field '${path}')`);
  if (isOperatorDocument(value)) return compileOperators(path, documentEntries(value));
  return anyHit(path, comparisonTest('$eq', value === undefined ? null : value));
}

function compileClauseList(op: string, arg: unknown): DocumentPredicate[] {
  if (!Array.isArray(arg)) throw badValue(`${op} must be an array`);
  if (arg.length === 0) throw badValue('$and/$or/$nor must be a nonempty array');
  return arg.map((clause) => {
    if (!isDocumentValue(clause)) throw badValue('$or/$and/$nor entries need to be full objects');
    return compileFilter(clause);
  });
}

function alwaysBoolean(op: string, arg: unknown, result: boolean): DocumentPredicate {
  if (numericKind(arg) === undefined || toJsNumber(arg) !== 1) {
    throw badValue(`${op} must be an integer value of 1`);
  }
  return () => result;
}

function compileTopLevel(op: string, arg: unknown): DocumentPredicate | undefined {
  switch (op) {
    case '$and': {
      const all = compileClauseList(op, arg);
      return (doc) => all.every((p) => p(doc));
    }
    case '$or': {
      const any = compileClauseList(op, arg);
      return (doc) => any.some((p) => p(doc));
    }
    case '$nor': {
      const none = compileClauseList(op, arg);
      return (doc) => !none.some((p) => p(doc));
    }
    case '$comment':
      return undefined;
    case '$alwaysTrue':
      return alwaysBoolean(op, arg, true);
    case '$alwaysFalse':
      return alwaysBoolean(op, arg, false);
    default:
      if (UNSUPPORTED_TOP_LEVEL.has(op)) throw notImplemented(`The query operator ${op}`);
      throw badValue(
        `unknown top level operator: ${op}. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.`,
      );
  }
}

/** Compiles a query filter; throws mongod's errors for malformed or unknown operators. */
export function compileFilter(filter: Document): DocumentPredicate {
  if (!isDocumentValue(filter)) throw badValue('the query filter must be a document');
  const clauses: DocumentPredicate[] = [];
  for (const [key, value] of documentEntries(filter)) {
    const clause = key.startsWith('$') ? compileTopLevel(key, value) : compilePathClause(key, value);
    if (clause !== undefined) clauses.push(clause);
  }
  if (clauses.length === 1) return clauses[0] as DocumentPredicate;
  return (doc) => clauses.every((p) => p(doc));
}
