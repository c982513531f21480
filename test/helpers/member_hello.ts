/**
 * Handshake replies of a replica-set member, from real frames: the captured traffic
 * (test/fixtures/wire_traffic.json: the dev server's answers to the npm driver's legacy
 * OP_QUERY isMaster and its OP_MSG hello), given the fields mongod 7.0 adds on a member
 * (src/mongo/db/repl/replication_info.cpp, `appendReplicationInfo`; hello_response.cpp),
 * in their own framing otherwise: same header, flags, compressor.
 */
import assert from 'node:assert/strict';
import { Binary, Long, ObjectId, Timestamp, deserialize, serialize } from 'bson';
import { OpCode } from '../../src/wire/constants.js';
import { decodeOpMsg, encodeOpMsg } from '../../src/wire/op_msg.js';
import { decodeOpReply, encodeOpReply } from '../../src/wire/op_reply.js';
import { loadTraffic } from '../fuzz/traffic.js';

export type Document = Record<string, unknown>;
export const LOSSLESS = { promoteValues: false, promoteBuffers: false, bsonRegExp: true } as const;
export const MEMBER = 'db-7.internal:27017';

export function captured(label: string): Buffer {
  const frame = loadTraffic().server.find((f) => f.label === label)?.frame;
  assert.ok(frame, `fixture frame ${label}`);
  return frame;
}

/** What a primary of a one-member set adds to its hello. */
export function memberFields(overrides: Document = {}): Document {
  const opTime = { ts: new Timestamp({ t: 1_780_000_000, i: 3 }), t: Long.fromNumber(1) };
  return {
    hosts: [MEMBER],
    setName: 'rs0',
    setVersion: 1,
    secondary: false,
    primary: MEMBER,
    me: MEMBER,
    electionId: new ObjectId('7fffffff0000000000000001'),
    lastWrite: { opTime, lastWriteDate: new Date(1_780_000_000_000), majorityOpTime: opTime, majorityWriteDate: new Date(1_780_000_000_000) },
    $clusterTime: { clusterTime: opTime.ts, signature: { hash: new Binary(Buffer.alloc(20)), keyId: Long.fromNumber(0) } },
    operationTime: opTime.ts,
    ...overrides,
  };
}

/** The body document of a reply (OP_MSG or OP_REPLY, uncompressed). */
export function bodyOf(frame: Buffer): Document {
  if (frame.readInt32LE(12) === OpCode.Reply) return deserialize(decodeOpReply(frame).documents[0] as Buffer, LOSSLESS) as Document;
  const body = decodeOpMsg(frame).sections.find((s) => s.kind === 0);
  assert.ok(body && body.kind === 0);
  return deserialize(body.body, LOSSLESS) as Document;
}

/** `frame` with `fields` added to its document, in its own framing (header, flags) otherwise. */
export function withFields(frame: Buffer, fields: Document, options: { flags?: number; checksum?: boolean } = {}): Buffer {
  const doc = serialize({ ...bodyOf(frame), ...fields });
  if (frame.readInt32LE(12) === OpCode.Reply) return encodeOpReply({ ...decodeOpReply(frame), documents: [Buffer.from(doc)] });
  const msg = decodeOpMsg(frame);
  return encodeOpMsg({ ...msg, flags: options.flags ?? msg.flags, sections: [{ kind: 0, body: Buffer.from(doc) }] }, { checksum: options.checksum === true });
}

