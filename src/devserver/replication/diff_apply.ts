/**
 * Applies a `$v: 2` oplog diff (an update entry's `o.diff`) to a document: pure, no
 * storage. The format and every rule here are mongod's:
 *   - reading: src/mongo/db/update/document_diff_serialization.cpp (DocumentDiffReader,
 *     ArrayDiffReader), with its uassert codes and wording;
 *   - applying: src/mongo/db/update/document_diff_applier.cpp (applyDiffToObject,
 *     applyDiffToArray).
 *
 * A document diff has sections in this order, each at most once: `d` (fields to delete,
 * `{f: false}`), `u` (fields to replace in place), `i` (fields to insert at the end), then
 * any number of `s<field>` sub-diffs. An array diff starts with `a: true`, may resize
 * (`l: <int>`), then holds `u<index>` (a new value) and `s<index>` (a sub-diff) entries.
 *
 * Re-applying a diff onto a later state must not fail (oplog application is idempotent):
 * a sub-diff meeting a value of another type leaves null there, and an array shorter
 * than the diff expects is padded with null, as mongod's applier does; a later entry
 * rewrites those values.
 *
 * Section 'b' (binary diffs) is mongod 8's; mongod 7.0, which the dev server claims to
 * be, neither writes nor reads it, so here it is an unexpected section, as it was there.
 */
import { setField } from '../query/entries.js';
import type { Document } from '../bson.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

type Value = unknown;

/** Section letters of a document diff, in the order they must appear (the reader's `order`). */
const SECTION_ORDER: Readonly<Record<string, number>> = { d: 1, u: 2, i: 3, s: 5 };

function fail(code: number, message: string): never {
  throw new DevServerError(code, message);
}

/** A plain BSON sub-document as bson decodes it (not an array, not a BSON value class). */
export function isPlainDocument(value: Value): value is Document {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  if ('_bsontype' in (value as object)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function typeName(value: Value): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return (value as { _bsontype?: string })._bsontype ?? 'object';
  return typeof value;
}

interface DocumentDiff {
  kind: 'document';
  deletes: string[];
  updates: Array<[string, Value]>;
  inserts: Array<[string, Value]>;
  subDiffs: Array<[string, Diff]>;
}

interface ArrayDiff {
  kind: 'array';
  newSize: number | undefined;
  /** Ascending indexes, as mongod writes them. */
  entries: Array<[number, { update: Value } | { sub: Diff }]>;
}

type Diff = DocumentDiff | ArrayDiff;

function readDiff(diff: Document): Diff {
  const keys = Object.keys(diff);
  if (keys.length === 0) fail(DevServerCodes.DiffEmpty, 'Expected diff to be non-empty');
  return keys[0] === 'a' ? readArrayDiff(diff) : readDocumentDiff(diff);
}

function sectionObject(name: string, value: Value): Document {
  if (!isPlainDocument(value)) fail(DevServerCodes.DiffSectionType, `Expected ${name} section to be type object`);
  return value;
}

function readDocumentDiff(diff: Document): DocumentDiff {
  const out: DocumentDiff = { kind: 'document', deletes: [], updates: [], inserts: [], subDiffs: [] };
  let previous = 0;
  for (const [name, value] of Object.entries(diff)) {
    if (name.length === 0) fail(DevServerCodes.DiffSectionNameEmpty, 'Expected sections field names in diff to be non-empty ');
    const letter = name[0] as string;
    const order = SECTION_ORDER[letter];
    if (previous === SECTION_ORDER['s']) {
      // Once the sub-diffs start, only sub-diffs may follow (DocumentDiffReader::nextSubDiff).
      if (letter !== 's') fail(DevServerCodes.DiffSectionAfterSubDiffs, `Did not expect more sections in diff but found one: ${name}`);
      if (!isPlainDocument(value)) fail(DevServerCodes.DiffSubDiffNotObject, `Subdiffs should be objects, got ${name}: ${typeName(value)}`);
      out.subDiffs.push([name.slice(1), readDiff(value)]);
      continue;
    }
    if (order === undefined || order <= previous) fail(DevServerCodes.DiffUnexpectedSection, `Unexpected section: ${letter} in document diff`);
    const section = sectionObject(letter, value);
    previous = order;
    if (letter === 'd') out.deletes.push(...Object.keys(section));
    else if (letter === 'u') out.updates.push(...Object.entries(section));
    else if (letter === 'i') out.inserts.push(...Object.entries(section));
    else out.subDiffs.push([name.slice(1), readDiff(section)]);
  }
  return out;
}

function readArrayDiff(diff: Document): ArrayDiff {
  const entries = Object.entries(diff);
  const [header, flag] = entries[0] as [string, Value];
  if (header !== 'a') fail(DevServerCodes.DiffArrayHeaderMissing, `Expected first field to be array header a but found ${header}`);
  if (typeof flag !== 'boolean') fail(DevServerCodes.DiffArrayHeaderNotBool, `Expected array header to be bool but got a: ${typeName(flag)}`);
  if (!flag) fail(DevServerCodes.DiffArrayHeaderNotTrue, 'Expected array header to be value true but got a: false');
  const out: ArrayDiff = { kind: 'array', newSize: undefined, entries: [] };
  let rest = entries.slice(1);
  if (rest[0]?.[0] === 'l') {
    const size = rest[0][1];
    if (!isInt32(size)) fail(DevServerCodes.DiffSectionType, 'Expected l section to be type int');
    out.newSize = Number((size as { valueOf(): number }).valueOf());
    rest = rest.slice(1);
  }
  for (const [name, value] of rest) {
    if (name.length <= 1) fail(DevServerCodes.DiffArrayEntryNameTooShort, `expected field name to be at least two characters long, but found: ${name}`);
    const digits = name.slice(1);
    if (!/^[0-9]+$/.test(digits)) fail(DevServerCodes.DiffArrayIndexNotInteger, `Expected integer but got ${digits}`);
    const index = Number(digits);
    if (name[0] === 'u') out.entries.push([index, { update: value }]);
    else if (name[0] === 's') {
      if (!isPlainDocument(value)) fail(DevServerCodes.DiffArraySubDiffNotObject, `expected sub diff at index ${index} but got ${name}: ${typeName(value)}`);
      out.entries.push([index, { sub: readDiff(value) }]);
    } else {
      fail(DevServerCodes.DiffArrayBadEntry, `Expected either 'u' (update) or 's' (sub diff) at index ${index} but got ${name}`);
    }
  }
  return out;
}

function isInt32(value: Value): boolean {
  return value !== null && typeof value === 'object' && (value as { _bsontype?: string })._bsontype === 'Int32';
}

function applyToDocument(pre: Document, diff: DocumentDiff): Document {
  const mods = new Map<string, { kind: 'delete' } | { kind: 'update'; value: Value } | { kind: 'insert' } | { kind: 'sub'; diff: Diff }>();
  const put = (name: string, mod: Parameters<typeof mods.set>[1]): void => {
    if (mods.has(name)) fail(DevServerCodes.DiffDuplicateField, `duplicate field name in diff: ${name}`);
    mods.set(name, mod);
  };
  for (const name of diff.deletes) put(name, { kind: 'delete' });
  for (const [name, value] of diff.updates) put(name, { kind: 'update', value });
  for (const [name] of diff.inserts) put(name, { kind: 'insert' });
  for (const [name, sub] of diff.subDiffs) put(name, { kind: 'sub', diff: sub });

  const out: Document = {};
  const updatedInPlace = new Set<string>();
  for (const [name, value] of Object.entries(pre)) {
    const mod = mods.get(name);
    if (mod === undefined) {
      setField(out, name, value);
    } else if (mod.kind === 'update') {
      setField(out, name, mod.value);
      updatedInPlace.add(name);
    } else if (mod.kind === 'sub') {
      setField(out, name, applySubDiff(value, mod.diff));
    }
    // delete: dropped; insert: the pre-image's value is dropped, the new one goes at the end.
  }
  // Updates of fields the pre-image lacks, then inserts, at the end in the diff's order.
  for (const [name, value] of [...diff.updates, ...diff.inserts]) {
    if (!updatedInPlace.has(name)) setField(out, name, value);
  }
  return out;
}

/** A sub-diff over a value of the type it expects; anything else becomes null (a later entry rewrites it). */
function applySubDiff(value: Value, diff: Diff): Value {
  if (diff.kind === 'document' && isPlainDocument(value)) return applyToDocument(value, diff);
  if (diff.kind === 'array' && Array.isArray(value)) return applyToArray(value, diff);
  return null;
}

function applyToArray(pre: Value[], diff: ArrayDiff): Value[] {
  const out: Value[] = [];
  const byIndex = new Map(diff.entries);
  const end = diff.newSize ?? Math.max(pre.length, ...diff.entries.map(([index]) => index + 1));
  for (let index = 0; index < end; index += 1) {
    const mod = byIndex.get(index);
    const present = index < pre.length;
    if (mod === undefined) {
      // Beyond the pre-image, and not in the diff: padded with null.
      out.push(present ? pre[index] : null);
    } else if ('update' in mod) {
      out.push(mod.update);
    } else {
      out.push(present ? applySubDiff(pre[index], mod.sub) : null);
    }
  }
  return out;
}

/**
 * The document `diff` turns `pre` into. Throws mongod's errors (Location47705xx,
 * 4728000) for a malformed diff; `pre` itself is never modified.
 */
export function applyDiff(pre: Document, diff: Document): Document {
  // The top level is always a document diff (doc_diff::applyDiff reads it with DocumentDiffReader).
  if (Object.keys(diff).length === 0) fail(DevServerCodes.DiffEmpty, 'Expected diff to be non-empty');
  return applyToDocument(pre, readDocumentDiff(diff));
}
