/**
 * Update documents compiled to appliers: the `$`-modifier form and whole-document replacement.
 * Parsing mirrors mongod's UpdateDriver (unknown modifiers, conflicting paths, immutable _id);
 * modifiers apply in mongod's field order, so created fields appear where mongod puts them.
 */
import { Double } from 'bson';
import { ErrorCodes, CommandError } from '../../errors.js';
import { bsonTypeOf, isDocumentValue } from './bsontype.js';
import { documentEntries, fromEntries, getField } from './entries.js';
import { formatElement } from './format.js';
import { arrayIndex, getPath, setPath, unsetPath } from './paths.js';
import { MODIFIERS, parseFieldOp, type ApplyContext, type UpdateOp } from './update_ops.js';
import { notImplemented } from './unsupported.js';
import { cloneDocument, compareStrings, identical, valuesEqual, type Document } from './values.js';

export { upsertSeed } from './upsert_seed.js';

export interface UpdateContext {
  /** True while building the document an upsert inserts: $setOnInsert applies and _id may be set. */
  readonly isInsert?: boolean;
  /** The clock for $currentDate (defaults to now). */
  readonly now?: Date;
}

export interface UpdateResult {
  /** The updated document, or the input itself when nothing changed. */
  readonly doc: Document;
  /** mongod's nModified: false when the update changed nothing. */
  readonly modified: boolean;
}

export interface CompiledUpdate {
  readonly isReplacement: boolean;
  apply(doc: Document, ctx?: UpdateContext): UpdateResult;
}

/** Modifiers that never create a field, so a top-level `$name` path cannot produce a bad document. */
const NON_CREATING = new Set(['$unset', '$pull', '$pullAll', '$pop']);

function dollarFieldError(name: string): CommandError {
  return new CommandError(
    ErrorCodes.DollarPrefixedFieldName,
    `The dollar ($) prefixed field '${name}' in '${name}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.`,
  );
}

function validateUpdatePath(path: string, modifier: string): string[] {
  if (path === '') throw new CommandError(ErrorCodes.EmptyFieldName, 'An empty update path is not valid.');
  const parts = path.split('.');
  if (parts.some((p) => p === '')) {
    throw new CommandError(
      ErrorCodes.EmptyFieldName,
      `The update path '${path}' contains an empty field name, which is not allowed.`,
    );
  }
  if (parts.some((p) => p === '$' || /^\$\[.*\]$/.test(p))) {
    throw notImplemented(`The positional update operators ($, $[], $[<id>]) in path '${path}'`);
  }
  const first = parts[0] as string;
  if (first.startsWith('$') && !NON_CREATING.has(modifier)) throw dollarFieldError(first);
  return parts;
}

interface ConflictNode {
  leaf: boolean;
  readonly children: Map<string, ConflictNode>;
}

/** UpdateObjectNode::parseAndMerge's bookkeeping: no path may be updated twice, or inside another. */
function register(root: ConflictNode, path: string, parts: readonly string[]): void {
  const conflict = (at: string): CommandError =>
    new CommandError(
      ErrorCodes.ConflictingUpdateOperators,
      `Updating the path '${path}' would create a conflict at '${at}'`,
    );
  let cur = root;
  parts.forEach((part, i) => {
    const child = cur.children.get(part);
    if (i === parts.length - 1) {
      if (child !== undefined) throw conflict(path);
      cur.children.set(part, { leaf: true, children: new Map() });
      return;
    }
    if (child?.leaf === true) throw conflict(parts.slice(0, i + 1).join('.'));
    const next = child ?? { leaf: false, children: new Map() };
    cur.children.set(part, next);
    cur = next;
  });
}

/** mongod orders update fields by name, except that numeric names compare as numbers. */
function comparePathParts(a: string, b: string): number {
  if (a.length !== b.length && arrayIndex(a) !== undefined && arrayIndex(b) !== undefined) {
    return a.length - b.length;
  }
  return compareStrings(a, b);
}

function comparePaths(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = comparePathParts(pa[i] as string, pb[i] as string);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

function idForMessage(doc: Document): string {
  const id = getField(doc, '_id');
  return id === undefined ? 'no id' : formatElement('_id', id);
}

function renameOp(from: string, to: string): UpdateOp {
  return {
    modifier: '$rename',
    path: to,
    alsoTouches: from,
    apply(doc) {
      const parts = from.split('.');
      let parent: unknown = doc;
      for (let i = 0; i < parts.length - 1; i++) {
        const next: unknown = getField(parent as object, parts[i] as string);
        if (next === undefined) return false;
        if (Array.isArray(next)) {
          throw new CommandError(
            ErrorCodes.BadValue,
            `The source field cannot be an array element, '${from}' in doc with ${idForMessage(doc)} has an array field called '${parts[i]}'`,
          );
        }
        if (!isDocumentValue(next)) {
          throw new CommandError(
            ErrorCodes.PathNotViable,
            `cannot use the part (${parts[i + 1]} of ${from}) to traverse the element ({${formatElement(parts[i] as string, next)}})`,
          );
        }
        parent = next;
      }
      const value = getField(parent as object, parts[parts.length - 1] as string);
      if (value === undefined) return false;
      const toParts = to.split('.');
      for (let i = 1; i < toParts.length; i++) {
        const prefix = toParts.slice(0, i).join('.');
        if (Array.isArray(getPath(doc, prefix))) {
          throw new CommandError(
            ErrorCodes.BadValue,
            `The destination field cannot be an array element, '${to}' in doc with ${idForMessage(doc)} has an array field called '${toParts[i - 1]}'`,
          );
        }
      }
      setPath(doc, to, value);
      unsetPath(doc, from);
      return true;
    },
  };
}

function parseRename(root: ConflictNode, from: string, arg: unknown): UpdateOp {
  register(root, from, validateUpdatePath(from, '$rename'));
  if (typeof arg !== 'string') {
    throw new CommandError(ErrorCodes.BadValue, `The 'to' field for $rename must be a string: ${formatElement(from, arg)}`);
  }
  const toParts = validateUpdatePath(arg, '$rename');
  if (arg === from) {
    throw new CommandError(ErrorCodes.BadValue, `The source and target field for $rename must differ: ${formatElement(from, arg)}`);
  }
  if (arg.startsWith(`${from}.`) || from.startsWith(`${arg}.`)) {
    throw new CommandError(
      ErrorCodes.BadValue,
      `The source and target field for $rename must not be on the same path: ${formatElement(from, arg)}`,
    );
  }
  register(root, arg, toParts);
  return renameOp(from, arg);
}

function touchesId(path: string | undefined): path is string {
  return path !== undefined && (path === '_id' || path.startsWith('_id.'));
}

function validateIdValue(doc: Document): void {
  const t = bsonTypeOf(getField(doc, '_id'));
  if (t === 'array' || t === 'regex' || t === 'undefined') {
    throw new CommandError(ErrorCodes.InvalidIdField, `The '_id' value cannot be of type ${t}`);
  }
}

function compileModifiers(entries: ReadonlyArray<[string, unknown]>): CompiledUpdate {
  const root: ConflictNode = { leaf: false, children: new Map() };
  const ops: UpdateOp[] = [];
  for (const [modifier, fields] of entries) {
    if (!MODIFIERS.has(modifier)) {
      throw new CommandError(
        ErrorCodes.FailedToParse,
        `Unknown modifier: ${modifier}. Expected a valid update modifier or pipeline-style update specified as an array`,
      );
    }
    if (!isDocumentValue(fields)) {
      throw new CommandError(
        ErrorCodes.FailedToParse,
        `Modifiers operate on fields but we found type ${bsonTypeOf(fields)} instead. For example: {$mod: {<field>: ...}} not {${formatElement(modifier, fields)}}`,
      );
    }
    for (const [path, arg] of documentEntries(fields)) {
      if (modifier === '$rename') {
        ops.push(parseRename(root, path, arg));
        continue;
      }
      register(root, path, validateUpdatePath(path, modifier));
      // A JS number stands for a double; keep it one when it lands in the document.
      ops.push(parseFieldOp(modifier, path, typeof arg === 'number' ? new Double(arg) : arg));
    }
  }
  ops.sort((a, b) => comparePaths(a.path, b.path));
  return {
    isReplacement: false,
    apply(doc, ctx = {}) {
      const working = cloneDocument(doc);
      const applyCtx: ApplyContext = { isInsert: ctx.isInsert === true, now: ctx.now ?? new Date() };
      let modified = false;
      for (const op of ops) {
        if (!op.apply(working, applyCtx)) continue;
        modified = true;
        if (applyCtx.isInsert) continue;
        for (const touched of [op.path, op.alsoTouches]) {
          if (touchesId(touched)) {
            throw new CommandError(
              ErrorCodes.ImmutableField,
              `Performing an update on the path '${touched}' would modify the immutable field '_id'`,
            );
          }
        }
      }
      if (!modified) return { doc, modified: false };
      validateIdValue(working);
      return { doc: working, modified: true };
    },
  };
}

function compileReplacement(replacement: Document): CompiledUpdate {
  for (const [name] of documentEntries(replacement)) {
    if (name.startsWith('$')) throw dollarFieldError(name);
  }
  validateIdValue(replacement);
  const newId = getField(replacement, '_id');
  return {
    isReplacement: true,
    apply(doc, ctx = {}) {
      const oldId = getField(doc, '_id');
      if (ctx.isInsert !== true && oldId !== undefined && newId !== undefined && !valuesEqual(oldId, newId)) {
        throw new CommandError(
          ErrorCodes.ImmutableField,
          `After applying the update, the (immutable) field '_id' was found to have been altered to ${formatElement('_id', newId)}`,
        );
      }
      const copy = cloneDocument(replacement);
      // The original _id survives a replacement that does not name one, and stays first.
      const next = newId === undefined && oldId !== undefined ? fromEntries([['_id', oldId], ...documentEntries(copy)]) : copy;
      if (identical(next, doc)) return { doc, modified: false };
      return { doc: next, modified: true };
    },
  };
}

/**
 * Compiles an update. A document whose first field starts with `$` is a modifier update;
 * any other document (including `{}`) replaces the matched document. Arrays are
 * pipeline-style updates, which this server does not run.
 */
export function compileUpdate(update: Document | Document[]): CompiledUpdate {
  if (Array.isArray(update)) throw notImplemented('Pipeline-style updates (an update given as an array)');
  if (!isDocumentValue(update)) {
    throw new CommandError(ErrorCodes.FailedToParse, 'Update argument must be either an object or an array');
  }
  const entries = documentEntries(update);
  const first = entries[0];
  if (first === undefined || !first[0].startsWith('$')) return compileReplacement(update);
  return compileModifiers(entries);
}
