/**
 * Field access on sub-documents. `bson` decodes a `{$ref, $id}` sub-document into a DBRef
 * instance; mongod sees an ordinary sub-document, so reads go through here to see it that way.
 */

interface DBRefLike {
  readonly _bsontype: 'DBRef';
  readonly collection: string;
  readonly oid: unknown;
  readonly db?: string;
  readonly fields?: Record<string, unknown>;
}

function isDBRef(v: object): v is DBRefLike {
  return (v as { _bsontype?: unknown })._bsontype === 'DBRef';
}

/** The (name, value) pairs of a sub-document, in stored order. */
export function documentEntries(obj: object): Array<[string, unknown]> {
  if (isDBRef(obj)) {
    const out: Array<[string, unknown]> = [
      ['$ref', obj.collection],
      ['$id', obj.oid],
    ];
    if (obj.db !== undefined && obj.db !== '') out.push(['$db', obj.db]);
    for (const [k, v] of Object.entries(obj.fields ?? {})) out.push([k, v]);
    return out;
  }
  return Object.entries(obj);
}

/** One field of a sub-document, or undefined when absent (never an inherited property). */
export function getField(obj: object, name: string): unknown {
  if (isDBRef(obj)) {
    for (const [k, v] of documentEntries(obj)) if (k === name) return v;
    return undefined;
  }
  return Object.prototype.hasOwnProperty.call(obj, name) ? (obj as Record<string, unknown>)[name] : undefined;
}

export function hasField(obj: object, name: string): boolean {
  return getField(obj, name) !== undefined;
}

/** Sets an own property, even one named `__proto__`, without touching the prototype chain. */
export function setField(obj: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__' || !Object.prototype.hasOwnProperty.call(obj, name)) {
    Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[name] = value;
  }
}

/** A fresh plain object holding the given pairs, in order. */
export function fromEntries(entries: Iterable<readonly [string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) setField(out, k, v);
  return out;
}
