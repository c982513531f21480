/**
 * `--advertise` in the reply stream: the splicer rewrites exactly the replies that answer
 * a handshake (the client's hello, then each reply of its awaitable stream), whatever
 * reads they come in, and passes every other reply on as mongod's own bytes, in the
 * reads they came in.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { MessageBoundaryTracker } from '../../src/proxy/boundary.js';
import { HandshakeReplies } from '../../src/proxy/handshake_replies.js';
import { ReplySplicer } from '../../src/proxy/reply_splicer.js';
import { advertiseInReply } from '../../src/proxy/advertised_hello.js';
import { OpCode, OpMsgFlag } from '../../src/wire/constants.js';
import { bodyOf, captured, memberFields, withFields } from '../helpers/member_hello.js';

const ADVERTISED = '10.1.2.3:27018';
const silent = pino({ level: 'silent' });

/** An OP_MSG-shaped reply that answers no handshake: header, flagBits, then filler. */
function other(length: number, requestID: number, responseTo: number, moreToCome = false): Buffer {
  const bytes = Buffer.alloc(length, 0xab);
  bytes.writeInt32LE(length, 0);
  bytes.writeInt32LE(requestID, 4);
  bytes.writeInt32LE(responseTo, 8);
  bytes.writeInt32LE(OpCode.Msg, 12);
  bytes.writeUInt32LE(moreToCome ? OpMsgFlag.MoreToCome : 0, 16);
  return bytes;
}

/** A member's hello reply (real frame, see member_hello.ts) with this header. */
function hello(requestID: number, responseTo: number, moreToCome: boolean): Buffer {
  const frame = withFields(captured('2013 reply to 2013 hello offering none'), memberFields(), { flags: moreToCome ? OpMsgFlag.MoreToCome : 0 });
  frame.writeInt32LE(requestID, 4);
  frame.writeInt32LE(responseTo, 8);
  return frame;
}

const rewritten = (frame: Buffer): Buffer => advertiseInReply(frame, ADVERTISED).frame;

interface Setup {
  splicer: ReplySplicer;
  handshakes: HandshakeReplies;
  written: Buffer[];
  answered: number[];
}

function setup(): Setup {
  const answered: number[] = [];
  const tracker = new MessageBoundaryTracker(undefined, (to) => void answered.push(to));
  const written: Buffer[] = [];
  const handshakes = new HandshakeReplies(ADVERTISED, silent);
  return { splicer: new ReplySplicer(tracker, (bytes) => written.push(bytes), handshakes), handshakes, written, answered };
}

/** Feeds `stream` in reads cut at `cuts`, each read a reused buffer (the splicer must copy what it keeps). */
function feed(splicer: ReplySplicer, stream: Buffer, cuts: number[], written: Buffer[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    if (cut <= at) continue;
    const read = Buffer.from(stream.subarray(at, cut));
    splicer.push(read);
    for (const bytes of written.splice(0)) out.push(Buffer.from(bytes));
    read.fill(0);
    at = cut;
  }
  return Buffer.concat(out);
}

describe('ReplySplicer with --advertise', () => {
  // The client sent hello 7 (awaitable) after request 5; mongod answers 5, then streams.
  const before = other(70, 50, 5);
  const first = hello(100, 7, true);
  const second = hello(101, 100, true);
  const last = hello(102, 101, false);
  const after = other(40, 103, 8);
  const stream = Buffer.concat([before, first, second, last, after]);
  const expected = Buffer.concat([before, rewritten(first), rewritten(second), rewritten(last), after]);

  it('rewrites the hello reply and every reply of its exhaust stream, wherever the reads are cut', () => {
    assert.notDeepEqual(rewritten(first), first, 'the fixture names a member');
    for (let cut = 0; cut <= stream.length; cut++) {
      const { splicer, handshakes, written, answered } = setup();
      handshakes.requested(7);
      const out = feed(splicer, stream, [cut], written);
      assert.deepEqual(out, expected, `cut at ${cut}`);
      assert.deepEqual(answered, [5, 7, 100, 101, 8], 'the tracker saw every header');
      assert.equal(handshakes.armed, false, 'the stream ended');
    }
  });

  it('does so one byte per read too', () => {
    const { splicer, handshakes, written } = setup();
    handshakes.requested(7);
    const cuts = Array.from({ length: stream.length }, (_, i) => i);
    assert.deepEqual(feed(splicer, stream, cuts, written), expected);
  });

  it('the legacy isMaster\'s OP_REPLY is rewritten too', () => {
    const reply = withFields(captured('1 reply to 2004 ismaster offering none'), memberFields());
    reply.writeInt32LE(9, 8);
    const { splicer, handshakes, written } = setup();
    handshakes.requested(9);
    const out = feed(splicer, reply, [3, 30], written);
    assert.equal(bodyOf(out)['me'], ADVERTISED);
  });

  it('passes replies that answer no handshake as the very reads they came in, with nothing pending', () => {
    const { splicer, handshakes, written } = setup();
    const read = Buffer.concat([other(64, 1, 1), other(64, 2, 2)]);
    splicer.push(read);
    assert.equal(handshakes.armed, false);
    assert.equal(written.length, 1);
    assert.equal(written[0], read, 'the same Buffer: no copy, no framing');
  });

  it('passes a reply to another request as a view of its read while a hello is pending, and holds only the hello', () => {
    const { splicer, handshakes, written } = setup();
    handshakes.requested(7);
    const read = Buffer.concat([other(64, 1, 3), hello(2, 7, false)]);
    splicer.push(read);
    assert.equal(written[0]?.buffer, read.buffer, 'the other reply: a view of the read');
    assert.deepEqual(written[0], read.subarray(0, 64));
    assert.notEqual(written[1]?.buffer, read.buffer, 'the hello reply: re-encoded');
    assert.equal(bodyOf(written[1] as Buffer)['me'], ADVERTISED);
  });

  it('does not take another exhaust stream\'s reply for the hello when the numbers coincide', () => {
    // The client's pending hello has requestID 200; mongod's exhaust getMore reply (to
    // request 9) happens to have requestID 200 too, so the next message of that stream
    // says responseTo 200. It answers mongod's reply, not the hello.
    const getMore = other(80, 200, 9, true);
    const streamed = withFields(captured('2013 reply to 2013 hello offering none'), memberFields());
    streamed.writeInt32LE(201, 4);
    streamed.writeInt32LE(200, 8);
    const answer = hello(202, 200, false);
    for (let cut = 0; cut <= getMore.length + streamed.length + answer.length; cut += 7) {
      const { splicer, handshakes, written } = setup();
      handshakes.requested(200);
      const out = feed(splicer, Buffer.concat([getMore, streamed, answer]), [cut], written);
      assert.deepEqual(out, Buffer.concat([getMore, streamed, rewritten(answer)]), `cut at ${cut}`);
    }
  });

  it('keeps its capture working alongside: a claimed command\'s reply is taken, the hello rewritten', async () => {
    const { splicer, handshakes, written } = setup();
    handshakes.requested(7);
    const captured = splicer.capture(8);
    const out = feed(splicer, Buffer.concat([before, hello(100, 7, false), after]), [5, 75, 90], written);
    assert.deepEqual(out, Buffer.concat([before, rewritten(hello(100, 7, false))]));
    assert.deepEqual(await captured, after);
  });

  it('slips a reply of ours in after a hello reply it holds, never inside it', () => {
    const { splicer, handshakes, written } = setup();
    handshakes.requested(7);
    const reply = hello(100, 7, false);
    const ours = other(30, 1, 99);
    splicer.push(Buffer.from(reply.subarray(0, 25)));
    splicer.inject(ours);
    splicer.push(Buffer.from(reply.subarray(25)));
    assert.deepEqual(Buffer.concat(written), Buffer.concat([rewritten(reply), ours]));
  });
});

describe('ReplySplicer with --advertise, against a reference over whole messages', () => {
  it('holds and rewrites exactly what a frame-by-frame reading would, however the reads fall', async () => {
    const fc = (await import('fast-check')).default;
    const spec = fc.record({
      hello: fc.boolean(),
      moreToCome: fc.boolean(),
      requestID: fc.integer({ min: 0, max: 4 }),
      responseTo: fc.integer({ min: 0, max: 4 }),
      length: fc.integer({ min: 16, max: 90 }),
    });
    const frameOf = (m: { hello: boolean; moreToCome: boolean; requestID: number; responseTo: number; length: number }): Buffer => {
      if (m.hello) return hello(m.requestID, m.responseTo, m.moreToCome);
      const frame = other(Math.max(m.length, 20), m.requestID, m.responseTo, m.moreToCome);
      // Shorter than 20 bytes: a message with no room for flagBits (legal for other opcodes).
      if (m.length >= 20) return frame;
      const short = frame.subarray(0, m.length);
      short.writeInt32LE(m.length, 0);
      short.writeInt32LE(OpCode.Reply, 12);
      return short;
    };
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 6 }), (messages, pending, cutSeeds) => {
        const frames = messages.map(frameOf);
        const stream = Buffer.concat(frames);
        // The reference: the same rules, applied to whole messages.
        const reference = new HandshakeReplies(ADVERTISED, silent);
        for (const id of pending) reference.requested(id);
        let previousMoreToCome = false;
        const expected = frames.map((frame) => {
          const continuation = previousMoreToCome;
          previousMoreToCome = frame.length >= 20 && frame.readInt32LE(12) === OpCode.Msg && (frame.readUInt32LE(16) & OpMsgFlag.MoreToCome) !== 0;
          return reference.armed && reference.answers(frame.readInt32LE(8), continuation) ? reference.rewrite(frame) : frame;
        });
        const { splicer, handshakes, written } = setup();
        for (const id of pending) handshakes.requested(id);
        const cuts = [...new Set(cutSeeds.map((seed) => seed % (stream.length + 1)))].sort((a, b) => a - b);
        assert.deepEqual(feed(splicer, stream, cuts, written), Buffer.concat(expected));
      }),
      { numRuns: 2000 },
    );
  });
});
