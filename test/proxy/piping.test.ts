/**
 * The proxy's byte piping against a scripted upstream (a plain TCP server the test
 * drives byte by byte): where an injected reply lands when the upstream is in the
 * middle of a message, and that backpressure reaches the other side in both directions.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { OpMsgFlag } from '../../src/wire/constants.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { until } from '../helpers/poll.js';
import { RawClient, decodeReply, opMsg, scriptedUpstream, startProxy, testInterceptor } from './support.js';

/** A moreToCome OP_MSG reply of about `size` bytes, as an exhaust stream would carry. */
function streamedReply(size: number, requestID: number, fill: string): Buffer {
  return encodeOpMsg({ requestID, responseTo: requestID - 1, flags: OpMsgFlag.MoreToCome, sections: [{ kind: 0, body: encodeDocument({ ok: 1, fill: fill.repeat(size) }) }] });
}

/**
 * Polls `bytes` (what a socket still holds back) until it stays the same across one poll,
 * and returns it. Between two polls the event loop serves every socket that is ready, so
 * a count that does not move is a flow that has stopped: nothing sleeps for a guessed time.
 */
async function untilSteady(bytes: () => number): Promise<number> {
  let previous = -1;
  return until(() => {
    const now = bytes();
    if (now === previous) return now;
    previous = now;
    return undefined;
  });
}

describe('proxy piping against a scripted upstream', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(): Promise<{ proxy: ProxyServer; upstream: net.Socket; raw: RawClient; calls: () => number }> {
    const scripted = await scriptedUpstream();
    cleanups.push(() => scripted.close());
    const interceptor = testInterceptor();
    const proxy = await startProxy(scripted.port, interceptor);
    cleanups.push(() => proxy.close());
    const raw = await RawClient.connect(proxy.address.port);
    cleanups.push(() => raw.close());
    const upstream = await scripted.accepted;
    return { proxy, upstream, raw, calls: () => interceptor.calls.length };
  }

  it('holds an injected reply while the upstream is mid-message, even mid-length-prefix, and slips it in at the boundary', async () => {
    const { upstream, raw, calls } = await setUp();
    const first = streamedReply(200_000, 501, 'a');
    const second = streamedReply(50, 502, 'b');
    let upstreamGot = 0;
    upstream.on('data', (chunk: Buffer) => (upstreamGot += chunk.length));

    // Two bytes of the first message's length prefix: the proxy cannot know its length yet.
    upstream.write(first.subarray(0, 2));
    await until(() => raw.receivedBytes === 2);
    const echo = opMsg({ proxyEcho: 'mid', $db: 'admin' });
    // A fire-and-forget message behind the echo: the proxy forwards it only once the echo
    // is dealt with (frames behind a claimed command wait for it), so its arrival upstream
    // says the echo's reply has been written or held by then.
    const marker = opMsg({ insert: 'c', documents: [{ after: 'echo' }], $db: 'app' }, { flags: OpMsgFlag.MoreToCome });
    raw.send(Buffer.concat([echo, marker]));
    await until(() => upstreamGot === marker.length);
    assert.equal(calls(), 1);
    assert.equal(raw.receivedBytes, 2, 'the reply waits for the upstream message to end');

    // Most of the first message, then its end together with the start of the next one:
    // the boundary falls inside one upstream chunk. (A reply slipped in anywhere but at
    // the boundary would break the frames checked at the end.)
    upstream.write(first.subarray(2, 150_000));
    await until(() => raw.receivedBytes === 150_000);
    upstream.write(Buffer.concat([first.subarray(150_000), second.subarray(0, 3)]));
    // The first message, the echo, and the next message's first 3 bytes passed on: the
    // proxy has read that chunk before the rest of the next message is sent.
    await until(() => raw.frames.length === 2 && raw.receivedBytes === first.length + (raw.frames[1] as Buffer).length + 3);
    upstream.write(second.subarray(3));
    const frames = await raw.waitForFrames(3);

    assert.deepEqual(frames[0], first);
    const reply = decodeReply(frames[1] as Buffer);
    assert.equal(reply.responseTo, echo.readInt32LE(4));
    assert.deepEqual(reply.doc['echoed'], { proxyEcho: 'mid', $db: 'admin' });
    assert.deepEqual(frames[2], second);
  });

  it('writes an injected reply at once when the upstream is between messages', async () => {
    const { upstream, raw } = await setUp();
    upstream.write(streamedReply(10, 601, 'c'));
    await raw.waitForFrames(1);
    const reply = await raw.command(opMsg({ proxyEcho: 'idle', $db: 'admin' }));
    assert.equal(reply.doc['ok'], 1);
  });

  it('keeps several queued replies in order behind one long upstream message', async () => {
    const { upstream, raw, calls } = await setUp();
    const big = streamedReply(100_000, 701, 'd');
    upstream.write(big.subarray(0, 10));
    await until(() => raw.receivedBytes === 10);
    const echoes = [0, 1, 2].map((i) => opMsg({ proxyEcho: i, $db: 'admin' }));
    raw.send(Buffer.concat(echoes));
    await until(() => calls() === 3);
    upstream.write(big.subarray(10));
    const frames = await raw.waitForFrames(4);
    assert.deepEqual(frames[0], big);
    assert.deepEqual(frames.slice(1).map((f) => decodeReply(f).responseTo), echoes.map((e) => e.readInt32LE(4)));
  });

  it('passes on what the upstream sent before it closed, then closes the client', async () => {
    const { upstream, raw, proxy } = await setUp();
    // Big enough, and read late enough, that it is still crossing under backpressure
    // when the upstream's FIN is sent: the client reads only once nothing moves any more.
    const last = streamedReply(8 * 1024 * 1024, 901, 'f');
    raw.socket.pause();
    upstream.end(last);
    await untilSteady(() => upstream.writableLength);
    raw.socket.resume();
    await raw.closed;
    assert.deepEqual(raw.frames, [last]);
    await until(() => proxy.stats.connectionsCurrent === 0);
  });

  it('passes on what the client sent before it closed, then closes the upstream', async () => {
    const { upstream, raw } = await setUp();
    const chunks: Buffer[] = [];
    upstream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const lastWords = opMsg({ insert: 'c', documents: [{ pad: 'z'.repeat(300_000) }], $db: 'app' }, { flags: OpMsgFlag.MoreToCome });
    raw.socket.end(lastWords);
    await once(upstream, 'close');
    assert.deepEqual(Buffer.concat(chunks), lastWords);
  });

  // 64 MiB sent into a side that does not read: the kernel's socket buffers hold a few
  // MiB; without backpressure the proxy would read the rest into its own memory.
  const FLOOD = 64;
  const HELD_BACK = 32 * 1024 * 1024;

  it('pauses the upstream while the client does not read (backpressure upstream to client)', async () => {
    const { upstream, raw } = await setUp();
    raw.socket.pause();
    // Each message different: the proxy reads mongod into a buffer it reuses, and must
    // not while a write to the client still holds it.
    const messages = Array.from({ length: FLOOD }, (_, i) => streamedReply(1024 * 1024, 801 + i, String.fromCharCode(97 + (i % 26))));
    for (const message of messages) upstream.write(message);
    const held = await untilSteady(() => upstream.writableLength);
    assert.ok(held > HELD_BACK, `only ${held} bytes held back at the upstream`);
    raw.socket.resume();
    await until(() => raw.frames.length === FLOOD);
    raw.frames.forEach((frame, i) => assert.ok(frame.equals(messages[i] as Buffer), `message ${i} arrived intact`));
  });

  it('pauses the client while the upstream does not read (backpressure client to upstream)', async () => {
    const { upstream, raw, proxy } = await setUp();
    upstream.pause();
    const message = opMsg({ insert: 'c', documents: [{ pad: 'x'.repeat(1024 * 1024) }], $db: 'app' });
    for (let i = 0; i < FLOOD; i++) raw.socket.write(message);
    const held = await untilSteady(() => raw.socket.writableLength);
    assert.ok(held > HELD_BACK, `only ${held} bytes held back at the client`);
    let received = 0;
    upstream.on('data', (chunk: Buffer) => (received += chunk.length));
    upstream.resume();
    await until(() => received === message.length * FLOOD);
    assert.equal(proxy.stats.forwarded, FLOOD);
  });
});
