/**
 * The sliver of the aggregation expression language the dev server evaluates: field paths
 * ("$a.b"), $$ROOT/$$CURRENT, constants, {$literal: x}, and arrays/objects built from those.
 * Every real operator ($add, $concat, ...) is refused by name rather than guessed at.
 */
import { ErrorCodes, CommandError } from '../../errors.js';
import { isDocumentValue } from './bsontype.js';
import { documentEntries, fromEntries, getField } from './entries.js';
import { notImplemented } from './unsupported.js';
import type { Document } from './values.js';

/** Evaluates against the current document; `undefined` means "missing" (the field is omitted). */
export type Evaluator = (root: Document) => unknown;

const KNOWN_OPERATORS = new Set(
  `abs accumulator acos acosh add addToSet allElementsTrue and anyElementTrue arrayElemAt arrayToObject
  asin asinh atan atan2 atanh avg binarySize bitAnd bitNot bitOr bitXor bottom bottomN bsonSize ceil cmp
  concat concatArrays cond convert cos cosh count covariancePop covarianceSamp dateAdd dateDiff
  dateFromParts dateFromString dateSubtract dateToParts dateToString dateTrunc dayOfMonth dayOfWeek
  dayOfYear degreesToRadians denseRank derivative divide documentNumber eq exp expMovingAvg filter
  first firstN floor function getField gt gte hour ifNull in indexOfArray indexOfBytes indexOfCP
  integral isArray isNumber isoDayOfWeek isoWeek isoWeekYear last lastN let linearFill literal ln
  locf log log10 lt lte ltrim map max maxN median mergeObjects meta millisecond min minN minute mod
  month multiply ne not objectToArray or percentile pow push radiansToDegrees rand range rank reduce
  regexFind regexFindAll regexMatch replaceAll replaceOne reverseArray round rtrim sampleRate second
  setDifference setEquals setField setIntersection setIsSubset setUnion shift sin sinh size slice
  sortArray split sqrt stdDevPop stdDevSamp strcasecmp strLenBytes strLenCP substr substrBytes
  substrCP subtract sum switch tan tanh toBool toDate toDecimal toDouble toHashedIndexKey toInt
  toLong toLower toObjectId top topN toString toUpper toUUID trim trunc tsIncrement tsSecond type
  unsetField week year zip`
    .split(/\s+/)
    .map((name) => `$${name}`),
);

const UNSUPPORTED_VARIABLES = new Set(['NOW', 'CLUSTER_TIME', 'USER_ROLES', 'SEARCH_META', 'DESCEND', 'PRUNE', 'KEEP']);

/**
 * ExpressionFieldPath: sub-documents are walked; an array maps the rest of the path over its
 * elements, dropping elements where it is missing and (unlike matching) ignoring numeric indexes.
 */
export function evaluateFieldPath(value: unknown, parts: readonly string[], from = 0): unknown {
  if (from === parts.length) return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const e of value) {
      if (!isDocumentValue(e) && !Array.isArray(e)) continue;
      const r = evaluateFieldPath(e, parts, from);
      if (r !== undefined) out.push(r);
    }
    return out;
  }
  if (!isDocumentValue(value)) return undefined;
  return evaluateFieldPath(getField(value, parts[from] as string), parts, from + 1);
}

function validatePathParts(path: string): string[] {
  const parts = path.split('.');
  for (const part of parts) {
    if (part === '') throw new CommandError(15998, 'FieldPath field names may not be empty strings.');
    if (part.startsWith('$')) {
      throw new CommandError(16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.");
    }
  }
  return parts;
}

function compileVariable(ref: string): Evaluator {
  const [name = '', ...rest] = ref.split('.');
  if (name === 'ROOT' || name === 'CURRENT') {
    const parts = rest.length === 0 ? [] : validatePathParts(rest.join('.'));
    return (root) => evaluateFieldPath(root, parts);
  }
  if (name === 'REMOVE') return () => undefined;
  if (UNSUPPORTED_VARIABLES.has(name)) throw notImplemented(`The aggregation variable $$${name}`);
  throw new CommandError(17276, `Use of undefined variable: ${name}`);
}

function compileString(s: string): Evaluator {
  if (!s.startsWith('$')) return () => s;
  if (s.startsWith('$$')) return compileVariable(s.slice(2));
  if (s === '$') throw new CommandError(16872, "'$' by itself is not a valid FieldPath");
  const parts = validatePathParts(s.slice(1));
  return (root) => evaluateFieldPath(root, parts);
}

function compileOperator(name: string, arg: unknown): Evaluator {
  if (name === '$literal') return () => arg;
  if (KNOWN_OPERATORS.has(name)) throw notImplemented(`The aggregation expression operator ${name}`);
  throw new CommandError(ErrorCodes.InvalidPipelineOperator, `Unrecognized expression '${name}'`);
}

function compileObject(obj: Document): Evaluator {
  const entries = documentEntries(obj);
  const first = entries[0];
  if (first !== undefined && first[0].startsWith('$')) {
    if (entries.length !== 1) {
      throw new CommandError(
        15983,
        `an expression specification must contain exactly one field, the name of the expression. Found ${entries.length} fields`,
      );
    }
    return compileOperator(first[0], first[1]);
  }
  const fields = entries.map(([name, spec]) => {
    if (name.startsWith('$')) {
      throw new CommandError(16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.");
    }
    if (name.includes('.')) throw new CommandError(16412, "FieldPath field names may not contain '.'.");
    return [name, compileExpression(spec)] as const;
  });
  return (root) => {
    const out: Array<[string, unknown]> = [];
    for (const [name, evaluate] of fields) {
      const v = evaluate(root);
      if (v !== undefined) out.push([name, v]);
    }
    return fromEntries(out);
  };
}

/** Compiles an aggregation expression, refusing (NotImplemented) any operator but $literal. */
export function compileExpression(spec: unknown): Evaluator {
  if (typeof spec === 'string') return compileString(spec);
  if (Array.isArray(spec)) {
    const items = spec.map(compileExpression);
    // Inside an array literal a missing value becomes null.
    return (root) => items.map((e) => e(root) ?? null);
  }
  if (isDocumentValue(spec)) return compileObject(spec);
  return () => spec;
}

/** True when a projection/$addFields value is an operator expression ({$add: ...}) rather than a sub-spec. */
export function isExpressionObject(v: unknown): boolean {
  if (!isDocumentValue(v)) return false;
  const first = documentEntries(v)[0];
  return first !== undefined && first[0].startsWith('$');
}
