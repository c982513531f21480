/**
 * The client-side stream framer on its own, fed the same byte stream cut into reads
 * every possible way: what it streams through and what it holds whole must not depend on
 * where the reads fall, every byte must come out once and in order, and a message held
 * whole must come out only after everything streamed before it. The proxy tests
 * (streaming.test.ts) run the same over real sockets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { CommandError } from '../../src/errors.js';
import { ClientStreamFramer } from '../../src/proxy/client_stream.js';
import { HEAD_LIMIT } from '../../src/proxy/client_message.js';
import { isHandshakeCommand } from '../../src/proxy/hello_compressors.js';
import { CompressorId, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';
import { opMsg } from '../helpers/raw_client.js';

type Event =
  | { kind: 'pass'; bytes: Buffer }
  | { kind: 'passed'; requestID: number; expectsReply: boolean }
  | { kind: 'whole'; frame: Buffer; emittedBefore: number }
  | { kind: 'bad'; error: CommandError };

interface Expected {
  name: string;
  bytes: Buffer;
  /** Held whole (true) or streamed through (false). */
  whole: boolean;
  expectsReply?: boolean;
}

const holds = (name: string) => name === 'proxyEcho' || isHandshakeCommand(name);

function header(length: number, requestID: number, opCode: number): Buffer {
  const bytes = Buffer.alloc(length);
  bytes.writeInt32LE(length, 0);
  bytes.writeInt32LE(requestID, 4);
  bytes.writeInt32LE(opCode, 12);
  return bytes;
}

/** One of every kind of message the framer must tell apart. */
function messages(): Expected[] {
  const streamed = (name: string, bytes: Buffer, expectsReply: boolean): Expected => ({ name, bytes, whole: false, expectsReply });
  const whole = (name: string, bytes: Buffer): Expected => ({ name, bytes, whole: true });
  const body = (doc: Record<string, unknown>) => ({ kind: 0 as const, body: encodeDocument(doc) });
  return [
    streamed('ping', opMsg({ ping: 1, $db: 'admin' }), true),
    streamed('fire-and-forget insert', opMsg({ insert: 'c', documents: [{ a: 1 }], $db: 'app' }, { flags: OpMsgFlag.MoreToCome }), false),
    whole('claimed', opMsg({ proxyEcho: 'x', $db: 'admin' })),
    whole('hello', opMsg({ hello: 1, compression: ['zstd'], $db: 'admin' })),
    streamed('checksummed find', opMsg({ find: 'c', $db: 'app' }, { checksum: true }), true),
    whole('compressed', encodeOpCompressed(opMsg({ ping: 1, $db: 'admin' }), CompressorId.Zlib)),
    whole('OP_QUERY', encodeOpQuery({ requestID: 77, flags: 0, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1, query: encodeDocument({ isMaster: 1 }) })),
    whole('document sequence first', encodeOpMsg({ requestID: 78, responseTo: 0, flags: 0, sections: [{ kind: 1, identifier: 'documents', documents: [encodeDocument({ a: 1 })] }, body({ insert: 'c', $db: 'app' })] })),
    streamed('empty body', encodeOpMsg({ requestID: 79, responseTo: 0, flags: 0, sections: [body({})] }), true),
    streamed('OP_MSG of flags only', header(20, 80, 2013), true),
    streamed('OP_MSG shorter than its flags', header(18, 81, 2013), false),
    streamed('legacy OP_GET_MORE', header(40, 82, 2005), true),
    streamed('unknown opcode', header(24, 83, 9999), false),
    whole('a name longer than HEAD_LIMIT', opMsg({ ['n'.repeat(HEAD_LIMIT + 10)]: 1, $db: 'admin' })),
    streamed('a name not claimed', opMsg({ proxyEchoNot: 1, $db: 'admin' }), true),
  ];
}

/** Feeds `chunks` to a framer and returns what it did, checking the invariants as it goes. */
function run(chunks: Buffer[], options: { holding?: (index: number) => boolean; holds?: typeof holds | undefined; maxMessageSize?: number } = {}): Event[] {
  const events: Event[] = [];
  let emitted = 0;
  /** Messages done so far: the index of the message whose head is being decided. */
  let done = 0;
  const framer = new ClientStreamFramer({
    maxMessageSize: options.maxMessageSize ?? 48_000_000,
    holds: 'holds' in options ? options.holds : holds,
    sink: {
      holding: () => options.holding?.(done) ?? false,
      pass: (bytes) => {
        assert.ok(bytes.length > 0, 'no empty writes');
        events.push({ kind: 'pass', bytes: Buffer.from(bytes) });
        emitted += bytes.length;
        return true;
      },
      passed: (requestID, expectsReply) => void (done++, events.push({ kind: 'passed', requestID, expectsReply })),
      whole: (frame) => {
        done++;
        events.push({ kind: 'whole', frame: Buffer.from(frame), emittedBefore: emitted });
        emitted += frame.length;
        return true;
      },
      badLength: (error) => void events.push({ kind: 'bad', error }),
    },
  });
  for (const chunk of chunks) framer.push(chunk);
  return events;
}

/** Checks `events` against the messages sent, in order. */
function check(events: Event[], expected: Expected[], label: string): void {
  const out = Buffer.concat(events.flatMap((e) => (e.kind === 'pass' ? [e.bytes] : e.kind === 'whole' ? [e.frame] : [])));
  assert.deepEqual(out, Buffer.concat(expected.map((m) => m.bytes)), `${label}: every byte once, in order`);
  let offset = 0;
  const starts = expected.map((m) => ((offset += m.bytes.length), offset - m.bytes.length));
  const wholes = events.filter((e) => e.kind === 'whole');
  assert.deepEqual(
    wholes.map((e) => e.frame),
    expected.filter((m) => m.whole).map((m) => m.bytes),
    `${label}: held whole: ${expected.filter((m) => m.whole).map((m) => m.name).join(', ')}`,
  );
  assert.deepEqual(
    wholes.map((e) => e.emittedBefore),
    expected.flatMap((m, i) => (m.whole ? [starts[i]] : [])),
    `${label}: a message held whole comes after everything before it`,
  );
  const passed = events.filter((e) => e.kind === 'passed').map((e) => [e.requestID, e.expectsReply]);
  assert.deepEqual(
    passed,
    expected.filter((m) => !m.whole).map((m) => [m.bytes.readInt32LE(4), m.expectsReply]),
    `${label}: each streamed message reported once, with whether mongod answers it`,
  );
}

function splitAt(stream: Buffer, cuts: number[]): Buffer[] {
  const points = [0, ...cuts, stream.length];
  return points.slice(1).map((end, i) => stream.subarray(points[i], end));
}

describe('ClientStreamFramer', () => {
  const all = messages();
  const stream = Buffer.concat(all.map((m) => m.bytes));

  it('streams or holds each message the same, in one read', () => {
    check(run([stream]), all, 'one read');
  });

  it('streams or holds each message the same, whatever two reads the stream comes in', () => {
    for (let cut = 1; cut < stream.length; cut++) check(run(splitAt(stream, [cut])), all, `cut at ${cut}`);
  });

  it('streams or holds each message the same, one byte per read', () => {
    check(run(splitAt(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1))), all, 'byte by byte');
  });

  it('streams or holds each message the same, in any reads (random cuts, with a large insert)', () => {
    const big: Expected = { name: 'large insert', bytes: opMsg({ insert: 'c', documents: [{ pad: 'p'.repeat(300_000) }], $db: 'app' }), whole: false, expectsReply: true };
    const withBig = [...all.slice(0, 3), big, ...all.slice(3), big];
    const bigStream = Buffer.concat(withBig.map((m) => m.bytes));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bigStream.length - 1 }), { maxLength: 60 }), (cuts) => {
        check(run(splitAt(bigStream, cuts.sort((a, b) => a - b))), withBig, `cuts ${cuts.join(',')}`);
      }),
      { numRuns: 300 },
    );
  });

  it('passes streamed bytes without copying, one write for consecutive streamed messages in a read', () => {
    const [ping, fire, echo] = all as [Expected, Expected, Expected];
    const read = Buffer.concat([ping.bytes, fire.bytes, ping.bytes, echo.bytes, ping.bytes]);
    const writes: Buffer[] = [];
    const frames: Buffer[] = [];
    const framer = new ClientStreamFramer({
      maxMessageSize: 48_000_000,
      holds,
      sink: { holding: () => false, pass: (b) => (writes.push(b), true), passed: () => undefined, whole: (f) => (frames.push(f), true), badLength: () => undefined },
    });
    framer.push(read);
    assert.equal(writes.length, 2, 'the three messages before the claimed one in one write, the one after it in another');
    for (const bytes of [...writes, ...frames]) assert.equal(bytes.buffer, read.buffer, 'a view of the read, not a copy');
    assert.equal(writes[0]?.length, ping.bytes.length * 2 + fire.bytes.length);
  });

  it('holds every message whole while the connection is holding (a claimed command runs)', () => {
    const held = all.map((m, i) => (i >= 4 ? { ...m, whole: true } : m));
    for (const cut of [0, 3, 30, 100]) {
      const chunks = cut === 0 ? [stream] : splitAt(stream, [cut]);
      check(run(chunks, { holding: (i) => i >= 4 }), held, `holding from the 5th message, cut at ${cut}`);
    }
  });

  it('without an interceptor streams everything, compressed and claimed names included', () => {
    const events = run(splitAt(stream, [7, 300]), { holds: undefined });
    assert.equal(events.filter((e) => e.kind === 'whole').length, 0);
    assert.deepEqual(Buffer.concat(events.flatMap((e) => (e.kind === 'pass' ? [e.bytes] : []))), stream);
    assert.equal(events.filter((e) => e.kind === 'passed').length, all.length);
  });

  it('stops at a bad length after passing everything before it, wherever the reads fall', () => {
    const [ping, fire] = all as [Expected, Expected];
    for (const length of [7, 1001]) {
      const bad = Buffer.alloc(4);
      bad.writeInt32LE(length, 0);
      const bytes = Buffer.concat([ping.bytes, fire.bytes, bad, ping.bytes]);
      for (let cut = 0; cut < bytes.length; cut++) {
        const events = run(cut === 0 ? [bytes] : splitAt(bytes, [cut]), { maxMessageSize: 1000 });
        const last = events.at(-1);
        assert.equal(last?.kind, 'bad', `cut at ${cut}`);
        assert.match(String(last?.kind === 'bad' && last.error.message), new RegExp(`msgLen ${length} is invalid`));
        assert.deepEqual(Buffer.concat(events.flatMap((e) => (e.kind === 'pass' ? [e.bytes] : []))), Buffer.concat([ping.bytes, fire.bytes]), `cut at ${cut}`);
        assert.equal(events.filter((e) => e.kind === 'passed').length, 2);
      }
    }
  });

  it('reads nothing more once the sink stops it', () => {
    const [ping, , echo] = all as [Expected, Expected, Expected];
    const seen: string[] = [];
    const framer = new ClientStreamFramer({
      maxMessageSize: 48_000_000,
      holds,
      sink: { holding: () => false, pass: () => (seen.push('pass'), true), passed: () => undefined, whole: () => (seen.push('whole'), false), badLength: () => undefined },
    });
    framer.push(Buffer.concat([ping.bytes, echo.bytes, ping.bytes]));
    assert.deepEqual(seen, ['pass', 'whole']);
  });
});
