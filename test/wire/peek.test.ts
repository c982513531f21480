import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BSON, BSONRegExp, BSONSymbol, Binary, Code, DBRef, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId,
  Timestamp,
} from 'bson';
import { CommandError, LocationCodes } from '../../src/errors.js';
import { CompressorId, OpCode, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';
import { encodeOpReply } from '../../src/wire/op_reply.js';
import { peekRequest, type PeekedCommand } from '../../src/wire/peek.js';
import { checkLegacyOpcode, decodeRequest } from '../../src/wire/command_message.js';
import { bson, bsonDoc, cstringText, int32 } from './arbitraries.js';

const msg = (body: Buffer, flags = 0, checksum = false): Buffer =>
  encodeOpMsg(
    {
      requestID: 1,
      responseTo: 0,
      flags,
      sections: [
        { kind: 1, identifier: 'documents', documents: [bson({ a: 1 })] },
        { kind: 0, body },
      ],
    },
    { checksum },
  );

const query = (ns: string, doc: Buffer): Buffer =>
  encodeOpQuery({ requestID: 1, flags: 0, fullCollectionName: ns, numberToSkip: 0, numberToReturn: -1, query: doc });

/** The command the peek finds in `frame`, or undefined for anything else. */
function peekCommand(frame: Buffer): PeekedCommand | undefined {
  const peek = peekRequest(frame);
  return peek.kind === 'command' ? peek.command : undefined;
}

describe('peekRequest', () => {
  it('reads the command name and $db of an OP_MSG, skipping values of every BSON type', () => {
    const body = bson({
      backupStart: '/backups/x',
      d: new Double(1.5), s: 'str', o: { nested: { deep: 1 } }, a: [1, 2, 3],
      bin: new Binary(Buffer.from('xyz'), 4), u: undefined, oid: new ObjectId(), t: true, date: new Date(0),
      n: null, re: new BSONRegExp('a.*', 'i'), code: new Code('x()'), sym: new BSONSymbol('s'),
      cws: new Code('y()', { z: 1 }), i: new Int32(5), ts: new Timestamp({ t: 1, i: 2 }), l: Long.fromNumber(7),
      dec: Decimal128.fromString('1.1'), max: new MaxKey(), min: new MinKey(), ref: new DBRef('c', new ObjectId()),
      $db: 'admin',
    });
    const frame = msg(body);
    assert.deepEqual(peekCommand(frame), { opCode: OpCode.Msg, commandName: 'backupStart', argumentType: 0x02, db: 'admin' });
    assert.deepEqual(peekCommand(msg(body, OpMsgFlag.MoreToCome, true)), {
      opCode: OpCode.Msg, commandName: 'backupStart', argumentType: 0x02, db: 'admin', moreToCome: true,
    });
  });

  it('walks deprecated types (undefined, DBPointer) at the top level', () => {
    // {ping: undefined, p: DBPointer("ns", ObjectId), $db: "x"}, by hand.
    const doc = Buffer.from(
      ['00000000', '0670696e6700', '0c7000', '030000006e7300', 'aa'.repeat(12), '0224646200', '020000007800', '00']
        .join(''),
      'hex',
    );
    doc.writeInt32LE(doc.length, 0);
    assert.deepEqual(peekCommand(msg(doc)), { opCode: OpCode.Msg, commandName: 'ping', argumentType: 0x06, db: 'x' });
  });

  it('reads legacy commands on <db>.$cmd, unwrapping $query and query', () => {
    assert.deepEqual(peekCommand(query('admin.$cmd', bson({ isMaster: 1, client: { a: 1 } }))), {
      opCode: OpCode.Query, commandName: 'isMaster', argumentType: 0x10, db: 'admin',
    });
    const wrapped = bson({ $query: { hello: 1, helloOk: true }, $readPreference: { mode: 'secondaryPreferred' } });
    assert.deepEqual(peekCommand(query('admin.$cmd', wrapped)), { opCode: OpCode.Query, commandName: 'hello', argumentType: 0x10, db: 'admin' });
    assert.deepEqual(peekCommand(query('test.$cmd', bson({ query: { count: 'c' } }))), {
      opCode: OpCode.Query, commandName: 'count', argumentType: 0x02, db: 'test',
    });
    // Not commands: a legacy find on a collection; a $query that is not a document.
    assert.equal(peekCommand(query('test.coll', bson({ x: 1 }))), undefined);
    assert.equal(peekCommand(query('admin.$cmd', bson({ $query: 1 }))), undefined);
  });

  it('takes only <db>.$cmd exactly as a command namespace, as mongod and the decoder do', () => {
    // mongod's NamespaceString splits at the first dot: `admin.foo.$cmd` is a query on the
    // collection `foo.$cmd` of `admin`, not a command on a database `admin.foo`.
    for (const ns of ['admin.foo.$cmd', 'admin.$cmd.x', 'admin$cmd', 'admin.$cmdx']) {
      const frame = query(ns, bson({ backupStatus: 1 }));
      assert.equal(peekCommand(frame), undefined, ns);
      const decoded = decodeRequest(frame);
      assert.equal(decoded.queryNamespace, ns, 'the decoder does not take it for a command either');
      assert.throws(() => checkLegacyOpcode(decoded), (err: unknown) => err instanceof CommandError && err.code === LocationCodes.OpQueryRemoved, ns);
    }
    const frame = query('admin.$cmd', bson({ backupStatus: 1 }));
    assert.equal(peekCommand(frame)?.db, 'admin');
    assert.equal(decodeRequest(frame).db, 'admin');
    assert.equal(decodeRequest(frame).queryNamespace, undefined);
  });

  it('decompresses OP_COMPRESSED and says which compressor was used', () => {
    const body = bson({ find: 'c', filter: {}, $db: 'test' });
    for (const id of [CompressorId.Noop, CompressorId.Snappy, CompressorId.Zlib, CompressorId.Zstd]) {
      assert.deepEqual(peekCommand(encodeOpCompressed(msg(body), id)), {
        opCode: OpCode.Msg, commandName: 'find', argumentType: 0x02, db: 'test', compressorId: id,
      });
    }
    const legacy = encodeOpCompressed(query('admin.$cmd', bson({ ismaster: 1 })), CompressorId.Zlib);
    assert.equal(peekCommand(legacy)?.commandName, 'ismaster');
    const corrupt = encodeOpCompressed(msg(body), CompressorId.Zlib);
    corrupt.fill(0x55, 30);
    assert.equal(peekCommand(corrupt), undefined);
  });

  it('tells a compressed command it cannot decompress from a message that is not a command', () => {
    const body = bson({ backupStart: '/b', $db: 'admin' });
    const zstd = encodeOpCompressed(msg(body), CompressorId.Zstd);
    const peeked = peekRequest(zstd);
    assert.ok(peeked.kind === 'command');
    assert.deepEqual(peeked.command, { opCode: OpCode.Msg, commandName: 'backupStart', argumentType: 0x02, db: 'admin', compressorId: 3 });
    // The body it inflated, for the decoder: the message minus its header, as sent.
    assert.deepEqual(peeked.decompressed, msg(body).subarray(16));
    assert.deepEqual(decodeRequest(zstd, peeked.decompressed), decodeRequest(zstd));
    const unknownId = Buffer.from(encodeOpCompressed(msg(body), CompressorId.Noop));
    unknownId[24] = 9;
    const corrupt = Buffer.from(zstd);
    corrupt.fill(0x55, 30);
    const wrongSize = Buffer.from(zstd);
    wrongSize.writeInt32LE(wrongSize.readInt32LE(20) + 1, 20);
    const truncated = Buffer.from(zstd.subarray(0, 20));
    truncated.writeInt32LE(20, 0);
    for (const frame of [unknownId, corrupt, wrongSize, truncated]) {
      const peeked = peekRequest(frame);
      assert.equal(peeked.kind, 'undecodable');
      assert.equal(peeked.kind, 'undecodable');
      assert.ok(peeked.kind === 'undecodable' && peeked.error instanceof CommandError);
      assert.equal(peekCommand(frame), undefined);
    }
    // Only OP_MSG and OP_QUERY carry commands: a compressed reply is no command of ours.
    const reply = encodeOpReply({ requestID: 1, responseTo: 1, responseFlags: 0, cursorID: 0n, startingFrom: 0, documents: [] });
    const compressedReply = Buffer.from(encodeOpCompressed(reply, CompressorId.Noop));
    compressedReply[24] = 9;
    assert.deepEqual(peekRequest(compressedReply), { kind: 'unknown' });
    assert.deepEqual(peekRequest(msg(bson({ ping: 1 }))), { kind: 'unknown' });
  });

  it('returns undefined for replies, bodies without $db, and empty bodies', () => {
    const reply = encodeOpReply({
      requestID: 1, responseTo: 1, responseFlags: 0, cursorID: 0n, startingFrom: 0, documents: [],
    });
    assert.equal(peekCommand(reply), undefined);
    assert.equal(peekCommand(msg(bson({ ping: 1 }))), undefined);
    assert.equal(peekCommand(msg(bson({ ping: 1, $db: 5 }))), undefined);
    assert.equal(peekCommand(msg(bson({}))), undefined);
  });

  it('never throws and never reads out of bounds on garbage', () => {
    const valid = [
      msg(bson({ ping: 1, $db: 'admin' })),
      query('admin.$cmd', bson({ $query: { isMaster: 1 } })),
      encodeOpCompressed(msg(bson({ ping: 1, $db: 'admin' })), CompressorId.Snappy),
      encodeOpCompressed(msg(bson({ ping: 1, $db: 'admin' })), CompressorId.Zstd),
    ];
    const mutated = fc
      .tuple(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(),
      )
      .map(([frame, edits, cut]) => {
        const copy = Buffer.from(frame.subarray(0, Math.max(16, frame.length - (cut % 8))));
        for (const [at, byte] of edits) copy[16 + (at % (copy.length - 16))] = byte;
        copy.writeInt32LE(copy.length, 0); // keep the header honest so peek looks inside
        return copy;
      });
    const random = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.constantFrom(OpCode.Msg, OpCode.Query, OpCode.Compressed), fc.uint8Array({ maxLength: 80 })).map(
        ([op, rest]) => {
          const b = Buffer.alloc(16 + rest.length);
          b.writeInt32LE(b.length, 0);
          b.writeInt32LE(op, 12);
          b.set(rest, 16);
          return b;
        },
      ),
    );
    fc.assert(
      fc.property(fc.oneof(mutated, random), (frame) => {
        const out = peekCommand(frame);
        if (out !== undefined) assert.equal(typeof out.commandName, 'string');
        const peeked = peekRequest(frame);
        if (peeked.kind === 'undecodable') assert.ok(peeked.error instanceof CommandError, String(peeked.error));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with a full BSON parse on random command documents', () => {
    fc.assert(
      fc.property(bsonDoc, cstringText, int32, (extra, db, n) => {
        const fields = BSON.deserialize(extra);
        const body = bson({ cmd: n, ...fields, $db: db });
        const parsed = BSON.deserialize(body);
        assert.deepEqual(peekCommand(msg(body)), {
          opCode: OpCode.Msg, commandName: Object.keys(parsed)[0], argumentType: body[4], db: parsed['$db'],
        });
      }),
      { numRuns: 200 },
    );
  });
});
