/** The 16-byte standard message header that starts every wire message. */
import { HEADER_SIZE } from './constants.js';
import { protocolError } from './bytes.js';

export interface MessageHeader {
  /** Total message size in bytes, including these 16 header bytes. */
  messageLength: number;
  requestID: number;
  /** The requestID this message answers; 0 on requests. */
  responseTo: number;
  /** Kept as a plain number: a peer may send opcodes we do not know. */
  opCode: number;
}

/** Reads the header at `offset`. Throws ProtocolError if fewer than 16 bytes remain. */
export function readHeader(buf: Buffer, offset = 0): MessageHeader {
  if (offset < 0 || buf.length - offset < HEADER_SIZE) {
    throw protocolError(`message header needs ${HEADER_SIZE} bytes, have ${buf.length - offset}`);
  }
  return {
    messageLength: buf.readInt32LE(offset),
    requestID: buf.readInt32LE(offset + 4),
    responseTo: buf.readInt32LE(offset + 8),
    opCode: buf.readInt32LE(offset + 12),
  };
}

/** Writes `header` at `offset` (the caller sizes the buffer). */
export function writeHeader(buf: Buffer, header: MessageHeader, offset = 0): void {
  buf.writeInt32LE(header.messageLength, offset);
  buf.writeInt32LE(header.requestID, offset + 4);
  buf.writeInt32LE(header.responseTo, offset + 8);
  buf.writeInt32LE(header.opCode, offset + 12);
}

/**
 * Checks that a frame is one whole message of the expected opcode, as handed out by
 * MessageFramer; the decoders call this first so that they can trust `frame.length`.
 */
export function expectFrame(frame: Buffer, opCode: number, name: string): MessageHeader {
  const header = readHeader(frame);
  if (header.opCode !== opCode) {
    throw protocolError(`expected ${name} (opCode ${opCode}), got opCode ${header.opCode}`);
  }
  if (header.messageLength !== frame.length) {
    throw protocolError(
      `${name} messageLength ${header.messageLength} does not match frame size ${frame.length}`,
    );
  }
  return header;
}
