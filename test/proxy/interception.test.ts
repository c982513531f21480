/**
 * Commands the interceptor claims are answered by the proxy, framed the way each
 * request came (OP_MSG, checksummed OP_MSG, OP_COMPRESSED, OP_QUERY), in order with
 * everything else the client sends, and never inside a message mongod is streaming.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { runMongosh } from '../helpers/mongosh.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { CompressorId, OpCode, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';
import { crc32c } from '../../src/wire/crc32c.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { until } from '../helpers/poll.js';
import { RawClient, decodeReply, opMsg, startProxy, testInterceptor, uri, type DecodedReply, type RecordingInterceptor } from './support.js';

describe('proxy interception', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;
  let interceptor: RecordingInterceptor;

  before(async () => {
    server = await startDevServer();
    interceptor = testInterceptor();
    proxy = await startProxy(server.port, interceptor);
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('answers proxyEcho sent by the driver (OP_MSG) and forwards everything else', async () => {
    const client = new MongoClient(uri(proxy.address.port));
    try {
      const before = proxy.stats.intercepted;
      const reply = await client.db('admin').command({ proxyEcho: 1, word: 'hi' });
      assert.equal(reply['ok'], 1);
      assert.deepEqual(reply['echoed'], { proxyEcho: 1, word: 'hi', $db: 'admin' });
      assert.equal(proxy.stats.intercepted, before + 1);
      const last = interceptor.calls.at(-1);
      assert.equal(last?.name, 'proxyEcho');
      assert.match(last?.client.remoteAddress ?? '', /^127\.0\.0\.1:\d+$/);
      // The ping goes to mongod: forwarded, not intercepted. The driver's heartbeats may add
      // to forwarded meanwhile, never to intercepted.
      const forwarded = proxy.stats.forwarded;
      const intercepted = proxy.stats.intercepted;
      assert.deepEqual(await client.db('admin').command({ ping: 1 }), { ok: 1 });
      assert.ok(proxy.stats.forwarded > forwarded, 'the ping was forwarded');
      assert.equal(proxy.stats.intercepted, intercepted, 'the ping was not intercepted');
    } finally {
      await client.close();
    }
  });

  it('answers a checksummed OP_MSG with a valid checksum', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const request = opMsg({ proxyEcho: 'sum', $db: 'admin' }, { checksum: true });
      const reply = await raw.command(request);
      assert.equal(reply.opCode, OpCode.Msg);
      assert.equal(reply.flags & OpMsgFlag.ChecksumPresent, OpMsgFlag.ChecksumPresent);
      const frame = raw.frames.at(-1) as Buffer;
      assert.equal(frame.readUInt32LE(frame.length - 4), crc32c(frame.subarray(0, frame.length - 4)), 'CRC-32C over all prior bytes');
      assert.deepEqual(reply.doc['echoed'], { proxyEcho: 'sum', $db: 'admin' });
      assert.equal(reply.responseTo, request.readInt32LE(4));
    } finally {
      raw.close();
    }
  });

  it('answers an OP_COMPRESSED (zlib) command with a zlib-compressed reply', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const inner = opMsg({ proxyEcho: 'z', pad: 'x'.repeat(2000), $db: 'admin' });
      const request = encodeOpCompressed(inner, CompressorId.Zlib);
      const reply = await raw.command(request);
      assert.equal(reply.wireOpCode, OpCode.Compressed);
      assert.equal(reply.compressorId, CompressorId.Zlib);
      assert.equal(reply.opCode, OpCode.Msg);
      assert.equal((reply.doc['echoed'] as Record<string, unknown>)['pad'], 'x'.repeat(2000));
      assert.ok((raw.frames.at(-1) as Buffer).length < 1000, 'the reply really is compressed');
    } finally {
      raw.close();
    }
  });

  it('answers a legacy OP_QUERY command with an OP_REPLY', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const request = encodeOpQuery({ requestID: 77, flags: 0, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1, query: encodeDocument({ proxyEcho: 'old' }) });
      const reply = await raw.command(request);
      assert.equal(reply.opCode, OpCode.Reply);
      assert.equal(reply.responseTo, 77);
      assert.deepEqual(reply.doc, { ok: 1, echoed: { proxyEcho: 'old' } });
    } finally {
      raw.close();
    }
  });

  it('runs a moreToCome request without replying', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const calls = interceptor.calls.length;
      raw.send(opMsg({ proxyEcho: 'quiet', $db: 'admin' }, { flags: OpMsgFlag.MoreToCome }));
      const ping = await raw.command(opMsg({ ping: 1, $db: 'admin' }));
      assert.deepEqual(ping.doc, { ok: 1 });
      assert.equal(raw.frames.length, 1, 'only the ping was answered');
      assert.equal(interceptor.calls.length, calls + 1);
    } finally {
      raw.close();
    }
  });

  it('keeps request order: frames behind a slow claimed command wait for it', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const slow = opMsg({ proxySlow: 400, $db: 'admin' });
      const insert = opMsg({ insert: 'ordered', documents: [{ _id: 1 }], $db: 'app' });
      const find = opMsg({ find: 'ordered', filter: {}, $db: 'app' });
      const start = performance.now();
      raw.send(Buffer.concat([slow, insert, find])); // pipelined in one write
      const frames = await raw.waitForFrames(3);
      const replies = frames.map(decodeReply);
      assert.deepEqual(replies.map((r) => r.responseTo), [slow, insert, find].map((f) => f.readInt32LE(4)));
      // The slow command's 400 ms is the behaviour under test, and only a lower bound is
      // asserted: a busy machine makes the replies later, never earlier. Less 1 ms: libuv
      // fires a timer by a millisecond clock read at the start of its loop turn.
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 400 - 1, `the replies came ${elapsed.toFixed(1)} ms after the slow command`);
      assert.equal(replies[1]?.doc['n'], 1);
      const batch = (replies[2]?.doc['cursor'] as { firstBatch: unknown[] }).firstBatch;
      assert.deepEqual(batch, [{ _id: 1 }]);
    } finally {
      raw.close();
    }
  });

  it('answers InternalError when the interceptor throws, and the connection goes on', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const reply = await raw.command(opMsg({ proxyThrow: 1, $db: 'admin' }));
      assert.equal(reply.doc['ok'], 0);
      assert.equal(reply.doc['code'], 1);
      assert.equal(reply.doc['codeName'], 'InternalError');
      assert.deepEqual((await raw.command(opMsg({ ping: 1, $db: 'admin' }))).doc, { ok: 1 });
    } finally {
      raw.close();
    }
  });

  it('leaves a claimed command with a bad checksum to mongod, which closes as it would directly', async () => {
    const bad = opMsg({ proxyEcho: 1, $db: 'admin' }, { checksum: true });
    bad.writeUInt32LE((bad.readUInt32LE(bad.length - 4) ^ 1) >>> 0, bad.length - 4);
    for (const port of [server.port, proxy.address.port]) {
      const raw = await RawClient.connect(port);
      raw.send(bad);
      await raw.closed;
    }
    assert.deepEqual((await (await RawClient.connect(proxy.address.port)).command(opMsg({ ping: 1, $db: 'admin' }))).doc, { ok: 1 });
  });

  it('answers proxyEcho from mongosh', async () => {
    const result = await runMongosh(
      uri(proxy.address.port),
      "print(EJSON.stringify(db.adminCommand({proxyEcho: 1, word: 'sh'}))); db.getSiblingDB('app').sh.insertOne({a: 1}); print(db.getSiblingDB('app').sh.countDocuments())",
    );
    assert.equal(result.code, 0, result.stderr);
    const [echo, count] = result.stdout.trim().split('\n');
    const parsed = JSON.parse(echo ?? '') as { ok: number; echoed: Record<string, unknown> };
    assert.equal(parsed.ok, 1);
    assert.equal(parsed.echoed['word'], 'sh');
    assert.equal(parsed.echoed['$db'], 'admin');
    assert.equal(count, '1');
  });

  it('slips proxyEcho replies between the messages of an upstream exhaust (awaitable hello) stream', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const hello = await raw.command(opMsg({ hello: 1, $db: 'admin' }));
      const topologyVersion = hello.doc['topologyVersion'];
      assert.ok(topologyVersion);
      const streamed = opMsg({ hello: 1, topologyVersion, maxAwaitTimeMS: 100, $db: 'admin' }, { flags: OpMsgFlag.ExhaustAllowed });
      raw.send(streamed);
      const echoes: number[] = [];
      // Spread over about a second, so that they meet the stream (a hello every 100 ms)
      // at all sorts of points; how they land is the proxy's business, not the timer's.
      for (let i = 0; i < 25; i++) {
        const echo = opMsg({ proxyEcho: i, $db: 'admin' }, { checksum: i % 2 === 0 });
        echoes.push(echo.readInt32LE(4));
        raw.send(echo);
        await sleep(37);
      }
      // Every echo answered and six streamed hellos in; every received byte frames into a
      // whole, decodable message.
      const isStreamed = (r: DecodedReply) => r.doc['isWritablePrimary'] === true && r.responseTo !== hello.responseTo;
      const replies = await until(() => {
        const decoded = raw.frames.map(decodeReply);
        const done = decoded.filter((r) => r.doc['echoed'] !== undefined).length === echoes.length && decoded.filter(isStreamed).length >= 6;
        return done ? decoded : undefined;
      });
      const stream = replies.filter(isStreamed);
      const echoed = replies.filter((r) => r.doc['echoed'] !== undefined);
      assert.ok(stream.slice(0, -1).every((r) => (r.flags & OpMsgFlag.MoreToCome) !== 0), 'the stream is moreToCome replies');
      assert.deepEqual(echoed.map((r) => r.responseTo), echoes);
      assert.deepEqual(echoed.map((r) => (r.doc['echoed'] as Record<string, unknown>)['proxyEcho']), [...Array(25).keys()].map((i) => i));
      // The chain: each streamed reply answers the previous one.
      for (let i = 1; i < stream.length; i++) assert.equal(stream[i]?.responseTo, stream[i - 1]?.requestID);
      assert.equal(stream[0]?.responseTo, streamed.readInt32LE(4));
    } finally {
      raw.close();
    }
  });
});
