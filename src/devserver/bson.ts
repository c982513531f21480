/**
 * How the dev server reads and writes BSON. Values are deserialized with
 * `promoteValues: false` so that Int32, Double, Long and Decimal128 keep their
 * BSON types through a read-modify-write: `{a: 1.0}` stays a double, as in mongod.
 */
import { deserialize, serialize, type Document as BsonDocument } from 'bson';

export type Document = Record<string, unknown>;

export function decodeDocument(bytes: Buffer | Uint8Array): Document {
  return deserialize(bytes, { promoteValues: false, promoteBuffers: false }) as Document;
}

export function encodeDocument(doc: Document): Buffer {
  return Buffer.from(serialize(doc as BsonDocument, { ignoreUndefined: false }));
}

/** The first key of a command document is the command's name. */
export function commandName(cmd: Document): string {
  for (const key in cmd) return key;
  return '';
}
