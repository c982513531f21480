/**
 * Finds out which command a message carries without decoding it, so the proxy can
 * forward everything it does not intercept byte for byte. Reads only the first element
 * name of the command document and its `$db`, walking element headers.
 */
import { HEADER_SIZE, OpCode, OpMsgFlag } from './constants.js';
import { type ElementRef, stringValue, walkTopLevel } from './bson_walk.js';
import { readOpCompressedHeader, decompressBody } from './compression.js';
import { BSON_EMBEDDED_DOCUMENT, LEGACY_WRAPPER_FIELDS, commandNamespaceDb } from './legacy_command.js';

export interface PeekedCommand {
  /** The opcode of the command message itself (the original one if it came compressed). */
  opCode: OpCode;
  commandName: string;
  /** The BSON type byte of the command's first value: a number for `{aggregate: 1}`, a string for `{aggregate: "coll"}`. */
  argumentType: number;
  db: string;
  /** Set when the message arrived as OP_COMPRESSED; replies should use the same compressor. */
  compressorId?: number;
  /** Present (true) when an OP_MSG had moreToCome: the client expects no reply. */
  moreToCome?: true;
}

/**
 * What the proxy learns from one client message:
 * - `command`: a well-formed command, named;
 * - `unknown`: anything else (replies, legacy queries on collections, OP_MSG without
 *   `$db`, garbage). It cannot be one of ours: mongod answers it;
 * - `undecodable`: an OP_COMPRESSED command whose payload cannot be decompressed
 *   (an unknown compressor, corrupt data, a size that does not match). It could be
 *   one of ours, so it must not be forwarded blindly.
 */
export type RequestPeek =
  | { kind: 'command'; command: PeekedCommand; decompressed?: Buffer }
  | { kind: 'unknown' }
  | { kind: 'undecodable'; error: unknown };

const UNKNOWN: RequestPeek = Object.freeze({ kind: 'unknown' });

/**
 * Classifies one whole client message. Never throws. For an OP_COMPRESSED command,
 * `decompressed` is its body (the message minus its 16-byte header), inflated once
 * here and never copied: hand it to `decodeRequest` rather than inflating again.
 */
export function peekRequest(frame: Buffer): RequestPeek {
  if (frame.length < HEADER_SIZE || frame.readInt32LE(0) !== frame.length) return UNKNOWN;
  let opCode = frame.readInt32LE(12);
  let bytes = frame;
  let base = HEADER_SIZE;
  let compressorId: number | undefined;
  if (opCode === OpCode.Compressed) {
    try {
      const header = readOpCompressedHeader(frame);
      // Only OP_MSG and OP_QUERY carry commands; mongod refuses the rest after inflating.
      if (header.originalOpcode !== OpCode.Msg && header.originalOpcode !== OpCode.Query) return UNKNOWN;
      compressorId = header.compressorId;
      opCode = header.originalOpcode;
      bytes = decompressBody(frame, header);
      base = 0;
    } catch (error) {
      return { kind: 'undecodable', error };
    }
  }
  let command: PeekedCommand | undefined;
  try {
    if (opCode === OpCode.Msg) command = peekOpMsg(bytes, base);
    else if (opCode === OpCode.Query) command = peekOpQuery(bytes, base);
  } catch {
    // A malformed message: not ours to judge, mongod answers it.
    return UNKNOWN;
  }
  if (command === undefined) return UNKNOWN;
  if (compressorId === undefined) return { kind: 'command', command };
  return { kind: 'command', command: { ...command, compressorId }, decompressed: bytes };
}

/*
 * The readers below take the message's bytes after its 16-byte header, from `base`:
 * HEADER_SIZE in a whole frame, 0 in a decompressed body.
 */

function peekOpMsg(bytes: Buffer, base: number): PeekedCommand | undefined {
  if (bytes.length < base + 4) return undefined;
  const flags = bytes.readUInt32LE(base);
  const end = bytes.length - (flags & OpMsgFlag.ChecksumPresent ? 4 : 0);
  let offset = base + 4;
  // Skip kind-1 sections (they may come first) until the kind-0 body.
  while (offset < end) {
    const kind = bytes[offset];
    if (offset + 5 > end) return undefined;
    const size = bytes.readInt32LE(offset + 1);
    if (kind === 0) {
      if (size < 5 || size > end - offset - 1) return undefined;
      const command = commandIn(bytes.subarray(offset + 1, offset + 1 + size), OpCode.Msg);
      return command && ((flags & OpMsgFlag.MoreToCome) === 0 ? command : { ...command, moreToCome: true });
    }
    if (kind !== 1 || size < 5 || size > end - offset - 1) return undefined;
    offset += 1 + size;
  }
  return undefined;
}

/** First element name and `$db` of an OP_MSG body. */
function commandIn(body: Buffer, opCode: OpCode): PeekedCommand | undefined {
  let commandName: string | undefined;
  let argumentType = 0;
  let db: string | undefined;
  const ok = walkTopLevel(body, (element) => {
    if (commandName === undefined) {
      commandName = element.name;
      argumentType = element.type;
    }
    if (element.name === '$db') {
      db = stringValue(body, element);
      return true;
    }
    return false;
  });
  if (!ok || commandName === undefined || db === undefined) return undefined;
  return { opCode, commandName, argumentType, db };
}

function peekOpQuery(bytes: Buffer, base: number): PeekedCommand | undefined {
  const nameStart = base + 4;
  const nul = bytes.subarray(nameStart).indexOf(0);
  if (nul === -1) return undefined;
  const db = commandNamespaceDb(bytes.toString('utf8', nameStart, nameStart + nul));
  if (db === undefined) return undefined;
  const queryStart = nameStart + nul + 1 + 8;
  if (queryStart + 5 > bytes.length) return undefined;
  const size = bytes.readInt32LE(queryStart);
  if (size < 5 || size > bytes.length - queryStart) return undefined;
  let query = bytes.subarray(queryStart, queryStart + size);

  let first: ElementRef | undefined;
  if (!walkTopLevel(query, (element) => ((first = element), true)) || !first) return undefined;
  // A command wrapped as {$query: {...}, $readPreference: ...} is the inner document
  // (the rule is LEGACY_WRAPPER_FIELDS', see command_namespace.ts).
  if (LEGACY_WRAPPER_FIELDS.has(first.name)) {
    if (first.type !== BSON_EMBEDDED_DOCUMENT) return undefined;
    query = query.subarray(first.valueStart, first.valueEnd);
    first = undefined;
    if (!walkTopLevel(query, (element) => ((first = element), true)) || !first) return undefined;
  }
  return { opCode: OpCode.Query, commandName: first.name, argumentType: first.type, db };
}
