import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes } from '../../src/errors.js';
import { OpMsgFlag } from '../../src/wire/constants.js';
import { crc32c } from '../../src/wire/crc32c.js';
import {
  type OpMsg,
  type OpMsgSection,
  decodeOpMsg,
  encodeOpMsg,
  opMsgBody,
  opMsgDocumentSequences,
} from '../../src/wire/op_msg.js';
import { bson, bsonDoc, cstringText, expectServerError, hex, int32 } from './arbitraries.js';

// {ping: 1, $db: "admin"}, written out by hand from the BSON spec.
const PING_BODY = hex(`
  1e000000
  10 70696e6700 01000000
  02 24646200 06000000 61646d696e00
  00`);
// {a: 1}
const A1 = hex('0c000000 10 6100 01000000 00');

describe('OP_MSG encoding', () => {
  it('lays out a kind-0 and a kind-1 section byte for byte', () => {
    assert.deepEqual(PING_BODY, bson({ ping: 1, $db: 'admin' }));
    const frame = encodeOpMsg({
      requestID: 0x01020304,
      responseTo: 0,
      flags: OpMsgFlag.MoreToCome,
      sections: [
        { kind: 0, body: PING_BODY },
        { kind: 1, identifier: 'documents', documents: [A1, A1] },
      ],
    });
    const expected = hex(`
      5a000000 04030201 00000000 dd070000
      02000000
      00 | ${PING_BODY.toString('hex')}
      01 | 26000000 646f63756d656e747300 | ${A1.toString('hex')} ${A1.toString('hex')}
    `);
    assert.equal(expected.length, 0x5a);
    assert.deepEqual(frame, expected);
  });

  it('appends a CRC-32C of every prior byte and sets checksumPresent', () => {
    const frame = encodeOpMsg(
      { requestID: 7, responseTo: 0, flags: 0, sections: [{ kind: 0, body: PING_BODY }] },
      { checksum: true },
    );
    // The checksum was computed independently with a bitwise reference implementation.
    const expected = hex(`
      37000000 07000000 00000000 dd070000
      01000000
      00 ${PING_BODY.toString('hex')}
      0b1bb50f`);
    assert.deepEqual(frame, expected);
    assert.equal(crc32c(frame.subarray(0, frame.length - 4)), frame.readUInt32LE(frame.length - 4));
    assert.equal(decodeOpMsg(frame).flags, OpMsgFlag.ChecksumPresent);
  });

  it('clears checksumPresent when no checksum is asked for', () => {
    const frame = encodeOpMsg({
      requestID: 1,
      responseTo: 0,
      flags: OpMsgFlag.ChecksumPresent | OpMsgFlag.ExhaustAllowed,
      sections: [{ kind: 0, body: PING_BODY }],
    });
    assert.equal(frame.readUInt32LE(16), OpMsgFlag.ExhaustAllowed);
    assert.equal(frame.length, 16 + 4 + 1 + PING_BODY.length);
  });

  it('refuses messages mongod would refuse', () => {
    const body: OpMsgSection = { kind: 0, body: PING_BODY };
    const msg = (sections: OpMsgSection[]): OpMsg => ({ requestID: 1, responseTo: 0, flags: 0, sections });
    expectServerError(() => encodeOpMsg(msg([])), ErrorCodes.ProtocolError);
    expectServerError(() => encodeOpMsg(msg([body, body])), ErrorCodes.ProtocolError);
    expectServerError(() => encodeOpMsg(msg([{ kind: 0, body: PING_BODY.subarray(0, 10) }])), ErrorCodes.InvalidBSON);
    const seq: OpMsgSection = { kind: 1, identifier: 'documents', documents: [] };
    expectServerError(() => encodeOpMsg(msg([body, seq, seq])), 40431);
    expectServerError(() => encodeOpMsg(msg([body, { kind: 1, identifier: 'a\0b', documents: [] }])), ErrorCodes.BadValue);
  });
});

describe('OP_MSG decoding', () => {
  const frameOf = (flags: number, sectionBytes: string): Buffer => {
    const rest = hex(sectionBytes);
    const frame = Buffer.alloc(20 + rest.length);
    frame.writeInt32LE(frame.length, 0);
    frame.writeInt32LE(2013, 12);
    frame.writeUInt32LE(flags >>> 0, 16);
    rest.copy(frame, 20);
    return frame;
  };
  const body = `00 ${PING_BODY.toString('hex')}`;

  it('reads sections in any order, as views into the frame', () => {
    const frame = frameOf(0, `01 12000000 7800 ${A1.toString('hex')} ${body}`);
    const msg = decodeOpMsg(frame);
    assert.deepEqual(msg.sections, [
      { kind: 1, identifier: 'x', documents: [A1] },
      { kind: 0, body: PING_BODY },
    ]);
    assert.deepEqual(opMsgBody(msg), PING_BODY);
    assert.deepEqual(opMsgDocumentSequences(msg).get('x'), [A1]);
    assert.equal(opMsgBody(msg).buffer, frame.buffer);
  });

  it('accepts an empty document sequence', () => {
    const msg = decodeOpMsg(frameOf(0, `${body} 01 06000000 7800`));
    assert.deepEqual(msg.sections[1], { kind: 1, identifier: 'x', documents: [] });
  });

  it('rejects a checksum mismatch with 288 ChecksumMismatch', () => {
    const frame = encodeOpMsg(
      { requestID: 7, responseTo: 0, flags: 0, sections: [{ kind: 0, body: PING_BODY }] },
      { checksum: true },
    );
    for (const at of [5, 25, frame.length - 1]) {
      const bad = Buffer.from(frame);
      bad[at] = (bad[at] as number) ^ 0x40;
      const err = expectServerError(() => decodeOpMsg(bad), ErrorCodes.ChecksumMismatch);
      assert.equal(err.codeName, 'ChecksumMismatch');
      assert.equal(err.message, 'OP_MSG checksum does not match contents');
    }
  });

  it('rejects a checksum flag with no room for a checksum', () => {
    expectServerError(() => decodeOpMsg(frameOf(OpMsgFlag.ChecksumPresent, '00000000')), 51251);
  });

  it('rejects unknown required flag bits with 223 IllegalOpMsgFlag, ignores optional ones', () => {
    for (let bit = 2; bit < 16; bit++) {
      const err = expectServerError(() => decodeOpMsg(frameOf(1 << bit, body)), ErrorCodes.IllegalOpMsgFlag);
      assert.equal(err.codeName, 'IllegalOpMsgFlag');
      assert.match(err.message, /^Message contains illegal flags value: Ob[01]{32}$/);
    }
    const optional = (OpMsgFlag.ExhaustAllowed | (1 << 20) | (1 << 31)) >>> 0;
    assert.equal(decodeOpMsg(frameOf(optional, body)).flags, optional);
  });

  it('rejects malformed section layouts with mongod codes', () => {
    expectServerError(() => decodeOpMsg(frameOf(0, '')), 40587);
    expectServerError(() => decodeOpMsg(frameOf(0, '01 06000000 7800')), 40587);
    expectServerError(() => decodeOpMsg(frameOf(0, `${body} ${body}`)), 40430);
    expectServerError(() => decodeOpMsg(frameOf(0, `${body} 01 06000000 7800 01 06000000 7800`)), 40431);
    expectServerError(() => decodeOpMsg(frameOf(0, `${body} 03`)), 40432);
    expectServerError(() => decodeOpMsg(frameOf(0, `${body} 02 7800`)), ErrorCodes.Unauthorized);
    // Body length prefix runs past the end of the message.
    expectServerError(() => decodeOpMsg(frameOf(0, `00 ff000000 00`)), ErrorCodes.InvalidBSON);
    // Document sequence size runs past the end; identifier without NUL; doc overruns section.
    expectServerError(() => decodeOpMsg(frameOf(0, `${body} 01 40000000 7800`)), ErrorCodes.ProtocolError);
    expectServerError(() => decodeOpMsg(frameOf(0, `${body} 01 06000000 7878`)), ErrorCodes.ProtocolError);
    expectServerError(
      () => decodeOpMsg(frameOf(0, `${body} 01 0a000000 7800 0c000000`)),
      ErrorCodes.InvalidBSON,
    );
    // A frame whose messageLength disagrees with its size, or with another opcode.
    const frame = frameOf(0, body);
    expectServerError(() => decodeOpMsg(frame.subarray(0, frame.length - 1)), ErrorCodes.ProtocolError);
    const other = Buffer.from(frame);
    other.writeInt32LE(2004, 12);
    expectServerError(() => decodeOpMsg(other), ErrorCodes.ProtocolError);
  });

  it('round-trips random messages', () => {
    const section1 = fc.record({
      kind: fc.constant(1 as const),
      identifier: cstringText,
      documents: fc.array(bsonDoc, { maxLength: 4 }),
    }, { noNullPrototype: true });
    const message = fc
      .record({
        requestID: int32,
        responseTo: int32,
        // Any flags except unknown required bits 2-15.
        flags: fc.nat({ max: 0xffffffff }).map((f) => (f & ~0xfffc) >>> 0),
        body: bsonDoc,
        sequences: fc.uniqueArray(section1, { selector: (s) => s.identifier, maxLength: 3 }),
        bodyAt: fc.nat(),
        checksum: fc.boolean(),
      })
      .map(({ body, sequences, bodyAt, checksum, ...rest }) => {
        const sections: OpMsgSection[] = [...sequences];
        sections.splice(bodyAt % (sequences.length + 1), 0, { kind: 0, body });
        return { msg: { ...rest, sections }, checksum };
      });
    fc.assert(
      fc.property(message, ({ msg, checksum }) => {
        const decoded = decodeOpMsg(encodeOpMsg(msg, { checksum }));
        const flags = ((msg.flags & ~1) | (checksum ? 1 : 0)) >>> 0;
        assert.deepEqual(decoded, { ...msg, flags });
      }),
      { numRuns: 300 },
    );
  });
});
