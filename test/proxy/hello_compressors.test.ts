/**
 * The handshake rewrite, byte by byte: only `compression` changes; requestID, flags,
 * other sections and the wrapper stay; a checksum is recomputed; nothing to strip means
 * no rewrite.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stripUnreadableCompressors } from '../../src/proxy/hello_compressors.js';
import { deserialize } from 'bson';
import { encodeDocument } from '../../src/wire/command_message.js';
import { CompressorId, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { crc32c } from '../../src/wire/crc32c.js';
import { decodeOpMsg, encodeOpMsg, opMsgBody } from '../../src/wire/op_msg.js';
import { decodeOpQuery, encodeOpQuery } from '../../src/wire/op_query.js';
import { peekRequest, type PeekedCommand } from '../../src/wire/peek.js';

function strip(frame: Buffer) {
  const peek = peekRequest(frame);
  assert.equal(peek.kind, 'command');
  return stripUnreadableCompressors(frame, (peek as { command: PeekedCommand }).command);
}

const hello = (compression: unknown[], checksum = true): Buffer =>
  encodeOpMsg(
    {
      requestID: 77,
      responseTo: 0,
      flags: OpMsgFlag.ExhaustAllowed,
      sections: [
        { kind: 0, body: encodeDocument({ hello: 1, client: { driver: { name: 'x' } }, compression, $db: 'admin' }) },
        { kind: 1, identifier: 'extra', documents: [encodeDocument({ a: 1 })] },
      ],
    },
    { checksum },
  );

describe('stripUnreadableCompressors', () => {
  it('rewrites an OP_MSG hello: same requestID, flags and other sections, a fresh checksum', () => {
    const out = strip(hello(['lz4', 'zstd', 'zlib', 'noop', 'snappy']));
    assert.ok(out);
    assert.deepEqual(out.removed, ['lz4']);
    assert.equal(out.frame.readInt32LE(4), 77);
    const msg = decodeOpMsg(out.frame); // verifies the checksum
    assert.equal(msg.flags, OpMsgFlag.ExhaustAllowed | OpMsgFlag.ChecksumPresent);
    assert.equal(out.frame.readUInt32LE(out.frame.length - 4), crc32c(out.frame.subarray(0, out.frame.length - 4)));
    assert.deepEqual(deserialize(opMsgBody(msg)), {
      hello: 1, client: { driver: { name: 'x' } }, compression: ['zstd', 'zlib', 'noop', 'snappy'], $db: 'admin',
    });
    assert.deepEqual(msg.sections[1], { kind: 1, identifier: 'extra', documents: [encodeDocument({ a: 1 })] });
    const noChecksum = strip(hello(['lz4'], false));
    assert.equal(decodeOpMsg(noChecksum?.frame as Buffer).flags & OpMsgFlag.ChecksumPresent, 0);
  });

  it('rewrites a legacy OP_QUERY isMaster, inside its $query wrapper', () => {
    const query = encodeDocument({ $query: { ismaster: 1, compression: ['zstd', 'lz4'] }, $readPreference: { mode: 'primary' } });
    const frame = encodeOpQuery({ requestID: 5, flags: 4, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1, query });
    const out = strip(frame);
    assert.deepEqual(out?.removed, ['lz4']);
    const q = decodeOpQuery(out?.frame as Buffer);
    assert.deepEqual({ ...q, query: deserialize(q.query) }, {
      requestID: 5, flags: 4, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1,
      query: { $query: { ismaster: 1, compression: ['zstd'] }, $readPreference: { mode: 'primary' } },
    });
  });

  it('leaves alone what has nothing to strip or is not a handshake', () => {
    assert.equal(strip(hello(['zstd', 'snappy'])), undefined);
    assert.equal(strip(hello([])), undefined);
    assert.equal(strip(hello([3, 'zlib'])), undefined); // mongod refuses non-strings itself
    const ping = encodeOpMsg({ requestID: 1, responseTo: 0, flags: 0, sections: [{ kind: 0, body: encodeDocument({ ping: 1, compression: ['lz4'], $db: 'a' }) }] });
    assert.equal(strip(ping), undefined);
    assert.equal(strip(encodeOpCompressed(hello(['lz4']), CompressorId.Zlib)), undefined);
    const stale = hello(['lz4']);
    stale.writeUInt32LE(0, stale.length - 4); // a bad checksum: mongod answers it as sent
    assert.equal(strip(stale), undefined);
  });
});
