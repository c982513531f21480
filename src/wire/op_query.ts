/**
 * OP_QUERY (opCode 2004). Since MongoDB 5.1 mongod accepts it only for the legacy
 * handshake (`isMaster`/`hello` on `admin.$cmd`), which drivers still send first:
 *
 *   header | int32 flags | cstring fullCollectionName | int32 numberToSkip
 *          | int32 numberToReturn | document query | [document returnFieldsSelector]
 */
import { HEADER_SIZE, OpCode } from './constants.js';
import { checkDocument, cstringBytes, protocolError, readCString, readDocument } from './bytes.js';
import { expectFrame, writeHeader } from './header.js';

export interface OpQuery {
  requestID: number;
  /** See OpQueryFlag. */
  flags: number;
  /** `<db>.<collection>`; commands go to `<db>.$cmd`. */
  fullCollectionName: string;
  numberToSkip: number;
  numberToReturn: number;
  query: Buffer;
  returnFieldsSelector?: Buffer;
}

/** Serializes a request; responseTo is always 0. */
export function encodeOpQuery(q: OpQuery): Buffer {
  const name = cstringBytes(q.fullCollectionName, 'OP_QUERY fullCollectionName');
  checkDocument(q.query, 'OP_QUERY query');
  if (q.returnFieldsSelector) checkDocument(q.returnFieldsSelector, 'OP_QUERY returnFieldsSelector');
  const length =
    HEADER_SIZE + 4 + name.length + 8 + q.query.length + (q.returnFieldsSelector?.length ?? 0);
  const frame = Buffer.allocUnsafe(length);
  writeHeader(frame, { messageLength: length, requestID: q.requestID, responseTo: 0, opCode: OpCode.Query });
  let offset = frame.writeInt32LE(q.flags, HEADER_SIZE);
  offset += name.copy(frame, offset);
  offset = frame.writeInt32LE(q.numberToSkip, offset);
  offset = frame.writeInt32LE(q.numberToReturn, offset);
  offset += q.query.copy(frame, offset);
  q.returnFieldsSelector?.copy(frame, offset);
  return frame;
}

/** Parses one whole OP_QUERY frame. Documents are views into `frame`. */
export function decodeOpQuery(frame: Buffer): OpQuery {
  const header = expectFrame(frame, OpCode.Query, 'OP_QUERY');
  const end = frame.length;
  if (end < HEADER_SIZE + 4) throw protocolError('OP_QUERY is too short to hold its flags');
  const flags = frame.readInt32LE(HEADER_SIZE);
  const name = readCString(frame, HEADER_SIZE + 4, end, 'OP_QUERY fullCollectionName');
  if (end - name.next < 8) throw protocolError('OP_QUERY is truncated before numberToReturn');
  const numberToSkip = frame.readInt32LE(name.next);
  const numberToReturn = frame.readInt32LE(name.next + 4);
  const queryOffset = name.next + 8;
  const query = readDocument(frame, queryOffset, end, 'OP_QUERY query');
  const q: OpQuery = {
    requestID: header.requestID,
    flags,
    fullCollectionName: name.value,
    numberToSkip,
    numberToReturn,
    query,
  };
  const selectorOffset = queryOffset + query.length;
  if (selectorOffset < end) {
    const selector = readDocument(frame, selectorOffset, end, 'OP_QUERY returnFieldsSelector');
    if (selectorOffset + selector.length !== end) {
      throw protocolError('OP_QUERY has trailing bytes after returnFieldsSelector');
    }
    q.returnFieldsSelector = selector;
  }
  return q;
}
