/** Which client messages mongod answers, and the bookkeeping of their answers. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ForwardedRequests, expectsReply } from '../../src/proxy/reply_order.js';
import { MessageBoundaryTracker } from '../../src/proxy/boundary.js';
import { peekRequest } from '../../src/wire/peek.js';
import { CompressorId, OpCode, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';
import { encodeOpReply } from '../../src/wire/op_reply.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { opMsg } from '../helpers/raw_client.js';

function expects(frame: Buffer): boolean {
  const peek = peekRequest(frame);
  return expectsReply(frame, peek.kind === 'command' ? peek.command : undefined);
}

/** A bare message of `opCode` with a 4-byte body, as legacy opcodes would carry. */
function legacy(opCode: number): Buffer {
  const frame = Buffer.alloc(20);
  frame.writeInt32LE(20, 0);
  frame.writeInt32LE(9, 4);
  frame.writeInt32LE(opCode, 12);
  return frame;
}

describe('expectsReply', () => {
  it('follows mongod: OP_MSG unless moreToCome, OP_QUERY and OP_GET_MORE yes, fire-and-forget opcodes no', () => {
    const quiet = opMsg({ insert: 'c', documents: [], $db: 'app' }, { flags: OpMsgFlag.MoreToCome });
    assert.equal(expects(opMsg({ ping: 1, $db: 'admin' })), true);
    assert.equal(expects(quiet), false);
    assert.equal(expects(encodeOpQuery({ requestID: 1, flags: 0, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1, query: encodeDocument({ isMaster: 1 }) })), true);
    assert.equal(expects(legacy(2005)), true, 'OP_GET_MORE');
    for (const opCode of [2001, 2002, 2006, 2007]) assert.equal(expects(legacy(opCode)), false, `opCode ${opCode}`);
  });

  it('reads a compressed OP_MSG\'s flags from the peek, and counts an unreadable one as expecting nothing', () => {
    assert.equal(expects(encodeOpCompressed(opMsg({ ping: 1, $db: 'admin' }), CompressorId.Zlib)), true);
    const quiet = opMsg({ insert: 'c', documents: [], $db: 'app' }, { flags: OpMsgFlag.MoreToCome });
    assert.equal(expects(encodeOpCompressed(quiet, CompressorId.Snappy)), false);
    const noDb = encodeOpMsg({ requestID: 3, responseTo: 0, flags: 0, sections: [{ kind: 0, body: encodeDocument({ ping: 1 }) }] });
    assert.equal(expects(encodeOpCompressed(noDb, CompressorId.Zlib)), false);
  });
});

describe('ForwardedRequests', () => {
  it('waits for every request forwarded so far, in order, and settles earlier ones with a later answer', async () => {
    const requests = new ForwardedRequests();
    assert.equal(requests.allAnswered(), undefined, 'nothing to wait for');
    requests.forwarded(10);
    requests.forwarded(11);
    let settled = false;
    void requests.allAnswered()?.then(() => (settled = true));
    requests.forwarded(12); // after the wait began: not waited for
    requests.answered(999); // an exhaust continuation, or anything unknown
    requests.answered(10);
    await Promise.resolve();
    assert.equal(settled, false, 'two of the three still unanswered');
    requests.answered(11);
    await Promise.resolve();
    assert.equal(settled, true);
    requests.answered(12);
    assert.equal(requests.allAnswered(), undefined, 'all three answered');
    // A request never answered (counted wrongly) is settled by the answer to a later one.
    requests.forwarded(20);
    requests.forwarded(21);
    requests.answered(21);
    assert.equal(requests.allAnswered(), undefined);
  });

  it('keeps reused requestIDs apart and releases waiters on close', async () => {
    const requests = new ForwardedRequests();
    requests.forwarded(5);
    requests.forwarded(5);
    requests.answered(5);
    const waiting = requests.allAnswered();
    assert.ok(waiting, 'the second request with id 5 is still unanswered');
    requests.close();
    await waiting;
  });

  it('does not take the rest of an exhaust stream for an answer, even when its responseTo matches a waiting request', async () => {
    const requests = new ForwardedRequests();
    requests.forwarded(7); // a find, waiting
    let settled = false;
    void requests.allAnswered()?.then(() => (settled = true));
    // An exhaust stream (to an earlier request, 3) whose first reply mongod numbered 7:
    // the next reply's responseTo is 7, the same number as the client's waiting find.
    requests.answered(3, true);
    requests.answered(7, true);
    requests.answered(7, false); // the stream's last message
    await Promise.resolve();
    assert.equal(settled, false, 'the find is still unanswered');
    requests.answered(7, false); // now mongod answers the find
    await Promise.resolve();
    assert.equal(settled, true);
  });
});

describe('MessageBoundaryTracker responseTo', () => {
  it('reports each message\'s responseTo however the headers are split', () => {
    const stream = Buffer.concat([41, 42, 43].map((responseTo, i) => encodeOpMsg({ requestID: 100 + i, responseTo, flags: 0, sections: [{ kind: 0, body: encodeDocument({ ok: 1 }) }] })));
    for (const size of [1, 3, 5, 11, 12, 13, stream.length]) {
      const seen: number[] = [];
      const tracker = new MessageBoundaryTracker(undefined, (responseTo) => seen.push(responseTo));
      for (let i = 0; i < stream.length; i += size) tracker.push(stream.subarray(i, i + size));
      assert.deepEqual(seen, [41, 42, 43], `chunks of ${size}`);
      assert.equal(tracker.atBoundary, true);
    }
  });

  it('reports moreToCome from an OP_MSG, not from other opcodes, and none it cannot read (compressed)', () => {
    const body = encodeDocument({ ok: 1 });
    const streamed = encodeOpMsg({ requestID: 1, responseTo: 41, flags: OpMsgFlag.MoreToCome, sections: [{ kind: 0, body }] });
    const last = encodeOpMsg({ requestID: 2, responseTo: 1, flags: 0, sections: [{ kind: 0, body }] });
    const compressed = encodeOpCompressed(streamed, CompressorId.Zlib);
    const reply = encodeOpReply({ requestID: 3, responseTo: 42, responseFlags: 0, cursorID: 0n, startingFrom: 0, documents: [body] });
    // A 16-byte message: nothing past its header may be read as flags.
    const bare = Buffer.alloc(16);
    bare.writeInt32LE(16, 0);
    bare.writeInt32LE(43, 8);
    bare.writeInt32LE(OpCode.Msg, 12);
    const stream = Buffer.concat([streamed, last, compressed, reply, bare, streamed]);
    for (const size of [1, 3, 4, 5, 17, 19, 20, 21, stream.length]) {
      const seen: Array<[number, boolean | undefined]> = [];
      const tracker = new MessageBoundaryTracker(undefined, (responseTo, moreToCome) => seen.push([responseTo, moreToCome]));
      for (let i = 0; i < stream.length; i += size) tracker.push(stream.subarray(i, i + size));
      assert.deepEqual(seen, [[41, true], [1, false], [41, undefined], [42, false], [43, false], [41, true]], `chunks of ${size}`);
      assert.equal(tracker.atBoundary, true);
    }
  });
});
