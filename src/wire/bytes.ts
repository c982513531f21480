/**
 * Bounded readers and writers for the pieces every opcode shares: cstrings and BSON
 * documents. Each read takes an explicit `end` so that bytes from the network can never
 * make a decoder read past its own message. Documents stay raw Buffers (views into the
 * frame, no copy); turning them into objects is the caller's business.
 */
import { ErrorCodes, CommandError } from '../errors.js';
import { MAX_BSON_INTERNAL_SIZE } from './constants.js';

export function protocolError(message: string): CommandError {
  return new CommandError(ErrorCodes.ProtocolError, message);
}

function invalidBSON(message: string): CommandError {
  return new CommandError(ErrorCodes.InvalidBSON, message);
}

/** mongod's wording for a document whose length prefix is out of range. */
function badObjectSize(size: number): CommandError {
  const code = size > MAX_BSON_INTERNAL_SIZE ? ErrorCodes.BSONObjectTooLarge : ErrorCodes.InvalidBSON;
  return new CommandError(
    code,
    `BSONObj size: ${size} (0x${(size >>> 0).toString(16).toUpperCase()}) is invalid. ` +
      `Size must be between 0 and ${MAX_BSON_INTERNAL_SIZE}(16MB)`,
  );
}

export interface CStringRead {
  value: string;
  /** Offset just past the terminating NUL. */
  next: number;
}

/** Reads a NUL-terminated UTF-8 string that must end before `end`. */
export function readCString(buf: Buffer, offset: number, end: number, what: string): CStringRead {
  const nul = offset < end ? buf.subarray(offset, end).indexOf(0) : -1;
  if (nul === -1) throw protocolError(`${what} is not NUL-terminated within its section`);
  return { value: buf.toString('utf8', offset, offset + nul), next: offset + nul + 1 };
}

/**
 * Returns a view of the BSON document at `offset`, after checking that its length prefix
 * is sane, that it fits before `end` and that it ends with the NUL terminator. Element
 * contents are not validated here.
 */
export function readDocument(buf: Buffer, offset: number, end: number, what: string): Buffer {
  const room = end - offset;
  if (room < 5) throw invalidBSON(`${what}: ${room} bytes left, a BSON document needs at least 5`);
  const size = buf.readInt32LE(offset);
  if (size < 5 || size > MAX_BSON_INTERNAL_SIZE) throw badObjectSize(size);
  if (size > room) {
    throw invalidBSON(`${what}: document of ${size} bytes overruns its section (${room} left)`);
  }
  if (buf[offset + size - 1] !== 0) throw invalidBSON(`${what}: document does not end with a NUL byte`);
  return buf.subarray(offset, offset + size);
}

/**
 * Checks a document we are about to send: a wrong slice here would produce a frame the
 * peer mis-parses, so fail loudly on our side instead.
 */
export function checkDocument(doc: Buffer, what: string): void {
  if (doc.length < 5 || doc.readInt32LE(0) !== doc.length || doc[doc.length - 1] !== 0) {
    throw invalidBSON(`${what}: buffer of ${doc.length} bytes is not one whole BSON document`);
  }
  if (doc.length > MAX_BSON_INTERNAL_SIZE) throw badObjectSize(doc.length);
}

/** UTF-8 bytes of `value` plus the NUL terminator; a NUL inside would truncate it on the wire. */
export function cstringBytes(value: string, what: string): Buffer {
  if (value.includes('\0')) throw new CommandError(ErrorCodes.BadValue, `${what} contains a NUL byte`);
  const bytes = Buffer.allocUnsafe(Buffer.byteLength(value, 'utf8') + 1);
  const written = bytes.write(value, 0, 'utf8');
  bytes[written] = 0;
  return bytes;
}
