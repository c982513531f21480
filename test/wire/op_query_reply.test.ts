import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes } from '../../src/errors.js';
import { OpQueryFlag, OpReplyFlag } from '../../src/wire/constants.js';
import { type OpQuery, decodeOpQuery, encodeOpQuery } from '../../src/wire/op_query.js';
import { type OpReply, decodeOpReply, encodeOpReply } from '../../src/wire/op_reply.js';
import { bson, bsonDoc, cstringText, expectServerError, hex, int32 } from './arbitraries.js';

const IS_MASTER = hex('13000000 10 69734d617374657200 01000000 00'); // {isMaster: 1}
const OK_1 = hex('11000000 01 6f6b00 000000000000f03f 00'); // {ok: 1.0}

describe('OP_QUERY', () => {
  it('lays out the legacy handshake byte for byte', () => {
    assert.deepEqual(IS_MASTER, bson({ isMaster: 1 }));
    const q: OpQuery = {
      requestID: 1,
      flags: OpQueryFlag.SecondaryOk,
      fullCollectionName: 'admin.$cmd',
      numberToSkip: 0,
      numberToReturn: -1,
      query: IS_MASTER,
    };
    const expected = hex(`
      3a000000 01000000 00000000 d4070000
      04000000 | 61646d696e2e24636d6400 | 00000000 | ffffffff | ${IS_MASTER.toString('hex')}`);
    assert.deepEqual(encodeOpQuery(q), expected);
    assert.deepEqual(decodeOpQuery(expected), q);
  });

  it('carries an optional returnFieldsSelector', () => {
    const q: OpQuery = {
      requestID: 5,
      flags: 0,
      fullCollectionName: 'db.c',
      numberToSkip: 3,
      numberToReturn: 10,
      query: IS_MASTER,
      returnFieldsSelector: hex('05000000 00'),
    };
    const frame = encodeOpQuery(q);
    assert.deepEqual(frame.subarray(frame.length - 5), hex('05000000 00'));
    assert.deepEqual(decodeOpQuery(frame), q);
  });

  it('rejects truncated and trailing bytes', () => {
    const frame = encodeOpQuery({
      requestID: 1, flags: 0, fullCollectionName: 'a.$cmd', numberToSkip: 0, numberToReturn: 1, query: IS_MASTER,
    });
    const cut = (n: number): Buffer => {
      const b = Buffer.from(frame.subarray(0, n));
      b.writeInt32LE(n, 0);
      return b;
    };
    expectServerError(() => decodeOpQuery(cut(18)), ErrorCodes.ProtocolError);
    expectServerError(() => decodeOpQuery(cut(25)), ErrorCodes.ProtocolError); // name without NUL
    expectServerError(() => decodeOpQuery(cut(30)), ErrorCodes.ProtocolError); // before numberToReturn
    expectServerError(() => decodeOpQuery(cut(frame.length - 1)), ErrorCodes.InvalidBSON);
    const trailing = Buffer.concat([frame, hex('05000000 00 ff')]);
    trailing.writeInt32LE(trailing.length, 0);
    expectServerError(() => decodeOpQuery(trailing), ErrorCodes.ProtocolError);
  });

  it('round-trips random queries', () => {
    const query = fc.record(
      {
        requestID: int32,
        flags: int32,
        fullCollectionName: cstringText,
        numberToSkip: int32,
        numberToReturn: int32,
        query: bsonDoc,
        returnFieldsSelector: bsonDoc,
      },
      {
        requiredKeys: ['requestID', 'flags', 'fullCollectionName', 'numberToSkip', 'numberToReturn', 'query'],
        noNullPrototype: true,
      },
    );
    fc.assert(
      fc.property(query, (q) => assert.deepEqual(decodeOpQuery(encodeOpQuery(q)), q)),
      { numRuns: 200 },
    );
  });
});

describe('OP_REPLY', () => {
  it('lays out a reply byte for byte', () => {
    const r: OpReply = {
      requestID: 2,
      responseTo: 1,
      responseFlags: OpReplyFlag.AwaitCapable,
      cursorID: 0x0102030405060708n,
      startingFrom: 0,
      documents: [OK_1],
    };
    const expected = hex(`
      35000000 02000000 01000000 01000000
      08000000 | 0807060504030201 | 00000000 | 01000000 | ${OK_1.toString('hex')}`);
    assert.deepEqual(encodeOpReply(r), expected);
    assert.deepEqual(decodeOpReply(expected), r);
  });

  it('rejects a numberReturned that disagrees with the documents', () => {
    const frame = encodeOpReply({
      requestID: 2, responseTo: 1, responseFlags: 0, cursorID: 0n, startingFrom: 0, documents: [OK_1, OK_1],
    });
    frame.writeInt32LE(3, 32);
    expectServerError(() => decodeOpReply(frame), ErrorCodes.ProtocolError);
    const short = Buffer.from(frame.subarray(0, 30));
    short.writeInt32LE(30, 0);
    expectServerError(() => decodeOpReply(short), ErrorCodes.ProtocolError);
  });

  it('round-trips random replies', () => {
    const reply = fc.record({
      requestID: int32,
      responseTo: int32,
      responseFlags: int32,
      cursorID: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      startingFrom: int32,
      documents: fc.array(bsonDoc, { maxLength: 5 }),
    }, { noNullPrototype: true });
    fc.assert(
      fc.property(reply, (r) => assert.deepEqual(decodeOpReply(encodeOpReply(r)), r)),
      { numRuns: 200 },
    );
  });
});
