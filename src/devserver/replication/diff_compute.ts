/**
 * The `$v: 2` diff of an update, computed from its pre- and post-image as mongod's
 * src/mongo/db/update/document_diff_calculator.cpp computes it (computeDocDiff,
 * computeArrayDiff), serialized as src/mongo/db/update/document_diff_serialization.cpp
 * writes it:
 *
 *   document: {d: {field: false}, u: {field: value}, i: {field: value}, s<field>: <sub-diff>}
 *             (sections in that order, each only when not empty)
 *   array:    {a: true, l: <new length, when shorter>, u<index>: value, s<index>: <sub-diff>}
 *             (entries by index)
 *
 * Applying it: `u` fields are replaced in place, `d` removed, `i` (re)inserted at the end
 * in order (a field that moved in the post-image is an `i`), `s` recursed into; for an
 * array, `l` truncates, `u<n>` sets (or appends) element n. Pure: no I/O.
 *
 * Unlike mongod, no sub-diff is replaced by a plain `u` when it would be larger than the
 * value: the result is the same document, only sometimes a longer entry.
 */
import type { Document } from '../bson.js';
import { bsonTypeOf } from '../query/bsontype.js';
import { identical } from '../query/values.js';

export type Diff = Document;

function isContainer(pre: unknown, post: unknown): 'object' | 'array' | undefined {
  const type = bsonTypeOf(pre);
  if (type !== bsonTypeOf(post)) return undefined;
  return type === 'object' || type === 'array' ? type : undefined;
}

interface DocDiff {
  deletes: string[];
  updates: Array<[string, unknown]>;
  inserts: Array<[string, unknown]>;
  subDiffs: Array<[string, Diff]>;
}

function childDiff(pre: unknown, post: unknown, kind: 'object' | 'array'): Diff {
  return kind === 'object' ? computeDocumentDiff(pre as Document, post as Document) : computeArrayDiff(pre as unknown[], post as unknown[]);
}

export function computeDocumentDiff(pre: Document, post: Document): Diff {
  const diff: DocDiff = { deletes: [], updates: [], inserts: [], subDiffs: [] };
  const preKeys = Object.keys(pre);
  const postKeys = Object.keys(post);
  const laterDeletes = new Set<string>();
  let p = 0;
  let q = 0;
  while (p < preKeys.length && q < postKeys.length) {
    const preKey = preKeys[p] as string;
    const postKey = postKeys[q] as string;
    if (preKey === postKey) {
      const before = pre[preKey];
      const after = post[postKey];
      if (!identical(before, after)) {
        const kind = isContainer(before, after);
        if (kind !== undefined) diff.subDiffs.push([preKey, childDiff(before, after, kind)]);
        else diff.updates.push([preKey, after]);
      }
      p++;
      q++;
    } else {
      // Gone from the post-image, or moved: a moved field is inserted again below.
      laterDeletes.add(preKey);
      p++;
    }
  }
  for (; p < preKeys.length; p++) diff.deletes.push(preKeys[p] as string);
  for (; q < postKeys.length; q++) {
    const key = postKeys[q] as string;
    diff.inserts.push([key, post[key]]);
    laterDeletes.delete(key);
  }
  // mongod keeps these in a std::set<StringData>: byte order.
  diff.deletes.push(...[...laterDeletes].sort(compareBytes));
  return serializeDocumentDiff(diff);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function serializeDocumentDiff(diff: DocDiff): Diff {
  const out: Diff = {};
  if (diff.deletes.length > 0) out['d'] = Object.fromEntries(diff.deletes.map((k) => [k, false]));
  if (diff.updates.length > 0) out['u'] = Object.fromEntries(diff.updates);
  if (diff.inserts.length > 0) out['i'] = Object.fromEntries(diff.inserts);
  for (const [key, sub] of diff.subDiffs) out[`s${key}`] = sub;
  return out;
}

export function computeArrayDiff(pre: unknown[], post: unknown[]): Diff {
  const out: Diff = { a: true };
  const common = Math.min(pre.length, post.length);
  if (pre.length > post.length) out['l'] = post.length;
  for (let i = 0; i < common; i++) {
    if (identical(pre[i], post[i])) continue;
    const kind = isContainer(pre[i], post[i]);
    if (kind !== undefined) out[`s${i}`] = childDiff(pre[i], post[i], kind);
    else out[`u${i}`] = post[i];
  }
  for (let i = common; i < post.length; i++) out[`u${i}`] = post[i];
  return out;
}

/** The oplog's `o` for an operator update: `{$v: 2, diff}`. */
export function updateDiffObject(pre: Document, post: Document): Document {
  return { $v: 2, diff: computeDocumentDiff(pre, post) };
}
