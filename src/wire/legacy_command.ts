/**
 * The two rules that make a legacy OP_QUERY a command, shared by the proxy's peek (which
 * reads raw bytes), the decoder and the handshake rewrite (which read documents), so
 * that what the proxy claims is exactly what it then decodes and answers.
 */
import type { Document } from './command_message.js';

/** BSON type byte of an embedded document. */
export const BSON_EMBEDDED_DOCUMENT = 0x03;

/**
 * The database of a command namespace, `<db>.$cmd` exactly, or undefined for anything
 * else. mongod's NamespaceString splits at the FIRST dot and `isCommand()` wants the
 * collection part to be `$cmd`: `admin.foo.$cmd` is a query on collection `foo.$cmd`.
 */
export function commandNamespaceDb(namespace: string): string | undefined {
  const dot = namespace.indexOf('.');
  if (dot === -1 || namespace.slice(dot + 1) !== '$cmd') return undefined;
  return namespace.slice(0, dot);
}

/**
 * Old drivers wrap an OP_QUERY command as `{$query: {...}, $readPreference: ...}`, or
 * `{query: {...}}`. mongod's upconvertRequest (src/mongo/rpc/metadata.cpp, up to 5.0:
 * `firstFieldName == "$query" || firstFieldName == "query"`) unwraps only a FIRST field of
 * either spelling, holding a document. A `query` field further down is a command argument
 * (count's filter), never a wrapper.
 */
export const LEGACY_WRAPPER_FIELDS: ReadonlySet<string> = new Set(['$query', 'query']);

/** A decoded sub-document: not an array and not a BSON value class (Int32, Long, ObjectId...). */
function isEmbeddedDocument(value: unknown): value is Document {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !('_bsontype' in value);
}

/** The command inside a legacy wrapper (the same object, not a copy), or undefined if `query` is not wrapped. */
export function wrappedCommand(query: Document): Document | undefined {
  for (const first in query) {
    if (!LEGACY_WRAPPER_FIELDS.has(first)) return undefined;
    const inner = query[first];
    return isEmbeddedDocument(inner) ? inner : undefined;
  }
  return undefined;
}

/** The command a legacy query carries, with the wrapper's `$readPreference` carried over as mongod does. */
export function unwrapLegacyCommand(query: Document): Document {
  const inner = wrappedCommand(query);
  if (inner === undefined) return query;
  const readPreference = query['$readPreference'];
  return readPreference === undefined ? inner : { ...inner, $readPreference: readPreference };
}
