/**
 * A command document as mongod prints it in "not authorized on <db> to execute command
 * { ... }": BSONObj::toString's shell-like form (src/mongo/bson/bsonobj.cpp), with the
 * `$db` field the request carried, and its secret snipped. Values the message needs only
 * to name are shortened.
 */
import { Binary, ObjectId } from 'bson';
import type { Document } from './command_message.js';

function formatValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[ ${value.map(formatValue).join(', ')} ]`;
  if (value instanceof ObjectId) return `ObjectId('${value.toHexString()}')`;
  if (value instanceof Binary) return `BinData(${value.sub_type}, ${Buffer.from(value.buffer).toString('hex').toUpperCase()})`;
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return String(value);
    return formatDocument(value as Document);
  }
  return String(value);
}

function formatDocument(doc: Document): string {
  const entries = Object.entries(doc);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, v]) => `${k}: ${formatValue(v)}`).join(', ')} }`;
}

/**
 * The field each command names as secret (Command::sensitiveFieldName: createUser and
 * updateUser in src/mongo/db/commands/user_management_commands.cpp, saslStart and
 * saslContinue in src/mongo/db/auth/sasl_commands.cpp).
 */
const SENSITIVE_FIELDS: ReadonlyMap<string, string> = new Map([
  ['createUser', 'pwd'],
  ['updateUser', 'pwd'],
  ['saslStart', 'payload'],
  ['saslContinue', 'payload'],
]);

/**
 * The command as mongod prints it, its secret first replaced with "xxx", as mongod's
 * Command::snipForLogging does (src/mongo/db/commands.cpp: every top-level field of
 * that name) before the command reaches a message or a log line.
 */
export function formatCommand(cmd: Document, db: string): string {
  const sensitive = SENSITIVE_FIELDS.get(Object.keys(cmd)[0] ?? '');
  const snipped = sensitive !== undefined && sensitive in cmd ? { ...cmd, [sensitive]: 'xxx' } : cmd;
  return formatDocument('$db' in snipped ? snipped : { ...snipped, $db: db });
}
