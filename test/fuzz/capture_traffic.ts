/**
 * Regenerates test/fixtures/wire_traffic.json: real bytes the npm driver and the dev
 * server exchange, the seeds the fuzzers mutate (traffic.ts). A relay between the two
 * frames both directions and keeps the first message of each kind: a legacy OP_QUERY
 * handshake, hello, CRUD, a find and its getMore, the backup commands (which the dev
 * server refuses; the request bytes are what matters), each uncompressed and as
 * OP_COMPRESSED with snappy, zlib and zstd, an unacknowledged (moreToCome) insert, and
 * the replies to all of them.
 *
 *   npx tsc -p tsconfig.json && node dist/test/fuzz/capture_traffic.js
 */
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { startRelay } from '../helpers/relay.js';
import { readHeader } from '../../src/wire/header.js';
import { OpCode } from '../../src/wire/constants.js';
import { peekRequest } from '../../src/wire/peek.js';
import { TRAFFIC_FIXTURE, type CapturedFrame, type TrafficFixture } from './traffic.js';

type Compressor = 'none' | 'snappy' | 'zlib' | 'zstd';

/**
 * A label that tells one kind of request from another: its opcode (and compressor) and
 * command; a handshake also by the compressors the client offers in it.
 */
function requestLabel(frame: Buffer, compressor: Compressor): string {
  const opCode = readHeader(frame).opCode;
  const wire = opCode === OpCode.Compressed ? `OP_COMPRESSED(${frame.readInt32LE(16)},${frame[24]})` : String(opCode);
  const peek = peekRequest(frame);
  const name = peek.kind === 'command' ? `${peek.command.commandName}${peek.command.moreToCome ? ' moreToCome' : ''}` : peek.kind;
  return name.toLowerCase() === 'ismaster' || name === 'hello' ? `${wire} ${name} offering ${compressor}` : `${wire} ${name}`;
}

/** A reply by what it answers, and whether it came compressed. */
function replyLabel(frame: Buffer, request: string | undefined): string {
  const { opCode, responseTo } = readHeader(frame);
  return `${opCode === OpCode.Compressed ? `OP_COMPRESSED(${frame.readInt32LE(16)},${frame[24]})` : opCode} reply to ${request ?? responseTo}`;
}

async function capture(): Promise<TrafficFixture> {
  const server = await startDevServer();
  const client: CapturedFrame[] = [];
  const replies: CapturedFrame[] = [];
  const seen = new Set<string>();
  let compressor: Compressor = 'none';
  /** The label of each request by its requestID (the driver numbers them across connections). */
  const requests = new Map<number, string>();
  const keep = (list: CapturedFrame[], frame: Buffer, name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    list.push({ label: name, hex: frame.toString('hex') });
  };
  const relay = await startRelay(server.port, {
    fromClient: (frame) => {
      const name = requestLabel(frame, compressor);
      requests.set(frame.readInt32LE(4), name);
      keep(client, frame, name);
      return 'forward';
    },
    fromServer: (frame) => keep(replies, frame, replyLabel(frame, requests.get(frame.readInt32LE(8)))),
  });
  try {
    for (const each of ['none', 'snappy', 'zlib', 'zstd'] as const) {
      compressor = each;
      const driver = new MongoClient(`mongodb://127.0.0.1:${relay.port}/?directConnection=true`, {
        compressors: each === 'none' ? [] : [each],
        maxPoolSize: 1,
      });
      try {
        const db = driver.db('fuzz');
        const coll = db.collection<{ _id: string; [key: string]: unknown }>('c');
        await db.command({ ping: 1 });
        await db.admin().command({ hello: 1 });
        // w:0: an OP_MSG flagged moreToCome, which mongod does not answer.
        await coll.insertOne({ _id: `${each}-w0` }, { writeConcern: { w: 0 } });
        await coll.insertOne({ _id: `${each}-0`, s: 'text', n: 1 });
        await coll.insertMany(Array.from({ length: 5 }, (_, i) => ({ _id: `${each}-${i + 1}`, n: i, nested: { a: [1, 2, 3] } })));
        await coll.find({ n: { $gte: 0 } }).batchSize(2).toArray(); // a find, then getMores
        await coll.updateOne({ _id: `${each}-0` }, { $set: { s: 'changed' } });
        await coll.deleteOne({ _id: `${each}-1` });
        await coll.aggregate([{ $match: { n: 1 } }]).toArray();
        const admin = driver.db('admin');
        for (const command of [{ backupStatus: 1 }, { backupStart: 1, backupDir: '/tmp/fuzz-backup' }, { backupThrottle: '10MB' }, { backupAbort: 1 }, { currentOp: 1 }]) {
          await admin.command(command).catch(() => undefined); // the dev server has none of these
        }
      } finally {
        await driver.close();
      }
    }
  } finally {
    await relay.close();
    await server.stop();
    server.cleanup();
  }
  return { generatedBy: 'node dist/test/fuzz/capture_traffic.js', client, server: replies };
}

const fixture = await capture();
const file = path.join(PROJECT_ROOT, TRAFFIC_FIXTURE);
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, `${JSON.stringify(fixture, null, 1)}\n`);
console.log(`${file}: ${fixture.client.length} client and ${fixture.server.length} server messages`);
for (const frame of [...fixture.client, ...fixture.server]) console.log(`  ${frame.label} (${frame.hex.length / 2} bytes)`);
