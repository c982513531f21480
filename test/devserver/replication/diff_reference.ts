/**
 * A reference applier of `$v: 2` diffs, written from mongod's
 * src/mongo/db/update/document_diff_applier.cpp, for the property tests of
 * diff_compute.ts only: fields in `u` and `s` stay in place, `d` go, `i` are appended
 * in order; arrays are truncated to `l`, then `u<n>` set and `s<n>` recursed.
 */
type Doc = Record<string, unknown>;

function isPlain(v: unknown): v is Doc {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && (v as { _bsontype?: unknown })._bsontype === undefined;
}

export function applyDocumentDiff(pre: Doc, diff: Doc): Doc {
  const deletes = (diff['d'] ?? {}) as Doc;
  const updates = (diff['u'] ?? {}) as Doc;
  const inserts = (diff['i'] ?? {}) as Doc;
  const out: Doc = {};
  for (const [key, value] of Object.entries(pre)) {
    if (key in deletes || key in inserts) continue;
    if (key in updates) out[key] = updates[key];
    else if (`s${key}` in diff) out[key] = applySub(value, diff[`s${key}`] as Doc);
    else out[key] = value;
  }
  for (const [key, value] of Object.entries(inserts)) out[key] = value;
  return out;
}

function applySub(value: unknown, diff: Doc): unknown {
  if (diff['a'] === true) return applyArrayDiff(value as unknown[], diff);
  if (!isPlain(value)) throw new Error('sub-diff on a non-document');
  return applyDocumentDiff(value, diff);
}

export function applyArrayDiff(pre: unknown[], diff: Doc): unknown[] {
  const out = typeof diff['l'] === 'number' ? pre.slice(0, diff['l']) : [...pre];
  for (const [key, value] of Object.entries(diff)) {
    const match = /^([us])(\d+)$/.exec(key);
    if (match === null) continue;
    const index = Number(match[2]);
    while (out.length < index) out.push(null);
    out[index] = match[1] === 'u' ? value : applySub(out[index], value as Doc);
  }
  return out;
}
