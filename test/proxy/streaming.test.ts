/**
 * The proxy streams a client message through once its first bytes say it is not one it
 * must read whole: mongod gets a large insert's first bytes before the client has sent
 * its last. Claimed commands are still read whole and never reach mongod, a message that
 * arrives while a claimed command runs still waits behind it, and the order of answers
 * is what mongod's would be, however the client's bytes are cut into reads.
 */
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Binary, MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import type { Interceptor } from '../../src/proxy/interceptor.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { until } from '../helpers/poll.js';
import { RawClient, decodeReply, opMsg, scriptedUpstream, sendApart, startProxy, testInterceptor } from './support.js';

const idOf = (message: Buffer): number => message.readInt32LE(4);

/** Claims `proxyGate`, which is answered only once the test calls release(), and `proxyEcho`. */
function gateInterceptor(): { interceptor: Interceptor; calls: string[]; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const calls: string[] = [];
  const interceptor: Interceptor = {
    intercepts: (name) => name === 'proxyGate' || name === 'proxyEcho',
    async run(request) {
      calls.push(request.name);
      if (request.name === 'proxyGate') await gate;
      return { ok: 1, echoed: request.command[request.name] };
    },
  };
  return { interceptor, calls, release: () => release() };
}

/** An OP_MSG reply of {ok: 1} to `request`, as mongod would send it. */
function okReply(request: Buffer): Buffer {
  return encodeOpMsg({ requestID: 9000 + idOf(request), responseTo: idOf(request), flags: 0, sections: [{ kind: 0, body: encodeDocument({ ok: 1 }) }] });
}

describe('streaming client messages, against a scripted upstream', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(interceptor: Interceptor) {
    const scripted = await scriptedUpstream();
    cleanups.push(() => scripted.close());
    const proxy = await startProxy(scripted.port, interceptor);
    cleanups.push(() => proxy.close());
    const raw = await RawClient.connect(proxy.address.port);
    cleanups.push(() => raw.close());
    const upstream = await scripted.accepted;
    const received: Buffer[] = [];
    upstream.on('data', (chunk: Buffer) => received.push(chunk));
    const upstreamGot = () => received.reduce((n, c) => n + c.length, 0);
    return { proxy, raw, upstream, received, upstreamGot };
  }

  it("passes a large message's first bytes upstream before the client has sent its last", async () => {
    const { proxy, raw, received, upstreamGot } = await setUp(testInterceptor());
    const insert = opMsg({ insert: 'c', documents: [{ pad: 'x'.repeat(1_000_000) }], $db: 'app' });
    const forwarded = proxy.stats.forwarded;
    raw.send(insert.subarray(0, 600_000));
    await until(() => upstreamGot() === 600_000);
    assert.equal(proxy.stats.forwarded, forwarded, 'a message counts as forwarded once its last byte is');
    raw.send(insert.subarray(600_000));
    await until(() => upstreamGot() === insert.length);
    assert.deepEqual(Buffer.concat(received), insert);
    await until(() => proxy.stats.forwarded === forwarded + 1);
  });

  it('reads a claimed command whole however its head is cut, and passes none of it upstream', async () => {
    const { raw, upstreamGot } = await setUp(testInterceptor());
    const length = opMsg({ proxyEcho: 0, $db: 'admin' }).length;
    for (let cut = 1; cut < length; cut++) {
      const echo = opMsg({ proxyEcho: cut, $db: 'admin' });
      await sendApart(raw.socket, [echo.subarray(0, cut), echo.subarray(cut)]);
      const reply = decodeReply((await raw.waitForFrames(cut))[cut - 1] as Buffer);
      assert.equal(reply.responseTo, idOf(echo), `cut at ${cut}`);
      assert.deepEqual(reply.doc['echoed'], { proxyEcho: cut, $db: 'admin' }, `cut at ${cut}`);
    }
    assert.equal(upstreamGot(), 0);
  });

  it('holds what arrives while a claimed command runs, and forwards it, unchanged, after its answer', async () => {
    const { interceptor, calls, release } = gateInterceptor();
    const { raw, received, upstreamGot } = await setUp(interceptor);
    const gate = opMsg({ proxyGate: 1, $db: 'admin' });
    raw.send(gate);
    await until(() => calls.length === 1);
    const insert = opMsg({ insert: 'c', documents: [{ pad: 'y'.repeat(300_000) }], $db: 'app' });
    const ping = opMsg({ ping: 1, $db: 'admin' });
    await sendApart(raw.socket, [insert.subarray(0, 30), insert.subarray(30, 200_000), Buffer.concat([insert.subarray(200_000), ping])]);
    assert.equal(upstreamGot(), 0, 'nothing is forwarded while the claimed command runs');
    release();
    const [reply] = await raw.waitForFrames(1);
    assert.equal(decodeReply(reply as Buffer).responseTo, idOf(gate));
    await until(() => upstreamGot() === insert.length + ping.length);
    assert.deepEqual(Buffer.concat(received), Buffer.concat([insert, ping]));
  });

  it("runs a claimed command sent right behind a streamed message only after mongod's answer to it", async () => {
    const { raw, upstream, upstreamGot } = await setUp(testInterceptor());
    const insert = opMsg({ insert: 'c', documents: [{ pad: 'z'.repeat(500_000) }], $db: 'app' });
    const echo = opMsg({ proxyEcho: 'behind', $db: 'admin' });
    await sendApart(raw.socket, [insert.subarray(0, 250_000), Buffer.concat([insert.subarray(250_000), echo])]);
    await until(() => upstreamGot() === insert.length);
    for (let i = 0; i < 5; i++) await nextTurn();
    assert.equal(raw.frames.length, 0, 'the claimed command waits for the answer to the insert');
    upstream.write(okReply(insert));
    const frames = await raw.waitForFrames(2);
    assert.deepEqual(frames.map((f) => decodeReply(f).responseTo), [idOf(insert), idOf(echo)]);
  });

  it('closes a client that half-closes in the middle of a streamed message, and its upstream', async () => {
    const { raw, upstream } = await setUp(testInterceptor());
    const upstreamClosed = once(upstream, 'close');
    const insert = opMsg({ insert: 'c', documents: [{ pad: 'w'.repeat(200_000) }], $db: 'app' });
    // The rest never comes: mongod would never answer it, so nothing may wait for that.
    raw.socket.end(insert.subarray(0, 100_000));
    await raw.closed;
    await upstreamClosed;
  });
});

describe('streaming client messages, against the dev server', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;
  let direct: MongoClient;

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server.port, testInterceptor());
    direct = new MongoClient(server.uri);
    await direct.connect();
  });

  after(async () => {
    await direct?.close();
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('answers pipelined messages in order, wherever the reads cut them', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const batch = (cut: number) => [
        opMsg({ insert: 'cuts', documents: [{ cut }], $db: 'app' }),
        opMsg({ proxyEcho: cut, $db: 'admin' }),
        opMsg({ ping: 1, $db: 'admin' }),
        opMsg({ hello: 1, $db: 'admin' }),
        opMsg({ find: 'cuts', filter: { cut }, $db: 'app' }),
      ];
      const total = Buffer.concat(batch(0)).length;
      let answered = 0;
      for (let cut = 1; cut < total; cut++) {
        const messages = batch(cut);
        const bytes = Buffer.concat(messages);
        await sendApart(raw.socket, [bytes.subarray(0, cut), bytes.subarray(cut)]);
        answered += messages.length;
        const replies = (await raw.waitForFrames(answered)).slice(-messages.length).map(decodeReply);
        assert.deepEqual(replies.map((r) => r.responseTo), messages.map(idOf), `cut at ${cut}`);
        assert.ok(replies.every((r) => r.doc['ok'] === 1), `cut at ${cut}`);
        assert.deepEqual(replies[1]?.doc['echoed'], { proxyEcho: cut, $db: 'admin' });
        const found = replies[4]?.doc['cursor'] as { firstBatch: Array<{ cut: number }> };
        assert.deepEqual(found.firstBatch.map((d) => d.cut), [cut], `cut at ${cut}: the insert before the find reached mongod whole`);
      }
    } finally {
      raw.close();
    }
  });

  it('delivers a huge insert, streamed in many reads, intact', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const payloads = [0, 1, 2].map(() => randomBytes(6 * 1024 * 1024));
      // The documents as a document sequence: a message may be larger than one BSON document.
      const insert = encodeOpMsg({
        requestID: 4242,
        responseTo: 0,
        flags: 0,
        sections: [
          { kind: 0, body: encodeDocument({ insert: 'huge', $db: 'app' }) },
          { kind: 1, identifier: 'documents', documents: payloads.map((data, _id) => encodeDocument({ _id, data: new Binary(data) })) },
        ],
      });
      assert.ok(insert.length > 16 * 1024 * 1024, 'larger than any one BSON document may be');
      const parts: Buffer[] = [];
      for (let at = 0; at < insert.length; at += 64 * 1024) parts.push(insert.subarray(at, at + 64 * 1024));
      await sendApart(raw.socket, parts);
      const [frame] = await raw.waitForFrames(1);
      const reply = decodeReply(frame as Buffer);
      assert.equal(reply.responseTo, idOf(insert));
      assert.deepEqual([reply.doc['ok'], reply.doc['n']], [1, 3]);
      const stored = await direct.db('app').collection<{ _id: number; data: Binary }>('huge').find().sort({ _id: 1 }).toArray();
      assert.equal(stored.length, 3);
      stored.forEach((doc, i) => assert.ok(Buffer.from(doc.data.buffer).equals(payloads[i] as Buffer), `document ${i} arrived intact`));
    } finally {
      raw.close();
    }
  });
});
