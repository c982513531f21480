/**
 * OP_MSG (opCode 2013) encode/decode, per mongodb/specifications source/message/OP_MSG.md:
 *
 *   header | uint32 flagBits | sections... | [uint32 crc32c of all prior bytes]
 *   section kind 0: one BSON document (the command or reply)
 *   section kind 1: int32 size (counts itself), cstring identifier, BSON documents...
 *
 * Documents stay raw Buffers. Decoding is zero-copy: they are views into the frame.
 * Error codes and texts follow mongod's OpMsg::parse so clients see what mongod says.
 */
import { ErrorCodes, CommandError } from '../errors.js';
import {
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
  OP_MSG_KNOWN_REQUIRED_FLAGS,
  OP_MSG_REQUIRED_FLAGS_MASK,
  OpCode,
  OpMsgFlag,
} from './constants.js';
import { checkDocument, cstringBytes, protocolError, readCString, readDocument } from './bytes.js';
import { crc32c } from './crc32c.js';
import { expectFrame, writeHeader } from './header.js';

export type OpMsgSection =
  | { kind: 0; body: Buffer }
  | { kind: 1; identifier: string; documents: Buffer[] };

export interface OpMsg {
  requestID: number;
  responseTo: number;
  /** flagBits as an unsigned 32-bit number; see OpMsgFlag. */
  flags: number;
  sections: OpMsgSection[];
}

export interface EncodeOpMsgOptions {
  /** Append a CRC-32C and set checksumPresent; otherwise that flag is cleared. */
  checksum?: boolean;
}

const CHECKSUM_SIZE = 4;
const FLAGS_SIZE = 4;

/** Serializes `msg` into one frame. Throws on a message mongod would refuse to parse. */
export function encodeOpMsg(msg: OpMsg, options: EncodeOpMsgOptions = {}): Buffer {
  const flags =
    ((msg.flags & ~OpMsgFlag.ChecksumPresent) | (options.checksum ? OpMsgFlag.ChecksumPresent : 0)) >>> 0;
  const parts: Buffer[] = [];
  let bodies = 0;
  const identifiers = new Set<string>();
  for (const section of msg.sections) {
    if (section.kind === 0) {
      bodies++;
      checkDocument(section.body, 'OP_MSG body');
      parts.push(Buffer.of(0), section.body);
    } else {
      if (identifiers.has(section.identifier)) {
        throw new CommandError(40431, `Duplicate document sequence: ${section.identifier}`);
      }
      identifiers.add(section.identifier);
      const identifier = cstringBytes(section.identifier, 'OP_MSG document sequence identifier');
      let size = 4 + identifier.length;
      for (const doc of section.documents) {
        checkDocument(doc, `OP_MSG document sequence ${section.identifier}`);
        size += doc.length;
      }
      const prefix = Buffer.allocUnsafe(5);
      prefix[0] = 1;
      prefix.writeInt32LE(size, 1);
      parts.push(prefix, identifier, ...section.documents);
    }
  }
  if (bodies !== 1) {
    throw protocolError(`an OP_MSG needs exactly one kind-0 body section, got ${bodies}`);
  }

  let length = HEADER_SIZE + FLAGS_SIZE + (options.checksum ? CHECKSUM_SIZE : 0);
  for (const part of parts) length += part.length;
  if (length > MAX_MESSAGE_SIZE) {
    throw new CommandError(
      ErrorCodes.BSONObjectTooLarge,
      `OP_MSG of ${length} bytes exceeds maxMessageSizeBytes ${MAX_MESSAGE_SIZE}`,
    );
  }

  const frame = Buffer.allocUnsafe(length);
  writeHeader(frame, {
    messageLength: length,
    requestID: msg.requestID,
    responseTo: msg.responseTo,
    opCode: OpCode.Msg,
  });
  frame.writeUInt32LE(flags, HEADER_SIZE);
  let offset = HEADER_SIZE + FLAGS_SIZE;
  for (const part of parts) offset += part.copy(frame, offset);
  if (options.checksum) {
    frame.writeUInt32LE(crc32c(frame.subarray(0, offset)), offset);
  }
  return frame;
}

/**
 * Parses one whole OP_MSG frame (as returned by MessageFramer). Verifies the checksum
 * when present before looking at the sections, so a corrupted message is reported as
 * ChecksumMismatch rather than as whatever parse error the corruption happens to cause.
 */
export function decodeOpMsg(frame: Buffer): OpMsg {
  const header = expectFrame(frame, OpCode.Msg, 'OP_MSG');
  if (frame.length < HEADER_SIZE + FLAGS_SIZE) throw protocolError('OP_MSG is too short to hold flagBits');
  const flags = frame.readUInt32LE(HEADER_SIZE);
  if ((flags & ~OP_MSG_KNOWN_REQUIRED_FLAGS & OP_MSG_REQUIRED_FLAGS_MASK) !== 0) {
    throw new CommandError(
      ErrorCodes.IllegalOpMsgFlag,
      // Sic: mongod prints "Ob", not "0b".
      `Message contains illegal flags value: Ob${flags.toString(2).padStart(32, '0')}`,
    );
  }

  let end = frame.length;
  if (flags & OpMsgFlag.ChecksumPresent) {
    if (frame.length - HEADER_SIZE - FLAGS_SIZE <= CHECKSUM_SIZE) {
      throw new CommandError(51251, 'Invalid message size for an OpMsg containing a checksum');
    }
    end -= CHECKSUM_SIZE;
    if (crc32c(frame.subarray(0, end)) !== frame.readUInt32LE(end)) {
      throw new CommandError(ErrorCodes.ChecksumMismatch, 'OP_MSG checksum does not match contents');
    }
  }

  const sections = readSections(frame, HEADER_SIZE + FLAGS_SIZE, end);
  return { requestID: header.requestID, responseTo: header.responseTo, flags, sections };
}

function readSections(frame: Buffer, start: number, end: number): OpMsgSection[] {
  const sections: OpMsgSection[] = [];
  const identifiers = new Set<string>();
  let haveBody = false;
  let offset = start;
  while (offset < end) {
    const kind = frame[offset++];
    if (kind === 0) {
      if (haveBody) throw new CommandError(40430, 'Multiple body sections in message');
      haveBody = true;
      const body = readDocument(frame, offset, end, 'OP_MSG body');
      offset += body.length;
      sections.push({ kind: 0, body });
    } else if (kind === 1) {
      if (end - offset < 4) throw protocolError('OP_MSG document sequence is truncated');
      const size = frame.readInt32LE(offset);
      if (size < 5 || size > end - offset) {
        throw protocolError(`OP_MSG document sequence size ${size} is invalid (${end - offset} bytes left)`);
      }
      const sectionEnd = offset + size;
      const name = readCString(frame, offset + 4, sectionEnd, 'OP_MSG document sequence identifier');
      if (identifiers.has(name.value)) {
        throw new CommandError(40431, `Duplicate document sequence: ${name.value}`);
      }
      identifiers.add(name.value);
      const documents: Buffer[] = [];
      let docOffset = name.next;
      while (docOffset < sectionEnd) {
        const doc = readDocument(frame, docOffset, sectionEnd, `OP_MSG document sequence ${name.value}`);
        documents.push(doc);
        docOffset += doc.length;
      }
      sections.push({ kind: 1, identifier: name.value, documents });
      offset = sectionEnd;
    } else if (kind === 2) {
      // Security tokens are for multitenant Atlas deployments only, which mongod
      // refuses in the same way unless multitenancy is enabled.
      throw new CommandError(ErrorCodes.Unauthorized, 'Unsupported Security Token provided');
    } else {
      throw new CommandError(40432, `Unknown section kind ${kind}`);
    }
  }
  if (!haveBody) throw new CommandError(40587, 'OP_MSG messages must have a body');
  return sections;
}

/** The kind-0 body (the command or reply document). */
export function opMsgBody(msg: OpMsg): Buffer {
  for (const section of msg.sections) if (section.kind === 0) return section.body;
  throw new CommandError(40587, 'OP_MSG messages must have a body');
}

/** The kind-1 document sequences by identifier (e.g. `documents` of an insert). */
export function opMsgDocumentSequences(msg: OpMsg): Map<string, Buffer[]> {
  const sequences = new Map<string, Buffer[]>();
  for (const section of msg.sections) {
    if (section.kind === 1) sequences.set(section.identifier, section.documents);
  }
  return sequences;
}
