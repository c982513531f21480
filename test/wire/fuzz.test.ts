/**
 * The dev server and the proxy run these decoders on bytes from any client: on garbage
 * they must fail with a CommandError (which becomes an error reply or a closed
 * connection), never with a RangeError from an out-of-bounds read.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CommandError, ErrorCodes } from '../../src/errors.js';
import { CompressorId } from '../../src/wire/constants.js';
import { decodeOpCompressed, encodeOpCompressed } from '../../src/wire/compression.js';
import { MessageFramer } from '../../src/wire/framing.js';
import { decodeOpMsg, encodeOpMsg } from '../../src/wire/op_msg.js';
import { decodeOpQuery, encodeOpQuery } from '../../src/wire/op_query.js';
import { decodeOpReply, encodeOpReply } from '../../src/wire/op_reply.js';
import { decodeReply, decodeRequest } from '../../src/wire/command_message.js';
import { bson, expectServerError, hex } from './arbitraries.js';
import { loadTraffic, streamPart } from '../fuzz/traffic.js';

const body = bson({ insert: 'c', $db: 'test' });
const docs = [bson({ _id: 1, a: 'x' }), bson({ _id: 2 })];
const opMsg = (checksum: boolean): Buffer =>
  encodeOpMsg(
    {
      requestID: 1,
      responseTo: 0,
      flags: 0,
      sections: [{ kind: 0, body }, { kind: 1, identifier: 'documents', documents: docs }],
    },
    { checksum },
  );
const opQuery = encodeOpQuery({
  requestID: 1,
  flags: 0,
  fullCollectionName: 'admin.$cmd',
  numberToSkip: 0,
  numberToReturn: -1,
  query: body,
  returnFieldsSelector: docs[1] as Buffer,
});
const opReply = encodeOpReply({
  requestID: 1,
  responseTo: 1,
  responseFlags: 0,
  cursorID: 5n,
  startingFrom: 0,
  documents: docs,
});

const decoders: Array<[string, (frame: Buffer) => unknown, Buffer[]]> = [
  ['decodeOpMsg', decodeOpMsg, [opMsg(false), opMsg(true)]],
  ['decodeOpQuery', decodeOpQuery, [opQuery]],
  ['decodeOpReply', decodeOpReply, [opReply]],
  [
    'decodeOpCompressed',
    decodeOpCompressed,
    [CompressorId.Noop, CompressorId.Snappy, CompressorId.Zlib].map((id) => encodeOpCompressed(opMsg(false), id)),
  ],
];

/** A valid frame with a few bytes overwritten and maybe shortened; the header stays honest. */
function mutated(frames: Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.constantFrom(...frames),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat({ max: 40 }),
    )
    .map(([frame, edits, cut]) => {
      const copy = Buffer.from(frame.subarray(0, Math.max(16, frame.length - cut)));
      for (const [at, byte] of edits) copy[16 + (at % Math.max(1, copy.length - 16))] = byte;
      copy.writeInt32LE(copy.length, 0);
      return copy;
    });
}

describe('decoders on garbage', () => {
  for (const [name, decode, frames] of decoders) {
    it(`${name} throws only CommandError`, () => {
      fc.assert(
        fc.property(mutated(frames), (frame) => {
          try {
            decode(frame);
          } catch (err) {
            assert.ok(err instanceof CommandError, `${name}: ${String(err)}`);
          }
        }),
        { numRuns: 1000 },
      );
    });
  }

  it('MessageFramer throws only CommandError', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
        const framer = new MessageFramer({ maxMessageSize: 64 });
        try {
          for (const chunk of chunks) {
            for (const frame of framer.push(Buffer.from(chunk))) assert.equal(frame.readInt32LE(0), frame.length);
          }
        } catch (err) {
          assert.ok(err instanceof CommandError, String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('decodeRequest on an OP_COMPRESSED too short for its own header: a ProtocolError, not a RangeError', () => {
    // Found by the fuzzing below: the compressor id (byte 24) was read before the length was checked.
    const frame = hex('10000000 23000000 00000000 dc070000');
    expectServerError(() => decodeRequest(frame), ErrorCodes.ProtocolError);
  });

  // The whole-message decoders the proxy runs on a claimed command (decodeRequest) and on
  // mongod's reply it amends (decodeReply), on mutated real traffic (test/fuzz/traffic.ts).
  // The bson library's own BSONError is a clean failure too; a RangeError is not.
  const traffic = loadTraffic();
  const cases: Array<[string, (frame: Buffer) => unknown, Buffer[]]> = [
    ['decodeRequest', (frame) => decodeRequest(frame), traffic.client.map((c) => c.frame)],
    ['decodeReply', decodeReply, traffic.server.map((s) => s.frame)],
  ];
  for (const [name, decode, seeds] of cases) {
    it(`${name} on mutated captured messages throws only CommandError or BSONError`, () => {
      fc.assert(
        fc.property(streamPart(seeds), (frame) => {
          if (frame.length < 16 || frame.readInt32LE(0) !== frame.length) return; // the framer's job
          try {
            decode(frame);
          } catch (err) {
            assert.ok(err instanceof CommandError || (err instanceof Error && err.name === 'BSONError'), `${name}: ${String(err)}`);
          }
        }),
        { numRuns: 5000 },
      );
    });
  }
});
