/**
 * OP_REPLY (opCode 1), the answer to an OP_QUERY (in practice, to the legacy handshake):
 *
 *   header | int32 responseFlags | int64 cursorID | int32 startingFrom
 *          | int32 numberReturned | documents...
 */
import { HEADER_SIZE, OpCode } from './constants.js';
import { checkDocument, protocolError, readDocument } from './bytes.js';
import { expectFrame, writeHeader } from './header.js';

export interface OpReply {
  requestID: number;
  responseTo: number;
  /** See OpReplyFlag. */
  responseFlags: number;
  cursorID: bigint;
  startingFrom: number;
  /** numberReturned on the wire is documents.length. */
  documents: Buffer[];
}

const FIXED_SIZE = HEADER_SIZE + 4 + 8 + 4 + 4;

export function encodeOpReply(r: OpReply): Buffer {
  let length = FIXED_SIZE;
  for (const doc of r.documents) {
    checkDocument(doc, 'OP_REPLY document');
    length += doc.length;
  }
  const frame = Buffer.allocUnsafe(length);
  writeHeader(frame, {
    messageLength: length,
    requestID: r.requestID,
    responseTo: r.responseTo,
    opCode: OpCode.Reply,
  });
  let offset = frame.writeInt32LE(r.responseFlags, HEADER_SIZE);
  offset = frame.writeBigInt64LE(r.cursorID, offset);
  offset = frame.writeInt32LE(r.startingFrom, offset);
  offset = frame.writeInt32LE(r.documents.length, offset);
  for (const doc of r.documents) offset += doc.copy(frame, offset);
  return frame;
}

/** Parses one whole OP_REPLY frame; numberReturned must match the documents present. */
export function decodeOpReply(frame: Buffer): OpReply {
  const header = expectFrame(frame, OpCode.Reply, 'OP_REPLY');
  if (frame.length < FIXED_SIZE) throw protocolError(`OP_REPLY of ${frame.length} bytes is truncated`);
  const responseFlags = frame.readInt32LE(HEADER_SIZE);
  const cursorID = frame.readBigInt64LE(HEADER_SIZE + 4);
  const startingFrom = frame.readInt32LE(HEADER_SIZE + 12);
  const numberReturned = frame.readInt32LE(HEADER_SIZE + 16);
  const documents: Buffer[] = [];
  let offset = FIXED_SIZE;
  while (offset < frame.length) {
    const doc = readDocument(frame, offset, frame.length, 'OP_REPLY document');
    documents.push(doc);
    offset += doc.length;
  }
  if (documents.length !== numberReturned) {
    throw protocolError(
      `OP_REPLY says numberReturned ${numberReturned} but holds ${documents.length} documents`,
    );
  }
  return {
    requestID: header.requestID,
    responseTo: header.responseTo,
    responseFlags,
    cursorID,
    startingFrom,
    documents,
  };
}
