import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes } from '../../src/errors.js';
import { MAX_MESSAGE_SIZE } from '../../src/wire/constants.js';
import { MessageFramer } from '../../src/wire/framing.js';
import { readHeader, writeHeader } from '../../src/wire/header.js';
import { expectServerError, int32 } from './arbitraries.js';

function message(requestID: number, payload: Uint8Array): Buffer {
  const frame = Buffer.alloc(16 + payload.length);
  writeHeader(frame, { messageLength: frame.length, requestID, responseTo: 0, opCode: 2013 });
  frame.set(payload, 16);
  return frame;
}

function lengthPrefix(length: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(length, 0);
  return b;
}

describe('message header', () => {
  it('reads and writes four little-endian int32', () => {
    const buf = Buffer.alloc(16);
    writeHeader(buf, { messageLength: 16, requestID: -2, responseTo: 0x7fffffff, opCode: 2012 });
    assert.deepEqual(buf, Buffer.from('10000000feffffffffffff7fdc070000', 'hex'));
    assert.deepEqual(readHeader(buf), { messageLength: 16, requestID: -2, responseTo: 0x7fffffff, opCode: 2012 });
    expectServerError(() => readHeader(buf.subarray(0, 15)), ErrorCodes.ProtocolError);
  });
});

describe('MessageFramer', () => {
  it('rejects a messageLength below the header size or above 48,000,000', () => {
    for (const bad of [0, 15, -1, -(2 ** 31), MAX_MESSAGE_SIZE + 1, 2 ** 31 - 1]) {
      const framer = new MessageFramer();
      const err = expectServerError(() => framer.push(lengthPrefix(bad)), ErrorCodes.ProtocolError);
      assert.equal(err.codeName, 'ProtocolError');
      assert.match(err.message, /msgLen -?\d+ is invalid\. Min 16 Max: 48000000/);
      // The stream has lost sync: it stays failed and holds nothing.
      assert.equal(framer.bufferedBytes, 0);
      expectServerError(() => framer.push(message(1, new Uint8Array(4))), ErrorCodes.ProtocolError);
    }
  });

  it('rejects a bad length as soon as its 4 bytes arrive, even split', () => {
    const framer = new MessageFramer();
    const prefix = lengthPrefix(MAX_MESSAGE_SIZE + 1);
    assert.deepEqual(framer.push(prefix.subarray(0, 1)), []);
    assert.deepEqual(framer.push(prefix.subarray(1, 3)), []);
    expectServerError(() => framer.push(prefix.subarray(3, 4)), ErrorCodes.ProtocolError);
  });

  it('returns the whole messages before a bad length, then stays failed', () => {
    const framer = new MessageFramer();
    const first = message(1, new Uint8Array(3));
    const second = message(2, new Uint8Array(0));
    const frames = framer.push(Buffer.concat([first, second, lengthPrefix(7), Buffer.alloc(20)]));
    assert.deepEqual(frames, [first, second], 'what came before is served');
    assert.equal(framer.failure?.code, ErrorCodes.ProtocolError);
    assert.match(framer.failure?.message ?? '', /msgLen 7 is invalid/);
    expectServerError(() => framer.push(Buffer.alloc(0)), ErrorCodes.ProtocolError);
  });

  it('accepts exactly 16 and exactly 48,000,000 bytes, and honours a smaller limit', () => {
    assert.equal(new MessageFramer().push(message(1, new Uint8Array(0)))[0]?.length, 16);
    const small = new MessageFramer({ maxMessageSize: 100 });
    expectServerError(() => small.push(lengthPrefix(101)), ErrorCodes.ProtocolError);
  });

  it('frames byte-by-byte and coalesced input, tracking bufferedBytes', () => {
    const a = message(1, Buffer.from('hello'));
    const b = message(2, Buffer.from('world!'));
    const framer = new MessageFramer();
    const out: Buffer[] = [];
    for (const byte of a) out.push(...framer.push(Buffer.of(byte)));
    assert.deepEqual(out, [a]);
    assert.equal(framer.bufferedBytes, 0);
    const both = Buffer.concat([a, b, b.subarray(0, 3)]);
    assert.deepEqual(framer.push(both), [a, b]);
    assert.equal(framer.bufferedBytes, 3);
    assert.deepEqual(framer.push(b.subarray(3)), [b]);
    assert.deepEqual(framer.push(Buffer.alloc(0)), []);
  });

  it('reassembles any stream of messages cut at any points', () => {
    const messages = fc.array(fc.tuple(int32, fc.uint8Array({ maxLength: 300 })), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(messages, fc.array(fc.nat(), { maxLength: 30 }), (specs, cuts) => {
        const originals = specs.map(([id, payload]) => message(id, payload));
        const stream = Buffer.concat(originals);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
        const framer = new MessageFramer();
        const framed: Buffer[] = [];
        let from = 0;
        for (const to of [...points, stream.length]) {
          framed.push(...framer.push(stream.subarray(from, to)));
          from = to;
        }
        assert.deepEqual(framed, originals);
        assert.equal(framer.bufferedBytes, 0);
      }),
      { numRuns: 300 },
    );
  });

  it('assembles a 48 MB message from 64 KiB chunks with one copy, in linear time', () => {
    const big = Buffer.alloc(MAX_MESSAGE_SIZE);
    writeHeader(big, { messageLength: big.length, requestID: 9, responseTo: 0, opCode: 2013 });
    big[big.length - 1] = 0xab;
    const framer = new MessageFramer();
    const frames: Buffer[] = [];
    const copied = bytesCopiedDuring(() => {
      for (let at = 0; at < big.length; at += 64 * 1024) {
        frames.push(...framer.push(big.subarray(at, at + 64 * 1024)));
        if (frames.length === 0) assert.equal(framer.bufferedBytes, Math.min(at + 64 * 1024, big.length));
      }
    });
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.length, MAX_MESSAGE_SIZE);
    assert.equal(frames[0]?.[MAX_MESSAGE_SIZE - 1], 0xab);
    // Counted, not timed: a concat per chunk would copy ~17 GB. (At most 2x, in case one
    // copy is counted twice, as by a concat implemented with copy.)
    assert.ok(copied <= 2 * MAX_MESSAGE_SIZE, `${copied} bytes copied`);
  });
});

/** Bytes copied by Buffer.concat, Buffer#copy and TypedArray#set while `run` runs. */
function bytesCopiedDuring(run: () => void): number {
  const { concat } = Buffer;
  const { copy } = Buffer.prototype;
  const { set } = Uint8Array.prototype;
  let bytes = 0;
  Buffer.concat = function (this: typeof Buffer, ...args: Parameters<typeof concat>) {
    const result = concat.apply(this, args);
    bytes += result.length;
    return result;
  };
  Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<typeof copy>) {
    const n = copy.apply(this, args);
    bytes += n;
    return n;
  };
  Uint8Array.prototype.set = function (this: Uint8Array, ...args: Parameters<typeof set>) {
    bytes += (args[0] as ArrayLike<number>).length;
    return set.apply(this, args);
  };
  try {
    run();
  } finally {
    Buffer.concat = concat;
    Buffer.prototype.copy = copy;
    Uint8Array.prototype.set = set;
  }
  return bytes;
}
