/** The wire-protocol codec shared by the proxy and the dev server. */
export {
  CompressorId,
  HEADER_SIZE,
  MAX_BSON_INTERNAL_SIZE,
  MAX_BSON_OBJECT_SIZE,
  MAX_MESSAGE_SIZE,
  OP_MSG_KNOWN_REQUIRED_FLAGS,
  OP_MSG_REQUIRED_FLAGS_MASK,
  OpCode,
  OpMsgFlag,
  OpQueryFlag,
  OpReplyFlag,
} from './constants.js';
export { type MessageHeader, readHeader, writeHeader } from './header.js';
export { MessageFramer, type MessageFramerOptions } from './framing.js';
export { crc32c } from './crc32c.js';
export {
  type EncodeOpMsgOptions,
  type OpMsg,
  type OpMsgSection,
  decodeOpMsg,
  encodeOpMsg,
  opMsgBody,
  opMsgDocumentSequences,
} from './op_msg.js';
export { type OpQuery, decodeOpQuery, encodeOpQuery } from './op_query.js';
export { type OpReply, decodeOpReply, encodeOpReply } from './op_reply.js';
export {
  type CompressorName,
  type OpCompressedHeader,
  SUPPORTED_COMPRESSORS,
  UNCOMPRESSIBLE_COMMANDS,
  compress,
  compressorIdFromName,
  compressorNameFromId,
  decodeOpCompressed,
  decompress,
  encodeOpCompressed,
  isCompressibleCommand,
  negotiateCompressors,
  readOpCompressedHeader,
} from './compression.js';
export { type PeekedCommand, type RequestPeek, peekRequest } from './peek.js';
