/**
 * Logical sessions, as far as cursors care: which session a command ran in, and how
 * mongod prints a session id in its error messages.
 *
 * mongod parses `lsid` into a LogicalSessionId `{id: UUID, uid: sha256 of the user}`
 * (src/mongo/db/session/logical_session_id.idl). Without authentication every session
 * has the uid of the empty user, so the UUID alone tells sessions apart here.
 */
import { createHash } from 'node:crypto';
import { Binary } from 'bson';
import type { Document } from './bson.js';
import { CommandError, ErrorCodes } from '../errors.js';

/** A session's UUID in canonical text form, e.g. `2926eea5-9775-41a3-a563-096969f1c7d5`. */
export type SessionId = string;

/** BSON's UUID subtype. */
const UUID_SUBTYPE = 4;

/** mongod's IDL error for a required field that is absent. */
const IDL_MISSING_FIELD = 40414;

/** The uid mongod gives every session when auth is off: sha256 of the empty user name. */
const UNAUTHENTICATED_UID = createHash('sha256').update('').digest('base64');

function uuidText(value: unknown, field: string): SessionId {
  if (!(value instanceof Binary)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${field}' is the wrong type, expected type 'binData'`);
  }
  if (value.sub_type !== UUID_SUBTYPE || value.position !== 16) {
    throw new CommandError(ErrorCodes.BadValue, `BSON field '${field}' must be a UUID (binData subtype 4, 16 bytes)`);
  }
  const hex = Buffer.from(value.buffer.subarray(0, 16)).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The session a command runs in, from its `lsid`; undefined for a command outside any session. */
export function sessionIdOf(cmd: Document): SessionId | undefined {
  const lsid = cmd['lsid'];
  if (lsid === undefined) return undefined;
  if (lsid === null || typeof lsid !== 'object' || Array.isArray(lsid) || lsid instanceof Binary) {
    throw new CommandError(ErrorCodes.TypeMismatch, "BSON field 'OperationSessionInfo.lsid' is the wrong type, expected type 'object'");
  }
  const id = (lsid as Document)['id'];
  if (id === undefined) {
    throw new CommandError(IDL_MISSING_FIELD, "BSON field 'OperationSessionInfo.lsid.id' is missing but a required field");
  }
  return uuidText(id, 'OperationSessionInfo.lsid.id');
}

/** The session ids of `killSessions: [{id: UUID}, ...]` (KillSessionsCmdFromClient in kill_sessions.idl). */
export function sessionIdsToKill(value: unknown, command: string): SessionId[] {
  if (!Array.isArray(value)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${command}' is the wrong type, expected type 'array'`);
  }
  return value.map((entry: unknown) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${command}' must hold objects like {id: UUID}`);
    }
    const id = (entry as Document)['id'];
    if (id === undefined) throw new CommandError(IDL_MISSING_FIELD, `BSON field '${command}.id' is missing but a required field`);
    return uuidText(id, `${command}.id`);
  });
}

/**
 * A LogicalSessionId as mongod streams it into messages: `id - uid - txnNumber - txnUUID`
 * (the last two empty for a parent session), e.g. FerretDB's capture of mongod's 50738:
 * "created in session 2926eea5-… - 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= -  - ".
 */
export function describeSession(id: SessionId): string {
  return `${id} - ${UNAUTHENTICATED_UID} -  - `;
}
