/**
 * `--advertise`: the addresses in mongod's handshake replies, rewritten on real frames
 * (test/helpers/member_hello.ts: captured replies given a member's fields).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { advertiseInReply } from '../../src/proxy/advertised_hello.js';
import { encodeOpCompressed, readOpCompressedHeader, decodeOpCompressed } from '../../src/wire/compression.js';
import { CompressorId, OpCode, OpMsgFlag } from '../../src/wire/constants.js';
import { decodeOpMsg } from '../../src/wire/op_msg.js';
import { decodeOpReply } from '../../src/wire/op_reply.js';
import { MEMBER, bodyOf, captured, memberFields, withFields } from '../helpers/member_hello.js';

const ADVERTISED = 'backup-proxy.example:27018';

describe('advertiseInReply', () => {
  const hello = captured('2013 reply to 2013 hello offering none');
  const isMaster = captured('1 reply to 2004 ismaster offering none');

  it('names the advertised address for the member in an OP_MSG hello reply, and keeps everything else', () => {
    const reply = withFields(hello, memberFields());
    const out = advertiseInReply(reply, ADVERTISED);
    assert.equal(out.rewritten, true);
    assert.equal(out.moreToCome, false);
    const expected = { ...bodyOf(reply), me: ADVERTISED, hosts: [ADVERTISED], primary: ADVERTISED };
    assert.deepEqual(bodyOf(out.frame), expected);
    // Field order too: a driver does not care, a byte comparison of the rest does.
    assert.deepEqual(Object.keys(bodyOf(out.frame)), Object.keys(expected));
    assert.equal(out.frame.readInt32LE(0), out.frame.length);
    for (const at of [4, 8, 12, 16]) assert.equal(out.frame.readInt32LE(at), reply.readInt32LE(at), `header/flags int32 at ${at}`);
  });

  it('does the same in the OP_REPLY to a legacy isMaster over OP_QUERY', () => {
    const reply = withFields(isMaster, memberFields());
    const out = advertiseInReply(reply, ADVERTISED);
    assert.equal(out.rewritten, true);
    assert.deepEqual(bodyOf(out.frame), { ...bodyOf(reply), me: ADVERTISED, hosts: [ADVERTISED], primary: ADVERTISED });
    const before = decodeOpReply(reply);
    const after = decodeOpReply(out.frame);
    assert.deepEqual([after.requestID, after.responseTo, after.responseFlags, after.cursorID, after.startingFrom], [before.requestID, before.responseTo, before.responseFlags, before.cursorID, before.startingFrom]);
  });

  it('keeps moreToCome (an awaitable hello) and says so, and recomputes a checksum', () => {
    const reply = withFields(hello, memberFields(), { flags: OpMsgFlag.MoreToCome, checksum: true });
    const out = advertiseInReply(reply, ADVERTISED);
    assert.equal(out.moreToCome, true);
    const msg = decodeOpMsg(out.frame); // verifies the CRC-32C
    assert.equal(msg.flags, OpMsgFlag.MoreToCome | OpMsgFlag.ChecksumPresent);
    assert.equal(bodyOf(out.frame)['me'], ADVERTISED);
  });

  for (const [name, id] of [['snappy', CompressorId.Snappy], ['zlib', CompressorId.Zlib], ['zstd', CompressorId.Zstd]] as const) {
    it(`rewrites a reply mongod compressed with ${name} (it answers a compressed hello compressed) and compresses it again with ${name}`, () => {
      const plain = withFields(hello, memberFields(), { flags: OpMsgFlag.MoreToCome });
      const out = advertiseInReply(encodeOpCompressed(plain, id), ADVERTISED);
      assert.equal(out.rewritten, true);
      assert.equal(out.moreToCome, true, 'the flag inside the compressed body');
      assert.equal(out.frame.readInt32LE(12), OpCode.Compressed);
      assert.equal(readOpCompressedHeader(out.frame).compressorId, id);
      assert.equal(out.frame.readInt32LE(8), plain.readInt32LE(8), 'responseTo');
      assert.deepEqual(bodyOf(decodeOpCompressed(out.frame)), { ...bodyOf(plain), me: ADVERTISED, hosts: [ADVERTISED], primary: ADVERTISED });
    });
  }

  it('passes a standalone\'s reply (no member named) as the very bytes mongod sent', () => {
    for (const reply of [hello, isMaster]) {
      const out = advertiseInReply(reply, ADVERTISED);
      assert.equal(out.rewritten, false);
      assert.equal(out.frame, reply);
    }
  });

  it('leaves the other members out, so a driver never learns an address behind the proxy', () => {
    const secondary = withFields(hello, memberFields({
      isWritablePrimary: false,
      secondary: true,
      hosts: ['db-6.internal:27017', MEMBER, 'db-8.internal:27017'],
      passives: ['db-9.internal:27017'],
      arbiters: ['arbiter.internal:27017'],
      primary: 'db-6.internal:27017',
    }));
    const body = bodyOf(advertiseInReply(secondary, ADVERTISED).frame);
    assert.equal(body['me'], ADVERTISED);
    assert.deepEqual(body['hosts'], [ADVERTISED]);
    assert.deepEqual(body['passives'], []);
    assert.deepEqual(body['arbiters'], []);
    assert.equal('primary' in body, false);
    assert.equal(body['setName'], 'rs0');
  });

  it('passes a reply it cannot decode untouched', () => {
    const reply = withFields(hello, memberFields());
    const broken = Buffer.from(reply);
    broken.writeInt32LE(1_000_000, 21); // the body document's length
    const out = advertiseInReply(broken, ADVERTISED);
    assert.equal(out.frame, broken);
    assert.equal(out.rewritten, false);
  });
});
