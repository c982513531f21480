/**
 * The $group stage and its accumulators, with mongod's result types: a $sum of Int32s stays
 * Int32 until it overflows (then Long, then Double), $avg is a Double (Decimal128 if any input
 * was one), $min/$max skip null and missing.
 */
import { Double, Int32, type Decimal128, type Long } from 'bson';
import { ErrorCodes, CommandError } from '../../errors.js';
import { bsonTypeOf, canonicalRank, isDocumentValue } from './bsontype.js';
import { documentEntries, fromEntries } from './entries.js';
import { compileExpression, type Evaluator } from './expression.js';
import { arithmetic, decimalDivide, numericKind, toJsNumber } from './numeric.js';
import { notImplemented } from './unsupported.js';
import { compareValues, valuesEqual, type Document } from './values.js';

interface Accumulator {
  add(value: unknown): void;
  result(): unknown;
}

const SUPPORTED = new Set(['$sum', '$avg', '$min', '$max', '$first', '$last', '$push', '$addToSet', '$count']);
const KNOWN_UNSUPPORTED = new Set([
  '$accumulator', '$bottom', '$bottomN', '$concatArrays', '$firstN', '$lastN', '$maxN', '$median',
  '$mergeObjects', '$minN', '$percentile', '$setUnion', '$stdDevPop', '$stdDevSamp', '$top', '$topN',
]);

/** Sums numbers the way AccumulatorSum does; non-numbers are ignored. */
class NumericTotal {
  total: Int32 | Long | Double | Decimal128 = new Int32(0);
  count = 0;
  /** Doubles are summed with compensation, as mongod's DoubleDoubleSummation keeps extra precision. */
  private compensation = 0;

  add(value: unknown): void {
    const kind = numericKind(value);
    if (kind === undefined) return;
    this.count += 1;
    const totalKind = numericKind(this.total);
    if (totalKind === 'double' && kind !== 'decimal') {
      this.addDouble(toJsNumber(value));
      return;
    }
    if (totalKind === 'double') this.total = this.value();
    this.compensation = 0;
    const before = this.total;
    this.total = arithmetic(this.total, value, 'add');
    if (numericKind(this.total) === 'double' && totalKind !== 'double') {
      // Switching to doubles: restart the compensated sum from the exact integer total.
      this.total = new Double(toJsNumber(before));
      this.compensation = 0;
      this.addDouble(toJsNumber(value));
    }
  }

  private addDouble(x: number): void {
    const sum = toJsNumber(this.total);
    const t = sum + x;
    // Neumaier's compensated summation.
    this.compensation += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
    this.total = new Double(t);
  }

  value(): Int32 | Long | Double | Decimal128 {
    if (numericKind(this.total) === 'double') return new Double(toJsNumber(this.total) + this.compensation);
    return this.total;
  }
}

function makeAccumulator(op: string): Accumulator {
  switch (op) {
    case '$sum':
    case '$count': {
      const t = new NumericTotal();
      return { add: (v) => t.add(v), result: () => t.value() };
    }
    case '$avg': {
      const t = new NumericTotal();
      return {
        add: (v) => t.add(v),
        result() {
          if (t.count === 0) return null;
          const sum = t.value();
          if (numericKind(sum) === 'decimal') return decimalDivide(sum, t.count);
          return new Double(toJsNumber(sum) / t.count);
        },
      };
    }
    case '$min':
    case '$max': {
      let best: unknown;
      const sign = op === '$min' ? 1 : -1;
      return {
        add(v) {
          const t = bsonTypeOf(v);
          if (t === 'missing' || t === 'null' || t === 'undefined') return;
          if (best === undefined || compareValues(v, best) * sign < 0) best = v;
        },
        result: () => best ?? null,
      };
    }
    case '$first': {
      let seen = false;
      let first: unknown;
      return {
        add(v) {
          if (!seen) first = v;
          seen = true;
        },
        result: () => first ?? null,
      };
    }
    case '$last': {
      let last: unknown;
      return { add: (v) => void (last = v), result: () => last ?? null };
    }
    case '$push': {
      const all: unknown[] = [];
      return { add: (v) => void (v !== undefined && all.push(v)), result: () => all };
    }
    default: {
      const set: unknown[] = [];
      return {
        add(v) {
          if (v !== undefined && !set.some((s) => valuesEqual(s, v))) set.push(v);
        },
        result: () => set,
      };
    }
  }
}

interface AccumulatorSpec {
  readonly name: string;
  readonly op: string;
  readonly argument: Evaluator;
}

function parseAccumulator(name: string, spec: unknown): AccumulatorSpec {
  if (name.includes('.')) throw new CommandError(40235, `The field name '${name}' cannot contain '.'`);
  if (name.startsWith('$')) throw new CommandError(40236, `The field name '${name}' cannot be an operator name`);
  const entries = isDocumentValue(spec) ? documentEntries(spec) : [];
  const first = entries[0];
  if (first === undefined || !first[0].startsWith('$')) {
    throw new CommandError(40234, `The field '${name}' must be an accumulator object`);
  }
  if (entries.length !== 1) throw new CommandError(40238, `The field '${name}' must specify one accumulator`);
  const [op, arg] = first;
  if (KNOWN_UNSUPPORTED.has(op)) throw notImplemented(`The $group accumulator ${op}`);
  if (!SUPPORTED.has(op)) throw new CommandError(15952, `unknown group operator '${op}'`);
  if (op === '$count') {
    if (!isDocumentValue(arg) || documentEntries(arg).length !== 0) {
      throw new CommandError(ErrorCodes.BadValue, '$count takes no arguments, i.e. $count:{}');
    }
    return { name, op, argument: () => new Int32(1) };
  }
  if (Array.isArray(arg)) {
    throw new CommandError(40237, `The ${op} accumulator is a unary operator`);
  }
  return { name, op, argument: compileExpression(arg) };
}

/** A cheap bucket for a group key: equal keys always share one (numbers by value, across types). */
function groupHash(key: unknown): string {
  if (typeof key === 'string') return `s|${key}`;
  if (numericKind(key) !== undefined) return `n|${toJsNumber(key)}`;
  return `t|${canonicalRank(key)}`;
}

/** Compiles a $group specification into a function over the whole input. */
export function compileGroup(spec: unknown): (docs: Iterable<Document>) => Document[] {
  if (!isDocumentValue(spec)) throw new CommandError(15947, "a group's fields must be specified in an object");
  let idExpr: Evaluator | undefined;
  const accumulators: AccumulatorSpec[] = [];
  for (const [name, value] of documentEntries(spec)) {
    if (name === '_id') idExpr = compileExpression(value);
    else accumulators.push(parseAccumulator(name, value));
  }
  if (idExpr === undefined) throw new CommandError(15955, 'a group specification must include an _id');
  const groupKey = idExpr;
  return (docs) => {
    // Groups in first-seen order; keys compare by value (1 and 1.0 are one group), as mongod's do.
    const groups: Array<{ key: unknown; accs: Accumulator[] }> = [];
    const buckets = new Map<string, Array<{ key: unknown; accs: Accumulator[] }>>();
    for (const doc of docs) {
      const key = groupKey(doc) ?? null;
      const hash = groupHash(key);
      const bucket = buckets.get(hash) ?? [];
      let group = bucket.find((g) => valuesEqual(g.key, key));
      if (group === undefined) {
        group = { key, accs: accumulators.map((a) => makeAccumulator(a.op)) };
        bucket.push(group);
        buckets.set(hash, bucket);
        groups.push(group);
      }
      accumulators.forEach((a, i) => (group.accs[i] as Accumulator).add(a.argument(doc)));
    }
    return groups.map((g) =>
      fromEntries([['_id', g.key], ...accumulators.map((a, i) => [a.name, (g.accs[i] as Accumulator).result()] as const)]),
    );
  };
}
