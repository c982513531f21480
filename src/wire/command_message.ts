/**
 * A whole command message, decoded: from a frame to a command request, and from a
 * reply document back to a frame. Used by whoever answers commands itself (the dev
 * server, and the proxy for the commands it intercepts). OP_MSG carries everything;
 * OP_QUERY only the legacy handshake, as mongod 6.0+ accepts. A reply mirrors its
 * request's opcode family, checksum and compressor.
 */
import { deserialize, serialize, type Document as BsonDocument } from 'bson';
import { OpCode, OpMsgFlag, OpReplyFlag } from './constants.js';
import { readHeader } from './header.js';
import { decodeOpMsg, encodeOpMsg } from './op_msg.js';
import { decodeOpQuery } from './op_query.js';
import { encodeOpReply } from './op_reply.js';
import { decodeOpCompressed, encodeOpCompressed, UNCOMPRESSIBLE_COMMANDS } from './compression.js';
import { MongoServerError, ErrorCodes } from '../errors.js';

export type Document = Record<string, unknown>;

/**
 * Values keep their BSON types (`promoteValues: false`): Int32, Double, Long and
 * Decimal128 survive a read-modify-write, as in mongod.
 */
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

export interface CommandRequest {
  readonly opCode: typeof OpCode.Msg | typeof OpCode.Query;
  readonly requestID: number;
  /** OP_MSG flag bits (0 for OP_QUERY). */
  readonly flags: number;
  readonly checksum: boolean;
  /** The compressor the client used, so the reply can use the same one. */
  readonly compressorId: number | undefined;
  readonly db: string;
  readonly name: string;
  readonly command: Document;
}

const LEGACY_HANDSHAKE = new Set(['hello', 'isMaster', 'ismaster']);

export function decodeRequest(frame: Buffer): CommandRequest {
  let compressorId: number | undefined;
  let message = frame;
  if (readHeader(frame).opCode === OpCode.Compressed) {
    compressorId = frame.readUInt8(24);
    message = decodeOpCompressed(frame);
  }
  const header = readHeader(message);
  if (header.opCode === OpCode.Msg) {
    const msg = decodeOpMsg(message);
    const command: Document = {};
    for (const section of msg.sections) {
      if (section.kind === 0) Object.assign(command, decodeDocument(section.body));
    }
    // Kind-1 sections carry a command's bulk array (`documents`, `updates`, ...).
    for (const section of msg.sections) {
      if (section.kind === 1) command[section.identifier] = section.documents.map((d) => decodeDocument(d));
    }
    const db = command['$db'];
    if (typeof db !== 'string' || db === '') {
      throw new MongoServerError(ErrorCodes.FailedToParse, "OP_MSG requests require a $db argument");
    }
    return {
      opCode: OpCode.Msg,
      requestID: header.requestID,
      flags: msg.flags,
      checksum: (msg.flags & OpMsgFlag.ChecksumPresent) !== 0,
      compressorId,
      db,
      name: commandName(command),
      command,
    };
  }
  if (header.opCode === OpCode.Query) {
    const query = decodeOpQuery(message);
    const dot = query.fullCollectionName.indexOf('.');
    const db = query.fullCollectionName.slice(0, dot);
    const command = unwrapLegacyCommand(decodeDocument(query.query));
    return {
      opCode: OpCode.Query,
      requestID: header.requestID,
      flags: 0,
      checksum: false,
      compressorId,
      db,
      name: commandName(command),
      command,
    };
  }
  throw new MongoServerError(ErrorCodes.ProtocolError, `Unsupported opcode ${header.opCode}`);
}

/** A decoded sub-document: not an array and not a BSON value class (Int32, Long, ObjectId...). */
function isEmbeddedDocument(value: unknown): value is Document {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !('_bsontype' in value);
}

/**
 * Old drivers wrap an OP_QUERY command as `{$query: {...}, $readPreference: ...}`, or
 * `{query: {...}}`. mongod's upconvertRequest (src/mongo/rpc/metadata.cpp, up to 5.0:
 * `firstFieldName == "$query" || firstFieldName == "query"`) unwraps only a FIRST field of
 * either spelling, and carries the wrapper's `$readPreference` over to the command. A
 * `query` field further down is a command argument (count's filter), never a wrapper.
 */
function unwrapLegacyCommand(wrapper: Document): Document {
  const first = commandName(wrapper);
  if (first !== '$query' && first !== 'query') return wrapper;
  const inner = wrapper[first];
  if (!isEmbeddedDocument(inner)) return wrapper;
  const readPreference = wrapper['$readPreference'];
  return readPreference === undefined ? inner : { ...inner, $readPreference: readPreference };
}

/** mongod 6.0+ answers OP_QUERY only for the handshake. */
export function checkLegacyOpcode(request: CommandRequest): void {
  if (request.opCode === OpCode.Query && !(LEGACY_HANDSHAKE.has(request.name) && request.db !== '')) {
    throw new MongoServerError(
      ErrorCodes.UnsupportedOpQueryCommand,
      `Unsupported OP_QUERY command: ${request.name}. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal`,
    );
  }
}

export interface ReplyFraming {
  requestID: number;
  responseTo: number;
  moreToCome?: boolean;
}

export function encodeReply(request: CommandRequest, reply: Document, framing: ReplyFraming): Buffer {
  const body = encodeDocument(reply);
  let frame: Buffer;
  if (request.opCode === OpCode.Query) {
    frame = encodeOpReply({
      requestID: framing.requestID,
      responseTo: framing.responseTo,
      responseFlags: OpReplyFlag.AwaitCapable,
      cursorID: 0n,
      startingFrom: 0,
      documents: [body],
    });
  } else {
    frame = encodeOpMsg(
      {
        requestID: framing.requestID,
        responseTo: framing.responseTo,
        flags: framing.moreToCome === true ? OpMsgFlag.MoreToCome : 0,
        sections: [{ kind: 0, body }],
      },
      { checksum: request.checksum },
    );
  }
  if (request.compressorId !== undefined && !UNCOMPRESSIBLE_COMMANDS.has(request.name)) {
    return encodeOpCompressed(frame, request.compressorId);
  }
  return frame;
}
