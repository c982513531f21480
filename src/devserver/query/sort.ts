/**
 * Sort specifications ({age: -1, name: 1}) compiled to comparators with mongod's semantics:
 * an array sorts by its smallest element ascending and its largest descending, a missing
 * field sorts as null, and an empty array sorts below null.
 */
import { CommandError } from '../../errors.js';
import { bsonTypeOf, isDocumentValue } from './bsontype.js';
import { documentEntries } from './entries.js';
import { validateFieldPath } from './fieldpath.js';
import { numericKind, toJsNumber } from './numeric.js';
import { walkPath } from './paths.js';
import { notImplemented } from './unsupported.js';
import { compareValues, type Document } from './values.js';

export type DocumentComparator = (a: Document, b: Document) => number;

/** The key of an empty array: below null and missing, above MinKey. */
const EMPTY_ARRAY = Symbol('empty array');
type SortKey = unknown;

interface SortField {
  readonly path: string;
  readonly direction: 1 | -1;
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a === EMPTY_ARRAY || b === EMPTY_ARRAY) {
    if (a === b) return 0;
    const other = a === EMPTY_ARRAY ? b : a;
    const emptyFirst = bsonTypeOf(other) === 'minKey' ? 1 : -1;
    return a === EMPTY_ARRAY ? emptyFirst : -emptyFirst;
  }
  return compareValues(a, b);
}

/** The one value a document sorts by on this field: the min (ascending) or max (descending) reached. */
function sortKey(doc: Document, field: SortField): SortKey {
  let best: SortKey;
  let found = false;
  let sawEmptyArray = false;
  walkPath(doc, field.path, (v, kind) => {
    let key: SortKey;
    if (kind === 'array') {
      // The elements stand for a non-empty array; an empty one has a key of its own.
      if ((v as unknown[]).length > 0) return;
      sawEmptyArray = true;
      key = EMPTY_ARRAY;
    } else {
      key = kind === 'missing' ? null : v;
    }
    if (!found || compareKeys(key, best) * field.direction < 0) best = key;
    found = true;
  });
  if (!found) return sawEmptyArray ? EMPTY_ARRAY : null;
  return best;
}

function parseDirection(value: unknown): 1 | -1 {
  if (numericKind(value) === undefined) {
    if (isDocumentValue(value) && documentEntries(value)[0]?.[0] === '$meta') {
      throw notImplemented('Sorting by $meta');
    }
    throw new CommandError(15974, "$sort key ordering must be specified using a number or {$meta: 'textScore'}");
  }
  // mongod reads the number with numberInt(), which truncates: 1.5 sorts ascending.
  const n = Math.trunc(toJsNumber(value));
  if (n !== 1 && n !== -1) {
    throw new CommandError(15975, '$sort key ordering must be 1 (for ascending) or -1 (for descending)');
  }
  return n;
}

export function parseSortSpec(spec: Document): SortField[] {
  if (!isDocumentValue(spec)) throw new CommandError(15973, 'the $sort key specification must be an object');
  return documentEntries(spec).map(([path, value]) => {
    if (path === '$natural') throw notImplemented('Sorting by $natural');
    validateFieldPath(path);
    return { path, direction: parseDirection(value) };
  });
}

/** Compiles a sort specification; an empty one compares everything equal (no sort). */
export function compileSort(spec: Document): DocumentComparator {
  const fields = parseSortSpec(spec);
  const cache = new WeakMap<Document, SortKey[]>();
  const keysOf = (doc: Document): SortKey[] => {
    let keys = cache.get(doc);
    if (keys === undefined) {
      keys = fields.map((f) => sortKey(doc, f));
      cache.set(doc, keys);
    }
    return keys;
  };
  return (a, b) => {
    if (fields.length === 0) return 0;
    const ka = keysOf(a);
    const kb = keysOf(b);
    for (let i = 0; i < fields.length; i++) {
      const c = compareKeys(ka[i], kb[i]) * (fields[i] as SortField).direction;
      if (c !== 0) return c;
    }
    return 0;
  };
}
