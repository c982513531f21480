/**
 * Fuzz inputs: wire messages captured from real traffic (capture_traffic.ts writes them
 * to the fixture), mutated the ways a broken or hostile peer would send them, joined
 * into byte streams and cut into arbitrary reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { HEAD_LIMIT } from '../../src/proxy/client_message.js';
import { encodeDocument, type Document } from '../../src/wire/command_message.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { CompressorId, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';

export const TRAFFIC_FIXTURE = 'test/fixtures/wire_traffic.json';

export interface CapturedFrame {
  label: string;
  hex: string;
}

export interface TrafficFixture {
  generatedBy: string;
  client: CapturedFrame[];
  server: CapturedFrame[];
}

export interface Traffic {
  /** What clients send, by label. */
  client: Array<{ label: string; frame: Buffer }>;
  /** What mongod answers. */
  server: Array<{ label: string; frame: Buffer }>;
}

/** The captured traffic, and on the client side the legal shapes no driver sends (`handBuilt`). */
export function loadTraffic(): Traffic {
  const fixture = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, TRAFFIC_FIXTURE), 'utf8')) as TrafficFixture;
  const frames = (list: CapturedFrame[]) => list.map(({ label, hex }) => ({ label, frame: Buffer.from(hex, 'hex') }));
  return { client: [...frames(fixture.client), ...handBuilt()], server: frames(fixture.server) };
}

/**
 * Messages a client may legally send that the npm driver does not: the framer must tell
 * each of these apart too (client_message.ts), so the fuzzers start from them as well.
 */
export function handBuilt(): Array<{ label: string; frame: Buffer }> {
  const msg = (command: Document, options: { flags?: number; checksum?: boolean; sequenceFirst?: boolean } = {}): Buffer => {
    const body = { kind: 0 as const, body: encodeDocument(command) };
    const sequence = { kind: 1 as const, identifier: 'documents', documents: [encodeDocument({ _id: 1 })] };
    const sections = options.sequenceFirst === true ? [sequence, body] : [body];
    return encodeOpMsg({ requestID: 7, responseTo: 0, flags: options.flags ?? 0, sections }, { checksum: options.checksum === true });
  };
  const query = (command: Document): Buffer =>
    encodeOpQuery({ requestID: 8, flags: 0, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1, query: encodeDocument(command) });
  const header = (length: number, opCode: number): Buffer => {
    const bytes = Buffer.alloc(length);
    bytes.writeInt32LE(length, 0);
    bytes.writeInt32LE(9, 4);
    bytes.writeInt32LE(opCode, 12);
    return bytes;
  };
  const backupStatus = { backupStatus: 1, $db: 'admin' };
  return [
    { label: 'OP_MSG, document sequence first', frame: msg({ backupStart: 1, backupDir: '/b', $db: 'admin' }, { sequenceFirst: true }) },
    { label: 'OP_MSG with checksum', frame: msg(backupStatus, { checksum: true }) },
    { label: 'OP_MSG moreToCome', frame: msg(backupStatus, { flags: OpMsgFlag.MoreToCome }) },
    { label: 'OP_MSG name longer than HEAD_LIMIT', frame: msg({ [`backupStatus${'x'.repeat(HEAD_LIMIT)}`]: 1, $db: 'admin' }) },
    { label: 'OP_MSG empty body', frame: msg({}) },
    { label: 'OP_MSG aggregate $currentOp', frame: msg({ aggregate: 1, pipeline: [{ $currentOp: {} }], cursor: {}, $db: 'admin' }) },
    { label: 'OP_MSG aggregate on a collection', frame: msg({ aggregate: 'c', pipeline: [], cursor: {}, $db: 'app' }) },
    { label: 'OP_MSG killOp', frame: msg({ killOp: 1, op: 12, $db: 'admin' }) },
    { label: 'OP_MSG backupVerify', frame: msg({ backupVerify: '/b/x', $db: 'admin' }) },
    { label: 'OP_MSG backupJob', frame: msg({ backupJob: 'status', $db: 'admin' }) },
    { label: 'OP_QUERY $query-wrapped backupStatus', frame: query({ $query: { backupStatus: 1 }, $readPreference: { mode: 'primary' } }) },
    { label: 'OP_QUERY backupStart', frame: query({ backupStart: 1, backupDir: '/b' }) },
    { label: 'OP_COMPRESSED noop backupStatus', frame: encodeOpCompressed(msg(backupStatus), CompressorId.Noop) },
    { label: 'legacy OP_GET_MORE', frame: header(40, 2005) },
    { label: 'legacy OP_INSERT', frame: header(30, 2002) },
    { label: 'legacy OP_KILL_CURSORS', frame: header(28, 2007) },
    { label: 'OP_MSG of flags only', frame: header(20, 2013) },
  ];
}

/** Lengths a peer may write into messageLength: off by a little, impossible, huge, another message's. */
const lengthField = fc.oneof(
  fc.integer({ min: -8, max: 8 }).map((delta) => ({ delta })),
  fc.constantFrom(0, 1, 15, 16, 17, 20, 21, -1, -16, 2 ** 31 - 1, -(2 ** 31), 48_000_000, 48_000_001, 64 * 1024 * 1024).map((value) => ({ value })),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ value })),
);

/** One mutation of a message's bytes. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'length'; field: { delta: number } | { value: number } }
  | { kind: 'int32'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'splice'; at: number; other: number; from: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 2, 3, 4, 0x10) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('length' as const), field: lengthField }) },
  // An int32 elsewhere: opCode, a section or document size, originalOpcode, uncompressedSize.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('int32' as const), at: fc.constantFrom(4, 8, 12, 16, 20, 21, 24, 25, 26), value: fc.oneof(fc.integer({ min: -2, max: 40 }), fc.constantFrom(1, 2004, 2005, 2012, 2013, 9999, 48_000_000), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat() }) },
);

function applyMutation(frame: Buffer, m: Mutation, seeds: readonly Buffer[]): Buffer {
  const at = (n: number, size = 1) => (frame.length < size ? -1 : n % (frame.length - size + 1));
  switch (m.kind) {
    case 'flip': {
      const i = at(m.at);
      if (i < 0) return frame;
      const copy = Buffer.from(frame);
      copy[i] = (copy[i] as number) ^ (1 << m.bit);
      return copy;
    }
    case 'byte': {
      const i = at(m.at);
      if (i < 0) return frame;
      const copy = Buffer.from(frame);
      copy[i] = m.value;
      return copy;
    }
    case 'truncate':
      return frame.subarray(0, m.keep % (frame.length + 1));
    case 'length': {
      if (frame.length < 4) return frame;
      const copy = Buffer.from(frame);
      const value = 'value' in m.field ? m.field.value : (copy.readInt32LE(0) + m.field.delta) | 0;
      copy.writeInt32LE(value, 0);
      return copy;
    }
    case 'int32': {
      if (frame.length < m.at + 4) return frame;
      const copy = Buffer.from(frame);
      copy.writeInt32LE(m.value, m.at);
      return copy;
    }
    case 'insert': {
      const i = m.at % (frame.length + 1);
      return Buffer.concat([frame.subarray(0, i), m.bytes, frame.subarray(i)]);
    }
    case 'delete': {
      const i = m.at % (frame.length + 1);
      return Buffer.concat([frame.subarray(0, i), frame.subarray(i + m.count)]);
    }
    case 'splice': {
      // The head of this message, the tail of another: a frame cut off mid-way and resumed.
      const other = seeds[m.other % seeds.length] as Buffer;
      const i = m.at % (frame.length + 1);
      return Buffer.concat([frame.subarray(0, i), other.subarray(m.from % (other.length + 1))]);
    }
  }
}

/**
 * One element of a stream: a real message as captured, the same with a few mutations
 * (the length field kept honest or not), or bytes that never were a message.
 */
export function streamPart(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const seed = fc.nat({ max: seeds.length - 1 }).map((i) => seeds[i] as Buffer);
  return fc.oneof(
    { weight: 3, arbitrary: seed },
    {
      weight: 6,
      arbitrary: fc
        .tuple(seed, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean())
        .map(([frame, mutations, honestLength]) => {
          let out = frame;
          for (const m of mutations) out = applyMutation(out, m, seeds);
          // Most mutations leave messageLength disagreeing with the bytes; half the time
          // make it agree again, so the mutation reaches the decoders rather than the framer.
          if (honestLength && out.length >= 4 && !mutations.some((m) => m.kind === 'length')) {
            out = Buffer.from(out);
            out.writeInt32LE(out.length, 0);
          }
          return out;
        }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
  );
}

/** A byte stream of a few messages, good and bad, and the reads it arrives in. */
export interface ChunkedStream {
  stream: Buffer;
  /** The stream cut into reads, in order; empty reads included (a socket never gives one, the API must not care). */
  chunks: Buffer[];
}

export function chunkedStream(seeds: readonly Buffer[]): fc.Arbitrary<ChunkedStream> {
  return fc
    .tuple(fc.array(streamPart(seeds), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean())
    .map(([parts, cutSeeds, byteByByte]) => {
      const stream = Buffer.concat(parts);
      if (byteByByte && stream.length <= 256) {
        return { stream, chunks: Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1)) };
      }
      const cuts = cutSeeds.map((c) => c % (stream.length + 1)).sort((a, b) => a - b);
      const points = [0, ...cuts, stream.length];
      return { stream, chunks: points.slice(1).map((end, i) => stream.subarray(points[i], end)) };
    });
}
