/**
 * Slow and hostile clients: one that stops in the middle of a message is dropped after
 * the partial-message timeout (never one idle between messages, nor one the proxy itself
 * stopped reading); one that announces a 48 MB message and sends it a byte at a time
 * holds nothing in the proxy (each byte goes on to mongod as it comes). Other clients
 * are served all along.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp_forwarder.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { MAX_MESSAGE_SIZE } from '../../src/wire/constants.js';
import { until } from '../helpers/poll.js';
import { RawClient, captureLogger, opMsg, startProxy, testInterceptor, type DecodedReply } from './support.js';

const STALL_MS = 200;

async function ping(client: RawClient): Promise<void> {
  const reply = await client.command(opMsg({ ping: 1, $db: 'admin' }));
  assert.equal(reply.doc['ok'], 1);
}

/** Whether a socket's close has been seen (without waiting for it). */
function isClosed(client: RawClient): boolean {
  return client.socket.destroyed;
}

describe('a client that stalls in the middle of a message', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;
  const { log, lines } = captureLogger();

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server.port, testInterceptor(), log, { partialMessageTimeoutMS: STALL_MS });
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  const insert = opMsg({ insert: 'stalled', documents: [{ pad: 'x'.repeat(100_000) }], $db: 'app' });
  const cuts = [
    { what: 'half a header', bytes: insert.subarray(0, 8) },
    { what: 'a header and part of the body (streamed to mongod)', bytes: insert.subarray(0, 50_000) },
  ];
  for (const { what, bytes } of cuts) {
    it(`is dropped after the timeout when it sends ${what}; an idle client is kept`, async () => {
      const idle = await RawClient.connect(proxy.address.port);
      const other = await RawClient.connect(proxy.address.port);
      const stalled = await RawClient.connect(proxy.address.port);
      stalled.send(bytes);
      await ping(other); // served while the stalled client waits
      await stalled.closed;
      assert.ok(
        lines.some((l) => l['level'] === 40 && l['reason'] === 'client stalled in the middle of a message' && String(l['err']).includes(`no byte for ${STALL_MS} ms`)),
        'a warning says why the client was dropped',
      );
      // The idle client has sent nothing since before the stalled client's last byte: it
      // has been idle longer than the timeout, and is still served.
      assert.equal(isClosed(idle), false);
      await ping(idle);
      await ping(other);
      const count = await other.command(opMsg({ count: 'stalled', $db: 'app' }));
      assert.equal(count.doc['n'], 0, 'the half-sent insert never ran');
      idle.close();
      other.close();
    });
  }

  it('is not dropped while the proxy is the one not reading it (mongod is slow to take a large message)', async () => {
    // Three inserts of 40 MiB each (a document sequence): more than every socket buffer
    // between the client and a stopped mongod can take (loopback buffers grow to 32 MiB
    // here), so the proxy stops reading the client, mid-message.
    const doc = encodeDocument({ pad: 'y'.repeat(1024 * 1024) });
    const big = (requestID: number) => encodeOpMsg({
      requestID,
      responseTo: 0,
      flags: 0,
      sections: [
        { kind: 0, body: encodeDocument({ insert: 'big', $db: 'app' }) },
        { kind: 1, identifier: 'documents', documents: Array.from({ length: 40 }, () => doc) },
      ],
    });
    const writer = await RawClient.connect(proxy.address.port);
    await ping(writer); // its upstream connection is up before mongod stops
    server.child.kill('SIGSTOP');
    let answered: Promise<DecodedReply[]> | undefined;
    try {
      answered = Promise.all([77, 78, 79].map((id) => writer.command(big(id))));
      answered.catch(() => undefined); // awaited below, after mongod is back
      // The kernel refused part of it: every buffer on the way is full.
      await until(() => writer.socket.writableLength > 0);
      // A stalled client connected now is dropped after the timeout; by then the writer,
      // whose last byte the proxy read earlier, has waited longer than that.
      const canary = await RawClient.connect(proxy.address.port);
      canary.send(insert.subarray(0, 8));
      await canary.closed;
      assert.equal(isClosed(writer), false, 'the client the proxy stopped reading is kept');
    } finally {
      server.child.kill('SIGCONT');
    }
    for (const reply of await (answered as Promise<DecodedReply[]>)) {
      assert.equal(reply.doc['ok'], 1);
      assert.equal(reply.doc['n'], 40, 'the whole insert arrived');
    }
    writer.close();
  });
});

describe('a client that announces a 48 MB message and sends it a byte at a time', () => {
  let server: RunningDevServer;
  let forwarder: TcpForwarder;
  let proxy: ProxyServer;

  before(async () => {
    server = await startDevServer();
    // Between the proxy and mongod: counts the bytes the proxy passes on.
    forwarder = await startTcpForwarder(server.port);
    proxy = await startProxy(forwarder.port, testInterceptor());
  });

  after(async () => {
    await proxy?.close();
    forwarder?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('holds none of it: every byte reaches mongod as it comes, and other clients are served', async () => {
    const normal = await RawClient.connect(proxy.address.port);
    await ping(normal);
    const slow = await RawClient.connect(proxy.address.port);
    // An insert's head, announcing the largest message mongod takes; the body never ends.
    const body = Buffer.concat([Buffer.from([0x02]), Buffer.from('insert\0'), Buffer.from([2, 0, 0, 0]), Buffer.from('c\0')]);
    const head = Buffer.alloc(21);
    head.writeInt32LE(MAX_MESSAGE_SIZE, 0);
    head.writeInt32LE(5, 4); // requestID
    head.writeInt32LE(2013, 12); // OP_MSG
    head.writeUInt8(0, 20); // section kind 0
    const docLength = Buffer.alloc(4);
    docLength.writeInt32LE(MAX_MESSAGE_SIZE - 21, 0);
    const sent = Buffer.concat([head, docLength, body]);
    let base = forwarder.bytesToServer();
    slow.send(sent);
    await until(() => forwarder.bytesToServer() === base + sent.length);
    for (let i = 0; i < 5; i++) {
      base = forwarder.bytesToServer();
      slow.send(Buffer.from('z'));
      await until(() => forwarder.bytesToServer() === base + 1);
      await ping(normal);
    }
    // A burst is passed on as well, without waiting for the message's end.
    const burst = Buffer.alloc(8 * 1024 * 1024, 0x61);
    base = forwarder.bytesToServer();
    slow.send(burst);
    await until(() => forwarder.bytesToServer() === base + burst.length);
    await ping(normal);
    assert.equal(isClosed(slow), false);
    slow.close();
    normal.close();
    await until(() => proxy.stats.connectionsCurrent === 0);
  });
});
