/**
 * Wire compression, per mongodb/specifications source/compression/OP_COMPRESSED.md:
 *
 *   header (opCode 2012) | int32 originalOpcode | int32 uncompressedSize
 *                        | uint8 compressorId | compressedMessage
 *
 * compressedMessage is the original message minus its 16-byte header, whose requestID
 * and responseTo the OP_COMPRESSED header carries over. Error codes and texts follow
 * mongod's MessageCompressorManager.
 *
 * Everything here is synchronous: messages are at most 48 MB, and the decoders and the
 * proxy's peek need the bytes before they can do anything else with the message. That
 * is why zstd comes from `zstd-napi` (synchronous, built from the zstd sources it ships)
 * and not from the driver's `@mongodb-js/zstd`, whose API is Promise-only; see
 * docs/proxy.md, "zstd".
 */
import { inflateSync, deflateSync } from 'node:zlib';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
// The low-level binding, not the package's public compress/decompress: those size their
// output from the frames' declared content sizes, with no limit (zstd-napi 0.0.13,
// Decompressor.decompress: "TODO: Default allocation limit"), where we must decompress
// into a buffer of the size the message declared, which zstd then refuses to overflow.
// A CommonJS native module: its functions are properties of the default export.
import zstd, { type CCtx, type DCtx } from 'zstd-napi/binding.js';
import { ErrorCodes, CommandError } from '../errors.js';
import { CompressorId, HEADER_SIZE, MAX_MESSAGE_SIZE, OpCode } from './constants.js';
import { protocolError } from './bytes.js';
import { expectFrame, readHeader, writeHeader } from './header.js';

export type CompressorName = 'noop' | 'snappy' | 'zlib' | 'zstd';

const ID_BY_NAME: Readonly<Record<CompressorName, CompressorId>> = Object.freeze({
  noop: CompressorId.Noop,
  snappy: CompressorId.Snappy,
  zlib: CompressorId.Zlib,
  zstd: CompressorId.Zstd,
});
const NAME_BY_ID: ReadonlyMap<number, CompressorName> = new Map(
  Object.entries(ID_BY_NAME).map(([name, id]) => [id, name as CompressorName] as const),
);

/**
 * What we offer in the handshake: mongod's default `net.compression.compressors`,
 * "snappy,zstd,zlib", in its order. noop exists for tests only.
 */
export const SUPPORTED_COMPRESSORS: readonly CompressorName[] = Object.freeze(['snappy', 'zstd', 'zlib']);

/** zstd's default level (ZSTD_CLEVEL_DEFAULT), which mongod and the drivers use too. */
const ZSTD_LEVEL = 3;

/**
 * Commands whose messages (requests and their replies) must never be compressed: the
 * handshake and authentication, to keep secrets out of compression side channels.
 */
export const UNCOMPRESSIBLE_COMMANDS: ReadonlySet<string> = new Set([
  'hello',
  'isMaster',
  'ismaster',
  'saslStart',
  'saslContinue',
  'getnonce',
  'authenticate',
  'createUser',
  'updateUser',
  'copydbSaslStart',
  'copydbgetnonce',
  'copydb',
]);

export function isCompressibleCommand(commandName: string): boolean {
  return !UNCOMPRESSIBLE_COMMANDS.has(commandName);
}

export function compressorIdFromName(name: string): CompressorId | undefined {
  return Object.hasOwn(ID_BY_NAME, name) ? ID_BY_NAME[name as CompressorName] : undefined;
}

export function compressorNameFromId(id: number): CompressorName | undefined {
  return NAME_BY_ID.get(id);
}

/**
 * The handshake answer: the client's compressors that we also support, in the client's
 * order (the client compresses with the first one). Unknown names are ignored, as the
 * spec asks; an empty result means the reply should omit `compression`.
 */
export function negotiateCompressors(
  clientList: readonly string[],
  serverList: readonly string[] = SUPPORTED_COMPRESSORS,
): string[] {
  const accepted: string[] = [];
  for (const name of clientList) {
    if (serverList.includes(name) && !accepted.includes(name)) accepted.push(name);
  }
  return accepted;
}

function unavailable(): CommandError {
  return new CommandError(ErrorCodes.InternalError, 'Compression algorithm specified in message is not available');
}

function badValue(message: string, cause?: unknown): CommandError {
  return new CommandError(ErrorCodes.BadValue, message, cause === undefined ? {} : { cause });
}

function corrupt(cause: unknown): CommandError {
  return badValue('Compressed message was invalid or corrupted', cause);
}

export function compress(id: number, data: Buffer): Buffer {
  switch (id) {
    case CompressorId.Noop:
      return data;
    case CompressorId.Snappy:
      return snappyCompress(data);
    case CompressorId.Zlib:
      return deflateSync(data);
    case CompressorId.Zstd:
      return zstdCompress(data);
    default:
      throw unavailable();
  }
}

/**
 * Inverts `compress`, insisting on exactly `uncompressedSize` bytes. The size is checked
 * before inflating wherever the format allows, so a small hostile message cannot make
 * us allocate more than the size it declared.
 */
export function decompress(id: number, data: Buffer, uncompressedSize: number): Buffer {
  const sane = Number.isInteger(uncompressedSize) && uncompressedSize >= 0;
  if (!sane || uncompressedSize > MAX_MESSAGE_SIZE - HEADER_SIZE) {
    throw badValue('Decompressed message would be larger than maximum message size');
  }
  let out: Buffer;
  switch (id) {
    case CompressorId.Noop:
      out = data;
      break;
    case CompressorId.Snappy: {
      const declared = snappyDeclaredLength(data);
      if (declared !== uncompressedSize) {
        throw badValue('Uncompressed message size does not match expected size');
      }
      try {
        out = snappyUncompress(data, { asBuffer: true }) as Buffer;
      } catch (err) {
        throw corrupt(err);
      }
      break;
    }
    case CompressorId.Zlib:
      try {
        // Capped at the declared size, so a zlib bomb fails here instead of inflating.
        out = inflateSync(data, { maxOutputLength: Math.max(1, uncompressedSize) });
      } catch (err) {
        throw corrupt(err);
      }
      break;
    case CompressorId.Zstd:
      out = zstdDecompress(data, uncompressedSize);
      break;
    default:
      throw unavailable();
  }
  if (out.length !== uncompressedSize) {
    const how = out.length < uncompressedSize ? 'less' : 'more';
    throw badValue(`Decompressing message returned ${how} data than expected`);
  }
  return out;
}

/** A raw snappy block starts with its uncompressed length as a little-endian base-128 varint. */
function snappyDeclaredLength(data: Buffer): number {
  let value = 0;
  for (let i = 0; i < 5 && i < data.length; i++) {
    const byte = data[i] as number;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return value;
  }
  throw corrupt(new Error('snappy length preamble is truncated or longer than 32 bits'));
}

/** One context of each kind, reused: everything here runs on the one JS thread. */
let zstdCCtx: CCtx | undefined;
let zstdDCtx: DCtx | undefined;

function zstdCompress(data: Buffer): Buffer {
  zstdCCtx ??= new zstd.CCtx();
  const out = Buffer.allocUnsafe(zstd.compressBound(data.length));
  const written = zstdCCtx.compress(out, data, ZSTD_LEVEL);
  return out.subarray(0, written);
}

/**
 * Like mongod's ZstdMessageCompressor: decompresses into a buffer of the declared size,
 * so zstd itself refuses to write more ("Destination buffer is too small"): a small
 * hostile message cannot make us allocate what it did not claim.
 *
 * Before allocating, the first frame's declared content size (in its header, read in
 * constant time) must not exceed the message's; and when it is smaller, it must not be
 * the only frame, or a 30-byte message that declares 48 MB would make us allocate 48 MB
 * only to learn that it holds 10 bytes. Whether it is the only frame costs one
 * findFrameCompressedSize of the first frame, in C, which hops over its block headers
 * without decoding them (less than zstd's own pass over that frame), and is paid only
 * when the sizes differ. The other frames are not walked in JS: for a message of
 * millions of tiny (skippable) frames, that held the event loop far longer than zstd's
 * own pass over them.
 */
function zstdDecompress(data: Buffer, uncompressedSize: number): Buffer {
  let firstFrameSize: number | null;
  let onlyFrame = false;
  try {
    firstFrameSize = zstd.getFrameContentSize(data);
    if (firstFrameSize !== null && firstFrameSize < uncompressedSize) {
      onlyFrame = zstd.findFrameCompressedSize(data) === data.length;
    }
  } catch (err) {
    throw corrupt(err);
  }
  if (firstFrameSize !== null && (firstFrameSize > uncompressedSize || (onlyFrame && firstFrameSize !== uncompressedSize))) {
    throw badValue('Uncompressed message size does not match expected size');
  }
  zstdDCtx ??= new zstd.DCtx();
  const out = Buffer.allocUnsafe(uncompressedSize);
  let written: number;
  try {
    written = zstdDCtx.decompress(out, data);
  } catch (err) {
    throw corrupt(err);
  }
  return out.subarray(0, written);
}

const COMPRESSED_PREFIX = HEADER_SIZE + 4 + 4 + 1;

/**
 * Wraps one whole uncompressed message in OP_COMPRESSED. Keeps its requestID (unless one
 * is given) and responseTo. Throws if the result would exceed maxMessageSizeBytes, which
 * only incompressible data near the limit can cause: send such a message uncompressed.
 */
export function encodeOpCompressed(frame: Buffer, compressorId: number, requestID?: number): Buffer {
  const header = readHeader(frame);
  if (header.messageLength !== frame.length) {
    throw protocolError(`messageLength ${header.messageLength} does not match frame size ${frame.length}`);
  }
  if (header.opCode === OpCode.Compressed) throw protocolError('an OP_COMPRESSED cannot wrap another one');
  const body = frame.subarray(HEADER_SIZE);
  const compressed = compress(compressorId, body);
  const length = COMPRESSED_PREFIX + compressed.length;
  if (length > MAX_MESSAGE_SIZE) {
    throw protocolError(`OP_COMPRESSED of ${length} bytes would exceed maxMessageSizeBytes`);
  }
  const out = Buffer.allocUnsafe(length);
  writeHeader(out, {
    messageLength: length,
    requestID: requestID ?? header.requestID,
    responseTo: header.responseTo,
    opCode: OpCode.Compressed,
  });
  out.writeInt32LE(header.opCode, HEADER_SIZE);
  out.writeInt32LE(body.length, HEADER_SIZE + 4);
  out.writeUInt8(compressorId, HEADER_SIZE + 8);
  compressed.copy(out, COMPRESSED_PREFIX);
  return out;
}

export interface OpCompressedHeader {
  originalOpcode: number;
  uncompressedSize: number;
  compressorId: number;
}

/** Reads the three OP_COMPRESSED fields after the standard header. */
export function readOpCompressedHeader(frame: Buffer): OpCompressedHeader {
  expectFrame(frame, OpCode.Compressed, 'OP_COMPRESSED');
  if (frame.length < COMPRESSED_PREFIX) {
    throw protocolError(`OP_COMPRESSED of ${frame.length} bytes is truncated`);
  }
  return {
    originalOpcode: frame.readInt32LE(HEADER_SIZE),
    uncompressedSize: frame.readInt32LE(HEADER_SIZE + 4),
    compressorId: frame.readUInt8(HEADER_SIZE + 8),
  };
}

/**
 * The original message's body (everything after its 16-byte header), decompressed into
 * a buffer of its declared size and not copied again: the proxy's peek reads it in place.
 */
export function decompressBody(frame: Buffer, header: OpCompressedHeader = readOpCompressedHeader(frame)): Buffer {
  if (header.originalOpcode === OpCode.Compressed) throw protocolError('an OP_COMPRESSED cannot wrap another one');
  return decompress(header.compressorId, frame.subarray(COMPRESSED_PREFIX), header.uncompressedSize);
}

/**
 * Rebuilds the original message: its opcode, the same requestID and responseTo. Pass
 * `body` when `decompressBody` already produced it, so the message is inflated once.
 */
export function decodeOpCompressed(frame: Buffer, body?: Buffer): Buffer {
  const header = readOpCompressedHeader(frame);
  if (header.originalOpcode === OpCode.Compressed) throw protocolError('an OP_COMPRESSED cannot wrap another one');
  const inflated = body ?? decompressBody(frame, header);
  if (inflated.length !== header.uncompressedSize) throw protocolError('decompressed body does not match its OP_COMPRESSED header');
  const out = Buffer.allocUnsafe(HEADER_SIZE + inflated.length);
  writeHeader(out, {
    messageLength: out.length,
    requestID: frame.readInt32LE(4),
    responseTo: frame.readInt32LE(8),
    opCode: header.originalOpcode,
  });
  inflated.copy(out, HEADER_SIZE);
  return out;
}
