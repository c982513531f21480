/**
 * The field-level update operators ($set, $inc, $push, ...). Each is parsed once into an
 * UpdateOp; apply() mutates a working copy of the document and reports whether it changed
 * anything, with mongod's no-op rules (binary identity, not value equality).
 */
import { Int32, Timestamp } from 'bson';
import { ErrorCodes, CommandError } from '../../errors.js';
import { bsonTypeOf, isDocumentValue } from './bsontype.js';
import { documentEntries, getField } from './entries.js';
import { formatElement } from './format.js';
import { arithmetic, numericKind } from './numeric.js';
import { getPath, setPath, unsetPath } from './paths.js';
import { parsePushArgument, applyPush, parseAddToSet, applyAddToSet, parsePull, applyPull, parsePop, applyPop } from './update_array_ops.js';
import { notImplemented } from './unsupported.js';
import { cloneValue, compareValues, identical, type Document } from './values.js';

export interface ApplyContext {
  readonly isInsert: boolean;
  readonly now: Date;
}

export interface UpdateOp {
  readonly modifier: string;
  /** Where the result lands; $rename's source is in `alsoTouches`. */
  readonly path: string;
  readonly alsoTouches?: string;
  apply(doc: Document, ctx: ApplyContext): boolean;
}

/** mongod's modifier table; names outside it are "Unknown modifier". */
export const MODIFIERS = new Set([
  '$set', '$setOnInsert', '$unset', '$inc', '$mul', '$min', '$max', '$rename', '$currentDate',
  '$push', '$addToSet', '$pull', '$pullAll', '$pop', '$bit',
]);

export function lastPart(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

/** The `{_id: 1}` mongod prints to say which document an update failed on. */
export function idElement(doc: Document): string {
  const id = getField(doc, '_id');
  return id === undefined ? '{}' : `{${formatElement('_id', id)}}`;
}

function setIfDifferent(doc: Document, path: string, value: unknown): boolean {
  if (identical(getPath(doc, path), value)) return false;
  setPath(doc, path, cloneValue(value));
  return true;
}

function arithmeticOp(modifier: '$inc' | '$mul', path: string, arg: unknown): UpdateOp {
  const op = modifier === '$inc' ? 'add' : 'mul';
  if (numericKind(arg) === undefined) {
    const verb = modifier === '$inc' ? 'increment' : 'multiply';
    throw new CommandError(
      ErrorCodes.TypeMismatch,
      `Cannot ${verb} with non-numeric argument: {${formatElement(path, arg)}}`,
    );
  }
  return {
    modifier,
    path,
    apply(doc) {
      const existing = getPath(doc, path);
      if (existing === undefined) {
        // A missing field takes the argument ($inc) or a zero of the argument's type ($mul).
        setPath(doc, path, op === 'add' ? arg : arithmetic(arg, new Int32(0), 'mul'));
        return true;
      }
      if (numericKind(existing) === undefined) {
        throw new CommandError(
          ErrorCodes.TypeMismatch,
          `Cannot apply ${modifier} to a value of non-numeric type. ${idElement(doc)} has the field '${lastPart(path)}' of non-numeric type ${bsonTypeOf(existing)}`,
        );
      }
      return setIfDifferent(doc, path, arithmetic(existing, arg, op));
    },
  };
}

function compareOp(modifier: '$min' | '$max', path: string, arg: unknown): UpdateOp {
  return {
    modifier,
    path,
    apply(doc) {
      const existing = getPath(doc, path);
      if (existing !== undefined) {
        const c = compareValues(arg, existing);
        if (modifier === '$min' ? c >= 0 : c <= 0) return false;
      }
      setPath(doc, path, cloneValue(arg));
      return true;
    },
  };
}

function currentDateOp(path: string, arg: unknown): UpdateOp {
  let asDate: boolean;
  if (typeof arg === 'boolean') {
    asDate = true;
  } else if (isDocumentValue(arg)) {
    let found: boolean | undefined;
    for (const [k, v] of documentEntries(arg)) {
      if (k !== '$type') throw new CommandError(ErrorCodes.BadValue, `Unrecognized $currentDate option: ${k}`);
      if (v === 'date' || v === 'timestamp') found = v === 'date';
    }
    if (found === undefined) {
      throw new CommandError(
        ErrorCodes.BadValue,
        "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}",
      );
    }
    asDate = found;
  } else {
    throw new CommandError(
      ErrorCodes.BadValue,
      `${bsonTypeOf(arg)} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).`,
    );
  }
  return {
    modifier: '$currentDate',
    path,
    apply(doc, ctx) {
      setPath(doc, path, asDate ? new Date(ctx.now.getTime()) : nextTimestamp(ctx.now));
      return true;
    },
  };
}

let lastTimestamp = { t: 0, i: 0 };

/** Like mongod's cluster clock: seconds since the epoch, and an increment that makes each one unique. */
function nextTimestamp(now: Date): Timestamp {
  const t = Math.floor(now.getTime() / 1000);
  lastTimestamp = t > lastTimestamp.t ? { t, i: 1 } : { t: lastTimestamp.t, i: lastTimestamp.i + 1 };
  return new Timestamp(lastTimestamp);
}

/** Parses one `{path: arg}` of a modifier into an operation. $rename is built by the caller. */
export function parseFieldOp(modifier: string, path: string, arg: unknown): UpdateOp {
  switch (modifier) {
    case '$set':
      return { modifier, path, apply: (doc) => setIfDifferent(doc, path, arg) };
    case '$setOnInsert':
      return { modifier, path, apply: (doc, ctx) => ctx.isInsert && setIfDifferent(doc, path, arg) };
    case '$unset':
      return { modifier, path, apply: (doc) => unsetPath(doc, path) };
    case '$inc':
    case '$mul':
      return arithmeticOp(modifier, path, arg);
    case '$min':
    case '$max':
      return compareOp(modifier, path, arg);
    case '$currentDate':
      return currentDateOp(path, arg);
    case '$push': {
      const spec = parsePushArgument(arg);
      return { modifier, path, apply: (doc) => applyPush(doc, path, spec) };
    }
    case '$addToSet': {
      const values = parseAddToSet(arg);
      return { modifier, path, apply: (doc) => applyAddToSet(doc, path, values) };
    }
    case '$pull':
    case '$pullAll': {
      const matches = parsePull(modifier, arg);
      return { modifier, path, apply: (doc) => applyPull(doc, path, matches) };
    }
    case '$pop': {
      const fromFront = parsePop(path, arg);
      return { modifier, path, apply: (doc) => applyPop(doc, path, fromFront) };
    }
    default:
      throw notImplemented(`The update operator ${modifier}`);
  }
}
