/**
 * Finds out which command a message carries without decoding it, so the proxy can
 * forward everything it does not intercept byte for byte. Reads only the first element
 * name of the command document and its `$db`, walking element headers.
 */
import { HEADER_SIZE, OpCode, OpMsgFlag } from './constants.js';
import { type ElementRef, stringValue, walkTopLevel } from './bson_walk.js';
import { readOpCompressedHeader, decodeOpCompressed } from './compression.js';

export interface PeekedCommand {
  /** The opcode of the command message itself (the original one if it came compressed). */
  opCode: OpCode;
  commandName: string;
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
  | { kind: 'command'; command: PeekedCommand }
  | { kind: 'unknown' }
  | { kind: 'undecodable'; error: unknown };

const UNKNOWN: RequestPeek = Object.freeze({ kind: 'unknown' });

/** Classifies one whole client message. Never throws. */
export function peekRequest(frame: Buffer): RequestPeek {
  if (frame.length < HEADER_SIZE || frame.readInt32LE(0) !== frame.length) return UNKNOWN;
  let message = frame;
  let compressorId: number | undefined;
  if (frame.readInt32LE(12) === OpCode.Compressed) {
    try {
      const header = readOpCompressedHeader(frame);
      // Only OP_MSG and OP_QUERY carry commands; mongod refuses the rest after inflating.
      if (header.originalOpcode !== OpCode.Msg && header.originalOpcode !== OpCode.Query) return UNKNOWN;
      compressorId = header.compressorId;
      message = decodeOpCompressed(frame);
    } catch (error) {
      return { kind: 'undecodable', error };
    }
  }
  let command: PeekedCommand | undefined;
  try {
    command = peekUncompressed(message);
  } catch {
    // A malformed message: not ours to judge, mongod answers it.
    return UNKNOWN;
  }
  if (command === undefined) return UNKNOWN;
  return { kind: 'command', command: compressorId === undefined ? command : { ...command, compressorId } };
}

/**
 * Returns the command in `frame` (one whole message), or undefined for anything that is
 * not a readable command. Never throws.
 */
export function peekCommand(frame: Buffer): PeekedCommand | undefined {
  const peeked = peekRequest(frame);
  return peeked.kind === 'command' ? peeked.command : undefined;
}

function peekUncompressed(frame: Buffer): PeekedCommand | undefined {
  const opCode = frame.readInt32LE(12);
  if (opCode === OpCode.Msg) return peekOpMsg(frame);
  if (opCode === OpCode.Query) return peekOpQuery(frame);
  return undefined;
}

function peekOpMsg(frame: Buffer): PeekedCommand | undefined {
  if (frame.length < HEADER_SIZE + 4) return undefined;
  const flags = frame.readUInt32LE(HEADER_SIZE);
  const end = frame.length - (flags & OpMsgFlag.ChecksumPresent ? 4 : 0);
  let offset = HEADER_SIZE + 4;
  // Skip kind-1 sections (they may come first) until the kind-0 body.
  while (offset < end) {
    const kind = frame[offset];
    if (offset + 5 > end) return undefined;
    const size = frame.readInt32LE(offset + 1);
    if (kind === 0) {
      if (size < 5 || size > end - offset - 1) return undefined;
      const command = commandIn(frame.subarray(offset + 1, offset + 1 + size), OpCode.Msg);
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
  let db: string | undefined;
  const ok = walkTopLevel(body, (element) => {
    if (commandName === undefined) commandName = element.name;
    if (element.name === '$db') {
      db = stringValue(body, element);
      return true;
    }
    return false;
  });
  if (!ok || commandName === undefined || db === undefined) return undefined;
  return { opCode, commandName, db };
}

function peekOpQuery(frame: Buffer): PeekedCommand | undefined {
  const nameStart = HEADER_SIZE + 4;
  const nul = frame.subarray(nameStart).indexOf(0);
  if (nul === -1) return undefined;
  const ns = frame.toString('utf8', nameStart, nameStart + nul);
  if (!ns.endsWith('.$cmd')) return undefined;
  const db = ns.slice(0, -'.$cmd'.length);
  const queryStart = nameStart + nul + 1 + 8;
  if (queryStart + 5 > frame.length) return undefined;
  const size = frame.readInt32LE(queryStart);
  if (size < 5 || size > frame.length - queryStart) return undefined;
  let query = frame.subarray(queryStart, queryStart + size);

  let first: ElementRef | undefined;
  if (!walkTopLevel(query, (element) => ((first = element), true)) || !first) return undefined;
  // mongod's upconvertRequest: a command wrapped as {$query: {...}, $readPreference: ...}
  // (or `query`) is the inner document.
  if (first.name === '$query' || first.name === 'query') {
    if (first.type !== 0x03) return undefined;
    query = query.subarray(first.valueStart, first.valueEnd);
    first = undefined;
    if (!walkTopLevel(query, (element) => ((first = element), true)) || !first) return undefined;
  }
  return { opCode: OpCode.Query, commandName: first.name, db };
}
