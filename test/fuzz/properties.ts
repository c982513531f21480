/**
 * The fuzz properties of the proxy's framing and interception, shared by the test suite
 * (stream_fuzz.test.ts, 100k cases) and `npm run fuzz` (run.ts, 10 million).
 *
 * Each case is a byte stream of real messages, mutated ones and garbage (traffic.ts),
 * cut into arbitrary reads, and checked against a reference reading of the same stream
 * (`frameStream`: messageLength prefixes, nothing else).
 *
 * - The client stream framer (client_stream.ts, deciding with client_message.ts
 *   `decideHead`) and the full peek of what it holds whole (`inspectClientMessage`, over
 *   wire/peek.ts) never throw. Everything they hand upstream is the stream's own bytes,
 *   in order: whole messages as the reference frames them, then at most the start of one
 *   whose length is valid and whose rest has not come yet. Nothing at or past an
 *   impossible length is handed on; that length is reported once, which closes this
 *   connection and no other (each connection has its own framer). A message that names
 *   a command the proxy reads whole is never streamed past it, and only the proxy's
 *   own commands are claimed.
 * - The reply boundary tracker (boundary.ts) reports every upstream message once, with
 *   its responseTo and moreToCome, knows at every byte whether it is between messages,
 *   and throws only a ProtocolError, only at an impossible length.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { BackupCommands } from '../../src/commands/backup_commands.js';
import type { BackupService } from '../../src/commands/backup_service.js';
import type { VerifyService } from '../../src/commands/backup_verify.js';
import type { UpstreamRole } from '../../src/commands/session_options.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';
import { MessageBoundaryTracker } from '../../src/proxy/boundary.js';
import { holdsWhole, inspectClientMessage } from '../../src/proxy/client_message.js';
import { ClientStreamFramer } from '../../src/proxy/client_stream.js';
import { headExpectsReply } from '../../src/proxy/reply_order.js';
import { decodeRequest } from '../../src/wire/command_message.js';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, OpCode, OpMsgFlag } from '../../src/wire/constants.js';
import { peekRequest } from '../../src/wire/peek.js';
import { chunkedStream, type ChunkedStream, type Traffic } from './traffic.js';

/** The stream as messageLength prefixes cut it: whole messages, then how it ends. */
export interface ReferenceFrames {
  /** [start, length] of each whole message, in order. */
  messages: Array<[number, number]>;
  end:
    | { kind: 'whole' }
    /** A message with a valid length whose bytes (or length prefix) are not all in. */
    | { kind: 'partial'; start: number; length: number | undefined }
    | { kind: 'bad'; start: number };
}

export function frameStream(stream: Buffer, maxMessageSize: number): ReferenceFrames {
  const messages: Array<[number, number]> = [];
  let at = 0;
  while (at < stream.length) {
    if (stream.length - at < 4) return { messages, end: { kind: 'partial', start: at, length: undefined } };
    const length = stream.readInt32LE(at);
    if (length < HEADER_SIZE || length > maxMessageSize) return { messages, end: { kind: 'bad', start: at } };
    if (stream.length - at < length) return { messages, end: { kind: 'partial', start: at, length } };
    messages.push([at, length]);
    at += length;
  }
  return { messages, end: { kind: 'whole' } };
}

/**
 * The commands the proxy answers (docs/commands.md): the backup commands always, and
 * currentOp, killOp and `{aggregate: 1}` (a $currentOp pipeline) while a backup runs.
 */
const OURS = new Set(['backupStart', 'backupStatus', 'backupThrottle', 'backupAbort', 'backupJob', 'backupVerify']);
const OURS_WHILE_BUSY = new Set(['currentOp', 'killOp', 'aggregate']);

/** The product's interceptor, over a backup service that only says whether a backup runs. */
function interceptor(busy: boolean): BackupCommands {
  const backups = { busy: () => busy } as unknown as BackupService;
  const upstream: UpstreamRole = { acceptsTransactionNumbers: async () => false };
  const verifier: VerifyService = { verify: () => Promise.reject(new Error('not in a fuzz case')) };
  return new BackupCommands(backups, upstream, { verifier });
}
const interceptors = { idle: interceptor(false), busy: interceptor(true) };
const silent = pino({ level: 'silent' });

export interface FramerCase {
  input: ChunkedStream;
  maxMessageSize: number;
  /** The sink is holding (a claimed command runs) from this message on; undefined: never. */
  holdingFrom: number | undefined;
  /** Whether a backup runs, so that currentOp, killOp and aggregate are ours too. */
  busy: boolean;
}

/** Small limits put mutated lengths on both sides of the maximum; mongod's own is one of them. */
const maxMessageSize = fc.constantFrom(MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE, 64, 200, 400, 1_000);

export function framerCase(traffic: Traffic): fc.Arbitrary<FramerCase> {
  const seeds = traffic.client.map((c) => c.frame);
  return fc.record({
    input: chunkedStream(seeds),
    maxMessageSize,
    holdingFrom: fc.option(fc.nat({ max: 5 }), { freq: 4 }),
    busy: fc.boolean(),
  });
}

type Completion = { kind: 'streamed'; requestID: number; expectsReply: boolean } | { kind: 'whole'; frame: Buffer; emittedBefore: number; holding: boolean };

export function checkFramer(c: FramerCase): void {
  const { stream, chunks } = c.input;
  const reference = frameStream(stream, c.maxMessageSize);
  const proxy = c.busy ? interceptors.busy : interceptors.idle;
  const holds = holdsWhole(proxy);
  const out: Buffer[] = [];
  const completions: Completion[] = [];
  /** Whether the message now being decided was decided while holding. */
  const holdingAt: boolean[] = [];
  let emitted = 0;
  let badLengths = 0;
  const holding = (): boolean => c.holdingFrom !== undefined && completions.length >= c.holdingFrom;
  const framer = new ClientStreamFramer({
    maxMessageSize: c.maxMessageSize,
    holds,
    sink: {
      holding: () => {
        holdingAt[completions.length] = holding();
        return holding();
      },
      pass: (bytes) => {
        assert.ok(bytes.length > 0, 'no empty writes upstream');
        assert.equal(badLengths, 0, 'nothing is passed after a bad length');
        out.push(bytes);
        emitted += bytes.length;
        return true;
      },
      passed: (requestID, expectsReply) => void completions.push({ kind: 'streamed', requestID, expectsReply }),
      whole: (frame) => {
        assert.equal(badLengths, 0, 'nothing is held after a bad length');
        completions.push({ kind: 'whole', frame, emittedBefore: emitted, holding: holding() });
        out.push(frame);
        emitted += frame.length;
        checkHeldWhole(frame, c.busy);
        return true;
      },
      badLength: (error) => {
        assert.ok(error instanceof CommandError && error.code === ErrorCodes.ProtocolError, `a ProtocolError: ${String(error)}`);
        badLengths++;
      },
    },
  });
  for (const chunk of chunks) framer.push(chunk);

  const forwarded = Buffer.concat(out);
  assert.ok(forwarded.equals(stream.subarray(0, forwarded.length)), "what is handed on is the stream's own bytes, in order");
  const { messages, end } = reference;
  if (end.kind === 'bad') {
    assert.equal(badLengths, 1, 'an impossible length is reported, once');
    assert.equal(forwarded.length, end.start, 'everything before the bad length is handed on, nothing from it');
  } else {
    assert.equal(badLengths, 0, 'no bad length reported on a stream without one');
    if (end.kind === 'whole') assert.equal(forwarded.length, stream.length, 'a stream of whole messages is handed on whole');
    else {
      assert.ok(forwarded.length >= end.start, 'every whole message is handed on');
      assert.ok(end.length !== undefined || forwarded.length === end.start, 'no byte of a message whose length is not in yet');
    }
  }
  assert.equal(completions.length, messages.length, 'each whole message is reported once');
  completions.forEach((done, i) => {
    const [start, length] = messages[i] as [number, number];
    const message = stream.subarray(start, start + length);
    if (done.kind === 'whole') {
      assert.ok(done.frame.equals(message), `message ${i} held whole is exactly the message`);
      assert.equal(done.emittedBefore, start, `message ${i} held whole comes after everything before it`);
      return;
    }
    assert.ok(!holdingAt[i], `message ${i} arrived while a claimed command ran: it must be held`);
    assert.equal(done.requestID, message.readInt32LE(4), `message ${i}: its requestID`);
    assert.equal(done.expectsReply, headExpectsReply(message, 0, length), `message ${i}: whether mongod answers it`);
    const peek = peekRequest(message);
    if (peek.kind === 'command') {
      const { commandName, argumentType } = peek.command;
      assert.ok(!holds(commandName, argumentType), `message ${i} names ${commandName}, which is read whole: it must not be streamed`);
    }
  });
}

/** A message held whole: the full peek never throws, and claims only the proxy's commands. */
function checkHeldWhole(frame: Buffer, busy: boolean): void {
  assert.equal(frame.readInt32LE(0), frame.length, 'a frame held whole is length-consistent');
  const item = inspectClientMessage(frame, busy ? interceptors.busy : interceptors.idle, silent);
  if (item.kind !== 'frame' || !item.claimed) return;
  const name = item.peeked?.commandName ?? '';
  assert.ok(OURS.has(name) || (busy && OURS_WHILE_BUSY.has(name)), `claimed ${name}, which is not the proxy's`);
  // A claimed message is decoded whole (claimed_command.ts), and one that cannot be is
  // forwarded for mongod to judge. Garbage must fail as a CommandError (a wire error) or
  // a BSONError (the bson library's), never as an out-of-bounds read of our own.
  try {
    decodeRequest(item.frame, item.decompressed);
  } catch (err) {
    assert.ok(err instanceof CommandError || (err instanceof Error && err.name === 'BSONError'), `decodeRequest fails only with CommandError or BSONError: ${String(err)}`);
  }
}

export interface TrackerCase {
  input: ChunkedStream;
  maxMessageSize: number;
  /** For each read: consume it with advanceToBoundary first (then push the rest), or push it. */
  advance: boolean[];
}

export function trackerCase(traffic: Traffic): fc.Arbitrary<TrackerCase> {
  const seeds = traffic.server.map((s) => s.frame);
  return fc.record({ input: chunkedStream(seeds), maxMessageSize, advance: fc.array(fc.boolean(), { maxLength: 16 }) });
}

export function checkTracker(c: TrackerCase): void {
  const { stream, chunks } = c.input;
  const { messages, end } = frameStream(stream, c.maxMessageSize);
  const boundaries = new Set([0, ...messages.map(([start, length]) => start + length)]);
  const seen: Array<[number, boolean | undefined]> = [];
  const tracker = new MessageBoundaryTracker(c.maxMessageSize, (responseTo, moreToCome) => void seen.push([responseTo, moreToCome]));
  /** Bytes consumed so far. */
  let at = 0;
  /** A push or advance must throw iff it takes the stream past a bad length's 4 bytes. */
  const throwsAt = end.kind === 'bad' ? end.start + 4 : Infinity;
  let threw = false;
  const consume = (reached: number, call: () => void): boolean => {
    if (reached < throwsAt) {
      call();
      at = reached;
      return true;
    }
    assert.throws(call, (err) => err instanceof CommandError && err.code === ErrorCodes.ProtocolError, 'a bad length throws a ProtocolError');
    assert.throws(() => tracker.push(Buffer.alloc(1)), CommandError, 'and the stream is dead for good');
    threw = true;
    return false;
  };
  for (const [i, chunk] of chunks.entries()) {
    let rest = chunk;
    if (c.advance[i] === true) {
      const next = [...boundaries].filter((b) => b >= at && b <= at + chunk.length).sort((a, b) => a - b)[0];
      const reached = next ?? at + chunk.length;
      const before = at;
      let offset = -1;
      if (!consume(reached, () => (offset = tracker.advanceToBoundary(chunk)))) break;
      assert.equal(offset, reached - before, 'advanceToBoundary stops at the next boundary');
      rest = chunk.subarray(offset);
    }
    if (!consume(at + rest.length, () => tracker.push(rest))) break;
    assert.equal(tracker.atBoundary, boundaries.has(at), `atBoundary at byte ${at}`);
  }
  // Every message whose tracked header (20 bytes, or all of a shorter one) is in was reported.
  // After a throw, every message before the bad length is whole and was reported.
  const consumed = threw ? stream.length : at;
  const headers: Array<[number, number]> = [...messages];
  if (end.kind === 'partial' && end.length !== undefined) headers.push([end.start, end.length]);
  const expected = headers
    .filter(([start, length]) => start + Math.min(length, HEADER_SIZE + 4) <= consumed)
    .map(([start, length]): [number, boolean | undefined] => {
      const opCode = stream.readInt32LE(start + 12);
      if (opCode === OpCode.Compressed) return [stream.readInt32LE(start + 8), undefined];
      const moreToCome = opCode === OpCode.Msg && length >= HEADER_SIZE + 4 && (stream.readUInt32LE(start + HEADER_SIZE) & OpMsgFlag.MoreToCome) !== 0;
      return [stream.readInt32LE(start + 8), moreToCome];
    });
  assert.deepEqual(seen, expected, 'each message reported once, with its responseTo and moreToCome');
  assert.equal(tracker.lastMoreToCome, seen.at(-1)?.[1] === true, 'lastMoreToCome is the last message header');
}

export interface FuzzProperty {
  name: string;
  /** fc.check on the property; `beforeEach` runs before every case (a counter, say). */
  check(parameters: fc.Parameters<unknown>, beforeEach?: () => void): fc.RunDetails<[unknown]>;
  /** The stream of a counterexample and how it was cut, for a report that can be replayed. */
  describe(value: unknown): string;
}

function fuzzProperty<T>(name: string, arbitrary: fc.Arbitrary<T>, predicate: (value: T) => void): FuzzProperty {
  return {
    name,
    check(parameters, beforeEach) {
      const property = fc.property(arbitrary, predicate);
      return fc.check(beforeEach === undefined ? property : property.beforeEach(beforeEach), parameters as fc.Parameters<[T]>) as unknown as fc.RunDetails<[unknown]>;
    },
    describe: describeStream,
  };
}

function describeStream(value: unknown): string {
  const { input, ...rest } = value as { input: ChunkedStream };
  return `${JSON.stringify(rest)}\nstream (${input.stream.length} bytes): ${input.stream.toString('hex')}\nreads: ${input.chunks.map((c) => c.length).join(',')}`;
}

export function properties(traffic: Traffic): FuzzProperty[] {
  return [
    fuzzProperty('client stream framer and interception', framerCase(traffic), checkFramer),
    fuzzProperty('reply boundary tracker', trackerCase(traffic), checkTracker),
  ];
}
