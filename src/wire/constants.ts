/**
 * Wire-protocol numbers, in one tiny file so that every codec (and the proxy and dev
 * server) names them the same way. Values come from mongodb/specifications
 * (source/message/OP_MSG.md, source/compression/OP_COMPRESSED.md) and mongod.
 */

/** The opcodes we speak. Legacy OP_INSERT/OP_GET_MORE/... were removed in MongoDB 5.1/6.0. */
export const OpCode = Object.freeze({
  Reply: 1,
  Query: 2004,
  Compressed: 2012,
  Msg: 2013,
} as const);
export type OpCode = (typeof OpCode)[keyof typeof OpCode];

/** Four little-endian int32: messageLength, requestID, responseTo, opCode. */
export const HEADER_SIZE = 16;

/** mongod's maxMessageSizeBytes; also our cap on what the framer will buffer. */
export const MAX_MESSAGE_SIZE = 48_000_000;

/** mongod's maxBsonObjectSize, the limit it advertises for user documents. */
export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;

/**
 * mongod's BSONObjMaxInternalSize: documents on the wire may exceed the user limit by
 * 16 KiB so that a maximal user document still fits inside a command or reply.
 */
export const MAX_BSON_INTERNAL_SIZE = MAX_BSON_OBJECT_SIZE + 16 * 1024;

/** OP_MSG flagBits. The low 16 bits are "required": a receiver must reject unknown ones. */
export const OpMsgFlag = Object.freeze({
  ChecksumPresent: 1 << 0,
  MoreToCome: 1 << 1,
  ExhaustAllowed: 1 << 16,
} as const);

/** Bits 0-15 of OP_MSG flagBits; an unknown bit in this range must be refused. */
export const OP_MSG_REQUIRED_FLAGS_MASK = 0xffff;

/** The required bits we (and mongod) understand. */
export const OP_MSG_KNOWN_REQUIRED_FLAGS = OpMsgFlag.ChecksumPresent | OpMsgFlag.MoreToCome;

/** OP_COMPRESSED compressorId values. 4-255 are reserved. */
export const CompressorId = Object.freeze({
  Noop: 0,
  Snappy: 1,
  Zlib: 2,
  Zstd: 3,
} as const);
export type CompressorId = (typeof CompressorId)[keyof typeof CompressorId];

/** OP_QUERY flags (bit 0 is reserved). */
export const OpQueryFlag = Object.freeze({
  TailableCursor: 1 << 1,
  SecondaryOk: 1 << 2,
  OplogReplay: 1 << 3,
  NoCursorTimeout: 1 << 4,
  AwaitData: 1 << 5,
  Exhaust: 1 << 6,
  Partial: 1 << 7,
} as const);

/** OP_REPLY responseFlags. */
export const OpReplyFlag = Object.freeze({
  CursorNotFound: 1 << 0,
  QueryFailure: 1 << 1,
  ShardConfigStale: 1 << 2,
  AwaitCapable: 1 << 3,
} as const);
