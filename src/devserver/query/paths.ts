/**
 * Dotted paths over documents, in the two flavours mongod has: the matcher's, which fans out
 * across arrays, and the update system's, which addresses exactly one place.
 */
import { CommandError } from '../../errors.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { isDocumentValue } from './bsontype.js';
import { getField, setField } from './entries.js';
import { formatElement } from './format.js';

type Doc = Record<string, unknown>;

/** What a path step found: a plain value, one element of a leaf array, the leaf array itself, or nothing. */
export type PathHitKind = 'value' | 'element' | 'array' | 'missing';
export type PathVisitor = (value: unknown, kind: PathHitKind) => void;

export function splitPath(path: string): string[] {
  return path.split('.');
}

/** mongod treats an all-digit path component as a possible array index. */
export function arrayIndex(part: string): number | undefined {
  if (!/^\d+$/.test(part)) return undefined;
  const n = Number(part);
  return Number.isSafeInteger(n) ? n : undefined;
}

function visitLeaf(v: unknown, visit: PathVisitor): void {
  if (v === undefined) {
    visit(undefined, 'missing');
  } else if (Array.isArray(v)) {
    // A path ending at an array matches through each element and through the array as a whole.
    for (const e of v) visit(e, 'element');
    visit(v, 'array');
  } else {
    visit(v, 'value');
  }
}

function visitFrom(container: object, parts: readonly string[], start: number, visit: PathVisitor): void {
  let v = getField(container, parts[start] as string);
  let i = start + 1;
  for (;;) {
    if (i === parts.length) return visitLeaf(v, visit);
    if (Array.isArray(v)) return visitArray(v, parts, i, visit);
    if (!isDocumentValue(v)) return visit(undefined, 'missing');
    v = getField(v, parts[i] as string);
    i += 1;
  }
}

/**
 * An array in the middle of a path: every sub-document element continues the path, and an
 * element whose position equals a numeric next component continues past that component.
 * Scalars inside the array contribute nothing (BSONElementIterator skips them).
 */
function visitArray(arr: readonly unknown[], parts: readonly string[], i: number, visit: PathVisitor): void {
  const piece = parts[i] as string;
  const index = arrayIndex(piece);
  arr.forEach((e, k) => {
    if (isDocumentValue(e) && (index === undefined || getField(e, piece) !== undefined)) {
      visitFrom(e, parts, i, visit);
    }
    if (k !== index) return;
    if (i + 1 === parts.length) {
      visit(e, 'value');
    } else if (isDocumentValue(e)) {
      visitFrom(e, parts, i + 1, visit);
    } else if (Array.isArray(e)) {
      visitArray(e, parts, i + 1, visit);
    }
  });
}

/** Walks every value a query on `path` would test, in mongod's order. */
export function walkPath(doc: object, path: string, visit: PathVisitor): void {
  visitFrom(doc, splitPath(path), 0, visit);
}

/**
 * The values a query predicate on `path` is tested against: leaf arrays contribute both their
 * elements and themselves; `undefined` stands for a branch where the path is missing.
 */
export function getPathValues(doc: Doc, path: string): unknown[] {
  const out: unknown[] = [];
  walkPath(doc, path, (v) => out.push(v));
  return out;
}

/** The child `part` names: an array element by its numeric index, or a document field. */
function childOf(container: Doc | unknown[], part: string): unknown {
  if (!Array.isArray(container)) return getField(container, part);
  const index = arrayIndex(part);
  return index === undefined ? undefined : container[index];
}

/** The one value at `path`, indexing arrays by numeric components but never fanning out. */
export function getPath(doc: Doc, path: string): unknown {
  let cur: unknown = doc;
  for (const part of splitPath(path)) {
    if (!Array.isArray(cur) && !isDocumentValue(cur)) return undefined;
    cur = childOf(cur, part);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** mongod refuses to pad an array by more than this many nulls. */
const MAX_ARRAY_PADDING = 1_500_000;

function notViable(part: string, parentName: string, parent: unknown): CommandError {
  return new DevServerError(DevServerCodes.PathNotViable, `Cannot create field '${part}' in element {${formatElement(parentName, parent)}}`);
}

/**
 * Sets `path` to `value` in place, creating missing sub-documents, indexing (and null-padding)
 * arrays by numeric components. Traversing a scalar, or an array by a name, is PathNotViable.
 */
export function setPath(doc: Doc, path: string, value: unknown): void {
  const parts = splitPath(path);
  let cur: Doc | unknown[] = doc;
  let curName = '';
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    let next: unknown;
    if (Array.isArray(cur)) {
      const index = arrayIndex(part);
      if (index === undefined) throw notViable(part, curName, cur);
      if (index > cur.length + MAX_ARRAY_PADDING) {
        throw new DevServerError(DevServerCodes.CannotBackfillArray, `can't backfill more than ${MAX_ARRAY_PADDING} elements`);
      }
      while (cur.length < index) cur.push(null);
      if (last) {
        cur[index] = value;
        return;
      }
      next = cur[index];
      if (next === undefined) {
        next = {};
        cur[index] = next;
      }
    } else {
      if (last) {
        setField(cur, part, value);
        return;
      }
      next = getField(cur, part);
      if (next === undefined) {
        next = {};
        setField(cur, part, next);
      }
    }
    if (!Array.isArray(next) && !isPlainWritable(next)) throw notViable(parts[i + 1] as string, part, next);
    cur = next as Doc | unknown[];
    curName = part;
  });
}

function isPlainWritable(v: unknown): v is Doc {
  return isDocumentValue(v) && (v as { _bsontype?: unknown })._bsontype === undefined;
}

/**
 * Removes `path` in place and reports whether anything was there. An array element is set to
 * null rather than removed (as mongod's $unset does); a path through a scalar is a no-op.
 */
export function unsetPath(doc: Doc, path: string): boolean {
  const parts = splitPath(path);
  let cur: unknown = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    if (!Array.isArray(cur) && !isPlainWritable(cur)) return false;
    cur = childOf(cur, parts[i] as string);
  }
  const lastPart = parts[parts.length - 1] as string;
  if (Array.isArray(cur)) {
    const index = arrayIndex(lastPart);
    if (index === undefined || index >= cur.length) return false;
    cur[index] = null;
    return true;
  }
  if (!isPlainWritable(cur) || getField(cur, lastPart) === undefined) return false;
  delete cur[lastPart];
  return true;
}
