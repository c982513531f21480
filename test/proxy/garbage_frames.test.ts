/**
 * 300 garbage frames, each on its own connection, against `hotbackup serve` in front of
 * the dev server: each costs only its own connection, none gets an answer from the
 * proxy, and afterwards the same proxy process serves the npm driver (CRUD and a
 * backupStatus) as before.
 *
 * What mongod does with the same bytes, and so what the client sees through the proxy:
 * - a messageLength below 16 or above 48,000,000 (a negative one read as size_t is
 *   above): mongod answers nothing and ends the session (src/mongo/transport/asio/
 *   asio_session_impl.cpp, sourceMessageImpl: "recv(): message msgLen ... is invalid",
 *   a ProtocolError from sourcing the message). The proxy does the same itself: it
 *   cannot find the next message, so it forwards nothing from there and closes.
 * - a whole message with an unknown opcode, or an OP_MSG whose body is garbage, is
 *   mongod's to judge: the proxy forwards it (it names none of the proxy's commands).
 *   The dev server then closes the connection, as mongos does ("Message type ... is not
 *   supported", src/mongo/s/service_entry_point_mongos.cpp, setupEnvironment: logged,
 *   the connection closed); mongod 4.4-7.x logs "Operation is not supported" and sends
 *   nothing back (src/mongo/db/service_entry_point_common.cpp, UnsupportedOpRunner).
 * - a compressed message the proxy cannot inflate is never forwarded (it could be a
 *   backup command): the connection is closed, as mongod ends a session whose message
 *   it cannot decompress.
 * - half a header and a FIN: nothing to answer; the connection ends.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { loadTraffic, streamPart } from '../fuzz/traffic.js';

const CONNECTIONS = 300;
/** How many garbage connections are open at once. */
const CONCURRENCY = 30;
const SEED = 12;

interface Garbage {
  kind: string;
  bytes: Buffer;
  /** Send a FIN after the bytes: the garbage may be the start of a message the proxy (or mongod) waits to complete. */
  fin: boolean;
}

function header(length: number, opCode: number, total = 16): Buffer {
  const bytes = Buffer.alloc(total);
  bytes.writeInt32LE(length, 0);
  bytes.writeInt32LE(1, 4);
  if (total >= 16) bytes.writeInt32LE(opCode, 12);
  return bytes;
}

const KNOWN_OPCODES = new Set([1, 2001, 2002, 2004, 2005, 2006, 2007, 2010, 2011, 2012, 2013]);

function garbage(): fc.Arbitrary<Garbage> {
  const seeds = loadTraffic().client.map((c) => c.frame);
  const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => ({ kind: 'random bytes', bytes: Buffer.from(b), fin: true })),
    fc.integer({ min: 0, max: 15 }).map((length) => ({ kind: 'length below a header', bytes: header(length, 2013), fin: false })),
    fc.integer({ min: 48_000_001, max: 2 ** 31 - 1 }).map((length) => ({ kind: 'length over 48,000,000', bytes: header(length, 2013), fin: false })),
    fc.integer({ min: -(2 ** 31), max: -1 }).map((length) => ({ kind: 'negative length', bytes: header(length, 2013), fin: false })),
    fc
      .tuple(int32.filter((op) => !KNOWN_OPCODES.has(op)), fc.integer({ min: 16, max: 64 }))
      .map(([opCode, length]) => ({ kind: 'unknown opcode', bytes: header(length, opCode, length), fin: false })),
    fc.integer({ min: 1, max: 15 }).map((n) => ({ kind: 'truncated header, then FIN', bytes: header(200, 2013).subarray(0, n), fin: true })),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((payload) => {
      // An OP_COMPRESSED (snappy) of an OP_MSG whose payload is not snappy at all.
      const frame = Buffer.concat([header(25 + payload.length, 2012, 25), payload]);
      frame.writeInt32LE(2013, 16);
      frame.writeInt32LE(100, 20);
      frame.writeUInt8(1, 24);
      return { kind: 'undecodable OP_COMPRESSED', bytes: frame, fin: false };
    }),
    streamPart(seeds).map((bytes) => ({ kind: 'mutated real message', bytes, fin: true })),
  );
}

/** Sends one garbage frame on a fresh connection; resolves with what came back once the connection is closed. */
async function sendGarbage(port: number, item: Garbage): Promise<{ received: number }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined); // a reset is a close too
  let received = 0;
  socket.on('data', (chunk: Buffer) => void (received += chunk.length));
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  socket.write(item.bytes);
  if (item.fin) socket.end();
  await closed;
  return { received };
}

describe('garbage frames through hotbackup serve', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
  });

  it(`${CONNECTIONS} garbage frames, each on its own connection, leave the proxy serving real clients`, async () => {
    const pid = proxy.child.pid;
    const driver = new MongoClient(proxy.uri);
    try {
      // A client already connected before the garbage, and kept through it.
      const coll = driver.db('app').collection<{ _id: number; n?: number }>('c');
      await coll.insertOne({ _id: 0 });

      const items = fc.sample(garbage(), { numRuns: CONNECTIONS, seed: SEED });
      const results: Array<{ kind: string; received: number }> = [];
      for (let i = 0; i < items.length; i += CONCURRENCY) {
        const batch = items.slice(i, i + CONCURRENCY);
        const answers = await Promise.all(batch.map((item) => sendGarbage(proxy.port, item)));
        answers.forEach((answer, j) => results.push({ kind: (batch[j] as Garbage).kind, received: answer.received }));
      }
      const byKind = new Map<string, number>();
      for (const { kind } of results) byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      assert.equal(byKind.size, 8, `every kind of garbage was sent (seed ${SEED}): ${JSON.stringify([...byKind])}`);
      for (const { kind, received } of results) {
        if (kind === 'mutated real message' || kind === 'random bytes') continue; // mongod may answer those
        assert.equal(received, 0, `${kind}: closed without an answer, as mongod would`);
      }
      const badLengths = results.filter((r) => /length/.test(r.kind)).length;
      const refused = proxy.logs.filter((l) => l['msg'] === 'connection closed' && l['reason'] === 'bad message length from client').length;
      assert.ok(refused >= badLengths, `each bad length is logged (${refused} of at least ${badLengths})`);

      // The proxy still serves real clients, the one connected before and a new one.
      await coll.insertMany([{ _id: 1, n: 1 }, { _id: 2, n: 2 }]);
      await coll.updateOne({ _id: 1 }, { $set: { n: 10 } });
      await coll.deleteOne({ _id: 2 });
      assert.deepEqual(await coll.find().sort({ _id: 1 }).toArray(), [{ _id: 0 }, { _id: 1, n: 10 }]);
      const fresh = new MongoClient(proxy.uri);
      try {
        const status = await fresh.db('admin').command({ backupStatus: 1 });
        assert.equal(status['ok'], 1);
        assert.equal(await fresh.db('app').collection('c').countDocuments(), 2);
      } finally {
        await fresh.close();
      }
      assert.equal(proxy.child.pid, pid);
      assert.equal(proxy.child.exitCode, null, 'the proxy process never exited');
      assert.equal(proxy.child.signalCode, null);
    } finally {
      await driver.close();
    }
  });
});
