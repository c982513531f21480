import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { compressSync } from 'snappy';
import zstdBinding from 'zstd-napi/binding.js';
import * as driverZstd from '@mongodb-js/zstd';
import { ErrorCodes } from '../../src/errors.js';
import { CompressorId, OpCode } from '../../src/wire/constants.js';
import {
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
} from '../../src/wire/compression.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { encodeOpReply } from '../../src/wire/op_reply.js';
import { bson, bsonDoc, expectServerError, int32 } from './arbitraries.js';

const PING = encodeOpMsg({
  requestID: 0x11,
  responseTo: 0x22,
  flags: 0,
  sections: [{ kind: 0, body: bson({ ping: 1, $db: 'admin', pad: 'x'.repeat(200) }) }],
});

describe('OP_COMPRESSED layout', () => {
  it('wraps the message body after originalOpcode, uncompressedSize and compressorId', () => {
    const out = encodeOpCompressed(PING, CompressorId.Zlib);
    assert.equal(out.readInt32LE(0), out.length); // messageLength
    assert.equal(out.readInt32LE(4), 0x11); // requestID kept
    assert.equal(out.readInt32LE(8), 0x22); // responseTo kept
    assert.equal(out.readInt32LE(12), OpCode.Compressed);
    assert.equal(out.readInt32LE(16), OpCode.Msg); // originalOpcode
    assert.equal(out.readInt32LE(20), PING.length - 16); // uncompressedSize excludes the header
    assert.equal(out[24], 2); // compressorId
    assert.deepEqual(out.subarray(25), deflateSync(PING.subarray(16)));
    assert.ok(out.length < PING.length);
    assert.deepEqual(readOpCompressedHeader(out), {
      originalOpcode: OpCode.Msg,
      uncompressedSize: PING.length - 16,
      compressorId: 2,
    });
    assert.deepEqual(decodeOpCompressed(out), PING);
  });

  it('uses raw snappy blocks and noop as-is, and can take a new requestID', () => {
    const snappy = encodeOpCompressed(PING, CompressorId.Snappy, 99);
    assert.equal(snappy.readInt32LE(4), 99);
    assert.equal(snappy[24], 1);
    assert.deepEqual(snappy.subarray(25), compressSync(PING.subarray(16)));
    const noop = encodeOpCompressed(PING, CompressorId.Noop);
    assert.equal(noop.length, PING.length + 9);
    assert.deepEqual(noop.subarray(25), PING.subarray(16));
    const back = decodeOpCompressed(snappy);
    assert.equal(back.readInt32LE(4), 99);
    assert.deepEqual(back.subarray(8), PING.subarray(8));
  });

  it('wraps a zstd frame that declares its content size, as the drivers and mongod write it', () => {
    const out = encodeOpCompressed(PING, CompressorId.Zstd);
    assert.equal(out[24], 3);
    assert.equal(out.readUInt32LE(25), 0xfd2fb528); // the zstd frame magic number
    assert.equal(zstdBinding.getFrameContentSize(out.subarray(25)), PING.length - 16);
    assert.ok(out.length < PING.length);
    assert.deepEqual(decodeOpCompressed(out), PING);
  });

  it("reads what the npm driver's zstd binding writes, and writes what it reads", async () => {
    const body = PING.subarray(16);
    assert.deepEqual(decompress(CompressorId.Zstd, await driverZstd.compress(body), body.length), body);
    assert.deepEqual(await driverZstd.decompress(compress(CompressorId.Zstd, body)), body);
  });

  it('round-trips any message with zlib, snappy, zstd and noop', () => {
    const frame = fc
      .record({
        requestID: int32,
        responseTo: int32,
        docs: fc.array(bsonDoc, { maxLength: 4 }),
        cursorID: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      })
      .map(({ docs, ...r }) => encodeOpReply({ ...r, responseFlags: 0, startingFrom: 0, documents: docs }));
    const id = fc.constantFrom(CompressorId.Noop, CompressorId.Snappy, CompressorId.Zlib, CompressorId.Zstd);
    fc.assert(
      fc.property(frame, id, (f, c) => assert.deepEqual(decodeOpCompressed(encodeOpCompressed(f, c)), f)),
      { numRuns: 300 },
    );
  });

  it('refuses to nest OP_COMPRESSED or to wrap a mis-sized frame', () => {
    const once = encodeOpCompressed(PING, CompressorId.Noop);
    expectServerError(() => encodeOpCompressed(once, CompressorId.Noop), ErrorCodes.ProtocolError);
    const nested = Buffer.from(once);
    nested.writeInt32LE(OpCode.Compressed, 16);
    expectServerError(() => decodeOpCompressed(nested), ErrorCodes.ProtocolError);
    expectServerError(() => encodeOpCompressed(PING.subarray(0, 20), CompressorId.Noop), ErrorCodes.ProtocolError);
    expectServerError(() => decodeOpCompressed(once.subarray(0, 24)), ErrorCodes.ProtocolError);
  });
});

describe('decompress', () => {
  const data = Buffer.from('abc'.repeat(1000));

  it('insists on the declared size, before inflating where it can', () => {
    for (const id of [CompressorId.Noop, CompressorId.Snappy, CompressorId.Zlib, CompressorId.Zstd]) {
      const packed = compress(id, data);
      assert.deepEqual(decompress(id, packed, data.length), data);
      expectServerError(() => decompress(id, packed, data.length - 1), ErrorCodes.BadValue);
      expectServerError(() => decompress(id, packed, data.length + 1), ErrorCodes.BadValue);
    }
    const err = expectServerError(() => decompress(CompressorId.Noop, data, data.length + 1), ErrorCodes.BadValue);
    assert.equal(err.message, 'Decompressing message returned less data than expected');
    const snappy = expectServerError(() => decompress(CompressorId.Snappy, compress(1, data), 5), ErrorCodes.BadValue);
    assert.equal(snappy.message, 'Uncompressed message size does not match expected size');
    const zstd = expectServerError(() => decompress(CompressorId.Zstd, compress(3, data), 5), ErrorCodes.BadValue);
    assert.equal(zstd.message, 'Uncompressed message size does not match expected size');
  });

  it('reads concatenated zstd frames, and refuses them when they overflow the declared size', () => {
    const packed = Buffer.concat([compress(CompressorId.Zstd, data), compress(CompressorId.Zstd, data)]);
    assert.deepEqual(decompress(CompressorId.Zstd, packed, 2 * data.length), Buffer.concat([data, data]));
    expectServerError(() => decompress(CompressorId.Zstd, packed, data.length), ErrorCodes.BadValue);
    expectServerError(() => decompress(CompressorId.Zstd, packed, 2 * data.length + 1), ErrorCodes.BadValue);
  });

  it('refuses a lone zstd frame that declares less than the message, before allocating the message', () => {
    // 26 bytes that claim a 47 MB message: refused from the frame header, not after a 47 MB buffer.
    const lone = compress(CompressorId.Zstd, Buffer.from('ten bytes!'));
    const err = expectServerError(() => decompress(CompressorId.Zstd, lone, 47_000_000), ErrorCodes.BadValue);
    assert.equal(err.message, 'Uncompressed message size does not match expected size');
    // A first frame that declares less is fine when more frames follow (they make up the rest).
    const two = Buffer.concat([lone, compress(CompressorId.Zstd, data)]);
    assert.deepEqual(decompress(CompressorId.Zstd, two, 10 + data.length), Buffer.concat([Buffer.from('ten bytes!'), data]));
    const short = expectServerError(() => decompress(CompressorId.Zstd, two, 10 + data.length + 1), ErrorCodes.BadValue);
    assert.equal(short.message, 'Decompressing message returned less data than expected');
  });

  it('skips zstd skippable frames, however many (zstd walks them, not our JS)', () => {
    // A skippable frame: magic 0x184D2A50, then a 4-byte length of user data (here none).
    const skippable = Buffer.alloc(8);
    skippable.writeUInt32LE(0x184d2a50, 0);
    const frames = Buffer.concat([...Array.from({ length: 100_000 }, () => skippable), compress(CompressorId.Zstd, data)]);
    assert.deepEqual(decompress(CompressorId.Zstd, frames, data.length), data);
    expectServerError(() => decompress(CompressorId.Zstd, Buffer.concat([frames, skippable.subarray(0, 5)]), data.length), ErrorCodes.BadValue);
  });

  it('refuses sizes beyond maxMessageSizeBytes and negative sizes', () => {
    for (const size of [-1, 48_000_000 - 15, 2 ** 31 - 1]) {
      const err = expectServerError(() => decompress(CompressorId.Zlib, Buffer.alloc(4), size), ErrorCodes.BadValue);
      assert.equal(err.message, 'Decompressed message would be larger than maximum message size');
    }
  });

  it('does not inflate a zlib bomb past the declared size', () => {
    const bomb = deflateSync(Buffer.alloc(40_000_000));
    assert.ok(bomb.length < 100_000);
    expectServerError(() => decompress(CompressorId.Zlib, bomb, 1000), ErrorCodes.BadValue);
  });

  it('does not inflate a zstd bomb past the declared size, with or without a content size in the frame', () => {
    const zeros = Buffer.alloc(40_000_000);
    const declared = compress(CompressorId.Zstd, zeros);
    assert.ok(declared.length < 100_000);
    const err = expectServerError(() => decompress(CompressorId.Zstd, declared, 1000), ErrorCodes.BadValue);
    assert.equal(err.message, 'Uncompressed message size does not match expected size');
    // A streaming encoder may leave the content size out: zstd then stops at our buffer's end.
    const cctx = new zstdBinding.CCtx();
    cctx.setParameter(zstdBinding.CParameter.contentSizeFlag, 0);
    const out = Buffer.alloc(zstdBinding.compressBound(zeros.length));
    const undeclared = out.subarray(0, cctx.compress2(out, zeros));
    assert.equal(zstdBinding.getFrameContentSize(undeclared), null);
    const bomb = expectServerError(() => decompress(CompressorId.Zstd, undeclared, 1000), ErrorCodes.BadValue);
    assert.equal(bomb.message, 'Compressed message was invalid or corrupted');
  });

  it('reports corrupt input as BadValue and unknown ids as unavailable', () => {
    expectServerError(() => decompress(CompressorId.Zlib, Buffer.from('not zlib'), 8), ErrorCodes.BadValue);
    expectServerError(() => decompress(CompressorId.Snappy, Buffer.from([8, 0xff, 0xff, 0xff]), 8), ErrorCodes.BadValue);
    expectServerError(() => decompress(CompressorId.Zstd, Buffer.from('not zstd'), 8), ErrorCodes.BadValue);
    const truncated = compress(CompressorId.Zstd, data).subarray(0, 12);
    expectServerError(() => decompress(CompressorId.Zstd, truncated, data.length), ErrorCodes.BadValue);
    const flipped = Buffer.from(compress(CompressorId.Zstd, data));
    flipped.fill(0x55, 8);
    expectServerError(() => decompress(CompressorId.Zstd, flipped, data.length), ErrorCodes.BadValue);
    for (const id of [4, 77]) {
      const err = expectServerError(() => decompress(id, data, 3), ErrorCodes.InternalError);
      assert.equal(err.message, 'Compression algorithm specified in message is not available');
      expectServerError(() => compress(id, data), ErrorCodes.InternalError);
    }
  });
});

describe('compressor negotiation', () => {
  it('maps names and ids', () => {
    assert.deepEqual(
      ['noop', 'snappy', 'zlib', 'zstd', 'lz4', 'constructor'].map(compressorIdFromName),
      [0, 1, 2, 3, undefined, undefined],
    );
    assert.deepEqual([0, 1, 2, 3, 4].map(compressorNameFromId), ['noop', 'snappy', 'zlib', 'zstd', undefined]);
  });

  it('answers with the overlap in the client order', () => {
    assert.deepEqual(SUPPORTED_COMPRESSORS, ['snappy', 'zstd', 'zlib']); // mongod's default
    assert.deepEqual(negotiateCompressors(['zstd', 'zlib', 'snappy']), ['zstd', 'zlib', 'snappy']);
    assert.deepEqual(negotiateCompressors(['zlib']), ['zlib']); // what mongosh offers
    assert.deepEqual(negotiateCompressors(['lz4', 'noop', 'zlib', 'zlib', 'zstd']), ['zlib', 'zstd']);
    assert.deepEqual(negotiateCompressors([]), []);
    assert.deepEqual(negotiateCompressors(['snappy', 'zlib'], ['zlib']), ['zlib']);
  });

  it('never compresses the handshake or authentication', () => {
    for (const name of ['hello', 'isMaster', 'ismaster', 'saslStart', 'saslContinue', 'getnonce',
      'authenticate', 'createUser', 'updateUser', 'copydbSaslStart', 'copydbgetnonce', 'copydb']) {
      assert.ok(UNCOMPRESSIBLE_COMMANDS.has(name), name);
      assert.equal(isCompressibleCommand(name), false);
    }
    assert.equal(isCompressibleCommand('find'), true);
  });
});
