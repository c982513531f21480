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
import { decodeOpReply, encodeOpReply } from './op_reply.js';
import { decodeOpCompressed, encodeOpCompressed, UNCOMPRESSIBLE_COMMANDS } from './compression.js';
import { CommandError, ErrorCodes, LocationCodes } from '../errors.js';
import { commandNamespaceDb, unwrapLegacyCommand } from './legacy_command.js';

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
  /**
   * Set to the namespace of an OP_QUERY that is not a command (not `<db>.$cmd`), a
   * legacy query on a collection: `checkLegacyOpcode` refuses it, as mongod 5.1+ does.
   */
  readonly queryNamespace?: string;
}

const LEGACY_HANDSHAKE = new Set(['hello', 'isMaster', 'ismaster']);

/**
 * Decodes one whole client message. For an OP_COMPRESSED one, `decompressedBody` is its
 * body as the proxy's peek already inflated it (`peekRequest`), so it is not inflated twice.
 */
export function decodeRequest(frame: Buffer, decompressedBody?: Buffer): CommandRequest {
  let compressorId: number | undefined;
  let message = frame;
  if (readHeader(frame).opCode === OpCode.Compressed) {
    // decodeOpCompressed first: it checks the frame is long enough to hold the compressor id.
    message = decodeOpCompressed(frame, decompressedBody);
    compressorId = frame.readUInt8(24);
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
      throw new CommandError(ErrorCodes.FailedToParse, "OP_MSG requests require a $db argument");
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
    const namespace = query.fullCollectionName;
    const db = commandNamespaceDb(namespace);
    const command = unwrapLegacyCommand(decodeDocument(query.query));
    const request: CommandRequest = {
      opCode: OpCode.Query,
      requestID: header.requestID,
      flags: 0,
      checksum: false,
      compressorId,
      db: db ?? namespace.slice(0, Math.max(0, namespace.indexOf('.'))),
      name: commandName(command),
      command,
    };
    return db === undefined ? { ...request, queryNamespace: namespace } : request;
  }
  throw new CommandError(ErrorCodes.ProtocolError, `Unsupported opcode ${header.opCode}`);
}

/** mongod 6.0+ answers OP_QUERY only for the handshake. */
export function checkLegacyOpcode(request: CommandRequest): void {
  if (request.queryNamespace !== undefined) {
    throw new CommandError(
      LocationCodes.OpQueryRemoved,
      'OP_QUERY is no longer supported. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal',
    );
  }
  if (request.opCode === OpCode.Query && !(LEGACY_HANDSHAKE.has(request.name) && request.db !== '')) {
    throw new CommandError(
      ErrorCodes.UnsupportedOpQueryCommand,
      `Unsupported OP_QUERY command: ${request.name}. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal`,
    );
  }
}

/**
 * Decodes one whole reply of mongod's (OP_MSG, or OP_REPLY to a legacy OP_QUERY, either
 * possibly compressed) into its document, for a proxy that amends a reply before passing
 * it on. Lossless: regular expressions stay BSONRegExp (a JavaScript RegExp cannot hold
 * every BSON option), and numbers keep their BSON types, so what is not amended is
 * re-encoded as mongod sent it.
 */
export function decodeReply(frame: Buffer): Document {
  const message = readHeader(frame).opCode === OpCode.Compressed ? decodeOpCompressed(frame) : frame;
  const options = { promoteValues: false, promoteBuffers: false, bsonRegExp: true } as const;
  const opCode = readHeader(message).opCode;
  if (opCode === OpCode.Msg) {
    const msg = decodeOpMsg(message);
    const reply: Document = {};
    for (const section of msg.sections) {
      if (section.kind === 0) Object.assign(reply, deserialize(section.body, options));
    }
    for (const section of msg.sections) {
      if (section.kind === 1) reply[section.identifier] = section.documents.map((d) => deserialize(d, options));
    }
    return reply;
  }
  if (opCode === OpCode.Reply) {
    const first = decodeOpReply(message).documents[0];
    if (first === undefined) throw new CommandError(ErrorCodes.ProtocolError, 'OP_REPLY without a document');
    return deserialize(first, options) as Document;
  }
  throw new CommandError(ErrorCodes.ProtocolError, `Unsupported reply opcode ${opCode}`);
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
