/**
 * ReplySplicer's capture, byte by byte: the one reply of mongod's a claimed command
 * forwarded for (currentOp) is taken out of the stream whole, whatever reads it comes
 * in, and everything around it reaches the client as it would have.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageBoundaryTracker } from '../../src/proxy/boundary.js';
import { ReplySplicer } from '../../src/proxy/reply_splicer.js';
import { OpCode, OpMsgFlag } from '../../src/wire/constants.js';

/** An OP_MSG-shaped message: header, flagBits, then filler. */
function message(length: number, responseTo: number, options: { moreToCome?: boolean; fill?: number } = {}): Buffer {
  const bytes = Buffer.alloc(length, options.fill ?? 0xab);
  bytes.writeInt32LE(length, 0);
  bytes.writeInt32LE(900 + responseTo, 4);
  bytes.writeInt32LE(responseTo, 8);
  bytes.writeInt32LE(OpCode.Msg, 12);
  bytes.writeUInt32LE(options.moreToCome === true ? OpMsgFlag.MoreToCome : 0, 16);
  return bytes;
}

interface Run {
  written: Buffer;
  captured: Buffer | undefined;
  answered: number[];
}

/**
 * Feeds `before` (the stream up to the moment the capture is armed, with `inject`ed
 * replies of ours waiting), then `after`, cut into reads at `cuts` (offsets into after).
 */
async function run(before: Buffer, after: Buffer, cuts: number[], responseTo: number, inject: Buffer[] = []): Promise<Run> {
  const answered: number[] = [];
  const tracker = new MessageBoundaryTracker(undefined, (to) => void answered.push(to));
  const written: Buffer[] = [];
  const splicer = new ReplySplicer(tracker, (bytes) => written.push(Buffer.from(bytes)));
  if (before.length > 0) splicer.push(before);
  for (const reply of inject) splicer.inject(reply);
  let captured: Buffer | undefined;
  const capture = splicer.capture(responseTo).then((bytes) => (captured = bytes));
  let at = 0;
  for (const cut of [...cuts, after.length]) {
    if (cut > at) {
      // A reused read buffer, as the proxy's: the splicer must copy what it keeps.
      const read = Buffer.from(after.subarray(at, cut));
      splicer.push(read);
      read.fill(0);
    }
    at = Math.max(at, cut);
  }
  // Settled by now if the reply was in; a capture still waiting must not hang the test.
  await Promise.race([capture, new Promise((resolve) => setImmediate(resolve))]);
  return { written: Buffer.concat(written), captured, answered };
}

describe('ReplySplicer.capture', () => {
  const inFlight = message(60, 1);
  const ours = message(45, 7, { fill: 0xcd });
  const later = message(30, 8);

  it('takes out exactly the awaited reply, at every single cut of the stream', async () => {
    const stream = Buffer.concat([inFlight.subarray(20), ours, later]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const result = await run(inFlight.subarray(0, 20), stream, [cut], 7);
      assert.deepEqual(result.captured, ours, `cut at ${cut}`);
      assert.deepEqual(result.written, Buffer.concat([inFlight, later]), `cut at ${cut}`);
      assert.deepEqual(result.answered, [1, 7, 8]);
    }
  });

  it('takes it out when it comes one byte per read', async () => {
    const stream = Buffer.concat([ours, later]);
    const result = await run(Buffer.alloc(0), stream, Array.from({ length: stream.length }, (_, i) => i), 7);
    assert.deepEqual(result.captured, ours);
    assert.deepEqual(result.written, later);
  });

  it('passes on the rest of an exhaust stream first, even a message that happens to name the same request', async () => {
    // A moreToCome message, then its continuation, whose responseTo (mongod's own previous
    // requestID) equals the awaited request id: not the answer.
    const streaming = message(40, 3, { moreToCome: true });
    const continuation = message(50, 7, { fill: 0x11 });
    const stream = Buffer.concat([streaming, continuation, ours]);
    for (let cut = 0; cut <= stream.length; cut += 7) {
      const result = await run(Buffer.alloc(0), stream, [cut], 7);
      assert.deepEqual(result.captured, ours, `cut at ${cut}`);
      assert.deepEqual(result.written, Buffer.concat([streaming, continuation]), `cut at ${cut}`);
    }
  });

  it('writes a reply of ours that waited for the message in flight before anything else', async () => {
    const injected = message(20, 99, { fill: 0xee });
    const result = await run(inFlight.subarray(0, 30), Buffer.concat([inFlight.subarray(30), ours, later]), [5], 7, [injected]);
    assert.deepEqual(result.written, Buffer.concat([inFlight, injected, later]));
    assert.deepEqual(result.captured, ours);
  });

  it('fails the capture when the connection closes first', async () => {
    const splicer = new ReplySplicer(new MessageBoundaryTracker(), () => undefined);
    const capture = splicer.capture(7);
    splicer.push(ours.subarray(0, 10));
    splicer.close();
    await assert.rejects(capture, /closed before mongod answered/);
    await assert.rejects(splicer.capture(8), /closed/);
  });
});
